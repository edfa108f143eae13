"""The data stage: built-in sample, slices, and enwik downloads (faked: no network in tests)."""

from __future__ import annotations

import hashlib
import io
import urllib.error
import xml.etree.ElementTree as ET
import zipfile

import pytest

from pipeline import data as stage
from pipeline.errors import UserError


def test_sample_is_deterministic_wellformed_english_xml(tmp_path):
    a = stage.write_sample(tmp_path / "a")
    b = stage.write_sample(tmp_path / "b")
    blob = a.read_bytes()
    assert blob == b.read_bytes()
    assert len(blob) >= 300_000
    root = ET.fromstring(blob)
    pages = root.findall("{http://www.mediawiki.org/xml/export-0.3/}page")
    assert len(pages) > 50
    assert sum(32 <= c < 127 or c in b"\n" for c in blob) / len(blob) > 0.99  # prose, mostly ASCII
    assert b" the " in blob and b"<title>" in blob and b"== " in blob


def test_head_slices_exactly_and_protects_inputs(tmp_path):
    src = tmp_path / "src"
    src.write_bytes(bytes(range(256)) * 100)
    out = stage.head(src, tmp_path / "out", 1000)
    assert out.read_bytes() == src.read_bytes()[:1000]
    with pytest.raises(UserError, match="already exists"):
        stage.head(src, out, 10)
    with pytest.raises(UserError):
        stage.head(src, src, 10, force=True)
    assert len(src.read_bytes()) == 25600
    assert stage.head(src, tmp_path / "all", 10**9).read_bytes() == src.read_bytes()
    with pytest.raises(UserError, match="does not exist"):
        stage.head(tmp_path / "missing", tmp_path / "x", 10)


def _fake_zip(name: str, content: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(name, content)
    return buffer.getvalue()


class _FakeResponse(io.BytesIO):
    def __init__(self, body: bytes):
        super().__init__(body)
        self.headers = {"Content-Length": str(len(body))}


def test_fetch_checks_the_published_md5(tmp_path, monkeypatch):
    content = b"pretend this is enwik8"
    body = _fake_zip("enwik8", content)
    monkeypatch.setattr(stage.urllib.request, "urlopen", lambda url, timeout: _FakeResponse(body))
    monkeypatch.setitem(stage.ENWIK, "enwik8", ("http://example.invalid/enwik8.zip", hashlib.md5(content).hexdigest(), len(content)))
    out = stage.fetch_enwik("enwik8", tmp_path / "enwik8", progress=False)
    assert out.read_bytes() == content

    monkeypatch.setitem(stage.ENWIK, "enwik8", ("http://example.invalid/enwik8.zip", "0" * 32, len(content)))
    with pytest.raises(UserError, match="md5"):
        stage.fetch_enwik("enwik8", tmp_path / "bad", progress=False)
    assert not (tmp_path / "bad").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["enwik8"]  # no partial files left


def test_fetch_offline_is_one_clear_error(tmp_path, monkeypatch):
    def offline(url, timeout):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(stage.urllib.request, "urlopen", offline)
    with pytest.raises(UserError, match="cannot download"):
        stage.fetch_enwik("enwik9", tmp_path / "enwik9", progress=False)
    assert not any(tmp_path.iterdir())


def test_describe_recognizes_nothing_but_exact_enwik(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    facts = stage.describe(path)
    assert facts["size"] == 3 and facts["enwik"] is None
    assert facts["sha256"] == hashlib.sha256(b"abc").hexdigest()
