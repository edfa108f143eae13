"""Adaptive order-0/1/2 token context model, integer-exact.

It learns as it codes: encoder and decoder start from empty counts and apply the
same updates in the same order, so nothing but a few parameters is stored.
All B streams share the count tables and advance in lock step: at step t the
model first learns from every stream's token t-1, then predicts token t.

Prediction blends the orders by Witten-Bell interpolation, in integers:

    p_k(x) = (c_k(x) * SCALE + d_k * p_{k-1}(x)) // (n_k + d_k)

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

from .rans import normalize_frequencies

SCALE_BITS = 30  # fixed-point scale of the blended probabilities p_k


class ContextModel:
    runtime = ("numpy",)

    def __init__(
        self,
        vocab_size: int,
        n_streams: int,
        prob_bits: int,
        order1_rows: int = 8192,
        order2_rows: int = 8191,
        count_limit: int = 60000,
    ):
        self.vocab_size = vocab_size
        self.prob_bits = prob_bits
        self.count_limit = count_limit
        self.none_token = vocab_size  # history slot before a stream's first token
        # order-1 rows are exact while the vocabulary (plus "none") fits
        self.order1_rows = min(order1_rows, vocab_size + 1)
        self.order2_rows = order2_rows
        self.counts0 = np.zeros(vocab_size, dtype=np.int64)
        self.counts1 = np.zeros((self.order1_rows, vocab_size), dtype=np.uint16)
        self.counts2 = np.zeros((order2_rows, vocab_size), dtype=np.uint16)
        self.totals1 = np.zeros(self.order1_rows, dtype=np.int64)
        self.totals2 = np.zeros(order2_rows, dtype=np.int64)
        self.history1 = np.full(n_streams, self.none_token, dtype=np.int64)
        self.history2 = np.full(n_streams, self.none_token, dtype=np.int64)

    @classmethod
    def from_config(cls, config: dict, vocab_size: int, n_streams: int, prob_bits: int) -> "ContextModel":
        params = {k: config[k] for k in ("order1_rows", "order2_rows", "count_limit") if k in config}
        return cls(vocab_size, n_streams, prob_bits, **params)

    def _rows(self) -> tuple[np.ndarray, np.ndarray]:
        row1 = self.history1 % self.order1_rows
        row2 = (self.history2 * (self.vocab_size + 1) + self.history1) % self.order2_rows
        return row1, row2

    def _learn(self, prev: np.ndarray) -> None:
        seen = prev >= 0
        if not seen.any():
            return
        tokens = prev[seen]
        row1, row2 = (r[seen] for r in self._rows())
        np.add.at(self.counts0, tokens, 1)
        for counts, totals, rows in ((self.counts1, self.totals1, row1), (self.counts2, self.totals2, row2)):
            np.add.at(counts, (rows, tokens), 1)
            np.add.at(totals, rows, 1)
            full = np.unique(rows[totals[rows] > self.count_limit])
            if len(full):  # halve, keeping every seen token seen
                counts[full] = (counts[full] + 1) // 2
                totals[full] = counts[full].sum(axis=1, dtype=np.int64)
        self.history2[seen] = self.history1[seen]
        self.history1[seen] = tokens

    def _blend(self, counts: np.ndarray, totals: np.ndarray, lower: np.ndarray) -> np.ndarray:
        counts = counts.astype(np.int64)
        distinct = np.count_nonzero(counts, axis=1)
        distinct = np.where(totals == 0, 1, distinct)[:, None]
        return (counts * (1 << SCALE_BITS) + distinct * lower) // (totals[:, None] + distinct)

    def step(self, prev_tokens: np.ndarray) -> np.ndarray:
        self._learn(np.asarray(prev_tokens, dtype=np.int64))
        row1, row2 = self._rows()
        p0 = (self.counts0 + 1) * (1 << SCALE_BITS) // (self.counts0.sum() + self.vocab_size)
        p1 = self._blend(self.counts1[row1], self.totals1[row1], p0[None, :])
        p2 = self._blend(self.counts2[row2], self.totals2[row2], p1)
        return normalize_frequencies(p2, self.prob_bits)
