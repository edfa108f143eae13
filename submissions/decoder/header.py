"""The archive header's structure, checked in one place before anything it sizes is allocated.

Checksums prove the header is the one the packer wrote, not that a packer wrote it sanely: a
header edited with its checksums recomputed must still be refused in one line, never drive a
1 TiB allocation or a traceback. Limits are the widest any real archive needs. Every byte
here is in every archive: terse on purpose.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import FORMAT_VERSION
from .model_registry import MODEL_KINDS


class HeaderError(ValueError):
    """The header is not one a packer of this format writes."""


def _int(value, what: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise HeaderError(f"header field {what} is {value!r}, not in [{low}, {high}]")
    return value


@dataclass(frozen=True)
class Header:
    size: int  # of the original file
    prob_bits: int
    shards: tuple  # (tokens, streams, bytes) per shard

    @classmethod
    def parse(cls, raw) -> "Header":
        if not isinstance(raw, dict) or raw.get("format_version") != FORMAT_VERSION:
            raise HeaderError(f"archive format {raw.get('format_version') if isinstance(raw, dict) else '?'} is not {FORMAT_VERSION}, the one this decoder reads")
        try:
            original, coding, kind = raw["original"], raw["coding"], raw["model"]["kind"]
            size = _int(original["size"], "original.size", 0, 1 << 50)
            if not re.fullmatch("[0-9a-f]{64}", original["sha256"]) or kind not in MODEL_KINDS:
                raise HeaderError("header names no sha256 or no known model")
            _int(raw["model"].get("table_bits", 10), "model.table_bits", 10, 30)  # 4 GiB of cells at most
            for rows in ("order1_rows", "hashed_rows"):
                _int(raw["model"].get(rows, 1), rows, 1, 1 << 24)
            _int(coding["block_steps"], "coding.block_steps", 1, 1 << 50)
            shards = tuple(
                (tokens, _int(s["streams"], "streams", min(tokens, 1), min(tokens, 1 << 20)), _int(s["bytes"], "bytes", 0, 1 << 50))
                for s in coding["shards"]
                for tokens in [_int(s["tokens"], "tokens", 0, 2 * size)]
            )
        except (KeyError, TypeError) as exc:
            raise HeaderError(f"header lacks or misstates {exc}") from None
        if not 1 <= len(shards) <= max(size, 1):
            raise HeaderError(f"header lists {len(shards)} shards for a file of {size} bytes")
        if sum(s[0] for s in shards) > 2 * size:  # every id stands for a byte or more of the text, whose capitals may be marked (2 bytes per byte at most)
            raise HeaderError("header's shards claim more tokens than the file has bytes")
        return cls(size, _int(coding["prob_bits"], "coding.prob_bits", 16, 31), shards)
