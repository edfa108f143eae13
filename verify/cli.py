"""`verify run ARCHIVE --expect FILE`: restore an archive in a sandbox and check it.

Exit codes: 0 verified (byte-identical, within limits, sandboxed or --unsandboxed), 1 verification
failed or no sandbox could be made, 2 user error (missing file, invalid archive, bad option value).
Nothing here imports torch; the archive inspector is imported only when needed.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Optional

import typer

from submissions.errors import UserError
from verify.runner import format_bytes

app = typer.Typer(add_completion=False, no_args_is_help=True)

UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


@app.callback()
def main() -> None:
    """Verify compressed archives in a clean, isolated environment."""


def parse_size(text: str) -> int:
    """'10G', '512M', '1.5GiB', '123456' -> bytes (binary units)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if not match:
        raise UserError(f"invalid size {text!r} (expected e.g. 10G, 512M or a number of bytes)")
    return int(float(match.group(1)) * UNITS[match.group(2).upper()])


@app.command()
def run(
    archive: Path = typer.Argument(..., help="The archive (.arc) to verify."),
    expect: Path = typer.Option(..., "--expect", help="The original file the archive must restore."),
    report: Optional[Path] = typer.Option(None, "--report", help="Report path (default: ARCHIVE.verify.json)."),
    max_seconds: Optional[float] = typer.Option(
        None, "--max-seconds", help="Kill the decoder's whole process tree and fail past this time (default: 600 s + 1 s per 4 KB restored)."),
    max_rss: Optional[str] = typer.Option(
        None, "--max-rss", help="Memory limit of the decoder's whole process tree, enforced (default 10G), e.g. 10G, 512M, bytes."),
    threads: int = typer.Option(1, "--threads", min=1, help="OMP/MKL/OpenBLAS threads given to the decoder."),
    unsandboxed: bool = typer.Option(
        False, "--unsandboxed", help="Run without bubblewrap where it is missing (the report says so; `pipeline submit` refuses it)."),
) -> None:
    """Restore ARCHIVE in a sandbox (bubblewrap: read-only runtime, no host files, no network) and compare it with --expect."""
    try:
        from verify.runner import SandboxUnavailable, verify_archive

        rss_limit = parse_size(max_rss) if max_rss is not None else None
        if max_seconds is not None and max_seconds <= 0:
            raise UserError("--max-seconds must be positive")
        data = verify_archive(archive, expect, report, max_seconds, rss_limit, threads, unsandboxed)
        print_summary(data, Path(data["report_path"]))
        passed = data["passed"]
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(1 if isinstance(exc, SandboxUnavailable) else 2)
    raise typer.Exit(0 if passed else 1)


def print_summary(data: dict, report_path: Path) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False)
    verdict = "[bold green]PASS[/]" if data["passed"] else "[bold red]FAIL[/]"
    arc, env = data["archive"], data["clean_env"]
    parts = ", ".join(f"{name} {size}" for name, size in arc["parts"].items())
    bpb = data["bits_per_byte"]
    console.print(f"{verdict}  {escape(arc['path'])}")
    console.print(f"  total {arc['total_bytes']} bytes ({parts})")
    console.print(f"  bpb {bpb:.4f}" if bpb is not None else "  bpb n/a (empty original)")
    jit = data.get("jit_compile_seconds")
    compiled = f" (kernels compiled in {jit:.2f} s, numba {data['versions'].get('numba')})" if jit is not None else ""
    console.print(f"  decode {data['decode_seconds']:.2f} s{compiled}, peak RSS {format_bytes(data['peak_rss_bytes'])} (whole process tree)")
    sandboxed = data["isolation"]["level"] == "bwrap"
    console.print(
        f"  isolation: {'bubblewrap sandbox' if sandboxed else '[bold yellow]NONE (--unsandboxed)[/]'}, "
        f"{env['install_method']} venv, network {'cut' if env['network_cut'] else '[yellow]NOT cut[/]'}, "
        f"project importable: {'[bold red]YES[/]' if env['project_importable'] else 'no'}"
    )
    memory = data["memory"]
    limit = format_bytes(memory['limit_bytes']) if memory['limit_bytes'] is not None else 'none'
    console.print(f"  memory limit {limit} enforced by {memory['method']}")
    for reason in data["reasons"]:
        console.print(f"  [red]- {escape(reason)}[/]")
    console.print(f"  report: {escape(str(report_path))}")


if __name__ == "__main__":  # python -m verify.cli (where the console script is not installed)
    app()
