"""Distributed (DDP) training on the CPU: 2 gloo processes sharing the global batch follow the
one-process loss curve, only rank 0 writes, checkpoints resume across process counts, and
`pipeline train --nproc 2` makes a run that packs."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from models.gpt import ModelConfig
from models.training import CHECKPOINT, read_checkpoint, train_model
from pipeline.cli import app
from pipeline.config import NeuralModelConfig, PipelineConfig
from pipeline.pack import pack
from pipeline.train import train
from submissions.errors import UserError

TEXT = (
    b"The quick brown fox jumps over the lazy dog. A stitch in time saves nine. "
    b"All that glitters is not gold; the early bird catches the worm, they say.\n"
)
TINY = ModelConfig(vocab_size=256, d_model=32, n_layers=1, n_heads=2, context=16, mlp_ratio=2)
STEPS, BATCH, LR = 6, 4, 3e-3
# What each rank runs: train_model inside pipeline.distributed.process_group (gloo), reporting
# every step's loss (rank 0 only), every checkpoint save and the batches it drew, with its rank.
WORKER = """
import json, os, sys, time
from pathlib import Path
import numpy as np, torch
import models.training as training
from models.gpt import ModelConfig
from pipeline.distributed import leave_rank, process_group

torch.set_num_threads(1)
tokens_file, out, steps, minutes, resume = sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4]), sys.argv[5] == "1"
with process_group() as world:
    if str(world.rank) == os.environ.get("FAST_CLOCK"):  # this rank's clock runs 3 times too fast
        monotonic, t0 = time.monotonic, time.monotonic()
        time.monotonic = lambda: t0 + 3 * (monotonic() - t0)
    save, sample = training.save_checkpoint, training.sample_batch
    training.save_checkpoint = lambda *a, **k: (print("SAVE", world.rank, flush=True), save(*a, **k))
    batches = []
    training.sample_batch = lambda *a: (batches.append(a[1]), sample(*a))[1]
    losses = []
    training.train_model(
        np.load(tokens_file, mmap_mode="r"), ModelConfig.from_dict(json.loads(sys.argv[6])), out, device="cpu",
        max_steps=steps, max_minutes=minutes, batch_size=int(sys.argv[7]), lr=float(sys.argv[8]), resume=resume,
        progress=lambda p: losses.append(p.loss_bits), log_every=1,
    )
    print("LOSSES", world.rank, json.dumps(losses), flush=True)
    print("BATCHES", world.rank, json.dumps(batches), flush=True)
leave_rank()  # as `python -m pipeline` leaves a launched rank
"""


pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.slow]  # each test starts processes that import torch


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


ADDRESS_IN_USE = "address already in use"  # the store's port, taken since free_port() found it free


def train_in_processes(
    tokens_file: Path, out: Path, steps: int | None, resume: bool = False, size: int = 2, minutes: float | None = None, fast_clock: int = -1,
) -> dict:  # fmt: skip
    """Train in `size` gloo processes (the environment torchrun would give them); each rank's
    reported losses, checkpoint saves and the steps of the batches it drew. Tests run in
    parallel: a port another process took between free_port() and the bind is tried anew."""
    for _ in range(3):
        ranks = run_ranks(tokens_file, out, steps, resume, size, minutes, fast_clock)
        if not any(ADDRESS_IN_USE in stderr.lower() for _, _, stderr in ranks):
            break
    for code, _, _ in ranks:  # every rank's stderr: the one that failed may be the other's victim
        assert code == 0, "\n".join(f"rank {r} exited with {c}, stderr:\n{stderr}" for r, (c, _, stderr) in enumerate(ranks))
    facts = {"losses": {}, "batches": {}, "saves": []}
    for _, stdout, _ in ranks:
        for line in stdout.splitlines():
            word, rank, *rest = line.split(" ", 2)
            if word in ("LOSSES", "BATCHES"):
                facts[word.lower()][int(rank)] = json.loads(rest[0])
            elif word == "SAVE":
                facts["saves"].append(int(rank))
    return facts


def run_ranks(tokens_file: Path, out: Path, steps, resume: bool, size: int, minutes, fast_clock: int) -> list[tuple[int, str, str]]:
    """The WORKER in `size` processes on a free port: (exit code, stdout, stderr) per rank."""
    port = free_port()
    ranks = []
    for rank in range(size):
        env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(size), LOCAL_RANK=str(rank), OMP_NUM_THREADS="1", FAST_CLOCK=str(fast_clock))
        args = [str(tokens_file), str(out), json.dumps(steps), json.dumps(minutes), "1" if resume else "0", json.dumps(TINY.to_dict()), str(BATCH), str(LR)]
        ranks.append(subprocess.Popen([sys.executable, "-c", WORKER, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        outputs = [rank.communicate(timeout=120) for rank in ranks]
    finally:  # a hung rank (a deadlock is the likely bug) must not outlive the test
        for rank in ranks:
            if rank.poll() is None:
                rank.kill()
    return [(rank.returncode, stdout, stderr) for rank, (stdout, stderr) in zip(ranks, outputs)]


def train_in_one(tokens_file: Path, out: Path, steps: int, resume: bool = False) -> list[float]:
    losses = []
    train_model(
        np.load(tokens_file, mmap_mode="r"), TINY, out, device="cpu", max_steps=steps, batch_size=BATCH, lr=LR,
        resume=resume, progress=lambda p: losses.append(p.loss_bits), log_every=1,
    )  # fmt: skip
    return losses


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same training once in one process and once in two, STEPS steps of a global batch of 4."""
    root = tmp_path_factory.mktemp("ddp")
    tokens_file = root / "tokens.npy"
    np.save(tokens_file, np.frombuffer(TEXT * 60, dtype=np.uint8).astype(np.uint16))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one = train_in_one(tokens_file, root / "one", STEPS)
    finally:
        torch.set_num_threads(threads)
    two = train_in_processes(tokens_file, root / "two", STEPS)
    return {"root": root, "tokens": tokens_file, "one": one, "two": two}


def assert_same_weights(a: Path, b: Path, atol: float) -> None:
    wa, wb = read_checkpoint(a)["model"], read_checkpoint(b)["model"]
    assert wa.keys() == wb.keys()
    for name, tensor in wa.items():
        torch.testing.assert_close(wb[name], tensor, rtol=0, atol=atol, msg=name)


def test_two_processes_follow_the_one_process_loss_curve(runs):
    one, two = np.array(runs["one"]), np.array(runs["two"]["losses"][0])
    assert len(one) == len(two) == STEPS
    # Only float summation order differs (the gradient is summed in two halves), and QAT rounding
    # turns a last-bit difference into a whole quantization step now and then: measured 3.4e-5
    # at most over these steps; a wrong split of the batch is off by 1e-2 from the first step.
    np.testing.assert_allclose(two, one, rtol=2e-4, atol=0)
    assert one[-1] < one[0] - 0.5  # and it learned something
    # Adam moves a weight by about lr per step: measured 3e-5 at most, a tenth of one step allowed.
    assert_same_weights(runs["root"] / "one" / CHECKPOINT, runs["root"] / "two" / CHECKPOINT, atol=LR / 10)


def test_only_rank_0_reports_and_writes(runs):
    two = runs["two"]
    assert two["saves"] == [0]  # one checkpoint, by rank 0
    assert two["losses"][1] == []  # progress is rank 0's alone
    assert sorted(p.name for p in (runs["root"] / "two").iterdir()) == [CHECKPOINT]  # no stray temporary file
    state = read_checkpoint(runs["root"] / "two" / CHECKPOINT)
    assert state["step"] == STEPS and state["train"]["processes"] == 2 and state["train"]["batch_size"] == BATCH
    assert not any(name.startswith("module.") for name in state["model"])  # the unwrapped model


def test_checkpoints_resume_across_process_counts(runs):
    """A two-process checkpoint resumes in one process, and a one-process one in two processes,
    each as the one-process run resumes in one process."""
    root = runs["root"]
    for name in ("one", "two"):
        shutil.copytree(root / name, root / f"{name}-resumed")
    reference = train_in_one(runs["tokens"], root / "one-resumed", 2 * STEPS, resume=True)
    from_two = train_in_one(runs["tokens"], root / "two-resumed", 2 * STEPS, resume=True)
    shutil.copytree(root / "one", root / "one-in-two")
    in_two = train_in_processes(runs["tokens"], root / "one-in-two", 2 * STEPS, resume=True)
    assert len(reference) == STEPS  # it went on from step STEPS, not from the start
    for losses in (from_two, in_two["losses"][0]):
        np.testing.assert_allclose(losses, reference, rtol=5e-4, atol=0)
    for name in ("two-resumed", "one-in-two"):
        assert read_checkpoint(root / name / CHECKPOINT)["step"] == 2 * STEPS
        assert_same_weights(root / "one-resumed" / CHECKPOINT, root / name / CHECKPOINT, atol=LR / 3)


def test_ranks_agree_when_a_time_budget_stops_training(runs, tmp_path):
    """Each rank's clock would stop it at another step (a deadlock in the gradient all-reduce,
    here forced by a clock that runs 3 times fast in rank 1): rank 0's clock decides for all, so
    every rank draws the batches of the same steps."""
    facts = train_in_processes(runs["tokens"], tmp_path / "timed", steps=None, minutes=0.02, fast_clock=1)
    assert facts["batches"][0] == facts["batches"][1] and len(facts["batches"][0]) > 2
    assert read_checkpoint(tmp_path / "timed" / CHECKPOINT)["step"] == len(facts["losses"][0]) == len(facts["batches"][0]) - 1  # + calibration


TRAIN_ARGS = ["--model", "neural", "--vocab", "320", "--d-model", "32", "--layers", "1", "--heads", "2", "--context", "8",
              "--max-steps", "3", "--streams", "2", "-q"]  # fmt: skip


def test_cli_trains_in_two_processes_and_the_run_packs(tmp_path, text_sample):
    data, run = tmp_path / "data.txt", tmp_path / "run"
    data.write_bytes(text_sample[:4000])
    command = [sys.executable, "-m", "pipeline", "train", str(data), "-o", str(run), *TRAIN_ARGS, "--batch-size", "4", "--nproc", "2", "--device", "cpu"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert (done.stdout + done.stderr).count("trained ") == 1  # rank 0 speaks for the run
    names = {p.name for p in run.iterdir()}
    assert {"model.pt", "model.json", "model.bin", "train.json", "tokens.npy", "config.json"} <= names
    assert not [n for n in names if "tmp" in n]
    state = read_checkpoint(run / CHECKPOINT)
    assert state["step"] == 3 and state["train"]["processes"] == 2
    assert json.loads((run / "train.json").read_text())["float_bits_per_token"] > 0
    packed = pack(run, tmp_path / "run.arc", progress=False)
    assert packed.float_integer_gap is not None and abs(packed.float_integer_gap) < 0.05


def test_cli_nproc_mistakes_and_nothing_to_train(tmp_path, text_sample):
    data = tmp_path / "data.txt"
    data.write_bytes(text_sample[:3000])
    runner = CliRunner()
    for extra, message in ((["--batch-size", "3", "--nproc", "2"], "does not split evenly"), (["--nproc", "0"], "--nproc")):
        result = runner.invoke(app, ["train", str(data), "-o", str(tmp_path / "r"), *TRAIN_ARGS, *extra])
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output
    assert not (tmp_path / "r").exists()  # refused before any process or file
    result = runner.invoke(app, ["train", str(data), "-o", str(tmp_path / "c"), "--model", "context", "--vocab", "320", "--nproc", "2", "-q"])
    assert result.exit_code == 0 and "note: --model context has no network to train" in result.output, result.output


def test_processes_on_cuda_take_a_gpu_each(tmp_path, text_sample, monkeypatch):
    """More CUDA processes than GPUs is refused in one line before anything starts (on a 1-GPU
    machine `--nproc 2` once died in torch.cuda.set_device, "invalid device ordinal")."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    data, run = tmp_path / "data.txt", tmp_path / "run"
    data.write_bytes(text_sample[:3000])
    run.mkdir()
    (run / "config.json").write_text("{}")
    runner = CliRunner()
    train_args = ["train", str(data), "-o", str(tmp_path / "r"), *TRAIN_ARGS, "--batch-size", "4", "--nproc", "2"]
    for args in (train_args, [*train_args, "--device", "cuda"], ["pack", str(run), "-o", str(tmp_path / "x.arc"), "--device", "cuda", "--nproc", "2"]):
        result = runner.invoke(app, args)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert result.exit_code == 2 and len(lines) == 1, result.output
        assert "2 processes on CUDA take one GPU each and this machine has 1: use --nproc 1 or fewer, or --device cpu" in lines[0]
    assert not (tmp_path / "r").exists() and not (tmp_path / "x.arc").exists()
    # launched by torchrun itself: every rank refuses alike, before joining a group that would wait
    monkeypatch.setenv("RANK", "1"), monkeypatch.setenv("LOCAL_RANK", "1"), monkeypatch.setenv("WORLD_SIZE", "2"), monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    with pytest.raises(UserError, match="this machine has 1"):
        train(data, tmp_path / "r2", PipelineConfig(model=NeuralModelConfig(d_model=32, n_layers=1, n_heads=2, context=8, max_steps=1, batch_size=4)), progress=False)
