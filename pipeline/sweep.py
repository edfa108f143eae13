"""`pipeline sweep`: which tokenizer and model give the smallest archive for this file.

Every candidate is trained and packed for real (nothing is estimated), so the
table shows what each archive actually costs: decoder, tokenizer table, weights,
payload. Weights count in the score, which is why a small file wants a small
(or no) neural model and enwik9 a large one.
"""

from __future__ import annotations

import datetime
import platform
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.config import CoderConfig, ContextModelConfig, MixingModelConfig, NeuralModelConfig, PipelineConfig, TokenizerConfig
from submissions.fileio import atomic_write_text, require_file
from pipeline.progress import console


@dataclass(frozen=True)
class Candidate:
    name: str
    config: PipelineConfig


def _neural(d: int, layers: int, heads: int, context: int = 128, **bits) -> NeuralModelConfig:
    return NeuralModelConfig(d_model=d, n_layers=layers, n_heads=heads, context=context, **bits)


def default_candidates(streams: int = 0, minutes: float = 1.0) -> list[Candidate]:
    """No neural model (context mixing; the simple context model) at several vocab sizes;
    neural models from tiny to enwik8-sized."""
    coder = CoderConfig(n_streams=streams)
    rows = [(f"mix, vocab {v}", v, MixingModelConfig()) for v in (512, 1024, 4096)]
    rows += [("mix + tiny neural d32 L1 int4, vocab 512", 512, MixingModelConfig(neural=_neural(32, 1, 2, weight_bits=4, embed_bits=4)))]
    rows += [(f"context, vocab {v}", v, ContextModelConfig()) for v in (2048, 4096, 8192)]
    rows += [
        ("neural d64 L2, vocab 1024", 1024, _neural(64, 2, 2)),
        ("neural d128 L2, vocab 2048", 2048, _neural(128, 2, 4)),
        ("neural d256 L4, vocab 4096", 4096, _neural(256, 4, 4)),
    ]
    return [
        Candidate(name, PipelineConfig(TokenizerConfig(vocab_size=vocab), _budget(model, minutes), coder))
        for name, vocab, model in rows
    ]


def _budget(model, minutes: float):
    """The sweep's training time for whatever neural model the candidate has."""
    if isinstance(model, NeuralModelConfig):
        return replace(model, max_minutes=minutes, max_steps=None)
    if getattr(model, "neural", None) is not None:
        return replace(model, neural=_budget(model.neural, minutes))
    return model


@dataclass(frozen=True)
class SweepRow:
    name: str
    total_bytes: int
    parts: dict
    train_seconds: float
    pack_seconds: float


def sweep(data_path: Path, candidates: list[Candidate], device: str = "auto", backend: str | None = None, progress: bool = True) -> list[SweepRow]:
    from pipeline.pack import pack
    from pipeline.train import train

    data_path = require_file(Path(data_path), "data file")
    rows = []
    with tempfile.TemporaryDirectory(prefix="sweep-") as tmp:
        for i, candidate in enumerate(candidates):
            console.print(f"[{i + 1}/{len(candidates)}] {candidate.name}")
            run, archive = Path(tmp) / f"run{i}", Path(tmp) / f"c{i}.arc"
            started = time.perf_counter()
            train(data_path, run, candidate.config, device=device, progress=progress)
            trained = time.perf_counter()
            neural = candidate.config.neural_model() is not None  # the backend is the neural net's: the kernels code the rest faster
            device_choice = "cuda" if neural and backend == "torch" and device in ("auto", "cuda") and _cuda() else None
            packed = pack(run, archive, progress=progress, backend=backend if neural else None, device=device_choice)
            rows.append(SweepRow(candidate.name, packed.total_bytes, packed.parts, trained - started, time.perf_counter() - trained))
    return rows


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def markdown(data_path: Path, rows: list[SweepRow], minutes: float) -> str:
    size = Path(data_path).stat().st_size
    best = min(rows, key=lambda r: r.total_bytes)
    lines = [
        f"# Sweep on {Path(data_path).name} ({size:,} bytes)",
        "",
        f"{datetime.date.today()}, {platform.machine()}, python {platform.python_version()}; neural candidates "
        f"trained {minutes:g} min each. Every row is a real archive (trained and packed).",
        "",
        "| candidate | total bytes | bits/byte | decoder | tokenizer | weights | payload | train s | pack s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        mark = " **(best)**" if r is best else ""
        p = r.parts
        lines.append(
            f"| {r.name}{mark} | {r.total_bytes:,} | {8 * r.total_bytes / max(size, 1):.4f} | {p['decoder']:,} | "
            f"{p['tokenizer']:,} | {p['model']:,} | {p['payload']:,} | {r.train_seconds:.0f} | {r.pack_seconds:.0f} |"
        )
    return "\n".join(lines) + "\n"


def write_sweep(path: Path, text: str) -> None:
    atomic_write_text(Path(path), text)
