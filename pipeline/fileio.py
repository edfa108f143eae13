"""Safe file output: never overwrite an input, never leave a half-written file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from pipeline.errors import UserError


def check_output(path: Path, force: bool = False, inputs: tuple[Path, ...] = ()) -> Path:
    """Refuse an existing output (unless force) and any output that is one of the inputs."""
    path = Path(path)
    for source in inputs:
        if Path(source).exists() and path.exists() and path.resolve() == Path(source).resolve():
            raise UserError(f"output {path} is also an input; refusing to overwrite it")
    if path.exists() and not force:
        raise UserError(f"{path} already exists (use --force to replace it)")
    if path.exists() and path.is_dir() and not force:
        raise UserError(f"{path} is a directory")
    return path


def require_file(path: Path, what: str = "input") -> Path:
    """A readable regular file, or a one-line error."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{what} {path} does not exist")
    if not path.is_file():
        raise UserError(f"{what} {path} is not a regular file")
    return path


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
