"""verify/: clean-environment decoding of (fake) archives and the `verify run` CLI."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fake_archives import ORIGINAL, make_archive as make_fake, read_report
from submissions.errors import UserError
from verify import clean_env, sandbox
from verify.cli import app, parse_size
from verify.report import first_mismatch, jit_compile_seconds

ROOT = Path(__file__).resolve().parents[1]
NO_BWRAP = sandbox.bwrap_problem()
# Tests about verification itself run in the sandbox where bubblewrap works, else unsandboxed;
# the tests of the sandbox (tests/test_verify_sandbox.py) skip without it.
MODE = [] if NO_BWRAP is None else ["--unsandboxed"]

DECODERS = {
    "good": "open(out, 'wb').write(DATA)",
    "wrong": "open(out, 'wb').write(DATA[:7] + b'X' + DATA[8:])",
    "fails": "print('error: payload checksum mismatch', file=sys.stderr)\nsys.exit(1)",
    "slow": "import time\ntime.sleep(60)",
    # holds its memory a while: the tree's memory is sampled every 10 ms
    "hungry": "import time\nblock = bytearray(300 << 20)\nblock[::4096] = b'x' * len(block[::4096])\ntime.sleep(0.3)\nopen(out, 'wb').write(DATA)",
    "numpy": "import numpy\nopen(out, 'wb').write(numpy.frombuffer(DATA, dtype=numpy.uint8).tobytes())",
    "imports": (
        "try:\n    import pipeline\n    found = True\nexcept ImportError:\n    found = False\n"
        "open(out, 'wb').write(b'importable' if found else b'missing')"
    ),
    "network": (
        "import socket\ntry:\n    socket.create_connection(('127.0.0.1', PORT), timeout=2).close()\n    state = b'net-open'\n"
        "except OSError:\n    state = b'net-cut'\nopen(out, 'wb').write(state)"
    ),
}


pytestmark = pytest.mark.usefixtures("fake_archive_module", "venv_cache")


def make_archive(tmp_path: Path, kind: str, original: bytes = ORIGINAL, **subs) -> Path:
    body = DECODERS[kind]
    for key, value in subs.items():
        body = body.replace(key, repr(value))
    return make_fake(tmp_path, kind, body, original)


def expect_file(tmp_path: Path, data: bytes = ORIGINAL) -> Path:
    path = tmp_path / "original.txt"
    path.write_bytes(data)
    return path


def verify(*args):
    return CliRunner().invoke(app, ["run", *map(str, args), *MODE])


# ------------------------------------------------------------------------- CLI


def test_pass_writes_report(tmp_path):
    archive = make_archive(tmp_path, "good")
    result = verify(archive, "--expect", expect_file(tmp_path))
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output
    report = read_report(archive)
    assert report["passed"] and report["reasons"] == []
    assert report["archive"]["total_bytes"] == archive.stat().st_size
    assert report["archive"]["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()  # the scoreboard re-checks it
    assert report["archive"]["parts"]["header"] == 10
    assert report["original"]["size"] == len(ORIGINAL)
    assert report["bits_per_byte"] == pytest.approx(8 * archive.stat().st_size / len(ORIGINAL))
    assert report["comparison"]["first_mismatch"] is None
    assert report["decode_seconds"] > 0 and report["peak_rss_bytes"] > 1 << 20
    assert report["versions"]["numpy"] == clean_env.metadata.version("numpy")
    env = report["clean_env"]
    assert env["project_importable"] is False
    assert env["isolated_flags"]["isolated"] == 1
    assert env["install_method"] in ("pip", "link")
    assert {"PATH", "HOME", "LANG", *sandbox.THREAD_VARS} <= set(env["env"]) <= {
        "PATH", "HOME", "LANG", "LD_LIBRARY_PATH", *sandbox.THREAD_VARS}
    assert report["isolation"]["level"] == ("bwrap" if NO_BWRAP is None else "none")
    assert report["limits"]["defaults"] == ["max_seconds", "max_rss_bytes"]  # both enforced by default
    assert report["limits"]["max_seconds"] >= 600 and report["limits"]["max_rss_bytes"] == 10 << 30
    assert report["memory"]["method"] in ("cgroup-v2", "cgroup-v1", "rlimit-as")
    assert report["config"]["model"] == {"kind": "fake"}
    assert "T" in report["date"]


def test_report_path_option(tmp_path):
    archive = make_archive(tmp_path, "good")
    report = tmp_path / "out" / "r.json"
    result = verify(archive, "--expect", expect_file(tmp_path), "--report", report)
    assert result.exit_code == 0, result.output
    assert json.loads(report.read_text())["passed"]


def test_decoder_with_numpy(tmp_path):
    archive = make_archive(tmp_path, "numpy")
    result = verify(archive, "--expect", expect_file(tmp_path))
    assert result.exit_code == 0, result.output


def test_mismatch_reports_first_offset(tmp_path):
    archive = make_archive(tmp_path, "wrong")
    result = verify(archive, "--expect", expect_file(tmp_path))
    assert result.exit_code == 1
    assert "FAIL" in result.output and "differs at byte 7" in result.output
    report = read_report(archive)
    assert not report["passed"]
    assert report["comparison"]["first_mismatch"] == 7


def test_decoder_error_shows_last_stderr_line(tmp_path):
    archive = make_archive(tmp_path, "fails")
    result = verify(archive, "--expect", expect_file(tmp_path))
    assert result.exit_code == 1
    assert "error: payload checksum mismatch" in result.output
    assert read_report(archive)["decoder"]["returncode"] == 1


def test_max_seconds_kills_decoder(tmp_path):
    archive = make_archive(tmp_path, "slow")
    result = verify(archive, "--expect", expect_file(tmp_path), "--max-seconds", "0.5")
    assert result.exit_code == 1
    report = read_report(archive)
    assert report["decoder"]["timed_out"]
    assert report["decode_seconds"] < 10
    assert any("max-seconds" in r for r in report["reasons"])


def test_max_rss_is_enforced_and_measured(tmp_path):
    archive = make_archive(tmp_path, "hungry")
    expect = expect_file(tmp_path)
    result = verify(archive, "--expect", expect, "--max-rss", "100M")
    assert result.exit_code == 1
    report = read_report(archive)
    assert any("--max-rss" in r for r in report["reasons"]), report["reasons"]
    assert verify(archive, "--expect", expect, "--max-rss", "2G").exit_code == 0
    assert read_report(archive)["peak_rss_bytes"] >= 300 << 20


def test_wrong_expect_file_fails(tmp_path):
    archive = make_archive(tmp_path, "good")
    result = verify(archive, "--expect", expect_file(tmp_path, ORIGINAL + b"more"))
    assert result.exit_code == 1
    assert read_report(archive)["comparison"]["first_mismatch"] == len(ORIGINAL)


@pytest.mark.parametrize("which", ["archive", "expect"])
def test_missing_file_is_user_error(tmp_path, which):
    archive = make_archive(tmp_path, "good")
    expect = expect_file(tmp_path)
    if which == "archive":
        archive = tmp_path / "nope.arc"
    else:
        expect = tmp_path / "nope.txt"
    result = verify(archive, "--expect", expect)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "does not exist" in lines[0]


def test_invalid_archive_is_user_error(tmp_path):
    bogus = tmp_path / "bogus.arc"
    bogus.write_bytes(b"not a zip")
    result = verify(bogus, "--expect", expect_file(tmp_path))
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {bogus} is not an archive"


def test_bad_size_is_user_error(tmp_path):
    archive = make_archive(tmp_path, "good")
    result = verify(archive, "--expect", expect_file(tmp_path), "--max-rss", "lots")
    assert result.exit_code == 2 and result.output.startswith("error: invalid size")


def test_parse_size():
    assert parse_size("10G") == 10 << 30
    assert parse_size("512M") == 512 << 20
    assert parse_size("1.5GiB") == 3 << 29
    assert parse_size("4096") == 4096


def test_help_does_not_import_torch():
    code = (
        "import sys\nfrom verify.cli import app\n"
        "for args in (['--help'], ['run', '--help']):\n"
        "    try:\n        app(args, prog_name='verify')\n    except SystemExit as e:\n        assert e.code == 0\n"
        "assert 'torch' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "--expect" in done.stdout and "--max-rss" in done.stdout


# ------------------------------------------------------------------- clean env


def test_project_not_importable_in_clean_env(tmp_path):
    archive = make_archive(tmp_path, "imports", original=b"missing")
    result = verify(archive, "--expect", expect_file(tmp_path, b"missing"))
    assert result.exit_code == 0, result.output
    modules = read_report(archive)["clean_env"]["project_modules"]
    assert set(modules) == set(clean_env.PROJECT_MODULES) and not any(modules.values())


def test_importable_project_fails_loudly_unsandboxed(tmp_path, venv_cache, monkeypatch):
    # Leak the project into a throwaway copy of the venv: without the sandbox, verification must fail.
    leaky = leaky_venv(tmp_path, venv_cache)
    monkeypatch.setattr(clean_env, "ensure_venv", lambda runtime: leaky)
    archive = make_archive(tmp_path, "good")
    result = CliRunner().invoke(app, ["run", str(archive), "--expect", str(expect_file(tmp_path)), "--unsandboxed"])
    assert result.exit_code == 1
    assert "PROJECT MODULES IMPORTABLE" in result.output
    report = read_report(archive)
    assert report["clean_env"]["project_importable"] is True and report["isolation"]["level"] == "none"


def leaky_venv(tmp_path: Path, like: clean_env.Venv) -> clean_env.Venv:
    """A venv with a .pth that puts the project on sys.path (what a poisoner could plant)."""
    leaky = clean_env.Venv(tmp_path / "leaky", like.method, like.requirements)
    clean_env.venv.create(leaky.path, with_pip=False, symlinks=True)
    (clean_env._site_packages(leaky.path) / "project.pth").write_text(str(ROOT) + "\n")
    return leaky


@pytest.mark.parametrize("namespace", ["as the OS gives", "none"])
def test_network_unsandboxed_is_cut_or_reported_open(tmp_path, monkeypatch, namespace):
    """--unsandboxed: where the OS gives a network namespace the decoder cannot reach a server on
    the host and the report says the network was cut; where it gives none ("none" forces that)
    the report says so, and the archive that reached the server fails verification."""
    if namespace == "none":
        monkeypatch.setattr(sandbox, "network_prefix", lambda: ())
    cut = bool(sandbox.network_prefix())
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    try:
        archive = make_archive(tmp_path, "network", original=b"net-cut", PORT=port)
        result = CliRunner().invoke(app, ["run", str(archive), "--expect", str(expect_file(tmp_path, b"net-cut")), "--unsandboxed"])
    finally:
        server.close()
    assert result.exit_code == (0 if cut else 1), result.output
    assert read_report(archive)["clean_env"]["network_cut"] is cut


def test_venv_is_cached_and_minimal(venv_cache):
    again = clean_env.ensure_venv(["numpy"])
    assert again == venv_cache
    assert venv_cache.requirements == [f"numpy=={clean_env.metadata.version('numpy')}"]
    site = clean_env._site_packages(venv_cache.path)
    names = {p.name for p in site.iterdir()} - {"__pycache__"}
    assert all(n.startswith("numpy") or n == "_virtualenv.pth" for n in names), names


def test_link_fallback_when_pip_fails(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(clean_env, "_pip_install", lambda *a: False)
    linked = clean_env.ensure_venv(["numpy"])
    assert linked.method == "link"
    assert not list(linked.path.parent.glob(".*"))  # no temp dirs left behind
    probe = subprocess.run(
        [str(linked.python), "-I", "-c", "import numpy, pipeline"], cwd=tmp_path, capture_output=True, text=True
    )
    assert "No module named 'pipeline'" in probe.stderr  # numpy imported fine, project did not


def test_missing_runtime_dependency_is_user_error():
    with pytest.raises(UserError, match="not installed"):
        clean_env.ensure_venv(["surely-not-a-real-distribution-xyz"])


def test_first_mismatch(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"x" * 3_000_000)
    b.write_bytes(b"x" * 2_500_000 + b"y" + b"x" * 499_999)
    assert first_mismatch(a, b) == 2_500_000
    b.write_bytes(b"x" * 3_000_000)
    assert first_mismatch(a, b) is None


def test_the_decoders_compile_time_is_read_from_its_last_words():
    assert jit_compile_seconds("decoding: 100%\ndecoder: kernels compiled in 7.25 s\n") == 7.25
    assert jit_compile_seconds("decoding: 100%\n") is None  # a decoder without kernels
