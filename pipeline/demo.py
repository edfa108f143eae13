"""`pipeline demo`: the whole chain on the built-in sample, then sizes next to xz."""

from __future__ import annotations

from pathlib import Path

from submissions.errors import UserError
from pipeline.progress import console


def _table(rows: list[tuple[str, int, int]]):
    from rich.table import Table

    table = Table(title="sizes on the built-in sample")
    for column in ("compressor", "bytes", "bits/byte"):
        table.add_column(column, justify="right" if column != "compressor" else "left")
    for name, size, original in rows:
        table.add_row(name, f"{size:,}", f"{8 * size / original:.4f}")
    return table


def run_demo(workdir: Path, force: bool = False) -> bool:
    from pipeline.baselines import BASELINES, measure
    from pipeline.data import write_sample
    from pipeline.pack import pack
    from pipeline.train import train
    from verify.runner import verify_archive
    from verify.sandbox import bwrap_problem

    workdir = Path(workdir)
    if workdir.exists() and any(workdir.iterdir()) and not force:
        raise UserError(f"{workdir} already exists and is not empty (use --force to reuse it)")
    sample, run, archive = workdir / "sample.xml", workdir / "run", workdir / "sample.arc"

    console.rule("1/4 data")
    write_sample(sample, force=True)
    original = sample.stat().st_size
    console.print(f"built-in sample: {sample} ({original:,} bytes)")

    console.rule("2/4 train")
    trained = train(sample, run, force=True)
    console.print(f"tokenizer: vocab {trained.vocab_size}, {trained.bytes_per_token:.2f} bytes/token")

    console.rule("3/4 pack")
    packed = pack(run, archive, force=True)
    console.print(f"archive {archive}: {packed.total_bytes:,} bytes, parts {packed.parts}")

    console.rule("4/4 verify (sandbox)")
    problem = bwrap_problem()
    if problem:  # the demo still shows the round trip; `verify run` itself would refuse
        console.print(f"[yellow]no sandbox ({problem}): verifying unsandboxed; install bubblewrap for the real check[/]")
    report = verify_archive(archive, sample, unsandboxed=problem is not None)
    verdict = "[bold green]PASS[/]" if report["passed"] else "[bold red]FAIL[/] " + "; ".join(report["reasons"])
    console.print(f"{verdict}: decode {report['decode_seconds']:.1f}s, peak RSS {report['peak_rss_bytes'] / 2**20:.0f} MiB, report {report['report_path']}")

    data = sample.read_bytes()
    rows = [("this archive (verified)" if report["passed"] else "this archive (FAILED)", packed.total_bytes, original)]
    for name in ("xz -9e", "lzma-9e", "zstd-22"):
        compressor = BASELINES.get(name)
        if compressor is not None and compressor.available():
            result = measure(compressor, data)
            if result.round_trip_ok:
                rows.append((name, result.compressed_bytes, original))
    console.print(_table(rows))
    return bool(report["passed"])
