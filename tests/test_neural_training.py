"""QAT training on CPU: the loss falls, resume continues exactly, export keeps the code length."""

import numpy as np
import pytest
import torch

from models.export import export_integer_model, float_code_length, integer_code_length, quantize_multiplier
from models.gpt import GPT, ModelConfig, quantize_weight
from models.training import CHECKPOINT, load_model, read_checkpoint, train_model
from submissions.decoder import codec, encoding
from submissions.decoder.int_ops import NumpyBackend, TorchBackend
from submissions.decoder.model_registry import build_model
from submissions.decoder.neural_model import unpack_weights

TEXT = (
    b"The quick brown fox jumps over the lazy dog. A stitch in time saves nine. "
    b"All that glitters is not gold; the early bird catches the worm, they say.\n"
)
TINY = ModelConfig(vocab_size=256, d_model=32, n_layers=1, n_heads=2, context=16, mlp_ratio=2)


def text_tokens(repeats: int = 60) -> np.ndarray:
    return np.frombuffer(TEXT * repeats, dtype=np.uint8).astype(np.uint16)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def train(tmp_path, steps, tokens=None, config=TINY, **kwargs):
    reports = []
    path = train_model(
        text_tokens() if tokens is None else tokens, config, tmp_path, device="cpu", max_steps=steps, batch_size=8, lr=3e-3,
        progress=reports.append, log_every=10, **kwargs,
    )  # fmt: skip
    return path, reports


def test_training_lowers_the_loss(tmp_path):
    np.save(tmp_path / "tokens.npy", text_tokens())
    tokens = np.load(tmp_path / "tokens.npy", mmap_mode="r")  # as pipeline runs keep them
    path, reports = train(tmp_path, 60, tokens)
    assert path == tmp_path / CHECKPOINT
    assert [r.step for r in reports] == [10, 20, 30, 40, 50, 60]
    assert reports[-1].loss_bits < 0.75 * reports[0].loss_bits
    assert reports[-1].fraction == 1.0
    state = torch.load(path, weights_only=True)  # plain tensors and JSON-like values only
    assert state["config"] == TINY.to_dict() and state["step"] == 60


def test_resume_reproduces_an_uninterrupted_run(tmp_path):
    straight, _ = train(tmp_path / "a", 40)

    def stop_at_20(report):
        if report.step == 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_model(
            text_tokens(), TINY, tmp_path / "b", device="cpu", max_steps=40, batch_size=8, lr=3e-3,
            progress=stop_at_20, log_every=10, checkpoint_minutes=0.0,
        )  # fmt: skip
    assert read_checkpoint(tmp_path / "b" / CHECKPOINT)["step"] == 19  # saved after every step
    resumed, _ = train(tmp_path / "b", 40, resume=True)
    a, b = read_checkpoint(straight), read_checkpoint(resumed)
    assert b["step"] == 40
    for name, tensor in a["model"].items():
        torch.testing.assert_close(b["model"][name], tensor, rtol=0, atol=0, msg=name)


def test_resume_refuses_another_config(tmp_path):
    train(tmp_path, 5)
    with pytest.raises(ValueError):
        train_model(text_tokens(), ModelConfig(vocab_size=256, d_model=16, n_heads=2, n_layers=1, context=16), tmp_path, device="cpu", max_steps=10, resume=True)


@pytest.mark.parametrize("bits", [8, 4])
def test_integer_model_codes_what_the_float_model_predicts(tmp_path, bits):
    """Observed: integer code length within 0.01% of the float QAT cross entropy; allowed: 1%.
    With int4 weights (blocks and embedding) as well: they reach the blob two per byte."""
    config = ModelConfig(**dict(TINY.to_dict(), weight_bits=bits, embed_bits=bits))
    path, _ = train(tmp_path, 80, config=config)
    model = load_model(path)
    header, blob = export_integer_model(model)
    assert header["weight_bits"] == header["embed_bits"] == bits
    assert np.abs(unpack_weights(blob)["layer0.fc1.w"]).max() == (7 if bits == 4 else 127)
    tokens = text_tokens(3)[:400].astype(np.int64)
    float_bits = float_code_length(model, tokens, n_streams=3)
    int_bits = integer_code_length(header, blob, tokens, 3, prob_bits=28, backend=NumpyBackend())
    assert abs(int_bits / float_bits - 1) < 0.01, (float_bits, int_bits)
    assert int_bits / len(tokens) < 5.0  # it learned something (8 bits for raw bytes)

    # and the archive path: header + blob through the registry, a real round trip, torch decoding
    payload = encoding.encode(build_model(dict(header, backend="numpy"), 256, 3, 28, blob), tokens, 3, 28)
    assert len(payload) * 8 < int_bits + 3 * 64 + 64  # payload ~ code length + states
    decoded = codec.decode(build_model(dict(header, backend="torch", device="cpu"), 256, 3, 28, blob), payload, len(tokens), 3, 28)
    np.testing.assert_array_equal(decoded, tokens)


def test_chunked_float_evaluation_matches_one_pass():
    torch.manual_seed(0)
    model = GPT(TINY)
    tokens = text_tokens(2)[:150].astype(np.int64)
    whole = float_code_length(model, tokens, 1, chunk=1000)
    chunked = float_code_length(model, tokens, 1, chunk=20)  # history of n_layers * (context - 1)
    assert abs(whole - chunked) < 1e-3 * whole


def test_untied_export_matches_torch_backend():
    torch.manual_seed(1)
    config = ModelConfig(vocab_size=50, d_model=16, n_layers=2, n_heads=2, context=8, tie_embeddings=False)
    model = GPT(config)
    model.calibrate(torch.randint(0, 50, (2, 16)))
    header, blob = export_integer_model(model)
    tokens = np.random.default_rng(0).integers(0, 50, 60)
    a = integer_code_length(header, blob, tokens, 2, 24, backend=NumpyBackend())
    b = integer_code_length(header, blob, tokens, 2, 24, backend=TorchBackend("cpu"))
    assert a == b
    assert abs(a / float_code_length(model, tokens, 2) - 1) < 0.01


def test_quantize_multiplier():
    real = np.array([0.0, 1e-12, 3.7e-5, 0.5, 1.0, 123.456, 2.0**20, -0.3])
    mult, shift = quantize_multiplier(real)
    assert mult.dtype == np.int32 and shift.dtype == np.int8
    assert ((shift >= 1) & (shift <= 32)).all()
    approx = mult / 2.0 ** shift.astype(np.float64)
    big = np.abs(real) > 2**-16
    np.testing.assert_allclose(approx[big], real[big], rtol=2**-15)
    with pytest.raises(ValueError):
        quantize_multiplier([2.0**31])


def test_int4_fake_quant_matches_the_export_rule():
    """Symmetric per-row int4: integers in [-7, 7], each row's largest |w| maps to 7, round half up."""
    w = torch.tensor([[7.0, -3.5, 0.5, 1.5], [-2.0, 1.2, 0.5, 0.0]])
    q, scale = quantize_weight(w, 4)
    torch.testing.assert_close(scale, torch.tensor([1.0, 2.0 / 7]))
    assert q.tolist() == [[7.0, -3.0, 1.0, 2.0], [-7.0, 4.0, 2.0, 0.0]]  # ties go up; 4.2 -> 4, 1.75 -> 2
    q8, _ = quantize_weight(w, 8)
    assert q8.abs().amax(dim=1).tolist() == [127.0, 127.0]
    with pytest.raises(ValueError):
        ModelConfig(vocab_size=256, weight_bits=3).validate()


def test_bf16_autocast_on_cpu_is_honoured(tmp_path):
    """bf16 is allowed on CPU: it trains (differently from tf32, so autocast really ran),
    the checkpoint records it, and an unknown precision is refused."""
    tf32, _ = train(tmp_path / "tf32", 20)
    bf16, reports = train(tmp_path / "bf16", 20, precision="bf16")
    a, b = read_checkpoint(tf32), read_checkpoint(bf16)
    assert b["train"]["precision"] == "bf16" and a["train"]["precision"] == "tf32"
    assert not torch.equal(a["model"]["blocks.0.mlp.fc1"], b["model"]["blocks.0.mlp.fc1"])
    assert reports[-1].loss_bits < reports[0].loss_bits
    with pytest.raises(ValueError, match="precision"):
        train(tmp_path / "fp16", 2, precision="fp16")
