"""The model kinds: kind (as named in the archive header) -> model class, and instances.

The one list of kinds: the project derives the rest from the classes (their `runtime`,
their `modules`, which an archive of the kind carries, and their `config_class`). Models are
imported on first use, so an archive carries only the modules its kind needs.
"""

from __future__ import annotations

import importlib

# kind -> (module defining the class, class name)
MODEL_KINDS = {"context": ("context_model", "ContextModel"), "neural": ("neural_model", "NeuralModel"), "mix": ("mixing_steps", "ContextMixingModel"), "online": ("online_alone", "OnlineModel")}


def model_class(kind: str):
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}")
    module, name = MODEL_KINDS[kind]
    return getattr(importlib.import_module(f".{module}", __package__), name)


def build_model(model_config: dict, vocab_size: int, n_streams: int, prob_bits: int, weights: bytes = b"", token_bytes=None):
    """token_bytes: the tokenizer's id -> bytes table, for models that read text (uses_token_bytes)."""
    cls = model_class(model_config.get("kind"))
    if getattr(cls, "uses_token_bytes", False):
        return cls.from_config(model_config, vocab_size, n_streams, prob_bits, weights=weights, token_bytes=token_bytes)
    if weights:  # trained models (neural) take their weights; the context model has none
        return cls.from_config(model_config, vocab_size, n_streams, prob_bits, weights)
    return cls.from_config(model_config, vocab_size, n_streams, prob_bits)
