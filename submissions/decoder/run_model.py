"""Runs: per context, the last token seen in it and how many times in a row (paq8's run map).

A context's counts say how its bits went on average; its run says what came last, and how
surely: after a context was followed by the same token n times in a row, the next token is
that one with a probability the model learns per (context, n, depth). While the node being
coded is on that token's path, the run gives the mixer its confidence toward the token's next
bit (0 elsewhere; mixing_steps.run_input): -0.24% on enwik6. The online model takes runs as
guesses with weights of its own (online_alone.guess).

One table of uint64 entries shared by all contexts, indexed by the top bits of the context's
hash: a 24-bit check of the hash (bits 40-63), the run length (32-39, at most 255) and the
token + 1 (0-31).
"""

from __future__ import annotations

import numpy as np

from .jit import I, kernel
from .mixing import U

TABLE_BITS = 23  # entries in the run table (64 MiB; 2**22: +20 B on enwik6)
CLASSES = 16  # run lengths told apart by the mixing model's confidence maps (longer ones share the last)
NONE = -1


def new_run_state(n_contexts: int, n_bits: int) -> dict:
    return {
        "run_table": np.zeros(1 << TABLE_BITS, dtype=np.uint64),
        "run_found": np.zeros((n_contexts, 3), dtype=np.int64),  # per context: (slot, token or NONE, length)
        "run_alive": np.zeros((n_contexts, 2), dtype=np.int64),  # per context: (map index or NONE, expected bit)
    }


@kernel
def check_of(h):
    return I(h >> U(8) & U(0xFFFFFF))


@kernel
def run_touch(table, h):
    """A word of h's entry: a load no branch waits on, so loading every context's entry before
    finding any has their misses overlap (see counts.touch_set)."""
    return I(table[I(h >> U(64 - TABLE_BITS))] >> U(40))


@kernel
def run_find(table, found, c, h):
    """Before a token: context c (hash h) looks up its run."""
    slot = I(h >> U(64 - TABLE_BITS))
    entry = table[slot]
    found[c, 0] = slot
    if I(entry >> U(40)) == check_of(h):
        found[c, 1], found[c, 2] = I(entry & U(0xFFFFFFFF)) - 1, I(entry >> U(32) & U(0xFF))
    else:
        found[c, 1], found[c, 2] = NONE, 0


@kernel
def run_record(table, found, c, h, token):
    """After the token: context c's run grows if it was this token, else restarts with it."""
    length = found[c, 2] + 1 if found[c, 1] == token else 1
    table[found[c, 0]] = U(check_of(h)) << U(40) | U(min(length, 255)) << U(32) | U(token + 1)
