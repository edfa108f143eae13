"""The loss curve `pipeline pack` writes beside each archive, and `pipeline curve`'s plot."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from small_run import small_archive
from test_cli import one_line_error, runner

from pipeline import curve as curve_module
from pipeline.cli import app as pipeline_app
from pipeline.curve import archive_bytes_along, bytes_before, curve_path, file_curve, read_curve
from submissions.archive import archive_parts


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 9), max_size=40), st.data())
def test_bytes_before_counts_the_text_of_each_prefix(tokens, data):
    lengths = np.arange(10, dtype=np.int64) % 4  # token i is i % 4 bytes (empty tokens too)
    positions = np.array(sorted(data.draw(st.lists(st.integers(0, len(tokens)), max_size=10))), dtype=np.int64)
    curve_module.CHUNK_TOKENS = data.draw(st.integers(1, 8))  # a piece boundary anywhere
    try:
        got = bytes_before(np.array(tokens, dtype=np.int64), lengths, positions)
    finally:
        curve_module.CHUNK_TOKENS = 1 << 22
    assert got.tolist() == [int(lengths[tokens[:p]].sum()) for p in positions]


def test_shards_and_streams_add_up_along_the_file():
    tokens = np.arange(30, dtype=np.int64) % 5
    lengths = np.array([1, 2, 3, 4, 5], dtype=np.int64)
    # shard 0: tokens 0-19 in 3 streams (7, 7, 6 steps); shard 1: tokens 20-29 in one stream
    shards = [(0, 20, 3, [(0, 0.0), (4, 10.0), (7, 25.0)]), (20, 10, 1, [(0, 0.0), (10, 9.0)])]
    rows = file_curve(shards, tokens, lengths)
    assert rows[0] == [0, 0.0]
    assert rows[1][0] == sum(int(lengths[tokens[s : s + 4]].sum()) for s in (0, 7, 14))  # 4 steps of each stream
    assert rows[2] == [int(lengths[tokens[:20]].sum()), 25.0]  # the first shard done
    assert rows[-1] == [int(lengths[tokens].sum()), 34.0]  # the second follows it


def test_pack_writes_the_curve_and_pipeline_curve_draws_it(tmp_path, text_sample):
    source, _, archive = small_archive(tmp_path, text_sample[:6000])
    record = json.loads(curve_path(archive).read_text())
    points = np.array(record["points"])
    assert record["size"] == 6000 and points[-1, 0] == 6000 and (np.diff(points, axis=0) >= 0).all()
    assert record["payload_bytes"] == archive_parts(archive)["payload"]
    assert abs(points[-1, 1] / 8 - record["payload_bytes"]) < 0.02 * record["payload_bytes"] + 64  # the area is the payload
    assert record["parts"] == archive_parts(archive) and record["program_bytes"] + record["payload_bytes"] == archive.stat().st_size
    along = archive_bytes_along(read_curve(curve_path(archive)), np.array([0, 3000, 6000]))  # what is stored first, then the area
    assert along[0] == record["program_bytes"] and along[0] < along[1] < along[2] and along[2] == record["program_bytes"] + points[-1, 1] / 8
    png = tmp_path / "curve.png"
    result = runner.invoke(pipeline_app, ["curve", str(curve_path(archive)), str(curve_path(archive)), "-o", str(png)])
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    refused = runner.invoke(pipeline_app, ["curve", str(source), "-o", str(tmp_path / "other.png")])
    assert refused.exit_code == 2 and "not a curve file" in one_line_error(refused)
    again = runner.invoke(pipeline_app, ["curve", str(curve_path(archive)), "-o", str(png)])
    assert again.exit_code == 2 and "already exists" in one_line_error(again)
