"""Deliver an issue: one message per subscriber, one rendering per variant, a send ledger.

Subscribers arrive ordered by tag set, so each variant is rendered and made a MIME template
once; a recipient's message is that template's bytes joined around their own To, Message-ID
and unsubscribe values. The senders (SMTP, and the outbox for dry runs) are in digest.smtp, the
message template in digest.message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby, islice
from typing import Protocol, runtime_checkable

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from digest.errors import DeliveryError, PermanentSendError, TransientSendError
from digest.message import MailInfo, Template
from digest.models import Issue, Subscriber
from digest.render import Email
from digest.schema import sends
from digest.store import reason, utc_naive

_CLAIM_BATCH = 200
_FAILED_SHOWN = 100
_MAX_BACKOFF = 60.0
_GIVE_UP_AFTER = 3  # recipients in a row whose retries all failed: the server is down


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

    def summary(self, *, dry_run: bool = False) -> str:
        """One line for the operator."""
        if not self.articles:
            return "The issue has no articles: nothing sent."
        done = "written (dry run)" if dry_run else "sent"
        return (
            f"{self.sent} of {self.recipients} recipients {done} in {self.variants} variants "
            f"({self.bytes:,} bytes); {self.skipped_already_sent} already sent, "
            f"{self.skipped_empty} with no matching articles, {self.deferred} deferred, "
            f"{self.failed_count} refused."
        )


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
) -> DeliveryReport:
    """Send ``issue`` to ``subscribers`` (ordered by tags) through ``sender``, then close it.

    ``issue_id`` None is a dry run: no ledger rows are read or written. Otherwise each
    recipient's ledger row is claimed before hand-off and marked 'sent' once the server took
    the message, so a re-run skips who got the issue. A row still 'claimed' after a killed
    run is sent again: the one message in flight at the kill may arrive twice, never none.
    Transient failures are retried ``retries`` times with exponential backoff and left
    'deferred' for the next run; a 5xx is recorded 'failed' and never retried.
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
                todo = batch if ledger is None else ledger.claim(batch)
                run.recipients += len(batch)
                run.skipped_already_sent += len(batch) - len(todo)
                advance(len(batch) - len(todo))
                for subscriber in todo:
                    run.send(template, subscriber.email)
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
        run.failed_count, run.bytes, tuple(run.by_variant),
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
            self._mark(email, "sent", attempt, None)
            return

    def _mark(self, email: str, status: str, attempts: int, error: str | None) -> None:
        if self.ledger is not None:
            self.ledger.mark(email, status, attempts, error)


class _Ledger:
    """The ``sends`` rows of one issue: claimed before hand-off, marked after."""

    def __init__(self, engine: Engine, issue_id: int, now: datetime) -> None:
        self._engine = engine
        self._issue_id = issue_id
        self._now = utc_naive(now)

    def claim(self, batch: list[Subscriber]) -> list[Subscriber]:
        """The subscribers of ``batch`` still to send: new rows, and rows left claimed/deferred."""
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
                retake = [e for e, s in status.items() if s == "deferred"]
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
        return [s for s in batch if status.get(s.email, "claimed") in ("claimed", "deferred")]

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
