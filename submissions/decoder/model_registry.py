"""Model kind (as named in the archive config) -> token model instance."""

from __future__ import annotations

from .context_model import ContextModel
from .neural_model import NeuralModel

MODEL_KINDS = {"context": ContextModel, "neural": NeuralModel}


def build_model(model_config: dict, vocab_size: int, n_streams: int, prob_bits: int, weights: bytes = b""):
    kind = model_config.get("kind")
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}")
    if weights:  # trained models (neural) take their weights; the context model has none
        return MODEL_KINDS[kind].from_config(model_config, vocab_size, n_streams, prob_bits, weights)
    return MODEL_KINDS[kind].from_config(model_config, vocab_size, n_streams, prob_bits)


def runtime_of(model_config: dict) -> list[str]:
    """pip names of what the decoder needs for this model, beyond the stdlib."""
    return list(MODEL_KINDS[model_config["kind"]].runtime)
