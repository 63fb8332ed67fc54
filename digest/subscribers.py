"""The subscriber list: validated, normalised addresses, the tags each follows, and who left.

Nobody is deleted. An unsubscribed or bounced address stays as a row with its status, when
and how: the suppression list. No send, CSV import or `subscribers add` makes it active
again; only `add --resubscribe`, the operator's own recorded decision, does.
"""

from __future__ import annotations

import csv
import re
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any, Literal, TextIO

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy import text as sql_text
from sqlalchemy.exc import SQLAlchemyError

from digest import db
from digest.clean import tag_slug
from digest.db import reason, utc_naive
from digest.errors import StoreError, SubscriberError
from digest.lines import without_bidi_controls
from digest.models import Subscriber
from digest.readers import printable
from digest.schema import subscribers as table

_STAGE = 10_000  # rows an import stages a round trip (SQLite; PostgreSQL COPYs them all)
_TAG_SPLIT = re.compile(r"[\s,;]+")
Status = Literal["active", "unsubscribed", "bounced"]
STATUSES: tuple[Status, ...] = ("active", "unsubscribed", "bounced")
ACTIVE: Status = "active"
# store_meta: the operator gave a list (add or import): no automatic import of
# subscribers_file after that, whoever is left on it.
LIST_GIVEN = "subscriber_list_given"
# How a status came about: the subscriber's one-click POST or the link's page, the operator,
# a mailto: request, a bounce, or the operator taking someone back (--resubscribe).
Via = Literal["one-click", "link-page", "operator", "mailto", "bounce", "resubscribe"]


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What one CSV import did; ``errors`` are ``"line N: <reason>"``, one a skipped row.
    ``suppressed`` rows name an unsubscribed or bounced address: left as they are."""

    added: int
    updated: int
    errors: tuple[str, ...]
    suppressed: int = 0


@dataclass(frozen=True, slots=True)
class Stored:
    """A stored subscriber with its status, and when and how it last changed."""

    subscriber: Subscriber
    status: Status
    since: datetime  # UTC, naive as stored: when the status began
    via: str | None

    @property
    def email(self) -> str:
        return self.subscriber.email


def normalize(email: str) -> str:
    """The address as stored and sent to: lower-cased, IDN domains in ASCII (punycode).

    RFC 5321 lets a mailbox tell "Ada@" from "ada@", but no mail provider in use does, and
    keeping both would send one inbox two copies: like listmonk, one address is one
    subscriber whatever its case. Only ASCII local parts are accepted, so every message
    goes out without SMTPUTF8.
    """
    try:
        found = validate_email(email.strip(), check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise SubscriberError(f"{email.strip()!r} is not a valid email address: {exc}") from exc
    return str(found.ascii_email or found.normalized).lower()


def tags_of(values: Iterable[str]) -> frozenset[str]:
    """Tag slugs, one a value: "Arms Control" → "arms-control"."""
    return frozenset(slug for value in values if (slug := tag_slug(value)))


def add(
    engine: Engine,
    email: str,
    *,
    name: str | None = None,
    tags: Iterable[str] = (),
    replace_tags: bool = False,
    resubscribe: bool = False,
    now: datetime,
) -> tuple[Stored, str]:
    """Store a subscriber, or change what is given of a stored one: ``tags`` are added to
    theirs (``replace_tags``: instead of theirs), the name replaced when given.

    Returns the row and what happened: "added", "updated" or "resubscribed". A suppressed
    (unsubscribed or bounced) address is refused unless ``resubscribe``.
    """
    address = normalize(email)
    wanted = tags_of(tags)
    try:
        with engine.begin() as conn:
            row = conn.execute(select(table).where(table.c.email == address)).one_or_none()
            if row is None:
                _upsert(conn, [Subscriber(address, _name(name), wanted)], now)
                action = "added"
            else:
                old = _stored(row)
                if old.status != ACTIVE and not resubscribe:
                    raise SubscriberError(
                        f"{address} {old.status} on {old.since:%Y-%m-%d} ({old.via or 'unknown'})"
                        " and is never mailed again; if they asked to come back, run "
                        "`digest subscribers add --resubscribe` (it is recorded)"
                    )
                values: dict[str, object] = {
                    "tags": _tag_text(wanted if replace_tags else old.subscriber.tags | wanted)
                }
                if _name(name) is not None:
                    values["name"] = _name(name)
                action = "updated"
                if old.status != ACTIVE:
                    values |= {
                        "status": ACTIVE,
                        "status_at": utc_naive(now),
                        "status_via": "resubscribe",
                    }
                    action = "resubscribed"
                conn.execute(update(table).where(table.c.email == address).values(values))
            stored = _stored(conn.execute(select(table).where(table.c.email == address)).one())
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot write subscriber {address}: {reason(exc)}") from exc
    db.keep_meta_value(engine, LIST_GIVEN, f"subscribers add, {now.isoformat()}")
    return stored, action


def suppress(
    engine: Engine, email: str, *, via: Via, now: datetime, status: Status = "unsubscribed"
) -> tuple[Stored, str]:
    """Mark an address unsubscribed (or bounced): it gets no more mail, and no import adds
    it. Returns the row and what happened: "suppressed", "already" (an address suppressed
    before keeps its first record) or "recorded" (it was not on the list; now it is, as
    suppressed, so no later import brings it in)."""
    address = normalize(email)
    when = utc_naive(now)
    try:
        with engine.begin() as conn:
            row = conn.execute(select(table).where(table.c.email == address)).one_or_none()
            if row is None:
                conn.execute(
                    insert(table).values(
                        email=address, name=None, tags="", created_at=when, status=status,
                        status_at=when, status_via=via,
                    )
                )  # fmt: skip
                action = "recorded"
            elif row.status == ACTIVE:
                conn.execute(
                    update(table)
                    .where(table.c.email == address)
                    .values(status=status, status_at=when, status_via=via)
                )
                action = "suppressed"
            else:
                action = "already"
            stored = _stored(conn.execute(select(table).where(table.c.email == address)).one())
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot unsubscribe {address}: {reason(exc)}") from exc
    return stored, action


def all_subscribers(engine: Engine) -> list[Subscriber]:
    """Every active subscriber, by address."""
    return [stored.subscriber for stored in listing(engine, status=ACTIVE)]


def listing(engine: Engine, *, status: Status | None = None) -> list[Stored]:
    """Every subscriber (or those of one status), by address."""
    stmt = select(table).order_by(table.c.email)
    if status is not None:
        stmt = stmt.where(table.c.status == status)
    try:
        with engine.connect() as conn:
            rows = conn.execute(stmt).all()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read subscribers: {reason(exc)}") from exc
    return [_stored(row) for row in rows]


def stream(engine: Engine, *, chunk: int = 2000) -> Iterator[Subscriber]:
    """Every active subscriber ordered by (tags, email): equal tag sets come one after another.

    Keyset pages of ``chunk`` rows, each read in its own short transaction: memory stays
    flat however long the list, and no read lock is held while the caller writes the
    send ledger (SQLite would otherwise block it).
    """
    last: tuple[str, str] | None = None
    while True:
        stmt = select(table.c.email, table.c.name, table.c.tags).where(table.c.status == ACTIVE)
        if last is not None:
            # A row-value comparison, not an OR: both SQLite and PostgreSQL seek the index.
            stmt = stmt.where(tuple_(table.c.tags, table.c.email) > tuple_(*last))
        stmt = stmt.order_by(table.c.tags, table.c.email).limit(chunk)
        try:
            with engine.connect() as conn:
                rows = conn.execute(stmt).all()
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot read subscribers: {reason(exc)}") from exc
        for email, name, tags in rows:
            yield _subscriber(email, name, tags)
        if len(rows) < chunk:
            return
        last = (rows[-1].tags, rows[-1].email)


def count(engine: Engine) -> int:
    """How many subscribers are active."""
    return counts(engine).get(ACTIVE, 0)


def counts(engine: Engine) -> dict[str, int]:
    """How many stored subscribers have each status (statuses with none are left out)."""
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(table.c.status, func.count()).group_by(table.c.status)).all()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read subscribers: {reason(exc)}") from exc
    return {str(status): int(n) for status, n in rows}


def suppressed(counts_by_status: dict[str, int]) -> int:
    """How many of ``counts`` are unsubscribed or bounced."""
    return sum(n for status, n in counts_by_status.items() if status != ACTIVE)


def import_csv(engine: Engine, path: Path, *, now: datetime) -> ImportReport:
    """Add or update the subscribers of a CSV file (columns email, name, tags; UTF-8).

    A bad row is reported as ``line N: <reason>`` and skipped; the others are imported in
    one transaction. An unsubscribed or bounced address is left as it is (counted in
    ``suppressed``). A file that cannot be read, or has no email column, is an error.

    In bulk, at a flat cost per row: the rows are staged in a temporary table (COPY on
    PostgreSQL, large executemany batches elsewhere), then merged in a few statements.
    """
    errors: list[tuple[int, str]] = []
    try:
        with _reading(path) as handle, engine.begin() as conn:
            staged = _staging(conn)  # a failed import's goes with its transaction
            _stage(conn, staged, _rows(path, handle, errors))
            errors += _duplicates(conn, staged)
            added, updated, suppressed = _merge(conn, staged, now)
            staged.drop(conn)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot write subscribers: {reason(exc)}") from exc
    db.keep_meta_value(engine, LIST_GIVEN, f"import of {path}, {now.isoformat()}")
    if added >= db.ANALYZE_AFTER:
        db.analyze(engine, table.name)
    return ImportReport(added, updated, tuple(text for _, text in sorted(errors)), suppressed)


def _staging(conn: Connection) -> Table:
    """A temporary table of this session for one import's rows (``line`` its CSV line)."""
    staged = Table(
        f"import_{secrets.token_hex(4)}",
        MetaData(),
        Column("line", Integer, nullable=False),
        Column("email", String(320), nullable=False),
        Column("name", Text),
        Column("tags", Text, nullable=False),
        prefixes=["TEMPORARY"],
    )
    staged.create(conn)
    return staged


def _stage(conn: Connection, staged: Table, rows: Iterable[tuple[int, Subscriber]]) -> None:
    """Write ``rows`` into ``staged``: one COPY on PostgreSQL, else batches of _STAGE."""
    values = ((line, s.email, s.name, _tag_text(s.tags)) for line, s in rows)
    if conn.dialect.name == "postgresql":
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY {staged.name} (line, email, name, tags) FROM STDIN") as copy:
            for row in values:
                copy.write_row(row)
    else:
        names = ("line", "email", "name", "tags")
        while batch := [dict(zip(names, row, strict=True)) for row in islice(values, _STAGE)]:
            conn.execute(insert(staged), batch)
    conn.execute(sql_text(f"CREATE INDEX {staged.name}_email ON {staged.name} (email, line)"))


def _duplicates(conn: Connection, staged: Table) -> list[tuple[int, str]]:
    """The rows naming an address an earlier row of the file named, taken out of
    ``staged``: (line, reason) each."""
    first = (
        select(staged.c.email, func.min(staged.c.line).label("first"))
        .group_by(staged.c.email)
        .having(func.count() > 1)
        .subquery()
    )
    found = conn.execute(
        select(staged.c.line, staged.c.email, first.c.first)
        .join(first, first.c.email == staged.c.email)
        .where(staged.c.line > first.c.first)
    ).all()
    lines = [line for line, _, _ in found]
    for chunk in range(0, len(lines), _STAGE):
        conn.execute(delete(staged).where(staged.c.line.in_(lines[chunk : chunk + _STAGE])))
    return [(line, _given_twice(line, email, first_line)) for line, email, first_line in found]


def _given_twice(line: int, email: str, first: int) -> str:
    """Why a row is skipped whose address an earlier row of the file gave (the first wins)."""
    return f"line {line}: {email} is already on line {first}; skipped"


def _merge(conn: Connection, staged: Table, now: datetime) -> tuple[int, int, int]:
    """Merge the staged rows into the list: (added, updated, suppressed). A name left out
    keeps the stored one; an unsubscribed or bounced address is not touched."""
    known = table.c.email == staged.c.email
    counts: dict[str, int] = dict(
        conn.execute(
            select(table.c.status, func.count())
            .select_from(staged.join(table, known))
            .group_by(table.c.status)
        ).all()
    )
    updated = int(counts.pop(ACTIVE, 0))
    suppressed = sum(int(n) for n in counts.values())
    mine = select(staged.c.tags).where(known).scalar_subquery()
    named = select(staged.c.name).where(known).scalar_subquery()
    changed = exists().where(
        known,
        or_(
            staged.c.tags != table.c.tags,
            and_(staged.c.name.is_not(None), staged.c.name.is_distinct_from(table.c.name)),
        ),
    )
    conn.execute(
        update(table)
        .where(table.c.status == ACTIVE, changed)
        .values(tags=mine, name=func.coalesce(named, table.c.name))
    )
    rows = int(conn.execute(select(func.count()).select_from(staged)).scalar_one())
    conn.execute(
        insert(table).from_select(
            ["email", "name", "tags", "created_at"],
            select(
                staged.c.email, staged.c.name, staged.c.tags, literal(utc_naive(now), DateTime())
            ).where(~exists().where(known)),
        )
    )
    return rows - updated - suppressed, updated, suppressed


def in_delivery_order(found: Iterable[Subscriber]) -> list[Subscriber]:
    """``found`` in the order ``stream`` yields stored subscribers: by tag set, then address."""
    return sorted(found, key=lambda s: (_tag_text(s.tags), s.email))


def read_csv(path: Path) -> tuple[list[Subscriber], tuple[str, ...]]:
    """The valid subscribers of a CSV file, and why the other rows were skipped; stores nothing."""
    errors: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    found = []
    with _reading(path) as handle:
        for line, subscriber in _rows(path, handle, errors):
            if subscriber.email in seen:
                first = seen[subscriber.email]
                errors.append((line, _given_twice(line, subscriber.email, first)))
                continue
            seen[subscriber.email] = line
            found.append(subscriber)
    return found, tuple(text for _, text in sorted(errors))


@contextmanager
def _reading(path: Path) -> Iterator[TextIO]:
    """The open CSV file; unreadable or undecodable files become one SubscriberError."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            yield handle
    except OSError as exc:
        raise SubscriberError(
            f"cannot read {path}: {exc.strerror or exc}; check the file name"
        ) from exc
    except UnicodeDecodeError as exc:
        raise SubscriberError(
            f"{path} is not UTF-8 text ({exc.reason}); save it as UTF-8 CSV"
        ) from exc


def _rows(
    path: Path, handle: Iterable[str], errors: list[tuple[int, str]]
) -> Iterator[tuple[int, Subscriber]]:
    """The valid rows of a CSV with their line numbers; the reasons for the others go to
    ``errors``, with their lines (an address given twice is the caller's to find)."""
    reader = csv.reader(handle)
    header = [cell.strip().casefold() for cell in next(reader, [])]
    if "email" not in header:
        raise SubscriberError(
            f"{path} has no 'email' column; its first line must be email,name,tags"
        )
    column: dict[str, int] = {
        name: header.index(name) for name in ("email", "name", "tags") if name in header
    }
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            errors.append((reader.line_num, f"line {reader.line_num}: {exc}"))
            continue
        if not any(cell.strip() for cell in cells):
            continue

        def cell(name: str, cells: list[str] = cells) -> str:
            index = column.get(name)
            return cells[index] if index is not None and index < len(cells) else ""

        line = reader.line_num
        if not cell("email").strip():
            errors.append((line, f"line {line}: no email address"))
            continue
        try:
            email = normalize(cell("email"))
        except SubscriberError as exc:
            errors.append((line, f"line {line}: {exc}"))
            continue
        yield line, Subscriber(email, _name(cell("name")), tags_of(_TAG_SPLIT.split(cell("tags"))))


def _upsert(conn: Connection, batch: list[Subscriber], now: datetime) -> tuple[int, int, int]:
    """Insert new subscribers and update active stored ones; (added, updated, suppressed).

    Portable SQL (no dialect upsert): one read of the batch's stored addresses, one insert.
    A name left out keeps the stored one; a suppressed address is not touched.
    """
    if not batch:
        return 0, 0, 0
    stored = dict(
        conn.execute(
            select(table.c.email, table.c.status).where(table.c.email.in_([s.email for s in batch]))
        ).all()
    )
    created = utc_naive(now)
    new_rows = [
        {"email": s.email, "name": s.name, "tags": _tag_text(s.tags), "created_at": created}
        for s in batch
        if s.email not in stored
    ]
    if new_rows:
        conn.execute(insert(table), new_rows)
    updated = 0
    for s in batch:
        if stored.get(s.email) == ACTIVE:
            values: dict[str, object] = {"tags": _tag_text(s.tags)}
            if s.name is not None:
                values["name"] = s.name
            conn.execute(update(table).where(table.c.email == s.email).values(values))
            updated += 1
    return len(new_rows), updated, len(batch) - len(new_rows) - updated


def _tag_text(tags: frozenset[str]) -> str:
    return " ".join(sorted(tags))


def _name(name: str | None) -> str | None:
    cleaned = " ".join(without_bidi_controls(printable(name or "")).split())
    return cleaned or None


def _subscriber(email: str, name: str | None, tags: str) -> Subscriber:
    return Subscriber(email, name, frozenset(tags.split()))


def _stored(row: Any) -> Stored:
    status = next((known for known in STATUSES if known == row.status), ACTIVE)
    return Stored(
        _subscriber(row.email, row.name, row.tags),
        status,
        row.status_at or row.created_at,
        row.status_via,
    )
