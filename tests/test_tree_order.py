"""The tree order of token ids (pipeline/tree_order.py): a permutation that keeps the pinned
bytes, groups tokens that follow the same contexts, and never changes what the ids spell."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import ContextModelConfig, MixingModelConfig, PipelineConfig
from pipeline.pack import _coding_ids
from pipeline.tree_order import relabel, tree_order
from tokenizer.table import detokenize, leading_bytes


def _class_stream(n: int, seed: int = 0) -> np.ndarray:
    """Tokens of a 16-id vocabulary: after an even id comes a random even one, after an odd id
    a random odd one, switching class now and then. Ids 0-7 and 8-15 each hold both classes, so the
    byte-order split (0-7 | 8-15) says nothing; the even | odd split says almost everything."""
    rng = np.random.default_rng(seed)
    out, parity = [], 0
    for _ in range(n):
        if rng.random() < 0.02:
            parity ^= 1
        out.append(2 * int(rng.integers(8)) + parity)
    return np.array(out, dtype=np.int64)


def test_the_top_split_separates_the_classes_the_contexts_tell_apart():
    order = tree_order(_class_stream(20_000), 16)
    top = {int(i) % 2 for i in order[:8]}
    assert len(top) == 1 and {int(i) % 2 for i in order[8:]} == {1 - top.pop()}


def test_the_order_is_a_permutation_that_keeps_pinned_ids_and_repeats_itself():
    tokens = _class_stream(5_000, seed=1)
    order = tree_order(tokens, 16, pinned=4)
    assert sorted(order) == list(range(16))
    assert list(order[:4]) == [0, 1, 2, 3]
    assert np.array_equal(order, tree_order(tokens, 16, pinned=4))


def test_too_short_an_input_keeps_the_tokenizer_s_order():
    assert np.array_equal(tree_order(np.array([3, 1]), 8), np.arange(8))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 31), min_size=0, max_size=400), st.integers(0, 8))
def test_relabelled_ids_spell_the_same_bytes(ids, pinned):
    table = [bytes([i]) for i in range(8)] + [bytes([65 + i % 26]) * (1 + i % 3) for i in range(24)]
    tokens = np.array(ids, dtype=np.uint16)
    new_tokens, new_table = relabel(tokens, table, tree_order(tokens, 32, pinned=pinned), block=7)
    assert new_tokens.dtype == tokens.dtype
    assert detokenize(new_tokens, new_table) == detokenize(tokens, table)
    assert new_table[:pinned] == table[:pinned]


def test_leading_bytes_counts_the_single_bytes_in_place():
    assert leading_bytes([bytes([i]) for i in range(256)] + [b"ab"]) == 256
    assert leading_bytes([b"\x00", b"\x01", b"x", b"\x03"]) == 2
    assert leading_bytes([b"ab"]) == 0


class _Tokenizer:
    vocab_size = 16
    table = [bytes([i]) for i in range(4)] + [b"p%d" % i for i in range(12)]


def test_pack_numbers_tokens_in_tree_order_only_where_asked_and_binary():
    tokens = _class_stream(5_000)
    mix = PipelineConfig(model=MixingModelConfig())
    ordered, table, applied = _coding_ids(mix, _Tokenizer(), tokens, True)
    assert applied and table != _Tokenizer.table and table[:4] == _Tokenizer.table[:4]
    assert detokenize(ordered, table) == detokenize(tokens, _Tokenizer.table)
    for config, ordered in ((mix, False), (PipelineConfig(model=ContextModelConfig()), True)):  # off (the default); a model coding whole tokens
        same, table, applied = _coding_ids(config, _Tokenizer(), tokens, ordered)
        assert same is tokens and table == _Tokenizer.table and not applied


def test_ranks_other_than_the_first_code_with_the_first_rank_s_order(monkeypatch):
    """Under torchrun only rank 0 fits the order (the archive carries its table); the others
    take it from rank 0, never fitting their own (a float fit could differ by machine)."""
    import pipeline.pack as pack_module
    from pipeline.distributed import World

    broadcast = np.array([0, 1, 2, 3, *range(15, 3, -1)])
    monkeypatch.setattr(pack_module, "launched_world", lambda: World(rank=1, size=2, local_rank=1))
    monkeypatch.setattr(pack_module, "wait_for_main", lambda order: broadcast if order is None else pytest.fail("rank 1 fitted an order"))
    monkeypatch.setattr(pack_module, "tree_order", lambda *args, **kwargs: pytest.fail("rank 1 fitted an order"))
    tokens = _class_stream(500)
    ordered, table, applied = _coding_ids(PipelineConfig(model=MixingModelConfig()), _Tokenizer(), tokens, True)
    assert applied and table == [_Tokenizer.table[i] for i in broadcast]
    assert detokenize(ordered, table) == detokenize(tokens, _Tokenizer.table)
