"""Capitals folded to lower case before tokenizing (tokenizer/case.py) and unfolded by the
decoder (submissions/decoder/tokens.unfold_case): exact for any text without the marks, cut
into pieces anywhere, folded chunk by chunk, and through a whole archive."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import zipfile

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.curve import token_lengths
from pipeline.pack import pack
from pipeline.train import train
from small_run import SMALL
from submissions.decoder.container import HEADER, PROGRAM, program_parts
from submissions.decoder.tokens import RUN_LIMIT, unfold_case
from tokenizer.case import MARK_CANDIDATES, case_marks, fold_case

MARKS = (1, 2)
# texts made of what the rules look at: capitals, lower-case letters, others; and long runs
TEXTS = st.lists(st.sampled_from([b"A", b"B", b"Z", b"a", b"z", b" ", b"-", b"\n", b"\xc3\x89", b"NASA", b"A" * 40]), max_size=60).map(b"".join)


def pieces_of(data: bytes, cuts: list[int]) -> list[bytes]:
    cuts = sorted({min(c, len(data)) for c in cuts})
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]


@settings(max_examples=400, deadline=None)
@given(TEXTS, st.lists(st.integers(0, 200), max_size=6), st.integers(0, 200), st.sampled_from([(1, 2), (2, 1), (0, 127)]))
def test_folded_text_unfolds_exactly_from_any_pieces_and_any_chunks(text, cuts, chunk_cut, marks):
    folded = fold_case(text, marks)
    assert b"".join(unfold_case(iter(pieces_of(folded, cuts)), marks)) == text
    chunked = fold_case(text[:chunk_cut], marks) + fold_case(text[chunk_cut:], marks)  # tokenize_file folds chunk by chunk
    assert b"".join(unfold_case([chunked], marks)) == text
    assert len(folded) <= 2 * len(text)  # the header's bound on tokens (header.py)


def test_the_rules_on_words():
    folded = fold_case(b"The NASA ABc McDonald iPhone HTTP/1.1 X. " + b"Q" * 33 + b"\n", MARKS)
    assert folded == b"\x01the \x02nasa ABc \x01mc\x01donald i\x01phone \x02http/1.1 \x01x. \x02" + b"q" * RUN_LIMIT + b"\x01q\n"
    assert fold_case(b"ends in CAPS", MARKS) == b"ends in \x02cap\x01s"  # at a chunk's end the last capital is marked alone: the next chunk might go on in lower case


def test_marks_are_free_control_bytes_and_only_where_there_are_capitals():
    counts = np.zeros(256, dtype=np.int64)
    counts[[ord(c) for c in "abc \n"]] = 5
    assert case_marks(counts) is None  # no capital: nothing to fold
    counts[ord("Q")] = 1
    assert case_marks(counts) == (1, 2)
    counts[[1, 3]] = 1
    assert case_marks(counts) == (2, 4)
    counts[list(MARK_CANDIDATES)] = 1
    counts[5] = 0
    assert case_marks(counts) is None  # one free byte is not enough
    assert all(b < 0x80 and b not in b"\t\n\r" for b in MARK_CANDIDATES)


def test_marks_stand_for_no_byte_of_the_file_along_the_loss_curve():
    table = [bytes([b]) for b in range(256)] + [b" \x01the", b"\x02nasa"]
    lengths = token_lengths(table, MARKS)
    assert lengths[1] == 0 and lengths[65] == 1 and list(lengths[256:]) == [4, 4]
    assert list(token_lengths(table)[256:]) == [5, 5]


def test_an_archive_of_a_text_with_capitals_restores_it_and_off_means_off(tmp_path, text_sample):
    data = tmp_path / "data.txt"
    data.write_bytes(text_sample[:6000])
    for fold in (True, False):
        config = dataclasses.replace(SMALL, tokenizer=dataclasses.replace(SMALL.tokenizer, fold_case=fold))
        run, archive, out = tmp_path / f"run-{fold}", tmp_path / f"{fold}.arc", tmp_path / f"out-{fold}"
        train(data, run, config, progress=False)
        pack(run, archive, progress=False)
        header = json.loads(program_parts(zipfile.ZipFile(archive).read(PROGRAM))[HEADER])
        assert header.get("case") == ([1, 2] if fold else None)
        restored = subprocess.run([sys.executable, "-I", str(archive), "-q", "-o", str(out)], capture_output=True, text=True, timeout=120)
        assert restored.returncode == 0, restored.stderr
        assert out.read_bytes() == data.read_bytes()
