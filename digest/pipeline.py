"""One run of a digest: ingest new sources, select the issue, render it, write the outbox, deliver.

``digest send`` and the scheduler both call ``run``; the clock and the sender are passed in.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import Engine

from digest import (
    dates,
    deliver,
    feeds,
    ingest,
    locks,
    message,
    pages,
    render,
    selection,
    smtp,
    store,
    subscribers,
)
from digest.errors import ConfigError
from digest.files import write_if_changed
from digest.links import issue_page, variant_page
from digest.models import Article, Issue, Subscriber
from digest.settings import PLACEHOLDER_SECRET, Settings
from digest.summarize import lead_summary, summary_key


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


def issue_date_of(settings: Settings, now: datetime, issue_date: date | None = None) -> date:
    """The issue date: the one asked for, else the pinned one, else today in the zone."""
    return issue_date or settings.issue_date or now.astimezone(dates.zone(settings.timezone)).date()


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


def refresh_summaries(engine: Engine, settings: Settings) -> int:
    """Recompute stored summaries when the summarizer or its settings changed."""
    sentences, chars = settings.summary_sentences, settings.summary_chars

    def summarize(article: Article) -> str:
        return lead_summary(
            article.paragraphs, title=article.title, max_sentences=sentences, max_chars=chars
        )

    return store.refresh_summaries(engine, summary_key(sentences, chars), summarize)


def look(settings: Settings) -> render.Look:
    """What rendering needs from the settings."""
    return render.Look(
        title=settings.title,
        base_url=settings.base_url,
        postal_address=settings.postal_address,
        subject=settings.subject,
        timezone=dates.zone(settings.timezone),
    )


def mail_info(settings: Settings) -> message.MailInfo:
    """What building the messages needs from the settings."""
    return message.MailInfo(
        from_address=settings.from_address,
        from_name=settings.from_name,
        title=settings.title,
        digest_name=settings.digest_name,
        base_url=settings.base_url,
        unsubscribe_secret=settings.unsubscribe_secret.get_secret_value(),
        unsubscribe_mailto=settings.unsubscribe_mailto,
        max_articles=settings.max_articles,
    )


def sender_for(
    settings: Settings, issue_date: date, *, dry_run: bool, recipients: int | None = None
) -> deliver.Sender:
    """The outbox writer for a dry run (told how many recipients), else the SMTP relay."""
    if dry_run:
        return smtp.OutboxWriter(settings.outbox_dir, issue_date, recipients=recipients)
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
    progress: Callable[[int], None] | None = None,
    sleep: Callable[[float], None] = _time.sleep,
) -> RunReport:
    """Ingest, select, render and deliver one issue. A dry run changes nothing outside outbox/.

    With no ``sender``, the one the settings name (``sender_for``) is used.
    """
    tz = dates.zone(settings.timezone)
    day = issue_date_of(settings, now, issue_date)
    if not dry_run and settings.unsubscribe_secret.get_secret_value() == PLACEHOLDER_SECRET:
        raise ConfigError(
            "unsubscribe_secret is still the shipped placeholder, so anyone could forge "
            "unsubscribe links; set your own in the config or DIGEST_UNSUBSCRIBE_SECRET "
            "before a real send"
        )
    with (
        store.opened(settings.database_url) as engine,
        nullcontext() if dry_run else locks.send_lock(engine, settings.digest_name),
    ):
        stored = subscribers.count(engine)
        _check_audience(stored, settings)
        batch, added = _ingest_new(engine, settings, now=now)
        refresh_summaries(engine, settings)
        issue = selection.select_issue(
            engine,
            digest=settings.digest_name,
            issue_date=day,
            days=selection.window_days(settings.window),
            tz=tz,
            max_articles=settings.max_articles,
            force=force,
        )
        if not issue.articles:
            return RunReport(issue, added, batch.rejected, None, dry_run, None)
        issue_id = None
        if not dry_run:
            issue_id, issue = selection.claim(engine, issue, now=now)
        shown = selection.recent(engine, settings.digest_name, limit=settings.feed_issues)
        the_look = look(settings)
        _publish(settings, the_look, issue, [issue, *(i for i in shown if i.date != issue.date)])
        audience, skipped = _audience(engine, settings, stored, now=now, dry_run=dry_run)
        if sender is None:
            recipients = len(audience) if isinstance(audience, list) else subscribers.count(engine)
            sender = sender_for(settings, day, dry_run=dry_run, recipients=recipients)

        def render_variant(chosen: Issue) -> render.Email:
            """The variant's email, and its own browser version (the email links to it)."""
            if chosen.tags:
                page = settings.outbox_dir / issue_page(day) / variant_page(chosen.tags)
                write_if_changed(page, render.render_browser_page(chosen, the_look))
            return render.render_email(chosen, the_look)

        report = deliver.deliver(
            engine,
            issue,
            issue_id,
            audience,
            render=render_variant,
            variant=selection.variant,
            info=mail_info(settings),
            sender=sender,
            now=now,
            sleep=sleep,
            retries=settings.smtp_retries,
            progress=progress,
        )
    mail_dir = settings.outbox_dir / "mail" / day.isoformat() if dry_run else None
    return RunReport(issue, added, batch.rejected, report, dry_run, mail_dir, skipped)


def _ingest_new(engine: Engine, settings: Settings, *, now: datetime) -> tuple[ingest.Batch, int]:
    """Read the source files that are new or changed since the last run, and store them.

    A dry run does too: the store is a cache of the sources, and the dry run must show
    exactly what a send would select from them.
    """
    files, missing = ingest.discover([settings.seeds_dir])
    fresh = store.new_files(engine, files)
    if not fresh:
        return ingest.Batch((), tuple(missing), 0), 0
    batch = ingest.read_paths(fresh, ingest_options(settings))
    saved = store.save(engine, batch.articles, now=now)
    store.mark_ingested(engine, fresh, now=now)
    return ingest.Batch(batch.articles, (*missing, *batch.rejected), batch.files), saved.inserted


def _check_audience(stored: int, settings: Settings) -> None:
    """Stop before anything is ingested, claimed or written when no one can get the issue."""
    if stored == 0 and not settings.subscribers_file.is_file():
        raise ConfigError(
            f"no subscribers: none is stored and subscribers_file {settings.subscribers_file} "
            "does not exist; add them with `digest subscribers add` or "
            "`digest subscribers import FILE.csv`, or fix subscribers_file"
        )


def _audience(
    engine: Engine, settings: Settings, stored: int, *, now: datetime, dry_run: bool
) -> tuple[list[Subscriber] | Iterator[Subscriber], tuple[str, ...]]:
    """The stored subscribers, ordered by tags; when there are none, the shipped list
    (imported, unless this is a dry run). Also the rows of that list that were skipped."""
    skipped: tuple[str, ...] = ()
    path = settings.subscribers_file
    if stored == 0 and path.is_file():
        if dry_run:
            found, errors = subscribers.read_csv(path)
            ordered = subscribers.in_delivery_order(found)
            return ordered, tuple(f"{path}:{error}" for error in errors)
        imported = subscribers.import_csv(engine, path, now=now)
        skipped = tuple(f"{path}:{error}" for error in imported.errors)
    return subscribers.stream(engine), skipped


def _publish(
    settings: Settings, the_look: render.Look, issue: Issue, shown: Iterable[Issue]
) -> None:
    """The web side of the outbox: ``issue``'s page, and the article pages, archive and feeds
    of the issues ``shown``."""
    tz = dates.zone(settings.timezone)
    issues = sorted(shown, key=lambda i: i.date, reverse=True)
    outbox = settings.outbox_dir
    page = outbox / issue_page(issue.date) / "index.html"
    write_if_changed(page, render.render_browser_page(issue, the_look))
    articles = {a.id: a for issue in issues for a in issue.articles}
    pages.write_article_pages(
        outbox, articles.values(), title=settings.title, base_url=settings.base_url, tz=tz
    )
    pages.write_archive(outbox, issues, title=settings.title, base_url=settings.base_url, tz=tz)
    feeds.write_feeds(
        outbox,
        issues,
        feeds.FeedInfo(
            title=settings.title,
            base_url=settings.base_url,
            digest=settings.digest_name,
            author_name=settings.from_name,
            author_email=settings.from_address,
        ),
    )
