"""A copy of the decoder package with some modules swapped for others, imported from memory.

The kernels call each other by module globals, which numba binds when it compiles; a kernel
that should call another module's function than the package's needs a copy of every module on
the way. This loads one: the same files under another package name (`_decoder_<tag>`), with
each swapped module's source taken from its replacement. Loaded from memory (no __file__), its
kernels compile anew, never from or into the package's disk cache (jit._njit).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

from submissions.archive import DECODER_DIR


class _Sources(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports `package` and `package.<module>` from a dict of sources."""

    def __init__(self, package: str, sources: dict[str, str]):
        self.package, self.sources = package, sources

    def find_spec(self, name, path=None, target=None):
        if name == self.package or name.startswith(self.package + ".") and name.split(".", 1)[1] in self.sources:
            return importlib.util.spec_from_loader(name, self, is_package=name == self.package)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        stem = "__init__" if module.__name__ == self.package else module.__name__.split(".", 1)[1]
        exec(compile(self.sources[stem], f"<{module.__name__}>", "exec"), module.__dict__)


def decoder_variant(swaps: dict[str, str]):
    """The package `_decoder_<tag>` (imported once per process): the decoder's modules, each
    module named in swaps (file stem) replaced by the one it maps to."""
    package = "_decoder_" + "_".join(f"{a}_as_{b}" for a, b in sorted(swaps.items()))
    if package not in sys.modules:
        sources = {path.stem: path.read_text("utf-8") for path in DECODER_DIR.glob("*.py")}
        sources.update({module: sources[replacement] for module, replacement in swaps.items()})
        sys.meta_path.insert(0, _Sources(package, sources))
    return importlib.import_module(package)
