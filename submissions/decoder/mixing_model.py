"""Online context mixing over the bits of tokens, integer-exact, as compiled kernels.

Each token is coded as n_bits binary decisions, most significant first; the decisions made
so far form a node of the binary tree over token ids. Per decision, for one stream, top to
bottom (lpaq1's shape): every context (contexts.py) gives the counts of its cell for this
node, which a state map turns into a probability, and its run (run_model.py: the token it saw
last, how many times in a row); match models add their confidence, logistic
mixers (one per selector) combine the stretched inputs, final mixers combine the mixers, three
refiners adjust the result; the coder codes the bit; everything learns it. Encoder and decoder
start empty and apply the same updates, so the archive stores nothing but the config.

Contexts are hashed once per token, then once per group of GROUP_BITS decisions into a
bucket that holds the cells of the group's decisions (counts.py), so a decision touches
memory that is already in cache. After the token, the model records it: token history,
the last bytes of text, words, line and markup state, runs, what followed the last tokens
(indirect contexts), match models. Streams are coded one
after another in each step (stream 0's token, then stream 1's, ...), the same way by the
encoder and the decoder, so their updates need not commute.

A neural model, when the config has one, is one more input: its integer frequencies over the
vocabulary give P(bit | node) exactly, from cumulative sums.

This module holds the state and the kernels per token (the facts and hashes before it, the
record after it); mixing_steps.py the coding loop and the kernels per decision.
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass

import numpy as np

from .contexts import BYTE_CLASSES, CLASS_BITS, CLASS_BYTES, COLUMN_CAP, MARKS, MATCHES, NESTING_BRACKETS, ONLINE_SALTS, TEXT_PARTS, TOKEN_PARTS, context_table
from .contexts import (  # facts set per token
    ABOVE, CLASSES, COLUMN, FOLDED_WORD, FOLLOWED, FOLLOWED_TWO, LAST_BYTE, LAST_CLASSES, LAST_TOKEN, LAST_TWO_BYTES, LINE_HEAD, MARK,
    MARK_BEFORE, MARK_WORD, NESTING, PREVIOUS_WORD, SCOPE, SHAPE, STREAM, WORD, WORD_BEFORE, ZERO,
)  # fmt: skip
from .jit import I, kernel
from .match_model import CLASS as MATCH_CLASS_COLUMN
from .match_model import PREDICTED
from .match_model import OFFSET, match_find, match_record, new_match_state, new_offset_state, offset_find, offset_record
from .mixing import MAP_LIMIT, U, map_learn, new_refiner, refine
from .online_model import new_online_state
from .run_model import new_run_state, run_find, run_record, run_touch

HASH_MULTIPLIER = U(0x9E3779B97F4A7C15)
NODE_MULTIPLIER = U(0xD6E8FEB86659FD93)
TEXT_RING_BITS = 16  # bytes of text kept per stream, for the byte above
TOKEN_RING_BITS = 24  # tokens kept for the match models (zeroed lazily: a short input touches few pages)
FOLLOWED_BITS = 22  # the table of what followed two tokens: 2**22 entries (16 MiB)
TOKEN_REFINER_BITS = 18  # 2**16: +32 B on enwik6
TOKEN_REFINER_CONTEXTS = 1 << TOKEN_REFINER_BITS  # the second and third refiners' contexts: (last token, node), (last two tokens, node), hashed
NEST_CAPS = np.array([cap for _, _, cap in NESTING_BRACKETS], dtype=np.int64)

# params: the model's scalars, one int64 array
N_BITS, VOCAB, STREAMS, BUCKET_BITS, COUNT_LIMIT, RATE, N_CONTEXTS, N_MATCHES, HAS_NEURAL, HAS_ONLINE, TOUCHED = range(11)
# text: per stream, uint64 columns
BYTES, TEXT_WORD, TEXT_PREVIOUS_WORD, TEXT_WORD_BEFORE, TEXT_FOLDED, TEXT_MARK, TEXT_MARK_BEFORE, TEXT_MARK_WORD, TEXT_SCOPE, TEXT_CLASSES, TEXT_SHAPE = range(11)
# lines: per stream, int64 columns
LENGTH, LINE_START, PREVIOUS_LINE, SCOPE_PENDING, NEST = range(5)  # NEST, NEST + 1, NEST + 2: [ { < open
# token_info: per token id, int64 columns
T_LENGTH, T_AFTER_NEWLINE, T_LINE_IN_TOKEN, T_BREAKS, T_OPENS, T_MARK_OLDER, T_MARK_LAST, T_TAIL_BITS, T_NEST = range(9)
# token_hash: per token id, uint64 columns
T_TAIL, T_WORD_TAIL, T_FOLDED, T_FOLDED_WORD_TAIL = range(4)


@dataclass(frozen=True)
class MixConfig:
    """The mixing model's config, as the archive header carries it (pipeline/config.py adds
    the neural input's training options)."""

    kind: str = "mix"
    orders: tuple = (3, 4)  # token context orders (order 0 is always there; 1 and 2 gain nothing beside the others: format 14)
    sparse: tuple = ((1,), (2,))  # token contexts that skip tokens: offsets back, 0 = the last token ((1, 2): see without)
    byte_contexts: tuple = ((0, 1), (0, 2), (0, 3), (0, 4), (0, 5), (2, 2), (3, 3), (4, 4))  # (skip, n): n bytes of text, skip bytes back ((0, 8): see without)
    word: bool = True  # contexts of the current word, with the word before it, with the last token
    lines: bool = True  # column contexts: the column with the last byte / the word; the byte above; the line's first byte
    marks: bool = True  # the last markup bytes ([]{}<>|=... ) with the last byte / the word
    indirect: bool = True  # the tokens that followed the last token (two tokens) before, with it (them)
    local: bool = True  # with several streams: orders 0-2 and the word hashed with the stream
    classes: bool = True  # contexts of the classes of the last 12 bytes (letter, digit, space, markup, ...) and of the text's shape, alone and with the last two bytes (the mixers by the last 3 bytes' classes do not depend on it)
    without: tuple = (200, 300, 301, 1101, 961, 302, 800, 600)  # contexts of the groups above left out, by salt (contexts.py):
    # the word, column with last byte / word, the last two tokens' followers, two words before, the byte above (beside the
    # others each gains nothing; with orders 1 and 2: -112 B and ~17% of the coding time on enwik6, format 14); the mark with
    # the last byte (and the word before the mark), and out of sparse and byte_contexts tokens 1-2 back and 8 bytes of text
    # (+68 B, ~5% of the coding time: format 15; benchmarks/results/context_leave_out_format14_2026-12-04.md,
    # speed_format15_2026-12-05.md)
    table_bits: int = 26  # count cells in the shared hashed table: 2**table_bits (4 bytes each: 256 MiB)
    count_limit: int = 511  # a cell's counts are halved past this sum (adapts to change; 255: +16 B on enwik6)
    match_lengths: tuple = (2, 4, 8)  # one match model per length: tokens of context a match must share
    local_match_lengths: tuple = (1,)  # the same, finding matches only in the stream's own text
    offset_lengths: tuple = (4,)  # offset models (match_model.offset_find), by tokens of context (2, 3: a little worse on nodejs; (3, 4): -12 B there)
    learning_rate: int = 16  # mixer step size
    online_hidden: int = 96  # a network that learns while it codes (online_model.py): its hidden units, 0 = none
    online_rates: tuple = (8, 48)  # its learning rates in 1/1024: output weights, embeddings
    online_table_bits: int = 20  # the contexts' embeddings: a hashed table of 2**online_table_bits rows (194 MiB at 96 units)

    def __post_init__(self):  # JSON gives lists; keep the frozen config hashable
        for name in ("orders", "match_lengths", "local_match_lengths", "offset_lengths", "online_rates", "without"):
            object.__setattr__(self, name, tuple(map(int, getattr(self, name))))
        for name in ("sparse", "byte_contexts"):
            object.__setattr__(self, name, tuple(tuple(map(int, c)) for c in getattr(self, name)))


SharedState = namedtuple(  # the state record's fields that the kernels per token and the refiners read
    "SharedState",
    "params parts salts refiner match_table match_state match_hash match_lengths match_local byte_token last_start"
    " history text lines text_ring token_ring token_info token_hash token_bytes byte_class followed followed_two"
    " run_table run_found run_alive"
    " online_params online_contexts context_rows row_rates embed out_w h grad_h online_logits"
    " facts context_hash refine_at",
)


def _text_tables(token_bytes: list) -> dict:
    """Per token id: (token_info) its length, how many bytes follow its last newline (-1: none),
    where the line before that one starts in it (-1: not in the token), whether it ends a word
    (holds a byte that is neither a letter nor a digit), whether it opens [ { <, its last two
    markup bytes + 1 (0: none; older first), how many bits its last 8 bytes hold, its nesting
    change; (token_hash) its last 8 bytes, a hash of what follows its last non-letter byte, the
    id of the token with ASCII letters lower-cased (itself if none) and that one's word tail;
    (token_bytes) its bytes, zero-padded."""
    def is_letter(b: int) -> bool:
        return b >= 0x80 or chr(b).isalnum()

    def word_tail(text: bytes) -> int:  # hash of what follows the last byte that is no letter
        cut = max([i for i, b in enumerate(text) if not is_letter(b)], default=-1)
        return (int.from_bytes(text[cut + 1 :][-7:], "big") + 1) * int(HASH_MULTIPLIER) % (1 << 64)

    ids = {text: i for i, text in enumerate(token_bytes)}
    info, hashes = [], []
    for i, text in enumerate(token_bytes):
        marks = ([0, 0] + [b + 1 for b in text if b in MARKS])[-2:]
        info.append(
            [
                len(text),
                len(text) - 1 - text.rindex(b"\n") if b"\n" in text else -1,
                text.rindex(b"\n", 0, text.rindex(b"\n")) + 1 if text.count(b"\n") > 1 else -1,
                any(not is_letter(b) for b in text),
                any(b in b"[{<" for b in text),
                *marks,
                8 * len(text[-8:]),
                *[text.count(o) - text.count(c) for o, c, _ in NESTING_BRACKETS],
            ]
        )
        hashes.append([int.from_bytes(text[-8:], "big"), word_tail(text), ids.get(text.lower(), i), word_tail(text.lower())])
    width = max(1, max(map(len, token_bytes)))
    return {
        "token_info": np.array(info, dtype=np.int64).reshape(len(token_bytes), T_NEST + 3),
        "token_hash": np.array(hashes, dtype=np.uint64).reshape(len(token_bytes), 4),
        "token_bytes": np.array([list(t) + [0] * (width - len(t)) for t in token_bytes], dtype=np.uint8).reshape(len(token_bytes), width),
        "byte_class": np.array([next((k + 1 for k, members in enumerate(BYTE_CLASSES) if byte in members), 0) for byte in range(256)], dtype=np.uint8),
    }


def _part_codes(rows: list) -> np.ndarray:
    longest = max([len(parts) for _, parts in rows] + [1])
    return np.array([list(parts) + [-1] * (longest - len(parts)) for _, parts in rows], dtype=np.int64).reshape(len(rows), longest)


class ContextMixingBase:
    """What the mixing model (mixing_steps.py) and the online model (online_alone.py) share:
    the config, the state record, the kernels per token; each codes in its own kernel."""

    runtime = ("numpy", "numba")  # what its decoder needs beyond the stdlib
    modules = ("mixing_model", "mixing", "match_model", "run_model", "online_model", "logistic", "contexts", "binary_coder", "jit", "program")  # carried by its archives
    config_class = MixConfig
    binary = True  # coded bit by bit inside the kernel (code_steps)
    uses_token_bytes = True  # build_model passes the tokenizer's id -> bytes table
    refiners = 3  # refiners per decision (refine_three's), each with its lower knot in refine_at
    state_type = SharedState  # its state record: these fields and own_arrays'

    def __init__(self, vocab_size: int, n_streams: int, prob_bits: int, config: MixConfig = MixConfig(), token_bytes=None, neural=None):
        self.config, self.n_streams, self.prob_bits = config, n_streams, prob_bits
        self.n_bits = n_bits = max(1, (vocab_size - 1).bit_length())
        self.vocab_size = vocab_size
        self.neural = neural  # a token model with step(prev) -> (B, V) frequencies, or None
        if token_bytes is None:  # a bytes-only vocabulary: token i is byte i
            token_bytes = [bytes([i % 256]) for i in range(vocab_size)]
        lengths = tuple(config.local_match_lengths) + tuple(config.match_lengths) + tuple(config.offset_lengths)
        self.contexts = context_table(config, n_streams, len(lengths))
        online = config.online_hidden > 0
        online_rows = [i for i, (salt, _) in enumerate(self.contexts) if online and salt in ONLINE_SALTS]
        history = max([2, *lengths] + [max(c) + 1 for c in config.sparse] + list(config.orders))
        params = [n_bits, vocab_size, n_streams, config.table_bits - 3, config.count_limit, config.learning_rate, len(self.contexts), len(lengths), neural is not None, online, 0]
        arrays = dict(
            params=np.array(params, dtype=np.int64),
            parts=_part_codes(self.contexts),
            salts=np.array([salt * int(HASH_MULTIPLIER) % (1 << 64) for salt, _ in self.contexts], dtype=np.uint64),
            refiner=new_refiner(self.refiner_contexts()),
            **new_match_state(len(lengths), n_streams, n_bits, min(config.table_bits, 22)),
            match_lengths=np.array(lengths, dtype=np.int64),
            match_local=np.array([1] * len(config.local_match_lengths) + [0] * len(config.match_lengths) + [OFFSET] * len(config.offset_lengths), dtype=np.int64),
            **new_offset_state(n_streams, vocab_size, TEXT_RING_BITS),
            history=np.zeros((n_streams, history), dtype=np.int64),  # token + 1, newest first; 0 = none
            text=np.zeros((n_streams, TEXT_SHAPE + 1), dtype=np.uint64),
            lines=np.zeros((n_streams, NEST + 3), dtype=np.int64),
            text_ring=np.zeros((n_streams, 1 << TEXT_RING_BITS), dtype=np.uint8),
            token_ring=np.zeros(1 << TOKEN_RING_BITS, dtype=np.uint16 if vocab_size <= 1 << 16 else np.int32),
            **_text_tables(token_bytes),
            **new_run_state(len(self.contexts), n_bits),
            **new_online_state(config.online_hidden, config.online_rates, online_rows, config.online_table_bits, n_bits),
            followed=np.zeros(vocab_size + 1, dtype=np.uint64),  # by last token + 1: (older follower + 1) << 16 | newer + 1
            followed_two=np.zeros(1 << FOLLOWED_BITS, dtype=np.uint32),  # the same by a hash of the last two (two 16-bit ids fit 32 bits)
            facts=np.zeros(MATCHES + len(lengths), dtype=np.uint64),
            context_hash=np.zeros(len(self.contexts), dtype=np.uint64),
            refine_at=np.zeros(self.refiners, dtype=np.int64),
            **self.own_arrays(len(lengths)),
        )
        arrays["lines"][:, PREVIOUS_LINE] = -1
        self.state = self.state_type(**arrays)
        self.previous = np.full(n_streams, -1, dtype=np.int64)  # for the neural input: each stream's last token

    def own_arrays(self, n_matches: int) -> dict:
        """The arrays of the model's own kernels, beyond SharedState's (fields of state_type)."""
        return {}

    def refiner_contexts(self) -> int:
        """The refiners' contexts (refine_three): by node; by (last token, node); by (last two tokens, node)."""
        return (1 << self.n_bits) + 2 * TOKEN_REFINER_CONTEXTS


# ---- the kernels per token: its facts and hashes before it, its record after it -----------


@kernel
def token_facts(s, b, position):
    """The facts of stream b before its next token, the match models' predictions, and the
    hash of every context."""
    f, text, lines, ring = s.facts, s.text, s.lines, s.text_ring
    ring_mask = ring.shape[1] - 1
    f[ZERO] = U(0)
    f[LAST_BYTE] = text[b, BYTES] & U(0xFF)
    f[LAST_TWO_BYTES] = text[b, BYTES] & U(0xFFFF)
    f[LAST_TOKEN] = U(s.history[b, 0])
    f[WORD], f[PREVIOUS_WORD], f[WORD_BEFORE] = text[b, TEXT_WORD], text[b, TEXT_PREVIOUS_WORD], text[b, TEXT_WORD_BEFORE]
    f[FOLDED_WORD], f[SCOPE] = text[b, TEXT_FOLDED], text[b, TEXT_SCOPE]
    f[MARK], f[MARK_BEFORE], f[MARK_WORD] = text[b, TEXT_MARK], text[b, TEXT_MARK_BEFORE], text[b, TEXT_MARK_WORD]
    length, line_start, previous_line = lines[b, LENGTH], lines[b, LINE_START], lines[b, PREVIOUS_LINE]
    column = length - line_start
    f[COLUMN] = U(min(column, COLUMN_CAP))
    for ahead in range(2):  # the byte of the line before at this column, and the next one
        at = previous_line + column + ahead
        inside = previous_line >= 0 and at < line_start - 1 and length - at <= ring_mask
        f[ABOVE + ahead] = U(ring[b, at & ring_mask]) if inside else U(256)
    f[LINE_HEAD] = U(I(ring[b, line_start & ring_mask]) + 1) if 0 < column <= ring_mask else U(0)
    f[NESTING] = U(lines[b, NEST] * 16 + lines[b, NEST + 1] * 2 + lines[b, NEST + 2])
    f[STREAM] = U(b + 1)
    f[CLASSES], f[SHAPE] = text[b, TEXT_CLASSES], text[b, TEXT_SHAPE]
    f[LAST_CLASSES] = text[b, TEXT_CLASSES] & U((1 << 3 * CLASS_BITS) - 1)
    f[FOLLOWED] = s.followed[s.history[b, 0]]
    f[FOLLOWED_TWO] = U(s.followed_two[two_tokens_slot(s, b)])
    n_streams, n_bits = s.params[STREAMS], s.params[N_BITS]
    for m in range(s.params[N_MATCHES]):
        if s.match_local[m] == OFFSET:
            offset_find(s, m, b, length, n_bits)
        else:
            match_find(s.match_table, s.match_state, s.match_hash, m, b, s.match_lengths[m], s.match_local[m], s.history, s.token_ring, position, n_streams, n_bits)
        length_class = s.match_state[m, b, MATCH_CLASS_COLUMN]
        f[MATCHES + m] = U(s.match_state[m, b, PREDICTED] << 8 | length_class) if length_class else U(0)
    touched = I(0)
    for c in range(s.params[N_CONTEXTS]):
        h = s.salts[c]
        for part in s.parts[c]:
            if part < 0:
                break
            h = (h + part_value(s, b, part)) * HASH_MULTIPLIER
        s.context_hash[c] = h
        touched += run_touch(s.run_table, h)  # its entry on its way (see choose_buckets)
    s.params[TOUCHED] = touched
    for c in range(s.params[N_CONTEXTS]):
        run_find(s.run_table, s.run_found, c, s.context_hash[c])


@kernel
def part_value(s, b, part):
    if part < TOKEN_PARTS:
        return s.facts[part]
    if part < TEXT_PARTS:
        return U(s.history[b, part - TOKEN_PARTS])
    skip, n = (part - TEXT_PARTS) >> 4, (part - TEXT_PARTS) & 15
    return s.text[b, BYTES] >> U(8 * skip) & (U(0xFFFFFFFFFFFFFFFF) >> U(64 - 8 * n))


@kernel
def record_token(s, b, position, token):
    """After stream b's token at `position`: the token ring, the match models, the history,
    the text state."""
    s.token_ring[position & (len(s.token_ring) - 1)] = token
    for c in range(s.params[N_CONTEXTS]):
        run_record(s.run_table, s.run_found, c, s.context_hash[c], token)
    follower = U(token + 1)
    last = s.history[b, 0]
    s.followed[last] = (s.followed[last] << U(16) | follower) & U(0xFFFFFFFF)
    at = two_tokens_slot(s, b)
    s.followed_two[at] = (U(s.followed_two[at]) << U(16) | follower) & U(0xFFFFFFFF)
    for m in range(s.params[N_MATCHES]):
        if s.match_local[m] == OFFSET:
            offset_record(s, m, b, token, s.lines[b, LENGTH])
        else:
            match_record(s.match_table, s.match_state, s.match_hash, m, b, s.match_lengths[m], s.history, s.token_ring, position, token, s.params[STREAMS])
    for j in range(s.history.shape[1] - 1, 0, -1):
        s.history[b, j] = s.history[b, j - 1]
    s.history[b, 0] = token + 1
    record_text(s, b, position, token)


@kernel
def two_tokens_slot(s, b):
    """The slot of stream b's last two tokens in the table of what followed them."""
    h = ((U(s.history[b, 1]) << U(32) | U(s.history[b, 0])) + U(1)) * HASH_MULTIPLIER
    return I(h >> U(64 - FOLLOWED_BITS))


@kernel
def record_text(s, b, position, token):
    """Bytes (and where the token starts, for the offset models), words, lines, markup and nesting
    after stream b's token (at `position` of the token ring)."""
    text, lines, info = s.text, s.lines, s.token_info
    word = text[b, TEXT_WORD]
    breaks = info[token, T_BREAKS]
    if breaks:  # the token ends a word: what follows its last non-letter byte starts the next
        text[b, TEXT_WORD_BEFORE] = text[b, TEXT_PREVIOUS_WORD]
        text[b, TEXT_PREVIOUS_WORD] = word
        text[b, TEXT_WORD] = s.token_hash[token, T_WORD_TAIL]
        text[b, TEXT_FOLDED] = s.token_hash[token, T_FOLDED_WORD_TAIL]
    else:
        text[b, TEXT_WORD] = (word + U(token) + U(1)) * HASH_MULTIPLIER
        text[b, TEXT_FOLDED] = (text[b, TEXT_FOLDED] + s.token_hash[token, T_FOLDED] + U(1)) * HASH_MULTIPLIER
    bits = info[token, T_TAIL_BITS]
    if bits >= 64:
        text[b, BYTES] = s.token_hash[token, T_TAIL]
    elif bits > 0:
        text[b, BYTES] = text[b, BYTES] << U(bits) | s.token_hash[token, T_TAIL]
    # lines: append the bytes, move the line starts; the bytes' classes
    ring_mask = s.text_ring.shape[1] - 1
    start, length = lines[b, LENGTH], info[token, T_LENGTH]
    classes, shape = text[b, TEXT_CLASSES], text[b, TEXT_SHAPE]
    for j in range(length):  # the bytes, and per byte the token (at `position`) that starts there, for the offset models
        byte = s.token_bytes[token, j]
        s.text_ring[b, (start + j) & ring_mask] = byte
        s.byte_token[b, (start + j) & ring_mask] = 0 if j else position + 1
        kind = U(s.byte_class[byte])
        classes = classes << U(CLASS_BITS) | kind
        if kind != shape & U((1 << CLASS_BITS) - 1):  # the shape: a class once per run of it
            shape = shape << U(CLASS_BITS) | kind
    kept = U((1 << CLASS_BITS * CLASS_BYTES) - 1)
    text[b, TEXT_CLASSES], text[b, TEXT_SHAPE] = classes & kept, shape & kept
    s.last_start[b, token] = start
    lines[b, LENGTH] = start + length
    after, in_token = info[token, T_AFTER_NEWLINE], info[token, T_LINE_IN_TOKEN]
    previous = lines[b, LINE_START] if after >= 0 else lines[b, PREVIOUS_LINE]
    lines[b, PREVIOUS_LINE] = start + in_token if in_token >= 0 else previous
    if after >= 0:
        lines[b, LINE_START] = start + length - after
    # markup: a token's own markup bytes push the older ones out
    older, last = info[token, T_MARK_OLDER], info[token, T_MARK_LAST]
    if older > 0:
        text[b, TEXT_MARK_BEFORE] = U(older)
    elif last > 0:
        text[b, TEXT_MARK_BEFORE] = text[b, TEXT_MARK]
    if last > 0:
        text[b, TEXT_MARK] = U(last)
        text[b, TEXT_MARK_WORD] = word
    ended = lines[b, SCOPE_PENDING] and breaks
    if ended:
        text[b, TEXT_SCOPE] = word
    lines[b, SCOPE_PENDING] = 1 if info[token, T_OPENS] or (lines[b, SCOPE_PENDING] and not ended) else 0
    for j in range(3):
        lines[b, NEST + j] = min(max(lines[b, NEST + j] + info[token, T_NEST + j], 0), NEST_CAPS[j])


# ---- refiners: what the two coding kernels share per decision --------------------------------


@kernel
def refine_three(s, b, node, p):
    """p (12 bits) refined (mixing.refine) by node, by (last token, node) and by (last two tokens,
    node): the three answers in 12 + FINE_BITS bits; their lower knots in s.refine_at[:3]."""
    n_bits = s.params[N_BITS]
    by_node, s.refine_at[0] = refine(s.refiner, node, p)
    by_token, s.refine_at[1] = refine(s.refiner, (1 << n_bits) + token_node(s, b, node, 1), p)
    by_tokens, s.refine_at[2] = refine(s.refiner, (1 << n_bits) + TOKEN_REFINER_CONTEXTS + token_node(s, b, node, 2), p)
    return by_node, by_token, by_tokens


@kernel
def token_node(s, b, node, n):
    """A hash of stream b's last n tokens (1 or 2) with the node, in [0, TOKEN_REFINER_CONTEXTS)."""
    last = U(s.history[b, 0]) if n == 1 else U(s.history[b, 1]) << U(16) | U(s.history[b, 0])
    return I((last << U(s.params[N_BITS]) | U(node)) * HASH_MULTIPLIER >> U(64 - TOKEN_REFINER_BITS))


@kernel
def refiners_learn(s, bit):
    for k in range(len(s.refine_at)):  # both knots around each refiner's p
        map_learn(s.refiner, s.refine_at[k], bit, MAP_LIMIT)
        map_learn(s.refiner, s.refine_at[k] + 1, bit, MAP_LIMIT)
