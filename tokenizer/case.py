"""Capital letters folded to lower case before tokenizing, each marked by a byte the file lacks.

"The" and "the", "NASA" and "nasa" then share their pieces and the model's statistics: the
mark says "upper case" once, where the words would otherwise be told apart everywhere (enwik6:
the mixing model's payload 0.46% smaller; Python docs 0.77%, nodejs changelog 0.27%; vim notes
0.12% larger: benchmarks/results/case_folding_2026-12-05.md).

Two marks, `one` and `run`, two byte values that do not occur in the file:
- a run of 2 to RUN_LIMIT (32) ASCII capitals followed by a byte that is no lower-case letter
  ("NASA ", "HTTP/") becomes run + the run in lower case (a longer run is cut in such runs);
- any other capital with no capital on either side ("The", "McD") becomes one + its lower case;
- capitals next to others that are not such a run ("ABc") stay as they are.
The marks are in no other place, so the decoder (submissions/decoder/tokens.unfold_case) finds
each one and the letters it covers whatever the folded text's pieces are. At the end of a chunk a
run's last capital is marked alone (the next chunk might go on in lower case), so chunks fold
on their own.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from submissions.decoder.tokens import RUN_LIMIT

# bytes a mark may be, by preference: control bytes text does not use (not tab, newline, CR), NUL,
# DEL; never a byte of 0x80 and above, which would break the UTF-8 the tokenizer reads
MARK_CANDIDATES = (*range(1, 9), 11, 12, *range(14, 32), 0, 127)
CAPITAL_RUN = re.compile(rb"[A-Z]{2,%d}(?=[^a-z])" % RUN_LIMIT)
LONE_CAPITAL = re.compile(rb"(?<![A-Z])[A-Z](?![A-Z])")


def byte_counts(path: Path, block: int = 1 << 24) -> np.ndarray:
    """How often each byte value occurs in the file (256 counts), in one pass."""
    counts = np.zeros(256, dtype=np.int64)
    with open(path, "rb") as f:
        while data := f.read(block):
            counts += np.bincount(np.frombuffer(data, dtype=np.uint8), minlength=256)
    return counts


def case_marks(counts: np.ndarray) -> tuple[int, int] | None:
    """The two mark bytes for a file with these byte counts, or None: no capital to fold, or
    fewer than two candidate bytes free."""
    if not counts[ord("A") : ord("Z") + 1].any():
        return None
    free = [b for b in MARK_CANDIDATES if counts[b] == 0]
    return (free[0], free[1]) if len(free) >= 2 else None


def fold_case(data: bytes, marks: tuple[int, int] | None) -> bytes:
    """data with its capitals folded and marked (the module's rules); data must not hold a mark.
    No marks (None): data as it is."""
    if marks is None:
        return data
    one, run = bytes([marks[0]]), bytes([marks[1]])
    data = CAPITAL_RUN.sub(lambda m: run + m.group().lower(), data)
    return LONE_CAPITAL.sub(lambda m: one + m.group().lower(), data)
