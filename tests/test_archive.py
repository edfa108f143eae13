"""Archives end to end: train -> pack -> restore, exact, self-contained, and safe on bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.config import CoderConfig, PipelineConfig, TokenizerConfig
from pipeline.errors import UserError
from pipeline.pack import pack
from pipeline.train import train
from submissions.archive import ArchiveError, inspect
from submissions.decoder import restore

SMALL = PipelineConfig(tokenizer=TokenizerConfig(vocab_size=512), coder=CoderConfig(n_streams=8))


def make_archive(tmp: Path, data: bytes, name: str = "x") -> tuple[Path, Path]:
    source = tmp / f"{name}.bin"
    source.write_bytes(data)
    train(source, tmp / f"{name}.run", SMALL)
    archive = tmp / f"{name}.arc"
    pack(tmp / f"{name}.run", archive, progress=False)
    return source, archive


def run_archive(archive: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    """`python -I ARCHIVE -o OUT` from an unrelated folder: the archive needs nothing of the project."""
    return subprocess.run(
        [sys.executable, "-I", str(archive), "-o", str(out), *extra],
        cwd=archive.parent, capture_output=True, text=True, timeout=300,
    )


@pytest.fixture(scope="module")
def packed(tmp_path_factory, text_sample):
    tmp = tmp_path_factory.mktemp("packed")
    source, archive = make_archive(tmp, text_sample)
    return source, archive


def test_archive_restores_itself_byte_exact(packed, tmp_path):
    source, archive = packed
    result = run_archive(archive, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out").read_bytes() == source.read_bytes()


def test_parts_add_up_to_the_file_size(packed):
    _, archive = packed
    info = inspect(archive)
    assert sum(info.parts.values()) == info.total_bytes == archive.stat().st_size
    assert info.parts["payload"] > 0 and info.parts["tokenizer"] > 0 and info.parts["decoder"] > 0
    assert info.runtime == ["numpy"]
    assert info.config["tokenizer"]["vocab_size"] == 512


def test_packing_is_reproducible(packed, tmp_path):
    source, archive = packed
    again = tmp_path / "again.arc"
    pack(archive.with_suffix(".run"), again, progress=False)
    assert again.read_bytes() == archive.read_bytes()


def test_decoder_program_has_no_project_imports(packed, tmp_path):
    import zipfile

    with zipfile.ZipFile(packed[1]) as zf:
        sources = {n: zf.read(n).decode() for n in zf.namelist() if n.endswith(".py")}
    for name, text in sources.items():
        for project in ("pipeline", "tokenizer", "models", "submissions", "verify"):
            assert f"import {project}" not in text and f"from {project}" not in text, name
    assert "decoder/neural_model.py" not in sources  # a context-model archive carries no neural code


@pytest.mark.parametrize(
    "data",
    [b"", b"x", b"\x00", bytes(range(256)) * 3, b"\xff\xfe\xed\xa0\x80 caf\xc3\xa9 \xe2\x96\x81 \r\n", "▁▁ ▁".encode() * 50],
    ids=["empty", "one-byte", "nul", "all-bytes", "invalid-utf8", "space-mark"],
)
def test_awkward_inputs_round_trip(tmp_path, data):
    source, archive = make_archive(tmp_path, data)
    assert restore.main(["-q", "--archive", str(archive), "-o", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out").read_bytes() == data


def test_random_binary_round_trips_through_python(tmp_path):
    data = np.random.default_rng(5).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    source, archive = make_archive(tmp_path, data)
    assert run_archive(archive, tmp_path / "out").returncode == 0
    assert (tmp_path / "out").read_bytes() == data


def test_existing_output_is_refused_then_replaced_with_force(packed, tmp_path):
    out = tmp_path / "out"
    out.write_bytes(b"keep me")
    result = run_archive(packed[1], out)
    assert result.returncode == 1 and "already exists" in result.stderr
    assert out.read_bytes() == b"keep me"
    assert run_archive(packed[1], out, "--force").returncode == 0
    assert out.read_bytes() == packed[0].read_bytes()
    with pytest.raises(UserError, match="already exists"):
        pack(packed[1].with_suffix(".run"), packed[1], progress=False)


def test_pack_refuses_to_overwrite_its_input(packed):
    source, archive = packed
    with pytest.raises(UserError):
        pack(archive.with_suffix(".run"), source, force=True, progress=False)
    assert source.read_bytes()  # untouched


def test_pack_refuses_a_changed_data_file(tmp_path, text_sample):
    source, archive = make_archive(tmp_path, text_sample[:5000])
    source.write_bytes(text_sample[:4999] + b"!")
    with pytest.raises(UserError, match="not the file this run was trained on"):
        pack(archive.with_suffix(".run"), tmp_path / "new.arc", progress=False)


def test_truncated_archive_is_refused_and_writes_nothing(packed, tmp_path):
    blob = packed[1].read_bytes()
    for cut in (0, 10, len(blob) // 2, len(blob) - 1):
        bad = tmp_path / f"cut{cut}.arc"
        bad.write_bytes(blob[:cut])
        with pytest.raises(ArchiveError):
            inspect(bad)
        result = run_archive(bad, tmp_path / f"out{cut}")
        assert result.returncode != 0 or cut == 0  # python runs an empty file as an empty script
        assert not (tmp_path / f"out{cut}").exists()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.floats(0, 1, exclude_max=True), bit=st.integers(0, 7))
def test_any_flipped_bit_is_refused_and_writes_nothing(packed, tmp_path_factory, position, bit):
    blob = bytearray(packed[1].read_bytes())
    blob[int(position * len(blob))] ^= 1 << bit
    tmp = tmp_path_factory.mktemp("flip")
    bad, out = tmp / "bad.arc", tmp / "out"
    bad.write_bytes(bytes(blob))
    code = restore.main(["-q", "--archive", str(bad), "-o", str(out)])
    if code == 0:  # only possible if the flip hit bytes no reader uses (e.g. zip metadata)
        assert out.read_bytes() == packed[0].read_bytes()
    else:
        assert not out.exists()


def test_stripping_keeps_the_tested_program_verbatim():
    """Archives carry the repo's decoder text minus comments and docstrings, never a regenerated
    program: an archive packed under one Python must run under every Python the source runs on."""
    import ast

    from submissions.archive import DECODER_DIR, _without_docstrings, strip_source

    for path in DECODER_DIR.glob("*.py"):
        source = path.read_text("utf-8")
        stripped = strip_source(source)
        assert _without_docstrings(ast.parse(stripped)) == _without_docstrings(ast.parse(source)), path.name
        assert len(stripped) < len(source), path.name
        kept = [line for line in stripped.splitlines() if line.strip() and line.strip() != "pass"]
        assert all(line in source for line in kept), path.name  # every kept line is original text
    quoted = 'x = {"a": 1}\nprint(f"{x[\'a\']} # not a comment")  # a comment\n'
    assert strip_source(quoted) == 'x = {"a": 1}\nprint(f"{x[\'a\']} # not a comment")\n'
