"""Model kind (as named in the archive config) -> token model instance.

Each kind names the decoder modules it needs, so an archive carries only those
(a context-model archive does not pay for the neural model's code).
"""

from __future__ import annotations

import importlib

# kind -> (module defining the class, class name, modules the archive must carry)
MODEL_KINDS = {
    "context": ("context_model", "ContextModel", ("context_model", "frequencies")),
    "neural": ("neural_model", "NeuralModel", ("neural_model", "int_ops", "torch_freqs", "frequencies")),
    "mix": ("mixing_model", "ContextMixingModel", ("mixing_model", "mixing", "match_model", "logistic")),
}
# a mixing model with a neural input carries both module sets (program_kind)
MODEL_KINDS["mix+neural"] = ("mixing_model", "ContextMixingModel", MODEL_KINDS["mix"][2] + MODEL_KINDS["neural"][2])
MODEL_MODULES = {module for _, _, modules in MODEL_KINDS.values() for module in modules}
ENCODER_MODULES = {"encoding"}  # the encoder side: pack imports it, archives never need it


def model_class(kind: str):
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}")
    module, name, _ = MODEL_KINDS[kind]
    return getattr(importlib.import_module(f".{module}", __package__), name)


def build_model(model_config: dict, vocab_size: int, n_streams: int, prob_bits: int, weights: bytes = b"", token_bytes=None):
    """token_bytes: the tokenizer's id -> bytes table, for models that read text (uses_token_bytes)."""
    cls = model_class(model_config.get("kind"))
    if getattr(cls, "uses_token_bytes", False):
        return cls.from_config(model_config, vocab_size, n_streams, prob_bits, weights=weights, token_bytes=token_bytes)
    if weights:  # trained models (neural) take their weights; the context model has none
        return cls.from_config(model_config, vocab_size, n_streams, prob_bits, weights)
    return cls.from_config(model_config, vocab_size, n_streams, prob_bits)


def runtime_of(model_config: dict) -> list[str]:
    """pip names of what the decoder needs for this model, beyond the stdlib."""
    return list(model_class(model_config["kind"]).runtime)


def unused_modules(kind: str) -> set[str]:
    """Decoder modules (file stems) that a `kind` archive leaves out: other kinds' models and
    the encoder side."""
    return MODEL_MODULES - set(MODEL_KINDS[kind][2]) | ENCODER_MODULES


def program_kind(model_config: dict) -> str:
    """The module set an archive of this model needs (a mixing model with a neural input
    also needs the neural model's modules)."""
    if model_config.get("kind") == "mix" and model_config.get("neural"):
        return "mix+neural"
    return model_config["kind"]
