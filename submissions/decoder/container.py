"""The data members of an archive: a JSON header and binary sections (the reading side;
submissions/archive.py writes them).

An archive is a zip application: the decoder's modules, a `__main__.py`, and
the members below. Zip gives each member a CRC-32; the header adds a sha256 per
section and the sha256 of the original file, which the decoder checks before it
writes anything.
"""

from __future__ import annotations

import hashlib
import json
import zipfile

HEADER = "header.json"
TOKENIZER = "tokenizer.bin"
MODEL = "model.bin"
PAYLOAD = "payload.bin"


class ArchiveCorrupt(Exception):
    """The archive fails a checksum or is not an archive of this format."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_archive(path: str) -> tuple[dict, dict]:
    """(header, sections) of the archive at path; ArchiveCorrupt on any failed check."""
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()  # every member's CRC, the decoder's own code included
            if bad is not None:
                raise ArchiveCorrupt(f"member {bad} fails its CRC-32")
            header = json.loads(zf.read(HEADER).decode("utf-8"))
            sections = {name: zf.read(name) for name in header["sections"]}
    except (ArchiveCorrupt, FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception as exc:  # untrusted bytes: zip, zlib, json and struct can all fail
        raise ArchiveCorrupt(f"not a readable archive ({type(exc).__name__}: {exc})") from None
    for name, digest in header["sections"].items():
        if sha256_hex(sections[name]) != digest:
            raise ArchiveCorrupt(f"section {name} fails its sha256")
    return header, sections
