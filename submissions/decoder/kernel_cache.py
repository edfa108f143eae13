"""On-disk cache of compiled kernels, for source files only (this package, and the copies
pipeline/decoder_variant.py writes): archives run their decoder from memory, compile every
time, and never carry this module."""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

import numba


@functools.lru_cache(maxsize=None)
def cache_dir() -> str:
    """Where compiled kernels are kept: one folder per version of this package's source.
    numba checks only the file that defines a kernel, not the kernels it calls from other
    modules, so a change there would leave stale machine code in a shared cache."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(package.glob("*.py")))).hexdigest()[:16]
    return os.path.join(cache_root(), "numba", digest)


def cache_root() -> str:
    """The project's folder in the user's cache ($XDG_CACHE_HOME, else ~/.cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "hutter-pipeline")


def cached_njit(function, **options):
    """numba.njit(cache=True) into cache_dir(): numba reads its cache folder when a kernel is
    defined, so it points there meanwhile."""
    saved = numba.config.CACHE_DIR
    numba.config.CACHE_DIR = cache_dir()
    try:
        return numba.njit(cache=True, **options)(function)
    finally:
        numba.config.CACHE_DIR = saved
