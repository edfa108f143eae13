"""Small generated zipapps that stand in for archives in the verifier's tests (honest ones and
hostile ones), and a stand-in for `submissions.archive.inspect` that reads what each claims
to restore from a sidecar file, so it works in this process and in a `verify` subprocess."""

from __future__ import annotations

import hashlib
import json
import sys
import zipapp
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from submissions.errors import UserError

ORIGINAL = b"The quick brown fox jumps over the lazy dog.\n" * 50
PROLOGUE = "import os, sys\nout = sys.argv[sys.argv.index('-o') + 1]\n"


@dataclass
class FakeInfo:
    total_bytes: int
    parts: dict
    original_size: int
    original_sha256: str
    runtime: list = field(default_factory=lambda: ["numpy"])
    config: dict = field(default_factory=lambda: {"model": {"kind": "fake"}, "tokenizer": {"vocab_size": 256}})


def claims_path(archive: Path) -> Path:
    return archive.with_name(archive.name + ".claims")


def fake_inspect(path):
    path = Path(path)
    if not zipfile.is_zipfile(path):
        raise UserError(f"{path} is not an archive")
    claims = claims_path(path)
    original = claims.read_bytes() if claims.is_file() else ORIGINAL
    size = path.stat().st_size
    return FakeInfo(
        total_bytes=size, parts={"decoder": size - 10, "header": 10},
        original_size=len(original), original_sha256=hashlib.sha256(original).hexdigest(),
    )


def make_archive(folder: Path, name: str, body: str, original: bytes = ORIGINAL) -> Path:
    """A zipapp whose __main__ runs `body` with DATA (the honest bytes) and `out` defined."""
    src = folder / f"{name}-src"
    src.mkdir()
    (src / "__main__.py").write_text(f"DATA = {ORIGINAL!r}\n{PROLOGUE}{body}\n")
    archive = folder / f"{name}.arc"
    zipapp.create_archive(src, archive)
    claims_path(archive).write_bytes(original)
    return archive


# `verify` in a subprocess, as a user runs it: its command line holds --expect, which is what
# a cheating archive looks for in /proc/$PPID/cmdline.
VERIFY_SUBPROCESS = (
    "import sys, types\n"
    "sys.path.insert(0, sys.argv.pop(1))\n"
    "import fake_archives\n"
    "module = types.ModuleType('submissions.archive')\n"
    "module.inspect = fake_archives.fake_inspect\n"
    "sys.modules['submissions.archive'] = module\n"
    "from verify.cli import app\n"
    "app(sys.argv[1:], prog_name='verify')\n"
)


def verify_command(*args) -> list[str]:
    return [sys.executable, "-c", VERIFY_SUBPROCESS, str(Path(__file__).parent), "run", *map(str, args)]


def read_report(archive: Path) -> dict:
    return json.loads(archive.with_name(archive.name + ".verify.json").read_text())
