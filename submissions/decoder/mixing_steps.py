"""The mixing model (`--model mix`): its class, its state beyond the shared one (counts, state
maps, mixers), its coding loop and its kernels per decision (mixing_model.py says how they fit
together and holds the shared state and the kernels per token). A module of its own, like its
count table (counts.py) and mixer selectors (selectors.py), so that a model which reads the
same contexts and text state but codes otherwise (online_alone.py) carries none of it.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from .binary_coder import code_bit
from .contexts import MATCH_CLASS, SEEN_CLASS
from .counts import CELL_STATES, GROUP_BITS, cell_state, claim_bucket, count_bit, touch_set
from .jit import I, entry, kernel, timed_first_call
from .logistic import PROB_BITS, PROB_ONE
from .match_model import CLASS, PREDICTED
from .match_model import CLASSES as MATCH_CLASSES
from .mixing import FINE_BITS, MAP_LIMIT, U, map_learn, map_p, mix_dot, mix_learn, new_mixer, new_state_maps, squash_of, stretch_of
from .mixing_model import (
    BUCKET_BITS, COUNT_LIMIT, HAS_NEURAL, HAS_ONLINE, HASH_MULTIPLIER, N_BITS, N_CONTEXTS, N_MATCHES, NODE_MULTIPLIER, RATE, STREAMS,
    TOUCHED, VOCAB, ContextMixingBase, SharedState, MixConfig, record_token, refine_three, refiners_learn, token_facts,
)  # fmt: skip
from .neural_input import neural_input
from .online_model import online_hidden, online_learn_bit, online_learn_token, online_logit
from .rans import CODER_PROB_BITS, DECODING, FAILED
from .run_model import CLASSES as RUN_CLASSES
from .run_model import NONE
from .selectors import FINAL_LAYER, NODE_SETS, selector_table

BIAS = 256  # the constant input of every mixer
FINAL_RATE_DIVISOR = 4  # the final mixers step a quarter as far as the first layer: -0.14% on enwik6
UNSEEN = 256  # a context's second input while it has seen nothing (its first is then 0): -0.57% on enwik6

MixState = namedtuple(
    "MixState",
    " ".join(SharedState._fields) + " buckets maps weights sel_fact sel_by_node sel_offset final_weights final_fact final_offset"
    " run_maps match_maps bucket_at state_at inputs sets mixed final_inputs final_sets final_p match_alive",
)


class ContextMixingModel(ContextMixingBase):
    """`--model mix`: the contexts' counts, runs, matches and the online network, mixed."""

    modules = ContextMixingBase.modules + ("mixing_steps", "counts", "selectors", "neural_input")
    state_type = MixState

    @classmethod
    def from_config(cls, config: dict, vocab_size: int, n_streams: int, prob_bits: int, weights: bytes = b"", token_bytes=None):
        neural = None
        if config.get("neural"):
            from .neural_input import neural_from_config

            neural = neural_from_config(config, vocab_size, n_streams, prob_bits, weights)
        fields = {k: v for k, v in config.items() if k in MixConfig.__dataclass_fields__}
        return cls(vocab_size, n_streams, prob_bits, MixConfig(**fields), token_bytes=token_bytes, neural=neural)

    def own_arrays(self, n_matches: int) -> dict:
        """The count table, the state maps, the mixers (a weight vector per selector value and
        node or depth) and the kernels' scratch arrays per decision."""
        config, n_bits, n_contexts = self.config, self.n_bits, len(self.contexts)
        selectors = selector_table(config)
        n_inputs = 3 * n_contexts + n_matches + (self.neural is not None) + (config.online_hidden > 0) + 1  # per context 3, + bias
        sizes = [self.vocab_size + 1 if values is None else values for _, values, _ in selectors]
        self.by_node = by_node = [node and (size << n_bits) <= NODE_SETS for (_, _, node), size in zip(selectors, sizes)]
        sets = [size << n_bits if node else size * n_bits for size, node in zip(sizes, by_node)]
        final_sets = [(self.vocab_size + 1 if size is None else size) * n_bits for _, size in FINAL_LAYER]
        weights = new_mixer(sum(sets), n_inputs)
        final_weights = new_mixer(sum(final_sets), len(selectors) + 1)
        return dict(
            buckets=np.zeros(1 << config.table_bits, dtype=np.uint32),
            maps=new_state_maps(n_contexts * CELL_STATES),
            weights=weights,
            sel_fact=np.array([fact for fact, _, _ in selectors], dtype=np.int64),
            sel_by_node=np.array(by_node, dtype=np.int64),
            sel_offset=np.cumsum([0] + sets[:-1]).astype(np.int64),
            final_weights=final_weights,
            final_fact=np.array([fact for fact, _ in FINAL_LAYER], dtype=np.int64),
            final_offset=np.cumsum([0] + final_sets[:-1]).astype(np.int64),
            run_maps=new_state_maps(n_contexts * RUN_CLASSES * n_bits),  # P(the run's bit) by (context, length, depth)
            match_maps=new_state_maps(n_matches * MATCH_CLASSES * n_bits).reshape(n_matches, MATCH_CLASSES * n_bits),  # by (length class, depth)
            bucket_at=np.zeros(n_contexts, dtype=np.int64),
            state_at=np.zeros(n_contexts, dtype=np.int64),
            inputs=np.zeros(n_inputs, dtype=np.int32),
            sets=np.zeros(len(selectors), dtype=np.int64),
            mixed=np.zeros(len(selectors), dtype=np.int64),  # each first-layer mixer's probability
            final_inputs=np.zeros(len(selectors) + 1, dtype=np.int32),
            final_sets=np.zeros(len(FINAL_LAYER), dtype=np.int64),
            final_p=np.zeros(len(FINAL_LAYER), dtype=np.int64),
            match_alive=np.zeros((max(1, n_matches), 2), dtype=np.int64),  # (length class while alive, expected bit)
        )

    def code_steps(self, coder, window: np.ndarray, lengths: np.ndarray, t0: int) -> None:
        """Code steps t0 .. t0 + window.shape[1] - 1 of every active stream: window[b, i] is
        stream b's token at step t0 + i, read when encoding, written when decoding."""
        with np.errstate(over="ignore"):  # wrapping uint64 hashes are meant (numpy scalars warn with JIT off)
            if self.neural is None:
                timed_first_call(code_steps, self.state, coder.arrays, window, lengths, t0, np.zeros((0, 0), dtype=np.int64))
            else:
                from .neural_input import code_with_neural

                code_with_neural(self, code_steps, coder, window, lengths, t0)


@entry
def code_steps(s, coder, window, lengths, t0, neural):
    """Each active stream's token at each step, bit by bit (read from the window when encoding,
    written to it when decoding). One function, not a kernel per token: numba compiles a kernel's
    callees again into each caller, so a level less is ~1 s less compiling in every decode."""
    n_streams, n_bits, vocab = s.params[STREAMS], s.params[N_BITS], s.params[VOCAB]
    prob_bits, decoding = coder.vars[CODER_PROB_BITS], coder.vars[DECODING]
    for i in range(window.shape[1]):
        for b in range(n_streams):
            if lengths[b] <= t0 + i:
                break  # active streams are a prefix
            position = (t0 + i) * n_streams + b
            token = I(window[b, i])
            token_facts(s, b, position)
            if s.params[HAS_ONLINE]:
                online_hidden(s)
            node = I(1)  # I(): a literal 1 would make numba compile the callees twice
            for depth in range(n_bits):
                below = n_bits - depth - 1
                if depth % GROUP_BITS == 0:
                    choose_buckets(s, node)
                if ((2 * node + 1) << below) - (1 << n_bits) >= vocab:
                    node = 2 * node  # no id of the vocabulary below a 1 here: a 0, known to both sides
                    continue
                p = predict_bit(s, b, depth, node, neural)
                bit = 0 if decoding else token >> below & 1
                bit = code_bit(coder, b, ((PROB_ONE << FINE_BITS) - p) << (prob_bits - PROB_BITS - FINE_BITS), bit)
                learn_bit(s, depth, node, bit)
                if s.params[HAS_ONLINE]:
                    online_learn_bit(s, node, depth, bit)
                node = 2 * node + bit
            if s.params[HAS_ONLINE]:
                online_learn_token(s)
            if coder.vars[FAILED]:
                return
            token = node - (1 << n_bits)
            window[b, i] = token
            record_token(s, b, position, token)


@kernel
def choose_buckets(s, node):
    """At the first decision of a group: each context's bucket for the group below this node."""
    node_hash = U(node) * NODE_MULTIPLIER
    touched = I(0)
    for c in range(len(s.bucket_at)):  # every set on its way before the first claim (see touch_set)
        touched += touch_set(s.buckets, (s.context_hash[c] ^ node_hash) * HASH_MULTIPLIER, s.params[BUCKET_BITS])
    s.params[TOUCHED] = touched
    for c in range(len(s.bucket_at)):
        s.bucket_at[c] = claim_bucket(s.buckets, (s.context_hash[c] ^ node_hash) * HASH_MULTIPLIER, s.params[BUCKET_BITS])


@kernel
def predict_bit(s, b, depth, node, neural):
    """P(bit = 1) in 12 + FINE_BITS bits (never 0 or 1) for stream b at this node."""
    n_bits, n_contexts = s.params[N_BITS], s.params[N_CONTEXTS]
    in_group = depth % GROUP_BITS
    cell = (1 << in_group) | (node & ((1 << in_group) - 1))  # the node's cell in its group's bucket
    inputs = s.inputs
    seen_first, seen_rest = 0, 0
    for c in range(n_contexts):  # inputs: stretch(p) of a seen context, UNSEEN for one never seen; its run
        counts = I(s.buckets[s.bucket_at[c] + cell])
        if counts:
            state = c * CELL_STATES + cell_state(counts)
            s.state_at[c] = state
            inputs[c], inputs[n_contexts + c] = stretch_of(map_p(s.maps, state)), 0
            if 1 <= c <= 4:
                seen_first |= 1 << (c - 1)
            elif c > 4:
                seen_rest += 1
        else:
            s.state_at[c] = -1
            inputs[c], inputs[n_contexts + c] = 0, UNSEEN
        inputs[2 * n_contexts + c] = run_input(s.run_maps, s.run_found, s.run_alive, c, node, depth, n_bits)
    n = 3 * n_contexts
    for m in range(s.params[N_MATCHES]):
        inputs[n], s.match_alive[m, 0], s.match_alive[m, 1] = match_input(s.match_state, s.match_maps, m, b, node, depth, n_bits)
        n += 1
    if s.params[HAS_NEURAL]:
        inputs[n] = neural_input(neural, b, node, depth, n_bits)
        n += 1
    if s.params[HAS_ONLINE]:
        inputs[n] = online_logit(s, node, depth)
        n += 1
    inputs[len(inputs) - 1] = BIAS
    match_class = s.match_alive[0, 0] if s.params[N_MATCHES] else 0
    s.facts[MATCH_CLASS] = U(match_class)
    s.facts[SEEN_CLASS] = U(seen_first * 8 + seen_rest * 8 // n_contexts)
    for i in range(len(s.sets)):
        value = I(s.facts[s.sel_fact[i]])
        s.sets[i] = s.sel_offset[i] + (value << n_bits | node if s.sel_by_node[i] else value * n_bits + depth)
        dot = mix_dot(s.weights, s.sets[i], inputs)
        s.final_inputs[i] = dot
        s.mixed[i] = squash_of(dot)
    s.final_inputs[len(s.sets)] = BIAS
    total = 0
    for j in range(len(s.final_sets)):
        s.final_sets[j] = s.final_offset[j] + I(s.facts[s.final_fact[j]]) * n_bits + depth
        dot = mix_dot(s.final_weights, s.final_sets[j], s.final_inputs)
        s.final_p[j] = squash_of(dot)
        total += dot
    mixed = squash_of(total // len(s.final_sets))
    by_node, by_token, by_tokens = refine_three(s, b, node, mixed)
    return min(max(((mixed << FINE_BITS) + by_node + by_token + by_tokens) >> 2, 1), (PROB_ONE << FINE_BITS) - 1)


@kernel
def learn_bit(s, depth, node, bit):
    n_bits = s.params[N_BITS]
    in_group = depth % GROUP_BITS
    cell = (1 << in_group) | (node & ((1 << in_group) - 1))
    limit = s.params[COUNT_LIMIT]
    for c in range(s.params[N_CONTEXTS]):
        if s.state_at[c] >= 0:
            map_learn(s.maps, s.state_at[c], bit, MAP_LIMIT)
        count_bit(s.buckets, s.bucket_at[c] + cell, bit, limit)
        run_learn(s.run_maps, s.run_alive, c, bit)
    for m in range(s.params[N_MATCHES]):
        match_learn(s.match_maps, m, s.match_alive[m, 0], depth, n_bits, bit, s.match_alive[m, 1])
    rate = s.params[RATE]
    final_rate = rate // FINAL_RATE_DIVISOR
    for i in range(len(s.sets)):
        mix_learn(s.weights, s.sets[i], s.inputs, s.mixed[i], bit, rate)
    for j in range(len(s.final_sets)):
        mix_learn(s.final_weights, s.final_sets[j], s.final_inputs, s.final_p[j], bit, final_rate)
    refiners_learn(s, bit)


# ---- the confidence of runs and matches (run_model.py, match_model.py) as mixer inputs -----


@kernel
def run_input(maps, found, alive, c, node, depth, n_bits):
    """Context c's input at this node: its stretched confidence toward its run token's next bit
    while the node is on that token's path, else 0."""
    token, below = found[c, 1], n_bits - depth - 1
    if token == NONE or (token | (1 << n_bits)) >> (below + 1) != node:
        alive[c, 0] = NONE
        return 0
    expected = token >> below & 1
    at = (c * RUN_CLASSES + min(found[c, 2], RUN_CLASSES - 1)) * n_bits + depth
    alive[c, 0], alive[c, 1] = at, expected
    confidence = stretch_of(map_p(maps, at))
    return confidence if expected else -confidence


@kernel
def run_learn(maps, alive, c, bit):
    if alive[c, 0] != NONE:
        map_learn(maps, alive[c, 0], I(bit == alive[c, 1]), MAP_LIMIT)


@kernel
def match_input(state, maps, m, b, node, depth, n_bits):
    """(stretched confidence toward the predicted token's next bit, or 0 where no prediction
    is alive; the length class while alive, else 0; the expected bit)."""
    below = n_bits - depth - 1
    predicted, length_class = state[m, b, PREDICTED], state[m, b, CLASS]
    expected = predicted >> below & 1
    if length_class == 0 or predicted >> (below + 1) != node:
        return 0, 0, expected
    confidence = stretch_of(map_p(maps[m], length_class * n_bits + depth))
    return (confidence if expected else -confidence), length_class, expected


@kernel
def match_learn(maps, m, alive_class, depth, n_bits, bit, expected):
    if alive_class:
        map_learn(maps[m], alive_class * n_bits + depth, I(bit == expected), MAP_LIMIT)

