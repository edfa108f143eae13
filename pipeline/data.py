"""`pipeline data`: the standard enwik files, the built-in sample, and slices of any file.

Public functions (the CLI wires them up):

    fetch_enwik(name, out, force=False, cache_dir=None, progress=True) -> Path
    write_sample(out, force=False, min_bytes=300_000) -> Path
    sample_bytes(min_bytes=300_000, max_bytes=1_000_000) -> bytes
    head(src, out, n_bytes, force=False) -> Path
    describe(path) -> dict
"""

from __future__ import annotations

import hashlib
import http.client
import re
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO, Optional
from xml.sax.saxutils import escape

from submissions.errors import UserError
from submissions.fileio import atomic_path, atomic_write_bytes, check_output, require_file

# name -> (official zip, md5 of the unzipped file, its size)
ENWIK = {
    "enwik8": ("http://mattmahoney.net/dc/enwik8.zip", "a1fa5ffddb56f4953e226637dabbb36a", 10**8),
    "enwik9": ("http://mattmahoney.net/dc/enwik9.zip", "e206c3450ac99950df65bf70ef61a12d", 10**9),
}
DOWNLOAD_TIMEOUT_S = 60  # per socket operation, not for the whole download
SAMPLE_MIN_BYTES = 300_000
SAMPLE_MAX_BYTES = 1_000_000
_BLOCK = 1 << 20


# --- enwik downloads -----------------------------------------------------------------


def _copy(source: BinaryIO, target: BinaryIO, total: Optional[int], label: str, progress: bool) -> tuple[int, str]:
    """Stream source to target under a rich bar; return (bytes copied, md5)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    from pipeline.progress import console, plain_lines

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    digest, copied = hashlib.md5(), 0
    log = plain_lines(f"{label} (bytes)", progress)
    with Progress(*columns, console=console, disable=not progress or log is not None) as bar:
        task = bar.add_task(label, total=total)
        for block in iter(lambda: source.read(_BLOCK), b""):
            target.write(block)
            digest.update(block)
            copied += len(block)
            bar.advance(task, len(block))
            if log:
                log(copied, total or 0)
        if log:  # the closing line, also when the size was not known beforehand
            log(copied, copied)
    return copied, digest.hexdigest()


def _offline_help(name: str, out: Path) -> str:
    url, md5, _ = ENWIK[name]
    return (
        f"to get it by hand: download {url} on a machine with network, unzip it, "
        f"check `md5sum {name}` is {md5}, and save it as {out} "
        f"(or give its path to `pipeline data FILE --head N` for a slice)"
    )


def _download(name: str, target: Path, progress: bool, out: Path) -> None:
    """The official zip into target; any network failure is one clear UserError."""
    url = ENWIK[name][0]
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, open(target, "wb") as f:
            total = int(response.headers.get("Content-Length") or 0) or None
            copied, _ = _copy(response, f, total, f"downloading {name}.zip", progress)
    except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts and resets are OSErrors
        reason = getattr(exc, "reason", None) or exc
        raise UserError(f"cannot download {url} ({reason}); {_offline_help(name, out)}") from None
    if total is not None and copied != total:
        raise UserError(f"download of {url} stopped at {copied:,} of {total:,} bytes; try again, or {_offline_help(name, out)}")


def _member(zf: zipfile.ZipFile, name: str) -> zipfile.ZipInfo:
    """The zip's single file (the official zips hold exactly one, named like the data set)."""
    members = [info for info in zf.infolist() if not info.is_dir()]
    if len(members) == 1:
        return members[0]
    named = [info for info in members if info.filename == name]
    if not named:
        raise UserError(f"the {name} zip holds {len(members)} files and none is named {name}")
    return named[0]


def _extract(name: str, archive: Path, out: Path, progress: bool) -> None:
    """Unzip the member onto out atomically, only if it has the published md5."""
    _, expected, _ = ENWIK[name]
    try:
        with zipfile.ZipFile(archive) as zf:
            info = _member(zf, name)
            with zf.open(info) as member, atomic_path(out) as tmp, open(tmp, "wb") as target:
                _, md5 = _copy(member, target, info.file_size, f"extracting {name}", progress)
                if md5 != expected:  # raising inside atomic_path removes the temp file
                    raise UserError(f"{name} has md5 {md5}, not the published {expected}; nothing was written")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error) as exc:  # a damaged zip
        raise UserError(f"{archive.name} is not a readable zip ({exc}); nothing was written") from None


def fetch_enwik(name: str, out: Path, force: bool = False, cache_dir: Optional[Path] = None, progress: bool = True) -> Path:
    """Download the official enwik8/enwik9 zip, extract it, check the published md5, write out atomically.

    With cache_dir the zip is kept there (as NAME.zip) and reused by later calls; a
    cached zip whose content fails the md5 is deleted so the next call downloads again.
    Without it the zip lives in a temporary folder beside `out` and is removed.
    """
    if name not in ENWIK:
        raise UserError(f"unknown data set {name!r}; known: {', '.join(ENWIK)}")
    out = check_output(Path(out), force)
    if cache_dir is not None:
        cached = Path(cache_dir) / f"{name}.zip"
        if not cached.is_file():
            with atomic_path(cached) as tmp:  # a broken download never becomes the cached zip
                _download(name, tmp, progress, out)
        try:
            _extract(name, cached, out, progress)
        except UserError:
            cached.unlink(missing_ok=True)
            raise
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{name}-download-", dir=out.parent) as tmp:
        archive = Path(tmp) / f"{name}.zip"
        _download(name, archive, progress, out)
        _extract(name, archive, out, progress)
    return out


# --- slices and facts ------------------------------------------------------------------


def head(src: Path, out: Path, n_bytes: int, force: bool = False) -> Path:
    """The first n_bytes of src (enwik6 = head of enwik8, 10**6), streamed; never overwrites src."""
    if n_bytes < 0:
        raise UserError(f"a slice needs a non-negative number of bytes, not {n_bytes}")
    src = require_file(Path(src), "input file")
    out = check_output(Path(out), force, inputs=(src,))
    with open(src, "rb") as f, atomic_path(out) as tmp, open(tmp, "wb") as target:
        remaining = n_bytes
        while remaining > 0:
            block = f.read(min(_BLOCK, remaining))
            if not block:
                break  # src is shorter than n_bytes: the slice is all of it
            target.write(block)
            remaining -= len(block)
    return out


def describe(path: Path) -> dict:
    """size, md5, sha256, and enwik: "enwik8"/"enwik9" when the file is exactly that, else None."""
    path = require_file(Path(path))
    sha, md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            sha.update(block)
            md5.update(block)
    known = [name for name, (_, digest, _) in ENWIK.items() if digest == md5.hexdigest()]
    return {"size": path.stat().st_size, "md5": md5.hexdigest(), "sha256": sha.hexdigest(), "enwik": known[0] if known else None}


# --- the built-in sample ---------------------------------------------------------------
#
# The Python reference manual as pydoc ships it (pydoc_data.topics: one reST-ish plain
# text entry per topic), laid out like enwik8: a <mediawiki> root, a <siteinfo>, then one
# <page> per topic with the manual's wording and light MediaWiki markup.

_NAMESPACES = {-2: "Media", -1: "Special", 0: "", 1: "Talk", 2: "User", 3: "User talk", 4: "Wikipedia", 5: "Wikipedia talk"}
_HEADER = (
    '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.3/" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'xsi:schemaLocation="http://www.mediawiki.org/xml/export-0.3/ http://www.mediawiki.org/xml/export-0.3.xsd" '
    'version="0.3" xml:lang="en">\n'
    "  <siteinfo>\n"
    "    <sitename>Python reference</sitename>\n"
    "    <base>https://docs.python.org/3/reference/</base>\n"
    "    <generator>hutter-pipeline sample</generator>\n"
    "    <case>first-letter</case>\n"
    "      <namespaces>\n"
    + "".join(
        f'      <namespace key="{key}" />\n' if not label else f'      <namespace key="{key}">{label}</namespace>\n'
        for key, label in _NAMESPACES.items()
    )
    + "    </namespaces>\n"
    "  </siteinfo>\n"
)
_FOOTER = "</mediawiki>\n"

# reST underline character -> MediaWiki heading level ('*' is the page title itself)
_LEVELS = {"*": "==", "=": "==", "-": "===", "~": "====", "^": "===="}
_UNDERLINED = re.compile(r"^([^\n]+)\n([*=\-~^])\2{2,}$", re.MULTILINE)
_EMPHASIS = re.compile(r"(?<![\w*\\])(\*\*?)([A-Za-z_][\w .:’'-]*?)\1(?![\w*])")
_QUOTED = re.compile(r'"([a-z]+)"')


def _title_and_body(text: str) -> tuple[str, str]:
    """Split off the manual's first (starred) heading as the page title."""
    match = _UNDERLINED.match(text)
    if not match or match.group(2) != "*":
        return "", text
    return match.group(1).replace('"', "").strip(), text[match.end() :].lstrip("\n")


def _headings(text: str) -> str:
    def heading(m: re.Match) -> str:
        mark = _LEVELS[m.group(2)]
        return f"{mark} {m.group(1).strip()} {mark}"

    return _UNDERLINED.sub(heading, text)


def _emphasis(text: str) -> str:
    """*word* -> ''word'', **PEP 8** -> '''PEP 8''' (only plain words: code keeps its stars)."""
    return _EMPHASIS.sub(lambda m: ("'''" if len(m.group(1)) == 2 else "''") + m.group(2) + ("'''" if len(m.group(1)) == 2 else "''"), text)


def _link_keywords(text: str, targets: dict[str, str], own_title: str) -> str:
    """Wikipedia links a term once, on first use: the first "keyword" in prose -> [[Title|keyword]]."""
    linked: set[str] = set()
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.startswith("   ") or "::=" in line:  # code and grammar stay as they are
            continue

        def link(m: re.Match) -> str:
            word = m.group(1)
            title = targets.get(word)
            if title is None or title == own_title or word in linked:
                return m.group(0)
            linked.add(word)
            return f"[[{title}|{word}]]"

        lines[i] = _QUOTED.sub(link, line)
    return "\n".join(lines)


def _related_topics() -> tuple[dict[str, str], dict[str, list[str]]]:
    """pydoc's help tables: keyword -> topic key, and topic key -> related topic keys."""
    import pydoc
    from pydoc_data.topics import topics

    tables = {**pydoc.Helper.topics, **pydoc.Helper.keywords}

    def resolve(name: str, depth: int = 0) -> Optional[str]:
        entry = tables.get(name)
        if isinstance(entry, str) and depth < 5:  # an alias of another entry
            return resolve(entry, depth + 1)
        if isinstance(entry, tuple) and entry[0] in topics:
            return entry[0]
        return None

    keyword_topic = {word: key for word in pydoc.Helper.keywords if (key := resolve(word)) is not None}
    related: dict[str, list[str]] = {}
    for name, entry in tables.items():
        key = resolve(name)
        if key is None or not isinstance(entry, tuple):
            continue
        for other in entry[1].split():
            other_key = resolve(other)
            if other_key is not None and other_key != key and other_key not in related.setdefault(key, []):
                related[key].append(other_key)
    return keyword_topic, related


def _page(index: int, title: str, text: str) -> str:
    # ids and timestamps derived from the index: the same bytes on every run
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


def _manual_articles() -> list[tuple[str, str]]:
    """(title, wikitext) for each topic of the reference manual, in pydoc's order."""
    from pydoc_data.topics import topics

    titled = {}
    for key in sorted(topics):
        title, body = _title_and_body(topics[key].strip() + "\n")
        title = title or key.replace("-", " ").capitalize()
        if any(t == title or b == body for t, b in titled.values()):  # e.g. "else" repeats "if"
            continue
        titled[key] = (title, body)
    keyword_topic, related = _related_topics()
    targets = {word: titled[key][0] for word, key in keyword_topic.items() if key in titled}
    articles = []
    for key, (title, body) in titled.items():
        text = _link_keywords(_emphasis(_headings(body)), targets, title)
        see_also = [titled[other][0] for other in related.get(key, []) if other in titled]
        if see_also:
            text = text.rstrip("\n") + "\n\n== See also ==\n" + "".join(f"* [[{t}]]\n" for t in see_also)
        articles.append((title, text))
    return articles


# pure-Python stdlib modules (their docstrings do not depend on the platform or build)
_DOC_MODULES = (
    "argparse", "ast", "calendar", "collections", "configparser", "contextlib", "csv", "dataclasses", "difflib",
    "doctest", "email.message", "enum", "fractions", "ftplib", "functools", "gettext", "heapq", "http.client",
    "http.server", "imaplib", "inspect", "ipaddress", "json", "logging", "mailbox", "optparse", "pathlib", "pdb",
    "pickle", "pprint", "pydoc", "random", "re", "shlex", "shutil", "smtplib", "statistics", "string",
    "subprocess", "tarfile", "tempfile", "textwrap", "threading", "tokenize", "traceback", "typing", "unittest",
    "urllib.parse", "warnings", "zipfile",
)


def _module_articles() -> list[tuple[str, str]]:
    """Extra prose for a larger sample: docstrings of a fixed list of pure-Python stdlib modules."""
    import importlib
    import inspect

    articles = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # reading typing.io's docstring warns
        for name in _DOC_MODULES:
            module = importlib.import_module(name)
            parts = [inspect.getdoc(module) or ""]
            for member, value in sorted(vars(module).items()):
                own = (inspect.isclass(value) or inspect.isfunction(value)) and getattr(value, "__module__", None) == name
                if own and not member.startswith("_") and (doc := inspect.getdoc(value)):
                    parts.append(f"== {member} ==\n{doc}")
            articles.append((f"{name} (Python module)", "\n\n".join(p for p in parts if p) + "\n"))
    return articles


def _assemble(articles: list[tuple[str, str]], max_bytes: int) -> bytes:
    """Header, as many whole pages as fit in max_bytes, footer."""
    parts, size = [_HEADER], len(_HEADER) + len(_FOOTER)
    for index, (title, text) in enumerate(articles):
        page = _page(index, title, text)
        if size + len(page.encode("utf-8")) > max_bytes:
            break
        parts.append(page)
        size += len(page.encode("utf-8"))
    parts.append(_FOOTER)
    return "".join(parts).encode("utf-8")


def sample_bytes(min_bytes: int = SAMPLE_MIN_BYTES, max_bytes: int = SAMPLE_MAX_BYTES) -> bytes:
    """The built-in sample: the Python reference manual that ships with Python (pydoc_data),
    as enwik-style MediaWiki XML, at most max_bytes. Stdlib module docstrings are added only
    when min_bytes asks for more than the manual gives. No network.

    Deterministic for a given Python version (and arguments), not across versions: the
    manual and docstrings change between releases, so the CLI prints size and sha256.
    """
    if min_bytes > max_bytes:
        raise UserError(f"a sample of at least {min_bytes:,} bytes cannot fit in {max_bytes:,}")
    articles = _manual_articles()
    data = _assemble(articles, max_bytes)
    if len(data) < min_bytes:
        data = _assemble(articles + _module_articles(), max_bytes)
    if len(data) < min_bytes:
        raise UserError(f"this Python's documentation gives only {len(data):,} bytes of sample text (< {min_bytes:,})")
    return data


def write_sample(out: Path, force: bool = False, min_bytes: int = SAMPLE_MIN_BYTES) -> Path:
    """Write the built-in sample (see sample_bytes) atomically; refuses an existing out unless force."""
    out = check_output(Path(out), force)
    atomic_write_bytes(out, sample_bytes(min_bytes))
    return out
