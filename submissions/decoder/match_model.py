"""Match models: the token that followed the last occurrence of the current context.

enwik and most real text repeat themselves (templates, markup, names): after the last
`min_length` tokens were seen before, the token that followed them then is a strong guess
now, the more so the longer the match has held. A table maps a hash of the context to the
place the next token was written (its position in the token ring: step * B + stream, the
order in which tokens are coded); a found place is verified by comparing the tokens before
it, and a match runs on while it predicts right. A local match model hashes the context with
the stream, so it finds the last occurrence in the stream's own text (the same document).

State per model m and stream b: match_state[m, b] = (length, pointer, predicted token with
bit n_bits set, length class); match_hash[m, b] the context hash of the token being coded.
The mixing model learns its confidence in a prediction (mixing_steps.match_input), the
online model weighs it as a guess (online_alone.guess).
"""

from __future__ import annotations

import numpy as np

from .jit import I, kernel
from .mixing import U

HASH_MULTIPLIER = U(0x9E3779B97F4A7C15)
STREAM_MULTIPLIER = U(0xD6E8FEB86659FD93)
CLASSES = 16  # quantized match lengths; class 0 = no usable match
VERIFY = 32  # tokens compared backwards when a match is found
TABLE_BITS = 22  # remembered contexts per match model (16 MiB)
LENGTH, POINTER, PREDICTED, CLASS = range(4)  # columns of match_state


def new_match_state(n_models: int, n_streams: int, n_bits: int, table_bits: int) -> dict:
    """Arrays of n_models match models; 2**min(table_bits, TABLE_BITS) places each."""
    return {
        "match_table": np.zeros((n_models, 1 << min(table_bits, TABLE_BITS)), dtype=np.uint32),  # place + 1; 0: none (a shard past 2**32 - 1 tokens wraps places alike on both sides: exact, fewer matches found)
        "match_state": np.zeros((n_models, n_streams, 4), dtype=np.int64),
        "match_hash": np.zeros((n_models, n_streams), dtype=np.uint64),
    }


@kernel
def length_class(length):
    """0 for none, 1..7 exact, then two classes per doubling (8-11, 12-15, 16-23, ...)."""
    if length < 8:
        return length
    log = 0
    while length >> (log + 1):
        log += 1
    return min(2 * log + (length >> (log - 1) & 1) + 2, CLASSES - 1)


@kernel
def tokens_hash(history, b, n):
    """A hash of stream b's last n tokens."""
    h = U(0)
    for j in range(n):
        h = (h + U(history[b, j])) * HASH_MULTIPLIER
    return h


@kernel
def slot(h, table):
    """A place in the table (its size a power of two, at most 2**TABLE_BITS) from the high
    bits of hash h, where a multiplicative hash mixes best."""
    return I(h >> U(64 - 2 - TABLE_BITS) & U(table.shape[1] - 1))


@kernel
def match_find(table, state, hashes, m, b, min_length, local, history, ring, position, n_streams, n_bits):
    """Before the token at `position` (of stream b) is coded: hash its context and, without a
    running match, look the context up and verify the place found; then predict."""
    h = tokens_hash(history, b, min_length)
    if local:
        h = (h ^ U(b + 1) * STREAM_MULTIPLIER) * HASH_MULTIPLIER
    hashes[m, b] = h
    ring_mask = len(ring) - 1
    if I(history[b, min_length - 1]) > 0 and state[m, b, LENGTH] == 0:
        found = I(table[m, slot(h, table)]) - 1
        if found >= 0 and position - found <= ring_mask - VERIFY * n_streams:
            length = 0
            while length < VERIFY:
                here, there = position - (length + 1) * n_streams, found - (length + 1) * n_streams
                if there < 0 or ring[here & ring_mask] != ring[there & ring_mask]:
                    break
                length += 1
            state[m, b, LENGTH] = length
            state[m, b, POINTER] = found
    state[m, b, PREDICTED] = I(ring[state[m, b, POINTER] & ring_mask]) | 1 << n_bits
    state[m, b, CLASS] = length_class(state[m, b, LENGTH])


@kernel
def match_record(table, state, hashes, m, b, min_length, history, ring, position, token, n_streams):
    """The token at `position` was coded (already in the ring; history is still before it):
    remember where this context was followed, and let a running match go on or end."""
    if I(history[b, min_length - 1]) > 0:
        table[m, slot(hashes[m, b], table)] = position + 1
    if state[m, b, LENGTH] > 0:
        if I(ring[state[m, b, POINTER] & (len(ring) - 1)]) == token:
            state[m, b, LENGTH] += 1
            state[m, b, POINTER] += n_streams
        else:
            state[m, b, LENGTH] = 0


# ---- offset models ---------------------------------------------------------------------------
# Offset models: the token written as far back as the last time this context was followed.
#
# Records repeat a token at a fixed distance: a changelog line writes a commit's hash, then the
# link to it (`[`8f3a2c`](.../commit/8f3a2c)`); a table row its key in a tag and in an
# attribute. A match model cannot guess the second copy: its context (`commit/`) was last
# followed by the last line's hash. An offset model remembers, per context, how many bytes back
# the token that followed it had last been written, and guesses the token that starts that far
# back now. The nodejs changelog: -3.0% of payload (its second hashes cost 2,073 B, now 184 B);
# enwik6, Python docs and vim notes: 0-0.03%, less than the ~350 B of program this code and
# its state cost in every archive, a cost that vanishes on files of Hutter-prize size.
#
# An offset model is match model m with match_local[m] == OFFSET: the same state (its guess in
# PREDICTED, its class in CLASS, POINTER where it was read), so the mixer and the online model
# weigh it like a match.

OFFSET = 2  # match_local's value for an offset model
OFFSET_LIMIT = 0xFFFF  # the longest distance (bytes) an offset model remembers: less than the text ring


def new_offset_state(n_streams: int, vocab_size: int, ring_bits: int) -> dict:
    return {
        "byte_token": np.zeros((n_streams, 1 << ring_bits), dtype=np.int64),  # per byte of the text ring: the token that starts there (its place in the token ring + 1), else 0
        "last_start": np.full((n_streams, vocab_size), -1, dtype=np.int64),  # per token id: the byte where it last started
    }


@kernel
def offset_find(s, m, b, start, n_bits):
    """An offset model, before stream b's token that starts at byte `start`. The last time
    these match_lengths[m] tokens were followed, the token that followed had been written some
    bytes before; the token that starts that far back now is the guess. Its class: 1 + the
    times in a row that distance held (at most 7); 0: no guess. The table keeps per context
    the times << 16 | the distance, unchecked (a check of the hash: +4 B on enwik6, 0 on nodejs)."""
    state, table, ring = s.match_state, s.match_table, s.token_ring
    h = tokens_hash(s.history, b, s.match_lengths[m])
    s.match_hash[m, b] = h
    entry = I(table[m, slot(h, table)])
    distance = entry & OFFSET_LIMIT
    found = -1
    if 0 < distance <= start:
        found = s.byte_token[b, (start - distance) & (s.byte_token.shape[1] - 1)] - 1
    state[m, b, CLASS] = 1 + (entry >> 16) if found >= 0 else 0
    state[m, b, POINTER] = found
    state[m, b, PREDICTED] = I(ring[found & (len(ring) - 1)]) | 1 << n_bits


@kernel
def offset_record(s, m, b, token, start):
    """After the token that started at byte `start`: a distance that guessed right stays
    (however near the token was written since); else the context takes the distance back to
    where the token last started (0: none within OFFSET_LIMIT)."""
    state, table = s.match_state, s.match_table
    where = slot(s.match_hash[m, b], table)
    entry, before = I(table[m, where]), s.last_start[b, token]
    if state[m, b, CLASS] > 0 and I(s.token_ring[state[m, b, POINTER] & (len(s.token_ring) - 1)]) == token:
        distance, times = entry & OFFSET_LIMIT, min((entry >> 16) + 1, 7)
    else:
        distance, times = (start - before if 0 <= before and start - before <= OFFSET_LIMIT else 0), 0
    table[m, where] = times << 16 | distance
