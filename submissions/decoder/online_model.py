"""A small neural network that learns while it codes: one more input of the mixer.

Encoder and decoder start it from the same seeded weights and take the same integer training
step after every decision, so nothing of it is stored in the archive but its config: its
share of the payload is the area under its training loss curve.

The network, per token of one stream:
- hidden: h = tanh(sum over the last `tokens` tokens of an embedding per position
  [+ R h_prev, the stream's hidden state after its previous token, when recurrent]);
- output: a hierarchical softmax over the binary tree of token ids, i.e. per tree node a
  weight vector; the decision at that node gets the logit w_node . [h, 1] in the stretch
  domain (1/256 units), which goes to the mixers as it is.
After each decision, w_node takes a gradient step on coding cost and the error flows back
into h's gradient; after the token, through tanh into the embeddings (and R, with h_prev held
fixed: truncated after one step).

Integer-exact (determinism contract): weights are int32 fixed point (1.0 = 2**16), h is
tanh in 12-bit fixed point from the squash table (tanh(x) = 2 squash(2x) - 1), every product
and sum is int64, every rounding is a right shift. The initial weights come from a hash of
their index (splitmix64), the same on every machine.
"""

from __future__ import annotations

import numpy as np

from .jit import I, kernel
from .logistic import PROB_BITS, SQUASH_TABLE

ONE = 1 << 16  # weights: fixed point, 1.0 == ONE
H_ONE = 1 << 12  # h: tanh in [-1, 1] as [-4096, 4096]
WEIGHT_CAP = 16 * ONE  # weights stay in [-16, 16]
RATE_SHIFT = 10  # learning rates are given in 1/1024
YOUNG_BOOST, YOUNG_USES = 15, 64  # a node's output weights step up to 16x as far while it is young
ROW_BOOST, ROW_USES = 3, 4
INIT_SCALE = ONE // 8  # initial embeddings uniform in [-1/8, 1/8)
ROW_MULTIPLIER = np.uint64(0xD6E8FEB86659FD93)
# params: the network's scalars, one int64 array
HIDDEN, TOKENS, OUT_RATE, IN_RATE, TABLE_BITS = range(5)


def new_online_state(hidden: int, tokens: int, rates: tuple, contexts: list, table_bits: int, vocab_size: int, n_bits: int) -> dict:
    """The network's arrays (zero-sized when hidden == 0: the network is off); contexts: the
    rows of the mixing model's contexts whose hashes it embeds."""
    width = hidden + 1  # h with a constant 1 at the end (the output's bias)
    on = hidden > 0
    return dict(
        online_params=np.array([hidden, tokens, rates[0], rates[1], table_bits], dtype=np.int64),
        online_contexts=np.array(contexts if on else (), dtype=np.int64),
        embed=_seeded((tokens, vocab_size + 1, hidden), salt=1) if on else np.zeros((0, 0, 0), dtype=np.int32),
        context_embed=np.zeros((1 << table_bits, hidden + 1) if on and contexts else (0, 0), dtype=np.int32),  # + its uses; zeros: mapped lazily
        context_rows=np.zeros(len(contexts) if on else 0, dtype=np.int64),
        out_w=np.zeros((1 << n_bits, width + 1), dtype=np.int32) if on else np.zeros((0, 0), dtype=np.int32),  # + its uses
        h=np.zeros(width, dtype=np.int64),
        grad_h=np.zeros(width, dtype=np.int64),
        online_logits=np.zeros(n_bits, dtype=np.int64),  # the network's logit at each depth of this token
    )


def _seeded(shape: tuple, salt: int) -> np.ndarray:
    """Weights uniform in [-INIT_SCALE, INIT_SCALE) from splitmix64 of (salt, index): integers only."""
    with np.errstate(over="ignore"):
        x = np.arange(int(np.prod(shape)), dtype=np.uint64) + np.uint64(salt << 40)
        x = x * np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    bits = INIT_SCALE.bit_length()  # [0, 2 INIT_SCALE) - INIT_SCALE
    return ((x >> np.uint64(64 - bits)).astype(np.int64) - INIT_SCALE).astype(np.int32).reshape(shape)


@kernel
def online_hidden(s, b):
    """h for stream b's next token, from its last tokens (history: token + 1, newest first)
    and the hashes of the chosen contexts (already computed for this token)."""
    params = s.online_params
    hidden, table_bits = params[HIDDEN], params[TABLE_BITS]
    for i in range(len(s.online_contexts)):
        s.context_rows[i] = I(s.context_hash[s.online_contexts[i]] * ROW_MULTIPLIER >> np.uint64(64 - table_bits))
    for j in range(hidden):
        pre = I(0)
        for k in range(params[TOKENS]):
            pre += I(s.embed[k, s.history[b, k], j])
        for i in range(len(s.context_rows)):
            pre += I(s.context_embed[s.context_rows[i], j])
        s.h[j] = tanh_of(pre)
        s.grad_h[j] = 0
    s.h[hidden] = H_ONE
    s.grad_h[hidden] = 0


@kernel
def tanh_of(pre):
    """tanh(pre / ONE) * H_ONE, as 2 squash(2x) - 1 (squash's input is in 1/256 units)."""
    d = min(max(pre >> 7, -2047), 2047)
    return 2 * I(SQUASH_TABLE[d + 2047]) - H_ONE


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
    p = I(SQUASH_TABLE[s.online_logits[depth] + 2047])
    error = (bit << PROB_BITS) - p  # (bit - p) in 1/4096
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
def online_learn_token(s, b):
    """After stream b's token: h's gradient through tanh into the embeddings that made h
    (before the history moves on)."""
    params = s.online_params
    hidden = params[HIDDEN]
    for i in range(len(s.context_rows)):
        s.context_embed[s.context_rows[i], hidden] = min(I(s.context_embed[s.context_rows[i], hidden]) + 1, 1 << 30)
    for j in range(hidden):
        slope = H_ONE - (s.h[j] * s.h[j] >> 12)  # tanh' = 1 - h^2
        grad = (s.grad_h[j] >> 12) * slope >> 12  # 2**16 is 1.0
        step = grad * params[IN_RATE] >> RATE_SHIFT
        for k in range(params[TOKENS]):
            at = s.history[b, k]
            s.embed[k, at, j] = min(max(I(s.embed[k, at, j]) + step, -WEIGHT_CAP), WEIGHT_CAP)
        for i in range(len(s.context_rows)):
            at = s.context_rows[i]
            used = I(s.context_embed[at, hidden])
            boosted = step + step * ROW_BOOST * ROW_USES // (used + ROW_USES)
            s.context_embed[at, j] = min(max(I(s.context_embed[at, j]) + boosted, -WEIGHT_CAP), WEIGHT_CAP)
