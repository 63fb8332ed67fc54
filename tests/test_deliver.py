"""Delivery: a real SMTP server on loopback, the send ledger, the message format, the outbox."""

from __future__ import annotations

import base64
import csv
import email
import email.policy
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import Engine, event, select

from digest import deliver, render, selection, smtp, subscribers
from digest.deliver import DeliveryReport
from digest.errors import DeliveryError
from digest.links import verify_unsubscribe_token
from digest.message import MailInfo, header_problem
from digest.models import Issue, Subscriber
from digest.schema import sends

from .conftest import ROOT, Mailbox
from .factories import MAIL_INFO as INFO
from .factories import SEND_NOW as NOW
from .factories import deliver_as_one
from .factories import render_wire as real_render
from .factories import wire_issue as make_issue

SECRET = INFO.unsubscribe_secret
# Six subscribers in four variants: all articles, russia, usa+summit, and one that matches none.
AUDIENCE = (
    Subscriber("ada@example.org", "Ada"),
    Subscriber("bob@example.com"),
    Subscriber("cy@example.org", tags=frozenset({"russia"})),
    Subscriber("di@example.org", tags=frozenset({"russia"})),
    Subscriber("ed@example.com", tags=frozenset({"summit", "usa"})),
    Subscriber("flo@example.org", tags=frozenset({"gardening"})),
)
RECEIVING = {s.email for s in AUDIENCE} - {"flo@example.org"}


# ---------------------------------------------------------------- helpers


def stored_issue(engine: Engine, audience: tuple[Subscriber, ...] = AUDIENCE) -> tuple[int, Issue]:
    for s in audience:
        subscribers.add(engine, s.email, name=s.name, tags=s.tags, now=NOW)
    return selection.claim(engine, make_issue(), now=NOW)


def send(
    engine: Engine,
    issue: Issue,
    issue_id: int | None,
    sender: deliver.Sender,
    *,
    retries: int = 3,
    sleeps: list[float] | None = None,
    renders: list[frozenset[str]] | None = None,
    render_with: Callable[[Issue], render.Email] = real_render,
    info: MailInfo = INFO,
    retry_failed: bool = False,
) -> DeliveryReport:
    def counted(chosen: Issue) -> render.Email:
        if renders is not None:
            renders.append(chosen.tags)
        return render_with(chosen)

    if issue_id is None:  # a dry run
        return deliver.preview(
            issue, subscribers.stream(engine), render=counted, variant=selection.variant,
            info=info, sender=sender, now=NOW,
        )  # fmt: skip
    return deliver_as_one(
        engine, issue, issue_id, render=counted, info=info, sender=sender,
        sleep=(sleeps.append if sleeps is not None else lambda _s: None), retries=retries,
        retry_failed=retry_failed,
    )  # fmt: skip


def ledger(engine: Engine) -> dict[str, tuple[str, int, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(select(sends.c.email, sends.c.status, sends.c.attempts, sends.c.error))
        return {r.email: (r.status, r.attempts, r.error) for r in rows}


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


@dataclass
class Collector:
    """A sender that keeps what it is given (for dry runs and format checks)."""

    messages: dict[str, bytes] = field(default_factory=dict)
    closed: int = 0

    def send(self, sender: str, recipient: str, message: bytes) -> None:
        self.messages[recipient] = message

    def close(self) -> None:
        self.closed += 1


# ---------------------------------------------------------------- sending


def test_a_claim_reads_each_subscriber_as_now_not_as_enrolled(engine: Engine) -> None:
    """Between enrolment and the claim one reader left and one changed tags: the one who
    left gets nothing (and no row stays for them), the other the variant of their tags now;
    on either store, with the claim of pending rows reused across batches."""
    issue_id, issue = stored_issue(engine)
    deliver.enroll(
        engine, issue, issue_id, variant=selection.variant, max_articles=INFO.max_articles,
        now=NOW,
    )  # fmt: skip
    subscribers.suppress(engine, "bob@example.com", via="operator", now=NOW)
    subscribers.add(engine, "cy@example.org", tags=["gardening"], replace_tags=True, now=NOW)
    collector = Collector()
    done = deliver.work(
        engine, issue, issue_id, render=real_render, variant=selection.variant, info=INFO,
        sender=collector, now=NOW,
    )  # fmt: skip
    assert set(collector.messages) == {"ada@example.org", "di@example.org", "ed@example.com"}
    assert (done.sent, done.left, done.skipped_empty) == (3, 1, 1)  # cy's tags match nothing
    assert set(ledger(engine)) == {"ada@example.org", "di@example.org", "ed@example.com"}


@pytest.mark.slow
def test_every_subscriber_gets_exactly_one_message(engine: Engine, mailbox: Mailbox) -> None:
    issue_id, issue = stored_issue(engine)
    renders: list[frozenset[str]] = []
    report = send(engine, issue, issue_id, mailbox.sender(), renders=renders)
    assert mailbox.handler.counts() == Counter(RECEIVING)
    assert (report.recipients, report.sent, report.variants, report.empty_variants) == (6, 5, 3, 1)
    assert (report.skipped_empty, report.failed_count, report.deferred) == (1, 0, 0)
    assert report.bytes == sum(len(raw) for _, raw in mailbox.handler.accepted)
    assert sorted(renders, key=sorted) == sorted(
        [frozenset(), frozenset({"russia"}), frozenset({"summit", "usa"})], key=sorted
    )  # each variant rendered once, the empty one not at all
    assert {e: s for e, (s, _, _) in ledger(engine).items()} == dict.fromkeys(RECEIVING, "sent")


@pytest.mark.slow
def test_rerun_sends_nothing_new(engine: Engine, mailbox: Mailbox) -> None:
    issue_id, issue = stored_issue(engine)
    send(engine, issue, issue_id, mailbox.sender())
    again = send(engine, issue, issue_id, mailbox.sender())
    assert (again.sent, again.skipped_already_sent, again.recipients) == (0, 5, 6)
    assert mailbox.handler.counts() == Counter(RECEIVING)


@pytest.mark.slow
def test_transient_failures_then_recovery(engine: Engine, mailbox: Mailbox) -> None:
    issue_id, issue = stored_issue(engine)
    mailbox.handler.defer = 3
    mailbox.handler.drop = 2
    sleeps: list[float] = []
    report = send(engine, issue, issue_id, mailbox.sender(), retries=5, sleeps=sleeps)
    assert mailbox.handler.counts() == Counter(RECEIVING)
    assert (report.sent, report.deferred, report.failed_count) == (5, 0, 0)
    assert sleeps == [1.0, 2.0, 4.0, 8.0, 16.0]  # one recipient waited out all five failures
    assert max(attempts for _, attempts, _ in ledger(engine).values()) == 6


@pytest.mark.slow
def test_rate_limited_at_mail_from_then_recovery(engine: Engine, mailbox: Mailbox) -> None:
    """A relay's rate limit (421/451 to MAIL FROM) is waited out, not taken for a bad sender."""
    issue_id, issue = stored_issue(engine)
    mailbox.handler.mail_replies = ["421 4.7.0 too many messages, closing", "451 4.7.1 slow down"]
    report = send(engine, issue, issue_id, mailbox.sender(), retries=5)
    assert mailbox.handler.counts() == Counter(RECEIVING)
    assert (report.sent, report.deferred, report.failed_count) == (5, 0, 0)


@pytest.mark.slow
def test_slow_server_gets_each_message_once(engine: Engine, mailbox: Mailbox) -> None:
    """A relay slower to confirm than smtp_timeout (a content scan) must not get each
    message again on every retry: the reply to the final dot is waited for."""
    issue_id, issue = stored_issue(engine, AUDIENCE[:2])
    # Each 250 comes after the timeout, by a margin; the timeout is long enough for the rest
    # of the conversation even on a loaded machine.
    mailbox.handler.delay = 1.3
    report = send(engine, issue, issue_id, mailbox.sender(timeout=1.0))
    assert mailbox.handler.counts() == Counter(s.email for s in AUDIENCE[:2])
    assert (report.sent, report.deferred) == (2, 0)


@pytest.mark.slow
def test_hang_up_after_the_message_costs_one_duplicate(engine: Engine, mailbox: Mailbox) -> None:
    """The server took the message, then hung up before its 250: sent again, the recipient
    has it twice, with one Message-ID (so mail clients can fold the two)."""
    issue_id, issue = stored_issue(engine)
    mailbox.handler.hang_up_after_data = 1
    report = send(engine, issue, issue_id, mailbox.sender())
    counts = mailbox.handler.counts()
    assert set(counts) == RECEIVING and sum(counts.values()) == len(RECEIVING) + 1
    twice = [rcpt for rcpt, n in counts.items() if n == 2]
    copies = [parse(raw) for rcpt, raw in mailbox.handler.accepted if rcpt in twice]
    assert len({m["Message-ID"] for m in copies}) == 1
    assert report.sent == 5
    assert {status for status, _, _ in ledger(engine).values()} == {"sent"}


@pytest.mark.slow
def test_server_down_stops_the_run_and_the_next_run_finishes(
    engine: Engine, mailbox: Mailbox
) -> None:
    issue_id, issue = stored_issue(engine)
    mailbox.handler.defer = 10**6
    with pytest.raises(DeliveryError) as caught:
        send(engine, issue, issue_id, mailbox.sender(), retries=1)
    assert str(caught.value).startswith("delivery stopped: 3 recipients in a row failed after 1")
    assert str(caught.value).endswith(
        "0 sent this run, run `digest send` again later to send the rest"
    )
    statuses = Counter(status for status, _, _ in ledger(engine).values())
    # The claimed rows never tried are given back: pending, as ed's, whose batch never came.
    assert statuses == {"deferred": 3, "pending": 2}
    mailbox.handler.defer = 0
    report = send(engine, issue, issue_id, mailbox.sender())
    assert report.sent == 5
    assert mailbox.handler.counts() == Counter(RECEIVING)


@pytest.mark.slow
def test_permanent_failure_is_recorded_reported_and_never_retried(
    engine: Engine, mailbox: Mailbox
) -> None:
    issue_id, issue = stored_issue(engine)
    mailbox.handler.refuse = {"cy@example.org"}
    report = send(engine, issue, issue_id, mailbox.sender())
    assert report.failed == (("cy@example.org", "550 5.1.1 <cy@example.org>: no such user"),)
    assert (report.sent, report.failed_count) == (4, 1)
    assert mailbox.handler.counts() == Counter(RECEIVING - {"cy@example.org"})
    assert ledger(engine)["cy@example.org"] == (
        "failed", 1, "550 5.1.1 <cy@example.org>: no such user"
    )  # fmt: skip
    mailbox.handler.refuse = set()
    again = send(engine, issue, issue_id, mailbox.sender())
    # Refused is never "already sent": the re-run lists it as failed before, and unfinished.
    assert (again.sent, again.skipped_already_sent, again.failed_earlier) == (0, 4, 1)
    assert again.unfinished
    assert "1 refused by an earlier run" in again.summary()
    assert mailbox.handler.rcpt_tried.count("cy@example.org") == 1
    # The operator fixed the cause: --retry-failed sends it exactly one copy.
    retried = send(engine, issue, issue_id, mailbox.sender(), retry_failed=True)
    assert (retried.sent, retried.skipped_already_sent, retried.failed_earlier) == (1, 4, 0)
    assert not retried.unfinished
    assert mailbox.handler.counts() == Counter(RECEIVING)
    assert ledger(engine)["cy@example.org"][0] == "sent"
    final = send(engine, issue, issue_id, mailbox.sender(), retry_failed=True)
    assert (final.sent, final.skipped_already_sent) == (0, 5)
    assert mailbox.handler.counts() == Counter(RECEIVING)


class Interrupting:
    """Wraps a sender: Ctrl-C on the n-th message, before or after the server took it."""

    def __init__(self, inner: deliver.Sender, n: int, *, after_handoff: bool) -> None:
        self.inner, self.n, self.after, self.calls = inner, n, after_handoff, 0

    def send(self, sender: str, recipient: str, message: bytes) -> None:
        self.calls += 1
        if self.calls == self.n and not self.after:
            raise KeyboardInterrupt
        self.inner.send(sender, recipient, message)
        if self.calls == self.n:
            raise KeyboardInterrupt

    def close(self) -> None:
        self.inner.close()


@pytest.mark.slow
@pytest.mark.parametrize("after_handoff", [False, True])
def test_interrupted_run_then_rerun(engine: Engine, mailbox: Mailbox, after_handoff: bool) -> None:
    issue_id, issue = stored_issue(engine)
    with pytest.raises(KeyboardInterrupt):
        send(
            engine, issue, issue_id, Interrupting(mailbox.sender(), 3, after_handoff=after_handoff)
        )
    assert sum(mailbox.handler.counts().values()) == (3 if after_handoff else 2)
    send(engine, issue, issue_id, mailbox.sender())
    counts = mailbox.handler.counts()
    assert set(counts) == RECEIVING
    # Only the message in flight at the interrupt may arrive twice.
    assert sum(counts.values()) - len(RECEIVING) == (1 if after_handoff else 0)


@dataclass
class Tally:
    """A sender that counts what it is handed; Ctrl-C on the n-th message, before the
    hand-off or after it (the server has it, the ledger does not know)."""

    interrupt_at: int = 0
    after_handoff: bool = False
    counts: Counter[str] = field(default_factory=Counter)
    calls: int = 0

    def send(self, sender: str, recipient: str, message: bytes) -> None:
        self.calls += 1
        if self.calls == self.interrupt_at and not self.after_handoff:
            raise KeyboardInterrupt
        self.counts[recipient] += 1
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt

    def close(self) -> None:
        pass


MANY = tuple(Subscriber(f"reader{n:03d}@example.org") for n in range(250))


def many_subscribers(engine: Engine, tmp_path: Path) -> tuple[int, Issue]:
    rows = "".join(f"{s.email},,\n" for s in MANY)
    (tmp_path / "many.csv").write_text("email,name,tags\n" + rows, encoding="utf-8")
    assert subscribers.import_csv(engine, tmp_path / "many.csv", now=NOW).added == len(MANY)
    return selection.claim(engine, make_issue(), now=NOW)


@pytest.mark.slow
@pytest.mark.parametrize(("at", "after_handoff", "sent_before"), [(2, False, 1), (1, True, 1)])
def test_crash_after_a_batch_claim_the_next_run_sends_the_rest(
    engine: Engine, tmp_path: Path, at: int, after_handoff: bool, sent_before: int
) -> None:
    """200 rows claimed, then Ctrl-C on the first messages: the claims go back to pending,
    the next run sends the rest, and at most the message in flight at the crash twice."""
    issue_id, issue = many_subscribers(engine, tmp_path)
    crashed = Tally(interrupt_at=at, after_handoff=after_handoff)
    with pytest.raises(KeyboardInterrupt):
        send(engine, issue, issue_id, crashed)
    assert sum(crashed.counts.values()) == sent_before
    statuses = Counter(status for status, _, _ in ledger(engine).values())
    assert statuses == Counter(sent=at - 1, pending=250 - (at - 1))
    again = Tally()
    report = send(engine, issue, issue_id, again)
    total = crashed.counts + again.counts
    assert set(total) == {s.email for s in MANY}
    assert sum(total.values()) - len(MANY) == (1 if after_handoff else 0)
    assert (report.recipients, report.sent, report.skipped_already_sent) == (
        250,
        250 - at + 1,
        at - 1,
    )
    assert set(Counter(status for status, _, _ in ledger(engine).values())) == {"sent"}


@pytest.mark.slow
def test_crash_while_claiming_a_batch_claims_nothing_of_it(engine: Engine, tmp_path: Path) -> None:
    """The claim of a batch is one transaction: a crash inside it claims none of its rows."""
    issue_id, issue = many_subscribers(engine, tmp_path)
    claims = 0

    def crash_on_second_claim(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        nonlocal claims
        if not statement.lstrip().startswith("WITH picked"):  # a claim takes its rows
            return
        values = list(params.values() if isinstance(params, dict) else params)
        if "pending" in values:  # the take of pending rows (not of claims run out)
            claims += 1
            if claims == 2:
                raise KeyboardInterrupt

    event.listen(engine, "before_cursor_execute", crash_on_second_claim)
    crashed = Tally()
    try:
        with pytest.raises(KeyboardInterrupt):
            send(engine, issue, issue_id, crashed)
    finally:
        event.remove(engine, "before_cursor_execute", crash_on_second_claim)
    assert sum(crashed.counts.values()) == 200
    assert Counter(status for status, _, _ in ledger(engine).values()) == {
        "sent": 200,
        "pending": 50,
    }
    again = Tally()
    report = send(engine, issue, issue_id, again)
    assert crashed.counts + again.counts == Counter({s.email: 1 for s in MANY})
    assert (report.sent, report.skipped_already_sent) == (50, 200)


@pytest.mark.slow
def test_each_ledger_state_on_the_next_run(engine: Engine, mailbox: Mailbox) -> None:
    """'claimed' (a crashed run's) and 'deferred' rows are sent, once; 'sent' and 'failed'
    are not; the report counts each."""
    issue_id, issue = stored_issue(engine)
    earlier = {
        "ada@example.org": "claimed",
        "bob@example.com": "deferred",
        "cy@example.org": "sent",
        "di@example.org": "failed",
    }  # ed@example.com has no row yet; flo@example.org's variant is empty
    with engine.begin() as conn:
        conn.execute(
            sends.insert(),
            [
                {"issue_id": issue_id, "email": e, "status": s, "attempts": 1, "updated_at": NOW}
                for e, s in earlier.items()
            ],
        )
    first = send(engine, issue, issue_id, mailbox.sender())
    assert mailbox.handler.counts() == Counter(
        ["ada@example.org", "bob@example.com", "ed@example.com"]
    )
    assert (
        first.recipients, first.sent, first.skipped_already_sent, first.failed_earlier,
        first.skipped_empty,
    ) == (6, 3, 1, 1, 1)  # fmt: skip
    assert ledger(engine) == {
        "ada@example.org": ("sent", 2, None),
        "bob@example.com": ("sent", 2, None),
        "cy@example.org": ("sent", 1, None),
        "di@example.org": ("failed", 1, None),
        "ed@example.com": ("sent", 1, None),
    }
    second = send(engine, issue, issue_id, mailbox.sender())
    assert (second.sent, second.skipped_already_sent, second.failed_earlier) == (0, 4, 1)
    assert second.deferred == 0
    assert sum(mailbox.handler.counts().values()) == 3


CHILD = """
import sys
from digest import db, selection, smtp
from tests.factories import deliver_as_one, render_wire, wire_issue
url, port = sys.argv[1], int(sys.argv[2])
with db.opened(url) as engine:
    issue_id = selection.issue_id_of(engine, "daily", wire_issue().date)
    deliver_as_one(
        engine, wire_issue(), issue_id, render=render_wire,
        sender=smtp.SmtpSender("127.0.0.1", port, timeout=5), retries=0,
    )
"""


@pytest.mark.slow
def test_killed_mid_send_then_rerun(database_url: str, engine: Engine, mailbox: Mailbox) -> None:
    audience = tuple(Subscriber(f"reader{n:02d}@example.org") for n in range(30))
    issue_id, issue = stored_issue(engine, audience)
    mailbox.handler.stall_after = 5  # records each message, and holds the 250 of the sixth
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, database_url, str(mailbox.port)],
        cwd=ROOT,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while sum(mailbox.handler.counts().values()) < 6 and child.poll() is None:
            assert time.monotonic() < deadline, "the child sent no sixth message in 30 s"
            time.sleep(0.01)
        assert child.poll() is None, child.communicate()[1].decode()
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=10)
        assert child.stderr is not None
        child.stderr.close()
    before = sum(mailbox.handler.counts().values())
    assert before == 6  # five sent, and the one in flight
    mailbox.handler.stall_after = None
    report = send(engine, issue, issue_id, mailbox.sender())
    counts = mailbox.handler.counts()
    assert set(counts) == {s.email for s in audience}  # nobody left without the issue
    assert sum(counts.values()) - 30 <= 1  # at most the message in flight, twice
    assert report.sent == 30 - before + (sum(counts.values()) - 30)


# ---------------------------------------------------------------- the message


def dry_run(issue: Issue, audience: tuple[Subscriber, ...], **overrides: Any) -> Collector:
    collector = Collector()
    ordered = sorted(audience, key=lambda s: (" ".join(sorted(s.tags)), s.email))
    deliver.preview(
        issue, ordered,
        render=overrides.pop("render", real_render), variant=selection.variant,
        info=overrides.pop("info", INFO), sender=collector, now=NOW,
    )  # fmt: skip
    assert collector.closed == 1
    return collector


def test_message_parts_and_headers() -> None:
    rendered: dict[frozenset[str], render.Email] = {}

    def keep(chosen: Issue) -> render.Email:
        rendered[chosen.tags] = real_render(chosen)
        return rendered[chosen.tags]

    issue = make_issue()
    sent = dry_run(issue, AUDIENCE, render=keep).messages
    assert set(sent) == RECEIVING
    for address, raw in sent.items():
        assert raw.isascii() and b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
        assert max(len(line) for line in raw.split(b"\r\n")) <= 998
        message = parse(raw)
        assert message.defects == []
        assert message["From"] == "The Daily Digest <digest@example.org>"
        assert message["To"] == address
        assert parsedate_to_datetime(message["Date"]) == NOW
        assert message["MIME-Version"] == "1.0"
        assert message["List-Id"] == '"The Daily Digest" <daily.example.org>'
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message["Precedence"] == "bulk"
        assert re.fullmatch(r"<daily\.20190101\.[0-9a-f]{12}@example\.org>", message["Message-ID"])
        https, mailto = re.fullmatch(r"<(\S+)>, <(\S+)>", message["List-Unsubscribe"]).groups()
        assert mailto == "mailto:unsubscribe@example.org?subject=unsubscribe"
        token = parse_qs(urlsplit(https).query)["token"][0]
        assert https.startswith("https://news.example.org/daily/unsubscribe?token=")
        assert verify_unsubscribe_token(SECRET, token) == address
        assert verify_unsubscribe_token("another-secret", token) is None
        assert message.get_content_type() == "multipart/alternative"
        parts = list(message.iter_parts())
        assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
        assert all(p.get_content_charset() == "utf-8" for p in parts)
        # The fast path gives what rendering for this one recipient would.
        tags = next(s.tags for s in AUDIENCE if s.email == address)
        variant = rendered[tags]
        assert message["Subject"] == variant.subject
        html, text = render.personalize(variant, {"unsubscribe_url": https, "email": address})
        assert parts[0].get_content().replace("\r\n", "\n") == text
        assert parts[1].get_content().replace("\r\n", "\n") == html
    tokens = [parse(raw)["List-Unsubscribe"] for raw in sent.values()]
    assert len(set(tokens)) == len(tokens)


def test_plus_uppercase_and_quote_addresses_are_filled_exactly() -> None:
    """Addresses as subscribers type them ('+', capitals, an apostrophe, '='): To as stored,
    the token names that exact address, both parts decode to what rendering for that one
    reader gives, and two spellings of a box get two Message-IDs."""
    readers = (
        Subscriber("Ada.Lovelace+News@example.org"),
        Subscriber("ada.lovelace+news@example.org"),
        Subscriber("o'brien=x+Tag@example.org"),
    )
    variant = real_render(make_issue())
    sent = dry_run(make_issue(), readers, render=lambda _i: variant).messages
    assert set(sent) == {r.email for r in readers}
    ids = set()
    for address, raw in sent.items():
        lines = raw.split(b"\r\n")
        assert raw.endswith(b"\r\n") and b"\n" not in raw.replace(b"\r\n", b"")
        assert max(map(len, lines)) <= 998
        message = parse(raw)
        assert message.defects == [] and message["To"] == address
        ids.add(message["Message-ID"])
        https = message["List-Unsubscribe"][1:].split(">")[0]
        assert verify_unsubscribe_token(SECRET, parse_qs(urlsplit(https).query)["token"][0]) == (
            address
        )
        html, text = render.personalize(variant, {"unsubscribe_url": https, "email": address})
        plain, rich = message.iter_parts()
        assert plain.get_content().replace("\r\n", "\n") == text
        assert rich.get_content().replace("\r\n", "\n") == html
        assert address in text
        assert address.replace("'", "&#x27;") in html  # escaped in the HTML part
    assert len(ids) == 3


@pytest.mark.slow
def test_quoted_printable_lines_stay_within_76_columns() -> None:
    """RFC 2045 caps quoted-printable lines at 76 (SpamAssassin's MIME_QP_LONG_LINE): the
    soft break after a recipient's value must not make one 77, whatever the address length."""
    readers = tuple(Subscriber("a" * n + "@example.org") for n in range(1, 65))
    for address, raw in dry_run(make_issue(), readers).messages.items():
        body = raw.split(b"\r\n\r\n", 1)[1]
        assert max(map(len, body.split(b"\r\n"))) <= 76, address
    # Any text around the tokens: '=', tabs and spaces at a line's end, non-ASCII, dots.
    pick = random.Random(7)
    tokens = {"unsubscribe_url": "tok-unsub-0a1b2c", "email": "tok-email-3d4e5f"}
    for _ in range(60):
        pieces = ["".join(pick.choice("aé= \t.\n") for _ in range(pick.randint(0, 160)))]
        for _ in range(3):
            pieces += [pick.choice(list(tokens.values())), pieces[0][::-1]]
        text = "".join(pieces)
        fake = render.Email(subject="s", html=text.replace("\n", " "), text=text, tokens=tokens)
        address = "a" * pick.randint(1, 64) + "@example.org"
        raw = dry_run(make_issue(), (Subscriber(address),), render=lambda _i, f=fake: f)
        message = parse(raw.messages[address])
        url = message["List-Unsubscribe"][1:].split(">")[0]
        want_html, want_text = render.personalize(fake, {"unsubscribe_url": url, "email": address})
        plain, rich = message.iter_parts()
        assert plain.get_content().replace("\r\n", "\n") == want_text
        assert rich.get_content() == want_html
        body = raw.messages[address].split(b"\r\n\r\n", 1)[1]
        assert max(map(len, body.split(b"\r\n"))) <= 76


def test_message_ids_are_stable_and_distinct() -> None:
    first = {
        a: parse(raw)["Message-ID"] for a, raw in dry_run(make_issue(), AUDIENCE).messages.items()
    }
    again = {
        a: parse(raw)["Message-ID"] for a, raw in dry_run(make_issue(), AUDIENCE).messages.items()
    }
    assert first == again
    assert len(set(first.values())) == len(first)
    later = replace(make_issue(), date=date(2019, 1, 2))
    assert set(
        parse(r)["Message-ID"] for r in dry_run(later, AUDIENCE).messages.values()
    ).isdisjoint(first.values())


def test_message_id_gives_nothing_of_the_unsubscribe_token_away() -> None:
    """A Message-ID travels further than the message (In-Reply-To, References of replies):
    it must not be a piece of the HMAC that lets its holder unsubscribe the reader."""
    for address, raw in dry_run(make_issue(), AUDIENCE).messages.items():
        message = parse(raw)
        mark = re.fullmatch(
            r"<daily\.20190101\.([0-9a-f]{12})@example\.org>", message["Message-ID"]
        )
        assert mark
        token = parse_qs(urlsplit(message["List-Unsubscribe"][1:].split(">")[0]).query)["token"][0]
        mac = base64.urlsafe_b64decode(token.split(".")[1] + "==")
        assert not mac.hex().startswith(mark.group(1)), address


def test_header_injection_is_inert() -> None:
    def evil(chosen: Issue) -> render.Email:
        good = real_render(chosen)
        return replace(good, subject="Hello\r\nBcc: victim@example.net\nX-Evil: 1")

    info = replace(
        INFO,
        site=replace(INFO.site, title="Daily\r\nX-Injected: yes"),
        from_name="Digest\nReply-To: x@example.net",
    )
    raw = dry_run(make_issue(), AUDIENCE[:1], render=evil, info=info).messages["ada@example.org"]
    message = parse(raw)
    assert not {"Bcc", "X-Evil", "X-Injected", "Reply-To"} & set(message.keys())
    assert message["Subject"] == "Hello Bcc: victim@example.net X-Evil: 1"
    assert message["From"] == '"Digest Reply-To: x@example.net" <digest@example.org>'
    head = raw.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")
    names = [line.split(":", 1)[0] for line in head if not line.startswith(" ")]
    assert names == [
        "From", "To", "Subject", "Date", "Message-ID", "List-Id", "List-Unsubscribe",
        "List-Unsubscribe-Post", "Precedence", "MIME-Version", "Content-Type",
    ]  # fmt: skip


def test_without_a_mailto_list_unsubscribe_is_the_url_alone() -> None:
    info = replace(INFO, unsubscribe_mailto=None)
    for address, raw in dry_run(make_issue(), AUDIENCE[:2], info=info).messages.items():
        message = parse(raw)
        (url,) = re.fullmatch(r"<(\S+)>", message["List-Unsubscribe"]).groups()
        assert verify_unsubscribe_token(SECRET, parse_qs(urlsplit(url).query)["token"][0]) == (
            address
        )
        assert b"mailto:" not in raw
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:8080", "http://news.example.org/daily"])
def test_one_click_is_offered_only_over_https(base_url: str) -> None:
    """RFC 8058: the one-click POST goes to an https URI; beside an http one the
    List-Unsubscribe-Post header must not be sent (the plain link still is)."""
    info = replace(INFO, site=replace(INFO.site, base_url=base_url))
    message = parse(dry_run(make_issue(), AUDIENCE[:1], info=info).messages["ada@example.org"])
    assert "List-Unsubscribe-Post" not in message
    assert message["List-Unsubscribe"].startswith(f"<{base_url}/unsubscribe?token=")


def test_extra_headers_go_out_verbatim_after_the_standard_ones() -> None:
    extra = (("Feedback-ID", "issue:list:digest:sender"), ("X-Campaign", "daily=2019-01-01; a"))
    raw = dry_run(make_issue(), AUDIENCE[:1], info=replace(INFO, headers=extra)).messages[
        "ada@example.org"
    ]
    head = header_lines(raw)
    assert head[head.index("Precedence: bulk") + 1 :][:3] == [
        "Feedback-ID: issue:list:digest:sender",
        "X-Campaign: daily=2019-01-01; a",
        "MIME-Version: 1.0",
    ]
    assert parse(raw).defects == []


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("Feedback ID", "x", "header name 'Feedback ID' is not a field name; use printable "
         "ASCII without spaces or ':', e.g. Feedback-ID"),
        ("X-Ünï", "x", "header name 'X-Ünï' is not a field name; use printable ASCII without "
         "spaces or ':', e.g. Feedback-ID"),
        ("", "x", "header name '' is not a field name; use printable ASCII without spaces or "
         "':', e.g. Feedback-ID"),
        ("subject", "Win", "header subject is one digest writes itself; remove it"),
        ("List-Unsubscribe", "<https://x.org/u>", "header List-Unsubscribe is one digest "
         "writes itself; remove it"),
        ("Content-Type", "text/plain", "header Content-Type is one digest writes itself; "
         "remove it"),
        ("Bcc", "boss@example.org", "header Bcc cannot be set: it would show every "
         "subscriber another address; digest sends one message each; remove it"),
        ("DKIM-Signature", "v=1", "header DKIM-Signature cannot be set: the relay signs the "
         "message (with a key digest never sees); remove it"),
        ("Feedback-ID", "  ", "header Feedback-ID has no value; give it one or remove it"),
        ("Feedback-ID", "a\r\nBcc: victim@example.net", "header Feedback-ID value "
         "'a\\r\\nBcc: victim@example.net' is not one line of printable ASCII; write it on "
         "one line, without non-ASCII characters"),
        ("Feedback-ID", "Zürich", "header Feedback-ID value 'Zürich' is not one line of "
         "printable ASCII; write it on one line, without non-ASCII characters"),
        ("X-Long", "v" * 991, "header X-Long is longer than 998 characters; shorten its value"),
    ],
)  # fmt: skip
def test_a_bad_extra_header_is_refused_before_any_message(
    name: str, value: str, problem: str
) -> None:
    assert header_problem(name, value) == problem
    info = replace(INFO, headers=(("Feedback-ID", "a:b:c"), (name, value)))
    with pytest.raises(DeliveryError) as caught:
        dry_run(make_issue(), AUDIENCE, info=info)
    assert str(caught.value) == f"{problem} (in the headers setting)"


@pytest.mark.parametrize("name", ["Reply-To", "Sender", "X-Campaign"])
def test_headers_digest_does_not_write_may_be_given(name: str) -> None:
    assert header_problem(name, "news-desk@digest-test.net") is None


def test_an_extra_header_given_twice_is_refused() -> None:
    info = replace(INFO, headers=(("Feedback-ID", "a:b:c"), ("feedback-id", "d:e:f")))
    with pytest.raises(DeliveryError) as caught:
        dry_run(make_issue(), AUDIENCE, info=info)
    assert str(caught.value) == (
        "header feedback-id is given twice; keep one (in the headers setting)"
    )


def test_the_longest_extra_header_line_fits() -> None:
    assert header_problem("X-Long", "v" * 990) is None
    raw = dry_run(
        make_issue(), AUDIENCE[:1], info=replace(INFO, headers=(("X-Long", "v" * 990),))
    ).messages["ada@example.org"]
    assert max(map(len, header_lines(raw))) == 998


_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")


def rfc2047(value: str) -> str:
    """A header value as a mail client shows it (RFC 2047 strictly): unfolded, each encoded
    word decoded on its own (a character split across two fails), the whitespace between
    two adjacent encoded words dropped."""
    value = re.sub(r"\r?\n(?=[ \t])", "", value).strip()
    out: list[str] = []
    pos, after_word = 0, False
    for match in _ENCODED_WORD.finditer(value):
        between = value[pos : match.start()]
        if not (after_word and not between.strip(" \t")):
            out.append(between)
        charset, kind, text = match.groups()
        assert len(match.group(0)) <= 75, match.group(0)
        if kind in "bB":
            raw = base64.b64decode(text, validate=True)
        else:
            raw = re.sub(
                rb"=([0-9A-F]{2})",
                lambda h: bytes([int(h[1], 16)]),
                text.replace("_", " ").encode(),
            )
        out.append(raw.decode(charset))
        pos, after_word = match.end(), True
    return "".join(out) + value[pos:]


def header_lines(raw: bytes) -> list[str]:
    return raw.split(b"\r\n\r\n", 1)[0].decode("ascii").split("\r\n")


def raw_header(raw: bytes, name: str) -> str:
    """A header's value as sent, its folds kept."""
    found = re.search(
        rf"^{name}:([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)",
        raw.split(b"\r\n\r\n", 1)[0].decode("ascii"),
        re.M,
    )
    assert found, name
    return found.group(1)


def display_name(value: str) -> tuple[str, str]:
    """(display name, <address>) of a From or List-Id value: encoded words decoded, or a
    quoted string unquoted."""
    phrase, address = rfc2047(value).rsplit(" ", 1)
    if "=?" not in value and phrase.startswith('"'):
        phrase = re.sub(r"\\(.)", r"\1", phrase[1:-1])
    return phrase, address


NON_ASCII = [
    "résumé, Putin the news 日本 news élan “quoted” the news Zürich",
    "“quoted” the naïve 日本 Ünïcödé, día naïve 日本",
    "Putin Ünïcödé, Trump: — “quoted” Ünïcödé, “quoted” Ünïcödé, résumé, (x)",
    "Zoë’s Digest",
    'Zoë, "the" Digest <x@y>',
    "Ünïcödé " * 12,
    "日本語のニュースダイジェスト" * 4,
]
WORDS = ["Zürich", "talks", "résumé,", "the", "día", "—", "“quoted”", "a", "Putin", "and"]
WORDS += ["Trump:", "élan", "naïve", "日本", "news", "(x)"]
WORDS += ["Ünïcödé,", 'say "hi"', "x" * 30]


@pytest.mark.parametrize("seed", range(8))
def test_non_ascii_headers_read_back_exactly(seed: int) -> None:
    """From, Subject and List-Id in any script, long or short: folded at 78 columns into
    encoded words that a mail client decodes to the very text, not a space lost or added."""
    pick = random.Random(seed)
    texts = NON_ASCII + [
        " ".join(pick.choice(WORDS) for _ in range(pick.randint(1, 40))) for _ in range(6)
    ]
    for n, text in enumerate(texts):
        name, subject, title = text, texts[n - 1], texts[n - 2]
        fake = render.Email(subject=subject, html="<p>x</p>", text="x\n", tokens={})
        info = replace(INFO, from_name=name, site=replace(INFO.site, title=title))
        raw = dry_run(make_issue(), AUDIENCE[:1], render=lambda _i, f=fake: f, info=info)
        message_bytes = raw.messages["ada@example.org"]
        for header in ("From", "Subject", "List-Id"):
            assert (
                max(map(len, f"{header}:{raw_header(message_bytes, header)}".split("\r\n"))) <= 78
            )
        want = " ".join(subject.split())
        assert rfc2047(raw_header(message_bytes, "Subject")) == want
        assert parse(message_bytes)["Subject"] == want  # the stdlib's reader agrees
        assert display_name(raw_header(message_bytes, "From")) == (
            " ".join(name.split()),
            "<digest@example.org>",
        )
        assert display_name(raw_header(message_bytes, "List-Id")) == (
            " ".join(title.split()),
            "<daily.example.org>",
        )


def test_tokens_survive_long_lines_and_long_values() -> None:
    """QP wrapping never splits a token, and long values keep every line within limits."""
    tokens = {"unsubscribe_url": "tok-unsub-0a1b2c", "email": "tok-email-3d4e5f"}
    filler = "Zürich — “quotes” and = signs " * 60
    text = f"{filler}{tokens['email']}{filler}\nUnsubscribe: {tokens['unsubscribe_url']}\n"
    html = f'<p>{filler}</p><a href="{tokens["unsubscribe_url"]}">x</a>{tokens["email"]}{filler}'
    fake = render.Email(subject="Long", html=html, text=text, tokens=tokens)
    long_url = "https://example.org/" + "very-long-path/" * 13
    info = replace(INFO, site=replace(INFO.site, base_url=long_url))
    address = "a.very.long.local.part+newsletter-subscriptions@sub.domain.example.org"
    raw = dry_run(make_issue(), (Subscriber(address),), render=lambda _i: fake, info=info).messages
    message = parse(raw[address])
    url = re.fullmatch(r"<(\S+)>, <\S+>", message["List-Unsubscribe"]).group(1)
    assert len(url) > 200
    body_lines = raw[address].split(b"\r\n\r\n", 1)[1].split(b"\r\n")
    assert max(len(line) for line in body_lines) <= 76
    want_html, want_text = render.personalize(fake, {"unsubscribe_url": url, "email": address})
    plain, rich = message.iter_parts()
    assert plain.get_content().replace("\r\n", "\n") == want_text
    assert rich.get_content() == want_html


@pytest.mark.slow
def test_issue_without_articles_sends_nothing(engine: Engine, mailbox: Mailbox) -> None:
    _, issue = stored_issue(engine)
    empty = replace(issue, articles=())
    report = send(engine, empty, None, mailbox.sender())
    assert (report.articles, report.recipients, report.sent) == (0, 0, 0)
    assert report.summary() == "The issue has no articles: nothing sent."
    assert mailbox.handler.accepted == [] and ledger(engine) == {}


def test_bad_from_address_is_a_config_error() -> None:
    with pytest.raises(DeliveryError) as caught:
        dry_run(make_issue(), AUDIENCE, info=replace(INFO, from_address="digest at example"))
    assert str(caught.value) == (
        "from_address 'digest at example' is not a plain email address; fix from_address"
    )


@pytest.mark.parametrize(
    "base_url", ["https://bücher.example/digest", "https://example.org/my digest"]
)
def test_base_url_must_fit_the_unsubscribe_header(base_url: str) -> None:
    """List-Unsubscribe carries the URL as it is: 8-bit bytes or a space there would break
    the header (and Gmail's one-click unsubscribe)."""
    with pytest.raises(DeliveryError) as caught:
        dry_run(
            make_issue(), AUDIENCE, info=replace(INFO, site=replace(INFO.site, base_url=base_url))
        )
    assert str(caught.value) == (
        f"base_url {base_url!r} is not a plain ASCII URL, which the List-Unsubscribe header "
        "needs; write the host in punycode (xn--…) and percent-encode the path; fix base_url"
    )


# ---------------------------------------------------------------- dry run: the outbox


@pytest.mark.slow
@pytest.mark.parametrize("hint", [None, len(AUDIENCE)])
def test_dry_run_writes_one_eml_per_subscriber(
    engine: Engine, tmp_path: Path, hint: int | None
) -> None:
    _, issue = stored_issue(engine)
    folder = tmp_path / "mail" / "2019-01-01"
    folder.mkdir(parents=True)
    (folder / "gone@example.org.eml").write_bytes(b"stale")
    writer = smtp.OutboxWriter(tmp_path / "mail" / issue.date.isoformat(), recipients=hint)
    report = send(engine, issue, None, writer)
    assert report.sent == 5
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{a}.eml" for a in RECEIVING)
    for address in RECEIVING:
        assert parse((folder / f"{address}.eml").read_bytes())["To"] == address
    assert ledger(engine) == {}
    assert subscribers.count(engine) == len(AUDIENCE)


@pytest.mark.parametrize("hint", [None, len(AUDIENCE)])
def test_dry_run_above_the_limit_writes_one_eml_per_variant(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hint: int | None
) -> None:
    monkeypatch.setattr(smtp, "PER_RECIPIENT_LIMIT", 3)
    _, issue = stored_issue(engine)
    writer = smtp.OutboxWriter(tmp_path / "mail" / issue.date.isoformat(), recipients=hint)
    send(engine, issue, None, writer)
    folder = tmp_path / "mail" / "2019-01-01"
    assert sorted(p.name for p in folder.iterdir()) == [
        "recipients.csv", "variant-001-all.eml", "variant-002-russia.eml",
        "variant-003-summit+usa.eml",
    ]  # fmt: skip
    with (folder / "recipients.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["email", "variant"]
    assert sorted(rows[1:]) == [
        ["ada@example.org", "variant-001-all.eml"],
        ["bob@example.com", "variant-001-all.eml"],
        ["cy@example.org", "variant-002-russia.eml"],
        ["di@example.org", "variant-002-russia.eml"],
        ["ed@example.com", "variant-003-summit+usa.eml"],
    ]
    sample = parse((folder / "variant-002-russia.eml").read_bytes())
    assert sample["To"] == "cy@example.org"
    assert ledger(engine) == {}


def test_marks_do_not_wait_for_the_disk_and_the_store_still_does(
    engine: Engine, mailbox: Mailbox
) -> None:
    """A sender's marks are committed without waiting for the disk (a crash of digest loses
    none; only one of the database's machine could); every other session keeps waiting."""
    issue_id, issue = stored_issue(engine)
    send(engine, issue, issue_id, mailbox.sender())
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        else:
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
    ledger = deliver.Ledger(engine, issue_id, now=NOW)
    conn = ledger._marking()
    if engine.dialect.name == "sqlite":
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    else:
        assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "off"
    ledger.close()
