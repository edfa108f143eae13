"""Token streams <-> payload: one loop shared by the encoder and the decoder.

The token sequence is cut into B contiguous streams (the first N % B streams one
token longer). Every step advances all active streams by one token: one model
step, one vectorized coder step. Because stream lengths never grow with the
stream index, the active streams at any step are a prefix 0..k-1.

A model either gives a frequency table over the vocabulary per step (`step`),
or is binary (`binary = True`): it codes each token as n_bits yes/no decisions,
most significant bit first (`begin`, then `zero_freqs` / `update` per bit).

Every `block` steps (encoding.block_steps) the coder ends a block (rans.py), so the encoder holds
one block's intervals, never the whole file's. A large input is also cut into
shards: contiguous pieces coded independently, each with its own model and
streams, so shards can be coded by different processes or machines and the
archive bytes never depend on how many did the work.
"""

from __future__ import annotations

import numpy as np

from .rans import CorruptPayload, RansDecoder  # noqa: F401 (CorruptPayload re-exported)


def stream_lengths(n_tokens: int, n_streams: int) -> np.ndarray:
    base, extra = divmod(n_tokens, n_streams)
    return np.array([base + (b < extra) for b in range(n_streams)], dtype=np.int64)


def _steps(lengths: np.ndarray) -> list[int]:
    """Active prefix size k_t for every step t."""
    n_steps = int(lengths[0]) if len(lengths) else 0
    return [int(np.count_nonzero(lengths > t)) for t in range(n_steps)]


def _native_step(model):
    """A model may keep its frequencies where it computed them (a GPU): `step_native`."""
    return getattr(model, "step_native", model.step)


def decode(model, payload: bytes, n_tokens: int, n_streams: int, prob_bits: int, progress=None, block: int | None = None) -> np.ndarray:
    """The token ids (uint16 where the vocabulary allows: the decoded file's ids are its largest
    array); block as given to encode; progress(steps done, total steps) after every step."""
    if n_streams == 0:
        return np.zeros(0, dtype=np.int64)
    lengths = stream_lengths(n_tokens, n_streams)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    decoder = RansDecoder(payload, n_streams, prob_bits)
    vocab = 1 << model.n_bits if getattr(model, "binary", False) else getattr(model, "vocab_size", 1 << 31)
    tokens = np.zeros(n_tokens, dtype=np.uint16 if vocab <= 1 << 16 else np.int64)
    prev = np.full(n_streams, -1, dtype=np.int64)
    active = _steps(lengths)
    binary, step = getattr(model, "binary", False), _native_step(model)
    for t, k in enumerate(active):
        if block and t and t % block == 0:
            decoder.next_block()
        current = _decode_bits(model, decoder, prev, k) if binary else decoder.get(step(prev)[:k])
        tokens[starts[:k] + t] = current
        prev = np.full(n_streams, -1, dtype=np.int64)
        prev[:k] = current
        if progress:
            progress(t + 1, len(active))
    decoder.check_finished()
    return tokens


def _decode_bits(model, decoder: RansDecoder, prev: np.ndarray, k: int) -> np.ndarray:
    model.begin(prev, k)
    tokens = np.zeros(k, dtype=np.int64)
    for _ in range(model.n_bits):
        bits = decoder.get_bits(model.zero_freqs())
        model.update(bits)
        tokens = 2 * tokens + bits
    return tokens
