"""`pipeline pack --backend torch`: the online network of the mixing model and of the online
model run in torch (pipeline/online_torch.py) codes the kernels' bytes. (On a GPU, when one is lent:
benchmarks/online_torch.py --devices cpu,cuda.)"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from test_mixing_model import PROB_BITS, model

from pipeline.config import MixingModelConfig, OnlineModelConfig, PipelineConfig, TokenizerConfig
from pipeline import online_torch
from pipeline.online_torch import TorchNetwork, coding_order, encoding_model, given_model_builder, recorded_rows, repeated_rows, token_paths
from pipeline import pack as pack_module
from pipeline.pack import _check_backend, pack
from pipeline.train import train
from submissions.decoder import encoding
from submissions.decoder.mixing_model import MixConfig
from submissions.errors import UserError

SHARED_ROWS = dict(table_bits=12, online_hidden=8, online_table_bits=8)  # 256 embedding rows for the 17 contexts embedded here: ~40% of the tokens have two sharing one


def shared_rows_network() -> TorchNetwork:
    """The torch network of SHARED_ROWS (its hidden units and table, the default rates), untrained."""
    return TorchNetwork(SHARED_ROWS["online_hidden"], MixConfig.online_rates, SHARED_ROWS["online_table_bits"], 8)


@pytest.fixture(scope="module")
def coded(text_sample):
    """2,000 bytes of text under SHARED_ROWS: the kernels' payload; the torch backend's payload,
    the rows of the contexts its kernels recorded and the logits its network gave, per token."""
    tokens = np.frombuffer(text_sample[:2000], dtype=np.uint8).astype(np.int64)
    kernels_model = model(256, 1, **SHARED_ROWS)
    payload = encoding.encode(kernels_model, tokens, 1, PROB_BITS)
    torch_model = encoding_model(dict(kind="mix", **SHARED_ROWS), 256, 1, PROB_BITS, b"", None, tokens, "cpu")
    torch_payload = encoding.encode(torch_model, tokens, 1, PROB_BITS)
    rows = recorded_rows(given_model_builder(dict(kind="mix", **SHARED_ROWS), 256, 1, PROB_BITS, b"", None, len(tokens))(record_rows=True), tokens, 1)
    trained = (kernels_model.state.out_w, kernels_model.state.embed)  # the kernels' network after the last token
    return tokens, payload, torch_payload, rows, torch_model.state.h.reshape(len(tokens), -1), trained


def test_the_network_in_torch_codes_the_kernels_bytes_where_contexts_share_rows(coded):
    tokens, payload, torch_payload, rows, _, _ = coded
    assert torch_payload == payload
    shared = repeated_rows(rows)
    assert 0.05 < shared.mean() < 0.95  # both ways of the embeddings' step ran (at once, and row after row)


def test_streams_share_the_network_in_the_order_they_are_coded(text_sample):
    tokens = np.frombuffer(text_sample[:1500], dtype=np.uint8).astype(np.int64)
    assert coding_order(7, 3).tolist() == [0, 3, 5, 1, 4, 6, 2]  # streams of 3, 2, 2 tokens, a step at a time
    payload = encoding.encode(model(256, 3, **SHARED_ROWS), tokens, 3, PROB_BITS)
    torch_model = encoding_model(dict(kind="mix", **SHARED_ROWS), 256, 3, PROB_BITS, b"", None, tokens, "cpu")
    assert encoding.encode(torch_model, tokens, 3, PROB_BITS) == payload


def test_the_thread_count_and_the_chunks_change_no_logit(coded, monkeypatch):
    tokens, _, _, rows, given, _ = coded
    tokens, rows = tokens[:600], rows[:600]  # the logits of a prefix are the prefix of the logits
    threads = torch.get_num_threads()
    try:
        logits = []
        for n in (1, 2):
            torch.set_num_threads(n)
            logits.append(shared_rows_network().logits(rows, tokens, 256))
        monkeypatch.setattr(online_torch, "CHUNK_TOKENS", 7)  # the network's state carried across 86 chunks
        logits.append(shared_rows_network().logits(rows, tokens, 256))
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_array_equal(logits[0], logits[2])
    np.testing.assert_array_equal(logits[0], logits[1])
    coded_at = token_paths(tokens, 8, 256)[2]
    np.testing.assert_array_equal(logits[0][coded_at], given[:600][coded_at])  # what the coding read


def test_torch_trains_the_kernels_weights_pinned(coded):
    """After the last token the torch network's weights are the kernels' network's, bit for bit
    (output weights with their uses, embeddings with theirs), and pinned."""
    tokens, _, _, rows, _, (out_w, embed) = coded
    network = shared_rows_network()
    network.logits(rows, tokens, 256)
    np.testing.assert_array_equal(network.out_w.numpy(), out_w)
    np.testing.assert_array_equal(network.embed.numpy(), embed)
    digest = hashlib.sha256(out_w.astype(np.int32).tobytes() + embed.astype(np.int16).tobytes()).hexdigest()[:16]
    assert digest == "929be9fec3cfa8b3"


def test_token_paths_follow_the_tree_and_skip_decisions_the_vocabulary_settles():
    nodes, bits, coded = token_paths(np.array([0, 5, 299]), 9, 300)
    assert nodes[1].tolist() == [1, 2, 4, 8, 16, 32, 64, 129, 258] and bits[1].tolist() == [0, 0, 0, 0, 0, 0, 1, 0, 1]
    assert coded[0].all()  # below each 1 on the way to 0 there are ids (256-299, 128-255, ...)
    assert coded[2].tolist() == [True, False, False, True, False, True, False, True, True]  # 299 = 0b100101011: no id in 384-511, ...


@pytest.mark.parametrize("kind", ["mix", "online"])
def test_pack_with_the_network_in_torch_writes_the_kernels_archive(tmp_path, text_sample, kind, monkeypatch):
    """Both ways through `pack`, two shards each. --model online: its network learns from the
    whole model's logit, so torch and the kernels take turns token by token; the bytes and each
    shard's trained network are the kernels' too."""
    data = tmp_path / "data.txt"
    data.write_bytes(text_sample[:3000])
    tables = dict(online_table_bits=12) | (dict(table_bits=14) if kind == "mix" else dict(direct_bits=18))
    model_config = (MixingModelConfig if kind == "mix" else OnlineModelConfig)(**tables)
    config = PipelineConfig(tokenizer=TokenizerConfig(vocab_size=300), model=model_config)
    train(data, tmp_path / "run", config, progress=False)
    models = []  # each shard's model: the kernels' way's, then the torch way's

    def kept(make):
        return lambda *args, **kwargs: models.append(make(*args, **kwargs)) or models[-1]

    monkeypatch.setattr(pack_module, "build_model", kept(pack_module.build_model))
    kernels = pack(tmp_path / "run", tmp_path / "k.arc", progress=False, shards=2)
    monkeypatch.setattr(online_torch, "encoding_model", kept(online_torch.encoding_model))
    in_torch = pack(tmp_path / "run", tmp_path / "t.arc", progress=True, shards=2, backend="torch", device="cpu")
    assert (tmp_path / "t.arc").read_bytes() == (tmp_path / "k.arc").read_bytes()
    assert in_torch.total_bytes == kernels.total_bytes
    assert len(models) == 4  # the torch way ran, for both shards
    if kind == "online":
        for kernels_model, exchange in zip(models[:2], models[2:]):
            np.testing.assert_array_equal(exchange.network.out_w.numpy(), kernels_model.state.out_w)
            np.testing.assert_array_equal(exchange.network.embed.numpy(), kernels_model.state.embed)


def test_backend_torch_is_refused_where_no_network_or_neural_input_runs_in_torch():
    _check_backend({"kind": "mix"}, "torch")  # the default has its network
    _check_backend({"kind": "online"}, "torch")
    with pytest.raises(UserError, match="this mix model has no online network"):
        _check_backend({"kind": "mix", "online_hidden": 0}, "torch")
    with pytest.raises(UserError, match="this online model has no online network"):
        _check_backend({"kind": "online", "online_hidden": 0}, "torch")
    with pytest.raises(UserError, match="in one stream, not 2: leave --streams out"):  # the online model's turns are token by token
        encoding_model(dict(kind="online"), 300, 2, PROB_BITS, b"", None, np.zeros(9), "cpu")
    _check_backend({"kind": "mix", "online_hidden": 0, "neural": {"kind": "neural"}}, "torch")
    _check_backend({"kind": "mix"}, "torch", "cpu")
    with pytest.raises(UserError, match="--device tpu: use cpu or cuda"):
        _check_backend({"kind": "mix"}, "torch", "tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="the machine has a CUDA GPU")
def test_device_cuda_without_a_gpu_is_refused_before_coding():
    with pytest.raises(UserError, match="sees no CUDA GPU here; use --device cpu"):
        _check_backend({"kind": "mix"}, "torch", "cuda")
