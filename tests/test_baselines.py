"""Baselines are measured with a checked round trip; missing tools are reported, not skipped."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from pipeline.baselines import BASELINES, BaselineResult, Compressor, measure, measure_all
from submissions.errors import UserError

AVAILABLE = [name for name, c in BASELINES.items() if c.available()]
EXTERNAL = ["xz -9e", "zstd -22 --ultra --long=27", "7z PPMd", "zpaq -method 5"]


@functools.lru_cache(maxsize=None)
def _sample_slice() -> bytes:
    from pipeline.data import sample_bytes

    return sample_bytes()[:60_000]


def _data(kind: str, text_sample: bytes) -> bytes:
    if kind == "empty":
        return b""
    if kind == "random":
        return np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    return text_sample if kind == "enwik" else _sample_slice()


@pytest.mark.parametrize("name", AVAILABLE)
@pytest.mark.parametrize("kind", ["empty", "random", "enwik", "sample"])
def test_available_baselines_round_trip(name, kind, text_sample):
    data = _data(kind, text_sample)
    result = measure(BASELINES[name], data)
    assert result.available and result.round_trip_ok, result.error
    assert result.error is None and result.original_bytes == len(data)
    assert result.compressed_bytes is not None and result.compressed_bytes > 0
    assert result.compress_seconds >= 0 and result.decompress_seconds >= 0
    if kind == "empty":
        assert result.bits_per_byte is None
    if kind == "random":
        assert result.bits_per_byte > 7.9  # nobody compresses random bytes
    if kind in ("enwik", "sample"):
        assert result.bits_per_byte < 4.5


def test_the_registry_has_the_standard_compressors():
    for name in ("lzma-9e", "bz2-9", "zlib-9", "zstd-22", "brotli-11", *EXTERNAL):
        assert BASELINES[name].name == name
    assert {"lzma-9e", "bz2-9", "zlib-9", "zstd-22"} <= set(AVAILABLE)  # stdlib and a declared dependency


def test_missing_tools_are_reported_not_found(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no external program is found
    results = measure_all(b"hello hello hello", ["zlib-9", *EXTERNAL])
    assert [r.name for r in results] == ["zlib-9", *EXTERNAL]
    assert results[0].available and results[0].round_trip_ok
    for result in results[1:]:
        assert result == BaselineResult(result.name, available=False, original_bytes=17)

    ghost = Compressor("ghost", lambda d: d, lambda b: b, available=lambda: False)
    assert not measure(ghost, b"data").available


def test_measure_all_defaults_to_every_baseline_and_rejects_unknown_names(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # keep it fast: no external programs
    assert [r.name for r in measure_all(b"abc")] == list(BASELINES)
    assert measure_all(b"abc", []) == []
    with pytest.raises(UserError, match="unknown baseline 'gzip'"):
        measure_all(b"abc", ["zlib-9", "gzip"])


def test_a_broken_round_trip_is_a_failure_not_a_size():
    liar = Compressor("liar", lambda d: d[:1], lambda b: b)
    result = measure(liar, b"more than one byte")
    assert result.available and not result.round_trip_ok
    assert result.compressed_bytes is None and result.bits_per_byte is None and "differ" in result.error

    def crash(blob: bytes) -> bytes:
        raise RuntimeError("tool crashed")

    result = measure(Compressor("crash", lambda d: d, crash), b"data")
    assert not result.round_trip_ok and result.compressed_bytes is None and "tool crashed" in result.error


@pytest.mark.skipif(not BASELINES["xz -9e"].available(), reason="xz is not on PATH")
def test_python_lzma_matches_xz_at_the_same_preset(text_sample):
    assert measure(BASELINES["xz -9e"], text_sample).compressed_bytes == measure(BASELINES["lzma-9e"], text_sample).compressed_bytes
