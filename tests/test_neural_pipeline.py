"""`pipeline train --model neural` -> `pipeline pack` -> the archive restores itself (CPU)."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from pipeline.config import CoderConfig, NeuralModelConfig, PipelineConfig, TokenizerConfig
from pipeline.errors import UserError
from pipeline.pack import pack
from pipeline.train import train
from submissions.archive import inspect

TINY = PipelineConfig(
    tokenizer=TokenizerConfig(vocab_size=320),
    model=NeuralModelConfig(d_model=32, n_layers=1, n_heads=2, context=8, max_minutes=None, max_steps=30, batch_size=4),
    coder=CoderConfig(n_streams=4),
)


def test_neural_run_packs_and_restores(tmp_path, text_sample):
    data = tmp_path / "data.txt"
    data.write_bytes(text_sample[:6000])
    result = train(data, tmp_path / "run", TINY, progress=False)
    assert (tmp_path / "run" / "model.bin").stat().st_size > 0
    packed = pack(tmp_path / "run", tmp_path / "n.arc", progress=False)
    assert packed.float_integer_gap is not None and abs(packed.float_integer_gap) < 0.05
    info = inspect(tmp_path / "n.arc")
    assert info.parts["model"] > 0 and info.header["model"]["kind"] == "neural"
    assert info.runtime == ["numpy"]
    with zipfile.ZipFile(tmp_path / "n.arc") as zf:
        assert "decoder/neural_model.py" in zf.namelist() and "decoder/context_model.py" not in zf.namelist()
    out = tmp_path / "restored"
    env_run = subprocess.run(
        [sys.executable, "-I", str(tmp_path / "n.arc"), "-o", str(out)], capture_output=True, text=True, timeout=300,
    )
    assert env_run.returncode == 0, env_run.stderr
    assert out.read_bytes() == data.read_bytes()
    assert result.n_tokens > 0


def test_neural_training_needs_a_budget(tmp_path):
    data = tmp_path / "data.txt"
    data.write_bytes(b"x" * 100)
    no_budget = PipelineConfig(model=NeuralModelConfig(max_minutes=None, max_steps=None))
    with pytest.raises(UserError, match="budget"):
        train(data, tmp_path / "run", no_budget, progress=False)
