"""The GPU-side frequency path (torch_freqs) gives exactly what the numpy coder gives.

Run here on CPU tensors; the same code runs on CUDA in the lent-GPU session
(benchmarks/gpu_session.sh), where only the device differs.
"""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from submissions.decoder import codec, encoding
from submissions.decoder.context_model import ContextModel
from submissions.decoder.encoding import symbol_intervals, symbol_intervals_torch
from submissions.decoder.frequencies import locate_symbols, normalize_frequencies
from submissions.decoder.torch_freqs import locate_symbols_torch, normalize_frequencies_torch


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 300), st.integers(1, 8), st.integers(9, 31), st.integers(0, 2**32 - 1), st.integers(1, 60))
def test_normalize_matches_numpy(vocab, rows, prob_bits, seed, magnitude):
    prob_bits = max(prob_bits, vocab.bit_length())
    rng = np.random.default_rng(seed)
    weights = rng.integers(0, 2 ** min(magnitude, 62 - max(1, vocab.bit_length())), size=(rows, vocab), dtype=np.int64)
    weights[:, rng.integers(0, vocab)] += 1
    weights[0, :] = weights[0, 0] + 1  # a row of ties: the remainder goes to the first maximum
    expected = normalize_frequencies(weights, prob_bits)
    np.testing.assert_array_equal(normalize_frequencies_torch(torch.from_numpy(weights), prob_bits).numpy(), expected)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 200), st.integers(1, 8), st.integers(0, 2**32 - 1))
def test_intervals_and_lookup_match_numpy(vocab, rows, seed):
    rng = np.random.default_rng(seed)
    freqs = normalize_frequencies(rng.integers(0, 1000, size=(rows, vocab)) + 1, 24)
    symbols = rng.integers(0, vocab, size=rows)
    for got, want in zip(symbol_intervals_torch(torch.from_numpy(freqs), symbols), symbol_intervals(freqs, symbols)):
        np.testing.assert_array_equal(got, want)
    slots = rng.integers(0, 1 << 24, size=rows).astype(np.uint64)
    for got, want in zip(locate_symbols_torch(torch.from_numpy(freqs), slots), locate_symbols(freqs, slots)):
        np.testing.assert_array_equal(np.asarray(got, dtype=np.int64), np.asarray(want, dtype=np.int64))


class TorchFrequencies:
    """A model whose frequencies come back as torch tensors, as a CUDA model's do."""

    def __init__(self, inner):
        self.inner = inner

    def step(self, prev):
        return self.inner.step(prev)

    def step_native(self, prev):
        return torch.from_numpy(self.inner.step(prev))


def test_codec_round_trips_between_numpy_and_torch_frequencies():
    tokens = np.frombuffer(b"the cat sat on the mat; " * 80, dtype=np.uint8).astype(np.int64)
    numpy_payload = encoding.encode(ContextModel(256, 5, 28), tokens, 5, 28)
    torch_payload = encoding.encode(TorchFrequencies(ContextModel(256, 5, 28)), tokens, 5, 28)
    assert torch_payload == numpy_payload
    decoded = codec.decode(TorchFrequencies(ContextModel(256, 5, 28)), numpy_payload, len(tokens), 5, 28)
    np.testing.assert_array_equal(decoded, tokens)
