"""The archive header's structure, checked in one place before anything it sizes is allocated.

Checksums prove the header is the one the packer wrote, not that a packer wrote it sanely: a
header edited with its checksums recomputed must still be refused in one line, never drive a
1 TiB allocation or a traceback. Limits are the widest any real archive needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import FORMAT_VERSION
from .model_registry import MODEL_KINDS

MAX_STREAMS = 1 << 20  # streams of one shard (GPUs code thousands)
MAX_TABLE_BITS = 30  # the mixing model's shared table: 4 GiB of cells
MAX_ROWS = 1 << 24  # rows of the context model's tables
_SHA256 = re.compile(r"[0-9a-f]{64}")


class HeaderError(ValueError):
    """The header is not one a packer of this format writes."""


def _int(value, what: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise HeaderError(f"header field {what} is {value!r}, not a whole number in [{low}, {high}]")
    return value


def _dict(value, what: str) -> dict:
    if not isinstance(value, dict):
        raise HeaderError(f"header field {what} is not an object")
    return value


@dataclass(frozen=True)
class Shard:
    tokens: int
    streams: int
    bytes: int


@dataclass(frozen=True)
class Header:
    size: int  # of the original file
    sha256: str
    prob_bits: int
    block_steps: int
    shards: tuple
    model: dict
    sections: dict  # member name -> sha256

    @classmethod
    def parse(cls, raw) -> "Header":
        raw = _dict(raw, "(the header)")
        if raw.get("format_version") != FORMAT_VERSION:
            raise HeaderError(f"archive format {raw.get('format_version')!r} is not {FORMAT_VERSION}, the one this decoder reads")
        original, coding, model = (_dict(raw.get(k), k) for k in ("original", "coding", "model"))
        sections = _dict(raw.get("sections"), "sections")
        if not all(isinstance(v, str) and _SHA256.fullmatch(v) for v in sections.values()) or not {"tokenizer.bin", "payload.bin"} <= set(sections):
            raise HeaderError("header lists its sections wrongly")
        size = _int(original.get("size"), "original.size", 0, 1 << 50)
        sha256 = original.get("sha256")
        if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
            raise HeaderError("header field original.sha256 is not a sha256")
        shards = coding.get("shards")
        if not isinstance(shards, list) or not 1 <= len(shards) <= max(1, size):
            raise HeaderError("header field coding.shards is not a list of 1 to (file size) shards")
        parsed = tuple(_shard(s, i) for i, s in enumerate(shards))
        if sum(s.tokens for s in parsed) > size:  # every id stands for at least one byte
            raise HeaderError("header claims more tokens than the file has bytes")
        kind = model.get("kind")
        if kind not in MODEL_KINDS:
            raise HeaderError(f"header names an unknown model kind {kind!r}")
        if kind == "mix":
            _int(model.get("table_bits", 10), "model.table_bits", 10, MAX_TABLE_BITS)
        if kind == "context":
            for field in ("order1_rows", "hashed_rows"):
                _int(model.get(field, 1), f"model.{field}", 1, MAX_ROWS)
        return cls(size, sha256, _int(coding.get("prob_bits"), "coding.prob_bits", 16, 31),
                   _int(coding.get("block_steps"), "coding.block_steps", 1, 1 << 40), parsed, model, sections)


def _shard(raw, i: int) -> Shard:
    raw = _dict(raw, f"coding.shards[{i}]")
    tokens = _int(raw.get("tokens"), f"shard {i} tokens", 0, 1 << 50)
    streams = _int(raw.get("streams"), f"shard {i} streams", min(tokens, 1), min(tokens, MAX_STREAMS))
    return Shard(tokens, streams, _int(raw.get("bytes"), f"shard {i} bytes", 0, 1 << 50))
