"""The id -> bytes table a decoder needs, and detokenization.

The table is stored as lzma (raw LZMA2, stdlib) over: the number of entries,
every entry's length as a varint, then all entry bytes. Lengths and bytes are
kept apart because each part compresses better on its own.
"""

from __future__ import annotations

import lzma

import numpy as np

_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def pack_table(pieces: list[bytes]) -> bytes:
    raw = _varint(len(pieces)) + b"".join(_varint(len(p)) for p in pieces) + b"".join(pieces)
    return lzma.compress(raw, format=lzma.FORMAT_RAW, filters=_FILTERS)


def unpack_table(blob: bytes) -> list[bytes]:
    raw = lzma.decompress(blob, format=lzma.FORMAT_RAW, filters=_FILTERS)
    count, pos = _read_varint(raw, 0)
    lengths = []
    for _ in range(count):
        length, pos = _read_varint(raw, pos)
        lengths.append(length)
    pieces = []
    for length in lengths:
        pieces.append(raw[pos : pos + length])
        pos += length
    if pos != len(raw):
        raise ValueError("tokenizer table has trailing bytes")
    return pieces


def detokenize(ids, table: list[bytes]) -> bytes:
    return b"".join([table[i] for i in np.asarray(ids).tolist()])
