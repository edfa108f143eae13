"""Archives end to end: train -> pack -> restore, exact, self-contained, and safe on bad input."""

from __future__ import annotations

import ast
import hashlib
import io
import json
import lzma
import os
import struct
import subprocess
import sys
import tokenize
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import config as config_module
from pipeline import pack as pack_module
from pipeline.config import CoderConfig, ContextModelConfig, MixingModelConfig, OnlineModelConfig, PipelineConfig, TokenizerConfig, sized_tables
from submissions.errors import UserError
from pipeline.pack import check_table_memory, pack
from pipeline.train import train
from pipeline.unpack import unpack
from submissions import archive as archive_module
from submissions.archive import (
    BOOTSTRAP,
    DECODER_DIR,
    PACKAGE,
    PROGRAM,
    SECOND_PART,
    STAND_INS,
    ZIP_END_RECORD,
    ArchiveError,
    _member_bytes,
    _same_program,
    archive_decoder,
    decoder_modules,
    decoder_program,
    inspect,
    minify_source,
    pack_modules,
    pack_program,
    program_kind,
    shortened,
    split_program,
    stated_model,
    strip_source,
)
from submissions.decoder import program, restore
from submissions.decoder.container import HEADER, PAYLOAD, TOKENIZER, program_parts, read_archive
from verify.report import jit_compile_seconds

from damaged import rewritten

# the mechanics of archives on the context model: its kernels compile in a second in each
# restoring process; the default (mixing) model gets its own restore test
SMALL = PipelineConfig(tokenizer=TokenizerConfig(vocab_size=512), model=ContextModelConfig(), coder=CoderConfig(n_streams=8))


def make_archive(tmp: Path, data: bytes, name: str = "x", config: PipelineConfig = SMALL) -> tuple[Path, Path]:
    source = tmp / f"{name}.bin"
    source.write_bytes(data)
    train(source, tmp / f"{name}.run", config)
    archive = tmp / f"{name}.arc"
    pack(tmp / f"{name}.run", archive, progress=False)
    return source, archive


def run_archive(archive: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    """`python -I ARCHIVE -o OUT` from an unrelated folder: the archive needs nothing of the project."""
    return subprocess.run(
        [sys.executable, "-I", str(archive), "-o", str(out), *extra],
        cwd=archive.parent, capture_output=True, text=True, timeout=300,
    )


@pytest.fixture(scope="module")
def packed(tmp_path_factory, text_sample):
    tmp = tmp_path_factory.mktemp("packed")
    source, archive = make_archive(tmp, text_sample)
    return source, archive


def test_archive_restores_itself_byte_exact(packed, tmp_path):
    source, archive = packed
    result = run_archive(archive, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out").read_bytes() == source.read_bytes()


@pytest.mark.slow
def test_an_archive_of_the_default_model_restores_itself(tmp_path, text_sample):
    """The mixing model, one stream: its kernels compile in the archive's own process."""
    source, archive = make_archive(tmp_path, text_sample[:8_000], config=PipelineConfig())
    info = inspect(archive)
    assert info.header["coding"]["shards"][0]["streams"] == 1
    assert info.header["model"] == {"kind": "mix"}  # the defaults go unsaid (stated_model) ...
    said = PipelineConfig(model=MixingModelConfig(table_bits=26))  # the count table as pack sized it for the file (sized_tables)
    assert PipelineConfig.from_dict(info.config) == said  # ... and come back in the run's config
    carried, default = archive_decoder(archive), decoder_modules("mix~neural_input")
    assert carried == default  # the coded second part (program.py) decodes to the same modules
    assert carried["decoder.online_model"] == default["decoder.online_model"]  # the network's code
    assert carried["decoder.neural_input"] == default["decoder.neural_input"]  # the neural input's stand-in
    with zipfile.ZipFile(archive) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    stored = sum(json.loads(program_parts(members[PROGRAM])[HEADER])["sections"].values())
    program = members[PROGRAM][:-stored]  # the sections follow the program
    first, coded = program_parts(program), split_program(program)[1]
    assert set(default) - set(first) == {f"{PACKAGE}.{name}" for name in SECOND_PART} and coded
    assert len(program) < len(pack_modules(first | default)) - 250  # the point: the model codes that part smaller than LZMA
    result = run_archive(archive, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out").read_bytes() == source.read_bytes()
    assert jit_compile_seconds(result.stderr) > 0
    damaged = bytearray(members[PROGRAM])
    damaged[len(program) - len(coded) // 2] ^= 0x10  # in the coded part, the zip CRC recomputed (a hand edit)
    bad = tmp_path / "bad.arc"
    bad.write_bytes(rewritten(members | {PROGRAM: bytes(damaged)}))
    result = run_archive(bad, tmp_path / "bad-out")
    assert result.returncode == 2 and not (tmp_path / "bad-out").exists()
    assert result.stderr.startswith("error: corrupted archive: its decoder program does not load") and len(result.stderr.splitlines()) == 1, result.stderr


def test_the_model_codes_the_program_s_second_part_after_reading_the_first():
    """program.py: what pack_program codes after the LZMA stream, unpack decodes to the same
    modules; a header that is not the packer's (another model) does not decode it silently."""
    header = json.dumps({"model": {"kind": "mix"}, "sections": {}})
    first = {"decoder": "X = 1\n", "decoder.model": "def f(a):\n return a + 1\n" * 20}
    second = {f"{PACKAGE}.restore": "def main():\n return f(2) + 1\n", f"{PACKAGE}.codec": ""}
    blob = pack_program(first | second | {HEADER: header}, "mix~neural_input")
    parts, coded = program_parts(blob), split_program(blob)[1]
    assert parts == first | {HEADER: header} and program.unpack(coded, parts) == second
    assert pack_program(first | second | {HEADER: header}, "context") == pack_modules(first | second | {HEADER: header})  # no compiled model: LZMA only
    try:  # read with another model (a header not the packer's), it fails or decodes to other text
        decoded = program.unpack(coded, dict(parts, h=json.dumps({"model": {"kind": "mix", "orders": [1]}, "sections": {}})))
    except Exception:
        decoded = None
    assert decoded != second  # the zip CRC of `d` is what guards the coded part against damage


@pytest.mark.slow
def test_pack_smallest_keeps_the_smallest_way_and_it_restores(tmp_path, text_sample):
    """--smallest codes the file each way _variants lists (with and without the online network,
    in the tokenizer's and the tree's order of ids; here two at a time in forked workers) and
    writes the smallest archive; each size it reports is what packing that way alone gives.
    (Restored in this process, by the project's decoder with its compiled kernels: a restore of
    its own would compile them again, ~10 s.)"""
    source, archive = make_archive(tmp_path, text_sample[:8_000], config=PipelineConfig())
    result = pack(tmp_path / "x.run", tmp_path / "s.arc", progress=False, smallest=True, jobs=2)  # two ways at a time, in forked workers
    sizes = {label: size for label, size, _ in result.tried}
    assert list(sizes) == ["tokenizer order", "tree order", "no online network, tokenizer order", "no online network, tree order"]
    assert result.total_bytes == sizes[result.kept] == min(sizes.values()) == (tmp_path / "s.arc").stat().st_size
    assert sizes["tokenizer order"] == archive.stat().st_size  # the run's own way: what pack alone wrote
    assert sizes["tree order"] == pack(tmp_path / "x.run", tmp_path / "t.arc", progress=False, tree_order=True).total_bytes
    header = inspect(tmp_path / "s.arc").header
    assert (header["model"].get("online_hidden") == 0) == ("no online network" in result.kept)
    assert bool(header["training"]["coder"].get("tree_order")) == ("tree order" in result.kept)
    unpack(tmp_path / "s.arc", tmp_path / "out", progress=False)
    assert (tmp_path / "out").read_bytes() == source.read_bytes()


@pytest.mark.parametrize(
    "n_tokens, bits",
    [(0, 26), (1, 26), (1 << 20, 26), ((1 << 20) + 1, 27), (1 << 21, 27), ((1 << 21) + 1, 28), (1 << 22, 28), ((1 << 22) + 1, 29), (1 << 23, 29), ((1 << 23) + 1, 30), (10**9, 30)],
)
def test_a_table_left_to_the_file_grows_a_bit_per_doubling_of_its_tokens(n_tokens, bits):
    assert sized_tables({"kind": "mix", "table_bits": 0}, n_tokens) == {"table_bits": bits}  # the mix model's counts
    assert sized_tables({"kind": "online", "direct_bits": 0, "table_bits": 10}, n_tokens) == {"direct_bits": min(bits + 1, 29)}  # the online model's direct weights


def test_tables_larger_than_the_machine_are_refused_before_coding():
    check_table_memory({"kind": "mix", "table_bits": 30}, physical=8 << 30)  # 4 GiB of 8: codes
    with pytest.raises(UserError, match=r"4,096 MiB, more than this machine's 4,096 MiB .* smaller table_bits"):
        check_table_memory({"kind": "mix", "table_bits": 30}, physical=4 << 30)
    with pytest.raises(UserError, match="smaller direct_bits in"):
        check_table_memory({"kind": "online", "table_bits": 10, "direct_bits": 29}, physical=2 << 30)
    check_table_memory({"kind": "context"}, physical=1 << 20)  # no such table


def test_a_table_the_config_names_is_kept_and_a_bad_one_refused():
    assert sized_tables({"kind": "mix", "table_bits": 22}, 10**9) == {}
    assert PipelineConfig().model.table_bits == 0 and PipelineConfig(model=OnlineModelConfig()).model.direct_bits == 0  # new runs leave them to the file
    with pytest.raises(UserError, match="table_bits must be between 10 and 30"):
        PipelineConfig(model=MixingModelConfig(table_bits=5)).validate()
    with pytest.raises(UserError, match="direct_bits must be between 10 and 30"):
        PipelineConfig(model=OnlineModelConfig(direct_bits=5)).validate()


@pytest.mark.slow
def test_pack_sizes_the_count_table_to_the_file_and_the_archive_says_so(tmp_path, text_sample, monkeypatch):
    """A count table left to the file (table_bits 0) gets its size from the token count (the
    largest shard's) at pack time; the header states it, the decoder builds that table and the
    file restores. (Thresholds made small here: the real ones start at 2**20 tokens.)"""
    source = tmp_path / "x.bin"
    source.write_bytes(text_sample[:3_000])
    train(source, tmp_path / "x.run", PipelineConfig())
    n_tokens = len(np.load(tmp_path / "x.run" / "tokens.npy"))
    monkeypatch.setattr(config_module, "AUTO_TABLE_TOKENS", -(-n_tokens // 4))  # the file: 2-4 times that (2**14 cells), half of it 1-2 times (2**13)
    monkeypatch.setitem(config_module.AUTO_TABLE_BITS, "table_bits", (12, 14))
    result = pack(tmp_path / "x.run", tmp_path / "x.arc", progress=False)
    halves = pack(tmp_path / "x.run", tmp_path / "h.arc", progress=False, shards=2)
    assert (result.sized, halves.sized) == ({"table_bits": 14}, {"table_bits": 13})
    assert inspect(tmp_path / "x.arc").header["model"]["table_bits"] == 14
    assert "table_bits" not in inspect(tmp_path / "x.arc").header["training"]["model"]  # what was done, said once
    unpack(tmp_path / "x.arc", tmp_path / "out", progress=False)
    assert (tmp_path / "out").read_bytes() == source.read_bytes()


def test_pack_jobs_encode_the_ways_in_other_processes_and_keep_their_order(monkeypatch):
    """--smallest -j N: each way is encoded in a forked worker (here a stand-in for _encode that
    says where it ran), the results come back in the order of the ways, with the ids and table
    the parent holds; -j 1 encodes in this process."""
    def where(*way, progress):
        return pack_module.Encoded(way[-1], None, None, str(os.getpid()).encode(), None, None, [], 0.0, 0.0, {})

    monkeypatch.setattr(pack_module, "_encode", where)
    ways = [(None, None, np.arange(i + 1), [bytes([i])], b"", False, {}, None, None, None, None, f"way {i}") for i in range(3)]
    forked = pack_module._encode_ways(ways, jobs=2, progress=False)
    assert [encoded.label for encoded in forked] == ["way 0", "way 1", "way 2"]
    assert all(encoded.blob != str(os.getpid()).encode() for encoded in forked)
    assert all(np.array_equal(encoded.tokens, way[2]) and encoded.table == way[3] for encoded, way in zip(forked, ways))
    assert {encoded.blob for encoded in pack_module._encode_ways(ways, jobs=1, progress=False)} == {str(os.getpid()).encode()}


def test_without_the_network_an_archive_carries_the_stand_in():
    """A mixing model with online_hidden 0 never calls the network: its archive carries
    online_off.py in place of online_model.py (restored byte-exactly on enwik6 when it was
    written; a restore here would cost a second full compile)."""
    kind = program_kind(PipelineConfig(model=MixingModelConfig(online_hidden=0)).to_dict()["model"])  # what the header holds
    assert kind == "mix~online_model~neural_input" and program_kind({"kind": "mix"}) == "mix~neural_input"
    assert len(pack_modules(decoder_modules(kind))) < len(pack_modules(decoder_modules("mix~neural_input"))) - 400


def test_without_a_neural_input_an_archive_carries_the_stand_in():
    """The default mixing model has no neural input: its archives carry neural_off.py in place
    of neural_input.py (restored by every default archive in this suite)."""
    assert program_kind({"kind": "mix", "neural": {"d_model": 64}}) == "mix+neural"
    assert "decoder.program" not in decoder_modules("mix+neural") and "decoder.program" in decoder_modules("mix~neural_input")  # the neural input needs its weights: that model does not code the program
    carried = decoder_modules("mix~neural_input")
    assert carried["decoder.neural_input"] == decoder_modules("mix~online_model~neural_input")["decoder.neural_input"]
    assert len(pack_modules(carried)) < len(pack_modules(decoder_modules("mix"))) - 200


@pytest.mark.parametrize("module", sorted(STAND_INS))
def test_a_stand_in_defines_what_the_model_imports_with_the_same_arguments(module):
    real, stand_in = (ast.parse((DECODER_DIR / f"{name}.py").read_text("utf-8")) for name in (module, STAND_INS[module]))
    importers = [ast.parse((DECODER_DIR / f"{name}.py").read_text("utf-8")) for name in ("mixing_model", "mixing_steps")]
    imported = {alias.name for tree in importers for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module == module and node.col_offset == 0 for alias in node.names}

    def signatures(tree):
        return {node.name: [arg.arg for arg in node.args.args] for node in tree.body if isinstance(node, ast.FunctionDef)}

    assert imported and all(signatures(stand_in)[name] == signatures(real)[name] for name in imported)


FORMAT_3 = Path(__file__).parent / "data" / "format3-mix.arc"  # made with commit 743b890: 1,500 bytes of the built-in sample


def test_an_archive_of_format_3_still_restores_itself(tmp_path):
    """Archives carry their decoder: one made before the kernels (numpy lock-step mixing model)
    restores byte for byte, and this project's inspect and unpack point there instead of misreading it."""
    copy = tmp_path / FORMAT_3.name
    copy.write_bytes(FORMAT_3.read_bytes())
    result = run_archive(copy, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    restored = (tmp_path / "out").read_bytes()
    # the sample's bytes 100,000-101,500 as Python 3.11 builds it (the sample differs across Python versions)
    assert hashlib.sha256(restored).hexdigest() == "da8d0c55caa70bfb70e4ac6101a6bf092294a51efd17ea16288183aaa3cd5141"
    with pytest.raises(ArchiveError, match="format 3.*restores itself"):
        inspect(copy)
    with pytest.raises(UserError, match="format 3.*restores itself"):
        unpack(copy, tmp_path / "by-unpack", progress=False)
    assert not (tmp_path / "by-unpack").exists()


def test_parts_add_up_to_the_file_size(packed):
    _, archive = packed
    info = inspect(archive)
    assert sum(info.parts.values()) == info.total_bytes == archive.stat().st_size
    assert info.parts["payload"] > 0 and info.parts["tokenizer"] > 0 and info.parts["decoder"] > 0
    assert info.runtime == ["numpy", "numba"]
    assert info.config["tokenizer"]["vocab_size"] == 512


def test_packing_is_reproducible(packed, tmp_path):
    source, archive = packed
    again = tmp_path / "again.arc"
    pack(archive.with_suffix(".run"), again, progress=False)
    assert again.read_bytes() == archive.read_bytes()


def test_decoder_program_has_no_project_imports(packed, tmp_path):
    sources = archive_decoder(packed[1])
    assert {"decoder", "decoder.restore", "decoder.container", "decoder.rans"} <= set(sources)
    for name, text in sources.items():
        for project in ("pipeline", "tokenizer", "models", "submissions", "verify"):
            assert f"import {project}" not in text and f"from {project}" not in text, name
    assert "decoder.neural_model" not in sources  # a context-model archive carries no neural code


def test_decoder_program_is_one_lzma_stream_and_its_own_part(packed):
    _, archive = packed
    with zipfile.ZipFile(archive) as zf:
        infos = {info.filename: info for info in zf.infolist()}
        member = zf.read(PROGRAM)
    assert set(infos) == {"__main__.py", PROGRAM}  # the sections ride in `d` too: a member costs ~80 B of zip records
    assert infos[PROGRAM].compress_type == zipfile.ZIP_STORED  # LZMA and compressed sections: deflate would only add bytes
    header, sections = read_archive(str(archive))
    assert header["sections"] == {TOKENIZER: len(sections[TOKENIZER]), PAYLOAD: len(sections[PAYLOAD])}
    program = member[: -sum(header["sections"].values())]
    assert member == program + sections[PAYLOAD] + sections[TOKENIZER]  # in name order, after the program
    parts, text = program_parts(program), lzma.decompress(program)
    header_text = parts.pop(HEADER)
    assert json.loads(header_text) == header and set(parts) == set(archive_decoder(archive))
    header_bytes = len(program) - len(pack_modules(parts))  # what the header adds to the program's stream
    assert 0 < header_bytes < len(zlib.compress(header_text.encode(), 9))  # cheaper there than deflated alone
    decoder_bytes = sum(_member_bytes(info) for info in infos.values()) + ZIP_END_RECORD - len(member) + len(program)
    assert inspect(archive).parts["decoder"] == decoder_bytes - header_bytes and inspect(archive).parts["header"] == header_bytes
    assert len(program) < len(zlib.compress(text, 9))  # the point of LZMA over deflate
    assert f'read("{PROGRAM}")' in BOOTSTRAP and f'n=="{PACKAGE}"' in BOOTSTRAP and f"from {PACKAGE}.restore" in BOOTSTRAP
    assert minify_source(BOOTSTRAP) == BOOTSTRAP  # already as small as the minifier makes it
    assert program_parts(pack_modules({"decoder": "x = 1\n", "decoder.a": ""})) == {"decoder": "x = 1\n", "decoder.a": ""}


@pytest.mark.parametrize("kind", ["context", "mix", "neural"])
def test_decoder_program_is_the_repo_code_minified(kind):
    """Every module an archive carries is its repo source with only comments, docstrings, argument and
    return annotations and whitespace gone, and local and module-level names and the mixing state's
    fields shortened."""
    modules = decoder_modules(kind)
    sources = {name: strip_source((DECODER_DIR / ("__init__.py" if name == "decoder" else name.split(".", 1)[1] + ".py")).read_text("utf-8")) for name in modules}
    renamed = shortened(sources)
    for name, text in modules.items():
        assert text == minify_source(renamed[name]), name
        assert _same_program(minify_source(sources[name]), sources[name]), name
        assert text != sources[name], name  # the minifier did not fall back
        assert "->" not in text, name  # the annotation stripping did not fall back
    renamed = [name for name in modules if minify_source(sources[name]) != modules[name]]
    assert len(renamed) >= len(modules) - 2, renamed  # the renaming did not fall back (__init__ has no functions)


def _defined_and_named(source: str) -> tuple[set, set]:
    """(top-level functions, classes and constants a module defines, every name it reads:
    variables, attributes, imported names and string constants, which `getattr` and the model
    registry use). A definition is not a read."""
    tree = ast.parse(source)
    defined = {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    defined |= {target.id for node in tree.body if isinstance(node, ast.Assign) for target in node.targets if isinstance(target, ast.Name)}
    named = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Store):
            named.add(node.id)
        elif isinstance(node, ast.Attribute):
            named.add(node.attr)
        elif isinstance(node, ast.alias):
            named.add(node.name)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            named.add(node.value)
    return defined, named


@pytest.mark.parametrize("kind", ["context", "mix", "mix~neural_input", "neural", "mix+neural", "mix~online_model~neural_input"])
def test_archives_carry_no_code_the_decoder_never_reads(kind):
    """Every function, class and constant a shipped module defines is read somewhere in the
    program (the bootstrap reads restore's `main`): encoder-side code (writers of the tokenizer
    table, the weights and the zip members; the stream and shard layout) lives outside the
    shipped modules, so archives do not pay for it. By name, so dead code whose name is read
    elsewhere can slip through; used code is never flagged."""
    parsed = {module: _defined_and_named(source) for module, source in decoder_modules(kind).items()}
    named = set(_defined_and_named(BOOTSTRAP)[1]).union(*(names for _, names in parsed.values()))
    unused = sorted(f"{module}.{name}" for module, (defined, _) in parsed.items() for name in defined - named)
    assert not unused, unused


def test_archive_runs_from_any_folder_and_ignores_a_foreign_decoder_package(packed, tmp_path):
    """The bootstrap finds its program through the archive path, whatever the cwd, and installs
    its own `decoder` ahead of sys.path (here a hostile one on PYTHONPATH, without -I)."""
    source, archive = packed
    hostile = tmp_path / "site" / "decoder"
    hostile.mkdir(parents=True)
    (hostile / "__init__.py").write_text("raise SystemExit('the wrong decoder package was imported')\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    relative = os.path.relpath(archive, elsewhere)
    env = dict(os.environ, PYTHONPATH=str(hostile.parent))
    result = subprocess.run(
        [sys.executable, relative, "-o", "out", "-q"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert (elsewhere / "out").read_bytes() == source.read_bytes()


def _member_data_offset(blob: bytes, name: str) -> tuple[int, int]:
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        info = zf.getinfo(name)
    name_len, extra_len = struct.unpack("<HH", blob[info.header_offset + 26 : info.header_offset + 30])
    return info.header_offset + 30 + name_len + extra_len, info.compress_size


@pytest.mark.parametrize("where", [0, 0.5, 0.999])
def test_a_flipped_byte_in_the_decoder_program_is_refused(packed, tmp_path, where):
    blob = bytearray(packed[1].read_bytes())
    start, size = _member_data_offset(bytes(blob), PROGRAM)
    blob[start + int(where * size)] ^= 0x20
    bad, out = tmp_path / "bad.arc", tmp_path / "out"
    bad.write_bytes(bytes(blob))
    result = run_archive(bad, out)
    assert result.returncode == 2 and not out.exists()
    assert result.stderr.startswith("error: corrupted archive: its decoder program does not unpack") and len(result.stderr.splitlines()) == 1, result.stderr
    with pytest.raises(ArchiveError, match="CRC"):
        inspect(bad)


def test_decoder_program_is_reproducible():
    first = {kind: decoder_program(kind) for kind in ("context", "mix", "neural")}
    assert first == {kind: decoder_program(kind) for kind in ("context", "mix", "neural")}
    assert len(first["neural"][PROGRAM]) > len(first["context"][PROGRAM])  # each kind carries only its modules


def test_an_archive_of_another_format_version_is_refused_in_one_line(packed, tmp_path, monkeypatch):
    header, sections = read_archive(str(packed[1]))
    monkeypatch.setattr(archive_module, "FORMAT_VERSION", 1)
    old = tmp_path / "old.arc"
    archive_module.write_archive(old, header, sections)
    monkeypatch.undo()
    with pytest.raises(ArchiveError, match=r"archive format 1, this project reads format \d+ only") as caught:
        inspect(old)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "snippet",
    [
        "x = 1 if y else 2\nz = 1 .real\nw = 0x1F or 2\n",
        "a = b ** -c\nd = [*e, *f]\ng = {**h}\nk = l // -m\nn = o < -p\n",
        's = "" "a"\nt = \'a\' "b" r\'\\\\\' f"{s!r:>{w}}"\nu = b"x" rb"y"\n',
        'v = f"{a[\'k\']}{{}} {b:{c}} {f\'{d}\'}"\nq = f"""\n  {v}\n  """\n',
        'x = """\n    indented text\n\tand a tab\n"""\n',
        "x = (1 +\n     2)\ny = 1 + \\\n    2\n\n\n",
        "from . import a\nfrom .b import c as d\nimport e.f as g\n",
        "@dec(1)\nclass C(D, metaclass=M):\n    x: int = 1\n\n    def f(self, *a, k=1, **kw) -> int:\n        return not -self.x\n",
        "f = lambda *a, **k: ...\nif (n := 10) > 5:\n    pass\nelse:\n    del x[1:2, ::3]\n",
        "try:\n    import q\nexcept (A, B) as e:\n    raise X from e\nfinally:\n    y = not x in z and w is not None\n",
        "async def f():\n    async with a as b:\n        await c\n    return [i async for i in d]\n",
        "match p:\n    case [1, *rest] if rest:\n        pass\n    case {'k': v, **kw}:\n        pass\n    case Point(x=0) | None:\n        pass\n",
        "é = 1\nnaïve = é + 1\nx = 1;y = 2\nglobal g\n",
    ],
    ids=["numbers", "operators", "strings", "fstrings", "multiline-string", "continuations", "imports",
         "class", "lambda-walrus", "try", "async", "match", "unicode-and-semicolons"],
)
def test_minify_keeps_the_program(snippet):
    minified = minify_source(snippet)
    assert minified != snippet and len(minified) <= len(snippet)
    assert _same_program(minified, snippet)
    assert minify_source(minified) == minified  # a fixed point: nothing left to take out


def _kept_tokens(source: str) -> list[str]:
    """The program's tokens as written, without layout, comments and the `pass` stripping may add."""
    layout = (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.COMMENT, tokenize.ENDMARKER)
    return [t.string for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type not in layout and t.string != "pass"]


def _subsequence(short: list[str], long: list[str]) -> list[str]:
    """The items of `short` that can be matched, in order, in `long` (all of them for a subsequence)."""
    rest = iter(long)
    return [item for item in short if item in rest]


def test_stripping_drops_docstrings_and_keeps_a_body():
    source = 'def f():\n    """Doc."""\n    return 1\n\n\nclass C:\n    """Only a docstring."""\n'
    assert strip_source(source) == "def f():\n\n    return 1\n\n\nclass C:\n    pass\n"
    odd = 'def f(): "doc"; return 1\n'  # removing the docstring here would not parse: ship it unchanged
    assert strip_source(odd) == odd


def test_stripping_drops_the_future_import_only_where_annotations_evaluate_without_it():
    """Argument and return annotations go; a dataclass field's `int` evaluates the same without
    `from __future__ import annotations`, a name defined later would not."""
    plain = "from __future__ import annotations\n\n\nclass C:\n    x: int = 1\n\n\ndef f(a: Later) -> Later:\n    return a\n"
    stripped = strip_source(plain)
    assert "__future__" not in stripped and "x: int = 1" in stripped and "Later" not in stripped
    namespace = {}
    exec(compile(stripped, "stripped", "exec", dont_inherit=True), namespace)  # not this file's future flags
    assert namespace["C"].__annotations__ == {"x": int}
    forward = "from __future__ import annotations\n\n\nclass C:\n    x: Later = 1\n\n\nclass Later:\n    pass\n"
    assert strip_source(forward).startswith("from __future__ import annotations\n")


def test_stripping_drops_argument_and_return_annotations_only():
    source = (
        "def f(a: int, /, *b: str, c: 'x' = 1, **d: dict[str, int]) -> list[int]:\n"
        "    x: int = 1  # variable annotations stay (dataclass fields are made of them)\n"
        "    g = lambda y=2: '->'\n"
        "    return a\n"
        "\n"
        "\n"
        "async def h(\n"
        "    e: float,\n"
        ") -> (\n"
        "    tuple[int, int]\n"
        "):\n"
        "    pass\n"
        "\n"
        "\n"
        "class C:\n"
        "    n: int = 0\n"
        "\n"
        "    def m(self, k: int) -> None: return None\n"
    )
    stripped = strip_source(source)
    assert stripped == (
        "def f(a, /, *b, c = 1, **d):\n"
        "    x: int = 1\n"
        "    g = lambda y=2: '->'\n"
        "    return a\n"
        "\n"
        "\n"
        "async def h(\n"
        "    e,\n"
        "):\n"
        "    pass\n"
        "\n"
        "\n"
        "class C:\n"
        "    n: int = 0\n"
        "\n"
        "    def m(self, k): return None\n"
    )
    assert _same_program(stripped, source) and not _same_program("def f(a): return a\n", "def f(b): return b\n")


@pytest.mark.parametrize(
    "data",
    [b"", b"x", b"\x00", bytes(range(256)) * 3, b"\xff\xfe\xed\xa0\x80 caf\xc3\xa9 \xe2\x96\x81 \r\n", "▁▁ ▁".encode() * 50],
    ids=["empty", "one-byte", "nul", "all-bytes", "invalid-utf8", "space-mark"],
)
def test_awkward_inputs_round_trip(tmp_path, data):
    source, archive = make_archive(tmp_path, data)
    assert restore.main(["-q", "--archive", str(archive), "-o", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out").read_bytes() == data


def test_random_binary_round_trips_through_python(tmp_path):
    data = np.random.default_rng(5).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    source, archive = make_archive(tmp_path, data)
    assert run_archive(archive, tmp_path / "out").returncode == 0
    assert (tmp_path / "out").read_bytes() == data


def test_existing_output_is_refused_then_replaced_with_force(packed, tmp_path):
    out = tmp_path / "out"
    out.write_bytes(b"keep me")
    result = run_archive(packed[1], out)
    assert result.returncode == 2 and "already exists" in result.stderr
    assert out.read_bytes() == b"keep me"
    assert run_archive(packed[1], out, "--force").returncode == 0
    assert out.read_bytes() == packed[0].read_bytes()
    with pytest.raises(UserError, match="already exists"):
        pack(packed[1].with_suffix(".run"), packed[1], progress=False)


def test_pack_refuses_to_overwrite_its_input(packed):
    source, archive = packed
    with pytest.raises(UserError):
        pack(archive.with_suffix(".run"), source, force=True, progress=False)
    assert source.read_bytes()  # untouched


def test_pack_refuses_a_changed_data_file(tmp_path, text_sample):
    source, archive = make_archive(tmp_path, text_sample[:5000])
    source.write_bytes(text_sample[:4999] + b"!")
    with pytest.raises(UserError, match="not the file this run was trained on"):
        pack(archive.with_suffix(".run"), tmp_path / "new.arc", progress=False)


def test_truncated_archive_is_refused_and_writes_nothing(packed, tmp_path):
    blob = packed[1].read_bytes()
    for cut in (0, 10, len(blob) // 2, len(blob) - 1):
        bad = tmp_path / f"cut{cut}.arc"
        bad.write_bytes(blob[:cut])
        with pytest.raises(ArchiveError):
            inspect(bad)
        result = run_archive(bad, tmp_path / f"out{cut}")
        assert result.returncode != 0 or cut == 0  # python runs an empty file as an empty script
        assert not (tmp_path / f"out{cut}").exists()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.floats(0, 1, exclude_max=True), bit=st.integers(0, 7))
def test_any_flipped_bit_is_refused_and_writes_nothing(packed, tmp_path_factory, position, bit):
    blob = bytearray(packed[1].read_bytes())
    blob[int(position * len(blob))] ^= 1 << bit
    tmp = tmp_path_factory.mktemp("flip")
    bad, out = tmp / "bad.arc", tmp / "out"
    bad.write_bytes(bytes(blob))
    code = restore.main(["-q", "--archive", str(bad), "-o", str(out)])
    if code == 0:  # only possible if the flip hit bytes no reader uses (e.g. zip metadata)
        assert out.read_bytes() == packed[0].read_bytes()
    else:
        assert not out.exists()


def test_stripping_keeps_the_tested_program_verbatim():
    """Archives carry the repo's decoder text minus comments, docstrings and annotations (its tokens,
    in order, with some left out), never a regenerated program: an archive packed under one
    Python must run under every Python the source runs on."""
    import ast

    from submissions.archive import DECODER_DIR, _without_docstrings, strip_source

    for path in DECODER_DIR.glob("*.py"):
        source = path.read_text("utf-8")
        stripped = strip_source(source)
        assert _without_docstrings(ast.parse(stripped)) == _without_docstrings(ast.parse(source)), path.name
        assert len(stripped) < len(source), path.name
        assert _kept_tokens(stripped) == _subsequence(_kept_tokens(stripped), _kept_tokens(source)), path.name
    quoted = 'x = {"a": 1}\nprint(f"{x[\'a\']} # not a comment")  # a comment\n'
    assert strip_source(quoted) == 'x = {"a": 1}\nprint(f"{x[\'a\']} # not a comment")\n'


def test_the_header_states_a_model_by_what_differs_from_its_kind_s_defaults():
    model = PipelineConfig().to_dict()["model"]
    assert stated_model(dict(model, **sized_tables(model, 1000))) == {"kind": "mix"}  # the count table as pack sizes it
    tuned = PipelineConfig(model=MixingModelConfig(orders=(2, 3), learning_rate=12, table_bits=26)).to_dict()["model"]
    assert stated_model(tuned) == {"kind": "mix", "orders": (2, 3), "learning_rate": 12}
    with_neural = dict(tuned, neural={"kind": "neural", "d_model": 64})
    assert stated_model(with_neural)["neural"] == {"kind": "neural", "d_model": 64}  # what no config class states stays
    neural = {"kind": "neural", "vocab_size": 512, "d_model": 64}
    assert stated_model(neural) == neural  # the neural model's header is its own: nothing left out
