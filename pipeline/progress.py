"""Progress of long stages: a rich bar on a terminal; off one (a log file, nohup, CI) a plain
line now and then, so that a pack of enwik8's size (~30 minutes) says how far it is; silent
when asked."""

from __future__ import annotations

import contextlib
import time
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
    if not console.is_terminal:
        yield log_lines(description, lambda line: console.print(line, highlight=False, soft_wrap=True))
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def log_lines(description: str, write: Callable[[str], None], every: float = LOG_EVERY_SECONDS, clock: Callable[[], float] = time.monotonic) -> Callable[[int, int], None]:
    """A callback(done, total) that writes 'description: done/total (percent), elapsed, eta' at
    most once every `every` seconds, and once more when done reaches total."""
    started = clock()
    last = [started, False]  # when a line was last written; whether the last line said it is done

    def update(done: int, total: int) -> None:
        now, finished = clock(), total > 0 and done >= total
        if last[1] or not (finished or now - last[0] >= every):
            return
        last[0], last[1] = now, finished
        elapsed = now - started
        eta = f", eta {_clock_time(elapsed * (total - done) / done)}" if 0 < done < total else ""
        amount = f"{done:,}/{total:,} ({100 * done / total:.0f}%)" if total > 0 else f"{done:,}"
        write(f"{description}: {amount}, {_clock_time(elapsed)}{eta}")

    return update


def _clock_time(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
