"""Our models beside the strongest standard compressors on several real texts.

For every file: train + pack with each of our model kinds (real archives, every
one restored byte-exactly by `verify run` in its sandbox), then the
baselines on the same bytes, each round-trip checked. Prints a markdown table
(total archive bytes, bits per byte, our decode speed) and writes it to --out.

    python benchmarks/mixing_texts.py ../shared/data/enwik6 FILE... --out benchmarks/results/mixing_texts.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.baselines import BASELINES, measure  # noqa: E402
from pipeline.config import ContextModelConfig, MixingModelConfig, NeuralModelConfig, OnlineConfig, PipelineConfig, TokenizerConfig  # noqa: E402
from pipeline.pack import pack  # noqa: E402
from pipeline.train import train  # noqa: E402
from verify.runner import verify_archive  # noqa: E402

BASELINE_NAMES = ("xz -9e", "zstd -22 --ultra --long=27", "7z PPMd", "zpaq -method 5")


def our_models(neural_minutes: float) -> list[tuple[str, PipelineConfig, dict]]:
    """(name, run config, pipeline.pack options) of each of our rows."""
    mix = PipelineConfig(TokenizerConfig(512), MixingModelConfig())
    models = [
        ("mix (default), vocab 512", mix, {}),
        ("mix, `pack --smallest` (4 encodes)", mix, {"smallest": True}),
        ("online (learns while it codes), vocab 512", PipelineConfig(TokenizerConfig(512), OnlineConfig()), {}),
        ("context, vocab 4096", PipelineConfig(TokenizerConfig(4096), ContextModelConfig()), {}),
    ]
    if neural_minutes:
        neural = NeuralModelConfig(d_model=64, n_layers=2, n_heads=2, max_minutes=neural_minutes)
        models.append((f"neural d64 L2 ({neural_minutes:g} min CPU), vocab 1024", PipelineConfig(TokenizerConfig(1024), neural), {}))
    return models


def measure_ours(name: str, config: PipelineConfig, options: dict, data_file: Path, work: Path) -> dict:
    run, archive = work / "run", work / "out.arc"
    train(data_file, run, config, force=True, progress=False)
    packed = pack(run, archive, force=True, progress=False, **options)
    report = verify_archive(archive, data_file, report_path=work / "verify.json")
    if not report["passed"]:
        raise SystemExit(f"{name} on {data_file}: verification failed: {report['reasons']}")
    encode_s = sum(seconds for _, _, seconds in packed.tried) or packed.seconds  # --smallest: every encode it made
    return {"name": name + (f", kept: {packed.kept}" if packed.kept else ""), "bytes": packed.total_bytes, "parts": packed.parts,
            "encode_s": encode_s, "decode_s": report["decode_seconds"]}


def table_for(data_file: Path, neural_minutes: float) -> str:
    data = data_file.read_bytes()
    rows = []
    for name, config, options in our_models(neural_minutes):
        with tempfile.TemporaryDirectory(prefix="mixing-texts-") as tmp:
            rows.append(measure_ours(name, config, options, data_file, Path(tmp)))
        print(f"  {name}: {rows[-1]['bytes']:,} bytes", flush=True)
    baselines = [measure(BASELINES[n], data) for n in BASELINE_NAMES]
    lines = [
        f"### {data_file.name} ({len(data):,} bytes)",
        "",
        "| compressor | total bytes | bits/byte | parts (decoder / tokenizer / weights / payload) | encode s | decode s |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        p = r["parts"]
        parts = f"{p['decoder']:,} / {p['tokenizer']:,} / {p.get('model', 0):,} / {p['payload']:,}"
        lines.append(f"| {r['name']} | {r['bytes']:,} | {8 * r['bytes'] / len(data):.3f} | {parts} | {r['encode_s']:.1f} | {r['decode_s']:.1f} |")
    for b in baselines:
        if b.compressed_bytes is None:
            lines.append(f"| {b.name} | not measured ({'not found' if not b.available else b.error}) | | | | |")
        else:
            lines.append(f"| {b.name} | {b.compressed_bytes:,} | {b.bits_per_byte:.3f} | | {b.compress_seconds:.1f} | {b.decompress_seconds:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--neural-minutes", type=float, default=0.0, help="also a small neural model (CPU minutes each)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/mixing_texts.md"))
    args = parser.parse_args()
    header = (
        "# Context mixing and the online network beside standard compressors on real texts\n\n"
        f"Measured {datetime.date.today()} on {platform.machine()} Linux, {os.cpu_count()} cores, Python "
        f"{platform.python_version()} (`python benchmarks/mixing_texts.py {' '.join(sys.argv[1:])}`). "
        "Our rows are real archives restored byte-exactly by `verify run` in its sandbox; decode "
        "seconds are that restore, compiling the kernels included (1 thread). Baselines are round-trip checked.\n\n"
    )
    tables = []
    for path in args.files:
        print(f"{path}:", flush=True)
        tables.append(table_for(path, args.neural_minutes))
    text = header + "\n".join(tables)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
