"""The configuration every run and every archive carries (as JSON, never pickle)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Optional, Union

from pipeline.errors import UserError


@dataclass(frozen=True)
class TokenizerConfig:
    vocab_size: int = 4096
    model_type: str = "bpe"


@dataclass(frozen=True)
class ContextModelConfig:
    """The adaptive order-0..max_order token model (submissions/decoder/context_model.py)."""

    kind: str = "context"
    max_order: int = 2
    order1_rows: int = 8192
    hashed_rows: int = 32749  # rows of each hashed (order >= 2) table: rows * vocab * 2 bytes (268 MB at vocab 4096)
    count_limit: int = 60000


@dataclass(frozen=True)
class NeuralModelConfig:
    """The integer-exact transformer (models/gpt.py, submissions/decoder/neural_model.py) and its training."""

    kind: str = "neural"
    d_model: int = 256
    n_layers: int = 4
    n_heads: int = 4
    context: int = 128
    mlp_ratio: int = 4
    max_minutes: Optional[float] = 10.0  # training budget (time), counted across resumes
    max_steps: Optional[int] = None  # training budget (steps); the first one reached ends training
    batch_size: int = 32
    lr: float = 2e-3
    seed: int = 0

    def shape(self) -> dict:
        """The fields that define the network (ModelConfig), without the training budget."""
        return {k: getattr(self, k) for k in ("d_model", "n_layers", "n_heads", "context", "mlp_ratio")}


MODEL_CONFIGS = {"context": ContextModelConfig, "neural": NeuralModelConfig}


@dataclass(frozen=True)
class CoderConfig:
    n_streams: int = 64  # independent streams advanced together (more: faster, a few bytes each)
    prob_bits: int = 28  # coding frequencies sum to 2**prob_bits


@dataclass(frozen=True)
class PipelineConfig:
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: Union[ContextModelConfig, NeuralModelConfig] = field(default_factory=ContextModelConfig)
    coder: CoderConfig = field(default_factory=CoderConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, raw: dict) -> "PipelineConfig":
        try:
            return cls(
                tokenizer=TokenizerConfig(**raw.get("tokenizer", {})),
                model=MODEL_CONFIGS[raw.get("model", {}).get("kind", "context")](**raw.get("model", {})),
                coder=CoderConfig(**raw.get("coder", {})),
            )
        except (TypeError, KeyError) as exc:
            raise UserError(f"invalid configuration: {exc}") from None

    def validate(self) -> "PipelineConfig":
        if not 256 <= self.tokenizer.vocab_size <= 65536:
            raise UserError("vocab size must be between 256 and 65536")
        if self.tokenizer.model_type not in ("bpe", "unigram"):
            raise UserError("tokenizer model type must be bpe or unigram")
        if not 1 <= self.coder.n_streams <= 4096:
            raise UserError("number of streams must be between 1 and 4096")
        if not 16 <= self.coder.prob_bits <= 31:
            raise UserError("prob_bits must be between 16 and 31")
        if self.model.kind == "context" and self.model.count_limit + self.coder.n_streams >= 1 << 16:
            raise UserError("count_limit + n_streams must stay below 65536 (uint16 counts)")
        if self.model.kind == "neural":
            if self.model.max_minutes is None and self.model.max_steps is None:
                raise UserError("give the neural model a training budget (--max-minutes or --max-steps)")
            if self.model.d_model % self.model.n_heads:
                raise UserError("d_model must be a multiple of the number of heads")
        return self
