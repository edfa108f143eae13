"""The integer transformer that predicts the tokens: same bits on numpy, torch CPU and GPU.

A decoder-only transformer (pre-norm blocks, ALiBi, ReLU MLP, tied embeddings)
whose every coding-relevant number is an exact integer (see int_ops). Number
formats, with R = resid_bits and k = exp_bits:

    residual stream h        int in [-RESID_MAX, RESID_MAX], units 2**-R
    RMSNorm output, q, k, v,
    attention output o       int8 in [-127, 127], each with its own scale
    MLP hidden u             ReLU output in [0, 255]
    weights                  int8 or int4 (two per byte in the blob), a scale per output
                             channel; every rescale is M / 2**S
    attention logits z       units 2**-k bits; ALiBi subtracts slope * distance
    attention weights p      exp2 table at scale 2**attention_prob_bits(context)
    output logits            units 2**-k bits -> exp2 table at 2**out_prob_bits
                             -> rans.normalize_frequencies

Streams advance one token per step with a ring-buffer KV cache of the last
`context` positions per layer; each stream's rows are computed independently,
so a stream's frequencies do not depend on the batch it is coded in.

Backend: HUTTER_BACKEND (environment) or config["backend"]: "numpy", "torch" or
"auto" (the default: torch on a GPU when one is present, else numpy); the torch
device comes from HUTTER_DEVICE or config["device"] ("cpu", "cuda", "cuda:1").
The environment wins: it is where the decoder runs.
"""

from __future__ import annotations

import io
import json
import lzma
import os

import numpy as np

from .int_ops import (
    ACT_MAX,
    MAX_MULT,
    MAX_SHIFT,
    MAX_WIDTH,
    RELU_MAX,
    RESID_MAX,
    NumpyBackend,
    TorchBackend,
    attention_prob_bits,
    exact_matmul,
    exp2_table,
    requantize,
    rms_norm,
    round_div,
)
from .frequencies import normalize_frequencies

BACKEND_ENV = "HUTTER_BACKEND"
DEVICE_ENV = "HUTTER_DEVICE"
CONFIG_FIELDS = (
    "vocab_size", "d_model", "n_layers", "n_heads", "context", "mlp_ratio",
    "tie_embeddings", "resid_bits", "exp_bits", "out_prob_bits",
)  # fmt: skip
MASKED = 1 << 40  # ALiBi bias of an empty cache slot: far below any real logit

# ---------------------------------------------------------------- weights blob

BLOB_MAGIC = b"HNW1"
BLOB_DTYPES = ("int8", "uint8", "int16", "int32", "int64")
INT4 = "int4"  # signed 4-bit values, two per byte (low nibble first); read back as int8
LZMA_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]


def unpack_int4(data: bytes, count: int) -> np.ndarray:
    """Inverse of models.export.pack_int4: `count` int8 values."""
    packed = np.frombuffer(data, dtype=np.uint8)
    nibbles = np.empty(2 * packed.size, dtype=np.int8)
    nibbles[0::2], nibbles[1::2] = packed & 0xF, packed >> 4
    return (nibbles[:count] ^ 8) - 8  # sign extension: 0..7 stay, 8..15 -> -8..-1


def _nbytes(dtype: str, count: int) -> int:
    return (count + 1) // 2 if dtype == INT4 else count * np.dtype(dtype).itemsize


def unpack_weights(blob: bytes) -> dict:
    """Inverse of models.export.pack_weights (int4 arrays come back as int8); ValueError on anything that is not such a blob."""
    if blob[:4] != BLOB_MAGIC:
        raise ValueError("model weights are not a neural weights blob")
    try:
        raw = lzma.decompress(blob[4:], format=lzma.FORMAT_RAW, filters=LZMA_FILTERS)
        size = int.from_bytes(raw[:4], "little")
        index = json.loads(raw[4 : 4 + size])
    except (lzma.LZMAError, ValueError) as exc:
        raise ValueError(f"model weights do not decompress ({exc})") from None
    stream = io.BytesIO(raw[4 + size :])
    arrays = {}
    for name, dtype, shape in index:
        if dtype not in BLOB_DTYPES and dtype != INT4:
            raise ValueError(f"model weights hold an unknown type {dtype!r}")
        count = int(np.prod(shape, dtype=np.int64))
        data = stream.read(_nbytes(dtype, count))
        if len(data) != _nbytes(dtype, count):
            raise ValueError("model weights end early")
        if dtype == INT4:
            arrays[name] = unpack_int4(data, count).reshape(shape)
        else:
            arrays[name] = np.frombuffer(data, dtype=np.dtype(dtype).newbyteorder("<")).astype(np.dtype(dtype)).reshape(shape)
    if stream.read(1):
        raise ValueError("model weights have trailing bytes")
    return arrays


# ---------------------------------------------------------------- backend choice


def choose_backend(config: dict):
    """The backend named by HUTTER_BACKEND, else config["backend"], else "auto"."""
    name = os.environ.get(BACKEND_ENV) or config.get("backend") or "auto"
    device = os.environ.get(DEVICE_ENV) or config.get("device")
    if name not in ("numpy", "torch", "auto"):
        raise ValueError(f"unknown backend {name!r} (numpy, torch or auto)")
    if name == "numpy":
        return NumpyBackend()
    try:
        import torch
    except ImportError:
        if name == "torch":
            raise ValueError("backend torch was asked for, but torch is not installed") from None
        return NumpyBackend()
    if name == "auto" and device is None and not torch.cuda.is_available():
        return NumpyBackend()  # on CPU numpy is as fast and has no thread-count pitfalls
    return TorchBackend(device or ("cuda" if torch.cuda.is_available() else "cpu"))


# ---------------------------------------------------------------- the model


def _checked(mult, shift) -> tuple[np.ndarray, np.ndarray]:
    """Multipliers and shifts as int64, inside the ranges every bound in int_ops assumes."""
    mult, shift = np.asarray(mult, np.int64).reshape(-1), np.asarray(shift, np.int64).reshape(-1)
    if mult.shape != shift.shape or np.any(np.abs(mult) >= MAX_MULT) or np.any(shift < 1) or np.any(shift > MAX_SHIFT):
        raise ValueError("a requantization multiplier is out of range")
    return mult, shift


class _Rescale:
    """Per-channel M / 2**S on the backend, with the rounding half 2**(S-1).

    Every accumulator it meets is below 2**30, so acc * M stays below 2**61.
    """

    def __init__(self, be, mult: np.ndarray, shift: np.ndarray):
        mult, shift = _checked(mult, shift)
        self.mult, self.shift, self.half = be.asarray(mult), be.asarray(shift), be.asarray(1 << (shift - 1))

    def __call__(self, acc):
        return requantize(acc, self.mult, self.shift, self.half)


class _Linear:
    """int8 or int4 weights (out, in), kept transposed as integer-valued float32 for exact matmuls."""

    def __init__(self, be, arrays: dict, name: str, shape: tuple[int, int], weights=None):
        w = arrays[f"{name}.w"] if weights is None else weights
        self.w_max = int(np.abs(w.astype(np.int64)).max(initial=0))  # 127 for int8 rows, <= 8 for int4
        if tuple(w.shape) != shape or self.w_max > ACT_MAX:
            raise ValueError(f"weights {name} have the wrong shape or range")
        self.be = be
        self.w = be.asarray(w.T.astype(np.float32))  # (in, out)
        self.rescale = _Rescale(be, arrays[f"{name}.m"], arrays[f"{name}.s"])

    def __call__(self, x, x_max: int):
        """x: int64 (B, in) with |x| <= x_max -> int64 (B, out), rescaled.

        Exact: |x_i * w_i| <= x_max * w_max, and exact_matmul cuts the inner dimension so
        that each float32 partial sum stays within 2**24 (int4 weights: longer chunks)."""
        acc = exact_matmul(self.be, self.be.f32(x), self.w, x_max * max(1, self.w_max))
        return self.rescale(acc)


class NeuralModel:
    runtime = ("numpy",)  # torch is optional: used when present and chosen
    modules = ("neural_model", "int_ops", "torch_freqs", "frequencies")  # carried by its archives (and a mix with a neural input)

    def __init__(self, config: dict, arrays: dict, n_streams: int, prob_bits: int, backend=None):
        missing = [f for f in CONFIG_FIELDS if f not in config]
        if missing:
            raise ValueError(f"neural model config lacks {', '.join(missing)}")
        self.config = {f: config[f] for f in CONFIG_FIELDS}
        c = self.config
        self.vocab, self.d, self.n_heads, self.context = c["vocab_size"], c["d_model"], c["n_heads"], c["context"]
        self.head_dim = self.d // self.n_heads
        if self.d % self.n_heads or self.d > MAX_WIDTH or self.d * c["mlp_ratio"] > MAX_WIDTH * 4:
            raise ValueError("unsupported model shape")
        self.n_streams, self.prob_bits = n_streams, prob_bits
        self.be = be = backend or choose_backend(config)
        self.att_bits = attention_prob_bits(self.context)
        self.att_table = be.asarray(exp2_table(c["exp_bits"], self.att_bits))
        self.out_table = be.asarray(exp2_table(c["exp_bits"], c["out_prob_bits"]))
        self._load(arrays)
        self.reset()

    @classmethod
    def from_config(cls, config: dict, vocab_size: int, n_streams: int, prob_bits: int, weights: bytes = b"") -> "NeuralModel":
        if config.get("vocab_size") != vocab_size:
            raise ValueError(f"model vocabulary {config.get('vocab_size')} is not the tokenizer's {vocab_size}")
        try:
            return cls(config, unpack_weights(weights), n_streams, prob_bits)
        except KeyError as exc:
            raise ValueError(f"model weights lack {exc}") from None

    def _load(self, arrays: dict) -> None:
        be, d, V, c = self.be, self.d, self.vocab, self.config
        hidden = d * c["mlp_ratio"]
        wte = arrays["wte.w"]
        if wte.shape != (V + 1, d):  # row V embeds "no token yet"
            raise ValueError("embedding table has the wrong shape")
        self.wte = be.asarray(wte.astype(np.int64))
        self.embed_rescale = _Rescale(be, arrays["wte.m"], arrays["wte.s"])
        self.head = _Linear(be, arrays, "head", (V, d), weights=wte[:V] if c["tie_embeddings"] else None)
        self.norm_f = _Rescale(be, arrays["norm_f.m"], arrays["norm_f.s"])
        self.alibi = np.asarray(arrays["alibi"], np.int64).reshape(c["n_layers"], self.n_heads)
        self.layers = []
        for i in range(c["n_layers"]):
            p = f"layer{i}."
            get = {k[len(p) :]: v for k, v in arrays.items() if k.startswith(p)}
            mix_mult, mix_shift = _checked(get["mix.m"], get["mix.s"])
            self.layers.append(
                {
                    "norm1": _Rescale(be, get["norm1.m"], get["norm1.s"]),
                    "qkv": _Linear(be, get, "qkv", (3 * d, d)),
                    "score": _Rescale(be, get["score.m"], get["score.s"]),
                    "mix_mult": int(mix_mult[0]),  # attention output: o = mixed v * M / 2**S
                    "mix_shift": int(mix_shift[0]),
                    "proj": _Linear(be, get, "proj", (d, d)),
                    "norm2": _Rescale(be, get["norm2.m"], get["norm2.s"]),
                    "fc1": _Linear(be, get, "fc1", (hidden, d)),
                    "fc2": _Linear(be, get, "fc2", (d, hidden)),
                }
            )

    def reset(self) -> None:
        """Forget every stream: the next step is position 0 of each."""
        B, H, hd, C = self.n_streams, self.n_heads, self.head_dim, self.context
        self.t = 0
        self.slot_pos = np.full(C, -1, dtype=np.int64)  # position held by each cache slot
        self.k_cache = [self.be.zeros_f32((B, H, hd, C)) for _ in self.layers]  # (B, H, hd, C)
        self.v_cache = [self.be.zeros_f32((B, H, C, hd)) for _ in self.layers]  # (B, H, C, hd)

    def step(self, prev_tokens) -> np.ndarray:
        """Frequencies (B, V) of every stream's next token, given the token it coded last."""
        prev = np.asarray(prev_tokens, dtype=np.int64)
        if prev.shape != (self.n_streams,) or np.any(prev < -1) or np.any(prev >= self.vocab):
            raise ValueError("prev_tokens must be n_streams ids in [-1, vocab)")
        be = self.be
        if isinstance(be, TorchBackend):
            be.prepare()
            with be.torch.inference_mode():
                weights = be.to_numpy(self._forward(prev).to(be.torch.int32))  # < 2**31: half the copy
        else:
            weights = self._forward(prev)
        return normalize_frequencies(weights, self.prob_bits)

    def step_native(self, prev_tokens):
        """As `step`, but on a CUDA torch backend the frequencies stay on the GPU (a torch
        tensor, normalized there by the mirror in torch_freqs): the codec reads them there."""
        be = self.be
        if not (isinstance(be, TorchBackend) and be.device.type == "cuda"):
            return self.step(prev_tokens)
        from .torch_freqs import normalize_frequencies_torch

        prev = np.asarray(prev_tokens, dtype=np.int64)
        if prev.shape != (self.n_streams,) or np.any(prev < -1) or np.any(prev >= self.vocab):
            raise ValueError("prev_tokens must be n_streams ids in [-1, vocab)")
        be.prepare()
        with be.torch.inference_mode():
            return normalize_frequencies_torch(self._forward(prev), self.prob_bits)

    def _forward(self, prev: np.ndarray):
        be = self.be
        slot = self.t % self.context
        self.slot_pos[slot] = self.t
        distance = self.t - self.slot_pos
        empty = self.slot_pos < 0
        self.t += 1
        tokens = be.asarray(np.where(prev < 0, self.vocab, prev))
        h = be.clip(self._embed(tokens), -RESID_MAX, RESID_MAX)  # (B, d)
        bias = be.asarray(np.where(empty, MASKED, self.alibi[:, :, None] * distance))  # (L, H, C): one copy per step
        for i, layer in enumerate(self.layers):
            h = be.clip(h + self._attention(i, layer, h, slot, bias[i]), -RESID_MAX, RESID_MAX)
            h = be.clip(h + self._mlp(layer, h), -RESID_MAX, RESID_MAX)
        x = rms_norm(be, h, self.d, self.norm_f.mult, self.norm_f.shift)
        logits = self.head(x, ACT_MAX)  # (B, V), units 2**-k bits
        index = be.clip(be.amax(logits) - logits, 0, len(self.out_table) - 1)
        return be.take(self.out_table, index)

    def _embed(self, tokens):
        """Row-scaled int8 (or int4) embedding -> residual units (one multiplier per row)."""
        r = self.embed_rescale
        return requantize(self.wte[tokens], r.mult[tokens][:, None], r.shift[tokens][:, None], r.half[tokens][:, None])

    def _attention(self, i: int, layer: dict, h, slot: int, bias):
        be, B, H, hd = self.be, self.n_streams, self.n_heads, self.head_dim
        x = rms_norm(be, h, self.d, layer["norm1"].mult, layer["norm1"].shift)
        qkv = be.clip(layer["qkv"](x, ACT_MAX), -ACT_MAX, ACT_MAX)  # (B, 3d)
        q, k, v = (be.f32(qkv[:, j * self.d : (j + 1) * self.d]).reshape(B, H, hd) for j in range(3))
        self.k_cache[i][:, :, :, slot] = k
        self.v_cache[i][:, :, slot, :] = v
        scores = exact_matmul(be, q.reshape(B, H, 1, hd), self.k_cache[i], ACT_MAX * ACT_MAX)  # (B, H, 1, C)
        z = layer["score"](scores.reshape(B, H, self.context)) - bias  # units 2**-k bits
        index = be.clip(be.amax(z) - z, 0, len(self.att_table) - 1)
        p = be.take(self.att_table, index)  # (B, H, C), 0 for empty slots
        num = exact_matmul(be, be.f32(p).reshape(B, H, 1, self.context), self.v_cache[i], ACT_MAX << self.att_bits)
        num = num.reshape(B, H, hd)
        den = be.sum(p) << layer["mix_shift"]  # (B, H, 1)
        o = be.clip(round_div(be, num * layer["mix_mult"], den), -ACT_MAX, ACT_MAX)  # o = num/sum(p) * M/2**S
        return layer["proj"](o.reshape(B, self.d), ACT_MAX)

    def _mlp(self, layer: dict, h):
        x = rms_norm(self.be, h, self.d, layer["norm2"].mult, layer["norm2"].shift)
        u = self.be.clip(layer["fc1"](x, ACT_MAX), 0, RELU_MAX)  # ReLU and the uint8 range in one clip
        return layer["fc2"](u, RELU_MAX)
