"""Encode/decode throughput of the integer neural model, per backend and stream count.

Measures the steady state of the project's coding loop (codec.code: model step +
frequencies + rANS) over a fixed number of steps for each stream count B, after warm-up
steps that fill part of the KV cache (timed as the difference of two runs); tokens are the run's own, tiled when B * steps
exceeds them (labelled as such). Prints a table and appends it to a markdown
file with machine and date.

    python benchmarks/neural_throughput.py RUN [--backend torch --device cuda] [--streams 64 256 1024]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from submissions.decoder import codec, encoding
from submissions.decoder.model_registry import build_model

PROB_BITS = 28


def stream_tokens(tokens: np.ndarray, n_streams: int, n_steps: int) -> tuple[np.ndarray, bool]:
    """(steps, B) token matrix: stream b reads a contiguous slice; tiled if the run is too short."""
    need = n_streams * n_steps
    tiled = need > len(tokens)
    pool = np.tile(tokens, need // len(tokens) + 1) if tiled else tokens
    return pool[:need].reshape(n_streams, n_steps).T.copy(), tiled


def _synchronize(header: dict) -> None:
    if str(header.get("device", "")).startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def _timed_round_trip(header: dict, blob: bytes, vocab: int, ids: np.ndarray, n_streams: int) -> tuple[float, float]:
    """(encode s, decode s) of the ids through the project's coding loop, fresh models each way."""
    _synchronize(header)
    started = time.perf_counter()
    payload = encoding.encode(build_model(header, vocab, n_streams, PROB_BITS, blob), ids, n_streams, PROB_BITS)
    _synchronize(header)
    encoded = time.perf_counter()
    decoded = codec.decode(build_model(header, vocab, n_streams, PROB_BITS, blob), payload, len(ids), n_streams, PROB_BITS)
    _synchronize(header)
    assert np.array_equal(decoded, ids), "decode mismatch"
    return encoded - started, time.perf_counter() - encoded


def measure(header: dict, blob: bytes, vocab: int, tokens: np.ndarray, n_streams: int, warm: int, steps: int) -> dict:
    """Steady-state rates: a run of warm + steps steps minus a run of the warm-up steps alone
    (model setup, first steps and compilation cancel out)."""
    matrix, tiled = stream_tokens(tokens, n_streams, warm + steps)
    warm_encode, warm_decode = _timed_round_trip(header, blob, vocab, matrix[:warm].T.ravel(), n_streams)  # stream b = column b
    full_encode, full_decode = _timed_round_trip(header, blob, vocab, matrix.T.ravel(), n_streams)
    n = n_streams * steps
    return {"streams": n_streams, "tokens": n, "encode_tok_s": n / (full_encode - warm_encode), "decode_tok_s": n / (full_decode - warm_decode), "tiled": tiled}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--backend", default="numpy")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--streams", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--warm", type=int, default=20)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/neural_throughput.md"))
    args = parser.parse_args()

    header = json.loads((args.run / "model.json").read_text())
    header = dict(header, backend=args.backend, device=args.device)
    blob = (args.run / "model.bin").read_bytes()
    tokens = np.load(args.run / "tokens.npy").astype(np.int64)
    report = json.loads((args.run / "train.json").read_text())
    bytes_per_token = report["bytes_per_token"]
    vocab = report["vocab_size"]
    params = report.get("model_parameters")
    shape = f"d{header['d_model']} L{header['n_layers']} H{header['n_heads']} ctx{header['context']} vocab {vocab}"
    device_name = args.device
    if args.device.startswith("cuda"):
        import torch

        device_name = torch.cuda.get_device_name()
    lines = [
        f"## {shape} ({params:,} parameters), backend {args.backend} on {device_name}",
        "",
        f"{datetime.date.today()}, {platform.machine()} {os.cpu_count()} cores, python {platform.python_version()}, "
        f"numpy {np.__version__}; {args.steps} timed steps after {args.warm} warm-up steps; "
        f"{bytes_per_token:.2f} bytes/token (the run's tokenizer)",
        "",
        "| streams | encode tok/s | encode KB/s | decode tok/s | decode KB/s | tokens |",
        "|---:|---:|---:|---:|---:|---|",
    ]
    for n_streams in args.streams:
        row = measure(header, blob, vocab, tokens, n_streams, args.warm, args.steps)
        lines.append(
            f"| {n_streams} | {row['encode_tok_s']:,.0f} | {row['encode_tok_s'] * bytes_per_token / 1000:,.1f} | "
            f"{row['decode_tok_s']:,.0f} | {row['decode_tok_s'] * bytes_per_token / 1000:,.1f} | "
            f"{'run tokens tiled' if row['tiled'] else 'run tokens'} |"
        )
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a") as f:
        f.write(text)


if __name__ == "__main__":
    main()
