"""What `pipeline pack` proves about a run folder before it codes a single token.

Every artifact names the hashes of what it was made from (tokens.json: data, tokenizer and
ids; export.json: the ids and the neural config the model was trained with), and each check
here hashes the files themselves, so no crash, interrupted --force or edited file can make a
mix of two runs look consistent. Last, one pass over the data file proves that the ids,
turned back into bytes through the very table the archive will carry, are the file: an
archive that could not restore it is never written.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np

from pipeline.config import PipelineConfig
from pipeline.run_dir import TOKEN_RECORD, TOKENS, Source, read_token_record
from submissions.decoder.tokens import iter_detokenized, unfold_case
from submissions.errors import UserError

RETRAIN = "run `pipeline train --resume` to rebuild it, or `--force` to start over"


def check_tokens(run: Path, config: PipelineConfig, source: Source) -> dict:
    """The ids' record, checked against the files, the run's data and its tokenizer config."""
    record = read_token_record(run)
    if record is None:
        raise UserError(f"{run / TOKENS} has no record that matches it ({TOKEN_RECORD}): an interrupted or older `pipeline train`; {RETRAIN}")
    if record["data_sha256"] != source.sha256:
        raise UserError(f"{run / TOKENS} was made from another data file than the run's {source.path}; {RETRAIN}")
    if record.get("tokenizer") != dataclasses.asdict(config.tokenizer):
        raise UserError(f"{run / TOKENS} was made with another tokenizer config than the run's; {RETRAIN}")
    return record


def check_model(run: Path, config: PipelineConfig, tokens_sha256: str, export_record: dict | None) -> None:
    """A neural run's exported model was trained on these ids with this config (export_record:
    pipeline.neural.read_export_record, None where it is missing or does not match the files)."""
    if config.neural_model() is None:
        return
    if export_record is None:
        raise UserError(f"{run} has no exported neural model that matches its files: training did not finish; {RETRAIN}")
    if export_record.get("tokens_sha256") != tokens_sha256:
        raise UserError(f"{run}'s neural model was trained on other token ids than the run's; {RETRAIN}")
    if export_record.get("neural") != dataclasses.asdict(config.neural_model()):
        raise UserError(f"{run}'s neural model was trained with another config than the run's; {RETRAIN}")


def check_ids_restore(tokens: np.ndarray, table: list[bytes], source: Source, data_path: Path, case_marks=None, block: int = 1 << 20) -> None:
    """Read the data file once: its sha256 must be the run's, and the ids, detokenized with
    `table` (unpacked from the blob the archive will carry) and their capitals unfolded (with
    case_marks, unless None), must give back exactly its bytes."""
    digest, position, mismatch = hashlib.sha256(), 0, None
    pieces = iter_detokenized(tokens, table)
    try:
        with open(data_path, "rb") as f:
            for piece in pieces if case_marks is None else unfold_case(pieces, case_marks):
                data = f.read(len(piece))
                digest.update(data)
                if mismatch is None and data != piece:
                    mismatch = position + _first_difference(data, piece)
                position += len(data)
                if len(data) < len(piece):
                    break
            while rest := f.read(block):  # the ids may stop short of the file
                digest.update(rest)
                mismatch = position if mismatch is None else mismatch
                position += len(rest)
    except OSError as exc:
        raise UserError(f"cannot read the data file {data_path}: {exc.strerror or exc}") from None
    except ValueError as exc:  # an id outside the table
        raise UserError(f"the run's token ids do not fit its tokenizer ({exc}); {RETRAIN}") from None
    if position != source.size or digest.hexdigest() != source.sha256:
        raise UserError(f"{data_path} is not the file this run was trained on (size or sha256 differ)")
    if mismatch is not None:
        raise UserError(f"the run's token ids do not give back {data_path} (first wrong byte at {mismatch}): the archive could not restore it; {RETRAIN}")


def _first_difference(a: bytes, b: bytes) -> int:
    n = min(len(a), len(b))
    diff = np.flatnonzero(np.frombuffer(a[:n], np.uint8) != np.frombuffer(b[:n], np.uint8))
    return int(diff[0]) if len(diff) else n
