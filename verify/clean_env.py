"""The clean environment an archive is decoded in.

Two halves:

* `ensure_venv(runtime)` builds (once, then caches) a virtual environment that
  holds only the decoder's runtime distributions, pinned to the host's versions
  so the decoder computes exactly what the encoder computed.
* `run_decoder(...)` / `probe(...)` run that venv's python in isolated mode
  (`-I`), from an empty directory, with a scrubbed environment and, where the
  kernel lets us, no network (`unshare --net`).

Install methods (recorded in the venv's `hutter-venv.json`):

* "pip": `pip --python <venv python> install` of the pinned closure, using the
  host's pip so that pip itself does not end up in the venv.
* "link": no installer at all; the host's files of exactly those distributions
  (package dirs, their `.libs` dirs, dist-info) are symlinked into the venv's
  site-packages. Used when pip fails (offline boxes) and always when torch is
  needed: its wheels are 0.7-3 GB, host builds usually carry a local version
  (`+cpu`, `+cu124`) that PyPI does not serve, and linking guarantees the very
  kernels the encoder ran with. (We link into site-packages rather than adding
  a `.pth` line: a `.pth` adds whole directories, and the parent of `numpy/` is
  the host's site-packages, which would expose every host package.)
"""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import venv
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from submissions.errors import UserError

PROJECT_MODULES = ("pipeline", "tokenizer", "models", "submissions", "verify")
# Distributions never pip-installed: huge wheels, host-specific builds.
LINK_ONLY = {"torch"}
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
MARKER_FILE = "hutter-venv.json"
PIP_FLAGS = ["--no-input", "--disable-pip-version-check", "--retries", "1", "--timeout", "20"]


# --------------------------------------------------------------------------- venv


@dataclass
class Venv:
    path: Path
    method: str  # "pip" or "link"
    requirements: list[str]  # pinned, e.g. ["numpy==2.4.6"]

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"


def _canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _req_name(req: str) -> str | None:
    """Distribution name of a requirement string; None for extras-only ones."""
    spec, _, marker = req.partition(";")
    if "extra" in marker:
        return None
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
    return match.group(1) if match else None


def _host_dist(name: str) -> metadata.Distribution:
    try:
        return metadata.distribution(name)
    except metadata.PackageNotFoundError:
        raise UserError(f"the decoder needs {name}, which is not installed on this machine") from None


def runtime_closure(runtime: list[str]) -> dict[str, metadata.Distribution]:
    """The runtime distributions plus everything they require, as installed on the host.

    Requirements behind an `extra` marker are skipped; a requirement that is not
    installed is assumed to be for another platform (its marker is false here).
    """
    found: dict[str, metadata.Distribution] = {}
    todo = [n for n in (_req_name(r) for r in runtime) if n]
    for name in todo:  # top-level names must be installed
        _host_dist(name)
    while todo:
        name = todo.pop()
        if _canon(name) in found:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        found[_canon(name)] = dist
        todo.extend(n for n in (_req_name(r) for r in dist.requires or []) if n)
    return found


def pinned_requirements(runtime: list[str]) -> list[str]:
    return sorted(f"{name}=={dist.version}" for name, dist in runtime_closure(runtime).items())


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "hutter-pipeline" / "venvs"


def venv_key(requirements: list[str]) -> str:
    """Same pins + same interpreter -> same venv."""
    ident = {"python": sys.version, "executable": os.path.realpath(sys.executable), "pins": requirements}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def ensure_venv(runtime: list[str]) -> Venv:
    """The cached clean venv for this runtime, built atomically on first use."""
    requirements = pinned_requirements(runtime)
    final = cache_root() / venv_key(requirements)
    if (final / MARKER_FILE).is_file():
        return _load_venv(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        names = {r.split("==")[0] for r in requirements}
        method = "link" if names & LINK_ONLY else "pip"
        if method == "pip" and not _build(tmp, requirements, "pip"):
            shutil.rmtree(tmp)
            method = "link"
        if method == "link":
            _build(tmp, requirements, "link", runtime)
        (tmp / MARKER_FILE).write_text(json.dumps({"method": method, "requirements": requirements}))
        try:
            os.rename(tmp, final)
        except OSError:  # a concurrent verify got there first: use theirs
            if not (final / MARKER_FILE).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _load_venv(final)


def _load_venv(path: Path) -> Venv:
    marker = json.loads((path / MARKER_FILE).read_text())
    return Venv(path=path, method=marker["method"], requirements=marker["requirements"])


def _site_packages(venv_dir: Path) -> Path:
    return venv_dir / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


def _build(path: Path, requirements: list[str], method: str, runtime: list[str] | None = None) -> bool:
    """Create the venv at `path` by `method`; False when pip could not install."""
    # symlinks=True: bin/python points at the host interpreter, so the venv
    # keeps working after the rename from its temporary name.
    venv.create(path, with_pip=False, symlinks=True, clear=True)
    if method == "pip":
        return _pip_install(path, requirements)
    _link_install(path, runtime or [])
    return True


def _pip_install(path: Path, requirements: list[str]) -> bool:
    if not requirements:
        return True
    cmd = [sys.executable, "-m", "pip", "--python", str(path / "bin" / "python"), "install", *PIP_FLAGS, *requirements]
    done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    return done.returncode == 0


def _top_level_entries(dist: metadata.Distribution) -> set[str]:
    """Top-level names a distribution put in site-packages (numpy, numpy.libs, numpy-X.dist-info)."""
    entries = {f.parts[0] for f in dist.files or [] if f.parts and f.parts[0] != ".."}
    entries.discard("__pycache__")
    return entries


def _link_install(path: Path, runtime: list[str]) -> None:
    site = _site_packages(path)
    for dist in runtime_closure(runtime).values():
        base = Path(dist.locate_file(""))
        for entry in _top_level_entries(dist):
            source = base / entry
            if source.exists() and not (site / entry).exists():
                (site / entry).symlink_to(source)


# ---------------------------------------------------------------------- sandbox


@dataclass
class RunResult:
    pid: int
    returncode: int
    seconds: float
    peak_rss: int  # bytes
    timed_out: bool
    stdout: str
    stderr: str


@dataclass
class Sandbox:
    """How the decoder is run; everything here goes into the report."""

    venv: Venv
    threads: int = 1
    network_prefix: list[str] = field(default_factory=list)

    @property
    def network_cut(self) -> bool:
        return bool(self.network_prefix)

    def env(self, home: Path) -> dict[str, str]:
        env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}
        env.update({var: str(self.threads) for var in THREAD_VARS})
        return env

    def argv(self, *args: str) -> list[str]:
        return [*self.network_prefix, str(self.venv.python), "-I", *args]


def make_sandbox(venv_: Venv, threads: int = 1) -> Sandbox:
    return Sandbox(venv=venv_, threads=threads, network_prefix=list(network_prefix()))


@cache
def network_prefix() -> tuple[str, ...]:
    """`unshare --net` (root) or with --map-root-user (rootless); () if neither works."""
    unshare = shutil.which("unshare")
    if not unshare:
        return ()
    for flags in (["--net"], ["--net", "--map-root-user"]):
        try:
            ok = subprocess.run([unshare, *flags, "--", "true"], capture_output=True, timeout=30).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            ok = False
        if ok:
            return (unshare, *flags, "--")
    return ()


def run_sandboxed(sandbox: Sandbox, args: list[str], workdir: Path, timeout: float | None = None) -> RunResult:
    """Run the venv python with `args` in `workdir` (cwd and HOME), measuring time and peak RSS.

    `unshare` execs the command in place (no --fork), so the pid we wait on is
    python's and os.wait4's rusage is the decoder's own (plus any children it reaped).
    """
    logs = Path(tempfile.mkdtemp(prefix="verify-logs-"))
    try:
        with open(logs / "stdout", "wb") as out, open(logs / "stderr", "wb") as err:
            start = time.monotonic()
            proc = subprocess.Popen(
                sandbox.argv(*args), cwd=workdir, env=sandbox.env(workdir),
                stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True,
            )
            status, usage, timed_out = _wait(proc, start, timeout)
            seconds = time.monotonic() - start
        return RunResult(
            pid=proc.pid, returncode=proc.returncode, seconds=seconds, peak_rss=usage.ru_maxrss * 1024,
            timed_out=timed_out,
            stdout=(logs / "stdout").read_text(errors="replace"),
            stderr=(logs / "stderr").read_text(errors="replace"),
        )
    finally:
        shutil.rmtree(logs, ignore_errors=True)


def _wait(proc: subprocess.Popen, start: float, timeout: float | None):
    """Reap `proc` with wait4, killing its process group once past `timeout`.

    Polling (rather than a timer thread) means we only ever signal a pid we
    have not reaped yet, so we can never hit a recycled pid.
    """
    timed_out = False
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if timeout is not None and not timed_out and time.monotonic() - start > timeout:
            os.killpg(proc.pid, signal.SIGKILL)
            timed_out = True
        time.sleep(0.005)
    proc.returncode = os.waitstatus_to_exitcode(status)  # tell Popen it is reaped
    return status, usage, timed_out


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


def probe(sandbox: Sandbox, workdir: Path) -> dict:
    """Ask the clean env's python (same flags, cwd, env) what it can see."""
    names = sorted({r.split("==")[0] for r in sandbox.venv.requirements})
    code = f"NAMES = {names!r}\nPROJECT = {list(PROJECT_MODULES)!r}\n{PROBE}"
    result = run_sandboxed(sandbox, ["-c", code], workdir, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"clean-env probe failed: {result.stderr.strip()}")
    return json.loads(result.stdout)


@dataclass
class Decode:
    result: RunResult
    facts: dict  # what the probe saw inside the sandbox


def decode(sandbox: Sandbox, archive: Path, output: Path, timeout: float | None = None) -> Decode:
    """Run `python -I ARCHIVE -o OUTPUT` from an empty dir holding only a copy of the archive."""
    with tempfile.TemporaryDirectory(prefix="verify-run-") as tmp:
        workdir = Path(tmp)
        copy = workdir / archive.name
        shutil.copyfile(archive, copy)
        facts = probe(sandbox, workdir)
        result = run_sandboxed(sandbox, [str(copy), "-o", str(output)], workdir, timeout)
    return Decode(result=result, facts=facts)
