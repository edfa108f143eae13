"""Run folders that cannot go stale: a crash at any point of `pipeline train` (simulated by
raising where kill -9 would strike; what it leaves on disk is the same) leaves a folder that
`pipeline pack` refuses in one line, never one it codes into an archive that cannot restore;
`--resume` never continues a checkpoint on other data."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import pipeline.neural
import pipeline.run_dir
import pipeline.tokenize_file
from pipeline.config import CoderConfig, NeuralModelConfig, PipelineConfig, TokenizerConfig
from pipeline.pack import pack
from pipeline.run_dir import TOKEN_RECORD, TOKENS, file_sha256, open_tokens, token_record
from pipeline.train import train
from small_run import SMALL
from submissions.errors import UserError
TINY_NEURAL = PipelineConfig(
    tokenizer=TokenizerConfig(vocab_size=300),
    model=NeuralModelConfig(d_model=16, n_layers=1, n_heads=2, context=8, max_minutes=None, max_steps=2, batch_size=2),
    coder=CoderConfig(n_streams=2),
)


class Killed(BaseException):
    """Where kill -9 strikes: nothing after this point runs (not even `except Exception`)."""


def crash(*args, **kwargs):
    raise Killed


def crash_on(name: str, real):
    """`real` (a file writer), raising Killed instead when it would write the file `name`."""

    def writer(path, *args, **kwargs):
        if path.name == name:
            raise Killed
        return real(path, *args, **kwargs)

    return writer


def refused(run, tmp_path, match: str | None = None) -> str:
    """pack refuses the run in one line and writes no archive."""
    out = tmp_path / "refused.arc"
    with pytest.raises(UserError, match=match) as caught:
        pack(run, out, progress=False)
    assert "\n" not in str(caught.value) and not out.exists()
    return str(caught.value)


@pytest.fixture
def two_files(tmp_path, text_sample):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_bytes(text_sample[:3000])
    b.write_bytes(text_sample[10_000:13_000])
    return a, b


def test_ids_of_a_file_that_changed_while_read_are_never_recorded(tmp_path, two_files, monkeypatch):
    """The file changes while it is tokenized and changes back before pack: its sha256 is the
    run's again, so only the bytes actually read can tell."""
    a, _ = two_files
    train(a, tmp_path / "run", SMALL, progress=False)  # an earlier run of the same file
    real = pipeline.tokenize_file.text_chunks

    def changing(path, *args):
        for chunk in real(path, *args):
            yield chunk.replace(b"e", b"E")  # what was on disk while it was read

    monkeypatch.setattr(pipeline.tokenize_file, "text_chunks", changing)
    with pytest.raises(UserError, match="changed while it was read"):
        train(a, tmp_path / "run", SMALL, force=True, progress=False)
    assert not (tmp_path / "run" / TOKEN_RECORD).exists()
    monkeypatch.undo()
    refused(tmp_path / "run", tmp_path, "no record")


def test_ids_that_do_not_give_back_the_data_are_refused_whatever_the_records_say(tmp_path, two_files):
    """The last line of defence: records made consistent by hand (or by a bug) over wrong ids."""
    a, _ = two_files
    run = tmp_path / "run"
    train(a, run, SMALL, progress=False)
    ids = np.array(open_tokens(run))
    ids[len(ids) // 2], ids[len(ids) // 2 + 1] = ids[len(ids) // 2 + 1], ids[len(ids) // 2] + (ids[len(ids) // 2] == ids[len(ids) // 2 + 1])
    np.save(run / TOKENS, ids)
    record = json.loads((run / TOKEN_RECORD).read_text())
    proto = (run / "tokenizer.model").read_bytes()
    record = token_record(record["data_sha256"], proto, SMALL.tokenizer, len(ids), file_sha256(run / TOKENS))
    (run / TOKEN_RECORD).write_text(json.dumps(record))
    message = refused(run, tmp_path, "do not give back")
    assert "first wrong byte" in message


CRASH_POINTS = {
    "after the tokenizer": ("pipeline.run_dir.atomic_path", TOKENS),
    "half way through the ids": ("chunks", None),
    "after the ids, before their record": ("pipeline.run_dir.atomic_write_text", TOKEN_RECORD),
    "after the record, before config and source": ("pipeline.train.save_run", None),
}


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_a_crash_in_train_force_over_an_old_run_leaves_a_run_pack_refuses(tmp_path, two_files, monkeypatch, point):
    a, b = two_files
    run = tmp_path / "run"
    train(a, run, SMALL, progress=False)  # the old run: a consistent folder for a.txt
    target, name = CRASH_POINTS[point]
    if target == "chunks":
        real = pipeline.tokenize_file._encoded_chunks

        def half(*args):
            chunks = real(*args)
            yield next(chunks)[:10]
            raise Killed

        monkeypatch.setattr(pipeline.tokenize_file, "_encoded_chunks", half)
    elif name is None:
        monkeypatch.setattr(target, crash)
    else:
        module, function = target.rsplit(".", 1)
        monkeypatch.setattr(target, crash_on(name, getattr(__import__(module, fromlist=[function]), function)))
    with pytest.raises(Killed):
        train(b, run, SMALL, force=True, progress=False)  # a new file, where a.txt still is
    monkeypatch.undo()
    refused(run, tmp_path)
    train(b, run, SMALL, resume=True, progress=False)  # the way out the message names
    pack(run, tmp_path / "b.arc", progress=False)


def test_a_crash_while_training_a_neural_model_over_an_old_run(tmp_path, two_files, monkeypatch):
    """kill -9 of `train --model neural --force` over an old run: the new ids are recorded, the
    old model.bin and checkpoint are still there. pack refuses the old model; --resume refuses
    the old checkpoint; a crash between the exported files leaves no record either."""
    import models.training

    a, b = two_files
    run = tmp_path / "run"
    train(a, run, TINY_NEURAL, progress=False)
    monkeypatch.setattr(models.training, "train_model", crash)
    with pytest.raises(Killed):
        train(b, run, TINY_NEURAL, force=True, progress=False)
    monkeypatch.undo()
    refused(run, tmp_path, "trained on other token ids")
    with pytest.raises(UserError, match="trained on other token ids"):
        train(b, run, TINY_NEURAL, resume=True, progress=False)
    train(b, run, TINY_NEURAL, force=True, progress=False)
    pack(run, tmp_path / "b.arc", progress=False)

    monkeypatch.setattr(pipeline.neural, "atomic_write_bytes", crash_on("model.bin", pipeline.neural.atomic_write_bytes))
    record = json.loads((run / "export.json").read_text())
    with pytest.raises(Killed):  # a new export: model.json written, model.bin not yet
        pipeline.neural.save_export(run, (run / "model.json").read_text() + " ", b"new weights", record["tokens_sha256"], TINY_NEURAL.model)
    monkeypatch.undo()
    refused(run, tmp_path, "no exported neural model that matches")


def test_a_neural_run_with_another_config_than_its_model_is_refused(tmp_path, two_files):
    a, _ = two_files
    run = tmp_path / "run"
    train(a, run, TINY_NEURAL, progress=False)
    other = dataclasses.replace(TINY_NEURAL, model=dataclasses.replace(TINY_NEURAL.model, max_steps=3))
    (run / "config.json").write_text(other.to_json())  # config.json of a new train, the model of the old
    refused(run, tmp_path, "another config")
