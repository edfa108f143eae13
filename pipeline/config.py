"""The configuration every run and every archive carries (as JSON, never pickle)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Optional, Union

from submissions.errors import UserError
from submissions.decoder.context_model import ContextConfig
from submissions.decoder.contexts import context_table
from submissions.decoder.counts import MAX_COUNT_LIMIT
from submissions.decoder.mixing_model import MixConfig
from submissions.decoder.online_alone import OnlineConfig
from submissions.decoder.model_registry import MODEL_KINDS, model_class


@dataclass(frozen=True)
class TokenizerConfig:
    vocab_size: int = 512  # smallest total for the default mix model on enwik6 (benchmarks/results/mixing_texts.md)
    model_type: str = "bpe"
    fold_case: bool = True  # capitals folded to lower case and marked (tokenizer/case.py): enwik6 0.46% smaller


ContextModelConfig = ContextConfig  # the adaptive order-0..max_order token model: its one definition is in the decoder


@dataclass(frozen=True)
class NeuralModelConfig:
    """The integer-exact transformer (models/gpt.py, submissions/decoder/neural_model.py) and its training."""

    kind: str = "neural"
    d_model: int = 256
    n_layers: int = 4
    n_heads: int = 4
    context: int = 128
    mlp_ratio: int = 4
    weight_bits: int = 8  # the blocks' weight matrices: 8 or 4 (two per byte in the archive)
    embed_bits: int = 8  # the embedding table and the head: 8 or 4
    max_minutes: Optional[float] = 10.0  # training budget (time), counted across resumes
    max_steps: Optional[int] = None  # training budget (steps); the first one reached ends training
    batch_size: int = 32
    lr: float = 2e-3
    seed: int = 0
    precision: str = "tf32"  # training matmuls: tf32 (exact for our operands), bf16 (faster, rounds), fp32

    def shape(self) -> dict:
        """The fields that define the network (ModelConfig), without the training budget."""
        names = ("d_model", "n_layers", "n_heads", "context", "mlp_ratio", "weight_bits", "embed_bits")
        return {k: getattr(self, k) for k in names}


@dataclass(frozen=True)
class MixingModelConfig(MixConfig):
    """Online context mixing over token bits (its fields and defaults: MixConfig in the decoder,
    submissions/decoder/mixing_model.py), plus a trained transformer as one more input, and
    the count table left to the file's size unless the run's config.json names one."""

    table_bits: int = 0  # count cells 2**table_bits; 0: by the size of the file (sized_tables, at pack time)
    neural: Optional[NeuralModelConfig] = None

    def __post_init__(self):
        super().__post_init__()
        if isinstance(self.neural, dict):
            object.__setattr__(self, "neural", NeuralModelConfig(**self.neural))


# the run's config class of every model kind (the kinds: submissions/decoder/model_registry.py):
# the decoder's own config, or one that adds training options
@dataclass(frozen=True)
class OnlineModelConfig(OnlineConfig):
    """The network that learns while it codes, alone (OnlineConfig in the decoder,
    submissions/decoder/online_alone.py), its direct table left to the file's size unless the
    run's config.json names one."""

    direct_bits: int = 0  # direct weights 2**direct_bits; 0: by the size of the file (sized_tables, at pack time)


_TRAINED = {"mix": MixingModelConfig, "online": OnlineModelConfig, "neural": NeuralModelConfig}
MODEL_CONFIGS = {kind: _TRAINED.get(kind) or model_class(kind).config_class for kind in MODEL_KINDS}


# tables left to the file (0 in the run's config): the mix model's count table 2**26 cells
# (256 MiB) up to 2**20 tokens a shard, a bit more per doubling, at most 2**30 (4 GiB, from
# 2**23 tokens: ~15 MB of text); the online model's direct table likewise from 2**27 (512 MiB)
# to 2**29. On 11 MB of Python docs (6.2M tokens) the count table at 2**27 / 2**28 / 2**29 codes
# -0.47% / -0.73% / -0.82% against 2**26, the direct table at 2**29 -0.31% against 2**27; on
# 40 MB of an English dictionary (21.7M tokens) 2**30 codes -0.20% against 2**29; on enwik6
# (0.59M tokens) a count table of 2**27 gains only -0.09% for +256 MiB
# (benchmarks/results/table_size_2026-12-05.md)
AUTO_TABLE_BITS = {"table_bits": (26, 30), "direct_bits": (27, 29)}  # (up to AUTO_TABLE_TOKENS, at most)
AUTO_TABLE_TOKENS = 1 << 20


def table_bits_for(field: str, n_tokens: int) -> int:
    """The size (bits) of the table `field` names for a shard of n_tokens."""
    low, high = AUTO_TABLE_BITS[field]
    return min(high, low + max(0, (n_tokens - 1) // AUTO_TABLE_TOKENS).bit_length())


def sized_tables(model: dict, n_tokens: int) -> dict:
    """{field: size in bits} of the tables the model config leaves to the file (0), for a shard
    of n_tokens."""
    return {field: table_bits_for(field, n_tokens) for field in AUTO_TABLE_BITS if model.get(field) == 0}


AUTO_STREAMS = (16, 32, 64)  # the stream counts automatic choice picks from for the context model
TOKENS_PER_STREAM = 1 << 16  # ... the fewest that give no stream more tokens than this
NEURAL_STREAMS = 64  # automatic choice with a neural net: its batch per step
MIX_STREAMS = 1  # the mixing model codes streams one after another: one stream codes smallest


@dataclass(frozen=True)
class CoderConfig:
    n_streams: int = 0  # independent streams advanced together (more: faster, a few bytes each); 0: automatic
    prob_bits: int = 28  # coding frequencies sum to 2**prob_bits
    shards: int = 1  # pieces of the file coded independently (by as many processes as you like)
    tree_order: bool = False  # binary models: number the tokens so the coding tree groups those that follow the same contexts (pipeline/tree_order.py; opt-in: enwik6 -0.26%, three other texts +0.3-0.4%)


@dataclass(frozen=True)
class PipelineConfig:
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: Union[MixingModelConfig, OnlineModelConfig, ContextModelConfig, NeuralModelConfig] = field(default_factory=MixingModelConfig)
    coder: CoderConfig = field(default_factory=CoderConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def streams_for(self, n_tokens: int) -> int:
        """Coding streams for n_tokens (the whole file or one shard): the configured number, or
        when that is 0 (automatic) NEURAL_STREAMS for a model with a neural net (its batch),
        MIX_STREAMS for the mixing model and the online model (their kernel codes one token at a
        time whatever the streams, and every stream more costs size:
        benchmarks/results/kernels_enwik6.md), else
        the fewest of AUTO_STREAMS with at most TOKENS_PER_STREAM tokens each (the context model
        steps all streams at once)."""
        if self.coder.n_streams:
            return self.coder.n_streams
        if self.neural_model() is not None:
            return NEURAL_STREAMS
        if isinstance(self.model, MixConfig):  # the mixing model's config, or the online model's
            return MIX_STREAMS
        return next((s for s in AUTO_STREAMS if n_tokens <= s * TOKENS_PER_STREAM), AUTO_STREAMS[-1])

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
        if not 0 <= self.coder.n_streams <= 4096:
            raise UserError("number of streams must be between 1 and 4096 (0: automatic)")
        if self.coder.shards < 1:
            raise UserError("the number of shards must be at least 1")
        if not 16 <= self.coder.prob_bits <= 31:
            raise UserError("prob_bits must be between 16 and 31")
        if self.model.kind == "context" and not 1 <= self.model.count_limit < (1 << 16) - 1:
            raise UserError("count_limit must be between 1 and 65534 (uint16 counts)")
        if isinstance(self.model, OnlineConfig):
            if self.model.online_hidden < 1:
                raise UserError("the online model needs its network: online_hidden >= 1")
            if not (10 <= self.model.direct_bits <= 30 or self.model.direct_bits == 0) or min(self.model.direct_rate, self.model.guess_rate) < 0 or not 0 <= self.model.scale_shift <= 40:
                raise UserError("direct_bits must be between 10 and 30 (0: by the file's size), direct_rate and guess_rate at least 0 (0: off), scale_shift between 0 and 40")
        if isinstance(self.model, MixConfig):
            if not (10 <= self.model.table_bits <= 30 or self.model.table_bits == 0):
                raise UserError("table_bits must be between 10 and 30 (4 bytes a cell: 4 GiB at 30), or 0: by the file's size")
            offsets = list(self.model.orders) + [i + 1 for c in self.model.sparse for i in c] + list(self.model.match_lengths) + list(self.model.local_match_lengths)
            if not all(1 <= o <= 32 for o in offsets) or not all(c for c in self.model.sparse):
                raise UserError("token context orders, sparse offsets and match lengths must be between 1 and 32")
            if not all(skip >= 0 and n >= 1 and skip + n <= 8 for skip, n in self.model.byte_contexts):
                raise UserError("byte contexts (skip, n) must lie within the last 8 bytes: skip >= 0, n >= 1, skip + n <= 8")
            salts = {salt for salt, _ in context_table(dataclasses.replace(self.model, without=()), 2, 0)} - {1}
            if not set(self.model.without) <= salts:
                raise UserError(f"without: {sorted(set(self.model.without) - salts)} name no context this config has (order 0 always stays)")
            if not 2 <= self.model.count_limit <= MAX_COUNT_LIMIT:
                raise UserError(f"count_limit must be between 2 and {MAX_COUNT_LIMIT} (12-bit counts)")
        neural = self.neural_model()
        if neural is not None:
            if neural.max_minutes is None and neural.max_steps is None:
                raise UserError("give the neural model a training budget (--max-minutes or --max-steps)")
            if neural.d_model % neural.n_heads:
                raise UserError("d_model must be a multiple of the number of heads")
            if neural.weight_bits not in (4, 8) or neural.embed_bits not in (4, 8):
                raise UserError("weight bits and embedding bits must be 4 or 8")
            if neural.precision not in ("tf32", "bf16", "fp32"):
                raise UserError(f"unknown precision {neural.precision!r} (tf32, bf16 or fp32)")
        return self

    def neural_model(self) -> Optional["NeuralModelConfig"]:
        """The transformer to train: the model itself, or the mixing model's neural input."""
        if self.model.kind == "neural":
            return self.model
        return getattr(self.model, "neural", None)
