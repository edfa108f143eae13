"""Progress of long stages: a rich bar on a terminal; off one (a log file, nohup, CI) a plain
line now and then, so that a pack of enwik8's size (~30 minutes) says how far it is; silent
when asked."""

from __future__ import annotations

import contextlib
import time
from datetime import timedelta
from typing import Callable, Iterator, Optional

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True)
LOG_EVERY_SECONDS = 60  # off a terminal: a line at most this often, and one when the stage ends


@contextlib.contextmanager
def progress_bar(description: str, enabled: bool = True) -> Iterator[Optional[Callable[[int, int], None]]]:
    """Yield a callback(done, total) that drives a bar, or None when disabled."""
    if not enabled:
        yield None
        return
    lines = plain_lines(description)
    if lines:
        yield lines
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def plain_lines(description: str, enabled: bool = True, counts: bool = True) -> Optional[Callable[..., None]]:
    """Off a terminal (where rich draws nothing until the end), log_lines writing to the console
    (stderr); None on a terminal, where a rich bar shows the stage, or when disabled."""
    if not enabled or console.is_terminal:
        return None
    return log_lines(description, lambda line: console.print(line, highlight=False, soft_wrap=True), counts=counts)


def log_lines(
    description: str,
    write: Callable[[str], None],
    every: float = LOG_EVERY_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    counts: bool = True,
) -> Callable[..., None]:
    """A callback(done, total, info="") that writes 'description: done/total (percent), elapsed,
    eta, info' at most once every `every` seconds, and once more when done reaches total.
    counts=False leaves out done/total (training's progress is a fraction of its budget)."""
    started = last_line = clock()
    said_done = False

    def update(done: int, total: int, info: str = "") -> None:
        nonlocal last_line, said_done
        now, finished = clock(), total > 0 and done >= total
        if said_done or not (finished or now - last_line >= every):
            return
        last_line, said_done = now, finished
        elapsed = now - started
        eta = f", eta {_clock_time(elapsed * (total - done) / done)}" if 0 < done < total else ""
        percent = f"{100 * done / total:.0f}%" if total > 0 else ""
        amount = (f"{done:,}/{total:,} ({percent})" if counts else percent) if total > 0 else f"{done:,}"
        write(f"{description}: {amount}, {_clock_time(elapsed)}{eta}{f', {info}' if info else ''}")

    return update


def _clock_time(seconds: float) -> str:
    return str(timedelta(seconds=round(seconds)))  # h:mm:ss
