"""The neural model's part of `pipeline train`: train the QAT transformer, export its integer twin.

torch and models/ are imported here only, so context-model runs never load them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from pipeline.config import NeuralModelConfig
from pipeline.errors import UserError
from pipeline.fileio import atomic_write_bytes, atomic_write_text
from pipeline.progress import console

MODEL_HEADER = "model.json"  # the integer model's config, as the archive header carries it
MODEL_WEIGHTS = "model.bin"  # the integer weights blob, as the archive carries it


def train_neural(
    tokens: np.ndarray,
    vocab_size: int,
    config: NeuralModelConfig,
    run: Path,
    n_streams: int,
    bytes_per_token: float,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
) -> dict:
    """Train on `tokens` (the run's memory-mapped ids), export to run/model.{json,bin};
    return facts for the run report. In a process group (torchrun) every rank trains its share
    of each batch; rank 0 alone shows progress, exports and returns facts, the others return {}."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from models.export import export_integer_model, float_code_length
    from models.gpt import ModelConfig
    from models.training import load_model, train_model
    from pipeline.distributed import joined_world

    is_main = joined_world().is_main
    model_config = ModelConfig(vocab_size=vocab_size, **config.shape())
    started = time.perf_counter()
    columns = (TextColumn("training"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"), TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=console, disable=not (progress and is_main)) as bar:
        task = bar.add_task("training", total=1.0, info="")

        def report(p) -> None:
            info = f"step {p.step}  {p.loss_bits / bytes_per_token:.3f} bits/byte  {p.tokens_per_s:,.0f} tok/s"
            bar.update(task, completed=p.fraction, info=info)

        try:
            checkpoint = train_model(
                tokens, model_config, run, device=device, max_minutes=config.max_minutes, max_steps=config.max_steps,
                batch_size=config.batch_size, lr=config.lr, seed=config.seed, resume=resume, progress=report,
                precision=config.precision,
            )
        except ValueError as exc:  # e.g. --resume over a checkpoint of another shape (raised in every rank)
            raise UserError(f"cannot train: {exc}") from None
    if not is_main:
        return {}
    train_seconds = time.perf_counter() - started
    model = load_model(checkpoint, device="cpu")
    header_model, blob = export_integer_model(model)
    atomic_write_text(run / MODEL_HEADER, json.dumps(header_model, indent=2, sort_keys=True))
    atomic_write_bytes(run / MODEL_WEIGHTS, blob)
    model.to("cuda" if device != "cpu" and _cuda() else "cpu")
    float_bits = float_code_length(model, tokens, n_streams)
    return {
        "model_parameters": sum(p.numel() for p in model.parameters()),
        "train_seconds": train_seconds,
        "weights_bytes": len(blob),
        "float_code_bits": float_bits,
        "float_bits_per_byte": float_bits / max(1.0, len(tokens) * bytes_per_token),
        "float_bits_per_token": float_bits / max(1, len(tokens)),
        "checkpoint": str(checkpoint),
    }


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def load_integer_model(run: Path) -> tuple[dict, bytes] | None:
    """(header model config, weights blob) of a neural run; None for a run without weights."""
    if not (run / MODEL_WEIGHTS).is_file():
        return None
    return json.loads((run / MODEL_HEADER).read_text()), (run / MODEL_WEIGHTS).read_bytes()
