"""The decoder package's copies (pipeline/decoder_variant.py) are files in the user's cache,
written once, so numba caches their kernels; elsewhere when the cache cannot be written."""

from __future__ import annotations

from pipeline.decoder_variant import _written

SOURCES = {"__init__": "", "a": "X = 1\n"}


def test_the_copy_is_written_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = _written("_decoder_x", SOURCES)
    assert folder.parent.parent == tmp_path / "cache" / "hutter-pipeline" / "variants" and folder.name == "_decoder_x"
    assert {p.name: p.read_text() for p in folder.iterdir()} == {"__init__.py": "", "a.py": "X = 1\n"}
    stamp = (folder / "a.py").stat().st_mtime_ns
    assert _written("_decoder_x", SOURCES) == folder and (folder / "a.py").stat().st_mtime_ns == stamp  # not rewritten: numba's cache stays valid
    assert _written("_decoder_x", SOURCES | {"a": "X = 2\n"}) != folder  # other sources, another folder
    (folder / "a.py").write_text("X = 3\n")  # edited or damaged in the cache
    assert (_written("_decoder_x", SOURCES) / "a.py").read_text() == "X = 1\n"


def test_a_cache_that_cannot_be_written_gives_a_temporary_copy(tmp_path, monkeypatch):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    folder = _written("_decoder_x", SOURCES)
    assert blocked not in folder.parents and (folder / "a.py").read_text() == "X = 1\n"
