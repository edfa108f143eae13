"""The rANS coder: exact round trips on any valid table, near-ideal size."""

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from submissions.decoder.encoding import RansEncoder
from submissions.decoder.frequencies import decode_symbols, normalize_frequencies
from submissions.decoder.rans import CorruptPayload, RansDecoder


def code_and_decode(tables: list[np.ndarray], symbols: list[np.ndarray], n_streams: int, prob_bits: int) -> bytes:
    """Encode per-step (k, V) tables and symbols, decode them back, assert equality; return the payload."""
    encoder = RansEncoder(n_streams, prob_bits, capacity=sum(map(len, symbols)))
    for freqs, syms in zip(tables, symbols):
        encoder.symbols(freqs, syms)
    payload = encoder.finish()
    decoder = RansDecoder(payload, n_streams, prob_bits)
    for freqs, syms in zip(tables, symbols):
        np.testing.assert_array_equal(decode_symbols(decoder.arrays, prob_bits, freqs), syms)
    decoder.check_finished()
    return payload


def ideal_bytes(tables, symbols, prob_bits) -> float:
    bits = 0.0
    for freqs, syms in zip(tables, symbols):
        bits -= np.log2(freqs[np.arange(len(syms)), syms] / 2.0**prob_bits).sum()
    return bits / 8


@st.composite
def coding_problems(draw):
    """Random streams, steps, vocab, precision, weights (often very skewed) and symbols."""
    n_streams = draw(st.integers(1, 6))
    vocab = draw(st.integers(1, 40))
    prob_bits = draw(st.integers(max(1, vocab.bit_length()), 31))
    n_steps = draw(st.integers(1, 25))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    tables, symbols = [], []
    for t in range(n_steps):
        k = n_streams if t < n_steps - 1 else draw(st.integers(1, n_streams))  # last step: a prefix
        weights = rng.integers(0, 2 ** rng.integers(1, 40), size=(k, vocab), dtype=np.int64)
        weights[:, 0] += 1  # a positive row sum
        freqs = normalize_frequencies(weights, prob_bits)
        tables.append(freqs)
        symbols.append(rng.integers(0, vocab, size=k))
    return tables, symbols, n_streams, prob_bits


@settings(max_examples=300, deadline=None)
@given(coding_problems())
def test_round_trip_random_tables(problem):
    code_and_decode(*problem)


@given(st.integers(1, 31), st.integers(0, 2**32 - 1))
@settings(max_examples=60, deadline=None)
def test_extreme_skew_rare_symbols(prob_bits, seed):
    """One symbol holds total-1 of the mass; code the frequency-1 symbol again and again."""
    total = 1 << prob_bits
    freqs = np.array([[total - 1, 1]], dtype=np.int64)
    rng = np.random.default_rng(seed)
    syms = [rng.integers(0, 2, size=1) for _ in range(50)]
    code_and_decode([freqs] * 50, syms, 1, prob_bits)


def test_single_symbol_alphabet_costs_nothing():
    freqs = np.array([[1 << 20]], dtype=np.int64)
    payload = code_and_decode([freqs] * 1000, [np.zeros(1, dtype=np.int64)] * 1000, 1, 20)
    assert len(payload) == 8  # only the final state


def test_every_symbol_of_a_large_alphabet():
    vocab, prob_bits = 4096, 24
    rng = np.random.default_rng(1)
    freqs = normalize_frequencies(rng.integers(1, 1000, size=(4, vocab)), prob_bits)
    order = rng.permutation(vocab)
    steps = [order[i : i + 4] for i in range(0, vocab, 4)]
    code_and_decode([freqs] * len(steps), steps, 4, prob_bits)


def test_long_run_of_one_symbol_is_near_ideal():
    prob_bits = 28
    freqs = normalize_frequencies(np.array([[1, 1000, 5, 1]] * 8), prob_bits)
    tables = [freqs] * 20000
    symbols = [np.full(8, 1)] * 20000
    payload = code_and_decode(tables, symbols, 8, prob_bits)
    assert len(payload) <= ideal_bytes(tables, symbols, prob_bits) * 1.001 + 12 * 8


def test_payload_within_a_tenth_of_a_percent_of_ideal():
    rng = np.random.default_rng(7)
    prob_bits, n_streams, vocab = 28, 16, 512
    tables, symbols = [], []
    for _ in range(400):
        freqs = normalize_frequencies(rng.integers(0, 1 << 20, size=(n_streams, vocab)) ** 2 + 1, prob_bits)
        tables.append(freqs)
        symbols.append(np.array([rng.choice(vocab, p=row / row.sum()) for row in freqs]))
    payload = code_and_decode(tables, symbols, n_streams, prob_bits)
    ideal = ideal_bytes(tables, symbols, prob_bits)
    assert len(payload) <= ideal * 1.001 + 12 * n_streams, (len(payload), ideal)


@given(st.integers(1, 300), st.integers(9, 31), st.integers(0, 2**32 - 1))
@settings(max_examples=200, deadline=None)
def test_normalized_frequencies_are_valid(vocab, prob_bits, seed):
    rng = np.random.default_rng(seed)
    weights = rng.integers(0, 2 ** rng.integers(1, 31), size=(3, vocab))
    weights[:, -1] += 1
    freqs = normalize_frequencies(weights, max(prob_bits, vocab.bit_length()))
    assert (freqs >= 1).all()
    assert (freqs.sum(axis=1) == 1 << max(prob_bits, vocab.bit_length())).all()
    for w, f in zip(weights, freqs):  # more weight never means a smaller frequency
        heavier = w[:, None] > w[None, :]
        assert (f[:, None] >= f[None, :])[heavier].all()


def test_truncated_or_extended_payload_is_refused():
    freqs = normalize_frequencies(np.array([[3, 1, 1, 1]] * 2), 16)
    syms = [np.array([1, 2])] * 300
    payload = code_and_decode([freqs] * 300, syms, 2, 16)
    with pytest.raises(CorruptPayload):
        RansDecoder(payload[:-3], 2, 16)
    with pytest.raises(CorruptPayload):
        decoder = RansDecoder(payload[:-4], 2, 16)
        for _ in range(300):
            decode_symbols(decoder.arrays, decoder.prob_bits, freqs)
        decoder.check_finished()


def test_golden_bitstream():
    """The coded bytes of a fixed input are pinned: any change to the format shows here."""
    freqs = normalize_frequencies(np.arange(1, 33).reshape(2, 16), 24)
    syms = [np.array([t % 16, (7 * t) % 16]) for t in range(100)]
    payload = code_and_decode([freqs] * 100, syms, 2, 24)
    assert hashlib.sha256(payload).hexdigest() == GOLDEN


GOLDEN = "7ea38cf6540bd7142ff552d0ff1b11eecc4c002ac25d11c0825e84fcf4bbde97"


def test_encoder_reports_the_ideal_code_length():
    rng = np.random.default_rng(9)
    freqs = normalize_frequencies(rng.integers(1, 500, size=(3, 40)), 20)
    symbols = [rng.integers(0, 40, size=3) for _ in range(50)]
    encoder = RansEncoder(3, 20, capacity=150)
    for syms in symbols:
        encoder.symbols(freqs, syms)
    expected = 8 * ideal_bytes([freqs] * 50, symbols, 20)
    assert encoder.ideal_bits() == pytest.approx(expected, rel=1e-12)
    assert 0 <= len(encoder.finish()) * 8 - expected <= 8 * 12 * 3
