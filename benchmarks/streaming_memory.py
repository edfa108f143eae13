"""Peak memory of train (tokenizer on a sample + chunked tokenization), pack and decode as the
input grows: 10 MB, 100 MB, 1 GB made by repeating ../shared/data/enwik6 (labelled as such).

Each stage runs as its own program through pipeline.memory.run_program, which reports that
process's own peak RSS (wait4). Coding a 1 GB file takes hours on a 2-core CPU, so
--code-sizes picks the sizes that are also packed and decoded (default: the two smaller).

    python benchmarks/streaming_memory.py --out benchmarks/results/streaming_memory_2cpu.md
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import time
from pathlib import Path

from pipeline.memory import run_program

ROOT = Path(__file__).resolve().parents[1]
ENWIK6 = ROOT.parent / "shared" / "data" / "enwik6"
SIZES = {"10MB": 10, "100MB": 100, "1GB": 1000}  # copies of enwik6 (1,000,000 bytes)


def repeated_file(folder: Path, copies: int) -> Path:
    path = folder / f"enwik6x{copies}"
    if not path.is_file() or path.stat().st_size != copies * ENWIK6.stat().st_size:
        block = ENWIK6.read_bytes()
        with open(path, "wb") as f:
            for _ in range(copies):
                f.write(block)
    return path


def stage(name: str, argv: list[str]) -> dict:
    run = run_program(argv, cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS="1"))
    if run.returncode != 0:
        raise SystemExit(f"{name} failed: {run.stderr.decode(errors='replace')[-2000:]}")
    print(f"  {name}: {run.seconds:.1f} s, peak {run.peak_rss / 2**20:,.0f} MiB", flush=True)
    return {"seconds": run.seconds, "peak": run.peak_rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10MB,100MB,1GB")
    parser.add_argument("--code-sizes", default="10MB,100MB", help="sizes that are also packed and decoded")
    parser.add_argument("--model", default="context")
    parser.add_argument("--streams", type=int, default=4096)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/streaming_memory"))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    pipeline = [sys.executable, "-m", "pipeline"]
    rows = []
    for label in args.sizes.split(","):
        data = repeated_file(args.workdir, SIZES[label])
        run, archive, restored = args.workdir / f"run_{label}", args.workdir / f"{label}.arc", args.workdir / f"{label}.out"
        print(f"{label}: {data}", flush=True)
        row = {"label": label, "bytes": data.stat().st_size}
        row["train"] = stage("train", [*pipeline, "train", str(data), "-o", str(run), "--model", args.model, "--streams", str(args.streams), "--force", "-q"])
        row["ids"] = (run / "tokens.npy").stat().st_size
        if label in args.code_sizes.split(","):
            row["pack"] = stage("pack", [*pipeline, "pack", str(run), "-o", str(archive), "--force", "-q"])
            restored.unlink(missing_ok=True)
            row["decode"] = stage("decode", [sys.executable, str(archive), "-q", "-o", str(restored)])
            if restored.read_bytes() != data.read_bytes():
                raise SystemExit(f"{label}: restored file differs")
            row["archive"] = archive.stat().st_size
            restored.unlink()
        shutil.rmtree(run)
        rows.append(row)
    text = markdown(rows, args)
    print(text)
    if args.out:
        args.out.write_text(text)


def _cell(row: dict, name: str) -> str:
    if name not in row:
        return "not run"
    return f"{row[name]['peak'] / 2**20:,.0f} MiB / {row[name]['seconds']:,.0f} s"


def markdown(rows: list[dict], args) -> str:
    lines = [
        "# Peak memory as the input grows (streaming train, pack, decode)",
        "",
        f"{time.strftime('%Y-%m-%d')}, {platform.machine()} {os.cpu_count()}-core dev machine, Python {platform.python_version()}; "
        f"model `{args.model}`, {args.streams} streams, one process per stage (peak RSS by wait4). "
        "Inputs are ../shared/data/enwik6 repeated (10, 100, 1000 copies): repetitive text, real bytes.",
        "",
        "| input | bytes | train: tokenizer sample + chunked ids | id file | pack | decode (the archive itself) | archive bytes |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        archive = f"{row['archive']:,}" if "archive" in row else "–"
        lines.append(f"| enwik6 x{row['bytes'] // 10**6} ({row['label']}) | {row['bytes']:,} | {_cell(row, 'train')} | {row['ids']:,} | {_cell(row, 'pack')} | {_cell(row, 'decode')} | {archive} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
