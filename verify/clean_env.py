"""The clean virtual environment an archive is decoded with.

`ensure_venv(runtime)` builds (once, then caches) a virtual environment that
holds only the decoder's runtime distributions, pinned to the host's versions
so the decoder computes exactly what the encoder computed. The sandbox
(`verify/sandbox.py`) shows it to the decoder read-only, and only the files of
those distributions (`runtime_entries`).

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
import subprocess
import sys
import tempfile
import venv
from dataclasses import dataclass
from pathlib import Path

from submissions.errors import UserError

PROJECT_MODULES = ("pipeline", "tokenizer", "models", "submissions", "verify")
# Distributions never pip-installed: huge wheels, host-specific builds.
LINK_ONLY = {"torch"}
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
    """The cached clean venv for this runtime, built atomically on first use, and again when
    something foreign appeared in it (a .pth an --unsandboxed archive planted)."""
    requirements = pinned_requirements(runtime)
    final = cache_root() / venv_key(requirements)
    if (final / MARKER_FILE).is_file():
        cached = _load_venv(final)
        if not foreign_entries(cached):
            return cached
        _discard(final)
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


def foreign_entries(venv_: Venv) -> list[Path]:
    """What the venv's site-packages holds beyond its distributions' own files."""
    site = _site_packages(venv_.path)
    if not site.is_dir():
        return []
    own = set(runtime_entries(venv_)) | {site / "__pycache__"}
    return sorted(set(site.iterdir()) - own)


def _discard(path: Path) -> None:
    """Move a cached venv out of the way (a concurrent verify keeps what it has open), then delete it."""
    trash = Path(tempfile.mkdtemp(prefix=f".{path.name}.discarded.", dir=path.parent))
    try:
        os.rename(path, trash / "venv")
    except OSError:
        pass  # a concurrent verify moved it first
    shutil.rmtree(trash, ignore_errors=True)


def runtime_entries(venv_: Venv) -> list[Path]:
    """The venv's site-packages entries that belong to its pinned distributions: what a
    sandbox shows of it. Anything else there (a .pth someone planted) is left out."""
    site = _site_packages(venv_.path)
    wanted = {_canon(r.split("==")[0]) for r in venv_.requirements}
    entries: set[str] = set()
    for dist in metadata.distributions(path=[str(site)]):
        if _canon(dist.metadata["Name"]) in wanted:
            entries |= _top_level_entries(dist)
    return [site / name for name in sorted(entries) if (site / name).exists()]
