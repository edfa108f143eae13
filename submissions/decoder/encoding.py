"""The encoder side of the coder: the rANS encoder, and encode() through codec.code, the
loop the decoder runs too.

Archives do not carry this module (a decoder never encodes); `pipeline pack` and the tests
import it.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, Optional

import numpy as np

from .codec import code, stream_lengths
from .jit import entry, timed_first_call
from .rans import COUNT, FAILED, STATE_LOW, WORD_BITS, new_coder

Progress = Optional[Callable[[int, int], None]]  # (steps done, total steps)
WORD_MASK = (1 << WORD_BITS) - 1
MAX_PROB_BITS = 31  # a frequency total of 2**31 keeps the 64-bit state arithmetic exact


def effective_streams(n_tokens: int, requested: int) -> int:
    """No more streams than tokens, and none at all for an empty input."""
    return max(0, min(requested, n_tokens))


BLOCK_SYMBOLS = 1 << 23  # symbols an encoder block holds (10 bytes each: 80 MiB)


def block_steps(n_streams: int, symbols_per_token: int) -> int:
    """Steps per coder block, so that a block holds about BLOCK_SYMBOLS symbols."""
    return max(1, BLOCK_SYMBOLS // max(1, n_streams * symbols_per_token))


def symbols_per_token(binary: bool, vocab_size: int) -> int:
    """Coded symbols per token: the bits of an id for a binary model, else one."""
    return max(1, (vocab_size - 1).bit_length()) if binary else 1


def shard_sizes(n_tokens: int, n_shards: int) -> list[int]:
    """Token counts of the shards: contiguous, the first n_tokens % n_shards one token longer."""
    return [int(n) for n in stream_lengths(n_tokens, max(1, min(n_shards, n_tokens or 1)))]


class RansEncoder:
    """Collects every symbol's interval (start, freq, stream) in decoding order, then codes
    them backwards, block by block.

    A block (see `next_block`) is coded on its own: it starts from fresh states and writes its
    n_streams initial states and then its words. The encoder holds one block's intervals
    (10 bytes a symbol, at most `capacity`) at a time, so its memory does not grow with the
    input; a one-block payload is states followed by words."""

    decoding = False

    def __init__(self, n_streams: int, prob_bits: int, capacity: int):
        if not 1 <= prob_bits <= MAX_PROB_BITS:
            raise ValueError(f"prob_bits must be in 1..{MAX_PROB_BITS}")
        self.n_streams, self.prob_bits = n_streams, prob_bits
        self.arrays = new_coder(False, n_streams, prob_bits, capacity=capacity)
        self._blocks: list[bytes] = []
        self._ideal_bits = 0.0
        self._counted = 0  # symbols of this block already in _ideal_bits

    def symbols(self, freqs, symbols: np.ndarray) -> np.ndarray:
        """Record symbols[b] of each of the first len(freqs) streams (an active prefix) under
        their frequency tables; return them (as a decoder would)."""
        start, freq = symbol_intervals(freqs, symbols)
        count, k = int(self.arrays.vars[COUNT]), len(symbols)
        if count + k > len(self.arrays.starts):
            raise RuntimeError("the encoder's block is full (block_steps too large for its capacity)")
        self.arrays.starts[count : count + k] = start
        self.arrays.freqs[count : count + k] = freq
        self.arrays.streams[count : count + k] = np.arange(k)
        self.arrays.vars[COUNT] = count + k
        return symbols

    def check(self) -> None:
        if self.arrays.vars[FAILED]:
            raise RuntimeError("the encoder's block is full (block_steps too large for its capacity)")

    def ideal_bits(self) -> float:
        """Sum of -log2(freq / 2**prob_bits) over every symbol recorded: the model's code length,
        which the payload matches up to the coder's few bytes per stream and block. Reporting
        only: float log2 never steers coding. Adds only the symbols recorded since the last call
        (a loss curve asks after every chunk)."""
        count = int(self.arrays.vars[COUNT])
        freqs = self.arrays.freqs[self._counted : count]
        self._ideal_bits += float(self.prob_bits * len(freqs) - np.log2(freqs.astype(np.float64)).sum())
        self._counted = count
        return self._ideal_bits

    def next_block(self) -> None:
        """Code the symbols recorded since the last block; the decoder reads the next block's
        states at the same step."""
        self.ideal_bits()
        count = int(self.arrays.vars[COUNT])
        with np.errstate(over="ignore"):  # numpy scalars (JIT off) warn on the wrapping uint64 state arithmetic
            state, words = timed_first_call(encode_block, self.arrays.starts, self.arrays.freqs, self.arrays.streams, count, self.n_streams, self.prob_bits)
        self._blocks.append(state.astype("<u8").tobytes() + words.astype("<u4").tobytes())
        self.arrays.vars[COUNT] = 0
        self._counted = 0

    def finish(self) -> bytes:
        """Code the last block; return every block's states and words."""
        if self.arrays.vars[COUNT] or not self._blocks:
            self.next_block()
        return b"".join(self._blocks)


@partial(entry, allocates=True)
def encode_block(starts, freqs, streams, count, n_streams, prob_bits):
    """(initial states, words) of the block: its symbols coded in reverse, so the decoder
    reads them forwards."""
    state = np.full(n_streams, np.uint64(STATE_LOW), dtype=np.uint64)
    words = np.zeros(count, dtype=np.uint32)
    n_words = 0
    x_max_unit = np.uint64((STATE_LOW >> prob_bits) << WORD_BITS)
    for i in range(count - 1, -1, -1):
        b, freq = streams[i], np.uint64(freqs[i])
        x = state[b]
        if x >= x_max_unit * freq:
            words[n_words] = x & np.uint64(WORD_MASK)
            n_words += 1
            x >>= np.uint64(WORD_BITS)
        state[b] = (x // freq << np.uint64(prob_bits)) + x % freq + np.uint64(starts[i])
    return state, words[:n_words][::-1].copy()


def encode(model, tokens: np.ndarray, n_streams: int, prob_bits: int, progress: Progress = None, block: int | None = None) -> bytes:
    return encode_with_cost(model, tokens, n_streams, prob_bits, progress, block)[0]


def encode_with_cost(model, tokens, n_streams: int, prob_bits: int, progress: Progress = None, block: int | None = None, curve: list | None = None) -> tuple[bytes, float]:
    """(payload, the model's ideal code length in bits) for the token sequence: any 1-D integer
    array, a memory map included (each step reads only its tokens). block: steps per coder
    block (None: one block). curve: a list to append (steps done, ideal bits so far) to, after
    every chunk of steps (the loss curve whose area is the payload)."""
    if n_streams == 0:
        return b"", 0.0
    n_steps = -(-len(tokens) // n_streams)
    binary = getattr(model, "binary", False)
    per_token = symbols_per_token(binary, 1 << model.n_bits if binary else 1)
    encoder = RansEncoder(n_streams, prob_bits, capacity=min(block or n_steps, n_steps) * n_streams * per_token)
    if curve is not None:
        curve.append((0, 0.0))
        report = progress

        def progress(done: int, total: int) -> None:
            curve.append((done, encoder.ideal_bits()))
            if report:
                report(done, total)

    code(model, encoder, tokens, n_streams, block, progress)
    return encoder.finish(), encoder.ideal_bits()


def symbol_intervals(freqs, symbols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start, freq) of symbols[b] in row b of freqs: start = sum of freqs below it.
    freqs may also be a torch tensor on a device (symbol_intervals_torch)."""
    if not isinstance(freqs, np.ndarray):
        return symbol_intervals_torch(freqs, symbols)
    cumulative = np.cumsum(freqs, axis=1)
    rows = np.arange(len(symbols))
    freq = freqs[rows, symbols]
    return cumulative[rows, symbols] - freq, freq


def symbol_intervals_torch(freqs, symbols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """symbol_intervals on a torch device: only (start, freq), B numbers each, come back to the host."""
    import torch  # only a model that runs on torch gives tensors

    index = torch.as_tensor(np.asarray(symbols, dtype=np.int64), device=freqs.device)[:, None]
    freq = freqs.gather(1, index)
    start = freqs.cumsum(dim=1).gather(1, index) - freq
    return start[:, 0].cpu().numpy(), freq[:, 0].cpu().numpy()
