"""Stands in for online_model.py in the archives of a mixing model without the network
(`online_hidden` 0): the same names, doing nothing (the model never calls them then), so those
archives do not carry the network's code. The project itself always imports online_model."""

from __future__ import annotations

import numpy as np

from .jit import I, kernel


def new_online_state(hidden: int, rates: tuple, contexts: list, table_bits: int, n_bits: int) -> dict:
    empty = np.zeros(0, dtype=np.int64)
    names = ("online_params", "online_contexts", "context_rows", "row_rates", "embed", "out_w", "h", "grad_h", "online_logits")
    return {name: empty for name in names}


@kernel
def online_hidden(s):
    return


@kernel
def online_logit(s, node, depth):
    return I(0)


@kernel
def online_learn_bit(s, node, depth, bit):
    return


@kernel
def online_learn_token(s):
    return
