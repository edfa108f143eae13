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


@pytest.fixture
def venv_cache(verify_cache, monkeypatch):
    """The clean numpy venv, in the tests' own cache (the environment variable reaches the
    `verify` subprocesses too; restored after each test, so numba's cache is not moved)."""
    from verify import clean_env

    monkeypatch.setenv("XDG_CACHE_HOME", str(verify_cache))
    return clean_env.ensure_venv(["numpy"])


@pytest.fixture
def fake_archive_module(monkeypatch):
    """Stand-in for submissions.archive: the fake archives of tests/fake_archives.py say what
    they restore in a sidecar file."""
    import sys
    import types

    from fake_archives import fake_inspect

    module = types.ModuleType("submissions.archive")
    module.inspect = fake_inspect
    monkeypatch.setitem(sys.modules, "submissions.archive", module)
