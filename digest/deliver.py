"""Deliver an issue: one message per subscriber, one rendering per variant, a send ledger.

A real send first enrols the issue's audience into its ledger (one 'pending' row per
subscriber to reach), then one sender or many (processes, machines) claim the rows in
batches, each claim with its sender's name and a lease, and mark each row once the relay
took its message. Rows come in tag-set order, so each sender renders each variant and makes
it a MIME template once; a recipient's message is that template's bytes joined around their
own To, Message-ID and unsubscribe values. A dry run streams the subscribers instead and
writes no ledger. The senders (SMTP, and the outbox for dry runs) are in digest.smtp, the
message template in digest.message.
"""

from __future__ import annotations

import os
import re
import secrets
import select as select_module
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count, groupby, islice
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast, runtime_checkable

from sqlalchemy import (
    ColumnElement,
    Connection,
    DateTime,
    Engine,
    Row,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.sql.util import ClauseAdapter

from digest.db import ANALYZE_AFTER, SQLITE_SYNCHRONOUS, analyze, reason, utc_naive
from digest.errors import DeliveryError, PermanentSendError, TransientSendError
from digest.message import MailInfo, Template
from digest.models import Issue, Subscriber
from digest.render import Email, counted
from digest.schema import sends
from digest.schema import subscribers as subscriber_table

_T = TypeVar("_T")
DEFAULT_LEASE = 120.0  # seconds a claim holds unless renewed (the send_lease setting)
_CLAIM_BATCH = 200
_TEMPLATES_KEPT = 64  # variants a sender keeps rendered (rows come in tag-set order)
_FAILED_SHOWN = 100
_MAX_BACKOFF = 60.0
_GIVE_UP_AFTER = 3  # recipients in a row whose retries all failed: the server is down
# Recipients in a row refused alike: the relay refuses everyone (a bad login, a policy, a
# blocked IP, a quota reached mid-run), not the addresses. Never for RFC 3463's per-mailbox
# classes (5.1.x bad address, 5.2.x mailbox full or disabled), nor for a recipient already
# left deferred by such a stop (refused again, it is failed for good: no run stops on it).
_SAME_REFUSALS = 3
_MAILBOX_CLASS = re.compile(r"^\d{3}[ -]5\.[12]\.\d{1,3}\b")
_ANGLE = re.compile(r"<[^>]*>")
_MARK_NAMES = count()  # each Ledger's own name for its prepared mark (PostgreSQL)


class Sender(Protocol):
    """Hands one message to the mail system; raises TransientSendError or PermanentSendError."""

    def send(self, sender: str, recipient: str, message: bytes) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class VariantAware(Protocol):
    """A sender that wants to know where each variant's run of recipients starts."""

    def begin_variant(self, tags: frozenset[str], articles: int) -> None: ...


@runtime_checkable
class ConfirmAware(Protocol):
    """A sender that calls ``confirm()`` at the last moment before a message is the relay's
    (SMTP: before the final dot) and hands nothing over when it raises, so the ledger's mark
    of the message before is confirmed while this one's envelope travels."""

    def send_confirmed(
        self, sender: str, recipient: str, message: bytes, confirm: Callable[[], None]
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class VariantReport:
    """One tag set's share of a delivery (an empty tag set is the whole issue)."""

    tags: frozenset[str]
    articles: int
    recipients: int
    sent: int
    bytes: int


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What one delivery did. ``failed`` lists the first refused addresses with the reply."""

    articles: int  # in the whole issue
    variants: int  # tag sets rendered (each once)
    empty_variants: int  # tag sets none of the issue's articles match: nothing sent
    recipients: int  # subscribers considered
    sent: int  # messages handed over this run
    skipped_already_sent: int  # sent (or refused for good) by an earlier run
    skipped_empty: int  # subscribers of an empty variant
    deferred: int  # transient failures left for the next run
    failed: tuple[tuple[str, str], ...]  # (address, reply), at most 100
    failed_count: int  # every permanent failure of this run
    bytes: int  # of the messages handed over
    by_variant: tuple[VariantReport, ...] = ()  # the variants with articles, in send order
    failed_earlier: int = 0  # refused for good by an earlier run, not retried this run
    unsent: int = 0  # left pending or claimed when the senders stopped (a worker died)
    left: int = 0  # unsubscribed or bounced while the issue went out: not sent
    sent_elsewhere: int = 0  # sent meanwhile by the senders of another send

    @property
    def unfinished(self) -> bool:
        """Some recipient of the issue has not got it: refused, now or before, deferred, or
        left unsent by a sender that died."""
        return bool(self.failed_count or self.deferred or self.failed_earlier or self.unsent)

    def summary(self, *, dry_run: bool = False) -> str:
        """One line for the operator."""
        if not self.articles:
            return "The issue has no articles: nothing sent."
        done = "written (dry run)" if dry_run else "sent"
        refused = f"{self.failed_count} refused"
        if self.failed_earlier:
            refused += (
                f", {self.failed_earlier} refused by an earlier run (`digest status` lists "
                "them; `digest send --retry-failed` once the cause is fixed)"
            )
        return (
            f"{self.sent} of {self.recipients} recipients {done} in "
            f"{counted(self.variants, 'variant')} ({self.bytes:,} bytes); "
            f"{self.skipped_already_sent} already sent, "
            f"{self.skipped_empty} with no matching articles, {self.deferred} deferred, "
            f"{refused}{self._unsent()}{self._elsewhere()}."
        )

    def _elsewhere(self) -> str:
        return (
            f"; {self.sent_elsewhere} sent meanwhile by another send" if self.sent_elsewhere else ""
        )

    def _unsent(self) -> str:
        if not self.unsent:
            return ""
        return (
            f"; {self.unsent} not sent yet: a sender stopped holding them (its claims last "
            "send_lease seconds); `digest send` again sends them"
        )


@dataclass(frozen=True, slots=True)
class LedgerStatus:
    """Where one issue's delivery stands (``digest status``)."""

    sent: int
    deferred: int
    failed: int
    claimed: int  # held by a sender that is still going, or was killed: sent again next run
    pending: int  # active subscribers the issue has not been tried for yet
    no_articles: int  # active subscribers whose tags match none of the issue's articles
    suppressed: int  # unsubscribed or bounced: never sent to
    failures: tuple[tuple[str, str], ...]  # (address, reply) of the first refused ones


def sender_name(run: str | None = None) -> str:
    """This process's name in the ledger's claims: host, boot, process id and a nonce (the
    name of its run, when given: ``counted_in_ledger``), so a claim of a process that died
    on this machine is known over at once."""
    return f"{_HOST}/{_BOOT}/{os.getpid()}/{run or secrets.token_hex(4)}"[:160]


def _dead_here(name: str) -> bool:
    """Whether ``name`` (a sender_name) is a process of this machine, this boot, that is
    gone. Another machine's, or one whose id is alive (maybe reused), is not known dead."""
    host, _, rest = name.partition("/")
    boot, _, rest = rest.partition("/")
    pid, _, _nonce = rest.partition("/")
    if (host, boot) != (_HOST, _BOOT) or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # alive, another user's
    return False


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()[:8]
    except OSError:
        return "-"


_HOST = socket.gethostname()[:64]
_BOOT = _boot_id()


@dataclass(frozen=True, slots=True)
class Enrolment:
    """An issue's audience, written into its ledger before anyone is sent to."""

    recipients: int  # active subscribers
    already_sent: int  # sent by an earlier run
    failed_earlier: int  # refused for good by an earlier run (not retried)
    empty: int  # subscribers of a tag set none of the issue's articles match
    empty_variants: int
    variants: tuple[tuple[frozenset[str], int, int], ...]  # (tags, articles, recipients)


@dataclass(slots=True)
class WorkReport:
    """What one sender did with the rows it claimed."""

    sent: int = 0
    deferred: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    failed_count: int = 0
    bytes: int = 0
    by_tags: dict[frozenset[str], tuple[int, int]] = field(default_factory=dict)  # sent, bytes
    skipped_empty: int = 0  # their tags changed to a set with no articles since enrolment
    left: int = 0  # unsubscribed or bounced since enrolment: not sent


def enroll(
    engine: Engine,
    issue: Issue,
    issue_id: int,
    *,
    variant: Callable[[Issue, frozenset[str], int], Issue],
    max_articles: int,
    now: datetime,
    retry_failed: bool = False,
) -> Enrolment:
    """Write a 'pending' ledger row for each active subscriber the issue has articles for
    and has not reached, and make the rows an earlier run left deferred (and, with
    ``retry_failed``, refused) pending again. Any number of senders then claim them."""
    active = subscriber_table.c.status == "active"
    key = sends.c.issue_id == issue_id
    try:
        with engine.begin() as conn:
            groups = conn.execute(
                select(subscriber_table.c.tags, func.count())
                .where(active)
                .group_by(subscriber_table.c.tags)
                .order_by(subscriber_table.c.tags)
            ).all()
            variants, empty_tags, empty = [], [], 0
            for tags_text, n in groups:
                tags = frozenset(tags_text.split())
                articles = len(variant(issue, tags, max_articles).articles)
                if articles:
                    variants.append((tags, articles, int(n)))
                else:
                    empty_tags.append(tags_text)
                    empty += int(n)
            again = ["deferred", "failed"] if retry_failed else ["deferred"]
            if retry_failed:  # refused before: its reply is no mark of an earlier stop
                conn.execute(
                    update(sends).where(key, sends.c.status == "failed").values(error=None)
                )
            conn.execute(
                update(sends)
                .where(key, sends.c.status.in_(again))
                .values(status="pending", claimed_by=None, lease_until=None)
            )
            enrolled = sends.alias("enrolled")
            conn.execute(
                insert(sends).from_select(
                    ["issue_id", "email", "tags", "status", "attempts", "updated_at"],
                    select(
                        literal(issue_id),
                        subscriber_table.c.email,
                        subscriber_table.c.tags,
                        literal("pending"),
                        literal(0),
                        literal(utc_naive(now), DateTime()),
                    ).where(
                        active,
                        subscriber_table.c.tags.not_in(empty_tags),
                        ~exists().where(
                            enrolled.c.issue_id == issue_id,
                            enrolled.c.email == subscriber_table.c.email,
                        ),
                    ),
                )
            )
            done: dict[str, int] = dict(
                conn.execute(
                    select(sends.c.status, func.count())
                    .join(subscriber_table, subscriber_table.c.email == sends.c.email)
                    .where(key, active, sends.c.status.in_(["sent", "failed"]))
                    .group_by(sends.c.status)
                ).all()
            )
    except SQLAlchemyError as exc:
        raise DeliveryError(f"cannot write the send ledger: {reason(exc)}") from exc
    recipients = sum(int(n) for _, n in groups)
    if recipients >= ANALYZE_AFTER:
        analyze(engine, sends.name)
    return Enrolment(
        recipients=recipients,
        already_sent=int(done.get("sent", 0)),
        failed_earlier=int(done.get("failed", 0)),
        empty=empty,
        empty_variants=len(empty_tags),
        variants=tuple(variants),
    )


def work(
    engine: Engine,
    issue: Issue,
    issue_id: int,
    *,
    render: Callable[[Issue], Email],
    variant: Callable[[Issue, frozenset[str], int], Issue],
    info: MailInfo,
    sender: Sender,
    now: datetime,
    sleep: Callable[[float], None] = time.sleep,
    retries: int = 5,
    progress: Callable[[int], None] | None = None,
    lease: float = DEFAULT_LEASE,
    clock: Callable[[], float] = time.monotonic,
    still_locked: Callable[[], bool] | None = None,
    name: str | None = None,
) -> WorkReport:
    """One sender's share of an enrolled issue: claim a batch of rows (in (tags, email)
    order, skipping what others hold), send each, mark each, renewing the lease while it
    works; until no row is pending and no other sender holds a live claim (a claim whose
    sender died is taken over once its lease ends). Each variant is rendered once. Stops
    with DeliveryError the moment its lease or lock is lost. Whatever way it stops, the rows
    it holds unmarked go back to pending: the one in flight may arrive twice. Closes
    ``sender``."""
    ledger = Ledger(
        engine, issue_id, now=now, lease=lease, clock=clock, still_locked=still_locked, name=name
    )
    run = _Run(sender, ledger, sleep, retries)
    advance = progress or (lambda _n: None)
    templates: dict[frozenset[str], Template | None] = {}
    try:
        while True:
            todo = ledger.claim(_CLAIM_BATCH)
            if not todo:
                wait = ledger.others_live()
                if wait is None:
                    break
                time.sleep(min(max(wait, 0.05), 1.0))
                advance(0)  # nothing sent: the caller's chance to stop it while it waits
                continue
            for row in todo:
                if row.tags not in templates:
                    if len(templates) >= _TEMPLATES_KEPT:
                        del templates[next(iter(templates))]
                    chosen = variant(issue, row.tags, info.max_articles)
                    templates[row.tags] = (
                        Template.build(render(chosen), chosen, info, now)
                        if chosen.articles
                        else None
                    )
                    if chosen.articles and isinstance(sender, VariantAware):
                        sender.begin_variant(row.tags, len(chosen.articles))
                template = templates[row.tags]
                if row.left or template is None:
                    ledger.release([row.email], drop=True)
                    run.report.left += row.left
                    run.report.skipped_empty += not row.left
                else:
                    run.second_try = row.second_try
                    run.send(template, row.email, row.tags)
                advance(1)
    except BaseException:
        ledger.release_all()
        raise
    finally:
        ledger.close()
        sender.close()
    return run.report


def unsent(engine: Engine, issue_id: int) -> int:
    """Rows of the issue no sender has finished: pending, or claimed by one still at it
    or dead (a later run sends them)."""
    return _rows_in(engine, issue_id, "pending", "claimed")


def sent_in_all(engine: Engine, issue_id: int) -> int:
    """The issue's ledger rows marked sent, by any sender, now."""
    return _rows_in(engine, issue_id, "sent")


def _rows_in(engine: Engine, issue_id: int, *statuses: str) -> int:
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).where(
                        sends.c.issue_id == issue_id, sends.c.status.in_(statuses)
                    )
                ).scalar_one()
            )
    except SQLAlchemyError as exc:
        raise DeliveryError(f"cannot read the send ledger: {reason(exc)}") from exc


def counted_in_ledger(
    engine: Engine, issue_id: int, run: str, works: Iterable[WorkReport]
) -> WorkReport:
    """The senders of ``run`` (``sender_name(f"{run}-K")``) as one: how many each status
    has by the ledger, which counts a sender that died too; the rest from ``works``."""
    done = _merged(works)
    mine = sends.c.claimed_by.contains(f"/{run}-", autoescape=True)
    try:
        with engine.connect() as conn:
            counts: dict[str, int] = dict(
                conn.execute(
                    select(sends.c.status, func.count())
                    .where(sends.c.issue_id == issue_id, mine)
                    .group_by(sends.c.status)
                ).all()
            )
    except SQLAlchemyError as exc:
        raise DeliveryError(f"cannot read the send ledger: {reason(exc)}") from exc
    done.sent = int(counts.get("sent", 0))
    done.deferred = int(counts.get("deferred", 0))
    done.failed_count = int(counts.get("failed", 0))
    return done


def report_of(
    issue: Issue,
    enrolled: Enrolment,
    works: Iterable[WorkReport],
    *,
    unsent: int = 0,
    sent_in_all: int | None = None,
) -> DeliveryReport:
    """One delivery's report: its enrolment and what its senders did (and, given how many
    the ledger holds sent in all, how many other senders sent meanwhile)."""
    done = _merged(works)
    elsewhere = 0
    if sent_in_all is not None:
        elsewhere = max(0, sent_in_all - enrolled.already_sent - done.sent)
    by_variant = tuple(
        VariantReport(tags, articles, recipients, *done.by_tags.get(tags, (0, 0)))
        for tags, articles, recipients in enrolled.variants
    )
    return DeliveryReport(
        articles=len(issue.articles),
        variants=len(enrolled.variants),
        empty_variants=enrolled.empty_variants,
        recipients=enrolled.recipients,
        sent=done.sent,
        skipped_already_sent=enrolled.already_sent,
        skipped_empty=enrolled.empty + done.skipped_empty,
        deferred=done.deferred,
        failed=tuple(done.failed),
        failed_count=done.failed_count,
        bytes=done.bytes,
        by_variant=by_variant,
        failed_earlier=enrolled.failed_earlier,
        unsent=unsent,
        left=done.left,
        sent_elsewhere=elsewhere,
    )


def _merged(works: Iterable[WorkReport]) -> WorkReport:
    done = WorkReport()
    for w in works:
        done.sent += w.sent
        done.deferred += w.deferred
        done.failed += w.failed[: _FAILED_SHOWN - len(done.failed)]
        done.failed_count += w.failed_count
        done.bytes += w.bytes
        done.skipped_empty += w.skipped_empty
        done.left += w.left
        for tags, (sent, size) in w.by_tags.items():
            was = done.by_tags.get(tags, (0, 0))
            done.by_tags[tags] = (was[0] + sent, was[1] + size)
    return done


def preview(
    issue: Issue,
    subscribers: Iterable[Subscriber],
    *,
    render: Callable[[Issue], Email],
    variant: Callable[[Issue, frozenset[str], int], Issue],
    info: MailInfo,
    sender: Sender,
    now: datetime,
    progress: Callable[[int], None] | None = None,
) -> DeliveryReport:
    """A dry run: each message of ``issue`` to ``subscribers`` (ordered by tags) handed to
    ``sender`` (the outbox writer), no ledger read or written. Closes ``sender``."""
    run = _Run(sender, None, time.sleep, 0)
    advance = progress or (lambda _n: None)
    variants: list[tuple[frozenset[str], int, int]] = []
    empty = empty_variants = recipients = 0
    try:
        for tags, group in groupby(subscribers if issue.articles else (), key=lambda s: s.tags):
            chosen = variant(issue, tags, info.max_articles)
            if not chosen.articles:
                skipped = sum(1 for _ in group)
                empty_variants += 1
                empty += skipped
                recipients += skipped
                advance(skipped)
                continue
            template = Template.build(render(chosen), chosen, info, now)
            if isinstance(sender, VariantAware):
                sender.begin_variant(tags, len(chosen.articles))
            n = 0
            for subscriber in group:
                run.send(template, subscriber.email, tags)
                n += 1
                advance(1)
            variants.append((tags, len(chosen.articles), n))
            recipients += n
    finally:
        sender.close()
    enrolled = Enrolment(recipients, 0, 0, empty, empty_variants, tuple(variants))
    return report_of(issue, enrolled, [run.report])


@dataclass(slots=True)
class _Run:
    """The hand-off of one message with its retries, and the counts of one sender."""

    sender: Sender
    ledger: Ledger | None
    sleep: Callable[[float], None]
    retries: int
    report: WorkReport = field(default_factory=WorkReport)
    given_up_in_a_row: int = 0
    # (address, reply, reply without the address) of the last refusals, none taken between
    refusals: list[tuple[str, str, str]] = field(default_factory=list)
    second_try: bool = False  # the recipient now sent was left deferred by an earlier run
    # sender.send_confirmed, when it has one (asked once: a Protocol check costs 10 µs)
    confirming: Callable[[str, str, bytes, Callable[[], None]], None] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.sender, ConfirmAware):
            self.confirming = self.sender.send_confirmed

    def send(self, template: Template, email: str, tags: frozenset[str]) -> None:
        """One recipient: hand-off with retries, then its ledger row."""
        report = self.report
        for attempt in range(1, self.retries + 2):
            try:
                message = template.fill(email)
                if self.ledger is None:
                    self.sender.send(template.envelope_from, email, message)
                elif self.confirming is not None:
                    self.ledger.keep_alive()
                    self.confirming(template.envelope_from, email, message, self.ledger.confirm)
                else:
                    self.ledger.keep_alive()
                    self.ledger.confirm()
                    self.sender.send(template.envelope_from, email, message)
            except PermanentSendError as exc:
                report.failed_count += 1
                self.given_up_in_a_row = 0
                if len(report.failed) < _FAILED_SHOWN:
                    report.failed.append((email, str(exc)))
                self._mark(email, "failed", attempt, str(exc))
                self._stop_if_relay_refuses(email, str(exc))
                return
            except TransientSendError as exc:
                if attempt <= self.retries:
                    self._pause(min(_MAX_BACKOFF, 2.0 ** (attempt - 1)))
                    continue
                report.deferred += 1
                self.given_up_in_a_row += 1
                self._mark(email, "deferred", attempt, str(exc))
                if self.given_up_in_a_row >= _GIVE_UP_AFTER:
                    raise DeliveryError(
                        f"delivery stopped: {self.given_up_in_a_row} recipients in a row failed "
                        f"after {self.retries} retries (last: {exc}); {report.sent} sent this "
                        "run, run `digest send` again later to send the rest"
                    ) from exc
                return
            report.sent += 1
            report.bytes += len(message)
            sent, size = report.by_tags.get(tags, (0, 0))
            report.by_tags[tags] = (sent + 1, size + len(message))
            self.given_up_in_a_row = 0
            self.refusals.clear()
            self._mark(email, "sent", attempt, None)
            return

    def _pause(self, seconds: float) -> None:
        """The backoff before a retry, the lease kept alive through it."""
        step = seconds if self.ledger is None else self.ledger.lease / 3
        while seconds > 0:
            if self.ledger is not None:
                self.ledger.keep_alive()
            self.sleep(min(seconds, step))
            seconds -= step

    def _stop_if_relay_refuses(self, email: str, reply: str) -> None:
        """Stop when recipients in a row were all refused with one reply: the relay refuses
        everyone, so they are left to send again (deferred), not failed."""
        if self.second_try or _MAILBOX_CLASS.match(reply):
            return
        shape = " ".join(_ANGLE.sub("", reply.replace(email, "")).casefold().split())
        if self.refusals and self.refusals[0][2] != shape:
            self.refusals.clear()
        self.refusals.append((email, reply, shape))
        if len(self.refusals) < _SAME_REFUSALS:
            return
        stopped = {address: refusal for address, refusal, _ in self.refusals}
        for address, refusal in stopped.items():
            self._mark(address, "deferred", 0, refusal)
        report = self.report
        report.failed_count -= len(stopped)
        report.deferred += len(stopped)
        report.failed = [f for f in report.failed if f[0] not in stopped]
        which = "first" if not report.sent else "last"
        raise DeliveryError(
            f"delivery stopped: the relay refused the {which} {len(stopped)} recipients alike "
            f"({reply}), so it refuses this sender, not the addresses; check smtp_user and "
            "smtp_password, the relay's policy for this host and from_address, its sending "
            f"quota, and whether it blocks this IP; {report.sent} sent this run, nobody was "
            "marked failed: run `digest send` again after the fix"
        )

    def _mark(self, email: str, status: str, attempts: int, error: str | None) -> None:
        if self.ledger is not None:
            self.ledger.mark(email, status, attempts, error)


@dataclass(frozen=True, slots=True)
class Claimed:
    """One ledger row a sender claimed, with its subscriber's tags as they are now."""

    email: str
    tags: frozenset[str]
    second_try: bool  # an earlier run left it deferred
    left: bool  # no longer an active subscriber: not sent


class Ledger:
    """One sender's hold on the ``sends`` rows of one issue.

    A claim writes this sender's name and a lease (the database's clock plus ``lease``
    seconds) on each row it takes; nobody else takes a row while its lease runs, unless its
    sender is known dead (a process of this machine that is gone) or the store is SQLite
    (single-sender: the send lock is its only sender's, so a claim left is a dead run's).
    The lease is renewed while the sender works, and the sender stops (DeliveryError)
    before the next hand-off once it cannot be sure it holds its rows: the lock is lost, or
    a renewal fails or finds rows taken over. A mark writes only a row this sender still
    holds.
    """

    def __init__(
        self,
        engine: Engine,
        issue_id: int,
        *,
        now: datetime,
        lease: float = DEFAULT_LEASE,
        clock: Callable[[], float] = time.monotonic,
        still_locked: Callable[[], bool] | None = None,
        name: str | None = None,
    ) -> None:
        self._engine = engine
        self._key = sends.c.issue_id == issue_id
        self._now = utc_naive(now)
        self.lease = lease
        self._clock = clock
        self._exclusive = engine.dialect.name == "sqlite"
        self._still_locked = still_locked
        self.name = name or sender_name()
        self._held: set[str] = set()
        self._renew_at = 0.0
        self._base: tuple[datetime, float] | None = None  # the database's time, and ours then
        self._marks: Connection | None = None  # the marks' own session (``_marking``)
        self._cursor: Any = None  # its driver's cursor (SQLite), or libpq's connection
        self._postgres = engine.dialect.name == "postgresql"
        self._flight: tuple[str, Any] | None = None  # a mark written, its result not read
        self._pending: dict[int, Any] = {}  # the claim of pending rows, by size (``_take``)
        # A mark is one statement, compiled once and run by the driver on a session in
        # autocommit: one round trip to the database a recipient, no COMMIT after it. On
        # PostgreSQL it is a prepared statement of libpq's, its parameters as text.
        dialect: Any = engine.dialect
        if self._postgres:  # $1, $2 … as libpq takes them
            dialect = cast(Any, postgresql.psycopg).dialect(paramstyle="numeric_dollar")
        mark_row = (
            update(sends)
            .where(
                sends.c.issue_id == bindparam("m_issue"),
                sends.c.email == bindparam("m_email"),
                sends.c.claimed_by == bindparam("m_by"),
            )
            .values(
                status=bindparam("m_status"),
                attempts=sends.c.attempts + bindparam("m_attempts"),
                error=bindparam("m_error"),
                updated_at=bindparam("m_at", type_=sends.c.updated_at.type),
                lease_until=null(),
            )
            .compile(dialect=dialect)
        )
        self._mark_sql = mark_row.string
        self._mark_name = f"digest_mark_{next(_MARK_NAMES)}".encode()
        self._encoding = "utf-8"  # the marks' session's (PostgreSQL)
        self._mark_order = mark_row.positiontup if mark_row.positional else None
        self._mark_binds = {
            name: bind.type.bind_processor(engine.dialect) for name, bind in mark_row.binds.items()
        }
        self._mark_fixed = self._bound(m_issue=issue_id, m_by=self.name, m_at=self._now)

    def _db_now(self) -> datetime:
        """The database's clock, naive UTC: read once, then carried on by ours."""
        if self._base is None:
            at = self._clock()
            when = datetime.now(UTC).replace(tzinfo=None)
            if self._engine.dialect.name == "postgresql":
                with self._engine.connect() as conn:
                    when = conn.execute(text("SELECT now() AT TIME ZONE 'UTC'")).scalar_one()
            self._base = (when, at)
        when, at = self._base
        return when + timedelta(seconds=self._clock() - at)

    def claim(self, size: int) -> list[Claimed]:
        """Up to ``size`` rows to send, in (tags, email) order: claims left by dead senders or
        run out first, then pending rows; rows other senders are claiming are skipped."""
        self.confirm()
        started = self._clock()
        try:
            rows = _again_on_disconnect(lambda: self._claim(size))
        except SQLAlchemyError as exc:
            raise DeliveryError(f"cannot claim send-ledger rows: {reason(exc)}") from exc
        if rows:
            self._renewed(started)
        return rows

    def _claim(self, size: int) -> list[Claimed]:
        now = self._db_now()
        with self._engine.begin() as conn:
            over = self._over(conn, now)
            rows = [] if over is None else self._take(conn, size, now, over)
            if len(rows) < size:
                rows += self._take(conn, size - len(rows), now)
            if not rows:
                return []
            if self._postgres:  # read by the claim itself
                current = {r.email: r.current for r in rows if r.current is not None}
            else:  # SQLite runs a subquery in RETURNING by a scan: 12 times the claim
                current = dict(
                    conn.execute(
                        select(subscriber_table.c.email, subscriber_table.c.tags).where(
                            subscriber_table.c.email.in_([r.email for r in rows]),
                            subscriber_table.c.status == "active",
                        )
                    ).all()
                )
        self._held.update(r.email for r in rows)
        found = [
            Claimed(
                r.email,
                frozenset((current.get(r.email) or r.tags or "").split()),
                r.error is not None,
                r.email not in current,  # no active subscriber of that address now
            )
            for r in rows
        ]
        return sorted(found, key=lambda c: (sorted(c.tags), c.email))

    def _take(
        self, conn: Connection, size: int, now: datetime, over: ColumnElement[bool] | None = None
    ) -> list[Row[Any]]:
        """Claim up to ``size`` rows in (tags, email) order, skipping rows others are
        claiming, in one statement: pending rows, or with ``over`` claims that are over.
        On PostgreSQL each row comes with its subscriber's tags as they are now (None: not
        active). The statement for pending rows is built once (claims are taken all along a
        send)."""
        statement = self._pending.get(size) if over is None else None
        if statement is None:
            statement = self._taking(size, over)
            if over is None:
                self._pending[size] = statement
        until = now + timedelta(seconds=self.lease)
        return list(conn.execute(statement, {"c_until": until}).all())

    def _taking(self, size: int, over: ColumnElement[bool] | None) -> Any:
        queued = sends.alias("queued")  # the rows picked, apart from the rows updated
        on_queued = ClauseAdapter(queued).traverse
        which = (
            [sends.c.status == "pending"] if over is None else [sends.c.status == "claimed", over]
        )
        picked = (
            select(queued.c.email)
            .where(on_queued(self._key), *(on_queued(w) for w in which))
            .order_by(queued.c.tags, queued.c.email)
            .limit(size)
            .with_for_update(skip_locked=True)
            .cte("picked")  # locked and taken once, whatever plan the update gets
        )
        current = (  # the claimed row's subscriber as now (PostgreSQL: see ``_claim``)
            select(subscriber_table.c.tags)
            .where(subscriber_table.c.email == sends.c.email, subscriber_table.c.status == "active")
            .correlate(sends)
            .scalar_subquery()
            .label("current")
        )
        returned = (sends.c.email, sends.c.tags, sends.c.error)
        return (
            update(sends)
            .where(self._key, sends.c.email.in_(select(picked.c.email)))
            .values(
                status="claimed",
                claimed_by=self.name,
                lease_until=bindparam("c_until", type_=sends.c.lease_until.type),
                updated_at=self._now,
            )
            .returning(*returned, *((current,) if self._postgres else ()))
        )

    def _over(self, conn: Connection, now: datetime) -> ColumnElement[bool] | None:
        """Which claims of others are over: all on SQLite (one sender), else those whose
        lease ran out, whose sender is known dead, or that carry no name or lease (made by
        a digest older than claim names); None when no other sender holds a claim (the
        common case of one sender: nothing to take over, nothing to ask)."""
        others = or_(sends.c.claimed_by.is_(None), sends.c.claimed_by != self.name)
        if self._exclusive:
            return others
        claimers = conn.execute(
            select(sends.c.claimed_by).where(self._key, sends.c.status == "claimed").distinct()
        ).scalars().all()  # fmt: skip
        if all(c == self.name for c in claimers):
            return None
        dead = [c for c in claimers if c is not None and c != self.name and _dead_here(c)]
        return and_(
            others,
            or_(
                sends.c.lease_until.is_(None),
                sends.c.lease_until < now,
                sends.c.claimed_by.is_(None),
                sends.c.claimed_by.in_(dead),
            ),
        )

    def others_live(self) -> float | None:
        """Seconds until the first live claim of another sender runs out; None when no other
        sender holds one (the issue is done, bar what failed)."""
        if self._exclusive:
            return None
        self.confirm()
        try:
            with self._engine.connect() as conn:
                now = self._db_now()
                over = self._over(conn, now)
                if over is None:  # no other sender holds a claim
                    return None
                live = select(func.min(sends.c.lease_until)).where(
                    self._key,
                    sends.c.status == "claimed",
                    sends.c.claimed_by != self.name,
                    ~over,
                )
                first = conn.execute(live).scalar_one_or_none()
        except SQLAlchemyError as exc:
            raise DeliveryError(f"cannot read the send ledger: {reason(exc)}") from exc
        return None if first is None else (first - now).total_seconds()

    def keep_alive(self) -> None:
        """Before each hand-off: renew the lease when a third of it has gone; raise
        DeliveryError when this sender can no longer be sure it holds its rows."""
        at = self._clock()
        if at < self._renew_at:
            return
        self.confirm()
        if self._still_locked is not None and not self._still_locked():
            raise DeliveryError(
                "delivery stopped: the send lock was lost (its database session ended) and "
                "another `digest send` holds it now; it sends the rest"
            )
        try:
            renewed = _again_on_disconnect(self._renew)
        except SQLAlchemyError as exc:
            raise DeliveryError(
                f"delivery stopped: cannot renew this sender's lease: {reason(exc)}; run "
                "`digest send` again to send whatever is left"
            ) from exc
        if renewed < len(self._held):
            raise DeliveryError(
                f"delivery stopped: {len(self._held) - renewed} of this sender's claimed "
                "recipients were taken over by another sender after its lease ran out"
            )
        self._renewed(at)

    def _renew(self) -> int:
        if not self._held:
            return 0
        with self._engine.begin() as conn:
            done = conn.execute(
                update(sends)
                .where(self._key, sends.c.claimed_by == self.name, sends.c.status == "claimed")
                .values(lease_until=self._db_now() + timedelta(seconds=self.lease))
            )
        return int(done.rowcount)

    def _renewed(self, at: float) -> None:
        self._renew_at = at + self.lease / 3

    def release_all(self) -> None:
        """Give back every row this sender holds unmarked (it stops): pending again, but for
        the mark in flight, if the database wrote it."""
        with suppress(DeliveryError):  # not written, or not known to be: sent again
            self.confirm()
        self.release(sorted(self._held))

    def release(self, emails: list[str], *, drop: bool = False) -> None:
        """Give back rows this sender claimed and never tried: pending again, or with
        ``drop`` no row at all (the subscriber left, or their tags match no article)."""
        self.confirm()
        mine = [e for e in emails if e in self._held]
        if not mine:
            return
        which = and_(
            self._key,
            sends.c.email.in_(mine),
            sends.c.claimed_by == self.name,
            sends.c.status == "claimed",
        )
        try:
            with self._engine.begin() as conn:
                if drop:
                    conn.execute(delete(sends).where(which))
                else:
                    conn.execute(
                        update(sends).where(which).values(status="pending", lease_until=None)
                    )
        except SQLAlchemyError:
            pass  # still claimed: its lease runs out, and another sender sends it
        self._held.difference_update(mine)

    def mark(self, email: str, status: str, attempts: int, error: str | None) -> None:
        """Record the outcome of one recipient, in its own transaction (committed by
        itself); raises DeliveryError when the row is no longer this sender's. On PostgreSQL
        the mark is written to the database and its result read later, by ``confirm`` (which
        the sender calls before its next hand-off, and every other step of the ledger
        first): a mark written is the database's to commit even if this process dies."""
        self.confirm()
        args = self._mark_args(email, status, attempts, error)
        if not self._postgres:
            self._finish(email, lambda: self._run_mark(args))
            return
        try:
            _again_on_disconnect(lambda: self._send_mark(args))
        except SQLAlchemyError as exc:
            raise self._unrecorded(email, exc) from exc
        self._flight = (email, args)

    def confirm(self) -> None:
        """Wait for the mark in flight (none on SQLite); raises DeliveryError as ``mark``
        does. A session the database dropped meanwhile is replaced, and the mark, which
        writes the same row the same way, runs once more on the new one."""
        flight, self._flight = self._flight, None
        if flight is not None:
            email, args = flight
            self._finish(email, self._read_mark, lambda: self._run_mark(args))

    def _finish(
        self, email: str, step: Callable[[], bool], again: Callable[[], bool] | None = None
    ) -> None:
        try:
            done = _again_on_disconnect(step, again)
        except SQLAlchemyError as exc:
            raise self._unrecorded(email, exc) from exc
        self._held.discard(email)
        if not done:
            raise DeliveryError(
                f"delivery stopped: the claim on {email} was taken over by another sender "
                "after this one's lease ran out (that recipient may get the issue twice)"
            )

    def _unrecorded(self, email: str, exc: SQLAlchemyError) -> DeliveryError:
        return DeliveryError(f"cannot record the send to {email} in the ledger: {reason(exc)}")

    def _mark_args(self, email: str, status: str, attempts: int, error: str | None) -> Any:
        values = self._mark_fixed | self._bound(
            m_email=email,
            m_status=status,
            m_attempts=attempts,
            m_error=error[:1000] if error else None,
        )
        order = self._mark_order
        return values if order is None else tuple(values[n] for n in order)

    def _run_mark(self, args: Any) -> bool:
        """One mark, its result awaited."""
        if self._postgres:
            self._send_mark(args)
            return self._read_mark()
        conn = self._marking()
        with self._driver_call(conn, args):
            self._cursor.execute(self._mark_sql, args)
        return bool(self._cursor.rowcount)

    def _send_mark(self, args: Any) -> None:
        """Write one mark to the database's socket (PostgreSQL), not waiting for its result."""
        conn = self._marking()
        pgconn = self._cursor
        text_args = [None if v is None else _as_text(v, self._encoding) for v in args]
        with self._driver_call(conn, args):
            pgconn.send_query_prepared(self._mark_name, text_args)
            while pgconn.flush():
                select_module.select([], [pgconn.socket], [])

    def _read_mark(self) -> bool:
        """The result of the mark written last: whether it wrote its row."""
        conn = self._marking()
        pgconn = self._cursor
        results = []
        with self._driver_call(conn, None):
            while True:
                pgconn.consume_input()
                while pgconn.is_busy():
                    select_module.select([pgconn.socket], [], [])
                    pgconn.consume_input()
                result = pgconn.get_result()
                if result is None:
                    break
                results.append(result)
            for result in results:
                if result.status != _pq().ExecStatus.COMMAND_OK:
                    raise _pg_errors().error_from_result(result, encoding=self._encoding)
        return any(int(r.command_tuples or 0) for r in results)

    @contextmanager
    def _driver_call(self, conn: Connection, args: Any) -> Iterator[None]:
        """The driver's errors as SQLAlchemy's; the session dropped on Ctrl-C mid-call."""
        try:
            yield
        except Exception as exc:
            raise self._driver_error(conn, exc, args) from exc
        except BaseException:
            conn.invalidate()  # Ctrl-C mid-statement: the session's state is unknown
            raise

    def _driver_error(self, conn: Connection, exc: Exception, args: Any) -> Exception:
        """The driver's error as SQLAlchemy raises it (the session invalidated when the
        database dropped it, so ``_again_on_disconnect`` runs the mark once more)."""
        dialect = self._engine.dialect
        error = dialect.loaded_dbapi.Error
        if not isinstance(exc, error):
            return exc
        driver = conn.connection.driver_connection
        gone = dialect.is_disconnect(exc, driver, None if self._postgres else self._cursor)
        if gone:
            conn.invalidate(exc)
        return DBAPIError.instance(
            self._mark_sql, args, exc, error, connection_invalidated=gone, dialect=dialect
        )

    def _bound(self, **values: object) -> dict[str, object]:
        """``values`` as the driver takes them (each through its column type's processor)."""
        binds = self._mark_binds
        return {
            name: value if (process := binds[name]) is None or value is None else process(value)
            for name, value in values.items()
        }

    def _marking(self) -> Connection:
        """The session marks are written on, kept for the sender's run (a new one after the
        database dropped it), in autocommit: each mark is committed by itself. Its commits do
        not wait for the disk (SQLite: synchronous NORMAL; PostgreSQL: synchronous_commit
        off): a mark is safe from a crash of digest once written, and only a crash of the
        database's machine within a second of it could undo it, sending that recipient the
        issue once more."""
        conn = self._marks
        if conn is not None and not conn.invalidated and not conn.closed:
            return conn
        if conn is not None:
            self._marks = None
            conn.close()
        conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            self._set_up_marking(conn)
        except BaseException:
            conn.close()
            raise
        self._marks = conn
        return conn

    def _set_up_marking(self, conn: Connection) -> None:
        """A new marks' session made ready: its commits not waited for, the mark prepared."""
        driver = cast(Any, conn.connection.driver_connection)
        if self._postgres:
            conn.exec_driver_sql("SET synchronous_commit = off")
            # The marks go to libpq itself, written without waiting (``mark``): psycopg's
            # cursor waits for each result, and costs more than the statement.
            self._cursor = driver.pgconn
            self._encoding = driver.info.encoding
            with self._driver_call(conn, None):
                done = self._cursor.prepare(self._mark_name, self._mark_sql.encode())
                if done.status != _pq().ExecStatus.COMMAND_OK:
                    raise _pg_errors().error_from_result(done, encoding=self._encoding)
        else:
            conn.exec_driver_sql("PRAGMA synchronous = NORMAL")
            # The marks go to the driver's own cursor: SQLAlchemy's execution of a statement
            # costs more than the statement.
            self._cursor = driver.cursor()

    def close(self) -> None:
        """Give the marks' session back, as the pool's others are (the mark in flight read
        first; its failure is left to the lease, as a row this sender holds)."""
        with suppress(DeliveryError):
            self.confirm()
        conn, self._marks = self._marks, None
        if conn is None:
            return
        try:
            if not conn.invalidated and not conn.closed:
                if self._postgres:
                    conn.exec_driver_sql(f"DEALLOCATE {self._mark_name.decode()}")
                    conn.exec_driver_sql("RESET synchronous_commit")
                else:
                    conn.exec_driver_sql(f"PRAGMA synchronous = {SQLITE_SYNCHRONOUS}")
        except SQLAlchemyError:
            if not conn.closed:
                conn.invalidate()
        finally:
            conn.close()


def _again_on_disconnect(step: Callable[[], _T], again: Callable[[], _T] | None = None) -> _T:
    """``step()``, once more (or ``again()``) on a new connection when the database dropped
    the first (a terminated session, a failover): each step is one transaction, safe to run
    again."""
    try:
        return step()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
    return (again or step)()


def _as_text(value: object, encoding: str) -> bytes:
    """A mark's parameter in libpq's text format."""
    if isinstance(value, datetime):
        return value.isoformat(" ").encode()
    return str(value).encode(encoding)


def _pq() -> Any:
    import psycopg.pq

    return psycopg.pq


def _pg_errors() -> Any:
    import psycopg.errors

    return psycopg.errors


def _batches(items: Iterable[Subscriber], size: int) -> Iterator[list[Subscriber]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


def ledger_status(
    engine: Engine,
    issue: Issue,
    issue_id: int,
    subscribers: Iterable[Subscriber],
    *,
    variant: Callable[[Issue, frozenset[str], int], Issue],
    max_articles: int,
    suppressed: int,
) -> LedgerStatus:
    """Where the delivery of a claimed issue stands, for ``subscribers`` (the active ones,
    ordered by tags): the ledger's counts, and who is still to try."""
    key = sends.c.issue_id == issue_id
    try:
        with engine.connect() as conn:
            counts: dict[str, int] = {
                status: int(n)
                for status, n in conn.execute(
                    select(sends.c.status, func.count()).where(key).group_by(sends.c.status)
                )
            }
            failures = tuple(
                (row.email, row.error or "")
                for row in conn.execute(
                    select(sends.c.email, sends.c.error)
                    .where(key, sends.c.status == "failed")
                    .order_by(sends.c.email)
                    .limit(_FAILED_SHOWN)
                )
            )
        pending = no_articles = 0
        for tags, group in groupby(subscribers, key=lambda s: s.tags):
            if not variant(issue, tags, max_articles).articles:
                no_articles += sum(1 for _ in group)
                continue
            for batch in _batches(group, _CLAIM_BATCH):
                with engine.connect() as conn:
                    known = set(
                        conn.execute(
                            select(sends.c.email).where(
                                key, sends.c.email.in_([s.email for s in batch])
                            )
                        ).scalars()
                    )
                pending += sum(1 for s in batch if s.email not in known)
    except SQLAlchemyError as exc:
        raise DeliveryError(f"cannot read the send ledger: {reason(exc)}") from exc
    return LedgerStatus(
        sent=counts.get("sent", 0),
        deferred=counts.get("deferred", 0),
        failed=counts.get("failed", 0),
        claimed=counts.get("claimed", 0),
        pending=pending + counts.get("pending", 0),
        no_articles=no_articles,
        suppressed=suppressed,
        failures=failures,
    )
