"""A small neural network that learns while it codes: one more input of the mixer.

Encoder and decoder start it from the same weights and take the same integer training step
after every decision, so nothing of it is stored in the archive but its config: its share of
the payload is the area under its training loss curve.

The network, per token of one stream:
- hidden: h = tanh(the sum of an embedding of each context in contexts.ONLINE_SALTS), the
  embeddings in one hashed table, found by the contexts' hashes (computed for the mixer);
- output: a hierarchical softmax over the binary tree of token ids: per tree node a weight
  vector; the decision at that node gets the logit w_node . [h, 1] in the stretch domain
  (1/256 units), which goes to the mixers as it is.
After each decision, w_node takes a gradient step on coding cost and the error flows back
into h's gradient; after the token, through tanh into the embeddings that made h. Unlike a
count, an embedding is shared by every node below the context, and the output weights by
every context: what the network learns in one place it applies in others.

Integer-exact (determinism contract): weights are int32 fixed point (1.0 = 2**16), h is
tanh in 12-bit fixed point from the squash table (tanh(x) = 2 squash(2x) - 1), products and
sums are int64, every rounding is a right shift. The output weights start from a Weyl
sequence of their index (the same on every machine; all-zero weights would never learn).
"""

from __future__ import annotations

import numpy as np

from .jit import I, kernel
from .logistic import PROB_BITS, SQUASH_TABLE

ONE = 1 << 16  # output weights and gradients: fixed point, 1.0 == ONE
EMBED_SHIFT = 4  # embeddings are int16 in 1/4096 (ONE >> 4): half the memory, the same payload
EMBED_CAP = (1 << 15) - 1
H_ONE = 1 << 12  # h: tanh in [-1, 1] as [-4096, 4096]
WEIGHT_CAP = 16 * ONE  # weights stay in [-16, 16]
RATE_SHIFT = 10  # learning rates are given in 1/1024
YOUNG_BOOST, YOUNG_USES = 15, 64  # a node's output weights step up to 16x as far while it is young
ROW_BOOST, ROW_USES = 15, 16  # an embedding row steps up to 16x as far while its context is new
INIT_SCALE = ONE // 32  # initial output weights in [-1/32, 1/32)
ROW_MULTIPLIER = np.uint64(0xD6E8FEB86659FD93)
HIDDEN, OUT_RATE, IN_RATE, TABLE_BITS = range(4)  # online_params: the network's scalars


def new_online_state(hidden: int, rates: tuple, contexts: list, table_bits: int, n_bits: int) -> dict:
    """The network's arrays (no contexts: the network is off, its tables empty); contexts: the
    rows of the mixing model's contexts whose hashes it embeds."""
    width = hidden + 1  # h with a constant 1 at the end (the output's bias)
    out_w = (np.arange((1 << n_bits) * width, dtype=np.int64) * 0x9E3779B1 >> 7) % (2 * INIT_SCALE) - INIT_SCALE
    return dict(
        online_params=np.array([hidden, rates[0], rates[1], table_bits], dtype=np.int64),
        online_contexts=np.array(contexts, dtype=np.int64),
        context_rows=np.zeros(len(contexts), dtype=np.int64),
        row_rates=np.zeros(len(contexts), dtype=np.int64),
        embed=np.zeros(((1 << table_bits) * bool(contexts), width), dtype=np.int16),  # + the row's uses; zeros: mapped lazily
        out_w=np.concatenate([out_w.reshape(1 << n_bits, width), np.zeros((1 << n_bits, 1), dtype=np.int64)], 1).astype(np.int32),  # + the node's uses
        h=np.zeros(width, dtype=np.int64),
        grad_h=np.zeros(width, dtype=np.int64),
        online_logits=np.zeros(n_bits, dtype=np.int64),  # the network's logit at each depth of this token
    )


@kernel
def online_hidden(s):
    """h for the next token, from the contexts' hashes (computed for this token)."""
    params = s.online_params
    hidden = params[HIDDEN]
    for i in range(len(s.online_contexts)):
        s.context_rows[i] = I(s.context_hash[s.online_contexts[i]] * ROW_MULTIPLIER >> np.uint64(64 - params[TABLE_BITS]))
    s.h[:] = 0
    s.grad_h[:] = 0
    for i in range(len(s.context_rows)):  # row by row: each row is one run of memory
        at = s.context_rows[i]
        for j in range(hidden):
            s.h[j] += I(s.embed[at, j])
    for j in range(hidden):
        s.h[j] = tanh_of(s.h[j] << EMBED_SHIFT)
    s.h[hidden] = H_ONE


@kernel
def tanh_of(pre):
    """tanh(pre / ONE) * H_ONE, as 2 squash(2x) - 1 (squash's input is in 1/256 units)."""
    return 2 * I(SQUASH_TABLE[min(max(pre >> 7, -2047), 2047) + 2047]) - H_ONE


@kernel
def online_logit(s, node, depth):
    """The decision at this node, in the stretch domain: w_node . [h, 1], clipped."""
    total = I(0)
    for j in range(s.online_params[HIDDEN] + 1):
        total += I(s.out_w[node, j]) * s.h[j]
    logit = min(max(total >> 20, -2047), 2047)  # ONE * H_ONE = 2**28 is 1.0; the stretch unit is 2**20
    s.online_logits[depth] = logit
    return logit


@kernel
def online_learn_bit(s, node, depth, bit):
    """A gradient step of w_node on coding cost; the error's share of h's gradient. Young
    nodes (deep in the tree, seen rarely) step further."""
    hidden = s.online_params[HIDDEN]
    error = (bit << PROB_BITS) - I(SQUASH_TABLE[s.online_logits[depth] + 2047])  # (bit - p) in 1/4096
    used = I(s.out_w[node, hidden + 1])
    s.out_w[node, hidden + 1] = min(used + 1, 1 << 30)
    rate = s.online_params[OUT_RATE]
    rate += rate * YOUNG_BOOST * YOUNG_USES // (used + YOUNG_USES)
    for j in range(hidden + 1):
        w = I(s.out_w[node, j])
        s.grad_h[j] += error * w  # 2**28 is 1.0
        w += error * s.h[j] * rate >> (8 + RATE_SHIFT)  # error * h: 2**24 is 1.0
        s.out_w[node, j] = min(max(w, -WEIGHT_CAP), WEIGHT_CAP)


@kernel
def online_learn_token(s):
    """After the token: h's gradient through tanh into the embeddings that made h."""
    params = s.online_params
    hidden = params[HIDDEN]
    for i in range(len(s.context_rows)):
        at = s.context_rows[i]
        used = I(s.embed[at, hidden])
        s.embed[at, hidden] = min(used + 1, EMBED_CAP)
        s.row_rates[i] = params[IN_RATE] + params[IN_RATE] * ROW_BOOST * ROW_USES // (used + ROW_USES)
    for j in range(hidden):  # grad_h becomes the gradient of the sum that made h
        slope = H_ONE - (s.h[j] * s.h[j] >> 12)  # tanh' = 1 - h^2
        s.grad_h[j] = (s.grad_h[j] >> 12) * slope >> 12  # 2**16 is 1.0
    for i in range(len(s.context_rows)):
        at, rate = s.context_rows[i], s.row_rates[i]
        for j in range(hidden):
            w = I(s.embed[at, j]) + ((s.grad_h[j] * rate >> RATE_SHIFT) + (1 << EMBED_SHIFT - 1) >> EMBED_SHIFT)
            s.embed[at, j] = min(max(w, -EMBED_CAP), EMBED_CAP)

