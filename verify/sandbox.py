"""Where the decoder runs: a bubblewrap sandbox like a judge's offline container, or (only when
asked for with --unsandboxed) a bare `python -I` with a scrubbed environment.

Inside the sandbox the decoder sees:

    /usr, /bin, /lib...   the system, read-only (symlinks as on the host)
    /runtime/python       the base Python the clean venv was made from, read-only
    /runtime/venv         the clean venv: a pyvenv.cfg pointing at /runtime/python and, bound
                          read-only one by one, only the files of its pinned distributions
                          (a .pth planted in the cached venv is never bound, so never runs)
    /archive/NAME         the archive, read-only
    /out                  an empty writable folder (cwd); the restored file goes here
    /tmp, /proc, /dev     a private tmpfs, this PID namespace's processes, null/zero/random

and nothing else: no host home, no project, no --expect file, a cleared environment, no
network (`--unshare-all`), its own PID namespace whose every process dies with the decoder
or with us (`--die-with-parent`), no capabilities. bwrap reads its options from a pipe
(`--args`), so even /proc/1/cmdline inside names no host path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Iterator, Optional

from verify.clean_env import Venv, runtime_entries

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
RUNTIME, VENV, ARCHIVE_DIR, OUT = "/runtime/python", "/runtime/venv", "/archive", "/out"
BWRAP_FLAGS = ("--unshare-all", "--die-with-parent", "--new-session", "--clearenv", "--cap-drop", "ALL")
SYSTEM_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")


@dataclass
class Launch:
    """One command ready to start: what Popen needs."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path
    pass_fds: tuple[int, ...] = ()


@dataclass
class Sandbox:
    """How the decoder is run; `describe()` goes into the report."""

    venv: Venv
    threads: int = 1
    level: str = "bwrap"  # or "none" (--unsandboxed)
    network_prefix: list[str] = field(default_factory=list)  # "none" only: unshare --net

    @property
    def sandboxed(self) -> bool:
        return self.level == "bwrap"

    @property
    def network_cut(self) -> bool:
        return self.sandboxed or bool(self.network_prefix)

    def env(self, home: str) -> dict[str, str]:
        env = {"PATH": "/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8"}
        env.update({var: str(self.threads) for var in THREAD_VARS})
        if self.sandboxed and _shared_libpython(self.venv):
            env["LD_LIBRARY_PATH"] = f"{RUNTIME}/lib"  # its RUNPATH names the host path we moved
        return env

    def seen_paths(self, archive: Path, outdir: Path) -> tuple[str, str]:
        """The archive's and the output folder's paths as the decoder sees them."""
        if self.sandboxed:
            return f"{ARCHIVE_DIR}/{archive.name}", OUT
        return str(archive), str(outdir)

    @contextmanager
    def launch(self, archive: Path, outdir: Path, args: list[str]) -> Iterator[Launch]:
        """The venv's `python -I ARGS`, with `archive` and `outdir` (which it may write) visible."""
        if not self.sandboxed:
            yield Launch([*self.network_prefix, str(self.venv.python), "-I", *args], self.env(str(outdir)), outdir)
            return
        with _pipe(_pyvenv_cfg()) as cfg_fd:
            options = [
                *self.bwrap_options(archive, outdir), "--ro-bind-data", str(cfg_fd), f"{VENV}/pyvenv.cfg",
                "--remount-ro", "/",  # the folders made above (/runtime/venv/...) too; /out and /tmp stay writable
            ]
            with _pipe("\0".join(options) + "\0") as options_fd:
                argv = [bwrap_path(), "--args", str(options_fd), f"{VENV}/bin/python", "-I", *args]
                yield Launch(argv, {}, outdir, (options_fd, cfg_fd))

    def bwrap_options(self, archive: Path, outdir: Path) -> list[str]:
        opts = [*BWRAP_FLAGS]
        for name, value in self.env("/tmp").items():
            opts += ["--setenv", name, value]
        opts += _system_binds()
        opts += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
        opts += ["--ro-bind", str(base_prefix(self.venv)), RUNTIME]
        site = f"{VENV}/lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"
        opts += ["--dir", site, "--symlink", f"{RUNTIME}/bin/{base_executable(self.venv).name}", f"{VENV}/bin/python"]
        for entry in runtime_entries(self.venv):
            opts += ["--ro-bind", str(entry.resolve()), f"{site}/{entry.name}"]
        opts += ["--ro-bind", str(archive.resolve()), f"{ARCHIVE_DIR}/{archive.name}"]
        opts += ["--bind", str(outdir), OUT, "--chdir", OUT]
        return opts

    def describe(self) -> dict:
        """The isolation facts of the report."""
        if not self.sandboxed:
            return {
                "level": "none", "tool": None, "network_cut": self.network_cut,
                "note": "--unsandboxed: the decoder could read the host's files and processes; not valid for records",
            }
        return {
            "level": "bwrap", "tool": bwrap_version(), "flags": list(BWRAP_FLAGS), "network_cut": True,
            "visible": ["/usr (ro)", f"{RUNTIME} (ro)", f"{VENV} (ro, pinned distributions only)",
                        f"{ARCHIVE_DIR}/ARCHIVE (ro)", f"{OUT} (rw, empty)", "/tmp (tmpfs)", "/proc (own PID namespace)", "/dev (minimal)"],
        }


def make_sandbox(venv_: Venv, threads: int = 1, unsandboxed: bool = False) -> Sandbox:
    if unsandboxed:
        return Sandbox(venv=venv_, threads=threads, level="none", network_prefix=list(network_prefix()))
    return Sandbox(venv=venv_, threads=threads)


# ----------------------------------------------------------------------- the runtime


def base_executable(venv_: Venv) -> Path:
    return Path(os.path.realpath(venv_.python))


def base_prefix(venv_: Venv) -> Path:
    """The Python installation the venv's interpreter belongs to (its bin/..)."""
    return base_executable(venv_).parent.parent


def _shared_libpython(venv_: Venv) -> bool:
    return any((base_prefix(venv_) / "lib").glob("libpython*.so*"))


def _pyvenv_cfg() -> str:
    version = ".".join(map(str, sys.version_info[:3]))
    return f"home = {RUNTIME}/bin\ninclude-system-site-packages = false\nversion = {version}\n"


def _system_binds() -> list[str]:
    """/usr read-only, and /bin, /lib... as the host has them (merged-/usr symlinks or dirs)."""
    opts = []
    for name in SYSTEM_DIRS:
        path = Path("/") / name
        if path.is_symlink():
            opts += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            opts += ["--ro-bind", str(path), str(path)]
    return opts + ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]


@contextmanager
def _pipe(data: str) -> Iterator[int]:
    """A pipe holding `data` (small: the options, a config file), read end open for a child."""
    read, write = os.pipe()
    try:
        os.write(write, data.encode())
        os.close(write)
        write = -1
        yield read
    finally:
        os.close(read)
        if write != -1:
            os.close(write)


# ----------------------------------------------------------------------- availability


def bwrap_path() -> str:
    return shutil.which("bwrap") or "bwrap"


@cache
def bwrap_version() -> Optional[str]:
    try:
        return subprocess.run([bwrap_path(), "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


@cache
def bwrap_problem() -> Optional[str]:
    """Why bubblewrap cannot sandbox here, or None when it can (one real, empty sandbox)."""
    if shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed"
    cmd = [bwrap_path(), *BWRAP_FLAGS, *_system_binds(), "--proc", "/proc", "--dev", "/dev", "true"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bwrap could not start ({exc})"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        return f"bwrap cannot create its namespaces here ({last})"
    return None


@cache
def network_prefix() -> tuple[str, ...]:
    """--unsandboxed: `unshare --net` (root) or with --map-root-user (rootless); () if neither works."""
    unshare = shutil.which("unshare")
    if not unshare:
        return ()
    for flags in (["--net"], ["--net", "--map-root-user"]):
        try:
            ok = subprocess.run([unshare, *flags, "--", "true"], capture_output=True, timeout=30).returncode == 0
        except (OSError, subprocess.SubprocessError):
            ok = False
        if ok:
            return (unshare, *flags, "--")
    return ()
