"""Deliver an issue: one message per subscriber, one rendering per variant, a send ledger.

Subscribers arrive ordered by tag set, so each variant is rendered and made a MIME template
once; a recipient's message is that template's bytes joined around their own To, Message-ID
and unsubscribe values. The senders (SMTP, and the outbox for dry runs) are in digest.smtp.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from itertools import groupby, islice
from typing import Protocol, runtime_checkable

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from digest.errors import DeliveryError
from digest.links import unsubscribe_url
from digest.models import Issue, Subscriber
from digest.render import Email, one_line
from digest.schema import sends
from digest.store import reason

_CLAIM_BATCH = 200
_FAILED_SHOWN = 100
_MAX_BACKOFF = 60.0
_GIVE_UP_AFTER = 3  # recipients in a row whose retries all failed: the server is down
_LINE = 78  # header lines fold at RFC 5322's recommended length (998 is the hard limit)
_ENCODED_WORD = 75  # RFC 2047's longest encoded word
# Display-name words that need no quoting: RFC 5322 atext.
_ATOMS = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ ]*")
# A URL that can stand in <…> in a header: printable ASCII but space, '"', '<' and '>'.
_HEADER_URL = re.compile(r"[!#-;=?-~]+")
# An address that is safe as it stands in a header and an SMTP command: no space, no
# brackets or separators, ASCII (subscribers.normalize only stores such addresses).
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.]+@[A-Za-z0-9.-]+")


class TransientSendError(DeliveryError):
    """The server may take the message later: a 4xx reply, a dropped connection, a timeout."""


class PermanentSendError(DeliveryError):
    """The server refused the message for good (a 5xx reply): never retried."""


class Sender(Protocol):
    """Hands one message to the mail system; raises TransientSendError or PermanentSendError."""

    def send(self, sender: str, recipient: str, message: bytes) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class VariantAware(Protocol):
    """A sender that wants to know where each variant's run of recipients starts."""

    def begin_variant(self, tags: frozenset[str], articles: int) -> None: ...


@dataclass(frozen=True, slots=True)
class MailInfo:
    """What the messages need from the settings."""

    from_address: str
    from_name: str
    title: str
    digest_name: str
    base_url: str
    unsubscribe_secret: str
    unsubscribe_mailto: str
    max_articles: int


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
            template = _Template.build(render(chosen), chosen, info, now)
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

    def send(self, template: _Template, email: str) -> None:
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
        self._now = now.astimezone(UTC).replace(tzinfo=None)

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


@dataclass(frozen=True, slots=True)
class _Template:
    """One variant's message as bytes with gaps for each recipient's values.

    Both parts are quoted-printable, UTF-8: the encoding never touches the render's tokens
    (ASCII letters, digits, '-'), and each token stands on a line of its own between soft
    line breaks, so a recipient's value goes in by joining bytes, QP-encoded and wrapped
    at 76 columns itself. Nothing of the article text is encoded or templated again.
    """

    pieces: tuple[bytes, ...]  # one more than slots
    slots: tuple[str, ...]  # "to", "message_id", "url", or "<part>:<token name>"
    envelope_from: str
    secret: str
    base_url: str
    message_id: tuple[str, str]  # what goes before and after the address's hash

    @classmethod
    def build(cls, email: Email, issue: Issue, info: MailInfo, now: datetime) -> _Template:
        """The template of one rendered variant (the render's tokens become slots)."""
        sender = _config_address(info.from_address, "from_address")
        mailto = _config_address(info.unsubscribe_mailto, "unsubscribe_mailto")
        if not _HEADER_URL.fullmatch(
            unsubscribe_url(info.unsubscribe_secret, sender, info.base_url)
        ):
            raise DeliveryError(
                f"base_url {info.base_url!r} is not a plain ASCII URL, which the "
                "List-Unsubscribe header needs; write the host in punycode (xn--…) and "
                "percent-encode the path; fix base_url"
            )
        domain = sender.rpartition("@")[2].lower()
        title = one_line(info.title)
        boundary = "=_" + hashlib.sha256(" ".join(sorted(issue.tags)).encode()).hexdigest()[:24]
        # NUL marks the recipient slots: no header or QP-encoded body can contain one.
        out = [
            _header("From", _phrase("From", one_line(info.from_name)), f"<{sender}>"),
            b"To: \0to\0\n",
            _header("Subject", _text("Subject", one_line(email.subject))),
            _header("Date", [format_datetime(now)]),
            b"Message-ID: \0message_id\0\n",
            _header(
                "List-Id", _phrase("List-Id", title, quote=True), f"<{info.digest_name}.{domain}>"
            ),
            f"List-Unsubscribe: <\0url\0>,\n <mailto:{mailto}?subject=unsubscribe>\n".encode(),
            b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\nMIME-Version: 1.0\n",
            f'Content-Type: multipart/alternative; boundary="{boundary}"\n\n'.encode(),
        ]
        names = {token: name for name, token in email.tokens.items()}
        split = re.compile("(" + "|".join(map(re.escape, names)) + ")") if names else None
        for part, body in (("plain", email.text), ("html", email.html)):
            out.append(
                f'--{boundary}\nContent-Type: text/{part}; charset="utf-8"\n'
                "Content-Transfer-Encoding: quoted-printable\n\n".encode()
            )
            chunks = split.split(_lf(body)) if split else [_lf(body)]
            for i, chunk in enumerate(chunks):
                if i % 2:
                    out.append(f"=\n\0{part}:{names[chunk]}\0=\n".encode())
                elif chunk:
                    out.append(_qp(chunk, before_slot=i + 1 < len(chunks)))
            out.append(b"\n")
        out.append(f"--{boundary}--\n".encode())
        split_at_slots = b"".join(out).replace(b"\n", b"\r\n").split(b"\0")
        return cls(
            tuple(split_at_slots[0::2]),
            tuple(slot.decode() for slot in split_at_slots[1::2]),
            sender,
            info.unsubscribe_secret,
            info.base_url,
            (f"<{info.digest_name}.{issue.date:%Y%m%d}.", f"@{domain}>"),
        )

    def fill(self, address: str) -> bytes:
        """The message to one recipient."""
        if not _PLAIN_ADDRESS.fullmatch(address):
            raise PermanentSendError(f"{address!r} is not a plain ASCII address; not sent")
        url = unsubscribe_url(self.secret, address, self.base_url)
        # Its own HMAC input: the unsubscribe token's MAC is HMAC(secret, address), and a
        # Message-ID, quoted in every reply, must not carry a piece of it.
        mark = hmac.new(self.secret.encode(), b"message-id\0" + address.encode(), hashlib.sha256)
        mac = mark.hexdigest()[:12]
        values = {
            "to": address.encode(),
            "message_id": f"{self.message_id[0]}{mac}{self.message_id[1]}".encode(),
            "url": url.encode(),
            "plain:unsubscribe_url": _qp_crlf(url),
            "plain:email": _qp_crlf(address),
            "html:unsubscribe_url": _qp_crlf(html.escape(url)),
            "html:email": _qp_crlf(html.escape(address)),
        }
        out = [self.pieces[0]]
        for slot, piece in zip(self.slots, self.pieces[1:], strict=True):
            out += (values[slot], piece)
        return b"".join(out)


def _header(name: str, words: list[str], last: str = "") -> bytes:
    """``Name: words last``, folded between words at 78 columns (RFC 5322's line length)."""
    lines = [f"{name}:"]
    for word in [*words, last] if last else words:
        if len(lines[-1]) + 1 + len(word) > _LINE and lines[-1] != f"{name}:":
            lines.append("")
        lines[-1] += " " + word
    return ("\n".join(lines) + "\n").encode("ascii")


def _text(name: str, text: str) -> list[str]:
    """The words of an unstructured header (Subject): as they are, or encoded."""
    if _plain(text):
        return text.split()
    return _encoded_words(text, len(name) + 2)


def _phrase(name: str, text: str, *, quote: bool = False) -> list[str]:
    """The words of a display name (From, List-Id): atoms, a quoted string or encoded words.
    Folding may break a quoted string at its spaces (RFC 5322 FWS)."""
    if not _plain(text):
        return _encoded_words(text, len(name) + 2)
    if _ATOMS.fullmatch(text) and not quote:
        return text.split()
    return ('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"').split(" ")


def _plain(text: str) -> bool:
    """ASCII that needs no encoding: nothing a reader would decode, no word beyond a line."""
    return text.isascii() and "=?" not in text and all(len(w) < _LINE for w in text.split())


def _encoded_words(text: str, taken: int) -> list[str]:
    """``text`` as RFC 2047 encoded words of whole characters, at most 75 columns each and
    the first within what is left of a line of which ``taken`` columns are used.

    The spaces of the text go inside the words: readers drop the whitespace between two
    encoded words, which is where Python's own folder puts them (a space lost).
    """
    words: list[str] = []
    chunk = b""
    room = min(_ENCODED_WORD, _LINE - taken)
    for char in text:
        raw = char.encode()
        if chunk and 12 + 4 * -(-(len(chunk) + len(raw)) // 3) > room:
            words.append(f"=?utf-8?b?{base64.b64encode(chunk).decode()}?=")
            chunk, room = b"", _ENCODED_WORD
        chunk += raw
    if chunk:
        words.append(f"=?utf-8?b?{base64.b64encode(chunk).decode()}?=")
    return words


def _qp(text: str, *, before_slot: bool = True) -> bytes:
    """Quoted-printable UTF-8 (LF line ends) in lines of at most 76 columns, as RFC 2045 asks.

    binascii makes a 77th column where it encodes a line's trailing tab, and before a slot
    (or as a slot's value) the last line needs a column for the soft break that follows.
    """
    lines = binascii.b2a_qp(text.encode("utf-8")).split(b"\n")
    out = []
    for n, line in enumerate(lines):
        limit = 75 if before_slot and n == len(lines) - 1 else 76
        while len(line) > limit:
            cut = limit - 1
            if b"=" in line[cut - 2 : cut]:  # never inside an =XX
                cut = line.rindex(b"=", cut - 2, cut)
            out.append(line[:cut] + b"=")
            line = line[cut:]
        out.append(line)
    return b"\n".join(out)


def _qp_crlf(text: str) -> bytes:
    return _qp(text).replace(b"\n", b"\r\n")


def _lf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _config_address(value: str, setting: str) -> str:
    address = value.strip()
    if not _PLAIN_ADDRESS.fullmatch(address):
        raise DeliveryError(f"{setting} {value!r} is not a plain email address; fix {setting}")
    return address


def _batches(items: Iterable[Subscriber], size: int) -> Iterator[list[Subscriber]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch
