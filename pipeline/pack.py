"""`pipeline pack`: code the file with the run's tokenizer and model into one archive."""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.fileio import check_output
from pipeline.progress import progress_bar
from pipeline.run_dir import load_run
from submissions.archive import archive_parts, write_archive
from submissions.decoder import codec
from submissions.decoder.container import PAYLOAD, TOKENIZER
from submissions.decoder.container import sha256_hex
from submissions.decoder.model_registry import build_model, runtime_of
from tokenizer import load_tokenizer


@dataclass(frozen=True)
class PackResult:
    archive: Path
    total_bytes: int
    parts: dict
    original_size: int
    n_tokens: int
    seconds: float

    @property
    def bits_per_byte(self) -> float:
        return 8 * self.total_bytes / max(self.original_size, 1)


def pack(run: Path, out: Path, data_path: Path | None = None, force: bool = False, progress: bool = True) -> PackResult:
    config, source, proto, tokens = load_run(Path(run))
    check_output(Path(out), force, inputs=(Path(source.path),))
    data = source.load(data_path)
    tokenizer = load_tokenizer(proto)
    tokens = tokens.astype(np.int64)
    started = time.perf_counter()
    n_streams = codec.effective_streams(len(tokens), config.coder.n_streams)
    prob_bits = config.coder.prob_bits
    model_config = config.to_dict()["model"]
    model = build_model(model_config, tokenizer.vocab_size, n_streams, prob_bits)
    with progress_bar("encoding", progress) as update:
        payload = codec.encode(model, tokens, n_streams, prob_bits, update)
    header = {
        "config": config.to_dict(),
        "original": {"size": len(data), "sha256": sha256_hex(data)},
        "n_tokens": int(len(tokens)),
        "n_streams": n_streams,
        "runtime": runtime_of(model_config),
        "packed_with": {"python": platform.python_version(), "numpy": np.__version__},
    }
    sections = {TOKENIZER: tokenizer.table_blob(), PAYLOAD: payload}
    total = write_archive(Path(out), header, sections, force)
    seconds = time.perf_counter() - started
    return PackResult(Path(out), total, archive_parts(Path(out)), len(data), int(len(tokens)), seconds)
