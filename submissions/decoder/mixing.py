"""The learners of context mixing, as kernels over plain arrays: state maps, mixers and
refiners (the mixing model's count buckets are counts.py). Integer arithmetic only (see jit.py
for the typing rules).

State maps (lpaq1's StateMap): a learned probability per state, 22 bits of p and a count n
in one uint32 (p << 10 | n); p moves toward each bit by 2 / (2n + 3), n stops at a limit.
"""

from __future__ import annotations

import mmap

import numpy as np

from .jit import I, kernel
from .logistic import PROB_BITS, SQUASH_TABLE, STRETCH_TABLE, squash

U = np.uint64  # hashes: uint64 meeting only uint64 (see jit.py)
MAP_LIMIT = 1023  # state maps adapt like a running average over this many bits at most
P_BITS, N_BITS = 22, 10  # a state map entry (uint32): p (22 bits) << N_BITS | n
RECIPROCALS = np.array([(1 << 17) // (2 * n + 3) for n in range(MAP_LIMIT + 1)], dtype=np.int32)
WEIGHT_SHIFT = 16  # mixer weights are fixed point: 1 << 16 == 1.0
WEIGHT_LIMIT = (1 << 30) - 1  # int32 weights (stored as their change from start_weight)
YOUNG_BOOST, YOUNG_USES = 3, 256  # a weight vector's first uses step further (see learn)
MAX_USES = 1 << 30
REFINER_KNOTS = 24
REFINER_PRIOR = 16  # a refiner knot starts as if it had seen this many bits at its center
FINE_BITS = 4  # refiners answer in 12 + FINE_BITS bits, the coder codes that: very sure bits cost less (-0.03% on enwik6)


# ---- state maps ---------------------------------------------------------------------------


def new_state_maps(size: int) -> np.ndarray:
    return np.full(size, (1 << (P_BITS - 1)) << N_BITS, dtype=np.uint32)  # p = 1/2, nothing seen


@kernel
def map_p(maps, i):
    """12-bit P(1) in [0, 4095]."""
    return I(maps[i]) >> (N_BITS + P_BITS - PROB_BITS)


@kernel
def map_p_fine(maps, i):
    """P(1) in 12 + FINE_BITS bits."""
    return I(maps[i]) >> (N_BITS + P_BITS - PROB_BITS - FINE_BITS)


@kernel
def map_learn(maps, i, bit, limit):
    entry = I(maps[i])
    n, p = entry & ((1 << N_BITS) - 1), entry >> N_BITS
    p += ((bit << P_BITS) - p) * RECIPROCALS[n] >> 16
    maps[i] = p << N_BITS | min(n + 1, limit)


# ---- mixers -------------------------------------------------------------------------------


def new_mixer(n_sets: int, n_inputs: int) -> np.ndarray:
    """A weight vector per set, and after it the set's uses (the learning rate's schedule:
    one row, so that the count comes into cache with the weights). Each weight is stored as
    its change from start_weight, so the array starts as zeros, which the OS maps lazily: the
    memory of a selector's sets that never occur is never touched (mixers are the biggest
    state after the count table). Not np.zeros: numpy asks for 2 MiB pages on large arrays,
    and a page is zeroed and held whole when any of it is touched; an mmap is mapped 4 KiB
    at a time (decoding enwik6: peak RSS 872 MiB, not 994). Unix maps it shared: a process
    forked after the model is made would share the weights with its parent (restore --jobs
    builds each shard's model inside its worker, after the fork)."""
    return np.frombuffer(mmap.mmap(-1, 4 * n_sets * (n_inputs + 1)), dtype=np.int32).reshape(n_sets, n_inputs + 1)


@kernel
def start_weight(inputs):
    """Every weight's first value: the mixer starts as the average of its inputs (the last is the bias)."""
    return (1 << WEIGHT_SHIFT) // (len(inputs) - 1)


@kernel
def mix_dot(weights, row, inputs):
    """sum_i w[i] * x[i] in the stretch domain, clipped to the stretch range."""
    start, total = start_weight(inputs), I(0)
    for i in range(len(inputs)):
        total += (I(weights[row, i]) + start) * I(inputs[i])
    return min(max(total >> WEIGHT_SHIFT, -2047), 2047)


@kernel
def mix_learn(weights, row, inputs, p, bit, learning_rate):
    """A gradient step on coding cost; a vector used few times steps up to 1 + YOUNG_BOOST
    times as far (rare sets learn faster: -0.17% on the first half of enwik6). Steps are
    rounded to nearest, not down (down biased every weight: +0.04% on enwik6)."""
    used = I(weights[row, len(inputs)])
    rate = learning_rate + learning_rate * YOUNG_BOOST * YOUNG_USES // (used + YOUNG_USES)
    weights[row, len(inputs)] = min(used + 1, MAX_USES)
    error = ((bit << PROB_BITS) - p) * rate
    start = start_weight(inputs)
    for i in range(len(inputs)):
        w = I(weights[row, i]) + start + ((I(inputs[i]) * error + (1 << (WEIGHT_SHIFT - 1))) >> WEIGHT_SHIFT)
        weights[row, i] = min(max(w, -WEIGHT_LIMIT), WEIGHT_LIMIT) - start


@kernel
def squash_of(d):
    return I(SQUASH_TABLE[d + 2047])


@kernel
def stretch_of(p):
    return I(STRETCH_TABLE[p])


# ---- refiners (adaptive probability maps, SSE) --------------------------------------------


def new_refiner(contexts: int) -> np.ndarray:
    """REFINER_KNOTS state maps per context, knot j at stretch -2048 + 4096 j / (KNOTS - 1)."""
    centers = np.arange(REFINER_KNOTS) * 4096 // (REFINER_KNOTS - 1) - 2048
    p = np.clip(squash(centers), 1, (1 << PROB_BITS) - 1).astype(np.int64) << (P_BITS - PROB_BITS)
    return np.tile((p << N_BITS | REFINER_PRIOR).astype(np.uint32), contexts)


@kernel
def refine(maps, context, p):
    """(refined p in 12 + FINE_BITS bits, the lower knot): p's stretch (p: 12 bits) falls
    between two knots of the context; the result interpolates their probabilities, and both
    knots learn the bit (refiners_learn; the nearer alone: +0.08% on enwik6, +0.23% for the
    online model)."""
    position = (stretch_of(p) + 2048) * (REFINER_KNOTS - 1)
    low = context * REFINER_KNOTS + (position >> 12)
    weight = position & 4095
    refined = (map_p_fine(maps, low) * (4096 - weight) + map_p_fine(maps, low + 1) * weight) >> 12
    return refined, low
