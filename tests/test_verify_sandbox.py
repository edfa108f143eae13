"""The verifier against hostile archives: each case is a small generated zipapp that tries what
an archive could try to pass without restoring the file (or to harm the host), run through
`verify run` as a user runs it. Most need bubblewrap and skip, saying why, where it cannot run."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fake_archives import ORIGINAL, make_archive, read_report, verify_command
from pipeline.cli import app as pipeline_app
from verify import clean_env, limits, sandbox
from verify.cli import app
from verify.report import sandbox_refusal

NO_BWRAP = sandbox.bwrap_problem()
needs_bwrap = pytest.mark.skipif(NO_BWRAP is not None, reason=f"bubblewrap cannot sandbox here: {NO_BWRAP}")

FIND_EXPECT = """
import glob
def find_expect():
    for name in [f"/proc/{os.getppid()}/cmdline", *glob.glob("/proc/*/cmdline")]:
        try:
            args = open(name, "rb").read().split(b"\\0")
        except OSError:
            continue
        if b"--expect" in args:
            return os.path.abspath(args[args.index(b"--expect") + 1].decode())
    return None
path = find_expect()
print("found --expect:", path, file=sys.stderr)
"""
CHEATER = FIND_EXPECT + "open(out, 'wb').write(open(path, 'rb').read() if path else b'')"
TAMPERER = FIND_EXPECT + """
if path:
    open(path, 'wb').write(b'tampered')
open(out, 'wb').write(b'tampered')
"""
POISONER = """
import sysconfig
planted = []
for folder in {*sys.path, sysconfig.get_paths()["purelib"], sys.prefix}:
    try:
        with open(os.path.join(folder, "zz_poison.pth"), "w") as f:
            f.write("import sys; print('POISONED', file=sys.stderr)\\n")
        planted.append(folder)
    except OSError:
        pass
print("planted in", planted, file=sys.stderr)
open(out, 'wb').write(DATA)
"""
ORPHAN = """
import subprocess, time
loop = "import time\\nwhile True:\\n    open('orphan.log', 'a').write('x')\\n    time.sleep(0.05)"
subprocess.Popen([sys.executable, "-c", loop, MARKER], start_new_session=True)
while not os.path.exists("orphan.log"):
    time.sleep(0.01)
print("orphan started", file=sys.stderr)
open(out, 'wb').write(DATA)
"""
STALLER = """
import subprocess, time
subprocess.Popen([sys.executable, "-c", "import time\\ntime.sleep(600)", MARKER], start_new_session=True)
time.sleep(600)
"""
HOG = """
import subprocess
child = "block = bytearray(CHILD_MIB << 20)\\nblock[::4096] = b'x' * len(block[::4096])\\nimport time\\ntime.sleep(0.5)"
mine = bytearray(PARENT_MIB << 20)
mine[::4096] = b'x' * len(mine[::4096])
print("child exit", subprocess.call([sys.executable, "-c", child]), file=sys.stderr)
open(out, 'wb').write(DATA)
"""
SNOOP = """
import json, socket
seen = {}
for folder in ("/root", "/work", "/home", HOST_DIR):
    try:
        seen[folder] = sorted(os.listdir(folder))
    except OSError:
        pass
allowed = {"PATH", "HOME", "LANG", "LD_LIBRARY_PATH", "PWD", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"}
seen.update({"env " + k: v for k, v in os.environ.items() if k not in allowed})
try:
    unix = socket.socket(socket.AF_UNIX)
    unix.connect(ABSTRACT)
    seen["abstract unix socket"] = "connected"
except OSError:
    pass
processes = [p for p in os.listdir("/proc") if p.isdigit()]
print("snoop saw:", json.dumps(seen), "processes:", len(processes), file=sys.stderr)
open(out, 'wb').write(DATA if not seen else json.dumps(seen).encode())
"""


pytestmark = pytest.mark.usefixtures("fake_archive_module", "venv_cache")


def hostile(tmp_path: Path, name: str, body: str, original: bytes = ORIGINAL, **subs) -> Path:
    for key, value in subs.items():
        body = body.replace(key, repr(value))
    return make_archive(tmp_path, name, body, original)


def expect_file(tmp_path: Path, data: bytes = ORIGINAL) -> Path:
    path = tmp_path / "data" / "original.txt"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return path


def verify(*args):
    return CliRunner().invoke(app, ["run", *map(str, args)])


def verify_as_user(*args) -> subprocess.CompletedProcess:
    """`verify run` in its own process: its command line names --expect, as a user's would."""
    return subprocess.run(verify_command(*args), capture_output=True, text=True, timeout=300)


def processes_with(marker: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


@pytest.fixture
def marker():
    """A unique word for an archive's children's command lines; any still alive are killed after."""
    word = f"hutter-test-{uuid.uuid4().hex}"
    yield word
    for pid in processes_with(word):
        os.kill(pid, signal.SIGKILL)


# ------------------------------------------------------------- the expected file


@needs_bwrap
def test_cheater_cannot_find_the_expected_file(tmp_path):
    archive = hostile(tmp_path, "cheater", CHEATER)
    done = verify_as_user(archive, "--expect", expect_file(tmp_path))
    assert done.returncode == 1, done.stdout + done.stderr
    report = read_report(archive)
    assert not report["passed"] and report["isolation"]["level"] == "bwrap"
    assert "found --expect: None" in report["decoder"]["stderr_tail"]


def test_cheater_unsandboxed_passes_but_cannot_be_submitted(tmp_path):
    """Without the sandbox the cheater copies --expect and passes: the report says it was not
    sandboxed and `pipeline submit` refuses it in one line."""
    archive = hostile(tmp_path, "cheater", CHEATER)
    done = verify_as_user(archive, "--expect", expect_file(tmp_path), "--unsandboxed")
    assert done.returncode == 0, done.stdout + done.stderr
    report_path = archive.with_name(archive.name + ".verify.json")
    assert read_report(archive)["isolation"]["level"] == "none"
    refused = CliRunner().invoke(pipeline_app, ["submit", str(report_path), "-o", str(tmp_path / "record.json")])
    assert refused.exit_code == 2
    lines = refused.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "not sandboxed" in lines[0]
    assert not (tmp_path / "record.json").exists()


@needs_bwrap
def test_tamperer_cannot_reach_the_expected_file(tmp_path):
    archive = hostile(tmp_path, "tamperer", TAMPERER)
    expect = expect_file(tmp_path)
    done = verify_as_user(archive, "--expect", expect)
    assert done.returncode == 1
    assert expect.read_bytes() == ORIGINAL


def test_tamperer_unsandboxed_fails_on_the_hash_taken_before(tmp_path):
    archive = hostile(tmp_path, "tamperer", TAMPERER)
    expect = expect_file(tmp_path)
    done = verify_as_user(archive, "--expect", expect, "--unsandboxed")
    assert done.returncode == 1
    assert expect.read_bytes() == b"tampered"  # nothing protects it without the sandbox, but it cannot pass
    report = read_report(archive)
    assert report["comparison"]["expected_sha256"] == report["original"]["sha256"]  # the original's hash
    assert any("changed during verification" in r for r in report["reasons"])


@needs_bwrap
@pytest.mark.parametrize("kind", ["symlink to --expect", "fifo"])
def test_a_restored_file_must_be_a_regular_file(tmp_path, kind):
    """A symlink to the expected file (as if the archive guessed its path) would compare equal
    if followed; a FIFO would hang the comparison."""
    expect = expect_file(tmp_path)
    body = "os.symlink(EXPECT, out)" if kind != "fifo" else "os.mkfifo(out)"
    archive = hostile(tmp_path, "odd", body, EXPECT=str(expect))
    result = verify(archive, "--expect", expect)
    assert result.exit_code == 1
    assert any("no regular file" in r for r in read_report(archive)["reasons"])


# ------------------------------------------------------------------------- the venv


@needs_bwrap
def test_poisoner_cannot_plant_code_for_the_next_verification(tmp_path, venv_cache):
    poisoner = hostile(tmp_path, "poisoner", POISONER)
    result = verify(poisoner, "--expect", expect_file(tmp_path))
    assert result.exit_code == 0, result.output  # it restores the file; its planting failed
    assert "planted in []" in read_report(poisoner)["decoder"]["stderr_tail"]
    assert not list(venv_cache.path.rglob("zz_poison.pth"))
    legit = hostile(tmp_path, "legit", "open(out, 'wb').write(DATA)")
    assert verify(legit, "--expect", expect_file(tmp_path)).exit_code == 0
    assert "POISONED" not in read_report(legit)["decoder"]["stderr_tail"]


@needs_bwrap
def test_a_planted_pth_in_the_venv_is_not_shown_to_the_sandbox(tmp_path, venv_cache, monkeypatch):
    """A .pth in the venv (put there by other means) is not bound: only the pinned
    distributions' own files are."""
    site = clean_env._site_packages(venv_cache.path)
    planted = site / "zz_planted.pth"
    planted.write_text("import sys; print('POISONED', file=sys.stderr)\n")
    monkeypatch.setattr(clean_env, "ensure_venv", lambda runtime: venv_cache)  # keep the plant
    try:
        assert site / "numpy" in clean_env.runtime_entries(venv_cache)
        assert planted not in clean_env.runtime_entries(venv_cache)
        legit = hostile(tmp_path, "legit", "import numpy\nopen(out, 'wb').write(DATA)")
        result = verify(legit, "--expect", expect_file(tmp_path))
    finally:
        planted.unlink()
    assert result.exit_code == 0, result.output
    assert "POISONED" not in read_report(legit)["decoder"]["stderr_tail"]


def test_a_venv_with_a_plant_is_built_again(tmp_path, venv_cache):
    """--unsandboxed runs see the venv as it is on disk: a venv holding anything beyond its
    distributions is discarded and built again before use."""
    planted = clean_env._site_packages(venv_cache.path) / "zz_planted.pth"
    planted.write_text("import sys; print('POISONED', file=sys.stderr)\n")
    assert clean_env.foreign_entries(venv_cache) == [planted]
    rebuilt = clean_env.ensure_venv(["numpy"])
    assert rebuilt.path == venv_cache.path and not planted.exists()
    assert clean_env.foreign_entries(rebuilt) == []
    legit = hostile(tmp_path, "legit", "import numpy\nopen(out, 'wb').write(DATA)")
    assert verify(legit, "--expect", expect_file(tmp_path), "--unsandboxed").exit_code == 0
    assert "POISONED" not in read_report(legit)["decoder"]["stderr_tail"]


# ---------------------------------------------------------------------- processes


@needs_bwrap
def test_orphan_dies_with_the_sandbox(tmp_path, marker):
    archive = hostile(tmp_path, "orphan", ORPHAN, MARKER=marker)
    result = verify(archive, "--expect", expect_file(tmp_path))
    assert result.exit_code == 0, result.output
    assert "orphan started" in read_report(archive)["decoder"]["stderr_tail"]
    assert processes_with(marker) == []


def test_orphan_unsandboxed_is_killed_by_the_cgroup(tmp_path, marker):
    group = limits.memory_limit(None)
    group.close()
    if not group.method.startswith("cgroup"):
        pytest.skip("no cgroup to hold the process tree here: an unsandboxed orphan outlives the decoder")
    archive = hostile(tmp_path, "orphan", ORPHAN, MARKER=marker)
    result = verify(archive, "--expect", expect_file(tmp_path), "--unsandboxed")
    assert result.exit_code == 0, result.output
    assert read_report(archive)["decoder"]["leftover_processes_killed"] >= 1
    assert processes_with(marker) == []


@needs_bwrap
def test_time_limit_kills_the_whole_tree(tmp_path, marker):
    archive = hostile(tmp_path, "staller", STALLER, MARKER=marker)
    result = verify(archive, "--expect", expect_file(tmp_path), "--max-seconds", "1.5")
    assert result.exit_code == 1
    report = read_report(archive)
    assert report["decoder"]["timed_out"] and report["decode_seconds"] < 10
    assert processes_with(marker) == []


@needs_bwrap
def test_a_killed_verifier_takes_the_sandbox_with_it(tmp_path, marker):
    archive = hostile(tmp_path, "staller", STALLER, MARKER=marker)
    command = verify_command(archive, "--expect", expect_file(tmp_path))
    verifier = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: processes_with(marker), 60), "the staller's child never started"
    finally:
        verifier.kill()
        verifier.wait()
    assert wait_until(lambda: not processes_with(marker), 10)


def wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@needs_bwrap
@pytest.mark.parametrize("enforcer", ["the best here", "rlimit-as"])
def test_memory_hog_child_fails_verification(tmp_path, monkeypatch, enforcer):
    if enforcer == "rlimit-as":  # as on a machine without a usable cgroup
        monkeypatch.setattr(limits, "_make_cgroup", lambda limit, files: None)
    archive = hostile(tmp_path, "hog", HOG, PARENT_MIB=0, CHILD_MIB=400)
    result = verify(archive, "--expect", expect_file(tmp_path), "--max-rss", "200M")
    assert result.exit_code == 1
    report = read_report(archive)
    assert any("--max-rss" in r for r in report["reasons"]), report["reasons"]
    if report["memory"]["method"].startswith("cgroup"):
        assert report["memory"]["oom_kills"] >= 1  # enforced: the kernel stopped the child
    else:  # each process may reach the limit + margin: the measured tree peak fails it
        assert report["memory"]["method"] == "rlimit-as" and report["peak_rss_bytes"] >= 400 << 20


@needs_bwrap
def test_peak_memory_counts_the_whole_tree(tmp_path):
    archive = hostile(tmp_path, "hog", HOG, PARENT_MIB=150, CHILD_MIB=150)
    result = verify(archive, "--expect", expect_file(tmp_path), "--max-rss", "2G")
    assert result.exit_code == 0, result.output
    assert read_report(archive)["peak_rss_bytes"] >= 300 << 20  # parent and child together


@needs_bwrap
def test_a_linked_venv_works_in_the_sandbox(tmp_path, monkeypatch):
    """Offline (or for torch) the venv links the host's packages: the sandbox binds their targets."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(clean_env, "_pip_install", lambda *a: False)
    assert clean_env.ensure_venv(["numpy"]).method == "link"
    archive = hostile(tmp_path, "numpy", "import numpy\nopen(out, 'wb').write(numpy.frombuffer(DATA, dtype=numpy.uint8).tobytes())")
    result = verify(archive, "--expect", expect_file(tmp_path))
    assert result.exit_code == 0, result.output
    assert read_report(archive)["clean_env"]["install_method"] == "link"


# ---------------------------------------------------------------- what it can see


@needs_bwrap
def test_snoop_sees_no_host_files_env_sockets_or_processes(tmp_path, monkeypatch):
    monkeypatch.setenv("HUTTER_HOST_SECRET", "s3cret")
    abstract = f"\0hutter-test-{uuid.uuid4().hex}"
    server = socket.socket(socket.AF_UNIX)
    server.bind(abstract)
    server.listen()
    try:
        archive = hostile(tmp_path, "snoop", SNOOP, HOST_DIR=str(tmp_path), ABSTRACT=abstract)
        result = verify(archive, "--expect", expect_file(tmp_path))
    finally:
        server.close()
    said = " ".join(read_report(archive)["decoder"]["stderr_tail"])
    assert result.exit_code == 0, said
    assert "snoop saw: {}" in said
    assert int(said.split("processes:")[1].split()[0]) <= 3  # bwrap's init, the decoder, maybe its reaper


@needs_bwrap
def test_network_is_cut_in_the_sandbox(tmp_path):
    server = socket.create_server(("127.0.0.1", 0))
    body = (
        "import socket\ntry:\n    socket.create_connection(('127.0.0.1', PORT), timeout=2).close()\n    state = b'open'\n"
        "except OSError:\n    state = b'cut'\nopen(out, 'wb').write(state)"
    )
    try:
        archive = hostile(tmp_path, "network", body, original=b"cut", PORT=server.getsockname()[1])
        result = verify(archive, "--expect", expect_file(tmp_path, b"cut"))
    finally:
        server.close()
    assert result.exit_code == 0, result.output
    assert read_report(archive)["clean_env"]["network_cut"] is True


# ------------------------------------------------------------------ no sandbox here


def test_without_bwrap_verification_fails_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "bwrap_problem", lambda: "bubblewrap (bwrap) is not installed")
    archive = hostile(tmp_path, "legit", "open(out, 'wb').write(DATA)")
    result = verify(archive, "--expect", expect_file(tmp_path))
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot sandbox the decoder: bubblewrap (bwrap) is not installed")
    assert "--unsandboxed" in lines[0]
    assert verify(archive, "--expect", expect_file(tmp_path), "--unsandboxed").exit_code == 0
    assert read_report(archive)["isolation"]["level"] == "none"


def test_bwrap_problem_says_why(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert sandbox.bwrap_problem.__wrapped__() == "bubblewrap (bwrap) is not installed"
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    assert sandbox.bwrap_problem.__wrapped__() == (
        "bwrap cannot create its namespaces here (bwrap: No permissions to create new namespace)")


def test_only_sandboxed_reports_can_be_submitted():
    assert sandbox_refusal({"isolation": {"level": "bwrap"}}) is None
    assert "--unsandboxed" in sandbox_refusal({"isolation": {"level": "none"}})
    assert "before verification was sandboxed" in sandbox_refusal({"passed": True})


def test_groups_of_killed_verifications_are_removed(tmp_path):
    """On a folder standing in for our cgroup's parent, so it runs on machines without cgroups:
    a group whose verifier is dead goes, the group of a live one stays."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = tmp_path / f"{limits.PREFIX}{gone.pid}-stale"  # as a verifier killed with -9 leaves it
    live = tmp_path / f"{limits.PREFIX}{os.getpid()}-live"
    stale.mkdir()
    live.mkdir()
    limits._remove_stale(tmp_path, limits.V2)
    assert not stale.exists() and live.exists()


def test_the_address_space_fallback_states_its_margin():
    described = limits.AddressSpaceLimit(1 << 30).describe()
    assert described["method"] == "rlimit-as" and described["scope"] == "each process"
    assert described["address_space_bytes"] == (1 << 30) + described["margin_bytes"] > 1 << 30


def test_own_cgroup_is_read_from_proc_self_cgroup():
    text = "4:memory:/process_api/abc\n0::/user.slice/x.scope\n"
    assert limits.own_cgroup("cgroup-v1", text) == limits.CGROUP_ROOT / "memory/process_api/abc"
    assert limits.own_cgroup("cgroup-v2", text).parts[-2:] == ("user.slice", "x.scope")
