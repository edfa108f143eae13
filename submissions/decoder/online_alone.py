"""`--model online`: a network that learns while it codes, alone (no counts, no mixers).

The size of the payload is then the area under the network's training loss curve: encoder
and decoder start it from the same weights (zeros and a Weyl sequence) and take the same
integer training step after every decision and every token, so the archive holds no weights.

The network is the mixing model's online network (online_model.py: the embeddings of the
hashed contexts of ONLINE_SALTS, summed, tanh, one output vector per node of the token tree)
with weights that go straight to the logit, as the direct connections of the neural language
models of Bengio et al. (2003) and Mikolov's RNNME:
- direct connections: a weight per (context, node) for every context of the mixing model,
  found by hash (one of two entries holding the hash's 8-bit check, else the less used one,
  started anew), scaled per (depth, context, how often the weight was used: 1, 2-4, 5-14, 15+);
- guesses: each context's run (run_model.py: the token it saw last, how often in a row) and
  each match model's predicted token give a feature of +1 or -1 (the token's next bit) while
  the node is on that token's path, with a weight per (guess, length class, depth);
- refiners (mixing.refine) of the result, in three stages, and a mixer over their answers.
Every weight learns by a gradient step on coding cost: the direct weights and the guesses'
with a step of 1/(n + 2) for their n-th use (a new context learns fast), the scales with a
fixed rate. The contexts' hashes, runs, match predictions and the text state come from the
mixing model's kernels per token (token_facts, record_token); its kernels per decision
(mixing_steps.py: counts, state maps, mixers) are not in the archive.

Integer-exact as the rest: direct and guess weights are in 1/65536 of the stretch unit (int32
and int64), scales in 1/65536, every rounding a right shift or a floor division.
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass

import numpy as np

from .binary_coder import code_bit
from .jit import I, entry, kernel, timed_first_call
from .logistic import PROB_BITS, PROB_ONE
from .mixing import FINE_BITS, U, mix_dot, mix_learn, new_mixer, refine, squash_of, stretch_of
from .match_model import CLASS, PREDICTED
from .mixing_model import (
    HASH_MULTIPLIER, N_BITS, NODE_MULTIPLIER, STREAMS, TOKEN_REFINER_CONTEXTS, VOCAB, ContextMixingBase, MixConfig, record_token,
    refine_three, refiners_learn, token_facts, token_node,
)  # fmt: skip
from .online_model import online_hidden, online_learn_bit, online_learn_token, online_logit
from .rans import CODER_PROB_BITS, DECODING, FAILED
from .run_model import CLASSES, NONE  # run lengths (and match length classes) told apart; no token

DIRECT_LIMIT = 20  # a direct weight's uses are counted up to this (below 32: USE_BITS): its step is then at its smallest (30: +0.015%, 15: +0.01%)
WEIGHT_CAP = 1 << 30
USE_BITS, CHECK_BITS = 5, 8  # a direct entry is one int32 (one load): weight << 13 | check << 5 | uses
USE_MASK, CHECK_MASK = (1 << USE_BITS) - 1, (1 << CHECK_BITS) - 1
DIRECT_CAP = (1 << 18) - 1  # a direct weight's bound, in 1/65536 (far past the logit's clip: on enwik6 none passes 2**16)
DIRECT_WAYS = 2  # the entries a hash may take (1: +0.24% on enwik6 with checks, +0.17% without; 4: -0.01%)
SCALE_CAP = 1 << 20  # scales stay within [-16, 16]
GUESS_LIMIT = 255  # the same for a guess's weight (1023: +0.2%, 60: +1.3%)
REFINED_MATCH = 1  # the match model whose guess keys the fourth refiner (of length 2; 0 or 3: +0.03%)
MATCH_KEYS = 2 * CLASSES + 1  # a guess as a refiner's key: none, or (length class, expected bit)
BLEND_INPUTS, BLEND_RATE = 7, 16  # the mixer after the refiners: its inputs (see refined), its step (8: +0.1%, 32: +0.01%)
RATE, SCALE_SHIFT, DIRECT_BITS, GUESS_RATE = range(4)  # direct_params


@dataclass(frozen=True)
class OnlineConfig(MixConfig):
    """The mixing model's config (the contexts and the online network's fields are the ones
    used), with the direct connections' own fields."""

    kind: str = "online"
    orders: tuple = (1, 2, 3, 4)  # with every context of the table (the defaults below were measured with all of them)
    sparse: tuple = ((1,), (2,), (1, 2))
    byte_contexts: tuple = ((0, 1), (0, 2), (0, 3), (0, 4), (0, 5), (0, 8), (2, 2), (3, 3), (4, 4))
    without: tuple = ()
    table_bits: int = 10  # the count table stays unused: the smallest the config allows
    online_hidden: int = 16  # with the direct connections and guesses, fewer units do better (8: +0.19%, 32: +0.10% on enwik6)
    online_rates: tuple = (8, 16)  # (8, 24): +0.07% on enwik6 (the same on its halves and three other texts), (8, 12): +0.03%, (8, 8): +0.15%
    online_table_bits: int = 22  # 2**22 rows of 33 int16 (277 MiB); 2**23: -0.05%
    direct_bits: int = 27  # direct weights: a hashed table of 2**direct_bits (4 bytes each: 512 MiB); 2**26: +0.16%
    direct_rate: int = 2  # a direct weight's step is direct_rate * 2 / (n + 2) of the error, for its n-th use (1: +0.3%, 3: +0.1%)
    guess_rate: int = 4  # the same for the weights of runs and matches (3: +0.05%, 8: +0.13%)
    scale_shift: int = 15  # the scales' step: error * weight >> scale_shift (14: +0.07%, 16: +0.05%)


DirectState = namedtuple(
    "DirectState",
    "direct_params direct direct_at direct_value direct_scale guess_weights guess_uses guess_at guess_sign direct_row"
    " blend_weights blend_inputs blend_at",
)


class OnlineModel(ContextMixingBase):
    config_class = OnlineConfig
    modules = ContextMixingBase.modules + ("online_alone",)
    refiners = 5  # refine_three's, then by (a match model's guess, node), then by (last token, node) again

    def __init__(self, vocab_size: int, n_streams: int, prob_bits: int, config: OnlineConfig = OnlineConfig(), token_bytes=None):
        super().__init__(vocab_size, n_streams, prob_bits, config, token_bytes=token_bytes)
        n_contexts, n_guesses = len(self.contexts), len(self.contexts) + len(self.state.match_lengths)  # a run per context, the match models
        blend_weights = new_mixer(1 << self.n_bits, BLEND_INPUTS)  # a weight set per node
        self.direct = DirectState(  # from a dict(): archive.shortened then shortens the field names
            **dict(
                direct_params=np.array([config.direct_rate, config.scale_shift, config.direct_bits, config.guess_rate], dtype=np.int64),
                direct=np.zeros(1 << config.direct_bits, dtype=np.int32),
                direct_at=np.zeros(n_contexts, dtype=np.int64),
                direct_value=np.zeros(n_contexts, dtype=np.int64),
                direct_scale=np.full((self.n_bits * 4, n_contexts), 1 << 16, dtype=np.int64),  # by (depth, use class), context
                direct_row=np.zeros(n_contexts, dtype=np.int64),  # each context's row of direct_scale at this decision
                guess_weights=np.zeros(n_guesses * CLASSES * self.n_bits, dtype=np.int64),  # by (run or match model, length class, depth)
                guess_uses=np.zeros(n_guesses * CLASSES * self.n_bits, dtype=np.int64),
                guess_at=np.zeros(n_guesses, dtype=np.int64),
                guess_sign=np.zeros(n_guesses, dtype=np.int64),
                blend_weights=blend_weights,
                blend_inputs=np.zeros(BLEND_INPUTS, dtype=np.int32),
                blend_at=np.zeros(2, dtype=np.int64),  # the weight set in use, its probability
            )
        )

    def refiner_contexts(self) -> int:
        return super().refiner_contexts() + (MATCH_KEYS << self.n_bits) + TOKEN_REFINER_CONTEXTS  # see refined

    @classmethod
    def from_config(cls, config: dict, vocab_size: int, n_streams: int, prob_bits: int, weights: bytes = b"", token_bytes=None):
        fields = {k: v for k, v in config.items() if k in OnlineConfig.__dataclass_fields__}
        return cls(vocab_size, n_streams, prob_bits, OnlineConfig(**fields), token_bytes=token_bytes)

    def code_steps(self, coder, window: np.ndarray, lengths: np.ndarray, t0: int) -> None:
        with np.errstate(over="ignore"):  # wrapping uint64 hashes are meant (numpy scalars warn with JIT off)
            timed_first_call(code_alone, self.state, self.direct, coder.arrays, window, lengths, t0)


@entry
def code_alone(s, d, coder, window, lengths, t0):
    """As mixing_steps.code_steps, with the network's probability coded."""
    n_streams, n_bits, vocab = s.params[STREAMS], s.params[N_BITS], s.params[VOCAB]
    prob_bits, decoding = coder.vars[CODER_PROB_BITS], coder.vars[DECODING]
    for i in range(window.shape[1]):
        for b in range(n_streams):
            if lengths[b] <= t0 + i:
                break  # active streams are a prefix
            position = (t0 + i) * n_streams + b
            token = I(window[b, i])
            token_facts(s, b, position)
            online_hidden(s)
            node = I(1)
            for depth in range(n_bits):
                below = n_bits - depth - 1
                if ((2 * node + 1) << below) - (1 << n_bits) >= vocab:
                    node = 2 * node  # no id of the vocabulary below a 1 here: a 0, known to both sides
                    continue
                p = refined(s, d, b, node, depth, squash_of(direct_logit(s, d, b, node, depth)))
                bit = 0 if decoding else token >> below & 1
                bit = code_bit(coder, b, ((PROB_ONE << FINE_BITS) - p) << (prob_bits - PROB_BITS - FINE_BITS), bit)
                refiners_learn(s, bit)
                mix_learn(d.blend_weights, d.blend_at[0], d.blend_inputs, d.blend_at[1], bit, BLEND_RATE)
                direct_learn(s, d, depth, bit)
                online_learn_bit(s, node, depth, bit)
                node = 2 * node + bit
            online_learn_token(s)
            if coder.vars[FAILED]:
                return
            token = node - (1 << n_bits)
            window[b, i] = token
            record_token(s, b, position, token)


@kernel
def direct_logit(s, d, b, node, depth):
    """The network's logit plus the direct connections' and the guesses', in the stretch domain,
    clipped; kept in s.online_logits[depth], from which online_learn_bit takes the error."""
    total = online_logit(s, node, depth) << 24  # 2**24: the unit of weight * scale
    node_hash = U(node) * NODE_MULTIPLIER
    shift = U(64) - U(d.direct_params[DIRECT_BITS])
    for c in range(len(d.direct_at)):  # every context of the mixing model, not only those the network embeds
        claimed = direct_claim(d, (s.context_hash[c] ^ node_hash) * HASH_MULTIPLIER, shift)
        value, uses = direct_entry(d, claimed)
        row = depth * 4 + (0 if uses < 2 else 1 if uses < 5 else 2 if uses < 15 else 3)  # how far to trust it: -0.15% on enwik6
        d.direct_at[c], d.direct_value[c], d.direct_row[c] = claimed, value, row
        total += value * d.direct_scale[row, c]
    n_bits, n_contexts = s.params[N_BITS], len(d.direct_at)
    for c in range(n_contexts):  # each context's run (run_model.py): the token it saw last, how often in a row
        total += guess(d, c, s.run_found[c, 1], s.run_found[c, 2], node, depth, n_bits) << 16
    for m in range(len(d.guess_at) - n_contexts):  # each match model's predicted token, while it lives
        length_class = s.match_state[m, b, CLASS]
        token = s.match_state[m, b, PREDICTED] - (1 << n_bits) if length_class else NONE
        total += guess(d, n_contexts + m, token, length_class, node, depth, n_bits) << 16
    logit = min(max(total >> 24, -2047), 2047)
    s.online_logits[depth] = logit
    return logit


@kernel
def direct_claim(d, h, shift):
    """Entry index << CHECK_BITS | check, for hash h (uint64): of its DIRECT_WAYS entries, the
    one holding h's check, else the one used least (whose weight then starts anew)."""
    first, check = I(h >> shift), I(h >> (shift - U(CHECK_BITS)) & U(CHECK_MASK))
    at, least = first, USE_MASK + 1
    for way in range(DIRECT_WAYS):
        packed = I(d.direct[first ^ way])
        if (packed >> USE_BITS & CHECK_MASK) == check:
            return (first ^ way) << CHECK_BITS | check
        if (packed & USE_MASK) < least:
            at, least = first ^ way, packed & USE_MASK
    return at << CHECK_BITS | check


@kernel
def direct_entry(d, claimed):
    """(weight, uses) of a claimed entry: (0, 0) while it holds another check (a new one)."""
    packed = I(d.direct[claimed >> CHECK_BITS])
    if (packed >> USE_BITS & CHECK_MASK) != (claimed & CHECK_MASK):
        return I(0), I(0)
    return packed >> (USE_BITS + CHECK_BITS), packed & USE_MASK


@kernel
def guess(d, g, token, length, node, depth, n_bits):
    """Guess g (a run or a match model) predicts this token: while the node is on its path, a
    feature of +1 (its next bit is a 1) or -1, whose weight learns per (guess, length class,
    depth); its weight times the feature, or 0 off the path."""
    bit = expected_bit(token, node, depth, n_bits)
    if bit == NONE:
        d.guess_at[g] = NONE
        return 0
    at = (g * CLASSES + min(length, CLASSES - 1)) * n_bits + depth
    d.guess_at[g], d.guess_sign[g] = at, 2 * bit - 1
    return d.guess_sign[g] * d.guess_weights[at]


@kernel
def expected_bit(token, node, depth, n_bits):
    """The token's next bit while the node is on its path; NONE off it (or for no token)."""
    below = n_bits - depth - 1
    if token == NONE or (token | (1 << n_bits)) >> (below + 1) != node:
        return NONE
    return token >> below & 1


@kernel
def refined(s, d, b, node, depth, p):
    """p (12 bits) through three stages of refiners (mixing.refine), in 12 + FINE_BITS bits: the
    mixing model's three (refine_three), averaged; that refined by (a match model's guess,
    node), averaged 1:3 with it; that by (last token, node) in a table of its own, averaged
    1:1; last, averaged with a mixer of all of them by node. On enwik6's halves: -1.4%, -0.3%,
    -0.13%, -0.24%."""
    n_bits, top = s.params[N_BITS], (PROB_ONE << FINE_BITS) - 16
    by_node, by_token, by_tokens = refine_three(s, b, node, p)
    first = min(max((by_node + by_token + by_tokens) // 3, 16), top)  # a 12-bit p of 1..4095 for the next stage
    length_class = s.match_state[REFINED_MATCH, b, CLASS]
    bit = expected_bit(s.match_state[REFINED_MATCH, b, PREDICTED] - (1 << n_bits) if length_class else NONE, node, depth, n_bits)
    key = 0 if bit == NONE else 2 * length_class + bit + 1
    at = (1 << n_bits) + 2 * TOKEN_REFINER_CONTEXTS
    by_match, s.refine_at[3] = refine(s.refiner, at + (key << n_bits | node), first >> FINE_BITS)
    second = min(max((first + 3 * by_match) >> 2, 16), top)
    by_token, s.refine_at[4] = refine(s.refiner, at + (MATCH_KEYS << n_bits) + token_node(s, b, node, 1), second >> FINE_BITS)
    chained = min(max((second + by_token) >> 1, 1), top + 15)
    x = d.blend_inputs
    x[0], x[1], x[2], x[3] = stretch_of(p), stretch_of(by_node >> FINE_BITS), stretch_of(by_tokens >> FINE_BITS), stretch_of(by_match >> FINE_BITS)
    x[4], x[5], x[6] = stretch_of(by_token >> FINE_BITS), stretch_of(chained >> FINE_BITS), 256  # 256: the bias
    d.blend_at[0] = node
    d.blend_at[1] = squash_of(mix_dot(d.blend_weights, node, x))
    return min(max((chained + (d.blend_at[1] << FINE_BITS)) >> 1, 1), top + 15)


@kernel
def direct_learn(s, d, depth, bit):
    """A step of each direct weight used (1/(n + 2) for its n-th use) and of its scale; of each
    live guess's weight (likewise)."""
    error = (bit << PROB_BITS) - squash_of(s.online_logits[depth])  # (bit - p) in 1/4096
    rate, shift = d.direct_params[RATE], d.direct_params[SCALE_SHIFT]
    for g in range(len(d.guess_at)):
        at = d.guess_at[g]
        if at != NONE:
            uses = d.guess_uses[at]
            d.guess_uses[at] = min(uses + 1, GUESS_LIMIT)
            step = error * d.direct_params[GUESS_RATE] * 32 // (uses + 2) >> 4
            d.guess_weights[at] = min(max(d.guess_weights[at] + d.guess_sign[g] * step, -WEIGHT_CAP), WEIGHT_CAP)
    for i in range(len(d.direct_at)):
        claimed, scale = d.direct_at[i], d.direct_scale[d.direct_row[i], i]
        value, uses = direct_entry(d, claimed)  # read again: another context may have stepped it just now
        step = (error * rate * 32 // (uses + 2) >> 4) * scale >> 16
        value = min(max(value + step, -DIRECT_CAP), DIRECT_CAP)
        d.direct[claimed >> CHECK_BITS] = value << (USE_BITS + CHECK_BITS) | (claimed & CHECK_MASK) << USE_BITS | min(uses + 1, DIRECT_LIMIT)
        d.direct_scale[d.direct_row[i], i] = min(max(scale + (error * d.direct_value[i] >> shift), -SCALE_CAP), SCALE_CAP)
