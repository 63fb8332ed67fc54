"""Database plumbing: engines, the schema in place, errors in one line, instants as stored.

Every module that talks to the database opens it here (``connect`` or ``opened``), turns a
driver error into one line with ``reason``, and stores instants with ``utc_naive``. SQLAlchemy
Core only, no dialect-only SQL: the same code runs on SQLite (the default) and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, insert, inspect, select
from sqlalchemy import text as sql_text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    IntegrityError,
    OperationalError,
    ProgrammingError,
    SQLAlchemyError,
)

from digest.errors import StoreError
from digest.schema import metadata, store_meta


def connect(url: str) -> Engine:
    """An engine on ``url`` with the schema in place (created on first use)."""
    shown = shown_url(url)
    try:
        if (path := sqlite_file(url)) is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError) as exc:
                raise StoreError(
                    f"cannot open database {shown}: {path.parent} is not a folder; "
                    "check database_url"
                ) from exc
        # A server's sessions can end under a pooled connection (a failover, a terminated
        # session): each is pinged as it is checked out, and a dead one replaced, so a step
        # run again after a lost session gets a live one. SQLite has no sessions to lose.
        engine = create_engine(url, pool_pre_ping=not url.startswith("sqlite"))
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


@contextmanager
def opened(url: str) -> Iterator[Engine]:
    """``connect(url)``, disposed of (its pooled connections closed) on the way out."""
    engine = connect(url)
    try:
        yield engine
    finally:
        engine.dispose()


def sqlite_file(url: str | URL) -> Path | None:
    """The file of a SQLite URL; None for a database server or an in-memory database.

    Raises ArgumentError or ValueError for a URL SQLAlchemy cannot parse.
    """
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite") and parsed.database not in (None, "", ":memory:"):
        return Path(str(parsed.database))
    return None


def named(url: str, name: str) -> str:
    """A PostgreSQL ``url`` whose sessions show ``name`` after their application_name (in
    pg_stat_activity: which process of digest holds which session); other URLs as given."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("postgresql"):
        return url
    base = parsed.query.get("application_name") or "digest"
    if not isinstance(base, str):
        base = base[0]
    named_url = parsed.update_query_dict({"application_name": f"{base}/{name}"[:63]})
    return named_url.render_as_string(hide_password=False)


def shown_url(url: str) -> str:
    """``url`` fit to print: the password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "(unparsable URL)"


def reason(exc: SQLAlchemyError) -> str:
    """The first line of the database driver's own message."""
    orig = getattr(exc, "orig", None)
    return str(orig or exc).strip().splitlines()[0]


def utc_naive(when: datetime) -> datetime:
    """``when`` as the store keeps instants: naive UTC (SQLite has no zone type)."""
    return when.astimezone(UTC).replace(tzinfo=None)


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


# Every commit is on disk before it returns; the send ledger's marks are the exception
# (deliver.Ledger._marking: NORMAL, a sender's throughput).
SQLITE_SYNCHRONOUS = "FULL"
ANALYZE_AFTER = 10_000  # rows a change adds before the planner's statistics are renewed


def analyze(engine: Engine, *tables: str) -> None:
    """Renew the planner's statistics of ``tables`` after a large change (a bulk import, an
    enrolment), so their queries keep to their indexes however the tables grew. On SQLite
    a sample of each index (analysis_limit) keeps it quick on any size. A failure costs
    only the statistics: it is not an error of the change."""
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "sqlite":
                conn.execute(sql_text("PRAGMA analysis_limit = 1000"))
            for name in tables:
                conn.execute(sql_text(f"ANALYZE {name}"))
    except SQLAlchemyError:
        pass


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
    """Columns and indexes a newer digest added to a table an older one created (the
    columns nullable or defaulted)."""
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
                text: Any = getattr(column.server_default, "arg", "")
                default = f" NOT NULL DEFAULT '{text}'"
            with engine.begin() as conn:
                conn.execute(
                    sql_text(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}{default}")
                )
        indexes = {index["name"] for index in found.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in indexes:
                index.create(engine, checkfirst=True)


def _sqlite_pragmas(dbapi_conn: Any, _record: object) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    # WAL lets `digest serve` read while a send writes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA synchronous={SQLITE_SYNCHRONOUS}")
    cursor.close()
