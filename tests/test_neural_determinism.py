"""The integer neural model: same frequencies on every backend, thread count and batch size."""

import hashlib
import math

import numpy as np
import pytest
import torch

from models.export import pack_int4, pack_weights, random_integer_weights
from submissions.decoder import codec, encoding
from submissions.decoder.int_ops import (
    FLOAT32_EXACT,
    NORM_EXTRA_BITS,
    RESID_MAX,
    NumpyBackend,
    TorchBackend,
    exact_matmul,
    exp2_table,
    isqrt,
    requantize,
    rms_norm,
)
from submissions.archive import runtime_of
from submissions.decoder.model_registry import build_model
from submissions.decoder.neural_model import (
    NeuralModel,
    _Linear,
    choose_backend,
    unpack_int4,
    unpack_weights,
)

PROB_BITS = 28
NP, TORCH = NumpyBackend(), TorchBackend("cpu")


def small_config(rng: np.random.Generator) -> dict:
    heads = int(rng.choice([1, 2, 4]))
    return {
        "vocab_size": int(rng.integers(64, 301)),
        "d_model": heads * int(rng.choice([8, 12, 16])),
        "n_layers": int(rng.integers(1, 3)),
        "n_heads": heads,
        "context": int(rng.choice([8, 12, 16])),
        "mlp_ratio": int(rng.integers(2, 5)),
        "tie_embeddings": bool(rng.integers(0, 2)),
        "resid_bits": int(rng.integers(8, 14)),
        "exp_bits": int(rng.integers(4, 7)),
        "out_prob_bits": int(rng.integers(16, 25)),
        "weight_bits": int(rng.choice([4, 8])),
        "embed_bits": int(rng.choice([4, 8])),
    }


def int4_config(rng: np.random.Generator) -> dict:
    return dict(small_config(rng), weight_bits=4, embed_bits=4)


def token_steps(rng, vocab: int, n_streams: int, n_steps: int) -> list[np.ndarray]:
    """prev_tokens per step: -1 first (stream start), then random ids with some finished streams."""
    steps = [np.full(n_streams, -1)]
    for _ in range(n_steps - 1):
        prev = rng.integers(0, vocab, size=n_streams)
        prev[rng.random(n_streams) < 0.1] = -1
        steps.append(prev)
    return steps


def run(model: NeuralModel, steps: list[np.ndarray]) -> np.ndarray:
    return np.stack([model.step(prev) for prev in steps])  # (steps, B, V)


def assert_valid(freqs: np.ndarray) -> None:
    assert freqs.dtype == np.int64
    assert (freqs >= 1).all() and (freqs.sum(axis=-1) == 1 << PROB_BITS).all()


def test_numpy_and_torch_agree_on_random_models():
    rng = np.random.default_rng(2024)
    for trial in range(30):  # 60 took 12 s of the suite
        config = small_config(rng)
        arrays = random_integer_weights(config, seed=trial)
        n_streams = int(rng.integers(1, 6))
        steps = token_steps(rng, config["vocab_size"], n_streams, config["context"] + 8)  # wraps the ring
        a = run(NeuralModel(config, arrays, n_streams, PROB_BITS, backend=NP), steps)
        b = run(NeuralModel(config, arrays, n_streams, PROB_BITS, backend=TORCH), steps)
        np.testing.assert_array_equal(a, b, err_msg=f"trial {trial}: {config}")
        assert_valid(a)


def test_frequencies_vary():
    """The random models are not degenerate: the tests above compare real distributions."""
    rng = np.random.default_rng(5)
    config = small_config(rng)
    freqs = run(NeuralModel(config, random_integer_weights(config, 5), 4, PROB_BITS, backend=NP), token_steps(rng, config["vocab_size"], 4, 20))
    top = freqs.max(axis=-1) / 2.0**PROB_BITS
    assert top.min() < 0.9 and len(np.unique(freqs[-1, 0])) > 10


def test_torch_thread_count_does_not_matter():
    rng = np.random.default_rng(7)
    config = dict(small_config(rng), d_model=128, n_heads=4, vocab_size=1000, mlp_ratio=4, context=16)
    arrays = random_integer_weights(config, 7)
    steps = token_steps(rng, config["vocab_size"], 32, 20)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = run(NeuralModel(config, arrays, 32, PROB_BITS, backend=TORCH), steps)
        torch.set_num_threads(2)
        two = run(NeuralModel(config, arrays, 32, PROB_BITS, backend=TORCH), steps)
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(one, run(NeuralModel(config, arrays, 32, PROB_BITS, backend=NP), steps))


@pytest.mark.parametrize("backend", [NP, TORCH], ids=["numpy", "torch"])
def test_a_stream_codes_the_same_alone_or_in_a_batch(backend):
    rng = np.random.default_rng(11)
    for trial in range(8):
        config = small_config(rng)
        arrays = random_integer_weights(config, 100 + trial)
        steps = token_steps(rng, config["vocab_size"], 7, config["context"] + 5)
        together = run(NeuralModel(config, arrays, 7, PROB_BITS, backend=backend), steps)
        b = int(rng.integers(0, 7))
        alone = run(NeuralModel(config, arrays, 1, PROB_BITS, backend=backend), [s[b : b + 1] for s in steps])
        np.testing.assert_array_equal(alone[:, 0], together[:, b])


def test_int4_models_agree_across_backends_threads_and_batches():
    """Forty random int4 models and inputs: numpy = torch (1 and 2 threads), and each
    stream's frequencies are the same coded alone as in its batch."""
    rng = np.random.default_rng(44)
    threads = torch.get_num_threads()
    try:
        for trial in range(40):  # 120 took 20 s of the 3-minute suite, 60 took 8-13 s
            config = int4_config(rng)
            arrays = random_integer_weights(config, seed=1000 + trial)
            n_streams = int(rng.integers(2, 6))
            steps = token_steps(rng, config["vocab_size"], n_streams, config["context"] + 3)
            a = run(NeuralModel(config, arrays, n_streams, PROB_BITS, backend=NP), steps)
            torch.set_num_threads(1 + trial % 2)
            np.testing.assert_array_equal(run(NeuralModel(config, arrays, n_streams, PROB_BITS, backend=TORCH), steps), a, err_msg=str(config))
            b = int(rng.integers(0, n_streams))
            alone = run(NeuralModel(config, arrays, 1, PROB_BITS, backend=NP), [s[b : b + 1] for s in steps])
            np.testing.assert_array_equal(alone[:, 0], a[:, b])
            assert_valid(a)
    finally:
        torch.set_num_threads(threads)


def test_int4_weights_survive_the_blob_and_give_the_same_model():
    rng = np.random.default_rng(8)
    config = int4_config(rng)
    arrays = random_integer_weights(config, 8)
    packed = [n for n in arrays if n.endswith(".w")]
    blob = pack_weights(arrays, int4=packed)
    assert len(blob) < len(pack_weights(arrays))  # two weights per byte
    back = unpack_weights(blob)
    for name in arrays:
        assert back[name].dtype == arrays[name].dtype
        np.testing.assert_array_equal(back[name], arrays[name])
    steps = token_steps(rng, config["vocab_size"], 3, 12)
    np.testing.assert_array_equal(run(NeuralModel(config, back, 3, PROB_BITS, backend=TORCH), steps), run(NeuralModel(config, arrays, 3, PROB_BITS, backend=NP), steps))


@pytest.mark.parametrize("backend", [NP, TORCH], ids=["numpy", "torch"])
def test_int4_linear_uses_long_exact_chunks(backend):
    """|x * w| <= 255 * 7 lets a 4096-wide uint8 x int4 product sum in one float32 matmul
    (4096 * 1785 < 2**24): still exact, and checked against int64."""
    rng = np.random.default_rng(2)
    w = rng.integers(-7, 8, size=(5, 4096)).astype(np.int8)
    w[:2] = 7  # rows whose sums reach 4096 * 255 * 7
    arrays = {"x.w": w, "x.m": np.full(5, 1, np.int32), "x.s": np.full(5, 1, np.int8)}
    layer = _Linear(backend, arrays, "x", (5, 4096))
    assert layer.w_max == 7
    x = rng.integers(0, 256, size=(3, 4096))
    x[0] = 255
    got = np.asarray(backend.to_numpy(layer(backend.asarray(x), 255)))
    np.testing.assert_array_equal(got, (x @ w.T.astype(np.int64) + 1) >> 1)  # M / 2**S = 1/2, half up


def test_codec_round_trip_across_backends():
    rng = np.random.default_rng(3)
    config = small_config(rng)
    arrays = random_integer_weights(config, 3)
    tokens = rng.integers(0, config["vocab_size"], size=300)
    n_streams = 7  # 300 = 6 * 43 + 42: streams of unequal length
    payload = encoding.encode(NeuralModel(config, arrays, n_streams, PROB_BITS, backend=NP), tokens, n_streams, PROB_BITS)
    decoded = codec.decode(NeuralModel(config, arrays, n_streams, PROB_BITS, backend=TORCH), payload, len(tokens), n_streams, PROB_BITS)
    np.testing.assert_array_equal(decoded, tokens)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_numpy_and_round_trips_to_cpu():
    """Encode on the GPU (many streams, as there), decode on the CPU, and the reverse."""
    rng = np.random.default_rng(12)
    cuda = TorchBackend("cuda")
    for trial in range(10):
        config = small_config(rng)
        arrays = random_integer_weights(config, 200 + trial)
        steps = token_steps(rng, config["vocab_size"], 300, config["context"] + 4)
        a = run(NeuralModel(config, arrays, 300, PROB_BITS, backend=NP), steps)
        np.testing.assert_array_equal(run(NeuralModel(config, arrays, 300, PROB_BITS, backend=cuda), steps), a)
    tokens = rng.integers(0, config["vocab_size"], size=5000)
    for enc, dec in ((cuda, NP), (NP, cuda)):
        payload = encoding.encode(NeuralModel(config, arrays, 40, PROB_BITS, backend=enc), tokens, 40, PROB_BITS)
        decoded = codec.decode(NeuralModel(config, arrays, 40, PROB_BITS, backend=dec), payload, len(tokens), 40, PROB_BITS)
        np.testing.assert_array_equal(decoded, tokens)


def test_registry_builds_the_neural_model(monkeypatch):
    monkeypatch.setenv("HUTTER_BACKEND", "numpy")
    rng = np.random.default_rng(4)
    config = small_config(rng)
    blob = pack_weights(random_integer_weights(config, 4))
    header = {"kind": "neural", **config}
    model = build_model(header, config["vocab_size"], 3, PROB_BITS, blob)
    assert isinstance(model, NeuralModel) and model.be.name == "numpy"
    assert_valid(model.step(np.array([-1, -1, -1])))
    assert runtime_of(header) == ["numpy"]
    with pytest.raises(ValueError):
        build_model(header, config["vocab_size"] + 1, 3, PROB_BITS, blob)


def test_backend_choice(monkeypatch):
    monkeypatch.setenv("HUTTER_BACKEND", "torch")
    assert choose_backend({}).name == "torch"
    monkeypatch.setenv("HUTTER_BACKEND", "numpy")
    assert choose_backend({"backend": "torch"}).name == "numpy"  # the environment wins
    monkeypatch.delenv("HUTTER_BACKEND")
    assert choose_backend({"backend": "torch", "device": "cpu"}).name == "torch"
    monkeypatch.setenv("HUTTER_BACKEND", "jax")
    with pytest.raises(ValueError):
        choose_backend({})


def test_torch_backend_turns_tf32_off():
    rng = np.random.default_rng(9)
    config = small_config(rng)
    model = NeuralModel(config, random_integer_weights(config, 9), 2, PROB_BITS, backend=TORCH)
    old = torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = True
        model.step(np.array([-1, -1]))
        assert torch.backends.cuda.matmul.allow_tf32 is False
        assert torch.get_float32_matmul_precision() == "highest"
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old


def test_golden_frequencies():
    """Pins the integer model's exact output: a change here changes every archive."""
    config = {
        "vocab_size": 97, "d_model": 32, "n_layers": 2, "n_heads": 2, "context": 8, "mlp_ratio": 3,
        "tie_embeddings": True, "resid_bits": 12, "exp_bits": 6, "out_prob_bits": 24,
    }  # fmt: skip
    model = NeuralModel(config, random_integer_weights(config, 1), 3, PROB_BITS, backend=NP)
    digest = hashlib.sha256()
    for t in range(12):
        digest.update(model.step(np.array([-1, (5 * t) % 97, (7 * t + 3) % 97]) if t else np.full(3, -1)).astype("<i8").tobytes())
    assert digest.hexdigest() == GOLDEN


GOLDEN = "dbf6909b01a38efc3012f04c6076713d14847a84a6e79962dda0d225e90a86c5"


def test_golden_frequencies_int4():
    """The same pin for an int4 model whose weights went through the blob (two per byte)."""
    config = {
        "vocab_size": 97, "d_model": 32, "n_layers": 2, "n_heads": 2, "context": 8, "mlp_ratio": 3,
        "tie_embeddings": False, "resid_bits": 12, "exp_bits": 6, "out_prob_bits": 24, "weight_bits": 4, "embed_bits": 4,
    }  # fmt: skip
    arrays = random_integer_weights(config, 2)
    names = [n for n in arrays if n.endswith(".w")]
    model = NeuralModel(config, unpack_weights(pack_weights(arrays, int4=names)), 3, PROB_BITS, backend=NP)
    digest = hashlib.sha256(b"".join(pack_int4(arrays[n]) for n in names))  # the nibble layout, not LZMA's bytes
    for t in range(12):
        digest.update(model.step(np.array([-1, (5 * t) % 97, (7 * t + 3) % 97]) if t else np.full(3, -1)).astype("<i8").tobytes())
    assert digest.hexdigest() == GOLDEN_INT4


GOLDEN_INT4 = "2340827291b8c0f6ce00ddc3b6f768f58e2968473dd65b95e463a45091fcc340"

# ---------------------------------------------------------------- weights blob


def test_pack_unpack_round_trip():
    arrays = {
        "a": np.arange(-128, 128, dtype=np.int8).reshape(16, 16),
        "b": np.array([2**31 - 1, -(2**31)], dtype=np.int32),
        "c": np.zeros((0, 3), dtype=np.int16),
        "d": np.array([255], dtype=np.uint8),
        "e": np.array(7, dtype=np.int64),
    }
    back = unpack_weights(pack_weights(arrays))
    assert list(back) == list(arrays)
    for name, array in arrays.items():
        assert back[name].dtype == array.dtype and back[name].shape == array.shape
        np.testing.assert_array_equal(back[name], array)


def test_int4_packing():
    rng = np.random.default_rng(6)
    for count in (0, 1, 2, 7, 300, 301):
        values = rng.integers(-8, 8, size=count).astype(np.int8)
        packed = pack_int4(values)
        assert len(packed) == (count + 1) // 2
        np.testing.assert_array_equal(unpack_int4(packed, count), values)
    assert pack_int4(np.array([-1, 2], np.int8)) == bytes([0x2F])  # low nibble first, two's complement
    for bad in (np.array([8]), np.array([-9])):
        with pytest.raises(ValueError):
            pack_int4(bad)
    with pytest.raises(ValueError):
        pack_weights({"w": np.zeros(3, np.int8)}, int4=["v"])


def test_unpack_rejects_damaged_blobs():
    blob = pack_weights({"w": np.ones((4, 4), dtype=np.int8)})
    int4 = pack_weights({"w": np.ones((4, 5), dtype=np.int8)}, int4=["w"])
    for bad in (b"", b"XXXX" + blob[4:], blob[:-3], blob[:4] + bytes(len(blob) - 4), int4[:-3]):
        with pytest.raises(ValueError):
            unpack_weights(bad)
    with pytest.raises(TypeError):
        pack_weights({"w": np.ones(3, dtype=np.float32)})


# ---------------------------------------------------------------- exact kernels


@pytest.mark.parametrize("backend", [NP, TORCH], ids=["numpy", "torch"])
def test_exact_matmul_chunks_past_the_float32_bound(backend):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, size=(5, 4096))
    b = rng.integers(-127, 128, size=(4096, 7))
    b[:, :3] = np.abs(b[:, :3])  # columns whose sums go far past 2**24
    expected = a @ b  # int64 reference; 4096 * 255 * 127 is 8x past 2**24
    got = exact_matmul(backend, backend.asarray(a.astype(np.float32)), backend.asarray(b.astype(np.float32)), 255 * 127)
    np.testing.assert_array_equal(np.asarray(backend.to_numpy(got)), expected)
    assert np.abs(expected).max() > FLOAT32_EXACT  # the chunks were needed


def test_exact_matmul_asserts_its_bound():
    a = np.ones((2, 3), np.float32)
    with pytest.raises(AssertionError):
        exact_matmul(NP, a, a.T.copy(), FLOAT32_EXACT + 1)  # one product alone is too big


def test_float32_is_inexact_past_the_bound():
    """Why the bound exists: one unchunked float32 sum past 2**24 already loses integers."""
    a = np.array([[FLOAT32_EXACT, 1]], dtype=np.float32)
    assert int((a @ np.ones((2, 1), np.float32))[0, 0]) != FLOAT32_EXACT + 1


@pytest.mark.parametrize("backend", [NP, TORCH], ids=["numpy", "torch"])
def test_isqrt_is_exact(backend):
    roots = np.array([0, 1, 2, 3, 1000, 2**20 - 1, 2**25 + 3, 2**26 - 1], dtype=np.int64)
    n = np.concatenate([roots**2 - 1, roots**2, roots**2 + 1, [2**52, 2**52 - 1]])
    n = n[n >= 0]
    got = np.asarray(backend.to_numpy(isqrt(backend, backend.asarray(n))))
    np.testing.assert_array_equal(got, [math.isqrt(int(v)) for v in n])


@pytest.mark.parametrize("backend", [NP, TORCH], ids=["numpy", "torch"])
def test_requantize_and_rms_norm_match_python_integers(backend):
    rng = np.random.default_rng(1)
    acc = rng.integers(-(2**29), 2**29, size=(6, 5))
    mult = rng.integers(-(2**31) + 1, 2**31, size=5)
    shift = rng.integers(1, 33, size=5)
    got = requantize(backend.asarray(acc), backend.asarray(mult), backend.asarray(shift), backend.asarray(1 << (shift - 1)))
    want = [[(int(x) * int(m) + (1 << (int(s) - 1))) >> int(s) for x, m, s in zip(row, mult, shift)] for row in acc]
    np.testing.assert_array_equal(np.asarray(backend.to_numpy(got)), want)

    h = rng.integers(-RESID_MAX, RESID_MAX + 1, size=(4, 24))
    h[1] //= 4096  # a small residual
    mult = rng.integers(-(2**16), 2**16, size=24)
    shift = rng.integers(1, 33, size=24)
    got = np.asarray(backend.to_numpy(rms_norm(backend, backend.asarray(h), 24, backend.asarray(mult), backend.asarray(shift))))
    for row, out in zip(h.tolist(), got):
        g = NORM_EXTRA_BITS
        r = max(1, math.isqrt((sum(x * x for x in row) << 2 * g) // 24))
        for x, m, s, o in zip(row, mult.tolist(), shift.tolist(), out):
            num, den = x * m << g, r << s  # round half up of num / den, then clip to int8
            assert o == max(-127, min(127, (2 * num + den) // (2 * den)))


def test_exp2_table():
    table = exp2_table(6, 24)
    assert table[0] == 1 << 24 and table[-1] == 0 and (table[:-1] > 0).all()
    assert (np.diff(table) <= 0).all()
    exact = 2.0**24 * 2.0 ** (-np.arange(len(table)) / 64)
    assert np.abs(table - exact).max() <= 0.5 + 1e-9
