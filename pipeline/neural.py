"""The neural model's part of `pipeline train`: train the QAT transformer, export its integer twin.

torch and models/ are imported here only, so context-model runs never load them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path

import numpy as np

from pipeline.config import NeuralModelConfig
from submissions.errors import UserError
from submissions.fileio import atomic_write_bytes, atomic_write_text, remove_leftovers
from pipeline.progress import console, plain_lines

MODEL_HEADER = "model.json"  # the integer model's config, as the archive header carries it
MODEL_WEIGHTS = "model.bin"  # the integer weights blob, as the archive carries it
EXPORT_RECORD = "export.json"  # what the two were made from: the ids' sha256, the neural config; their own sha256
LOG_STEPS = 1000  # off a terminal, training's fraction of its budget in these steps (the line shows a percentage)


def train_neural(
    tokens: np.ndarray,
    tokens_sha256: str,
    vocab_size: int,
    config: NeuralModelConfig,
    run: Path,
    n_streams: int,
    bytes_per_token: float,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
) -> dict:
    """Train on `tokens` (the run's memory-mapped ids, whose file hashes to tokens_sha256: the
    checkpoint records it, and --resume refuses a checkpoint of other ids), export to
    run/model.{json,bin} with their record;
    return facts for the run report. In a process group (torchrun) every rank trains its share
    of each batch; rank 0 alone shows progress, exports and returns facts, the others return {}."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from models.export import export_integer_model, float_code_length
    from models.gpt import ModelConfig
    from models.training import CHECKPOINT, load_model, train_model
    from pipeline.distributed import joined_world

    is_main = joined_world().is_main
    if is_main:
        remove_leftovers(run / CHECKPOINT)  # a killed run's half-written checkpoint
    model_config = ModelConfig(vocab_size=vocab_size, **config.shape())
    started = time.perf_counter()
    columns = (TextColumn("training"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"), TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
    shown = progress and is_main
    log = plain_lines("training", shown, counts=False)  # off a terminal (hours on a GPU under nohup): a line a minute
    with Progress(*columns, console=console, disable=not shown or log is not None) as bar:
        task = bar.add_task("training", total=1.0, info="")
        last_info = ""

        def report(p) -> None:
            nonlocal last_info
            last_info = f"step {p.step}  {p.loss_bits / bytes_per_token:.3f} bits/byte  {p.tokens_per_s:,.0f} tok/s"
            bar.update(task, completed=p.fraction, info=last_info)
            if log:
                log(round(p.fraction * LOG_STEPS), LOG_STEPS, last_info)

        try:
            checkpoint = train_model(
                tokens, model_config, run, device=device, max_minutes=config.max_minutes, max_steps=config.max_steps,
                batch_size=config.batch_size, lr=config.lr, seed=config.seed, resume=resume, progress=report,
                precision=config.precision, made_from={"tokens_sha256": tokens_sha256},
            )
        except ValueError as exc:  # e.g. --resume over a checkpoint of another shape (raised in every rank)
            raise UserError(f"cannot train: {exc}") from None
        if log:  # the closing line, if the last report fell short of the budget's end (said once either way)
            log(LOG_STEPS, LOG_STEPS, last_info)
    if not is_main:
        return {}
    train_seconds = time.perf_counter() - started
    model = load_model(checkpoint, device="cpu")
    header_model, blob = export_integer_model(model)
    save_export(run, json.dumps(header_model, indent=2, sort_keys=True), blob, tokens_sha256, config)
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


def save_export(run: Path, header_text: str, blob: bytes, tokens_sha256: str, config: NeuralModelConfig) -> None:
    """The exported model, its record last: the old record goes first, so a crash between the
    files leaves no record, and the record's hashes tie it to exactly these two files."""
    (run / EXPORT_RECORD).unlink(missing_ok=True)
    atomic_write_text(run / MODEL_HEADER, header_text)
    atomic_write_bytes(run / MODEL_WEIGHTS, blob)
    record = {
        "tokens_sha256": tokens_sha256,
        "neural": dataclasses.asdict(config),
        "model_json_sha256": hashlib.sha256(header_text.encode("utf-8")).hexdigest(),
        "model_bin_sha256": hashlib.sha256(blob).hexdigest(),
    }
    atomic_write_text(run / EXPORT_RECORD, json.dumps(record, indent=2))


def load_integer_model(run: Path) -> tuple[dict, bytes, dict | None] | None:
    """(header model config, weights blob, export record) of a neural run; None for a run
    without weights. The record is None where it is missing or does not hash to these files."""
    if not (run / MODEL_WEIGHTS).is_file():
        return None
    text, blob = (run / MODEL_HEADER).read_bytes(), (run / MODEL_WEIGHTS).read_bytes()
    try:
        record = json.loads((run / EXPORT_RECORD).read_text())
    except (OSError, ValueError):
        record = None
    if not isinstance(record, dict) or record.get("model_json_sha256") != hashlib.sha256(text).hexdigest() or record.get("model_bin_sha256") != hashlib.sha256(blob).hexdigest():
        record = None
    return json.loads(text), blob, record
