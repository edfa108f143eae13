"""Integer learners for context mixing: bit counts, count maps, mixers, refiners.

All state is shared by the B streams, which advance in lock step. Several
streams may touch one cell in the same step, so every update is a sum
(np.add.at, whose result does not depend on the order of the streams) and any
follow-up (halving) is a function of the cell's new value and of
what the step added to it, so duplicate cells all compute the same value.
"""

from __future__ import annotations

import numpy as np

from .logistic import PROB_BITS, PROB_ONE, squash, stretch

# A bit-count cell (uint64): check << 48 | last bit seen << 32 | n1 << 16 | n0.
COUNT_MASK = (1 << 16) - 1
TAKEOVER_BELOW = 3  # a cell whose owner was seen fewer times than this may change owner
COUNT_CLASSES = 18  # quantized levels of n0 and of n1
CELL_STATES = 2 * COUNT_CLASSES * COUNT_CLASSES  # (last bit, n0 class, n1 class)
WEIGHT_SHIFT = 16  # mixer weights are fixed point: 1 << 16 == 1.0
REFINER_KNOTS = 24
YOUNG_BOOST, YOUNG_USES = 3, 256  # a mixer weight vector's first uses step further (see Mixers)


def count_class_table(limit: int) -> np.ndarray:
    """n -> class: n itself below 8, then two classes per doubling (8-11, 12-15, 16-23, ...)."""
    classes = [n if n < 8 else 2 * (n.bit_length() - 1) + (n >> (n.bit_length() - 2) & 1) + 2 for n in range(limit + 1)]
    return np.minimum(np.array(classes, dtype=np.int64), COUNT_CLASSES - 1)


class BitCounts:
    """Counts of 0s and 1s per cell of a hashed table; counts past `limit` are halved (old
    news fades). No discounting of the other count when one bit value repeats (PAQ's
    nonstationary update): on enwik6 plain counts code 0.4% smaller, the last bit seen being
    part of the state the count map learns from. Each cell keeps a 16-bit check of the context
    that owns it: another context hashed there reads an empty cell and, when the owner is
    still young and none of its streams touches the cell in that step, takes it over (the
    largest check wins). Most long contexts occur once; this keeps them from overwriting
    the statistics of contexts that recur."""

    def __init__(self, size: int, limit: int, n_streams: int):
        self.cells = np.zeros(size, dtype=np.uint64)
        self.limit = limit
        self.count_class = count_class_table(limit + n_streams)

    def _owned(self, cells: np.ndarray, checks: np.ndarray) -> np.ndarray:
        packed = self.cells[cells].astype(np.int64)
        return np.where(packed >> 48 == checks, packed & ((1 << 48) - 1), 0)

    def states(self, cells: np.ndarray, checks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(state in [0, CELL_STATES), seen before) of each (cell, check)."""
        packed = self._owned(cells, checks)
        last, n0, n1 = packed >> 32 & 1, packed & COUNT_MASK, packed >> 16 & COUNT_MASK
        return (last * COUNT_CLASSES + self.count_class[n0]) * COUNT_CLASSES + self.count_class[n1], packed > 0

    def update(self, cells: np.ndarray, checks: np.ndarray, bits: np.ndarray) -> None:
        unique, slot_of = np.unique(cells, return_inverse=True)
        mine = self.cells[cells].astype(np.int64) >> 48 == checks
        kept = np.zeros(len(unique), dtype=np.int64)
        np.maximum.at(kept, slot_of, mine.astype(np.int64))
        winner = np.zeros(len(unique), dtype=np.int64)
        np.maximum.at(winner, slot_of, checks)
        current = self.cells[unique].astype(np.int64)
        weak = (current & COUNT_MASK) + (current >> 16 & COUNT_MASK) < TAKEOVER_BELOW
        taken = (kept == 0) & weak  # unclaimed this step and little known: the largest check takes it, empty
        self.cells[unique[taken]] = (winner[taken] << 48).astype(np.uint64)
        counted = np.where(kept[slot_of] == 1, mine, taken[slot_of] & (checks == winner[slot_of]))
        cells, bits = cells[counted], bits[counted]
        before = self.cells[cells].astype(np.int64)
        np.add.at(self.cells, cells, (1 << (16 * bits)).astype(np.uint64))
        after = self.cells[cells].astype(np.int64)
        n0, n1 = after & COUNT_MASK, after >> 16 & COUNT_MASK
        got1 = n1 > before >> 16 & COUNT_MASK
        over = n0 + n1 > self.limit
        n0, n1 = np.where(over, n0 >> 1, n0), np.where(over, n1 >> 1, n1)
        self.cells[cells] = (after >> 48 << 48 | got1.astype(np.int64) << 32 | n1 << 16 | n0).astype(np.uint64)


class CountMap:
    """A learned probability per cell: how often a 1 followed there. ones and total are
    packed in one int64 (total << 32 | ones) so one np.add.at updates both."""

    def __init__(self, size: int, limit: int):
        self.packed = np.zeros(size, dtype=np.int64)
        self.limit = limit

    def p(self, cells: np.ndarray) -> np.ndarray:
        """12-bit P(1) in [1, 4095]."""
        packed = self.packed[cells]
        ones, total = packed & 0xFFFFFFFF, packed >> 32
        return np.maximum(((2 * ones + 1) << PROB_BITS) // (2 * total + 2), 1)  # below 4096 as ones <= total

    def update(self, cells: np.ndarray, bits: np.ndarray) -> None:
        np.add.at(self.packed, cells, (1 << 32) + bits)
        packed = self.packed[cells]
        full = packed >> 32 > self.limit
        if full.any():  # forget old statistics
            halved = packed[full] >> 33 << 32 | (packed[full] & 0xFFFFFFFF) >> 1
            self.packed[cells[full]] = halved


class Refiner(CountMap):
    """Adaptive probability map (SSE): refines a probability within a small context. The
    stretched input falls between two of REFINER_KNOTS knots of its context; the output
    interpolates their probabilities and the nearer knot learns the bit."""

    def __init__(self, contexts: int, limit: int = 4095, prior: int = 16):
        super().__init__(contexts * REFINER_KNOTS, limit)
        centers = np.arange(REFINER_KNOTS) * 4096 // (REFINER_KNOTS - 1) - 2048
        ones = (np.clip(squash(centers), 1, PROB_ONE - 1) * prior) >> PROB_BITS
        self.packed[:] = np.tile(prior << 32 | ones, contexts)

    def refine(self, p: np.ndarray, contexts: np.ndarray) -> np.ndarray:
        position = (stretch(p) + 2048) * (REFINER_KNOTS - 1)
        low = contexts * REFINER_KNOTS + (position >> 12)
        weight = position & 4095
        high = np.minimum(low + 1, len(self.packed) - 1)
        self.nearer = np.where(weight < 2048, low, high)
        return (self.p(low) * (4096 - weight) + self.p(high) * weight) >> 12  # between the two: in [1, 4095]

    def learn(self, bits: np.ndarray) -> None:
        self.update(self.nearer.ravel(), np.broadcast_to(bits[:, None], self.nearer.shape).ravel())


class Mixers:
    """Logistic mixing: P(1) = squash(sum_i w[i] * x_i) over stretched predictions x_i,
    by several mixers at once (one column of `sets` each), each choosing its weight vector
    by a context. Weights learn online, a gradient step on coding cost per use; a weight
    vector used few times steps up to 1 + YOUNG_BOOST times as far (rare sets learn faster:
    -0.17% on the first half of enwik6)."""

    def __init__(self, n_sets: int, n_inputs: int, learning_rate: int, initial_weight: int):
        self.weights = np.full((n_sets, n_inputs), initial_weight, dtype=np.int64)
        self.learning_rate = learning_rate
        self.uses = np.zeros(n_sets, dtype=np.int64)  # counted before each step: order-free

    def mix(self, inputs: np.ndarray, sets: np.ndarray) -> np.ndarray:
        """inputs (k, n_inputs), sets (k, m) -> mixed log-odds (k, m), clipped to the stretch range."""
        self.inputs, self.sets = inputs, sets
        dot = (self.weights[sets] * inputs[:, None, :]).sum(axis=2) >> WEIGHT_SHIFT
        self.p = squash(dot)
        return np.minimum(np.maximum(dot, -2047), 2047)

    def learn(self, bits: np.ndarray) -> None:
        rate = self.learning_rate + self.learning_rate * YOUNG_BOOST * YOUNG_USES // (self.uses[self.sets] + YOUNG_USES)
        np.add.at(self.uses, self.sets.ravel(), 1)
        error = ((bits[:, None] << PROB_BITS) - self.p) * rate  # (k, m)
        steps = (self.inputs[:, None, :] * error[:, :, None]) >> WEIGHT_SHIFT  # (k, m, n_inputs)
        n_inputs = self.weights.shape[1]  # one flat index: np.add.at is ~15x faster than with a (row, column) pair
        flat = (self.sets[:, :, None] * n_inputs + np.arange(n_inputs)).ravel()
        np.add.at(self.weights.reshape(-1), flat, steps.ravel())
