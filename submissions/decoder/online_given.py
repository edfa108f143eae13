"""Stands in for online_model.py where the network runs outside the kernels, in torch
(pipeline/online_torch.py, `pipeline pack --backend torch`): the same names, the kernels' side
of that exchange. Loaded in online_model's place into a copy of this package
(pipeline/decoder_variant.py); archives never carry it.

- online_hidden records, token after token, the embedding rows of the contexts the network
  embeds (into context_rows: the first pass over the tokens, whose coding is thrown away);
- online_logit returns the logit the outside network gave for this token and depth (from h,
  token after token: the second pass, which codes);
- the learning steps are the outside network's: here they do nothing (online_off's).
"""

from __future__ import annotations

import numpy as np

from .jit import I, kernel
from .online_off import online_learn_bit, online_learn_token  # the network learns outside: no steps here

__all__ = ["new_online_state", "given_arrays", "online_hidden", "online_logit", "online_learn_bit", "online_learn_token"]  # online_model's names

TABLE_BITS, TOKEN = 3, 4  # online_params: the network's scalars (online_model.py), then the tokens seen


def new_online_state(hidden: int, rates: tuple, contexts: list, table_bits: int, n_bits: int) -> dict:
    """As online_model's, with context_rows, row_rates and h empty until given_arrays fills them."""
    return dict(
        online_params=np.array([hidden, rates[0], rates[1], table_bits, 0], dtype=np.int64),
        online_contexts=np.array(contexts, dtype=np.int64),
        context_rows=np.zeros(0, dtype=np.uint32),  # the rows, len(contexts) per token
        row_rates=np.zeros(0, dtype=np.uint64),  # online_model's ROW_MULTIPLIER, which finds a hash's row
        embed=np.zeros((0, 0), dtype=np.int16),
        out_w=np.zeros((0, 0), dtype=np.int32),
        h=np.zeros(0, dtype=np.int16),  # the given logits, n_bits per token
        grad_h=np.zeros(0, dtype=np.int64),
        online_logits=np.zeros(n_bits, dtype=np.int64),
    )


def given_arrays(n_tokens: int, n_contexts: int, n_bits: int, row_multiplier, logits=None) -> dict:
    """The arrays to put in the state for n_tokens: room for the rows, online_model's
    ROW_MULTIPLIER (this module stands in for that one), and the logits ((n_tokens, n_bits);
    None: zeros, for the first pass)."""
    given = np.zeros(n_tokens * n_bits, dtype=np.int16) if logits is None else np.ascontiguousarray(logits, dtype=np.int16).reshape(-1)  # logits fit [-2047, 2047]
    return dict(context_rows=np.zeros(n_tokens * n_contexts, dtype=np.uint32), row_rates=np.array([row_multiplier], dtype=np.uint64), h=given)


@kernel
def online_hidden(s):
    """Record the rows of this token's contexts, as online_model.online_hidden finds them (where
    given_arrays made room: kernels do not check bounds); count the token."""
    t, k = s.online_params[TOKEN], len(s.online_contexts)
    if (t + 1) * k <= len(s.context_rows):
        shift = np.uint64(64 - s.online_params[TABLE_BITS])
        for i in range(k):
            s.context_rows[t * k + i] = s.context_hash[s.online_contexts[i]] * s.row_rates[0] >> shift
    s.online_params[TOKEN] = t + 1


@kernel
def online_logit(s, node, depth):
    """The given logit of this token at this depth (0 past the given ones)."""
    at = (s.online_params[TOKEN] - 1) * len(s.online_logits) + depth
    logit = I(s.h[at]) if at < len(s.h) else I(0)
    s.online_logits[depth] = logit
    return logit

