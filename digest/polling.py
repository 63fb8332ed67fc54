"""Sources by URL → stored articles: one poll of the configured sources, read and stored.

``poll_sources`` asks each due source once (``fetch.poll``), reads what came with the
readers of files (``ingest.read_documents``), adds the source's tags and name, fetches the
linked page of each new entry of a ``full_text`` source (once: a page a stored article
links to is never fetched again), stores the articles, and keeps each source's state
(``sources.save_states``) with the number of new articles it gave. A source that fails, or
whose body the readers refuse, costs only itself. Polls in one process take turns
(``LOCK``): the scheduler's polls and a send's never ask a site twice at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from urllib.parse import urlsplit

import httpx
from sqlalchemy import Engine

from digest import fetch, ingest, readers, store
from digest.errors import IngestError
from digest.models import Article
from digest.sources import Source, SourceState, canonical_url, load_states, save_states

LOCK = threading.Lock()  # one poll at a time in a process
_log = logging.getLogger("digest.polling")


@dataclass(frozen=True, slots=True)
class Polled:
    """One source's part of a poll, as ``digest fetch`` and the send report show it."""

    source: Source
    state: SourceState  # as stored after this poll
    outcome: fetch.Outcome  # "failed" too when the body came but the readers refused it
    new: int = 0  # articles stored that were not stored before
    read: int = 0  # articles read from the body (new, updated or already stored)
    error: str | None = None
    moved: str | None = None  # a permanent redirect seen now: the source's new URL
    pages: int = 0  # full text: linked pages read
    page_failures: int = 0  # full text: pages that failed, the feed's text kept instead
    found_feed: str | None = None  # the feed a home page named, polled from now on


@dataclass(frozen=True, slots=True)
class PollReport:
    """What one poll of the sources did."""

    polled: tuple[Polled, ...]
    rejected: tuple[ingest.Rejected, ...] = ()  # entries not stored, and why
    skipped: tuple[ingest.Rejected, ...] = ()  # feeds with entries that had nothing to read

    @property
    def new(self) -> int:
        return sum(p.new for p in self.polled)

    @property
    def failed(self) -> tuple[Polled, ...]:
        return tuple(p for p in self.polled if p.outcome == "failed")


def poll_sources(
    engine: Engine,
    configured: Sequence[Source],
    options: fetch.Options,
    reading: ingest.Options,
    *,
    now: datetime,
    stale_after: float | None = None,
    jitter: Callable[[float], float] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> PollReport:
    """Poll the enabled ``configured`` sources that are due, store what came, keep the
    states. ``stale_after`` (seconds): only sources not polled that recently (the daily
    run's poll after the scheduler's)."""
    with LOCK:
        states = load_states(engine, [s.url for s in configured])
        chosen = [s for s in configured if s.enabled]
        if stale_after is not None:
            chosen = [s for s in chosen if _stale(states.get(s.url), now, stale_after)]
        extra = {} if jitter is None else {"jitter": jitter}
        fetched = fetch.poll(chosen, states, options, now=now, transport=transport, **extra)
        polled: list[Polled] = []
        rejected: list[ingest.Rejected] = []
        skipped: list[ingest.Rejected] = []
        for item in fetched:
            one, refused, empty = _store(engine, item, options, reading, now, transport)
            polled.append(one)
            rejected.extend(refused)
            skipped.extend(empty)
        save_states(engine, [p.state for p in polled if p.outcome != "waiting"])
    return PollReport(tuple(polled), tuple(rejected), tuple(skipped))


def _stale(state: SourceState | None, now: datetime, seconds: float) -> bool:
    return (
        state is None
        or state.last_fetch is None
        or ((now - state.last_fetch).total_seconds() >= seconds)
    )


def _store(
    engine: Engine,
    item: fetch.Fetched,
    options: fetch.Options,
    reading: ingest.Options,
    now: datetime,
    transport: httpx.AsyncBaseTransport | None,
) -> tuple[Polled, tuple[ingest.Rejected, ...], tuple[ingest.Rejected, ...]]:
    """One source's fetched body read and stored; its state says how it went."""
    source, state = item.source, item.state
    if item.outcome != "new" or item.kind is None:
        return Polled(source, state, item.outcome, error=item.error, moved=item.moved), (), ()
    if item.kind == "html" and state.moved_to is None and _home_page(source.url):
        feed = _feed_instead(item, options, now, transport)
        if feed is not None:
            polled, refused, empty = _store(engine, feed, options, reading, now, transport)
            return replace(polled, moved=None, found_feed=feed.moved), refused, empty
    doc = ingest.Document(source.url, item.data, item.kind, now, item.url)
    evidence = store.load_evidence(engine, [source.url])
    batch = ingest.read_documents([doc], reading, evidence=evidence)
    whole = [r for r in batch.rejected if not r.reason.startswith("entry ")]
    if whole:  # the body as a whole is no feed or page: the source failed
        failed = fetch.failure(
            state, whole[0].reason, now=now, options=options, status=state.last_status,
            forget=True,
        )  # fmt: skip
        return Polled(source, failed, "failed", error=failed.last_error, moved=item.moved), (), ()
    articles = [ingest.with_source(a, name=source.name, tags=source.tags) for a in batch.articles]
    pages = failures = 0
    if source.full_text:
        articles, pages, failures = _full_text(engine, articles, source, options, reading, now,
                                               transport)  # fmt: skip
    saved = store.save(engine, articles, now=now)
    store.add_evidence(engine, batch.evidence, now=now)
    refused = tuple(
        ingest.Rejected(r.origin, f"cannot be stored: {r.reason}") for r in saved.refused
    )
    state = replace(state, new_articles=saved.inserted)
    polled = Polled(
        source, state, "new", saved.inserted, len(articles), moved=item.moved, pages=pages,
        page_failures=failures,
    )  # fmt: skip
    return polled, (*batch.rejected, *refused), batch.skipped


def _home_page(url: str) -> bool:
    """Whether ``url`` is a site's home page (no path): one to find the feed of, not an
    article to read."""
    return urlsplit(url).path in ("", "/") and not urlsplit(url).query


def _feed_instead(
    item: fetch.Fetched,
    options: fetch.Options,
    now: datetime,
    transport: httpx.AsyncBaseTransport | None,
) -> fetch.Fetched | None:
    """A home page's main feed (``readers.feed_links``), fetched now, as the source's body
    from now on: the state polls it (``moved_to``; ``Polled.found_feed`` reports it).
    None when the page names none, or it is no feed."""
    links = readers.feed_links(item.data, item.url or item.source.url)
    if not links:
        return None
    state = replace(item.state, moved_to=links[0].url, etag=None, last_modified=None)
    (feed,) = fetch.poll([item.source], {item.source.url: state}, options, now=now,
                         transport=transport)  # fmt: skip
    if feed.outcome != "new" or feed.kind != "feed":
        return None
    return replace(feed, moved=links[0].url)


def _full_text(
    engine: Engine,
    articles: list[Article],
    source: Source,
    options: fetch.Options,
    reading: ingest.Options,
    now: datetime,
    transport: httpx.AsyncBaseTransport | None,
) -> tuple[list[Article], int, int]:
    """Each entry read from its linked page, fetched once by canonical URL; an entry whose
    page a stored article already links to is left out (stored, never fetched again); a
    page that fails leaves the feed's text. Also the pages read and those that failed."""
    linked = {id(a): canonical_url(a.url) for a in articles if a.url}
    stored = store.stored_urls(engine, linked.values())
    articles = [a for a in articles if linked.get(id(a)) not in stored]
    wanted = list(dict.fromkeys(u for a in articles if (u := linked.get(id(a))) is not None))
    if not wanted:
        return articles, 0, 0
    pages = [Source(url=url, name=source.name) for url in wanted]
    fetched = {
        f.source.url: f for f in fetch.poll(pages, {}, options, now=now, transport=transport)
    }
    done: dict[str, Article | None] = {}
    out: list[Article] = []
    read = failures = 0
    for article in articles:
        url = linked.get(id(article))
        page = fetched.get(url) if url is not None else None
        if url is None or page is None:
            out.append(article)
            continue
        if url not in done:
            done[url] = _page_article(replace(article, url=url), page, reading, source)
            read += done[url] is not None
            failures += done[url] is None
        found = done[url]
        out.append(found if found is not None else replace(article, url=url))
    return out, read, failures


def _page_article(
    article: Article, page: fetch.Fetched, reading: ingest.Options, source: Source
) -> Article | None:
    """The entry read from its fetched page, or None when the page failed or holds none."""
    if page.outcome != "new" or page.kind != "html":
        return None
    try:
        found = ingest.with_page(article, page.data, reading)
    except IngestError:
        return None
    except Exception as exc:  # a bug met on one page must not cost the poll: the entry stays
        _log.warning("full text of %s: unexpected %s (%s); this is a bug in digest, the "
                     "entry's own text is kept", article.url, type(exc).__name__, exc)  # fmt: skip
        return None
    return ingest.with_source(found, name=source.name, tags=source.tags)
