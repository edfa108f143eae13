"""The data stage: built-in sample, slices, and enwik downloads (faked: no network in tests)."""

from __future__ import annotations

import hashlib
import io
import re
import urllib.error
import xml.etree.ElementTree as ET
import zipfile

import pytest

from pipeline import data as stage
from submissions.errors import UserError

NS = "{http://www.mediawiki.org/xml/export-0.3/}"


# --- the built-in sample -----------------------------------------------------------------


def test_sample_is_deterministic_wellformed_english_xml(tmp_path):
    a = stage.write_sample(tmp_path / "a")
    b = stage.write_sample(tmp_path / "b")
    blob = a.read_bytes()
    assert blob == b.read_bytes() == stage.sample_bytes()
    assert 300_000 <= len(blob) <= 1_000_000
    root = ET.fromstring(blob)
    assert root.find(f"{NS}siteinfo/{NS}sitename") is not None
    pages = root.findall(f"{NS}page")
    assert len(pages) > 50
    titles = [page.findtext(f"{NS}title") for page in pages]
    assert len(set(titles)) == len(titles) and all(titles)
    ids = [int(page.findtext(f"{NS}id")) for page in pages]
    assert ids == sorted(set(ids))
    for page in pages:
        revision = page.find(f"{NS}revision")
        assert revision.findtext(f"{NS}timestamp") and revision.find(f"{NS}contributor") is not None
        assert revision.find(f"{NS}text").get("{http://www.w3.org/XML/1998/namespace}space") == "preserve"


def test_sample_is_mostly_ascii_prose_with_wiki_markup():
    blob = stage.sample_bytes()
    assert sum(32 <= c < 127 or c == 10 for c in blob) / len(blob) > 0.99
    text = blob.decode("utf-8")
    words = re.findall(r"[a-z]+", text.lower())
    common = sum(w in {"the", "of", "a", "to", "is", "and", "in", "that", "an", "be"} for w in words)
    assert common / len(words) > 0.15  # English prose, not code or noise
    assert "\n== " in text and "== See also ==" in text and "[[" in text and "''" in text
    assert "&quot;" in text and "&lt;" in text and "&amp;" in text  # escaped like enwik8
    assert text.startswith("<mediawiki ") and text.endswith("</mediawiki>\n")


def test_a_larger_sample_adds_module_docs_within_the_cap():
    small = stage.sample_bytes()
    larger = stage.sample_bytes(min_bytes=len(small) + 1)
    assert len(small) < len(larger) <= stage.SAMPLE_MAX_BYTES
    assert b"(Python module)</title>" in larger and b"(Python module)</title>" not in small
    ET.fromstring(larger)
    assert len(stage.sample_bytes(max_bytes=400_000)) <= 400_000
    with pytest.raises(UserError):
        stage.sample_bytes(min_bytes=2_000_000)


def test_write_sample_refuses_an_existing_output(tmp_path):
    out = tmp_path / "sample.xml"
    out.write_bytes(b"keep me")
    with pytest.raises(UserError, match="already exists"):
        stage.write_sample(out)
    assert out.read_bytes() == b"keep me"
    assert stage.write_sample(out, force=True).read_bytes() == stage.sample_bytes()


# --- head -------------------------------------------------------------------------------------


def test_head_slices_exactly(tmp_path):
    src = tmp_path / "src"
    src.write_bytes(bytes(range(256)) * 100)
    assert stage.head(src, tmp_path / "out", 1000).read_bytes() == src.read_bytes()[:1000]
    assert stage.head(src, tmp_path / "zero", 0).read_bytes() == b""
    assert stage.head(src, tmp_path / "all", 10**9).read_bytes() == src.read_bytes()
    with pytest.raises(UserError, match="non-negative"):
        stage.head(src, tmp_path / "neg", -1)


def test_head_protects_its_input_and_existing_outputs(tmp_path):
    src = tmp_path / "src"
    src.write_bytes(b"x" * 5000)
    out = stage.head(src, tmp_path / "out", 10)
    with pytest.raises(UserError, match="already exists"):
        stage.head(src, out, 20)
    assert out.read_bytes() == b"x" * 10
    assert stage.head(src, out, 20, force=True).read_bytes() == b"x" * 20
    with pytest.raises(UserError, match="input"):
        stage.head(src, src, 10, force=True)
    with pytest.raises(UserError, match="input"):
        stage.head(src, tmp_path / "." / "src", 10, force=True)
    assert src.read_bytes() == b"x" * 5000
    with pytest.raises(UserError, match="does not exist"):
        stage.head(tmp_path / "missing", tmp_path / "x", 10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]


# --- fetch (fake network) -------------------------------------------------------------------


def _fake_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return buffer.getvalue()


class _FakeResponse(io.BytesIO):
    def __init__(self, body: bytes, length: int | None = None):
        super().__init__(body)
        self.headers = {"Content-Length": str(len(body) if length is None else length)}


CONTENT = b"pretend this is enwik8 " * 1000


@pytest.fixture
def fake_enwik8(monkeypatch):
    """enwik8 served from a tiny fake zip; the md5 table expects CONTENT. Returns the call log."""
    calls = []

    def urlopen(url, timeout):
        calls.append((url, timeout))
        return _FakeResponse(_fake_zip({"enwik8": CONTENT}))

    monkeypatch.setattr(stage.urllib.request, "urlopen", urlopen)
    monkeypatch.setitem(stage.ENWIK, "enwik8", ("http://example.invalid/enwik8.zip", hashlib.md5(CONTENT).hexdigest(), len(CONTENT)))
    return calls


def test_fetch_writes_the_file_when_the_md5_matches(tmp_path, fake_enwik8):
    out = stage.fetch_enwik("enwik8", tmp_path / "data" / "enwik8", progress=True)
    assert out.read_bytes() == CONTENT
    assert fake_enwik8 == [("http://example.invalid/enwik8.zip", stage.DOWNLOAD_TIMEOUT_S)]
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["enwik8"]  # the zip is gone
    with pytest.raises(UserError, match="already exists"):
        stage.fetch_enwik("enwik8", out, progress=False)
    assert len(fake_enwik8) == 1  # refused before touching the network
    assert stage.fetch_enwik("enwik8", out, force=True, progress=False).read_bytes() == CONTENT


def test_fetch_refuses_a_wrong_md5_and_leaves_nothing(tmp_path, fake_enwik8, monkeypatch):
    monkeypatch.setitem(stage.ENWIK, "enwik8", ("http://example.invalid/enwik8.zip", "0" * 32, len(CONTENT)))
    with pytest.raises(UserError, match="md5"):
        stage.fetch_enwik("enwik8", tmp_path / "enwik8", progress=False)
    assert not any(tmp_path.iterdir())


def test_fetch_offline_is_one_clear_error(tmp_path, monkeypatch):
    def offline(url, timeout):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(stage.urllib.request, "urlopen", offline)
    with pytest.raises(UserError) as caught:
        stage.fetch_enwik("enwik9", tmp_path / "enwik9", progress=False)
    message = str(caught.value)
    assert "\n" not in message
    assert "cannot download http://mattmahoney.net/dc/enwik9.zip" in message and "Name or service not known" in message
    assert "e206c3450ac99950df65bf70ef61a12d" in message and "pipeline data FILE --head N" in message
    assert not any(tmp_path.iterdir())


def test_fetch_reports_a_broken_or_truncated_download(tmp_path, fake_enwik8, monkeypatch):
    class Reset(_FakeResponse):
        def read(self, size=-1):
            raise ConnectionResetError("connection reset by peer")

    monkeypatch.setattr(stage.urllib.request, "urlopen", lambda url, timeout: Reset(b""))
    with pytest.raises(UserError, match="cannot download.*reset"):
        stage.fetch_enwik("enwik8", tmp_path / "a", progress=False)

    body = _fake_zip({"enwik8": CONTENT})
    monkeypatch.setattr(stage.urllib.request, "urlopen", lambda url, timeout: _FakeResponse(body[:100], len(body)))
    with pytest.raises(UserError, match="stopped at 100 of"):
        stage.fetch_enwik("enwik8", tmp_path / "b", progress=False)

    monkeypatch.setattr(stage.urllib.request, "urlopen", lambda url, timeout: _FakeResponse(b"<html>not a zip</html>"))
    with pytest.raises(UserError, match="not a readable zip"):
        stage.fetch_enwik("enwik8", tmp_path / "c", progress=False)

    damaged = bytearray(body)
    damaged[40:50] = b"\xff" * 10  # inside the compressed member (after its 36-byte header): a zlib error
    monkeypatch.setattr(stage.urllib.request, "urlopen", lambda url, timeout: _FakeResponse(bytes(damaged)))
    with pytest.raises(UserError, match="not a readable zip"):
        stage.fetch_enwik("enwik8", tmp_path / "e", progress=False)

    monkeypatch.setattr(stage.urllib.request, "urlopen", lambda url, timeout: _FakeResponse(_fake_zip({"x": b"1", "y": b"2"})))
    with pytest.raises(UserError, match="none is named enwik8"):
        stage.fetch_enwik("enwik8", tmp_path / "d", progress=False)
    assert not any(tmp_path.iterdir())


def test_fetch_reuses_a_cached_zip_and_drops_a_bad_one(tmp_path, fake_enwik8, monkeypatch):
    cache = tmp_path / "cache"
    stage.fetch_enwik("enwik8", tmp_path / "one", cache_dir=cache, progress=False)
    stage.fetch_enwik("enwik8", tmp_path / "two", cache_dir=cache, progress=False)
    assert len(fake_enwik8) == 1 and (cache / "enwik8.zip").is_file()
    assert (tmp_path / "two").read_bytes() == CONTENT

    (cache / "enwik8.zip").write_bytes(_fake_zip({"enwik8": b"corrupted"}))
    with pytest.raises(UserError, match="md5"):
        stage.fetch_enwik("enwik8", tmp_path / "three", cache_dir=cache, progress=False)
    assert not (tmp_path / "three").exists() and not any(cache.iterdir())


def test_fetch_rejects_unknown_names(tmp_path):
    with pytest.raises(UserError, match="unknown data set"):
        stage.fetch_enwik("enwik7", tmp_path / "x", progress=False)


# --- describe ------------------------------------------------------------------------------


def test_describe_recognizes_nothing_but_exact_enwik(tmp_path, monkeypatch):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    facts = stage.describe(path)
    assert facts == {
        "size": 3,
        "md5": hashlib.md5(b"abc").hexdigest(),
        "sha256": hashlib.sha256(b"abc").hexdigest(),
        "enwik": None,
    }
    monkeypatch.setitem(stage.ENWIK, "enwik8", ("http://example.invalid/enwik8.zip", hashlib.md5(b"abc").hexdigest(), 3))
    assert stage.describe(path)["enwik"] == "enwik8"
