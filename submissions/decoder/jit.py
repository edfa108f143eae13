"""Compiled kernels: numba's @njit, or the same source as plain Python (the reference).

With NUMBA_DISABLE_JIT=1 every kernel runs as ordinary Python over numpy scalars; a test
codes the same input both ways and compares the bytes, so the source is its own reference.

Rules the kernels follow, because numba and numpy type mixed integers differently:
- read every array element through I(...) or U(...) (numpy would keep uint32 + 1 a uint32;
  numba makes it an int64);
- hashes are uint64 (mixing.U) and meet only uint64 operands (numba turns uint64 + int64 into
  float64); constants are U(...) globals;
- store only values that fit the array's type.
"""

from __future__ import annotations

import time

import numpy as np

try:
    import numba
except ImportError:  # archives of the neural model alone need no kernels: they run without numba
    numba = None

I = np.int64  # noqa: E741 (short on purpose: kernels use it everywhere)
COMPILE_SECONDS = [0.0]  # first-call time of the kernels, JIT compilation mostly (reports)


def _njit(function, **options):
    """numba.njit, cached on disk where the source is a file (the project: kernel_cache.py);
    archives run from memory, where there is nothing to cache."""
    if "__file__" not in function.__globals__:
        return numba.njit(**options)(function)
    from .kernel_cache import cached_njit

    return cached_njit(function, **options)


def kernel(function):
    """@njit for a function that only other kernels call: no Python entry point to build
    (most of the compile time of a small function). Without numba, the plain function."""
    if numba is None:
        return function
    return _njit(function, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, _nrt=False)


def entry(function, allocates: bool = False):
    """@njit for a kernel that Python calls (allocates: it creates arrays, which needs numba's
    reference counting; the others run without it, which makes array access much cheaper)."""
    if numba is None:
        return function
    return _njit(function, nogil=True, _nrt=allocates)


def timed_first_call(dispatcher, *args):
    """Call a kernel, counting the first call's seconds (compilation) in COMPILE_SECONDS."""
    if getattr(dispatcher, "signatures", True):
        return dispatcher(*args)
    started = time.perf_counter()
    result = dispatcher(*args)
    COMPILE_SECONDS[0] += time.perf_counter() - started
    return result

