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

from pipeline.config import PipelineConfig
from pipeline.distributed import all_gather, launched_world, local_processes, process_group, refuse_too_few_gpus, wait_for_main
from submissions.errors import UserError
from submissions.fileio import files_of, require_file, same_file
from pipeline.run_dir import TOKENIZER, TOKENS, Source, file_sha256, fresh_tokens, open_tokens, read_token_record, save_report, save_run
from pipeline.tokenize_file import tokenize_file
from submissions.decoder import encoding
from tokenizer import load_tokenizer


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
    """Tokenize `data_path` into the run folder `run` and train its model. Launched by torchrun
    (`pipeline train --nproc N`), every process calls this: rank 0 tokenizes and writes every
    file, all ranks train the neural model together (DistributedDataParallel)."""
    config = (config or PipelineConfig()).validate()
    use_cuda = False
    if launched_world().distributed and config.neural_model() is not None and device != "cpu":
        import torch

        use_cuda = torch.cuda.is_available()
        refuse_too_few_gpus(local_processes(), device)  # every rank alike, before any joins
    with process_group(use_cuda) as world:
        started = time.perf_counter()
        run, report, failure = Path(run), {}, None
        if world.is_main:  # the other ranks wait for the run files in wait_for_main below
            try:
                data_path = check_inputs(data_path, run, config, force, resume, world.size)
                source = Source(path=str(data_path.resolve()), size=data_path.stat().st_size, sha256=file_sha256(data_path))
                if not (resume and fresh_tokens(run, source.sha256, config.tokenizer)):  # once per data and tokenizer
                    _tokenize(data_path, run, config, source, progress)
                save_run(run, config, source)
                n_tokens = len(open_tokens(run))
                record = read_token_record(run)
                if record is None:  # cannot happen: the ids and their record were just written
                    raise UserError(f"{run / TOKENS} does not match its record; run `pipeline train --force`")
                report = {
                    "bytes": source.size,
                    "tokens": int(n_tokens),
                    "vocab_size": load_tokenizer((run / TOKENIZER).read_bytes()).vocab_size,
                    "bytes_per_token": source.size / max(n_tokens, 1),
                    "seconds": time.perf_counter() - started,
                    "tokens_sha256": record["tokens_sha256"],
                }
                save_report(run, report)
            except UserError as exc:
                if not world.distributed:
                    raise
                failure = str(exc)  # every rank refuses with rank 0's message
        failure, report = wait_for_main((failure, report))
        if failure:
            raise UserError(failure)
        try:
            tokens = open_tokens(run)  # a memory map: training reads its windows, never holds the sequence
        except (OSError, ValueError):
            failure = f"rank {world.rank} cannot read {run / TOKENS} (several nodes need the run folder on a shared file system)"
        failures = [f for f in all_gather(failure) if f]
        if failures:
            raise UserError(failures[0])
        if config.neural_model() is not None:
            from pipeline.neural import train_neural

            n_streams = encoding.effective_streams(len(tokens), config.streams_for(len(tokens)))
            facts = train_neural(tokens, report["tokens_sha256"], report["vocab_size"], config.neural_model(), run, n_streams, report["bytes_per_token"], device, resume, progress)
            if world.is_main:  # the other ranks return as soon as training ends: rank 0 exports alone
                report.update(facts, seconds=time.perf_counter() - started)
                save_report(run, report)
    return TrainResult(run, report["bytes"], report["tokens"], report["vocab_size"], report["seconds"])


def check_inputs(data_path: Path, run: Path, config: PipelineConfig, force: bool, resume: bool, processes: int = 1) -> Path:
    """The data file, or the user mistake train() refuses before any work (`pipeline train --nproc`
    asks before it starts the processes, so a mistake is one line, not one per process)."""
    data_path = require_file(Path(data_path), "data file")
    run = Path(run)
    if run.exists() and not run.is_dir():
        raise UserError(f"{run} is a file, not a run folder")
    if any(same_file(data_path, artifact) for artifact in files_of(run)):
        raise UserError(f"the data file {data_path} is inside the run folder {run}, which train rewrites")
    if run.exists() and any(run.iterdir()) and not (force or resume):
        raise UserError(f"{run} already exists and is not empty (use --force to replace it, or --resume)")
    neural = config.neural_model()
    if neural is not None and neural.batch_size % processes:
        raise UserError(f"batch size {neural.batch_size} does not split evenly across {processes} processes (the global batch is shared out)")
    return data_path


def _tokenize(data_path: Path, run: Path, config: PipelineConfig, source: Source, progress: bool = True) -> None:
    """Train the tokenizer on a sample of the file and write it with the file's ids into the
    run, chunk by chunk (pipeline/tokenize_file.py): later stages read the id file."""
    tokenize_file(data_path, run, config, source, progress)
