"""The senders: SMTP on a real aiosmtpd server on loopback, and the outbox's file names."""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from pydantic import SecretStr

from digest import smtp
from digest.errors import DeliveryError, PermanentSendError, TransientSendError

MESSAGE = b"Subject: x\r\n\r\nx\r\n"


@dataclass
class Handler:
    """aiosmtpd handler: records accepted messages; defers, drops or refuses on demand."""

    accepted: list[tuple[str, bytes]] = field(default_factory=list)
    rcpt_tried: list[str] = field(default_factory=list)
    defer: int = 0  # answer 451 to the next N messages
    drop: int = 0  # hang up on the next N messages
    refuse: set[str] = field(default_factory=set)  # 550 at RCPT for these
    refuse_all: str | None = None  # the answer to every RCPT (a relay refusing this sender)
    refuse_all_after: int = 0  # ... once it has taken this many messages
    rcpt_replies: dict[str, str] = field(default_factory=dict)  # an answer for one RCPT
    refuse_all_mail: str | None = None  # the answer to every MAIL FROM
    delay: float = 0.0  # seconds before the 250 (the message is recorded first)
    rcpt_delay: float = 0.0  # seconds before answering RCPT
    logins: list[str] = field(default_factory=list)
    sessions: int = 0  # EHLOs: one a connection without TLS
    mail_replies: list[str] = field(default_factory=list)  # answers to the next MAILs
    data_replies: list[str] = field(default_factory=list)  # answers to the next DATAs
    hang_up_after_data: int = 0  # take the next N messages, then hang up without a reply
    rsets: int = 0
    encrypted: list[bool] = field(default_factory=list)  # one a message: over TLS?
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        with self.lock:
            if self.refuse_all_mail is not None:
                return self.refuse_all_mail
            if self.mail_replies:
                reply = self.mail_replies.pop(0)
                if reply.startswith("421"):  # say it, then hang up
                    asyncio.get_running_loop().call_soon(server.transport.close)
                return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RSET(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.rsets += 1
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        with self.lock:
            self.rcpt_tried.append(address)
        if self.rcpt_delay:
            await asyncio.sleep(self.rcpt_delay)
        if self.refuse_all is not None and len(self.accepted) >= self.refuse_all_after:
            return self.refuse_all
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        if address in self.refuse:
            return "550 5.1.1 <" + address + ">: no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        with self.lock:
            self.sessions += 1
        session.host_name = hostname  # what aiosmtpd does itself when there is no hook
        return responses

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            if self.data_replies:
                return self.data_replies.pop(0)
            if self.hang_up_after_data:
                self.hang_up_after_data -= 1
                self.accepted.append((envelope.rcpt_tos[0], envelope.content))
                server.transport.close()
                return "250 OK"  # never reaches the client: the connection is gone
            if self.drop:
                self.drop -= 1
                server.transport.close()
                return "421 4.3.2 going away"
            if self.defer:
                self.defer -= 1
                return "451 4.3.0 try again later"
            for rcpt in envelope.rcpt_tos:
                self.accepted.append((rcpt, envelope.content))
                self.encrypted.append(session.ssl is not None)
        if self.delay:
            await asyncio.sleep(self.delay)
        return "250 OK"

    def counts(self) -> Counter[str]:
        with self.lock:
            return Counter(rcpt for rcpt, _ in self.accepted)


@dataclass
class Mailbox:
    handler: Handler
    port: int

    def sender(self, **options: Any) -> smtp.SmtpSender:
        return smtp.SmtpSender("127.0.0.1", self.port, **({"timeout": 5.0} | options))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(handler: Handler, **options: Any) -> Iterator[Controller]:
    """An aiosmtpd server on a free loopback port, stopped on the way out."""
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **options)
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    handler = Handler()
    with serving(handler) as controller:
        yield Mailbox(handler, controller.port)


def test_replies_are_transient_or_permanent_and_the_connection_is_reused(mailbox: Mailbox) -> None:
    sender = mailbox.sender()
    sender.send("digest@example.org", "ada@example.org", MESSAGE)
    mailbox.handler.defer = 1
    with pytest.raises(TransientSendError) as deferred:
        sender.send("digest@example.org", "bob@example.org", MESSAGE)
    assert str(deferred.value) == (
        f"SMTP server 127.0.0.1:{mailbox.port} deferred bob@example.org: 451 4.3.0 try again later"
    )
    mailbox.handler.drop = 1
    with pytest.raises(TransientSendError, match="closed the connection"):
        sender.send("digest@example.org", "bob@example.org", MESSAGE)
    mailbox.handler.refuse = {"cy@example.org"}
    with pytest.raises(PermanentSendError) as refused:
        sender.send("digest@example.org", "cy@example.org", MESSAGE)
    assert str(refused.value) == "550 5.1.1 <cy@example.org>: no such user"
    sender.send("digest@example.org", "bob@example.org", MESSAGE)  # reconnected after the drop
    sender.close()
    assert mailbox.handler.counts() == Counter(["ada@example.org", "bob@example.org"])
    assert mailbox.handler.sessions == 2  # one connection, and one more after the drop


def test_refused_connection_is_one_clear_error() -> None:
    port = free_port()
    sender = smtp.SmtpSender("127.0.0.1", port, timeout=5)
    with pytest.raises(DeliveryError) as caught:
        sender.send("digest@example.org", "ada@example.org", b"Subject: x\r\n\r\nx\r\n")
    assert str(caught.value) == (
        f"cannot reach SMTP server 127.0.0.1:{port}: connection refused; check smtp_host and "
        "smtp_port (DIGEST_SMTP_HOST, DIGEST_SMTP_PORT), or use --dry-run"
    )
    assert not isinstance(caught.value, TransientSendError)


def test_credentials_never_sent_without_tls(mailbox: Mailbox) -> None:
    with pytest.raises(DeliveryError, match='smtp_user is set but smtp_tls = "none"'):
        mailbox.sender(user="digest", password=SecretStr("pw"), tls="none")
    sender = mailbox.sender(user="digest", password=SecretStr("pw"))
    with pytest.raises(DeliveryError) as caught:
        sender.send("digest@example.org", "ada@example.org", b"Subject: x\r\n\r\nx\r\n")
    assert "offers no TLS, and the SMTP password is never sent unencrypted" in str(caught.value)
    assert mailbox.handler.logins == [] and mailbox.handler.accepted == []
    with pytest.raises(DeliveryError, match="does not offer STARTTLS, which smtp_tls"):
        mailbox.sender(tls="starttls").send("digest@example.org", "a@example.org", b"x\r\n")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_starttls_then_login(tmp_path: Path) -> None:
    cert, server_tls = self_signed(tmp_path)
    handler = Handler()

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        assert isinstance(data, LoginPassword)
        handler.logins.append(data.login.decode())
        return AuthResult(success=data.password == b"s3cret", handled=False)

    with serving(
        handler, tls_context=server_tls, require_starttls=True, authenticator=authenticate,
        auth_require_tls=True,
    ) as controller:  # fmt: skip
        sender = smtp.SmtpSender(
            "127.0.0.1", controller.port, user="digest", password=SecretStr("s3cret"),
            timeout=5, context=ssl.create_default_context(cafile=str(cert)),
        )  # fmt: skip
        sender.send("digest@example.org", "ada@example.org", b"Subject: x\r\n\r\nx\r\n")
        sender.close()
        wrong = smtp.SmtpSender(
            "127.0.0.1", controller.port, user="digest", password=SecretStr("nope"),
            timeout=5, context=ssl.create_default_context(cafile=str(cert)),
        )  # fmt: skip
        with pytest.raises(DeliveryError, match="refused the login of 'digest'"):
            wrong.send("digest@example.org", "ada@example.org", b"Subject: x\r\n\r\nx\r\n")
    assert set(handler.logins) == {"digest"}  # smtplib tries PLAIN, then LOGIN
    assert [rcpt for rcpt, _ in handler.accepted] == ["ada@example.org"]


def test_outbox_file_names_are_safe() -> None:
    assert smtp._safe_name("ada@example.org", ".eml") == "ada@example.org.eml"
    odd = smtp._safe_name("a/b|c@example.org", ".eml")
    assert re.fullmatch(r"a_b_c@example\.org-[0-9a-f]{8}\.eml", odd)
    assert odd != smtp._safe_name("a_b_c@example.org", ".eml")


def self_signed(tmp_path: Path) -> tuple[Path, ssl.SSLContext]:
    """A certificate for 127.0.0.1 no default trust store accepts, and a server context."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    return cert, server_tls


@pytest.mark.parametrize(
    ("reply", "sessions"),
    [("421 4.7.0 too many messages, closing", 2), ("451 4.3.0 local problem", 1)],
)
def test_busy_reply_to_mail_from_is_transient(mailbox: Mailbox, reply: str, sessions: int) -> None:
    """Rate limits come as a 4xx to MAIL FROM (Gmail's 421 4.7.0): retry, not a config error."""
    mailbox.handler.mail_replies = [reply]
    sender = mailbox.sender()
    with pytest.raises(TransientSendError) as caught:
        sender.send("digest@example.org", "ada@example.org", MESSAGE)
    assert str(caught.value) == (
        f"SMTP server 127.0.0.1:{mailbox.port} deferred ada@example.org: {reply}"
    )
    sender.send("digest@example.org", "ada@example.org", MESSAGE)
    sender.close()
    assert mailbox.handler.counts() == Counter(["ada@example.org"])
    assert mailbox.handler.sessions == sessions  # 421 hangs up: one reconnect


@pytest.mark.parametrize(
    ("reply", "check"),
    [
        ("550 5.1.8 sender address rejected", "from_address"),
        (
            "553 5.7.1 sender not allowed",
            "smtp_user and smtp_password, the relay's policy for this host and from_address, "
            "and whether the relay blocks this IP",
        ),
        (
            "530 5.7.0 Authentication required",
            "smtp_user and smtp_password, the relay's policy for this host and from_address, "
            "and whether the relay blocks this IP",
        ),
    ],
)
def test_refused_sender_stops_the_run(mailbox: Mailbox, reply: str, check: str) -> None:
    """A 5xx to MAIL FROM refuses every message alike: one error naming what to check."""
    mailbox.handler.mail_replies = [reply]
    sender = mailbox.sender()
    with pytest.raises(DeliveryError) as caught:
        sender.send("digest@example.org", "ada@example.org", MESSAGE)
    sender.close()
    assert type(caught.value) is DeliveryError
    assert str(caught.value) == (
        f"SMTP server 127.0.0.1:{mailbox.port} refused the sender digest@example.org: "
        f"{reply}; check {check}; nobody was marked failed: run `digest send` again after the fix"
    )


def test_message_too_big_is_permanent() -> None:
    """552 is about the message, whether the server says so at MAIL FROM (SIZE) or after DATA."""
    handler = Handler()
    big = b"Subject: big\r\n\r\n" + (b"x" * 70 + b"\r\n") * 40
    with serving(handler, data_size_limit=1000) as controller:
        sender = smtp.SmtpSender("127.0.0.1", controller.port, timeout=5)
        with pytest.raises(PermanentSendError) as caught:
            sender.send("digest@example.org", "ada@example.org", big)
        assert str(caught.value) == "552 Error: message size exceeds fixed maximum message size"
        handler.data_replies = ["552 5.3.4 message too big for this mailbox"]
        with pytest.raises(PermanentSendError) as after_data:
            sender.send("digest@example.org", "bob@example.org", MESSAGE)
        assert str(after_data.value) == "552 5.3.4 message too big for this mailbox"
        sender.send("digest@example.org", "cy@example.org", MESSAGE)  # the connection goes on
        sender.close()
    assert handler.counts() == Counter(["cy@example.org"])
    assert handler.sessions == 1


def test_refusals_reset_the_transaction_and_keep_the_connection(mailbox: Mailbox) -> None:
    """After a refusal at RCPT or at DATA the next message starts clean (RSET), same session."""
    mailbox.handler.refuse = {"cy@example.org"}
    sender = mailbox.sender()
    with pytest.raises(PermanentSendError, match=r"^550 5\.1\.1 <cy@example\.org>"):
        sender.send("digest@example.org", "cy@example.org", MESSAGE)
    sender.send("digest@example.org", "ada@example.org", MESSAGE)
    mailbox.handler.data_replies = ["550 5.7.1 content rejected"]
    with pytest.raises(PermanentSendError, match=r"^550 5\.7\.1 content rejected$"):
        sender.send("digest@example.org", "bob@example.org", MESSAGE)
    sender.send("digest@example.org", "di@example.org", MESSAGE)
    sender.close()
    assert mailbox.handler.counts() == Counter(["ada@example.org", "di@example.org"])
    assert mailbox.handler.rsets >= 2 and mailbox.handler.sessions == 1


def test_slow_reply_after_data_is_waited_for(mailbox: Mailbox) -> None:
    """The server has the message once it has the final dot: a timeout there would send it
    again, so that one reply is waited for as long as RFC 5321 says (10 minutes)."""
    mailbox.handler.delay = 0.6
    sender = mailbox.sender(timeout=0.2)
    sender.send("digest@example.org", "ada@example.org", MESSAGE)
    sender.close()
    assert mailbox.handler.counts() == Counter(["ada@example.org"])


def test_timeout_before_data_is_transient_and_sends_once(mailbox: Mailbox) -> None:
    mailbox.handler.rcpt_delay = 0.6
    sender = mailbox.sender(timeout=0.2)
    with pytest.raises(TransientSendError, match="timed out"):
        sender.send("digest@example.org", "ada@example.org", MESSAGE)
    mailbox.handler.rcpt_delay = 0
    sender.send("digest@example.org", "ada@example.org", MESSAGE)
    sender.close()
    assert mailbox.handler.counts() == Counter(["ada@example.org"])
    assert mailbox.handler.sessions == 2


def test_hang_up_after_the_message_is_sent_again(mailbox: Mailbox) -> None:
    """No reply to the final dot: the server may or may not have the message. Sending it
    again is the only way not to lose it, so it may arrive twice (RFC 1047); said so."""
    mailbox.handler.hang_up_after_data = 1
    sender = mailbox.sender()
    with pytest.raises(TransientSendError) as caught:
        sender.send("digest@example.org", "ada@example.org", MESSAGE)
    assert str(caught.value).startswith(
        f"SMTP server 127.0.0.1:{mailbox.port} closed the connection before confirming the "
        "message to ada@example.org (it may have arrived; it is sent again):"
    )
    sender.send("digest@example.org", "ada@example.org", MESSAGE)
    sender.close()
    assert mailbox.handler.counts() == Counter({"ada@example.org": 2})


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_auto_uses_starttls_when_offered_even_with_a_self_signed_certificate(
    tmp_path: Path,
) -> None:
    """With no password to protect, "auto" encrypts whatever certificate the relay shows
    (Debian's Postfix offers STARTTLS with a self-signed one); plain only when not offered."""
    _, server_tls = self_signed(tmp_path)
    handler = Handler()
    with serving(handler, tls_context=server_tls) as controller:
        sender = smtp.SmtpSender("127.0.0.1", controller.port, timeout=5)
        sender.send("digest@example.org", "ada@example.org", MESSAGE)
        sender.close()
    assert handler.encrypted == [True]
    plain = Handler()
    with serving(plain) as controller:
        sender = smtp.SmtpSender("127.0.0.1", controller.port, timeout=5)
        sender.send("digest@example.org", "ada@example.org", MESSAGE)
        sender.close()
    assert plain.encrypted == [False]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_a_password_only_goes_to_a_verified_server(tmp_path: Path) -> None:
    """With a login, or smtp_tls = "starttls", the certificate must check out."""
    _, server_tls = self_signed(tmp_path)
    handler = Handler()

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        handler.logins.append(mechanism)
        return AuthResult(success=True, handled=False)

    with serving(
        handler, tls_context=server_tls, authenticator=authenticate, auth_require_tls=True
    ) as controller:
        for tls in ("auto", "starttls"):
            sender = smtp.SmtpSender(
                "127.0.0.1", controller.port, user="digest", password=SecretStr("pw"), tls=tls,
                timeout=5,
            )  # fmt: skip
            with pytest.raises(DeliveryError) as caught:
                sender.send("digest@example.org", "ada@example.org", MESSAGE)
            assert str(caught.value) == (
                f"the TLS certificate of SMTP server 127.0.0.1:{controller.port} does not verify "
                "(self-signed certificate), and the SMTP password only goes to a verified "
                "server; give the relay a trusted certificate, or connect by the name on it"
            )
        strict = smtp.SmtpSender("127.0.0.1", controller.port, tls="starttls", timeout=5)
        with pytest.raises(DeliveryError) as caught:
            strict.send("digest@example.org", "ada@example.org", MESSAGE)
        assert str(caught.value) == (
            f"the TLS certificate of SMTP server 127.0.0.1:{controller.port} does not verify "
            '(self-signed certificate), and smtp_tls = "starttls" asks for a verified one '
            '("auto" does not); give the relay a trusted certificate, or connect by the name on it'
        )
    assert handler.logins == [] and handler.accepted == []


def test_ctrl_c_mid_message_hangs_up_at_once(mailbox: Mailbox) -> None:
    """Ctrl-C while the server takes its time: closing must not say QUIT into the unfinished
    transaction and wait out the server (up to the ten minutes a final reply may take)."""
    mailbox.handler.delay = 3.0

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    sender = mailbox.sender()
    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(KeyboardInterrupt):
            sender.send("digest@example.org", "ada@example.org", MESSAGE)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    started = time.monotonic()
    sender.close()
    assert time.monotonic() - started < 1.0
