"""`pipeline pack`: code the file with the run's tokenizer and model into one archive."""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.fileio import check_output
from pipeline.progress import progress_bar
from pipeline.errors import UserError
from pipeline.run_dir import load_report, load_run
from submissions.archive import archive_parts, write_archive
from submissions.decoder import codec
from submissions.decoder.container import MODEL, PAYLOAD, TOKENIZER, sha256_hex
from submissions.decoder.model_registry import build_model, runtime_of
from tokenizer import load_tokenizer


@dataclass(frozen=True)
class PackResult:
    archive: Path
    total_bytes: int
    parts: dict
    original_size: int
    n_tokens: int
    seconds: float  # encoding time
    float_code_bits: float | None = None  # the float QAT model's cross entropy (neural runs)
    integer_code_bits: float = 0.0  # the integer model's -log2 code length (what the coder approaches)
    payload_bits: int = 0  # what the coder wrote: the above plus a few bytes per stream

    @property
    def float_integer_gap(self) -> float | None:
        """Relative excess of the integer model's code length over the float model's cross entropy."""
        if not self.float_code_bits:
            return None
        return self.integer_code_bits / self.float_code_bits - 1.0

    @property
    def bits_per_byte(self) -> float:
        return 8 * self.total_bytes / max(self.original_size, 1)


def pack(
    run: Path,
    out: Path,
    data_path: Path | None = None,
    force: bool = False,
    progress: bool = True,
    backend: str | None = None,
    device: str | None = None,
) -> PackResult:
    """Encode the run's tokens with its model; `backend`/`device` choose where a neural model
    runs while encoding (numpy, torch on CPU or CUDA), which never changes the archive bytes."""
    run = Path(run)
    config, source, proto, tokens = load_run(run)
    check_output(Path(out), force, inputs=(Path(source.path),))
    data = source.load(data_path)
    tokenizer = load_tokenizer(proto)
    tokens = tokens.astype(np.int64)
    started = time.perf_counter()
    n_streams = codec.effective_streams(len(tokens), config.coder.n_streams)
    prob_bits = config.coder.prob_bits
    model_header, weights = _model_of(run, config)
    runtime_choice = {k: v for k, v in (("backend", backend), ("device", device)) if v}
    model = build_model(dict(model_header, **runtime_choice), tokenizer.vocab_size, n_streams, prob_bits, weights, token_bytes=tokenizer.table)
    with progress_bar("encoding", progress) as update:
        payload, ideal_bits = codec.encode_with_cost(model, tokens, n_streams, prob_bits, update)
    seconds = time.perf_counter() - started
    header = {
        "config": config.to_dict(),
        "model": model_header,
        "original": {"size": len(data), "sha256": sha256_hex(data)},
        "n_tokens": int(len(tokens)),
        "n_streams": n_streams,
        "runtime": runtime_of(model_header),
        "packed_with": {"python": platform.python_version(), "numpy": np.__version__},
    }
    sections = {TOKENIZER: tokenizer.table_blob(), PAYLOAD: payload}
    if weights:
        sections[MODEL] = weights
    total = write_archive(Path(out), header, sections, force)
    # the float/integer comparison holds for a neural model alone (a mixing model codes otherwise)
    float_bits = load_report(run).get("float_code_bits") if config.model.kind == "neural" else None
    return PackResult(Path(out), total, archive_parts(Path(out)), len(data), int(len(tokens)), seconds, float_bits, ideal_bits, 8 * len(payload))


def _model_of(run: Path, config) -> tuple[dict, bytes]:
    """(model config as the decoder reads it, weights blob or b"")."""
    if config.neural_model() is None:
        return config.to_dict()["model"], b""
    from pipeline.neural import load_integer_model

    exported = load_integer_model(run)
    if exported is None:
        raise UserError(f"{run} has no exported neural model (run `pipeline train` to the end, or --resume it)")
    if config.model.kind == "neural":
        return exported
    neural_header, weights = exported  # the mixing model carries the neural model's decoder config
    return dict(config.to_dict()["model"], neural=neural_header), weights
