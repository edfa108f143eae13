"""`pipeline data`: the standard enwik files, the built-in sample, and slices of any file."""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

from pipeline.errors import UserError
from pipeline.fileio import atomic_path, atomic_write_bytes, check_output, require_file

ENWIK = {
    "enwik8": ("http://mattmahoney.net/dc/enwik8.zip", "a1fa5ffddb56f4953e226637dabbb36a", 10**8),
    "enwik9": ("http://mattmahoney.net/dc/enwik9.zip", "e206c3450ac99950df65bf70ef61a12d", 10**9),
}
SAMPLE_MIN_BYTES = 300_000
SAMPLE_MAX_BYTES = 1_000_000
_BLOCK = 1 << 20


def _md5_file(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(url: str, target: Path, progress: bool) -> None:
    from pipeline.progress import console
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    try:
        response = urllib.request.urlopen(url, timeout=30)
    except (urllib.error.URLError, OSError) as exc:
        raise UserError(
            f"cannot download {url} ({getattr(exc, 'reason', exc)}); on an offline machine fetch it elsewhere, "
            "unzip it, and give the file's path to `pipeline train` (or slice it with `pipeline data FILE --head N`)"
        ) from None
    total = int(response.headers.get("Content-Length") or 0) or None
    with response, open(target, "wb") as out, Progress(*Progress.get_default_columns()[:2], DownloadColumn(), TransferSpeedColumn(), console=console, disable=not progress) as bar:
        task = bar.add_task(f"downloading {url.rsplit('/', 1)[-1]}", total=total)
        for block in iter(lambda: response.read(_BLOCK), b""):
            out.write(block)
            bar.advance(task, len(block))


def fetch_enwik(name: str, out: Path, force: bool = False, progress: bool = True) -> Path:
    """Download the official zip, extract it, check the published md5, write atomically."""
    if name not in ENWIK:
        raise UserError(f"unknown data set {name!r}; known: {', '.join(ENWIK)}")
    url, md5, _ = ENWIK[name]
    out = check_output(Path(out), force)
    with tempfile.TemporaryDirectory(prefix=f"{name}-", dir=out.parent if out.parent.exists() else None) as tmp:
        archive = Path(tmp) / f"{name}.zip"
        _download(url, archive, progress)
        try:
            with zipfile.ZipFile(archive) as zf, atomic_path(out) as tmp_out:
                with zf.open(name) as member, open(tmp_out, "wb") as target:
                    shutil.copyfileobj(member, target, _BLOCK)
                if _md5_file(tmp_out) != md5:
                    raise UserError(f"{name} from {url} fails its published md5 {md5}; nothing was written")
        except (zipfile.BadZipFile, KeyError) as exc:
            raise UserError(f"{url} is not the expected zip ({exc}); nothing was written") from None
    return out


def head(src: Path, out: Path, n_bytes: int, force: bool = False) -> Path:
    """The first n_bytes of src (e.g. enwik6 = head of enwik8, 10**6), never overwriting src."""
    src = require_file(Path(src), "input file")
    out = check_output(Path(out), force, inputs=(src,))
    if out.resolve() == src.resolve():
        raise UserError("the slice would overwrite its own input")
    with open(src, "rb") as f, atomic_path(out) as tmp, open(tmp, "wb") as target:
        remaining = n_bytes
        while remaining > 0:
            block = f.read(min(_BLOCK, remaining))
            if not block:
                break
            target.write(block)
            remaining -= len(block)
    return out


def describe(path: Path) -> dict:
    """Size and digests, and whether the file is exactly enwik8 or enwik9."""
    path = require_file(Path(path))
    sha = hashlib.sha256()
    md5 = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            sha.update(block)
            md5.update(block)
    known = [name for name, (_, digest, _) in ENWIK.items() if digest == md5.hexdigest()]
    return {"size": path.stat().st_size, "md5": md5.hexdigest(), "sha256": sha.hexdigest(), "enwik": known[0] if known else None}


# --- the built-in sample -----------------------------------------------------------

_SITEINFO = """<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.3/" version="0.3" xml:lang="en">
  <siteinfo>
    <sitename>Python reference</sitename>
    <base>https://docs.python.org/3/reference/</base>
    <generator>hutter-pipeline sample</generator>
    <case>first-letter</case>
  </siteinfo>
"""
_UNDERLINE = re.compile(r"^([^\n]+)\n([*=\-^~])\2{2,}\n", re.MULTILINE)
_QUOTED_TOPIC = re.compile(r'"([a-z][a-z_]+)"')


def _wiki_markup(text: str, topics: set[str]) -> str:
    """reST-ish underlined headings -> == Heading ==; quoted topic names -> [[links]]."""
    text = _UNDERLINE.sub(lambda m: f"{'==' if m.group(2) in '*=' else '==='} {m.group(1).strip()} {'==' if m.group(2) in '*=' else '==='}\n", text)
    return _QUOTED_TOPIC.sub(lambda m: f"[[{m.group(1)}]]" if m.group(1) in topics else m.group(0), text)


def _page(index: int, title: str, text: str) -> str:
    # fixed ids and timestamps derived from the index: the same bytes on every run
    return (
        "  <page>\n"
        f"    <title>{escape(title)}</title>\n"
        f"    <id>{index + 1}</id>\n"
        "    <revision>\n"
        f"      <id>{1000000 + 7919 * index}</id>\n"
        f"      <timestamp>2006-03-{1 + index % 28:02d}T{index % 24:02d}:{(7 * index) % 60:02d}:00Z</timestamp>\n"
        "      <contributor>\n"
        "        <username>Python documentation</username>\n"
        "        <id>42</id>\n"
        "      </contributor>\n"
        f'      <text xml:space="preserve">{escape(text, {chr(34): "&quot;"})}</text>\n'
        "    </revision>\n"
        "  </page>\n"
    )


def sample_bytes(max_bytes: int = SAMPLE_MAX_BYTES) -> bytes:
    """English prose from the Python reference manual that ships with Python (pydoc_data),
    laid out like enwik8. Deterministic for a given Python version (the manual differs
    between versions)."""
    from pydoc_data.topics import topics

    names = set(topics)
    parts = [_SITEINFO]
    size = len(_SITEINFO)
    for index, title in enumerate(sorted(topics)):
        page = _page(index, title.replace("-", " ").capitalize(), _wiki_markup(topics[title].strip() + "\n", names))
        if size + len(page) > max_bytes - len("</mediawiki>\n"):
            break
        parts.append(page)
        size += len(page)
    parts.append("</mediawiki>\n")
    return "".join(parts).encode("utf-8")


def write_sample(out: Path, force: bool = False, min_bytes: int = SAMPLE_MIN_BYTES) -> Path:
    out = check_output(Path(out), force)
    data = sample_bytes()
    if len(data) < min_bytes:  # the manual shrank in some Python version: say so, do not pad
        raise UserError(f"this Python's manual gives only {len(data):,} bytes of sample text (< {min_bytes:,})")
    atomic_write_bytes(out, data)
    return out
