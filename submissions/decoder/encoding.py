"""The encoder side of the coder: the rANS encoder and the encoding loop.

Archives do not carry this module (a decoder never encodes); `pipeline pack` and
the tests import it. The loop mirrors codec.decode step for step: the same
stream layout, the same model calls, the same block ends.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from .codec import _native_step, _steps, stream_lengths
from .rans import STATE_LOW, WORD_BITS, binary_intervals

Progress = Optional[Callable[[int, int], None]]  # (steps done, total steps)
WORD_MASK = (1 << WORD_BITS) - 1
MAX_PROB_BITS = 31  # a frequency total of 2**31 keeps the 64-bit state arithmetic exact


def effective_streams(n_tokens: int, requested: int) -> int:
    """No more streams than tokens, and none at all for an empty input."""
    return max(0, min(requested, n_tokens))


BLOCK_SYMBOLS = 1 << 23  # symbols an encoder block holds (8 bytes each: 64 MiB)


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


def encode(model, tokens: np.ndarray, n_streams: int, prob_bits: int, progress: Progress = None, block: int | None = None) -> bytes:
    return encode_with_cost(model, tokens, n_streams, prob_bits, progress, block)[0]


def encode_with_cost(model, tokens, n_streams: int, prob_bits: int, progress: Progress = None, block: int | None = None) -> tuple[bytes, float]:
    """(payload, the model's ideal code length in bits) for the token sequence: any 1-D integer
    array, a memory map included (each step reads only its tokens). block: steps per coder
    block (None: one block)."""
    if n_streams == 0:
        return b"", 0.0
    lengths = stream_lengths(len(tokens), n_streams)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    encoder = RansEncoder(n_streams, prob_bits)
    prev = np.full(n_streams, -1, dtype=np.int64)
    active = _steps(lengths)
    put_tokens = _bits_encoder(model, encoder, prob_bits) if getattr(model, "binary", False) else _table_encoder(model, encoder)
    for t, k in enumerate(active):
        current = np.asarray(tokens[starts[:k] + t], dtype=np.int64)
        if block and t and t % block == 0:
            encoder.end_block()
        put_tokens(prev, k, current)
        prev = np.full(n_streams, -1, dtype=np.int64)
        prev[:k] = current
        if progress:
            progress(t + 1, len(active))
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


def _table_encoder(model, encoder: RansEncoder):
    """put(prev, k, tokens) for a model giving a frequency table per step."""
    step = _native_step(model)
    return lambda prev, k, tokens: encoder.put(*symbol_intervals(step(prev)[:k], tokens))


def _bits_encoder(model, encoder: RansEncoder, prob_bits: int):
    """put(prev, k, tokens) for a binary model: each token as n_bits decisions, top bit first."""

    def put(prev: np.ndarray, k: int, tokens: np.ndarray) -> None:
        model.begin(prev, k)
        for shift in range(model.n_bits - 1, -1, -1):
            bits = tokens >> shift & 1
            encoder.put(*binary_intervals(model.zero_freqs(), bits, prob_bits))
            model.update(bits)

    return put
