"""Shorter names for the decoder program an archive carries (its bytes count in the score):
locals per function (rename_locals), module-level names program-wide (rename_globals).

Inside each module-level function (and each method), the names the function binds itself -
its locals, and the parameters of module-level functions - get one- or two-letter names, the
most used first. A pure alpha-renaming, applied only where it is provably one:

- a function is left alone if it holds a `global`/`nonlocal` statement, a class, or a call of
  `locals`, `vars`, `eval` or `exec`;
- names read inside an f-string keep their names, and no new name is one of them (before Python
  3.12 an f-string is one token: its text is never edited);
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
        if isinstance(node, (ast.Global, ast.Nonlocal, ast.ClassDef)):
            return Counter()
        if isinstance(node, ast.JoinedStr):
            fixed.update(_fstring_names(node))
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


def _fstring_names(node: ast.AST) -> set[str]:
    return {n.id for f in ast.walk(node) if isinstance(f, ast.JoinedStr) for n in ast.walk(f) if isinstance(n, ast.Name)}


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
    words = {t.string for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type == tokenize.NAME} | _fstring_names(tree)
    keep = set(keep) | _module_globals(tree) | set(dir(builtins))
    edits, plans, taken = [], [], words | keep
    for function, is_method in _functions(tree):
        counts = _renamable(function, is_method, keep)
        names = _short_names(taken)
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


def _relative_aliases(tree: ast.Module, package_modules: set[str]) -> list[ast.alias]:
    """The names a module imports from the decoder package (`from .x import name`), without
    the submodules themselves (`from . import codec`)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            found += [a for a in node.names if node.module or a.name not in package_modules]
    return found


def _blocked_globals(trees: dict[str, ast.Module], package_modules: set[str]) -> set[str]:
    """Names a program-wide renaming must not touch: anything read as an attribute or written
    as a string (getattr, the model registry), bound inside a function or a class body (a
    local or a field of the same name), named by `global`, inside an f-string, or imported
    from outside the package."""
    blocked = set(package_modules)
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                blocked.add(node.attr)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                blocked.update(node.value.replace(".", " ").split())
            elif isinstance(node, (ast.Global, ast.Nonlocal)):
                blocked.update(node.names)
            elif isinstance(node, ast.JoinedStr):
                blocked.update(n.id for n in ast.walk(node) if isinstance(n, ast.Name))
            elif isinstance(node, ast.ClassDef):
                blocked.add(node.name)
                blocked.update(n.id for item in node.body for n in ast.walk(item) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store) and not isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)))
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                blocked.update(a.arg for a in _arguments(node.args))
                for sub in ast.walk(node):
                    if sub is not node and isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        blocked.add(sub.name)
                    elif isinstance(sub, ast.Name) and isinstance(sub.ctx, (ast.Store, ast.Del)):
                        blocked.add(sub.id)
                    elif isinstance(sub, ast.ExceptHandler) and sub.name:
                        blocked.add(sub.name)
                    elif isinstance(sub, ast.alias):
                        blocked.add((sub.asname or sub.name).split(".")[0])
            elif isinstance(node, ast.Import):
                blocked.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                blocked.update(a.asname or a.name for a in node.names)
    return blocked


def rename_globals(modules: dict[str, str], package: str, keep: set[str] = frozenset()) -> dict[str, str]:
    """The decoder package's module-level functions and constants renamed to short names,
    program-wide (definitions, uses and `from .x import` lines alike), where nothing but a
    plain name reaches them (see _blocked_globals); `modules`: module name -> source; `keep`:
    names never to rename (the entry points that code outside the package imports). All
    modules are returned unchanged if any edit does not check out."""
    trees = {name: ast.parse(source) for name, source in modules.items()}
    submodules = {name.rsplit(".", 1)[-1] for name in modules if name != package}
    defined = Counter()
    for tree in trees.values():
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                defined[node.name] += 1
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                defined.update(n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store))
        defined.update(a.asname or a.name for a in _relative_aliases(tree, submodules))
    blocked = _blocked_globals(trees, submodules) | set(keep) | set(dir(builtins))
    uses = Counter(n.id for tree in trees.values() for n in ast.walk(tree) if isinstance(n, ast.Name))
    candidates = sorted((name for name in defined if name not in blocked and not name.startswith("__")), key=lambda n: (-uses[n] * len(n), n))
    words = {t.string for source in modules.values() for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type == tokenize.NAME}
    short = _short_names(words | blocked)
    mapping = {old: new for old in candidates if len(new := next(short)) < len(old)}
    renamed = {}
    for name, source in modules.items():
        edited = _edit_globals(source, trees[name], mapping, submodules)
        if edited is None:
            return dict(modules)
        renamed[name] = edited
    return renamed


def _edit_globals(source: str, tree: ast.Module, mapping: dict[str, str], submodules: set[str]) -> str | None:
    lines = [line.encode("utf-8") for line in source.splitlines(keepends=True)]
    edits = []  # (row, start, end, old, new), columns in bytes

    def at(row: int, start: int, old: str) -> None:
        edits.append((row, start, start + len(old.encode("utf-8")), old, mapping[old]))

    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in mapping:
            at(node.lineno, node.col_offset, node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in mapping:
            line = lines[node.lineno - 1]
            start = line.find(b"def ", node.col_offset) + 4
            at(node.lineno, start, node.name)
    for alias in _relative_aliases(tree, submodules):
        if alias.name in mapping:
            at(alias.lineno, alias.col_offset, alias.name)
        if alias.asname in mapping:
            at(alias.end_lineno, alias.end_col_offset - len(alias.asname.encode("utf-8")), alias.asname)
    for row, start, end, old, new in sorted(edits, reverse=True):
        if lines[row - 1][start:end] != old.encode("utf-8"):
            return None
        lines[row - 1] = lines[row - 1][:start] + new.encode("utf-8") + lines[row - 1][end:]
    renamed = b"".join(lines).decode("utf-8")
    expected = _MapAll(mapping, submodules).visit(tree)
    try:
        return renamed if ast.dump(ast.parse(renamed)) == ast.dump(expected) else None
    except SyntaxError:
        return None


class _MapAll(_Rename):
    """The program-wide renaming on an AST: the check of the text edits (no argument has a
    renamed name: _blocked_globals holds every argument name)."""

    def __init__(self, mapping: dict[str, str], submodules: set[str]):
        super().__init__(mapping)
        self.submodules = submodules

    def visit_FunctionDef(self, node):
        node.name = self.mapping.get(node.name, node.name)
        self.generic_visit(node)
        return node

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ImportFrom(self, node):
        if node.level > 0:
            for alias in node.names:
                if node.module or alias.name not in self.submodules:
                    alias.name = self.mapping.get(alias.name, alias.name)
                    alias.asname = alias.asname and self.mapping.get(alias.asname, alias.asname)
        return node
