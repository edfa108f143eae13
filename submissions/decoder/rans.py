"""Interleaved rANS entropy coder over integer frequency tables, vectorized over streams.

Exact integer arithmetic only (numpy uint64), so any machine decodes what any
other machine encoded. The coder follows ryg's rans64: a 64-bit state per stream
kept in [L, L << 32), renormalized by whole 32-bit words, so each symbol emits or
reads at most one word per stream. That single-word bound is what lets every
stream advance in one vectorized step; a classic range coder needs a loop over
a variable number of output bytes and carry propagation per stream.

rANS is last-in first-out: the encoder runs over the symbols backwards and the
decoder forwards. All streams share one word buffer: at decode step t the streams
that need a word read it in ascending stream order, and the encoder writes its
words so that this order comes out.

Frequencies: every symbol >= 1, every row sums to exactly 2**prob_bits
(prob_bits <= 31). `normalize_frequencies` is the one place where model scores
become coding frequencies.
"""

from __future__ import annotations

import numpy as np

STATE_LOW = 1 << 31  # L: the lower bound of the normalized state interval
WORD_BITS = 32
WORD_MASK = (1 << WORD_BITS) - 1
MAX_PROB_BITS = 31


class CorruptPayload(ValueError):
    """The payload does not decode to a consistent state (truncated or altered)."""


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
    freqs = weights * (total - vocab) // row_sum + 1
    remainder = total - freqs.sum(axis=-1)
    top = np.argmax(weights, axis=-1)
    np.put_along_axis(freqs, top[..., None], np.take_along_axis(freqs, top[..., None], -1) + remainder[..., None], -1)
    return freqs


def symbol_intervals(freqs, symbols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start, freq) of symbols[b] in row b of freqs: start = sum of freqs below it.
    freqs may also be a torch tensor on a device (see torch_freqs.py)."""
    if not isinstance(freqs, np.ndarray):
        from .torch_freqs import symbol_intervals_torch

        return symbol_intervals_torch(freqs, symbols)
    cumulative = np.cumsum(freqs, axis=1)
    rows = np.arange(len(symbols))
    freq = freqs[rows, symbols]
    return cumulative[rows, symbols] - freq, freq


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


class RansEncoder:
    """Collects (start, freq) per step, then codes them all backwards in `finish`."""

    def __init__(self, n_streams: int, prob_bits: int):
        if not 1 <= prob_bits <= MAX_PROB_BITS:
            raise ValueError(f"prob_bits must be in 1..{MAX_PROB_BITS}")
        self.n_streams = n_streams
        self.prob_bits = prob_bits
        self._steps: list[tuple[np.ndarray, np.ndarray]] = []

    def put(self, starts: np.ndarray, freqs: np.ndarray) -> None:
        """One step: symbol intervals of streams 0..k-1 (active streams form a prefix)."""
        self._steps.append((np.asarray(starts, np.uint64), np.asarray(freqs, np.uint64)))

    def ideal_bits(self) -> float:
        """Sum of -log2(freq / 2**prob_bits) over every symbol put: the model's code length,
        which the payload matches up to the coder's few bytes per stream. Reporting only:
        float log2 never steers coding."""
        return float(sum(self.prob_bits * len(f) - np.log2(f.astype(np.float64)).sum() for _, f in self._steps))

    def finish(self) -> bytes:
        """Code every step in reverse; return initial states followed by the word buffer."""
        shift = np.uint64(self.prob_bits)
        x_max_unit = np.uint64(((STATE_LOW >> self.prob_bits) << WORD_BITS))
        state = np.full(self.n_streams, STATE_LOW, dtype=np.uint64)
        chunks: list[np.ndarray] = []
        for starts, freqs in reversed(self._steps):
            k = len(freqs)
            x = state[:k]
            flush = x >= x_max_unit * freqs
            if flush.any():
                chunks.append((x[flush] & np.uint64(WORD_MASK)).astype(np.uint32))
                x[flush] >>= np.uint64(WORD_BITS)
            state[:k] = ((x // freqs) << shift) + (x % freqs) + starts
        words = np.concatenate(chunks[::-1]) if chunks else np.zeros(0, np.uint32)
        return state.astype("<u8").tobytes() + words.astype("<u4").tobytes()


class RansDecoder:
    """Reads symbols step by step from the buffer written by RansEncoder.finish."""

    def __init__(self, payload: bytes, n_streams: int, prob_bits: int):
        head = 8 * n_streams
        if len(payload) < head or (len(payload) - head) % 4:
            raise CorruptPayload("payload has the wrong length")
        self.prob_bits = prob_bits
        self.state = np.frombuffer(payload[:head], dtype="<u8").astype(np.uint64)
        if np.any(self.state < STATE_LOW):
            raise CorruptPayload("payload starts with an invalid coder state")
        self.words = np.frombuffer(payload[head:], dtype="<u4").astype(np.uint64)
        self.position = 0

    def get(self, freqs: np.ndarray) -> np.ndarray:
        """Decode one symbol for each of the first len(freqs) streams (an active prefix)."""
        k = len(freqs)
        mask = np.uint64((1 << self.prob_bits) - 1)
        x = self.state[:k]
        slot = x & mask
        symbols, start, freq = locate_symbols(freqs, slot)
        if np.any(symbols >= freqs.shape[1]):
            raise CorruptPayload("frequency table does not cover the coder state")
        start, freq = start.astype(np.uint64), freq.astype(np.uint64)
        x = freq * (x >> np.uint64(self.prob_bits)) + slot - start
        refill = x < np.uint64(STATE_LOW)
        n_refill = int(refill.sum())
        if n_refill:
            if self.position + n_refill > len(self.words):
                raise CorruptPayload("payload ended early")
            x[refill] = (x[refill] << np.uint64(WORD_BITS)) | self.words[self.position : self.position + n_refill]
            self.position += n_refill
        self.state[:k] = x
        return symbols

    def check_finished(self) -> None:
        """A consistent payload ends with every state back at L and every word read."""
        if self.position != len(self.words) or np.any(self.state != np.uint64(STATE_LOW)):
            raise CorruptPayload("payload did not end in the coder's initial state")
