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
WORD_MASK = (1 << WORD_BITS) - 1
MAX_PROB_BITS = 31


class CorruptPayload(ValueError):
    """The payload does not decode to a consistent state (truncated or altered)."""


def binary_intervals(zero_freqs: np.ndarray, bits: np.ndarray, prob_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(start, freq) of binary decisions: bit 0 is [0, zero), bit 1 is [zero, 2**prob_bits).
    zero == 2**prob_bits marks a decision known to be 0: it codes to nothing."""
    zero = np.asarray(zero_freqs, dtype=np.uint64)
    one = np.asarray(bits) == 1
    total = np.uint64(1 << prob_bits)
    return np.where(one, zero, np.uint64(0)), np.where(one, total - zero, zero)


class RansEncoder:
    """Collects (start, freq) per step, then codes them backwards block by block.

    A block (see `end_block`) is coded on its own: it starts from fresh states and
    writes its n_streams initial states and then its words. The encoder holds one
    block's intervals (8 bytes a symbol) at a time, so its memory does not grow with
    the input; a one-block payload is states followed by words."""

    def __init__(self, n_streams: int, prob_bits: int):
        if not 1 <= prob_bits <= MAX_PROB_BITS:
            raise ValueError(f"prob_bits must be in 1..{MAX_PROB_BITS}")
        self.n_streams = n_streams
        self.prob_bits = prob_bits
        self._steps: list[tuple[np.ndarray, np.ndarray]] = []
        self._blocks: list[bytes] = []
        self._ideal_bits = 0.0

    def put(self, starts: np.ndarray, freqs: np.ndarray) -> None:
        """One step: symbol intervals of streams 0..k-1 (active streams form a prefix).
        Both fit 32 bits (prob_bits <= 31), which halves what a block holds."""
        self._steps.append((np.asarray(starts).astype(np.uint32), np.asarray(freqs).astype(np.uint32)))

    def ideal_bits(self) -> float:
        """Sum of -log2(freq / 2**prob_bits) over every symbol put: the model's code length,
        which the payload matches up to the coder's few bytes per stream and block. Reporting
        only: float log2 never steers coding."""
        return self._ideal_bits + self._block_ideal_bits()

    def _block_ideal_bits(self) -> float:
        return float(sum(self.prob_bits * len(f) - np.log2(f.astype(np.float64)).sum() for _, f in self._steps))

    def end_block(self) -> None:
        """Code the steps put since the last block; the decoder calls next_block at the same step."""
        self._ideal_bits += self._block_ideal_bits()
        self._blocks.append(self._code_block())
        self._steps = []

    def finish(self) -> bytes:
        """Code the last block; return every block's states and words."""
        if self._steps or not self._blocks:
            self.end_block()
        return b"".join(self._blocks)

    def _code_block(self) -> bytes:
        """Code the block's steps in reverse: initial states followed by the word buffer."""
        shift = np.uint64(self.prob_bits)
        x_max_unit = np.uint64(((STATE_LOW >> self.prob_bits) << WORD_BITS))
        state = np.full(self.n_streams, STATE_LOW, dtype=np.uint64)
        chunks: list[np.ndarray] = []
        for starts, freqs in reversed(self._steps):
            starts, freqs = starts.astype(np.uint64), freqs.astype(np.uint64)
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
