"""Standard compressors behind one interface, measured the same way as our archives.

Each baseline is round-trip checked; one that fails is reported as failed, never as a
size. Python's own codecs are always there; zstandard and brotli when their modules
import; external programs (xz, zstd, 7z, zpaq, and paq8px, cmix, nncp when a user has built
them) when they are on PATH, run on temp files exactly as a user would run them, with their
strongest documented text options. A missing one is reported as not found, not skipped.

Peak memory (pipeline/memory.py): an external program's own peak RSS (wait4); for a Python
module, how far the work pushed this process's peak RSS. Each result names its method.

Public API:

    Compressor(name, compress, decompress, available, command)   .available() -> bool
    BaselineResult(name, available, original_bytes, compressed_bytes, bits_per_byte,
                   compress_seconds, decompress_seconds, round_trip_ok, error,
                   compress_peak_bytes, decompress_peak_bytes, memory_method, command)
    BASELINES: dict[str, Compressor]; EXTERNAL: the names of the external programs
    measure(compressor, data) -> BaselineResult
    measure_all(data, names=None, progress=None) -> list[BaselineResult]
"""

from __future__ import annotations

import bz2
import importlib
import lzma
import shutil
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from submissions.errors import UserError
from pipeline.memory import peak_memory, run_program


def _always() -> bool:
    return True


@dataclass(frozen=True)
class Compressor:
    name: str
    compress: Callable[[bytes], bytes]
    decompress: Callable[[bytes], bytes]
    available: Callable[[], bool] = _always
    command: Optional[str] = None  # how it is run (an external program's command lines), for the table's legend


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
    compress_peak_bytes: Optional[int] = None
    decompress_peak_bytes: Optional[int] = None
    memory_method: Optional[str] = None  # pipeline.memory.PROCESS_RSS or RSS_GROWTH
    command: Optional[str] = None

    @property
    def peak_bytes(self) -> Optional[int]:
        """The larger of the compress and decompress peaks."""
        peaks = [p for p in (self.compress_peak_bytes, self.decompress_peak_bytes) if p is not None]
        return max(peaks) if peaks else None


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
    dictionary: Optional[str] = None  # a file beside the (resolved) program, passed first when present (cmix)

    def program(self) -> Optional[str]:
        return next((path for name in self.programs if (path := shutil.which(name))), None)

    def available(self) -> bool:
        return self.program() is not None

    def args(self, args: tuple[str, ...], program: str) -> tuple[str, ...]:
        """The arguments as run: the dictionary, when there is one, right after the mode."""
        found = Path(program).resolve().parent / self.dictionary if self.dictionary else None
        return (args[0], str(found), *args[1:]) if found is not None and found.is_file() else args

    def command(self) -> str:
        """Both command lines (for the table's legend)."""
        program = self.program() or self.programs[0]
        name = Path(program).name
        return f"{name} {' '.join(self.args(self.pack, program))}; {name} {' '.join(self.args(self.unpack, program))}"

    def _run(self, args: tuple[str, ...], source: str, payload: bytes, result: str) -> bytes:
        program = self.program()
        if program is None:
            raise FileNotFoundError(f"{self.programs[0]} is not on PATH")
        with tempfile.TemporaryDirectory(prefix="baseline-") as tmp:
            (Path(tmp) / source).write_bytes(payload)
            done = run_program([program, *self.args(args, program)], cwd=Path(tmp))  # wait4: its own peak RSS
            if done.returncode != 0:
                message = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()
                raise RuntimeError(f"{Path(program).name} exited {done.returncode}: {message[-1] if message else ''}")
            output = Path(tmp) / result
            if not output.is_file():
                raise RuntimeError(f"{Path(program).name} exited 0 but wrote no {result}")
            return output.read_bytes()

    def compress(self, data: bytes) -> bytes:
        return self._run(self.pack, "data", data, self.archive)

    def decompress(self, blob: bytes) -> bytes:
        return self._run(self.unpack, self.archive, blob, "data")


_XZ = _Tool(("xz",), "data.xz", ("-9e", "-T1", "-q", "data"), ("-d", "-q", "data.xz"))  # -T1: one block, like lzma
_ZSTD = _Tool(("zstd",), "data.zst", ("-22", "--ultra", "--long=27", "-q", "data"), ("-d", "--long=27", "-q", "data.zst"))
_7Z = _Tool(("7z", "7zz", "7za"), "data.7z", ("a", "-m0=PPMd", "-mx=9", "-bd", "-y", "data.7z", "data"), ("e", "-bd", "-y", "data.7z"))
_ZPAQ = _Tool(("zpaq",), "data.zpaq", ("a", "data.zpaq", "data", "-method", "5"), ("x", "data.zpaq"))
# Built by users from source; each with the strongest options its documentation gives for text.
# paq8px: level 12 + LSTM, its Large Text Compression Benchmark setting (not -T: that flag needs
# english.dic/english.exp beside the archive again to decompress).
_PAQ8PX = _Tool(("paq8px",), "data.paq8px", ("-12L", "data", "data.paq8px"), ("-d", "data.paq8px", "data"))
# cmix: with the English dictionary of its source tree (dictionary/english.dic) when it is there.
_CMIX = _Tool(("cmix",), "data.cmix", ("-c", "data", "data.cmix"), ("-d", "data.cmix", "data"), dictionary="dictionary/english.dic")
# nncp v3.2: its README's enwik8 model and preprocessing, on the CPU (a GPU needs --cuda; same bytes).
_NNCP = _Tool(("nncp",), "data.nncp", ("--profile", "enwik8", "--preprocess", "4096,512", "c", "data", "data.nncp"), ("d", "data.nncp", "data"))


def _external(name: str, tool: _Tool) -> Compressor:
    # the command is looked up when the registry is built: put a tool on PATH before importing this
    return Compressor(name, tool.compress, tool.decompress, tool.available, command=tool.command())


BASELINES: dict[str, Compressor] = {
    c.name: c
    for c in (
        Compressor("lzma-9e", lambda d: lzma.compress(d, preset=9 | lzma.PRESET_EXTREME), lzma.decompress,
                   command="Python lzma.compress(preset=9 | PRESET_EXTREME), .xz container"),
        Compressor("bz2-9", lambda d: bz2.compress(d, 9), bz2.decompress, command="Python bz2.compress(compresslevel=9)"),
        Compressor("zlib-9", lambda d: zlib.compress(d, 9), zlib.decompress, command="Python zlib.compress(level=9)"),
        Compressor("zstd-22", _zstd_compress, _zstd_decompress, _module_available("zstandard"),
                   command=f"Python zstandard level 22, window up to 2^{ZSTD_MAX_WINDOW_LOG} (fitted to the input), long-distance matching"),
        Compressor("brotli-11", _brotli_compress, _brotli_decompress, _module_available("brotli"),
                   command="Python brotli quality 11, lgwin 24 (the module's largest window; it has no large-window mode)"),
        _external("xz -9e", _XZ),
        _external("zstd -22 --ultra --long=27", _ZSTD),
        _external("7z PPMd", _7Z),
        _external("zpaq -method 5", _ZPAQ),
        _external("paq8px -12L", _PAQ8PX),
        _external("cmix", _CMIX),
        _external("nncp", _NNCP),
    )
}
EXTERNAL = ("xz -9e", "zstd -22 --ultra --long=27", "7z PPMd", "zpaq -method 5", "paq8px -12L", "cmix", "nncp")


# --- measuring -----------------------------------------------------------------------------


def measure(compressor: Compressor, data: bytes) -> BaselineResult:
    """Compress, decompress, check the round trip; time both directions."""
    if not compressor.available():
        return BaselineResult(compressor.name, available=False, original_bytes=len(data))
    try:
        with peak_memory() as packing:
            started = time.perf_counter()
            blob = compressor.compress(data)
            packed = time.perf_counter()
        with peak_memory() as unpacking:
            restored = compressor.decompress(blob)
            unpacked = time.perf_counter()
    except Exception as exc:  # a broken tool is a failed row, not a crash of the whole board
        return BaselineResult(compressor.name, True, len(data), error=f"{type(exc).__name__}: {exc}", command=compressor.command)
    facts = {  # a program's own run time when it was one (without temp files and the measuring helper)
        "compress_seconds": packing.program_seconds if packing.program_seconds is not None else packed - started,
        "decompress_seconds": unpacking.program_seconds if unpacking.program_seconds is not None else unpacked - packed,
        "compress_peak_bytes": packing.bytes,
        "decompress_peak_bytes": unpacking.bytes,
        "memory_method": packing.method or unpacking.method,
        "command": compressor.command,
    }
    if restored != data:
        error = f"round trip gave {len(restored):,} bytes that differ from the {len(data):,} input bytes"
        return BaselineResult(compressor.name, True, len(data), error=error, **facts)
    return BaselineResult(
        compressor.name,
        available=True,
        original_bytes=len(data),
        compressed_bytes=len(blob),
        bits_per_byte=8 * len(blob) / len(data) if data else None,
        round_trip_ok=True,
        **facts,
    )


def measure_all(
    data: bytes, names: Optional[list[str]] = None, progress: Optional[Callable[[int, int, str], None]] = None
) -> list[BaselineResult]:
    """The requested baselines (all by default), in order; unavailable ones come back available=False.
    `progress(done, total, name being measured)` drives a bar (paq8px and cmix take hours on enwik8)."""
    names = list(BASELINES) if names is None else names
    unknown = [name for name in names if name not in BASELINES]
    if unknown:
        raise UserError(f"unknown baseline {', '.join(map(repr, unknown))}; known: {', '.join(BASELINES)}")
    results = []
    for i, name in enumerate(names):
        if progress is not None:
            progress(i, len(names), name)
        results.append(measure(BASELINES[name], data))
    if progress is not None:
        progress(len(names), len(names), "")
    return results
