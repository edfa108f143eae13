"""Adaptive order-0..N token context model (N = max_order), integer-exact, as a kernel.

It learns as it codes: encoder and decoder start from empty counts and apply the same
updates in the same order, so nothing but a few parameters is stored. At step t the model
first learns every stream's token t-1 (stream by stream), then predicts token t.

Prediction blends the orders by Witten-Bell interpolation, in integers:

    p_k(x) = (c_k(x) * SCALE + d_k * p_{k-1}(x)) // (n_k + d_k)    for k = 1..N

where c_k are the counts of the order-k context, n_k their sum and d_k the number
of distinct tokens seen there (an empty context gives p_k = p_{k-1}). Counts are
uint16; a row whose sum passes `count_limit` is halved, which also makes the
model forget old statistics.

The model interface every token-table model implements (the neural model too):
`step(prev_tokens) -> frequencies`, where prev_tokens[b] is the token stream b
coded last (-1 for none: the start of a stream, or a finished stream) and the
result is an int64 (B, V) array of coding frequencies for the next token, each
>= 1, each row summing to 2**prob_bits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .frequencies import normalize_frequencies
from .jit import I, entry, kernel, timed_first_call

SCALE_BITS = 30  # fixed-point scale of the blended probabilities p_k


@dataclass(frozen=True)
class ContextConfig:
    """The context model's config, as the archive header carries it."""

    kind: str = "context"
    max_order: int = 2
    order1_rows: int = 8192  # order 1 is exact while the vocabulary (plus "none") fits
    hashed_rows: int = 32749  # rows of each hashed (order >= 2) table: rows * vocab * 2 bytes (268 MB at vocab 4096)
    count_limit: int = 60000


class ContextModel:
    runtime = ("numpy", "numba")  # what its decoder needs beyond the stdlib
    modules = ("context_model", "frequencies", "jit")  # the decoder modules its archives carry beyond the common ones
    config_class = ContextConfig

    def __init__(self, vocab_size: int, n_streams: int, prob_bits: int, config: ContextConfig = ContextConfig()):
        if config.count_limit >= (1 << 16) - 1:
            raise ValueError("count_limit must stay below 2**16 - 1 (uint16 counts)")
        self.vocab_size, self.prob_bits, self.config = vocab_size, prob_bits, config
        rows = [min(config.order1_rows, vocab_size + 1)] + [config.hashed_rows] * (config.max_order - 1)
        self.row_counts = np.array(rows, dtype=np.int64)
        self.row_offsets = np.concatenate([[0], np.cumsum(rows)[:-1]]).astype(np.int64)
        self.counts0 = np.zeros(vocab_size, dtype=np.int64)
        self.counts = np.zeros((sum(rows), vocab_size), dtype=np.uint16)  # every order's rows, one after another
        self.totals = np.zeros(sum(rows), dtype=np.int64)
        self.history = np.full((n_streams, config.max_order), vocab_size, dtype=np.int64)  # most recent first; V = none
        self.p = np.zeros((n_streams, vocab_size), dtype=np.int64)

    @classmethod
    def from_config(cls, config: dict, vocab_size: int, n_streams: int, prob_bits: int) -> "ContextModel":
        return cls(vocab_size, n_streams, prob_bits, ContextConfig(**{k: v for k, v in config.items() if k in ContextConfig.__dataclass_fields__}))

    def step(self, prev_tokens: np.ndarray) -> np.ndarray:
        prev = np.asarray(prev_tokens, dtype=np.int64)
        timed_first_call(context_step, self.counts0, self.counts, self.totals, self.row_offsets, self.row_counts, self.history, prev, self.config.count_limit, self.p)
        return normalize_frequencies(self.p, self.prob_bits)


@entry
def context_step(counts0, counts, totals, row_offsets, row_counts, history, prev, count_limit, p):
    """Learn each stream's previous token, then write its blended weights for the next into p."""
    for b in range(history.shape[0]):
        if prev[b] >= 0:
            learn(counts0, counts, totals, row_offsets, row_counts, history[b], prev[b], count_limit)
    seen = counts0.sum() + counts.shape[1]
    for b in range(history.shape[0]):
        blend(counts0, seen, counts, totals, row_offsets, row_counts, history[b], p[b])


@kernel
def context_row(key, k, history, row_counts, vocab):
    """The next key: the last k + 1 tokens of the history, as a row of the order-k + 1 table."""
    return (key * (vocab + 1) + history[k]) % row_counts[k]


@kernel
def learn(counts0, counts, totals, row_offsets, row_counts, history, token, count_limit):
    """Count the token in the rows of the contexts it followed; then it joins the history."""
    vocab = counts.shape[1]
    counts0[token] += 1
    key = 0
    for k in range(len(history)):
        key = context_row(key, k, history, row_counts, vocab)
        row = row_offsets[k] + key
        counts[row, token] = I(counts[row, token]) + 1
        totals[row] += 1
        if totals[row] > count_limit:  # halve, keeping every seen token seen
            total = 0
            for v in range(vocab):
                counts[row, v] = (I(counts[row, v]) + 1) // 2
                total += I(counts[row, v])
            totals[row] = total
    for k in range(len(history) - 1, 0, -1):
        history[k] = history[k - 1]
    history[0] = token


@kernel
def blend(counts0, seen, counts, totals, row_offsets, row_counts, history, p):
    """Witten-Bell: order 0 (add-one), then each order k blended over the one below."""
    vocab = counts.shape[1]
    for v in range(vocab):
        p[v] = ((counts0[v] + 1) << SCALE_BITS) // seen
    key = 0
    for k in range(len(history)):
        key = context_row(key, k, history, row_counts, vocab)
        row = row_offsets[k] + key
        if totals[row] == 0:
            continue  # an empty context: p_k = p_{k-1}
        distinct = 0
        for v in range(vocab):
            distinct += I(counts[row, v]) > 0
        for v in range(vocab):
            p[v] = ((I(counts[row, v]) << SCALE_BITS) + distinct * p[v]) // (totals[row] + distinct)
