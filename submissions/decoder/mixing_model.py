"""Online context mixing over the bits of tokens, integer-exact.

Each token is coded as n_bits binary decisions, most significant first; the
decisions made so far form a node of the binary tree over token ids. For every
decision, models predict P(bit = 1), logistic mixers combine them, two refiners
adjust the result, and it is coded as a two-symbol rANS step. Everything learns
while it codes: encoder and decoder start empty and apply the same updates, so
the archive stores nothing but the config.

Contexts, each a hashed table of bit counts per (context, node):
- order 0 (the node alone) and the last k tokens for each k in `orders`;
- `sparse` token contexts (e.g. (1,): the token before the last one alone);
- `byte_contexts` (skip, n): n bytes of text ending `skip` bytes before the
  current token (across token borders, from the token -> bytes table), which
  lets different tokenizations of the same text share statistics;
- the current word, the current + previous word, the current word + the last token, the
  current word with ASCII letters lower-cased, so that 'The' and 'the' share counts, and the
  two words before the current one (`word`);
- `lines`: the column (bytes since the last newline) with the last byte and with the current
  word, and the byte above (same column, line before) with the last byte, and with the byte after
  it and the last two bytes: tables, lists and aligned markup repeat by column; the line's
  first byte (list, table row, heading, ...) with the last byte and with the current word, and
  as a mixer selector with the node;
- `marks`: the last markup byte (one of MARKS) with the last byte and with the current word,
  the two last markup bytes with the last byte, and the last markup byte with the word just
  before it (`title` in `|title=`) and the last byte: inside [[...]], {{...}}, <...>, a table
  cell or after a '=' different things follow (-2% on enwik6 with the line's first byte); the
  last markup byte also selects a mixer's weights (-0.5%); the nesting (brackets, braces and
  angle brackets still open, capped at 3, 3 and 1) with the last byte, and as a mixer selector
  (-0.3%); the scope, the first word after the last opening [, { or < (`Category` in
  [[Category:..., `cite` in {{cite web|...), with the last markup byte and last byte, and with
  the current word: what a link, template or tag holds depends on its kind (-0.26%).
- `local`: order 0, the last token, the last two tokens and the current word, each hashed
  with the stream: the statistics of the stream's own text. The shared tables mix all the
  streams' text (the last 255 counts of a common context come from every stream); these keep
  what this document does (-2.1% on enwik6's first half at 64 streams).
A count pair becomes a probability through a map learned per context kind. A context
reads and writes one of two neighbouring cells (`_two_way`): the one holding its check,
else the one with fewer counts, so recurring contexts collide less at equal memory.
Match models (match_model.py) predict the token that followed the last
occurrence of the current n tokens, in the stream's own text for each n in
`local_match_lengths`, anywhere for each n in `match_lengths`; each also gives a
context, (its predicted token, match length), whose counts learn what really follows such
a prediction, including when it fails. A neural
model, when the config has one, is one more input: its integer frequencies
over the vocabulary give P(bit | node) exactly, from cumulative sums.

Integer state only; see mixing.py for why updates do not depend on stream order.
"""

from __future__ import annotations

import numpy as np

from .logistic import PROB_BITS, PROB_ONE, squash, stretch
from .match_model import CLASSES as MATCH_CLASSES
from .match_model import MatchModel
from .mixing import CELL_STATES, BitCounts, CountMap, Mixers, Refiner

HASH_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)
NODE_MULTIPLIER = np.uint64(0xD6E8FEB86659FD93)
MATCH_TABLE_BITS = 22  # remembered contexts per match model (32 MiB)
MAP_LIMIT = 4095  # count maps halve past this many observations per cell
BIAS = 256  # the constant input of every mixer
COLUMN_CAP = 63  # columns past this share one context
SEEN_CLASSES = 128  # mixer selector: which of orders 1-4 were seen (16) x eighths of the other contexts seen
NODE_SETS = 1 << 19  # mixer weight vectors a selector may have with the node (see __init__)
MARKS = b"[]{}<>|=*#:'&;\n()/\""  # the markup bytes of `marks` (adding .,!?-_ coded larger)
NESTING = ((b"[", b"]", 3), (b"{", b"}", 3), (b"<", b">", 1))  # `marks`: open minus closed, capped


def _salt(kind: int) -> np.uint64:
    """A well-spread 64-bit start value per context kind."""
    return np.uint64(kind * int(HASH_MULTIPLIER) % (1 << 64))


def _text_tables(token_bytes: list) -> dict:
    """Per token id: its last 8 bytes (and how many), whether it ends a word (holds a byte that
    is neither a letter nor a digit), a hash of what follows its last such byte, its bytes
    (zero-padded) and length, how many bytes follow its last newline (-1: none) and where the
    line before that one starts in it (-1: not in the token), its markup bytes and nesting, and
    with ASCII letters lower-cased: the id of that token (itself if none) and word tail hash."""
    width = max(1, max(map(len, token_bytes)))
    def is_letter(b: int) -> bool:
        return b >= 0x80 or chr(b).isalnum()

    def word_tail(text: bytes) -> int:  # hash of what follows the last byte that is no letter
        cut = max([i for i, b in enumerate(text) if not is_letter(b)], default=-1)
        return int.from_bytes(text[cut + 1 :][-7:], "big") + 1

    ids = {text: i for i, text in enumerate(token_bytes)}
    tails, breaks, after_newline, two_newlines, marks = [], [], [], [], []
    for text in token_bytes:
        after_newline.append(len(text) - 1 - text.rindex(b"\n") if b"\n" in text else -1)
        two_newlines.append(text.rindex(b"\n", 0, text.rindex(b"\n")) + 1 if text.count(b"\n") > 1 else -1)
        marks.append(([0, 0] + [b + 1 for b in text if b in MARKS])[-2:])
        tails.append(text[-8:])
        breaks.append(any(not is_letter(b) for b in text))
    return {
        "tail": np.array([int.from_bytes(t, "big") for t in tails], dtype=np.uint64),
        "tail_bits": np.array([8 * len(t) for t in tails], dtype=np.uint64),
        "breaks": np.array(breaks, dtype=bool),
        "word_tail": np.array([word_tail(t) for t in token_bytes], dtype=np.uint64) * HASH_MULTIPLIER,
        "folded": np.array([ids.get(t.lower(), i) for i, t in enumerate(token_bytes)], dtype=np.uint64),
        "folded_word_tail": np.array([word_tail(t.lower()) for t in token_bytes], dtype=np.uint64) * HASH_MULTIPLIER,
        "bytes": np.array([list(t) + [0] * (width - len(t)) for t in token_bytes], dtype=np.uint8),
        "length": np.array([len(t) for t in token_bytes], dtype=np.int64),
        "after_newline": np.array(after_newline, dtype=np.int64),
        "line_in_token": np.array(two_newlines, dtype=np.int64),
        "marks": np.array(marks, dtype=np.uint64),  # the last two markup bytes + 1 (0: none), older first
        "opens": np.array([any(b in b"[{<" for b in text) for text in token_bytes], dtype=bool),
        "nesting": np.array([[text.count(o) - text.count(c) for o, c, _ in NESTING] for text in token_bytes], dtype=np.int64),
    }


class ContextMixingModel:
    runtime = ("numpy",)
    binary = True  # coded bit by bit: begin(prev, k), then zero_freqs()/update(bits) n_bits times
    uses_token_bytes = True  # build_model passes the tokenizer's id -> bytes table

    def __init__(
        self,
        vocab_size: int,
        n_streams: int,
        prob_bits: int,
        orders: tuple = (1, 2, 3, 4),
        sparse: tuple = ((1,), (2,), (1, 2)),
        byte_contexts: tuple = ((0, 1), (0, 2), (0, 3), (0, 4), (0, 8), (2, 2), (3, 3)),
        word: bool = True,
        lines: bool = True,
        marks: bool = True,
        local: bool = True,
        table_bits: int = 25,
        count_limit: int = 255,
        match_lengths: tuple = (4,),
        local_match_lengths: tuple = (1,),
        learning_rate: int = 20,
        token_bytes: list | None = None,
        neural=None,
    ):
        self.vocab_size, self.n_streams, self.prob_bits = vocab_size, n_streams, prob_bits
        self.n_bits = max(1, (vocab_size - 1).bit_length())
        self.token_contexts = [tuple(range(k)) for k in orders] + [tuple(c) for c in sparse]
        self.byte_contexts = [(int(skip), int(n)) for skip, n in byte_contexts]
        self.word, self.lines, self.marks, self.local = word, lines, marks, local
        self.table_bits = table_bits
        if token_bytes is None:  # a bytes-only vocabulary: token i is byte i
            token_bytes = [bytes([i % 256]) for i in range(vocab_size)]
        self.text = _text_tables(token_bytes)

        n_contexts = 1 + len(self.token_contexts) + len(self.byte_contexts) + 5 * word + 6 * lines + 7 * marks + 4 * local + len(match_lengths) + len(local_match_lengths)
        self.counts = BitCounts((1 << self.n_bits) + (1 << table_bits), count_limit, n_streams)
        self.count_maps = CountMap(n_contexts * CELL_STATES, MAP_LIMIT)
        self.map_offsets = np.arange(n_contexts) * CELL_STATES
        self.seen_weights = 8 << np.arange(min(4, n_contexts - 1))  # orders 1-4 seen: 16 classes of 8 (SEEN_CLASSES)
        match_bits = min(table_bits, MATCH_TABLE_BITS)
        self.matches = [MatchModel(n_streams, self.n_bits, n, match_bits, local=True) for n in local_match_lengths]
        self.matches += [MatchModel(n_streams, self.n_bits, n, match_bits) for n in match_lengths]
        self.neural = neural  # a token model with step(prev) -> (B, V) frequencies, or None
        n_inputs = n_contexts + len(self.matches) + (neural is not None) + 1  # + bias
        # one mixer per selector, each with a weight vector per value: (depth, match length),
        # (depth, which contexts were seen), (depth, last byte of text), node (which implies the depth),
        # (last token or none, node); with `marks` (last markup byte or none, node), (nesting, node);
        # with `lines` (the line's first byte or none, node). A selector with many values goes with the node while that stays below NODE_SETS weight
        # vectors, else with the depth (at vocab 4096, (last token, node) would be 16M vectors)
        self.selector_values = [vocab_size + 1] + [257, 64] * marks + [257] * lines
        self.by_node = [(v << self.n_bits) <= NODE_SETS for v in self.selector_values]
        selected = [v << self.n_bits if by_node else v * self.n_bits for v, by_node in zip(self.selector_values, self.by_node)]
        self.mixer_sets = np.array([MATCH_CLASSES * self.n_bits, SEEN_CLASSES * self.n_bits, 256 * self.n_bits, 1 << self.n_bits] + selected)
        self.mixer_offsets = np.concatenate([[0], np.cumsum(self.mixer_sets)[:-1]])
        self.mixers = Mixers(int(self.mixer_sets.sum()), n_inputs, learning_rate, (1 << 16) // n_inputs)  # start as an average
        # four final mixers over the first layer's outputs, averaged in the logistic domain; weights
        # by depth, (depth, match length), (depth, which contexts were seen), (depth, last byte)
        self.final_sets = np.array([1, MATCH_CLASSES, SEEN_CLASSES, 256]) * self.n_bits
        self.final_offsets = np.concatenate([[0], np.cumsum(self.final_sets)[:-1]])
        self.final_mixer = Mixers(int(self.final_sets.sum()), len(self.mixer_sets) + 1, learning_rate, (1 << 16) // len(self.mixer_sets))
        self.refiner = Refiner((1 << self.n_bits) + (1 << 16))  # by node; by (last token, node)
        self.match_refiner = Refiner(MATCH_CLASSES * 2 * self.n_bits)  # by (match length, expected bit, depth)

        history = max([1 + local, *match_lengths, *local_match_lengths] + [max(c) + 1 for c in self.token_contexts if c])
        self.history = np.zeros((n_streams, history), dtype=np.int64)  # token + 1, newest first; 0 = none
        self.byte_history = np.zeros(n_streams, dtype=np.uint64)  # the last 8 bytes of text, newest lowest
        self.word_hash = np.zeros(n_streams, dtype=np.uint64)  # the word being written
        self.previous_word = np.zeros(n_streams, dtype=np.uint64)
        self.folded_word = np.zeros(n_streams, dtype=np.uint64)  # the same with letters lower-cased
        self.word_before = np.zeros(n_streams, dtype=np.uint64)  # the word before the previous one
        self.mark = np.zeros(n_streams, dtype=np.uint64)  # the last markup byte + 1 (0: none yet)
        self.mark_before = np.zeros(n_streams, dtype=np.uint64)  # the one before it
        self.mark_word = np.zeros(n_streams, dtype=np.uint64)  # the word just before the last markup byte
        self.nesting = np.zeros((n_streams, len(NESTING)), dtype=np.int64)
        self.scope_word = np.zeros(n_streams, dtype=np.uint64)  # the first word after the last [, { or <
        self.scope_pending = np.zeros(n_streams, dtype=bool)  # a bracket opened, its first word not ended yet
        # every stream's text (grows by doubling), for the byte above; where its current line
        # and the line before start (-1: none yet)
        self.text_log = np.zeros((n_streams, 4096 if lines else 0), dtype=np.uint8)
        self.text_length = np.zeros(n_streams, dtype=np.int64)
        self.line_start = np.zeros(n_streams, dtype=np.int64)
        self.previous_line = np.full(n_streams, -1, dtype=np.int64)
        # every stream's tokens, by step (grows by doubling): the match models' memory of the file
        self.tokens = np.zeros((n_streams, 1024), dtype=np.uint16 if vocab_size <= 1 << 16 else np.int32)
        self.bias = np.full((n_streams, 1), BIAS, dtype=np.int64)  # made once: np.full costs ~10 us a call
        self.zeros = np.zeros(n_streams, dtype=np.int64)
        self.step = 0

    @classmethod
    def from_config(cls, config: dict, vocab_size: int, n_streams: int, prob_bits: int, weights: bytes = b"", token_bytes=None):
        names = ("orders", "sparse", "byte_contexts", "word", "lines", "marks", "local", "table_bits", "count_limit", "match_lengths", "local_match_lengths", "learning_rate")
        neural = None
        if config.get("neural"):
            from .neural_model import NeuralModel

            neural_config = dict(config["neural"], **{k: config[k] for k in ("backend", "device") if k in config})
            neural = NeuralModel.from_config(neural_config, vocab_size, n_streams, prob_bits, weights)
        return cls(vocab_size, n_streams, prob_bits, token_bytes=token_bytes, neural=neural, **{k: config[k] for k in names if k in config})

    # ---- once per token ----------------------------------------------------------------------

    def begin(self, prev_tokens: np.ndarray, k: int) -> None:
        """Learn the tokens coded last (-1: none), then set up the next token of streams 0..k-1."""
        prev = np.asarray(prev_tokens, dtype=np.int64)
        seen = np.flatnonzero(prev >= 0)
        if len(seen):
            self._record(seen, prev[seen])
        self.k = k
        self.node = np.ones(k, dtype=np.int64)
        self.depth = 0
        for match in self.matches:
            match.find(k, self.history, self.step, self.tokens)
        self.context_hashes = self._context_hashes(k)
        self.last_byte = (self.byte_history[:k] & np.uint64(255)).astype(np.int64)
        if self.neural is not None:
            self.neural_cumulative = self._cumulative(np.asarray(self.neural.step(prev))[:k])
        self.step += 1

    def _record(self, streams: np.ndarray, tokens: np.ndarray) -> None:
        step = self.step - 1  # the step that coded these tokens
        if step >= self.tokens.shape[1]:
            self.tokens = np.concatenate([self.tokens, np.zeros_like(self.tokens)], axis=1)
        self.tokens[streams, step] = tokens
        for match in self.matches:
            match.record(streams, tokens, step, self.history, self.tokens)
        self.history[streams] = np.concatenate([tokens[:, None] + 1, self.history[streams, :-1]], axis=1)
        self._record_text(streams, tokens)

    def _record_text(self, streams: np.ndarray, tokens: np.ndarray) -> None:
        """Byte history and word hashes after these tokens."""
        breaks, words = self.text["breaks"][tokens], self.word_hash[streams]
        self.word_before[streams] = np.where(breaks, self.previous_word[streams], self.word_before[streams])
        self.previous_word[streams] = np.where(breaks, words, self.previous_word[streams])
        going_on = (words + tokens.astype(np.uint64) + np.uint64(1)) * HASH_MULTIPLIER
        self.word_hash[streams] = np.where(breaks, self.text["word_tail"][tokens], going_on)
        folded_on = (self.folded_word[streams] + self.text["folded"][tokens] + np.uint64(1)) * HASH_MULTIPLIER
        self.folded_word[streams] = np.where(breaks, self.text["folded_word_tail"][tokens], folded_on)
        bits, tail = self.text["tail_bits"][tokens], self.text["tail"][tokens]
        kept = self.byte_history[streams] << np.minimum(bits, np.uint64(56))  # numpy shifts >= 64 are undefined
        self.byte_history[streams] = np.where(bits >= 64, tail, np.where(bits == 0, self.byte_history[streams], kept | tail))
        if self.lines:
            self._record_lines(streams, tokens)
        if self.marks:  # a token's own markup bytes push the older ones out
            older, last = self.text["marks"][tokens, 0], self.text["marks"][tokens, 1]
            self.mark_before[streams] = np.where(older > 0, older, np.where(last > 0, self.mark[streams], self.mark_before[streams]))
            self.mark[streams] = np.where(last > 0, last, self.mark[streams])
            self.mark_word[streams] = np.where(last > 0, words, self.mark_word[streams])
            ended = self.scope_pending[streams] & breaks
            self.scope_word[streams] = np.where(ended, words, self.scope_word[streams])
            self.scope_pending[streams] = self.text["opens"][tokens] | self.scope_pending[streams] & ~ended
            self.nesting[streams] = np.clip(self.nesting[streams] + self.text["nesting"][tokens], 0, [cap for _, _, cap in NESTING])

    def _record_lines(self, streams: np.ndarray, tokens: np.ndarray) -> None:
        """Append the tokens' bytes to their streams' text and move the line starts."""
        start, length = self.text_length[streams], self.text["length"][tokens]
        width = self.text["bytes"].shape[1]
        while (start + width).max(initial=0) > self.text_log.shape[1]:
            self.text_log = np.concatenate([self.text_log, np.zeros_like(self.text_log)], axis=1)
        positions = start[:, None] + np.arange(width)
        inside = np.arange(width) < length[:, None]
        rows = np.broadcast_to(streams[:, None], positions.shape)
        self.text_log[rows[inside], positions[inside]] = self.text["bytes"][tokens][inside]
        self.text_length[streams] = start + length
        after, in_token = self.text["after_newline"][tokens], self.text["line_in_token"][tokens]
        newline = after >= 0
        previous = np.where(newline, self.line_start[streams], self.previous_line[streams])
        self.previous_line[streams] = np.where(in_token >= 0, start + in_token, previous)
        self.line_start[streams] = np.where(newline, start + length - after, self.line_start[streams])

    def _hash(self, k: int, offsets: tuple, salt: int) -> np.ndarray:
        """Hash of the tokens at these offsets back (0 = the last one) for streams 0..k-1.
        The salt goes in first, so different context kinds never line up."""
        h = np.full(k, _salt(salt), dtype=np.uint64)
        for j in offsets:
            h = (h + self.history[:k, j].astype(np.uint64)) * HASH_MULTIPLIER
        return h

    def _context_hashes(self, k: int) -> np.ndarray:
        """(k, contexts beyond order 0) uint64 hashes, each salted by its kind; also sets the
        line's first byte and the nesting state, which select mixer weights."""
        last, last_token = self.byte_history[:k] & np.uint64(0xFF), self.history[:k, 0].astype(np.uint64)
        hashes = [self._hash(k, offsets, salt) for salt, offsets in enumerate(self.token_contexts, 1)]
        for salt, (skip, n) in enumerate(self.byte_contexts, 100):
            text = self.byte_history[:k] >> np.uint64(8 * skip) & np.uint64((1 << (8 * n)) - 1)
            hashes.append((_salt(salt) + text) * HASH_MULTIPLIER)
        if self.word:
            word = (_salt(200) + self.word_hash[:k]) * HASH_MULTIPLIER
            hashes += [word, (word ^ self.previous_word[:k]) * HASH_MULTIPLIER]
            hashes.append((word + np.uint64(7) + last_token) * HASH_MULTIPLIER)
            hashes.append((_salt(950) + self.folded_word[:k]) * HASH_MULTIPLIER)
            hashes.append(((_salt(961) + self.previous_word[:k]) * HASH_MULTIPLIER ^ self.word_before[:k]) * HASH_MULTIPLIER)
        if self.lines:
            column = self.text_length[:k] - self.line_start[:k]
            capped = np.minimum(column, COLUMN_CAP).astype(np.uint64)
            last2 = self.byte_history[:k] & np.uint64(0xFFFF)
            hashes.append((_salt(300) + (capped << np.uint64(8) | last)) * HASH_MULTIPLIER)
            hashes.append(((_salt(301) + capped) * HASH_MULTIPLIER ^ self.word_hash[:k]) * HASH_MULTIPLIER)
            above, after_above = self._above(k, column, 0), self._above(k, column, 1)
            hashes.append((_salt(302) + (above << np.uint64(8) | last)) * HASH_MULTIPLIER)
            hashes.append((_salt(303) + (after_above << np.uint64(24) | above << np.uint64(16) | last2)) * HASH_MULTIPLIER)
            head = self.line_head = self._line_head(k, column)
            hashes.append((_salt(602) + (head << np.uint64(8) | last)) * HASH_MULTIPLIER)
            hashes.append(((_salt(603) + head) * HASH_MULTIPLIER ^ self.word_hash[:k]) * HASH_MULTIPLIER)
        if self.marks:
            mark = self.mark[:k]
            hashes.append((_salt(600) + (mark << np.uint64(8) | last)) * HASH_MULTIPLIER)
            hashes.append(((_salt(601) + mark) * HASH_MULTIPLIER ^ self.word_hash[:k]) * HASH_MULTIPLIER)
            hashes.append((_salt(604) + (self.mark_before[:k] << np.uint64(16) | mark << np.uint64(8) | last)) * HASH_MULTIPLIER)
            scope = (_salt(990) + self.scope_word[:k]) * HASH_MULTIPLIER
            hashes.append((scope + (mark << np.uint64(8) | last)) * HASH_MULTIPLIER)
            hashes.append((scope ^ self.word_hash[:k]) * HASH_MULTIPLIER)
            self.nest_state = self.nesting[:k, 0] * 16 + self.nesting[:k, 1] * 2 + self.nesting[:k, 2]  # below 64
            hashes.append((_salt(900) + (self.nest_state.astype(np.uint64) << np.uint64(8) | last)) * HASH_MULTIPLIER)
            hashes.append(((_salt(800) + (mark << np.uint64(8) | last)) * HASH_MULTIPLIER ^ self.mark_word[:k]) * HASH_MULTIPLIER)
        if self.local:
            stream = np.arange(k, dtype=np.uint64) + np.uint64(1)  # a stream keeps its index to the end
            token_before = self.history[:k, 1].astype(np.uint64)
            hashes.append((_salt(983) + stream) * HASH_MULTIPLIER)
            hashes.append((_salt(980) + (stream << np.uint64(16) | last_token)) * HASH_MULTIPLIER)
            hashes.append((_salt(981) + (stream << np.uint64(32) | last_token << np.uint64(16) | token_before)) * HASH_MULTIPLIER)
            hashes.append(((_salt(982) + stream) * HASH_MULTIPLIER ^ self.word_hash[:k]) * HASH_MULTIPLIER)
        for salt, match in enumerate(self.matches, 400):  # (predicted token, length class); none: (0, 0)
            prediction = np.where(match.classes > 0, match.predicted << 8 | match.classes, 0).astype(np.uint64)
            hashes.append((_salt(salt) + prediction) * HASH_MULTIPLIER)
        return np.stack(hashes, axis=1) if hashes else np.zeros((k, 0), dtype=np.uint64)

    def _line_head(self, k: int, column: np.ndarray) -> np.ndarray:
        """The first byte of the current line + 1 (0: the line is empty so far)."""
        first = self.text_log[np.arange(k), np.minimum(self.line_start[:k], self.text_log.shape[1] - 1)]
        return np.where(column > 0, first.astype(np.int64) + 1, 0).astype(np.uint64)

    def _above(self, k: int, column: np.ndarray, ahead: int) -> np.ndarray:
        """The byte of the line before at this column + ahead (256: that line is shorter or none)."""
        at = self.previous_line[:k] + column + ahead
        there = (self.previous_line[:k] >= 0) & (at < self.line_start[:k] - 1)
        at = np.clip(at, 0, self.text_log.shape[1] - 1)  # where not `there`, any byte in the log will do
        return np.where(there, self.text_log[np.arange(k), at].astype(np.int64), 256).astype(np.uint64)

    def _cumulative(self, freqs: np.ndarray) -> np.ndarray:
        """(k, 2**n_bits + 1): frequencies of the ids below each id (ids past the vocabulary: none)."""
        cumulative = np.zeros((len(freqs), (1 << self.n_bits) + 1), dtype=np.int64)
        cumulative[:, 1 : self.vocab_size + 1] = np.cumsum(freqs, axis=1)
        cumulative[:, self.vocab_size + 1 :] = cumulative[:, self.vocab_size : self.vocab_size + 1]
        return cumulative

    def _neural_input(self, node: np.ndarray, depth: int) -> np.ndarray:
        """stretch(P(bit = 1 | node)) under the neural model: its mass in the node's upper half."""
        below = self.n_bits - depth - 1
        low = (node - (1 << depth)) << (below + 1)
        rows = np.arange(len(node))
        c = self.neural_cumulative
        start, middle, end = c[rows, low], c[rows, low + (1 << below)], c[rows, low + (2 << below)]
        p = ((end - middle) << PROB_BITS) // np.maximum(end - start, 1)
        return stretch(np.clip(p, 1, PROB_ONE - 1))[:, None]

    def _two_way(self, first: np.ndarray, checks: np.ndarray) -> np.ndarray:
        """Each context's cell of the pair (first, first ^ 1), from the table before this step:
        the one holding the context's check, else the one with fewer counts (first on a tie).
        Every stream reads the same table, so the choice does not depend on stream order."""
        second = first ^ 1
        a, b = self.counts.cells[first].astype(np.int64), self.counts.cells[second].astype(np.int64)
        size_a = (a & 0xFFFF) + (a >> 16 & 0xFFFF)
        size_b = (b & 0xFFFF) + (b >> 16 & 0xFFFF)
        use_second = (a >> 48 != checks) & ((b >> 48 == checks) | (size_b < size_a))
        return np.where(use_second, second, first)

    @staticmethod
    def _slots(hashes: np.ndarray, size: int) -> np.ndarray:
        """The top bits of a hash: an index below size (a power of two)."""
        return (hashes >> np.uint64(65 - size.bit_length())).astype(np.int64)

    # ---- once per bit --------------------------------------------------------------------------

    def zero_freqs(self) -> np.ndarray:
        """Coding frequency of a 0 bit for streams 0..k-1, out of 2**prob_bits; the full
        total where a 1 is impossible (no token id below vocab_size in that subtree)."""
        node, depth, k = self.node, self.depth, self.k
        below = self.n_bits - depth - 1
        hashed = (self.context_hashes ^ (node.astype(np.uint64) * NODE_MULTIPLIER)[:, None]) * HASH_MULTIPLIER
        checks = (hashed >> np.uint64(49 - self.table_bits)).astype(np.int64) & 0x7FFF  # 15 bits below the slot's (int64-safe)
        slots = self._two_way((1 << self.n_bits) + self._slots(hashed, 1 << self.table_bits), checks)
        self.cells = np.concatenate([node[:, None], slots], axis=1)
        self.checks = np.concatenate([np.zeros((k, 1), dtype=np.int64), checks], axis=1)
        states, seen = self.counts.states(self.cells, self.checks)
        self.map_cells = states + self.map_offsets
        match_inputs = [match.input(node, depth)[:, None] for match in self.matches]
        if self.neural is not None:
            match_inputs.append(self._neural_input(node, depth))
        inputs = np.concatenate([stretch(self.count_maps.p(self.map_cells))] + match_inputs + [self.bias[:k]], axis=1)
        match_class = self.matches[0].alive_class if self.matches else np.zeros(k, dtype=np.int64)
        # which of the first four contexts beyond order 0 (orders 1-4) were seen, and an eighth of the rest
        seen_class = seen[:, 1:5] @ self.seen_weights + seen[:, 5:].sum(axis=1) * 8 // seen.shape[1]
        by_depth = [depth * MATCH_CLASSES + match_class, depth * SEEN_CLASSES + seen_class, depth * 256 + self.last_byte]
        values = [self.history[:k, 0]] + ([self.mark[:k].astype(np.int64), self.nest_state] if self.marks else [])
        values += [self.line_head.astype(np.int64)] if self.lines else []
        selected = [v << self.n_bits | node if by_node else v * self.n_bits + depth for v, by_node in zip(values, self.by_node)]
        sets = np.stack(by_depth + [node] + selected, axis=1) + self.mixer_offsets
        mixed = self.mixers.mix(inputs, sets)
        finals = np.stack([self.zeros[:k] + depth, depth * MATCH_CLASSES + match_class, by_depth[1], depth * 256 + self.last_byte], axis=1)
        dots = self.final_mixer.mix(np.concatenate([mixed, self.bias[:k]], axis=1), finals + self.final_offsets)
        self.mixer_p = squash(dots.sum(axis=1) // len(self.final_sets))
        order1 = (1 << self.n_bits) + (self.cells[:, 1] & 0xFFFF if self.cells.shape[1] > 1 else node)
        refined = self.refiner.refine(self.mixer_p[:, None], np.stack([node, order1], axis=1))
        p = (2 * self.mixer_p + refined.sum(axis=1)) >> 2
        # a third refiner, by the match model's state, on the result: half of the final output
        expected = self.matches[0].expected & (match_class > 0) if self.matches else np.zeros(k, dtype=np.int64)
        by_match = (match_class * 2 + expected) * self.n_bits + depth
        self.p = (p + self.match_refiner.refine(p[:, None], by_match[:, None])[:, 0]) >> 1
        zero = (PROB_ONE - self.p) << (self.prob_bits - PROB_BITS)
        one_possible = ((2 * node + 1) << below) - (1 << self.n_bits) < self.vocab_size
        return np.where(one_possible, zero, 1 << self.prob_bits)

    def update(self, bits: np.ndarray) -> None:
        bits = np.asarray(bits, dtype=np.int64)
        columns = self.cells.shape[1]
        repeated = np.repeat(bits, columns)
        self.count_maps.update(self.map_cells.ravel(), repeated)
        self.counts.update(self.cells.ravel(), self.checks.ravel(), repeated)
        for match in self.matches:
            match.learn(bits)
        self.mixers.learn(bits)
        self.final_mixer.learn(bits)
        self.refiner.learn(bits)
        self.match_refiner.learn(bits)
        self.node = 2 * self.node + bits
        self.depth += 1
