"""Float QAT model -> integer model (header config + weights blob), and code lengths of both.

Export is mechanical because the QAT model already computes in the integer
domain: its integer-valued weights become int8 arrays (int4 ones are stored two
per byte), and every float rescale (a product of quantization steps) becomes
M / 2**S with a 16-bit M (`quantize_multiplier`), the only rounding export adds.
"""

from __future__ import annotations

import json
import lzma
import math

import numpy as np
import torch

from models.gpt import GPT, LOG2_E, quantize_weight, weight_max
from submissions.decoder import codec, encoding
from submissions.decoder.int_ops import MAX_MULT, MAX_SHIFT
from submissions.decoder.neural_model import BLOB_DTYPES, BLOB_MAGIC, CONFIG_FIELDS, INT4, LZMA_FILTERS, NeuralModel, unpack_weights

MULT_BITS = 16  # |M| in [2**15, 2**16) whenever the shift range allows


def quantize_multiplier(real) -> tuple[np.ndarray, np.ndarray]:
    """real (array) -> (M int32, S int8) with M / 2**S ~ real to 16 bits, 1 <= S <= MAX_SHIFT."""
    real = np.asarray(real, dtype=np.float64)
    _, exponent = np.frexp(real)  # |real| = m * 2**exponent, m in [0.5, 1)
    shift = np.clip(MULT_BITS - exponent, 1, MAX_SHIFT)
    mult = np.floor(real * np.exp2(shift) + 0.5)  # scaling by 2**shift is exact
    if np.any(np.abs(mult) >= MAX_MULT):
        raise ValueError("a rescale factor is too large for a 31-bit multiplier")
    return mult.astype(np.int32), shift.astype(np.int8)


def _f64(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().double().numpy()


def _put(arrays: dict, name: str, real) -> None:
    arrays[f"{name}.m"], arrays[f"{name}.s"] = quantize_multiplier(np.atleast_1d(real))


def pack_int4(values: np.ndarray) -> bytes:
    """Integers in [-8, 7], row-major, two per byte: element 2i in the low nibble, 2i+1 in the high."""
    flat = np.asarray(values).reshape(-1)
    if flat.size and (flat.min() < -8 or flat.max() > 7):
        raise ValueError("int4 values must lie in [-8, 7]")
    nibbles = (flat.astype(np.int64) & 0xF).astype(np.uint8)
    if nibbles.size % 2:
        nibbles = np.append(nibbles, np.uint8(0))
    return (nibbles[0::2] | (nibbles[1::2] << 4)).tobytes()


def pack_weights(arrays: dict, int4=()) -> bytes:
    """name -> integer array, in order, as magic + raw LZMA2 of (index length, JSON index, raw
    arrays). Arrays named in `int4` (values in [-8, 7]) are stored two per byte."""
    unknown = set(int4) - set(arrays)
    if unknown:
        raise ValueError(f"int4 names no array: {sorted(unknown)}")
    index, chunks = [], []
    for name, array in arrays.items():
        array = np.asarray(array)
        if array.dtype.name not in BLOB_DTYPES:
            raise TypeError(f"{name}: {array.dtype} is not an integer type the blob stores")
        dtype = INT4 if name in int4 else array.dtype.name
        index.append([name, dtype, list(array.shape)])
        chunks.append(pack_int4(array) if dtype == INT4 else array.astype(array.dtype.newbyteorder("<")).tobytes())
    head = json.dumps(index, separators=(",", ":")).encode()
    raw = len(head).to_bytes(4, "little") + head + b"".join(chunks)
    return BLOB_MAGIC + lzma.compress(raw, format=lzma.FORMAT_RAW, filters=LZMA_FILTERS)


@torch.no_grad()
def export_integer_model(model: GPT) -> tuple[dict, bytes]:
    """(header model config with kind "neural", weights blob) of the integer twin of `model`.
    Weight matrices of 4 bits (cfg.weight_bits, cfg.embed_bits) go into the blob two per byte."""
    cfg = model.cfg
    R, k, d = 2**cfg.resid_bits, 2**cfg.exp_bits, cfg.d_model
    arrays: dict[str, np.ndarray] = {}
    int4: list[str] = []

    def weights(name: str, w: torch.Tensor, bits: int) -> None:
        arrays[name] = w.detach().cpu().numpy().astype(np.int8)  # integers in [-q, q] already
        if bits == 4:
            int4.append(name)

    w, scale = quantize_weight(model.wte, cfg.embed_bits)
    weights("wte.w", w, cfg.embed_bits)
    _put(arrays, "wte", _f64(scale) * R)
    for i, block in enumerate(model.blocks):
        p, attn, mlp, bits = f"layer{i}.", block.attn, block.mlp, cfg.weight_bits
        n1, n2 = _f64(block.norm1.out.scale), _f64(block.norm2.out.scale)
        sq, sk, sv, so = (_f64(q.scale) for q in (attn.q_out, attn.k_out, attn.v_out, attn.o_out))
        _put(arrays, p + "norm1", _f64(block.norm1.gain) / n1)
        w, scale = quantize_weight(attn.qkv, bits)
        weights(p + "qkv.w", w, bits)
        _put(arrays, p + "qkv", n1 * _f64(scale) / np.repeat([sq, sk, sv], d))
        _put(arrays, p + "score", sq * sk * LOG2_E * k / math.sqrt(cfg.head_dim))
        _put(arrays, p + "mix", sv / so)
        w, scale = quantize_weight(attn.proj, bits)
        weights(p + "proj.w", w, bits)
        _put(arrays, p + "proj", so * _f64(scale) * R)
        _put(arrays, p + "norm2", _f64(block.norm2.gain) / n2)
        w, scale = quantize_weight(mlp.fc1, bits)
        weights(p + "fc1.w", w, bits)
        su = _f64(mlp.hidden.scale)
        _put(arrays, p + "fc1", n2 * _f64(scale) / su)
        w, scale = quantize_weight(mlp.fc2, bits)
        weights(p + "fc2.w", w, bits)
        _put(arrays, p + "fc2", su * _f64(scale) * R)
    nf = _f64(model.norm_f.out.scale)
    _put(arrays, "norm_f", _f64(model.norm_f.gain) / nf)
    w, scale = model.head_weights()
    if not cfg.tie_embeddings:
        weights("head.w", w, cfg.embed_bits)
    _put(arrays, "head", nf * _f64(scale) * LOG2_E * k)
    slopes = model.slopes.cpu().numpy().astype(np.int64)
    arrays["alibi"] = np.tile(slopes, (cfg.n_layers, 1)).astype(np.int16)
    header = {"kind": "neural", **cfg.to_dict()}
    return header, pack_weights(arrays, int4=int4)


def random_integer_weights(config: dict, seed: int = 0) -> dict:
    """Random weights over the full int8 (or int4: config weight_bits / embed_bits) ranges with
    plausible multipliers: for tests and benchmarks."""
    rng = np.random.default_rng(seed)
    V, d, H, L = config["vocab_size"], config["d_model"], config["n_heads"], config["n_layers"]
    hidden, R, k = d * config["mlp_ratio"], 2 ** config["resid_bits"], 2 ** config["exp_bits"]
    block_max, embed_max = weight_max(config.get("weight_bits", 8)), weight_max(config.get("embed_bits", 8))

    def weights(rows, cols, q):
        return rng.integers(-q, q + 1, size=(rows, cols)).astype(np.int8)

    def rescale(n, real):  # jitter each channel's factor by up to 2x either way
        return quantize_multiplier(real * np.exp2(rng.uniform(-1, 1, size=n)))

    def linear(name, rows, cols, out_rms, in_rms):
        arrays[f"{name}.w"] = weights(rows, cols, block_max)
        w_rms = round(block_max / math.sqrt(3))  # ~ rms of uniform integers in [-q, q] (73 for int8)
        arrays[f"{name}.m"], arrays[f"{name}.s"] = rescale(rows, out_rms / (in_rms * w_rms * math.sqrt(cols)))

    e_rms = round(embed_max / math.sqrt(3))
    arrays = {"wte.w": weights(V + 1, d, embed_max)}
    arrays["wte.m"], arrays["wte.s"] = rescale(V + 1, R / e_rms)
    for i in range(L):
        p = f"layer{i}."
        for norm in ("norm1", "norm2"):
            arrays[p + norm + ".m"], arrays[p + norm + ".s"] = rescale(d, 32.0)
        linear(p + "qkv", 3 * d, d, 30, 32)
        arrays[p + "score.m"], arrays[p + "score.s"] = rescale(1, 3 * k / (30 * 30 * math.sqrt(d // H)))
        arrays[p + "mix.m"], arrays[p + "mix.s"] = rescale(1, 2.0)
        linear(p + "proj", d, d, 0.3 * R, 30)
        linear(p + "fc1", hidden, d, 40, 32)
        linear(p + "fc2", d, hidden, 0.3 * R, 40)
    arrays["norm_f.m"], arrays["norm_f.s"] = rescale(d, 32.0)
    if not config["tie_embeddings"]:
        arrays["head.w"] = weights(V, d, embed_max)
    arrays["head.m"], arrays["head.s"] = rescale(V, 3 * k / (32 * e_rms * math.sqrt(d)))
    arrays["alibi"] = rng.integers(0, 40, size=(L, H)).astype(np.int16)
    return arrays


# ---------------------------------------------------------------- code lengths


def stream_slices(n_tokens: int, n_streams: int) -> list[slice]:
    """The codec's split of a token sequence into contiguous streams."""
    lengths = codec.stream_lengths(n_tokens, encoding.effective_streams(n_tokens, n_streams))
    ends = np.cumsum(lengths)
    return [slice(int(e - n), int(e)) for e, n in zip(ends, lengths)]


@torch.no_grad()
def float_code_length(model: GPT, tokens: np.ndarray, n_streams: int, chunk: int | None = None) -> float:
    """Cross entropy in bits of the float QAT model over `tokens`, coded as the codec codes them:
    each stream starts after the "no token" symbol and sees a sliding window.

    Long streams go in chunks; each chunk is preceded by n_layers * (context - 1) tokens of
    history, the whole receptive field, so chunking changes nothing but float noise.
    """
    cfg, device = model.cfg, next(model.parameters()).device
    chunk = chunk or 4 * cfg.context
    warm = cfg.n_layers * (cfg.context - 1)
    total = 0.0
    for part in stream_slices(len(tokens), n_streams):
        stream = np.asarray(tokens[part], dtype=np.int64)  # one stream at a time: tokens may be a memory map
        inputs = np.concatenate([[model.bos], stream[:-1]])
        for start in range(0, len(stream), chunk):
            lo = max(0, start - warm)
            x = torch.from_numpy(inputs[lo : start + chunk]).to(device)[None]
            y = torch.from_numpy(stream[start : start + chunk]).to(device)
            logits, _ = model(x)
            logits = logits[0, start - lo :].float()
            total += float(torch.nn.functional.cross_entropy(logits, y, reduction="sum")) / math.log(2.0)
    return total


def integer_code_length(header: dict, blob: bytes, tokens: np.ndarray, n_streams: int, prob_bits: int, backend=None) -> float:
    """Sum of -log2(freq / 2**prob_bits) of the integer model over `tokens`: the payload size
    in bits the coder will reach (within a few bytes per stream), without running the coder."""
    tokens = np.asarray(tokens, dtype=np.int64)
    n_streams = encoding.effective_streams(len(tokens), n_streams)
    if n_streams == 0:
        return 0.0
    config = {f: header[f] for f in CONFIG_FIELDS}
    model = NeuralModel(config, unpack_weights(blob), n_streams, prob_bits, backend=backend)
    lengths = codec.stream_lengths(len(tokens), n_streams)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    prev = np.full(n_streams, -1, dtype=np.int64)
    bits = 0.0
    for t in range(int(lengths[0])):
        k = int(np.count_nonzero(lengths > t))
        freqs = model.step(prev)
        current = tokens[starts[:k] + t]
        bits += float(prob_bits * k - np.log2(freqs[np.arange(k), current].astype(np.float64)).sum())
        prev = np.full(n_streams, -1, dtype=np.int64)
        prev[:k] = current
    return bits
