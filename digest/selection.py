"""Which articles make an issue: a window of whole local days, tags, a cap, no repeats.

An issue of a digest is claimed once per date (``claim``): its articles are frozen then, so a
re-run after a crash sends the same issue, and an article is shown in at most one issue.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from sqlalchemy import Engine, and_, exists, insert, or_, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from digest import db, store
from digest.errors import ConfigError, StoreError
from digest.models import Article, Issue
from digest.schema import article_tags, articles, issue_articles, issues

_WINDOW = re.compile(r"^([1-9][0-9]{0,3})d$")
_PAGE = 200  # candidate rows an issue's selection reads at a time


def window(
    since: date | None, until: date | None, tz: tzinfo
) -> tuple[datetime | None, datetime | None]:
    """[start, end) instants covering the local days ``since`` … ``until``, both inclusive.

    Each bound is local midnight in ``tz``, so a day is 23 or 25 hours long across a DST change.
    """
    start = _midnight(since, tz) if since else None
    end = _midnight(until + timedelta(days=1), tz) if until else None
    return start, end


def window_days(text: str) -> int:
    """``"7d"`` → 7."""
    match = _WINDOW.match(text.strip())
    if not match:
        raise ConfigError(f"window {text!r} is not a number of days like '1d' or '7d'")
    return int(match.group(1))


def issue_days(issue_date: date, days: int) -> tuple[date, date]:
    """The local days an issue covers: ``days`` whole days ending the day before its date."""
    return issue_date - timedelta(days=days), issue_date - timedelta(days=1)


def find(
    engine: Engine,
    *,
    since: date | None,
    until: date | None,
    tz: tzinfo,
    tags: Sequence[str] = (),
) -> list[Article]:
    """Stored articles of the local days ``since`` … ``until`` with any of ``tags``, newest
    first (``digest articles`` and issue selection both read through here)."""
    start, end = window(since, until, tz)
    return store.query(engine, start=start, end=end, tags=tags)


def select_issue(
    engine: Engine,
    *,
    digest: str,
    issue_date: date,
    days: int,
    tz: tzinfo,
    tags: Sequence[str] = (),
    max_articles: int = 25,
    force: bool = False,
    caps: Mapping[str, int] | None = None,
) -> Issue:
    """The issue of ``issue_date``: the one already claimed, else a fresh selection.

    A fresh selection skips articles shown in another issue of this digest unless ``force``,
    and takes at most ``caps[prefix]`` of the articles whose origin starts with ``prefix``
    (a source's max_per_issue: one busy source cannot fill the issue), newest first.
    """
    claimed = _load(engine, digest, issue_date)
    if claimed is not None:
        return claimed
    since, _last = issue_days(issue_date, days)
    # The window ends where the issue's own day begins (the day after its last).
    start, end = _midnight(since, tz), _midnight(issue_date, tz)
    chosen = _newest(engine, digest, start, end, tags, max_articles, force, caps or {})
    found = store.query(engine, ids=chosen) if chosen else []
    return Issue(digest, issue_date, start, end, tuple(found))


def _newest(
    engine: Engine,
    digest: str,
    start: datetime,
    end: datetime,
    tags: Sequence[str],
    wanted: int,
    force: bool,
    caps: Mapping[str, int],
) -> list[str]:
    """The ids of the newest ``wanted`` articles published in [start, end) with any of
    ``tags``, shown in no other issue of ``digest`` unless ``force``, and no more of a
    source than its cap (the longest prefix of the origin is the source: a folder inside
    another's). Read newest first a page at a time, ids and origins only, so the cost is
    that of the issue, not of the window's history; each test of "shown before" is one
    probe of ix_issue_articles_article."""
    stmt = select(articles.c.id, articles.c.origin, articles.c.published_utc).where(
        articles.c.published_utc >= db.utc_naive(start),
        articles.c.published_utc < db.utc_naive(end),
    )
    if tags:
        tagged = select(article_tags.c.article_id).where(article_tags.c.tag.in_(list(tags)))
        stmt = stmt.where(articles.c.id.in_(tagged))
    if not force:
        ours = select(issues.c.id).where(issues.c.digest == digest)
        stmt = stmt.where(
            ~exists().where(
                issue_articles.c.article_id == articles.c.id, issue_articles.c.issue_id.in_(ours)
            )
        )
    prefixes = sorted(caps, key=len, reverse=True)
    taken: dict[str, int] = {}
    kept: list[str] = []
    last: tuple[datetime, str] | None = None
    try:
        with engine.connect() as conn:
            while len(kept) < wanted:
                page = stmt
                if last is not None:  # keyset: after the last row, newest first
                    page = page.where(
                        or_(
                            articles.c.published_utc < last[0],
                            and_(articles.c.published_utc == last[0], articles.c.id > last[1]),
                        )
                    )
                order = (articles.c.published_utc.desc(), articles.c.id)
                rows = conn.execute(page.order_by(*order).limit(_PAGE)).all()
                for id_, origin, _published in rows:
                    source = next((p for p in prefixes if origin.startswith(p)), None)
                    if source is not None:
                        if taken.get(source, 0) >= caps[source]:
                            continue
                        taken[source] = taken.get(source, 0) + 1
                    kept.append(id_)
                    if len(kept) == wanted:
                        break
                if len(rows) < _PAGE:
                    break
                last = (rows[-1].published_utc, rows[-1].id)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the database: {db.reason(exc)}") from exc
    return kept


def claim(engine: Engine, issue: Issue, *, now: datetime) -> tuple[int, Issue]:
    """Record the issue and its articles, once: the id of its row, and the issue as recorded.

    When another run claimed this date first, its issue wins and is returned.
    """
    try:
        with engine.begin() as conn:
            issue_id = conn.execute(
                insert(issues)
                .values(
                    digest=issue.digest,
                    issue_date=issue.date,
                    window_start=db.utc_naive(issue.start),
                    window_end=db.utc_naive(issue.end),
                    created_at=db.utc_naive(now),
                )
                .returning(issues.c.id)
            ).scalar_one()
            if issue.articles:
                conn.execute(
                    insert(issue_articles),
                    [
                        {"issue_id": issue_id, "article_id": a.id, "position": n}
                        for n, a in enumerate(issue.articles)
                    ],
                )
        return issue_id, issue
    except IntegrityError:
        pass  # another run claimed this date first: its issue wins
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot record the issue: {db.reason(exc)}") from exc
    issue_id = issue_id_of(engine, issue.digest, issue.date)
    stored = _load(engine, issue.digest, issue.date)
    if issue_id is None or stored is None:
        raise StoreError(f"issue {issue.date} of {issue.digest} vanished while being claimed")
    return issue_id, stored


def issue_id_of(engine: Engine, digest: str, issue_date: date) -> int | None:
    """The row id of a claimed issue, or None."""
    stmt = select(issues.c.id).where(issues.c.digest == digest, issues.c.issue_date == issue_date)
    try:
        with engine.connect() as conn:
            return conn.execute(stmt).scalar_one_or_none()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the database: {db.reason(exc)}") from exc


def recent(engine: Engine, digest: str, *, limit: int, before: date | None = None) -> list[Issue]:
    """The last ``limit`` claimed issues of ``digest`` (up to ``before``, inclusive), newest
    first: what the feeds and the archive show."""
    stmt = select(issues.c.issue_date).where(issues.c.digest == digest)
    if before is not None:
        stmt = stmt.where(issues.c.issue_date <= before)
    stmt = stmt.order_by(issues.c.issue_date.desc()).limit(limit)
    try:
        with engine.connect() as conn:
            days = conn.execute(stmt).scalars().all()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the database: {db.reason(exc)}") from exc
    return [i for i in (_load(engine, digest, d) for d in days) if i is not None]


def claimed(engine: Engine, digest: str, issue_date: date) -> tuple[int, Issue] | None:
    """The issue claimed for (``digest``, ``issue_date``) with its id, its articles as they
    were sent; None before a send claimed it."""
    issue_id = issue_id_of(engine, digest, issue_date)
    found = None if issue_id is None else _load(engine, digest, issue_date)
    return None if issue_id is None or found is None else (issue_id, found)


def variant(issue: Issue, tags: frozenset[str], max_articles: int) -> Issue:
    """The issue as subscribers following ``tags`` get it (any-of; none = every article)."""
    chosen = [a for a in issue.articles if not tags or a.tags & tags]
    return replace(issue, articles=tuple(chosen[:max_articles]), tags=tags)


def _load(engine: Engine, digest: str, issue_date: date) -> Issue | None:
    try:
        with engine.connect() as conn:
            row = conn.execute(
                select(issues).where(issues.c.digest == digest, issues.c.issue_date == issue_date)
            ).first()
            if row is None:
                return None
            order = dict(
                conn.execute(
                    select(issue_articles.c.article_id, issue_articles.c.position).where(
                        issue_articles.c.issue_id == row.id
                    )
                ).all()
            )
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the database: {db.reason(exc)}") from exc
    found = store.query(engine, ids=list(order)) if order else []
    found.sort(key=lambda a: order[a.id])
    start = row.window_start.replace(tzinfo=UTC)
    end = row.window_end.replace(tzinfo=UTC)
    return Issue(digest, issue_date, start, end, tuple(found))


def _midnight(day: date, tz: tzinfo) -> datetime:
    """The first instant of a local day."""
    return datetime.combine(day, time(), tzinfo=tz)
