"""Tokenizer facts per vocabulary size: bytes/token, training and encoding speed, table size, escapes.

    python benchmarks/tokenizer_enwik6.py [FILE] [--vocab 1024 4096] [--out benchmarks/results/tokenizer_enwik6.md]

"byte tokens" counts ids 0..255: characters outside the vocabulary (SentencePiece's own byte
fallback) plus what the wrapper routes around SentencePiece ("escaped bytes": U+2581 and
invalid UTF-8) and text whose encoding failed the round-trip check ("fallback bytes").
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time
from pathlib import Path

import sentencepiece

from tokenizer import train_tokenizer

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared" / "data" / "enwik6"


def _row(data: bytes, vocab: int, model_type: str) -> str:
    started = time.perf_counter()
    tok = train_tokenizer(data, vocab, model_type)
    trained = time.perf_counter()
    stats: dict = {}
    ids = tok.encode(data, stats)
    encoded = time.perf_counter()
    exact = tok.decode(ids) == data
    decoded = time.perf_counter()
    return (
        f"| {tok.vocab_size} | {len(data) / max(len(ids), 1):.3f} | {len(ids):,} | {trained - started:.2f} | "
        f"{len(data) / (encoded - trained) / 1e6:.2f} | {len(data) / (decoded - encoded) / 1e6:.1f} | "
        f"{len(tok.table_blob()):,} | {int((ids < 256).sum()):,} | {stats['escaped_bytes']:,} | "
        f"{stats['fallback_bytes']:,} | {'exact' if exact else 'FAILED'} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path, nargs="?", default=DEFAULT)
    parser.add_argument("--vocab", type=int, nargs="+", default=[1024, 2048, 4096, 8192, 16384])
    parser.add_argument("--model-type", default="bpe", choices=["bpe", "unigram"])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "tokenizer_enwik6.md")
    args = parser.parse_args()
    data = args.file.read_bytes()
    lines = [
        f"# Lossless {args.model_type} tokenizer on {args.file.name} ({len(data):,} bytes)",
        "",
        f"{datetime.date.today()}; {platform.platform()}, {os.cpu_count()} CPUs; "
        f"python {platform.python_version()}, sentencepiece {sentencepiece.__version__}",
        "",
        "Trained on the whole file, then encoding the whole file. Table bytes: `table_blob()` as archives",
        "carry it. Byte tokens: ids 0..255 (rare characters left to byte fallback, plus escaped and",
        "fallback bytes). Escaped bytes: U+2581 and invalid UTF-8, which never reach SentencePiece.",
        "Fallback bytes: text whose SentencePiece encoding did not decode back exactly.",
        "",
        "| vocab | bytes/token | tokens | train s | encode MB/s | decode MB/s | table bytes | byte tokens | escaped bytes | fallback bytes | round trip |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    print("\n".join(lines), flush=True)
    for vocab in args.vocab:
        lines.append(_row(data, vocab, args.model_type))
        print(lines[-1], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
