"""`pipeline train`: a lossless tokenizer for the file, then its model.

The adaptive context model learns while it codes, so it has nothing to train
here; the neural model is trained (GPU when present) and exported to its integer
twin. Either way the run records the tokenized file (the id file, tokens.npy,
with a record of the data and tokenizer it came from), so `pipeline pack` codes
exactly what was tokenized here, training reads the ids through a memory map,
and `--resume` tokenizes again only when that record no longer matches.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.config import PipelineConfig
from pipeline.errors import UserError
from pipeline.fileio import require_file
from pipeline.run_dir import TOKENIZER, Source, file_sha256, fresh_tokens, open_tokens, save_report, save_run, save_tokens
from submissions.decoder import codec
from tokenizer import load_tokenizer, train_tokenizer


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
    source = Source(path=str(data_path.resolve()), size=data_path.stat().st_size, sha256=file_sha256(data_path))
    if not (resume and fresh_tokens(run, source.sha256, config.tokenizer)):  # tokenize once per data and tokenizer
        _tokenize(data_path, run, config, source)
    save_run(run, config, source)
    tokens = open_tokens(run)  # a memory map: training reads its windows, never holds the sequence
    vocab_size = load_tokenizer((run / TOKENIZER).read_bytes()).vocab_size
    bytes_per_token = source.size / max(len(tokens), 1)
    report = {
        "bytes": source.size,
        "tokens": int(len(tokens)),
        "vocab_size": vocab_size,
        "bytes_per_token": bytes_per_token,
        "seconds": time.perf_counter() - started,
    }
    save_report(run, report)
    if config.neural_model() is not None:
        from pipeline.neural import train_neural

        n_streams = codec.effective_streams(len(tokens), config.coder.n_streams)
        report.update(train_neural(tokens, vocab_size, config.neural_model(), run, n_streams, bytes_per_token, device, resume, progress))
        report["seconds"] = time.perf_counter() - started
        save_report(run, report)
    return TrainResult(run, source.size, int(len(tokens)), vocab_size, report["seconds"])


def _tokenize(data_path: Path, run: Path, config: PipelineConfig, source: Source) -> None:
    """Train the tokenizer on the file and write it with the file's ids into the run. The data
    and ids in memory are dropped on return: later stages read the id file."""
    data = data_path.read_bytes()
    if len(data) != source.size:
        raise UserError(f"{data_path} changed while it was read")
    tokenizer = train_tokenizer(data, config.tokenizer.vocab_size, config.tokenizer.model_type)
    tokens = tokenizer.encode(data)
    if tokenizer.decode(tokens) != data:  # a bug, never a user error: refuse to go on
        raise RuntimeError("tokenizer round trip failed on this file")
    dtype = np.uint16 if tokenizer.vocab_size <= 1 << 16 else np.int32
    save_tokens(run, tokens.astype(dtype), source.sha256, tokenizer.model_proto(), config.tokenizer)
