"""The article store: SQLAlchemy Core on SQLite (default) or PostgreSQL, no dialect-only SQL."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import (
    Engine,
    create_engine,
    delete,
    event,
    insert,
    inspect,
    or_,
    select,
    update,
)
from sqlalchemy import text as sql_text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    IntegrityError,
    OperationalError,
    ProgrammingError,
    SQLAlchemyError,
)

from digest.errors import StoreError
from digest.models import DATE_SOURCE_RANK, Article
from digest.schema import article_tags, articles, ingested_files, metadata, store_meta

# psycopg logs what it ignores while cleaning up after an error that we report ourselves
# ("error ignored terminating <psycopg.Pipeline …>"); with no handler anywhere, Python's last
# resort would print that raw beside our one Error line. A service's own log still gets it.
logging.getLogger("psycopg").addHandler(logging.NullHandler())

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


def connect(url: str) -> Engine:
    """An engine on ``url`` with the schema in place (created on first use)."""
    shown = _shown(url)
    try:
        parsed = make_url(url)
        if parsed.drivername.startswith("sqlite") and parsed.database not in (None, "", ":memory:"):
            folder = Path(parsed.database).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError) as exc:
                raise StoreError(
                    f"cannot open database {shown}: {folder} is not a folder; check database_url"
                ) from exc
        engine = create_engine(url)
    except (ArgumentError, ImportError, OSError, ValueError) as exc:
        raise StoreError(f"bad database URL {shown}: {exc}; check database_url") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        _create_schema(engine)
    except SQLAlchemyError as exc:
        raise StoreError(
            f"cannot open database {shown}: {reason(exc)}; check database_url (DIGEST_DATABASE_URL)"
        ) from exc
    return engine


def _create_schema(engine: Engine) -> None:
    """Create missing tables and columns; a second process doing so at once is fine."""
    try:
        metadata.create_all(engine)
        _add_missing_columns(engine)
    except (OperationalError, ProgrammingError, IntegrityError) as exc:
        if "already exists" not in str(exc) and "duplicate" not in str(exc).lower():
            raise
        metadata.create_all(engine)  # the other process won the race: check again
        _add_missing_columns(engine)


def _add_missing_columns(engine: Engine) -> None:
    """Columns a newer digest added to a table an older one created (nullable or defaulted)."""
    found = inspect(engine)
    names = set(found.get_table_names())
    for table in metadata.sorted_tables:
        if table.name not in names:
            continue
        have = {column["name"] for column in found.get_columns(table.name)}
        for column in table.columns:
            if column.name in have:
                continue
            kind = column.type.compile(dialect=engine.dialect)
            default = ""
            if column.server_default is not None:
                text = column.server_default.arg  # type: ignore[attr-defined]
                default = f" NOT NULL DEFAULT '{text}'"
            with engine.begin() as conn:
                conn.execute(
                    sql_text(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}{default}")
                )


@contextmanager
def opened(url: str) -> Iterator[Engine]:
    """``connect(url)``, disposed of (its pooled connections closed) on the way out."""
    engine = connect(url)
    try:
        yield engine
    finally:
        engine.dispose()


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


def meta_value(engine: Engine, key: str) -> str | None:
    """A small fact about the store (``store_meta``), or None when it was never set."""
    try:
        with engine.connect() as conn:
            value = conn.execute(
                select(store_meta.c.value).where(store_meta.c.key == key)
            ).scalar_one_or_none()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the database: {reason(exc)}") from exc
    return None if value is None else str(value)


def keep_meta_value(engine: Engine, key: str, value: str) -> str:
    """Set ``key`` unless it is set already; the value it holds afterwards (first one wins,
    also when two processes race)."""
    try:
        with engine.begin() as conn:
            stored = conn.execute(
                select(store_meta.c.value).where(store_meta.c.key == key)
            ).scalar_one_or_none()
            if stored is not None:
                return str(stored)
            conn.execute(insert(store_meta).values(key=key, value=value))
    except IntegrityError:
        return meta_value(engine, key) or value
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot write to the database: {reason(exc)}") from exc
    return value


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


def _stored_matches(conn: object, chunk: Sequence[Article]) -> dict[str, Article]:
    ids = [a.id for a in chunk]
    keys = [k for a in chunk for k in a.keys]
    stmt = select(articles).where(
        or_(
            articles.c.id.in_(ids),
            articles.c.lead_key.in_(keys),
            articles.c.tail_key.in_(keys),
        )
    )
    rows = conn.execute(stmt).mappings().all()  # type: ignore[attr-defined]
    tag_map = _tags_of(conn, [row["id"] for row in rows])
    found: dict[str, Article] = {}
    for row in rows:
        article = _article(row, tag_map.get(row["id"], frozenset()))
        for key in (row["id"], row["lead_key"], row["tail_key"]):
            found.setdefault(key, article)
    return found


def _tags_of(conn: object, ids: Sequence[str]) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for start in range(0, len(ids), _CHUNK):
        stmt = select(article_tags).where(
            article_tags.c.article_id.in_(ids[start : start + _CHUNK])
        )
        for article_id_, tag in conn.execute(stmt):  # type: ignore[attr-defined]
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
    }


def _article(row: object, tags: frozenset[str]) -> Article:
    r = row  # a RowMapping
    offset = timezone(timedelta(minutes=r["utc_offset_min"]))  # type: ignore[index]
    published = r["published_utc"].replace(tzinfo=UTC).astimezone(offset)  # type: ignore[index]
    body: str = r["body"]  # type: ignore[index]
    return Article(
        id=r["id"],  # type: ignore[index]
        title=r["title"],  # type: ignore[index]
        published=published,
        date_source=r["date_source"],  # type: ignore[index]
        tags=tags,
        paragraphs=tuple(body.split("\n\n")) if body else (),
        subtitle=r["subtitle"],  # type: ignore[index]
        author=r["author"],  # type: ignore[index]
        source=r["source"],  # type: ignore[index]
        url=r["url"],  # type: ignore[index]
        dateline=r["dateline"],  # type: ignore[index]
        origin=r["origin"],  # type: ignore[index]
        summary=r["summary"],  # type: ignore[index]
        keys=(r["lead_key"], r["tail_key"]),  # type: ignore[index]
    )


def _richness(article: Article) -> tuple[int, int]:
    filled = sum(
        value is not None
        for value in (article.author, article.url, article.subtitle, article.source)
    )
    dated = 2 - min(DATE_SOURCE_RANK[article.date_source], 2)
    return filled + dated + bool(article.tags), len(article.body)


def utc_naive(when: datetime) -> datetime:
    """``when`` as the store keeps instants: naive UTC (SQLite has no zone type)."""
    return when.astimezone(UTC).replace(tzinfo=None)


def _hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()


def _shown(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "(unparsable URL)"


def reason(exc: SQLAlchemyError) -> str:
    """The first line of the database driver's own message."""
    orig = getattr(exc, "orig", None)
    return str(orig or exc).strip().splitlines()[0]


def _sqlite_pragmas(dbapi_conn: object, _record: object) -> None:
    cursor = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA foreign_keys=ON")
    # WAL lets `digest serve` read while a send writes. synchronous stays FULL: each ledger
    # mark is on disk before the next message goes, so not even a power cut re-sends.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()
