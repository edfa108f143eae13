"""The code length along the file, per model config: the loss curve whose area is the payload.

    python benchmarks/loss_curve.py runs/e6 'mix, no network={"online_hidden": 0}' 'mix + online network={}' \
        --png benchmarks/results/loss_curve_enwik6.png

A model that learns while it codes pays for its data by the area under this curve (Rae's
decomposition: size = training code + area); the plot (pipeline/curve.py, as `pipeline curve`
draws the curves `pipeline pack` writes) shows bits per byte of text over windows of the file,
and the table the area (ideal code length, which the rANS payload matches within a few bytes)
of each config and of each quarter of the file. Configs are MixConfig overrides as in
mix_screen.py, one stream, without packing an archive for each.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from pipeline.curve import file_curve, plot_curves, token_lengths
from submissions.decoder import encoding
from submissions.decoder.model_registry import build_model
from tokenizer import load_tokenizer


def code_lengths(table: list, tokens: np.ndarray, overrides: dict) -> np.ndarray:
    """[[bytes coded, ideal bits so far], ...] after every chunk, as `pipeline pack` records it."""
    model = build_model(dict({"kind": "mix"}, **overrides), len(table), 1, 28, b"", token_bytes=table)
    points = []
    encoding.encode_with_cost(model, tokens, 1, 28, curve=points)
    return np.array(file_curve([(0, len(tokens), 1, points)], tokens, token_lengths(table)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run folder of `pipeline train` (tokenizer.model, tokens.npy)")
    parser.add_argument("configs", nargs="+", help="LABEL=JSON: a label and the MixConfig fields to override")
    parser.add_argument("--png", type=Path, required=True)
    parser.add_argument("--window", type=int, default=32768, help="bytes of text per plotted point")
    args = parser.parse_args()
    table = load_tokenizer((args.run / "tokenizer.model").read_bytes()).table
    tokens = np.load(args.run / "tokens.npy")
    curves = {}
    for item in args.configs:
        label, _, overrides = item.partition("=")
        curves[label] = code_lengths(table, tokens, json.loads(overrides)).T
    n_bytes = int(next(iter(curves.values()))[0][-1])
    quarters = [n_bytes * q // 4 for q in range(5)]
    print(f"| config | area (B) | bits/byte | {' | '.join(f'quarter {q + 1} (B)' for q in range(4))} |")
    print("|---|---:|---:|" + "---:|" * 4)
    for label, (at, bits) in curves.items():
        at_quarters = np.interp(quarters, at, bits) / 8
        parts = " | ".join(f"{b:,.0f}" for b in np.diff(at_quarters))
        print(f"| {label} | {bits[-1] / 8:,.0f} | {bits[-1] / n_bytes:.4f} | {parts} |")
    data_name = Path(json.loads((args.run / "source.json").read_text())["path"]).name
    plot_curves([{"label": label, "file": data_name, "points": np.stack([at, bits], axis=1)} for label, (at, bits) in curves.items()], args.png, args.window)
    print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
