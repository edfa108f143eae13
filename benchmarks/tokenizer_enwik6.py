"""Tokenizer facts per vocabulary size: bytes/token, training and encoding speed, table size.

    python benchmarks/tokenizer_enwik6.py [FILE] [--out benchmarks/results/tokenizer_enwik6.md]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time
from pathlib import Path

from tokenizer import train_tokenizer

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "enwik6"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path, nargs="?", default=DEFAULT)
    parser.add_argument("--vocab", type=int, nargs="+", default=[1024, 2048, 4096, 8192, 16384])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/tokenizer_enwik6.md"))
    args = parser.parse_args()
    data = args.file.read_bytes()
    lines = [
        f"# Lossless BPE tokenizer on {args.file.name} ({len(data):,} bytes)",
        "",
        f"{datetime.date.today()}, {platform.machine()} {os.cpu_count()} cores, python {platform.python_version()}",
        "",
        "| vocab | bytes/token | tokens | train s | encode MB/s | table bytes (lzma) | round trip |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    for vocab in args.vocab:
        started = time.perf_counter()
        tok = train_tokenizer(data, vocab)
        trained = time.perf_counter()
        ids = tok.encode(data)
        encoded = time.perf_counter()
        ok = tok.decode(ids) == data
        lines.append(
            f"| {tok.vocab_size} | {len(data) / len(ids):.3f} | {len(ids):,} | {trained - started:.2f} | "
            f"{len(data) / (encoded - trained) / 1e6:.2f} | {len(tok.table_blob()):,} | {'exact' if ok else 'FAILED'} |"
        )
        print(lines[-1], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
