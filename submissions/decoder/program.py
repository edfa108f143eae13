"""The decoder program's second part, coded by the archive's own model.

An archive of a compiled model (mix, online) stores its program in two parts: the modules
that build and run the model in LZMA (the member `d`), and the rest (restoring the file,
reading the header, the token table, the coding loop) coded by that same model over bytes,
after it has read the first part: the first part is known to both sides, so the model learns
the program's words and style from it before coding the rest: ~9 KB of source in ~2.7 KB,
where LZMA needs ~3.9 KB (enwik6's archives: 384 B smaller for the mixing model, 267 B for the
online model; ~1 s more decoding). The coded part follows the LZMA stream in `d`: the bytes
LZMA leaves unused, before the archive's sections.

The model is the archive's kind with its big tables made small (the program is ~36 KB), over
the 256 byte values, one stream; it runs the same compiled kernels as the payload (the same
types: compiled once).
"""

from __future__ import annotations

import json

import numpy as np

from .model_registry import build_model
from .rans import RansDecoder, new_coder

PROB_BITS = 28
HEADER = "h"  # container.HEADER (container.py is in the second part)
SMALL_TABLES = {"table_bits": 20, "online_table_bits": 16, "direct_bits": 20}  # config fields capped for the program's model


def program_model(config: dict):
    """The archive's model (its header config) with small tables, over bytes, one stream."""
    small = dict(config, **{key: min(config.get(key, cap), cap) for key, cap in SMALL_TABLES.items()})  # a field the header leaves out (at its default) takes the cap
    return build_model(small, 256, 1, PROB_BITS, token_bytes=[bytes([i]) for i in range(256)])


class Primer:
    """A coder that records the known part's decisions and keeps none of them: the model reads it."""

    def __init__(self, decisions: int):
        self.arrays = new_coder(False, 1, PROB_BITS, capacity=decisions)


def known_text(parts: dict) -> bytes:
    """What the model reads before the second part: the first part's modules as `d` holds
    them, without the header (so that a damaged header is the header's error, not the program's)."""
    return "\0".join(f"{name}\n{text}" for name, text in parts.items() if name != HEADER).encode()


def code_program(model, coder, known: bytes, window: np.ndarray) -> None:
    """The model reads the known bytes, then codes window[0] through coder (encoding: reads
    it; decoding: fills it in)."""
    total = np.array([len(known) + window.shape[1]], dtype=np.int64)
    model.code_steps(Primer(8 * len(known)), np.frombuffer(known, dtype=np.uint8).astype(np.int64)[None], total, 0)
    model.code_steps(coder, window, total, len(known))


def unpack(rest: bytes, parts: dict) -> dict:
    """The second part's modules (name -> source), decoded from `rest`: what follows the LZMA
    stream, the coded part (its length in bytes, 4 bytes little-endian, then the payload) and the
    sections the header sizes; parts: the first part (name -> text), the header among them."""
    header = json.loads(parts[HEADER])
    coded = rest[: len(rest) - sum(header["sections"].values())]
    window = np.zeros((1, int.from_bytes(coded[:4], "little")), dtype=np.int64)
    decoder = RansDecoder(coded[4:], 1, PROB_BITS)
    code_program(program_model(header["model"]), decoder, known_text(parts), window)
    decoder.check_finished()
    return dict(part.split("\n", 1) for part in window[0].astype(np.uint8).tobytes().decode().split("\0"))
