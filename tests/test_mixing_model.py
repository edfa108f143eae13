"""The online context-mixing model: exact round trips, the text state it conditions on, its
learners alone, and real learning."""

import dataclasses
import hashlib
import json

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import coding
import kernels
from submissions.decoder import codec, encoding
from submissions.decoder.context_model import ContextModel
from submissions.decoder.contexts import (
    ABOVE,
    AFTER_ABOVE,
    BYTE_CLASSES,
    CLASSES,
    COLUMN,
    FOLDED_WORD,
    LINE_HEAD,
    MARK,
    MARK_BEFORE,
    MARKS,
    NESTING,
    NESTING_BRACKETS,
    ONLINE_SALTS,
    SCOPE,
    SHAPE,
    WORD,
    context_table,
)
from submissions.decoder.logistic import SQUASH_TABLE, STRETCH_TABLE, squash
from submissions.decoder.match_model import CLASS, LENGTH, PREDICTED
from submissions.decoder.counts import BUCKET_WORDS, WAYS
from submissions.decoder.mixing import MAP_LIMIT, new_mixer, new_state_maps
from submissions.decoder.mixing_model import MixConfig
from submissions.decoder.online_alone import OnlineConfig
from submissions.decoder.mixing_steps import ContextMixingModel
from submissions.decoder.selectors import FINAL_LAYER, selector_table

PROB_BITS = 28
SMALL = dict(table_bits=12)  # tiny tables: fast, and full of hash collisions
TEXT_TABLE = [bytes([i]) for i in range(256)] + [b" the", b"ing ", b"\n", b"[[", b"\xe2\x96\x81", b"", b"|\n|-\n", b"\n\n", b"]]", b"{{", b"}}|", b"<ref>"]


def model(vocab: int, n_streams: int, token_bytes=None, **params) -> ContextMixingModel:
    return ContextMixingModel(vocab, n_streams, PROB_BITS, MixConfig(**params), token_bytes=token_bytes)


def round_trip(tokens: np.ndarray, vocab: int, n_streams: int, token_bytes=None, **params) -> bytes:
    return coding.round_trip(lambda streams: model(vocab, streams, token_bytes, **params), tokens, n_streams)


class Driver:
    """Feeds tokens to the model's text state stream by stream, as the coding loop does, and
    reads the facts it conditions the next token on."""

    def __init__(self, m: ContextMixingModel):
        self.m, self.step = m, 0

    def facts(self, b: int) -> np.ndarray:
        with np.errstate(over="ignore"):
            kernels.facts_before(self.m.state, b, self.step * self.m.n_streams + b)
        return self.m.state.facts.copy()

    def context_hashes(self, b: int) -> np.ndarray:
        self.facts(b)
        return self.m.state.context_hash.copy()

    def feed(self, tokens) -> None:
        """One step: token tokens[b] for stream b."""
        with np.errstate(over="ignore"):
            for b, token in enumerate(tokens):
                kernels.facts_before(self.m.state, b, self.step * self.m.n_streams + b)  # the match models look up here
                kernels.record(self.m.state, b, self.step * self.m.n_streams + b, int(token))
        self.step += 1


def test_squash_and_stretch_are_monotone_inverses():
    assert np.all(np.diff(SQUASH_TABLE) >= 0) and SQUASH_TABLE[0] >= 0 and SQUASH_TABLE[-1] <= 4095
    p = np.arange(1, 4095)
    assert np.all(np.diff(STRETCH_TABLE[p]) >= 0)
    assert np.all(np.abs(squash(STRETCH_TABLE[p]) - p) <= np.maximum(p // 16, 2))  # coarse only at the ends
    assert squash(np.array([0]))[0] == 2047 and STRETCH_TABLE[2047] == 0


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
def test_line_and_markup_facts_follow_the_text(tokens, n_streams):
    """The column, the byte above (same column, line before) and the one after it, the line's
    first byte, the last two markup bytes, the nesting, the classes of the last 12 bytes and
    the last 12 runs of classes match the text written so far."""
    drive = Driver(model(len(TEXT_TABLE), n_streams, TEXT_TABLE, **SMALL))
    texts = [b""] * n_streams
    for i in range(0, len(tokens) - n_streams + 1, n_streams):
        for s, text in enumerate(texts):
            facts = drive.facts(s)
            start = text.rfind(b"\n") + 1
            column = len(text) - start
            line_before = text[text.rfind(b"\n", 0, start - 1) + 1 : start - 1] if start else b""
            expected = [line_before[column + j] if column + j < len(line_before) else 256 for j in (0, 1)]
            assert facts[COLUMN] == min(column, 63)
            assert [facts[ABOVE], facts[AFTER_ABOVE]] == expected
            assert facts[LINE_HEAD] == (text[start] + 1 if column else 0)
            marks = [b + 1 for b in text if b in MARKS]
            assert [facts[MARK_BEFORE], facts[MARK]] == ([0, 0] + marks)[-2:]
            nesting = [0, 0, 0]  # open minus closed, capped after each token
            for token in tokens[s : i : n_streams]:
                for j, (opening, closing, cap) in enumerate(NESTING_BRACKETS):
                    nesting[j] = min(max(nesting[j] + TEXT_TABLE[token].count(opening) - TEXT_TABLE[token].count(closing), 0), cap)
            assert facts[NESTING] == nesting[0] * 16 + nesting[1] * 2 + nesting[2]
            classes = [next((k + 1 for k, members in enumerate(BYTE_CLASSES) if byte in members), 0) for byte in text]
            shape = [c for j, c in enumerate(classes) if c != ([0] + classes)[j]]  # a class once per run (the text starts after class 0)
            assert facts[CLASSES] == sum(c << 3 * j for j, c in enumerate(reversed(classes[-12:])))
            assert facts[SHAPE] == sum(c << 3 * j for j, c in enumerate(reversed(shape[-12:])))
        step = tokens[i : i + n_streams]
        drive.feed(step)
        texts = [text + TEXT_TABLE[token] for text, token in zip(texts, step)]


def test_the_byte_above_reaches_back_as_far_as_the_text_ring():
    """Past the ring (64 KiB of text per stream) the line before is unknown: 256, not a stale byte."""
    drive = Driver(model(256, 1, **SMALL))
    drive.feed([ord("x")])
    for _ in range(70_000):
        drive.feed([ord("y")])
    drive.feed([ord("\n")])
    assert drive.facts(0)[ABOVE] == 256  # the line above started 70,000 bytes back
    for byte in b"abc\nab":
        drive.feed([byte])
    assert drive.facts(0)[ABOVE] == ord("c")


def test_folded_word_ignores_letter_case():
    """Two streams write ' The' and ' the': the folded word is one context, the plain word two."""
    drive = Driver(model(len(TEXT_TABLE), 2, TEXT_TABLE, **SMALL))
    for first, second in zip(b" The", b" the"):
        drive.feed([first, second])
    assert drive.facts(0)[FOLDED_WORD] == drive.facts(1)[FOLDED_WORD]
    assert drive.facts(0)[WORD] != drive.facts(1)[WORD]


def test_scope_is_the_first_word_after_the_last_opening_bracket():
    """'{{cite web|', '<cite>' and 'x [[cite]]' are all in the scope `cite`; '[[Cite' is another
    scope and plain text has none. Later words do not change it until a bracket opens again."""
    texts = [b"{{cite web|title=a", b"<cite>x y", b"x [[cite]] z", b"[[Cite web]]", b"plain words"]
    width = max(map(len, texts))
    drive = Driver(model(len(TEXT_TABLE), len(texts), TEXT_TABLE, **SMALL))
    for column in range(width):
        drive.feed([text.ljust(width)[column] for text in texts])
    scope = [drive.facts(s)[SCOPE] for s in range(len(texts))]
    assert scope[1] == scope[0] and scope[2] == scope[0]
    assert len({scope[0], scope[3], scope[4]}) == 3 and scope[4] == 0


def test_local_contexts_are_the_streams_own_and_only_with_several_streams():
    """Two streams with the same text share every context but the four local ones (and the match
    model's, which finds stream 0's text from stream 1); one stream has no local contexts (they
    would repeat the shared ones)."""
    m = model(256, 2, match_lengths=(2,), local_match_lengths=(), **SMALL)
    drive = Driver(m)
    for byte in b"same text":
        drive.feed([byte, byte])
    salts = [salt for salt, _ in m.contexts]
    differ = [salt for salt, a, b in zip(salts, drive.context_hashes(0), drive.context_hashes(1)) if a != b and salt != 400]  # 400: match model 0
    assert differ == [983, 980, 981, 982]  # stream; with the last token, the last two tokens, the word
    assert len(context_table(MixConfig(), 1, 2)) == len(context_table(MixConfig(), 2, 2)) - 4


def test_a_local_match_looks_only_in_its_own_stream():
    """Stream 0 writes 'abc', stream 1 'zab' one step behind: after 'ab' the global match model
    of stream 1 predicts stream 0's 'c'; the local one has seen 'ab' nowhere in its own text."""
    m = model(256, 2, match_lengths=(2,), local_match_lengths=(2,), **SMALL)
    drive = Driver(m)
    for first, second in zip(b"abcd", b"zzab"):
        drive.feed([first, second])
    drive.facts(1)
    local, shared = m.state.match_state[0, 1], m.state.match_state[1, 1]
    assert shared[LENGTH] > 0 and shared[CLASS] > 0 and shared[PREDICTED] & 0xFF == ord("c")
    assert local[LENGTH] == 0


def records(n: int, seed: int = 5) -> bytes:
    """Lines that write a random key twice at a fixed distance: `[key](u/key)`."""
    keys = np.random.default_rng(seed).integers(ord("a"), ord("z") + 1, size=(n, 4)).astype(np.uint8)
    return b"".join(b"[" + key.tobytes() + b"](u/" + key.tobytes() + b")\n" for key in keys)


def test_an_offset_model_guesses_the_token_written_as_far_back_as_last_time():
    """After "u/" the key follows again, 8 bytes after its first copy: once that distance has
    held, the offset model guesses the key's first byte, surer each line (its class); a match
    model of the same context would guess the last line's key."""
    m = model(256, 1, match_lengths=(2,), local_match_lengths=(), offset_lengths=(2,), table_bits=20)  # no other context in the offset table's slot
    drive = Driver(m)
    text = records(6)
    drive.feed([text[0]])
    for i, byte in enumerate(text[1:], 1):
        if text[i - 2 : i] == b"u/":
            drive.facts(0)
            offset, match = m.state.match_state[1, 0], m.state.match_state[0, 0]
            line = i // 15
            assert offset[CLASS] == (0 if line == 0 else min(line, 7)) and (line == 0 or offset[PREDICTED] & 0xFF == byte)
            assert line == 0 or match[PREDICTED] & 0xFF == text[i - 15]  # the last line's key
        drive.feed([byte])


def test_offset_models_code_records_smaller():
    tokens = np.frombuffer(records(300), dtype=np.uint8).astype(np.int64)
    without, offset = (len(round_trip(tokens, 256, 1, offset_lengths=lengths, **SMALL)) for lengths in ((), (2,)))
    assert offset < 0.9 * without  # 820 B against 968 B


def test_a_large_vocabulary_keeps_the_mixers_small():
    """At vocab 4096, (last token, node) would be 16M weight vectors: selectors with many values
    go with the depth instead, and coding still round-trips."""
    m = model(4096, 2, **SMALL)
    assert m.by_node == [False, False, True, False, False, True, False] and len(m.state.weights) < 1 << 20
    tokens = np.random.default_rng(3).integers(0, 4096, size=300)
    round_trip(np.concatenate([tokens, tokens]), 4096, 2, **SMALL)


def test_single_token_vocabulary_codes_to_nothing_but_the_coder_states():
    tokens = np.zeros(500, dtype=np.int64)
    assert len(round_trip(tokens, 1, 4, **SMALL)) == 4 * 8


def test_a_context_keeps_its_bucket_and_the_least_used_of_its_set_is_replaced():
    buckets = np.zeros(2 * WAYS * BUCKET_WORDS, dtype=np.uint32)
    bits = (2 * WAYS).bit_length() - 1  # two sets of WAYS buckets

    def context(bucket: int, check: int) -> np.uint64:
        return np.uint64(bucket << (64 - bits) | check << 16)

    least = WAYS - 2  # the context that sees least
    owners = []
    for i in range(WAYS):
        owners.append(kernels.claim(buckets, context(WAYS - 1, 0x1000 + i), bits))
        for _ in range(i + 2 if i != least else 1):
            kernels.count(buckets, owners[-1] + 1, 1, 255)
    assert owners[0] == (WAYS - 1) * BUCKET_WORDS and buckets[owners[0]] == 0x1000  # its own bucket first
    assert sorted(owners) == [k * BUCKET_WORDS for k in range(WAYS)]  # then the set's unused ones, never the other set's
    assert kernels.claim(buckets, context(WAYS - 1, 0x1001), bits) == owners[1]  # found again, counts kept
    assert buckets[owners[1] + 1] >> 12 & 0xFFF == 3
    assert kernels.claim(buckets, context(0, 0x2000), bits) == owners[least]  # a new one (same set) replaces the least used, cleared
    assert buckets[owners[least]] == 0x2000 and not buckets[owners[least] + 1 : owners[least] + BUCKET_WORDS].any()
    assert all(kernels.claim(buckets, context(WAYS - 1, 0x1000 + i), bits) == owners[i] for i in range(WAYS) if i != least)


def test_counts_are_halved_past_the_limit_and_remember_the_last_bits():
    buckets = np.zeros(8, dtype=np.uint32)

    def cell() -> tuple[int, int, int]:  # (n0, n1, the last three bits, newest lowest)
        return int(buckets[1]) & 0xFFF, int(buckets[1]) >> 12 & 0xFFF, int(buckets[1]) >> 24

    for _ in range(7):
        kernels.count(buckets, 1, 1, 7)
    assert cell() == (0, 7, 0b111)
    kernels.count(buckets, 1, 0, 7)  # 8 > 7: both halved
    assert cell() == (0, 3, 0b110)
    kernels.count(buckets, 1, 1, 7)
    assert cell() == (0, 4, 0b101)


def test_a_state_map_tracks_the_running_average_then_adapts_at_its_limit():
    maps = new_state_maps(2)
    ones = kernels.learn_map(maps, 0, 1, MAP_LIMIT, 200)
    assert ones[0] > 2048 and all(np.diff(ones) >= 0) and ones[-1] >= 4070  # (n + 0.75) / (n + 1.5)
    kernels.learn_map(maps, 1, 1, MAP_LIMIT, 200)
    slow = kernels.learn_map(maps, 0, 0, MAP_LIMIT, 40)  # a running average over 240 bits
    fast = kernels.learn_map(maps, 1, 0, 20, 40)  # a low limit forgets fast
    assert slow[-1] > 3300 and fast[-1] < 700


def test_a_mixer_learns_to_trust_the_input_that_is_right():
    rng = np.random.default_rng(5)
    bits = rng.integers(0, 2, size=3000)
    right = np.where(bits == 1, 600, -600)  # a confident, correct input
    noise = rng.integers(-600, 601, size=3000)
    inputs = np.stack([right, noise, np.full(3000, 256)], axis=1).astype(np.int32)
    weights = new_mixer(1, 3)
    kernels.train_mixer(weights, inputs, bits, 20)
    assert weights[0, 0] > 4 * abs(weights[0, 1]) and weights[0, 3] == 3000  # after the weights: the row's uses


def test_binary_decisions_round_trip_through_the_coder_step():
    """code_bit alone: random streams, probabilities (extreme ones too) and bits."""
    from submissions.decoder.encoding import RansEncoder
    from submissions.decoder.rans import RansDecoder

    rng = np.random.default_rng(11)
    n, n_streams, prob_bits = 5000, 3, 28
    streams = np.sort(rng.integers(0, n_streams, size=n))  # any order the decoder will also use
    rng.shuffle(streams)
    zeros = rng.choice([1, 2, 1 << 16, 1 << 27, (1 << 28) - 1], size=n).astype(np.int64)
    bits = (rng.random(n) < 0.5).astype(np.int64)
    encoder = RansEncoder(n_streams, prob_bits, capacity=n)
    kernels.code_bits(encoder.arrays, streams, zeros, bits)
    payload = encoder.finish()
    decoder = RansDecoder(payload, n_streams, prob_bits)
    decoded = kernels.code_bits(decoder.arrays, streams, zeros, np.zeros(n, dtype=np.int64))
    np.testing.assert_array_equal(decoded, bits)
    decoder.check_finished()


def test_learns_text_better_than_the_simple_context_model(text_sample):
    tokens = np.frombuffer(text_sample[:12000], dtype=np.uint8).astype(np.int64)
    mixed = round_trip(tokens, 256, 8, table_bits=18)
    simple = encoding.encode(ContextModel(256, 8, PROB_BITS), tokens, 8, PROB_BITS)
    assert len(mixed) < 0.95 * len(simple)


def test_one_stream_codes_smaller_than_many(text_sample):
    tokens = np.frombuffer(text_sample[:20000], dtype=np.uint8).astype(np.int64)
    assert len(round_trip(tokens, 256, 1, table_bits=18)) < len(round_trip(tokens, 256, 16, table_bits=18))


def test_repeats_cost_little(text_sample):
    """The match model finds a repeat of 600 bytes: two more copies add under 25%."""
    once = np.frombuffer(text_sample[:600], dtype=np.uint8).astype(np.int64)
    thrice = np.concatenate([once] * 3)
    assert len(round_trip(thrice, 256, 1, **SMALL)) < 1.25 * len(round_trip(once, 256, 1, **SMALL))


EVERY_CONTEXT = MixConfig(  # every context of the table (the mix default leaves some out; the online kind keeps all)
    orders=OnlineConfig.orders,
    sparse=OnlineConfig.sparse,
    byte_contexts=OnlineConfig.byte_contexts,
    without=OnlineConfig.without,
)


def test_the_context_and_selector_tables_are_pinned():
    """Salts and parts of every context and the mixer selectors are archive format:
    a change here must come with a new format version (and this pin)."""
    everything = EVERY_CONTEXT
    matches = len(everything.match_lengths) + len(everything.local_match_lengths)
    rows = context_table(everything, 1, matches)
    assert len({salt for salt, _ in rows}) == len(rows) == 53  # one salt per context
    assert len(context_table(everything, 2, matches)) == 57  # + the 4 local contexts with several streams
    table = json.dumps([rows, selector_table(everything), list(FINAL_LAYER), ONLINE_SALTS])
    assert hashlib.sha256(table.encode()).hexdigest()[:16] == "6eb028852c534c67"  # format 18: the class and shape contexts, the first-layer and a final mixer by the last 3 bytes' classes (format 16: the names only in comments)
    default = MixConfig()  # the default leaves these out
    assert default.orders == (3, 4) and default.without == (200, 300, 301, 1101, 961, 302, 800, 600)
    assert default.sparse == EVERY_CONTEXT.sparse[:2] and default.byte_contexts == tuple(c for c in EVERY_CONTEXT.byte_contexts if c != (0, 8))


def test_without_leaves_out_exactly_the_contexts_named():
    """`without` drops those rows and keeps the others in their order (the match models'
    contexts come with the match models); the online network embeds only contexts present."""
    everything = context_table(EVERY_CONTEXT, 1, 4)
    rows = context_table(dataclasses.replace(EVERY_CONTEXT, without=(1001, 302)), 1, 4)
    assert rows == [row for row in everything if row[0] not in (1001, 302)]
    model = ContextMixingModel(256, 1, 28, dataclasses.replace(EVERY_CONTEXT, table_bits=12, without=(1001, 302), online_hidden=4, online_table_bits=8))
    embedded = [model.contexts[i][0] for i in model.state.online_contexts]
    assert embedded == [salt for salt, _ in rows if salt in ONLINE_SALTS] and 1001 not in embedded


def test_payload_is_pinned():
    """The bitstream of a fixed input: a change here breaks every archive made before it."""
    tokens = np.frombuffer(b"the cat sat on the mat; the cat ate the rat. " * 40, dtype=np.uint8).astype(np.int64)
    payload = round_trip(tokens, 256, 3, **SMALL)
    assert hashlib.sha256(payload).hexdigest()[:16] == "ce289e72070a59a1"


def test_a_changed_payload_is_refused():
    tokens = np.frombuffer(b"abracadabra " * 300, dtype=np.uint8).astype(np.int64)
    payload = bytearray(round_trip(tokens, 256, 4, **SMALL))
    payload[len(payload) // 2] ^= 0x10
    with pytest.raises(codec.CorruptPayload):
        codec.decode(model(256, 4, **SMALL), bytes(payload), len(tokens), 4, PROB_BITS)
    with pytest.raises(codec.CorruptPayload):
        codec.decode(model(256, 4, **SMALL), bytes(payload[:-4]), len(tokens), 4, PROB_BITS)


def test_without_must_name_contexts_of_the_table():
    from pipeline.config import PipelineConfig
    from submissions.errors import UserError

    for salts in ([1], [5], [400]):  # order 0, no context, a match model's (config: match_lengths)
        with pytest.raises(UserError, match="without"):
            PipelineConfig.from_dict({"model": {"kind": "mix", "without": salts}}).validate()
    assert PipelineConfig.from_dict({"model": {"kind": "mix", "without": [983, 2001]}}).validate().model.without == (983, 2001)
