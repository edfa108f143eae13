"""Compare the restored file with the original and write the JSON verification report."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from submissions.fileio import atomic_write_text

CHUNK = 1 << 20


@dataclass
class Comparison:
    expected_size: int
    expected_sha256: str
    restored_size: int | None  # None: the decoder wrote nothing
    restored_sha256: str | None
    first_mismatch: int | None  # byte offset, like paq8px -t; None when identical

    @property
    def identical(self) -> bool:
        return self.restored_size is not None and self.first_mismatch is None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def first_mismatch(a: Path, b: Path) -> int | None:
    """Offset of the first differing byte; the shorter length if one is a prefix of the other."""
    offset = 0
    with open(a, "rb") as fa, open(b, "rb") as fb:
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


def compare(restored: Path, expected: Path) -> Comparison:
    exists = restored.is_file()
    return Comparison(
        expected_size=expected.stat().st_size,
        expected_sha256=sha256_file(expected),
        restored_size=restored.stat().st_size if exists else None,
        restored_sha256=sha256_file(restored) if exists else None,
        first_mismatch=first_mismatch(restored, expected) if exists else None,
    )


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
        "memory_bytes": _memory_bytes(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def build_report(
    *, archive: Path, info, expect: Path, comparison: Comparison, decode, sandbox,
    limits: dict, passed: bool, reasons: list[str],
) -> dict:
    """The report as a JSON-able dict. `info` is an ArchiveInfo, `decode` a clean_env.Decode."""
    result, facts = decode.result, decode.facts
    return {
        "archive": {
            "path": str(archive.resolve()),
            "total_bytes": info.total_bytes,
            "file_bytes": archive.stat().st_size,
            "sha256": sha256_file(archive),  # lets a scoreboard prove a file on disk is the verified archive
            "parts": dict(info.parts),
            "runtime": list(info.runtime),
        },
        "original": {"path": str(expect.resolve()), "size": info.original_size, "sha256": info.original_sha256},
        "comparison": asdict(comparison),
        "bits_per_byte": bits_per_byte(info.total_bytes, info.original_size),
        "decode_seconds": round(result.seconds, 3),
        "jit_compile_seconds": jit_compile_seconds(result.stderr),
        "peak_rss_bytes": result.peak_rss,
        "limits": limits,
        "passed": passed,
        "reasons": reasons,
        "decoder": {
            "returncode": result.returncode,
            "timed_out": result.timed_out,
            "stderr_tail": result.stderr.splitlines()[-20:],
        },
        "machine": machine(),
        "versions": {"python": facts["python"], **facts["packages"]},
        "clean_env": {
            "venv": str(sandbox.venv.path),
            "install_method": sandbox.venv.method,
            "requirements": sandbox.venv.requirements,
            "command": sandbox.argv("ARCHIVE", "-o", "OUTPUT"),
            "isolated_flags": facts["flags"],
            "sys_path": facts["sys_path"],
            "network_cut": sandbox.network_cut,
            "env": sandbox.env(Path("<run dir>")),
            "project_importable": any(facts["importable"].values()),
            "project_modules": facts["importable"],
        },
        "date": utc_now(),
        "config": info.config,
    }


def jit_compile_seconds(stderr: str) -> float | None:
    """What the decoder said its kernels took to compile (part of decode_seconds); None for
    a decoder without kernels."""
    found = re.findall(r"kernels compiled in ([0-9.]+) s", stderr)
    return float(found[-1]) if found else None


def write_report(path: Path, report: dict) -> None:
    atomic_write_text(path, json.dumps(report, indent=2, sort_keys=False) + "\n")
