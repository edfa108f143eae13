"""`pipeline pack --backend torch`: the online network of the mixing model and of the online
model run in torch (CPU or CUDA), giving the same archive bytes as the compiled kernels.

The network (submissions/decoder/online_model.py) is exact integer arithmetic; here the same
arithmetic runs on torch int64 tensors, one token at a time (it learns after every token), the
token's tree decisions at once. Its inputs are the hashes of the contexts it embeds, which
the compiled kernels compute (as rows of its embedding table); its logits go to the kernels'
model. Pack codes the shard through a copy of the decoder package whose online_model is
online_given.py:
1. the kernels record the embedding rows of each token's contexts, in the order they code the
   tokens (that coding is thrown away; the hashes depend on the tokens alone);
2. the mixing model: torch runs the network over the tokens, its logit at every decision (its
   network learns from its own logit, so it can run ahead of the coding); then
3. the kernels code the tokens with those logits (the payload).
`--model online`'s network learns from the whole model's logit, which the kernels compute at
every decision, so after 1 the two take turns token by token (OnlineExchange). A decoder runs
the kernels alone.
"""

from __future__ import annotations

import importlib

import numpy as np
import torch

from submissions.decoder import encoding
from submissions.decoder.codec import stream_lengths
from submissions.decoder import online_model as net
from submissions.decoder.logistic import PROB_BITS, SQUASH_TABLE
from submissions.errors import UserError

from .decoder_variant import decoder_variant

CHUNK_TOKENS = 1 << 14  # tokens whose inputs go to the device at once (and between progress reports)


def token_paths(tokens: np.ndarray, n_bits: int, vocab: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(T, n_bits) each: the tree node at every depth of each token's path, the bit taken there,
    and whether that decision is coded (the kernels skip a node with no id of the vocabulary
    below its 1: a 0 known to both sides)."""
    tokens = np.asarray(tokens, dtype=np.int64)[:, None]
    depth = np.arange(n_bits, dtype=np.int64)[None, :]
    below = n_bits - depth - 1
    nodes = (tokens >> (below + 1)) + (1 << depth)
    bits = tokens >> below & 1
    coded = ((2 * nodes + 1) << below) - (1 << n_bits) < vocab
    return nodes, bits, coded


def repeated_rows(rows: np.ndarray) -> np.ndarray:
    """Per token: whether two of its contexts share an embedding row (their steps then follow
    each other, as in the kernel's loop)."""
    ordered = np.sort(rows, axis=1)
    return (ordered[:, 1:] == ordered[:, :-1]).any(axis=1)


class TorchNetwork:
    """online_model.py's network as torch tensors: the same state, the same integer steps."""

    def __init__(self, hidden: int, rates: tuple, table_bits: int, n_bits: int, device: str = "cpu"):
        self.hidden, self.out_rate, self.in_rate = hidden, int(rates[0]), int(rates[1])
        self.n_bits, self.device = n_bits, device
        width = hidden + 1  # h with its constant 1 (the output's bias)
        start = net.new_online_state(hidden, rates, [], table_bits, n_bits)  # the output weights' Weyl start and uses
        self.out_w = torch.from_numpy(start["out_w"].astype(np.int64)).to(device)
        self.embed = torch.zeros((1 << table_bits, width), dtype=torch.int16, device=device)  # + the row's uses
        self.squash = torch.from_numpy(np.asarray(SQUASH_TABLE, dtype=np.int64)).to(device)
        self.h = torch.zeros(width, dtype=torch.int64, device=device)
        self.h[hidden] = net.H_ONE

    def logits(self, rows: np.ndarray, tokens: np.ndarray, vocab: int, progress=None) -> np.ndarray:
        """(T, n_bits) int16: the network's logit at each decision of each token (rows: (T,
        contexts), the embedding rows of its contexts), learning after each decision and each
        token as the kernels do; at depths the kernels skip, whatever the weights say (never
        read). Chunk by chunk, so the device holds one chunk's inputs at a time."""
        out = np.zeros((len(tokens), self.n_bits), dtype=np.int16)
        for start in range(0, len(tokens), CHUNK_TOKENS):
            end = min(start + CHUNK_TOKENS, len(tokens))
            out[start:end] = self._chunk(rows[start:end], tokens[start:end], vocab)
            if progress:
                progress(end, len(tokens))
        return out

    def _chunk(self, rows: np.ndarray, tokens: np.ndarray, vocab: int) -> np.ndarray:
        rows = rows.astype(np.int64)
        nodes, bits, coded = token_paths(tokens, self.n_bits, vocab)
        repeated = repeated_rows(rows)
        to = dict(device=self.device)
        rows_t, nodes_t = torch.from_numpy(rows).to(**to), torch.from_numpy(nodes).to(**to)
        bits_t, coded_t = torch.from_numpy(bits).to(**to), torch.from_numpy(coded.astype(np.int64)).to(**to)
        out = torch.zeros(nodes.shape, dtype=torch.int64, **to)
        steps = zip(rows_t.unbind(0), nodes_t.unbind(0), bits_t.unbind(0), coded_t.unbind(0), out.unbind(0), repeated.tolist())
        with torch.inference_mode():
            for row, node, bit, is_coded, logits, twice in steps:
                embedded = self.hidden_of(row)
                weights = self.out_w[node]
                logits.copy_(self.path_logits(weights))
                self.learn_token(row, embedded, self.learn_bits(node, weights, bit, is_coded, logits), twice)
        return out.cpu().numpy()

    def tanh(self, pre: torch.Tensor) -> torch.Tensor:
        """online_model.tanh_of."""
        return 2 * self.squash[torch.clamp(pre >> 7, -2047, 2047) + 2047] - net.H_ONE

    def hidden_of(self, rows: torch.Tensor) -> torch.Tensor:
        """online_model.online_hidden: h from the summed embeddings; the rows as read (with their
        uses), from which learn_token steps."""
        embedded = self.embed[rows].to(torch.int64)
        self.h[: self.hidden] = self.tanh(embedded[:, : self.hidden].sum(0) << net.EMBED_SHIFT)
        return embedded

    def path_logits(self, weights: torch.Tensor) -> torch.Tensor:
        """online_model.online_logit at every depth of a token's path at once, from the path's
        rows of out_w (h is fixed within a token, and the output weights of one node change
        only at its own decision)."""
        return torch.clamp((weights[:, : self.hidden + 1] * self.h).sum(1) >> 20, -2047, 2047)

    def learn_bits(self, nodes, weights, bits, coded, logits) -> torch.Tensor:
        """online_model.online_learn_bit at every depth at once (the nodes of a path are
        distinct; weights: their rows of out_w as path_logits read them), its error from the
        logits the coding used: the network's own (the mixing model) or the whole model's (the
        online model's direct connections and guesses added); h's gradient, the sum over the
        coded decisions, returned."""
        width = self.hidden + 1
        w, used = weights[:, :width], weights[:, width]
        error = ((bits << PROB_BITS) - self.squash[logits + 2047]) * coded  # (bit - p) in 1/4096; none where not coded
        rate = self.out_rate + torch.div(self.out_rate * net.YOUNG_BOOST * net.YOUNG_USES, used + net.YOUNG_USES, rounding_mode="floor")
        grad_h = (error[:, None] * w).sum(0)
        step = error[:, None] * self.h * rate[:, None] >> (8 + net.RATE_SHIFT)
        self.out_w[nodes] = torch.cat([torch.clamp(w + step, -net.WEIGHT_CAP, net.WEIGHT_CAP), torch.clamp(used + coded, max=1 << 30)[:, None]], 1)
        return grad_h

    def learn_token(self, rows: torch.Tensor, embedded: torch.Tensor, grad_h: torch.Tensor, repeated: bool) -> None:
        """online_model.online_learn_token: h's gradient through tanh into the rows' embeddings
        (embedded: those rows as hidden_of read them; nothing changed them since)."""
        hidden, h = self.hidden, self.h[: self.hidden]
        slope = net.H_ONE - (h * h >> 12)
        grad = (grad_h[:hidden] >> 12) * slope >> 12
        if repeated:  # a row twice: its uses and steps one after the other, as in the kernel
            self._learn_rows_in_turn(rows, grad)
            return
        used = embedded[:, hidden]
        step = self._row_step(grad, self._row_rate(used))
        learnt = torch.clamp(embedded[:, :hidden] + step, -net.EMBED_CAP, net.EMBED_CAP)
        self.embed[rows] = torch.cat([learnt, torch.clamp(used + 1, max=net.EMBED_CAP)[:, None]], 1).to(torch.int16)

    def _learn_rows_in_turn(self, rows: torch.Tensor, grad: torch.Tensor) -> None:
        hidden, rates = self.hidden, []
        for at in rows.tolist():
            used = self.embed[at, hidden].to(torch.int64)
            self.embed[at, hidden] = torch.clamp(used + 1, max=net.EMBED_CAP).to(torch.int16)
            rates.append(self._row_rate(used))
        for at, rate in zip(rows.tolist(), rates):
            step = self._row_step(grad, rate)
            self.embed[at, :hidden] = torch.clamp(self.embed[at, :hidden].to(torch.int64) + step, -net.EMBED_CAP, net.EMBED_CAP).to(torch.int16)

    def _row_rate(self, used: torch.Tensor) -> torch.Tensor:
        """A row's step size: up to 16x while its context is new."""
        return self.in_rate + torch.div(self.in_rate * net.ROW_BOOST * net.ROW_USES, used + net.ROW_USES, rounding_mode="floor")

    def _row_step(self, grad: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
        """The embedding step (rounded to the int16 grid) for gradient grad at these rates."""
        rate = rate[..., None] if rate.dim() else rate
        return (grad * rate >> net.RATE_SHIFT) + (1 << net.EMBED_SHIFT - 1) >> net.EMBED_SHIFT


def coding_order(n_tokens: int, n_streams: int) -> np.ndarray:
    """The tokens' indices in the order the kernels code them: step by step, at each step every
    stream that is still coding (codec.code: stream b holds a contiguous piece)."""
    lengths = stream_lengths(n_tokens, n_streams)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    steps = np.arange(lengths[0] if n_tokens else 0)[:, None]
    return (starts[None, :] + steps)[steps < lengths[None, :]]


def encoding_model(model_config: dict, vocab_size: int, n_streams: int, prob_bits: int, weights: bytes, token_bytes, tokens: np.ndarray, device: str, progress=None):
    """The model for these tokens in n_streams, its network run in torch on device: encode it as
    any model. The mixing model: its network's logits computed ahead (steps 1 and 2 above); the
    streams share one network, which learns token after token in the order they are coded. The
    online model (one stream): step 1, then the kernels and torch take turns token by token
    (OnlineExchange). progress(stage, done, total) per stage ("hashes", "network")."""
    if model_config["kind"] == "online" and n_streams != 1:
        raise UserError(f"--backend torch codes the online model in one stream, not {n_streams}: leave --streams out")
    tokens = np.asarray(tokens, dtype=np.int64)
    build = given_model_builder(model_config, vocab_size, n_streams, prob_bits, weights, token_bytes, len(tokens))
    first = build(record_rows=True)
    rows = recorded_rows(first, tokens, n_streams, _stage(progress, "hashes"))
    config, n_bits = first.config, first.n_bits
    del first  # its tables: one model's memory at a time
    network = TorchNetwork(config.online_hidden, config.online_rates, config.online_table_bits, n_bits, device)
    if model_config["kind"] == "online":
        return OnlineExchange(build(), network, rows, vocab_size)
    logits = network.logits(rows, tokens[coding_order(len(tokens), n_streams)], vocab_size, _stage(progress, "network"))
    del network
    return build(logits)


def given_model_builder(model_config: dict, vocab_size: int, n_streams: int, prob_bits: int, weights: bytes, token_bytes, n_tokens: int):
    """build(logits=None, record_rows=False): the model from the package copy whose network's
    logits are given (online_given), with room for n_tokens' logits (None: zeros) and, if
    record_rows, for the rows of their contexts."""
    variant = decoder_variant({"online_model": "online_given"})
    registry = importlib.import_module(variant.__name__ + ".model_registry")
    given = importlib.import_module(variant.__name__ + ".online_model")

    def build(logits=None, record_rows: bool = False):
        model = registry.build_model(model_config, vocab_size, n_streams, prob_bits, weights, token_bytes=token_bytes)
        n_contexts = len(model.state.online_contexts) if record_rows else 0
        model.state = model.state._replace(**given.given_arrays(n_tokens, n_contexts, model.n_bits, net.ROW_MULTIPLIER, logits))
        return model

    return build


def recorded_rows(model, tokens: np.ndarray, n_streams: int, progress=None) -> np.ndarray:
    """(T, contexts): step 1, the embedding rows of each token's contexts, in coding order, as a
    model of build(record_rows=True) records them (its coding thrown away)."""
    block = encoding.block_steps(n_streams, encoding.symbols_per_token(True, 1 << model.n_bits))  # the coder's memory bounded, as in pack
    encoding.encode(model, tokens, n_streams, model.prob_bits, progress, block)
    return model.state.context_rows.reshape(len(tokens), -1)


class OnlineExchange:
    """The online model with its network in torch, encoding one stream. Its network learns from
    the whole model's logit (the direct connections and guesses added to its own), so neither
    side can run ahead: token by token, torch gives the network's logits along the token's path
    (online_given reads them), the kernels code the token and leave the logits they coded with
    in online_logits, and the network learns from those, as online_learn_bit does."""

    binary = True

    def __init__(self, model, network: TorchNetwork, rows: np.ndarray, vocab: int):
        self.model, self.network, self.rows, self.vocab = model, network, rows, vocab
        self.n_bits = model.n_bits

    def code_steps(self, coder, window: np.ndarray, lengths: np.ndarray, t0: int) -> None:
        n_bits, state, to = self.n_bits, self.model.state, dict(device=self.network.device)
        paths = [torch.from_numpy(a.astype(np.int64)).to(**to) for a in token_paths(window[0], n_bits, self.vocab)]
        rows = self.rows[t0 : t0 + window.shape[1]].astype(np.int64)
        repeated = repeated_rows(rows).tolist()
        rows = torch.from_numpy(rows).to(**to)
        with torch.inference_mode():
            for i in range(window.shape[1]):
                nodes, bits, coded = (a[i] for a in paths)
                embedded, weights = self.network.hidden_of(rows[i]), self.network.out_w[nodes]
                state.h[(t0 + i) * n_bits : (t0 + i + 1) * n_bits] = self.network.path_logits(weights).cpu().numpy()  # where online_given reads them
                column = np.ascontiguousarray(window[:, i : i + 1])
                self.model.code_steps(coder, column, lengths, t0 + i)
                used = torch.from_numpy(state.online_logits.copy()).to(**to)  # at the coded depths: the whole model's logits
                self.network.learn_token(rows[i], embedded, self.network.learn_bits(nodes, weights, bits, coded, used), repeated[i])


def _stage(progress, name: str):
    return None if progress is None else (lambda done, total: progress(name, done, total))
