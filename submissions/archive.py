"""Writing and inspecting archives (project side).

An archive is one zip application holding everything needed to restore the file:
the decoder program (submissions/decoder, comments and docstrings stripped), a
`__main__.py` that runs it, the JSON header and the binary sections. Its size on
disk is the score; `inspect` splits that size into parts that add up exactly.
"""

from __future__ import annotations

import ast
import io
import tokenize
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import UserError
from pipeline.fileio import atomic_write_bytes, check_output, require_file
from submissions.decoder import FORMAT_VERSION
from submissions.decoder.model_registry import unused_modules
from submissions.decoder.container import (
    HEADER,
    MODEL,
    PAYLOAD,
    TOKENIZER,
    ArchiveCorrupt,
    add_member,
    read_archive,
    write_data_members,
)

DECODER_DIR = Path(__file__).resolve().parent / "decoder"
PACKAGE = "decoder"  # the decoder's package name inside an archive
BOOTSTRAP = "import sys\nfrom decoder.restore import main\nsys.exit(main())\n"
PART_OF_MEMBER = {HEADER: "header", TOKENIZER: "tokenizer", MODEL: "model", PAYLOAD: "payload"}
ZIP_END_RECORD = 22  # bytes of the end-of-central-directory record (no comment)


class ArchiveError(UserError):
    """A file that is not a valid archive or fails its checksums."""


@dataclass(frozen=True)
class ArchiveInfo:
    path: Path
    total_bytes: int
    parts: dict[str, int]
    original_size: int
    original_sha256: str
    runtime: list[str]
    config: dict
    header: dict = field(repr=False)


def _docstring_nodes(tree: ast.AST) -> list[tuple[ast.AST, ast.Expr]]:
    """(owner, docstring statement) for the module, every class and every function."""
    found = []
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                found.append((node, body[0]))
    return found


def _without_docstrings(tree: ast.Module) -> str:
    """AST dump with the module docstring dropped and every other docstring replaced by
    `pass` (a body must not be empty): exactly what stripping may change."""
    for owner, docstring in _docstring_nodes(tree):
        if owner is tree:
            tree.body = tree.body[1:]
        else:
            owner.body[0] = ast.Pass()
    return ast.dump(tree, include_attributes=False)


def strip_source(source: str) -> str:
    """Same program, fewer bytes: comments and the module docstring dropped, other docstrings replaced by `pass`.

    Edits are made in the original text (never re-generated from the AST), so the
    archive runs on every Python version the source itself runs on; the result is
    checked to parse to the same AST, else the source is shipped unchanged.
    """
    lines = [line.encode("utf-8") for line in source.splitlines(keepends=True)]
    cuts = []  # (first line, first col, last line, end col, replacement); lines 1-based, cols in bytes
    tree = ast.parse(source)
    for owner, node in _docstring_nodes(tree):
        replacement = b"" if owner is tree else b"pass"  # nothing may precede `from __future__`
        cuts.append((node.lineno, node.col_offset, node.end_lineno, node.end_col_offset, replacement))
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            row, col = token.start
            start = len(token.line[:col].encode("utf-8"))
            cuts.append((row, start, row, start + len(token.string.encode("utf-8")), b""))
    for first, col, last, end_col, replacement in sorted(cuts, reverse=True):
        head, tail = lines[first - 1][:col], lines[last - 1][end_col:]
        lines[first - 1 : last] = [head + replacement + tail]
    stripped = "\n".join(line.rstrip() for line in b"".join(lines).decode("utf-8").splitlines()) + "\n"
    if _without_docstrings(ast.parse(stripped)) != _without_docstrings(ast.parse(source)):
        return source  # never ship a program that differs from the tested one
    return stripped


def decoder_program(model_kind: str) -> dict[str, bytes]:
    """Archive member name -> source bytes of the decoder program for this model kind."""
    files = {"__main__.py": BOOTSTRAP.encode()}
    skip = unused_modules(model_kind)
    for source in sorted(DECODER_DIR.glob("*.py")):
        if source.stem in skip:
            continue
        files[f"{PACKAGE}/{source.name}"] = strip_source(source.read_text("utf-8")).encode("utf-8")
    return files


def build_archive(header: dict, sections: dict[str, bytes]) -> bytes:
    header = dict(header, format_version=FORMAT_VERSION)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, source in decoder_program(header["model"]["kind"]).items():
            add_member(zf, name, source, compress=True)
        write_data_members(zf, header, sections)
    return buffer.getvalue()


def write_archive(path: Path, header: dict, sections: dict[str, bytes], force: bool = False) -> int:
    """Write the archive atomically; return its size in bytes."""
    check_output(path, force)
    blob = build_archive(header, sections)
    atomic_write_bytes(path, blob)
    return len(blob)


def _member_bytes(info: zipfile.ZipInfo) -> int:
    """All bytes a member occupies: local header, data, central directory entry."""
    name = len(info.filename.encode("utf-8"))
    local = 30 + name + len(info.extra)
    central = 46 + name + len(info.extra) + len(info.comment)
    return local + info.compress_size + central


def archive_parts(path: Path) -> dict[str, int]:
    """Bytes per part; the decoder part includes the zip's end record, so parts sum to the file size."""
    parts = {"decoder": ZIP_END_RECORD, "tokenizer": 0, "model": 0, "payload": 0, "header": 0}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            parts[PART_OF_MEMBER.get(info.filename, "decoder")] += _member_bytes(info)
    return parts


def inspect(path: Path) -> ArchiveInfo:
    """Check an archive (every CRC and sha256) and describe it; ArchiveError if it is bad."""
    path = require_file(Path(path), "archive")
    try:
        header, _ = read_archive(str(path))
    except ArchiveCorrupt as exc:
        raise ArchiveError(f"{path}: corrupted or not an archive: {exc}") from None
    parts = archive_parts(path)
    total = path.stat().st_size
    if sum(parts.values()) != total:
        raise ArchiveError(f"{path}: zip layout has {total - sum(parts.values())} unaccounted bytes")
    return ArchiveInfo(
        path=path,
        total_bytes=total,
        parts=parts,
        original_size=header["original"]["size"],
        original_sha256=header["original"]["sha256"],
        runtime=list(header["runtime"]),
        config=header["config"],
        header=header,
    )
