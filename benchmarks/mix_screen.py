"""Screen mixing-model changes: the exact payload size of a run's tokens under the mixing
model, with config fields overridden, one line per config.

    python benchmarks/mix_screen.py runs/e6 '{}' '{"learning_rate": 14}' --tokens 300000
    python benchmarks/mix_screen.py runs/e6 '{}' --start 294131   # the second of two shards
    python benchmarks/mix_screen.py runs/e6 --leave-out     # each context's worth: the first
                                                            # config once per context, without it
    python benchmarks/mix_screen.py runs/e6 '{}' '{"without": [1101, 2002, 302]}'   # contexts
                                                            # left out, by salt (MixConfig.without)

Each config is coded in the same process (the kernels compile once), whole file, one stream,
one coder block, as `pipeline pack` codes it by default. Sizes are exact; the seconds compare
only within one run of the script (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from submissions.decoder import encoding
from submissions.decoder import contexts
from submissions.decoder.contexts import context_table
from submissions.decoder.model_registry import build_model
from tokenizer import load_tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run folder of `pipeline train` (tokenizer.model, tokens.npy)")
    parser.add_argument("configs", nargs="*", default=["{}"], help="JSON objects of MixConfig fields to override")
    parser.add_argument("--tokens", type=int, default=None, help="code only the first N tokens (after --start)")
    parser.add_argument("--start", type=int, default=0, help="code from token N on (e.g. a shard of the file)")
    parser.add_argument("--streams", type=int, default=1)
    parser.add_argument("--leave-out", action="store_true", help="code the first config once per context, with that context left out")
    args = parser.parse_args()
    table = load_tokenizer((args.run / "tokenizer.model").read_bytes()).table
    tokens = np.load(args.run / "tokens.npy")[args.start :][: args.tokens]
    if args.leave_out:
        leave_out(table, tokens, json.loads(args.configs[0]), args.streams)
        return
    print(f"| config | payload (B) | bits/token | seconds |\n|---|---:|---:|---:|  ({len(tokens):,} tokens)")
    for text in args.configs:
        config = json.loads(text)
        size, seconds, _ = code(table, tokens, config, args.streams)
        print(f"| {text} | {size:,} | {8 * size / len(tokens):.4f} | {seconds:.1f} |", flush=True)


def code(table: list, tokens: np.ndarray, config: dict, streams: int) -> tuple[int, float, object]:
    """(payload bytes, coding seconds, the model) of the tokens under the mixing model (or the
    config's kind) with these config fields."""
    model = build_model(dict({"kind": "mix"}, **config), len(table), streams, 28, b"", token_bytes=table)
    started = time.perf_counter()
    payload, _ = encoding.encode_with_cost(model, tokens, streams, 28)
    return len(payload), time.perf_counter() - started, model


def leave_out(table: list, tokens: np.ndarray, config: dict, streams: int) -> None:
    """One line per context: the payload without it against the payload with every context of
    the config (a context left out takes its embedding in the online network with it)."""
    full, seconds, model = code(table, tokens, config, streams)
    without = list(model.config.without)  # the kind's default where the config names none
    print(f"| context left out | salt | payload (B) | Δ (B) | seconds |\n|---|---:|---:|---:|---:|\n| none | – | {full:,} | – | {seconds:.1f} |", flush=True)
    for salt, parts in context_table(model.config, streams, 0)[1:]:  # order 0 stays; the match rows come with match_lengths
        size, seconds, _ = code(table, tokens, dict(config, without=without + [salt]), streams)
        print(f"| {describe(parts)} | {salt} | {size:,} | {size - full:+,} | {seconds:.1f} |", flush=True)


FACT_NAMES = {value: name.lower().replace("_", " ") for name, value in vars(contexts).items() if name.isupper() and type(value) is int and value < contexts.MATCHES}


def describe(parts: tuple) -> str:
    """A context's parts in words (the table names them only in comments): "word, previous
    word", "last token, 2 tokens back", "3 bytes 2 back"."""
    def part(code: int) -> str:
        if code < contexts.MATCHES:
            return FACT_NAMES[code]
        if code < contexts.TOKEN_PARTS:
            return f"match model {code - contexts.MATCHES}"
        if code < contexts.TEXT_PARTS:
            back = code - contexts.TOKEN_PARTS + 1
            return "last token" if back == 1 else f"{back} tokens back"
        skip, n = divmod(code - contexts.TEXT_PARTS, 16)
        return f"{n} bytes {skip} back"

    return ", ".join(map(part, parts)) or "order 0"


if __name__ == "__main__":
    main()
