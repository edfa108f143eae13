"""The coder's per-step frequency work on a torch device (the GPU), bit-identical to rans.py.

With thousands of streams the (B, V) frequency table is the biggest thing a step
touches; building it and reading it where the model computed it avoids copying
it to the host. Only (start, freq) or the decoded symbols, B numbers each, cross
over. Integer tensors only (int64), the same operations as the numpy versions.
"""

from __future__ import annotations

import numpy as np
import torch


def normalize_frequencies_torch(weights: torch.Tensor, prob_bits: int) -> torch.Tensor:
    """Mirror of frequencies.normalize_frequencies: >= 1 each, rows sum to 2**prob_bits."""
    w = weights.to(torch.int64)
    vocab, total = w.shape[-1], 1 << prob_bits
    if torch.any(w < 0):
        raise ValueError("weights must be non-negative")
    row_sum = w.sum(dim=-1, keepdim=True)
    while True:
        too_big = row_sum >= 1 << (62 - prob_bits)
        if not bool(too_big.any()):
            break
        w = torch.where(too_big, w >> 1, w)
        row_sum = w.sum(dim=-1, keepdim=True)
    if bool((row_sum <= 0).any()):
        raise ValueError("every row of weights needs a positive sum")
    freqs = torch.div(w * (total - vocab), row_sum, rounding_mode="floor") + 1
    remainder = total - freqs.sum(dim=-1, keepdim=True)
    top = torch.argmax(w, dim=-1, keepdim=True)  # the first maximum, as numpy's argmax
    return freqs.scatter_add(-1, top, remainder)


def locate_symbols_torch(freqs: torch.Tensor, slot: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Symbols whose interval holds `slot`, with their (start, freq), as numpy arrays."""
    cumulative = freqs.cumsum(dim=1)
    slots = torch.as_tensor(slot.astype(np.int64), device=freqs.device)[:, None]
    symbols = torch.searchsorted(cumulative, slots, right=True)  # first cumulative > slot
    symbols = symbols.clamp_(max=freqs.shape[1] - 1)  # an out-of-range slot is caught by the caller
    freq = freqs.gather(1, symbols)
    start = cumulative.gather(1, symbols) - freq
    over = (cumulative[:, -1:] <= slots)[:, 0]
    out = torch.stack([symbols[:, 0], start[:, 0], freq[:, 0], over.to(torch.int64)]).cpu().numpy()
    symbols_np = np.where(out[3] > 0, freqs.shape[1], out[0])
    return symbols_np, out[1], out[2]
