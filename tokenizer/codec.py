"""A lossless tokenizer: SentencePiece where it is exact, byte tokens everywhere else.

SentencePiece on its own is not lossless: invalid UTF-8 cannot reach it, and a literal
U+2581 ("▁", its space marker) decodes as a space. Probing every code point, alone and
in context, and 150,000 random strings found nothing else it changes (with identity
normalization "\\r", NUL, other whitespace and NFKC-sensitive characters survive; characters
outside its alphabet come out as byte-fallback pieces, which are exact). So the input is
cut into runs of valid UTF-8 without U+2581, which SentencePiece encodes, and the other
bytes, which become byte tokens. Each batch of encoded runs is decoded again through the
id -> bytes table and any run that does not give back exactly its bytes is spelled out in
byte tokens, so losslessness never rests on what SentencePiece is believed to do.

Ids are ours, not SentencePiece's: ids 0..255 are the single bytes 0..255 (its byte-fallback
pieces), the other pieces follow sorted by their bytes. The order makes the packed table
~40% smaller (see submissions/decoder/tokens.py) and means the same in both kinds:

- kind "sentencepiece": built from a SentencePiece model proto (`model_proto()` gives it back);
- kind "bytes": the 256 byte tokens alone, for inputs too small to train on;
  `model_proto()` is b"" and `Tokenizer(b"")` builds it again.

Decoding uses only the table (never `sp.decode`, which puts U+FFFD in place of broken
bytes); the table is what archives carry.
"""

from __future__ import annotations

import re

import numpy as np

from submissions.errors import UserError
from tokenizer.table import detokenize, pack_table

SPACE_MARK = "\u2581"
# What SentencePiece cannot carry: its space mark, and the lone surrogates that
# errors="surrogateescape" puts in place of bytes that are not valid UTF-8.
_ESCAPE = re.compile("[\udc80-\udcff\u2581]+")
RUN_CHARS = 1 << 14  # longer runs are encoded in pieces: fast on a 10 MB line (and fastest overall)
BATCH_CHARS = 1 << 22  # characters per sp.encode call: bounds the Python lists of ids


def _pieces(text: str, start: int, end: int):
    """text[start:end] in pieces of at most RUN_CHARS characters, cut at a line or word end where possible."""
    while start < end:
        stop = min(end, start + RUN_CHARS)
        if stop < end:
            half = start + RUN_CHARS // 2
            newline = text.rfind("\n", half, stop)
            space = text.rfind(" ", half, stop)  # cut before a space: pieces start with one anyway
            if newline >= 0:
                stop = newline + 1
            elif space >= 0:
                stop = space
        yield text[start:stop]
        start = stop


def _segments(data: bytes):
    """str runs for SentencePiece and bytes to spell out, in order."""
    text = data.decode("utf-8", errors="surrogateescape")
    pos = 0
    for match in _ESCAPE.finditer(text):
        yield from _pieces(text, pos, match.start())
        yield match.group().encode("utf-8", errors="surrogateescape")
        pos = match.end()
    yield from _pieces(text, pos, len(text))


def _batches(segments):
    batch, size = [], 0
    for segment in segments:
        batch.append(segment)
        size += len(segment)
        if size >= BATCH_CHARS:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _byte_tokens(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.uint8).astype(np.int32)


class Tokenizer:
    """encode(bytes) -> int32 ids and decode(ids) -> bytes, exact for any byte string."""

    def __init__(self, proto: bytes = b""):
        self._proto = bytes(proto)
        self._sp = None
        self.table = [bytes([b]) for b in range(256)]
        if self._proto:
            self._load(self._proto)

    @classmethod
    def bytes_only(cls) -> "Tokenizer":
        return cls(b"")

    def _load(self, proto: bytes) -> None:
        import sentencepiece as spm

        try:
            self._sp = spm.SentencePieceProcessor(model_proto=proto)
        except Exception as exc:  # sentencepiece raises RuntimeError or OSError for junk
            raise UserError(f"not a SentencePiece model: {exc}") from None
        sp_table = [self._piece_bytes(i) for i in range(self._sp.get_piece_size())]
        byte_ids = [self._sp.piece_to_id(f"<0x{b:02X}>") for b in range(256)]
        if any(not self._sp.is_byte(i) for i in byte_ids):
            raise UserError("SentencePiece model has no byte-fallback pieces (train it with byte_fallback=True)")
        rest = sorted(set(range(len(sp_table))) - set(byte_ids), key=lambda i: (sp_table[i], i))
        order = byte_ids + rest  # our id -> SentencePiece id
        self.table = [sp_table[i] for i in order]
        self._sp_byte_ids = byte_ids
        self._from_sp = np.empty(len(order), dtype=np.int32)
        self._from_sp[order] = np.arange(len(order), dtype=np.int32)

    def _piece_bytes(self, i: int) -> bytes:
        sp = self._sp
        if sp.is_byte(i):
            return bytes([int(sp.id_to_piece(i)[3:5], 16)])
        if sp.is_control(i) or sp.is_unknown(i) or sp.is_unused(i):
            return b""
        return sp.id_to_piece(i).replace(SPACE_MARK, " ").encode("utf-8")

    @property
    def kind(self) -> str:
        return "bytes" if self._sp is None else "sentencepiece"

    @property
    def vocab_size(self) -> int:
        return len(self.table)

    def model_proto(self) -> bytes:
        """The SentencePiece model (b"" for the bytes-only kind)."""
        return self._proto

    def table_blob(self) -> bytes:
        return pack_table(self.table)

    def encode(self, data: bytes, stats: dict | None = None) -> np.ndarray:
        """int32 ids for `data`. A `stats` dict gets "escaped_bytes" (bytes SentencePiece
        could not be given) and "fallback_bytes" (text whose encoding did not round-trip)."""
        data = bytes(data)
        if stats is None:
            stats = {}
        stats.update(escaped_bytes=0, fallback_bytes=0)
        if self._sp is None:
            return _byte_tokens(data)
        out = [self._encode_batch(batch, stats) for batch in _batches(_segments(data))]
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int32)

    def _encode_batch(self, segments: list, stats: dict) -> np.ndarray:
        """One sp.encode call for the batch's text runs; byte tokens for the rest."""
        texts = [s for s in segments if isinstance(s, str)]
        encoded = iter(self._sp.encode(texts)) if texts else iter(())
        runs = []  # (bytes, SentencePiece ids) per segment
        for segment in segments:
            if isinstance(segment, str):
                runs.append((segment.encode("utf-8"), next(encoded)))
            else:
                runs.append((segment, [self._sp_byte_ids[b] for b in segment]))
                stats["escaped_bytes"] += len(segment)
        ids = self._to_ids([i for _, sp_ids in runs for i in sp_ids])
        if detokenize(ids, self.table) == b"".join(raw for raw, _ in runs):
            return ids
        return np.concatenate([self._checked(raw, self._to_ids(sp_ids), stats) for raw, sp_ids in runs])

    def _to_ids(self, sp_ids: list[int]) -> np.ndarray:
        return self._from_sp[np.array(sp_ids, dtype=np.int64)]

    def _checked(self, raw: bytes, ids: np.ndarray, stats: dict) -> np.ndarray:
        """ids if they give back raw exactly, else raw spelled out in byte tokens."""
        if detokenize(ids, self.table) == raw:
            return ids
        stats["fallback_bytes"] += len(raw)
        return _byte_tokens(raw)

    def decode(self, ids) -> bytes:
        return detokenize(ids, self.table)
