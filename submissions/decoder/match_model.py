"""Match model: the token that followed the last occurrence of the current context.

enwik and most real text repeat themselves (templates, markup, names): after
the last `min_length` tokens were seen before, the token that followed them
then is a strong guess now, the more so the longer the match has held. The
table maps a hash of the context to the latest place it occurred (step * B +
stream: the latest step wins, order-free); a found place is verified by
comparing the tokens before it, and a match runs on while it predicts right.
A local match model hashes the context with the stream, so it finds the last
occurrence in the stream's own text (the same document) rather than in any stream.
"""

from __future__ import annotations

import numpy as np

from .logistic import stretch
from .mixing import CountMap

HASH_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)
STREAM_MULTIPLIER = np.uint64(0xD6E8FEB86659FD93)
CLASSES = 16  # quantized match lengths; class 0 = no usable match
VERIFY = 32  # tokens compared backwards when a match is found
MAP_LIMIT = 4095


def length_class(length: np.ndarray) -> np.ndarray:
    """0 for none, 1..7 exact, then two classes per doubling (8-11, 12-15, 16-23, ...)."""
    log = np.zeros_like(length)
    for bit in range(1, 20):
        log += length >> bit > 0
    classes = np.where(length < 8, length, 2 * log + (length >> np.maximum(log - 1, 0) & 1) + 2)
    return np.minimum(classes, CLASSES - 1)


class MatchModel:
    def __init__(self, n_streams: int, n_bits: int, min_length: int, table_bits: int, local: bool = False):
        self.local = local
        self.n_streams, self.n_bits, self.min_length = n_streams, n_bits, min_length
        self.table = np.full(1 << table_bits, -1, dtype=np.int64)
        self.shift = np.uint64(64 - table_bits)
        self.length = np.zeros(n_streams, dtype=np.int64)
        self.stream = np.zeros(n_streams, dtype=np.int64)
        self.step = np.zeros(n_streams, dtype=np.int64)
        self.hash = np.zeros(n_streams, dtype=np.uint64)
        self.confidence = CountMap(CLASSES * n_bits, MAP_LIMIT)  # how often the expected bit came

    def _slots(self, hashes: np.ndarray) -> np.ndarray:
        return (hashes >> self.shift).astype(np.int64)

    def record(self, streams: np.ndarray, tokens: np.ndarray, step: int, history: np.ndarray, buffer: np.ndarray) -> None:
        """Tokens just coded at `step` (already in buffer); history is before them (newest first)."""
        full = streams[history[streams, self.min_length - 1] > 0]
        np.maximum.at(self.table, self._slots(self.hash[full]), step * self.n_streams + full)
        matched = self.length[streams] > 0
        right = buffer[self.stream[streams], self.step[streams]] == tokens
        self.length[streams[matched & ~right]] = 0
        going_on = streams[matched & right]
        self.length[going_on] += 1
        self.step[going_on] += 1

    def find(self, k: int, history: np.ndarray, step: int, buffer: np.ndarray) -> None:
        """Streams without a running match look up the last occurrence of their context."""
        h = np.zeros(k, dtype=np.uint64)
        for j in range(self.min_length):
            h = (h + history[:k, j].astype(np.uint64)) * HASH_MULTIPLIER
        if self.local:
            h = (h ^ (np.arange(k, dtype=np.uint64) + np.uint64(1)) * STREAM_MULTIPLIER) * HASH_MULTIPLIER
        self.hash[:k] = h
        look = np.flatnonzero((history[:k, self.min_length - 1] > 0) & (self.length[:k] == 0))
        if len(look):
            found = self.table[self._slots(self.hash[look])]
            look, found = look[found >= 0], found[found >= 0]
            stream, found_step = found % self.n_streams, found // self.n_streams
            self.stream[look], self.step[look] = stream, found_step
            self.length[look] = self._verified_length(look, stream, found_step, step, buffer)
        self.predicted = buffer[self.stream[:k], self.step[:k]].astype(np.int64) | (1 << self.n_bits)
        self.classes = length_class(self.length[:k])

    @staticmethod
    def _verified_length(streams, match_streams, match_steps, step: int, buffer: np.ndarray) -> np.ndarray:
        """How many tokens before the candidate equal the ones before the current position
        (0: a hash collision)."""
        back = np.arange(1, VERIFY + 1)
        here, there = step - back[None, :], match_steps[:, None] - back[None, :]
        valid = (here >= 0) & (there >= 0)
        ours = buffer[streams[:, None], np.maximum(here, 0)]
        theirs = buffer[match_streams[:, None], np.maximum(there, 0)]
        return np.cumprod(valid & (ours == theirs), axis=1).sum(axis=1)

    def input(self, node: np.ndarray, depth: int) -> np.ndarray:
        """+-confidence toward the predicted token's next bit while that token is still possible
        (0 otherwise); also sets `alive_class` (0 when not predicting) for mixer selection."""
        below = self.n_bits - depth - 1
        self.alive = (self.classes > 0) & (self.predicted >> (below + 1) == node)
        self.expected = self.predicted >> below & 1
        self.alive_class = np.where(self.alive, self.classes, 0)
        self.cells = self.alive_class * self.n_bits + depth
        confidence = stretch(self.confidence.p(self.cells))
        return np.where(self.alive, np.where(self.expected == 1, confidence, -confidence), 0)

    def learn(self, bits: np.ndarray) -> None:
        alive = self.alive
        self.confidence.update(self.cells[alive], (bits[alive] == self.expected[alive]).astype(np.int64))
