"""Deliver an issue: one message per subscriber, one rendering per variant, a send ledger.

Subscribers arrive ordered by tag set, so each variant is rendered and made a MIME template
once; a recipient's message is that template's bytes joined around their own To, Message-ID
and unsubscribe values. The senders (SMTP, and the outbox for dry runs) are in digest.smtp, the
message template in digest.message.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby, islice
from typing import Protocol, runtime_checkable

from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from digest.db import reason, utc_naive
from digest.errors import DeliveryError, PermanentSendError, TransientSendError
from digest.message import MailInfo, Template
from digest.models import Issue, Subscriber
from digest.render import Email, counted
from digest.schema import sends

_CLAIM_BATCH = 200
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


class Sender(Protocol):
    """Hands one message to the mail system; raises TransientSendError or PermanentSendError."""

    def send(self, sender: str, recipient: str, message: bytes) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class VariantAware(Protocol):
    """A sender that wants to know where each variant's run of recipients starts."""

    def begin_variant(self, tags: frozenset[str], articles: int) -> None: ...


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

    @property
    def unfinished(self) -> bool:
        """Some recipient of the issue has not got it: refused, now or before, or deferred."""
        return bool(self.failed_count or self.deferred or self.failed_earlier)

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
            f"{refused}."
        )


@dataclass(frozen=True, slots=True)
class LedgerStatus:
    """Where one issue's delivery stands (``digest status``)."""

    sent: int
    deferred: int
    failed: int
    claimed: int  # handed to a run that is still going, or was killed: sent again next run
    pending: int  # active subscribers the issue has not been tried for yet
    no_articles: int  # active subscribers whose tags match none of the issue's articles
    suppressed: int  # unsubscribed or bounced: never sent to
    failures: tuple[tuple[str, str], ...]  # (address, reply) of the first refused ones


def deliver(
    engine: Engine,
    issue: Issue,
    issue_id: int | None,
    subscribers: Iterable[Subscriber],
    *,
    render: Callable[[Issue], Email],
    variant: Callable[[Issue, frozenset[str], int], Issue],
    info: MailInfo,
    sender: Sender,
    now: datetime,
    sleep: Callable[[float], None] = time.sleep,
    retries: int = 5,
    progress: Callable[[int], None] | None = None,
    retry_failed: bool = False,
) -> DeliveryReport:
    """Send ``issue`` to ``subscribers`` (ordered by tags) through ``sender``, then close it.

    ``issue_id`` None is a dry run: no ledger rows are read or written. Otherwise each
    recipient's ledger row is claimed before hand-off and marked 'sent' once the server took
    the message, so a re-run skips who got the issue. A row still 'claimed' after a killed
    run is sent again: the one message in flight at the kill may arrive twice, never none.
    Transient failures are retried ``retries`` times with exponential backoff and left
    'deferred' for the next run; a 5xx is recorded 'failed', with its reply, and tried
    again only with ``retry_failed`` (the operator fixed the cause).
    """
    ledger = None if issue_id is None else _Ledger(engine, issue_id, now)
    run = _Run(sender, ledger, sleep, retries)
    advance = progress or (lambda _n: None)
    try:
        for tags, group in groupby(subscribers if issue.articles else (), key=lambda s: s.tags):
            chosen = variant(issue, tags, info.max_articles)
            if not chosen.articles:
                skipped = sum(1 for _ in group)
                run.empty_variants += 1
                run.recipients += skipped
                run.skipped_empty += skipped
                advance(skipped)
                continue
            template = Template.build(render(chosen), chosen, info, now)
            run.variants += 1
            if isinstance(sender, VariantAware):
                sender.begin_variant(tags, len(chosen.articles))
            before = (run.recipients, run.sent, run.bytes)
            for batch in _batches(group, _CLAIM_BATCH):
                todo, failed_before, run.second_try = (
                    (batch, 0, set())
                    if ledger is None
                    else ledger.claim(batch, retry_failed=retry_failed)
                )
                run.recipients += len(batch)
                run.failed_earlier += failed_before
                run.skipped_already_sent += len(batch) - len(todo) - failed_before
                advance(len(batch) - len(todo))
                for n, subscriber in enumerate(todo):
                    try:
                        run.send(template, subscriber.email)
                    except DeliveryError:
                        if ledger is not None:  # the rest were never tried: pending again
                            ledger.release([s.email for s in todo[n + 1 :]])
                        raise
                    advance(1)
            run.by_variant.append(
                VariantReport(
                    tags,
                    len(chosen.articles),
                    run.recipients - before[0],
                    run.sent - before[1],
                    run.bytes - before[2],
                )
            )
    finally:
        sender.close()
    return DeliveryReport(
        len(issue.articles), run.variants, run.empty_variants, run.recipients, run.sent,
        run.skipped_already_sent, run.skipped_empty, run.deferred, tuple(run.failed),
        run.failed_count, run.bytes, tuple(run.by_variant), run.failed_earlier,
    )  # fmt: skip


@dataclass(slots=True)
class _Run:
    """The counts of one delivery, and the hand-off of one message with its retries."""

    sender: Sender
    ledger: _Ledger | None
    sleep: Callable[[float], None]
    retries: int
    variants: int = 0
    empty_variants: int = 0
    recipients: int = 0
    sent: int = 0
    skipped_already_sent: int = 0
    skipped_empty: int = 0
    deferred: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    failed_count: int = 0
    bytes: int = 0
    given_up_in_a_row: int = 0
    by_variant: list[VariantReport] = field(default_factory=list)
    failed_earlier: int = 0
    # (address, reply, reply without the address) of the last refusals, none taken between
    refusals: list[tuple[str, str, str]] = field(default_factory=list)
    second_try: set[str] = field(default_factory=set)  # left deferred by an earlier run

    def send(self, template: Template, email: str) -> None:
        """One recipient: hand-off with retries, then its ledger row."""
        for attempt in range(1, self.retries + 2):
            try:
                message = template.fill(email)
                self.sender.send(template.envelope_from, email, message)
            except PermanentSendError as exc:
                self.failed_count += 1
                self.given_up_in_a_row = 0
                if len(self.failed) < _FAILED_SHOWN:
                    self.failed.append((email, str(exc)))
                self._mark(email, "failed", attempt, str(exc))
                self._stop_if_relay_refuses(email, str(exc))
                return
            except TransientSendError as exc:
                if attempt <= self.retries:
                    self.sleep(min(_MAX_BACKOFF, 2.0 ** (attempt - 1)))
                    continue
                self.deferred += 1
                self.given_up_in_a_row += 1
                self._mark(email, "deferred", attempt, str(exc))
                if self.given_up_in_a_row >= _GIVE_UP_AFTER:
                    raise DeliveryError(
                        f"delivery stopped: {self.given_up_in_a_row} recipients in a row failed "
                        f"after {self.retries} retries (last: {exc}); {self.sent} sent this run, "
                        "run `digest send` again later to send the rest"
                    ) from exc
                return
            self.sent += 1
            self.bytes += len(message)
            self.given_up_in_a_row = 0
            self.refusals.clear()
            self._mark(email, "sent", attempt, None)
            return

    def _stop_if_relay_refuses(self, email: str, reply: str) -> None:
        """Stop when recipients in a row were all refused with one reply: the relay refuses
        everyone, so they are left to send again (deferred), not failed."""
        if email in self.second_try or _MAILBOX_CLASS.match(reply):
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
        self.failed_count -= len(stopped)
        self.deferred += len(stopped)
        self.failed = [f for f in self.failed if f[0] not in stopped]
        which = "first" if not self.sent else "last"
        raise DeliveryError(
            f"delivery stopped: the relay refused the {which} {len(stopped)} recipients alike "
            f"({reply}), so it refuses this sender, not the addresses; check smtp_user and "
            "smtp_password, the relay's policy for this host and from_address, its sending "
            f"quota, and whether it blocks this IP; {self.sent} sent this run, nobody was "
            "marked failed: run `digest send` again after the fix"
        )

    def _mark(self, email: str, status: str, attempts: int, error: str | None) -> None:
        if self.ledger is not None:
            self.ledger.mark(email, status, attempts, error)


class _Ledger:
    """The ``sends`` rows of one issue: claimed before hand-off, marked after."""

    def __init__(self, engine: Engine, issue_id: int, now: datetime) -> None:
        self._engine = engine
        self._issue_id = issue_id
        self._now = utc_naive(now)

    def claim(
        self, batch: list[Subscriber], *, retry_failed: bool = False
    ) -> tuple[list[Subscriber], int, set[str]]:
        """The subscribers of ``batch`` still to send (new rows, and rows left claimed or
        deferred, and failed ones with ``retry_failed``), how many failed before, and which
        of them an earlier run left deferred."""
        again = ("deferred", "failed") if retry_failed else ("deferred",)
        emails = [s.email for s in batch]
        key = sends.c.issue_id == self._issue_id
        try:
            with self._engine.begin() as conn:
                status = dict(
                    conn.execute(
                        select(sends.c.email, sends.c.status).where(key, sends.c.email.in_(emails))
                    ).all()
                )
                row = {"issue_id": self._issue_id, "status": "claimed", "updated_at": self._now}
                new = [row | {"email": e, "attempts": 0} for e in emails if e not in status]
                if new:
                    conn.execute(insert(sends), new)
                retake = [e for e, s in status.items() if s in again]
                if retake:
                    conn.execute(
                        update(sends)
                        .where(key, sends.c.email.in_(retake))
                        .values(status="claimed", updated_at=self._now)
                    )
        except IntegrityError as exc:
            raise DeliveryError(
                "another `digest send` is already delivering this issue; "
                "let it finish, or stop it and run again"
            ) from exc
        except SQLAlchemyError as exc:
            raise DeliveryError(f"cannot claim send-ledger rows: {reason(exc)}") from exc
        todo = [s for s in batch if status.get(s.email, "claimed") in ("claimed", *again)]
        failed = sum(1 for s in batch if status.get(s.email) == "failed") if not retry_failed else 0
        return todo, failed, {e for e, s in status.items() if s == "deferred"}

    def release(self, emails: list[str]) -> None:
        """Give back rows this run claimed but never tried (a stopped run): pending again."""
        if not emails:
            return
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    delete(sends).where(
                        sends.c.issue_id == self._issue_id,
                        sends.c.email.in_(emails),
                        sends.c.status == "claimed",
                        sends.c.attempts == 0,
                    )
                )
        except SQLAlchemyError:
            pass  # still 'claimed': the next run sends them all the same

    def mark(self, email: str, status: str, attempts: int, error: str | None) -> None:
        """Record the outcome of one recipient, in its own transaction (committed at once)."""
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    update(sends)
                    .where(sends.c.issue_id == self._issue_id, sends.c.email == email)
                    .values(
                        status=status,
                        attempts=sends.c.attempts + attempts,
                        error=error[:1000] if error else None,
                        updated_at=self._now,
                    )
                )
        except SQLAlchemyError as exc:
            raise DeliveryError(
                f"cannot record the send to {email} in the ledger: {reason(exc)}"
            ) from exc


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
        pending=pending,
        no_articles=no_articles,
        suppressed=suppressed,
        failures=failures,
    )
