"""The mixing model's count table: lpaq1's hashed buckets of bit counts, as kernels over one
uint32 array. Integer arithmetic only (see jit.py for the typing rules).

A context is hashed once per group of GROUP_BITS decisions into a bucket of 8 uint32 words,
one cache line half: word 0 holds a 32-bit check of the context that owns it, words 1-7 the
count cells of the group's 7 tree nodes (1: the group's first decision, 2-3: its second, 4-7:
its third). A context takes the bucket of its set of WAYS (4 buckets, 128 bytes in a row) that
holds its check, else the set's bucket whose first cell has seen fewest bits, cleared. A cell:
n0 (bits 0-11), n1 (bits 12-23), the last HISTORY bits seen (24-26, newest lowest); counts are
halved when their sum passes the limit, so old news fades. A cell's state (cell_state) is what
the state maps (mixing.py) learn a probability for.
"""

from __future__ import annotations

import numpy as np

from .jit import I, kernel
from .mixing import U

GROUP_BITS = 3  # decisions per bucket
WAYS = 4  # the buckets a hash may take: 128 bytes, two cache lines (8 ways: -0.02% on enwik6 but 4 lines to load per context and group; 2: +0.18%)
BUCKET_WORDS = 8  # check + 7 cells: 32 bytes
SET_WORDS = WAYS * BUCKET_WORDS
CELL_MASK = (1 << 12) - 1  # n0 and n1 are 12 bits each
MAX_COUNT_LIMIT = CELL_MASK
COUNT_CLASSES = 18  # quantized levels of n0 and of n1
HISTORY = 3  # the last bits a cell remembers (1 bit: +0.17% on enwik6)
CELL_STATES = (1 << HISTORY) * COUNT_CLASSES * COUNT_CLASSES  # (last bits, n0 class, n1 class)


def count_class_table(limit: int = MAX_COUNT_LIMIT) -> np.ndarray:
    """n -> class: n itself below 8, then two classes per doubling (8-11, 12-15, 16-23, ...)."""
    classes = [n if n < 8 else 2 * (n.bit_length() - 1) + (n >> (n.bit_length() - 2) & 1) + 2 for n in range(limit + 1)]
    return np.minimum(np.array(classes, dtype=np.int64), COUNT_CLASSES - 1).astype(np.int8)  # small tables stay in cache


COUNT_CLASS = count_class_table()


@kernel
def touch_set(buckets, h, bucket_bits):
    """A sum of one word of each cache line of h's set: loads that no branch waits on, so a
    caller loading every context's set before claiming any has their misses overlap (~15%
    faster on enwik6). The caller stores the sum, so that the compiler keeps the loads."""
    first, total = I(h >> U(64 - bucket_bits)) * BUCKET_WORDS & -SET_WORDS, I(0)  # claim_bucket's first, rounded down to its set
    for word in range(first, first + SET_WORDS, 16):  # 16 words: a 64-byte line
        total += I(buckets[word])
    return total


@kernel
def claim_bucket(buckets, h, bucket_bits):
    """Word index of the bucket of hash h (uint64): the bucket of its set holding h's check,
    else the set's least used one, cleared and given the check."""
    first = I(h >> U(64 - bucket_bits)) * BUCKET_WORDS
    check = I(h >> U(16) & U(0xFFFFFFFF))
    use = first
    for way in range(WAYS):
        at = first ^ (way * BUCKET_WORDS)
        if I(buckets[at]) == check:
            return at
        if cell_total(I(buckets[at + 1])) < cell_total(I(buckets[use + 1])):
            use = at
    buckets[use] = check
    for j in range(1, BUCKET_WORDS):
        buckets[use + j] = 0
    return use


@kernel
def cell_total(cell):
    return (cell & CELL_MASK) + (cell >> 12 & CELL_MASK)


@kernel
def cell_state(cell):
    """(last bits, n0 class, n1 class) as one index below CELL_STATES."""
    n0, n1 = cell & CELL_MASK, cell >> 12 & CELL_MASK
    return ((cell >> 24) * COUNT_CLASSES + COUNT_CLASS[n0]) * COUNT_CLASSES + COUNT_CLASS[n1]


@kernel
def count_bit(buckets, at, bit, limit):
    cell = I(buckets[at])
    n0, n1 = cell & CELL_MASK, cell >> 12 & CELL_MASK
    if bit:
        n1 += 1
    else:
        n0 += 1
    if n0 + n1 > limit:
        n0, n1 = n0 >> 1, n1 >> 1
    history = ((cell >> 24) << 1 | bit) & ((1 << HISTORY) - 1)
    buckets[at] = history << 24 | n1 << 12 | n0
