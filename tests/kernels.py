"""Test entry points into the decoder's kernels, which have no Python entry of their own
(numba.njit here, plain Python with NUMBA_DISABLE_JIT=1, like the kernels themselves)."""

import numba
import numpy as np

from submissions.decoder.counts import claim_bucket, count_bit
from submissions.decoder.mixing import map_learn, map_p, mix_dot, mix_learn, squash_of
from submissions.decoder.mixing_model import record_token, token_facts
from submissions.decoder.online_alone import direct_claim, direct_entry
from submissions.decoder.online_model import online_hidden, online_learn_bit, online_learn_token, online_logit
from submissions.decoder.binary_coder import code_bit


@numba.njit
def facts_before(s, b, position):
    """The facts (and context hashes) of stream b before the token at `position`."""
    token_facts(s, b, position)


@numba.njit
def record(s, b, position, token):
    record_token(s, b, position, token)


@numba.njit
def claim(buckets, h, bucket_bits):
    return claim_bucket(buckets, h, bucket_bits)


@numba.njit
def claim_direct(d, h, shift):
    return direct_claim(d, h, shift)


@numba.njit
def direct_weight(d, claimed):
    return direct_entry(d, claimed)


@numba.njit
def count(buckets, at, bit, limit):
    count_bit(buckets, at, bit, limit)


@numba.njit
def learn_map(maps, i, bit, limit, times):
    """Learn the bit `times` times; return the probabilities along the way."""
    out = []
    for _ in range(times):
        map_learn(maps, i, bit, limit)
        out.append(map_p(maps, i))
    return out


@numba.njit
def train_mixer(weights, inputs, bits, rate):
    """Mix and learn each row of inputs with its bit; return the last probability."""
    p = 0
    for i in range(len(bits)):
        p = squash_of(mix_dot(weights, 0, inputs[i]))
        mix_learn(weights, 0, inputs[i], p, bits[i], rate)
    return p


@numba.njit
def code_bits(coder, streams, zeros, bits):
    """Code (or decode: bits ignored) one binary decision per entry; return the bits."""
    out = bits.copy()
    for i in range(len(streams)):
        out[i] = code_bit(coder, streams[i], zeros[i], bits[i])
    return out


@numba.njit
def online_costs(s, tokens, n_bits):
    """The online network alone on stream 0: per token, the bits its own predictions cost,
    learning as it goes (the model's facts and context hashes kept as when coding)."""
    costs = np.zeros(len(tokens))
    for t in range(len(tokens)):
        token_facts(s, 0, t)
        online_hidden(s)
        node = 1
        for depth in range(n_bits):
            bit = tokens[t] >> (n_bits - 1 - depth) & 1
            p = squash_of(online_logit(s, node, depth)) / 4096
            costs[t] -= np.log2(p if bit else 1 - p)
            online_learn_bit(s, node, depth, bit)
            node = 2 * node + bit
        online_learn_token(s)
        record_token(s, 0, t, tokens[t])
    return costs
