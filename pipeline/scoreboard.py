"""`pipeline scoreboard`: our verified archives beside the field, measured in one run.

For one data file the board holds, ordered by total bytes:

* our archives that passed `verify run` (pipeline/verified.py says which count and why);
* every baseline of pipeline/baselines.py, measured now on the same bytes and
  round-trip checked (Python modules, then external programs; absent ones listed as
  not found, broken ones as failed — never as a size);
* published results of the field, only when the file's md5 says it is exactly enwik8 or
  enwik9 (pipeline/published.py), labelled with their source;
* the field's strongest programs measured elsewhere on exactly this file (md5;
  pipeline/peers.py), marked so, with their caveats.

`markdown()` and `terminal_table()` render it; pipeline/plot.py draws it.
"""

from __future__ import annotations

import datetime
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from pipeline.baselines import BASELINES, EXTERNAL, BaselineResult, measure_all
from pipeline.memory import PROCESS_RSS, RSS_GROWTH, helper_floor
from pipeline.peers import Peer, peers_for
from pipeline.published import Published, known_file, published_for
from pipeline.verified import FileDigests, Ours, Refusal, current_rows, file_digests, our_rows

PART_LABELS = {"decoder": "decoder", "tokenizer": "tokenizer", "model": "weights", "payload": "payload", "header": "header"}
MEMORY_MARK = {PROCESS_RSS: "", RSS_GROWTH: "†"}


@dataclass(frozen=True)
class Row:
    name: str
    kind: str  # "ours", "module" (Python), "program" (external), "published", "peer" (measured elsewhere)
    status: str  # "verified", "recorded", "measured", "published", "measured elsewhere", "not found", "failed", "skipped"
    original_bytes: int
    total_bytes: Optional[int] = None
    compress_seconds: Optional[float] = None
    decompress_seconds: Optional[float] = None
    compress_peak_bytes: Optional[int] = None
    decompress_peak_bytes: Optional[int] = None
    memory_method: Optional[str] = None
    parts: Optional[dict[str, int]] = None
    note: str = ""
    caveats: tuple[str, ...] = ()  # shown beside the kind (rows measured elsewhere)

    @property
    def on_board(self) -> bool:
        """Has a size to rank (not found / failed / skipped rows are listed, not ranked)."""
        return self.total_bytes is not None

    @property
    def bits_per_byte(self) -> Optional[float]:
        if self.total_bytes is None or not self.original_bytes:
            return None
        return 8 * self.total_bytes / self.original_bytes

    @property
    def ratio(self) -> Optional[float]:
        if not self.total_bytes or not self.original_bytes:
            return None
        return self.original_bytes / self.total_bytes


@dataclass(frozen=True)
class Board:
    file: FileDigests
    rows: list[Row]  # ranked rows first (by total bytes), then the unranked ones
    refusals: list[Refusal] = field(default_factory=list)
    other_reports: int = 0  # live reports about other files (ignored)
    commands: dict[str, str] = field(default_factory=dict)  # external program -> command lines
    date: str = ""
    machine: str = ""
    memory_floor: Optional[int] = None  # the smallest process peak the helper can report (pipeline/memory.py)
    elsewhere: list[str] = field(default_factory=list)  # where and when the rows measured elsewhere were measured
    left_off: list[str] = field(default_factory=list)  # our earlier archives, not shown (build_board's history)
    history: bool = False  # every archive of ours shown

    @property
    def known_as(self) -> Optional[str]:
        return known_file(self.file.md5)

    @property
    def ours(self) -> list[Row]:
        return [r for r in self.rows if r.kind == "ours"]

    @property
    def best_ours(self) -> Optional[Row]:
        return min(self.ours, key=lambda r: r.total_bytes or 0, default=None)


def _row_of_ours(ours: Ours) -> Row:
    when = ours.verified_on[:10]
    note = (
        f"verified {when}; archive re-checked now (sha256 {ours.archive_sha256[:12]}…)"
        if ours.status == "verified"
        else f"recorded: verified {when}, archive sha256 {ours.archive_sha256[:12]}… (not re-checked here)"
    )
    return Row(
        name=ours.name, kind="ours", status=ours.status, original_bytes=ours.original_bytes,
        total_bytes=ours.total_bytes, compress_seconds=ours.compress_seconds, decompress_seconds=ours.decode_seconds,
        decompress_peak_bytes=ours.decode_peak_rss_bytes, memory_method=PROCESS_RSS if ours.decode_peak_rss_bytes else None,
        parts=ours.parts, note=note,
    )


def _row_of_baseline(result: BaselineResult) -> Row:
    kind = "program" if result.name in EXTERNAL else "module"
    common = dict(name=result.name, kind=kind, original_bytes=result.original_bytes)
    if not result.available:
        where = "not on PATH" if kind == "program" else "Python module not installed"
        return Row(status="not found", note=where, **common)
    if not result.round_trip_ok:
        return Row(status="failed", note=result.error or "round trip failed", **common)
    return Row(
        status="measured", total_bytes=result.compressed_bytes, compress_seconds=result.compress_seconds,
        decompress_seconds=result.decompress_seconds, compress_peak_bytes=result.compress_peak_bytes,
        decompress_peak_bytes=result.decompress_peak_bytes, memory_method=result.memory_method,
        note="round trip checked", **common,
    )


def _row_of_published(row: Published, original_bytes: int) -> Row:
    counted = "decompressor included" if row.counts_decoder else "compressed file only, decompressor not counted"
    note = f"published ({counted}{'; ' + row.note if row.note else ''}); source: {row.source}"
    return Row(name=row.name, kind="published", status="published", original_bytes=original_bytes, total_bytes=row.total_bytes, note=note)


def _row_of_peer(peer: Peer, original_bytes: int) -> Row:
    peak = f"peak {peer.peak_bytes / 2**20:,.0f} MiB; " if peer.peak_bytes else ""
    note = f"measured elsewhere, compressed file only (decompressor not counted); {peak}{peer.source}"
    return Row(
        name=peer.name, kind="peer", status="measured elsewhere", original_bytes=original_bytes, total_bytes=peer.total_bytes,
        compress_seconds=peer.compress_seconds, decompress_seconds=peer.decompress_seconds, note=note, caveats=peer.caveats,
    )


def build_board(
    data_path: Path,
    reports: list[Path],
    records_dir: Optional[Path],
    baselines: Optional[list[str]] = None,
    skipped: tuple[str, ...] = (),
    progress: Optional[Callable[[int, int, str], None]] = None,
    history: bool = False,
) -> Board:
    """Measure every requested baseline on the file and gather our rows and the published ones.
    Of ours, the smallest and newest of each model kind and way of packing; history: every one."""
    digests = file_digests(data_path)
    ours, refusals, other = our_rows(reports, records_dir, digests)
    ours, earlier = (ours, []) if history else current_rows(ours)
    names = [n for n in (baselines if baselines is not None else list(BASELINES)) if n not in skipped]
    results = measure_all(Path(data_path).read_bytes(), names, progress)
    rows = [_row_of_ours(o) for o in ours] + [_row_of_baseline(r) for r in results]
    rows += [_row_of_published(p, digests.size) for p in published_for(digests.md5)]
    peers = peers_for(digests.md5)
    rows += [_row_of_peer(p, digests.size) for p in peers]
    rows += [Row(name=n, kind="program" if n in EXTERNAL else "module", status="skipped", original_bytes=digests.size, note="--skip") for n in skipped]
    ranked = sorted((r for r in rows if r.on_board), key=lambda r: (r.total_bytes, r.kind != "ours"))
    commands = {n: BASELINES[n].command for n in names if BASELINES[n].command}
    ran_programs = any(r.memory_method == PROCESS_RSS for r in results)
    return Board(
        file=digests, rows=ranked + [r for r in rows if not r.on_board], refusals=refusals, other_reports=other,
        commands=commands, date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        machine=machine_line(), memory_floor=helper_floor() if ran_programs else None,
        elsewhere=sorted({p.measured for p in peers}), left_off=[o.name for o in earlier], history=history,
    )


def machine_line() -> str:
    from verify.report import machine

    facts = machine()
    memory = f", {facts['memory_bytes'] / 2**30:.0f} GiB" if facts.get("memory_bytes") else ""
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""  # timings on a shared machine
    return (
        f"{facts['processor'] or facts['machine']}, {facts['cpus_usable'] or facts['cpu_count']} CPUs{memory}{load}, "
        f"{platform.system()} {platform.machine()}, Python {platform.python_version()}"
    )


# --- rendering ---------------------------------------------------------------------------------


def _num(value: Optional[int]) -> str:
    return "–" if value is None else f"{value:,}"


def _seconds(value: Optional[float]) -> str:
    if value is None:
        return "–"
    return f"{value:.3f}" if value < 1 else f"{value:,.1f}"


def _mib(value: Optional[int], method: Optional[str]) -> str:
    if value is None:
        return "–"
    mib = value / 2**20
    return (f"{mib:.1f}" if mib < 10 else f"{mib:,.0f}") + MEMORY_MARK.get(method or "", "")


def memory_cell(row: Row) -> str:
    if row.compress_peak_bytes is None and row.decompress_peak_bytes is None:
        return "–"
    return f"{_mib(row.compress_peak_bytes, row.memory_method)} / {_mib(row.decompress_peak_bytes, row.memory_method)}"


def parts_cell(row: Row) -> str:
    if not row.parts:
        return ""
    return " + ".join(f"{PART_LABELS.get(k, k)} {v:,}" for k, v in row.parts.items())


def status_cell(row: Row) -> str:
    if row.kind == "ours":
        return "ours, verified (re-checked)" if row.status == "verified" else "ours, recorded"
    if row.status == "measured":
        return "Python module" if row.kind == "module" else "external program"
    return ", ".join((row.status, *row.caveats))


COLUMNS = ("compressor", "kind", "total bytes", "bits/byte", "ratio", "compress s", "decompress s", "peak MiB c / d", "parts (ours)")


def cells(row: Row, best: Optional[Row]) -> list[str]:
    """`best`: our smallest archive, marked when there is more than one of ours (else None)."""
    name = row.name + (" **(best of ours)**" if row is best else "")
    return [
        name,
        status_cell(row),
        _num(row.total_bytes),
        "–" if row.bits_per_byte is None else f"{row.bits_per_byte:.4f}",
        "–" if row.ratio is None else f"{row.ratio:.2f}",
        _seconds(row.compress_seconds),
        _seconds(row.decompress_seconds),
        memory_cell(row),
        parts_cell(row),
    ]


def legend(board: Board) -> list[str]:
    lines = [
        "- **total bytes** is everything needed to restore the file: for our archives the decoder program, tokenizer "
        "table, weights, payload and header (the parts add up to it); for a baseline its compressed file.",
        "- **ratio** = original bytes / total bytes; **bits/byte** = 8 × total / original.",
        "- **ours**: compress s = `pipeline train` + `pipeline pack`; decompress s and peak = `verify run` decoding in its "
        "clean environment (one thread). *verified (re-checked)*: a live report whose archive was re-hashed now; "
        "*recorded*: a committed record in `submissions/results/` whose file md5/sha256 equal this file's (the archive "
        "itself is not committed, so it is not re-checked).",
        "- **peak MiB c / d** (compress / decompress): plain numbers are the peak RSS of the program's own process "
        "(wait4): external programs, and our decoder as `verify run` measured it. † marks a Python module measured "
        "inside this process: how far the work raised the process's peak RSS (VmHWM after minus VmRSS before), which "
        "leaves out the interpreter itself." + _floor_note(board),
        "- Every baseline was compressed, decompressed and compared byte for byte in this run; one that fails is listed "
        "as failed, one that is absent as not found.",
    ]
    if any(r.kind == "peer" for r in board.rows):
        lines.append(
            "- *measured elsewhere*: the field's strongest programs, which do not install here, as measured on another "
            "machine (pipeline/peers.py; builds and command lines under *Where rows come from*); their size is the "
            "compressed file only, and the caveats of each row (a dictionary not counted, no round-trip check) stand "
            "beside it. Measured: " + " ".join(board.elsewhere)
        )
    if board.known_as:
        lines.append(f"- md5 {board.file.md5} is exactly {board.known_as}: published rows are shown, not measured here.")
    else:
        lines.append(f"- md5 {board.file.md5} is neither enwik8 nor enwik9: no published rows (they hold only for those exact files).")
    return lines


def left_off_line(board: Board) -> str:
    n = len(board.left_off)
    return (
        f"{n} earlier archive{'s' * (n > 1)} of ours left off: of each model kind and way of packing (tree order, shards) "
        f"the board shows the smallest and the newest verified archive (`pipeline scoreboard --history` shows all {len(board.ours) + n})."
    )


def _floor_note(board: Board) -> str:
    if board.memory_floor is None:
        return ""
    return (
        f" External programs are started by a small helper that forks them (so they do not inherit this process's "
        f"memory); its floor is {board.memory_floor / 2**20:.1f} MiB, so a value there means at most that."
    )


def markdown(board: Board) -> str:
    best = board.best_ours if len(board.ours) > 1 else None
    lines = [
        f"# Scoreboard: {board.file.path.name} ({board.file.size:,} bytes)",
        "",
        f"{board.date[:10]}, {board.machine}. md5 `{board.file.md5}`. Command: `pipeline scoreboard {board.file.path}{' --history' * board.history}`.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join(["---", "---", *["---:"] * 6, "---"]) + "|",
    ]
    for row in board.rows:
        if row.on_board:
            lines.append("| " + " | ".join(cells(row, best)) + " |")
    if board.left_off:
        lines += ["", left_off_line(board)]
    missing = [r for r in board.rows if not r.on_board]
    if missing:
        lines += ["", "Not on the board:", ""]
        lines += [f"- {r.name}: {r.status}{' (' + r.note + ')' if r.note else ''}" for r in missing]
    lines += ["", "Notes:", "", *legend(board)]
    notes = [r for r in board.rows if r.kind in ("ours", "published", "peer")]
    if notes:
        lines += ["", "Where rows come from:", ""]
        lines += [f"- {r.name}: {r.note}" for r in notes]
    if board.commands:
        lines += ["", "How each baseline was run (external programs on temp files, exactly as a user would):", ""]
        lines += [f"- {name}: `{command}`" for name, command in board.commands.items()]
    if board.refusals:
        lines += ["", "Refused (left off the board):", ""]
        lines += [f"- `{r.source}`: {r.reason}" for r in board.refusals]
    if board.other_reports:
        lines += ["", f"{board.other_reports} verification report(s) found were about other files and were ignored."]
    return "\n".join(lines) + "\n"


SHORT_KIND = {"ours": "ours", "module": "module", "program": "program", "published": "published", "peer": "elsewhere"}


def terminal_table(board: Board):
    """The board for a terminal: the markdown's columns, with our parts on their own line."""
    from rich.table import Table

    best = board.best_ours if len(board.ours) > 1 else None
    table = Table(title=f"{board.file.path.name}: {board.file.size:,} bytes, md5 {board.file.md5}", caption=_caption(board))
    for column in COLUMNS[:-1]:
        table.add_column(column, justify="left" if column in ("compressor", "kind") else "right")
    for row in board.rows:
        values = cells(row, best)[:-1]
        values[0] = values[0].replace("**", "")
        if row.on_board:
            kind = row.status if row.kind == "ours" else ", ".join((SHORT_KIND[row.kind], *row.caveats))
            table.add_row(values[0], kind, *values[2:], style="bold green" if row.kind == "ours" else ("dim" if row.kind in ("published", "peer") else None))
            if row.parts:
                table.add_row("  " + parts_cell(row), "", *[""] * 6, style="green")
        else:
            table.add_row(row.name, f"{row.status}: {row.note}"[:40], *["–"] * 6, style="yellow")
    return table


def _caption(board: Board) -> str:
    return (
        "ours: compress = train + pack, decompress = verify run's clean decode; peak MiB = compress / decompress, "
        "† = growth of this process's peak RSS (Python module), else the process's own peak RSS"
    )
