"""`pipeline unpack`: restore an archive's file with the decoder it carries, in one process
or, launched by torchrun, in many (shard i is decoded by rank i % world; rank 0 writes).

The archive restores itself anywhere (`python ARCHIVE -o OUT`); this command is the same
decoder, imported from this project, for decoding across processes, GPUs and nodes.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.distributed import gather, launched_world, process_group
from submissions.archive import older_format_refusal
from submissions.errors import UserError
from submissions.fileio import claim_output, require_file
from pipeline.progress import progress_bar
from submissions.decoder.container import ArchiveCorrupt, read_archive
from submissions.decoder.restore import RestoreError, check_format, decode_shard, write_restored


@dataclass(frozen=True)
class UnpackResult:
    output: Path
    size: int
    shards: int
    processes: int
    seconds: float


def unpack(archive: Path, out: Path, force: bool = False, progress: bool = True) -> UnpackResult | None:
    """Decode `archive` into `out` (checked by length and sha256 before it appears); None in
    the processes other than rank 0."""
    archive = require_file(Path(archive), "archive")
    world = launched_world()
    if not world.is_main:
        return _unpack(archive, Path(out), world, progress)
    with claim_output(Path(out), force, inputs=(archive,)):  # never the archive itself, by any name
        return _unpack(archive, Path(out), world, progress)


def _unpack(archive: Path, out: Path, world, progress: bool) -> UnpackResult | None:
    started = time.perf_counter()
    try:
        header, sections = read_archive(str(archive))
        check_format(header)
        shards = header["coding"]["shards"]
        mine = list(range(world.rank, len(shards), world.size))
        if world.distributed and os.environ.get("HUTTER_DEVICE", "").startswith("cuda"):
            os.environ["HUTTER_DEVICE"] = f"cuda:{world.local_rank}"  # one GPU per process
        with process_group(), progress_bar("decoding", progress and world.is_main) as update:
            decoded = {}
            for position, i in enumerate(mine):
                report = None if update is None else (lambda d, t, p=position: update(int(1000 * (p + d / max(t, 1)) / len(mine)), 1000))
                decoded[i] = decode_shard(header, sections, i, report)
            everyone = gather(decoded)
        if not world.is_main:
            return None
        decoded = {i: tokens for part in everyone for i, tokens in part.items()}
        write_restored(header, sections, (decoded.pop(i) for i in range(len(shards))), str(out))
    except ArchiveCorrupt as exc:
        raise UserError(older_format_refusal(archive) or f"{archive}: {exc}") from None
    except RestoreError as exc:
        raise UserError(f"{archive}: {exc}") from None
    except Exception as exc:  # untrusted bytes the checksums let through: one line, nothing written
        raise UserError(f"{archive}: corrupted archive: it does not decode ({type(exc).__name__}: {' '.join(str(exc).split())})") from None
    return UnpackResult(Path(out), header["original"]["size"], len(shards), world.size, time.perf_counter() - started)
