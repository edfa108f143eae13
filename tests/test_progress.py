"""Progress off a terminal (a log file, nohup, CI): a plain line now and then, and one at the end."""

from __future__ import annotations

import hashlib
import io
import re

import numpy as np

from pipeline.progress import log_lines, progress_bar


def test_off_a_terminal_a_line_at_most_every_minute_and_one_at_the_end():
    now, lines = [0.0], []
    update = log_lines("encoding", lines.append, every=60, clock=lambda: now[0])
    for t, done in ((0, 0), (10, 50), (61, 300), (100, 500), (125, 600), (130, 1000), (140, 1000)):
        now[0] = t
        update(done, 1000)
    assert lines == [
        "encoding: 300/1,000 (30%), 0:01:01, eta 0:02:22",  # 61 s for 300: 700 more take 142 s
        "encoding: 600/1,000 (60%), 0:02:05, eta 0:01:23",
        "encoding: 1,000/1,000 (100%), 0:02:10",  # the end, said once, however soon after the last
    ]


def test_a_total_not_known_yet_gives_no_share_and_no_eta():
    now, lines = [0.0], []
    update = log_lines("tokenizing (bytes)", lines.append, every=60, clock=lambda: now[0])
    now[0] = 3725
    update(12_345, 0)
    assert lines == ["tokenizing (bytes): 12,345, 1:02:05"]


def test_progress_bar_off_a_terminal_writes_plain_lines_to_stderr(capsys):
    with progress_bar("decoding") as update:  # pytest's captured stderr is not a terminal
        update(0, 10)
        update(10, 10)
    captured = capsys.readouterr()
    assert captured.err.splitlines() == ["decoding: 10/10 (100%), 0:00:00"] and captured.out == ""
    with progress_bar("decoding", enabled=False) as update:
        assert update is None


def test_a_fraction_with_extra_text_shows_a_share_only_and_the_text_last():
    now, lines = [0.0], []
    update = log_lines("training", lines.append, every=60, clock=lambda: now[0], counts=False)
    now[0] = 90
    update(250, 1000, "step 40  2.100 bits/byte  9,000 tok/s")
    assert lines == ["training: 25%, 0:01:30, eta 0:04:30, step 40  2.100 bits/byte  9,000 tok/s"]


def test_a_download_off_a_terminal_says_its_bytes_once_done(capsys):
    from pipeline.data import _copy

    payload = bytes(range(256)) * 4096  # 1 MiB
    target = io.BytesIO()
    copied, md5 = _copy(io.BytesIO(payload), target, None, "downloading enwik8.zip", progress=True)
    assert (copied, md5, target.getvalue()) == (len(payload), hashlib.md5(payload).hexdigest(), payload)
    assert capsys.readouterr().err.splitlines() == ["downloading enwik8.zip (bytes): 1,048,576/1,048,576 (100%), 0:00:00"]


def test_neural_training_off_a_terminal_says_its_bits_per_byte(tmp_path, capsys):
    from pipeline.config import NeuralModelConfig
    from pipeline.neural import train_neural

    tokens = np.random.default_rng(0).integers(0, 64, 4000).astype(np.uint16)
    config = NeuralModelConfig(d_model=16, n_layers=1, n_heads=2, context=8, max_minutes=None, max_steps=3, batch_size=4)
    train_neural(tokens, "0" * 64, 64, config, tmp_path, n_streams=2, bytes_per_token=2.0, device="cpu")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and re.fullmatch(r"training: 100%, 0:00:\d\d, step 3  \d+\.\d{3} bits/byte  [\d,]+ tok/s", lines[0]), lines
