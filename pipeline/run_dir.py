"""What `pipeline train` leaves in a run folder and `pipeline pack` reads back."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.config import PipelineConfig
from pipeline.errors import UserError
from pipeline.fileio import atomic_path, atomic_write_bytes, atomic_write_text

CONFIG = "config.json"
SOURCE = "source.json"
TOKENIZER = "tokenizer.model"
TOKENS = "tokens.npy"
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

    def load(self, override: Path | None = None) -> bytes:
        path = Path(override or self.path)
        if not path.is_file():
            raise UserError(f"the run's data file {path} is missing (pass --data FILE)")
        data = path.read_bytes()
        if len(data) != self.size or hashlib.sha256(data).hexdigest() != self.sha256:
            raise UserError(f"{path} is not the file this run was trained on (size or sha256 differ)")
        return data


def save_run(run: Path, config: PipelineConfig, source: Source, tokenizer_proto: bytes, tokens: np.ndarray, report: dict) -> None:
    run.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run / CONFIG, config.to_json())
    atomic_write_text(run / SOURCE, json.dumps(source.__dict__, indent=2))
    atomic_write_bytes(run / TOKENIZER, tokenizer_proto)
    with atomic_path(run / TOKENS) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, tokens)
    save_report(run, report)


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
    tokens = np.load(run / TOKENS, allow_pickle=False)
    return config, source, (run / TOKENIZER).read_bytes(), tokens
