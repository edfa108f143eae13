"""Peak memory of a piece of work, measured the way its kind allows.

Two methods, and every number says which one made it:

* a program (xz, zpaq, our own decoder) is started by a tiny helper process that forks it,
  reaps it with os.wait4 and reports that one process's peak RSS (`PROCESS_RSS`). Why the
  helper: Linux counts the memory of whoever exec()s the program into its peak RSS (the old
  address space's high-water mark is kept at exec), so a program started straight from this
  Python process, which may hold a whole enwik file, would inherit this process's peak.
  The helper is small (`helper_floor()`, ~6 MiB): a peak at that floor means "at most that".
  Not RUSAGE_CHILDREN either: that is the maximum over every child ever reaped;
* work done inside this Python process (lzma, bz2, zstandard, brotli modules) is the
  growth of this process's peak RSS over its RSS at the start (`RSS_GROWTH`): Linux lets a
  process reset its peak (`/proc/self/clear_refs` = 5), so VmHWM afterwards minus VmRSS
  before is what the work added. tracemalloc would miss zstandard and brotli, whose C
  libraries allocate with plain malloc.

Elsewhere (no /proc) in-process peaks are None and tables show n/a.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import subprocess
import sys
import tempfile
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

PROCESS_RSS = "peak RSS of the process (wait4)"
RSS_GROWTH = "peak RSS growth inside this process (VmHWM)"

_programs: ContextVar[Optional[list["ProgramRun"]]] = ContextVar("programs_run", default=None)


@dataclass
class Peak:
    """Filled in when the `peak_memory()` block ends."""

    bytes: Optional[int] = None
    method: Optional[str] = None
    program_seconds: Optional[float] = None  # time the programs themselves ran (no helper start-up, no temp files)


@dataclass(frozen=True)
class ProgramRun:
    returncode: int
    seconds: float
    peak_rss: int  # bytes, this process only
    stdout: bytes
    stderr: bytes


# Runs argv[2:] as its child and writes "exit code, peak RSS in kB, seconds" to the file argv[1].
_HELPER = """
import os, sys, time
result, argv = sys.argv[1], sys.argv[2:]
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        os.write(2, f"cannot run {argv[0]}: {exc}\\n".encode())
    os._exit(127)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - started
with open(result, "w") as f:
    f.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss} {seconds!r}")
"""


def run_program(argv: Sequence[str], cwd: Optional[Path] = None, env: Optional[dict] = None) -> ProgramRun:
    """Run a program to its end through the helper; its own peak RSS and run time (without the
    helper's start-up) come back, and the peak is reported to an enclosing `peak_memory()` block."""
    with tempfile.TemporaryDirectory(prefix="run-") as tmp:
        result = Path(tmp) / "result"
        out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
        with open(out, "wb") as stdout, open(err, "wb") as stderr:
            helper = subprocess.run(
                [sys.executable, "-S", "-I", "-c", _HELPER, str(result), *argv],
                cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
            )
        if not result.is_file():  # the helper itself failed: nothing to measure
            raise RuntimeError(f"could not run {argv[0]}: {err.read_text(errors='replace').strip()[-300:]}")
        code, kilobytes, seconds = result.read_text().split()
        run = ProgramRun(int(code), float(seconds), int(kilobytes) * 1024, out.read_bytes(), err.read_bytes())
    if helper.returncode != 0:
        raise RuntimeError(f"measuring helper exited {helper.returncode}")
    programs = _programs.get()
    if programs is not None:
        programs.append(run)
    return run


@functools.lru_cache(maxsize=None)
def helper_floor() -> int:
    """The smallest peak `run_program` can report (that of a program doing nothing)."""
    return run_program([shutil.which("true") or "true"]).peak_rss


def _status_bytes(key: str) -> Optional[int]:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024  # the kernel writes kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _reset_peak() -> Optional[int]:
    """Reset this process's peak RSS to its current RSS; return that RSS (None if unsupported)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return None
    return _status_bytes("VmRSS")


@contextlib.contextmanager
def peak_memory() -> Iterator[Peak]:
    """Measure the block: the largest peak of the programs it ran, or, when it ran none,
    how far it pushed this process's own peak RSS."""
    peak = Peak()
    programs: list[ProgramRun] = []
    token = _programs.set(programs)
    base = _reset_peak()
    try:
        yield peak
    finally:
        _programs.reset(token)
        if programs:
            peak.bytes, peak.method = max(p.peak_rss for p in programs), PROCESS_RSS
            peak.program_seconds = sum(p.seconds for p in programs)
        elif base is not None and (high := _status_bytes("VmHWM")) is not None:
            peak.bytes, peak.method = max(0, high - base), RSS_GROWTH
