"""The tokenizer is lossless for every byte string and compact on real text."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from submissions.decoder.tokens import detokenize, pack_table, unpack_table
from tokenizer import Tokenizer, load_tokenizer, train_tokenizer


@pytest.fixture(scope="module")
def tok(text_sample) -> Tokenizer:
    return train_tokenizer(text_sample, vocab_size=1024)


AWKWARD = st.sampled_from(["\u2581", "\r", "\n", "\r\n", "\t", "\x00", "\x0b", " ", "  ", "é", "日本", "\U0001f600", "\u3000", "\ufeff"])
BROKEN = st.sampled_from([b"\xff", b"\xc0", b"\xed\xa0\x80", b"\xe2\x96", b"\x80", b"\xf5\x80\x80\x80", b"\xc3"])


@st.composite
def mixed_bytes(draw) -> bytes:
    """Text, awkward characters and invalid UTF-8 in any order."""
    parts = draw(st.lists(st.one_of(st.text(max_size=20).map(lambda s: s.encode("utf-8", "surrogatepass")), AWKWARD.map(str.encode), BROKEN), max_size=30))
    return b"".join(parts)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_round_trip(tok, data):
    assert tok.decode(tok.encode(data)) == data


@settings(max_examples=300, deadline=None)
@given(mixed_bytes())
def test_text_with_awkward_and_invalid_bytes_round_trips(tok, data):
    ids = tok.encode(data)
    assert ids.dtype == np.int32 and (ids >= 0).all() and (ids < tok.vocab_size).all()
    assert tok.decode(ids) == data


def test_edge_inputs(tok):
    for data in (b"", b"a", b"\x00" * 10, "\u2581".encode() * 5, b"\r\n" * 7, bytes(range(256))):
        assert tok.decode(tok.encode(data)) == data


def test_ten_megabyte_single_line_is_fast(tok):
    line = (b"lorem ipsum dolor sit amet " * 400_000)[:10_000_000]
    started = time.perf_counter()
    ids = tok.encode(line)
    assert tok.decode(ids) == line
    assert time.perf_counter() - started < 60


def test_real_text_is_compact(tok, text_sample):
    ids = tok.encode(text_sample)
    assert len(text_sample) / len(ids) > 2.2  # bytes per token, vocab 1024 trained on 40 KB (enwik6 at 4096: 3.06)


def test_training_is_deterministic(text_sample):
    assert train_tokenizer(text_sample, 512).model_proto() == train_tokenizer(text_sample, 512).model_proto()


def test_tiny_inputs_fall_back_to_bytes_and_vocab_shrinks():
    assert train_tokenizer(b"", 4096).kind == "bytes"
    assert train_tokenizer(b"\x00\x01", 4096).kind == "bytes"
    small = train_tokenizer(b"a small text, repeated. " * 40, 4096)
    assert small.vocab_size < 4096
    assert small.decode(small.encode(b"a small text")) == b"a small text"


def test_reload_from_proto_gives_the_same_table(tok, text_sample):
    again = load_tokenizer(tok.model_proto())
    assert again.table == tok.table
    np.testing.assert_array_equal(again.encode(text_sample[:5000]), tok.encode(text_sample[:5000]))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=12), max_size=300))
def test_table_pack_round_trip(pieces):
    assert unpack_table(pack_table(pieces)) == pieces


def test_decoder_table_matches_the_tokenizer(tok, text_sample):
    table = unpack_table(tok.table_blob())
    assert table == tok.table
    assert detokenize(tok.encode(text_sample), table) == text_sample
