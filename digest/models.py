"""Immutable values that flow between the stages."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from typing import Literal

DateSource = Literal["text", "feed", "html", "seeds.toml", "page-header", "mtime"]

# Most trusted first: a date printed with the article beats operator metadata,
# which beats a site-header (crawl) date, which beats the file's mtime.
DATE_SOURCE_RANK: dict[str, int] = {
    "text": 0,
    "feed": 0,
    "html": 1,
    "seeds.toml": 2,
    "page-header": 3,
    "mtime": 4,
}


@dataclass(frozen=True, slots=True)
class Site:
    """Who the digest is, as every output says it: the email, the pages and the feeds."""

    title: str  # settings.title: shown in the email, the pages and the feeds
    base_url: str  # settings.base_url: the public URL of outbox/, every link starts there
    name: str  # settings.digest_name: the short name in List-Id, feed ids and the ledger
    timezone: tzinfo  # settings.timezone: dates are shown in it


@dataclass(frozen=True, slots=True)
class Draft:
    """What the cleaner found in one article of a plain-text page."""

    title: str
    paragraphs: tuple[str, ...]
    subtitle: str | None = None
    author: str | None = None
    byline_source: str | None = None
    published: datetime | None = None
    date_source: DateSource | None = None
    dateline: str | None = None
    categories: tuple[str, ...] = ()
    lang: str | None = None  # BCP 47, as the source declares it ("de", "pt-BR")


@dataclass(frozen=True, slots=True)
class Article:
    """A clean, dated, tagged article, ready to store."""

    id: str
    title: str
    published: datetime  # always tz-aware
    date_source: DateSource
    tags: frozenset[str]
    paragraphs: tuple[str, ...]
    subtitle: str | None = None
    author: str | None = None
    source: str | None = None
    url: str | None = None
    dateline: str | None = None
    origin: str = ""
    summary: str = ""
    keys: tuple[str, ...] = field(default=(), compare=False)
    lang: str | None = None  # BCP 47: declared by the source or the operator, else detected

    @property
    def body(self) -> str:
        return "\n\n".join(self.paragraphs)


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the scraped pages of one source show by repeating themselves, kept by the store
    across runs: each line key (``segment.key``) with the number of different stories that
    printed it, and the fingerprints of the posts seen (a page read again is the story seen
    before, not one more). The cleaner reads it and returns what a batch adds to it."""

    lines: Mapping[int, int] = field(default_factory=dict)
    posts: AbstractSet[int] = frozenset()

    def plus(self, more: Evidence) -> Evidence:
        """This evidence with what a later batch added to it (``more``)."""
        lines = dict(self.lines)
        for key, n in more.lines.items():
            lines[key] = lines.get(key, 0) + n
        return Evidence(lines, self.posts | more.posts)


@dataclass(frozen=True, slots=True)
class Issue:
    """One issue of a digest: its date, the window it covers and its articles, newest first.

    ``tags`` is the variant: empty for the whole issue, else the tag set of a group of
    subscribers (any-of), whose issue holds only the articles with one of those tags.
    """

    digest: str
    date: date
    start: datetime  # first instant of the window (tz-aware, local midnight)
    end: datetime  # first instant after it
    articles: tuple[Article, ...]
    tags: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Subscriber:
    """A subscriber and the tags they follow (none = every article)."""

    email: str
    name: str | None = None
    tags: frozenset[str] = frozenset()
