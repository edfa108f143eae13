"""Shorter local names for the decoder program an archive carries (its bytes count in the score).

Inside each module-level function (and each method), the names the function binds itself -
its locals, and the parameters of module-level functions - get one- or two-letter names, the
most used first. A pure alpha-renaming, applied only where it is provably one:

- a function is left alone if it holds a `global`/`nonlocal` statement, a class, an f-string
  (its inner names are not separate tokens before Python 3.12), or a call of `locals`, `vars`,
  `eval` or `exec`;
- names that are also module globals or builtins are never renamed (so every occurrence of a
  renamed name inside the function is one of the function's own bindings), nor names bound by
  imports, `except ... as`, or nested `def`s;
- parameters keep their names where any call in the program passes them by keyword, and
  methods keep all of theirs (callers may name them);
- a new name never appears anywhere in the module.

Edits are made in the original text at the AST's positions, and the result must parse to the
original AST with the same renaming applied, else the source is returned unchanged.
"""

from __future__ import annotations

import ast
import builtins
import io
import tokenize
from collections import Counter

_UNSAFE_CALLS = {"locals", "vars", "eval", "exec"}
_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def keyword_names(sources: list[str]) -> set[str]:
    """Every keyword argument name passed by a call in these sources (but `dict(key=...)`,
    whose keywords are dictionary keys)."""
    calls = [node for source in sources for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Call)]
    return {k.arg for call in calls if not (isinstance(call.func, ast.Name) and call.func.id == "dict") for k in call.keywords if k.arg}


def _module_globals(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        for sub in ast.walk(node) if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else [node]:
            if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(sub.name)
            elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                names.add(sub.id)
            elif isinstance(sub, ast.alias):
                names.add((sub.asname or sub.name).split(".")[0])
    return names


def _functions(tree: ast.Module) -> list[tuple[ast.AST, bool]]:
    """(function, is a method) for every module-level function and method."""
    found = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found.append((node, False))
        elif isinstance(node, ast.ClassDef):
            found += [(item, True) for item in node.body if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return found


def _renamable(function: ast.AST, is_method: bool, keep: set[str]) -> Counter:
    """The names this function may rename, with how often each occurs; empty if none may."""
    own_params = {a.arg for a in _arguments(function.args)}
    bound, fixed, uses = set(), set(), Counter()
    for node in ast.walk(function):
        if isinstance(node, (ast.Global, ast.Nonlocal, ast.ClassDef, ast.JoinedStr)):
            return Counter()
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _UNSAFE_CALLS:
            return Counter()
        if isinstance(node, ast.Name):
            uses[node.id] += 1
            if isinstance(node.ctx, (ast.Store, ast.Del)):
                bound.add(node.id)
        elif isinstance(node, ast.arg):
            uses[node.arg] += 1
            bound.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            if node is not function and not isinstance(node, ast.Lambda):
                fixed.add(node.name)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            fixed.add(node.name)
        elif isinstance(node, ast.alias):
            fixed.add((node.asname or node.name).split(".")[0])
    if is_method:
        fixed |= own_params
    fixed |= {p for p in own_params if p in keep}
    return Counter({name: n for name, n in uses.items() if name in bound and name not in fixed and name not in keep})


def _arguments(args: ast.arguments) -> list[ast.arg]:
    return [*args.posonlyargs, *args.args, *args.kwonlyargs, *([args.vararg] if args.vararg else []), *([args.kwarg] if args.kwarg else [])]


def _short_names(taken: set[str]):
    for length in (1, 2):
        for i in range(len(_LETTERS) ** length):
            name = "".join(_LETTERS[i // len(_LETTERS) ** j % len(_LETTERS)] for j in range(length))
            if name not in taken:
                yield name


class _Rename(ast.NodeTransformer):
    def __init__(self, mapping: dict[str, str]):
        self.mapping = mapping

    def visit_Name(self, node):
        node.id = self.mapping.get(node.id, node.id)
        return node

    def visit_arg(self, node):
        node.arg = self.mapping.get(node.arg, node.arg)
        self.generic_visit(node)
        return node


def rename_locals(source: str, keep: set[str] = frozenset()) -> str:
    """`source` with each function's own names shortened (see the module docstring); `keep`:
    names never to rename (e.g. keyword_names of the whole program)."""
    tree = ast.parse(source)
    words = {t.string for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type == tokenize.NAME}
    keep = set(keep) | _module_globals(tree) | set(dir(builtins))
    edits, plans = [], []
    for function, is_method in _functions(tree):
        counts = _renamable(function, is_method, keep)
        names = _short_names(words | keep)
        mapping = {name: next(names) for name, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))}
        mapping = {old: new for old, new in mapping.items() if len(new) < len(old)}
        if not mapping:
            continue
        plans.append((function, mapping))
        for node in ast.walk(function):
            if isinstance(node, ast.Name) and node.id in mapping:
                edits.append((node.lineno, node.col_offset, node.end_col_offset, mapping[node.id]))
            elif isinstance(node, ast.arg) and node.arg in mapping:
                edits.append((node.lineno, node.col_offset, node.col_offset + len(node.arg.encode("utf-8")), mapping[node.arg]))
    lines = [line.encode("utf-8") for line in source.splitlines(keepends=True)]
    for row, start, end, new in sorted(edits, reverse=True):
        lines[row - 1] = lines[row - 1][:start] + new.encode("utf-8") + lines[row - 1][end:]
    renamed = b"".join(lines).decode("utf-8")
    for function, mapping in plans:  # the expected program: the same renaming on the AST
        _Rename(mapping).visit(function)
    try:
        same = ast.dump(ast.parse(renamed)) == ast.dump(tree)
    except SyntaxError:
        same = False
    return renamed if same else source  # never ship a program that differs from the tested one
