"""Exact integer kernels of the neural model, for numpy and torch alike.

Every number that reaches the coder is an integer computed exactly, so any
backend, thread count or batch size gives the same bits:

* matmuls run in float32 on integer-valued tensors, cut along the inner
  dimension so that every partial sum stays within 2**24, where float32 holds
  integers exactly and the summation order cannot matter;
* everything else is int64 elementwise work: requantization by an integer
  multiplier and shift, floor division, an exact integer square root;
* exp is a table of integers built here with Python integers only.

The rounding rule everywhere (and in the float training twin) is round half up:
round(x) = floor(x + 1/2).
"""

from __future__ import annotations

import math

import numpy as np

FLOAT32_EXACT = 1 << 24  # float32 holds every integer of magnitude <= 2**24
ACT_MAX = 127  # int8 activations and weights live in [-127, 127]
RELU_MAX = 255  # the MLP hidden activation (after ReLU) lives in [0, 255]
RESID_MAX = (1 << 20) - 1  # residual stream clamp: h*h < 2**40, sums of squares < 2**52
NORM_EXTRA_BITS = 5  # the integer rms carries 5 more fractional bits than the residual
MAX_SHIFT = 32  # multipliers are M / 2**S with 1 <= S <= 32 and |M| < 2**31
MAX_MULT = 1 << 31
MAX_WIDTH = 4096  # d_model bound that keeps the RMSNorm arithmetic inside int64
TABLE_PRECISION = 96  # fixed-point bits used while building exp tables


def exp2_table(frac_bits: int, scale_bits: int) -> np.ndarray:
    """table[i] = round(2**scale_bits * 2**(-i / 2**frac_bits)), up to and including the first 0.

    Built with Python integers only (repeated integer square roots), so every
    machine builds the same table. The final 0 lets a clipped index mean "never".
    """
    one = 1 << TABLE_PRECISION
    root = one >> 1  # 2**-1, then square roots down to 2**(-1 / 2**frac_bits)
    for _ in range(frac_bits):
        root = math.isqrt(root << TABLE_PRECISION)
    fractions = [one]  # 2**(-j / 2**frac_bits) for j < 2**frac_bits
    for _ in range((1 << frac_bits) - 1):
        fractions.append(fractions[-1] * root >> TABLE_PRECISION)
    table = []
    while not table or table[-1] > 0:
        whole, j = divmod(len(table), 1 << frac_bits)
        shift = TABLE_PRECISION + whole - scale_bits  # > 0: scale_bits < TABLE_PRECISION
        table.append((fractions[j] + (1 << (shift - 1))) >> shift)
    return np.array(table, dtype=np.int64)


def attention_prob_bits(context: int) -> int:
    """Scale bits of attention weights: sum over the window of p * |v| stays within 2**24."""
    bits = min(15, (FLOAT32_EXACT // (context * ACT_MAX)).bit_length() - 1)
    if bits < 6:
        raise ValueError(f"context {context} is too long for exact float32 attention")
    return bits


class NumpyBackend:
    """The reference backend: numpy arrays, float32 matmuls through BLAS."""

    name = "numpy"

    def asarray(self, array: np.ndarray):
        return np.ascontiguousarray(array)

    def to_numpy(self, x) -> np.ndarray:
        return x

    def f32(self, x):
        return x.astype(np.float32)

    def i64(self, x):
        return x.astype(np.int64)

    def zeros_f32(self, shape):
        return np.zeros(shape, dtype=np.float32)

    def clip(self, x, lo, hi):
        return np.clip(x, lo, hi)

    def amax(self, x):
        return x.max(axis=-1, keepdims=True)

    def sum(self, x):
        return x.sum(axis=-1, keepdims=True)

    def take(self, table, index):
        """table[index] for a 1-D table: np.take is 2-3x faster than fancy indexing here."""
        return np.take(table, index)

    def sqrt_floor(self, n):
        return np.floor(np.sqrt(n.astype(np.float64))).astype(np.int64)


class TorchBackend:
    """torch tensors on a device: the same operations, on CPU threads or a GPU."""

    name = "torch"

    def __init__(self, device: str = "cpu"):
        import torch

        self.torch = torch
        self.device = torch.device(device)

    def prepare(self) -> None:
        """float32 matmuls must really be float32: no TF32 or bf16 shortcuts."""
        self.torch.backends.cuda.matmul.allow_tf32 = False
        self.torch.backends.cudnn.allow_tf32 = False
        self.torch.set_float32_matmul_precision("highest")

    def asarray(self, array: np.ndarray):
        return self.torch.from_numpy(np.ascontiguousarray(array)).to(self.device)

    def to_numpy(self, x) -> np.ndarray:
        return x.cpu().numpy()

    def f32(self, x):
        return x.to(self.torch.float32)

    def i64(self, x):
        return x.to(self.torch.int64)

    def zeros_f32(self, shape):
        return self.torch.zeros(shape, dtype=self.torch.float32, device=self.device)

    def clip(self, x, lo, hi):
        return x.clamp(lo, hi)

    def amax(self, x):
        return x.amax(dim=-1, keepdim=True)

    def sum(self, x):
        return x.sum(dim=-1, keepdim=True)

    def take(self, table, index):
        return self.torch.take(table, index)

    def sqrt_floor(self, n):
        return self.torch.sqrt(n.to(self.torch.float64)).floor().to(self.torch.int64)


def exact_matmul(be, a, b, product_bound: int):
    """a @ b as int64, for integer-valued float32 a (..., K) and b (..., K, N).

    product_bound bounds |a_i * b_i|; the inner dimension is cut into chunks whose
    sums stay within 2**24, each exact in float32 whatever the summation order.
    """
    inner = a.shape[-1]
    chunk = FLOAT32_EXACT // product_bound
    assert chunk >= 1, "a single product does not fit float32 exactly"
    assert inner * product_bound < 1 << 62, "the int64 sum could overflow"
    if inner <= chunk:
        return be.i64(a @ b)
    total = None
    for start in range(0, inner, chunk):
        part = be.i64(a[..., start : start + chunk] @ b[..., start : start + chunk, :])
        total = part if total is None else total + part
    return total


def requantize(acc, mult, shift, half):
    """round(acc * mult / 2**shift), half = 2**(shift-1); exact while |acc * mult| < 2**62."""
    return (acc * mult + half) >> shift


def isqrt(be, n):
    """floor(sqrt(n)) for int64 n in [0, 2**52]: float64 sqrt, then an exact integer fix-up."""
    r = be.sqrt_floor(n)
    r = r - be.i64(r * r > n)
    return r + be.i64((r + 1) * (r + 1) <= n)


def rms_norm(be, h, d: int, mult, shift):
    """Integer RMSNorm with a per-channel gain: int8 round(h / rms(h) * M / 2**S).

    h: int64 (B, d) residual, |h| <= RESID_MAX. The rms is kept with
    NORM_EXTRA_BITS more fractional bits than h, so small residuals keep precision.
    Bounds: sum h*h <= d * 2**40 <= 2**52; every product below stays < 2**59.
    """
    g = NORM_EXTRA_BITS
    mean_square = (be.sum(h * h) << (2 * g)) // d  # <= 2**50: units 2**-2(R+g)
    r = be.clip(isqrt(be, mean_square), 1, None)  # rms in units 2**-(R+g), < 2**25
    den = r << shift  # (B, d), < 2**57
    x = (((h * mult) << (g + 1)) + den) // (2 * den)  # round(h * 2**g * M / (r * 2**S))
    return be.clip(x, -ACT_MAX, ACT_MAX)


def round_div(be, num, den):
    """round(num / den) for int64 num and positive int64 den, half up."""
    return (2 * num + den) // (2 * den)
