"""Where the bits go, by kind of text: a model's code length over a run's tokens, split by what
each byte of the text is (page header XML, links, templates, tables, headings and lists, prose).

    python benchmarks/bits_by_kind.py runs/e6 '{"kind": "mix"}' '{"kind": "online"}'
    python benchmarks/bits_by_kind.py runs/vim '{"kind": "mix"}' --by byte   # any text: by byte class

Each config codes the run's tokens once (exact model, one stream, as mix_screen.py); a token's
ideal code length (the sum of -log2 P over its decisions) is shared evenly by its bytes, and
each byte is counted in the kind the text says it is: `--by wiki` (enwik's structure: a small
state machine over the tokens' bytes: inside <text>...</text> or not, [[ ]] and {{ }} depth, the
line's first byte) or `--by byte` (the byte's own class: letter, digit, space, ...). Case marks
(the control bytes of case folding) count as bits but not as bytes of the original. The tree of
token ids must be complete (vocab 2**n: the default 512).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from mix_input_proxy import model_bits  # a sibling script (benchmarks/ is the script's folder)
from tokenizer import load_tokenizer

KINDS = ("page header (XML)", "links [[ ]]", "templates {{ }}", "tables (line starts | ! {|)", "headings, lists (= * # :)", "prose and the rest")
HEADER, LINK, TEMPLATE, TABLE, LIST, PROSE = range(len(KINDS))
BYTE_KINDS = ("letters (and bytes >= 0x80)", "digits", "spaces", "newlines", "punctuation, markup", "case marks")
CASE_MARKS = (1, 2)  # tokenizer/case.py's marks (the header's "case")


def token_bits(config: dict, table: list, tokens: np.ndarray) -> np.ndarray:
    """Each token's ideal code length in bits under the model of config."""
    p = model_bits(config, table, tokens)  # P(actual bit) of every decision, in coding order
    return -np.log2(p).reshape(len(tokens), -1).sum(axis=1)


def byte_kinds(text: bytes) -> np.ndarray:
    """The kind (index into KINDS) of every byte of the text."""
    kinds = np.empty(len(text), dtype=np.int8)
    in_text, links, templates, line_kind, at_line_start = False, 0, 0, PROSE, True
    i = 0
    while i < len(text):
        if not in_text and text.startswith(b"<text", i):
            end = text.find(b">", i)
            kinds[i : end + 1] = HEADER
            i, in_text, links, templates, at_line_start, line_kind = end + 1, True, 0, 0, True, PROSE
            continue
        if in_text and text.startswith(b"</text>", i):
            kinds[i : i + 7] = HEADER
            i, in_text = i + 7, False
            continue
        byte, pair, step = text[i : i + 1], text[i : i + 2], 1
        if not in_text:
            kinds[i] = HEADER
        else:
            if at_line_start:
                line_kind = TABLE if byte in (b"|", b"!") or pair == b"{|" else LIST if byte in (b"=", b"*", b"#", b":") else PROSE
            if pair in (b"[[", b"{{"):  # an opening pair is inside what it opens
                links, templates, step = links + (pair == b"[["), templates + (pair == b"{{"), 2
            kinds[i : i + step] = LINK if links else TEMPLATE if templates else line_kind
            if pair in (b"]]", b"}}"):  # a closing pair is inside what it closes
                kinds[i : i + 2] = LINK if links else TEMPLATE if templates else line_kind
                links, templates, step = max(links - (pair == b"]]"), 0), max(templates - (pair == b"}}"), 0), 2
        at_line_start = text[i + step - 1 : i + step] == b"\n"
        i += step
    return kinds


def byte_classes(text: bytes) -> np.ndarray:
    """The class (index into BYTE_KINDS) of every byte of the text."""
    table = np.full(256, 4, dtype=np.int8)
    for members, kind in ((b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" + bytes(range(128, 256)), 0), (b"0123456789", 1), (b" ", 2), (b"\n", 3), (bytes(CASE_MARKS), 5)):
        table[np.frombuffer(members, dtype=np.uint8)] = kind
    return table[np.frombuffer(text, dtype=np.uint8)]


def bits_per_byte(bits: float, n_bytes: int) -> str:
    return f"{bits / n_bytes:.3f}" if n_bytes else "–"  # case marks: no bytes of the original


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run folder of `pipeline train` (tokenizer.model, tokens.npy)")
    parser.add_argument("configs", nargs="+", help="JSON model configs, e.g. '{\"kind\": \"mix\"}'")
    parser.add_argument("--by", choices=("wiki", "byte"), default="wiki", help="wiki: enwik's structure; byte: each byte's class")
    args = parser.parse_args()
    tokenizer = load_tokenizer((args.run / "tokenizer.model").read_bytes())
    table, tokens = tokenizer.table, np.load(args.run / "tokens.npy")
    text = b"".join(table[t] for t in tokens)
    names, kinds = (KINDS, byte_kinds(text)) if args.by == "wiki" else (BYTE_KINDS, byte_classes(text))
    marks = np.isin(np.frombuffer(text, dtype=np.uint8), np.array(CASE_MARKS, dtype=np.uint8))  # case marks: not bytes of the original
    owner = np.repeat(np.arange(len(tokens)), [len(table[t]) for t in tokens])
    lengths = np.array([len(table[t]) for t in tokens], dtype=np.float64)
    original = np.bincount(kinds[~marks], minlength=len(names))
    columns = []
    for text_config in args.configs:
        shares = (token_bits(json.loads(text_config), table, tokens) / lengths)[owner]
        columns.append((text_config, np.bincount(kinds, weights=shares, minlength=len(names))))
    head = "| kind | bytes | share |" + "".join(f" {name}: bytes coded | share | bits/byte |" for name, _ in columns)
    print(head + "\n|---|---:|---:|" + "---:|---:|---:|" * len(columns))
    for k, kind in enumerate(names):
        cells = "".join(f" {bits[k] / 8:,.0f} | {bits[k] / bits.sum():.1%} | {bits_per_byte(bits[k], original[k])} |" for _, bits in columns)
        print(f"| {kind} | {original[k]:,} | {original[k] / original.sum():.1%} |{cells}")
    cells = "".join(f" {bits.sum() / 8:,.0f} | 100% | {bits.sum() / original.sum():.3f} |" for _, bits in columns)
    print(f"| all | {original.sum():,} | 100% |{cells}")


if __name__ == "__main__":
    main()
