"""Sources → articles: read files in any common encoding or format, clean them, store them."""

from __future__ import annotations

import gc
import re
import tomllib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, tzinfo
from pathlib import Path
from typing import Any

from digest import clean, readers
from digest.errors import IngestError
from digest.models import Article, DateSource, Draft
from digest.store import article_id, body_keys
from digest.summarize import lead_summary

TEXT_SUFFIXES = frozenset({".txt", ".text"})
HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})
FEED_SUFFIXES = frozenset({".xml", ".rss", ".atom", ".feed"})
_SNIFF = 2048


@dataclass(frozen=True, slots=True)
class Rejected:
    """A file that was not ingested, and why (shown to the operator as is)."""

    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class Options:
    """What ingestion needs from the settings."""

    default_tz: tzinfo
    tag_rules: dict[str, list[str]] = field(default_factory=dict)
    max_bytes: int = 5_000_000
    metadata_name: str = "seeds.toml"
    summary_sentences: int = 2
    summary_chars: int = 320


@dataclass(frozen=True, slots=True)
class Batch:
    """The articles read from a set of paths, and the files rejected on the way."""

    articles: tuple[Article, ...]
    rejected: tuple[Rejected, ...]
    files: int


@dataclass(frozen=True, slots=True)
class _Meta:
    published: datetime | None = None
    source: str | None = None
    url: str | None = None
    author: str | None = None
    tags: tuple[str, ...] = ()


def read_paths(paths: Sequence[Path], options: Options) -> Batch:
    """Read, decode and clean every source file under ``paths`` (no database involved)."""
    with _no_cyclic_gc():
        return _read_paths(paths, options)


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """A batch builds many small objects without cycles that live until it is stored; the
    cyclic collector would rescan all of them again and again (time grows faster than N)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _read_paths(paths: Sequence[Path], options: Options) -> Batch:
    files, rejected = discover(paths)
    texts: list[tuple[Path, clean.Page, datetime]] = []
    found: list[Article] = []
    metadata: dict[Path, dict[tuple[str, str | None], _Meta]] = {}
    tagger = _tagger(options.tag_rules)
    for path in files:
        try:
            data, mtime = _read(path, options)
            kind = _kind(path, data)
            meta = _metadata_for(path, metadata, options)
            if kind == "text":
                texts.append((path, clean.prepare(readers.decode(data)), mtime))
                continue
            if kind == "html":
                extracted = [readers.read_html(data, options.default_tz)]
            else:
                extracted = readers.read_feed(data, options.default_tz)
            for number, (draft, url, source) in enumerate(extracted):
                found.append(
                    _finish(
                        draft, path, number, mtime, meta, tagger, options, url=url, source=source
                    )
                )
        except IngestError as exc:
            rejected.append(Rejected(str(path), str(exc)))
    chrome = clean.collection_chrome([page for _, page, _ in texts])
    texts.reverse()
    while texts:  # release each page as soon as it is cleaned
        path, page, mtime = texts.pop()
        drafts_of_page = clean.clean_page(page, chrome=chrome, default_tz=options.default_tz)
        if not drafts_of_page:
            rejected.append(
                Rejected(str(path), "no article found: no title followed by paragraphs of prose")
            )
            continue
        meta = metadata.get(path.parent, {})
        for number, draft in enumerate(drafts_of_page):
            found.append(_finish(draft, path, number, mtime, meta, tagger, options))
    return Batch(tuple(found), tuple(rejected), len(files))


def discover(paths: Sequence[Path]) -> tuple[list[Path], list[Rejected]]:
    """The source files under ``paths`` (folders are searched), and the paths that are not."""
    known = TEXT_SUFFIXES | HTML_SUFFIXES | FEED_SUFFIXES
    files: list[Path] = []
    rejected: list[Rejected] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                p for p in sorted(path.rglob("*")) if p.is_file() and p.suffix.lower() in known
            )
        elif path.is_file():
            files.append(path)
        elif path.exists():
            rejected.append(Rejected(str(path), "not a regular file"))
        else:
            rejected.append(Rejected(str(path), "no such file or directory"))
    return list(dict.fromkeys(files)), rejected


def _read(path: Path, options: Options) -> tuple[bytes, datetime]:
    try:
        stat = path.stat()
        size = stat.st_size
        if size > options.max_bytes:
            raise IngestError(
                f"file too large ({size:,} bytes, limit {options.max_bytes:,}); "
                "split it or raise max_file_bytes"
            )
        data = path.read_bytes()
        mtime = datetime.fromtimestamp(stat.st_mtime, tz=options.default_tz)
    except PermissionError as exc:
        raise IngestError("cannot read file: permission denied") from exc
    except OSError as exc:
        raise IngestError(f"cannot read file: {exc.strerror or exc}") from exc
    if not data.strip():
        raise IngestError("empty file")
    return data, mtime


def _kind(path: Path, data: bytes) -> str:
    suffix = path.suffix.lower()
    if suffix in HTML_SUFFIXES:
        return "html"
    if suffix in FEED_SUFFIXES:
        return "feed"
    if suffix in TEXT_SUFFIXES:
        return "text"
    head = data[:_SNIFF].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<!doctype html", b"<html")):
        return "html"
    if head.startswith(b"<?xml") or head.startswith((b"<rss", b"<feed", b"<rdf")):
        return "feed"
    return "text"


def _metadata_for(
    path: Path, cache: dict[Path, dict[tuple[str, str | None], _Meta]], options: Options
) -> dict[tuple[str, str | None], _Meta]:
    folder = path.parent
    if folder not in cache:
        cache[folder] = _load_metadata(folder / options.metadata_name, options.default_tz)
    return cache[folder]


def _load_metadata(path: Path, default_tz: tzinfo) -> dict[tuple[str, str | None], _Meta]:
    """Operator metadata: ``[[article]]`` tables keyed by ``file`` and, for archives, ``title``."""
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise IngestError(f"cannot read operator metadata {path}: {exc}") from exc
    out: dict[tuple[str, str | None], _Meta] = {}
    for entry in data.get("article", []):
        if not isinstance(entry, dict) or "file" not in entry:
            raise IngestError(f'{path}: every [[article]] needs a file = "NAME"')
        out[str(entry["file"]), entry.get("title")] = _Meta(
            published=_meta_date(entry.get("published"), default_tz),
            source=entry.get("source"),
            url=entry.get("url"),
            author=entry.get("author"),
            tags=tuple(clean.tag_slug(str(t)) for t in entry.get("tags", [])),
        )
    return out


def _meta_date(value: Any, default_tz: tzinfo) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=default_tz)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=default_tz)
    return None


def _tagger(rules: dict[str, list[str]]) -> Callable[[str], set[str]]:
    """One pass over the text finds every rule's phrases (whole words, any case)."""
    slugs: dict[str, set[str]] = {}
    for slug, phrases in rules.items():
        for phrase in phrases:
            slugs.setdefault(" ".join(phrase.lower().split()), set()).add(slug)
    if not slugs:
        return lambda text: set()
    alternatives = sorted(slugs, key=len, reverse=True)
    pattern = re.compile(r"\b(?:" + "|".join(map(re.escape, alternatives)) + r")\b", re.I)

    def tags_of(text: str) -> set[str]:
        found: set[str] = set()
        for match in pattern.finditer(text):
            found |= slugs.get(match.group(0).lower(), set())
        return found

    return tags_of


def _finish(
    draft: Draft,
    path: Path,
    number: int,
    mtime: datetime,
    metadata: dict[tuple[str, str | None], _Meta],
    tagger: Callable[[str], set[str]],
    options: Options,
    *,
    url: str | None = None,
    source: str | None = None,
) -> Article:
    """A draft with the gaps filled: operator metadata, then the page header date, then mtime."""
    meta = metadata.get((path.name, draft.title)) or metadata.get((path.name, None)) or _Meta()
    published, date_source = _date_of(draft, meta, mtime)
    paragraphs = draft.paragraphs
    keys = body_keys(paragraphs)
    text = draft.title + "\n" + "\n".join(paragraphs)
    tags = {*draft.categories, *meta.tags, *tagger(text)}
    return Article(
        id=article_id(draft.title, keys[0]),
        title=draft.title,
        published=published,
        date_source=date_source,
        tags=frozenset(t for t in tags if t),
        paragraphs=paragraphs,
        subtitle=draft.subtitle,
        author=draft.author or meta.author,
        source=meta.source or source or draft.byline_source,
        url=url or meta.url,
        dateline=draft.dateline,
        origin=str(path) + (f"#{number + 1}" if number else ""),
        summary=lead_summary(
            paragraphs,
            title=draft.title,
            max_sentences=options.summary_sentences,
            max_chars=options.summary_chars,
        ),
        keys=keys,
    )


def _date_of(draft: Draft, meta: _Meta, mtime: datetime) -> tuple[datetime, DateSource]:
    if draft.published is not None and draft.date_source not in (None, "page-header"):
        return draft.published, draft.date_source or "text"
    if meta.published is not None:
        return meta.published, "seeds.toml"
    if draft.published is not None:
        return draft.published, "page-header"
    return mtime, "mtime"
