"""Tokenize a file of any size into a run's id file, in chunks.

A first pass counts the file's bytes, to choose the marks of its folded capitals
(tokenizer/case.py; none where the config turns folding off). The tokenizer trains on a
folded sample of the file (tokenizer/train.py: sample_spans), then the file is read in
chunks cut after a newline, each chunk folded, encoded, checked to decode and unfold back
to itself, and appended to the memory-mappable id file. Memory stays that of one chunk,
whatever the file's size.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterator

import numpy as np

from pipeline.config import PipelineConfig
from submissions.errors import UserError
from pipeline.progress import progress_bar
from pipeline.run_dir import Source, save_token_chunks
from submissions.decoder.tokens import unfold_case
from tokenizer import Tokenizer
from tokenizer.case import byte_counts, case_marks, fold_case
from tokenizer.train import sample_spans, train_tokenizer_on_sample

CHUNK_BYTES = 16 << 20  # one chunk of text in memory at a time; files up to this size are one chunk


def read_sample(path: Path, size: int) -> list[bytes]:
    blocks = []
    with open(path, "rb") as f:
        for start, length in sample_spans(size):
            f.seek(start)
            blocks.append(f.read(length))
    return blocks


def text_chunks(path: Path, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The file in pieces of about chunk_bytes, each ending after a newline where one is near
    (else at a UTF-8 character border), so chunk borders rarely split a token."""
    with open(path, "rb") as f:
        rest = b""
        while True:
            block = f.read(chunk_bytes)
            if not block:
                break
            data = rest + block
            cut = data.rfind(b"\n", len(data) // 2) + 1 or _utf8_border(data)
            rest = data[cut:]
            if cut:
                yield data[:cut]
        if rest:
            yield rest


def _utf8_border(data: bytes) -> int:
    """Where to cut so that no UTF-8 character is split: before the last lead byte if its
    character may continue in the next block, else at the end."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 != 0x80:  # not a continuation byte
            return len(data) - back if byte >= 0xC0 else len(data)
    return len(data)


def tokenize_file(data_path: Path, run: Path, config: PipelineConfig, source: Source, progress: bool = True) -> int:
    """Train the tokenizer on a sample, write it and the whole file's ids into the run; the
    number of ids. The file must still be the one `source` describes (re-hashed while read)."""
    marks = case_marks(byte_counts(data_path)) if config.tokenizer.fold_case else None
    sample = [fold_case(block, marks) for block in read_sample(data_path, source.size)]
    tokenizer = train_tokenizer_on_sample(sample, config.tokenizer.vocab_size, config.tokenizer.model_type)
    dtype = np.uint16 if tokenizer.vocab_size <= 1 << 16 else np.int32
    with progress_bar("tokenizing (bytes)", progress) as update:
        chunks = _encoded_chunks(tokenizer, data_path, source, marks, update)
        return save_token_chunks(run, chunks, dtype, source.sha256, tokenizer.model_proto(), config.tokenizer, marks)


def _unfolded(data: bytes, marks: tuple[int, int] | None) -> bytes:
    return data if marks is None else b"".join(unfold_case([data], marks))


def _encoded_chunks(tokenizer: Tokenizer, path: Path, source: Source, marks, update) -> Iterator[np.ndarray]:
    """The file's ids chunk by chunk (capitals folded with `marks`, unless None); raises after
    the last one if the bytes read are not the file `source` hashed, before the caller can
    record the ids as made from it."""
    digest, done = hashlib.sha256(), 0
    for chunk in text_chunks(path):
        digest.update(chunk)
        ids = tokenizer.encode(fold_case(chunk, marks))
        if _unfolded(tokenizer.decode(ids), marks) != chunk:  # a bug, never a user error: refuse to go on
            raise RuntimeError("tokenizer round trip failed on this file")
        done += len(chunk)
        if update:
            update(done, source.size)
        yield ids
    if digest.hexdigest() != source.sha256 or done != source.size:
        raise UserError(f"{path} changed while it was read; run `pipeline train` again")
