"""The mixing model's mixer selectors, declared in tables: each mixer of the first layer keeps a
weight vector per value of a fact (contexts.py) and tree node or depth; the final mixers, over
the first layer's outputs, likewise by depth. Part of the archive format (tests pin them).
"""

from __future__ import annotations

from .contexts import LAST_CLASSES, LAST_TOKEN, LINE_HEAD, MARK, MATCH_CLASS, NESTING, SEEN_CLASS, ZERO

# mixer selectors: (fact, values (None: vocab + 1), by node), named in comments: a mixer keeps
# one weight vector per value and tree node (by node, while that stays below NODE_SETS vectors)
# or per value and depth
NODE_SETS = 1 << 19
FIRST_LAYER = (  # (format 15: none by match length: +4 B on enwik6, and 6% of the coding time)
    (SEEN_CLASS, 128, False),  # contexts seen
    (LAST_CLASSES, 512, True),  # classes of the last 3 bytes (format 18; it replaced the last byte: -580 B on enwik6, beside it -676 B)
    (ZERO, 1, True),  # node
    (LAST_TOKEN, None, True),  # last token
)
MARK_SELECTORS = ((MARK, 257, True), (NESTING, 64, True))  # mark, nesting
LINE_SELECTORS = ((LINE_HEAD, 257, True),)  # line head
# the final mixers, over the first layer's outputs, averaged in the logistic domain: (fact,
# values), by depth
FINAL_LAYER = (
    (ZERO, 1),  # depth
    (MATCH_CLASS, 16),  # match length
    (SEEN_CLASS, 128),  # contexts seen
    (LAST_CLASSES, 512),  # classes of the last 3 bytes (format 18; the last byte: +60 B on enwik6, +28 B on nodejs)
    (LAST_TOKEN, None),  # last token
    (MARK, 257),  # mark
)


def selector_table(config) -> list[tuple]:
    return list(FIRST_LAYER) + list(MARK_SELECTORS) * bool(config.marks) + list(LINE_SELECTORS) * bool(config.lines)
