"""``digest schedule``: the daily run at a local time, exactly once per issue date.

APScheduler 3 runs one cron job, ``scheduled_run``, from a SQLAlchemy job store
(``schedule_db``). The job is added only when not stored, else changed in place, so its pending
next run time survives a restart: a restart neither loses nor repeats a run. A run missed while
down still starts if at most ``misfire_grace_seconds`` late (APScheduler's default of 1 s would
drop it), missed runs coalesce into one, and a late run sends its scheduled day's issue.

Two guards make a run happen once per issue date: an exclusive ``flock`` next to the job store,
held for the scheduler's life, so a second scheduler fails at once; and an ``issue_runs(digest,
issue_date)`` row in the main database, claimed before sending, so an overlap, a ``--once``
alongside or a doubled hour sends once. The row ends ``done``, or ``failed`` when the run
raised or left recipients deferred. A failed run is run again by the next ``--once`` or the
next start within the grace time; ``--once --force`` also re-runs a ``done`` or stale
``running`` one. That is safe: the send ledger hands each subscriber one copy of an issue.

DST: the rule is cron in the digest's zone, so 07:00 local fires once a day, on the change days
too. Times between 01:00 and 04:00 local may be skipped or doubled: in spring a time that does
not exist fires an hour late, in autumn one that happens twice fires twice (the ``issue_runs``
claim makes the second a no-op).

SIGTERM or SIGINT stops the scheduler: a send in progress stops between two messages, its run
is marked failed, and the next start finishes it. A second signal acts as if none was caught.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from apscheduler.util import obj_to_ref, ref_to_obj
from sqlalchemy import ColumnElement, Connection, Engine, insert, select, true, update
from sqlalchemy.exc import ArgumentError, IntegrityError, SQLAlchemyError

from digest import db, pipeline, signals
from digest.errors import DigestError, ScheduleError, StoreError
from digest.locks import file_lock
from digest.pipeline import RunReport
from digest.schema import issue_runs
from digest.settings import Settings, load_settings

# Sends one issue: (settings, issue date, now) → its report; the job store keeps its name.
Runner = Callable[[Settings, date, datetime], RunReport]

_log = logging.getLogger("digest.schedule")


def job_id(settings: Settings) -> str:
    """The fixed id of the digest's daily job in the job store."""
    return f"digest-{settings.digest_name}"


def daily_trigger(settings: Settings) -> CronTrigger:
    """The cron rule of the daily run: ``schedule_time`` in the digest's zone."""
    hour, minute = settings.schedule_time.split(":")
    return CronTrigger(hour=int(hour), minute=int(minute), timezone=ZoneInfo(settings.timezone))


def next_runs(settings: Settings, *, now: datetime, count: int = 5) -> list[datetime]:
    """The next ``count`` run times from ``now``, in the digest's zone."""
    found = [_next_fire(settings, now)]
    while len(found) < count:
        found.append(_next_fire(settings, found[-1], after=True))
    return found[:count]


def fire_time(settings: Settings, now: datetime) -> datetime:
    """The latest scheduled run time at or before ``now``: the run a late start belongs to."""
    latest = _next_fire(settings, now - timedelta(days=2))  # a daily rule fires within 2 days
    while (fire := _next_fire(settings, latest, after=True)).astimezone(UTC) <= now:
        latest = fire
    return latest


def send_issue(settings: Settings, day: date, now: datetime) -> RunReport:
    """The real run: the pipeline of ``digest send`` over SMTP, stoppable between messages.
    It polls only the sources the scheduler's polls left unpolled for poll_interval (after a
    start, say): those keep the rest fresh, so a slow site does not hold up the send."""
    return pipeline.run(
        settings, now=now, issue_date=day, progress=signals.stop_between_messages, poll="stale"
    )


def poll_job(config: str | None) -> None:
    """The scheduler's poll of the sources by URL, every poll_interval beside the daily job
    (in its own thread: a slow site never delays the send). A source polled within half the
    interval (by the daily run, just before) is left for the next one."""
    try:
        settings = load_settings(Path(config) if config else None)
        now = datetime.now(UTC)
        with db.opened(settings.database_url) as engine:
            report = pipeline.poll_sources(
                engine, settings, now=now, stale_after=settings.poll_interval * 30.0
            )
    except DigestError as exc:
        _log.error("poll of the sources failed: %s", exc)
        return
    if report is None:
        return
    done = [p for p in report.polled if p.outcome != "waiting"]
    _log.info("polled %d sources: %d new articles, %d failed", len(done), report.new,
              len(report.failed))  # fmt: skip
    for one in report.failed:
        _log.warning("source %s: %s (%d in a row)", one.source.url, one.error,
                     one.state.errors_in_a_row)  # fmt: skip


def run_once(
    settings: Settings, *, now: datetime, force: bool = False, runner: Runner = send_issue
) -> RunReport | None:
    """Run today's issue now unless it ran already (None then); for cron and systemd timers.

    ``force`` also re-runs an issue whose run is recorded as done or still running.
    """
    with signals.shutting_down_on_signals():
        return _claimed_run(settings, pipeline.issue_date_of(settings, now), now, force, runner)


def scheduled_run(config: str | None, runner: str) -> RunReport | None:
    """The stored job (its arguments hold no secret): run the scheduled day's issue, once."""
    try:
        settings = load_settings(Path(config) if config else None)
        now = datetime.now(UTC)
        day = pipeline.issue_date_of(settings, fire_time(settings, now))
    except DigestError as exc:
        _log.error("scheduled run skipped: %s", exc)
        return None
    try:
        return _claimed_run(settings, day, now, False, ref_to_obj(runner))
    except DigestError:
        return None  # logged; the next start or `digest schedule --once` runs it again


def run_scheduler(
    settings: Settings,
    *,
    config: Path | None,
    stop: threading.Event | None = None,
    on_run: Callable[[RunReport | None], None] | None = None,
    runner: Runner = send_issue,
) -> None:
    """Run the daily job until ``stop`` is set or SIGTERM/SIGINT arrives.

    ``on_run`` gets each run's report (None when it was skipped or failed). ``runner`` must be
    importable by name: the job store keeps the name.
    """
    stop = stop or threading.Event()
    with (
        file_lock(lock_path(settings), "`digest schedule`", "stop it first"),
        signals.on_stop_signals(stop.set),
    ):
        retry = _failed_run_due(settings)
        scheduler = _scheduler(settings)
        scheduler.add_listener(_listener(settings, on_run), EVENT_JOB_EXECUTED | EVENT_JOB_MISSED)
        try:
            scheduler.start(paused=True)
            job = _ensure_job(scheduler, settings, config, runner)
        except SQLAlchemyError as exc:
            if scheduler.running:  # shut down paused, it would still run what is due: let go
                scheduler.remove_jobstore("default")
                scheduler.shutdown(wait=False)
            shown = db.shown_url(settings.schedule_db)
            raise ScheduleError(f"cannot use the job store {shown}: {db.reason(exc)}; "
                                "check schedule_db") from exc  # fmt: skip
        if retry is not None:
            _log.info("issue %s: its run failed; running it again now", retry)
            scheduler.add_job(job.func, id=f"{job.id}-retry", args=job.args, jobstore="memory")
        if pipeline.url_sources(settings):
            _add_polls(scheduler, settings, config)
        scheduler.resume()
        _log.info("digest %s: daily at %s %s; next run %s", settings.digest_name,
                  settings.schedule_time, settings.timezone, job.next_run_time)  # fmt: skip
        try:
            stop.wait()
        finally:
            signals.SHUTDOWN.set()  # a send in progress stops between two messages
            try:
                scheduler.shutdown(wait=True)
            finally:
                signals.SHUTDOWN.clear()


def _add_polls(scheduler: BackgroundScheduler, settings: Settings, config: Path | None) -> None:
    """The polls of the sources: now, then every poll_interval, each moved by up to a tenth
    of it at random (many digests started together do not hit a site together)."""
    every = settings.poll_interval * 60
    scheduler.add_job(
        poll_job,
        IntervalTrigger(seconds=every, jitter=every // 10),
        id=_poll_id(settings),
        args=(str(config) if config else None,),
        jobstore="memory",
        executor="polls",
        next_run_time=datetime.now(UTC),
    )


def _poll_id(settings: Settings) -> str:
    return f"{job_id(settings)}-poll"


def lock_path(settings: Settings) -> Path:
    """The scheduler's lock file: next to a SQLite job store, else in the temp folder."""
    if (path := _store_file(settings.schedule_db)) is not None:
        return path.with_suffix(".lock")
    return Path(tempfile.gettempdir()) / f"digest-schedule-{settings.digest_name}.lock"


def _claimed_run(
    settings: Settings, day: date, now: datetime, force: bool, runner: Runner
) -> RunReport | None:
    """Claim the issue date, run, and record how it ended; None when it is not ours to run."""
    digest = settings.digest_name
    started, ended = time.monotonic(), "failed"
    try:
        with db.opened(settings.database_url) as engine:
            status = _claim(engine, digest, day, now, force)
            if status is not None:
                _log.info("issue %s: already ran (%s); skipped, `--once --force` runs it again",
                          day, status)  # fmt: skip
                return None
            try:
                report = runner(settings, day, now)
                # Deferred recipients wait for a re-run, which only a failed run gets.
                ended = "failed" if report.delivery and report.delivery.deferred else "done"
            finally:
                seconds = time.monotonic() - started
                _finish(engine, digest, day, now + timedelta(seconds=seconds), ended)
    except BaseException as exc:
        seconds = time.monotonic() - started
        _log.error("issue %s: failed after %.1fs: %s", day, seconds, exc or type(exc).__name__)
        raise
    _log.info("%s in %.1fs", _summary(day, report), seconds)
    return report


def _claim(engine: Engine, digest: str, day: date, now: datetime, force: bool) -> str | None:
    """Take the run of ``day``: None when taken, else the status that stands in the way.

    An existing row is taken over only when it failed (or ``force``). The UNIQUE row and the
    conditional update let exactly one of two racing claims win.
    """
    row = {"started_at": db.utc_naive(now), "finished_at": None, "status": "running"}
    try:
        try:
            with engine.begin() as conn:
                conn.execute(insert(issue_runs).values(digest=digest, issue_date=day, **row))
            return None
        except IntegrityError:
            pass
        retry = true() if force else issue_runs.c.status == "failed"
        with engine.begin() as conn:
            taken = conn.execute(update(issue_runs).where(_key(digest, day), retry).values(row))
            return None if taken.rowcount == 1 else _status(conn, digest, day)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot claim the run of {day}: {db.reason(exc)}") from exc


def _finish(engine: Engine, digest: str, day: date, when: datetime, status: str) -> None:
    done = {"status": status, "finished_at": db.utc_naive(when)}
    try:
        with engine.begin() as conn:
            conn.execute(update(issue_runs).where(_key(digest, day)).values(done))
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot record the run of {day}: {db.reason(exc)}") from exc


def _failed_run_due(settings: Settings) -> date | None:
    """The issue date of the latest scheduled run if that run failed and is still in grace."""
    now = datetime.now(UTC)
    fired = fire_time(settings, now)
    if now - fired > timedelta(seconds=settings.misfire_grace_seconds):
        return None
    day = pipeline.issue_date_of(settings, fired)
    try:
        with db.opened(settings.database_url) as engine, engine.connect() as conn:
            status = _status(conn, settings.digest_name, day)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the run of {day}: {db.reason(exc)}") from exc
    return day if status == "failed" else None


def _status(conn: Connection, digest: str, day: date) -> str | None:
    found = conn.execute(select(issue_runs.c.status).where(_key(digest, day))).scalar()
    return None if found is None else str(found)


def _key(digest: str, day: date) -> ColumnElement[bool]:
    return (issue_runs.c.digest == digest) & (issue_runs.c.issue_date == day)


def _summary(day: date, report: RunReport) -> str:
    """The run's log line, e.g. ``issue 2026-11-27: 12 articles, 3 variants, 250 sent, …``."""
    if (d := report.delivery) is None:
        return f"issue {day}: no articles, nothing sent"
    counts = zip((d.articles, d.variants), ("article", "variant"), strict=True)
    shown = ", ".join(f"{n} {noun}{'s' * (n != 1)}" for n, noun in counts)
    return f"issue {day}: {shown}, {d.sent} sent, {d.failed_count} failed, {d.deferred} deferred"


def _scheduler(settings: Settings) -> BackgroundScheduler:
    if (path := _store_file(settings.schedule_db)) is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        jobs = SQLAlchemyJobStore(url=settings.schedule_db)
    except (ArgumentError, ImportError) as exc:
        raise ScheduleError(f"cannot use the job store: {exc}; check schedule_db") from exc
    return BackgroundScheduler(
        jobstores={"default": jobs, "memory": MemoryJobStore()},
        # One run after the other; the polls in a thread of their own, beside them.
        executors={"default": ThreadPoolExecutor(1), "polls": ThreadPoolExecutor(1)},
        job_defaults=_job_options(settings),
        timezone=ZoneInfo(settings.timezone),
    )


def _job_options(settings: Settings) -> dict[str, Any]:
    grace = settings.misfire_grace_seconds  # and runs missed while down coalesce into one
    return {"coalesce": True, "max_instances": 1, "misfire_grace_time": grace}


def _ensure_job(
    scheduler: BackgroundScheduler, settings: Settings, config: Path | None, runner: Runner
) -> Job:
    """The daily job: the stored one, changed in place (replacing it would lose a due run)."""
    ours = job_id(settings)
    for job in scheduler.get_jobs():
        if job.id != ours:  # the lock makes the store ours alone: an old digest's job
            _log.info("removed job %s from the job store: not this digest's", job.id)
            scheduler.remove_job(job.id)
    args = (str(config) if config else None, obj_to_ref(runner))
    trigger = daily_trigger(settings)
    job = scheduler.get_job(ours)
    if job is None:
        return scheduler.add_job(scheduled_run, trigger, id=ours, name=ours, args=args)
    if repr(job.trigger) != repr(trigger):  # the repr holds the fields and the zone
        job = scheduler.reschedule_job(ours, trigger=trigger)
    wanted = {"func": scheduled_run, "args": args, **_job_options(settings)}
    changes = {key: value for key, value in wanted.items() if getattr(job, key) != value}
    return scheduler.modify_job(ours, **changes) if changes else job


def _listener(
    settings: Settings, on_run: Callable[[RunReport | None], None] | None
) -> Callable[[JobExecutionEvent], None]:
    def on_event(event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            _log.warning("run of %s missed: more than misfire_grace_seconds (%d) late; "
                         "`digest schedule --once` sends today's issue",
                         event.scheduled_run_time, settings.misfire_grace_seconds)  # fmt: skip
        elif on_run is not None and event.job_id != _poll_id(settings):  # a run, not a poll
            on_run(event.retval)

    return on_event


def _next_fire(settings: Settings, start: datetime, *, after: bool = False) -> datetime:
    """The first run time at (or ``after``) ``start``, in the digest's zone.

    In UTC: Python adds and compares aware datetimes of one zone by wall clock, DST unaware.
    """
    utc = start.astimezone(UTC) + timedelta(seconds=1 if after else 0)
    fire: datetime = daily_trigger(settings).get_next_fire_time(None, utc)
    return fire.astimezone(UTC).astimezone(ZoneInfo(settings.timezone))  # 02:30 → 03:30 EDT


def _store_file(url: str) -> Path | None:  # None for a database server or in memory
    try:
        return db.sqlite_file(url)
    except (ArgumentError, ValueError) as exc:
        raise ScheduleError(f"bad job store URL: {exc}; check schedule_db") from exc
