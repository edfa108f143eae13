"""Damaged copies of a valid archive, made every way a disk, a transfer or a hand can damage
one: truncations, bit flips, foreign files, and header or section edits whose checksums are
recomputed (so only the reader's own checks can catch them). Each case: name -> bytes."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import numpy as np

from submissions.archive import pack_modules, split_program
from submissions.decoder.container import HEADER, PAYLOAD, PROGRAM, TOKENIZER, program_parts, read_archive, split_sections
from tokenizer.table import pack_table


def rezip(blob: bytes, edit_header=None, sections: dict | None = None) -> bytes:
    """The archive with its header edited (edit_header(header) -> header, or bytes to store as
    the header's text) and sections replaced (their sizes in the header too), every CRC
    recomputed as a packer would."""
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        members = {info.filename: zf.read(info) for info in zf.infolist()}
    program = members[PROGRAM]
    parts = program_parts(program)
    header = json.loads(parts[HEADER])
    kept = split_sections(program, header["sections"])
    coded = split_program(program[: len(program) - sum(header["sections"].values())])[1]  # the coded part (program.py) as it was
    kept.update(sections or {})
    header["sections"] = {name: len(data) for name, data in kept.items()}
    if edit_header is not None:
        header = edit_header(header)
    parts[HEADER] = header.decode() if isinstance(header, bytes) else json.dumps(header)
    members[PROGRAM] = pack_modules(parts) + coded + b"".join(kept[name] for name in sorted(kept))
    return rewritten(members)


def rewritten(members: dict[str, bytes]) -> bytes:
    """An archive of these members (name -> bytes), their CRCs computed afresh."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED if name == "__main__.py" else zipfile.ZIP_STORED)
    return out.getvalue()


def _section(blob: bytes, name: str) -> bytes:
    try:
        return read_archive(io.BytesIO(blob))[1][name]
    except Exception:  # not an archive: case names only
        return bytes(16)


def _set(path: str, value):
    """A header edit: the field at dotted `path` (list items by number) set to value; None deletes it."""

    def edit(header: dict) -> dict:
        *parents, last = path.split(".")
        node = header
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(last)] = value
        elif value is None:
            del node[last]
        else:
            node[last] = value
        return header

    return edit


def _shift(path: str, delta: int):
    def edit(header: dict) -> dict:
        *parents, last = path.split(".")
        node = header
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[last] += delta
        return header

    return edit


FLIPS = 12  # bit flips, spread evenly over the archive (bit i % 8 of the i-th position)


def damaged_archives(blob: bytes) -> dict[str, bytes]:
    """name -> damaged archive bytes (the names do not depend on the archive)."""
    n = len(blob)
    payload, table = _section(blob, PAYLOAD), _section(blob, TOKENIZER)
    rng = np.random.default_rng(16)
    cuts = {"empty": 0, "1 byte": 1, "30 bytes": 30, "a quarter": n // 4, "half": n // 2, "all but the end record": n - 23, "all but 1 byte": n - 1}
    cases = {f"truncated to {what}": blob[:cut] for what, cut in cuts.items()}
    cases["text file"] = b"this is not an archive, just some text\n"
    cases["python source"] = b"print('not an archive')\n"
    cases["zeros"] = bytes(n)
    for i, position in enumerate(np.linspace(0, n - 1, FLIPS).astype(int)):
        flipped = bytearray(blob)
        flipped[position] ^= 1 << (i % 8)
        cases[f"bit flip {i + 1} of {FLIPS}"] = bytes(flipped)
    edits = {
        "format_version 3": _set("format_version", 3),
        "original.size 2^40": _set("original.size", 1 << 40),
        "original.size -1": _set("original.size", -1),
        "original.sha256 of other data": _set("original.sha256", hashlib.sha256(b"other").hexdigest()),
        "original.sha256 not hex": _set("original.sha256", "zz"),
        "coding.prob_bits 12": _set("coding.prob_bits", 12),
        "coding.prob_bits 27": _shift("coding.prob_bits", -1),
        "coding.block_steps 0": _set("coding.block_steps", 0),
        "coding.block_steps 1": _set("coding.block_steps", 1),
        "coding.shards []": _set("coding.shards", []),
        "shard tokens 2^40": _set("coding.shards.0.tokens", 1 << 40),
        "shard tokens + 1": _shift("coding.shards.0.tokens", 1),
        "shard tokens - 1": _shift("coding.shards.0.tokens", -1),
        "shard tokens 0": _set("coding.shards.0.tokens", 0),
        "shard streams 0": _set("coding.shards.0.streams", 0),
        "shard streams 2^30": _set("coding.shards.0.streams", 1 << 30),
        "shard bytes + 4": _shift("coding.shards.0.bytes", 4),
        "shard bytes -1": _set("coding.shards.0.bytes", -1),
        "model.kind unknown": _set("model.kind", "nope"),
        "model.hashed_rows 2^40": _set("model.hashed_rows", 1 << 40),
        "model.max_order 0": _set("model.max_order", 0),
        "model.max_order 'x'": _set("model.max_order", "x"),
        "model missing": _set("model", None),
        "sections missing": _set("sections", None),
        "case missing": _set("case", None),
        "case marks swapped": lambda header: dict(header, case=header["case"][::-1]),
        "case mark 300": _set("case.0", 300),
        "header is a list": lambda header: [header],
        "header not JSON": lambda header: b"{not json",
    }
    cases.update({f"header: {name}": _rezipped(blob, edit) for name, edit in edits.items()})
    sections = {
        "tokenizer: random bytes": {TOKENIZER: rng.integers(0, 256, len(table), dtype=np.uint8).tobytes()},
        "tokenizer: empty": {TOKENIZER: b""},
        "tokenizer: a valid table of 300 pieces": {TOKENIZER: pack_table([bytes([b]) for b in range(256)] + [b"ab%d" % i for i in range(44)])},
        "payload: random bytes": {PAYLOAD: rng.integers(0, 256, len(payload), dtype=np.uint8).tobytes()},
        "payload: one byte changed": {PAYLOAD: payload[:-5] + bytes([payload[-5] ^ 0x40]) + payload[-4:]},
        "payload: zeros": {PAYLOAD: bytes(len(payload))},
    }
    cases.update({name: _rezipped(blob, sections=replaced) for name, replaced in sections.items()})
    return cases


def _rezipped(blob: bytes, edit_header=None, sections=None) -> bytes:
    try:
        return rezip(blob, edit_header, sections)
    except (zipfile.BadZipFile, KeyError):  # not an archive: case names only
        return b""


CASE_NAMES = sorted(damaged_archives(b"not an archive"))
