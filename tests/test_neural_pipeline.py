"""`pipeline train --model neural` -> `pipeline pack` -> the archive restores itself (CPU)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import CoderConfig, MixingModelConfig, NeuralModelConfig, PipelineConfig, TokenizerConfig
from submissions.errors import UserError
from pipeline.pack import pack
from pipeline.unpack import unpack
from pipeline.run_dir import TOKEN_RECORD, file_sha256, fresh_tokens, open_tokens
from pipeline.train import train
from submissions.archive import archive_decoder, inspect
from submissions.decoder.neural_model import unpack_weights

TINY = PipelineConfig(
    tokenizer=TokenizerConfig(vocab_size=320),
    model=NeuralModelConfig(d_model=32, n_layers=1, n_heads=2, context=8, max_minutes=None, max_steps=30, batch_size=4),
    coder=CoderConfig(n_streams=4),
)


@pytest.mark.slow
@pytest.mark.parametrize("bits", [8, 4])
def test_neural_run_packs_and_restores(tmp_path, text_sample, bits):
    data = tmp_path / "data.txt"
    data.write_bytes(text_sample[:6000])
    config = dataclasses.replace(TINY, model=dataclasses.replace(TINY.model, weight_bits=bits, embed_bits=bits))
    result = train(data, tmp_path / "run", config, progress=False)
    weights = unpack_weights((tmp_path / "run" / "model.bin").read_bytes())
    assert np.abs(weights["wte.w"]).max() == (7 if bits == 4 else 127)
    packed = pack(tmp_path / "run", tmp_path / "n.arc", progress=False)
    assert packed.float_integer_gap is not None and abs(packed.float_integer_gap) < 0.05
    info = inspect(tmp_path / "n.arc")
    assert info.parts["model"] > 0 and info.header["model"]["kind"] == "neural"
    assert info.runtime == ["numpy"]
    modules = archive_decoder(tmp_path / "n.arc")
    assert "decoder.neural_model" in modules and "decoder.context_model" not in modules
    out = tmp_path / "restored"
    env_run = subprocess.run(
        [sys.executable, "-I", str(tmp_path / "n.arc"), "-o", str(out)], capture_output=True, text=True, timeout=300,
    )
    assert env_run.returncode == 0, env_run.stderr
    assert out.read_bytes() == data.read_bytes()
    assert result.n_tokens > 0


def test_mix_with_a_neural_input_packs_and_restores(tmp_path, text_sample):
    """The mixing model takes the trained transformer as one more input: weights and the
    neural modules travel in the archive, which restores itself byte for byte."""
    data = tmp_path / "data.txt"
    data.write_bytes(text_sample[:6000])
    config = dataclasses.replace(TINY, model=MixingModelConfig(table_bits=16, neural=TINY.model))
    assert PipelineConfig.from_dict(json.loads(config.to_json())) == config
    train(data, tmp_path / "run", config, progress=False)
    packed = pack(tmp_path / "run", tmp_path / "m.arc", progress=False)
    assert packed.float_integer_gap is None  # the neural model's cross entropy is not what a mix codes
    info = inspect(tmp_path / "m.arc")
    assert info.parts["model"] > 0 and info.header["model"]["kind"] == "mix"
    assert info.header["model"]["neural"]["vocab_size"] == 320
    modules = archive_decoder(tmp_path / "m.arc")
    assert {"decoder.mixing_model", "decoder.neural_model"} <= set(modules)
    # the decoder the archive carries, run in this process (an archive of the mixing model
    # restores itself in a separate process in test_archive.py)
    unpack(tmp_path / "m.arc", tmp_path / "restored", progress=False)
    assert (tmp_path / "restored").read_bytes() == data.read_bytes()


def test_with_neural_needs_the_mix_model(tmp_path):
    data = tmp_path / "data.txt"
    data.write_bytes(b"x" * 100)
    result = CliRunner().invoke(app, ["train", str(data), "-o", str(tmp_path / "r"), "--model", "context", "--with-neural"])
    assert result.exit_code == 2 and "--with-neural" in result.output


def test_neural_training_needs_a_budget(tmp_path):
    data = tmp_path / "data.txt"
    data.write_bytes(b"x" * 100)
    no_budget = PipelineConfig(model=NeuralModelConfig(max_minutes=None, max_steps=None))
    with pytest.raises(UserError, match="budget"):
        train(data, tmp_path / "run", no_budget, progress=False)


def test_training_reads_the_ids_through_a_memory_map(tmp_path, text_sample, monkeypatch):
    import models.training

    seen = []
    real = models.training.train_model

    def spy(tokens, *args, **kwargs):
        seen.append(tokens)
        return real(tokens, *args, **kwargs)

    monkeypatch.setattr(models.training, "train_model", spy)
    data = tmp_path / "data.txt"
    data.write_bytes(text_sample[:3000])
    config = dataclasses.replace(TINY, model=dataclasses.replace(TINY.model, max_steps=2))
    train(data, tmp_path / "run", config, progress=False)
    assert isinstance(seen[0], np.memmap) and seen[0].dtype == np.uint16
    np.testing.assert_array_equal(seen[0], open_tokens(tmp_path / "run"))
    record = json.loads((tmp_path / "run" / TOKEN_RECORD).read_text())
    assert record["n_tokens"] == len(seen[0]) and record["data_sha256"] == file_sha256(data)


def test_resume_reuses_fresh_ids_and_rebuilds_stale_ones(tmp_path, text_sample, monkeypatch):
    import pipeline.train as stage

    data, run = tmp_path / "data.txt", tmp_path / "run"
    data.write_bytes(text_sample[:3000])
    short = dataclasses.replace(TINY, model=dataclasses.replace(TINY.model, max_steps=2))
    train(data, run, short, progress=False)
    ids = np.array(open_tokens(run))
    longer = dataclasses.replace(TINY, model=dataclasses.replace(TINY.model, max_steps=4))
    tokenize = stage._tokenize
    monkeypatch.setattr(stage, "_tokenize", lambda *a: pytest.fail("fresh ids were tokenized again"))
    train(data, run, longer, resume=True, progress=False)  # same data and tokenizer: no tokenizing
    assert json.loads((run / "train.json").read_text())["tokens"] == len(ids)

    calls = []
    monkeypatch.setattr(stage, "_tokenize", lambda *a: calls.append(1) or tokenize(*a))
    data.write_bytes(text_sample[:2000])  # another file under the same name: stale ids
    with pytest.raises(UserError, match="trained on other token ids"):  # never the old weights on new data
        train(data, run, longer, resume=True, progress=False)
    assert calls and len(open_tokens(run)) < len(ids)
    train(data, run, longer, force=True, progress=False)
    (run / "tokenizer.model").write_bytes(b"damaged")  # ids made by a tokenizer that is gone
    assert not fresh_tokens(run, file_sha256(data), longer.tokenizer)
    train(data, run, longer, resume=True, progress=False)  # the same ids again: the checkpoint fits them
    assert len(calls) == 3 and fresh_tokens(run, file_sha256(data), longer.tokenizer)


def test_train_options_reach_the_config(tmp_path, text_sample):
    data = tmp_path / "data.txt"
    data.write_bytes(text_sample[:3000])
    args = ["train", str(data), "-o", str(tmp_path / "run"), "--model", "neural", "--vocab", "320", "--d-model", "32",
            "--layers", "1", "--heads", "2", "--context", "8", "--max-steps", "2", "--batch-size", "2", "--streams", "2",
            "--precision", "bf16", "--weight-bits", "4", "--embed-bits", "4", "-q"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    model = json.loads((tmp_path / "run" / "config.json").read_text())["model"]
    assert (model["precision"], model["weight_bits"], model["embed_bits"]) == ("bf16", 4, 4)
    assert json.loads((tmp_path / "run" / "model.json").read_text())["weight_bits"] == 4
    for option, value in (("--precision", "fp16"), ("--weight-bits", "2")):
        bad = CliRunner().invoke(app, [*args[:-1], option, value, "--force", "-q"])
        lines = [line for line in bad.output.splitlines() if line.strip()]
        assert bad.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), bad.output
