"""A sweep of damaged archives through every reader: the archive run as a program
(`python x.arc`), `pipeline unpack`, and `verify run` (which inspects before it decodes).
Each case ends as the original, byte for byte, or as one `error:` line with exit 2 and
nothing written; never a traceback, never wrong bytes."""

from __future__ import annotations

import subprocess
import sys
import zipimport
from pathlib import Path

import pytest
from typer.testing import CliRunner

from damaged import CASE_NAMES, damaged_archives
from pipeline.cli import app as pipeline_app
from small_run import small_archive
from submissions.archive import BOOTSTRAP, inspect
from submissions.errors import UserError
from verify.cli import app as verify_app


@pytest.fixture(scope="module")
def valid(tmp_path_factory, text_sample):
    data, _, archive = small_archive(tmp_path_factory.mktemp("valid"), text_sample[:3000])
    return data, damaged_archives(archive.read_bytes())


def reaches_bootstrap(archive: Path) -> bool:
    """Whether Python can run the archive's own `__main__.py`: where it cannot (no zip end
    record, a damaged entry of `__main__.py`), Python reports the file itself, before any
    byte of ours runs (a zero-length file even exits 0, as any empty script does)."""
    try:
        return zipimport.zipimporter(str(archive)).get_source("__main__") == BOOTSTRAP
    except Exception:
        return False


def one_error_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), text
    return lines[0]


def restored_or_refused(exit_code: int, output: str, out: Path, original: bytes) -> str:
    """'restored' (byte-exact) or 'refused' (one error line, exit 2, no output file)."""
    if exit_code == 0:
        assert out.read_bytes() == original, "wrong bytes restored"
        return "restored"
    assert exit_code == 2 and not out.exists(), (exit_code, output)
    one_error_line(output)
    return "refused"


def _name(value) -> str:
    return str(value).replace(" ", "_")


@pytest.mark.parametrize("case", CASE_NAMES, ids=_name)
def test_a_damaged_archive_restores_exactly_or_is_one_error_line(valid, tmp_path, case):
    data, cases = valid
    original = data.read_bytes()
    bad = tmp_path / "bad.arc"
    bad.write_bytes(cases[case])

    out = tmp_path / "by-python"
    run = subprocess.run([sys.executable, "-I", str(bad), "-q", "-o", str(out)], capture_output=True, text=True, timeout=120)
    if reaches_bootstrap(bad):
        stderr = "\n".join(line for line in run.stderr.splitlines() if not line.startswith("decoder: kernels compiled"))
        restored_or_refused(run.returncode, stderr, out, original)
    else:  # Python's own message about a file it cannot run as a zip app; never an output
        assert not out.exists()

    out = tmp_path / "by-unpack"
    result = CliRunner().invoke(pipeline_app, ["unpack", str(bad), "-o", str(out), "-q"])
    by_unpack = restored_or_refused(result.exit_code, result.output if result.exit_code else "", out, original)

    try:
        inspect(bad)
    except UserError as exc:
        assert "\n" not in str(exc)
        assert by_unpack == "refused"  # what inspect refuses, no decoder restores
        result = CliRunner().invoke(verify_app, ["run", str(bad), "--expect", str(data), "--report", str(tmp_path / "r.json")])
        assert result.exit_code == 2 and one_error_line(result.output)
        assert not (tmp_path / "r.json").exists()
