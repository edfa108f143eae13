"""What `pipeline train` leaves in a run folder and `pipeline pack` reads back."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from pipeline.config import PipelineConfig, TokenizerConfig
from submissions.errors import UserError
from submissions.fileio import atomic_path, atomic_write_bytes, atomic_write_text

CONFIG = "config.json"
SOURCE = "source.json"
TOKENIZER = "tokenizer.model"
TOKENS = "tokens.npy"  # the token ids (uint16, or int32 past 65536 ids), memory-mapped by training
TOKEN_RECORD = "tokens.json"  # what the ids were made from (data, tokenizer and its config), their count and sha256
REPORT = "train.json"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Source:
    """The file a run was trained on, so pack can find it and prove it unchanged."""

    path: str
    size: int
    sha256: str

    def locate(self, override: Path | None = None) -> Path:
        """The data file (moved: `override`), if it exists and has the run's size; its sha256
        is proved while pack reads it (pipeline/run_check.py)."""
        path = Path(override or self.path)
        if not path.is_file():
            raise UserError(f"the run's data file {path} is missing (pass --data FILE)")
        if path.stat().st_size != self.size:
            raise UserError(f"{path} is not the file this run was trained on (size or sha256 differ)")
        return path


def save_run(run: Path, config: PipelineConfig, source: Source) -> None:
    run.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run / CONFIG, config.to_json())
    atomic_write_text(run / SOURCE, json.dumps(source.__dict__, indent=2))


def save_token_chunks(run: Path, chunks: Iterable[np.ndarray], dtype, data_sha256: str, tokenizer_proto: bytes, tokenizer: TokenizerConfig, case_marks=None) -> int:
    """The tokenizer and the id file, each written atomically, then their record. The ids come
    in chunks (a file tokenized piece by piece), appended to the .npy file as they come; its
    header is finished at the end. The old record goes first and the new one is written only
    after the last chunk (the chunk source raises if the file changed while read), so a crash
    or a refusal half way leaves ids without a record: stale, refused by pack, rebuilt on
    resume. case_marks: the marks of folded capitals (tokenizer/case.py), None if not folded.
    Returns the number of ids."""
    run.mkdir(parents=True, exist_ok=True)
    (run / TOKEN_RECORD).unlink(missing_ok=True)
    atomic_write_bytes(run / TOKENIZER, tokenizer_proto)
    dtype = np.dtype(dtype)
    n_tokens = 0
    with atomic_path(run / TOKENS) as tmp:
        with open(tmp, "wb") as f:
            header_size = _write_npy_header(f, dtype, 1 << 50)  # room for any count; rewritten below
            for chunk in chunks:
                f.write(np.ascontiguousarray(chunk, dtype=dtype).tobytes())
                n_tokens += len(chunk)
            f.seek(0)
            if _write_npy_header(f, dtype, n_tokens) != header_size:
                raise RuntimeError("npy header changed size")  # cannot happen: both pad to 128 bytes
        tokens_sha256 = file_sha256(tmp)
    record = token_record(data_sha256, tokenizer_proto, tokenizer, n_tokens, tokens_sha256, case_marks)
    atomic_write_text(run / TOKEN_RECORD, json.dumps(record, indent=2))
    return n_tokens


def _write_npy_header(f, dtype: np.dtype, n: int) -> int:
    """A version 1.0 .npy header for a 1-D array of n values; its size in bytes."""
    start = f.tell()
    np.lib.format.write_array_header_1_0(f, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (n,)})
    return f.tell() - start


def token_record(data_sha256: str, tokenizer_proto: bytes, tokenizer: TokenizerConfig, n_tokens: int, tokens_sha256: str, case_marks=None) -> dict:
    """What the ids were made from (data, tokenizer and its config, the marks of folded
    capitals or None) and the ids' own hash, which the checkpoint and the exported model name
    as what they were trained on."""
    return {
        "data_sha256": data_sha256,
        "tokenizer_sha256": hashlib.sha256(tokenizer_proto).hexdigest(),
        "tokenizer": dataclasses.asdict(tokenizer),
        "case": None if case_marks is None else [int(mark) for mark in case_marks],
        "n_tokens": int(n_tokens),
        "tokens_sha256": tokens_sha256,
    }


def open_tokens(run: Path) -> np.ndarray:
    """The run's token ids as a read-only memory map: pages are read as they are used."""
    return np.load(Path(run) / TOKENS, mmap_mode="r", allow_pickle=False)


def read_token_record(run: Path) -> dict | None:
    """The ids' record if it matches the files on disk (tokenizer and ids hashed again), else None."""
    run = Path(run)
    try:
        record = json.loads((run / TOKEN_RECORD).read_text())
        proto = (run / TOKENIZER).read_bytes()
        n_tokens = len(open_tokens(run))
        tokens_sha256 = file_sha256(run / TOKENS)
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("tokens_sha256") != tokens_sha256:
        return None
    if record.get("tokenizer_sha256") != hashlib.sha256(proto).hexdigest() or record.get("n_tokens") != n_tokens:
        return None
    return record


def fresh_tokens(run: Path, data_sha256: str, tokenizer: TokenizerConfig) -> bool:
    """Whether the run's ids were made from this data by its tokenizer, trained with this config."""
    record = read_token_record(run)
    return record is not None and record["data_sha256"] == data_sha256 and record.get("tokenizer") == dataclasses.asdict(tokenizer)


def save_report(run: Path, report: dict) -> None:
    atomic_write_text(run / REPORT, json.dumps(report, indent=2))


def load_report(run: Path) -> dict:
    path = Path(run) / REPORT
    return json.loads(path.read_text()) if path.is_file() else {}


def load_run(run: Path) -> tuple[PipelineConfig, Source, bytes, np.ndarray]:
    run = Path(run)
    missing = [name for name in (CONFIG, SOURCE, TOKENIZER, TOKENS) if not (run / name).is_file()]
    if missing:
        raise UserError(f"{run} is not a finished run of `pipeline train` (missing {', '.join(missing)})")
    config = PipelineConfig.from_dict(json.loads((run / CONFIG).read_text()))
    source = Source(**json.loads((run / SOURCE).read_text()))
    return config, source, (run / TOKENIZER).read_bytes(), open_tokens(run)
