"""The data members of an archive: a JSON header and binary sections.

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
SECTIONS = (TOKENIZER, MODEL, PAYLOAD)
FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # reproducible archives: same input, same bytes


class ArchiveCorrupt(Exception):
    """The archive fails a checksum or is not an archive of this format."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def add_member(zf: zipfile.ZipFile, name: str, data: bytes, compress: bool) -> None:
    info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    info.create_system = 3  # unix, so the bytes do not depend on the packing OS
    info.external_attr = 0o644 << 16
    zf.writestr(info, data, compresslevel=9 if compress else None)


def write_data_members(zf: zipfile.ZipFile, header: dict, sections: dict) -> None:
    """Header (deflated JSON) then the sections (stored: they are compressed already)."""
    header = dict(header, sections={name: sha256_hex(data) for name, data in sections.items()})
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    add_member(zf, HEADER, text, compress=True)
    for name, data in sections.items():
        add_member(zf, name, data, compress=False)


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
