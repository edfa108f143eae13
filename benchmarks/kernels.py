"""The compiled mixing model beside the numpy one it replaced, on one file, in one run.

Every measurement is a fresh process (so JIT compilation, imports and peak RSS are its own):
the kernels encode and decode at 1, 4 and 16 streams; the numpy lock-step model of an older
commit (checked out into a temporary git worktree) encodes and decodes at its default 16
streams; and a real archive of the default settings is packed and restored by itself, whole
and in 2 shards with --jobs 2. Prints a markdown table and writes it to --out.

    python benchmarks/kernels.py ../shared/data/enwik6 --out benchmarks/results/kernels_enwik6.md
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NUMPY_COMMIT = "743b890"  # the last commit of the numpy mixing model

# one side of the coder in a fresh process: the repo on PYTHONPATH decides which model runs
WORKER = r"""
import json, resource, sys, time
from pathlib import Path
import numpy as np
started = time.perf_counter()
from submissions.decoder import codec, encoding
from submissions.decoder.model_registry import build_model
from tokenizer import load_tokenizer
side, run, streams, payload_path = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
table = load_tokenizer((run / "tokenizer.model").read_bytes()).table
tokens = np.load(run / "tokens.npy")
model = build_model({"kind": "mix"}, len(table), streams, 28, b"", token_bytes=table)
imported = time.perf_counter()
if side == "encode":
    payload, ideal = encoding.encode_with_cost(model, tokens, streams, 28)
    payload_path.write_bytes(payload)
else:
    decoded = codec.decode(model, payload_path.read_bytes(), len(tokens), streams, 28)
    assert np.array_equal(decoded, tokens), "decoded tokens differ"
done = time.perf_counter()
try:
    from submissions.decoder.jit import COMPILE_SECONDS
    compiled = COMPILE_SECONDS[0]
except ImportError:  # the numpy model compiles nothing
    compiled = 0.0
print(json.dumps({"coding_s": done - imported, "setup_s": imported - started, "compile_s": compiled}))
"""


def child(command: list[str], env: dict | None = None, cwd: Path = ROOT) -> dict:
    """Run a child, returning its wall seconds, peak RSS (from wait4) and last stdout line."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd)
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(map(str, command))}\n{err.decode(errors='replace')[-3000:]}")
    lines = out.decode().strip().splitlines()
    return {"wall_s": seconds, "peak_rss": usage.ru_maxrss * 1024, "stdout": lines[-1] if lines else "", "stderr": err.decode(errors="replace")}


def code_both_sides(repo: Path, run: Path, streams: int, scratch: Path) -> dict:
    payload = scratch / f"payload-{repo.name}-{streams}"
    sides = {}
    for side in ("encode", "decode"):
        # an empty numba cache: every process compiles its kernels, as an archive's decoder does
        cache = tempfile.mkdtemp(prefix="cache-", dir=scratch)
        env = dict(os.environ, PYTHONPATH=str(repo), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", XDG_CACHE_HOME=cache)
        result = child([sys.executable, "-c", WORKER, side, str(run), str(streams), str(payload)], env=env, cwd=scratch)
        sides[side] = {**json.loads(result["stdout"]), "wall_s": result["wall_s"], "peak_rss": result["peak_rss"]}
    return {"payload_bytes": payload.stat().st_size, **sides}


def archive_rows(data: Path, scratch: Path) -> list[dict]:
    """A real archive of the default settings, restored by itself: whole, and in 2 shards with --jobs 2."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    pipeline = [sys.executable, "-m", "pipeline"]
    run = scratch / "archive-run"
    child([*pipeline, "train", str(data), "-o", str(run), "--force"], env=env)
    rows = []
    for shards, jobs in ((1, 1), (2, 2)):
        archive = scratch / f"default-{shards}.arc"
        packed = child([*pipeline, "pack", str(run), "-o", str(archive), "--shards", str(shards), "--force", "-q"], env=env)
        out = scratch / f"restored-{shards}"
        restored = child([sys.executable, "-I", str(archive), "-o", str(out), "--force", "-q", "--jobs", str(jobs)], env=env, cwd=scratch)
        assert out.read_bytes() == data.read_bytes(), "the archive did not restore the file"
        rows.append({"shards": shards, "jobs": jobs, "archive_bytes": archive.stat().st_size, "pack_s": packed["wall_s"], "restore_s": restored["wall_s"], "restore_rss": restored["peak_rss"], "stderr": restored["stderr"]})
    return rows


def numpy_worktree(scratch: Path) -> Path:
    tree = scratch / "numpy-model"
    subprocess.run(["git", "worktree", "add", "--detach", str(tree), NUMPY_COMMIT], cwd=ROOT, check=True, capture_output=True)
    return tree


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--no-numpy", action="store_true", help="skip the numpy model (it takes ~10 minutes on enwik6)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "kernels_enwik6.md")
    args = parser.parse_args()
    data = args.data.resolve()
    with tempfile.TemporaryDirectory(prefix="kernels-bench-") as tmp:
        scratch = Path(tmp)
        run = scratch / "run"
        child([sys.executable, "-m", "pipeline", "train", str(data), "-o", str(run)])
        n_bytes, n_tokens = data.stat().st_size, len(__import__("numpy").load(run / "tokens.npy", mmap_mode="r"))
        rows = [("kernels", s, code_both_sides(ROOT, run, s, scratch)) for s in args.streams]
        if not args.no_numpy:
            tree = numpy_worktree(scratch)
            try:
                rows.append((f"numpy ({NUMPY_COMMIT})", 16, code_both_sides(tree, run, 16, scratch)))
            finally:
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)
        archives = archive_rows(data, scratch)
    report = render(args, data, n_bytes, n_tokens, rows, archives)
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)


def render(args, data: Path, n_bytes: int, n_tokens: int, rows: list, archives: list) -> str:
    def kbs(seconds: float) -> str:
        return f"{n_bytes / seconds / 1000:,.1f}"

    lines = [
        f"# The compiled mixing model beside the numpy model on {data.name}",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"{datetime.date.today().isoformat()}. Command: `python benchmarks/kernels.py {' '.join(sys.argv[1:])}`.",
        f"Input: {data.name}, {n_bytes:,} bytes, tokenized by `pipeline train` (vocab 512): {n_tokens:,} tokens.",
        "Every side is a fresh process: *process s* is its whole wall time (imports, model setup, JIT compile, coding),",
        "*compile s* the kernels' first-call time inside it; KB/s counts the input bytes over the process time.",
        "",
        "| model | streams | payload bytes | encode process s | encode KB/s | decode process s | compile s | decode KB/s | decode peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, streams, r in rows:
        enc, dec = r["encode"], r["decode"]
        lines.append(
            f"| {name} | {streams} | {r['payload_bytes']:,} | {enc['wall_s']:.1f} | {kbs(enc['wall_s'])} | {dec['wall_s']:.1f} | "
            f"{dec['compile_s']:.1f} | {kbs(dec['wall_s'])} | {dec['peak_rss'] / 2**20:,.0f} |"
        )
    lines += [
        "",
        "A real archive of the default settings (`pipeline train` + `pipeline pack`), restored by itself (`python ARCHIVE -o OUT`):",
        "",
        "| shards | --jobs | archive bytes | pack s | restore s | restore KB/s | restore peak RSS MiB (main process) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for a in archives:
        lines.append(f"| {a['shards']} | {a['jobs']} | {a['archive_bytes']:,} | {a['pack_s']:.1f} | {a['restore_s']:.1f} | {kbs(a['restore_s'])} | {a['restore_rss'] / 2**20:,.0f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
