"""Standard compressors behind one interface, measured the same way as our archives.

Each baseline is round-trip checked; one that fails is reported as failed, never as a
size. Python's own codecs are always there; zstandard and brotli when their modules
import; external programs (xz, zstd, 7z, zpaq) when they are on PATH, run on temp files
exactly as a user would run them. A missing one is reported as not found, not skipped.

Public API:

    Compressor(name, compress, decompress, available)      .available() -> bool
    BaselineResult(name, available, original_bytes, compressed_bytes, bits_per_byte,
                   compress_seconds, decompress_seconds, round_trip_ok, error)
    BASELINES: dict[str, Compressor]
    measure(compressor, data) -> BaselineResult
    measure_all(data, names=None) -> list[BaselineResult]
"""

from __future__ import annotations

import bz2
import importlib
import lzma
import shutil
import subprocess
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from pipeline.errors import UserError


def _always() -> bool:
    return True


@dataclass(frozen=True)
class Compressor:
    name: str
    compress: Callable[[bytes], bytes]
    decompress: Callable[[bytes], bytes]
    available: Callable[[], bool] = _always


@dataclass(frozen=True)
class BaselineResult:
    name: str
    available: bool  # False: the module or program is not on this machine
    original_bytes: int = 0
    compressed_bytes: Optional[int] = None  # None unless the round trip was exact
    bits_per_byte: Optional[float] = None  # None also for empty input
    compress_seconds: Optional[float] = None
    decompress_seconds: Optional[float] = None
    round_trip_ok: bool = False
    error: Optional[str] = None  # why the round trip failed, when it did


# --- Python modules ----------------------------------------------------------------------

ZSTD_MAX_WINDOW_LOG = 27  # the same long window as `zstd --long=27`; decoders accept it by default


def _zstd_compress(data: bytes) -> bytes:
    import zstandard

    # a window just large enough for the input (up to 128 MiB) plus long-distance matching
    window_log = max(10, min(ZSTD_MAX_WINDOW_LOG, max(len(data), 1).bit_length()))
    params = zstandard.ZstdCompressionParameters.from_level(22, source_size=len(data), window_log=window_log, enable_ldm=True)
    return zstandard.ZstdCompressor(compression_params=params).compress(data)


def _zstd_decompress(blob: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdDecompressor(max_window_size=1 << ZSTD_MAX_WINDOW_LOG).decompress(blob)


def _brotli_compress(data: bytes) -> bytes:
    # lgwin 24 (16 MiB) is the largest window of standard brotli; the Python module has no large-window mode
    return importlib.import_module("brotli").compress(data, quality=11, lgwin=24)


def _brotli_decompress(blob: bytes) -> bytes:
    return importlib.import_module("brotli").decompress(blob)


def _module_available(name: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            importlib.import_module(name)
            return True
        except ImportError:
            return False

    return check


# --- external programs, on temp files ------------------------------------------------------


@dataclass(frozen=True)
class _Tool:
    """A command-line compressor: `pack` turns the file `data` into `archive`, `unpack` turns
    `archive` back into `data`; both run inside a fresh temp folder, so nothing else is there."""

    programs: tuple[str, ...]  # the first one on PATH is used (e.g. 7z, 7zz or 7za)
    archive: str
    pack: tuple[str, ...]
    unpack: tuple[str, ...]

    def program(self) -> Optional[str]:
        return next((path for name in self.programs if (path := shutil.which(name))), None)

    def available(self) -> bool:
        return self.program() is not None

    def _run(self, args: tuple[str, ...], source: str, payload: bytes, result: str) -> bytes:
        program = self.program()
        if program is None:
            raise FileNotFoundError(f"{self.programs[0]} is not on PATH")
        with tempfile.TemporaryDirectory(prefix="baseline-") as tmp:
            (Path(tmp) / source).write_bytes(payload)
            done = subprocess.run([program, *args], cwd=tmp, stdin=subprocess.DEVNULL, capture_output=True)
            if done.returncode != 0:
                message = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()
                raise RuntimeError(f"{Path(program).name} exited {done.returncode}: {message[-1] if message else ''}")
            return (Path(tmp) / result).read_bytes()

    def compress(self, data: bytes) -> bytes:
        return self._run(self.pack, "data", data, self.archive)

    def decompress(self, blob: bytes) -> bytes:
        return self._run(self.unpack, self.archive, blob, "data")


_XZ = _Tool(("xz",), "data.xz", ("-9e", "-T1", "-q", "data"), ("-d", "-q", "data.xz"))  # -T1: one block, like lzma
_ZSTD = _Tool(("zstd",), "data.zst", ("-22", "--ultra", "--long=27", "-q", "data"), ("-d", "--long=27", "-q", "data.zst"))
_7Z = _Tool(("7z", "7zz", "7za"), "data.7z", ("a", "-m0=PPMd", "-mx=9", "-bd", "-y", "data.7z", "data"), ("e", "-bd", "-y", "data.7z"))
_ZPAQ = _Tool(("zpaq",), "data.zpaq", ("a", "data.zpaq", "data", "-method", "5"), ("x", "data.zpaq"))


def _external(name: str, tool: _Tool) -> Compressor:
    return Compressor(name, tool.compress, tool.decompress, tool.available)


BASELINES: dict[str, Compressor] = {
    c.name: c
    for c in (
        Compressor("lzma-9e", lambda d: lzma.compress(d, preset=9 | lzma.PRESET_EXTREME), lzma.decompress),
        Compressor("bz2-9", lambda d: bz2.compress(d, 9), bz2.decompress),
        Compressor("zlib-9", lambda d: zlib.compress(d, 9), zlib.decompress),
        Compressor("zstd-22", _zstd_compress, _zstd_decompress, _module_available("zstandard")),
        Compressor("brotli-11", _brotli_compress, _brotli_decompress, _module_available("brotli")),
        _external("xz -9e", _XZ),
        _external("zstd -22 --ultra --long=27", _ZSTD),
        _external("7z PPMd", _7Z),
        _external("zpaq -method 5", _ZPAQ),
    )
}


# --- measuring -----------------------------------------------------------------------------


def measure(compressor: Compressor, data: bytes) -> BaselineResult:
    """Compress, decompress, check the round trip; time both directions."""
    if not compressor.available():
        return BaselineResult(compressor.name, available=False, original_bytes=len(data))
    started = time.perf_counter()
    try:
        blob = compressor.compress(data)
        packed = time.perf_counter()
        restored = compressor.decompress(blob)
    except Exception as exc:  # a broken tool is a failed row, not a crash of the whole board
        return BaselineResult(compressor.name, True, len(data), error=f"{type(exc).__name__}: {exc}")
    unpacked = time.perf_counter()
    if restored != data:
        return BaselineResult(
            compressor.name, True, len(data), compress_seconds=packed - started, decompress_seconds=unpacked - packed,
            error=f"round trip gave {len(restored):,} bytes that differ from the {len(data):,} input bytes",
        )
    return BaselineResult(
        compressor.name,
        available=True,
        original_bytes=len(data),
        compressed_bytes=len(blob),
        bits_per_byte=8 * len(blob) / len(data) if data else None,
        compress_seconds=packed - started,
        decompress_seconds=unpacked - packed,
        round_trip_ok=True,
    )


def measure_all(data: bytes, names: Optional[list[str]] = None) -> list[BaselineResult]:
    """The requested baselines (all by default), in order; unavailable ones come back available=False."""
    names = list(BASELINES) if names is None else names
    unknown = [name for name in names if name not in BASELINES]
    if unknown:
        raise UserError(f"unknown baseline {', '.join(map(repr, unknown))}; known: {', '.join(BASELINES)}")
    return [measure(BASELINES[name], data) for name in names]
