"""The send lock (PostgreSQL advisory lock, or a file lock beside the SQLite file) and the
file lock: one holder at a time, let go however the holder ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.pool import NullPool

from digest import db, locks
from digest.errors import BusyError, DigestError

from .conftest import PG_URL, ROOT

BUSY = (
    "another real send of digest 'daily' is running ({where}); let it finish; "
    "a `digest send` after it finishes whatever it left"
)


def busy_message(engine: Engine) -> str:
    if engine.dialect.name == "postgresql":
        return BUSY.format(where="PostgreSQL advisory lock")
    return BUSY.format(where=f"lock {engine.url.database}.send-daily.lock")


def assert_free(engine: Engine, digest: str = "daily") -> None:
    with locks.send_lock(engine, digest):
        pass


def test_a_second_send_is_busy(engine: Engine) -> None:
    with locks.send_lock(engine, "daily"):
        with pytest.raises(BusyError) as caught, locks.send_lock(engine, "daily"):
            pass  # pragma: no cover
        assert str(caught.value) == busy_message(engine)
        assert_free(engine, "weekly")  # another digest has its own lock
    assert_free(engine)


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_let_go_on_errors_and_ctrl_c(engine: Engine, error: type[BaseException]) -> None:
    with pytest.raises(error), locks.send_lock(engine, "daily"):
        raise error("stop")
    assert_free(engine)


HOLDER = """
import sys, time
from sqlalchemy import create_engine
from digest import locks, store
from digest.errors import DigestError
with locks.send_lock(create_engine(sys.argv[1]), "daily"):
    print("held", flush=True)
    time.sleep(60)
"""


@contextmanager
def holder(url: str) -> Iterator[subprocess.Popen[bytes]]:
    """Another process that holds the send lock until it is killed."""
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url],
        cwd=ROOT,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == b"held\n"
        yield child
    finally:
        child.kill()
        child.wait(timeout=10)
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.slow
def test_held_across_processes_and_let_go_when_the_holder_dies(
    database_url: str, engine: Engine
) -> None:
    with holder(database_url) as child:
        with pytest.raises(BusyError), locks.send_lock(engine, "daily"):
            pass  # pragma: no cover
        child.send_signal(signal.SIGKILL)  # a crash: nothing runs on the way out
        child.wait(timeout=10)
        deadline = time.monotonic() + 10
        while True:  # PostgreSQL ends the session once it sees the socket close
            try:
                assert_free(engine)
                break
            except BusyError:
                assert time.monotonic() < deadline, "the lock outlived its holder"
                time.sleep(0.05)


@pytest.mark.parametrize("setting", ["idle_in_transaction_session_timeout", "idle_session_timeout"])
def test_advisory_lock_outlasts_idle_timeouts(database_url: str, setting: str) -> None:
    """A DBA's idle timeout must not end the lock's session halfway through a long send,
    letting a second send in (and ending the first with a traceback)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite's send lock is a file lock")
    # No pool: a pooled connection idling past the timeout would be ended under the test.
    strict = create_engine(f"{database_url}%20-c{setting}%3D300", poolclass=NullPool)
    # It looks on from a session of its own, without the timeout. The lock's session is the
    # one of this test's store (by its application_name) holding an advisory lock: other
    # sessions on the server, other suites' included, are not looked at.
    probe = create_engine(PG_URL, poolclass=NullPool)
    ours = {"app": make_url(database_url).query["application_name"]}
    holders = text(
        "SELECT a.pid, a.state FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
        "WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = :app"
    )
    try:
        with strict.connect():
            pass  # the dialect's first-connect queries, out of the way
        with locks.send_lock(strict, "daily"), probe.connect() as conn:
            ((pid, state),) = conn.execute(holders, ours).all()
            assert state == "idle"  # not "idle in transaction"
            # Past the 300 ms timeout as the server's clock counts it: the session stays.
            conn.execute(text("SELECT pg_sleep(0.8)"))
            assert conn.execute(holders, ours).all() == [(pid, "idle")]
            with pytest.raises(BusyError), locks.send_lock(strict, "daily"):
                pass  # pragma: no cover
        assert_free(strict)
    finally:
        strict.dispose()
        probe.dispose()


def test_a_lock_whose_session_ended_is_taken_again_or_known_lost(database_url: str) -> None:
    """The check a send makes now and then: a lock whose session was terminated is taken
    again on a new one while nobody else took it, and is lost once another send has."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite's send lock is a file lock: it lasts as long as its process")
    engine = create_engine(database_url, poolclass=NullPool)
    probe = create_engine(PG_URL, poolclass=NullPool)
    terminate = text(
        "SELECT pg_terminate_backend(a.pid) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
        "WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = :app"
    )
    ours = {"app": make_url(database_url).query["application_name"]}
    try:
        with locks.send_lock(engine, "daily") as held:
            assert held()
            with probe.connect() as conn:
                assert len(conn.execute(terminate, ours).all()) == 1
            assert held()  # taken again: nobody else wanted it
            with probe.connect() as conn:
                assert len(conn.execute(terminate, ours).all()) == 1
            with locks.send_lock(engine, "daily") as other:
                assert other()
                assert not held()  # the other send has it now
        assert_free(engine)
    finally:
        engine.dispose()
        probe.dispose()


def test_file_lock(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "run.lock"
    with locks.file_lock(path, "scheduler", "stop it first"):
        again = locks.file_lock(path, "scheduler", "stop it first")
        with pytest.raises(BusyError) as caught, again:
            pass  # pragma: no cover
        assert str(caught.value) == f"another scheduler is running (lock {path}); stop it first"
    for error in (ValueError, KeyboardInterrupt):
        with pytest.raises(error), locks.file_lock(path, "scheduler", "stop it first"):
            raise error("stop")
        with locks.file_lock(path, "scheduler", "stop it first"):
            pass


def test_file_lock_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    lock = locks.file_lock(tmp_path / "file" / "run.lock", "scheduler", "stop it first")
    with pytest.raises(DigestError) as caught, lock:
        pass  # pragma: no cover
    assert str(caught.value).startswith(f"cannot create the lock file {tmp_path / 'file'}")


def test_stores_sharing_a_database_do_not_block_each_other(database_url: str) -> None:
    """Two stores in one PostgreSQL database (a schema each) send the same digest at once."""
    if not database_url.startswith("postgresql"):
        pytest.skip("only PostgreSQL's advisory locks are database-wide")
    admin = create_engine(PG_URL)
    other = f"t_other_{uuid.uuid4().hex[:12]}"  # unique on a server other suites share
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {other}"))
    try:
        with (
            db.opened(database_url) as first,
            db.opened(
                f"{PG_URL}?application_name={other}&options=-csearch_path%3D{other}"
            ) as second,
            locks.send_lock(first, "daily"),
            locks.send_lock(second, "daily"),  # another store: not busy
            pytest.raises(BusyError),
            locks.send_lock(first, "daily"),  # the same store: busy
        ):
            pass
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {other} CASCADE"))
        admin.dispose()
