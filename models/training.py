"""Training the QAT model on the file it will compress.

`train_model` samples random windows of the token file (the file itself is the
training set: many epochs over it are the point), runs AdamW with warmup and
cosine decay over a step and/or time budget, and writes checkpoints atomically.
A checkpoint is a plain dict that `torch.load(..., weights_only=True)` reads:
the config as a JSON-compatible dict, the state dicts, the step, the time spent and what
it was trained on (`made_from`: the sha256 of the run's ids).

Inside a torch.distributed process group (torchrun) the same loop is data-parallel
(DistributedDataParallel): every process draws the same global batch and trains on
its own equal share of the rows, so a run follows the one-process loss curve up to
float summation order; only rank 0 reports and writes the checkpoint, which holds
the unwrapped model (the same file as a one-process run, resumable by either).
"""

from __future__ import annotations

import ctypes
import math
import os
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from models.gpt import GPT, ModelConfig

CHECKPOINT = "model.pt"
CHECKPOINT_FORMAT = "hutter-qat-gpt/1"
PRECISIONS = ("tf32", "bf16", "fp32")  # how training runs its matmuls; see train_model
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc mallopt parameters (malloc.h)


@dataclass(frozen=True)
class TrainProgress:
    step: int
    max_steps: Optional[int]
    fraction: float  # of the step or time budget used, whichever is further
    loss_bits: float  # mean training loss since the last report, bits per token
    lr: float
    elapsed_s: float  # training time, across resumes
    tokens_per_s: float


def choose_device(device: str) -> torch.device:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def save_checkpoint(path: Path, model: GPT, optimizer, step: int, elapsed_s: float, extra: dict, made_from: dict | None = None) -> None:
    """torch.save to a temporary file, then os.replace: a crash never leaves half a checkpoint.
    made_from: what the model trains on (the ids' sha256), so a resume on other data is refused."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "config": model.cfg.to_dict(),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else {},
        "step": step,
        "elapsed_s": elapsed_s,
        "train": extra,
        "made_from": made_from,
    }
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def read_checkpoint(path: Path, device: str | torch.device = "cpu") -> dict:
    state = torch.load(Path(path), map_location=device, weights_only=True)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a checkpoint of this model")
    return state


def load_model(path: Path, device: str | torch.device = "cpu") -> GPT:
    """The trained GPT of a checkpoint (config and weights), on `device`."""
    state = read_checkpoint(path, device)
    model = GPT(ModelConfig.from_dict(state["config"])).to(device)
    model.load_state_dict(state["model"])
    return model


def keep_freed_memory() -> None:
    """Make glibc malloc keep freed memory for reuse instead of returning it to the system.

    A CPU training step allocates and frees the same large tensors (the logits alone are
    batch * seq_len * vocab floats); glibc maps each block above 32 MiB fresh and unmaps it
    on free, so every step page-faults its memory in again. Measured at d128, batch 32:
    1.0 s user + 1.6 s system per step -> 1.0 s user + 0.0 s system, for about twice the
    peak resident memory (2.0 -> 3.9 GB), steady over steps. Process-wide, speed only;
    nothing happens where the C library has no mallopt.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):
        return
    mallopt(M_MMAP_MAX, 0)  # no block gets a mapping of its own: all come from the reusable heap
    mallopt(M_TRIM_THRESHOLD, 1 << 30)  # and up to 1 GiB of free heap stays ours


def learning_rate(base: float, step: int, warmup: int, fraction: float) -> float:
    """Linear warmup, then cosine decay to 10% of base as the budget runs out."""
    decay = 0.1 + 0.45 * (1 + math.cos(math.pi * min(fraction, 1.0)))
    return base * min(1.0, (step + 1) / warmup) * decay


def sample_batch(
    tokens: np.ndarray, step: int, seed: int, batch_size: int, seq_len: int, bos: int, bos_fraction: float, rows: slice = slice(None),
):  # fmt: skip
    """Random windows (x, y = x shifted by one) for one step, from a generator seeded by (seed, step),
    so a resumed run draws the same batches. Some rows start with the "no token" symbol, as
    every coded stream does. `rows` keeps only those rows of the batch (a process's share of a
    distributed step): the whole batch is drawn, only the kept windows are read."""
    rng = np.random.default_rng([seed, step])
    starts = rng.integers(0, len(tokens) - seq_len, size=batch_size)
    starts_bos = rng.random(batch_size) < bos_fraction
    windows = np.stack([np.asarray(tokens[s : s + seq_len + 1], dtype=np.int64) for s in starts[rows]])
    x, y = windows[:, :-1].copy(), windows[:, 1:]
    x[starts_bos[rows], 0] = bos
    return torch.from_numpy(x), torch.from_numpy(y.copy())


class Ranks:
    """This process's place in a torch.distributed run (rank 0 of 1 when no group is initialized)."""

    def __init__(self, timed: bool):
        self.on = dist.is_available() and dist.is_initialized()
        self.rank = dist.get_rank() if self.on else 0
        self.size = dist.get_world_size() if self.on else 1
        self.is_main = self.rank == 0
        # The time budget is measured by rank 0 and sent each step over gloo, on the CPU: every rank
        # then stops at the same step with the same learning rate (clocks measured per rank would
        # disagree and deadlock), and NCCL would need a GPU sync per step for it.
        self.clock = None
        if self.on and timed:
            self.clock = dist.new_group(backend="gloo") if dist.get_backend() != "gloo" else dist.group.WORLD

    def agreed_seconds(self, seconds: float) -> float:
        """Rank 0's `seconds`, in every rank."""
        if self.clock is None:
            return seconds
        box = torch.tensor([seconds], dtype=torch.float64)
        dist.broadcast(box, src=0, group=self.clock)
        return float(box[0])

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of `value` over the ranks (equal shares of the batch: the global batch's mean)."""
        if self.on:
            value = value.clone()
            dist.all_reduce(value)
            value /= self.size
        return value

    def same_everywhere(self, what: str, value) -> None:
        if self.on:
            seen = [None] * self.size
            dist.all_gather_object(seen, value)
            if len(set(seen)) > 1:
                raise ValueError(f"the processes disagree on {what} ({seen})")

    def barrier(self) -> None:
        if self.on:
            dist.barrier()


@contextmanager
def _matmul_precision(device: torch.device, precision: str):
    """TF32 on CUDA for training (its 11-bit inputs hold our int8/uint8 values exactly); restored after."""
    old = torch.backends.cuda.matmul.allow_tf32, torch.get_float32_matmul_precision()
    try:
        if device.type == "cuda" and precision == "tf32":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.set_float32_matmul_precision("high")
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old[0]
        torch.set_float32_matmul_precision(old[1])


def train_model(
    tokens: np.ndarray,
    config: ModelConfig,
    out_dir: Path,
    *,
    device: str = "auto",
    max_minutes: float | None = None,
    max_steps: int | None = None,
    batch_size: int = 32,
    lr: float = 2e-3,
    seed: int = 0,
    resume: bool = False,
    progress: Callable[[TrainProgress], None] | None = None,
    seq_len: int | None = None,
    weight_decay: float = 0.1,
    warmup_steps: int | None = None,
    bos_fraction: float = 1 / 16,
    precision: str = "tf32",
    compile: bool = False,
    checkpoint_minutes: float = 10.0,
    log_every: int = 10,
    made_from: dict | None = None,
) -> Path:
    """Train (or resume training) the QAT model on `tokens`; return the final checkpoint's path.

    `tokens` is any 1-D integer array; the pipeline passes a read-only memory map of the run's
    id file, so only each batch's windows are read (and copied to the device), never the whole.

    The budget is max_steps and/or max_minutes of training time (counted across resumes);
    the learning rate follows whichever is used up faster. seq_len defaults to twice the
    context, so half of every window trains the sliding window exactly as it is coded.

    precision: "tf32" (float32 matmuls, TF32 on CUDA: its 11-bit inputs hold the int8/int4/uint8
    operands exactly, so nothing is rounded that float32 would keep), "fp32" (no TF32), or "bf16":
    autocast on CUDA and on CPU alike, faster where the hardware has bf16 units, but matmul
    outputs are rounded to 8 significant bits, so the float model trains on slightly blurred
    values. Only training quality is at stake: the export, the integer model and its exactness
    are the same for every precision.

    Distributed (called in every process of an initialized torch.distributed group): batch_size
    is the global batch, split evenly across the processes; each uses cuda:<current device> (set
    by the launcher) or the CPU; only rank 0 calls `progress` (with the loss averaged over all
    ranks) and writes the checkpoint, which every rank reads on resume (out_dir must be shared).
    """
    if max_minutes is None and max_steps is None:
        raise ValueError("give max_minutes and/or max_steps")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r} (one of {', '.join(PRECISIONS)})")
    ranks = Ranks(timed=max_minutes is not None)
    if batch_size % ranks.size:
        raise ValueError(f"batch size {batch_size} does not split evenly across {ranks.size} processes")
    config = config.validate()
    seq_len = min(seq_len or 2 * config.context, len(tokens) - 1)
    if seq_len < 1:
        raise ValueError("need at least two tokens to train on")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / CHECKPOINT
    dev = choose_device(device)
    if ranks.on and dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())  # the launcher's choice: cuda:LOCAL_RANK
    if ranks.on and dist.get_backend() == "nccl" and dev.type != "cuda":
        raise ValueError("an NCCL process group trains on CUDA devices only (use gloo for the CPU)")
    if dev.type == "cpu":
        keep_freed_memory()
    torch.manual_seed(seed)
    model = GPT(config).to(dev)
    optimizer = torch.optim.AdamW(model.param_groups(weight_decay), lr=lr, betas=(0.9, 0.95), fused=dev.type == "cuda")
    step, elapsed_before = 0, 0.0
    if resume and path.exists():
        state = read_checkpoint(path, dev)
        if ModelConfig.from_dict(state["config"]) != config:  # older checkpoints lack newer fields: defaults
            raise ValueError(f"{path} was trained with another model config")
        if state.get("made_from") != made_from:  # new data or tokenizer: its weights fit other ids
            raise ValueError(f"{path} was trained on other token ids than the run's (the data or tokenizer changed); train with --force to start over")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, elapsed_before = state["step"], state["elapsed_s"]
    ranks.same_everywhere(f"the checkpoint step to resume from (is {out_dir} on a shared file system?)", step)
    warmup = warmup_steps or min(100, max(1, (max_steps or 1000) // 10))
    budget_s = None if max_minutes is None else 60.0 * max_minutes
    extra = {"seed": seed, "batch_size": batch_size, "seq_len": seq_len, "lr": lr, "weight_decay": weight_decay, "precision": precision, "processes": ranks.size}
    share = batch_size // ranks.size
    mine = slice(ranks.rank * share, (ranks.rank + 1) * share)

    def batch(at_step: int, rows: slice = mine):
        x, y = sample_batch(tokens, at_step, seed, batch_size, seq_len, config.vocab_size, bos_fraction, rows)
        return x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)

    if not bool(model.calibrated):  # a fresh model: set every activation step from one batch, the
        model.calibrate(batch(step, slice(None))[0])  # whole global batch, so every rank agrees
    forward = model
    if ranks.on:  # averages the gradients over the ranks in backward
        forward = DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    forward = torch.compile(forward) if compile else forward
    autocast = torch.autocast(dev.type, dtype=torch.bfloat16) if precision == "bf16" else nullcontext()
    started = time.monotonic()
    last_save, last_report, loss_sum, loss_count = started, (step, started), torch.zeros((), device=dev), 0

    def elapsed() -> float:
        return elapsed_before + time.monotonic() - started

    def fraction(seconds: float) -> float:
        by_steps = step / max_steps if max_steps else 0.0
        by_time = seconds / budget_s if budget_s else 0.0
        return max(by_steps, by_time)

    def report(rate: float) -> None:
        nonlocal loss_sum, loss_count, last_report
        if loss_count:
            loss_sum = ranks.mean(loss_sum)  # in every rank (a collective), every log_every steps
        if progress and loss_count and ranks.is_main:
            now = time.monotonic()
            tokens_per_s = (step - last_report[0]) * batch_size * seq_len / max(now - last_report[1], 1e-9)
            bits = float(loss_sum) / loss_count / math.log(2.0)
            progress(TrainProgress(step, max_steps, min(fraction(elapsed()), 1.0), bits, rate, elapsed(), tokens_per_s))
            last_report = (step, now)
        loss_sum, loss_count = torch.zeros((), device=dev), 0

    model.train()
    rate = lr
    with _matmul_precision(dev, precision):
        while (done := fraction(ranks.agreed_seconds(elapsed()))) < 1.0:
            rate = learning_rate(lr, step, warmup, done)
            for group in optimizer.param_groups:
                group["lr"] = rate
            x, y = batch(step)
            with autocast:
                _, loss = forward(x, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # distributed: the averaged gradients
            optimizer.step()
            step += 1
            loss_sum, loss_count = loss_sum + loss.detach(), loss_count + 1
            if step % log_every == 0:
                report(rate)
            if ranks.is_main and time.monotonic() - last_save > 60.0 * checkpoint_minutes:  # no collective: rank 0 alone
                save_checkpoint(path, model, optimizer, step, elapsed(), extra, made_from)
                last_save = time.monotonic()
    report(rate)
    if ranks.is_main:
        save_checkpoint(path, model, optimizer, step, elapsed(), extra, made_from)
    ranks.barrier()  # the returned checkpoint exists for every rank
    return path
