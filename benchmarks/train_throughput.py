"""Training throughput of the QAT transformer: tokens/s and model FLOPs utilization.

    python benchmarks/train_throughput.py TOKENS.npy [--batch 32 256] [--seconds 60] [--compile]

MFU = 6 * parameters * tokens/s over the GPU's dense peak (H100 SXM: 989 TFLOP/s
bf16, 494 TFLOP/s TF32; training runs its matmuls in TF32, see models/README.md).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from models.gpt import ModelConfig
from models.training import read_checkpoint, train_model

PEAK_TF32 = 494e12


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tokens", type=Path)
    parser.add_argument("--vocab", type=int, default=4096)
    parser.add_argument("--batch", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    tokens = np.load(args.tokens).astype(np.int64)
    config = ModelConfig(vocab_size=args.vocab)
    print("| batch x seq | compile | steps | tokens/s | TFLOP/s (6ND) | MFU vs TF32 peak | device |")
    print("|---|---|---:|---:|---:|---:|---|")
    for batch in args.batch:
        with tempfile.TemporaryDirectory() as tmp:
            path = train_model(tokens, config, Path(tmp), max_minutes=args.seconds / 60, batch_size=batch, compile=args.compile, log_every=50)
            state = read_checkpoint(path)
            params = sum(v.numel() for k, v in state["model"].items() if v.is_floating_point() and "scale" not in k)
            seen = state["step"] * batch * state["train"]["seq_len"]
            rate = seen / state["elapsed_s"]
            flops = 6 * params * rate
            device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
            print(f"| {batch} x {state['train']['seq_len']} | {args.compile} | {state['step']} | {rate:,.0f} | {flops / 1e12:.1f} | {100 * flops / PEAK_TF32:.2f}% | {device} |", flush=True)


if __name__ == "__main__":
    main()
