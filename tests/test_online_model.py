"""The network that learns while it codes (online_model.py), one input of the mixing model.
Its exactness (compiled vs plain Python) is in test_kernels_exact.py, its bitstream pinned in
test_mixing_model.py (the default config has it)."""

from __future__ import annotations

import kernels
import numpy as np
from test_mixing_model import PROB_BITS, model

from submissions.decoder import encoding
from submissions.decoder.contexts import ONLINE_SALTS, WORD_CONTEXTS, context_table
from submissions.decoder.online_alone import OnlineConfig


def test_the_network_alone_learns_a_repeated_pattern():
    pattern = np.random.default_rng(1).integers(0, 256, 12)
    m = model(256, 1, table_bits=12, online_table_bits=10)
    with np.errstate(over="ignore"):  # wrapping hashes (numpy scalars warn with JIT off)
        costs = kernels.online_costs(m.state, np.tile(pattern, 60), 8)
    assert costs[:12].mean() > 7.5  # it starts knowing nothing (8 bits of a byte)
    assert costs[-120:].mean() < 0.5  # the contexts it embeds tell the next byte, once learned


def test_the_network_makes_text_smaller(text_sample):
    """(Encoding only: every round-trip test of the mixing model codes with the network.)"""
    tokens = np.frombuffer(text_sample[:20000], dtype=np.uint8).astype(np.int64)
    with_network = encoding.encode(model(256, 1, table_bits=18), tokens, 1, PROB_BITS)
    without = encoding.encode(model(256, 1, table_bits=18, online_hidden=0), tokens, 1, PROB_BITS)
    assert len(with_network) < 0.99 * len(without)


def test_without_the_network_its_arrays_are_empty():
    state = model(256, 2, table_bits=12, online_hidden=0).state
    assert state.embed.size == state.online_contexts.size == 0
    assert len(state.inputs) == len(model(256, 2, table_bits=12).state.inputs) - 1


def test_it_embeds_the_listed_contexts_the_model_has():
    """ONLINE_SALTS names contexts by salt; those a config turns off are left out."""
    every = OnlineConfig()  # every context of the table
    m = model(256, 1, table_bits=12, word=False, orders=every.orders, sparse=every.sparse, byte_contexts=every.byte_contexts, without=())
    salts = [salt for salt, _ in context_table(m.config, 1, 3)]
    embedded = sorted(salts[i] for i in m.state.online_contexts)
    word_salts = {salt for salt, _ in WORD_CONTEXTS} & set(ONLINE_SALTS)
    assert embedded == sorted(set(ONLINE_SALTS) - word_salts)
    assert len(word_salts) == 6 and len(embedded) == len(ONLINE_SALTS) - 6
