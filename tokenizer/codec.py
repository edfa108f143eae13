"""A lossless tokenizer: SentencePiece where it is exact, byte tokens everywhere else.

SentencePiece on its own is not lossless: invalid UTF-8 cannot reach it, and a
literal U+2581 ("▁", its space marker) decodes as a space. So the input is cut
into runs of valid UTF-8 without U+2581, which SentencePiece encodes, and single
other bytes, which become byte-fallback tokens <0xXX>. Every encoded run is
decoded again through the id -> bytes table and replaced by byte tokens if it
does not give back exactly its bytes, so losslessness never rests on a guess
about what SentencePiece does.

Decoding uses only the id -> bytes table (never `sp.decode`, which would put
U+FFFD in place of broken bytes); the table is what archives carry.
"""

from __future__ import annotations

import re

import numpy as np

from submissions.decoder.tokens import detokenize, pack_table

SPACE_MARK = "\u2581"
# Lone surrogates stand for undecodable bytes after errors="surrogateescape".
_UNEXPRESSIBLE = re.compile("[\udc80-\udcff\u2581]")
MAX_RUN_CHARS = 1 << 16  # longer runs are encoded in pieces: fast on a 10 MB line


def _split_run(run: str) -> list[str]:
    """Cut a long run into pieces of at most MAX_RUN_CHARS, after a newline where possible."""
    pieces = []
    while len(run) > MAX_RUN_CHARS:
        cut = run.rfind("\n", 0, MAX_RUN_CHARS) + 1 or MAX_RUN_CHARS
        pieces.append(run[:cut])
        run = run[cut:]
    return pieces + [run] if run else pieces


def _char_bytes(char: str) -> bytes:
    if "\udc80" <= char <= "\udcff":
        return bytes([ord(char) - 0xDC00])
    return char.encode("utf-8")


class Tokenizer:
    """encode(bytes) -> int32 ids and decode(ids) -> bytes, exact for any byte string."""

    def __init__(self, proto: bytes = b""):
        self._proto = proto
        if proto:
            import sentencepiece as spm

            self._sp = spm.SentencePieceProcessor(model_proto=proto)
            self.table = [self._piece_bytes(i) for i in range(self._sp.get_piece_size())]
            self._byte_ids = np.array([self._sp.piece_to_id(f"<0x{b:02X}>") for b in range(256)], dtype=np.int32)
        else:  # bytes-only: id b is byte b (for inputs too small to train on)
            self._sp = None
            self.table = [bytes([b]) for b in range(256)]
            self._byte_ids = np.arange(256, dtype=np.int32)

    @classmethod
    def bytes_only(cls) -> "Tokenizer":
        return cls(b"")

    @property
    def kind(self) -> str:
        return "sentencepiece" if self._sp else "bytes"

    @property
    def vocab_size(self) -> int:
        return len(self.table)

    def _piece_bytes(self, i: int) -> bytes:
        sp = self._sp
        if sp.is_byte(i):
            return bytes([int(sp.id_to_piece(i)[3:5], 16)])
        if sp.is_control(i) or sp.is_unknown(i) or sp.is_unused(i):
            return b""
        return sp.id_to_piece(i).replace(SPACE_MARK, " ").encode("utf-8")

    def model_proto(self) -> bytes:
        return self._proto

    def table_blob(self) -> bytes:
        return pack_table(self.table)

    def _byte_tokens(self, data: bytes) -> np.ndarray:
        return self._byte_ids[np.frombuffer(data, dtype=np.uint8)]

    def encode(self, data: bytes) -> np.ndarray:
        if self._sp is None:
            return self._byte_tokens(data)
        text = data.decode("utf-8", errors="surrogateescape")
        # alternate: expressible run, unexpressible char, expressible run, ...
        parts = _UNEXPRESSIBLE.split(text)
        odd = _UNEXPRESSIBLE.findall(text)
        runs = [_split_run(run) for run in parts]
        flat = [piece for pieces in runs for piece in pieces]
        encoded = iter(self._sp.encode(flat)) if flat else iter(())
        out: list[np.ndarray] = []
        for i, pieces in enumerate(runs):
            for piece in pieces:
                ids = np.asarray(next(encoded), dtype=np.int32)
                raw = piece.encode("utf-8")
                if detokenize(ids, self.table) != raw:  # SentencePiece changed something: spell it out
                    ids = self._byte_tokens(raw)
                out.append(ids)
            if i < len(odd):
                out.append(self._byte_tokens(_char_bytes(odd[i])))
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int32)

    def decode(self, ids) -> bytes:
        return detokenize(ids, self.table)
