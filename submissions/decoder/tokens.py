"""The id -> bytes table a decoder needs, detokenization (tokenizer/table.py writes the table),
and unfolding the capital letters that tokenizer/case.py folded to lower case.

Shipped inside self-contained archives: stdlib and numpy only, no project imports.

Table format (`pack_table` in tokenizer/table.py), compressed as a whole with raw LZMA2:

    varint n        number of entries
    varint k        entries 0..k-1 are the single bytes 0..k-1 (k <= 256): stored implicitly
    n-k varints     for each later entry, how many leading bytes it shares with the entry before it
    n-k varints     the length of the rest of the entry (its suffix)
    suffix bytes    all suffixes, concatenated

Any list of byte strings round-trips in its own order. The format is small when the
entries after the first 256 are sorted, as the tokenizer numbers them (front coding then
shares most prefixes): 6,357 bytes instead of 10,502 for a 4096-entry table of enwik6.
Keeping the three streams apart compresses better than interleaving them.
"""

from __future__ import annotations

import lzma
import re

import numpy as np

# Fixed filter chain: a raw stream has no header, so both sides must agree on it.
# pb=lp=0 suits byte-aligned text; a 4 MiB dictionary covers any table (65536 pieces of
# up to 16 characters) without a big allocation on the decoder side.
TABLE_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME, "dict_size": 1 << 22, "lc": 3, "lp": 0, "pb": 0}]
_DETOKENIZE_BLOCK = 1 << 16  # ids per numpy gather: fast and keeps index arrays small
RUN_LIMIT = 32  # letters of a run of capitals under one mark (tokenizer/case.py): what a piece's end may hold back


def _read_varints(raw: bytes, pos: int, count: int) -> tuple[list[int], int]:
    values = []
    for _ in range(count):
        value = shift = 0
        while True:
            if pos >= len(raw):
                raise ValueError("tokenizer table is truncated")
            byte = raw[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        values.append(value)
    return values, pos


def unpack_table(blob: bytes) -> list[bytes]:
    """Inverse of tokenizer.table.pack_table; ValueError (or lzma.LZMAError) on a damaged blob."""
    raw = lzma.decompress(blob, format=lzma.FORMAT_RAW, filters=TABLE_FILTERS)
    (n, k), pos = _read_varints(raw, 0, 2)
    if k > min(n, 256):
        raise ValueError("tokenizer table header is inconsistent")
    shared, pos = _read_varints(raw, pos, n - k)
    lengths, pos = _read_varints(raw, pos, n - k)
    pieces = [bytes([b]) for b in range(k)]
    previous = b""
    for n_shared, length in zip(shared, lengths):
        if n_shared > len(previous) or pos + length > len(raw):
            raise ValueError("tokenizer table is damaged")
        previous = previous[:n_shared] + raw[pos : pos + length]
        pos += length
        pieces.append(previous)
    if pos != len(raw):
        raise ValueError("tokenizer table has trailing bytes")
    return pieces


def iter_detokenized(ids, table: list[bytes], block_ids: int = _DETOKENIZE_BLOCK):
    """The bytes that `ids` stand for (tokenizer.table.detokenize joins them), in pieces of block_ids ids, so a caller can write them out as they come."""
    ids = np.asarray(ids).ravel()
    if len(ids) == 0:
        return
    if ids.min() < 0 or ids.max() >= len(table):
        raise ValueError(f"token id outside the table of {len(table)} entries")
    lengths = np.fromiter(map(len, table), dtype=np.int64, count=len(table))
    starts = np.cumsum(lengths) - lengths
    buffer = np.frombuffer(b"".join(table), dtype=np.uint8)
    for begin in range(0, len(ids), block_ids):
        block = ids[begin : begin + block_ids].astype(np.int64)
        size = lengths[block]
        ends = np.cumsum(size)
        # byte j of the output comes from buffer[start of its piece + (j - start of its output)]
        index = np.arange(int(ends[-1]), dtype=np.int64) + np.repeat(starts[block] - (ends - size), size)
        yield buffer[index].tobytes()


def unfold_case(pieces, marks):
    """The text before tokenizer/case.py folded its capitals, from the folded text in pieces
    (cut anywhere): marks = (one, run), two bytes; one + a letter is that letter upper-cased,
    run + a run of lower-case letters (RUN_LIMIT at most) is that run upper-cased. A mark whose
    letters may go on in the next piece waits for it."""
    one, run = (re.escape(bytes([mark])) for mark in marks)
    marked = re.compile(b"%s[a-z]|%s[a-z]+" % (one, run))
    held = b""
    for piece in pieces:
        text = held + piece
        cut = re.search(b"[%s%s][a-z]{0,%d}\\Z|\\Z" % (one, run, RUN_LIMIT), text).start()
        held = text[cut:]
        yield marked.sub(_upper, text[:cut])
    yield marked.sub(_upper, held)


def _upper(mark):
    return mark.group()[1:].upper()
