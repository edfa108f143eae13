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
(prob_bits <= 31); frequencies.py turns model scores into such tables. Binary
models code two-symbol decisions (binary_intervals, RansDecoder.get_bits).
"""

from __future__ import annotations

import numpy as np

STATE_LOW = 1 << 31  # L: the lower bound of the normalized state interval
WORD_BITS = 32


class CorruptPayload(ValueError):
    """The payload does not decode to a consistent state (truncated or altered)."""


def binary_intervals(zero_freqs: np.ndarray, bits: np.ndarray, prob_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(start, freq) of binary decisions: bit 0 is [0, zero), bit 1 is [zero, 2**prob_bits).
    zero == 2**prob_bits marks a decision known to be 0: it codes to nothing."""
    zero = np.asarray(zero_freqs, dtype=np.uint64)
    one = np.asarray(bits) == 1
    total = np.uint64(1 << prob_bits)
    return np.where(one, zero, np.uint64(0)), np.where(one, total - zero, zero)


class RansDecoder:
    """Reads symbols step by step from the buffer written by RansEncoder.finish (encoding.py)."""

    def __init__(self, payload: bytes, n_streams: int, prob_bits: int):
        if len(payload) < 8 * n_streams or len(payload) % 4:
            raise CorruptPayload("payload has the wrong length")
        self.prob_bits = prob_bits
        self.n_streams = n_streams
        self.words = np.frombuffer(payload, dtype="<u4")  # a view, no copy; states are pairs of words
        self.position = 0
        self._read_states()

    def _read_states(self) -> None:
        """A block's initial states: n_streams little-endian 64-bit values."""
        end = self.position + 2 * self.n_streams
        if end > len(self.words):
            raise CorruptPayload("payload ended early")
        pairs = self.words[self.position : end].astype(np.uint64).reshape(-1, 2)
        self.state = pairs[:, 0] | (pairs[:, 1] << np.uint64(WORD_BITS))
        self.position = end
        if np.any(self.state < STATE_LOW):
            raise CorruptPayload("payload has an invalid coder state")

    def next_block(self) -> None:
        """The encoder ended a block here: its states must be back at L; read the next block's."""
        if np.any(self.state != np.uint64(STATE_LOW)):
            raise CorruptPayload("a block did not end in the coder's initial state")
        self._read_states()

    def get(self, freqs: np.ndarray) -> np.ndarray:
        """Decode one symbol for each of the first len(freqs) streams (an active prefix)."""
        k = len(freqs)
        mask = np.uint64((1 << self.prob_bits) - 1)
        x = self.state[:k]
        slot = x & mask
        from .frequencies import locate_symbols  # only token-table models ship that module

        symbols, start, freq = locate_symbols(freqs, slot)
        if np.any(symbols >= freqs.shape[1]):
            raise CorruptPayload("frequency table does not cover the coder state")
        self._advance(start.astype(np.uint64), freq.astype(np.uint64), slot)
        return symbols

    def _advance(self, start: np.ndarray, freq: np.ndarray, slot: np.ndarray) -> None:
        """Remove the decoded symbols' intervals from the states, refilling words as needed."""
        k = len(freq)
        x = freq * (self.state[:k] >> np.uint64(self.prob_bits)) + slot - start
        refill = x < np.uint64(STATE_LOW)
        n_refill = int(refill.sum())
        if n_refill:
            if self.position + n_refill > len(self.words):
                raise CorruptPayload("payload ended early")
            x[refill] = (x[refill] << np.uint64(WORD_BITS)) | self.words[self.position : self.position + n_refill].astype(np.uint64)
            self.position += n_refill
        self.state[:k] = x

    def get_bits(self, zero_freqs: np.ndarray) -> np.ndarray:
        """Decode one binary decision for each of the first len(zero_freqs) streams: bit 0 owns
        [0, zero_freqs), bit 1 the rest of 2**prob_bits (see binary_intervals)."""
        zero = np.asarray(zero_freqs, dtype=np.uint64)
        slot = self.state[: len(zero)] & np.uint64((1 << self.prob_bits) - 1)
        bits = (slot >= zero).astype(np.int64)
        self._advance(*binary_intervals(zero, bits, self.prob_bits), slot)
        return bits

    def check_finished(self) -> None:
        """A consistent payload ends with every state back at L and every word read."""
        if self.position != len(self.words) or np.any(self.state != np.uint64(STATE_LOW)):
            raise CorruptPayload("payload did not end in the coder's initial state")
