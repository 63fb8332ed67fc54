"""Several senders on one issue: claims with owners and leases, `digest send --workers N`
and `digest worker`, against a real SMTP relay; and what happens when a sender dies or
loses its database sessions."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.pool import NullPool

from digest import deliver
from digest.errors import DeliveryError
from digest.schema import sends

from .conftest import ROOT, Handler, run, seeds_config
from .factories import SEND_NOW as NOW
from .test_deliver import many_subscribers

pytestmark = pytest.mark.slow
# Several senders on one issue need PostgreSQL: these tests take only its store.
ON_POSTGRESQL = pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)


def _readers(count: int) -> list[str]:
    return [f"reader{n:05d}@example.org" for n in range(count)]


def _config(tmp_path: Path, relay: Handler, database_url: str, count: int, **extra: str) -> Path:
    path = tmp_path / "many.csv"
    path.write_text("email\n" + "".join(f"{r}\n" for r in _readers(count)), encoding="utf-8")
    return seeds_config(
        tmp_path, port=relay.port, database_url=database_url, subscribers_file=f'"{path}"',
        **extra,
    )  # fmt: skip


def _statuses(engine: Engine) -> Counter[str]:
    with engine.connect() as conn:
        return Counter(conn.execute(select(sends.c.status)).scalars())


class Clock:
    """A monotonic clock a test moves on."""

    def __init__(self) -> None:
        self.at = 1000.0

    def __call__(self) -> float:
        return self.at


def _enrolled(engine: Engine, tmp_path: Path) -> int:
    """The id of an issue whose ledger holds 250 readers, pending."""
    issue_id, issue = many_subscribers(engine, tmp_path)
    deliver.enroll(engine, issue, issue_id, variant=lambda i, _t, _m: i, max_articles=10, now=NOW)
    return issue_id


def _ledger(
    engine: Engine, issue_id: int, clock: Callable[[], float], **options: object
) -> deliver.Ledger:
    return deliver.Ledger(engine, issue_id, now=NOW, lease=30.0, clock=clock, **options)  # type: ignore[arg-type]


# ---------------------------------------------------------------- claims and leases


@ON_POSTGRESQL
def test_a_live_claim_is_never_handed_to_another_sender(engine: Engine, tmp_path: Path) -> None:
    """Two senders on one issue: each gets its own rows while both leases run; once one's
    lease has run out the other takes its rows over, and the first stops at its next
    renewal, and cannot mark a row it lost."""
    issue_id = _enrolled(engine, tmp_path)  # 250 readers
    first_clock, second_clock = Clock(), Clock()
    first = _ledger(engine, issue_id, first_clock)
    second = _ledger(engine, issue_id, second_clock)
    mine = first.claim(200)
    theirs = second.claim(200)
    assert len(mine) == 200 and len(theirs) == 50
    assert not {c.email for c in mine} & {c.email for c in theirs}
    assert second.claim(200) == []
    wait = second.others_live()
    assert wait is not None and 25 < wait <= 30  # the first's lease, 30 s, runs
    first.mark(mine[0].email, "sent", 1, None)

    second_clock.at += 31  # the first's lease has run out, as the second's clock says
    taken = second.claim(500)
    assert len(taken) == 199 and mine[0].email not in {c.email for c in taken}
    first_clock.at += 11  # a third of its lease: the first renews, and finds its rows gone
    with pytest.raises(DeliveryError, match="199 of this sender's claimed recipients were taken"):
        first.keep_alive()
    first.mark(mine[1].email, "sent", 1, None)  # written; its result is read next
    with pytest.raises(DeliveryError, match="taken over by another sender"):
        first.confirm()
    assert _statuses(engine) == Counter(sent=1, claimed=249)
    first.close()  # its marks' session, back to the pool before the engine goes


@ON_POSTGRESQL
def test_a_mark_whose_session_was_terminated_is_written_on_a_new_one(
    engine: Engine, tmp_path: Path
) -> None:
    """The marks go to the driver's cursor; a session the database ended still counts as
    lost (the mark runs once more on a new one), not as a failed send."""
    issue_id = _enrolled(engine, tmp_path)
    ledger = _ledger(engine, issue_id, Clock())
    first, second = ledger.claim(2)
    ledger.mark(first.email, "sent", 1, None)
    ledger.confirm()
    pid = ledger._marking().exec_driver_sql("SELECT pg_backend_pid()").scalar()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    ledger.mark(second.email, "sent", 1, None)
    ledger.close()
    assert _statuses(engine) == Counter(sent=2, pending=248)


@ON_POSTGRESQL
def test_a_mark_is_committed_before_its_result_is_read(engine: Engine, tmp_path: Path) -> None:
    """A mark is written to the database and its result read later (confirm): the database
    commits it by itself, so a sender that dies before reading it loses no mark."""
    issue_id = _enrolled(engine, tmp_path)
    ledger = _ledger(engine, issue_id, Clock())
    first = ledger.claim(2)[0]
    ledger.mark(first.email, "sent", 1, None)
    assert ledger._flight is not None  # not read yet
    deadline = time.monotonic() + 30
    while _statuses(engine)["sent"] < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _statuses(engine) == Counter(sent=1, claimed=1, pending=248)
    ledger.close()  # reads it


@ON_POSTGRESQL
def test_a_mark_in_flight_when_its_session_ends_is_written_on_a_new_one(
    engine: Engine, tmp_path: Path
) -> None:
    issue_id = _enrolled(engine, tmp_path)
    ledger = _ledger(engine, issue_id, Clock())
    first, second = ledger.claim(2)
    pid = ledger._marking().exec_driver_sql("SELECT pg_backend_pid()").scalar()
    ledger.mark(first.email, "sent", 1, None)  # written, its result not read yet
    with engine.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    ledger.confirm()
    ledger.mark(second.email, "sent", 1, None)
    ledger.close()
    assert _statuses(engine) == Counter(sent=2, pending=248)


@ON_POSTGRESQL
def test_a_mark_in_flight_when_all_the_senders_sessions_end_is_written_on_a_new_one(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    """Every session of the sender ended (its idle pooled ones too, as when an operator
    terminates them or the server fails over): the mark is run once more on a session that
    lives, not on the next dead one of the pool, and the sender goes on."""
    issue_id = _enrolled(engine, tmp_path)
    ledger = _ledger(engine, issue_id, Clock())
    first, second = ledger.claim(2)
    with engine.connect() as one, engine.connect() as two:  # idle in the pool after
        one.exec_driver_sql("SELECT 1")
        two.exec_driver_sql("SELECT 1")
    ledger.mark(first.email, "sent", 1, None)  # written, its result not read yet
    operator = create_engine(database_url, poolclass=NullPool)  # not one of the sender's
    with operator.connect() as conn:
        ended = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
                "application_name = current_setting('application_name') "
                "AND pid <> pg_backend_pid()"
            )
        ).scalar()
    assert ended is not None and ended >= 2  # the marks' session and an idle one at least
    ledger.confirm()
    ledger.mark(second.email, "sent", 1, None)
    ledger.close()
    assert _statuses(engine) == Counter(sent=2, pending=248)


@ON_POSTGRESQL
def test_a_renewed_lease_keeps_the_claims(engine: Engine, tmp_path: Path) -> None:
    issue_id = _enrolled(engine, tmp_path)
    first_clock, second_clock = Clock(), Clock()
    first = _ledger(engine, issue_id, first_clock)
    second = _ledger(engine, issue_id, second_clock)
    mine = first.claim(250)
    for _ in range(4):  # 4 × 12 s: past the first lease of 30 s, renewed each time
        first_clock.at += 12
        second_clock.at += 12
        first.keep_alive()
        assert second.claim(250) == []
    first.release_all()
    assert len(second.claim(250)) == len(mine)


def test_claims_of_a_sender_that_died_here_are_taken_at_once(
    engine: Engine, tmp_path: Path
) -> None:
    """A claim whose process is gone on this machine waits for no lease (SQLite: any claim
    left is a dead run's; PostgreSQL: its name says so)."""
    issue_id = _enrolled(engine, tmp_path)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    name = deliver.sender_name().rsplit("/", 2)[0] + f"/{gone.stdout.strip()}/dead"
    dead = _ledger(engine, issue_id, Clock(), name=name)
    assert len(dead.claim(100)) == 100
    alive = _ledger(engine, issue_id, Clock())
    assert len(alive.claim(250)) == 250
    assert alive.others_live() is None


# ---------------------------------------------------------------- workers


@ON_POSTGRESQL
def test_workers_deliver_one_issue_each_recipient_once(
    tmp_path: Path, relay: Handler, database_url: str, engine: Engine
) -> None:
    config = _config(tmp_path, relay, database_url, 700)
    sent = run("send", "--workers", "3", config=config)
    assert sent.exit_code == 0, sent.output
    assert "700 of 700 recipients sent" in sent.output
    assert relay.counts() == Counter(_readers(700))
    assert _statuses(engine) == {"sent": 700}
    again = run("send", "--workers", "3", config=config)
    assert again.exit_code == 0, again.output
    assert "0 of 700 recipients sent" in again.output and "700 already sent" in again.output
    assert sum(relay.counts().values()) == 700


@ON_POSTGRESQL
def test_a_worker_on_another_machine_joins_the_send(
    tmp_path: Path, relay: Handler, database_url: str, engine: Engine
) -> None:
    """`digest worker` waits for the issue, then shares it with the `digest send` running."""
    config = _config(tmp_path, relay, database_url, 400)
    relay.delay = 0.005  # 5 ms a message: the send lasts long enough to share
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    digest = [sys.executable, "-m", "digest", "--config", str(config)]
    worker = subprocess.Popen(
        [*digest, "worker", "--wait", "60"], cwd=ROOT, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        sent = run("send", config=config)
        out, err = worker.communicate(timeout=120)
    finally:
        worker.kill()
    assert sent.exit_code == 0, sent.output
    assert worker.returncode == 0, err
    assert relay.counts() == Counter(_readers(400))
    by_worker = int(out.split(": ", 1)[1].split(" sent", 1)[0])
    assert f"{400 - by_worker} of 400 recipients sent" in sent.output
    with engine.connect() as conn:
        senders = set(conn.execute(select(sends.c.claimed_by)).scalars())
    assert len(senders) == (2 if by_worker else 1)


def test_sqlite_stays_single_sender(tmp_path: Path, relay: Handler) -> None:
    config = _config(tmp_path, relay, f"sqlite:///{tmp_path / 'store.db'}", 5)
    for args in (("send", "--workers", "2"), ("worker",)):
        refused = run(*args, config=config)
        assert refused.exit_code == 1
        assert refused.output.startswith(
            "Error: more than one sender needs a PostgreSQL database_url: SQLite stays "
            "single-sender"
        ), refused.output
    assert relay.accepted == []


# ---------------------------------------------------------------- dying and cut off


def _pids_of_children(parent: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            found.append(int(stat.parent.name))
    return found


def _terminate(engine: Engine, application_name: str) -> int:
    with engine.connect() as conn:
        return len(
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = :name AND pid <> pg_backend_pid()"
                ),
                {"name": application_name},
            ).all()
        )


@ON_POSTGRESQL
def test_a_worker_killed_and_one_cut_off_lose_nobody(
    tmp_path: Path, relay: Handler, database_url: str, engine: Engine
) -> None:
    """4 workers: one is killed (SIGKILL) at a random point, another has its database
    sessions terminated; everyone gets the issue, and no more than the killed worker's
    message in flight twice."""
    count = 3000
    config = _config(tmp_path, relay, database_url, count, send_lease="5")
    relay.delay = 0.001
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    send = subprocess.Popen(
        [sys.executable, "-m", "digest", "--config", str(config), "send", "--workers", "4"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    schema = database_url.split("application_name=", 1)[1].split("&", 1)[0]
    kill_at, cut_at = random.randint(300, 1200), random.randint(1300, 2000)
    killed = cut = 0
    try:
        deadline = time.monotonic() + 180
        while send.poll() is None and time.monotonic() < deadline:
            done = len(relay.accepted)
            if not killed and done >= kill_at:
                workers = [p for p in _pids_of_children(send.pid) if "spawn_main" in _cmdline(p)]
                if len(workers) == 4:
                    killed = random.choice(workers)
                    os.kill(killed, signal.SIGKILL)
            if killed and not cut and done >= cut_at:
                cut = _terminate(engine, f"{schema}/worker-{random.randint(1, 4)}")
            time.sleep(0.01)
        out, err = send.communicate(timeout=60)
    finally:
        send.kill()
    assert send.returncode == 0, out + err
    assert killed, "no worker was killed"
    # Counted by the ledger: what the killed worker sent before it died is in the sum.
    assert f"{count} of {count} recipients sent" in out, out
    counts = relay.counts()
    assert set(counts) == set(_readers(count))
    assert sum(counts.values()) - count <= 1, out + err
    assert _statuses(engine) == {"sent": count}


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


@ON_POSTGRESQL
def test_a_send_whose_lock_session_dies_doubles_nobody(
    tmp_path: Path, relay: Handler, database_url: str, engine: Engine
) -> None:
    """The send lock's session is terminated mid-send and a second `digest send` takes the
    lock: neither sends a row the other holds (before claims had owners, 1,559 of 2,000
    got two copies)."""
    count = 1500
    config = _config(tmp_path, relay, database_url, count, send_lease="6")
    relay.delay = 0.002
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "digest", "--config", str(config), "send"]
    first = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)  # fmt: skip
    second = None
    try:
        deadline = time.monotonic() + 120
        while len(relay.accepted) < 200:
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.01)
        with engine.connect() as conn:
            ended = conn.execute(
                text(
                    "SELECT pg_terminate_backend(l.pid) FROM pg_locks l "
                    "JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND a.application_name = :name"
                ),
                {"name": database_url.split("application_name=", 1)[1].split("&", 1)[0]},
            ).all()
        assert len(ended) == 1
        second = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)  # fmt: skip
        outs = [p.communicate(timeout=120) for p in (first, second)]
    finally:
        for p in (first, second):
            if p is not None:
                p.kill()
    # Both may finish (each claims only rows nobody holds), or the first stops at its next
    # check of the lock, giving back what it held; a third run then sends what is left.
    assert second.returncode == 0, outs
    assert first.returncode == 0 or "the send lock was lost" in outs[0][1], outs
    if _statuses(engine) != {"sent": count}:
        assert run("send", config=config).exit_code == 0
    counts = relay.counts()
    assert set(counts) == set(_readers(count))
    assert sum(counts.values()) - count <= 1, outs  # the first's message in flight, at most
    assert _statuses(engine) == {"sent": count}


def test_a_sender_that_lost_its_lock_stops_before_the_next_message(
    engine: Engine, tmp_path: Path
) -> None:
    issue_id = _enrolled(engine, tmp_path)
    locked = [True]
    clock = Clock()
    ledger = _ledger(engine, issue_id, clock, still_locked=lambda: locked[0])
    claimed = ledger.claim(10)
    clock.at += 11
    ledger.keep_alive()  # renewed: still locked
    locked[0] = False
    clock.at += 11
    with pytest.raises(DeliveryError, match="the send lock was lost"):
        ledger.keep_alive()
    ledger.release_all()
    assert _statuses(engine)["pending"] == 250 and len(claimed) == 10


@ON_POSTGRESQL
def test_ctrl_c_stops_the_workers_between_two_messages(
    tmp_path: Path, relay: Handler, database_url: str, engine: Engine
) -> None:
    """Ctrl-C reaches `digest send` and its workers alike (one process group): the workers
    wait for the send to tell them, and each stops after its message in flight is marked,
    so the run that finishes the issue sends nobody a second copy."""
    count = 1500
    config = _config(tmp_path, relay, database_url, count)
    relay.delay = 0.002
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    send = subprocess.Popen(
        [sys.executable, "-m", "digest", "--config", str(config), "send", "--workers", "3"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while len(relay.accepted) < 300:
            assert send.poll() is None and time.monotonic() < deadline, send.communicate()
            time.sleep(0.01)
        os.killpg(send.pid, signal.SIGINT)
        out, err = send.communicate(timeout=60)
    finally:
        send.kill()
    assert send.returncode == 130, out + err
    assert len(relay.accepted) < count
    again = run("send", config=config)
    assert again.exit_code == 0, again.output
    assert relay.counts() == Counter(_readers(count))
    assert _statuses(engine) == {"sent": count}
