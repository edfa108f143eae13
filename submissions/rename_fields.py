"""Shorter names for the fields of the decoder's state record, program-wide (their bytes count
in the score: every kernel reads its arrays as `s.name`, ~300 times in the mixing model).

A field is renamed everywhere it occurs: as an attribute (`s.buckets`), as a keyword of a
`dict(...)` call (`dict(buckets=...)`, a key) and inside string constants that are the name
itself (`{"buckets": ...}`) or lists of such names (the namedtuple's field string). Only where
that is provably the whole story:

- a field is left alone if the program also uses its name in any other way: a variable, a
  parameter, a function or class, an import, a keyword of any other call, a word of any other
  string, of a display that also holds other strings, or of a string read any other way (a
  subscript, `.get`: a JSON key), anything inside an f-string, or an attribute that numpy,
  numba or the standard library could own (their modules and arrays are checked by name);
- a new name occurs nowhere in the program, not even inside a string.

Edits are made token by token in the original text, and the result must parse to the original
AST with the same renaming applied, in every module, else every module is returned unchanged.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import io
import re
import tokenize
from collections import Counter

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _string_value(token: tokenize.TokenInfo):
    """The str a plain string token spells, else None (f-strings, bytes)."""
    try:
        value = ast.literal_eval(token.string)
    except (ValueError, SyntaxError):
        return None
    return value if isinstance(value, str) and not token.string.lstrip("rRuU").startswith(("f", "F")) else None


def _foreign_attributes(trees: dict[str, ast.Module]) -> set[str]:
    """Attribute names the modules the program imports (and their arrays) could own."""
    names = set(dir(builtins)) | set(dir(object))
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and not getattr(node, "level", 0):
                for module in [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]:
                    try:
                        imported = importlib.import_module(module)
                    except ImportError:
                        continue
                    names |= set(dir(imported))
                    for value in vars(imported).values():
                        names |= set(dir(value)) if isinstance(value, type) else set()
    import numpy as np

    return names | set(dir(np.ndarray)) | set(dir(np.dtype)) | set(dir(np.generic))


def _listed(tree: ast.Module, fields: set[str]) -> set[int]:
    """ids of the string constants that may name fields: the keys of a dict display, the items
    of a tuple or list display, where every one of them names fields only (a display that also
    holds another name is a list of JSON keys or the like), and the strings inside the arguments
    of namedtuple(...) (`namedtuple("B", " ".join(A._fields) + " more fields")`).
    A string read any other way (a subscript, `.get`, a comparison: a JSON key) blocks its words."""

    def all_fields(nodes) -> bool:
        return all(isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value.split() and set(n.value.split()) <= fields for n in nodes)

    found = set()
    for node in ast.walk(tree):
        items = node.keys if isinstance(node, ast.Dict) else node.elts if isinstance(node, (ast.Tuple, ast.List)) else None
        if items is not None and all_fields(items):
            found.update(id(k) for k in items)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "namedtuple":
            found.update(id(n) for a in node.args for n in ast.walk(a) if isinstance(n, ast.Constant))
    return found


def _blocked(trees: dict[str, ast.Module], fields: set[str]) -> set[str]:
    """The fields some use other than an attribute, a dict key or a field list blocks."""
    blocked = set()
    for tree in trees.values():
        listed = _listed(tree, fields)
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                blocked.add(node.id)
            elif isinstance(node, ast.arg):
                blocked.add(node.arg)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                blocked.add(node.name)
            elif isinstance(node, ast.alias):
                blocked.update((node.asname or node.name).split("."))
            elif isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id == "dict"):
                blocked.update(k.arg for k in node.keywords if k.arg)
            elif isinstance(node, ast.JoinedStr):
                blocked.update(n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute))
                blocked.update(w for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str) for w in n.value.split())
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                words = node.value.split()
                if not (id(node) in listed and words and all(w in fields for w in words)):
                    blocked.update(w for w in node.value.replace(".", " ").split())
    return blocked | _foreign_attributes(trees)


def _field_list(value: str, fields: set[str], mapping: dict[str, str]):
    """A string of field names (separators kept) with the renamed ones renamed; else None."""
    if not value.split() or not all(w in fields for w in value.split()):
        return None
    return re.sub(r"\S+", lambda word: mapping.get(word.group(), word.group()), value)


class _Expected(ast.NodeTransformer):
    """The original AST with the renaming applied: what the edited text must parse to."""

    def __init__(self, mapping: dict[str, str], fields: set[str]):
        self.mapping, self.fields = mapping, fields

    def visit_Attribute(self, node):
        self.generic_visit(node)
        node.attr = self.mapping.get(node.attr, node.attr)
        return node

    def visit_keyword(self, node):
        self.generic_visit(node)
        node.arg = self.mapping.get(node.arg, node.arg) if node.arg else None
        return node

    def visit_Constant(self, node):
        if isinstance(node.value, str):
            node.value = _field_list(node.value, self.fields, self.mapping) or node.value
        return node


def _edit(source: str, mapping: dict[str, str], fields: set[str]) -> str:
    lines = [line.encode("utf-8") for line in source.splitlines(keepends=True)]
    edits = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        new = None
        if token.type == tokenize.NAME and token.string in mapping:
            new = mapping[token.string]
        elif token.type == tokenize.STRING and token.start[0] == token.end[0]:
            value = _string_value(token)
            renamed = _field_list(value, fields, mapping) if value is not None else None
            if renamed is not None and token.string[0] in "'\"" and token.string[1:-1] == value:  # plain quotes, no escapes
                new = token.string[0] + renamed + token.string[-1]
        if new is not None:
            line = lines[token.start[0] - 1]
            start = len(line.decode("utf-8")[: token.start[1]].encode("utf-8"))
            end = len(line.decode("utf-8")[: token.end[1]].encode("utf-8"))
            edits.append((token.start[0], start, end, new))
    for row, start, end, new in sorted(edits, reverse=True):
        lines[row - 1] = lines[row - 1][:start] + new.encode("utf-8") + lines[row - 1][end:]
    return b"".join(lines).decode("utf-8")


def rename_fields(modules: dict[str, str], fields: list[str]) -> dict[str, str]:
    """`modules` (name -> source) with the given record fields shortened where provably safe
    (see the module docstring); the most used field gets the shortest name."""
    trees = {name: ast.parse(source) for name, source in modules.items()}
    blocked = _blocked(trees, set(fields))
    uses = Counter()
    taken = set()
    for source in modules.values():
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.NAME:
                taken.add(token.string)
                uses[token.string] += token.string in fields
            elif token.type == tokenize.STRING:
                value = _string_value(token)
                taken.update((value or token.string).replace(".", " ").split())
                uses.update(w for w in (value or "").split() if w in fields)
    candidates = sorted((f for f in set(fields) - blocked if uses[f]), key=lambda f: (-uses[f] * len(f), f))
    names = (a + b for a in _LETTERS for b in _LETTERS if a + b not in taken)
    mapping = {}
    for field in candidates:
        new = next(names)
        if len(new) < len(field):
            mapping[field] = new
    if not mapping:
        return dict(modules)
    renamed = {name: _edit(source, mapping, set(fields)) for name, source in modules.items()}
    for name, tree in trees.items():
        try:
            same = ast.dump(ast.parse(renamed[name])) == ast.dump(_Expected(mapping, set(fields)).visit(tree))
        except SyntaxError:
            same = False
        if not same:
            return dict(modules)  # never ship a program that differs from the tested one
    return renamed
