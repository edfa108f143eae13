"""Baselines are measured with a checked round trip; missing tools are reported, not skipped."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.baselines import BASELINES, Compressor, measure, measure_all

AVAILABLE = [name for name, c in BASELINES.items() if c.available()]


@pytest.mark.parametrize("name", AVAILABLE)
@pytest.mark.parametrize("kind", ["empty", "random", "text"])
def test_available_baselines_round_trip(name, kind, text_sample):
    data = {"empty": b"", "random": np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes(), "text": text_sample}[kind]
    result = measure(BASELINES[name], data)
    assert result.available and result.round_trip_ok
    assert result.compressed_bytes is not None and result.compressed_bytes > 0
    if kind == "text":
        assert result.bits_per_byte < 4.5


def test_missing_tool_is_reported_not_found():
    ghost = Compressor("ghost", lambda d: d, lambda b: b, available=lambda: False)
    result = measure(ghost, b"data")
    assert not result.available and result.compressed_bytes is None
    names = [r.name for r in measure_all(b"hello", ["zlib-9", "lzma-9e"])]
    assert names == ["zlib-9", "lzma-9e"]


def test_a_broken_round_trip_is_a_failure_not_a_size():
    liar = Compressor("liar", lambda d: d[:1], lambda b: b)
    result = measure(liar, b"more than one byte")
    assert result.available and not result.round_trip_ok and result.compressed_bytes is None


@pytest.mark.skipif(not BASELINES["xz -9e"].available(), reason="xz is not on PATH")
def test_python_lzma_matches_xz_at_the_same_preset(text_sample):
    assert measure(BASELINES["xz -9e"], text_sample).compressed_bytes == measure(BASELINES["lzma-9e"], text_sample).compressed_bytes
