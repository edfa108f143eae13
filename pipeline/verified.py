"""Our archives on a scoreboard: only ones that passed `verify run`, and only for their own file.

Two sources, one rule each:

* a **live** verification report (`verify run ... --report R.json`, found under `runs/` or
  given with `--report`) counts when it passed inside the sandbox, its original's sha256 is
  the data file's, and the archive it names is still there with the sha256 it had when verified (re-hashed
  now). Anything else is refused with its reason and left off the board;
* a **recorded** result (`submissions/results/*.json`, written by `pipeline submit` from a
  passing live report and committed) cannot carry its archive (archives are not committed),
  so it counts when its file's md5 and sha256 are the data file's. It is shown as recorded
  on its date, with the archive's sha256, never as re-checked. A live report of the same
  archive (same sha256) replaces it, keeping its timings.

Public API:

    file_digests(path) -> FileDigests
    Ours(...)                     one archive row
    Refusal(source, reason)
    live_rows(reports, digests) -> (rows, refusals, n_other_files)
    recorded_rows(records_dir, digests) -> (rows, refusals)
    recorded_files(records_dir) -> list[Path]
    our_rows(reports, records_dir, digests) -> (rows, refusals, n_other_files)
    make_record(report_path, data_path, run=None, pack_seconds=None) -> dict
    record_name(record) -> str
    find_reports(paths) -> list[Path]
"""

from __future__ import annotations

import datetime
import hashlib
import json
import platform
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from submissions.errors import UserError
from submissions.fileio import require_file
from verify.report import sandbox_refusal

PROJECT_ROOT = Path(__file__).resolve().parents[1]
RECORDS_DIR = PROJECT_ROOT / "submissions" / "results"
RECORD_KIND = "hutter-pipeline verified result"
RECORD_SCHEMA = 1
DEFAULT_REPORT_PLACES = (Path("runs"), Path("."))  # searched (runs/ recursively) when no --report is given


@dataclass(frozen=True)
class FileDigests:
    path: Path
    size: int
    md5: str
    sha256: str


def file_digests(path: Path) -> FileDigests:
    """md5 (what the enwik files are published by) and sha256 (what our reports record), one pass."""
    path = require_file(Path(path), "data file")
    md5, sha = hashlib.md5(), hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            md5.update(block)
            sha.update(block)
            size += len(block)
    return FileDigests(path, size, md5.hexdigest(), sha.hexdigest())


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Ours:
    """One of our archives as the board shows it."""

    name: str
    status: str  # "verified" (live, re-checked now) or "recorded" (committed record)
    archive_sha256: str
    total_bytes: int
    parts: dict[str, int]
    original_bytes: int
    verified_on: str  # the verification's date (ISO)
    source: str  # the report or record it came from
    decode_seconds: Optional[float] = None
    decode_peak_rss_bytes: Optional[int] = None
    train_seconds: Optional[float] = None
    pack_seconds: Optional[float] = None
    config: dict = field(default_factory=dict, compare=False)

    @property
    def compress_seconds(self) -> Optional[float]:
        """Our 'compressor' is train + pack; None unless both are known."""
        if self.train_seconds is None or self.pack_seconds is None:
            return None
        return self.train_seconds + self.pack_seconds


@dataclass(frozen=True)
class Refusal:
    source: str
    reason: str


def model_label(config: dict) -> str:
    """'context order 2, vocab 4096' / 'neural d256 L4, vocab 4096' / 'mix orders 1-2-3, vocab 4096'."""
    model, vocab = config.get("model", {}), config.get("tokenizer", {}).get("vocab_size", "?")
    return f"{_model_tag(model, ' ')}, vocab {vocab}"


def _model_tag(model: dict, sep: str) -> str:
    kind = str(model.get("kind", "model"))
    if kind == "neural":
        return f"neural{sep}d{model.get('d_model')}{sep}L{model.get('n_layers')}"
    if "max_order" in model:
        return f"{kind}{sep}order{sep}{model['max_order']}" if sep == " " else f"{kind}{sep}o{model['max_order']}"
    if "orders" in model:
        return f"{kind}{sep}orders{sep}{'-'.join(str(o) for o in model['orders'])}"
    return kind


def _load_json(path: Path) -> Optional[dict]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


# --- live verification reports ---------------------------------------------------------


def find_reports(paths: list[Path]) -> list[Path]:
    """Every *.verify.json in the given files and folders (folders searched recursively, except '.')."""
    found: list[Path] = []
    for place in paths:
        place = Path(place)
        if place.is_file():
            found.append(place)
        elif place.is_dir():
            pattern = place.glob("*.verify.json") if place == Path(".") else place.rglob("*.verify.json")
            found.extend(sorted(pattern))
    unique: dict[Path, Path] = {}
    for path in found:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def _about_this_file(report: dict, digests: FileDigests) -> bool:
    original = report.get("original") or {}
    return original.get("sha256") == digests.sha256 and original.get("size") == digests.size


def check_live_report(path: Path, report: Optional[dict]) -> tuple[Optional[Ours], Optional[str]]:
    """(row, None) for a report whose archive is still the verified one, else (None, why not)."""
    if report is None or not isinstance(report.get("archive"), dict) or "passed" not in report:
        return None, "not a verification report of `verify run`"
    if report["passed"] is not True:
        return None, "did not pass `verify run`: " + "; ".join(report.get("reasons") or ["(no reason given)"])
    unsandboxed = sandbox_refusal(report)  # an unsandboxed decoder could have read the expected file
    if unsandboxed:
        return None, unsandboxed
    archive = report["archive"]
    expected = archive.get("sha256")
    if not expected:
        return None, "records no archive sha256 (written by an older `verify run`); verify the archive again"
    archive_path = Path(archive.get("path", ""))
    if not archive_path.is_absolute():  # reports record absolute paths; tolerate relative ones
        archive_path = Path(path).parent / archive_path
    if not archive_path.is_file():
        return None, f"its archive {archive_path} is gone"
    actual = sha256_file(archive_path)
    if actual != expected:
        return None, f"its archive {archive_path} changed since it was verified (sha256 {actual[:12]}…, verified {expected[:12]}…)"
    config = report.get("config") or {}
    return Ours(
        name=f"{model_label(config)} ({archive_path.name})",
        status="verified",
        archive_sha256=expected,
        total_bytes=int(archive["total_bytes"]),
        parts=dict(archive.get("parts") or {}),
        original_bytes=int(report["original"]["size"]),
        verified_on=str(report.get("date", "")),
        source=str(path),
        decode_seconds=report.get("decode_seconds"),
        decode_peak_rss_bytes=report.get("peak_rss_bytes"),
        config=config,
    ), None


def live_rows(reports: list[Path], digests: FileDigests) -> tuple[list[Ours], list[Refusal], int]:
    """Rows of the live reports about this file; refusals; how many reports were about other files."""
    rows, refusals, other = [], [], 0
    for path in reports:
        report = _load_json(path)
        if report is not None and isinstance(report.get("original"), dict) and not _about_this_file(report, digests):
            other += 1
            continue
        try:
            row, reason = check_live_report(path, report)
        except (KeyError, TypeError, ValueError) as exc:  # a report edited by hand or cut short
            row, reason = None, f"malformed report ({type(exc).__name__}: {exc})"
        if row is None:
            refusals.append(Refusal(str(path), reason))
        else:
            rows.append(row)
    return rows, refusals, other


# --- committed records ------------------------------------------------------------------


def _record_row(path: Path, record: dict) -> Ours:
    archive, timings = record["archive"], record.get("timings") or {}
    return Ours(
        name=f"{record.get('name') or model_label(record.get('config') or {})} ({archive.get('name', 'archive')})",
        status="recorded",
        archive_sha256=archive["sha256"],
        total_bytes=int(archive["total_bytes"]),
        parts=dict(archive.get("parts") or {}),
        original_bytes=int(record["file"]["size"]),
        verified_on=str(record.get("verification", {}).get("date", record.get("date", ""))),
        source=str(path),
        decode_seconds=timings.get("decode_seconds"),
        decode_peak_rss_bytes=(record.get("memory") or {}).get("decode_peak_rss_bytes"),
        train_seconds=timings.get("train_seconds"),
        pack_seconds=timings.get("pack_seconds"),
        config=record.get("config") or {},
    )


def recorded_rows(records_dir: Optional[Path], digests: FileDigests) -> tuple[list[Ours], list[Refusal]]:
    """Rows of the committed records whose file is exactly this one (md5 and sha256)."""
    rows: list[Ours] = []
    refusals: list[Refusal] = []
    if records_dir is None or not Path(records_dir).is_dir():
        return rows, refusals
    for path in sorted(Path(records_dir).glob("*.json")):
        record = _load_json(path)
        if record is None or record.get("kind") != RECORD_KIND:
            refusals.append(Refusal(str(path), "not a result record of `pipeline submit`"))
            continue
        file = record.get("file") or {}
        if file.get("md5") != digests.md5 or file.get("sha256") != digests.sha256:
            continue  # a record of another file
        if (record.get("verification") or {}).get("passed") is not True:
            refusals.append(Refusal(str(path), "records a verification that did not pass"))
            continue
        try:
            rows.append(_record_row(path, record))
        except (KeyError, TypeError, ValueError) as exc:
            refusals.append(Refusal(str(path), f"malformed record ({type(exc).__name__}: {exc})"))
    return rows, refusals


def our_rows(reports: list[Path], records_dir: Optional[Path], digests: FileDigests) -> tuple[list[Ours], list[Refusal], int]:
    """Live and recorded rows, one per archive sha256 (live wins, taking the record's timings)."""
    live, refused_live, other = live_rows(reports, digests)
    recorded, refused_records = recorded_rows(records_dir, digests)
    by_sha = {row.archive_sha256: row for row in recorded}
    merged: dict[str, Ours] = {}
    for row in live:
        record = by_sha.get(row.archive_sha256)
        if record is not None:
            row = _with_timings(row, record)
        merged.setdefault(row.archive_sha256, row)
    for row in recorded:
        merged.setdefault(row.archive_sha256, row)
    rows = sorted(merged.values(), key=lambda r: r.total_bytes)
    return rows, refused_live + refused_records, other


def current_rows(rows: list[Ours]) -> tuple[list[Ours], list[Ours]]:
    """(shown, left off): of each model kind and way of packing (tree order, shards), the
    smallest archive and the newest verified one; the others are earlier versions, each larger
    than the first and older than the second."""
    groups: dict[tuple, list[Ours]] = {}
    for row in rows:
        coder = row.config.get("coder") or {}
        way = (str((row.config.get("model") or {}).get("kind", "?")), bool(coder.get("tree_order")), int(coder.get("shards") or 1))
        groups.setdefault(way, []).append(row)
    keep = set()
    for same in groups.values():
        keep.add(min(same, key=lambda r: r.total_bytes).archive_sha256)
        keep.add(max(same, key=lambda r: (r.verified_on, -r.total_bytes)).archive_sha256)
    return [r for r in rows if r.archive_sha256 in keep], [r for r in rows if r.archive_sha256 not in keep]


def _with_timings(live: Ours, record: Ours) -> Ours:
    from dataclasses import replace

    return replace(live, name=record.name, train_seconds=record.train_seconds, pack_seconds=record.pack_seconds)


def recorded_files(records_dir: Optional[Path]) -> list[Path]:
    """The data files the records name, where they still are (`pipeline scoreboard` with no FILE)."""
    files: dict[Path, Path] = {}
    if records_dir is not None and Path(records_dir).is_dir():
        for path in sorted(Path(records_dir).glob("*.json")):
            record = _load_json(path) or {}
            recorded = Path(str((record.get("file") or {}).get("path", "")))
            if record.get("kind") == RECORD_KIND and recorded.is_file():
                files.setdefault(recorded.resolve(), recorded)
    return list(files.values())


# --- writing a record (`pipeline submit`) ---------------------------------------------------


def code_version() -> Optional[str]:
    """The project's git commit (+ '-dirty' with uncommitted changes); None outside a checkout."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10)
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def make_record(report_path: Path, data_path: Optional[Path] = None, run: Optional[Path] = None, pack_seconds: Optional[float] = None) -> dict:
    """A committable record of one passing verification, re-checked against its archive and file."""
    report_path = require_file(Path(report_path), "report")
    report = _load_json(report_path)
    try:
        row, reason = check_live_report(report_path, report)
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{report_path} is a malformed report ({type(exc).__name__}: {exc})") from None
    if row is None:
        raise UserError(f"{report_path} {reason}")
    data_path = Path(data_path or report["original"]["path"])
    if not data_path.is_file():
        raise UserError(f"the verified file {data_path} is not here (pass --data FILE)")
    digests = file_digests(data_path)
    if not _about_this_file(report, digests):
        raise UserError(f"{data_path} is not the file {report_path} verified (size or sha256 differ)")
    train_seconds = _train_seconds(run) if run is not None else None
    if pack_seconds is not None and pack_seconds < 0:
        raise UserError("--pack-seconds must not be negative")
    clean = report.get("clean_env") or {}
    return {
        "kind": RECORD_KIND,
        "schema": RECORD_SCHEMA,
        "name": model_label(report.get("config") or {}),
        "file": {"name": data_path.name, "path": str(data_path.resolve()), "size": digests.size, "md5": digests.md5, "sha256": digests.sha256},
        "archive": {
            "name": Path(report["archive"]["path"]).name,
            "sha256": row.archive_sha256,
            "total_bytes": row.total_bytes,
            "parts": row.parts,
            "runtime": report["archive"].get("runtime", []),
        },
        "bits_per_byte": report.get("bits_per_byte"),
        "config": report.get("config") or {},
        "timings": {
            "train_seconds": train_seconds,
            "pack_seconds": pack_seconds,
            "decode_seconds": report.get("decode_seconds"),
            "decode_jit_compile_seconds": report.get("jit_compile_seconds"),  # part of decode_seconds
        },
        "memory": {"decode_peak_rss_bytes": report.get("peak_rss_bytes")},
        "verification": {
            "passed": True,
            "date": report.get("date"),
            "report": report_path.name,
            "limits": report.get("limits"),
            "isolation": (report.get("isolation") or {}).get("level"),
            "network_cut": clean.get("network_cut"),
            "install_method": clean.get("install_method"),
            "project_importable": clean.get("project_importable"),
        },
        "machine": report.get("machine"),
        "versions": {**(report.get("versions") or {}), "host_python": platform.python_version()},
        "code_version": code_version(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _train_seconds(run: Path) -> Optional[float]:
    path = Path(run) / "train.json"
    if not path.is_file():
        raise UserError(f"{run} is not a run folder of `pipeline train` (no train.json)")
    seconds = (_load_json(path) or {}).get("seconds")
    return float(seconds) if isinstance(seconds, (int, float)) else None


def record_name(record: dict) -> str:
    """<file>-<model>-<date>.json, e.g. enwik6-context-o2-v4096-2026-11-23.json."""
    model = record.get("config", {}).get("model", {})
    vocab = record.get("config", {}).get("tokenizer", {}).get("vocab_size", "x")
    tag = f"{_model_tag(model, '-')}-v{vocab}"
    day = str(record.get("verification", {}).get("date") or record["date"])[:10]
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in record["file"]["name"])
    return f"{safe}-{tag}-{day}.json"
