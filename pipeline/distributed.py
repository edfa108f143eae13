"""torch.distributed for the pipeline: one process or many, launched by torchrun.

torchrun (or `--nproc N`, which starts torchrun) sets RANK, WORLD_SIZE and
LOCAL_RANK in every process; without them the pipeline is one process and every
helper here is a no-op. GPUs talk over NCCL, CPUs over gloo. Only rank 0 writes
files: the others compute and hand their results to it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Callable, Iterator, NoReturn, Optional

from submissions.errors import UserError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def launched_world() -> World:
    """This process's place, as torchrun's environment says (one process when absent)."""
    try:
        return World(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0)))
    except ValueError:
        return World()


@contextlib.contextmanager
def process_group(use_cuda: bool = False) -> Iterator[World]:
    """Join the launched processes (NCCL when use_cuda, else gloo) for the block, then leave."""
    world = launched_world()
    if not world.distributed:
        yield world
        return
    import torch
    import torch.distributed as dist

    if dist.is_initialized():  # an outer block already joined
        yield world
        return
    if use_cuda:
        torch.cuda.set_device(world.local_rank)
    dist.init_process_group("nccl" if use_cuda else "gloo")
    try:
        yield world
        dist.barrier()  # leave together: gloo work still pending in one rank while another tears down can abort it (SIGABRT)
    finally:
        dist.destroy_process_group()


def leave_rank(code: int = 0) -> NoReturn:
    """End this process now with `code`, skipping the interpreter's teardown. After
    destroy_process_group, torch's gloo threads can still be joinable when the interpreter
    finalizes, and the process aborts (SIGABRT, "terminate called without an active exception":
    1 rank in ~50-100 runs of the distributed tests here), which torchrun reports as the failure
    of a run that finished. Everything a rank writes is written (atomically) before this."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run_rank(main: Callable[[], Any]) -> None:
    """main(); in a process torchrun launched, then leave_rank with main's exit code."""
    if not launched_world().distributed:
        main()
        return
    try:
        main()
        code = 0
    except SystemExit as stop:  # typer ends every command this way
        code = 0 if stop.code is None else stop.code
        if not isinstance(code, int):  # a message: Python prints it and exits with 1
            print(code, file=sys.stderr)
            code = 1
    leave_rank(code)


def _dist():
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def wait_for_main(obj: Any, timeout_hours: float = 24.0) -> Any:
    """obj as rank 0 has it, in every process, however long rank 0 takes to get here (tokenizing
    a large file outlasts a group's default timeout, 10 minutes for NCCL): a gloo group of its own
    with a long timeout carries it."""
    dist = _dist()
    if dist is None:
        return obj
    from datetime import timedelta

    box = [obj]
    dist.broadcast_object_list(box, src=0, group=dist.new_group(backend="gloo", timeout=timedelta(hours=timeout_hours)))
    return box[0]


def local_processes() -> int:
    """How many launched processes share this machine (torchrun's LOCAL_WORLD_SIZE)."""
    try:
        return int(os.environ.get("LOCAL_WORLD_SIZE", launched_world().size))
    except ValueError:
        return launched_world().size


def refuse_too_few_gpus(processes: int, device: str | None) -> None:
    """Processes on CUDA take one GPU each (NCCL will not share one between two, and a process
    cannot use a GPU the machine lacks): refuse more of them than there are GPUs, before any
    work. device "cuda", or "auto" (CUDA where present); any other runs on the CPU."""
    if processes <= 1 or device not in ("cuda", "auto"):
        return
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if processes > gpus and (device == "cuda" or gpus > 0):
        raise UserError(
            f"{processes} processes on CUDA take one GPU each and this machine has {gpus}: "
            f"use --nproc {max(gpus, 1)} or fewer, or --device cpu"
        )


def joined_world() -> World:
    """This process's place in the joined process group (one process when none is joined)."""
    dist = _dist()
    if dist is None:
        return World()
    return World(dist.get_rank(), dist.get_world_size(), launched_world().local_rank)


def gather(obj: Any) -> Optional[list]:
    """Every rank's obj, in rank order, on rank 0; None on the others."""
    dist = _dist()
    if dist is None:
        return [obj]
    out = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
    dist.gather_object(obj, out, dst=0)
    return out


def all_gather(obj: Any) -> list:
    """Every rank's obj, in rank order, in every process."""
    dist = _dist()
    if dist is None:
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def relaunch(nproc: int, argv: list[str]) -> int:
    """Run `pipeline ARGV` in nproc processes on this node through torchrun; their exit code."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", "-m", "pipeline", *argv]
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    return subprocess.call(command, env=env)
