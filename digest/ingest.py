"""Sources → articles: read files in any common encoding or format, clean them, store them."""

from __future__ import annotations

import os
import re
import sys
import time as _time
import tomllib
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, tzinfo
from functools import partial
from pathlib import Path
from typing import Any, overload

from digest import clean, dates, language, lines, readers
from digest.errors import DigestError, IngestError
from digest.models import Article, DateSource, Draft, Evidence
from digest.runtime import no_cyclic_gc
from digest.store import TAG_CHARS, article_id, body_keys, fit, folder_key
from digest.summarize import lead_summary

MAX_TAGS = 40  # of one article
MAX_TAG_CHARS = TAG_CHARS  # of one tag (schema.article_tags.tag)
_DETAIL_CHARS = 160  # of an unexpected error's message, in a rejection's one line


@dataclass(frozen=True, slots=True)
class Rejected:
    """A file (or one entry of a feed) that was not ingested, and why (shown as is).

    ``reason`` is one line; for a feed entry it starts with "entry N: ".
    """

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
    """The articles read from a set of paths, the files rejected on the way, and the feeds
    with entries skipped for having nothing to read (not an error: the rest was read)."""

    articles: tuple[Article, ...]
    rejected: tuple[Rejected, ...]
    files: int
    skipped: tuple[Rejected, ...] = ()  # "N of M entries skipped: …", one per feed
    evidence: dict[str, Evidence] = field(default_factory=dict)  # added, by source


@dataclass(frozen=True, slots=True)
class _Meta:
    published: datetime | None = None
    source: str | None = None
    url: str | None = None
    author: str | None = None
    tags: tuple[str, ...] = ()
    lang: str | None = None


@dataclass(frozen=True, slots=True)
class Document:
    """Bytes fetched by URL, read as a file's bytes are (``read_documents``)."""

    origin: str  # the source's configured URL: the articles' origin, its evidence's name
    data: bytes
    kind: readers.Kind
    fetched: datetime  # stands in for a file's mtime: the date of an undated page
    url: str | None = None  # where the bytes came from (after redirects): a page's link


def read_documents(
    documents: Sequence[Document],
    options: Options,
    *,
    evidence: Mapping[str, Evidence] | None = None,
) -> Batch:
    """Read fetched feeds, pages and texts with the readers of files; each document's
    evidence is its own (a feed polled again learns its sign-off as a feed file does)."""
    evidence = {} if evidence is None else evidence
    tagger = _tagger(options.tag_rules)
    found: list[Article] = []
    rejected: list[Rejected] = []
    skipped: list[Rejected] = []
    learned: dict[str, Evidence] = {}
    with no_cyclic_gc():
        for doc in documents:
            finish = partial(
                _finish, path=doc.origin, mtime=doc.fetched, metadata={}, tagger=tagger,
                options=options,
            )  # fmt: skip
            with _rejecting(doc.origin, rejected):
                if doc.kind == "feed":
                    articles, learned[doc.origin] = _feed(
                        doc.origin, doc.data, finish, options.default_tz, rejected, skipped,
                        evidence.get(doc.origin),
                    )  # fmt: skip
                    found.extend(articles)
                elif doc.kind == "html":
                    draft, url, site = readers.read_html(doc.data, options.default_tz)
                    found.append(finish(draft, number=0, url=url or doc.url, source=site))
                else:
                    cleaned = clean.clean_collection(
                        [readers.decode(doc.data)],
                        default_tz=options.default_tz,
                        evidence=evidence.get(doc.origin),
                    )
                    drafts = next(cleaned)
                    learned[doc.origin] = cleaned.learned
                    if not drafts:
                        raise IngestError("no article found: no title followed by paragraphs")
                    found.extend(finish(d, number=n, url=doc.url) for n, d in enumerate(drafts))
    return Batch(tuple(found), tuple(rejected), len(documents), tuple(skipped), learned)


def with_page(article: Article, data: bytes, options: Options) -> Article:
    """A feed entry's article read again from its linked page (``data``, HTML): the text and
    lead from the page; the entry's title, date, author and tags where the page lacks them.
    Raises ``IngestError`` when the page holds no article."""
    page, _, site = readers.read_html(data, options.default_tz)
    dated = page.published is not None and page.date_source not in (None, "page-header")
    draft = replace(
        page,
        title=page.title or article.title,
        published=page.published if dated else article.published,
        date_source=page.date_source if dated else article.date_source,
        author=page.author or article.author,
        categories=page.categories or tuple(sorted(article.tags)),
    )
    name, _, tail = article.origin.rpartition("#")
    origin, number = (name, int(tail) - 1) if name and tail.isdigit() else (article.origin, 0)
    return _finish(
        draft, origin, number, article.published, {}, _tagger(options.tag_rules), options,
        url=article.url, source=article.source or site,
    )  # fmt: skip


def with_source(article: Article, *, name: str, tags: Iterable[str]) -> Article:
    """An article with its configured source's tags first (subscribers follow them) and the
    source's name, when it has one, as its source."""
    return replace(
        article,
        tags=_kept_tags(tags, article.tags),
        source=name or article.source,
    )


def read_paths(
    paths: Sequence[Path],
    options: Options,
    *,
    sources: Mapping[Path, str] | None = None,
    evidence: Mapping[str, Evidence] | None = None,
) -> Batch:
    """Read, decode and clean every source file under ``paths`` (no database involved).

    Scraped text pages are cleaned one source at a time (``sources``: each file's source,
    by default its folder), against what earlier runs saw of that source (``evidence``);
    ``Batch.evidence`` is what this batch adds to it.
    """
    with no_cyclic_gc():
        return _read_paths(paths, options, sources or {}, {} if evidence is None else evidence)


def feed_source(path: Path) -> str:
    """The source a feed file is, for its evidence: the file itself (a feed saved again
    under one name each poll), absolute; never the name of a folder (``source_of``)."""
    return str(path.absolute())


def source_of(path: Path, roots: Sequence[Path]) -> str:
    """The source a file belongs to, for the cleaner's evidence: a site's folder, the first
    folder under the named one that holds it (``seeds/example-news/2024/a.txt`` is
    ``seeds/example-news``), or the named folder, or a named file's own folder; absolute."""
    path = path.absolute()
    for root in roots:
        root = root.absolute()
        if path != root and path.is_relative_to(root):
            parts = path.relative_to(root).parts
            return sys.intern(str(root / parts[0]) if len(parts) > 1 else str(root))
    return sys.intern(str(path.parent))  # one string a source, however many files it has


@dataclass(frozen=True, slots=True)
class Reading:
    """The articles of a set of paths, to draw once, in order (``stream_paths``); the lists
    and the evidence fill in as they are drawn (``Batch`` says what each holds)."""

    articles: Iterator[Article]
    rejected: list[Rejected]
    skipped: list[Rejected]
    evidence: dict[str, Evidence]  # added, by source
    files: int


def stream_paths(
    paths: Sequence[Path],
    options: Options,
    *,
    sources: Mapping[Path, str] | None = None,
    evidence: Mapping[str, Evidence] | None = None,
) -> Reading:
    """``read_paths``, article by article as each is read and cleaned: each source's text
    pages in two passes (``clean.Gathering``), so no more than one page is held at a time.
    Its rejections, skipped entries and evidence are whole once its articles all are. A
    scan's own list of files (``Files``, each named once) is read as it is: walked just now,
    it is not listed again (a second list of a large batch's names, and a stat a file)."""
    files: Sequence[Path] = paths
    rejected: list[Rejected] = []
    if not isinstance(paths, Files):
        files, rejected = discover(paths, metadata_name=options.metadata_name)
    reading = Reading(iter(()), rejected, [], {}, len(files))
    evidence = {} if evidence is None else evidence
    articles = _articles(files, options, sources or {}, evidence, reading)
    return replace(reading, articles=articles)


def _read_paths(
    paths: Sequence[Path],
    options: Options,
    sources: Mapping[Path, str],
    evidence: Mapping[str, Evidence],
) -> Batch:
    reading = stream_paths(paths, options, sources=sources, evidence=evidence)
    articles = tuple(reading.articles)
    rejected, skipped = tuple(reading.rejected), tuple(reading.skipped)
    return Batch(articles, rejected, reading.files, skipped, reading.evidence)


def _articles(
    files: Sequence[Path],
    options: Options,
    sources: Mapping[Path, str],
    evidence: Mapping[str, Evidence],
    reading: Reading,
) -> Iterator[Article]:
    """Each source's files in turn: web pages and feeds give their articles as they are
    read; text pages are gathered (first pass), then cleaned one by one (second pass)."""
    rejected, learned = reading.rejected, reading.evidence
    metadata: dict[Path, dict[tuple[str, str | None], _Meta]] = {}
    tagger = _tagger(options.tag_rules)
    by_source: dict[str, array[int]] = {}  # positions in files: no Path held for each
    for n, path in enumerate(files):
        source = sources.get(path) or str(path.absolute().parent)
        by_source.setdefault(source, array("i")).append(n)

    for source, numbers in by_source.items():
        gathering = clean.Gathering(evidence.get(source))
        # The text pages gathered, to clean in turn: their numbers in ``files`` and their
        # mtimes, not a Path each (~0.6 KB) held for the whole of a large source.
        texts = array("i")
        mtimes: list[datetime] = []
        for number, path in zip(numbers, map(files.__getitem__, numbers), strict=True):
            found: list[Article] = []
            with _rejecting(path, rejected):
                data, mtime = _read(path, options)
                kind = readers.kind_of(path.suffix, data)
                meta = _metadata_for(path, metadata, options)
                finish = partial(
                    _finish, path=path, mtime=mtime, metadata=meta, tagger=tagger,
                    options=options,
                )  # fmt: skip
                if kind == "text":
                    gathering.add(readers.decode(data))
                    texts.append(number)
                    mtimes.append(mtime)
                elif kind == "html":
                    draft, url, site = readers.read_html(data, options.default_tz)
                    found.append(finish(draft, number=0, url=url, source=site))
                else:
                    name = feed_source(path)
                    found, learned[name] = _feed(
                        path, data, finish, options.default_tz, rejected, reading.skipped,
                        evidence.get(name),
                    )  # fmt: skip
            yield from found
        cleaned = gathering.cleaning(options.default_tz)
        if texts:
            learned[source] = cleaned.learned
        for path, mtime in zip(map(files.__getitem__, texts), mtimes, strict=True):
            found = []  # each page cleaned in turn, and released
            with _rejecting(path, rejected):
                drafts_of_page = next(cleaned)
                if not drafts_of_page:
                    raise IngestError("no article found: no title followed by paragraphs of prose")
                meta = metadata.get(path.parent, {})
                found = [
                    _finish(draft, path, number, mtime, meta, tagger, options)
                    for number, draft in enumerate(drafts_of_page)
                ]
            yield from found


def _feed(
    path: Path | str,
    data: bytes,
    finish: Callable[..., Article],
    default_tz: tzinfo,
    rejected: list[Rejected],
    skipped: list[Rejected],
    evidence: Evidence | None,
) -> tuple[list[Article], Evidence]:
    """The articles of a feed's entries, read entry by entry: one that fails is rejected
    alone, one with neither a title nor text is skipped and counted (``skipped``); and
    what the entries add to the feed's ``evidence`` (``readers.feed_chrome``)."""
    site, entries = readers.read_feed(data)
    texts: list[tuple[int, readers.Entry, list[str]]] = []
    for number, entry in enumerate(entries, 1):
        with _rejecting(path, rejected, entry=number):
            texts.append((number, entry, readers.entry_text(entry)))
    chrome, learned = readers.feed_chrome([text for _, _, text in texts], evidence)
    articles: list[Article] = []
    empty = 0
    for number, entry, text in texts:
        with _rejecting(path, rejected, entry=number):
            item = readers.read_entry(entry, site, default_tz, text=text, chrome=chrome)
            if item is None:
                empty += 1
                continue
            draft, url, source = item
            articles.append(finish(draft, number=len(articles), url=url, source=source))
    if empty == len(entries):  # nothing in the whole file: an error of the file
        raise IngestError(f"no entry has a title or text ({_entries(len(entries))})")
    if empty:
        why = f"{empty} of {_entries(len(entries))} skipped: no title or text"
        skipped.append(Rejected(str(path), why))
    return articles, learned


def _entries(count: int) -> str:
    return f"{count} entr{'y' if count == 1 else 'ies'}"


@contextmanager
def _rejecting(
    path: Path | str, rejected: list[Rejected], *, entry: int | None = None
) -> Iterator[None]:
    """Turn a failure to read one file (or feed entry) into its one-line ``Rejected``.

    Whatever else breaks on one input is rejected too, named by its type, so the rest of
    the batch is stored and the operator has a line to report.
    """
    try:
        yield
    except DigestError as exc:
        rejected.append(Rejected(str(path), _one_line(str(exc), entry)))
    except Exception as exc:  # a bug met on one input must not cost every other one
        detail = str(exc)
        if len(detail) > _DETAIL_CHARS:
            detail = detail[:_DETAIL_CHARS] + "…"
        reason = f"cannot read it: unexpected {type(exc).__name__}" + (
            f" ({detail})" if detail.strip() else ""
        )
        reason += "; this is a bug in digest: please report it with this file"
        rejected.append(Rejected(str(path), _one_line(reason, entry)))


def _one_line(reason: str, entry: int | None) -> str:
    return (f"entry {entry}: " if entry is not None else "") + " ".join(reason.split())


class Files(Sequence[Path]):
    """Source files kept as their names and given as Paths when read: a batch of any size
    holds a list of strings, about a third of what as many Path objects cost."""

    __slots__ = ("_names",)

    def __init__(self, paths: Iterable[Path | str] = ()) -> None:
        self._names = list(dict.fromkeys(map(str, paths)))

    def append(self, path: Path) -> None:
        self._names.append(str(path))

    def once(self) -> Files:
        """These files, each named once, in order."""
        return Files(self._names)

    def __len__(self) -> int:
        return len(self._names)

    @overload
    def __getitem__(self, index: int) -> Path: ...
    @overload
    def __getitem__(self, index: slice) -> list[Path]: ...
    def __getitem__(self, index: int | slice) -> Path | list[Path]:
        if isinstance(index, slice):
            return [Path(name) for name in self._names[index]]
        return Path(self._names[index])

    def __iter__(self) -> Iterator[Path]:
        return map(Path, self._names)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]


@dataclass
class Scan:
    """What a walk of the source folders found: the source files (in path order) and
    what is no file to read; on a daily pass, each file's inode as its folder lists it;
    every folder walked with its mtime (0 when too recent to vouch for: a file added in the
    same clock tick would not change it); and the folders ``unchanged`` vouched for, whose
    files were not listed."""

    files: Files = field(default_factory=Files)
    rejected: list[Rejected] = field(default_factory=list)
    inodes: dict[Path, int] = field(default_factory=dict)
    folders: dict[str, int] = field(default_factory=dict)
    passed: set[str] = field(default_factory=set)


RACY_NS = 2_000_000_000  # a folder changed this recently may change again in the same tick


def discover(
    paths: Sequence[Path], *, metadata_name: str = "seeds.toml"
) -> tuple[Files, list[Rejected]]:
    """The source files under ``paths`` (folders are searched), and the paths that are not.

    In a folder, a file is a source by its suffix (``readers.SUFFIXES``) or, with any other
    name, when its first bytes are a feed's or a web page's (``readers.sniff``); hidden
    files and the operator metadata file never are. A file named in ``paths`` always is.
    """
    found = scan(paths, metadata_name=metadata_name)
    return found.files, found.rejected


def scan(
    paths: Sequence[Path],
    *,
    metadata_name: str = "seeds.toml",
    unchanged: Mapping[str, int] | None = None,
) -> Scan:
    """``discover``, walking each folder once (symlinked folders are not followed). A folder
    whose mtime is the one ``unchanged`` gives its ``store.folder_key`` has had no file
    added, removed or renamed since: its files are not listed (its subfolders still are
    walked). Each file's inode is noted only with ``unchanged`` (a daily pass)."""
    found = Scan()
    for path in paths:
        if path.is_dir():
            _walk(path, found, metadata_name, unchanged)
        elif path.is_file():
            found.files.append(path)
        elif path.exists():
            found.rejected.append(Rejected(str(path), "not a regular file"))
        else:
            found.rejected.append(Rejected(str(path), "no such file or directory"))
    found.files = found.files.once()
    return found


def _name(entry: os.DirEntry[str]) -> str:
    return entry.name


def _walk(
    folder: Path, found: Scan, metadata_name: str, unchanged: Mapping[str, int] | None
) -> None:
    """Depth first, each folder's entries by name: the order of ``sorted(rglob("*"))``."""
    name = str(folder)
    try:
        mtime = folder.stat().st_mtime_ns
        with os.scandir(folder) as listing:
            entries = list(listing)
    except OSError as exc:
        found.rejected.append(Rejected(name, f"cannot read folder: {exc.strerror or exc}"))
        return
    found.folders[name] = mtime if _time.time_ns() - mtime > RACY_NS else 0
    if unchanged is not None and unchanged.get(folder_key(name)) == mtime:
        found.passed.add(name)
        entries = [e for e in entries if e.is_dir(follow_symlinks=False)]  # subfolders only
    for entry in sorted(entries, key=_name):
        if entry.name.startswith("."):
            continue  # hidden, as is all in a hidden folder
        if entry.is_dir(follow_symlinks=False):
            _walk(folder / entry.name, found, metadata_name, unchanged)
            continue
        if entry.name == metadata_name:
            continue
        path = folder / entry.name
        known = path.suffix.lower() in readers.SUFFIXES
        if entry.is_file():
            if known or _sniffed(path):
                found.files.append(path)
                if unchanged is not None:  # a daily pass: it tells files by their inodes
                    found.inodes[path] = entry.inode()
        elif known and not entry.is_dir():  # a FIFO, a device, a dangling or looping symlink
            found.rejected.append(Rejected(str(path), "not a regular file"))


def _sniffed(path: Path) -> bool:
    """A file with no known suffix is read when its first bytes are a feed or a page."""
    try:
        with path.open("rb") as handle:
            head = handle.read(readers.SNIFF_BYTES)
    except OSError:
        return False  # not a source we know of: passed over, as any other unknown file
    return readers.sniff(head) is not None


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
    except PermissionError as exc:
        raise IngestError("cannot read file: permission denied") from exc
    except OSError as exc:
        raise IngestError(f"cannot read file: {exc.strerror or exc}") from exc
    try:
        mtime = datetime.fromtimestamp(stat.st_mtime, tz=options.default_tz)
    except (OverflowError, ValueError, OSError) as exc:
        raise IngestError(
            "its modification time is out of range; touch it, or give its date in "
            f"{options.metadata_name}"
        ) from exc
    if not data.strip():
        raise IngestError("empty file")
    return data, mtime


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
        name = str(entry["file"])
        tags = entry.get("tags", [])
        if not isinstance(tags, list):
            raise IngestError(f'{path}: tags of "{name}" must be a list, as tags = ["a", "b"]')
        out[name, entry.get("title")] = _Meta(
            published=_meta_date(entry.get("published"), default_tz, path, name),
            source=_meta_text(entry, "source", path),
            url=_meta_text(entry, "url", path),
            author=_meta_text(entry, "author", path),
            tags=tuple(clean.tag_slug(str(t)) for t in tags),
            lang=_meta_lang(entry, path),
        )
    return out


def _meta_text(entry: dict[str, Any], key: str, path: Path) -> str | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise IngestError(f'{path}: {key} of "{entry["file"]}" must be a string, in quotes')
    return readers.printable(value)


def _meta_lang(entry: dict[str, Any], path: Path) -> str | None:
    value = _meta_text(entry, "lang", path)
    tag = language.normalise(value)
    if value is not None and tag is None:
        raise IngestError(
            f'{path}: lang of "{entry["file"]}" must be a language tag, as lang = "de" or "pt-BR"'
        )
    return tag


def _meta_date(value: Any, default_tz: tzinfo, path: Path, name: str) -> datetime | None:
    if value is None:
        return None
    when = None
    if isinstance(value, datetime):
        when = dates.plausible(value if value.tzinfo else value.replace(tzinfo=default_tz))
    elif isinstance(value, date):
        when = dates.plausible(datetime.combine(value, time(), tzinfo=default_tz))
    if when is None:
        raise IngestError(
            f'{path}: published of "{name}" must be a date from 1900 to 2099, '
            "unquoted: published = 2019-03-04"
        )
    return when


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
    # A match gives a tag when it is, in lower case, an ASCII phrase: then that phrase is in
    # the case-folded text too (a letter whose lower case is ASCII folds to it). Most texts
    # hold no rule's phrase, and need not be searched.
    ascii_only = all(phrase.isascii() for phrase in alternatives)

    def tags_of(text: str) -> set[str]:
        if ascii_only:
            folded = text.casefold()
            if not any(phrase in folded for phrase in alternatives):
                return set()
        found: set[str] = set()
        for match in pattern.finditer(text):
            found |= slugs.get(match.group(0).lower(), set())
        return found

    return tags_of


def _without_bidi(draft: Draft) -> Draft:
    """The draft's title, deck, author and source without bidi controls (``lines``)."""
    plain = lines.without_bidi_controls
    return replace(
        draft,
        title=plain(draft.title),
        subtitle=plain(draft.subtitle) if draft.subtitle else draft.subtitle,
        author=plain(draft.author) if draft.author else draft.author,
        byline_source=plain(draft.byline_source) if draft.byline_source else None,
    )


def _finish(
    draft: Draft,
    path: Path | str,
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
    draft = _without_bidi(draft)
    name = path.name if isinstance(path, Path) else ""  # a URL has no operator metadata
    meta = metadata.get((name, draft.title)) or metadata.get((name, None)) or _Meta()
    published, date_source = _date_of(draft, meta, mtime)
    paragraphs = draft.paragraphs
    keys = body_keys(paragraphs)
    text = draft.title + "\n" + "\n".join(paragraphs)
    tags = _kept_tags(tagger(text), meta.tags, draft.categories)
    article = Article(
        id=article_id(draft.title, keys[0]),
        title=draft.title,
        published=published,
        date_source=date_source,
        tags=tags,
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
        lang=meta.lang or language.of_article(draft.lang, draft.title, paragraphs),
    )
    return fit(article)  # every value within its column's limit, by construction


def _kept_tags(*groups: Iterable[str]) -> frozenset[str]:
    """At most MAX_TAGS tags: the tag rules' first (subscribers follow them), then the
    operator's metadata, then the page's own categories; a "tag" longer than MAX_TAG_CHARS
    (a keywords line) is no tag. A page with thousands of categories must not make every
    email and feed carry them."""
    kept: dict[str, None] = {}
    for group in groups:
        for tag in sorted(set(group)):
            if len(kept) >= MAX_TAGS:
                return frozenset(kept)
            if tag and len(tag) <= MAX_TAG_CHARS:
                kept[tag] = None
    return frozenset(kept)


def _date_of(draft: Draft, meta: _Meta, mtime: datetime) -> tuple[datetime, DateSource]:
    if draft.published is not None and draft.date_source not in (None, "page-header"):
        return draft.published, draft.date_source or "text"
    if meta.published is not None:
        return meta.published, "seeds.toml"
    if draft.published is not None:
        return draft.published, "page-header"
    return mtime, "mtime"
