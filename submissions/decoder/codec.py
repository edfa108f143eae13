"""Token streams <-> payload: one coding loop for the encoder and the decoder.

The token sequence is cut into B contiguous streams (the first N % B streams one token
longer). Step t codes token t of every active stream, stream by stream; because stream
lengths never grow with the stream index, the active streams at any step are a prefix.

`code` walks the steps in chunks; the model codes a chunk through the coder, and only the
coder knows the direction: an encoder (encoding.RansEncoder) reads the tokens and records
their intervals, a decoder (rans.RansDecoder) reads the payload and writes the tokens. A
binary model codes a chunk in its own compiled kernel (`code_steps`), bit by bit; a
token-table model (`binary = False`) gives a frequency table over the vocabulary per step
(`step(prev)`) and every active stream's symbol is coded at once (frequencies.table_steps:
decoded by decode_symbols, recorded by RansEncoder.symbols).

Every `block` steps (encoding.block_steps) the coder ends a block (rans.py), so the encoder
holds one block's intervals, never the whole file's. A large input is also cut into shards:
contiguous pieces coded independently, each with its own model and streams, so shards can be
coded by different processes or machines and the archive bytes never depend on how many did
the work.
"""

from __future__ import annotations

import numpy as np

from .rans import CorruptPayload, RansDecoder  # noqa: F401 (CorruptPayload re-exported)

CHUNK_STEPS = 256  # steps a model codes between two progress reports


def stream_lengths(n_tokens: int, n_streams: int) -> np.ndarray:
    base, extra = divmod(n_tokens, n_streams)
    return np.array([base + (b < extra) for b in range(n_streams)], dtype=np.int64)


def code(model, coder, tokens: np.ndarray, n_streams: int, block: int | None = None, progress=None) -> None:
    """Code the token array through the coder: read it when encoding (any 1-D integer array,
    a memory map included), fill it in when decoding. progress(steps done, total steps)."""
    lengths = stream_lengths(len(tokens), n_streams)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    n_steps = int(lengths[0])
    if getattr(model, "binary", False):
        code_steps = model.code_steps
    else:
        from .frequencies import table_steps  # only token-table models ship that module

        code_steps = table_steps(model, n_streams)
    t = 0
    while t < n_steps:
        if block and t and t % block == 0:
            coder.next_block()
        end = min(n_steps, t + CHUNK_STEPS, (t // block + 1) * block if block else n_steps)
        steps = np.arange(t, end)
        active = steps[None, :] < lengths[:, None]  # (B, steps)
        index = np.where(active, starts[:, None] + steps[None, :], 0)
        window = np.zeros(index.shape, dtype=np.int64) if coder.decoding else np.where(active, tokens[index], 0).astype(np.int64)
        code_steps(coder, window, lengths, t)
        coder.check()
        if coder.decoding:
            tokens[index[active]] = window[active]
        t = end
        if progress:
            progress(t, n_steps)


def decode(model, payload: bytes, n_tokens: int, n_streams: int, prob_bits: int, progress=None, block: int | None = None) -> np.ndarray:
    """The token ids (uint16 where the vocabulary allows: the decoded file's ids are its largest
    array); block as given to encode; progress(steps done, total steps)."""
    if n_streams == 0:
        return np.zeros(0, dtype=np.int64)
    decoder = RansDecoder(payload, n_streams, prob_bits)
    vocab = 1 << model.n_bits if getattr(model, "binary", False) else getattr(model, "vocab_size", 1 << 31)
    tokens = np.zeros(n_tokens, dtype=np.uint16 if vocab <= 1 << 16 else np.int64)
    code(model, decoder, tokens, n_streams, block, progress)
    decoder.check_finished()
    return tokens
