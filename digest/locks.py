"""Locks that keep two processes from doing one job at once.

A file lock (``flock``) is dropped by the OS when its process dies, so a crash never leaves
a stale lock behind. The send lock is a PostgreSQL advisory lock when the store is
PostgreSQL (it then holds across machines), else a file lock beside the SQLite file.
"""

from __future__ import annotations

import fcntl
import hashlib
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from digest.db import reason, sqlite_file
from digest.errors import BusyError, StoreError


@contextmanager
def file_lock(path: Path, what: str, advice: str) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` or raise BusyError naming ``what`` runs."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a", encoding="utf-8")
    except OSError as exc:
        raise StoreError(f"cannot create the lock file {path}: {exc.strerror or exc}") from exc
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise BusyError(f"another {what} is running (lock {path}); {advice}") from exc
        yield  # closing the file lets go of the lock


@contextmanager
def send_lock(engine: Engine, digest: str) -> Iterator[Callable[[], bool]]:
    """At most one real send of ``digest`` at a time on this store. Yields a check, for a
    long send to make now and then: False once the lock is lost (PostgreSQL ended its
    session and another send took it since), and the send must stop."""
    what = f"real send of digest {digest!r}"
    advice = "let it finish; a `digest send` after it finishes whatever it left"
    if engine.dialect.name == "postgresql":
        with _advisory_lock(engine, f"digest-send:{digest}", what, advice) as held:
            yield held
        return
    database = sqlite_file(engine.url)
    if database is not None:
        path = Path(f"{database}.send-{digest}.lock")
    else:
        path = Path(tempfile.gettempdir()) / f"digest-send-{digest}.lock"
    with file_lock(path, what, advice):
        yield lambda: True  # the OS keeps a file lock as long as its process lives


@contextmanager
def _advisory_lock(
    engine: Engine, name: str, what: str, advice: str
) -> Iterator[Callable[[], bool]]:
    """A session-level advisory lock on a connection of its own, held until the way out.

    The connection runs in autocommit, so it idles outside any transaction for the whole
    send (no snapshot holding back VACUUM, no idle_in_transaction_session_timeout), and it
    opts out of idle_session_timeout. A session can still end (a DBA, a proxy dropping idle
    connections, a failover): the check it yields then takes the lock again on a new
    session, and says False when another send holds it by now.
    """
    held = _Advisory(engine, name)
    try:
        taken = held.take()
    except SQLAlchemyError as exc:
        held.close()
        raise StoreError(f"cannot take the send lock: {reason(exc)}; check database_url") from exc
    if not taken:
        held.close()
        raise BusyError(f"another {what} is running (PostgreSQL advisory lock); {advice}")
    try:
        yield held.check
    finally:
        held.close()


class _Advisory:
    """One advisory lock and the session that holds it."""

    def __init__(self, engine: Engine, name: str) -> None:
        self._engine, self._name = engine, name
        self._conn: Connection | None = None
        self._key = 0

    def take(self) -> bool:
        """Try to take the lock on a new session; raises SQLAlchemyError."""
        self.close()
        conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            if (conn.dialect.server_version_info or (0,)) >= (14,):
                conn.execute(text("SET idle_session_timeout = 0"))
            # Advisory locks are database-wide: the schema in the key keeps two stores that
            # share a database (one schema each) from blocking each other's sends.
            schema = conn.execute(text("SELECT current_schema()")).scalar()
            self._key = _key(f"{schema}:{self._name}")
            taken = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self._key})
            if taken.scalar():
                self._conn = conn
                return True
        except BaseException:
            conn.invalidate()
            conn.close()
            raise
        conn.close()
        return False

    def check(self) -> bool:
        """Whether the lock is still held: its session answers, or a new one took it again."""
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT 1"))
                return True
            except SQLAlchemyError:
                pass  # the session is gone, and its lock with it
        try:
            return self.take()
        except SQLAlchemyError:
            self.close()
            return False

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
        except SQLAlchemyError:
            conn.invalidate()  # a broken session: closing it lets go of its locks
        finally:
            conn.close()


def _key(name: str) -> int:
    """A signed 64-bit advisory-lock key for ``name``."""
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
