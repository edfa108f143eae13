"""Compare the restored file with the original and write the JSON verification report."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
import re
import stat
from dataclasses import asdict, dataclass
from pathlib import Path

from submissions.fileio import atomic_write_text

CHUNK = 1 << 20


@dataclass(frozen=True)
class Expected:
    """The --expect file as hashed before decoding: the only thing a restored file is compared with."""

    path: Path
    size: int
    sha256: str
    signature: tuple  # (device, inode, size, mtime_ns): a change means someone wrote it meanwhile

    def changed(self) -> bool:
        try:
            return _signature(os.stat(self.path)) != self.signature
        except OSError:
            return True


def _signature(st: os.stat_result) -> tuple:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def hash_expected(path: Path) -> Expected:
    before = os.stat(path)
    digest = sha256_file(path)
    return Expected(Path(path), before.st_size, digest, _signature(before))


@dataclass
class Comparison:
    expected_size: int
    expected_sha256: str  # taken before decoding
    restored_size: int | None  # None: the decoder wrote no regular file
    restored_sha256: str | None  # None also when the sizes differ (not hashed)
    first_mismatch: int | None  # byte offset, like paq8px -t; None when identical or not found

    @property
    def identical(self) -> bool:
        return self.restored_sha256 == self.expected_sha256 and self.restored_size == self.expected_size


def sha256_file(path: Path) -> str:
    with open(path, "rb") as f:
        return _sha256(f)


def _sha256(f) -> str:
    digest = hashlib.sha256()
    while chunk := f.read(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def first_mismatch(a: Path, b: Path) -> int | None:
    """Offset of the first differing byte; the shorter length if one is a prefix of the other."""
    with open(a, "rb") as fa:
        return _first_mismatch(fa, b)


def _first_mismatch(fa, b: Path) -> int | None:
    offset = 0
    with open(b, "rb") as fb:
        while True:
            ca, cb = fa.read(CHUNK), fb.read(CHUNK)
            if ca != cb:
                for i, (x, y) in enumerate(zip(ca, cb)):
                    if x != y:
                        return offset + i
                return offset + min(len(ca), len(cb))
            if not ca:
                return None
            offset += len(ca)


def open_restored(path: Path):
    """The restored file, only if it is a regular file the decoder wrote: never through a
    symlink it left (which could point at the --expect file), else None."""
    try:  # O_NONBLOCK: a FIFO left there must not hang us (no effect on a regular file)
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return os.fdopen(fd, "rb")


def compare(restored: Path, expected: Expected) -> Comparison:
    found = open_restored(restored)
    if found is None:
        return Comparison(expected.size, expected.sha256, None, None, None)
    with found:
        size = os.fstat(found.fileno()).st_size
        digest = _sha256(found) if size == expected.size else None  # never hash a planted 1 TB sparse file
        comparison = Comparison(expected.size, expected.sha256, size, digest, None)
        if not comparison.identical and not expected.changed():
            found.seek(0)
            comparison.first_mismatch = _first_mismatch(found, expected.path)
    return comparison


def bits_per_byte(archive_bytes: int, original_size: int) -> float | None:
    return None if original_size == 0 else 8 * archive_bytes / original_size


def machine() -> dict:
    """Enough to compare timings between machines, without the hostname."""
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_bytes": memory_bytes(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def memory_bytes() -> int | None:
    """This machine's physical memory in bytes (None where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def build_report(
    *, archive: Path, archive_sha256: str, info, expected: Expected, comparison: Comparison, decode, sandbox,
    limits: dict, passed: bool, reasons: list[str],
) -> dict:
    """The report as a JSON-able dict. `info` is an ArchiveInfo, `decode` a decode.Decode."""
    result, facts = decode.result, decode.facts
    return {
        "archive": {
            "path": str(archive.resolve()),
            "total_bytes": info.total_bytes,
            "file_bytes": archive.stat().st_size,
            "sha256": archive_sha256,  # of the bytes decoded; lets a scoreboard prove a file on disk is this archive
            "parts": dict(info.parts),
            "runtime": list(info.runtime),
        },
        "original": {"path": str(expected.path.resolve()), "size": info.original_size, "sha256": info.original_sha256},
        "comparison": asdict(comparison),
        "bits_per_byte": bits_per_byte(info.total_bytes, info.original_size),
        "decode_seconds": round(result.seconds, 3),
        "decode_cpu_seconds": round(result.cpu_seconds, 3),
        "jit_compile_seconds": jit_compile_seconds(result.stderr),
        "peak_rss_bytes": result.peak_rss,  # the whole process tree
        "limits": limits,
        "memory": result.memory,  # how the limit was enforced, what the cgroup saw
        "isolation": sandbox.describe(),
        "passed": passed,
        "reasons": reasons,
        "decoder": {
            "returncode": result.returncode,
            "timed_out": result.timed_out,
            "leftover_processes_killed": result.leftovers,
            "stderr_tail": result.stderr.splitlines()[-20:],
        },
        "machine": machine(),
        "versions": {"python": facts["python"], **facts["packages"]},
        "clean_env": {
            "venv": str(sandbox.venv.path),
            "install_method": sandbox.venv.method,
            "requirements": sandbox.venv.requirements,
            "isolated_flags": facts["flags"],
            "sys_path": facts["sys_path"],
            "network_cut": sandbox.network_cut,
            "env": sandbox.env("HOME"),
            "project_importable": any(facts["importable"].values()),
            "project_modules": facts["importable"],
        },
        "date": utc_now(),
        "config": info.config,
    }


def sandbox_refusal(report: dict) -> str | None:
    """Why a report cannot become a record: only a verification in the full sandbox counts."""
    level = (report.get("isolation") or {}).get("level")
    if level == "bwrap":
        return None
    if level is None:
        return "was written before verification was sandboxed (no isolation level): verify it again"
    return f"was not sandboxed (isolation level {level!r}, --unsandboxed): verify it again without --unsandboxed"


def jit_compile_seconds(stderr: str) -> float | None:
    """What the decoder said its kernels took to compile (part of decode_seconds); None for
    a decoder without kernels."""
    found = re.findall(r"kernels compiled in ([0-9.]+) s", stderr)
    return float(found[-1]) if found else None


def write_report(path: Path, report: dict) -> None:
    atomic_write_text(path, json.dumps(report, indent=2, sort_keys=False) + "\n")
