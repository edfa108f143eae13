"""The neural model as one more input of the mixing model (`--model mix --with-neural`): each
step the token model gives every stream's frequencies over the vocabulary, and the kernel
reads P(bit | node) from their cumulative sums. Archives of a mixing model without a neural
input carry neural_off.py in its place."""

from __future__ import annotations

import numpy as np

from .jit import kernel, timed_first_call
from .logistic import PROB_BITS, PROB_ONE
from .mixing import stretch_of
from .rans import FAILED


def neural_from_config(config: dict, vocab_size: int, n_streams: int, prob_bits: int, weights: bytes):
    from .neural_model import NeuralModel

    neural_config = dict(config["neural"], **{k: config[k] for k in ("backend", "device") if k in config})
    return NeuralModel.from_config(neural_config, vocab_size, n_streams, prob_bits, weights)


def code_with_neural(model, step_kernel, coder, window: np.ndarray, lengths: np.ndarray, t0: int) -> None:
    """The mixing model's code_steps with a neural input: one step at a time, since the neural
    model steps for all streams at once on their last tokens (model.previous)."""
    for i in range(window.shape[1]):
        k = int(np.count_nonzero(lengths > t0 + i))
        cumulative = _cumulative(np.asarray(model.neural.step(model.previous))[:k], model.n_bits, model.vocab_size)
        column = np.ascontiguousarray(window[:, i : i + 1])  # the kernel's one array type: compiled once
        timed_first_call(step_kernel, model.state, coder.arrays, column, lengths, t0 + i, cumulative)
        if coder.arrays.vars[FAILED]:
            return
        window[:, i] = column[:, 0]
        model.previous[:] = -1
        model.previous[:k] = column[:k, 0]


def _cumulative(freqs: np.ndarray, n_bits: int, vocab_size: int) -> np.ndarray:
    """(k, 2**n_bits + 1): frequencies of the ids below each id (ids past the vocabulary: none)."""
    cumulative = np.zeros((len(freqs), (1 << n_bits) + 1), dtype=np.int64)
    cumulative[:, 1 : vocab_size + 1] = np.cumsum(freqs, axis=1)
    cumulative[:, vocab_size + 1 :] = cumulative[:, vocab_size : vocab_size + 1]
    return cumulative


@kernel
def neural_input(cumulative, b, node, depth, n_bits):
    """stretch(P(bit = 1 | node)) under the neural model: its mass in the node's upper half."""
    below = n_bits - depth - 1
    low = (node - (1 << depth)) << (below + 1)
    start, middle, end = cumulative[b, low], cumulative[b, low + (1 << below)], cumulative[b, low + (2 << below)]
    p = ((end - middle) << PROB_BITS) // max(end - start, 1)
    return stretch_of(min(max(p, 1), PROB_ONE - 1))
