"""One issue through several senders: processes on this machine (``digest send --workers N``)
and ``digest worker`` on other machines, all against one PostgreSQL store.

``digest send`` enrols the issue's audience into the send ledger and writes each variant's
browser page; each sender then claims ledger rows in batches (deliver.Ledger: ``SELECT …
FOR UPDATE SKIP LOCKED``, a lease on each claim), renders each variant once and sends over
its own SMTP connection. Any worker may die at any time: its claims pass to the others when
their lease ends (at once when it was a process of this machine), so only the message it had
in flight may arrive twice. SQLite stays single-sender.
"""

from __future__ import annotations

import multiprocessing
import secrets
import signal
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from queue import Empty
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from digest import db, deliver, pipeline, render, selection
from digest.errors import ConfigError, DeliveryError, DigestError, StoppedError
from digest.models import Issue
from digest.schema import sends
from digest.settings import Settings

_PROGRESS_EVERY = 0.25  # seconds between a worker's progress reports to `digest send`
_STOP_WAIT = 10.0  # seconds a worker has to give its claims back once told to stop


def check_store(engine: Engine) -> None:
    """Several senders need PostgreSQL: raise ConfigError on any other store."""
    if engine.dialect.name != "postgresql":
        raise ConfigError(
            "more than one sender needs a PostgreSQL database_url: SQLite stays "
            "single-sender (one `digest send` at a time); set send_workers = 1, or move the "
            "store to PostgreSQL"
        )


def deliver_issue(
    engine: Engine,
    settings: Settings,
    issue: Issue,
    issue_id: int,
    *,
    workers: int,
    now: datetime,
    sender: deliver.Sender | None = None,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[int], None] | None = None,
    retry_failed: bool = False,
    still_locked: Callable[[], bool] | None = None,
) -> deliver.DeliveryReport:
    """A real send of a claimed issue: enrol its audience, write its variants' pages, then
    send as one sender in this process (``sender``, else the settings' relay) or through
    ``workers`` processes, and report what they all did."""
    enrolled = deliver.enroll(
        engine, issue, issue_id, variant=selection.variant, max_articles=settings.max_articles,
        now=now, retry_failed=retry_failed,
    )  # fmt: skip
    the_look = pipeline.look(settings)
    for tags, _articles, _recipients in enrolled.variants:
        chosen = selection.variant(issue, tags, settings.max_articles)
        pipeline.write_variant_page(settings.outbox_dir, chosen, the_look)
    advance = progress or (lambda _n: None)
    advance(enrolled.already_sent + enrolled.failed_earlier + enrolled.empty)
    if workers == 1:
        if sender is None:
            sender = pipeline.sender_for(settings, issue.date, dry_run=False)
        one = _work(
            engine, settings, issue, issue_id, now=now, sender=sender, sleep=sleep,
            progress=advance, still_locked=still_locked,
        )  # fmt: skip
        done = [one]
    elif deliver.unsent(engine, issue_id):
        done, run = _in_processes(settings, issue.date, workers, advance, still_locked)
        # Counted in the ledger, so a worker that died counts what it sent before.
        done = [deliver.counted_in_ledger(engine, issue_id, run, done)]
    else:
        done = []
    return deliver.report_of(
        issue, enrolled, done, unsent=deliver.unsent(engine, issue_id),
        sent_in_all=deliver.sent_in_all(engine, issue_id),
    )  # fmt: skip


def work_on(
    settings: Settings,
    *,
    now: datetime,
    issue_date: date | None = None,
    wait: float = 0.0,
    progress: Callable[[int], None] | None = None,
    name: str | None = None,
) -> tuple[date, deliver.WorkReport]:
    """``digest worker``: help send the issue of ``issue_date`` that a ``digest send`` has
    enrolled (waiting up to ``wait`` seconds for it), until no recipient is left."""
    day = pipeline.issue_date_of(settings, now, issue_date)
    with db.opened(settings.database_url) as engine:
        check_store(engine)
        deadline = time.monotonic() + wait
        while (found := _enrolled(engine, settings, day)) is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeliveryError(
                    f"issue {day} of digest {settings.digest_name!r} is not being sent: no "
                    "`digest send` has enrolled its audience yet; start it, or give "
                    "`--wait SECONDS`"
                )
            time.sleep(min(left, 2.0))
        issue_id, issue = found
        return day, _work(
            engine, settings, issue, issue_id, now=now,
            sender=pipeline.sender_for(settings, day, dry_run=False), progress=progress,
            name=name,
        )  # fmt: skip


def _enrolled(engine: Engine, settings: Settings, day: date) -> tuple[int, Issue] | None:
    """The claimed issue of ``day`` once its ledger has rows, else None."""
    found = selection.claimed(engine, settings.digest_name, day)
    if found is None:
        return None
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(func.count()).select_from(
                    select(sends.c.email).where(sends.c.issue_id == found[0]).limit(1).subquery()
                )
            ).scalar_one()
    except SQLAlchemyError as exc:
        raise DeliveryError(f"cannot read the send ledger: {db.reason(exc)}") from exc
    return found if rows else None


def _work(
    engine: Engine,
    settings: Settings,
    issue: Issue,
    issue_id: int,
    *,
    now: datetime,
    sender: deliver.Sender,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[int], None] | None = None,
    still_locked: Callable[[], bool] | None = None,
    name: str | None = None,
) -> deliver.WorkReport:
    the_look = pipeline.look(settings)
    return deliver.work(
        engine,
        issue,
        issue_id,
        render=lambda chosen: render.render_email(chosen, the_look),
        variant=selection.variant,
        info=pipeline.mail_info(settings),
        sender=sender,
        now=now,
        sleep=sleep,
        retries=settings.smtp_retries,
        progress=progress,
        lease=settings.send_lease,
        still_locked=still_locked,
        name=name,
    )


def _in_processes(
    settings: Settings,
    day: date,
    workers: int,
    advance: Callable[[int], None],
    still_locked: Callable[[], bool] | None,
) -> tuple[list[deliver.WorkReport], str]:
    """Run ``workers`` worker processes on the enrolled issue of ``day``: their reports, and
    the run's name, which each worker's claims carry (``deliver.counts_of_run``). A worker
    that died has no report (the others took its claims over); one that stopped with an
    error stops the send with it once all are done.

    The workers ignore Ctrl-C: when the send stops (Ctrl-C, a shutdown, the lock lost) it
    tells them to, and each stops between two messages, its message in flight marked, so
    stopping them costs no copy twice."""
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no shared sockets
    queue: Any = context.Queue()
    stop: Any = context.Event()
    run = secrets.token_hex(4)
    processes = [
        context.Process(
            target=_child, args=(settings, day, n, run, queue, stop), name=f"digest-worker-{n}"
        )
        for n in range(workers)
    ]
    reports: dict[int, deliver.WorkReport] = {}
    errors: dict[int, str] = {}
    checked = time.monotonic()
    try:
        for process in processes:
            process.start()
        while True:
            if still_locked is not None and time.monotonic() - checked > settings.send_lease / 3:
                checked = time.monotonic()
                if not still_locked():
                    raise DeliveryError(
                        "delivery stopped: the send lock was lost (its database session "
                        "ended) and another `digest send` holds it now; it sends the rest"
                    )
            try:
                kind, n, value = queue.get(timeout=0.2)
            except Empty:
                if not any(p.is_alive() for p in processes):
                    break
                continue
            if kind == "sent":
                advance(value)
            elif kind == "done":
                reports[n] = value
            else:
                errors[n] = value
    except BaseException:
        _stop(processes, stop)
        raise
    for process in processes:
        process.join()
    if errors:
        n, error = min(errors.items())
        others = f" ({len(errors) - 1} more workers stopped too)" if len(errors) > 1 else ""
        raise DeliveryError(f"worker {n + 1} of {workers}: {error}{others}")
    return [reports[n] for n in sorted(reports)], run


def _stop(processes: list[Any], stop: Any) -> None:
    """Tell the workers to stop between two messages; kill those still at it after
    _STOP_WAIT (a relay that does not answer): their claims pass on as a dead worker's."""
    stop.set()
    deadline = time.monotonic() + _STOP_WAIT
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()


def _child(settings: Settings, day: date, n: int, run: str, queue: Any, stop: Any) -> None:
    """One worker process: send until the issue is done or ``stop`` is set; its report (or
    its one-line error) goes back on ``queue``, its progress every quarter second."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # `digest send` stops it (``stop``)
    pending, last = 0, time.monotonic()

    def progress(count: int) -> None:
        """After each recipient: report now and then, and stop when told to."""
        nonlocal pending, last
        pending += count
        if time.monotonic() - last >= _PROGRESS_EVERY:
            queue.put(("sent", n, pending))
            pending, last = 0, time.monotonic()
        if stop.is_set():
            raise StoppedError("stopped by `digest send` between two messages")

    named = db.named(settings.database_url, f"worker-{n + 1}")
    settings = settings.model_copy(update={"database_url": named})
    try:
        _, report = work_on(
            settings, now=datetime.now(UTC), issue_date=day, progress=progress,
            name=deliver.sender_name(f"{run}-{n + 1}"),
        )  # fmt: skip
    except DigestError as exc:
        queue.put(("error", n, str(exc)))
    else:
        queue.put(("sent", n, pending))
        queue.put(("done", n, report))
