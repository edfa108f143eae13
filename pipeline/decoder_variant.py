"""A copy of the decoder package with some modules swapped for others.

The kernels call each other by module globals, which numba binds when it compiles; a kernel
that should call another module's function than the package's needs a copy of every module on
the way. This writes one (the same files under another package name, `_decoder_<tag>`, each
swapped module's source taken from its replacement) into a folder of the user's cache named by
the sources' hash, and imports it from there. Being files, its kernels are cached on disk as
the package's own are (jit._njit, kernel_cache.py: a cache folder per version of the sources),
so only the first use compiles them (~8 s).
"""

from __future__ import annotations

import atexit
import hashlib
import importlib
import importlib.util
import shutil
import sys
import tempfile
from pathlib import Path

from submissions.archive import DECODER_DIR
from submissions.decoder.kernel_cache import cache_root
from submissions.fileio import atomic_write_text


def decoder_variant(swaps: dict[str, str]):
    """The package `_decoder_<tag>` (imported once per process): the decoder's modules, each
    module named in swaps (file stem) replaced by the one it maps to."""
    package = "_decoder_" + "_".join(f"{a}_as_{b}" for a, b in sorted(swaps.items()))
    if package not in sys.modules:
        sources = {path.stem: path.read_text("utf-8") for path in DECODER_DIR.glob("*.py")}
        sources.update({module: sources[replacement] for module, replacement in swaps.items()})
        folder = _written(package, sources)
        spec = importlib.util.spec_from_file_location(package, folder / "__init__.py", submodule_search_locations=[str(folder)])
        module = importlib.util.module_from_spec(spec)
        sys.modules[package] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[package]
            raise
    return importlib.import_module(package)


def _written(package: str, sources: dict[str, str]) -> Path:
    """The folder holding the package's files: in the user's cache, each file written once,
    atomically (processes that race write the same text; numba would at worst compile once
    more), and checked at every use; a temporary folder, removed at exit, where the cache
    cannot be written."""
    digest = hashlib.sha256(repr(sorted(sources.items())).encode("utf-8")).hexdigest()[:16]
    try:
        return _write(Path(cache_root()) / "variants" / digest / package, sources)
    except OSError:
        temporary = tempfile.mkdtemp(prefix="hutter-variant-")
        atexit.register(shutil.rmtree, temporary, ignore_errors=True)
        return _write(Path(temporary) / package, sources)


def _write(folder: Path, sources: dict[str, str]) -> Path:
    """Each source into folder, unless the file there already holds exactly that text (one that
    differs, damaged or edited, is written anew: the kernels compile from what is checked)."""
    folder.mkdir(parents=True, exist_ok=True)
    for stem, text in sources.items():
        path = folder / f"{stem}.py"
        if _text_of(path) != text:
            atomic_write_text(path, text)
    return folder


def _text_of(path: Path) -> str | None:
    try:
        return path.read_text("utf-8")
    except (FileNotFoundError, UnicodeDecodeError):
        return None
