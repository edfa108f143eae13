"""Frequency tables over a vocabulary for the rANS coder: made from model scores,
and the symbol of a coder slot (decoding; the encoder's symbol_intervals is in encoding.py).

Only token-table models (context, neural) need this module; an archive of the
binary mixing model leaves it out. Integer math only (determinism contract).
"""

from __future__ import annotations

import numpy as np

from .rans import POSITION, STATE_LOW, WORD_BITS, CorruptPayload


def normalize_frequencies(weights: np.ndarray, prob_bits: int) -> np.ndarray:
    """Integer weights (..., V), each >= 0 with a positive row sum -> frequencies.

    Every frequency is >= 1 and each row sums to exactly 2**prob_bits. Integer
    math only: floor((w * (total - V)) / sum) + 1, and the rounding remainder goes
    to the first most probable symbol. Rows whose sum is too large for int64
    products are halved (deterministically) until they fit; row sums must stay
    below 2**62.
    """
    weights = np.array(weights, dtype=np.int64)
    vocab = weights.shape[-1]
    total = 1 << prob_bits
    if vocab > total:
        raise ValueError(f"vocabulary of {vocab} does not fit in 2**{prob_bits}")
    if np.any(weights < 0):
        raise ValueError("weights must be non-negative")
    row_sum = weights.sum(axis=-1, keepdims=True)
    while True:  # keep weights * total below 2**62
        too_big = row_sum >= 1 << (62 - prob_bits)
        if not too_big.any():
            break
        weights = np.where(too_big, weights >> 1, weights)
        row_sum = weights.sum(axis=-1, keepdims=True)
    if np.any(row_sum <= 0):
        raise ValueError("every row of weights needs a positive sum")
    freqs = _divide_rows(weights * (total - vocab), row_sum) + 1
    remainder = total - freqs.sum(axis=-1)
    top = np.argmax(weights, axis=-1)
    np.put_along_axis(freqs, top[..., None], np.take_along_axis(freqs, top[..., None], -1) + remainder[..., None], -1)
    return freqs


def _divide_rows(numerators: np.ndarray, divisors: np.ndarray) -> np.ndarray:
    """numerators // divisors (one divisor per row), row by row: numpy divides by a scalar
    with a multiply and shift, 3x faster than by a broadcast column (64 x 4096: 176 vs 564 us);
    the same exact integers."""
    flat_numerators = numerators.reshape(-1, numerators.shape[-1])
    flat_divisors = divisors.reshape(-1)
    out = np.empty_like(flat_numerators)
    for row, divisor in enumerate(flat_divisors.tolist()):
        np.floor_divide(flat_numerators[row], divisor, out=out[row])
    return out.reshape(numerators.shape)


def locate_symbols(freqs, slot: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(symbols, start, freq): the symbol of each row whose interval holds slot[b];
    symbols == V where slot lies beyond the table (a corrupt payload)."""
    if not isinstance(freqs, np.ndarray):
        from .torch_freqs import locate_symbols_torch

        return locate_symbols_torch(freqs, slot)
    cumulative = np.cumsum(freqs, axis=1).astype(np.uint64)
    symbols = (cumulative <= slot[:, None]).sum(axis=1)
    safe = np.minimum(symbols, freqs.shape[1] - 1)
    rows = np.arange(len(freqs))
    freq = freqs[rows, safe]
    return symbols, cumulative[rows, safe] - freq.astype(np.uint64), freq


def decode_symbols(coder, prob_bits: int, freqs) -> np.ndarray:
    """Decode one symbol for each of the first len(freqs) streams (an active prefix) of the
    coder arrays (rans.Coder) from their frequency tables."""
    k, state = len(freqs), coder.state
    slot = state[:k] & np.uint64((1 << prob_bits) - 1)
    symbols, start, freq = locate_symbols(freqs, slot)
    if np.any(symbols >= freqs.shape[1]):
        raise CorruptPayload("frequency table does not cover the coder state")
    x = freq.astype(np.uint64) * (state[:k] >> np.uint64(prob_bits)) + slot - start.astype(np.uint64)
    refill = np.flatnonzero(x < np.uint64(STATE_LOW))  # ascending stream order: the order words were written
    begin = int(coder.vars[POSITION])
    if begin + len(refill) > len(coder.words):
        raise CorruptPayload("payload ended early")
    x[refill] = (x[refill] << np.uint64(WORD_BITS)) | coder.words[begin : begin + len(refill)].astype(np.uint64)
    coder.vars[POSITION] = begin + len(refill)
    state[:k] = x
    return symbols


def table_steps(model, n_streams: int):
    """codec.code's code_steps for a token-table model: one frequency table per stream and
    step, decoded here or recorded by the encoder. A model may keep its frequencies where it
    computed them (a GPU): `step_native`."""
    step = getattr(model, "step_native", model.step)
    prev = np.full(n_streams, -1, dtype=np.int64)

    def code_steps(coder, window: np.ndarray, lengths: np.ndarray, t0: int) -> None:
        for i in range(window.shape[1]):
            k = int(np.count_nonzero(lengths > t0 + i))
            if coder.decoding:
                window[:k, i] = decode_symbols(coder.arrays, coder.prob_bits, step(prev)[:k])
            else:
                coder.symbols(step(prev)[:k], window[:k, i])
            prev[:] = -1
            prev[:k] = window[:k, i]

    return code_steps
