"""Would an online token LSTM help as one more mixer input? A float proxy, measured before
any exact kernel is written.

    python benchmarks/mix_input_proxy.py runs/e6 --hidden 256
    python benchmarks/mix_input_proxy.py runs/e6 --second '{"kind": "online"}'  # an exact model instead

1. The default mixing model codes the run's tokens; the coder's recorded intervals give
   P(actual bit) at every decision of the token tree (a complete tree: vocab 2**n_bits).
2. A float token LSTM (torch, one thread) learns while it predicts, nncp-style: each segment of
   --segment tokens is predicted with the current weights, then one Adam step is taken on it;
   its softmax gives P(actual bit) at every node on the actual token's path.
3. An online logistic mixer with one weight set per tree node mixes stretch(P) of both,
   against the same mixer fed the mixing model alone (what the mixer gains by recalibrating
   is not the LSTM's).
Float and torch: the last bytes vary by machine. It screens; it never codes an archive.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numba
import numpy as np
import torch

from submissions.decoder import codec, encoding
from submissions.decoder.model_registry import build_model
from submissions.decoder.rans import COUNT
from tokenizer import load_tokenizer

PROB_BITS = 28


def model_bits(config: dict, table: list, tokens: np.ndarray) -> np.ndarray:
    """P(actual bit) of every decision under a model of the registry (the default mixing model:
    {"kind": "mix"}), in coding order."""
    model = build_model(config, len(table), 1, PROB_BITS, b"", token_bytes=table)
    coder = encoding.RansEncoder(1, PROB_BITS, capacity=len(tokens) * model.n_bits)
    codec.code(model, coder, tokens, 1)
    count = int(coder.arrays.vars[COUNT])
    if count != len(tokens) * model.n_bits:
        raise SystemExit(f"the model coded {count} decisions, not {model.n_bits} per token: the tree is not complete (vocab {len(table)})")
    return coder.arrays.freqs[:count].astype(np.float64) / (1 << PROB_BITS)


class TokenLSTM(torch.nn.Module):
    def __init__(self, vocab: int, embed: int, hidden: int):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, embed)
        self.lstm = torch.nn.LSTM(embed, hidden, batch_first=True)
        self.out = torch.nn.Linear(hidden, vocab)

    def forward(self, x, state):
        y, state = self.lstm(self.embed(x), state)
        return self.out(y), state


def path_bits(log_probs: torch.Tensor, tokens: torch.Tensor, n_bits: int) -> torch.Tensor:
    """P(actual bit) at each depth of each token's path, from its distribution over the vocab."""
    cumulative = torch.cat([torch.zeros(len(tokens), 1, dtype=torch.float64), log_probs.double().exp().cumsum(1)], 1)
    depth = torch.arange(n_bits)
    node_low = (tokens[:, None] >> (n_bits - depth)) << (n_bits - depth)
    child_low = (tokens[:, None] >> (n_bits - 1 - depth)) << (n_bits - 1 - depth)
    node = cumulative.gather(1, node_low + (1 << (n_bits - depth))) - cumulative.gather(1, node_low)
    child = cumulative.gather(1, child_low + (1 << (n_bits - 1 - depth))) - cumulative.gather(1, child_low)
    return (child / node).clamp(1e-6, 1 - 1e-6)


def lstm_bits(tokens: np.ndarray, n_bits: int, hidden: int, embed: int, segment: int, rate: float) -> np.ndarray:
    """P(actual bit) per decision of the token LSTM learning online."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = TokenLSTM(1 << n_bits, embed, hidden)
    optimizer = torch.optim.Adam(model.parameters(), lr=rate)
    ids = torch.from_numpy(tokens.astype(np.int64))
    out = np.zeros((len(ids), n_bits))
    state, previous = None, torch.zeros(1, dtype=torch.long)
    for begin in range(0, len(ids), segment):
        target = ids[begin : begin + segment]
        logits, next_state = model(torch.cat([previous, target[:-1]]).view(1, -1), state)
        log_probs = torch.log_softmax(logits[0], -1)
        with torch.no_grad():
            out[begin : begin + len(target)] = path_bits(log_probs, target, n_bits).numpy()
        loss = -log_probs.gather(1, target.view(-1, 1)).mean()
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        state, previous = tuple(s.detach() for s in next_state), target[-1:]
    return out.ravel()


@numba.njit
def mixed_bytes(ours, other, tokens, n_bits, rate, use_other):
    """Bytes of the decisions under an online logistic mixer of stretch(ours), stretch(other)
    and a bias, one weight set per tree node (starting as 'ours alone')."""
    weights = np.zeros((2 << n_bits, 3))
    weights[:, 0] = 1.0
    bits = 0.0
    for t in range(len(tokens)):
        for depth in range(n_bits):
            bit = (tokens[t] >> (n_bits - 1 - depth)) & 1
            p_ours, p_other = ours[t * n_bits + depth], other[t * n_bits + depth]
            p1 = min(max(p_ours if bit else 1.0 - p_ours, 1e-6), 1 - 1e-6)
            q1 = min(max(p_other if bit else 1.0 - p_other, 1e-6), 1 - 1e-6)
            x = (math.log(p1 / (1 - p1)), math.log(q1 / (1 - q1)) if use_other else 0.0, 0.3)
            w = weights[(1 << depth) | (tokens[t] >> (n_bits - depth))]
            z = min(max(w[0] * x[0] + w[1] * x[1] + w[2] * x[2], -20.0), 20.0)
            p = 1.0 / (1.0 + math.exp(-z))
            bits -= math.log2(max(p if bit else 1.0 - p, 1e-9))
            for i in range(3):
                w[i] += rate * (bit - p) * x[i]
    return bits / 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run folder of `pipeline train` (tokenizer.model, tokens.npy)")
    parser.add_argument("--tokens", type=int, default=None, help="only the first N tokens")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--embed", type=int, default=64)
    parser.add_argument("--segment", type=int, default=20, help="tokens per training step")
    parser.add_argument("--rate", type=float, default=0.002, help="Adam's learning rate")
    parser.add_argument("--mixer-rates", default="0.001,0.002", help="the proxy mixer's learning rates to try")
    parser.add_argument("--second", default=None, help='instead of the LSTM, an exact model of the registry as JSON, e.g. \'{"kind": "online"}\'')
    args = parser.parse_args()
    table = load_tokenizer((args.run / "tokenizer.model").read_bytes()).table
    tokens = np.load(args.run / "tokens.npy")[: args.tokens].astype(np.int64)
    n_bits = max(1, (len(table) - 1).bit_length())
    ours = model_bits({"kind": "mix"}, table, tokens)
    started = time.perf_counter()
    if args.second:
        other, name = model_bits(json.loads(args.second), table, tokens), args.second
    else:
        other = lstm_bits(tokens, n_bits, args.hidden, args.embed, args.segment, args.rate)
        name = f"LSTM (hidden {args.hidden}, embed {args.embed}, segment {args.segment}, Adam {args.rate})"
    seconds = time.perf_counter() - started
    print(f"{len(tokens):,} tokens; mixing model alone {-np.log2(ours).sum() / 8:,.0f} B; {name} alone {-np.log2(other).sum() / 8:,.0f} B in {seconds:.0f} s")
    print("| mixer rate | mixing model through the proxy mixer (B) | + the second model (B) | change |\n|---:|---:|---:|---:|")
    for rate in (float(r) for r in args.mixer_rates.split(",")):
        alone, both = mixed_bytes(ours, other, tokens, n_bits, rate, False), mixed_bytes(ours, other, tokens, n_bits, rate, True)
        print(f"| {rate} | {alone:,.0f} | {both:,.0f} | {100 * (both - alone) / alone:+.2f}% |", flush=True)


if __name__ == "__main__":
    main()
