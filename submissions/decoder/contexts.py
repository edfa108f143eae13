"""What the context models condition on, declared in a table: the contexts (the mixing
model's mixer selectors, by facts of this module, are in selectors.py).

A context is one row: (salt, parts), its name in a comment (benchmarks/mix_screen.py spells
rows out by their parts). Its hash starts from the salt and takes in each part in turn; a part is a fact (below), the token j back (`token(j)`) or n bytes of text
ending skip bytes back (`text(skip, n)`). The salts are part of the archive format: a
changed salt or part changes every bitstream (tests pin the table). Adding a context is
one row here.

Facts are computed once per token and stream by the model (mixing_model.token_facts),
two of them once per decision (MATCH_CLASS, SEEN_CLASS); MATCHES + m is match model m's
prediction (predicted token, length class; 0 without one).
"""

from __future__ import annotations

# facts: indices into the model's per-token fact vector (uint64 each)
ZERO = 0  # always 0: a selector of one value
LAST_BYTE = 1  # the last byte of text
LAST_TWO_BYTES = 2
LAST_TOKEN = 3  # the last token + 1 (0: none yet)
WORD = 4  # hash of the word being written
PREVIOUS_WORD = 5
WORD_BEFORE = 6  # the word before the previous one
FOLDED_WORD = 7  # the current word with ASCII letters lower-cased: 'The' and 'the' share counts
COLUMN = 8  # bytes since the last newline, capped at COLUMN_CAP
ABOVE = 9  # the byte of the line before at this column (256: none): tables and lists repeat by column
AFTER_ABOVE = 10  # the byte after that one
LINE_HEAD = 11  # the line's first byte + 1 (0: empty so far): list, table row, heading, ...
MARK = 12  # the last markup byte + 1 (one of MARKS; 0: none yet)
MARK_BEFORE = 13  # the markup byte before it
MARK_WORD = 14  # the word just before the last markup byte (`title` in `|title=`)
SCOPE = 15  # the first word after the last [, { or < (`Category` in [[Category:..., `cite` in {{cite web|...)
NESTING = 16  # [ { < still open, capped at 3, 3, 1: 16 [ + 2 { + <, below 64
STREAM = 17  # the stream's index + 1
MATCH_CLASS = 18  # per decision: the first match model's length class while its prediction lives
SEEN_CLASS = 19  # per decision: which of the first four contexts after order 0 were seen, and an eighth of the rest
FOLLOWED = 20  # the last two tokens that followed the last token, the last times it occurred (indirect)
FOLLOWED_TWO = 21  # the same after the last two tokens
CLASSES = 22  # the classes of the last CLASS_BYTES bytes of text (BYTE_CLASSES), CLASS_BITS each, newest lowest
LAST_CLASSES = 23  # the classes of the last 3 bytes (9 bits): a mixer selector
SHAPE = 24  # the same with each run of a class as one (`Aaaaa 12, ` as `Aa 1, `): 12 classes, reaching further back
MATCHES = 25  # MATCHES + m: match model m's (predicted token << 8 | length class)
TOKEN_PARTS = 64  # part codes below this are facts; token(j) = TOKEN_PARTS + j
TEXT_PARTS = 128  # text(skip, n) = TEXT_PARTS + 16 * skip + n

COLUMN_CAP = 63
CLASS_BITS, CLASS_BYTES = 3, 12
BYTE_CLASSES = (b"[]{}<>|=", b" ", b"\n", b"0123456789", bytes(range(65, 91)), bytes(range(97, 123)) + bytes(range(128, 256)), bytes(range(32)))  # classes 1-7 (the first that holds the byte), else 0
MARKS = b"[]{}<>|=*#:'&;\n()/\""  # the markup bytes (adding .,!?-_ coded larger)
NESTING_BRACKETS = ((b"[", b"]", 3), (b"{", b"}", 3), (b"<", b">", 1))  # open minus closed, capped


def token(j: int) -> int:
    """Part: the token j back (0: the last one)."""
    return TOKEN_PARTS + j


def text(skip: int, n: int) -> int:
    """Part: n bytes of text ending skip bytes back (skip + n <= 8)."""
    return TEXT_PARTS + 16 * skip + n


WORD_CONTEXTS = (
    (200, (WORD,)),  # word
    (201, (WORD, PREVIOUS_WORD)),  # word, previous word
    (202, (WORD, LAST_TOKEN)),  # word, last token
    (950, (FOLDED_WORD,)),  # folded word
    (961, (PREVIOUS_WORD, WORD_BEFORE)),  # two words before
    (203, (PREVIOUS_WORD, LAST_BYTE)),  # previous word, last byte: format 8: these five -0.21..-0.42% on four texts
    (962, (WORD_BEFORE, LAST_BYTE)),  # word before, last byte
    (204, (PREVIOUS_WORD, NESTING)),  # previous word, nesting: format 9: these three -0.13% on enwik6
    (205, (PREVIOUS_WORD, MARK)),  # previous word, mark
)
LINE_CONTEXTS = (
    (300, (COLUMN, LAST_BYTE)),  # column, last byte
    (301, (COLUMN, WORD)),  # column, word
    (302, (ABOVE, LAST_BYTE)),  # byte above, last byte
    (303, (AFTER_ABOVE, ABOVE, LAST_TWO_BYTES)),  # two bytes above, last two bytes
    (602, (LINE_HEAD, LAST_BYTE)),  # line head, last byte
    (603, (LINE_HEAD, WORD)),  # line head, word
    (605, (LINE_HEAD, COLUMN)),  # line head, column
    (304, (COLUMN, ABOVE)),  # column, byte above
    (306, (SCOPE, COLUMN)),  # scope, column
)
MARK_CONTEXTS = (  # inside [[...]], {{...}}, <...>, a table cell or after '=' different things follow
    (600, (MARK, LAST_BYTE)),  # mark, last byte
    (601, (MARK, WORD)),  # mark, word
    (604, (MARK_BEFORE, MARK, LAST_BYTE)),  # two marks, last byte
    (990, (SCOPE, MARK, LAST_BYTE)),  # scope, mark, last byte
    (991, (SCOPE, WORD)),  # scope, word
    (900, (NESTING, LAST_BYTE)),  # nesting, last byte
    (901, (NESTING, WORD)),  # nesting, word
    (800, (MARK, LAST_BYTE, MARK_WORD)),  # mark, last byte, word before the mark
)
CLASS_CONTEXTS = (  # the shape of the last bytes (`xx, 1984 ` or `]]\n* [[`) says what kind of token comes next
    (1200, (CLASSES,)),  # classes of the last 12 bytes
    (1201, (CLASSES, LAST_TWO_BYTES)),  # the same, last two bytes
    (1202, (SHAPE,)),  # the shape: runs of classes
    (1203, (SHAPE, LAST_TWO_BYTES)),  # the shape, last two bytes
)
INDIRECT_CONTEXTS = (  # what followed this context before, as a context: repeats at a distance
    (1100, (LAST_TOKEN, FOLLOWED)),  # last token, what followed it
    (1101, (token(0), token(1), FOLLOWED_TWO)),  # last two tokens, what followed them
)
LOCAL_CONTEXTS = (  # the stream's own statistics (only with several streams)
    (983, (STREAM,)),  # stream
    (980, (STREAM, token(0))),  # stream, last token
    (981, (STREAM, token(0), token(1))),  # stream, last two tokens
    (982, (STREAM, WORD)),  # stream, word
)


# the contexts whose hashes the online network embeds (online_model.py), by salt, where the
# model has them: orders 1-4, the tokens 2 and 3 back, 1/3/8 bytes of text, the word with what
# came before, column and word, mark and word, the indirect ones, (format 9) format 8's five, and
# (format 18) the classes of the last bytes and the shape
ONLINE_SALTS = (1200, 1202, 1001, 1003, 1007, 1015, 1002, 1004, 2001, 2003, 2008, 200, 201, 202, 961, 301, 601, 1100, 1101, 203, 962, 605, 304, 901)


def context_table(config, n_streams: int, n_matches: int) -> list[tuple[int, tuple]]:
    """Every context of a model with this config as (salt, parts), in input order: order 0
    (the tree node alone), the token contexts (orders, then sparse), the byte contexts, the
    word, line, mark, local and class groups the config turns on, less the config's `without`, then
    one per match model. (No names: every byte here is in every archive.)"""
    rows = [(1, ())]
    for offsets in [tuple(range(k)) for k in config.orders] + [tuple(c) for c in config.sparse]:
        rows.append((1000 + sum(1 << j for j in offsets), tuple(map(token, offsets))))
    for skip, n in config.byte_contexts:
        rows.append((2000 + 16 * skip + n, (text(skip, n),)))
    groups = ((config.word, WORD_CONTEXTS), (config.lines, LINE_CONTEXTS), (config.marks, MARK_CONTEXTS), (config.indirect, INDIRECT_CONTEXTS), (config.local and n_streams > 1, LOCAL_CONTEXTS), (config.classes, CLASS_CONTEXTS))
    for enabled, group in groups:
        rows += list(group) if enabled else []
    rows = [row for row in rows if row[0] not in config.without]
    return rows + [(400 + m, (MATCHES + m,)) for m in range(n_matches)]
