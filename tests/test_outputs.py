"""Outputs never destroy inputs: aliases (symlinks, hard links, folders) are refused before any
work, two writers of one output cannot both succeed, files honour the umask, and the next
writer removes what killed ones left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.pack import pack
from pipeline.train import train
from pipeline.unpack import unpack
from small_run import SMALL, small_archive
from submissions.errors import UserError
from submissions.fileio import atomic_write_bytes, claim_output, output_lock, remove_leftovers


@pytest.fixture(scope="module")
def run(tmp_path_factory, text_sample):
    """(data file, run folder, archive) of a small run."""
    return small_archive(tmp_path_factory.mktemp("outputs"), text_sample[:3000])


def snapshot(*paths: Path) -> dict:
    return {p: p.read_bytes() for p in paths}


def no_encoding(monkeypatch):
    """Fail the test if pack starts coding: a refusal must come before the work."""
    from submissions.decoder import encoding

    monkeypatch.setattr(encoding, "encode_with_cost", lambda *a, **k: pytest.fail("pack encoded before refusing"))


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.parametrize("target", ["data", "data via --data", "tokens.npy", "tokenizer.model", "symlink to data", "hard link to data", "the run folder", "a folder"])
def test_pack_refuses_an_output_that_is_an_input_before_encoding(run, tmp_path, monkeypatch, target):
    data, folder, _ = run
    kept = snapshot(data, *(p for p in folder.iterdir() if p.is_file()))
    out = {
        "data": data, "data via --data": data, "tokens.npy": folder / "tokens.npy", "tokenizer.model": folder / "tokenizer.model",
        "symlink to data": tmp_path / "link", "hard link to data": tmp_path / "hard", "the run folder": folder, "a folder": tmp_path,
    }[target]
    if target == "symlink to data":
        out.symlink_to(data)
    if target == "hard link to data":
        os.link(data, out)
    no_encoding(monkeypatch)
    with pytest.raises(UserError) as refused:
        pack(folder, out, data_path=data if target == "data via --data" else None, force=True, progress=False)
    assert "\n" not in str(refused.value)
    assert snapshot(*kept) == kept


def test_restoring_refuses_to_overwrite_the_archive_by_any_name(run, tmp_path):
    data, _, archive = run
    copy = tmp_path / "v.arc"
    copy.write_bytes(archive.read_bytes())
    link = tmp_path / "link"
    link.symlink_to(tmp_path, target_is_directory=True)
    os.link(copy, tmp_path / "hard.arc")
    for out in (link / "v.arc", tmp_path / "hard.arc"):
        done = subprocess.run([sys.executable, "-I", str(copy), "-q", "--force", "-o", str(out)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and done.stderr.startswith("error: ") and len(done.stderr.splitlines()) == 1, done.stderr
        with pytest.raises(UserError, match="is the input"):
            unpack(copy, out, force=True, progress=False)
    assert copy.read_bytes() == archive.read_bytes()
    done = subprocess.run([sys.executable, "-I", str(copy), "-q", "--force", "-o", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "folder" in done.stderr


def test_a_second_writer_of_the_same_output_is_refused(run, tmp_path, monkeypatch):
    data, folder, _ = run
    out = tmp_path / "y.arc"
    no_encoding(monkeypatch)
    with output_lock(out):  # the first writer, still coding
        with pytest.raises(UserError, match="another process is writing"):
            pack(folder, out, force=True, progress=False)
        with pytest.raises(UserError, match="another process is writing"):
            unpack(run[2], out, force=True, progress=False)
    assert not out.exists() and not list(tmp_path.iterdir())  # the lock file goes with its holder


def test_a_lock_from_another_process_is_respected_and_released_by_its_death(tmp_path):
    out = tmp_path / "z.arc"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys,time; from submissions.fileio import output_lock\n"
         f"with output_lock({str(out)!r}):\n print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1],
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(UserError, match="another process is writing"):
            with claim_output(out):
                pass
    finally:
        holder.kill()  # kill -9: the kernel drops its lock
        holder.wait()
    with claim_output(out) as path:
        atomic_write_bytes(path, b"mine", replace=False)
    assert out.read_bytes() == b"mine"


def test_no_clobber_write_refuses_a_file_that_appeared_meanwhile(tmp_path):
    out = tmp_path / "w"
    with pytest.raises(UserError, match="already exists"):
        with claim_output(out) as path:
            out.write_bytes(b"someone else's")  # appeared while we worked
            atomic_write_bytes(path, b"ours", replace=False)
    assert out.read_bytes() == b"someone else's"


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_outputs_honour_the_umask(run, tmp_path, umask, mode):
    data, _, archive = run
    old = os.umask(umask)
    try:
        train(data, tmp_path / "run", SMALL, progress=False)
        pack(tmp_path / "run", tmp_path / "x.arc", progress=False)
        done = subprocess.run([sys.executable, "-I", str(archive), "-q", "-o", str(tmp_path / "restored")], timeout=120)
    finally:
        os.umask(old)
    assert done.returncode == 0
    for path in (tmp_path / "x.arc", tmp_path / "restored", *(tmp_path / "run").iterdir()):
        assert path.stat().st_mode & 0o777 == mode, path


def test_leftovers_of_dead_writers_are_removed_and_live_ones_kept(run, tmp_path):
    data, folder, archive = run
    dead, alive = dead_pid(), os.getpid()
    left = [tmp_path / f".x.arc.{dead}-abc123_x.tmp", tmp_path / f"restored.partial-{dead}", tmp_path / f"x.arc.partial-{dead}"]
    kept = [tmp_path / f".x.arc.{alive}-abc123_x.tmp", tmp_path / f"restored.partial-{alive}", tmp_path / "x.arc.partial-notapid", tmp_path / "x.arc.other"]
    for path in left + kept:
        path.write_bytes(b"")
    pack(folder, tmp_path / "x.arc", progress=False)
    done = subprocess.run([sys.executable, "-I", str(archive), "-q", "-o", str(tmp_path / "restored")], timeout=120)
    assert done.returncode == 0
    assert not any(p.exists() for p in left) and all(p.exists() for p in kept)


def test_a_run_folder_loses_the_leftovers_of_a_killed_train(run, tmp_path):
    data, _, _ = run
    train(data, tmp_path / "run", SMALL, progress=False)
    dead = dead_pid()
    left = [tmp_path / "run" / f".tokens.npy.{dead}-abcdefgh.tmp", tmp_path / "run" / f".tokenizer.model.{dead}-abcdefgh.tmp"]
    for path in left:
        path.write_bytes(b"half")
    train(data, tmp_path / "run", SMALL, force=True, progress=False)
    assert not any(p.exists() for p in left)
    assert remove_leftovers(tmp_path / "run" / "tokens.npy") == []


def test_pack_refusals_are_one_line_exit_2_on_the_command_line(run, tmp_path):
    from typer.testing import CliRunner

    from pipeline.cli import app

    data, folder, _ = run
    for args in (["-o", str(data), "--data", str(data), "--force"], ["-o", str(tmp_path), "--force"], ["-o", str(folder / "tokens.npy"), "--force"]):
        result = CliRunner().invoke(app, ["pack", str(folder), "-q", *args])
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.output


def test_unreadable_data_is_one_line(run, tmp_path, monkeypatch):
    import pipeline.run_check

    def unreadable(*args, **kwargs):
        raise PermissionError(13, "Permission denied")  # what a non-root user meets; root reads anything

    _, folder, _ = run
    monkeypatch.setattr(pipeline.run_check, "open", unreadable, raising=False)
    with pytest.raises(UserError, match="cannot read the data file .*Permission denied"):
        pack(folder, tmp_path / "u.arc", progress=False)
    assert not (tmp_path / "u.arc").exists()
