"""The scoreboard as a PNG: bits per byte per compressor, and our archives split into their parts.

matplotlib is imported here only (with the Agg backend: no display needed), so the rest
of the CLI never pays for it.
"""

from __future__ import annotations

from pathlib import Path

from submissions.fileio import atomic_path
from pipeline.scoreboard import PART_LABELS, Board

COLORS = {"ours": "#d95f02", "module": "#1f78b4", "program": "#33a02c", "published": "#999999", "peer": "#6a3d9a"}
KIND_LABELS = {
    "ours": "ours (verified)", "module": "Python module", "program": "external program",
    "published": "published (not measured here)", "peer": "measured elsewhere (decompressor not counted)",
}
HATCHES = {"published": "//", "peer": ".."}  # not measured in this run: drawn apart
PART_COLORS = {"decoder": "#7570b3", "tokenizer": "#e7298a", "model": "#66a61e", "payload": "#e6ab02", "header": "#a6761d"}
MAX_OURS_BARS = 6  # the smallest archives; more would not be readable


def plot_board(board: Board, path: Path) -> Path:
    """Write the two-panel PNG atomically; return its path."""
    import matplotlib.pyplot as plt

    fig = board_figure(board)
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")  # the legends below the axes too
    plt.close(fig)
    return Path(path)


def _label(row) -> str:
    """The row's name, and on lines below it the caveats its name does not state already."""
    said = "not counted" in row.name
    return row.name + "".join(f"\n({c})" for c in row.caveats if not (said and c.endswith("not counted")))


def board_figure(board: Board):
    """The two panels as a matplotlib figure: bits per byte per compressor; our archives by part."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ranked = [r for r in board.rows if r.on_board]
    ours = [r for r in ranked if r.kind == "ours"][:MAX_OURS_BARS]
    height = max(3.5, 0.42 * len(ranked) + 1.5)
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, height), gridspec_kw={"width_ratios": [3, 2]})

    # left: bits per byte, smallest at the top
    names = [_label(r) for r in ranked][::-1]
    values = [r.bits_per_byte or 0.0 for r in ranked][::-1]
    kinds = [r.kind for r in ranked][::-1]
    # bars at numeric positions, names as tick labels: categorical names would put two rows of
    # one name on one bar and shift every value label after it
    ys = list(range(len(names)))
    bars = left.barh(ys, values, color=[COLORS[k] for k in kinds])
    left.set_yticks(ys, names)
    for bar, kind in zip(bars, kinds):
        if kind in HATCHES:
            bar.set_hatch(HATCHES[kind])
            bar.set_edgecolor("white")
    for y, value in zip(ys, values):
        left.text(value, y, f" {value:.3f}", va="center", fontsize=8)
    left.set_xlabel("bits per byte (lower is better; everything needed to restore the file)")
    left.set_xlim(0, max(values, default=1.0) * 1.15)
    left.set_title(f"{board.file.path.name}: {board.file.size:,} bytes")
    present = [k for k in COLORS if k in kinds]
    # below the axes: inside, it would cover the shortest bars (the strongest programs) and their values
    left.legend(handles=[Patch(color=COLORS[k], label=KIND_LABELS[k]) for k in present], loc="upper center", bbox_to_anchor=(0.5, -0.09), ncol=3, fontsize=8)
    left.tick_params(axis="y", labelsize=8)

    # right: our archives, stacked by part, as horizontal bars (room for their names and totals;
    # numeric positions, so two archives of one name keep two bars)
    if ours:
        ys = list(range(len(ours)))[::-1]  # the smallest at the top, as on the left
        lefts = [0] * len(ours)
        for part in PART_LABELS:
            sizes = [(r.parts or {}).get(part, 0) for r in ours]
            if not any(sizes):
                continue
            label = PART_LABELS[part] + (f" {sizes[0]:,}" if len(ours) == 1 else "")
            right.barh(ys, sizes, left=lefts, height=0.6, color=PART_COLORS[part], label=label)
            lefts = [left_edge + size for left_edge, size in zip(lefts, sizes)]
        for y, row in zip(ys, ours):
            right.text(row.total_bytes, y, f" {row.total_bytes:,}", va="center", fontsize=8)
        right.set_yticks(ys, [r.name.replace(" (", "\n(") for r in ours])
        right.set_xlabel("bytes (thousands)")
        right.set_xlim(0, max(lefts) * 1.25)
        right.xaxis.set_major_locator(MaxNLocator(4))
        right.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:,.0f}k"))
        right.set_title("our archives, by part")
        right.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=len(PART_LABELS))
        right.tick_params(axis="y", labelsize=7)
    else:
        right.text(0.5, 0.5, "no verified archive of ours\nfor this file", ha="center", va="center", transform=right.transAxes)
        right.set_axis_off()

    fig.tight_layout()
    return fig
