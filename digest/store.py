"""The article store: stories saved, folded with their copies, queried by window and tag.

Also which source files were read (``ingested_files``) and the summaries' cache key. The
database plumbing under it (engines, errors, instants) is ``digest.db``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import Connection, Engine, RowMapping, delete, insert, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from digest.db import reason, utc_naive
from digest.errors import StoreError
from digest.models import DATE_SOURCE_RANK, Article
from digest.schema import article_tags, articles, ingested_files, store_meta

_SUMMARY_KEY = "summary_key"
_CHUNK = 400
_KEY_WORDS = 40
_KEY_SPAN = 1200  # characters read from each end of a body: ample for 40 words
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True, slots=True)
class SaveReport:
    """What one save did: new rows, rows changed, and copies folded into a stored story."""

    inserted: int
    updated: int
    unchanged: int
    duplicates: int


def body_keys(paragraphs: Sequence[str]) -> tuple[str, str]:
    """Fingerprints of a body's first and last words: the same story under any chrome."""
    text = " ".join(paragraphs).casefold()
    head = _WORD.findall(text[:_KEY_SPAN])
    tail = _WORD.findall(text[-_KEY_SPAN:])
    if len(text) > _KEY_SPAN:
        # The spans may cut a word in two: drop the pieces unless the words run short.
        head, tail = head[:-1] or head, tail[1:] or tail
        if len(head) < _KEY_WORDS or len(tail) < _KEY_WORDS:
            head = tail = _WORD.findall(text)
    return _hash(" ".join(head[:_KEY_WORDS])), _hash(" ".join(tail[-_KEY_WORDS:]))


def article_id(title: str, lead_key: str) -> str:
    """A stable id for a story: the same title over the same lead always gets the same id."""
    return _hash(title.casefold().strip() + "\n" + lead_key)


def save(engine: Engine, batch: Iterable[Article], *, now: datetime) -> SaveReport:
    """Insert new stories; fold re-ingested and syndicated copies into the stored one."""
    merged: dict[str, Article] = {}
    by_key: dict[str, str] = {}
    duplicates = 0
    for article in batch:
        keys = (article.id, *article.keys)
        known = next((by_key[k] for k in keys if k in by_key), None)
        if known is not None:
            duplicates += 1
            article = merge(merged[known], article)
            del merged[known]
        merged[article.id] = article
        for key in (article.id, *article.keys):
            by_key[key] = article.id
    inserted = updated = unchanged = 0
    try:
        with engine.begin() as conn:
            pending = list(merged.values())
            for start in range(0, len(pending), _CHUNK):
                chunk = pending[start : start + _CHUNK]
                stored = _stored_matches(conn, chunk)
                new_rows: list[dict[str, object]] = []
                new_tags: list[dict[str, str]] = []
                for article in chunk:
                    old = next(
                        (stored[k] for k in (article.id, *article.keys) if k in stored), None
                    )
                    if old is None:
                        new_rows.append(_row(article, now))
                        new_tags.extend({"article_id": article.id, "tag": t} for t in article.tags)
                        inserted += 1
                        continue
                    combined = merge(old, article)
                    if combined == old and combined.summary == old.summary:
                        unchanged += 1
                        continue
                    row = _row(combined, now)
                    del row["ingested_at"]
                    conn.execute(update(articles).where(articles.c.id == old.id).values(row))
                    conn.execute(delete(article_tags).where(article_tags.c.article_id == old.id))
                    new_tags.extend({"article_id": old.id, "tag": t} for t in combined.tags)
                    updated += 1
                if new_rows:
                    conn.execute(insert(articles), new_rows)
                if new_tags:
                    conn.execute(insert(article_tags), new_tags)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot write to the database: {reason(exc)}") from exc
    return SaveReport(inserted, updated, unchanged, duplicates)


def merge(old: Article, new: Article) -> Article:
    """One story from two copies: the richer copy's text and metadata, gaps filled from the other.

    The stored id never changes, so links and feed ids stay stable.
    """
    rich, poor = (new, old) if _richness(new) > _richness(old) else (old, new)
    dated = min((rich, poor), key=lambda a: DATE_SOURCE_RANK[a.date_source])
    return replace(
        rich,
        id=old.id,
        published=dated.published,
        date_source=dated.date_source,
        tags=rich.tags | poor.tags,
        subtitle=rich.subtitle or poor.subtitle,
        author=rich.author or poor.author,
        source=rich.source or poor.source,
        url=rich.url or poor.url,
        dateline=rich.dateline or poor.dateline,
        keys=old.keys,
        lang=rich.lang or poor.lang,
    )


def query(
    engine: Engine,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    tags: Sequence[str] = (),
    ids: Sequence[str] | None = None,
    limit: int | None = None,
) -> list[Article]:
    """Stored articles published in [start, end), with any of ``tags``, newest first."""
    stmt = select(articles).order_by(articles.c.published_utc.desc(), articles.c.id)
    if ids is not None:
        stmt = stmt.where(articles.c.id.in_(list(ids)))
    if start is not None:
        stmt = stmt.where(articles.c.published_utc >= utc_naive(start))
    if end is not None:
        stmt = stmt.where(articles.c.published_utc < utc_naive(end))
    if tags:
        tagged = select(article_tags.c.article_id).where(article_tags.c.tag.in_(list(tags)))
        stmt = stmt.where(articles.c.id.in_(tagged))
    if limit is not None:
        stmt = stmt.limit(limit)
    try:
        with engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
            tag_map = _tags_of(conn, [row["id"] for row in rows])
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the database: {reason(exc)}") from exc
    return [_article(row, tag_map.get(row["id"], frozenset())) for row in rows]


def refresh_summaries(engine: Engine, key: str, summarize: Callable[[Article], str]) -> int:
    """Recompute every stored summary unless they were made under ``key``; how many changed.

    ``key`` names the summarizer and its settings, so changing either refreshes the store.
    """
    try:
        with engine.begin() as conn:
            stored = conn.execute(
                select(store_meta.c.value).where(store_meta.c.key == _SUMMARY_KEY)
            ).scalar_one_or_none()
            if stored == key:
                return 0
            changed = 0
            rows = conn.execute(select(articles.c.id, articles.c.title, articles.c.body)).all()
            for id_, title, body in rows:
                article = _summary_source(id_, title, body)
                summary = summarize(article)
                result = conn.execute(
                    update(articles)
                    .where(articles.c.id == id_, articles.c.summary != summary)
                    .values(summary=summary)
                )
                changed += result.rowcount
            conn.execute(delete(store_meta).where(store_meta.c.key == _SUMMARY_KEY))
            conn.execute(insert(store_meta).values(key=_SUMMARY_KEY, value=key))
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot write to the database: {reason(exc)}") from exc
    return changed


def known_tags(engine: Engine, tags: Iterable[str]) -> set[str]:
    """Which of ``tags`` some stored article has."""
    wanted = sorted(set(tags))
    if not wanted:
        return set()
    try:
        with engine.connect() as conn:
            found = conn.execute(
                select(article_tags.c.tag).where(article_tags.c.tag.in_(wanted)).distinct()
            ).scalars()
            return set(found)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the database: {reason(exc)}") from exc


def new_files(engine: Engine, files: Sequence[Path]) -> list[Path]:
    """The files not yet ingested as they are now (a changed size or mtime counts as new)."""
    stamps = {str(path): _stamp(path) for path in files}
    try:
        with engine.connect() as conn:
            known = {
                row.path: (row.size, row.mtime_ns)
                for start in range(0, len(files), _CHUNK)
                for row in conn.execute(
                    select(ingested_files).where(
                        ingested_files.c.path.in_(list(stamps)[start : start + _CHUNK])
                    )
                )
            }
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the database: {reason(exc)}") from exc
    return [path for path in files if known.get(str(path)) != stamps[str(path)]]


def mark_ingested(
    engine: Engine, files: Sequence[Path], *, now: datetime, failed: Mapping[str, str] | None = None
) -> None:
    """Remember ``files`` as ingested in their current state; those in ``failed`` (path →
    why) as read and rejected, so they are read again only once they change."""
    failed = failed or {}
    rows = [
        {
            "path": str(p),
            "size": s[0],
            "mtime_ns": s[1],
            "ingested_at": utc_naive(now),
            "status": "failed" if str(p) in failed else "ok",
            "error": failed.get(str(p), "")[:1000] or None,
        }
        for p in files
        if (s := _stamp(p)) is not None
    ]
    try:
        with engine.begin() as conn:
            for start in range(0, len(rows), _CHUNK):
                chunk = rows[start : start + _CHUNK]
                paths = [row["path"] for row in chunk]
                conn.execute(delete(ingested_files).where(ingested_files.c.path.in_(paths)))
                conn.execute(insert(ingested_files), chunk)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot write to the database: {reason(exc)}") from exc


# ---------------------------------------------------------------- rows


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def _summary_source(id_: str, title: str, body: str) -> Article:
    """Just what a summarizer reads: the title and the paragraphs."""
    return Article(
        id=id_,
        title=title,
        published=datetime.min.replace(tzinfo=UTC),
        date_source="text",
        tags=frozenset(),
        paragraphs=tuple(body.split("\n\n")) if body else (),
    )


def _stored_matches(conn: Connection, chunk: Sequence[Article]) -> dict[str, Article]:
    ids = [a.id for a in chunk]
    keys = [k for a in chunk for k in a.keys]
    stmt = select(articles).where(
        or_(
            articles.c.id.in_(ids),
            articles.c.lead_key.in_(keys),
            articles.c.tail_key.in_(keys),
        )
    )
    rows = conn.execute(stmt).mappings().all()
    tag_map = _tags_of(conn, [row["id"] for row in rows])
    found: dict[str, Article] = {}
    for row in rows:
        article = _article(row, tag_map.get(row["id"], frozenset()))
        for key in (row["id"], row["lead_key"], row["tail_key"]):
            found.setdefault(key, article)
    return found


def _tags_of(conn: Connection, ids: Sequence[str]) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for start in range(0, len(ids), _CHUNK):
        stmt = select(article_tags).where(
            article_tags.c.article_id.in_(ids[start : start + _CHUNK])
        )
        for article_id_, tag in conn.execute(stmt):
            out.setdefault(article_id_, set()).add(tag)
    return {k: frozenset(v) for k, v in out.items()}


def _row(article: Article, now: datetime) -> dict[str, object]:
    offset = article.published.utcoffset() or timedelta(0)
    lead, tail = article.keys
    return {
        "id": article.id,
        "title": article.title,
        "subtitle": article.subtitle,
        "author": article.author,
        "source": article.source,
        "url": article.url,
        "dateline": article.dateline,
        "published_utc": utc_naive(article.published),
        "utc_offset_min": int(offset.total_seconds() // 60),
        "date_source": article.date_source,
        "body": article.body,
        "summary": article.summary,
        "origin": article.origin,
        "lead_key": lead,
        "tail_key": tail,
        "ingested_at": utc_naive(now),
        "lang": article.lang,
    }


def _article(r: RowMapping, tags: frozenset[str]) -> Article:
    offset = timezone(timedelta(minutes=r["utc_offset_min"]))
    published = r["published_utc"].replace(tzinfo=UTC).astimezone(offset)
    body: str = r["body"]
    return Article(
        id=r["id"],
        title=r["title"],
        published=published,
        date_source=r["date_source"],
        tags=tags,
        paragraphs=tuple(body.split("\n\n")) if body else (),
        subtitle=r["subtitle"],
        author=r["author"],
        source=r["source"],
        url=r["url"],
        dateline=r["dateline"],
        origin=r["origin"],
        summary=r["summary"],
        keys=(r["lead_key"], r["tail_key"]),
        lang=r["lang"],
    )


def _richness(article: Article) -> tuple[int, int]:
    filled = sum(
        value is not None
        for value in (article.author, article.url, article.subtitle, article.source)
    )
    dated = 2 - min(DATE_SOURCE_RANK[article.date_source], 2)
    return filled + dated + bool(article.tags), len(article.body)


def _hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()
