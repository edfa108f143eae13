"""Shared test helper: a small run and its archive (the context model: its kernels compile in
a second in each restoring process)."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import CoderConfig, ContextModelConfig, PipelineConfig, TokenizerConfig
from pipeline.pack import pack
from pipeline.train import train

SMALL = PipelineConfig(tokenizer=TokenizerConfig(vocab_size=300), model=ContextModelConfig(), coder=CoderConfig(n_streams=2))


def small_archive(folder: Path, data: bytes) -> tuple[Path, Path, Path]:
    """(data file, run folder, archive) for `data`, made in `folder`."""
    source = folder / "data.txt"
    source.write_bytes(data)
    train(source, folder / "run", SMALL, progress=False)
    pack(folder / "run", folder / "x.arc", progress=False)
    return source, folder / "run", folder / "x.arc"
