"""Interleaved rANS entropy coder over integer frequencies: the decoding side, and the
coder step the compiled models call (encoding.py holds the rest of the encoder).

Exact integer arithmetic only (uint64), so any machine decodes what any other machine
encoded. The coder follows ryg's rans64: a 64-bit state per stream kept in [L, L << 32),
renormalized by whole 32-bit words, so each symbol reads at most one word.

rANS is last-in first-out: the encoder collects every symbol's interval in decoding order,
then codes them backwards; the decoder reads forwards. All streams share one word buffer:
the decoder reads a word whenever a stream's state drops below L, in the order the symbols
are decoded, and the encoder writes its words so that this order comes out. The order is
the coding loop's (codec.py): step by step, and within a step stream by stream, a
token-table model coding one symbol per stream, a binary model all of a stream's decisions.

One set of arrays (`Coder`) serves both sides: a binary model's kernel calls
binary_coder.code_bit, which decodes a decision or records its interval; token-table models go
through frequencies.decode_symbols and RansEncoder.symbols (encoding.py), vectorized over streams.

Frequencies: every symbol >= 1, every table sums to exactly 2**prob_bits (prob_bits <= 31);
frequencies.py turns model scores into such tables.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np


STATE_LOW = 1 << 31  # L: the lower bound of the normalized state interval
WORD_BITS = 32
DECODING, CODER_PROB_BITS, POSITION, COUNT, FAILED = range(5)  # Coder.vars
# vars: the scalars above (int64); state: one per stream (uint64); words: the payload's words
# (decoding); starts, freqs, streams: the intervals recorded so far in this block (encoding)
Coder = namedtuple("Coder", "vars state words starts freqs streams")


class CorruptPayload(ValueError):
    """The payload does not decode to a consistent state (truncated or altered)."""


def new_coder(decoding: bool, n_streams: int, prob_bits: int, words=None, capacity: int = 0) -> Coder:
    vars_ = np.array([decoding, prob_bits, 0, 0, 0], dtype=np.int64)
    words = np.zeros(0, dtype=np.uint32) if words is None else words
    words.setflags(write=False)  # decoders read a payload in place: one array type for both sides (one compilation)
    interval = np.zeros(capacity, dtype=np.uint32)
    return Coder(vars_, np.full(n_streams, STATE_LOW, dtype=np.uint64), words, interval, interval.copy(), np.zeros(capacity, dtype=np.uint16))


class RansDecoder:
    """Reads symbols from the buffer written by encoding.RansEncoder, block by block."""

    decoding = True

    def __init__(self, payload: bytes, n_streams: int, prob_bits: int):
        if len(payload) < 8 * n_streams or len(payload) % 4:
            raise CorruptPayload("payload has the wrong length")
        self.prob_bits, self.n_streams = prob_bits, n_streams
        self.arrays = new_coder(True, n_streams, prob_bits, words=np.frombuffer(payload, dtype="<u4"))  # a view, no copy
        self._read_states()

    @property
    def position(self) -> int:
        return int(self.arrays.vars[POSITION])

    def _read_states(self) -> None:
        """A block's initial states: n_streams little-endian 64-bit values."""
        words, end = self.arrays.words, self.position + 2 * self.n_streams
        if end > len(words):
            raise CorruptPayload("payload ended early")
        pairs = words[self.position : end].astype(np.uint64).reshape(-1, 2)
        self.arrays.state[:] = pairs[:, 0] | (pairs[:, 1] << np.uint64(WORD_BITS))
        self.arrays.vars[POSITION] = end
        if np.any(self.arrays.state < STATE_LOW):
            raise CorruptPayload("payload has an invalid coder state")

    def check(self) -> None:
        """After a compiled model's steps: a read past the payload's end is a corrupt payload."""
        if self.arrays.vars[FAILED]:
            raise CorruptPayload("payload ended early")

    def next_block(self) -> None:
        """The encoder ended a block here: its states must be back at L; read the next block's."""
        if np.any(self.arrays.state != np.uint64(STATE_LOW)):
            raise CorruptPayload("a block did not end in the coder's initial state")
        self._read_states()

    def check_finished(self) -> None:
        """A consistent payload ends with every state back at L and every word read."""
        if self.position != len(self.arrays.words) or np.any(self.arrays.state != np.uint64(STATE_LOW)):
            raise CorruptPayload("payload did not end in the coder's initial state")
