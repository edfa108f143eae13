"""Safe file output: an output never replaces an input, never appears half written, honours
the umask, and two writers of one output cannot both succeed.

Temporary files carry the writer's PID (`.NAME.PID-XXXXXXXX.tmp`, `NAME.partial-PID`,
`NAME.tmp-PID`), so the next writer of NAME removes those of writers that died (kill -9)
and leaves those of live ones alone.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

from submissions.errors import UserError


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (symlinks followed, hard links included)."""
    try:
        first, second = os.stat(a), os.stat(b)
    except (OSError, ValueError):
        return False
    return (first.st_dev, first.st_ino) == (second.st_dev, second.st_ino)


def check_output(path: Path, force: bool = False, inputs: Iterable[Path] = ()) -> Path:
    """Refuse an output that is a folder, that is (by any name) one of the inputs, or that
    exists (unless force). Called before any work, so a refusal costs nothing."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"output {path} is a folder; give a file name")
    for source in inputs:
        if same_file(path, source):
            raise UserError(f"output {path} is the input {source}; refusing to overwrite it")
    if (path.exists() or path.is_symlink()) and not force:
        raise UserError(f"{path} already exists (use --force to replace it)")
    return path


def files_of(folder: Path) -> list[Path]:
    """The folder itself and every file in it (a run's artifacts, as inputs no output may replace)."""
    folder = Path(folder)
    return [folder, *(p for p in folder.iterdir() if p.is_file())] if folder.is_dir() else [folder]


def require_file(path: Path, what: str = "input") -> Path:
    """A readable regular file, or a one-line error."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{what} {path} does not exist")
    if not path.is_file():
        raise UserError(f"{what} {path} is not a regular file")
    if not os.access(path, os.R_OK):
        raise UserError(f"{what} {path} is not readable")
    return path


def _umask() -> int:
    mask = os.umask(0o022)  # the only way to read it; set straight back
    os.umask(mask)
    return mask


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # someone else's process (or a number no process can have: keep the file)
    return True


def leftover_pattern(name: str) -> re.Pattern:
    """Temporary names a writer of `name` makes, with the writer's PID as group 1."""
    quoted = re.escape(name)
    return re.compile(rf"(?:\.{quoted}\.(\d+)-[A-Za-z0-9_]+\.tmp|{quoted}\.partial-(\d+)|{quoted}\.tmp-(\d+))")


def remove_leftovers(path: Path) -> list[Path]:
    """Delete the temporary files that dead writers of `path` left beside it; the removed ones."""
    path = Path(path)
    pattern, removed = leftover_pattern(path.name), []
    try:
        names = os.listdir(path.parent)
    except OSError:
        return removed
    for name in names:
        match = pattern.fullmatch(name)
        if match and not pid_alive(int(next(g for g in match.groups() if g))):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path.parent / name)
                removed.append(path.parent / name)
    return removed


@contextlib.contextmanager
def output_lock(path: Path) -> Iterator[None]:
    """Hold `.NAME.lock` beside the output (flock) while it is checked, made and written: a
    second writer of the same output is refused at once instead of both reporting success.
    The lock file goes when released; a holder that finds its file replaced tries again."""
    path = Path(path)
    lock = path.parent / f".{path.name}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise UserError(f"another process is writing {path} (lock {lock})") from None
            raise
        if _same_fd(lock, fd):
            break
        os.close(fd)  # we locked a file its previous holder had just removed: take the new one
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)
        os.close(fd)


def _same_fd(path: Path, fd: int) -> bool:
    try:
        named, held = os.stat(path), os.fstat(fd)
    except OSError:
        return False
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


@contextlib.contextmanager
def claim_output(path: Path, force: bool = False, inputs: Iterable[Path] = ()) -> Iterator[Path]:
    """check_output under the output's lock, held until the block ends (wrap the whole work
    and the write in it); dead writers' leftovers are removed first."""
    path = Path(path)
    inputs = list(inputs)
    check_output(path, force, inputs)
    with output_lock(path):
        check_output(path, force, inputs)  # again: another writer may have finished meanwhile
        remove_leftovers(path)
        yield path


@contextlib.contextmanager
def atomic_path(path: Path, replace: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `path` (mode 0666 less the umask, like any new file);
    move it onto `path` only on success. replace=False never replaces an existing file, even
    one that appeared while the temporary file was written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    try:
        yield Path(tmp)
        if replace:
            os.replace(tmp, path)
        else:
            _publish_new(Path(tmp), path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _publish_new(tmp: Path, path: Path) -> None:
    """Give tmp the name path only if nothing has it (a hard link fails when the name is taken)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise UserError(f"{path} already exists (use --force to replace it)") from None
    except OSError:  # a file system without hard links: a check, then a rename
        if path.exists() or path.is_symlink():
            raise UserError(f"{path} already exists (use --force to replace it)") from None
        os.replace(tmp, path)


def atomic_write_bytes(path: Path, data: bytes, replace: bool = True) -> None:
    with atomic_path(path, replace) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: Path, text: str, replace: bool = True) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), replace)
