"""The mixing model's mixer selectors, declared in tables: each mixer of the first layer keeps a
weight vector per value of a fact (contexts.py) and tree node or depth; the final mixers, over
the first layer's outputs, likewise by depth. Part of the archive format (tests pin them).
"""

from __future__ import annotations

from .contexts import LAST_BYTE, LAST_TOKEN, LINE_HEAD, MARK, MATCH_CLASS, NESTING, SEEN_CLASS, ZERO

# mixer selectors: (name, fact, values (None: vocab + 1), by node): a mixer keeps one weight
# vector per value and tree node (by node, while that stays below NODE_SETS vectors) or per
# value and depth
NODE_SETS = 1 << 19
FIRST_LAYER = (  # (format 15: none by match length: +4 B on enwik6, and 6% of the coding time)
    ("contexts seen", SEEN_CLASS, 128, False),
    ("last byte", LAST_BYTE, 256, False),
    ("node", ZERO, 1, True),
    ("last token", LAST_TOKEN, None, True),
)
MARK_SELECTORS = (("mark", MARK, 257, True), ("nesting", NESTING, 64, True))
LINE_SELECTORS = (("line head", LINE_HEAD, 257, True),)
# the final mixers, over the first layer's outputs, averaged in the logistic domain
FINAL_LAYER = (
    ("depth", ZERO, 1, False),
    ("match length", MATCH_CLASS, 16, False),
    ("contexts seen", SEEN_CLASS, 128, False),
    ("last byte", LAST_BYTE, 256, False),
    ("last token", LAST_TOKEN, None, False),
    ("mark", MARK, 257, False),
)


def selector_table(config) -> list[tuple]:
    return list(FIRST_LAYER) + list(MARK_SELECTORS) * bool(config.marks) + list(LINE_SELECTORS) * bool(config.lines)
