"""Does the sandbox cost decode time? Verify one archive in turns: in the bubblewrap sandbox,
with --unsandboxed, and (optionally) with an older verifier (a folder holding its `verify/`
package, e.g. `git archive COMMIT verify | tar -x -C DIR`), each in its own process, rounds
interleaved so that other load on the machine falls on all of them alike. Prints a markdown
table of every run and the medians.

    python benchmarks/verify_sandbox.py runs/e6.arc ../shared/data/enwik6 --rounds 3 --baseline /tmp/head
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN = "import sys; sys.path.insert(0, sys.argv.pop(1)); from verify.cli import app; app(sys.argv[1:], prog_name='verify')"


def verify_once(archive: Path, data: Path, report: Path, mode: str, baseline: Path | None) -> dict:
    source = baseline if mode == "baseline" else ROOT
    extra = ["--unsandboxed"] if mode == "unsandboxed" else []
    cmd = [sys.executable, "-c", RUN, str(source), "run", str(archive), "--expect", str(data), "--report", str(report), *extra]
    done = subprocess.run(cmd, cwd=source, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"error: {mode} verification failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")
    return json.loads(report.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("archive", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="folder with an older verify/ package, run the same way")
    args = parser.parse_args()
    modes = ["sandbox", "unsandboxed"] + (["baseline"] if args.baseline else [])
    rows: dict[str, list[dict]] = {mode: [] for mode in modes}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for mode in modes:
                report = verify_once(args.archive.resolve(), args.data.resolve(), Path(tmp) / f"{mode}{round_}.json", mode, args.baseline)
                rows[mode].append(report)
                print(f"round {round_ + 1} {mode}: decode {report['decode_seconds']:.2f} s", file=sys.stderr)
    print("| run | round | decode s | of it JIT s | CPU s (sampled) | peak tree RSS MiB | memory limit by |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for mode in modes:
        for i, r in enumerate(rows[mode], 1):
            cpu = r.get("decode_cpu_seconds")
            method = (r.get("memory") or {}).get("method", "(not enforced)")
            print(f"| {mode} | {i} | {r['decode_seconds']:.2f} | {r.get('jit_compile_seconds') or 0:.2f} | "
                  f"{cpu if cpu is not None else '–'} | {r['peak_rss_bytes'] / 2**20:.0f} | {method} |")
    print()
    for mode in modes:
        print(f"- {mode}: median decode {statistics.median(r['decode_seconds'] for r in rows[mode]):.2f} s")


if __name__ == "__main__":
    main()
