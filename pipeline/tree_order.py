"""The order of token ids in the binary coding tree: which tokens share its upper decisions.

The binary models (`--model mix`, `--model online`) code a token as the bits of its id, most
significant first: each decision of the tree is a question about a group of tokens, and every
context learns its answer at every node. With ids in byte order (the tokenizer's), a node groups
tokens by their first bytes. Grouped instead by the contexts they follow, the upper decisions
become questions like "a word-starting piece or markup?", which a context might answer from fewer
occurrences. Measured (benchmarks/results/tree_order_2026-12-05.md), it is not a general gain:
enwik6's mix payload is 0.33% smaller, but three other texts code 0.1-0.4% larger, so it is an
opt-in of `pipeline pack` (--tree-order), not the default.

The encoder chooses the order from the file, top-down: each node's ids are split between its two
children (sizes fixed by the tree) so that the decision's adaptive (Krichevsky-Trofimov) code
length under the contexts of the last 1, 2 and 3 tokens is small, by swapping ids between the
children from the byte-order split while a swap lowers it. Within a child the ids stay in byte
order, so the tokenizer table, stored in the new order, still front-codes fairly well (+~100 B).
The archive stores nothing else: its table is in tree order, so the decoder is unchanged.
"""

from __future__ import annotations

import math

import numba
import numpy as np

ORDERS = (1, 2, 3)  # the contexts the split's code length is measured under: the last 1, 2, 3 tokens
FIT_TOKENS = 1 << 22  # the order is fitted on the first 4M tokens at most (time and memory stay bounded)
CANDIDATES = 32  # per child, the ids whose moves gain most are tried in pairs


def tree_order(tokens: np.ndarray, vocab_size: int, pinned: int = 0, report=None) -> np.ndarray:
    """order[new id] = old id: ids grouped in the binary tree by the contexts they follow; ids
    below `pinned` keep their place (the table stores its leading single bytes implicitly).
    report(done, total), if given, hears of each level of the tree."""
    tokens = np.asarray(tokens[:FIT_TOKENS], dtype=np.int64)
    order = np.arange(vocab_size, dtype=np.int64)
    if len(tokens) <= max(ORDERS) or vocab_size < 4:
        return order
    starts, contexts, counts = _context_counts(tokens, vocab_size)
    n_bits = (vocab_size - 1).bit_length()
    totals = np.bincount(contexts, weights=counts, minlength=1).astype(np.int64)  # per context: the tokens that followed it
    table = _code_length_table(int(totals.max()) + 1)  # a side of a split holds at most its context's total
    a, b, scratch = (np.zeros(len(totals), dtype=np.int64) for _ in range(3))
    for depth in range(n_bits):
        _split_level(order, depth, starts, contexts, counts, table, a, b, scratch, n_bits, pinned, CANDIDATES)
        if report is not None:
            report(depth + 1, n_bits)
    return order


def relabel(tokens: np.ndarray, table: list[bytes], order: np.ndarray, block: int = 1 << 22) -> tuple[np.ndarray, list[bytes]]:
    """The tokens (a new array, filled a block at a time: the input may be a memory map) and the
    id -> bytes table with id order[i] renamed i."""
    new_id = np.empty(len(order), dtype=np.int64)
    new_id[order] = np.arange(len(order))
    out = np.empty(len(tokens), dtype=np.asarray(tokens[:0]).dtype)
    for begin in range(0, len(tokens), block):
        out[begin : begin + block] = new_id[np.asarray(tokens[begin : begin + block], dtype=np.int64)]
    return out, [table[i] for i in order]


def _context_counts(tokens: np.ndarray, vocab_size: int):
    """Per token id, the contexts (of every order) it followed and how often, as CSR arrays
    (starts, contexts, counts); only contexts seen twice or more (one occurrence costs the same
    on either side of any split)."""
    keys, nexts = [], []
    for k in ORDERS:
        key = np.full(len(tokens) - k, k, dtype=np.int64)
        for j in range(k):  # the k tokens before, as one number (vocab_size**3 fits int64 for any vocab we allow)
            key = key * vocab_size + tokens[j : len(tokens) - k + j]
        keys.append(key * 4 + k)
        nexts.append(tokens[k:])
    key, nxt = np.concatenate(keys), np.concatenate(nexts)
    context_ids, context = np.unique(key, return_inverse=True)
    seen = np.bincount(context, minlength=len(context_ids))
    kept = seen[context] >= 2
    context, nxt = context[kept], nxt[kept]
    context = np.unique(context, return_inverse=True)[1]  # renumbered 0..C-1
    n_contexts = int(context.max()) + 1 if len(context) else 1
    pair, count = np.unique(nxt * n_contexts + context, return_counts=True)
    token_of, contexts = pair // n_contexts, pair % n_contexts
    starts = np.searchsorted(token_of, np.arange(vocab_size + 1)).astype(np.int64)
    return starts, contexts.astype(np.int64), count.astype(np.int64)


def _code_length_table(n: int) -> np.ndarray:
    """(lgamma(k + 1), lgamma(k + 1/2)) for k < n: a decision's KT code length in nats, given a
    zeros and b ones, is lgamma(a + b + 1) - lgamma(a + 1/2) - lgamma(b + 1/2) + a constant."""
    return np.array([[math.lgamma(k + 1) for k in range(n)], [math.lgamma(k + 0.5) for k in range(n)]])


@numba.njit(cache=True)
def _cost(table, a, b):
    return table[0, a + b] - table[1, a] - table[1, b]


@numba.njit(cache=True)
def _split_level(order, depth, starts, contexts, counts, table, a, b, scratch, n_bits, pinned, candidates):
    """Every node at this depth of the tree: its ids split between its children by _split (a, b,
    scratch: zeros, one per context, and zeros again after)."""
    vocab = len(order)
    width = 1 << (n_bits - depth)
    for low in range(0, vocab, width):
        high = min(low + width, vocab)
        left = min(width // 2, high - low)
        if left == 0 or left == high - low:
            continue
        _split(order, low, low + left, high, starts, contexts, counts, table, a, b, scratch, pinned, candidates)


@numba.njit(cache=True)
def _split(order, low, middle, high, starts, contexts, counts, table, a, b, scratch, pinned, candidates):
    """Swap ids between order[low:middle] (the 0 child) and order[middle:high] (the 1 child)
    while a swap lowers the split's code length; then sort each child's ids. (A Kernighan-Lin
    pass, taking losing swaps to reach better ones, lowered the code length but coded enwik6
    +104 B larger: the greedy local optimum is kept.)"""
    ids = order[low:high]
    n, left = high - low, middle - low
    in_left = np.zeros(n, dtype=np.bool_)
    in_left[:left] = True
    for i in range(n):
        _move(ids[i], in_left[i], starts, contexts, counts, a, b, 1)
    movable = ids >= pinned
    delta = np.zeros(n)
    for _ in range(4 * n):  # at most (it converges in a few dozen swaps)
        gain, i, j = _best_swap(ids, in_left, movable, starts, contexts, counts, table, a, b, scratch, delta, candidates)
        if i < 0 or gain >= -1e-9:
            break
        _swap(ids, in_left, i, j, starts, contexts, counts, a, b)
    for i in range(n):  # clear the counts for the next split
        _move(ids[i], in_left[i], starts, contexts, counts, a, b, -1)
    chosen = np.concatenate((np.sort(ids[in_left]), np.sort(ids[~in_left])))
    order[low:high] = chosen


@numba.njit(cache=True)
def _move(t, to_left, starts, contexts, counts, a, b, sign):
    """Add (sign 1) or remove (-1) id t's counts on one side."""
    for k in range(starts[t], starts[t + 1]):
        if to_left:
            a[contexts[k]] += sign * counts[k]
        else:
            b[contexts[k]] += sign * counts[k]


@numba.njit(cache=True)
def _swap(ids, in_left, i, j, starts, contexts, counts, a, b):
    """ids[i] and ids[j] change sides (swapping them again undoes it)."""
    for k in (i, j):
        _move(ids[k], in_left[k], starts, contexts, counts, a, b, -1)
        in_left[k] = not in_left[k]
        _move(ids[k], in_left[k], starts, contexts, counts, a, b, 1)


@numba.njit(cache=True)
def _best_swap(ids, in_left, movable, starts, contexts, counts, table, a, b, scratch, delta, candidates):
    """(change of code length, i, j) of the best swap of a movable id i of the 0 child with a
    movable id j of the 1 child among each side's `candidates` best single moves; i = -1: none."""
    for i in range(len(ids)):  # each id's move to the other child, alone
        t, d = ids[i], 0.0
        for k in range(starts[t], starts[t + 1]):
            c, m = contexts[k], counts[k]
            if in_left[i]:
                d += _cost(table, a[c] - m, b[c] + m) - _cost(table, a[c], b[c])
            else:
                d += _cost(table, a[c] + m, b[c] - m) - _cost(table, a[c], b[c])
        delta[i] = d
    best, best_i, best_j = np.inf, -1, -1
    rights = _best(delta, in_left, movable, False, candidates)
    for i in _best(delta, in_left, movable, True, candidates):
        ti = ids[i]
        for k in range(starts[ti], starts[ti + 1]):
            scratch[contexts[k]] = counts[k]
        for j in rights:
            tj, d = ids[j], delta[i] + delta[j]
            for k in range(starts[tj], starts[tj + 1]):  # contexts both follow: the moves interact
                c, mj = contexts[k], counts[k]
                mi = scratch[c]
                if mi:
                    d += _cost(table, a[c] - mi + mj, b[c] + mi - mj) - _cost(table, a[c] - mi, b[c] + mi)
                    d += _cost(table, a[c], b[c]) - _cost(table, a[c] + mj, b[c] - mj)
            if d < best:
                best, best_i, best_j = d, i, j
        for k in range(starts[ti], starts[ti + 1]):
            scratch[contexts[k]] = 0
    return best, best_i, best_j


@numba.njit(cache=True)
def _best(delta, in_left, movable, side, candidates):
    """The indices of up to `candidates` movable ids of one child whose moves gain most."""
    index = np.nonzero((in_left == side) & movable)[0]
    ranked = index[np.argsort(delta[index], kind="mergesort")]
    return ranked[:candidates]
