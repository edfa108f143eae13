"""Bounded-memory coding (coder blocks, chunked tokenization) and sharded coding across
processes: the archive bytes depend on the shard count only, and any number of processes
decodes them byte for byte."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import tokenize_file as tokenize_module
from pipeline.config import CoderConfig, ContextModelConfig, MixingModelConfig, NeuralModelConfig, PipelineConfig, TokenizerConfig
from submissions.errors import UserError
from pipeline.pack import pack
from pipeline.run_dir import fresh_tokens, open_tokens, read_token_record
from pipeline.train import train
from pipeline.unpack import unpack
from submissions.decoder import codec, encoding
from submissions.decoder.container import read_archive
from submissions.decoder.context_model import ContextModel
from submissions.decoder.mixing_model import MixConfig
from submissions.decoder.mixing_steps import ContextMixingModel
from submissions.decoder.rans import CorruptPayload
from submissions.decoder.tokens import unfold_case
from tests.coding import PROB_BITS
from tests.damaged import _set, rezip
from tokenizer import load_tokenizer

ROOT = Path(__file__).resolve().parents[1]
SMALL_MIX = dict(table_bits=16, orders=(1, 2), byte_contexts=((0, 1), (0, 2)), match_lengths=(3,))
# archives of the context model: their kernels compile in a second in each process the tests start
CONFIG = PipelineConfig(TokenizerConfig(vocab_size=320), ContextModelConfig(), CoderConfig(n_streams=8))


def _code(model, tokens, streams, block):
    payload = encoding.encode(model(), tokens, streams, PROB_BITS, block=block)
    return payload, codec.decode(model(), payload, len(tokens), streams, PROB_BITS, block=block)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 299), min_size=1, max_size=400), st.integers(1, 9), st.integers(1, 40))
def test_blocks_round_trip_for_table_models(ids, streams, block):
    tokens = np.array(ids, dtype=np.int64)
    streams = encoding.effective_streams(len(tokens), streams)
    payload, decoded = _code(lambda: ContextModel(300, streams, PROB_BITS), tokens, streams, block)
    np.testing.assert_array_equal(decoded, tokens)
    n_blocks = max(1, -(-int(codec.stream_lengths(len(tokens), streams)[0]) // block))
    whole = encoding.encode(ContextModel(300, streams, PROB_BITS), tokens, streams, PROB_BITS)
    assert len(payload) >= len(whole) + 8 * streams * (n_blocks - 1) - 4 * streams * n_blocks  # each block restarts its states


@settings(max_examples=10, deadline=None)
@given(st.lists(st.integers(0, 299), min_size=1, max_size=300), st.integers(1, 6), st.integers(1, 30))
def test_blocks_round_trip_for_binary_models(ids, streams, block):
    tokens = np.array(ids, dtype=np.int64)
    streams = encoding.effective_streams(len(tokens), streams)
    _, decoded = _code(lambda: ContextMixingModel(300, streams, PROB_BITS, MixConfig(**SMALL_MIX)), tokens, streams, block)
    np.testing.assert_array_equal(decoded, tokens)


def test_decoding_with_other_block_steps_is_refused():
    tokens = np.arange(200) % 50
    payload = encoding.encode(ContextModel(50, 4, PROB_BITS), tokens, 4, PROB_BITS, block=10)
    with pytest.raises(CorruptPayload):
        codec.decode(ContextModel(50, 4, PROB_BITS), payload, len(tokens), 4, PROB_BITS, block=7)


def test_a_memory_map_codes_like_an_array(tmp_path):
    tokens = (np.arange(3000) * 7 % 300).astype(np.uint16)
    np.save(tmp_path / "t.npy", tokens)
    mapped = np.load(tmp_path / "t.npy", mmap_mode="r")
    assert encoding.encode(ContextModel(300, 8, PROB_BITS), mapped, 8, PROB_BITS) == encoding.encode(ContextModel(300, 8, PROB_BITS), tokens.astype(np.int64), 8, PROB_BITS)


@given(st.integers(0, 10_000), st.integers(1, 20))
def test_shards_cover_the_tokens_in_order(n_tokens, n_shards):
    sizes = encoding.shard_sizes(n_tokens, n_shards)
    assert sum(sizes) == n_tokens and len(sizes) == max(1, min(n_shards, n_tokens or 1))
    assert sizes == sorted(sizes, reverse=True) and max(sizes) - min(sizes) <= 1


# ---------------------------------------------------------------- chunked tokenization

@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([b"a", b"b ", b"\n", "é".encode(), "→".encode(), "😀".encode(), b"\xff", b"\x80"]), max_size=300), st.integers(1, 40))
def test_text_chunks_give_back_the_file_and_never_split_a_character(tmp_path_factory, pieces, chunk_bytes):
    path = tmp_path_factory.mktemp("chunks") / "f"
    data = b"".join(pieces)
    path.write_bytes(data)
    chunks = list(tokenize_module.text_chunks(path, chunk_bytes))
    assert b"".join(chunks) == data and all(chunks)
    if data.isascii() or all(p != b"\xff" and p != b"\x80" for p in pieces):  # valid UTF-8: every chunk decodes
        for chunk in chunks:
            chunk.decode("utf-8")


def test_a_file_tokenized_in_chunks_decodes_to_itself(tmp_path, text_sample, monkeypatch):
    monkeypatch.setattr(tokenize_module, "CHUNK_BYTES", 3000)
    data = tmp_path / "data.txt"
    data.write_bytes(text_sample[:20_000])
    train(data, tmp_path / "run", CONFIG, progress=False)
    tokens = open_tokens(tmp_path / "run")
    tokenizer = load_tokenizer((tmp_path / "run" / "tokenizer.model").read_bytes())
    assert isinstance(tokens, np.memmap) and tokens.dtype == np.uint16
    marks = read_token_record(tmp_path / "run")["case"]
    assert marks == [1, 2]  # capitals folded (the sample has no control bytes), chunk by chunk
    assert b"".join(unfold_case([tokenizer.decode(tokens)], marks)) == data.read_bytes()
    assert fresh_tokens(tmp_path / "run", __import__("hashlib").sha256(data.read_bytes()).hexdigest(), CONFIG.tokenizer)


# ---------------------------------------------------------------- archives

@pytest.fixture(scope="module")
def small_run(tmp_path_factory, text_sample):
    folder = tmp_path_factory.mktemp("sharded")
    data = folder / "data.txt"
    data.write_bytes(text_sample[:12_000])
    train(data, folder / "run", CONFIG, progress=False)
    return folder


def _restore(archive: Path, out: Path, *extra: str) -> bytes:
    done = subprocess.run([sys.executable, "-I", str(archive), "-q", "-o", str(out), *extra], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return out.read_bytes()


def test_shards_and_blocks_restore_byte_for_byte(small_run, tmp_path, monkeypatch):
    monkeypatch.setattr(encoding, "BLOCK_SYMBOLS", 8 * 25)  # a block every 25 steps (8 streams, a symbol per token)
    result = pack(small_run / "run", tmp_path / "s.arc", shards=3, progress=False)
    header, _ = read_archive(str(tmp_path / "s.arc"))
    shards = header["coding"]["shards"]
    assert [s["tokens"] for s in shards] == encoding.shard_sizes(result.n_tokens, 3) and header["coding"]["block_steps"] == 25
    assert sum(s["bytes"] for s in shards) == result.payload_bits // 8
    original = (small_run / "data.txt").read_bytes()
    assert _restore(tmp_path / "s.arc", tmp_path / "one") == original
    assert _restore(tmp_path / "s.arc", tmp_path / "two", "--jobs", "2") == original


def test_a_corrupt_shard_size_is_refused_and_nothing_is_written(small_run, tmp_path):
    pack(small_run / "run", tmp_path / "s.arc", shards=2, progress=False)
    (tmp_path / "bad.arc").write_bytes(rezip((tmp_path / "s.arc").read_bytes(), _set("coding.shards.0.bytes", 4 + read_archive(str(tmp_path / "s.arc"))[0]["coding"]["shards"][0]["bytes"])))
    done = subprocess.run([sys.executable, "-I", str(tmp_path / "bad.arc"), "-q", "-o", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "payload size does not match its shards" in done.stderr
    assert not (tmp_path / "out").exists()
    with pytest.raises(UserError, match="does not match"):
        unpack(tmp_path / "bad.arc", tmp_path / "out2", progress=False)


def _run(command: list[str]) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]


def _torchrun(nproc: int, *args: str) -> None:
    _run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", "-m", "pipeline", *args])


@pytest.mark.slow
def test_two_processes_encode_what_one_decodes_and_the_reverse(small_run, tmp_path):
    """2 gloo processes (`--nproc 2` starts torchrun; unpack under torchrun itself): the archive is byte-identical to the one-process
    archive of the same shards (one such restores in one process: test_shards_and_blocks_restore_byte_for_byte), and a
    one-process archive decodes in two."""
    run, original = small_run / "run", (small_run / "data.txt").read_bytes()
    pack(run, tmp_path / "one.arc", shards=3, progress=False)
    _run([sys.executable, "-m", "pipeline", "pack", str(run), "-o", str(tmp_path / "two.arc"), "--shards", "3", "--nproc", "2", "-q"])
    assert (tmp_path / "two.arc").read_bytes() == (tmp_path / "one.arc").read_bytes()
    _torchrun(2, "unpack", str(tmp_path / "one.arc"), "-o", str(tmp_path / "unpacked"), "-q")
    assert (tmp_path / "unpacked").read_bytes() == original


def test_a_mixing_model_archive_shards_too(tmp_path, text_sample):
    config = PipelineConfig(TokenizerConfig(vocab_size=320), MixingModelConfig(**SMALL_MIX), CoderConfig(n_streams=4, shards=2, tree_order=True))
    data = tmp_path / "data.txt"
    data.write_bytes(text_sample[:5000])
    train(data, tmp_path / "run", config, progress=False)
    pack(tmp_path / "run", tmp_path / "c.arc", progress=False)  # shards and tree order from the run's config
    header = read_archive(str(tmp_path / "c.arc"))[0]
    assert len(header["coding"]["shards"]) == 2 and header["training"]["coder"]["tree_order"]
    assert unpack(tmp_path / "c.arc", tmp_path / "out", progress=False).size == 5000
    assert (tmp_path / "out").read_bytes() == data.read_bytes()


def test_nproc_refuses_an_existing_output_before_starting_processes(small_run, tmp_path):
    (tmp_path / "taken.arc").write_bytes(b"x")
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "pack", str(small_run / "run"), "-o", str(tmp_path / "taken.arc"), "--nproc", "2"],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [f"error: {tmp_path / 'taken.arc'} already exists (use --force to replace it)"]
    assert (tmp_path / "taken.arc").read_bytes() == b"x"


def test_automatic_streams_follow_the_model_and_the_file_size():
    """--streams 0: one stream for the mixing model (it codes one token at a time anyway);
    for the context model fewer, longer streams for small files (smaller archives), 64 for
    big ones; 64 with a neural net (its batch); a configured count always wins."""
    assert [PipelineConfig().streams_for(n) for n in (1, 1 << 20, 1 << 30)] == [1, 1, 1]
    auto = PipelineConfig(model=ContextModelConfig(), coder=CoderConfig(n_streams=0))
    assert [auto.streams_for(n) for n in (1, 1 << 20, (1 << 20) + 1, 1 << 21, 1 << 30)] == [16, 16, 32, 32, 64]
    assert PipelineConfig(model=MixingModelConfig(neural=NeuralModelConfig()), coder=CoderConfig(n_streams=0)).streams_for(100) == 64
    assert PipelineConfig(coder=CoderConfig(n_streams=8)).streams_for(1 << 30) == 8
    assert PipelineConfig().coder.n_streams == 0
    with pytest.raises(UserError):
        PipelineConfig(coder=CoderConfig(n_streams=-1)).validate()
