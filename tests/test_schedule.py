"""The scheduler: run times across DST, downtime and misfires, the lock, one run per issue date."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from sqlalchemy import select

from digest import db, schedule, signals
from digest.errors import BusyError, DeliveryError, ScheduleError
from digest.models import Issue
from digest.pipeline import RunReport
from digest.schema import issue_runs
from digest.settings import Settings, load_settings

from .conftest import ROOT, SEEDS, Handler, write_config

NEW_YORK = ZoneInfo("America/New_York")

# What the fake runners saw: (issue date, now) of each run, in order.
seen: list[tuple[date, datetime]] = []
_seen_lock = threading.Lock()
_entered = threading.Event()
_released = threading.Event()


def record(settings: Settings, day: date, now: datetime) -> RunReport:
    """A runner that sends nothing and remembers that it ran."""
    with _seen_lock:
        seen.append((day, now))
    issue = Issue(settings.digest_name, day, now, now, ())
    return RunReport(issue, 0, (), None, False, None)


def record_until_released(settings: Settings, day: date, now: datetime) -> RunReport:
    """``record``, still running until ``_released`` is set (a racing claim comes meanwhile)."""
    _entered.set()
    assert _released.wait(20), "the racing run_once never returned"
    return record(settings, day, now)


def fail(settings: Settings, day: date, now: datetime) -> RunReport:
    """A runner whose relay is down."""
    with _seen_lock:
        seen.append((day, now))
    raise DeliveryError("cannot reach SMTP server 127.0.0.1:1; check smtp_host")


def until_stopped(settings: Settings, day: date, now: datetime) -> RunReport:
    """A runner mid-send: it reports progress until the scheduler stops it."""
    with _seen_lock:
        seen.append((day, now))
    _entered.set()
    deadline = time.monotonic() + 30
    sent = 0
    while time.monotonic() < deadline:
        signals.stop_between_messages(sent)
        sent += 1
        time.sleep(0.01)
    raise AssertionError("the shutdown did not stop the send within 30 s")


@pytest.fixture(autouse=True)
def _fresh_calls(caplog: pytest.LogCaptureFixture) -> None:
    seen.clear()
    _entered.clear()
    _released.clear()
    caplog.set_level(logging.INFO, logger="digest.schedule")
    # Its debug lines say when a pass over the due jobs is done (see _passes).
    caplog.set_level(logging.DEBUG, logger="apscheduler.scheduler")


def _wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def _logged(caplog: pytest.LogCaptureFixture, text: str) -> int:
    return sum(text in record.getMessage() for record in caplog.records)


def _passes(caplog: pytest.LogCaptureFixture) -> int:
    """APScheduler's finished passes over the due jobs: each submits all it found due, and
    the next comes only at the next run time, so after one the scheduler runs nothing more
    by itself (and its shutdown waits for what it submitted)."""
    done = ("Next wakeup is due at", "No jobs; waiting until a job is added")
    return sum(record.getMessage().startswith(done) for record in caplog.records)


# ---------------------------------------------------------------- run times


@pytest.mark.parametrize(
    ("day", "utc_hour"),
    [
        (date(2026, 11, 27), 12),  # an ordinary day (EST)
        (date(2026, 3, 8), 11),  # clocks go forward at 02:00: EDT from then on
        (date(2026, 11, 1), 12),  # clocks go back at 02:00: EST from then on
    ],
)
def test_the_daily_run_fires_once_at_seven_local(day: date, utc_hour: int) -> None:
    settings = Settings(timezone="America/New_York", schedule_time="07:00")
    midnight_before = datetime(day.year, day.month, day.day, tzinfo=NEW_YORK) - timedelta(days=1)
    runs = schedule.next_runs(settings, now=midnight_before, count=3)
    assert [r.date() for r in runs] == [day - timedelta(days=1), day, day + timedelta(days=1)]
    assert {(r.hour, r.minute) for r in runs} == {(7, 0)}
    assert runs[1].astimezone(UTC) == datetime(day.year, day.month, day.day, utc_hour, tzinfo=UTC)


def test_every_day_of_a_year_has_one_run() -> None:
    settings = Settings(timezone="America/New_York", schedule_time="07:00")
    runs = schedule.next_runs(settings, now=datetime(2026, 1, 1, tzinfo=NEW_YORK), count=365)
    assert [r.date() for r in runs] == [date(2026, 1, 1) + timedelta(days=n) for n in range(365)]
    assert {(r.hour, r.minute) for r in runs} == {(7, 0)}


def test_small_hours_shift_or_repeat_on_change_days() -> None:
    """What the module docstring warns of: a skipped hour fires late, a doubled one twice."""
    spring = Settings(timezone="America/New_York", schedule_time="02:30")
    runs = schedule.next_runs(spring, now=datetime(2026, 3, 8, tzinfo=NEW_YORK), count=1)
    assert runs[0].isoformat() == "2026-03-08T03:30:00-04:00"
    autumn = Settings(timezone="America/New_York", schedule_time="01:30")
    runs = schedule.next_runs(autumn, now=datetime(2026, 11, 1, tzinfo=NEW_YORK), count=3)
    assert [r.isoformat() for r in runs] == [
        "2026-11-01T01:30:00-04:00",
        "2026-11-01T01:30:00-05:00",
        "2026-11-02T01:30:00-05:00",
    ]


def test_a_late_run_belongs_to_its_scheduled_day() -> None:
    settings = Settings(timezone="America/New_York", schedule_time="23:00")
    after_midnight = datetime(2026, 11, 28, 1, 0, tzinfo=NEW_YORK)
    assert schedule.fire_time(settings, after_midnight).isoformat() == "2026-11-27T23:00:00-05:00"
    on_time = datetime(2026, 11, 27, 23, 0, tzinfo=NEW_YORK)
    assert schedule.fire_time(settings, on_time) == on_time


# ---------------------------------------------------------------- run_once and issue_runs


def _settings(tmp_path: Path, database_url: str | None = None, **extra: str) -> Settings:
    return load_settings(_config(tmp_path, database_url, **extra))


def _config(tmp_path: Path, database_url: str | None = None, **extra: str) -> Path:
    extra.setdefault("schedule_db", f'"sqlite:///{tmp_path / "var" / "schedule.db"}"')
    return write_config(tmp_path, database_url, **extra)


def _status(settings: Settings, day: date) -> str | None:
    with db.opened(settings.database_url) as engine, engine.connect() as conn:
        found = conn.execute(
            select(issue_runs.c.status).where(
                issue_runs.c.digest == settings.digest_name, issue_runs.c.issue_date == day
            )
        ).scalar_one_or_none()
    return None if found is None else str(found)


def test_two_run_once_at_the_same_time_run_the_issue_once(
    tmp_path: Path, database_url: str
) -> None:
    settings = _settings(tmp_path, database_url)
    with db.opened(database_url):
        pass  # an existing store: two first-ever connects would race to create the tables
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    start = threading.Barrier(2)
    results: list[RunReport | None] = []

    def once() -> None:
        start.wait()
        try:
            results.append(schedule.run_once(settings, now=now, runner=record_until_released))
        finally:
            _released.set()  # the first to return lets the one still running finish

    threads = [threading.Thread(target=once) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert seen == [(date(2026, 11, 27), now)]
    assert sorted(r is None for r in results) == [False, True]
    assert _status(settings, date(2026, 11, 27)) == "done"


def test_run_once_again_skips_unless_forced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(tmp_path)
    now = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
    assert schedule.run_once(settings, now=now, runner=record) is not None
    assert schedule.run_once(settings, now=now + timedelta(hours=3), runner=record) is None
    assert _logged(caplog, "issue 2026-11-27: already ran (done); skipped") == 1
    assert schedule.run_once(settings, now=now, force=True, runner=record) is not None
    assert len(seen) == 2
    assert _logged(caplog, "issue 2026-11-27: no articles, nothing sent in") == 2


def test_a_failed_run_is_recorded_and_run_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(tmp_path)
    now = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
    with pytest.raises(DeliveryError, match="cannot reach SMTP server"):
        schedule.run_once(settings, now=now, runner=fail)
    assert _status(settings, date(2026, 11, 27)) == "failed"
    assert _logged(caplog, "issue 2026-11-27: failed after") == 1
    assert schedule.run_once(settings, now=now, runner=record) is not None
    assert _status(settings, date(2026, 11, 27)) == "done"
    assert len(seen) == 2


def test_run_once_sends_the_pinned_issue_date(tmp_path: Path) -> None:
    settings = _settings(tmp_path, issue_date="2019-01-01")
    schedule.run_once(settings, now=datetime(2026, 11, 27, 7, 0, tzinfo=UTC), runner=record)
    assert [day for day, _ in seen] == [date(2019, 1, 1)]


# ---------------------------------------------------------------- the scheduler


@contextmanager
def _scheduler(
    caplog: pytest.LogCaptureFixture,
    settings: Settings,
    config: Path,
    runner: schedule.Runner = record,
) -> Iterator[list[RunReport | None]]:
    """``run_scheduler`` in a thread, started, until the block ends; yields its runs' reports."""
    started = _logged(caplog, "next run")
    stop = threading.Event()
    reports: list[RunReport | None] = []
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            schedule.run_scheduler(
                settings, config=config, stop=stop, on_run=reports.append, runner=runner
            )
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=serve)
    thread.start()
    _wait_for(lambda: _logged(caplog, "next run") > started or not thread.is_alive())
    try:
        yield reports
    finally:
        stop.set()
        thread.join(timeout=20)
    assert not thread.is_alive()
    if errors:
        raise errors[0]


def _fired_ago(
    caplog: pytest.LogCaptureFixture, tmp_path: Path, ago: timedelta, **extra: str
) -> tuple[Settings, Path, datetime]:
    """A config whose daily run was ``ago`` ago, and a job store that was down since before it.

    The scheduler ran earlier (its stored next run is then tomorrow); the test turns the
    stored next run back to today's, as if the process had stopped before it came.
    """
    fire = (datetime.now(UTC) - ago).replace(second=0, microsecond=0)
    config = _config(tmp_path, schedule_time=f'"{fire:%H:%M}"', **extra)
    settings = load_settings(config)
    turn_back(caplog, settings, config, fire)
    return settings, config, fire


def turn_back(
    caplog: pytest.LogCaptureFixture,
    settings: Settings,
    config: Path,
    fire: datetime,
    runner: schedule.Runner = record,
) -> None:
    """Start and stop the scheduler (its stored next run is then the day after ``fire``),
    then turn the stored next run back to ``fire``, as if the process had stopped before."""
    with _scheduler(caplog, settings, config, runner=runner):
        pass
    assert _stored_next_run(settings) == fire + timedelta(days=1)
    jobs = _job_store(settings)
    try:
        job = jobs.lookup_job(schedule.job_id(settings))
        job.next_run_time = fire
        jobs.update_job(job)
    finally:
        jobs.shutdown()


def _job_store(settings: Settings) -> SQLAlchemyJobStore:
    """The scheduler's job store, opened without a scheduler (one would run what is due)."""
    jobs = SQLAlchemyJobStore(url=settings.schedule_db)
    jobs.start(None, "default")
    return jobs


def _stored_next_run(settings: Settings) -> datetime | None:
    jobs = _job_store(settings)
    try:
        job = jobs.lookup_job(schedule.job_id(settings))
        return None if job is None else job.next_run_time
    finally:
        jobs.shutdown()


@pytest.mark.slow
def test_a_run_missed_by_a_restart_runs_once_within_the_grace(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings, config, fire = _fired_ago(caplog, tmp_path, timedelta(hours=1))
    passes = _passes(caplog)
    with _scheduler(caplog, settings, config) as reports:
        assert _wait_for(lambda: len(reports) == 1 and _passes(caplog) > passes)
    assert seen and [day for day, _ in seen] == [fire.date()]
    assert _stored_next_run(settings) == fire + timedelta(days=1)
    passes = _passes(caplog)
    with _scheduler(caplog, settings, config) as reports:  # and a further restart runs nothing
        assert _wait_for(lambda: _passes(caplog) > passes)
    assert len(seen) == 1 and reports == []


@pytest.mark.slow
def test_a_run_missed_beyond_the_grace_does_not_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings, config, fire = _fired_ago(caplog, tmp_path, timedelta(hours=7))
    assert settings.misfire_grace_seconds == 6 * 3600
    with _scheduler(caplog, settings, config) as reports:
        assert _wait_for(lambda: _logged(caplog, "misfire_grace_seconds (21600) late") == 1)
    assert seen == [] and reports == []
    assert _stored_next_run(settings) == fire + timedelta(days=1)


@pytest.mark.slow
def test_of_two_schedulers_started_at_once_one_fails_on_the_lock(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = _config(tmp_path)
    settings = load_settings(config)
    stop = threading.Event()
    start = threading.Barrier(2)
    failures: list[BusyError] = []

    def serve() -> None:
        start.wait()
        try:
            schedule.run_scheduler(settings, config=config, stop=stop, runner=record)
        except BusyError as exc:
            failures.append(exc)

    threads = [threading.Thread(target=serve) for _ in range(2)]
    for thread in threads:
        thread.start()
    assert _wait_for(lambda: len(failures) == 1)
    stop.set()
    for thread in threads:
        thread.join(timeout=20)
    lock = tmp_path / "var" / "schedule.lock"
    assert [str(e) for e in failures] == [
        f"another `digest schedule` is running (lock {lock}); stop it first"
    ]
    with _scheduler(caplog, settings, config):  # the lock is free again once the first one stopped
        pass


@pytest.mark.slow
def test_a_shutdown_stops_the_send_and_the_next_start_finishes_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings, config, fire = _fired_ago(caplog, tmp_path, timedelta(hours=1))
    with _scheduler(caplog, settings, config, runner=until_stopped) as reports:
        assert _entered.wait(10)
    assert reports == [None]
    assert _status(settings, fire.date()) == "failed"
    assert _logged(caplog, "send stopped by shutdown between two messages") == 1
    with _scheduler(caplog, settings, config) as reports:
        assert _wait_for(lambda: len(reports) == 1)
    assert [day for day, _ in seen] == [fire.date(), fire.date()]
    assert _status(settings, fire.date()) == "done"
    assert _logged(caplog, f"issue {fire.date()}: its run failed; running it again now") == 1


@pytest.mark.slow
def test_sigterm_stops_the_scheduler_and_frees_the_lock(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = _config(tmp_path)
    code = (
        "import logging, sys\n"
        "from pathlib import Path\n"
        "from digest import schedule, settings\n"
        "logging.basicConfig(level=logging.INFO, format='%(message)s')\n"
        "path = Path(sys.argv[1])\n"
        "schedule.run_scheduler(settings.load_settings(path), config=path)\n"
    )
    lines: list[str] = []
    with subprocess.Popen(
        [sys.executable, "-c", code, str(config)], cwd=ROOT, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stderr is not None
        reader = threading.Thread(target=lambda: lines.extend(process.stderr or ()))
        reader.start()
        try:
            assert _wait_for(lambda: any("next run" in line for line in lines), 30)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=20) == 0
        finally:
            process.kill()
            reader.join(timeout=10)
    assert "SIGTERM: stopping\n" in lines
    settings = load_settings(config)
    with _scheduler(caplog, settings, config):  # the lock is free
        pass


# ---------------------------------------------------------------- end to end


@pytest.mark.slow
def test_two_schedulers_and_run_once_send_the_issue_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, relay: Handler
) -> None:
    people = tmp_path / "subscribers.csv"
    people.write_text(
        "email,name,tags\nada@example.org,Ada,\nbob@example.org,Bob,\ncy@example.org,Cy,\n",
        encoding="utf-8",
    )
    settings, config, _ = _fired_ago(
        caplog,
        tmp_path,
        timedelta(hours=1),
        seeds_dir=f'"{SEEDS}"',
        outbox_dir=f'"{tmp_path / "outbox"}"',
        subscribers_file=f'"{people}"',
        issue_date="2019-01-01",
        window='"800d"',
        smtp_host='"127.0.0.1"',
        smtp_port=str(relay.port),
        smtp_timeout="10",
    )
    stop = threading.Event()
    start = threading.Barrier(2)
    reports: list[RunReport | None] = []
    failures: list[BusyError] = []

    def serve() -> None:
        start.wait()
        try:
            schedule.run_scheduler(settings, config=config, stop=stop, on_run=reports.append)
        except BusyError as exc:
            failures.append(exc)

    threads = [threading.Thread(target=serve) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        assert _wait_for(lambda: len(reports) == 1 and len(failures) == 1, 60)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    sent = reports[0]
    assert sent is not None and sent.delivery is not None
    assert (sent.issue.date, sent.delivery.sent) == (date(2019, 1, 1), 3)
    assert "another `digest schedule` is running" in str(failures[0])
    now = datetime.now(UTC)
    assert schedule.run_once(settings, now=now) is None  # and `--once` after it sends nothing
    assert relay.counts() == Counter(["ada@example.org", "bob@example.org", "cy@example.org"])
    assert _logged(caplog, "issue 2019-01-01: already ran (done); skipped") == 1


@pytest.mark.slow
def test_a_changed_run_time_reschedules_the_stored_job(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    now = datetime.now(UTC)
    for hour in ("05", "17"):
        config = _config(tmp_path, schedule_time=f'"{hour}:15"')
        settings = load_settings(config)
        with _scheduler(caplog, settings, config):
            pass
        assert _stored_next_run(settings) == schedule.next_runs(settings, now=now, count=1)[0]
    assert seen == []


def test_a_bad_job_store_is_one_clear_error(tmp_path: Path) -> None:
    settings = _settings(tmp_path, schedule_db='"nosuchdb://host/jobs"')
    with pytest.raises(ScheduleError) as caught:
        schedule.run_scheduler(settings, config=None, stop=threading.Event(), runner=record)
    assert str(caught.value) == (
        "cannot use the job store: Can't load plugin: sqlalchemy.dialects:nosuchdb; "
        "check schedule_db"
    )
