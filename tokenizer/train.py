"""Training the lossless SentencePiece tokenizer in memory.

Options measured lossless on enwik6 (see the project notes): identity
normalization, byte fallback, no dummy prefix, no whitespace cleaning. Training
reads a prefix of the data (TRAIN_SAMPLE_BYTES) as text chunks of many lines;
encoding then covers the whole file.
"""

from __future__ import annotations

import io
import re

from tokenizer.codec import SPACE_MARK, Tokenizer

TRAIN_SAMPLE_BYTES = 32 << 20  # enough statistics for the vocab; keeps enwik9 training fast
CHUNK_CHARS = 4096
MIN_VOCAB = 320  # 256 byte pieces + room for real pieces; below this use bytes only


def _sentences(data: bytes):
    """Text chunks of about CHUNK_CHARS, cut after newlines, without U+2581 or broken bytes."""
    text = data[:TRAIN_SAMPLE_BYTES].decode("utf-8", errors="ignore").replace(SPACE_MARK, " ")
    start = 0
    while start < len(text):
        end = text.find("\n", start + CHUNK_CHARS)
        end = len(text) if end < 0 else end + 1
        yield text[start:end]
        start = end


def _train_proto(data: bytes, vocab_size: int, model_type: str) -> bytes:
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=_sentences(data),
        model_writer=model,
        vocab_size=vocab_size,
        model_type=model_type,
        character_coverage=1.0,
        normalization_rule_name="identity",
        byte_fallback=True,
        add_dummy_prefix=False,
        remove_extra_whitespaces=False,
        allow_whitespace_only_pieces=True,
        split_digits=True,
        max_sentence_length=1 << 24,
        bos_id=-1,
        eos_id=-1,
        pad_id=-1,
        unk_id=0,
        num_threads=1,  # deterministic and polite on a shared 2-core machine
        minloglevel=2,
    )
    return model.getvalue()


def train_tokenizer(data: bytes, vocab_size: int = 4096, model_type: str = "bpe") -> Tokenizer:
    """A tokenizer for `data`; the vocab shrinks to what the data supports, bytes-only at the floor."""
    while vocab_size >= MIN_VOCAB:
        try:
            return Tokenizer(_train_proto(data, vocab_size, model_type))
        except RuntimeError as exc:
            # "Vocabulary size too high (N). Please set it to a value <= M.": retry at M.
            limit = re.search(r"too high.*<= (\d+)", str(exc))
            if limit is None:  # nothing to learn from (no text at all): bytes only
                break
            vocab_size = min(int(limit.group(1)), vocab_size - 1)
    return Tokenizer.bytes_only()


def load_tokenizer(proto: bytes) -> Tokenizer:
    return Tokenizer(proto)
