"""`pipeline pack --backend torch` beside the compiled kernels, on one run: the same archive?

Each way packs the run in a fresh process (`pipeline pack`, its own compile and imports):
the kernels alone, then the online network in torch on every device and thread count asked
for. Prints a markdown table (seconds, archive bytes, byte-identical to the kernels' archive)
and writes it to --out. On a machine with a GPU, add --devices cpu,cuda.

    python benchmarks/online_torch.py runs/e6 --out benchmarks/results/online_torch_enwik6.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def pack(run: Path, out: Path, extra: list[str], threads: int | None) -> float:
    """Seconds of `pipeline pack run -o out *extra` in a fresh process."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipeline", "pack", str(run), "-o", str(out), "-q", "--force", *extra], check=True, env=env, cwd=ROOT)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--devices", default="cpu", help="comma-separated torch devices: cpu, cuda")
    parser.add_argument("--threads", default="1,2", help="comma-separated torch thread counts (cpu)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    ways = [("kernels", [], None)]
    for device in args.devices.split(","):
        for threads in [int(n) for n in args.threads.split(",")] if device == "cpu" else [None]:
            ways.append((f"torch, {device}" + (f", {threads} thread{'s' * (threads > 1)}" if threads else ""), ["--backend", "torch", "--device", device], threads))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        reference = None
        for i, (name, extra, threads) in enumerate(ways):
            out = Path(tmp) / f"{i}.arc"
            seconds = pack(args.run, out, extra, threads)
            blob = out.read_bytes()
            reference = reference or blob
            rows.append(f"| {name} | {seconds:.1f} | {len(blob):,} | {'yes' if blob == reference else '**no**'} |")
            print(rows[-1], flush=True)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    text = "\n".join([
        f"`pipeline pack {args.run}` by way of coding, {datetime.date.today()}, {machine}",
        "",
        "| way | pack seconds (fresh process) | archive (B) | the kernels' bytes |",
        "|---|---:|---:|---|",
        *rows,
    ])
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
