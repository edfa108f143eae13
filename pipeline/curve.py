"""The loss curve of a pack: the code length along the file, whose area is the payload.

`pipeline pack` writes ARCHIVE.curve.json beside each archive: after every chunk of coding
steps, how many bytes of the file have been coded and the model's ideal code length so far
(shards one after another). For a model that learns while it codes this is Rae's
decomposition: the archive is the program that learns plus the area under this curve; for a
model trained beforehand it is the two-part code: program and weights, then the payload.
`pipeline curve A.curve.json B.curve.json -o curve.png` draws several side by side, and the
archive's bytes so far along the file: each line starts at what is stored before the first
byte (program, weights, tokenizer, header) and ends at the archive's size.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from submissions.decoder.codec import stream_lengths
from submissions.errors import UserError
from submissions.fileio import atomic_path, atomic_write_text, require_file

CHUNK_TOKENS = 1 << 22  # the token array is read in pieces: enwik9's ids need not fit in memory twice


def token_lengths(table: list, case_marks=None) -> np.ndarray:
    """Bytes of the original text per token id (the tokenizer's id -> bytes table): the marks of
    folded capitals (tokenizer/case.py) stand for no byte of it."""
    marks = bytes(case_marks or ())
    return np.array([len(t) - sum(t.count(mark) for mark in marks) for t in table], dtype=np.int64)


def bytes_before(tokens, token_lengths: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Bytes of text in tokens[:p] for each p of positions (sorted), in one pass over tokens."""
    out = np.zeros(len(positions), dtype=np.int64)
    total, j = 0, 0
    for start in range(0, len(tokens) + 1, CHUNK_TOKENS):
        piece = np.asarray(tokens[start : start + CHUNK_TOKENS])
        before = np.concatenate([[0], np.cumsum(token_lengths[piece], dtype=np.int64)]) + total
        while j < len(positions) and positions[j] <= start + len(piece):
            out[j] = before[positions[j] - start]
            j += 1
        total = int(before[-1])
    return out


def shard_curve(points: list, shard_start: int, size: int, n_streams: int, tokens, token_lengths: np.ndarray) -> np.ndarray:
    """(bytes coded, bits) per point (steps done, bits) of one shard coded in n_streams streams."""
    steps = np.array([p[0] for p in points], dtype=np.int64)
    lengths = stream_lengths(size, n_streams) if n_streams else np.zeros(0, dtype=np.int64)
    starts = shard_start + np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    ends = starts[None, :] + np.minimum(steps[:, None], lengths[None, :])  # (points, streams)
    wanted = np.unique(np.concatenate([starts, ends.ravel()]))
    at = dict(zip(wanted.tolist(), bytes_before(tokens, token_lengths, wanted).tolist()))
    done = np.array([[at[e] - at[s] for e, s in zip(row, starts)] for row in ends.tolist()], dtype=np.int64).reshape(len(steps), -1)
    return np.stack([done.sum(axis=1), np.array([p[1] for p in points], dtype=np.float64)], axis=1)


def file_curve(shards: list, tokens, token_lengths: np.ndarray) -> list:
    """The whole file's curve from each shard's (start, size, streams, points), in file order:
    [[bytes coded, bits so far], ...]."""
    rows, byte_offset, bit_offset = [], 0, 0.0
    for start, size, n_streams, points in shards:
        if not points:  # nothing coded (an empty file)
            continue
        curve = shard_curve(points, start, size, n_streams, tokens, token_lengths)
        rows += [[int(b) + byte_offset, float(bits) + bit_offset] for b, bits in curve]
        byte_offset, bit_offset = rows[-1][0], rows[-1][1]
    return rows or [[0, 0.0]]


def curve_path(archive: Path) -> Path:
    return archive.with_name(archive.name + ".curve.json")


def write_curve(archive: Path, label: str, file_name: str, file_size: int, parts: dict, points: list) -> Path:
    """parts: the archive's bytes by part (archive_parts); program_bytes: all but the payload."""
    path = curve_path(archive)
    record = {
        "label": label, "file": file_name, "size": file_size, "payload_bytes": parts["payload"],
        "program_bytes": sum(parts.values()) - parts["payload"], "parts": parts, "points": points,
    }  # fmt: skip
    atomic_write_text(path, json.dumps(record, separators=(",", ":")) + "\n")
    return path


def read_curve(path: Path) -> dict:
    require_file(path, "curve file")
    try:
        record = json.loads(path.read_text("utf-8"))
        points = np.array(record["points"], dtype=np.float64).reshape(-1, 2)
        record["label"], record["size"]
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: not a curve file written by `pipeline pack` ({type(exc).__name__})") from None
    return dict(record, points=points)


def archive_bytes_along(curve: dict, at: np.ndarray) -> np.ndarray:
    """The archive's bytes once the file's first `at` bytes are coded: what it stores before
    the first byte (program, weights, ...) plus the area under the curve so far."""
    return curve["program_bytes"] + np.interp(at, curve["points"][:, 0], curve["points"][:, 1]) / 8


def _fixed_label(curve: dict) -> str:
    weights = (curve.get("parts") or {}).get("model")
    weights = f", weights {weights:,} B" if weights else ""
    return f"{curve['label']}: {curve['program_bytes']:,} B before the first byte{weights}, {curve['program_bytes'] + curve['payload_bytes']:,} B in all"


def plot_curves(curves: list[dict], png: Path, window: int = 32768) -> None:
    """Bits per byte over windows of the coded bytes, one line per curve; (with several) each
    one's difference from the first in percent; (for the curves of packed archives) the
    archive's bytes so far along the file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_bytes = int(min(c["points"][-1, 0] for c in curves))
    edges = np.append(np.arange(0, n_bytes, window), n_bytes)
    archives = [c for c in curves if "program_bytes" in c]  # curves of packed archives (benchmarks draw configs)
    ratios = [2] + [1] * (len(curves) > 1) + [1.5] * bool(archives)
    fig, axes = plt.subplots(len(ratios), 1, figsize=(9, 3 * sum(ratios)), sharex=True, squeeze=False, gridspec_kw={"height_ratios": ratios})
    top = axes[0, 0]
    windows = [np.diff(np.interp(edges, c["points"][:, 0], c["points"][:, 1])) for c in curves]
    for i, (curve, bits) in enumerate(zip(curves, windows)):  # curve i keeps colour Ci in every panel
        top.plot(edges[1:] / 1e6, bits / np.diff(edges), color=f"C{i}", label=f"{curve['label']}: area {curve['points'][-1, 1] / 8:,.0f} B")
    top.set_ylabel(f"bits per byte (windows of {window // 1024} KB)")
    top.set_title(f"{curves[0].get('file', '')}: code length along the file (the payload is the area under each curve)")
    top.legend(fontsize=8)
    top.grid(alpha=0.3)
    if len(curves) > 1:
        middle = axes[1, 0]
        middle.axhline(0, color="gray", lw=0.8)
        for i, (curve, bits) in enumerate(zip(curves[1:], windows[1:]), 1):
            middle.plot(edges[1:] / 1e6, 100 * (bits / windows[0] - 1), color=f"C{i}", label=curve["label"])
        middle.set_ylabel(f"% vs {curves[0]['label']}")
        middle.legend(fontsize=8)
        middle.grid(alpha=0.3)
    if archives:
        bottom = axes[-1, 0]
        for i, curve in enumerate(curves):
            if "program_bytes" in curve:
                bottom.plot(edges / 1e6, archive_bytes_along(curve, edges) / 1e3, color=f"C{i}", label=_fixed_label(curve))
        bottom.set_ylabel("archive bytes so far (KB)")
        bottom.legend(fontsize=8)
        bottom.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("bytes of the file coded (MB; with one stream: the position in the file)")
    fig.tight_layout()
    with atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
