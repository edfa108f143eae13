"""Memory limits for the decoder's whole process tree, and its peak memory.

The limit is enforced by the kernel, the best way this machine allows, tried in order:

* "cgroup-v2": a child cgroup with `memory.max` (and no swap); every process the decoder
  starts, `setsid` or not, is in it, charged together, and killed together;
* "cgroup-v1": the same with the v1 memory controller (`memory.limit_in_bytes`, and
  `memory.memsw.limit_in_bytes` where swap accounting exists);
* "rlimit-as": RLIMIT_AS on the decoder, inherited by each child: per process, not for the
  tree, and on address space, so it is set ADDRESS_MARGIN above the limit (runtimes reserve
  far more address space than they touch). The measured peak still fails a tree over the limit.

The peak is measured the same way whatever enforces the limit (`TreeSampler`): the largest
sum of the resident sets of all the tree's processes, sampled, and never less than a single
process's own high-water mark (VmHWM). Where a cgroup exists its own high-water mark (which
also counts the page cache and tmpfs the tree used) is reported beside it.
"""

from __future__ import annotations

import os
import shlex
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

ADDRESS_MARGIN = 4 << 30  # numba/LLVM and glibc arenas reserve GiBs they never touch
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CGROUP_ROOT = Path("/sys/fs/cgroup")
PREFIX = "hutter-verify-"  # our groups: hutter-verify-<pid of the verifier>-<random>


@dataclass(frozen=True)
class CgroupFiles:
    """Where v1 and v2 keep the same facts."""

    version: str
    limits: tuple[tuple[str, str], ...]  # (file, value: "LIMIT" or a constant)
    peak: str
    oom: str  # a flat-keyed file with an "oom_kill N" line


V2 = CgroupFiles("cgroup-v2", (("memory.max", "LIMIT"), ("memory.swap.max", "0")), "memory.peak", "memory.events")
V1 = CgroupFiles(
    "cgroup-v1", (("memory.limit_in_bytes", "LIMIT"), ("memory.memsw.limit_in_bytes", "LIMIT")),
    "memory.max_usage_in_bytes", "memory.oom_control",
)


class MemoryLimit:
    """No limit (or none the kernel could enforce): the base every method extends."""

    method = "none"

    def __init__(self, limit: Optional[int]):
        self.limit = limit

    def wrap(self, argv: list[str]) -> list[str]:
        """The command that starts `argv` under this limit (exec'd in place, same pid)."""
        return argv

    def pids(self) -> Optional[list[int]]:
        """Every process under the limit, or None where the limit cannot list them."""
        return None

    def kill_all(self) -> None:
        """SIGKILL every process under the limit (nothing to do without a cgroup)."""

    def peak(self) -> Optional[int]:
        return None

    def oom_kills(self) -> int:
        return 0

    def close(self) -> None:
        """Release what the limit set up (the cgroup)."""

    def describe(self) -> dict:
        return {"method": self.method, "limit_bytes": self.limit}


class AddressSpaceLimit(MemoryLimit):
    method = "rlimit-as"

    def wrap(self, argv: list[str]) -> list[str]:
        kib = (self.limit + ADDRESS_MARGIN) // 1024
        return ["/bin/sh", "-c", f'ulimit -v {kib} && exec "$@"', "verify-launch", *argv]

    def describe(self) -> dict:
        return {
            **super().describe(), "scope": "each process", "address_space_bytes": self.limit + ADDRESS_MARGIN,
            "margin_bytes": ADDRESS_MARGIN,
        }


class CgroupLimit(MemoryLimit):
    """A fresh cgroup below our own, removed by close()."""

    def __init__(self, limit: Optional[int], path: Path, files: CgroupFiles):
        super().__init__(limit)
        self.path, self.files = path, files
        self.method = files.version

    def wrap(self, argv: list[str]) -> list[str]:
        # The shell joins the cgroup before it execs the sandbox, so nothing runs outside it.
        procs = shlex.quote(str(self.path / "cgroup.procs"))
        return ["/bin/sh", "-c", f'echo $$ > {procs} && exec "$@"', "verify-launch", *argv]

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def kill_all(self) -> None:
        """Kill until empty: a process forking while we read the list is caught next round."""
        kill = self.path / "cgroup.kill"
        if kill.exists():
            _write(kill, "1")
        deadline = time.monotonic() + 10
        while (pids := self.pids()) and time.monotonic() < deadline:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)

    def peak(self) -> Optional[int]:
        try:
            return int((self.path / self.files.peak).read_text())
        except (OSError, ValueError):
            return None

    def oom_kills(self) -> int:
        try:
            lines = (self.path / self.files.oom).read_text().splitlines()
        except OSError:
            return 0
        counts = dict(line.split(None, 1) for line in lines if " " in line)
        return int(counts.get("oom_kill", 0))

    def close(self) -> None:
        self.kill_all()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # rmdir fails until the kernel has reaped the last task
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.02)

    def describe(self) -> dict:
        return {**super().describe(), "scope": "process tree"}


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def own_cgroup(version: str, proc_cgroup: str) -> Optional[Path]:
    """Our cgroup's folder for the memory controller, from /proc/self/cgroup's text."""
    for line in proc_cgroup.splitlines():
        _, controllers, rel = line.split(":", 2)
        if version == "cgroup-v2" and controllers == "":
            mount = CGROUP_ROOT / "unified" if (CGROUP_ROOT / "unified").is_dir() else CGROUP_ROOT
            return mount / rel.lstrip("/")
        if version == "cgroup-v1" and "memory" in controllers.split(","):
            return CGROUP_ROOT / "memory" / rel.lstrip("/")
    return None


def _make_cgroup(limit: Optional[int], files: CgroupFiles) -> Optional[CgroupLimit]:
    """A child cgroup with the limit set (if any), or None where this kind cannot be made here."""
    try:
        parent = own_cgroup(files.version, Path("/proc/self/cgroup").read_text())
        if parent is None or not (parent / "cgroup.procs").exists():
            return None
        if files is V2 and "memory" not in (parent / "cgroup.subtree_control").read_text().split():
            return None  # the memory controller is not delegated to our children
        _remove_stale(parent, files)
        path = parent / f"{PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        path.mkdir()
    except (OSError, ValueError):
        return None
    group = CgroupLimit(limit, path, files)
    try:
        for name, value in files.limits if limit is not None else ():
            target = path / name
            if target.exists() or name == files.limits[0][0]:  # swap files exist only with swap accounting
                _write(target, str(limit) if value == "LIMIT" else value)
    except OSError:
        group.close()
        return None
    return group


def _remove_stale(parent: Path, files: CgroupFiles) -> None:
    """Groups of verifications that were killed (their pid is gone): kill what is left in them
    (an unsandboxed orphan), remove them."""
    for path in parent.glob(f"{PREFIX}*"):
        pid = path.name[len(PREFIX):].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            CgroupLimit(None, path, files).close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def memory_limit(limit: Optional[int]) -> MemoryLimit:
    """The strongest limit this machine enforces for `limit` bytes (None: no limit). A cgroup
    is made even without a limit: it holds the tree together for measuring and killing."""
    for files in (V2, V1):
        group = _make_cgroup(limit, files)
        if group is not None:
            return group
    return MemoryLimit(None) if limit is None else AddressSpaceLimit(limit)


class TreeSampler:
    """Peak memory of a process tree: the largest sampled sum of its resident sets."""

    def __init__(self, root: int, limit: MemoryLimit):
        self.root, self.limit = root, limit
        self.peak_sum = 0
        self.hwm: dict[int, int] = {}  # pid -> its own high-water mark, last seen
        self.ticks: dict[int, int] = {}  # pid -> user + system clock ticks, last seen

    def members(self) -> list[int]:
        listed = self.limit.pids()
        return listed if listed else descendants(self.root)

    def sample(self) -> None:
        total = 0
        for pid in self.members():
            rss, hwm = _rss_and_hwm(pid)
            total += rss
            self.hwm[pid] = max(hwm, self.hwm.get(pid, 0))
            self.ticks[pid] = max(_cpu_ticks(pid), self.ticks.get(pid, 0))
        self.peak_sum = max(self.peak_sum, total)

    @property
    def peak(self) -> int:
        return max([self.peak_sum, *self.hwm.values()])

    @property
    def cpu_seconds(self) -> float:
        """CPU time of the tree up to the last sample (bwrap's init is not reaped by anyone
        we wait on, so wait4's rusage would miss the decoder)."""
        return sum(self.ticks.values()) / CLOCK_TICKS


def descendants(root: int) -> list[int]:
    """`root` and every process below it (orphans of a PID namespace stay below its init)."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return found


def _cpu_ticks(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()  # the name may hold spaces and parentheses
    except (OSError, IndexError):
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)


def _rss_and_hwm(pid: int) -> tuple[int, int]:
    """Resident and peak resident bytes of one process (0, 0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            fields = dict(line.split(":", 1) for line in f if line.startswith(("VmRSS", "VmHWM")))
    except OSError:
        return 0, 0
    kib = {k: int(v.split()[0]) * 1024 for k, v in fields.items()}
    return kib.get("VmRSS", 0), kib.get("VmHWM", 0)
