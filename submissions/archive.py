"""Writing and inspecting archives (project side).

An archive is one zip application holding everything needed to restore the file:
the decoder program, the JSON header and the binary sections. Its size on disk is
the score; `inspect` splits that size into parts that add up exactly. The sections
(tokenizer table, payload, weights) follow the program inside `d`, sized by the
header: a zip member of their own would cost each ~80 bytes of zip records.

The decoder program is two members: `d`, the modules of submissions/decoder that
the model kind needs (minified, see `minify_source`) in one LZMA stream, and a
tiny `__main__.py` that decompresses them and installs them as the package
`decoder` through a meta-path finder, so relative and lazy imports inside the
package work as they do in the repo. One compressed stream instead of a deflated
member per module saves the per-member zip records and lets the modules share
their vocabulary. An archive of a compiled model (mix, online) puts in that stream
only the modules that run its model; the rest of the program (SECOND_PART) follows
the stream, coded by the model itself after it has read the first part
(submissions/decoder/program.py): 270-380 B less than LZMA alone on enwik6. The JSON header rides in the same stream (as the part `h`, which no
import asks for): its keys are words of the program, so it costs ~340 bytes there
against ~670 as a deflated member of its own. The zip CRC-32 of `d` is checked when
it is read (submissions/decoder/container.py lists the members).
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import functools
import io
import json
import lzma
import tokenize
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from token import EXACT_TOKEN_TYPES

import numpy as np

from submissions.errors import UserError
from submissions.fileio import atomic_write_bytes, check_output, require_file
from submissions.decoder import FORMAT_VERSION
from submissions.decoder.header import Header, HeaderError
from submissions.rename_fields import rename_fields
from submissions.rename_locals import keyword_names, rename_globals, rename_locals
from submissions.decoder.mixing_model import MixConfig
from submissions.decoder.mixing_steps import MixState
from submissions.decoder.online_alone import DirectState
from submissions.decoder.model_registry import MODEL_KINDS, model_class
from submissions.decoder.container import (
    HEADER,
    MODEL,
    PAYLOAD,
    PROGRAM,
    TOKENIZER,
    ArchiveCorrupt,
    program_parts,
    read_archive,
)
from submissions.decoder import program
from submissions.decoder.encoding import RansEncoder

DECODER_DIR = Path(__file__).resolve().parent / "decoder"
PACKAGE = "decoder"  # the decoder's package name inside an archive
# .lzma ("alone") format: `lzma.decompress` reads it with no arguments (the settings travel in
# its header), and LZMA1 with text-tuned literal coding (pb=0) beats deflate by ~5% on this
# source; lc=2 and nice_len=64 save ~30 B against lc=3 and 273 (2026-12-05, mix and online).
LZMA_FILTERS = [{"id": lzma.FILTER_LZMA1, "preset": 9 | lzma.PRESET_EXTREME, "dict_size": 1 << 20, "lc": 2, "lp": 0, "pb": 0, "nice_len": 64}]
# `__main__.py`: unpack the modules (M: module name -> source) and serve them to `import` as the
# package `decoder` through a meta-path finder (F), ahead of sys.path; then run decoder.restore.
# Modules travel as "name\nsource" joined by NUL, a character no Python source can hold.
# A corrupted `d` fails its zip CRC-32 (or LZMA), a module that does not load fails the import:
# either is one `error:` line (E) and exit 2; restore.main turns every later failure into one.
# After the LZMA stream (D.unused_data): the program's coded second part, where the first part has
# program.py, and the sections.
# Written tersely on purpose: every byte here is in every archive.
BOOTSTRAP = r"""import sys,lzma,zipfile
from importlib.util import spec_from_loader as S
def E(m):sys.stderr.write("error: corrupted archive: its decoder program does not "+" ".join(m.split())+"\n");sys.exit(2)
try:D=lzma.LZMADecompressor();M=dict(p.split("\n",1)for p in D.decompress(zipfile.ZipFile(sys.argv[0]).read("d")).decode().split("\0"))
except Exception as e:E(f"unpack ({e})")
class F:
 def find_spec(s,n,*a):
  if n in M:return S(n,s,is_package=n=="decoder")
 def create_module(s,p):0
 def exec_module(s,m):exec(compile(M[m.__name__],m.__name__,"exec"),m.__dict__)
sys.meta_path.insert(0,F())
try:
 if"decoder.program"in M:from decoder.program import unpack;M.update(unpack(D.unused_data,M))
 from decoder.restore import main
except Exception as e:E(f"load ({type(e).__name__}: {e})")
sys.exit(main())
"""
PART_OF_SECTION = {TOKENIZER: "tokenizer", MODEL: "model", PAYLOAD: "payload"}  # the rest of the archive is the decoder (and the header inside it)
OLD_HEADER_MEMBER = "header.json"  # formats 3-6: the header was a deflated member of its own
ZIP_END_RECORD = 22  # bytes of the end-of-central-directory record (no comment)
FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # reproducible archives: same input, same bytes


CODED_KINDS = ("mix", "online")  # program kinds whose model codes the second part of their program
SECOND_PART = {"restore", "header", "tokens", "container", "codec"}  # modules no model needs to run (program.py)
PROJECT_ONLY_MODULES = {"encoding", "kernel_cache", "online_given"}  # the encoder side, the disk cache of kernels, the torch backend's stand-in: archives never need them
STAND_INS = {"online_model": "online_off", "neural_input": "neural_off"}  # a module and the file shipped in its place where the model leaves it unused


class ArchiveError(UserError):
    """A file that is not a valid archive or fails its checksums."""


@dataclass(frozen=True)
class ArchiveInfo:
    path: Path
    total_bytes: int
    parts: dict[str, int]
    original_size: int
    original_sha256: str
    runtime: list[str]
    config: dict
    header: dict = field(repr=False)


def _docstring_nodes(tree: ast.AST) -> list[tuple[ast.AST, ast.Expr]]:
    """(owner, docstring statement) for the module, every class and every function."""
    found = []
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                found.append((node, body[0]))
    return found


def _annotated(tree: ast.AST) -> list[ast.arg]:
    """Function arguments with an annotation."""
    return [node for node in ast.walk(tree) if isinstance(node, ast.arg) and node.annotation is not None]


def _future_annotations(tree: ast.Module) -> list[ast.ImportFrom]:
    """The module's `from __future__ import annotations` statements."""
    return [node for node in tree.body if isinstance(node, ast.ImportFrom) and node.module == "__future__" and [a.name for a in node.names] == ["annotations"]]


def _builtin_annotations_only(tree: ast.Module) -> bool:
    """Whether every variable annotation is a builtin's name (`kind: str = ...` of a dataclass):
    such annotations evaluate the same without `from __future__ import annotations`."""
    return all(isinstance(node.annotation, ast.Name) and hasattr(builtins, node.annotation.id) for node in ast.walk(tree) if isinstance(node, ast.AnnAssign))


def _byte_position(token: tokenize.TokenInfo, position: tuple[int, int]) -> tuple[int, int]:
    """(line, column in bytes) of a (line, column in characters) within a token's line."""
    row, col = position
    line = token.line.splitlines(keepends=True)[row - token.start[0]] if token.line else ""
    return row, len(line[:col].encode("utf-8"))


def _without_docstrings(tree: ast.Module) -> str:
    """AST dump with every docstring dropped, or replaced by `pass` where it is the whole body
    of a function or class (a body must not be empty), and without argument and return
    annotations, nor `from __future__ import annotations` where every variable annotation is
    a builtin's name: exactly what stripping may change."""
    if _builtin_annotations_only(tree):
        futures = _future_annotations(tree)
        tree.body = [node for node in tree.body if node not in futures]
    for owner, docstring in _docstring_nodes(tree):
        if owner is tree or len(owner.body) > 1:
            owner.body = owner.body[1:]
        else:
            owner.body[0] = ast.Pass()
    for node in _annotated(tree):
        node.annotation = None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            node.returns = None
    return ast.dump(tree, include_attributes=False)


def strip_source(source: str) -> str:
    """Same program, fewer bytes: comments, docstrings (a docstring that is a whole body becomes
    `pass`) and the annotations of function arguments and returns dropped. The decoder never
    reads annotations (every module has `from __future__ import annotations`, so they are not
    even evaluated); variable annotations stay, since dataclass fields are made of them. That
    import goes too where every variable annotation left is a builtin's name (`str`, `int`, ...),
    which evaluates the same without it.

    Edits are made in the original text (never re-generated from the AST), so the
    archive runs on every Python version the source itself runs on; the result is
    checked to parse to the same AST, else the source is shipped unchanged.
    """
    lines = [line.encode("utf-8") for line in source.splitlines(keepends=True)]
    cuts = []  # (first line, first col, last line, end col, replacement); lines 1-based, cols in bytes
    tree = ast.parse(source)
    for owner, node in _docstring_nodes(tree):
        replacement = b"" if owner is tree or len(owner.body) > 1 else b"pass"  # nothing may precede `from __future__`
        cuts.append((node.lineno, node.col_offset, node.end_lineno, node.end_col_offset, replacement))
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    for i, token in enumerate(tokens):
        if token.type == tokenize.COMMENT:
            cuts.append((*_byte_position(token, token.start), *_byte_position(token, token.end), b""))
        elif token.type == tokenize.OP and token.string == "->":  # `) -> int:` -> `):`, brackets and all
            depth, j = 0, i + 1
            while depth or tokens[j].string != ":":
                depth += (tokens[j].string in ("(", "[", "{")) - (tokens[j].string in (")", "]", "}"))
                j += 1
            cuts.append((*_byte_position(tokens[i - 1], tokens[i - 1].end), *_byte_position(tokens[j], tokens[j].start), b""))
    if _builtin_annotations_only(tree):  # with argument and return annotations gone, the import changes nothing
        for node in _future_annotations(tree):
            cuts.append((node.lineno, node.col_offset, node.end_lineno, node.end_col_offset, b""))
    for node in _annotated(tree):  # `x: int = 1` -> `x = 1`: from the end of the name to the end of the annotation
        first, col = node.lineno, node.col_offset + len(node.arg.encode("utf-8"))
        cuts.append((first, col, node.annotation.end_lineno, node.annotation.end_col_offset, b""))
    for first, col, last, end_col, replacement in sorted(cuts, reverse=True):
        head, tail = lines[first - 1][:col], lines[last - 1][end_col:]
        lines[first - 1 : last] = [head + replacement + tail]
    stripped = "\n".join(line.rstrip() for line in b"".join(lines).decode("utf-8").splitlines()) + "\n"
    return stripped if _same_program(stripped, source) else source  # never ship a program that differs from the tested one


def _same_program(new: str, old: str) -> bool:
    try:
        return _without_docstrings(ast.parse(new)) == _without_docstrings(ast.parse(old))
    except (SyntaxError, ValueError):  # e.g. `def f(): "doc"; x = 1` would lose its docstring badly
        return False


_OPERATORS = tuple(EXACT_TOKEN_TYPES) + ("<>",)  # every operator and delimiter (`<>`: PEP 401)
_FSTRING_START = getattr(tokenize, "FSTRING_START", None)  # Python 3.12+ splits f-strings into tokens
_FSTRING_END = getattr(tokenize, "FSTRING_END", None)
_SKIPPED = (tokenize.NL, tokenize.COMMENT, tokenize.ENCODING)


def _word(char: str) -> bool:
    return ("_" + char).isidentifier()  # letters, digits, `_`, non-ASCII identifier characters


def _needs_space(prev: str, prev_type: int, cur: str) -> bool:
    """Whether two adjacent tokens would run together (or trigger a warning) without a space."""
    if _word(prev[-1]) and _word(cur[0]):  # `not x`, `return f"..."`, `1 if`
        return True
    if prev_type == tokenize.NUMBER and cur[0] == ".":  # `1 .real`
        return True
    if prev[-1] in "'\"" and cur[0] in "'\"":  # `"" "a"` must not become `""\"a"`
        return True
    joined = prev + cur  # `* *` must not become `**`
    return any(len(op) > len(prev) and joined.startswith(op) for op in _OPERATORS)


def minify_source(source: str) -> str:
    """Same program, fewer bytes: one space per indentation level, each logical line on one
    physical line (bracketed and backslash continuations joined), blank lines and comments
    dropped, and a space between two tokens only where they would otherwise run together.

    Every token is copied verbatim (strings and f-strings as they are written), so only
    whitespace changes; the result is checked to parse to the same AST, else `source` is
    returned unchanged.
    """
    starts = [0]  # offset of each line in `source`, as tokenize splits it
    for line in io.StringIO(source).readlines():
        starts.append(starts[-1] + len(line))
    out, line, depth = [], [], 0
    prev, prev_type, fstring_from, fstring_depth = None, None, None, 0
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if fstring_depth:  # inside an f-string (3.12+): copied as written, as one chunk
            fstring_depth += (tok.type == _FSTRING_START) - (tok.type == _FSTRING_END)
            if fstring_depth:
                continue
            chunk, kind = source[fstring_from : starts[tok.end[0] - 1] + tok.end[1]], tokenize.STRING
        elif tok.type == _FSTRING_START:
            fstring_depth, fstring_from = 1, starts[tok.start[0] - 1] + tok.start[1]
            continue
        elif tok.type == tokenize.INDENT:
            depth += 1
            continue
        elif tok.type == tokenize.DEDENT:
            depth -= 1
            continue
        elif tok.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
            if line:
                out.append(" " * depth + "".join(line) + "\n")
            line, prev = [], None
            continue
        elif tok.type in _SKIPPED:
            continue
        else:
            chunk, kind = tok.string, tok.type
        if prev is not None and _needs_space(prev, prev_type, chunk):
            line.append(" ")
        line.append(chunk)
        prev, prev_type = chunk, kind
    minified = "".join(out)
    return minified if _same_program(minified, source) else source  # never ship a program that differs from the tested one


def add_member(zf: zipfile.ZipFile, name: str, data: bytes, compress: bool) -> None:
    info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    info.create_system = 3  # unix, so the bytes do not depend on the packing OS
    info.external_attr = 0o644 << 16
    zf.writestr(info, data, compresslevel=9 if compress else None)


def runtime_of(model_config: dict) -> list[str]:
    """pip names of what the decoder needs for this model, beyond the stdlib."""
    return list(model_class(model_config["kind"]).runtime)


def program_modules(kind: str) -> set[str]:
    """The decoder modules (file stems) an archive of this program kind carries beyond the common
    ones (restore, codec, ...), from the model classes: a context-model archive does not pay for
    the neural model's code; "mix+neural" (program_kind) carries both sets."""
    return set().union(*(model_class(part).modules for part in kind.split("~")[0].split("+")))


def unused_modules(kind: str) -> set[str]:
    """Decoder modules (file stems) that a `kind` archive leaves out: other kinds' models, the
    encoder side, and program.py where the model does not code the program (the bootstrap
    decodes a second part where the first has program.py)."""
    every_model = program_modules("+".join(MODEL_KINDS))
    uncoded = set() if codes_program(kind) else {"program"}
    return every_model - program_modules(kind) | PROJECT_ONLY_MODULES | set(STAND_INS.values()) | uncoded


def program_kind(model_config: dict) -> str:
    """The module set an archive of this model needs (a mixing model with a neural input
    also needs the neural model's modules); "~online_model" ("~neural_input"): a mixing model
    without the online network (without a neural input) carries that module's stand-in
    (STAND_INS) instead of its code."""
    kind = model_config["kind"]
    if kind != "mix":  # the online model always has its network, never a neural input
        return kind
    neural, online = model_config.get("neural"), model_config.get("online_hidden", MixConfig.online_hidden)
    return ("mix+neural" if neural else "mix") + ("" if online else "~online_model") + ("" if neural else "~neural_input")


def decoder_modules(model_kind: str) -> dict[str, str]:
    """Module name (`decoder`, `decoder.restore`, ...) -> minified source, for this model kind:
    comments, docstrings and annotations stripped, local and module-level names shortened,
    whitespace minimal."""
    return dict(_decoder_modules(model_kind, _decoder_sources_stamp()))


def _decoder_sources_stamp() -> tuple:
    """What the minified program depends on: each decoder file's name, size and mtime."""
    return tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(DECODER_DIR.glob("*.py")))


@functools.lru_cache(maxsize=8)  # minifying takes ~2 s; tests and sweeps pack many archives in one process
def _decoder_modules(model_kind: str, stamp: tuple) -> dict[str, str]:
    stripped = {}
    skip = unused_modules(model_kind)
    stand_ins = model_kind.split("~")[1:]
    for path in sorted(DECODER_DIR.glob("*.py")):
        if path.stem in skip:
            continue
        name = PACKAGE if path.stem == "__init__" else f"{PACKAGE}.{path.stem}"
        source = path.with_name(STAND_INS[path.stem] + ".py") if path.stem in stand_ins else path
        stripped[name] = strip_source(source.read_text("utf-8"))
    return {name: minify_source(source) for name, source in shortened(stripped).items()}


def shortened(modules: dict[str, str]) -> dict[str, str]:
    """The program with shorter names: each function's locals, module-level names, and the
    fields of the models' state records (the mixing model's kernels read them ~300 times)."""
    keep = keyword_names(list(modules.values()))  # parameters some call names stay named
    renamed = rename_globals({name: rename_locals(source, keep) for name, source in modules.items()}, PACKAGE, keep | {"main", "unpack"})  # the bootstrap imports these
    return rename_fields(renamed, list(MixState._fields) + list(DirectState._fields))


def split_program(blob: bytes) -> tuple[bytes, bytes]:
    """(the text of the PROGRAM member's LZMA stream, the bytes after it: the program's coded
    second part, if any, and the sections)."""
    unpacker = lzma.LZMADecompressor()
    text = unpacker.decompress(blob)
    if not unpacker.eof:
        raise lzma.LZMAError("the program's LZMA stream ends early")
    return text, unpacker.unused_data


def codes_program(model_kind: str) -> bool:
    """Whether an archive of this program kind codes the second part of its program with its
    model (submissions/decoder/program.py): the compiled models without a neural input."""
    return model_kind.split("~")[0] in CODED_KINDS


def pack_program(parts: dict[str, str], model_kind: str) -> bytes:
    """The program's bytes at the start of the `d` member (the sections follow): the parts in one
    LZMA stream; for a kind that codes its program, only the first part's and the header,
    followed by the second part coded by the model. Without a header (no model config: tests
    and inspection, never an archive) LZMA holds every part."""
    if not codes_program(model_kind) or HEADER not in parts:
        return pack_modules(parts)
    first = {name: text for name, text in parts.items() if name.removeprefix(PACKAGE + ".") not in SECOND_PART}
    second = program.known_text({name: text for name, text in parts.items() if name not in first})  # the same join (no header there)
    encoder = RansEncoder(1, program.PROB_BITS, capacity=8 * len(second))
    model = program.program_model(json.loads(parts[HEADER])["model"])
    program.code_program(model, encoder, program.known_text(first), np.frombuffer(second, dtype=np.uint8).astype(np.int64)[None])
    return pack_modules(first) + len(second).to_bytes(4, "little") + encoder.finish()


def pack_modules(modules: dict[str, str]) -> bytes:
    """The `d` member: "name\\nsource" parts joined by NUL, in one LZMA stream."""
    if any("\0" in name + source or "\n" in name for name, source in modules.items()):
        raise ValueError("a module name holds a newline, or a source a NUL")  # cannot happen for parsed source
    text = "\0".join(f"{name}\n{source}" for name, source in modules.items())
    return lzma.compress(text.encode("utf-8"), format=lzma.FORMAT_ALONE, filters=LZMA_FILTERS)


def decoder_program(model_kind: str, header_text: str | None = None) -> dict[str, bytes]:
    """Archive member name -> bytes of the decoder program for this model kind; header_text (the
    JSON header) joins the modules' LZMA stream as the part HEADER."""
    parts = decoder_modules(model_kind) | ({} if header_text is None else {HEADER: header_text})
    return {"__main__.py": BOOTSTRAP.encode(), PROGRAM: pack_program(parts, model_kind)}


def archive_decoder(path: Path) -> dict[str, str]:
    """Module name -> source of the decoder program an archive carries."""
    try:
        with zipfile.ZipFile(path) as zf:
            blob = zf.read(PROGRAM)
        parts = program_parts(blob)
        if f"{PACKAGE}.program" in parts:
            parts |= program.unpack(split_program(blob)[1], parts)
    except Exception as exc:
        raise ArchiveError(f"{path}: the decoder program does not unpack ({type(exc).__name__}: {exc})") from None
    parts.pop(HEADER, None)
    return parts


def make_header(config: dict, model: dict, original: dict, coding: dict, runtime: list[str], packed_with: dict, case=None) -> dict:
    """The header (its layout since format 4), stating each fact once: `model`, `coding` (prob_bits, block_steps,
    shards), `original` and `case` (the marks of folded capitals, tokenizer/case.py; only
    where the text was folded) are what the decoder reads, `model` only where it differs from its
    kind's defaults (stated_model); `training` keeps what else the run's config (a PipelineConfig
    dict) said, i.e. how the archive was made: the requested tokenizer, the training options of
    the model, the requested stream count. run_config reassembles it."""
    training = {
        "tokenizer": config["tokenizer"],
        "model": _beyond(config["model"], model),
        "coder": {k: v for k, v in config["coder"].items() if k not in ("prob_bits", "shards") and (k != "tree_order" or v)},  # said only when on
    }
    header = {"original": original, "model": stated_model(model), "coding": coding, "training": training, "runtime": runtime, "packed_with": packed_with}
    return header if case is None else dict(header, case=list(case))


def _kind_defaults(kind: str) -> dict:
    """The defaults of a model kind's config class as JSON values ({} for a kind without one:
    the neural model's header is its own)."""
    config_class = getattr(model_class(kind), "config_class", None)
    return json.loads(json.dumps(dataclasses.asdict(config_class()))) if config_class else {}


def stated_model(model: dict) -> dict:
    """The model config as the header states it: its kind and the fields that differ from the
    kind's defaults (and no field the class lacks that is None: no neural input). The decoder's
    config class fills in the rest: the archive carries that class, so its defaults are the ones
    the encoder had; changing a default changes the format anyway (the default mixing model:
    ~120 B less header)."""
    defaults = _kind_defaults(model["kind"])

    def stated(key: str, value) -> bool:
        if key == "kind":
            return True
        if key in defaults:
            return json.loads(json.dumps(value)) != defaults[key]  # as JSON: tuples and lists alike
        return value is not None

    return {key: value for key, value in model.items() if stated(key, value)}


def _beyond(config: dict, known: dict) -> dict:
    """The entries of config that known does not state (recursively, for the neural input)."""
    out = {}
    for key, value in config.items():
        if isinstance(value, dict) and isinstance(known.get(key), dict):
            out[key] = _beyond(value, known[key])
        elif key not in known:
            out[key] = value
    return out


def _merged(known: dict, extra: dict) -> dict:
    out = dict(known)
    for key, value in extra.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def run_config(header: dict) -> dict:
    """The run's config (a PipelineConfig dict) of a header (format 4 on): what the decoder reads plus
    the training facts (for a neural model the decoder's model config also holds the integer
    model's own fields)."""
    training, coding = header.get("training", {}), header["coding"]
    return {
        "tokenizer": training.get("tokenizer", {}),
        "model": _merged({**_kind_defaults(header["model"]["kind"]), **header["model"]}, training.get("model", {})),
        "coder": {**training.get("coder", {}), "prob_bits": coding["prob_bits"], "shards": len(coding["shards"])},
    }


def build_archive(header: dict, sections: dict[str, bytes]) -> bytes:
    header = dict(header, format_version=FORMAT_VERSION, sections={name: len(data) for name, data in sections.items()})
    header_text = json.dumps(header, sort_keys=True, separators=(",", ":"))  # ASCII: never a NUL
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        bootstrap, modules = decoder_program(program_kind(header["model"]), header_text).values()
        add_member(zf, "__main__.py", bootstrap, compress=True)
        stored = b"".join(sections[name] for name in sorted(sections))  # compressed already
        add_member(zf, PROGRAM, modules + stored, compress=False)  # LZMA (and coded) already
    return buffer.getvalue()


def write_archive(path: Path, header: dict, sections: dict[str, bytes], force: bool = False, blob: bytes | None = None) -> int:
    """Write the archive atomically (never over an existing file unless force); its size in
    bytes. blob: the archive build_archive made of header and sections, if made already."""
    check_output(path, force)
    blob = build_archive(header, sections) if blob is None else blob
    atomic_write_bytes(path, blob, replace=force)
    return len(blob)


def _member_bytes(info: zipfile.ZipInfo) -> int:
    """All bytes a member occupies: local header, data, central directory entry."""
    name = len(info.filename.encode("utf-8"))
    local = 30 + name + len(info.extra)
    central = 46 + name + len(info.extra) + len(info.comment)
    return local + info.compress_size + central


def archive_parts(path: Path) -> dict[str, int]:
    """Bytes per part; the decoder part includes the zip's end record, so parts sum to the file size.
    The header's part is what it adds to the program's LZMA stream (that stream without it,
    packed again, is the decoder's)."""
    parts = {"decoder": ZIP_END_RECORD, "tokenizer": 0, "model": 0, "payload": 0, "header": 0}
    with zipfile.ZipFile(path) as zf:
        parts["decoder"] += sum(_member_bytes(info) for info in zf.infolist())
        blob = zf.read(PROGRAM)
    modules = program_parts(blob)
    for name, size in json.loads(modules.pop(HEADER))["sections"].items():
        parts[PART_OF_SECTION[name]] += size
        parts["decoder"] -= size
    parts["header"] = len(blob) - len(split_program(blob)[1]) - len(pack_modules(modules))
    parts["decoder"] -= parts["header"]
    return parts


def older_format_refusal(path: Path) -> str | None:
    """For an archive of an older format that read_archive cannot read (formats 3-6: the
    header a member of its own; 7-12: each section a member of its own): why this project does
    not read it, and what restores it; else None."""
    for header_of in (lambda zf: zf.read(OLD_HEADER_MEMBER), lambda zf: program_parts(zf.read(PROGRAM))[HEADER]):
        try:
            with zipfile.ZipFile(path) as zf:
                version = json.loads(header_of(zf)).get("format_version")
        except Exception:  # not that either: the caller reports its own failure
            continue
        if isinstance(version, int) and version != FORMAT_VERSION:
            return format_refusal(path, version)
    return None


def format_refusal(path: Path, version) -> str:
    return f"{path}: archive format {version}, this project reads format {FORMAT_VERSION} only (the archive restores itself: python {path} -o OUT)"


def inspect(path: Path) -> ArchiveInfo:
    """Check an archive (every CRC) and describe it; ArchiveError if it is bad."""
    path = require_file(Path(path), "archive")
    try:
        header, _ = read_archive(str(path))
    except ArchiveCorrupt as exc:
        raise ArchiveError(older_format_refusal(path) or f"{path}: corrupted or not an archive: {exc}") from None
    if header.get("format_version") != FORMAT_VERSION:
        raise ArchiveError(format_refusal(path, header.get("format_version")))
    try:
        Header.parse(header)  # its structure, before anyone sizes anything by it
    except HeaderError as exc:
        raise ArchiveError(f"{path}: corrupted archive: {exc}") from None
    parts = archive_parts(path)
    total = path.stat().st_size
    if sum(parts.values()) != total:
        raise ArchiveError(f"{path}: zip layout has {total - sum(parts.values())} unaccounted bytes")
    return ArchiveInfo(
        path=path,
        total_bytes=total,
        parts=parts,
        original_size=header["original"]["size"],
        original_sha256=header["original"]["sha256"],
        runtime=list(header["runtime"]),
        config=run_config(header),
        header=header,
    )
