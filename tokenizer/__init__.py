"""Lossless SentencePiece tokenization (see codec.py for how losslessness is kept)."""

from tokenizer.codec import Tokenizer
from tokenizer.train import load_tokenizer, train_tokenizer

__all__ = ["Tokenizer", "train_tokenizer", "load_tokenizer"]
