"""The float twin of the integer model, trained with quantization-aware training.

It is the network of submissions/decoder/neural_model.py written in the integer
domain: every tensor the integer model holds as an integer is an integer-valued
float tensor here (residual stream in units of 2**-resid_bits, int8 activations,
int8 weights), and every rescale the integer model does with a multiplier
M / 2**S is here a float product of scales. Rounding is round half up with a
straight-through gradient, exp is the same integer table (its backward uses the
derivative of 2**-x), and RMSNorm floors its rms the same way. So the float loss
is the integer model's code length up to multiplier rounding and float noise,
and `models.export` only has to turn scales into multipliers.

Learned pieces: int8 or int4 weights (per output row scale = max|row| / 127,
or / 7), RMSNorm gains, and one quantization step per activation tensor
(LSQ-style, stored as log_scale), set from data by `calibrate` before training starts.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F

from submissions.decoder.int_ops import (
    ACT_MAX,
    FLOAT32_EXACT,
    MAX_WIDTH,
    NORM_EXTRA_BITS,
    RELU_MAX,
    RESID_MAX,
    attention_prob_bits,
    exp2_table,
)

LOG2_E = 1.0 / math.log(2.0)
WEIGHT_BITS = (4, 8)  # weights are int8 in [-127, 127] or int4 in [-7, 7] (symmetric)
MASKED = float(1 << 30)  # ALiBi bias outside the window: the exp table gives 0 there


def weight_max(bits: int) -> int:
    """The largest |weight| of a symmetric `bits`-bit weight: 127 or 7."""
    if bits not in WEIGHT_BITS:
        raise ValueError(f"weights have {bits} bits; supported: {WEIGHT_BITS}")
    return (1 << (bits - 1)) - 1


@dataclass(frozen=True)
class ModelConfig:
    """Shape and number formats of the model; travels as JSON in checkpoints and archive headers."""

    vocab_size: int
    d_model: int = 256
    n_layers: int = 4
    n_heads: int = 4
    context: int = 128  # attention window in tokens, the current one included
    mlp_ratio: int = 4
    tie_embeddings: bool = True  # the output head reuses the int8 embedding table
    resid_bits: int = 12  # fractional bits of the residual stream
    exp_bits: int = 6  # logits are integers in units of 2**-exp_bits bits
    out_prob_bits: int = 24  # the output exp table's scale: weights up to 2**24
    weight_bits: int = 8  # the blocks' matrices (qkv, proj, fc1, fc2): 8 or 4
    embed_bits: int = 8  # the embedding table (and the head, tied or not): 8 or 4

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> "ModelConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names}).validate()

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def validate(self) -> "ModelConfig":
        if self.d_model % self.n_heads:
            raise ValueError("d_model must be a multiple of n_heads")
        if self.d_model > MAX_WIDTH or self.head_dim * ACT_MAX * ACT_MAX > FLOAT32_EXACT:
            raise ValueError("d_model (or head_dim) too large for the exact integer model")
        attention_prob_bits(self.context)  # raises when the window is too long
        if not 2 <= self.vocab_size <= 1 << 20 or not 1 <= self.out_prob_bits <= 30:
            raise ValueError("vocab_size or out_prob_bits out of range")
        if self.weight_bits not in WEIGHT_BITS or self.embed_bits not in WEIGHT_BITS:
            raise ValueError(f"weight_bits and embed_bits must be one of {WEIGHT_BITS}")
        return self


def alibi_slopes(n_heads: int, exp_bits: int) -> list[int]:
    """Integer ALiBi slopes in units of 2**-exp_bits bits per position: the usual geometric
    series 2**(-8 h / H) nats, at least 1 so every head prefers recent tokens a little."""
    return [max(1, round(2**exp_bits * LOG2_E * 2 ** (-8 * (h + 1) / n_heads))) for h in range(n_heads)]


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """floor(x + 1/2) forward (the integer model's rounding), identity gradient."""
    return x + (torch.floor(x + 0.5) - x).detach()


def floor_ste(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.floor(x) - x).detach()


def quantize_weight(w: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per output row int8 or int4: (integer-valued weights in [-q, q], row scales),
    q = weight_max(bits). The scale takes no gradient; export stores exactly these integers."""
    q = weight_max(bits)
    scale = w.detach().abs().amax(dim=1).clamp_min(1e-8) / q
    return round_ste(w / scale[:, None]).clamp(-q, q), scale


class ActQuant(nn.Module):
    """A learned quantization step for one activation tensor: real -> integers in [lo, hi]."""

    def __init__(self, lo: int, hi: int):
        super().__init__()
        self.lo, self.hi = lo, hi
        self.log_scale = nn.Parameter(torch.zeros(()))
        self.calibrating = False

    @property
    def scale(self) -> torch.Tensor:
        return self.log_scale.exp()

    def forward(self, real: torch.Tensor) -> torch.Tensor:
        if self.calibrating:  # 4 rms at the top of the range
            rms = real.detach().float().pow(2).mean().sqrt().clamp_min(1e-6)
            self.log_scale.data.fill_(math.log(4 * rms.item() / self.hi))
        return round_ste(real / self.scale).clamp(self.lo, self.hi)


class ExpTable(torch.autograd.Function):
    """p = table[min(t, len - 1)]: the integer exp2 table going forward, d/dt 2**(-t/2**k) going back."""

    @staticmethod
    def forward(ctx, t, table, exp_bits):
        p = table[t.detach().clamp(0, len(table) - 1).long()]
        ctx.save_for_backward(p)
        ctx.exp_bits = exp_bits
        return p

    @staticmethod
    def backward(ctx, grad):
        (p,) = ctx.saved_tensors
        return grad * p * (-math.log(2.0) / 2**ctx.exp_bits), None, None


class RMSNorm(nn.Module):
    """Integer RMSNorm (int_ops.rms_norm): int8 round(h / rms(h) * gain / step)."""

    def __init__(self, d: int):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(d))
        self.out = ActQuant(-ACT_MAX, ACT_MAX)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        extra = 2**NORM_EXTRA_BITS
        # the integer model floors the rms, kept in units 2**-(resid_bits + NORM_EXTRA_BITS)
        r = floor_ste(h.pow(2).mean(-1, keepdim=True).mul(extra * extra).sqrt()).clamp_min(1)
        return self.out(h * extra / r * self.gain)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d = cfg.d_model
        self.cfg = cfg
        self.qkv = nn.Parameter(torch.randn(3 * d, d) * 0.02)
        self.proj = nn.Parameter(torch.randn(d, d) * 0.02 / math.sqrt(2 * cfg.n_layers))
        self.q_out, self.k_out, self.v_out = (ActQuant(-ACT_MAX, ACT_MAX) for _ in range(3))
        self.o_out = ActQuant(-ACT_MAX, ACT_MAX)

    def forward(self, x, x_scale, bias, table):
        """x: int8-valued (B, T, d) at step x_scale; bias: (H, T, T) ALiBi + window mask."""
        cfg, (B, T, d) = self.cfg, x.shape
        H, hd = cfg.n_heads, cfg.head_dim
        w, w_scale = quantize_weight(self.qkv, cfg.weight_bits)
        real = (x @ w.t()) * (x_scale * w_scale)  # (B, T, 3d): exact integer matmul, then rescale
        q, k, v = (quant(part) for quant, part in zip((self.q_out, self.k_out, self.v_out), real.split(d, dim=-1)))
        q, k, v = (t.view(B, T, H, hd).transpose(1, 2) for t in (q, k, v))  # (B, H, T, hd)
        scores = q @ k.transpose(-1, -2)  # (B, H, T, T), integer-valued
        to_bits = self.q_out.scale * self.k_out.scale * LOG2_E * 2**cfg.exp_bits / math.sqrt(hd)
        z = round_ste(scores * to_bits) - bias  # logits in units of 2**-exp_bits bits
        p = ExpTable.apply(z.detach().amax(-1, keepdim=True) - z, table, cfg.exp_bits)  # (B, H, T, T)
        mixed = (p @ v) / p.sum(-1, keepdim=True)  # (B, H, T, hd), in v's units
        o = self.o_out(mixed * self.v_out.scale).transpose(1, 2).reshape(B, T, d)
        w, w_scale = quantize_weight(self.proj, cfg.weight_bits)
        return round_ste((o @ w.t()) * (self.o_out.scale * w_scale * 2**cfg.resid_bits))


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d, hidden = cfg.d_model, cfg.d_model * cfg.mlp_ratio
        self.cfg = cfg
        self.fc1 = nn.Parameter(torch.randn(hidden, d) * 0.02)
        self.fc2 = nn.Parameter(torch.randn(d, hidden) * 0.02 / math.sqrt(2 * cfg.n_layers))
        self.hidden = ActQuant(0, RELU_MAX)  # ReLU output as uint8

    def forward(self, x, x_scale):
        bits = self.cfg.weight_bits
        w, w_scale = quantize_weight(self.fc1, bits)
        u = self.hidden(F.relu((x @ w.t()) * (x_scale * w_scale)))  # (B, T, hidden)
        w, w_scale = quantize_weight(self.fc2, bits)
        return round_ste((u @ w.t()) * (self.hidden.scale * w_scale * 2**self.cfg.resid_bits))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.norm1, self.attn = RMSNorm(cfg.d_model), Attention(cfg)
        self.norm2, self.mlp = RMSNorm(cfg.d_model), MLP(cfg)

    def forward(self, h, bias, table):
        h = (h + self.attn(self.norm1(h), self.norm1.out.scale, bias, table)).clamp(-RESID_MAX, RESID_MAX)
        return (h + self.mlp(self.norm2(h), self.norm2.out.scale)).clamp(-RESID_MAX, RESID_MAX)


class GPT(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg = cfg.validate()
        V, d = cfg.vocab_size, cfg.d_model
        self.wte = nn.Parameter(torch.randn(V + 1, d) * 0.02)  # row V: "no token yet" (stream start)
        self.head = None if cfg.tie_embeddings else nn.Parameter(torch.randn(V, d) * 0.02)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm_f = RMSNorm(d)
        self.register_buffer("slopes", torch.tensor(alibi_slopes(cfg.n_heads, cfg.exp_bits), dtype=torch.float32))
        self.register_buffer("calibrated", torch.tensor(False))  # saved with the weights
        self._calibrated = False
        table = exp2_table(cfg.exp_bits, attention_prob_bits(cfg.context))
        self.register_buffer("att_table", torch.tensor(table, dtype=torch.float32), persistent=False)

    @property
    def bos(self) -> int:
        return self.cfg.vocab_size

    def head_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        w, scale = quantize_weight(self.wte if self.head is None else self.head, self.cfg.embed_bits)
        return w[: self.cfg.vocab_size], scale[: self.cfg.vocab_size]

    def alibi_bias(self, T: int) -> torch.Tensor:
        """(H, T, T): slope * distance inside the causal window of `context` tokens, MASKED outside."""
        pos = torch.arange(T, device=self.slopes.device)
        distance = (pos[:, None] - pos[None, :]).float()  # (T, T): i - j
        inside = (distance >= 0) & (distance < self.cfg.context)
        return torch.where(inside, self.slopes[:, None, None] * distance, torch.tensor(MASKED, device=pos.device))

    def embed(self, idx: torch.Tensor) -> torch.Tensor:
        w, scale = quantize_weight(self.wte, self.cfg.embed_bits)
        h = round_ste(w[idx] * (scale[idx] * 2**self.cfg.resid_bits)[..., None])  # (B, T, d)
        return h.clamp(-RESID_MAX, RESID_MAX)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """idx (B, T) token ids (vocab_size = stream start) -> (logits in nats (B, T, V), loss in nats)."""
        if not self._calibrated:  # a Python mirror of the buffer: no GPU sync per step
            self._calibrated = bool(self.calibrated)
            if not self._calibrated:
                self.calibrate(idx)
        cfg = self.cfg
        h = self.embed(idx)
        bias = self.alibi_bias(idx.shape[1])
        for block in self.blocks:
            h = block(h, bias, self.att_table)
        x = self.norm_f(h)
        w, w_scale = self.head_weights()
        z = round_ste((x @ w.t()) * (self.norm_f.out.scale * w_scale * LOG2_E * 2**cfg.exp_bits))
        logits = z * (math.log(2.0) / 2**cfg.exp_bits)  # (B, T, V), integer multiples of 2**-k bits
        loss = None if targets is None else F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
        return logits, loss

    @torch.no_grad()
    def calibrate(self, idx: torch.Tensor) -> None:
        """Set every activation step from one batch, in forward order (each sees quantized inputs)."""
        quants = [m for m in self.modules() if isinstance(m, ActQuant)]
        for m in quants:
            m.calibrating = True
        self.calibrated.fill_(True)
        self._calibrated = True
        try:
            self(idx)
        finally:
            for m in quants:
                m.calibrating = False

    def param_groups(self, weight_decay: float) -> list[dict]:
        """Weight decay on the weight matrices only (not gains or quantization steps)."""
        matrices = [p for p in self.parameters() if p.dim() >= 2]
        others = [p for p in self.parameters() if p.dim() < 2]
        return [{"params": matrices, "weight_decay": weight_decay}, {"params": others, "weight_decay": 0.0}]
