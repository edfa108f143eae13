"""Restore the original file from an archive: `python ARCHIVE -o OUT`.

Reads and checks the archive, rebuilds the model from the header, decodes the
payload shard by shard (`--jobs N`: in N processes), maps tokens back to bytes
and streams them into a temporary file while hashing them; only when length and
sha256 match is that file renamed onto the output. Any failure, whatever the damage to the
archive, is one `error:` line on stderr, exit 2, and nothing at the output path.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time

from . import codec
from .container import MODEL, PAYLOAD, TOKENIZER, ArchiveCorrupt, read_archive
from .header import Header, HeaderError
from .model_registry import build_model
from .rans import CorruptPayload
from .tokens import iter_detokenized, unfold_case, unpack_table


class RestoreError(Exception):
    pass


def check_format(header: dict) -> Header:
    """The header's structure (header.py), before anything it sizes is allocated."""
    try:
        return Header.parse(header)
    except HeaderError as exc:
        raise RestoreError(str(exc)) from None


def shard_payload(header: dict, sections: dict, index: int) -> bytes:
    """Shard `index`'s payload, cut from the payload section by the sizes the header records."""
    sizes = [shard["bytes"] for shard in header["coding"]["shards"]]
    if sum(sizes) != len(sections[PAYLOAD]):
        raise RestoreError("payload size does not match its shards")
    start = sum(sizes[:index])
    return sections[PAYLOAD][start : start + sizes[index]]


def decode_shard(header: dict, sections: dict, index: int, progress=None):
    """Token ids of shard `index`, decoded with a fresh model (shards share nothing)."""
    check_format(header)
    table = unpack_table(sections[TOKENIZER])
    shard = header["coding"]["shards"][index]
    prob_bits = header["coding"]["prob_bits"]
    model = build_model(header["model"], len(table), shard["streams"], prob_bits, sections.get(MODEL, b""), token_bytes=table)
    try:
        payload = shard_payload(header, sections, index)
        return codec.decode(model, payload, shard["tokens"], shard["streams"], prob_bits, progress, header["coding"]["block_steps"])
    except CorruptPayload as exc:
        raise RestoreError(f"payload does not decode: {exc}") from None


def decode_shards(header: dict, sections: dict, progress=None, jobs: int = 1):
    """Every shard's ids in order. progress(done, total) counts coding steps over all shards.
    jobs > 1 decodes shards in that many processes (forked, where the OS can: the archive's
    modules are loaded already; elsewhere one after another)."""
    shards = header["coding"]["shards"]
    import multiprocessing

    if jobs > 1 and len(shards) > 1 and "fork" in multiprocessing.get_all_start_methods():
        global _ARCHIVE
        _ARCHIVE = header, sections  # forked workers inherit it: the payload is not copied per job
        with multiprocessing.get_context("fork").Pool(min(jobs, len(shards))) as pool:
            yield from pool.imap(_decode_shard_job, range(len(shards)))
        return
    steps = [-(-shard["tokens"] // max(shard["streams"], 1)) for shard in shards]  # the longest stream's
    for index in range(len(shards)):
        report = None if progress is None else (lambda d, t, base=sum(steps[:index]): progress(base + d, sum(steps)))
        yield decode_shard(header, sections, index, report)


_ARCHIVE = None  # (header, sections) for forked decoding workers


def _decode_shard_job(index: int):
    return decode_shard(*_ARCHIVE, index)


def write_restored(header: dict, sections: dict, shard_tokens, path: str) -> None:
    """Detokenize the shards' ids into a temporary file beside `path`, unfolding capitals where
    the header names marks, hashing as it goes; rename it onto `path` only when length and
    sha256 are the original's."""
    table = unpack_table(sections[TOKENIZER])
    original, case = header["original"], header.get("case")
    digest, size = hashlib.sha256(), 0
    tmp = f"{path}.partial-{os.getpid()}"
    pieces = (piece for tokens in shard_tokens for piece in iter_detokenized(tokens, table))
    try:
        with open(tmp, "wb") as f:
            for piece in pieces if case is None else unfold_case(pieces, case):
                digest.update(piece)
                size += len(piece)
                f.write(piece)
        if size != original["size"] or digest.hexdigest() != original["sha256"]:
            raise RestoreError("restored data fails its length/sha256 check; nothing was written")
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


def _refuse_output(output: str, archive: str, force: bool) -> None:
    """The output must not be the archive by any name (symlink, hard link), nor a folder."""
    if os.path.isdir(output):
        raise RestoreError(f"{output} is a folder; give a file name")
    if os.path.exists(output):
        if os.path.samefile(output, archive):
            raise RestoreError("the output would overwrite the archive itself")
        if not force:
            raise RestoreError(f"{output} already exists (use --force to replace it)")


def _remove_leftovers(output: str) -> None:
    """Temporary files of killed restores of this output (NAME.partial-PID, the PID dead)."""
    folder, name = os.path.split(os.path.abspath(output))
    for entry in os.listdir(folder or "."):
        pid = entry[len(name) + 9 :]
        if entry.startswith(name + ".partial-") and pid.isdigit():
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                os.unlink(os.path.join(folder, entry))
            except OSError:
                pass


def _error(message) -> int:
    sys.stderr.write("error: " + " ".join(str(message).split()) + "\n")
    return 2


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python ARCHIVE", description="Restore the file stored in this archive.")
    parser.error = lambda message: sys.exit(_error(message))  # one line, not usage + error
    parser.add_argument("-o", "--output", required=True, help="where to write the restored file")
    parser.add_argument("--force", action="store_true", help="replace an existing output file")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="decode shards in this many processes")
    parser.add_argument("--archive", default=sys.argv[0], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        _refuse_output(args.output, args.archive, args.force)
        if args.jobs < 1:
            raise RestoreError("--jobs must be at least 1")
        _remove_leftovers(args.output)
        header, sections = read_archive(args.archive)
        check_format(header)
        progress = None if args.quiet or args.jobs > 1 or not sys.stderr.isatty() else _text_progress(time.monotonic())
        write_restored(header, sections, decode_shards(header, sections, progress, args.jobs), args.output)
        jit = sys.modules.get(f"{__package__}.jit")  # loaded by the models with compiled kernels only
        if jit is not None and jit.COMPILE_SECONDS[0]:
            print(f"decoder: kernels compiled in {jit.COMPILE_SECONDS[0]:.2f} s", file=sys.stderr)  # verify reports it
    except (RestoreError, ArchiveCorrupt, OSError) as exc:
        return _error(exc)
    except Exception as exc:  # any other damage the checksums let through: still one line, nothing written
        return _error(f"corrupted archive: it does not decode ({type(exc).__name__}: {exc})")
    return 0
