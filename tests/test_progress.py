"""Progress off a terminal (a log file, nohup, CI): a plain line now and then, and one at the end."""

from __future__ import annotations

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
