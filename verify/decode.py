"""Run the decoder (and a probe of what it can see) in the sandbox, under the limits.

The whole process tree is watched: its memory sampled while it runs, every process of it
killed at the time limit and, after the decoder exits, whatever it left behind (with bwrap
the PID namespace dies with the decoder; a cgroup catches the rest).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from submissions.errors import UserError
from verify import limits
from verify.clean_env import PROJECT_MODULES
from verify.report import sha256_file
from verify.sandbox import Launch, Sandbox

POLL_SECONDS = 0.01
LOG_TAIL = 1 << 16  # bytes of the decoder's stdout/stderr kept for the report
PROBE_SECONDS = 120


@dataclass
class RunResult:
    returncode: int
    seconds: float
    cpu_seconds: float  # user + system of the tree's processes, sampled (limits.TreeSampler)
    peak_rss: int  # bytes, the whole tree (limits.TreeSampler)
    timed_out: bool
    leftovers: int  # processes still running when the decoder exited (all killed)
    memory: dict  # the limit in force (limits.MemoryLimit.describe) + what it saw
    stdout: str
    stderr: str

    @property
    def memory_exceeded(self) -> bool:
        return self.memory.get("oom_kills", 0) > 0


def run(launch: Launch, rss_limit: Optional[int], timeout: Optional[float]) -> RunResult:
    """Start `launch` under the memory limit, wait for it (killing the tree past `timeout`)."""
    memory = limits.memory_limit(rss_limit)
    logs = Path(tempfile.mkdtemp(prefix="verify-logs-"))
    try:
        with open(logs / "stdout", "wb") as out, open(logs / "stderr", "wb") as err:
            start = time.monotonic()
            proc = subprocess.Popen(
                memory.wrap(launch.argv), cwd=launch.cwd, env=launch.env, pass_fds=launch.pass_fds,
                stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True,
            )
            sampler = limits.TreeSampler(proc.pid, memory)
            timed_out = _wait(proc, start, timeout, sampler, memory)
            seconds = time.monotonic() - start
        leftovers = len(_outliving(memory))
        memory.kill_all()
        facts = {**memory.describe(), "oom_kills": memory.oom_kills(), "cgroup_peak_bytes": memory.peak()}
        return RunResult(
            returncode=proc.returncode, seconds=seconds, cpu_seconds=sampler.cpu_seconds,
            peak_rss=sampler.peak, timed_out=timed_out, leftovers=leftovers, memory=facts,
            stdout=_tail(logs / "stdout"), stderr=_tail(logs / "stderr"),
        )
    finally:
        memory.close()
        shutil.rmtree(logs, ignore_errors=True)


def _wait(proc: subprocess.Popen, start: float, timeout: Optional[float], sampler, memory):
    """Reap `proc`, sampling the tree's memory; past `timeout` kill the whole tree.

    Polling (rather than a timer thread) means we only ever signal a pid we have not reaped
    yet, so we can never hit a recycled pid.
    """
    timed_out = False
    while True:
        pid, status = os.waitpid(proc.pid, os.WNOHANG)
        if pid:
            break
        sampler.sample()
        if timeout is not None and not timed_out and time.monotonic() - start > timeout:
            memory.kill_all()
            os.killpg(proc.pid, signal.SIGKILL)  # bwrap: its PID namespace dies with it
            timed_out = True
        time.sleep(POLL_SECONDS)
    proc.returncode = os.waitstatus_to_exitcode(status)  # tell Popen it is reaped
    return timed_out


def _outliving(memory, grace: float = 1.0) -> list[int]:
    """Processes still in the tree `grace` seconds after the decoder exited: with bwrap its
    namespace is being torn down meanwhile (so none), without it orphans stay."""
    deadline = time.monotonic() + grace
    while (pids := memory.pids() or []) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    return pids


def _tail(path: Path) -> str:
    with open(path, "rb") as f:
        f.seek(max(0, f.seek(0, os.SEEK_END) - LOG_TAIL))
        return f.read().decode(errors="replace")


# ---------------------------------------------------------------- decode, probe


PROBE = """
import importlib.metadata as m, importlib.util as u, json, sys
def version(name):
    try:
        return m.version(name)
    except m.PackageNotFoundError:
        return None
print(json.dumps({
    "python": sys.version.split()[0],
    "packages": {n: version(n) for n in NAMES},
    "importable": {n: u.find_spec(n) is not None for n in PROJECT},
    "flags": {f: getattr(sys.flags, f) for f in ("isolated", "ignore_environment", "no_user_site", "safe_path")},
    "sys_path": sys.path,
}))
"""


class ProbeFailed(UserError):
    """The clean environment's python did not even start: a broken sandbox, not an archive's fault."""


def probe(sandbox: Sandbox, archive: Path, outdir: Path) -> dict:
    """Ask the clean env's python (same sandbox, flags and environment) what it can see."""
    names = sorted({r.split("==")[0] for r in sandbox.venv.requirements})
    code = f"NAMES = {names!r}\nPROJECT = {list(PROJECT_MODULES)!r}\n{PROBE}"
    with sandbox.launch(archive, outdir, ["-c", code]) as launch:
        result = run(launch, None, PROBE_SECONDS)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise ProbeFailed(f"the clean environment's python does not start ({sandbox.level}): {last}")
    return json.loads(result.stdout)


@dataclass
class Decode:
    result: RunResult
    facts: dict  # what the probe saw inside the sandbox
    restored: Path  # where the decoder was told to write (it may not have)
    archive_sha256: str  # of the private copy it decoded


def decode(sandbox: Sandbox, archive: Path, workdir: Path, rss_limit: Optional[int], timeout: Optional[float]) -> Decode:
    """Restore a private read-only copy of `archive` into the empty `workdir`/out."""
    private, outdir, probe_dir = workdir / "archive" / archive.name, workdir / "out", workdir / "probe"
    for folder in (private.parent, outdir, probe_dir):
        folder.mkdir()
    shutil.copyfile(archive, private)
    private.chmod(0o444)
    archive_sha256 = sha256_file(private)
    facts = probe(sandbox, private, probe_dir)
    seen_archive, seen_out = sandbox.seen_paths(private, outdir)
    with sandbox.launch(private, outdir, [seen_archive, "-o", f"{seen_out}/restored"]) as launch:
        result = run(launch, rss_limit, timeout)
    return Decode(result=result, facts=facts, restored=outdir / "restored", archive_sha256=archive_sha256)
