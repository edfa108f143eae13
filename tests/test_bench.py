"""`pipeline bench`: inputs (slices, labelled repetitions), devices, the time budget, a real tiny run."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from pipeline import bench
from pipeline.bench import BenchRow, make_input, parse_sizes
from pipeline.cli import app
from submissions.errors import UserError

runner = CliRunner()


def test_sizes_and_inputs():
    assert parse_sizes("1,2,4,8") == [1.0, 2.0, 4.0, 8.0]
    assert parse_sizes("0.5") == [0.5]
    for bad in ("", "1,x", "0", "-1", "nan"):
        with pytest.raises(UserError, match="--sizes"):
            parse_sizes(bad)

    data = bytes(range(100))
    assert make_input(data, 40, "f") == (data[:40], "first 40 bytes of f")
    doubled, label = make_input(data, 200, "f")
    assert doubled == data + data and label == "f repeated 2 times"
    part, label = make_input(data, 250, "f")
    assert part == (data * 3)[:250] and label == "f repeated 2.5 times"
    with pytest.raises(UserError, match="empty"):
        make_input(b"", 10, "f")


def test_devices(monkeypatch):
    monkeypatch.setattr(bench, "cuda_available", lambda: False)
    assert bench.devices_for("context", None)[0] == ["cpu"]
    with pytest.raises(UserError, match="no CUDA device"):
        bench.devices_for("neural", ["cuda"])
    monkeypatch.setattr(bench, "cuda_available", lambda: True)
    assert bench.devices_for("neural", None) == (["cpu", "cuda"], [])
    devices, notes = bench.devices_for("context", None)
    assert devices == ["cpu"] and "numpy only" in notes[0]  # the context model has no CUDA path: said, not hidden
    with pytest.raises(UserError, match="unknown device"):
        bench.devices_for("neural", ["tpu"])


def test_the_budget_skips_sizes_that_would_not_fit(tmp_path, monkeypatch):
    data = tmp_path / "d.txt"
    data.write_bytes(b"abc " * 750)
    clock = [0.0]
    monkeypatch.setattr(bench, "_now", lambda: clock[0])

    def fake_measure(payload, label, device, *rest):
        clock[0] += len(payload) / 100  # 100 bytes per second
        return BenchRow(len(payload), label, device, tokens=1, train_seconds=1.0, train_tokens=1, archive_bytes=1, round_trip_ok=True)

    monkeypatch.setattr(bench, "_measure_one", fake_measure)
    monkeypatch.setattr(bench, "cuda_available", lambda: False)
    # 1,000 bytes take 10 s; 2,000 then need ~20 s of the 30 s left; 4,000 need 40 s of the 0 s left
    result = bench.bench(data, [0.004, 0.001, 0.002], max_minutes=0.5)
    assert [r.size_bytes for r in result.rows] == [1000, 2000, 4000]  # smallest first
    assert [r.skipped is None for r in result.rows] == [True, True, False]
    assert "estimated 0.7 min" in result.rows[2].skipped and "--max-minutes 0.5" in result.rows[2].skipped
    assert result.rows[0].input == "first 1,000 bytes of d.txt" and result.rows[2].input == "d.txt repeated 1.33333 times"
    assert "skipped: estimated" in bench.markdown(result, "pipeline bench d.txt")


def test_a_real_tiny_bench_through_the_cli(tmp_path, text_sample):
    data = tmp_path / "sample.txt"
    data.write_bytes(text_sample[:6000])
    out = tmp_path / "results" / "bench.md"
    args = ["bench", str(data), "--sizes", "0.008", "--model", "context", "--vocab", "320", "--streams", "4", "-o", str(out), "-q"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    saved = json.loads(out.with_suffix(".json").read_text())
    [row] = saved["rows"]
    assert row["skipped"] is None, row["skipped"]  # a failed stage says why here
    assert row["size_bytes"] == 8000 and row["input"] == "sample.txt repeated 1.33333 times"
    assert row["round_trip_ok"] is True and row["device"] == "cpu" and row["skipped"] is None
    assert row["tokens"] > 0 and row["train_tokens"] == row["tokens"]  # the context model: tokenizing is its training
    for stage in ("train", "encode", "decode"):
        assert row[f"{stage}_seconds"] > 0 and row[f"{stage}_cpu_seconds"] > 0 and row[f"{stage}_peak_bytes"] > 10 << 20
    assert row["load_average"] >= 0
    assert row["archive_bytes"] > 0  # tiny inputs: the ~9 KB decoder program dominates
    assert saved["machine"]["cpu_count"] >= 1 and saved["versions"]["numpy"] and saved["date"]
    text = out.read_text()
    assert "| 0.008 MB (sample.txt repeated 1.33333 times) | cpu |" in text and "Command: `pipeline bench" in text
    printed = result.output.replace("\n", "")  # the console wraps long paths at 80 columns, wherever they fall
    assert "0.008 MB" in printed and "bench.json" in printed

    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "already exists" in again.output
    bad = runner.invoke(app, ["bench", str(data), "--sizes", "two"])
    assert bad.exit_code == 2 and bad.output.startswith("error: --sizes")
    bad = runner.invoke(app, ["bench", str(data), "-o", str(tmp_path / "x.txt")])
    assert bad.exit_code == 2 and "must end in .md" in bad.output


def test_a_failing_stage_costs_its_row_not_the_run(tmp_path, monkeypatch):
    data = tmp_path / "d.txt"
    data.write_bytes(b"abc " * 750)

    def flaky(payload, label, device, *rest):
        if len(payload) == 2000:
            raise RuntimeError("bench stage decode failed (exit 1): archive format 1 is not 2")
        return BenchRow(len(payload), label, device, tokens=1, train_seconds=1.0, train_tokens=1, archive_bytes=1, round_trip_ok=True)

    monkeypatch.setattr(bench, "_measure_one", flaky)
    monkeypatch.setattr(bench, "cuda_available", lambda: False)
    rows = bench.bench(data, [0.001, 0.002, 0.003]).rows
    assert [r.skipped for r in rows] == [None, "failed: bench stage decode failed (exit 1): archive format 1 is not 2", None]
    assert "| 0.002 MB (first 2,000 bytes of d.txt) | cpu | failed: bench stage decode" in bench.markdown(bench.BenchResult("d", "context", rows, {}, {"python": "3", "numpy": "2", "torch": None, "sentencepiece": None, "code_version": None}, "2026-01-01", None), "c")
