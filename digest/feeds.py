"""RSS 2.0 and Atom 1.0 feeds of the latest issues, byte-identical for the same data.

Feed readers key items on their ids and poll often, so everything in a feed comes from
the articles themselves: ``tag:`` ids (RFC 4151) from the article id and year (and a host
pinned at the first publish), dates from ``published``, the feed's own date from its newest
article. Nothing reads the clock. Article text is text: where a feed carries HTML (the RSS
description, the html content) it is escaped, so no reader renders markup from it.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time
from pathlib import Path
from urllib.parse import quote, urlsplit

from feedgen.feed import FeedGenerator  # type: ignore[import-untyped]

from digest import language
from digest.errors import OutputError
from digest.files import write_if_changed
from digest.links import article_link
from digest.models import Article, Issue, Site

MAX_FEED_BYTES = 1_000_000  # many readers and aggregators refuse larger feeds
RSS_FILE = "feed.xml"
ATOM_FILE = "atom.xml"

# XML 1.0 forbids these outright; lxml raises on them instead of escaping.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# A title is one line: CR/LF in it would split headers and list views of feed readers.
_LINE_BREAKS = re.compile(r"\s+")
# A tag: URI's authority (RFC 4151): a DNS name, or the IP address a local base_url has.
_DNS_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
# Seen when there is nothing at all to date the feed by; a fixed instant keeps builds equal.
_NO_DATE = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class FeedInfo:
    """What the feeds say about themselves (from settings, read at the edge)."""

    site: Site  # its name is part of the tag: ids
    author_name: str
    author_email: str
    # The host the tag: ids carry; pinned (the host of the first publish) so a move of
    # base_url to a new domain does not make every reader show every story again.
    id_host: str | None = None


@dataclass(frozen=True, slots=True)
class _Entry:
    article: Article
    full: bool  # carry the article's paragraphs, not only its summary


def build_feeds(issues: Sequence[Issue], info: FeedInfo) -> tuple[bytes, bytes]:
    """The RSS and the Atom document of every article of ``issues``, newest first."""
    host = _id_host(info)
    articles = _articles(issues)
    fallback = _issue_instant(issues)
    rss = _fitted(articles, lambda entries: _render(entries, info, host, fallback, atom=False))
    atom = _fitted(articles, lambda entries: _render(entries, info, host, fallback, atom=True))
    return rss, atom


def write_feeds(outbox: Path, issues: Sequence[Issue], info: FeedInfo) -> None:
    """Write ``feed.xml`` and ``atom.xml`` atomically; an unchanged file keeps its mtime."""
    rss, atom = build_feeds(issues, info)
    write_if_changed(outbox / RSS_FILE, rss)
    write_if_changed(outbox / ATOM_FILE, atom)


def entry_id(article: Article, host: str, digest: str) -> str:
    """The item's ``tag:`` URI: it depends only on the article, so it never changes."""
    year = article.published.astimezone(UTC).year
    return f"tag:{host},{year}:{digest}/{quote(article.id, safe='')}"


def _id_host(info: FeedInfo) -> str:
    """The tagging authority of the ids (RFC 4151): the pinned host, else base_url's."""
    if info.id_host is not None:
        if not _DNS_NAME.fullmatch(info.id_host):
            raise OutputError(
                f"feed id host {info.id_host!r} is not a host name; it must be the host "
                "name of the feeds' first base_url, e.g. news.example.org"
            )
        return info.id_host.lower()
    host = urlsplit(info.site.base_url).hostname
    if not host:
        raise OutputError(
            f"base_url {info.site.base_url!r} has no host name; set base_url to the public URL "
            "of outbox/, e.g. https://news.example.org/digest"
        )
    return host


def _articles(issues: Sequence[Issue]) -> list[Article]:
    """Each article once, newest first, ties broken by id so the order never varies."""
    unique: dict[str, Article] = {}
    for issue in issues:
        for article in issue.articles:
            unique.setdefault(article.id, article)
    return sorted(unique.values(), key=lambda a: (-a.published.timestamp(), a.id))


def _issue_instant(issues: Sequence[Issue]) -> datetime:
    """The newest issue's date, to date a feed whose issues hold no article."""
    if not issues:
        return _NO_DATE
    newest = max(issues, key=lambda issue: issue.date)
    return datetime.combine(newest.date, time(), tzinfo=newest.start.tzinfo or UTC)


def _fitted(articles: list[Article], render: Callable[[list[_Entry]], bytes]) -> bytes:
    """The largest newest-first feed within MAX_FEED_BYTES.

    Old entries go first; only when even the newest article alone is too big do the
    entries lose their full text and keep the summary. Size grows with every entry, so
    a binary search over how many to keep needs only a few renders.
    """
    for full in (True, False):
        document = render([_Entry(a, full) for a in articles])
        if len(document) <= MAX_FEED_BYTES:
            return document
        low, high = 0, len(articles) - 1  # len(articles) entries are known to be too big
        best: bytes | None = None
        while low < high:
            middle = (low + high + 1) // 2
            candidate = render([_Entry(a, full) for a in articles[:middle]])
            if len(candidate) <= MAX_FEED_BYTES:
                low, best = middle, candidate
            else:
                high = middle - 1
        if best is not None:
            return best
    raise OutputError(
        f"the feed is over {MAX_FEED_BYTES} bytes even with one article's summary; "
        "check that article's title and summary"
    )


def _render(
    entries: list[_Entry], info: FeedInfo, host: str, fallback: datetime, *, atom: bool
) -> bytes:
    """One format from a fresh generator: feedgen keeps state, so none is shared."""
    site = info.site.base_url.rstrip("/") + "/"
    updated = max((e.article.published for e in entries), default=fallback).astimezone(UTC)
    generator = FeedGenerator()
    generator.id(f"tag:{host},2024:{info.site.name}")
    generator.title(_line(info.site.title))
    generator.description(_line(f"The latest stories of {info.site.title}"))
    generator.author({"name": _line(info.author_name), "email": _line(info.author_email)})
    generator.managingEditor(f"{_line(info.author_email)} ({_line(info.author_name)})")
    generator.generator("digest")  # feedgen's default names its own version
    generator.updated(updated)
    # feedgen makes the LAST link the RSS channel <link>: self first, the site after it.
    self_url = site + (ATOM_FILE if atom else RSS_FILE)
    kind = "application/atom+xml" if atom else "application/rss+xml"
    generator.link(href=self_url, rel="self", type=kind)
    generator.link(href=site, rel="alternate", type="text/html")
    langs = {language.normalise(e.article.lang) for e in entries}
    if len(langs) == 1 and None not in langs:
        generator.language(langs.pop())  # RSS <language>, Atom xml:lang: one for every entry
    if not atom:
        generator.load_extension("dc", atom=False, rss=True)
    elif any(e.article.lang for e in entries):
        generator.load_extension("dc", atom=True, rss=False)  # for each entry's dc:language
    for entry in entries:
        _add_entry(generator, entry, info, host, rss=not atom)
    try:
        data: bytes = generator.atom_str() if atom else generator.rss_str()
    except ValueError as exc:  # lxml's "All strings must be XML compatible" and the like
        raise OutputError(f"cannot build the {'Atom' if atom else 'RSS'} feed: {exc}") from exc
    return data


def _add_entry(
    generator: FeedGenerator, entry: _Entry, info: FeedInfo, host: str, *, rss: bool
) -> None:
    article = entry.article
    published = article.published.astimezone(UTC)
    item = generator.add_entry(order="append")
    item.id(entry_id(article, host, info.site.name))
    item.title(_line(article.title) or article.id)
    item.link(href=article_link(article, info.site.base_url), rel="alternate", type="text/html")
    summary = _text(article.summary) or _text(article.paragraphs[0] if article.paragraphs else "")
    if summary and rss:
        # Readers render an RSS <description> as HTML: escaped, the text shows as text.
        item.description(html.escape(summary), isSummary=True)
    elif summary:
        item.summary(summary)  # Atom's default type is text: readers never parse it
    if entry.full and article.paragraphs:
        item.content(_html(article), type="html")
    for tag in sorted(article.tags):
        item.category(term=_line(tag))
    if article.author:
        # RSS <author> must be an email address; a name alone goes in dc:creator.
        if rss:
            item.dc.dc_creator(_line(article.author))
        else:
            item.author(name=_line(article.author))
    lang = language.normalise(article.lang)
    if lang:  # feedgen has no per-entry language of its own: Dublin Core's, in RSS and Atom
        item.dc.dc_language(lang)
    item.published(published)
    item.updated(published)  # feedgen's default is now(), which would change every build


def _html(article: Article) -> str:
    """The paragraphs as escaped HTML: the reader renders tags we wrote, never the text's."""
    parts = []
    if article.subtitle:
        parts.append(f"<p><em>{html.escape(_text(article.subtitle))}</em></p>")
    parts += [f"<p>{html.escape(_text(p))}</p>" for p in article.paragraphs]
    return "\n".join(parts)


def _text(value: str) -> str:
    return _NOT_XML.sub("", value).strip()


def _line(value: str) -> str:
    return _LINE_BREAKS.sub(" ", _text(value)).strip()
