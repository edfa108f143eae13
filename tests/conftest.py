"""Shared fixtures: real enwik text (read in place, never copied into the repo)."""

from __future__ import annotations

from pathlib import Path

import pytest

ENWIK6 = Path(__file__).resolve().parents[2] / "shared" / "data" / "enwik6"


@pytest.fixture(scope="session")
def text_sample() -> bytes:
    """40 KB of real enwik text (the built-in sample where ../shared is absent):
    big enough to train a tokenizer, small enough to code fast."""
    if ENWIK6.is_file():
        return ENWIK6.read_bytes()[200_000:240_000]
    from pipeline.data import sample_bytes

    return sample_bytes()[100_000:140_000]


@pytest.fixture
def one_torch_thread():
    """torch on one thread for the test (training tests compare runs; two threads on a shared
    2-core machine are slower, not faster), restored after."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def verify_cache(tmp_path_factory) -> Path:
    """XDG_CACHE_HOME for the verifier's tests: their clean venvs, built once per worker."""
    return tmp_path_factory.mktemp("verify-cache")
