"""The field's strongest programs, measured elsewhere: rows for the board that this machine
cannot produce (paq8px, cmix and lstm-compress do not install here).

Each `benchmarks/results/peers_*.json` holds one file's measurements on another machine
(sizes, times, builds, command lines) and its caveats. A row is shown only beside the exact
file it was measured on (md5), marked "measured elsewhere", with every caveat: the compressed
file only (the decompressor is not counted, unlike our archives), a dictionary the
decompressor needs but the size leaves out, a size never decompressed to check it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

PEERS_DIR = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


@dataclass(frozen=True)
class Peer:
    name: str
    total_bytes: int
    compress_seconds: Optional[float]
    decompress_seconds: Optional[float]
    peak_bytes: Optional[int]
    caveats: tuple[str, ...]  # short, for the table: "dictionary not counted", "not round-trip checked"
    source: str  # the build and the command line
    measured: str  # the peers file: where and when it was measured, and its note


def _caveats(row: dict) -> tuple[str, ...]:
    caveats = []
    if "not counted" in row["name"] + row.get("build", ""):  # e.g. "(english.dic not counted)"
        caveats.append("dictionary not counted")
    if not row.get("round_trip"):
        caveats.append("not round-trip checked")
    return tuple(caveats)


def peers_for(md5: str, folder: Path = PEERS_DIR) -> list[Peer]:
    """The rows measured elsewhere on exactly this file (md5), from every peers file in folder."""
    peers = []
    for path in sorted(Path(folder).glob("peers_*.json")):
        raw = json.loads(path.read_text())
        if raw["file"]["md5"].lower() != md5.lower():
            continue
        measured = f"`benchmarks/results/{path.name}`: {raw['measured']}. {raw.get('note', '')}".strip()
        for row in raw["rows"]:
            source = f"build {row['build']}; `{row['command']}`"
            peak = row.get("peak_mib")
            peers.append(Peer(
                name=row["name"], total_bytes=int(row["bytes"]), compress_seconds=row.get("compress_s"),
                decompress_seconds=row.get("decompress_s"), peak_bytes=None if peak is None else int(peak * 2**20),
                caveats=_caveats(row), source=source, measured=measured,
            ))
    return peers
