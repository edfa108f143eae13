"""Verification as a function: restore in the clean environment, compare, report."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Optional

from submissions.fileio import check_output, require_file
from verify import clean_env, report


def inspect_archive(path: Path):
    from submissions.archive import inspect  # lazy: keeps `verify --help` light

    return inspect(path)


def verify_archive(
    archive: Path,
    expect: Path,
    report_path: Optional[Path] = None,
    max_seconds: Optional[float] = None,
    rss_limit: Optional[int] = None,
    threads: int = 1,
) -> dict:
    """Restore `archive` in the clean environment, compare with `expect`, write and return the report."""
    archive, expect = Path(archive), Path(expect)

    require_file(archive, "archive")
    require_file(expect, "--expect file")
    report_path = report_path or archive.with_name(archive.name + ".verify.json")
    check_output(report_path, force=True, inputs=(archive, expect))
    info = inspect_archive(archive)

    sandbox = clean_env.make_sandbox(clean_env.ensure_venv(list(info.runtime)), threads)
    with tempfile.TemporaryDirectory(prefix="verify-out-") as tmp:
        restored = Path(tmp) / "restored"
        decode = clean_env.decode(sandbox, archive.resolve(), restored, timeout=max_seconds)
        comparison = report.compare(restored, expect)

    limits = {"max_seconds": max_seconds, "max_rss_bytes": rss_limit, "threads": threads}
    reasons = failure_reasons(archive, info, comparison, decode, limits)
    data = report.build_report(
        archive=archive, info=info, expect=expect, comparison=comparison, decode=decode,
        sandbox=sandbox, limits=limits, passed=not reasons, reasons=reasons,
    )
    data["report_path"] = str(report_path)
    report.write_report(report_path, data)
    return data


def failure_reasons(archive: Path, info, comparison, decode, limits: dict) -> list[str]:
    """Every reason the verification fails; empty means it passed."""
    result, facts = decode.result, decode.facts
    reasons = []
    leaked = [name for name, found in facts["importable"].items() if found]
    if leaked:
        reasons.append(f"PROJECT MODULES IMPORTABLE in the clean env: {', '.join(leaked)}")
    if result.timed_out:
        reasons.append(f"decoder killed after --max-seconds {limits['max_seconds']}")
    elif result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["(no stderr)"])[-1]
        reasons.append(f"decoder exited with {result.returncode}: {last}")
    if comparison.restored_size is None:
        reasons.append("decoder wrote no output")
    elif comparison.first_mismatch is not None:
        reasons.append(
            f"restored file differs at byte {comparison.first_mismatch} "
            f"(size {comparison.restored_size}, expected {comparison.expected_size})"
        )
    if info.original_size != comparison.expected_size or info.original_sha256 != comparison.expected_sha256:
        reasons.append("the archive's recorded original size/sha256 do not match --expect")
    if info.total_bytes != archive.stat().st_size:
        reasons.append(f"archive reports {info.total_bytes} bytes but the file has {archive.stat().st_size}")
    if limits["max_seconds"] is not None and result.seconds > limits["max_seconds"]:
        reasons.append(f"decode took {result.seconds:.2f} s > --max-seconds {limits['max_seconds']}")
    if limits["max_rss_bytes"] is not None and result.peak_rss > limits["max_rss_bytes"]:
        reasons.append(f"peak RSS {format_bytes(result.peak_rss)} > --max-rss {format_bytes(limits['max_rss_bytes'])}")
    return reasons


def format_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


