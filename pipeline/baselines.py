"""Standard compressors behind one interface, measured the same way as our archives.

Each baseline is round-trip checked; one that fails is reported as failed, never
as a size. External programs are used when they are on PATH and reported as not
found otherwise.
"""

from __future__ import annotations

import bz2
import lzma
import shutil
import subprocess
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional


@dataclass(frozen=True)
class Compressor:
    name: str
    compress: Callable[[bytes], bytes]
    decompress: Callable[[bytes], bytes]
    available: Callable[[], bool] = lambda: True


@dataclass(frozen=True)
class BaselineResult:
    name: str
    available: bool
    compressed_bytes: Optional[int] = None
    bits_per_byte: Optional[float] = None
    compress_seconds: Optional[float] = None
    decompress_seconds: Optional[float] = None
    round_trip_ok: bool = False


def _zstd_compress(data: bytes) -> bytes:
    import zstandard

    window_log = max(10, min(27, max(len(data), 1).bit_length()))
    params = zstandard.ZstdCompressionParameters.from_level(22, window_log=window_log, enable_ldm=True)
    return zstandard.ZstdCompressor(compression_params=params).compress(data)


def _zstd_decompress(blob: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdDecompressor(max_window_size=1 << 27).decompress(blob)


def _module_available(name: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            __import__(name)
            return True
        except ImportError:
            return False

    return check


def _pipe(command: list[str]) -> Callable[[bytes], bytes]:
    """A filter program: bytes on stdin, result on stdout."""
    return lambda data: subprocess.run(command, input=data, capture_output=True, check=True).stdout


def _in_tmp(steps: Callable[[Path], bytes]) -> bytes:
    with tempfile.TemporaryDirectory(prefix="baseline-") as tmp:
        return steps(Path(tmp))


def _quiet(command: list[str], cwd: Path) -> None:
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _7z_compress(data: bytes) -> bytes:
    def steps(tmp: Path) -> bytes:
        (tmp / "data").write_bytes(data)
        _quiet(["7z", "a", "-m0=PPMd", "-mx=9", "data.7z", "data"], tmp)
        return (tmp / "data.7z").read_bytes()

    return _in_tmp(steps)


def _7z_decompress(blob: bytes) -> bytes:
    def steps(tmp: Path) -> bytes:
        (tmp / "data.7z").write_bytes(blob)
        return subprocess.run(["7z", "e", "-so", "data.7z"], cwd=tmp, capture_output=True, check=True).stdout

    return _in_tmp(steps)


def _zpaq_compress(data: bytes) -> bytes:
    def steps(tmp: Path) -> bytes:
        (tmp / "data").write_bytes(data)
        _quiet(["zpaq", "a", "data.zpaq", "data", "-method", "5"], tmp)
        return (tmp / "data.zpaq").read_bytes()

    return _in_tmp(steps)


def _zpaq_decompress(blob: bytes) -> bytes:
    def steps(tmp: Path) -> bytes:
        (tmp / "data.zpaq").write_bytes(blob)
        _quiet(["zpaq", "x", "data.zpaq", "-to", "out"], tmp)
        return (tmp / "out" / "data").read_bytes()

    return _in_tmp(steps)


def _on_path(program: str) -> Callable[[], bool]:
    return lambda: shutil.which(program) is not None


BASELINES: dict[str, Compressor] = {
    c.name: c
    for c in (
        Compressor("lzma-9e", lambda d: lzma.compress(d, preset=9 | lzma.PRESET_EXTREME), lzma.decompress),
        Compressor("bz2-9", lambda d: bz2.compress(d, 9), bz2.decompress),
        Compressor("zlib-9", lambda d: zlib.compress(d, 9), zlib.decompress),
        Compressor("zstd-22", _zstd_compress, _zstd_decompress, _module_available("zstandard")),
        Compressor(
            "brotli-11",
            lambda d: __import__("brotli").compress(d, quality=11, lgwin=24),
            lambda b: __import__("brotli").decompress(b),
            _module_available("brotli"),
        ),
        Compressor("xz -9e", _pipe(["xz", "-9e", "-c"]), _pipe(["xz", "-d", "-c"]), _on_path("xz")),
        Compressor(
            "zstd -22 --long",
            _pipe(["zstd", "-22", "--ultra", "--long=27", "-c", "-q"]),
            _pipe(["zstd", "-d", "--long=27", "-c", "-q"]),
            _on_path("zstd"),
        ),
        Compressor("7z PPMd", _7z_compress, _7z_decompress, _on_path("7z")),
        Compressor("zpaq -method 5", _zpaq_compress, _zpaq_decompress, _on_path("zpaq")),
    )
}


def measure(compressor: Compressor, data: bytes) -> BaselineResult:
    """Compress, decompress, check the round trip; time both directions."""
    if not compressor.available():
        return BaselineResult(compressor.name, available=False)
    started = time.perf_counter()
    try:
        blob = compressor.compress(data)
        packed = time.perf_counter()
        restored = compressor.decompress(blob)
    except (OSError, subprocess.CalledProcessError, ValueError, lzma.LZMAError, zlib.error) as exc:
        del exc  # a failed tool is a failed row, not a crash of the whole board
        return BaselineResult(compressor.name, available=True, round_trip_ok=False)
    unpacked = time.perf_counter()
    ok = restored == data
    return BaselineResult(
        compressor.name,
        available=True,
        compressed_bytes=len(blob) if ok else None,
        bits_per_byte=8 * len(blob) / len(data) if ok and data else None,
        compress_seconds=packed - started,
        decompress_seconds=unpacked - packed,
        round_trip_ok=ok,
    )


def measure_all(data: bytes, names: Optional[list[str]] = None) -> list[BaselineResult]:
    """Every requested baseline (all by default); unavailable ones come back as not found."""
    return [measure(BASELINES[name], data) for name in (names or list(BASELINES))]
