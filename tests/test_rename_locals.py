"""The decoder program's local renaming: a pure alpha-renaming, or nothing."""

from __future__ import annotations

import ast

import pytest

from submissions.rename_locals import keyword_names, rename_locals


def run(source: str, call: str):
    space: dict = {}
    exec(compile(source, "<test>", "exec"), space)
    return eval(call, space)


def test_locals_and_parameters_get_short_names_and_the_function_computes_the_same():
    source = "def total(values, offset):\n    running = offset\n    for value in values:\n        running += value * value\n    return running\n"
    renamed = rename_locals(source)
    assert "running" not in renamed and "values" not in renamed and len(renamed) < len(source)
    assert run(renamed, "total([1, 2, 3], 4)") == run(source, "total([1, 2, 3], 4)") == 18


def test_globals_builtins_and_attributes_keep_their_names():
    source = "import math\nSCALE = 3\ndef area(radius):\n    result = math.pi * radius ** 2 * SCALE\n    return round(result.real, 3)\n"
    renamed = rename_locals(source)
    assert "math.pi" in renamed and "SCALE" in renamed and "round(" in renamed and ".real" in renamed
    assert "radius" not in renamed and run(renamed, "area(2)") == run(source, "area(2)")


def test_a_name_that_is_also_a_global_is_never_renamed():
    """`total` is a comprehension variable here and a global elsewhere in the same function."""
    source = "total = 10\ndef f(items):\n    squares = [total * 2 for total in items]\n    return squares, total\n"
    renamed = rename_locals(source)
    assert run(renamed, "f([1, 2])") == run(source, "f([1, 2])") == ([2, 4], 10)
    assert "items" not in renamed  # the rest still renamed


def test_parameters_passed_by_keyword_and_method_parameters_keep_their_names():
    source = (
        "def scaled(value, factor):\n    return value * factor\n"
        "class C:\n    def m(self, amount):\n        doubled = amount * 2\n        return doubled\n"
        "x = scaled(2, factor=3) + C().m(amount=1)\n"
    )
    renamed = rename_locals(source, keyword_names([source]))
    assert "factor" in renamed.split("return")[0] and "amount" in renamed and "doubled" not in renamed
    assert run(renamed, "x") == run(source, "x") == 8


@pytest.mark.parametrize(
    "source",
    [
        'def f(name):\n    return f"{name}!"\n',
        "counter = 0\ndef f(step):\n    global counter\n    counter += step\n    return counter\n",
        "def f(value):\n    return eval('value + 1')\n",
        "def f(value):\n    class Box:\n        content = value\n    return Box.content\n",
    ],
    ids=["f-string", "global", "eval", "class-inside"],
)
def test_functions_where_renaming_cannot_be_proven_safe_are_left_alone(source):
    assert rename_locals(source) == source


def test_beside_an_f_string_the_other_names_are_renamed_and_no_new_name_is_one_it_reads():
    """An f-string is copied as written: the names it reads keep theirs (`label`, `total`),
    the others get short ones, and none of them becomes the global `a` it prints."""
    source = (
        "a = 'global'\n"
        "def f(count, label):\n    total = count * 2\n    return f'{label}: {total} {a}'\n"
    )
    renamed = rename_locals(source)
    assert "count" not in renamed and "{label}: {total} {a}" in renamed
    assert run(renamed, "f(2, 'x')") == run(source, "f(2, 'x')") == "x: 4 global"


def test_nested_functions_lambdas_and_comprehensions_are_renamed_consistently():
    source = (
        "def outer(numbers):\n    offset = 1\n    def inner(item):\n        return item + offset\n"
        "    key = lambda pair: -pair[1]\n    pairs = sorted(((inner(n), n) for n in numbers), key=key)\n"
        "    return {first: second for first, second in pairs}\n"
    )
    renamed = rename_locals(source)
    assert "numbers" not in renamed and "offset" not in renamed and "inner" in renamed  # nested def names stay
    assert run(renamed, "outer([3, 1, 2])") == run(source, "outer([3, 1, 2])")
    ast.parse(renamed)


PACKAGE_SOURCES = {
    "pkg": "VERSION = 3\n",
    "pkg.tables": "import math\nSCALE_FACTOR = 7\nLOOKUP = [SCALE_FACTOR * i for i in range(4)]\n\n\ndef scaled_value(value):\n    return value * SCALE_FACTOR + math.floor(0.5)\n\n\ndef named_by_string():\n    return 1\n",
    "pkg.main": (
        "from . import VERSION, tables\nfrom .tables import LOOKUP as TABLE, scaled_value\n\n\n"
        "def compute(n):\n    return scaled_value(n) + TABLE[2] + VERSION + tables.named_by_string() + getattr(tables, 'named_by_string')()\n"
    ),
}


def load(tmp_path, sources: dict[str, str], tag: str):
    import importlib
    import sys

    root = tmp_path / tag
    for name, source in sources.items():
        path = root / (name.replace(".", "/") + ("/__init__.py" if name == "pkg" else ".py"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    sys.path.insert(0, str(root))
    try:
        for name in [n for n in sys.modules if n == "pkg" or n.startswith("pkg.")]:
            del sys.modules[name]
        return importlib.import_module("pkg.main").compute(5)
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if n == "pkg" or n.startswith("pkg.")]:
            del sys.modules[name]


def test_module_level_names_are_renamed_across_the_package_and_it_computes_the_same(tmp_path):
    from submissions.rename_locals import rename_globals

    renamed = rename_globals(PACKAGE_SOURCES, "pkg", keep={"compute"})
    assert "SCALE_FACTOR" not in renamed["pkg.tables"] and "scaled_value" not in renamed["pkg.main"]
    assert "LOOKUP" not in renamed["pkg.main"] and "TABLE" not in renamed["pkg.main"]
    assert "named_by_string" in renamed["pkg.tables"]  # read as an attribute and by string: kept
    assert "import math" in renamed["pkg.tables"] and "compute" in renamed["pkg.main"]  # external names and the entry point stay
    assert load(tmp_path, renamed, "renamed") == load(tmp_path, PACKAGE_SOURCES, "original") == 5 * 7 + 14 + 3 + 2
