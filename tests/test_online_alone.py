"""`--model online`: the network that learns while it codes, alone. Exact round trips, its
pinned bitstream, learning, its config's checks and its archive. Its exactness (compiled vs
plain Python) is in test_kernels_exact.py."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import coding
import kernels
from pipeline.config import PipelineConfig
from submissions.archive import decoder_modules, program_kind
from submissions.decoder import encoding
from submissions.decoder.container import TOKENIZER, read_archive
from submissions.decoder.context_model import ContextConfig, ContextModel
from submissions.decoder.online_alone import CHECK_BITS, DIRECT_LIMIT, USE_BITS, OnlineConfig, OnlineModel
from submissions.decoder.tokens import unpack_table
from submissions.errors import UserError
from test_archive import make_archive, run_archive
from test_mixing_model import PROB_BITS, TEXT_TABLE
from tokenizer import load_tokenizer

SMALL = dict(direct_bits=12, online_table_bits=10, online_hidden=8)  # tiny tables: fast, full of collisions


def model(vocab: int, n_streams: int, token_bytes=None, **params) -> OnlineModel:
    return OnlineModel(vocab, n_streams, PROB_BITS, OnlineConfig(**params), token_bytes=token_bytes)


def round_trip(tokens: np.ndarray, vocab: int, n_streams: int, token_bytes=None, **params) -> bytes:
    return coding.round_trip(lambda streams: model(vocab, streams, token_bytes, **params), tokens, n_streams)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 299), max_size=300), st.integers(1, 5))
def test_round_trip_any_tokens_any_streams(tokens, n_streams):
    """Vocab 300 is not a power of two: decisions that would leave the vocabulary are forced."""
    round_trip(np.array(tokens, dtype=np.int64), 300, n_streams, **SMALL)


@settings(max_examples=10, deadline=None)
@given(st.lists(st.integers(0, len(TEXT_TABLE) - 1), max_size=400), st.integers(1, 3), st.integers(1, 64), st.integers(0, 24))
def test_round_trip_with_a_token_text_table_at_any_rates(tokens, n_streams, direct_rate, scale_shift):
    """Large steps drive the weights and scales to their caps: still exact."""
    round_trip(np.array(tokens, dtype=np.int64), len(TEXT_TABLE), n_streams, token_bytes=TEXT_TABLE, direct_rate=direct_rate, scale_shift=scale_shift, **SMALL)


def test_payload_is_pinned():
    """The bitstream of a fixed input: a change here breaks every online archive made before it."""
    tokens = np.frombuffer(b"the cat sat on the mat; the cat ate the rat. " * 40, dtype=np.uint8).astype(np.int64)
    payload = round_trip(tokens, 256, 2, **SMALL)
    assert hashlib.sha256(payload).hexdigest()[:16] == "6dbe5587a6e7aead"


def test_direct_entries_are_found_by_their_check_and_a_new_one_takes_the_less_used_way():
    d = model(256, 1, **SMALL).direct
    shift = 64 - SMALL["direct_bits"]

    def h(entry: int, check: int) -> np.uint64:  # a hash whose top bits pick the entry, the next ones its check
        return np.uint64(entry << shift | check << (shift - CHECK_BITS))

    def store(claimed: int, weight: int, uses: int) -> None:
        d.direct[claimed >> CHECK_BITS] = weight << (USE_BITS + CHECK_BITS) | (claimed & (1 << CHECK_BITS) - 1) << USE_BITS | uses

    a = kernels.claim_direct(d, h(6, 17), np.uint64(shift))
    assert a >> CHECK_BITS == 6 and kernels.direct_weight(d, a) == (0, 0)
    store(a, -1234, 3)
    assert kernels.claim_direct(d, h(6, 17), np.uint64(shift)) == a and kernels.direct_weight(d, a) == (-1234, 3)
    b = kernels.claim_direct(d, h(6, 99), np.uint64(shift))  # same entry, other check: the unused neighbour
    assert b >> CHECK_BITS == 7 and kernels.direct_weight(d, b) == (0, 0)
    store(b, 555, DIRECT_LIMIT)
    assert kernels.claim_direct(d, h(7, 99), np.uint64(shift)) == b  # found from either way of the pair
    c = kernels.claim_direct(d, h(7, 5), np.uint64(shift))  # a third check: the less used entry (a's), anew
    assert c >> CHECK_BITS == 6 and kernels.direct_weight(d, c) == (0, 0) and kernels.direct_weight(d, a) == (-1234, 3)


def test_it_learns_text_better_than_the_simple_context_model(text_sample):
    tokens = np.frombuffer(text_sample[:12000], dtype=np.uint8).astype(np.int64)
    online = encoding.encode(model(256, 1, direct_bits=18, online_table_bits=14), tokens, 1, PROB_BITS)
    simple = encoding.encode(ContextModel(256, 8, PROB_BITS, ContextConfig()), tokens, 8, PROB_BITS)
    assert len(online) < 0.95 * len(simple)


@pytest.mark.parametrize("off", [{"direct_rate": 0}, {"guess_rate": 0}])
def test_the_direct_connections_and_the_guesses_make_text_smaller(text_sample, off):
    """A rate of 0 keeps those weights at zero: the model without them. The text twice: the
    guesses (runs, matches) are worth most on repeats."""
    tokens = np.frombuffer(text_sample[:5000] * 2, dtype=np.uint8).astype(np.int64)
    with_both = encoding.encode(model(256, 1, direct_bits=18, online_table_bits=14), tokens, 1, PROB_BITS)
    without = encoding.encode(model(256, 1, direct_bits=18, online_table_bits=14, **off), tokens, 1, PROB_BITS)
    assert len(with_both) < 0.95 * len(without)


def test_the_config_is_checked():
    with pytest.raises(UserError, match="needs its network"):
        PipelineConfig.from_dict({"model": {"kind": "online", "online_hidden": 0}}).validate()
    with pytest.raises(UserError, match="direct_bits"):
        PipelineConfig.from_dict({"model": {"kind": "online", "direct_bits": 40}}).validate()
    assert PipelineConfig.from_dict({"model": {"kind": "online"}}).validate().streams_for(10**6) == 1


def test_its_archive_carries_its_kernels_and_not_the_mixers():
    kind = program_kind({"kind": "online"})
    assert kind == "online"
    carried = decoder_modules(kind)
    mix = decoder_modules(program_kind({"kind": "mix"}))
    assert "decoder.online_alone" in carried and "decoder.online_alone" not in mix
    assert "decoder.mixing_steps" in mix and "decoder.mixing_steps" not in carried  # the mixing model's coding kernels
    assert "decoder.neural_input" not in carried and "decoder.mixing_model" in carried


@pytest.mark.slow
def test_an_archive_of_the_online_model_restores_itself(tmp_path, text_sample):
    """Its kernels compile in the archive's own process, from the minified source it carries;
    its tokens in tree order (pack --tree-order), the table carrying the order."""
    config = PipelineConfig.from_dict({"model": {"kind": "online"}, "coder": {"tree_order": True}})
    source, archive = make_archive(tmp_path, text_sample[:6_000], config=config)
    header, sections = read_archive(str(archive))
    tokenizer_table = load_tokenizer((tmp_path / "x.run" / "tokenizer.model").read_bytes()).table
    assert header["training"]["coder"]["tree_order"] and unpack_table(sections[TOKENIZER]) != tokenizer_table
    assert "direct_bits" not in header["model"] and "direct_bits" not in header["training"]["model"]  # left to the file: 2**27, the decoder's default, for a small one
    result = run_archive(archive, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out").read_bytes() == source.read_bytes()
