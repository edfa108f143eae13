"""The adaptive context model and the stream loop: exact, deterministic, and learning."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import coding
from submissions.decoder import codec, encoding
from submissions.decoder.context_model import ContextConfig, ContextModel

PROB_BITS = 28


def round_trip(tokens: np.ndarray, vocab: int, n_streams: int, **params) -> bytes:
    return coding.round_trip(lambda streams: ContextModel(vocab, streams, PROB_BITS, ContextConfig(**params)), tokens, n_streams)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 19), max_size=400), st.integers(1, 9))
def test_round_trip_any_tokens_any_streams(tokens, n_streams):
    round_trip(np.array(tokens, dtype=np.int64), 20, n_streams)


@settings(max_examples=20, deadline=None)
@given(st.binary(min_size=1, max_size=3000), st.integers(1, 16))
def test_round_trip_bytes_with_small_tables(data, n_streams):
    """Tiny hashed tables and a low count limit exercise collisions and halving."""
    tokens = np.frombuffer(data, dtype=np.uint8).astype(np.int64)
    round_trip(tokens, 256, n_streams, max_order=3, order1_rows=7, hashed_rows=5, count_limit=40)


def test_frequencies_valid_and_deterministic():
    rng = np.random.default_rng(3)
    a, b = ContextModel(300, 5, PROB_BITS), ContextModel(300, 5, PROB_BITS)
    prev = np.full(5, -1)
    for _ in range(200):
        fa, fb = a.step(prev), b.step(prev)
        np.testing.assert_array_equal(fa, fb)
        assert (fa >= 1).all() and (fa.sum(axis=1) == 1 << PROB_BITS).all()
        prev = rng.integers(-1, 300, size=5)


def test_learns_repeated_text():
    phrase = np.frombuffer(b"the quick brown fox jumps over the lazy dog. ", dtype=np.uint8)
    tokens = np.tile(phrase, 200).astype(np.int64)  # 9,000 tokens
    payload = round_trip(tokens, 256, 4)
    assert 8 * len(payload) / len(tokens) < 0.6  # bits per token, against 8 for raw bytes


def test_stream_lengths_cover_the_input():
    for n_tokens in (0, 1, 5, 64, 1000):
        for n_streams in (1, 3, 64):
            lengths = codec.stream_lengths(n_tokens, n_streams)
            assert lengths.sum() == n_tokens and (np.diff(lengths) <= 0).all()
            assert lengths.max() - lengths.min() <= 1


def test_empty_input_has_empty_payload():
    assert encoding.effective_streams(0, 64) == 0
    assert round_trip(np.zeros(0, dtype=np.int64), 256, 64) == b""


def test_a_changed_payload_never_decodes_silently_to_the_same_length_and_state():
    tokens = np.frombuffer(b"abracadabra " * 300, dtype=np.uint8).astype(np.int64)
    payload = bytearray(round_trip(tokens, 256, 4))
    payload[len(payload) // 2] ^= 0x10
    with pytest.raises(codec.CorruptPayload):
        codec.decode(ContextModel(256, 4, PROB_BITS), bytes(payload), len(tokens), 4, PROB_BITS)
