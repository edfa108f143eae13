"""Adaptive order-0..N token context model (N = max_order), integer-exact.

It learns as it codes: encoder and decoder start from empty counts and apply the
same updates in the same order, so nothing but a few parameters is stored.
All B streams share the count tables and advance in lock step: at step t the
model first learns from every stream's token t-1, then predicts token t.

Prediction blends the orders by Witten-Bell interpolation, in integers:

    p_k(x) = (c_k(x) * SCALE + d_k * p_{k-1}(x)) // (n_k + d_k)    for k = 1..N

where c_k are the counts of the order-k context, n_k their sum and d_k the number
of distinct tokens seen there (an empty context gives p_k = p_{k-1}). Counts are
uint16; a row whose sum passes `count_limit` is halved, which also makes the
model forget old statistics.

The model interface every token model implements (the neural model too):
`step(prev_tokens) -> frequencies`, where prev_tokens[b] is the token stream b
coded last (-1 for none: the start of a stream, or a finished stream) and the
result is an int64 (B, V) array of coding frequencies for the next token, each
>= 1, each row summing to 2**prob_bits.
"""

from __future__ import annotations

import numpy as np

from .frequencies import normalize_frequencies

SCALE_BITS = 30  # fixed-point scale of the blended probabilities p_k


class ContextModel:
    runtime = ("numpy",)

    def __init__(
        self,
        vocab_size: int,
        n_streams: int,
        prob_bits: int,
        max_order: int = 2,
        order1_rows: int = 8192,
        hashed_rows: int = 8191,
        count_limit: int = 60000,
    ):
        if count_limit + n_streams >= 1 << 16:
            raise ValueError("count_limit + n_streams must stay below 2**16 (uint16 counts)")
        self.vocab_size = vocab_size
        self.prob_bits = prob_bits
        self.count_limit = count_limit
        self.none_token = vocab_size  # history slot before a stream's first token
        # order 1 is exact while the vocabulary (plus "none") fits; higher orders are hashed
        self.rows = [min(order1_rows, vocab_size + 1)] + [hashed_rows] * (max_order - 1)
        self.counts0 = np.zeros(vocab_size, dtype=np.int64)
        self.counts = [np.zeros((rows, vocab_size), dtype=np.uint16) for rows in self.rows]
        self.totals = [np.zeros(rows, dtype=np.int64) for rows in self.rows]
        self.history = np.full((n_streams, max_order), self.none_token, dtype=np.int64)  # most recent first

    @classmethod
    def from_config(cls, config: dict, vocab_size: int, n_streams: int, prob_bits: int) -> "ContextModel":
        names = ("max_order", "order1_rows", "hashed_rows", "count_limit")
        return cls(vocab_size, n_streams, prob_bits, **{k: config[k] for k in names if k in config})

    def _context_rows(self) -> list[np.ndarray]:
        """Row of every order's table for every stream: the last k tokens, hashed."""
        rows, key = [], np.zeros(len(self.history), dtype=np.int64)
        for k, n_rows in enumerate(self.rows):
            key = (key * (self.vocab_size + 1) + self.history[:, k]) % n_rows
            rows.append(key)
        return rows

    def _learn(self, prev: np.ndarray) -> None:
        seen = prev >= 0
        if not seen.any():
            return
        tokens = prev[seen]
        np.add.at(self.counts0, tokens, 1)
        for counts, totals, rows in zip(self.counts, self.totals, self._context_rows()):
            rows = rows[seen]
            np.add.at(counts, (rows, tokens), 1)
            np.add.at(totals, rows, 1)
            full = np.unique(rows[totals[rows] > self.count_limit])
            if len(full):  # halve, keeping every seen token seen
                counts[full] = (counts[full] + 1) // 2
                totals[full] = counts[full].sum(axis=1, dtype=np.int64)
        self.history[seen] = np.concatenate([tokens[:, None], self.history[seen, :-1]], axis=1)

    def _blend(self, counts: np.ndarray, totals: np.ndarray, lower: np.ndarray) -> np.ndarray:
        counts = counts.astype(np.int64)
        distinct = np.count_nonzero(counts, axis=1)
        distinct = np.where(totals == 0, 1, distinct)[:, None]
        return (counts * (1 << SCALE_BITS) + distinct * lower) // (totals[:, None] + distinct)

    def step(self, prev_tokens: np.ndarray) -> np.ndarray:
        self._learn(np.asarray(prev_tokens, dtype=np.int64))
        p = ((self.counts0 + 1) * (1 << SCALE_BITS) // (self.counts0.sum() + self.vocab_size))[None, :]
        for counts, totals, rows in zip(self.counts, self.totals, self._context_rows()):
            p = self._blend(counts[rows], totals[rows], p)
        return normalize_frequencies(p, self.prob_bits)
