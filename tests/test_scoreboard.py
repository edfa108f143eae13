"""The scoreboard: our verified archives beside baselines measured in the same run, refusals,
missing tools, md5-gated published rows, committed records, and the memory numbers."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline import published
from pipeline.baselines import BASELINES, EXTERNAL, measure_all
from pipeline.cli import app
from submissions.errors import UserError
from pipeline.memory import PROCESS_RSS, RSS_GROWTH, peak_memory, run_program
from pipeline.plot import board_figure, plot_board
from pipeline.scoreboard import build_board, markdown
from pipeline.verified import file_digests, make_record, our_rows, record_name

runner = CliRunner()
TEXT = b"".join(b"<page><title>Item %d</title><text>The item number %d is [[linked]] here.</text></page>\n" % (i, i * 7) for i in range(80))
PARTS = {"decoder": 900, "tokenizer": 300, "model": 0, "payload": 700, "header": 100}  # sums to the fake archive's size


def make_verified(tmp_path: Path, data: bytes = TEXT, name: str = "a.arc", passed: bool = True) -> tuple[Path, Path, Path]:
    """(data file, archive, report): a report with the fields `verify run` writes, for a 2,000-byte archive."""
    data_file = tmp_path / "data.txt"
    if not data_file.exists():
        data_file.write_bytes(data)
    archive = tmp_path / name
    archive.write_bytes(hashlib.sha256(name.encode()).digest() * 62 + b"x" * 16)  # 2,000 bytes
    original = {"path": str(data_file.resolve()), "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    report = {
        "archive": {
            "path": str(archive.resolve()), "total_bytes": 2000, "file_bytes": 2000,
            "sha256": hashlib.sha256(archive.read_bytes()).hexdigest(), "parts": PARTS, "runtime": ["numpy"],
        },
        "original": original,
        "bits_per_byte": 8 * 2000 / len(data),
        "decode_seconds": 1.5,
        "peak_rss_bytes": 123 << 20,
        "limits": {"max_seconds": None, "max_rss_bytes": None, "threads": 1},
        "passed": passed,
        "reasons": [] if passed else ["restored file differs at byte 7 (size 10, expected 10)"],
        "machine": {"machine": "x86_64"},
        "versions": {"python": "3.11", "numpy": "2"},
        "clean_env": {"network_cut": True, "install_method": "pip", "project_importable": False},
        "isolation": {"level": "bwrap"},  # `pipeline submit` takes only sandboxed verifications
        "date": "2026-11-20T10:00:00+00:00",
        "config": {"model": {"kind": "context", "max_order": 2}, "tokenizer": {"vocab_size": 512}, "coder": {"n_streams": 4}},
    }
    path = archive.with_name(archive.name + ".verify.json")
    path.write_text(json.dumps(report))
    return data_file, archive, path


def fake_tool(folder: Path, name: str, mode: str = "ok") -> None:
    """A stand-in compressor on PATH: 'ok' round-trips (a 4-byte header + the bytes), 'liar' restores other bytes."""
    restore = "data[:-1] + b'!'" if mode == "liar" else "data"
    script = folder / name
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        "files = [a for a in sys.argv[1:] if not a.startswith('-')]\n"
        "if '-d' in sys.argv:\n"
        "    data = open(files[0], 'rb').read()[4:]\n"
        f"    open(files[0].rsplit('.', 1)[0], 'wb').write({restore})\n"
        "else:\n"
        "    open(files[-1] + '.xz', 'wb').write(b'FAKE' + open(files[-1], 'rb').read())\n"
    )
    script.chmod(0o755)


# ------------------------------------------------------------------------- the board


def test_board_on_a_small_file_with_two_baselines_and_one_archive(tmp_path):
    data_file, archive, report = make_verified(tmp_path)
    board = build_board(data_file, [report], None, ["zlib-9", "bz2-9"])

    names = [r.name for r in board.rows]
    assert len(names) == 3 and {"zlib-9", "bz2-9"} <= set(names)
    ours = board.ours
    assert len(ours) == 1 and ours[0].status == "verified" and ours[0].total_bytes == 2000
    assert ours[0].parts == PARTS and sum(ours[0].parts.values()) == ours[0].total_bytes
    assert ours[0].decompress_seconds == 1.5 and ours[0].decompress_peak_bytes == 123 << 20
    sizes = [r.total_bytes for r in board.rows]
    assert sizes == sorted(sizes)  # ranked by total bytes
    for row in board.rows:
        assert row.bits_per_byte == pytest.approx(8 * row.total_bytes / len(TEXT))
        assert row.ratio == pytest.approx(len(TEXT) / row.total_bytes)
    zlib = next(r for r in board.rows if r.name == "zlib-9")
    assert zlib.status == "measured" and zlib.note == "round trip checked"
    assert zlib.memory_method == RSS_GROWTH and zlib.compress_seconds > 0

    text = markdown(board)
    assert "| context order 2, vocab 512 (a.arc) | ours, verified (re-checked) | 2,000 |" in text
    assert "decoder 900 + tokenizer 300 + weights 0 + payload 700 + header 100" in text
    assert f"| zlib-9 | Python module | {zlib.total_bytes:,} |" in text
    assert "neither enwik8 nor enwik9" in text and "published" not in [r.kind for r in board.rows]

    png = plot_board(board, tmp_path / "out" / "board.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert not [p for p in png.parent.iterdir() if p.name.startswith(".")]  # written atomically


def test_every_value_in_the_plot_sits_beside_its_own_bar(tmp_path):
    """Read the figure back: at every bar's height there is one label, stating that bar's own
    length (bits per byte on the left, total bytes on the right, where bars stack the parts),
    and two of our archives with one name keep two bars."""
    import matplotlib.pyplot as plt

    data, archive, report = make_verified(tmp_path)
    board = build_board(data, reports=[report], records_dir=tmp_path / "none", baselines=["zlib-9", "bz2-9"])
    ours = next(r for r in board.rows if r.kind == "ours")
    board.rows.append(dataclasses.replace(ours, total_bytes=2500, parts=dict(PARTS, payload=PARTS["payload"] + 500)))  # same name
    board.rows.sort(key=lambda r: r.total_bytes)
    fig = board_figure(board)
    for axis, label_of, n_bars in ((fig.axes[0], lambda end: f"{end:.3f}", 4), (fig.axes[1], lambda end: f"{round(end):,}", 2)):
        ends: dict[float, float] = {}  # bar height -> where its (stacked) bar ends
        for patch in axis.patches:
            y = round(patch.get_y() + patch.get_height() / 2, 6)
            ends[y] = max(ends.get(y, 0.0), patch.get_x() + patch.get_width())
        labels = {round(text.get_position()[1], 6): text.get_text().strip() for text in axis.texts}
        assert len(ends) == n_bars and sorted(labels) == sorted(ends)
        assert all(labels[y] == label_of(end) for y, end in ends.items()), (labels, ends)
        assert sorted(round(t, 6) for t in axis.get_yticks()) == sorted(ends)
    plt.close(fig)


def test_scoreboard_cli_writes_table_markdown_and_plot(tmp_path):
    data_file, _, report = make_verified(tmp_path)
    out = tmp_path / "board"
    empty = tmp_path / "no-records"
    empty.mkdir()
    args = ["scoreboard", str(data_file), "--report", str(report), "--records", str(empty), "--baselines", "zlib-9,lzma-9e", "-o", str(out), "-q"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "zlib-9" in result.output and "lzma-9e" in result.output and "a.arc" in result.output
    md, png = out / "scoreboard_data.txt.md", out / "scoreboard_data.txt.png"
    assert "| lzma-9e |" in md.read_text() and png.stat().st_size > 0

    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "already exists" in again.output  # outputs are not overwritten silently
    bad = runner.invoke(app, ["scoreboard", str(data_file), "--baselines", "gzip", "-o", str(tmp_path / "x")])
    assert bad.exit_code == 2 and bad.output.strip().startswith("error: unknown baseline 'gzip'")


# ------------------------------------------------------------------------- external tools


def test_missing_external_tools_are_listed_not_found_and_a_present_one_is_measured(tmp_path, monkeypatch):
    tools = tmp_path / "bin"
    tools.mkdir()
    fake_tool(tools, "xz")
    monkeypatch.setenv("PATH", str(tools))  # only the fake xz: every other program is missing
    data_file = tmp_path / "data.txt"
    data_file.write_bytes(TEXT)
    board = build_board(data_file, [], None, ["zlib-9", *EXTERNAL])

    by_name = {r.name: r for r in board.rows}
    xz = by_name["xz -9e"]
    assert xz.status == "measured" and xz.kind == "program" and xz.total_bytes == len(TEXT) + 4
    assert xz.memory_method == PROCESS_RSS and xz.compress_peak_bytes > 1 << 20
    for name in EXTERNAL[1:]:
        assert by_name[name].status == "not found" and by_name[name].note == "not on PATH" and not by_name[name].on_board
    text = markdown(board)
    assert "- zpaq -method 5: not found (not on PATH)" in text and "- cmix: not found (not on PATH)" in text


def test_a_tool_that_restores_wrong_bytes_is_failed_not_ranked(tmp_path, monkeypatch):
    tools = tmp_path / "bin"
    tools.mkdir()
    fake_tool(tools, "xz", mode="liar")
    monkeypatch.setenv("PATH", str(tools))
    [result] = measure_all(TEXT, ["xz -9e"])
    assert result.available and not result.round_trip_ok and result.compressed_bytes is None
    data_file = tmp_path / "data.txt"
    data_file.write_bytes(TEXT)
    row = next(r for r in build_board(data_file, [], None, ["xz -9e"]).rows)
    assert row.status == "failed" and "differ" in row.note and not row.on_board


# ------------------------------------------------------------------------- refusals


def test_a_report_whose_archive_changed_is_refused(tmp_path):
    data_file, archive, report = make_verified(tmp_path)
    archive.write_bytes(archive.read_bytes()[:-1] + b"y")  # same size, other bytes
    board = build_board(data_file, [report], None, ["zlib-9"])
    assert board.ours == []
    [refusal] = board.refusals
    assert refusal.source == str(report) and "changed since it was verified" in refusal.reason
    assert "Refused (left off the board)" in markdown(board) and "changed since it was verified" in markdown(board)

    archive.unlink()
    rows, refusals, _ = our_rows([report], None, file_digests(data_file))
    assert rows == [] and "is gone" in refusals[0].reason


@pytest.mark.parametrize("isolation", [{"level": "none"}, None])
def test_a_report_of_an_unsandboxed_verification_is_refused(tmp_path, isolation):
    """An unsandboxed decoder could have read the expected file: its PASS does not count."""
    data_file, _, report = make_verified(tmp_path)
    written = json.loads(report.read_text())
    written["isolation"] = isolation
    report.write_text(json.dumps(written))
    rows, refusals, _ = our_rows([report], None, file_digests(data_file))
    assert rows == [] and "sandboxed" in refusals[0].reason


def test_failed_unhashed_and_foreign_reports_are_not_on_the_board(tmp_path):
    data_file, _, failed = make_verified(tmp_path, name="failed.arc", passed=False)
    _, _, old = make_verified(tmp_path, name="old.arc")
    legacy = json.loads(old.read_text())
    del legacy["archive"]["sha256"]  # reports written before `verify run` recorded it
    old.write_text(json.dumps(legacy))
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    _, _, foreign = make_verified(other_dir, data=b"another file entirely")
    garbage = tmp_path / "junk.verify.json"
    garbage.write_text("{not json")

    rows, refusals, other = our_rows([failed, old, foreign, garbage], None, file_digests(data_file))
    assert rows == [] and other == 1  # the foreign report is about another file: ignored, counted
    reasons = {Path(r.source).name: r.reason for r in refusals}
    assert "did not pass" in reasons["failed.arc.verify.json"] and "differs at byte 7" in reasons["failed.arc.verify.json"]
    assert "no archive sha256" in reasons["old.arc.verify.json"]
    assert "not a verification report" in reasons["junk.verify.json"]

    empty = tmp_path / "no-records"
    empty.mkdir()
    result = runner.invoke(app, ["scoreboard", str(data_file), "--report", str(tmp_path), "--records", str(empty), "--baselines", "zlib-9", "-o", str(tmp_path / "b"), "-q"])
    assert result.exit_code == 0, result.output
    assert result.output.count("refused") == 3


# ------------------------------------------------------------------------- published rows


def test_published_rows_only_for_the_exact_enwik_md5(tmp_path, monkeypatch):
    assert {r.name for r in published.published_for(published.ENWIK8_MD5)} >= {"cmix v21", "nncp v3.2"}
    assert any("Hutter" in r.name for r in published.published_for(published.ENWIK9_MD5.upper()))
    assert published.published_for(hashlib.md5(b"enwik8").hexdigest()) == []
    assert all(r.source and r.total_bytes > 10**7 for r in published.PUBLISHED)
    assert {r.file for r in published.PUBLISHED} == {"enwik8", "enwik9"}
    assert next(r for r in published.PUBLISHED if r.name == "cmix v21" and r.file == "enwik8").total_bytes == 14_623_723

    data_file = tmp_path / "data.txt"
    data_file.write_bytes(TEXT)
    assert [r for r in build_board(data_file, [], None, ["zlib-9"]).rows if r.kind == "published"] == []
    # pretend this file's md5 is enwik8's: the enwik8 rows appear, labelled published with their source
    monkeypatch.setitem(published._FILE_OF_MD5, hashlib.md5(TEXT).hexdigest(), "enwik8")
    board = build_board(data_file, [], None, ["zlib-9"])
    rows = [r for r in board.rows if r.kind == "published"]
    assert {r.name for r in rows} == {r.name for r in published.PUBLISHED if r.file == "enwik8"}
    assert all(r.status == "published" and "source:" in r.note and "decompressor not counted" in r.note for r in rows)
    assert board.known_as == "enwik8" and "is exactly enwik8" in markdown(board)


# ------------------------------------------------------------------------- records


def test_submit_writes_a_record_the_board_shows_as_recorded(tmp_path):
    data_file, archive, report = make_verified(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    (run / "train.json").write_text(json.dumps({"seconds": 2.5}))
    records = tmp_path / "records"
    out = records / "r.json"
    result = runner.invoke(app, ["submit", str(report), "--run", str(run), "--pack-seconds", "4", "-o", str(out)])
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text())
    assert record["file"] == {
        "name": "data.txt", "path": str(data_file.resolve()), "size": len(TEXT),
        "md5": hashlib.md5(TEXT).hexdigest(), "sha256": hashlib.sha256(TEXT).hexdigest(),
    }
    assert record["archive"]["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert record["timings"] == {"train_seconds": 2.5, "pack_seconds": 4.0, "decode_seconds": 1.5, "decode_jit_compile_seconds": None}
    assert record["verification"]["passed"] is True and record["verification"]["network_cut"] is True
    assert record_name(record) == "data.txt-context-o2-v512-2026-11-20.json"

    digests = file_digests(data_file)
    # the live report and the record describe one archive: one row, live, with the record's timings
    [row], _, _ = our_rows([report], records, digests)
    assert row.status == "verified" and row.compress_seconds == 6.5
    # archive gone (as in a fresh clone): the committed record still counts, as recorded
    archive.unlink()
    [row], refusals, _ = our_rows([report], records, digests)
    assert row.status == "recorded" and row.total_bytes == 2000 and len(refusals) == 1
    board = build_board(data_file, [], records, ["zlib-9"])
    assert board.ours[0].status == "recorded" and "ours, recorded" in markdown(board)
    # another file (its md5 differs) gets no recorded row
    other = tmp_path / "other.txt"
    other.write_bytes(TEXT + b"!")
    assert our_rows([], records, file_digests(other))[0] == []


def test_submit_refuses_a_report_that_does_not_prove_its_archive(tmp_path):
    _, archive, report = make_verified(tmp_path)
    archive.write_bytes(b"tampered")
    with pytest.raises(UserError, match="changed since it was verified"):
        make_record(report)
    _, _, failed = make_verified(tmp_path, name="f.arc", passed=False)
    result = runner.invoke(app, ["submit", str(failed), "-o", str(tmp_path / "r.json")])
    assert result.exit_code == 2 and result.output.startswith("error: ") and "did not pass" in result.output


# ------------------------------------------------------------------------- memory


def test_a_program_is_measured_without_this_process_memory():
    ballast = bytearray(200 << 20)
    ballast[:: 1 << 12] = b"x" * len(ballast[:: 1 << 12])  # touch it: 200 MiB of RSS here
    small = run_program(["true"])
    assert small.returncode == 0 and small.peak_rss < 50 << 20  # not this process's 200+ MiB
    code = "b = bytearray(80 << 20); b[::4096] = b'x' * len(b[::4096])"
    big = run_program([sys.executable, "-c", code])
    assert 80 << 20 < big.peak_rss < 200 << 20
    del ballast


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc")
def test_in_process_peak_is_the_growth_of_the_work():
    # in a fresh interpreter: inside the test session, memory other tests' threads free
    # during the block can lower the RSS the growth is counted from
    code = (
        "from pipeline.memory import peak_memory\n"
        "with peak_memory() as peak:\n"
        "    block = bytearray(60 << 20)\n"
        "    block[:: 1 << 12] = b'x' * len(block[:: 1 << 12])\n"
        "    del block\n"
        "print(peak.method, peak.bytes)\n"
    )
    method, grown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.rsplit(" ", 1)
    assert method == RSS_GROWTH and 55 << 20 < int(grown) < 120 << 20
    with peak_memory() as peak:
        run_program(["true"])
    assert peak.method == PROCESS_RSS and peak.program_seconds is not None and peak.bytes < 50 << 20


def test_every_external_program_has_its_command_line():
    for name in EXTERNAL:
        assert BASELINES[name].command and ";" in BASELINES[name].command
    assert "-12L" in BASELINES["paq8px -12L"].command and "--profile enwik8" in BASELINES["nncp"].command


def test_help_is_light():
    for command in ("scoreboard", "submit", "bench"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output
    code = (
        "import sys\nfrom pipeline.cli import app\n"
        "for c in ('scoreboard', 'submit', 'bench'):\n"
        "    try:\n        app([c, '--help'], prog_name='pipeline')\n    except SystemExit as e:\n        assert e.code == 0\n"
        "assert 'torch' not in sys.modules and 'matplotlib' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_rows_measured_elsewhere_only_for_their_exact_file_with_their_caveats(tmp_path, monkeypatch):
    """The field's strongest programs (peers_*.json) stand on the board beside the file they
    were measured on, marked so, with the caveats in the table, the notes and the plot."""
    import matplotlib.pyplot as plt

    from pipeline import peers

    enwik6 = peers.peers_for("83a2cefd8ca00049e0445542dabd25a0")
    assert {p.name.split(" (")[0] for p in enwik6} == {"paq8px v216 -8", "paq8px v216 -8LAT", "cmix v21", "lstm-compress v3"}
    cmix = next(p for p in enwik6 if p.name.startswith("cmix"))
    assert cmix.total_bytes == 173_475 and cmix.caveats == ("dictionary not counted", "not round-trip checked")
    assert next(p for p in enwik6 if p.name == "paq8px v216 -8").caveats == ()

    data_file = tmp_path / "data.txt"
    data_file.write_bytes(TEXT)
    assert [r for r in build_board(data_file, [], None, ["zlib-9"]).rows if r.kind == "peer"] == []  # another file: none
    peers_file = json.loads((peers.PEERS_DIR / "peers_enwik6.json").read_text())
    peers_file["file"]["md5"] = hashlib.md5(TEXT).hexdigest()  # pretend they were measured on this file
    (tmp_path / "peers_data.json").write_text(json.dumps(peers_file))
    monkeypatch.setattr("pipeline.scoreboard.peers_for", lambda md5: peers.peers_for(md5, tmp_path))
    board = build_board(data_file, [], None, ["zlib-9"])
    rows = [r for r in board.rows if r.kind == "peer"]
    assert len(rows) == 4 and all(r.status == "measured elsewhere" and "decompressor not counted" in r.note for r in rows)
    text = markdown(board)
    assert "| cmix v21 (english.dic not counted) | measured elsewhere, dictionary not counted, not round-trip checked | 173,475 |" in text
    assert "411,996-byte english.dic" in text and "*measured elsewhere*" in text
    fig = board_figure(board)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert any("cmix" in label and "not round-trip checked" in label for label in labels)
    plt.close(fig)


def test_the_board_shows_the_smallest_and_newest_archive_of_each_kind_and_way_of_packing_and_history_all(tmp_path):
    reports = []
    for name, total, date, kind, tree_order in [
        ("old-small.arc", 1900, "2026-11-20", "context", False), ("between.arc", 2100, "2026-11-21", "context", False),
        ("new-large.arc", 2200, "2026-11-22", "context", False), ("other-kind.arc", 2500, "2026-11-19", "mix", False),
        ("tree-order.arc", 2600, "2026-11-18", "context", True),  # another way of packing: its own smallest and newest
    ]:
        data_file, _, report = make_verified(tmp_path, name=name)
        fields = json.loads(report.read_text())
        fields["archive"]["total_bytes"], fields["date"] = total, date + "T10:00:00+00:00"
        fields["config"]["model"]["kind"] = kind
        fields["config"]["coder"]["tree_order"] = tree_order
        report.write_text(json.dumps(fields))
        reports.append(report)
    board = build_board(data_file, reports, None, ["zlib-9"])
    assert [r.name.split("(")[1] for r in board.ours] == ["old-small.arc)", "new-large.arc)", "other-kind.arc)", "tree-order.arc)"]
    assert [name.split("(")[1] for name in board.left_off] == ["between.arc)"]
    assert "1 earlier archive of ours left off" in markdown(board) and "shows all 5" in markdown(board)
    everything = build_board(data_file, reports, None, ["zlib-9"], history=True)
    assert len(everything.ours) == 5 and not everything.left_off and "left off" not in markdown(everything)
    assert "--history`" in markdown(everything) and "--history`" not in markdown(board).split("\n")[2]
    result = runner.invoke(app, ["scoreboard", str(data_file), "--report", str(tmp_path), "--baselines", "zlib-9", "-o", str(tmp_path / "b"), "-q"])
    assert result.exit_code == 0, result.output
    assert "1 earlier archive of ours left off" in result.output and "between.arc" not in (tmp_path / "b" / "scoreboard_data.txt.md").read_text()
