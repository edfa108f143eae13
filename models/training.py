"""Training the QAT model on the file it will compress.

`train_model` samples random windows of the token file (the file itself is the
training set: many epochs over it are the point), runs AdamW with warmup and
cosine decay over a step and/or time budget, and writes checkpoints atomically.
A checkpoint is a plain dict that `torch.load(..., weights_only=True)` reads:
the config as a JSON-compatible dict, the state dicts, the step and the time spent.
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


def save_checkpoint(path: Path, model: GPT, optimizer, step: int, elapsed_s: float, extra: dict) -> None:
    """torch.save to a temporary file, then os.replace: a crash never leaves half a checkpoint."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "config": model.cfg.to_dict(),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else {},
        "step": step,
        "elapsed_s": elapsed_s,
        "train": extra,
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


def sample_batch(tokens: np.ndarray, step: int, seed: int, batch_size: int, seq_len: int, bos: int, bos_fraction: float):
    """Random windows (x, y = x shifted by one) for one step, from a generator seeded by (seed, step),
    so a resumed run draws the same batches. Some rows start with the "no token" symbol, as
    every coded stream does."""
    rng = np.random.default_rng([seed, step])
    starts = rng.integers(0, len(tokens) - seq_len, size=batch_size)
    rows = np.stack([np.asarray(tokens[s : s + seq_len + 1], dtype=np.int64) for s in starts])
    x, y = rows[:, :-1].copy(), rows[:, 1:]
    x[rng.random(batch_size) < bos_fraction, 0] = bos
    return torch.from_numpy(x), torch.from_numpy(y.copy())


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
    """
    if max_minutes is None and max_steps is None:
        raise ValueError("give max_minutes and/or max_steps")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r} (one of {', '.join(PRECISIONS)})")
    config = config.validate()
    seq_len = min(seq_len or 2 * config.context, len(tokens) - 1)
    if seq_len < 1:
        raise ValueError("need at least two tokens to train on")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / CHECKPOINT
    dev = choose_device(device)
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
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, elapsed_before = state["step"], state["elapsed_s"]
    warmup = warmup_steps or min(100, max(1, (max_steps or 1000) // 10))
    budget_s = None if max_minutes is None else 60.0 * max_minutes
    extra = {"seed": seed, "batch_size": batch_size, "seq_len": seq_len, "lr": lr, "weight_decay": weight_decay, "precision": precision}

    def batch(at_step: int):
        x, y = sample_batch(tokens, at_step, seed, batch_size, seq_len, config.vocab_size, bos_fraction)
        return x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)

    if not bool(model.calibrated):  # a fresh model: set every activation step from one batch
        model.calibrate(batch(step)[0])
    forward = torch.compile(model) if compile else model
    autocast = torch.autocast(dev.type, dtype=torch.bfloat16) if precision == "bf16" else nullcontext()
    started = time.monotonic()
    last_save, last_report, loss_sum, loss_count = started, (step, started), torch.zeros((), device=dev), 0

    def elapsed() -> float:
        return elapsed_before + time.monotonic() - started

    def fraction() -> float:
        by_steps = step / max_steps if max_steps else 0.0
        by_time = elapsed() / budget_s if budget_s else 0.0
        return max(by_steps, by_time)

    def report(rate: float) -> None:
        nonlocal loss_sum, loss_count, last_report
        if progress and loss_count:
            now = time.monotonic()
            tokens_per_s = (step - last_report[0]) * batch_size * seq_len / max(now - last_report[1], 1e-9)
            bits = float(loss_sum) / loss_count / math.log(2.0)
            progress(TrainProgress(step, max_steps, min(fraction(), 1.0), bits, rate, elapsed(), tokens_per_s))
            last_report = (step, now)
        loss_sum, loss_count = torch.zeros((), device=dev), 0

    model.train()
    rate = lr
    with _matmul_precision(dev, precision):
        while fraction() < 1.0:
            rate = learning_rate(lr, step, warmup, fraction())
            for group in optimizer.param_groups:
                group["lr"] = rate
            x, y = batch(step)
            with autocast:
                _, loss = forward(x, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            step += 1
            loss_sum, loss_count = loss_sum + loss.detach(), loss_count + 1
            if step % log_every == 0:
                report(rate)
            if time.monotonic() - last_save > 60.0 * checkpoint_minutes:
                save_checkpoint(path, model, optimizer, step, elapsed(), extra)
                last_save = time.monotonic()
    report(rate)
    save_checkpoint(path, model, optimizer, step, elapsed(), extra)
    return path
