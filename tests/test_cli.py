"""The command lines: help everywhere, one-line errors, exit codes."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from pipeline.cli import app as pipeline_app
from verify.cli import app as verify_app

runner = CliRunner()


@pytest.mark.parametrize("command", [[], ["data"], ["train"], ["pack"], ["demo"]])
def test_pipeline_help(command):
    result = runner.invoke(pipeline_app, [*command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


def test_verify_help():
    assert runner.invoke(verify_app, ["run", "--help"]).exit_code == 0


def test_help_does_not_import_torch():
    code = "import sys; from pipeline.cli import app; from verify.cli import app as v; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


RANK_CODE = """
import atexit, sys
from pipeline.distributed import run_rank
atexit.register(lambda: print("teardown ran"))
print("output kept", end="")
run_rank(lambda: sys.exit(int(sys.argv[1])))
"""


@pytest.mark.parametrize("world_size, code", [("2", 0), ("2", 3), ("1", 3)])
def test_a_launched_rank_exits_with_its_code_and_no_teardown(world_size, code):
    """A rank torchrun launched leaves without the interpreter's teardown (where gloo's threads
    can abort it), keeping its exit code and its output; one process exits as usual."""
    env = {"RANK": "0", "WORLD_SIZE": world_size, "LOCAL_RANK": "0", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", RANK_CODE, str(code)], capture_output=True, text=True, env=env)
    assert done.returncode == code, done.stderr
    assert done.stdout == ("output kept" if world_size == "2" else "output keptteardown ran\n")


def one_line_error(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def test_missing_input_is_one_line_exit_2(tmp_path):
    result = runner.invoke(pipeline_app, ["train", str(tmp_path / "nope"), "-o", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "does not exist" in one_line_error(result)
    result = runner.invoke(pipeline_app, ["pack", str(tmp_path / "norun"), "-o", str(tmp_path / "x.arc")])
    assert result.exit_code == 2 and "not a finished run" in one_line_error(result)
    result = runner.invoke(verify_app, ["run", str(tmp_path / "x.arc"), "--expect", str(tmp_path / "y")])
    assert result.exit_code == 2 and one_line_error(result)
    result = runner.invoke(pipeline_app, ["pack", str(tmp_path / "norun"), "-o", str(tmp_path / "x.arc"), "--smallest", "-j", "0"])
    assert result.exit_code == 2 and "--jobs must be at least 1" in one_line_error(result)


def test_train_then_pack_via_cli_and_refuse_existing_outputs(tmp_path, text_sample):
    data = tmp_path / "data.txt"
    data.write_bytes(text_sample[:8000])
    run, archive = tmp_path / "run", tmp_path / "a.arc"
    assert runner.invoke(pipeline_app, ["train", str(data), "-o", str(run), "--vocab", "400"]).exit_code == 0
    packed = runner.invoke(pipeline_app, ["pack", str(run), "-o", str(archive), "-q"])
    assert packed.exit_code == 0 and archive.stat().st_size > 0
    assert "count table: 2**26 entries (256 MiB), sized to the file" in packed.output  # a small file: the smallest size
    again = runner.invoke(pipeline_app, ["train", str(data), "-o", str(run)])
    assert again.exit_code == 2 and "already exists" in one_line_error(again)
    again = runner.invoke(pipeline_app, ["pack", str(run), "-o", str(archive), "-q"])
    assert again.exit_code == 2 and "already exists" in one_line_error(again)


def test_bad_option_values_are_refused(tmp_path, text_sample):
    data = tmp_path / "data.txt"
    data.write_bytes(text_sample[:1000])
    result = runner.invoke(pipeline_app, ["train", str(data), "-o", str(tmp_path / "r"), "--vocab", "10"])
    assert result.exit_code == 2 and "vocab" in one_line_error(result)
    result = runner.invoke(pipeline_app, ["data", "nonsense"])
    assert result.exit_code == 2 and one_line_error(result)


def test_data_sample_and_head_via_cli(tmp_path):
    out = tmp_path / "sample"
    assert runner.invoke(pipeline_app, ["data", "sample", "-o", str(out)]).exit_code == 0
    sliced = tmp_path / "head"
    assert runner.invoke(pipeline_app, ["data", str(out), "--head", "1000", "-o", str(sliced)]).exit_code == 0
    assert sliced.read_bytes() == out.read_bytes()[:1000]
