"""Field renaming for the archive's decoder: consistent across modules, or nothing at all."""

from __future__ import annotations

from submissions.rename_fields import rename_fields

STATE = '''
from collections import namedtuple
State = namedtuple("State", "counts weights" " history")
def new_state():
    return dict(counts=[0, 0], **{"weights": [1, 2]}, history=[])
'''
USER = '''
from .state import State, new_state
def step(s, header):
    s.counts[0] += s.weights[1]
    s.history.append(header["size"])
    return State(**new_state()).counts
'''


def run(modules: dict[str, str]):
    state: dict = {}
    exec(modules["state"], state)
    user = {"State": state["State"], "new_state": state["new_state"]}
    exec(modules["user"].replace("from .state import State, new_state\n", ""), user)
    s = user["State"](**user["new_state"]())
    return user["step"](s, {"size": 7}), list(s)


def test_fields_are_renamed_everywhere_they_occur_and_the_program_runs_the_same():
    modules = {"state": STATE, "user": USER}
    renamed = rename_fields(modules, ["counts", "weights", "history"])
    assert renamed != modules and all(name not in text for text in renamed.values() for name in ("counts", "weights", "history"))
    assert run(renamed) == run(modules) == ([0, 0], [[2, 0], [1, 2], [7]])


def test_a_field_used_any_other_way_keeps_its_name():
    """A JSON key read by subscript or listed beside other strings, a variable, a keyword of
    another call, an attribute numpy owns: each blocks only its own field."""
    modules = {
        "state": 'from collections import namedtuple\nS = namedtuple("S", "counts weights history shape gamma delta")\n',
        "user": 'def other(s, header, np, history):\n    return header["counts"], np.zeros(3).shape, f(weights=1), s.gamma, s.history, s.delta\n'
                'KEYS = ("delta", "size")  # JSON keys, one of them also a field\n',
    }
    renamed = rename_fields(modules, ["counts", "weights", "history", "shape", "gamma", "delta"])
    assert renamed["state"].count("counts weights history shape") == 1 and "gamma" not in renamed["state"] + renamed["user"]
    assert '("delta", "size")' in renamed["user"] and "s.delta" in renamed["user"]


def test_an_f_string_reading_a_field_blocks_it():
    modules = {"m": 'from collections import namedtuple\nS = namedtuple("S", "alpha beta")\ndef show(s):\n    return f"{s.alpha}", s.beta\n'}
    renamed = rename_fields(modules, ["alpha", "beta"])["m"]
    assert "s.alpha" in renamed and "beta" not in renamed
    scope: dict = {}
    exec(renamed, scope)
    assert scope["show"](scope["S"](1, 2)) == ("1", 2)


def test_a_record_extending_another_by_its_fields_is_renamed_in_both():
    """`namedtuple("B", " ".join(A._fields) + " more")`: the strings inside namedtuple's
    arguments are field lists; both records keep working, with the same short names."""
    modules = {
        "m": "from collections import namedtuple\nA = namedtuple('A', 'alpha beta')\nB = namedtuple('B', ' '.join(A._fields) + ' gamma')\n"
        "def total(s):\n    return s.alpha + s.beta\ndef more(s):\n    return total(s) * s.gamma\n"
    }
    renamed = rename_fields(modules, ["alpha", "beta", "gamma"])["m"]
    assert not any(name in renamed for name in ("alpha", "beta", "gamma"))
    scope: dict = {}
    exec(renamed, scope)
    assert scope["B"]._fields[:2] == scope["A"]._fields and scope["more"](scope["B"](1, 2, 3)) == 9 and scope["total"](scope["A"](1, 2)) == 3


def test_nothing_to_rename_returns_the_modules():
    modules = {"m": "x = 1\n"}
    assert rename_fields(modules, ["counts"]) == modules
