"""Integer logistic functions for mixing probabilities in the log-odds domain.

squash(d) ~ 4096 / (1 + exp(-d / 256)) for d in [-2047, 2047], by linear
interpolation between 33 integer knots (the table of lpaq1 by Matt Mahoney);
stretch(p) is its inverse over 12-bit probabilities p in [0, 4095]. Both are
built from integers only, so every machine gets the same tables: they steer
coding decisions (determinism contract: no exp/log at coding time).
"""

from __future__ import annotations

import numpy as np

PROB_BITS = 12  # probabilities of a bit being 1, in units of 1/4096
PROB_ONE = 1 << PROB_BITS
STRETCH_LIMIT = 2047

_KNOTS = np.array(
    [1, 2, 3, 6, 10, 16, 27, 45, 73, 120, 194, 310, 488, 747, 1101, 1546, 2047,
     2549, 2994, 3348, 3607, 3785, 3901, 3975, 4024, 4050, 4068, 4079, 4085, 4089, 4092, 4093, 4094],
    dtype=np.int64,
)


def _squash_table() -> np.ndarray:
    d = np.arange(-STRETCH_LIMIT, STRETCH_LIMIT + 1, dtype=np.int64)
    weight, knot = d & 127, (d >> 7) + 16
    return (_KNOTS[knot] * (128 - weight) + _KNOTS[knot + 1] * weight + 64) >> 7


SQUASH_TABLE = _squash_table().astype(np.int16)  # index: d + 2047; int16: the kernels' tables fit the first-level cache
# stretch(p) = the smallest d with squash(d) >= p (2047 past the table's top)
STRETCH_TABLE = (np.minimum(np.searchsorted(SQUASH_TABLE, np.arange(PROB_ONE), side="left"), 2 * STRETCH_LIMIT) - STRETCH_LIMIT).astype(np.int16)


def squash(d: np.ndarray) -> np.ndarray:
    """Log-odds (1/256 units) -> 12-bit probability in [1, 4094] (the table's range)."""
    return SQUASH_TABLE[np.minimum(np.maximum(d, -STRETCH_LIMIT), STRETCH_LIMIT) + STRETCH_LIMIT]  # np.clip: 2x slower

