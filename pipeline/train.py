"""`pipeline train`: a lossless tokenizer for the file, then its model.

The adaptive context model learns while it codes, so it has nothing to train
here; the neural model is trained (GPU when present) and exported to its integer
twin. Either way the run records the tokenized file, so `pipeline pack` codes
exactly what was tokenized here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.config import PipelineConfig
from pipeline.errors import UserError
from pipeline.fileio import require_file
from pipeline.run_dir import Source, file_sha256, save_report, save_run
from submissions.decoder import codec
from tokenizer import train_tokenizer


@dataclass(frozen=True)
class TrainResult:
    run: Path
    n_bytes: int
    n_tokens: int
    vocab_size: int
    seconds: float

    @property
    def bytes_per_token(self) -> float:
        return self.n_bytes / max(self.n_tokens, 1)


def train(
    data_path: Path,
    run: Path,
    config: PipelineConfig | None = None,
    force: bool = False,
    resume: bool = False,
    device: str = "auto",
    progress: bool = True,
) -> TrainResult:
    config = (config or PipelineConfig()).validate()
    data_path = require_file(Path(data_path), "data file")
    run = Path(run)
    if run.exists() and (not run.is_dir() or any(run.iterdir())) and not (force or resume):
        raise UserError(f"{run} already exists and is not empty (use --force to replace it, or --resume)")
    started = time.perf_counter()
    data = data_path.read_bytes()
    tokenizer = train_tokenizer(data, config.tokenizer.vocab_size, config.tokenizer.model_type)
    tokens = tokenizer.encode(data)
    if tokenizer.decode(tokens) != data:  # a bug, never a user error: refuse to go on
        raise RuntimeError("tokenizer round trip failed on this file")
    dtype = np.uint16 if tokenizer.vocab_size <= 1 << 16 else np.int32
    seconds = time.perf_counter() - started
    source = Source(path=str(data_path.resolve()), size=len(data), sha256=file_sha256(data_path))
    report = {
        "bytes": len(data),
        "tokens": int(len(tokens)),
        "vocab_size": tokenizer.vocab_size,
        "bytes_per_token": len(data) / max(len(tokens), 1),
        "seconds": seconds,
    }
    save_run(run, config, source, tokenizer.model_proto(), tokens.astype(dtype), report)
    if config.model.kind == "neural":
        from pipeline.neural import train_neural

        n_streams = codec.effective_streams(len(tokens), config.coder.n_streams)
        bytes_per_token = len(data) / max(len(tokens), 1)
        report.update(train_neural(tokens, tokenizer.vocab_size, config.model, run, n_streams, bytes_per_token, device, resume, progress))
        seconds = time.perf_counter() - started
        report["seconds"] = seconds
        save_report(run, report)
    return TrainResult(run, len(data), int(len(tokens)), tokenizer.vocab_size, seconds)
