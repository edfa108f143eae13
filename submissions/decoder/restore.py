"""Restore the original file from an archive: `python ARCHIVE -o OUT`.

Reads and checks the archive, rebuilds the model from the header, decodes the
payload, maps tokens back to bytes, checks length and sha256, and only then
writes the output (atomically). Any failure is one line on stderr, exit 1.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time

from . import FORMAT_VERSION, codec
from .container import MODEL, PAYLOAD, TOKENIZER, ArchiveCorrupt, read_archive
from .model_registry import build_model
from .rans import CorruptPayload
from .tokens import detokenize, unpack_table


class RestoreError(Exception):
    pass


def restore_bytes(header: dict, sections: dict, progress=None) -> bytes:
    """Decode the original bytes and prove them by length and sha256."""
    if header.get("format_version") != FORMAT_VERSION:
        raise RestoreError(f"archive format {header.get('format_version')} is not {FORMAT_VERSION}, the one this decoder reads")
    config = header["config"]
    table = unpack_table(sections[TOKENIZER])
    n_streams = header["n_streams"]
    prob_bits = config["coder"]["prob_bits"]
    model = build_model(header["model"], len(table), n_streams, prob_bits, sections.get(MODEL, b""), token_bytes=table)
    try:
        tokens = codec.decode(model, sections[PAYLOAD], header["n_tokens"], n_streams, prob_bits, progress)
    except CorruptPayload as exc:
        raise RestoreError(f"payload does not decode: {exc}") from None
    data = detokenize(tokens, table)
    original = header["original"]
    if len(data) != original["size"] or hashlib.sha256(data).hexdigest() != original["sha256"]:
        raise RestoreError("restored data fails its length/sha256 check; nothing was written")
    return data


def write_atomically(path: str, data: bytes) -> None:
    tmp = f"{path}.partial-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _text_progress(started: float):
    """A light progress line on stderr (the archive carries no progress library)."""
    last = [0.0]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 1.0 or done == total:
            last[0] = now
            rate = done / max(now - started, 1e-9)
            eta = (total - done) / max(rate, 1e-9)
            sys.stderr.write(f"\rdecoding: {100 * done // max(total, 1):3d}%  step {done}/{total}  eta {eta:5.0f}s")
            if done == total:
                sys.stderr.write("\n")
            sys.stderr.flush()

    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python ARCHIVE", description="Restore the file stored in this archive.")
    parser.add_argument("-o", "--output", required=True, help="where to write the restored file")
    parser.add_argument("--force", action="store_true", help="replace an existing output file")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    parser.add_argument("--archive", default=sys.argv[0], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        if os.path.exists(args.output) and not args.force:
            raise RestoreError(f"{args.output} already exists (use --force to replace it)")
        if os.path.abspath(args.output) == os.path.abspath(args.archive):
            raise RestoreError("the output would overwrite the archive itself")
        header, sections = read_archive(args.archive)
        progress = None if args.quiet or not sys.stderr.isatty() else _text_progress(time.monotonic())
        data = restore_bytes(header, sections, progress)
        write_atomically(args.output, data)
    except (RestoreError, ArchiveCorrupt, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
