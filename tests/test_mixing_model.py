"""The online context-mixing model: exact round trips, order-free shared updates, real learning."""

import hashlib

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import coding
from submissions.decoder import codec, encoding
from submissions.decoder.context_model import ContextModel
from submissions.decoder.logistic import SQUASH_TABLE, squash, stretch
from submissions.decoder.mixing import BitCounts, CountMap, Mixers
from submissions.decoder.mixing_model import MARKS, NESTING, ContextMixingModel

PROB_BITS = 28
SMALL = dict(table_bits=12)  # tiny tables: fast, and full of hash collisions
TEXT_TABLE = [bytes([i]) for i in range(256)] + [b" the", b"ing ", b"\n", b"[[", b"\xe2\x96\x81", b"", b"|\n|-\n", b"\n\n", b"]]", b"{{", b"}}|", b"<ref>"]


def round_trip(tokens: np.ndarray, vocab: int, n_streams: int, **params) -> bytes:
    return coding.round_trip(ContextMixingModel, tokens, vocab, n_streams, **params)


def test_squash_and_stretch_are_monotone_inverses():
    assert np.all(np.diff(SQUASH_TABLE) >= 0) and SQUASH_TABLE[0] >= 0 and SQUASH_TABLE[-1] <= 4095
    p = np.arange(1, 4095)
    assert np.all(np.diff(stretch(p)) >= 0)
    assert np.all(np.abs(squash(stretch(p)) - p) <= np.maximum(p // 16, 2))  # coarse only at the ends
    assert squash(np.array([0]))[0] == 2047 and stretch(np.array([2047]))[0] == 0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 299), max_size=300), st.integers(1, 9), st.lists(st.integers(1, 6), max_size=3))
def test_round_trip_any_tokens_any_streams(tokens, n_streams, match_lengths):
    """Vocab 300 is not a power of two: decisions that would leave the vocabulary are forced."""
    round_trip(np.array(tokens, dtype=np.int64), 300, n_streams, match_lengths=tuple(match_lengths), **SMALL)


@settings(max_examples=15, deadline=None)
@given(st.binary(min_size=1, max_size=2000), st.integers(1, 16))
def test_round_trip_bytes_with_collisions_and_halving(data, n_streams):
    tokens = np.frombuffer(data, dtype=np.uint8).astype(np.int64)
    round_trip(tokens, 256, n_streams, orders=(1, 2, 5), sparse=((2,), (1, 3)), byte_contexts=((0, 1), (0, 8), (3, 5)), table_bits=10, count_limit=8)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(0, len(TEXT_TABLE) - 1), max_size=400), st.integers(1, 6))
def test_round_trip_with_a_token_text_table(tokens, n_streams):
    """Multi-byte, empty and 3-byte tokens drive the byte history and word contexts."""
    round_trip(np.array(tokens, dtype=np.int64), len(TEXT_TABLE), n_streams, token_bytes=TEXT_TABLE, **SMALL)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(0, len(TEXT_TABLE) - 1), max_size=600), st.integers(1, 3))
@example([ord("<")] * 3 + [TEXT_TABLE.index(b"{{")] * 5 + [TEXT_TABLE.index(b"[[")] * 5 + [TEXT_TABLE.index(b"]]"), ord(">")] * 2, 1)
def test_line_and_markup_contexts_follow_the_text(tokens, n_streams):
    """The line contexts' column, byte above (same column, line before) and the line's first
    byte, and the last two markup bytes, match the text."""
    model = ContextMixingModel(len(TEXT_TABLE), n_streams, PROB_BITS, token_bytes=TEXT_TABLE, **SMALL)
    texts = [b""] * n_streams
    nesting = [[0, 0, 0] for _ in range(n_streams)]  # open minus closed, capped after each token
    prev = np.full(n_streams, -1)
    for i in range(0, len(tokens) - n_streams + 1, n_streams):
        model.begin(prev, n_streams)
        for s in range(n_streams):
            text = texts[s]
            start = text.rfind(b"\n") + 1
            column = len(text) - start
            line_before = text[text.rfind(b"\n", 0, start - 1) + 1 : start - 1] if start else b""
            expected = [line_before[column + j] if column + j < len(line_before) else 256 for j in (0, 1)]
            got_column = model.text_length[s] - model.line_start[s]
            assert got_column == column
            columns = model.text_length[:n_streams] - model.line_start[:n_streams]
            assert [int(model._above(n_streams, columns, j)[s]) for j in (0, 1)] == expected
            assert model._line_head(n_streams, columns)[s] == (text[start] + 1 if column else 0)
            marks = [b + 1 for b in text if b in MARKS]
            assert [model.mark_before[s], model.mark[s]] == ([0, 0] + marks)[-2:]
            assert list(model.nesting[s]) == nesting[s]
        prev = np.array(tokens[i : i + n_streams])
        for s in range(n_streams):
            texts[s] += TEXT_TABLE[prev[s]]
            for j, (opening, closing, cap) in enumerate(NESTING):
                nesting[s][j] = min(max(nesting[s][j] + TEXT_TABLE[prev[s]].count(opening) - TEXT_TABLE[prev[s]].count(closing), 0), cap)


def test_folded_word_context_ignores_letter_case():
    """Two streams write ' The' and ' the': the folded word is one context, the plain word two."""
    model = ContextMixingModel(len(TEXT_TABLE), 2, PROB_BITS, token_bytes=TEXT_TABLE, **SMALL)
    prev = np.array([-1, -1])
    for first, second in zip(b" The", b" the"):
        model.begin(prev, 2)
        prev = np.array([first, second])
    model.begin(prev, 2)
    assert model.folded_word[0] == model.folded_word[1]
    assert model.word_hash[0] != model.word_hash[1]


def test_scope_is_the_first_word_after_the_last_opening_bracket():
    """'{{cite web|', '<cite>' and 'x [[cite]]' are all in the scope `cite`; '[[Cite' is another
    scope and plain text has none. Later words do not change it until a bracket opens again."""
    texts = [b"{{cite web|title=a", b"<cite>x y", b"x [[cite]] z", b"[[Cite web]]", b"plain words"]
    width = max(map(len, texts))
    model = ContextMixingModel(len(TEXT_TABLE), len(texts), PROB_BITS, token_bytes=TEXT_TABLE, **SMALL)
    prev = np.full(len(texts), -1)
    for column in range(width):
        model.begin(prev, len(texts))
        prev = np.array([text.ljust(width)[column] for text in texts])
    model.begin(prev, len(texts))
    cite, other_cite, none = model.scope_word[0], model.scope_word[3], model.scope_word[4]
    assert model.scope_word[1] == cite and model.scope_word[2] == cite
    assert len({cite, other_cite, none}) == 3 and none == 0


def test_a_large_vocabulary_keeps_the_mixers_small():
    """At vocab 4096, (last token, node) would be 16M weight vectors: selectors with many values
    go with the depth instead, and coding still round-trips."""
    model = ContextMixingModel(4096, 2, PROB_BITS, **SMALL)
    assert model.by_node == [False, False, True, False] and model.mixers.weights.nbytes < 128 << 20
    tokens = np.random.default_rng(3).integers(0, 4096, size=300)
    round_trip(np.concatenate([tokens, tokens]), 4096, 2, **SMALL)


def test_local_contexts_are_the_streams_own():
    """Two streams with the same text share every context but the four local ones."""
    model = ContextMixingModel(256, 2, PROB_BITS, match_lengths=(2,), local_match_lengths=(), **SMALL)
    for byte in b"same text":
        model.begin(np.array([byte, byte]), 2)
    shared, local = model.context_hashes[:, :-5], model.context_hashes[:, -5:-1]  # the match context is last
    assert np.array_equal(shared[0], shared[1]) and np.all(local[0] != local[1])
    without = ContextMixingModel(256, 2, PROB_BITS, match_lengths=(2,), local_match_lengths=(), local=False, **SMALL)
    without.begin(np.array([-1, -1]), 2)
    assert without.context_hashes.shape[1] == model.context_hashes.shape[1] - 4


def test_a_local_match_looks_only_in_its_own_stream():
    """Stream 0 writes 'abc', stream 1 'zab' one step behind: after 'ab' the global match model
    of stream 1 predicts stream 0's 'c'; the local one has seen 'ab' nowhere in its own text."""
    model = ContextMixingModel(256, 2, PROB_BITS, match_lengths=(2,), local_match_lengths=(2,), **SMALL)
    local, shared = model.matches
    assert local.local and not shared.local
    prev = np.array([-1, -1])
    for first, second in zip(b"abcd", b"zzab"):
        model.begin(prev, 2)
        prev = np.array([first, second])
    model.begin(prev, 2)
    assert shared.length[1] > 0 and shared.predicted[1] & 0xFF == ord("c")
    assert local.length[1] == 0


def test_single_token_vocabulary_codes_to_nothing_but_the_coder_states():
    tokens = np.zeros(500, dtype=np.int64)
    assert len(round_trip(tokens, 1, 4, **SMALL)) == 4 * 8


def test_shared_count_updates_do_not_depend_on_stream_order():
    """Streams hitting the same cell in one step: any order of their updates gives one state."""
    rng = np.random.default_rng(1)
    cells = rng.integers(0, 6, size=64)
    checks = rng.integers(0, 3, size=64)  # several contexts contend for a cell
    bits = rng.integers(0, 2, size=64)
    inputs = rng.integers(-2047, 2048, size=(64, 5))
    sets = rng.integers(0, 3, size=(64, 2))
    states = []
    for order in (np.arange(64), rng.permutation(64), np.arange(64)[::-1]):
        counts, count_map, mixers = BitCounts(8, limit=20, n_streams=64), CountMap(8, limit=30), Mixers(3, 5, 20, 1000)
        for _ in range(5):  # several steps: discounting and halving kick in
            counts.update(cells[order], checks[order], bits[order])
            count_map.update(cells[order], bits[order])
            mixers.mix(inputs[order], sets[order])
            mixers.learn(bits[order])
        states.append((counts.cells.copy(), count_map.packed.copy(), mixers.weights.copy(), mixers.uses.copy()))
    for state in states[1:]:
        for a, b in zip(states[0], state):
            np.testing.assert_array_equal(a, b)


def test_a_count_cell_belongs_to_one_context():
    cell, one, zero = np.array([2]), np.array([1]), np.array([0])
    counts = BitCounts(4, limit=100, n_streams=4)
    for _ in range(3):
        counts.update(cell, np.array([7]), one)  # context 7 owns the cell, seen 3 times
    assert not counts.states(cell, np.array([9]))[1][0]  # another context reads it as empty
    counts.update(cell, np.array([9]), zero)  # and cannot take over a cell seen that often
    assert counts.states(cell, np.array([7]))[1][0] and not counts.states(cell, np.array([9]))[1][0]
    young = BitCounts(4, limit=100, n_streams=4)
    young.update(cell, np.array([7]), one)
    young.update(cell, np.array([9]), zero)  # seen once only: the newcomer takes it
    assert young.states(cell, np.array([9]))[1][0] and not young.states(cell, np.array([7]))[1][0]


def test_learns_text_better_than_the_simple_context_model(text_sample):
    tokens = np.frombuffer(text_sample[:12000], dtype=np.uint8).astype(np.int64)
    mixed = round_trip(tokens, 256, 8, table_bits=18)
    simple = encoding.encode(ContextModel(256, 8, PROB_BITS), tokens, 8, PROB_BITS)
    assert len(mixed) < 0.95 * len(simple)


def test_repeats_cost_little(text_sample):
    """The match model finds a repeat of 600 bytes: two more copies add under 25%."""
    once = np.frombuffer(text_sample[:600], dtype=np.uint8).astype(np.int64)
    thrice = np.concatenate([once] * 3)
    assert len(round_trip(thrice, 256, 1, **SMALL)) < 1.25 * len(round_trip(once, 256, 1, **SMALL))


def test_text_log_filled_to_its_edge_after_a_blank_line():
    """The byte after the one above is looked up past the text for a blank line before; with
    the text exactly as long as the log (4,096 bytes: the first width), that lookup once crashed."""
    tokens = np.frombuffer(b"ab\n\n" * 1100, dtype=np.uint8).astype(np.int64)
    round_trip(tokens, 256, 1, **SMALL)


def test_payload_is_pinned():
    """The bitstream of a fixed input: a change here breaks every archive made before it."""
    tokens = np.frombuffer(b"the cat sat on the mat; the cat ate the rat. " * 40, dtype=np.uint8).astype(np.int64)
    payload = round_trip(tokens, 256, 3, **SMALL)
    assert hashlib.sha256(payload).hexdigest()[:16] == "d332a12350007fb3"


def test_a_changed_payload_is_refused():
    tokens = np.frombuffer(b"abracadabra " * 300, dtype=np.uint8).astype(np.int64)
    payload = bytearray(round_trip(tokens, 256, 4, **SMALL))
    payload[len(payload) // 2] ^= 0x10
    with pytest.raises(codec.CorruptPayload):
        codec.decode(ContextMixingModel(256, 4, PROB_BITS, **SMALL), bytes(payload), len(tokens), 4, PROB_BITS)
    with pytest.raises(codec.CorruptPayload):
        codec.decode(ContextMixingModel(256, 4, PROB_BITS, **SMALL), bytes(payload[:-4]), len(tokens), 4, PROB_BITS)
