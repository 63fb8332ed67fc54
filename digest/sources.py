"""Sources polled by URL: their configuration, and the state of each kept between polls.

A ``Source`` is what the operator configured (``[[sources]]``); its ``SourceState`` is what
the fetcher learned polling it: the validators of a conditional GET (ETag, Last-Modified),
failures in a row and when it may be polled again, where a permanent redirect moved it.
``fetch.poll`` takes states and gives new ones; ``load_states`` and ``save_states`` keep
them in the store (``schema.source_state``), keyed by the configured URL, so a source whose
URL the operator edits starts afresh.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import Engine, RowMapping, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from digest.db import reason, utc_naive
from digest.errors import StoreError
from digest.schema import source_state

ERROR_CHARS = 500  # of a stored last_error: one line, cut


@dataclass(frozen=True, slots=True)
class Source:
    """One configured source by URL: a feed, a page or a site's home page."""

    url: str
    name: str = ""  # shown in reports; empty: the feed's or page's own site name
    tags: frozenset[str] = frozenset()  # added to every article of the source
    full_text: bool = False  # fetch each new entry's linked page for its text
    max_per_issue: int | None = None  # most articles of this source in one issue
    enabled: bool = True  # a disabled source is never polled


@dataclass(frozen=True, slots=True)
class SourceState:
    """What the polls of one source left behind (all instants tz-aware UTC)."""

    url: str  # the configured URL: the key
    moved_to: str | None = None  # a permanent redirect's target, polled instead of ``url``
    etag: str | None = None
    last_modified: str | None = None
    last_fetch: datetime | None = None
    last_ok: datetime | None = None
    last_status: int | None = None  # of the last reply; None: no reply (timeout, refused)
    errors_in_a_row: int = 0
    next_poll: datetime | None = None  # not polled before this; None: whenever asked
    last_error: str | None = None
    new_articles: int = 0  # set by the caller once the bytes are read and stored

    @property
    def fetch_url(self) -> str:
        """Where the next poll goes: the permanent redirect's target, else the URL."""
        return self.moved_to or self.url

    def due(self, now: datetime) -> bool:
        """Whether a poll at ``now`` may ask for it (no backoff or Retry-After pending)."""
        return self.next_poll is None or self.next_poll <= now


def canonical_url(url: str) -> str:
    """One spelling of a page's URL, so two links to one article are fetched once: scheme
    and host in lower case, no default port, no fragment, no tracking parameters (utm_*,
    fbclid, gclid), and "/" for an empty path."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port in (None, default) else f"{host}:{port}"
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    query = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if not key.lower().startswith(_TRACKING)
    ]
    return urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", urlencode(query), ""))


_TRACKING = ("utm_", "fbclid", "gclid", "mc_cid", "mc_eid")
_INSTANTS = ("last_fetch", "last_ok", "next_poll")
_COLUMNS = [f.name for f in fields(SourceState)]


def load_states(engine: Engine, urls: Iterable[str] | None = None) -> dict[str, SourceState]:
    """The stored state of each source, by configured URL (all of them, or of ``urls``);
    a source never polled has none."""
    query = select(source_state)
    if urls is not None:
        query = query.where(source_state.c.url.in_(list(urls)))
    try:
        with engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the sources' state: {reason(exc)}") from exc
    return {row["url"]: _state(row) for row in rows}


def save_states(engine: Engine, states: Iterable[SourceState]) -> None:
    """Store each state over the one kept for its URL, in one transaction."""
    values = [_row(state) for state in states]
    if not values:
        return
    try:
        try:
            _write(engine, values)
        except IntegrityError:  # another process inserted one of them first: update it
            _write(engine, values)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot save the sources' state: {reason(exc)}") from exc


def _write(engine: Engine, values: list[dict[str, Any]]) -> None:
    with engine.begin() as conn:
        stored = set(
            conn.execute(
                select(source_state.c.url).where(
                    source_state.c.url.in_([row["url"] for row in values])
                )
            ).scalars()
        )
        for row in values:
            if row["url"] in stored:
                conn.execute(
                    update(source_state).where(source_state.c.url == row["url"]).values(row)
                )
            else:
                conn.execute(insert(source_state).values(row))


def _row(state: SourceState) -> dict[str, Any]:
    row = {name: getattr(state, name) for name in _COLUMNS}
    for name in _INSTANTS:
        if row[name] is not None:
            row[name] = utc_naive(row[name])
    if row["last_error"] is not None:
        row["last_error"] = one_line(row["last_error"])
    if row["last_modified"] is not None and len(row["last_modified"]) > 64:
        row["last_modified"] = None  # no HTTP date is that long: not worth sending back
    return row


def _state(row: RowMapping) -> SourceState:
    values = {name: row[name] for name in _COLUMNS}
    for name in _INSTANTS:
        if values[name] is not None:
            values[name] = values[name].replace(tzinfo=UTC)
    return SourceState(**values)


def one_line(text: str) -> str:
    """``text`` on one line, within ``ERROR_CHARS``: how a source's error is kept."""
    line = " ".join(text.split())
    return line if len(line) <= ERROR_CHARS else line[: ERROR_CHARS - 1] + "…"
