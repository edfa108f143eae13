"""Verification as a function: hash the expected file, restore in the sandbox, compare, report."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Optional

from submissions.errors import UserError
from submissions.fileio import check_output, require_file
from verify import clean_env, decode, report, sandbox


def inspect_archive(path: Path):
    from submissions.archive import inspect  # lazy: keeps `verify --help` light

    return inspect(path)


class SandboxUnavailable(UserError):
    """No sandbox and no --unsandboxed: verification fails (exit 1) before anything runs."""


DEFAULT_MAX_RSS = 10 << 30  # the Hutter Prize's memory limit
DEFAULT_SECONDS_BASE, DEFAULT_BYTES_PER_SECOND = 600.0, 4000  # slower than any decoder we ship (4.5 KB/s the slowest)


def default_max_seconds(original_size: int) -> float:
    return DEFAULT_SECONDS_BASE + original_size / DEFAULT_BYTES_PER_SECOND


def verify_archive(
    archive: Path,
    expect: Path,
    report_path: Optional[Path] = None,
    max_seconds: Optional[float] = None,
    rss_limit: Optional[int] = None,
    threads: int = 1,
    unsandboxed: bool = False,
) -> dict:
    """Restore `archive` in the sandbox, compare with `expect` (hashed first), write and return the report."""
    archive, expect = Path(archive), Path(expect)

    require_file(archive, "archive")
    require_file(expect, "--expect file")
    report_path = report_path or archive.with_name(archive.name + ".verify.json")
    check_output(report_path, force=True, inputs=(archive, expect))
    info = inspect_archive(archive)
    problem = None if unsandboxed else sandbox.bwrap_problem()
    if problem:
        raise SandboxUnavailable(
            f"cannot sandbox the decoder: {problem}; install bubblewrap (apt-get install bubblewrap), "
            "or pass --unsandboxed (the report will say so and `pipeline submit` refuses it)"
        )
    expected = report.hash_expected(expect)  # before the decoder runs: it can neither see nor change what we compare with
    limits = {
        "max_seconds": max_seconds if max_seconds is not None else default_max_seconds(info.original_size),
        "max_rss_bytes": rss_limit if rss_limit is not None else DEFAULT_MAX_RSS,
        "defaults": [name for name, given in (("max_seconds", max_seconds), ("max_rss_bytes", rss_limit)) if given is None],
        "threads": threads,
    }
    box = sandbox.make_sandbox(clean_env.ensure_venv(list(info.runtime)), threads, unsandboxed)
    with tempfile.TemporaryDirectory(prefix="verify-", ignore_cleanup_errors=True) as tmp:  # whatever the decoder left
        decoded = decode.decode(box, archive, Path(tmp), limits["max_rss_bytes"], limits["max_seconds"])
        comparison = report.compare(decoded.restored, expected)

    reasons = failure_reasons(archive, info, expected, comparison, decoded, limits)
    data = report.build_report(
        archive=archive, archive_sha256=decoded.archive_sha256, info=info, expected=expected, comparison=comparison,
        decode=decoded, sandbox=box, limits=limits, passed=not reasons, reasons=reasons,
    )
    data["report_path"] = str(report_path)
    report.write_report(report_path, data)
    return data


def failure_reasons(archive: Path, info, expected, comparison, decoded, limits: dict) -> list[str]:
    """Every reason the verification fails; empty means it passed."""
    result, facts = decoded.result, decoded.facts
    reasons = []
    leaked = [name for name, found in facts["importable"].items() if found]
    if leaked:
        reasons.append(f"PROJECT MODULES IMPORTABLE in the clean env: {', '.join(leaked)}")
    if result.timed_out:
        reasons.append(f"decoder killed after --max-seconds {limits['max_seconds']:g}")
    elif result.memory_exceeded:
        reasons.append(
            f"the decoder's processes went past --max-rss {format_bytes(limits['max_rss_bytes'])}: "
            f"the kernel killed {result.memory['oom_kills']} of them"
        )
    elif result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["(no stderr)"])[-1]
        reasons.append(f"decoder exited with {result.returncode}: {last}")
    if expected.changed():
        reasons.append(f"the --expect file {expected.path} changed during verification")
    if comparison.restored_size is None:
        reasons.append("decoder wrote no output (no regular file)")
    elif not comparison.identical:
        where = f"at byte {comparison.first_mismatch} " if comparison.first_mismatch is not None else ""
        digest = f"sha256 {comparison.restored_sha256[:16]}..., " if comparison.restored_sha256 else ""
        reasons.append(
            f"restored file differs {where}(size {comparison.restored_size}, expected {comparison.expected_size}; "
            f"{digest}expected sha256 {comparison.expected_sha256[:16]}...)"
        )
    if info.original_size != expected.size or info.original_sha256 != expected.sha256:
        reasons.append("the archive's recorded original size/sha256 do not match --expect")
    if info.total_bytes != archive.stat().st_size:
        reasons.append(f"archive reports {info.total_bytes} bytes but the file has {archive.stat().st_size}")
    if result.seconds > limits["max_seconds"] and not result.timed_out:
        reasons.append(f"decode took {result.seconds:.2f} s > --max-seconds {limits['max_seconds']:g}")
    if result.peak_rss > limits["max_rss_bytes"]:
        reasons.append(f"peak RSS of the process tree {format_bytes(result.peak_rss)} > --max-rss {format_bytes(limits['max_rss_bytes'])}")
    return reasons


def format_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


