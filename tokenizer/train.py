"""Training the lossless SentencePiece tokenizer in memory.

Options measured lossless on enwik6 (see the project notes): identity normalization,
byte fallback, no dummy prefix, no whitespace cleaning, training from text chunks of
many lines (training from a file would drop every newline).

Training reads a sample of at most TRAIN_SAMPLE_BYTES (32 MiB): the whole file when it is
smaller, else SAMPLE_BLOCKS equal blocks spread evenly over it, so the statistics are the
whole file's. Encoding then covers the whole file. On 32 MB of enwik-like text, BPE at
vocab 16384 trains in ~9 s with ~600 MB of memory.

Rare characters are left to byte fallback: the vocabulary keeps at most `_char_budget`
single characters, so small vocabularies spend their slots on real pieces (enwik6 has 720
distinct characters; keeping them all left a 1024 vocabulary 47 merges: 1.38 bytes/token
instead of 2.27).
"""

from __future__ import annotations

import io
import re

import numpy as np

from tokenizer.codec import SPACE_MARK, Tokenizer

TRAIN_SAMPLE_BYTES = 32 << 20
SAMPLE_BLOCKS = 32
CHUNK_CHARS = 4096  # a training "sentence": cut after a newline past this many characters
MAX_CHUNK_CHARS = 4 * CHUNK_CHARS  # hard cut for text without newlines (unigram crashes on huge sentences)
MIN_VOCAB = 320  # 256 byte pieces + room for real pieces; below this, bytes only
# SentencePiece's errors for data with nothing to learn: no text, only NUL, one character (unigram)
_NOTHING_TO_LEARN = ("sentences_.empty()", "all_chars_count", "no pieces are loaded", "required_chars_.empty()")  # as versions say it


def sample_spans(size: int) -> list[tuple[int, int]]:
    """(offset, length) of the training sample's blocks in a file of `size` bytes."""
    if size <= TRAIN_SAMPLE_BYTES:
        return [(0, size)]
    block = TRAIN_SAMPLE_BYTES // SAMPLE_BLOCKS
    step = (size - block) // (SAMPLE_BLOCKS - 1)
    return [(i * step, block) for i in range(SAMPLE_BLOCKS)]


def _sample_blocks(data: bytes) -> list[bytes]:
    return [data[start : start + length] for start, length in sample_spans(len(data))]


def _chunks(text: str) -> list[str]:
    chunks, start = [], 0
    while start < len(text):
        newline = text.find("\n", start + CHUNK_CHARS, start + MAX_CHUNK_CHARS)
        end = min(len(text), newline + 1 if newline >= 0 else start + MAX_CHUNK_CHARS)
        chunks.append(text[start:end])
        start = end
    return chunks


def training_sentences(blocks: list[bytes]) -> list[str]:
    """The sample's blocks as text chunks, without U+2581 or broken bytes (those never reach SentencePiece)."""
    sentences = []
    for block in blocks:
        sentences += _chunks(block.decode("utf-8", errors="ignore").replace(SPACE_MARK, " "))
    return sentences


def _char_budget(vocab_size: int) -> int:
    """How many single characters the vocabulary may keep (best bytes/token on enwik6)."""
    return min(max(96, (vocab_size - 256) // 16), (vocab_size - 257) // 2)


def _keep_common_chars(sentences: list[str], counts: np.ndarray, budget: int) -> list[str]:
    """The sentences cut apart at every character outside the `budget` most frequent, which
    are dropped: SentencePiece then learns exactly those characters (coverage 1.0; its own
    character_coverage cannot go below 0.98) and spells the others in byte-fallback pieces.
    Cutting, rather than deleting, keeps pieces from merging across a dropped character,
    which byte-fallback pieces never do."""
    present = np.flatnonzero(counts)
    if len(present) <= budget:
        return sentences
    kept = present[np.argsort(-counts[present], kind="stable")[:budget]]
    rare = re.compile("[^" + "".join(re.escape(chr(c)) for c in sorted(kept)) + "]+")
    return [part for text in sentences for part in rare.split(text) if part]


def _char_counts(sentences: list[str]) -> np.ndarray:
    codes = np.frombuffer("".join(sentences).encode("utf-32-le"), dtype=np.uint32)
    counts = np.bincount(codes, minlength=0x2582).astype(np.int64)
    counts[ord(" ")] += counts[ord(SPACE_MARK)]  # SentencePiece sees spaces as U+2581
    counts[ord(SPACE_MARK)] = 0
    counts[0] = 0  # SentencePiece never makes NUL a character piece
    return counts


def _train_proto(sentences: list[str], vocab_size: int, model_type: str) -> bytes:
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
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
        minloglevel=2,  # errors only: no log spam on stderr
    )
    return model.getvalue()


def train_tokenizer(data: bytes, vocab_size: int = 4096, model_type: str = "bpe") -> Tokenizer:
    """A tokenizer for `data`, deterministic (same data -> same model bytes).

    The vocabulary shrinks to what the data supports; data with nothing to learn, or
    supporting fewer than MIN_VOCAB pieces, gets the bytes-only tokenizer.
    """
    return train_tokenizer_on_sample(_sample_blocks(data), vocab_size, model_type)


def train_tokenizer_on_sample(blocks: list[bytes], vocab_size: int = 4096, model_type: str = "bpe") -> Tokenizer:
    """A tokenizer trained on sample blocks of a file (see sample_spans): a file of any size is
    never read whole."""
    sentences = training_sentences(blocks)
    counts = _char_counts(sentences)
    if not counts.any():  # only NULs (or nothing): no character to learn (sentencepiece 0.2.2 fails on it)
        return Tokenizer.bytes_only()
    while vocab_size >= MIN_VOCAB:
        try:
            text = _keep_common_chars(sentences, counts, _char_budget(vocab_size))
            return Tokenizer(_train_proto(text, vocab_size, model_type))
        except RuntimeError as exc:
            message = str(exc)
            if any(sign in message for sign in _NOTHING_TO_LEARN):
                break
            # "Vocabulary size too high (N). Please set it to a value <= M.": retry at M
            limit = re.search(r"too high.*<= (\d+)", message)
            if limit is None:
                raise
            vocab_size = min(int(limit.group(1)), vocab_size - 1)
    return Tokenizer.bytes_only()


def load_tokenizer(proto: bytes) -> Tokenizer:
    """The tokenizer saved as `model_proto()` (b"" gives the bytes-only one); UserError if it is not one."""
    return Tokenizer(proto)
