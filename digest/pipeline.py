"""One run of a digest: ingest new sources, select the issue, render it, write the outbox, deliver.

``digest send`` and the scheduler both call ``run``; the clock and the sender are passed in.
"""

from __future__ import annotations

import itertools
import shutil
import time as _time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from sqlalchemy import Engine

from digest import clean, dates, db, ingest, readers, segment, store
from digest.errors import ConfigError, IngestError, StoreError
from digest.files import write_if_changed
from digest.links import issue_page, variant_page
from digest.models import Article, Evidence, Issue, Site, Subscriber
from digest.runtime import OnFirstUse, collect_young, no_cyclic_gc
from digest.settings import Settings, SourceConfig
from digest.sources import Source, SourceState, load_states
from digest.summarize import lead_summary, summary_key
from digest.wording import counted

if TYPE_CHECKING:
    from digest import (
        deliver,
        feeds,
        fetch,
        locks,
        message,
        pages,
        polling,
        preflight,
        render,
        selection,
        smtp,
        subscribers,
    )
else:  # what ingest does not need is imported when a send, a poll or a render first uses it
    deliver, feeds, fetch, locks, message, pages, polling = (
        OnFirstUse(f"digest.{name}")
        for name in ("deliver", "feeds", "fetch", "locks", "message", "pages", "polling")
    )
    preflight, render, selection, smtp, subscribers = (
        OnFirstUse(f"digest.{name}")
        for name in ("preflight", "render", "selection", "smtp", "subscribers")
    )

PREVIEW = "preview"  # outbox/preview/DATE/: what a dry run wrote; never published or served
# A stored article no issue has carried, ingested this recently, is cleaned again when a
# later batch shows that a line it prints is its site's chrome (``_clean_again``).
RECLEAN_DAYS = 14
# The daily pass looks again at each file read in the last WATCH_DAYS, for a page written
# again in place; older ones it sees again once renamed or replaced (`digest ingest` reads all).
WATCH_DAYS = 7
SAVE_CHUNK = 1_000  # articles stored in one save as a batch is read: the most held at once
_FEED_ID_HOST = "feed_id_host:"  # store_meta, + digest name: the host of the first feed's ids


@dataclass(frozen=True, slots=True)
class RunReport:
    """What one run did, for the operator's table and the scheduler's log line."""

    issue: Issue
    ingested: int
    rejected: tuple[ingest.Rejected, ...]
    delivery: deliver.DeliveryReport | None  # None when the issue has no articles
    dry_run: bool
    mail_dir: Path | None
    skipped_subscribers: tuple[str, ...] = ()  # "FILE:line N: reason", rows of subscribers_file
    suppressed: int = 0  # unsubscribed or bounced subscribers: never sent to
    missing: tuple[ingest.Rejected, ...] = ()  # source folders that do not exist
    preview_dir: Path | None = None  # a dry run's issue page, feeds and mails
    skipped: tuple[ingest.Rejected, ...] = ()  # feeds with entries that had nothing to read
    polled: polling.PollReport | None = None  # None: no source by URL is configured
    failing: tuple[SourceState, ...] = ()  # failing failing_polls_reported polls in a row

    @property
    def unfinished(self) -> bool:
        """Exit status 1: a source folder is missing, or a recipient has not got the issue."""
        return bool(self.missing) or (self.delivery is not None and self.delivery.unfinished)


@dataclass(frozen=True, slots=True)
class Ingested:
    """What reading and storing a set of source files did."""

    articles: tuple[Article, ...]  # stored (new, updated, unchanged or folded)
    rejected: tuple[ingest.Rejected, ...]  # files or feed entries not stored, and why
    files: int
    saved: store.SaveReport
    missing: tuple[ingest.Rejected, ...] = ()  # named paths or the seeds folder: not there
    # notes, not errors: "N of M entries skipped: …", stored articles cleaned again
    skipped: tuple[ingest.Rejected, ...] = ()
    count: int = 0  # articles stored, of which ``articles`` holds the first (``keep``)


def issue_date_of(settings: Settings, now: datetime, issue_date: date | None = None) -> date:
    """The issue date: the one asked for, else the pinned one, else today in the zone."""
    return issue_date or settings.issue_date or now.astimezone(dates.zone(settings.timezone)).date()


def refresh_summaries(engine: Engine, settings: Settings) -> int:
    """Recompute stored summaries when the summarizer or its settings changed."""
    sentences, chars = settings.summary_sentences, settings.summary_chars

    def summarize(article: Article) -> str:
        return lead_summary(
            article.paragraphs, title=article.title, max_sentences=sentences, max_chars=chars
        )

    return store.refresh_summaries(engine, summary_key(sentences, chars), summarize)


# ---------------------------------------------------------------- stage configs
# Each stage gets its own small config, built here and only here from the settings, so no
# stage reads the settings; what several stages share (the title, base_url, zone) is Site.


def ingest_options(settings: Settings) -> ingest.Options:
    """What ingestion needs from the settings."""
    return ingest.Options(
        default_tz=dates.zone(settings.timezone),
        tag_rules=settings.tag_rules,
        max_bytes=settings.max_file_bytes,
        metadata_name=settings.seeds_metadata,
        summary_sentences=settings.summary_sentences,
        summary_chars=settings.summary_chars,
    )


def fetch_options(settings: Settings) -> fetch.Options:
    """What the fetcher needs from the settings: whose digest asks, and the size cap."""
    return fetch.Options(base_url=settings.base_url, max_bytes=settings.max_file_bytes)


def url_sources(settings: Settings) -> list[Source]:
    """The ``[[sources]]`` by URL, as the fetcher polls them (disabled ones too: it skips them)."""
    return [
        Source(
            url=entry.url,
            name=entry.name,
            tags=frozenset(entry.tags),
            full_text=entry.full_text,
            max_per_issue=entry.max_per_issue,
            enabled=entry.enabled,
        )
        for entry in settings.sources
        if entry.url is not None
    ]


def issue_caps(settings: Settings) -> dict[str, int]:
    """Most articles a source may give one issue, by what its articles' origins start with:
    a URL source's URL, a folder's path and a path separator."""
    caps: dict[str, int] = {}
    for entry in settings.sources:
        if entry.max_per_issue is None:
            continue
        if entry.url is not None:
            caps[entry.url] = entry.max_per_issue
        elif entry.path is not None:
            caps[str(entry.path) + ("" if entry.path.suffix else "/")] = entry.max_per_issue
    return caps


def site(settings: Settings) -> Site:
    """Who the digest is, as the email, the pages and the feeds all say it."""
    return Site(
        title=settings.title,
        base_url=settings.base_url,
        name=settings.digest_name,
        timezone=dates.zone(settings.timezone),
    )


def look(settings: Settings) -> render.Look:
    """What rendering needs from the settings."""
    return render.Look(
        site=site(settings), postal_address=settings.postal_address, subject=settings.subject
    )


def mail_info(settings: Settings) -> message.MailInfo:
    """What building the messages needs from the settings."""
    return message.MailInfo(
        site=site(settings),
        from_address=settings.from_address,
        from_name=settings.from_name,
        unsubscribe_secret=settings.unsubscribe_secret.get_secret_value(),
        unsubscribe_mailto=settings.unsubscribe_mailto,
        max_articles=settings.max_articles,
        headers=tuple(settings.headers.items()),
    )


def feed_info(settings: Settings, id_host: str) -> feeds.FeedInfo:
    """What the feeds say about themselves; ``id_host`` is the host pinned at first publish."""
    return feeds.FeedInfo(
        site=site(settings),
        author_name=settings.from_name,
        author_email=settings.from_address,
        id_host=id_host,
    )


def preview_dir(outbox: Path, issue_date: date) -> Path:
    """Where a dry run of ``issue_date`` writes: the issue page, feeds and mails as they
    would become, beside (never over) what is published."""
    return outbox / PREVIEW / issue_date.isoformat()


def sender_for(
    settings: Settings, issue_date: date, *, dry_run: bool, recipients: int | None = None
) -> deliver.Sender:
    """The outbox writer for a dry run (told how many recipients), else the SMTP relay."""
    if dry_run:
        mail = preview_dir(settings.outbox_dir, issue_date) / "mail"
        return smtp.OutboxWriter(mail, recipients=recipients)
    return smtp.SmtpSender(
        settings.smtp_host,
        settings.smtp_port,
        user=settings.smtp_user,
        password=settings.smtp_password,
        tls=settings.smtp_tls,
        timeout=settings.smtp_timeout,
    )


def run(
    settings: Settings,
    sender: deliver.Sender | None = None,
    *,
    now: datetime,
    issue_date: date | None = None,
    dry_run: bool = False,
    force: bool = False,
    retry_failed: bool = False,
    progress: Callable[[int], None] | None = None,
    sleep: Callable[[float], None] = _time.sleep,
    poll: Literal["due", "stale"] = "due",
    workers: int | None = None,
) -> RunReport:
    """Ingest, select, render and deliver one issue.

    A dry run writes only into outbox/preview/DATE/: nothing a reader or subscriber sees
    changes, and no ledger row or subscriber is written (the store's cache of the sources
    is). A real send first passes the pre-flight (``preflight.check``); it alone publishes.
    With no ``sender``, the one the settings name (``sender_for``) is used. The sources by
    URL are polled first: every due one (``poll="due"``), or only those not polled within
    poll_interval (``"stale"``: the scheduler's run, whose polls keep them fresh). A real
    send goes out through ``workers`` processes (default: the send_workers setting), more
    than one only on PostgreSQL (``workers.deliver``).
    """
    from digest import workers as worker_pool  # it builds on this module

    tz = dates.zone(settings.timezone)
    day = issue_date_of(settings, now, issue_date)
    how_many = settings.send_workers if workers is None else workers
    if not dry_run:
        preflight.check(settings)
    with (
        db.opened(settings.database_url) as engine,
        nullcontext(lambda: True)
        if dry_run
        else locks.send_lock(engine, settings.digest_name) as still_locked,
    ):
        if how_many > 1 and not dry_run:
            worker_pool.check_store(engine)
        statuses = subscribers.counts(engine)
        suppressed = subscribers.suppressed(statuses)
        first_import = (
            not statuses.get(subscribers.ACTIVE)
            and db.meta_value(engine, subscribers.LIST_GIVEN) is None
        )
        _check_audience(first_import, statuses, settings)
        fresh = ingest_sources(engine, settings, now=now, only_new=True, keep=0)
        stale_after = settings.poll_interval * 60.0 if poll == "stale" else None
        polled = poll_sources(engine, settings, now=now, stale_after=stale_after)
        failing = _failing(engine, settings, polled)
        issue = selection.select_issue(
            engine,
            digest=settings.digest_name,
            issue_date=day,
            days=selection.window_days(settings.window),
            tz=tz,
            max_articles=settings.max_articles,
            force=force,
            caps=issue_caps(settings),
        )
        ingested = fresh.saved.inserted + (polled.new if polled else 0)
        rejected = (*fresh.rejected, *(polled.rejected if polled else ()))
        skipped_entries = (*fresh.skipped, *(polled.skipped if polled else ()))
        if not issue.articles:
            return RunReport(
                issue, ingested, rejected, None, dry_run, None, (), suppressed,
                fresh.missing, skipped=skipped_entries, polled=polled, failing=failing,
            )  # fmt: skip
        issue_id = None
        web = preview_dir(settings.outbox_dir, day) if dry_run else settings.outbox_dir
        if dry_run:
            _clear_preview(web)
        else:
            issue_id, issue = selection.claim(engine, issue, now=now)
        shown = selection.recent(engine, settings.digest_name, limit=settings.feed_issues)
        the_look = look(settings)
        id_host = _feed_id_host(engine, settings, keep=not dry_run)
        _publish(
            settings, the_look, web, id_host, issue,
            [issue, *(i for i in shown if i.date != issue.date)],
        )  # fmt: skip
        audience, skipped = _audience(
            engine, settings, first_import and settings.subscribers_file.is_file(), now=now,
            dry_run=dry_run,
        )  # fmt: skip

        def render_variant(chosen: Issue) -> render.Email:
            """The variant's email, and its own browser version (the email links to it)."""
            write_variant_page(web, chosen, the_look)
            return render.render_email(chosen, the_look)

        if issue_id is None:
            recipients = len(audience) if isinstance(audience, list) else subscribers.count(engine)
            report = deliver.preview(
                issue,
                audience,
                render=render_variant,
                variant=selection.variant,
                info=mail_info(settings),
                sender=sender or sender_for(settings, day, dry_run=True, recipients=recipients),
                now=now,
                progress=progress,
            )
        else:
            report = worker_pool.deliver_issue(
                engine, settings, issue, issue_id, workers=how_many, sender=sender, now=now,
                sleep=sleep, progress=progress, retry_failed=retry_failed,
                still_locked=still_locked,
            )  # fmt: skip
    mail_dir = preview_dir(settings.outbox_dir, day) / "mail" if dry_run else None
    return RunReport(
        issue, ingested, rejected, report, dry_run, mail_dir, skipped, suppressed,
        fresh.missing, web if dry_run else None, skipped_entries, polled, failing,
    )  # fmt: skip


def write_variant_page(web: Path, chosen: Issue, the_look: render.Look) -> None:
    """A variant's own browser version, which its email links to (the whole issue's page is
    the issue page)."""
    if chosen.tags:
        page = web / issue_page(chosen.date) / variant_page(chosen.tags)
        write_if_changed(page, render.render_browser_page(chosen, the_look))


def poll_sources(
    engine: Engine, settings: Settings, *, now: datetime, stale_after: float | None = None
) -> polling.PollReport | None:
    """One poll of the sources by URL (None when none is configured): every due one, or
    only those not polled within ``stale_after`` seconds."""
    configured = url_sources(settings)
    if not configured:
        return None
    return polling.poll_sources(
        engine,
        configured,
        fetch_options(settings),
        ingest_options(settings),
        now=now,
        stale_after=stale_after,
    )


def poll_now(settings: Settings, *, now: datetime) -> polling.PollReport | None:
    """`digest fetch`: poll the due sources by URL now and store what came."""
    with db.opened(settings.database_url) as engine:
        polled = poll_sources(engine, settings, now=now)
        if polled is not None and polled.new:
            refresh_summaries(engine, settings)
        return polled


def find_feed(settings: Settings, url: str, *, now: datetime) -> tuple[str, str | None]:
    """`digest sources add`: the feed to poll for ``url`` and its title: ``url`` itself when
    it is a feed, else the site's main feed its page names (``readers.feed_links``)."""
    options = fetch_options(settings)
    (got,) = fetch.poll([Source(url=url)], {}, options, now=now)
    if got.outcome != "new":
        raise IngestError(f"cannot fetch {url}: {got.error}; check the address")
    if got.kind == "feed":
        return got.moved or url, _feed_title(got.data)
    if got.kind != "html":
        raise IngestError(f"{url} is no feed and no web page; give the address of its feed")
    links = readers.feed_links(got.data, got.url or url)
    if not links:
        raise IngestError(
            f'{url} names no feed (no <link rel="alternate"> of RSS, Atom or JSON Feed); '
            "give the feed's address, or write the page as a [[sources]] url to poll it itself"
        )
    tried = [Source(url=link.url) for link in links[:3]]
    for link, feed in zip(links, fetch.poll(tried, {}, options, now=now), strict=False):
        if feed.outcome == "new" and feed.kind == "feed":
            return link.url, _feed_title(feed.data) or link.title or None
    shown = ", ".join(s.url for s in tried)
    raise IngestError(f"{url} names feeds ({shown}) but none could be read as one")


def _feed_title(data: bytes) -> str | None:
    try:
        return readers.read_feed(data)[0]
    except IngestError:
        return None


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """One configured source as `digest sources` shows it."""

    key: str  # its url, or its folder
    name: str
    tags: tuple[str, ...]
    by_url: bool
    enabled: bool
    state: SourceState | None  # None: never polled, or a folder


def source_health(settings: Settings) -> list[SourceHealth]:
    """Each configured source with the state its last polls left."""
    with db.opened(settings.database_url) as engine:
        states = load_states(engine, [s.url for s in settings.sources if s.url is not None])
    return [
        SourceHealth(
            s.key,
            s.name,
            s.tags,
            s.url is not None,
            s.enabled,
            states.get(s.url) if s.url is not None else None,
        )
        for s in settings.sources
    ]


def _failing(
    engine: Engine, settings: Settings, polled: polling.PollReport | None
) -> tuple[SourceState, ...]:
    """The enabled sources failing failing_polls_reported polls in a row, or more, as stored
    (also those this run did not poll again): a blip is not reported."""
    if polled is None:
        return ()
    urls = [s.url for s in url_sources(settings) if s.enabled]
    states = load_states(engine, urls)
    limit = settings.failing_polls_reported
    return tuple(states[u] for u in urls if u in states and states[u].errors_in_a_row >= limit)


def ingest_sources(
    engine: Engine,
    settings: Settings,
    *,
    now: datetime,
    paths: Sequence[Path] = (),
    only_new: bool = False,
    keep: int | None = None,
) -> Ingested:
    """The one ingest flow, of `digest ingest`, `digest send` and the scheduler: find the
    source files (under ``paths``, else in seeds_dir), read, clean and store them, record
    each as read (or as failed, with why), bringing stored summaries up to date first. Scraped
    pages are cleaned against their source's evidence from earlier runs, and what they add
    to it is stored, so a page read alone sees the chrome of its site's earlier pages.

    ``only_new`` reads only files not read before as they are now (a send's daily pass).
    One article the store refuses (a value the database cannot hold) is rejected alone: the
    rest of the batch is stored, and the file is not read again until it changes. Articles
    are stored as they are read, a chunk at a time, and the report keeps the first ``keep``
    of them (None: all), so a batch of any size is held a chunk at a time.
    """
    folders = [] if paths else _folders(settings)
    seeds = [settings.seeds_dir]
    if settings.sources and not paths and not settings.seeds_dir.exists():
        seeds = []  # sources are configured: a seeds folder is no longer needed
    roots = list(paths or [*seeds, *(f.path for f in folders if f.path)])
    marks = store.folder_marks(engine) if only_new else None
    found, missing, odd = _sources(paths, roots, settings.seeds_metadata, settings.seeds_dir, marks)
    files: Sequence[Path] = found.files
    if only_new:
        listed = set(found.folders) - found.passed
        since = now - timedelta(days=WATCH_DAYS)
        files = store.fresh(engine, files, found.inodes, listed, found.passed, watched_since=since)
    sources = _SourcesOf(files, roots)
    # Before the batch is stored: its summaries are made under the current settings, so
    # only what earlier runs stored may need them again (on a new store: nothing).
    refresh_summaries(engine, settings)
    evidence = _StoredEvidence(engine)
    batch = ingest.stream_paths(files, ingest_options(settings), sources=sources, evidence=evidence)
    with no_cyclic_gc():
        saved, refused, kept, count = _save_chunks(engine, batch.articles, folders, keep, now=now)
    if saved.inserted >= db.ANALYZE_AFTER:
        db.analyze(engine, "articles", "article_tags")
    store.add_evidence(engine, batch.evidence, now=now)
    again = _clean_again(engine, settings, roots, evidence, batch.evidence, read=files, now=now)
    rejected = (*batch.rejected, *(_file_of(r, files) for r in refused))
    failed = {r.path: r.reason for r in rejected}
    unmarked = _mark_each(engine, files, now=now, failed=failed)
    rejected = (*odd, *rejected, *unmarked)
    again_next = {str(Path(r.path).parent) for r in unmarked}  # read again next run, as said
    store.mark_folders(engine, {k: v for k, v in found.folders.items() if k not in again_next})
    skipped = (*batch.skipped, *again)
    return Ingested(tuple(kept), rejected, batch.files, saved, missing, skipped, count)


def _save_chunks(
    engine: Engine,
    articles: Iterable[Article],
    folders: Sequence[SourceConfig],
    keep: int | None,
    *,
    now: datetime,
) -> tuple[store.SaveReport, list[store.Refused], list[Article], int]:
    """Store the articles as they are read, ``SAVE_CHUNK`` at a time (``_save_each``, one
    ``store.Written`` for all, so copies fold as in one save): what was saved, the articles
    refused, the first ``keep`` stored (all: None), and how many were stored."""
    written = store.Written()
    totals = [0, 0, 0, 0]
    refused: list[store.Refused] = []
    reported: list[store.Refused] = []  # as store.save names them
    kept: list[Article] = []
    count = 0
    chunks = iter(lambda: list(itertools.islice(articles, SAVE_CHUNK)), [])
    for chunk in chunks:
        if folders:
            chunk = [_of_folder(a, folders) for a in chunk]
        saved, gone = _save_each(engine, chunk, now=now, written=written)
        collect_young()  # the chunk's statements' cycles, not left for the batch's end
        refused.extend(gone)
        reported.extend(saved.refused)
        for n, value in enumerate(
            (saved.inserted, saved.updated, saved.unchanged, saved.duplicates)
        ):
            totals[n] += value
        origins = {r.origin for r in gone}
        stored = [a for a in chunk if a.origin not in origins]
        count += len(stored)
        kept.extend(stored if keep is None else stored[: max(keep - len(kept), 0)])
    inserted, updated, unchanged, duplicates = totals
    saved = store.SaveReport(inserted, updated, unchanged, duplicates, tuple(reported))
    return saved, refused, kept, count


class _SourcesOf(Mapping[Path, str]):
    """Each file's source (``ingest.source_of``), worked out when it is asked for: not a
    dict held for every file of the batch."""

    def __init__(self, files: Sequence[Path], roots: Sequence[Path]) -> None:
        self._files = files
        self._roots = roots

    def __getitem__(self, path: Path) -> str:
        return ingest.source_of(path, self._roots)

    def __iter__(self) -> Iterator[Path]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)


class _StoredEvidence(Mapping[str, Evidence]):
    """Each source's evidence from earlier runs, read from the store when first asked for
    (a source with none is not in it)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._read: dict[str, Evidence | None] = {}

    def __getitem__(self, source: str) -> Evidence:
        if source not in self._read:
            self._read[source] = store.load_evidence(self._engine, [source]).get(source)
        found = self._read[source]
        if found is None:
            raise KeyError(source)
        return found

    def __iter__(self) -> Iterator[str]:
        return iter([source for source, found in self._read.items() if found is not None])

    def __len__(self) -> int:
        return sum(found is not None for found in self._read.values())


def _clean_again(
    engine: Engine,
    settings: Settings,
    roots: Sequence[Path],
    before: Mapping[str, Evidence],
    added: Mapping[str, Evidence],
    *,
    read: Sequence[Path],
    now: datetime,
) -> list[ingest.Rejected]:
    """Clean again the stored pages of a source that print a line this batch has just shown
    to be chrome, so a page read alone on the day it came is, once its site's next pages
    come, what it would have been read with them: the source's evidence as it is now, each
    article put back under its id (``store.revise``). Only articles no issue has carried yet
    and ingested in the last ``RECLEAN_DAYS``, from files still there; a note per source
    whose articles changed (not an error)."""
    newly = {
        source: keys
        for source, more in added.items()
        if (keys := clean.became_chrome(before.get(source, Evidence()), more))
    }
    if not newly:
        return []
    done = {str(path) for path in read}
    stored: dict[Path, list[Article]] = {}
    hit: set[Path] = set()
    # This run's own articles are of files just read: not read back
    for article in store.unsent_since(engine, now - timedelta(days=RECLEAN_DAYS), besides=now):
        name = _origin_file(article.origin)
        file = Path(name)
        chrome = newly.get(ingest.source_of(file, roots))
        if chrome is None or name in done:
            continue
        stored.setdefault(file, []).append(article)
        lines = (article.title, article.subtitle or "", *article.paragraphs)
        if any(segment.key(line) in chrome for line in lines):
            hit.add(file)
    files = sorted(file for file in hit if file.is_file())
    if not files:
        return []
    sources = {file: ingest.source_of(file, roots) for file in files}
    evidence = {s: before.get(s, Evidence()).plus(added[s]) for s in set(sources.values())}
    again = ingest.read_paths(files, ingest_options(settings), sources=sources, evidence=evidence)
    by_origin = {a.origin: a for file in files for a in stored[file]}
    by_id = {a.id: a for a in by_origin.values()}
    changes: dict[str, Article | None] = {}
    fresh: list[Article] = []
    for article in again.articles:
        old = by_origin.pop(article.origin, None)
        if old is None:
            fresh.append(article)
        elif replace(article, id=old.id) != old:
            changes[old.id] = article
    cleaned = {_origin_file(a.origin) for a in again.articles}
    changes.update(
        {old.id: None for old in by_origin.values() if _origin_file(old.origin) in cleaned}
    )
    store.revise(engine, changes, now=now)
    if fresh:
        store.save(engine, fresh, now=now)
    touched: dict[str, int] = {}
    for article in [*fresh, *(by_id[id_] for id_ in changes)]:
        source = sources[Path(_origin_file(article.origin))]
        touched[source] = touched.get(source, 0) + 1
    why = "cleaned again: a newer page of the site shows lines they print are its chrome"
    return [ingest.Rejected(s, f"{counted(n, 'stored article')} {why}") for s, n in touched.items()]


def _origin_file(origin: str) -> str:
    """The file an article came from: its origin, less the "#N" of a page's N-th article."""
    base, _, tail = origin.rpartition("#")
    return base if base and tail.isdigit() else origin


def status(
    settings: Settings, *, now: datetime, issue_date: date | None = None
) -> tuple[date, deliver.LedgerStatus | None]:
    """The issue date, and where its delivery stands: None when that issue was never sent."""
    day = issue_date_of(settings, now, issue_date)
    with db.opened(settings.database_url) as engine:
        issue_id = selection.issue_id_of(engine, settings.digest_name, day)
        if issue_id is None:
            return day, None
        issue = selection.select_issue(
            engine,
            digest=settings.digest_name,
            issue_date=day,
            days=selection.window_days(settings.window),
            tz=dates.zone(settings.timezone),
            max_articles=settings.max_articles,
        )  # the claimed issue, as it was sent
        found = deliver.ledger_status(
            engine,
            issue,
            issue_id,
            subscribers.stream(engine),
            variant=selection.variant,
            max_articles=settings.max_articles,
            suppressed=subscribers.suppressed(subscribers.counts(engine)),
        )
    return day, found


def _mark_each(
    engine: Engine, files: Sequence[Path], *, now: datetime, failed: dict[str, str]
) -> list[ingest.Rejected]:
    """``store.mark_ingested``; when the store refuses the batch (a path longer than its
    column), file by file, so one such file costs only its own record."""
    try:
        store.mark_ingested(engine, files, now=now, failed=failed)
        return []
    except StoreError:
        pass  # a store that is down fails the run's next step with its own error
    refused: list[ingest.Rejected] = []
    for path in files:
        try:
            store.mark_ingested(engine, [path], now=now, failed=failed)
        except StoreError as exc:
            why = f"cannot record that it was read ({exc}), so every run reads it again"
            refused.append(ingest.Rejected(str(path), why))
    return refused


def _folders(settings: Settings) -> list[SourceConfig]:
    """The enabled ``[[sources]]`` by path, read beside seeds_dir."""
    return [s for s in settings.sources if s.path is not None and s.enabled]


def _of_folder(article: Article, folders: Sequence[SourceConfig]) -> Article:
    """An article read from a ``[[sources]]`` folder, with that source's tags and name."""
    origin = Path(_origin_file(article.origin)).absolute()
    for folder in folders:
        if folder.path is not None and origin.is_relative_to(folder.path.absolute()):
            return ingest.with_source(article, name=folder.name, tags=folder.tags)
    return article


def _sources(
    paths: Sequence[Path],
    roots: Sequence[Path],
    metadata_name: str,
    seeds_dir: Path,
    marks: Mapping[str, int] | None,
) -> tuple[ingest.Scan, tuple[ingest.Rejected, ...], tuple[ingest.Rejected, ...]]:
    """The source files under ``roots`` (the named ``paths``, else seeds_dir and the folders
    of ``[[sources]]``), not listing the folders unchanged since ``marks``; the roots that
    are missing, or a seeds_dir that is no folder (the command exits 1); and what in a
    folder is no file to read (a FIFO, a dangling symlink)."""
    if not paths and seeds_dir.exists() and not seeds_dir.is_dir():
        why = "not a folder; set seeds_dir to the folder of your source files"
        return ingest.Scan(), (ingest.Rejected(str(seeds_dir), why),), ()
    roots = list(dict.fromkeys(roots))
    named = {str(path) for path in roots}
    found = ingest.scan(roots, metadata_name=metadata_name, unchanged=marks)
    missing = tuple(r for r in found.rejected if r.path in named)
    return found, missing, tuple(r for r in found.rejected if r.path not in named)


def _save_each(
    engine: Engine, articles: Sequence[Article], *, now: datetime, written: store.Written
) -> tuple[store.SaveReport, list[store.Refused]]:
    """``store.save`` of the batch, which refuses an article the database cannot hold alone;
    when the store fails the whole batch, article by article, so what can be stored is (a
    store that is down fails the run's next step with its own error)."""
    try:
        saved = store.save(engine, articles, now=now, written=written)
        return saved, list(saved.refused)
    except StoreError:
        pass
    totals = [0, 0, 0, 0]
    refused: list[store.Refused] = []
    for article in articles:
        try:
            one = store.save(engine, [article], now=now, written=written)
        except StoreError as exc:
            refused.append(store.Refused(article.origin, str(exc)))
            continue
        refused.extend(one.refused)
        for n, value in enumerate((one.inserted, one.updated, one.unchanged, one.duplicates)):
            totals[n] += value
    inserted, updated, unchanged, duplicates = totals
    return store.SaveReport(inserted, updated, unchanged, duplicates), refused


def _file_of(refused: store.Refused, files: Sequence[Path]) -> ingest.Rejected:
    """A refused article as its file's rejection (an origin is the file, and ``#N`` for its
    N-th article), so the file is recorded as failed and read again once it changes."""
    names = {str(path) for path in files}
    path, number = refused.origin, ""
    base, _, tail = path.rpartition("#")
    if path not in names and tail.isdigit() and base in names:
        path, number = base, f"article {tail}: "
    return ingest.Rejected(path, f"{number}cannot be stored: {refused.reason}")


def _clear_preview(folder: Path) -> None:
    """An earlier dry run's preview of this date goes: the new one is all that stays."""
    try:
        shutil.rmtree(folder, ignore_errors=False)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ConfigError(
            f"cannot clear {folder}: {exc.strerror or exc}; check outbox_dir"
        ) from exc


def _feed_id_host(engine: Engine, settings: Settings, *, keep: bool) -> str:
    """The host in the feeds' ``tag:`` ids: base_url's at the first real publish, kept for
    good, so moving the site to a new domain does not show every story again as new."""
    host = urlsplit(settings.base_url).hostname or "localhost"
    key = _FEED_ID_HOST + settings.digest_name
    if keep:
        return db.keep_meta_value(engine, key, host)
    return db.meta_value(engine, key) or host


def _check_audience(first_import: bool, statuses: dict[str, int], settings: Settings) -> None:
    """Stop before anything is ingested, claimed or written when no one can get the issue."""
    if not statuses and not (first_import and settings.subscribers_file.is_file()):
        where = (
            f"subscribers_file {settings.subscribers_file} does not exist"
            if first_import
            else f"subscribers_file {settings.subscribers_file} was imported once already"
        )
        raise ConfigError(
            f"no subscribers: none is stored and {where}; add them with `digest subscribers "
            "add` or `digest subscribers import FILE.csv`, or fix subscribers_file"
        )


def _audience(
    engine: Engine, settings: Settings, first_import: bool, *, now: datetime, dry_run: bool
) -> tuple[list[Subscriber] | Iterator[Subscriber], tuple[str, ...]]:
    """The active subscribers, ordered by tags. On the first run of an empty store, the
    subscribers_file is imported first (a dry run reads it without storing): only until a
    list was given (this import, `subscribers add` or `import`), and never over who left.
    Also the rows of it that were skipped."""
    path = settings.subscribers_file
    if not first_import:
        return subscribers.stream(engine), ()
    if dry_run:
        found, errors = subscribers.read_csv(path)
        gone = {s.email for s in subscribers.listing(engine) if s.status != subscribers.ACTIVE}
        kept = [s for s in found if s.email not in gone]
        return subscribers.in_delivery_order(kept), tuple(f"{path}:{e}" for e in errors)
    imported = subscribers.import_csv(engine, path, now=now)  # records that a list was given
    return subscribers.stream(engine), tuple(f"{path}:{error}" for error in imported.errors)


def _publish(
    settings: Settings,
    the_look: render.Look,
    outbox: Path,
    id_host: str,
    issue: Issue,
    shown: Iterable[Issue],
) -> None:
    """The web side of an outbox (the public one, or a dry run's preview): ``issue``'s page,
    and the article pages, archive and feeds of the issues ``shown``."""
    issues = sorted(shown, key=lambda i: i.date, reverse=True)
    page = outbox / issue_page(issue.date) / "index.html"
    write_if_changed(page, render.render_browser_page(issue, the_look))
    articles = {a.id: a for issue in issues for a in issue.articles}
    pages.write_article_pages(outbox, articles.values(), the_look.site)
    pages.write_archive(outbox, issues, the_look.site)
    feeds.write_feeds(outbox, issues, feed_info(settings, id_host))
