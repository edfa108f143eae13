"""The data of an archive (the reading side; submissions/archive.py writes it).

An archive is a zip application of these members:

    __main__.py   the bootstrap: unpacks `d` and runs decoder.restore
    d             one LZMA stream of "name\\nsource" parts joined by NUL: the decoder's modules
                  and, as the part `h`, the JSON header; for the compiled models, only the
                  modules that run the model, and after the stream the rest of the program,
                  coded by the model (program.py); then the sections the header sizes, in name
                  order: `m` a neural model's weights, `p` the payload, `t` the tokenizer table
                  (one member for all: each member costs ~80 bytes of zip records)

Zip gives the members a CRC-32, checked before anything is read; the header gives the sha256 of
the original file, checked before the restored file is written.
"""

from __future__ import annotations

import json
import lzma
import zipfile

PROGRAM = "d"
HEADER = "h"  # a part of PROGRAM: it shares the program's LZMA stream (its key names are the program's words)
TOKENIZER = "t"
MODEL = "m"
PAYLOAD = "p"


class ArchiveCorrupt(Exception):
    """The archive fails a checksum or is not an archive of this format."""


def program_parts(blob: bytes) -> dict[str, str]:
    """Part name -> text of the PROGRAM member's LZMA stream (what the bootstrap reads first;
    the bytes after the stream are the program's coded second part, program.py)."""
    return dict(part.split("\n", 1) for part in lzma.LZMADecompressor().decompress(blob).decode("utf-8").split("\0"))


def read_archive(path: str) -> tuple[dict, dict]:
    """(header, sections) of the archive at path; ArchiveCorrupt on any failed check."""
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()  # every member's CRC, the decoder's own code and the header included
            if bad is not None:
                raise ArchiveCorrupt(f"member {bad} fails its CRC-32")
            blob = zf.read(PROGRAM)
        header = json.loads(program_parts(blob)[HEADER])
        sections = split_sections(blob, header["sections"])
    except (ArchiveCorrupt, FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception as exc:  # untrusted bytes: zip, lzma, json and struct can all fail
        raise ArchiveCorrupt(f"not a readable archive ({type(exc).__name__}: {exc})") from None
    return header, sections


def split_sections(blob: bytes, sizes: dict) -> dict[str, bytes]:
    """The sections (name -> bytes) that end the PROGRAM member, one after another in name
    order, sized by the header."""
    end, sections = len(blob), {}
    for name in sorted(sizes, reverse=True):  # the last one ends the member
        if not 0 <= sizes[name] <= end:
            raise ArchiveCorrupt("the header's section sizes do not fit the archive")
        sections[name], end = blob[end - sizes[name] : end], end - sizes[name]
    return sections
