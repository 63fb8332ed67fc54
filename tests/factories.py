"""Builders of the values the tests pass around: articles, issues, the email's look, the mail
settings of a send. Each takes overrides for any field (STYLE.md: builders over fixtures);
test modules pin their own defaults with ``functools.partial``.

A plain module, not a test module: subprocesses of the tests import it too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from digest import deliver, render, selection, store
from digest.message import MailInfo
from digest.models import Article, Issue, Site

NEW_YORK = ZoneInfo("America/New_York")
# What must never reach the store: controls but tab, LF and CR, lone surrogates, U+FFFE/F.
UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def make_article(**overrides: Any) -> Article:
    """A plausible stored article; override any field."""
    fields: dict[str, Any] = {
        "id": "a1b2c3",
        "title": "Bus lanes open on Main Street",
        "subtitle": "Riders save ten minutes",
        "published": datetime(2018, 3, 5, 19, 30, tzinfo=UTC),
        "date_source": "text",
        "tags": frozenset({"transit", "city"}),
        "paragraphs": ("The lanes open Monday.", "Buses run every six minutes."),
        "author": "Jane Roe",
        "source": "NewsDaily",
        "url": "https://newsdaily.example.com/bus-lanes",
        "summary": "The lanes open Monday.",
    }
    return Article(**(fields | overrides))


def stored_article(**overrides: Any) -> Article:
    """An article as the store keys it: its id and body keys follow from title and paragraphs."""
    paragraphs = overrides.pop("paragraphs", ("First paragraph of the story.", "Second one."))
    title = str(overrides.pop("title", "A title"))
    keys = store.body_keys(paragraphs)
    base = make_article(
        id=store.article_id(title, keys[0]),
        title=title,
        subtitle=None,
        published=datetime(2019, 3, 3, 10, 15, tzinfo=timezone(timedelta(hours=-5))),
        tags=frozenset({"harbour"}),
        paragraphs=paragraphs,
        author=None,
        source=None,
        url=None,
        summary=paragraphs[0],
        keys=keys,
    )
    return replace(base, **overrides)


def make_issue(
    day: date,
    *articles: Article,
    tz: tzinfo = UTC,
    start: datetime | None = None,
    end: datetime | None = None,
    tags: frozenset[str] = frozenset(),
) -> Issue:
    """The daily issue of ``day``: by default the whole local day before it in ``tz``."""
    if start is None:
        start = datetime.combine(day - timedelta(days=1), datetime.min.time(), tzinfo=tz)
    return Issue(
        digest="daily",
        date=day,
        start=start,
        end=end or start + timedelta(days=1),
        articles=articles,
        tags=tags,
    )


# ---------------------------------------------------------------- the email of 2026-11-27

EMAIL_DAY = date(2026, 11, 27)
SUMMARY = (
    "The council voted on Tuesday to extend the night bus network to the eastern "
    "districts, after a year of petitions from shift workers who said the last train left "
    "them stranded. The first routes start in March and run every twenty minutes until "
    "dawn, the transit authority said, with more to follow once new drivers are trained."
)
# What personalize() fills in for one subscriber.
VALUES = {"unsubscribe_url": "https://d.example.org/unsubscribe?token=abc.def", "email": "a@b.org"}

email_article = partial(
    make_article,
    id="a1",
    title="Night buses reach the eastern districts",
    subtitle=None,
    author=None,
    published=datetime(2026, 11, 26, 15, 30, tzinfo=UTC),
    tags=frozenset({"transit", "city-hall"}),
    paragraphs=("First paragraph.", "Second paragraph."),
    source="The Wire",
    url="https://news.example.org/2026/11/26/night-buses",
    summary=SUMMARY,
)


def email_issue(*articles: Article) -> Issue:
    """The New York issue of 2026-11-27, of ``articles`` or one night-bus story."""
    return make_issue(EMAIL_DAY, *(articles or (email_article(),)), tz=NEW_YORK)


def make_look(**overrides: Any) -> render.Look:
    """A Look; ``title``, ``base_url`` and ``timezone`` go to its Site."""
    moved = {k: overrides.pop(k) for k in ("title", "base_url", "timezone") if k in overrides}
    fields: dict[str, Any] = {
        "site": replace(
            Site("The Daily Digest", "https://d.example.org", "daily", NEW_YORK), **moved
        ),
        "postal_address": "The Daily Digest · 1 Example Street · Springfield, ST 00000",
        "subject": "{title} for {date:%A, %B %-d, %Y}: {stories}",
    }
    return render.Look(**(fields | overrides))


def many_articles(count: int = 25) -> tuple[Article, ...]:
    """``count`` stories with long titles and URLs, as a full issue has them."""
    return tuple(
        email_article(
            id=f"a{i}",
            title=f"Story {i}: night buses reach the eastern districts of the city",
            url=f"https://news.example.org/2026/11/26/story-{i}-night-buses-eastern-districts",
            summary=SUMMARY[:320],
        )
        for i in range(count)
    )


# ---------------------------------------------------------------- a send of 2019-01-01

SEND_NOW = datetime(2019, 1, 1, 12, 30, tzinfo=UTC)
MAIL_SITE = Site("The Daily Digest", "https://news.example.org/daily", "daily", UTC)
MAIL_LOOK = render.Look(
    site=MAIL_SITE,
    postal_address="The Daily Digest · 1 Example Street · Springfield",
    subject="{title} for {date:%B %d}: {count} stories",
)
MAIL_INFO = MailInfo(
    site=MAIL_SITE,
    from_address="digest@example.org",
    from_name="The Daily Digest",
    unsubscribe_secret="test-secret",
    unsubscribe_mailto="unsubscribe@example.org",
    max_articles=25,
)


def wire_article(n: int, tags: set[str], **overrides: Any) -> Article:
    """Story ``n`` of the wire, ``n`` hours before the send, with non-ASCII and markup."""
    fields: dict[str, Any] = {
        "id": f"{n:016x}",
        "title": f"Story {n}: Putin and Trump — “talks” in Zürich",
        "subtitle": None,
        "published": SEND_NOW - timedelta(hours=n + 1),
        "tags": frozenset(tags),
        "paragraphs": (f"Body of story {n}.",),
        "author": None,
        "source": "Wire",
        "url": f"https://example.com/story-{n}",
        "summary": f"Lead sentence of story {n}, with ünïcödé and a <b>tag</b>.",
    }
    return make_article(**(fields | overrides))


def wire_issue(count: int = 6) -> Issue:
    """The issue of 2019-01-01: ``count`` wire stories tagged russia, usa+summit or both."""
    cycle = [{"russia"}, {"usa", "summit"}, {"russia", "usa"}]
    articles = tuple(wire_article(n, cycle[n % 3]) for n in range(count))
    return make_issue(SEND_NOW.date(), *articles, start=SEND_NOW - timedelta(days=1), end=SEND_NOW)


def render_wire(issue: Issue) -> render.Email:
    """The real renderer with the send's look."""
    return render.render_email(issue, MAIL_LOOK)


def deliver_as_one(
    engine: Engine,
    issue: Issue,
    issue_id: int,
    *,
    render: Callable[[Issue], render.Email],
    sender: deliver.Sender,
    info: MailInfo = MAIL_INFO,
    sleep: Callable[[float], None] = lambda _s: None,
    retries: int = 3,
    retry_failed: bool = False,
) -> deliver.DeliveryReport:
    """A real send of ``issue`` as one sender, as `digest send` makes it (workers.deliver_issue,
    less the settings): enrol its audience, claim and send, and report."""
    enrolled = deliver.enroll(
        engine, issue, issue_id, variant=selection.variant, max_articles=info.max_articles,
        now=SEND_NOW, retry_failed=retry_failed,
    )  # fmt: skip
    done = deliver.work(
        engine, issue, issue_id, render=render, variant=selection.variant, info=info,
        sender=sender, now=SEND_NOW, sleep=sleep, retries=retries,
    )  # fmt: skip
    return deliver.report_of(issue, enrolled, [done], unsent=deliver.unsent(engine, issue_id))
