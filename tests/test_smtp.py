"""The senders: SMTP on a real aiosmtpd server on loopback, and the outbox's file names."""

from __future__ import annotations

import csv
import re
import shutil
import signal
import smtplib
import ssl
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from pydantic import SecretStr

from digest import smtp
from digest.errors import DeliveryError, PermanentSendError, TransientSendError

from .conftest import Handler, Mailbox, free_port, serving

pytestmark = pytest.mark.slow  # a real SMTP server on loopback in every test

MESSAGE = b"Subject: x\r\n\r\nx\r\n"


@pytest.fixture(params=[False, True], ids=["one-by-one", "pipelined"])
def relay(request: pytest.FixtureRequest) -> Iterator[Handler]:
    """The relay of conftest, offering PIPELINING or not: each sender test runs both ways,
    the commands waiting for each reply, or MAIL, RCPT and DATA in one write."""
    handler = Handler(pipelining=request.param)
    with serving(handler):
        yield handler


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


def test_a_confirmation_that_fails_before_the_final_dot_hands_nothing_over(
    mailbox: Mailbox,
) -> None:
    """send_confirmed calls back once the relay waits for the message (the ledger's mark of
    the one before is confirmed meanwhile); when that raises, the message is not the relay's."""
    calls: list[int] = []

    def fails() -> None:
        calls.append(mailbox.handler.sessions)
        raise DeliveryError("cannot record the send to ada@example.org in the ledger")

    sender = mailbox.sender()
    with pytest.raises(DeliveryError, match="cannot record the send"):
        sender.send_confirmed("digest@example.org", "bob@example.org", MESSAGE, fails)
    sender.send_confirmed("digest@example.org", "cy@example.org", MESSAGE, lambda: calls.append(0))
    sender.close()
    assert calls == [1, 0]
    assert mailbox.handler.counts() == Counter(["cy@example.org"])
    assert (
        mailbox.handler.sessions == 2
    )  # the first dropped amid DATA, not QUIT (read as message text)


def test_slow_reply_after_data_is_waited_for(mailbox: Mailbox) -> None:
    """The server has the message once it has the final dot: a timeout there would send it
    again, so that one reply is waited for as long as RFC 5321 says (10 minutes)."""
    mailbox.handler.delay = 1.5  # the timeout, and more: a loaded machine answers late anyway
    sender = mailbox.sender(timeout=1.0)
    sender.send("digest@example.org", "ada@example.org", MESSAGE)
    sender.close()
    assert mailbox.handler.counts() == Counter(["ada@example.org"])


def test_timeout_before_data_is_transient_and_sends_once(mailbox: Mailbox) -> None:
    mailbox.handler.rcpt_delay = 30.0  # no answer before the client gives up (a stop ends it)
    sender = mailbox.sender(timeout=1.0)
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
    mailbox.handler.stall_after = 0  # it has the message, and holds its 250

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    def press_ctrl_c_once_the_server_has_it() -> None:
        deadline = time.monotonic() + 30
        while not mailbox.handler.accepted and time.monotonic() < deadline:
            time.sleep(0.01)
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGALRM)

    sender = mailbox.sender()
    previous = signal.signal(signal.SIGALRM, interrupt)
    presser = threading.Thread(target=press_ctrl_c_once_the_server_has_it)
    try:
        presser.start()
        with pytest.raises(KeyboardInterrupt):
            sender.send("digest@example.org", "ada@example.org", MESSAGE)
    finally:
        presser.join(timeout=40)
        signal.signal(signal.SIGALRM, previous)
    assert mailbox.handler.accepted  # the interrupt came mid-message
    started = time.monotonic()
    sender.close()
    assert time.monotonic() - started < 1.0


# Each would start a formula in a spreadsheet that opens recipients.csv (OWASP: CSV injection).
FORMULAS = ["=1+2@example.org", "+1@example.org", "-1@example.org", "@x", "\t=1@x", "\r=1@x"]


def test_recipients_csv_cells_never_start_a_formula(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(smtp, "PER_RECIPIENT_LIMIT", 1)
    writer = smtp.OutboxWriter(tmp_path, recipients=len(FORMULAS) + 1)
    writer.begin_variant(frozenset(), 1)
    for address in [*FORMULAS, "ada@example.org"]:
        writer.send("digest@example.org", address, b"Subject: x\r\n\r\nbody\r\n")
    writer.close()
    text = (tmp_path / "recipients.csv").read_bytes().decode()
    with (tmp_path / "recipients.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows == [
        ["email", "variant"],
        *(["'" + address, "variant-001-all.eml"] for address in FORMULAS),
        ["ada@example.org", "variant-001-all.eml"],
    ]
    # Every cell quoted too: a spreadsheet splitting at ';' still sees one text cell.
    assert text.startswith('"email","variant"\r\n"\'=1+2@example.org","variant-001-all.eml"\r\n')


def test_a_relay_offering_pipelining_gets_the_envelope_in_one_write(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With PIPELINING offered, MAIL, RCPT and DATA go out together (none of smtplib's
    one-command-one-reply calls is made), and each reply is still judged on its own."""
    handler = Handler(pipelining=True)

    def one_by_one(*_: Any, **__: Any) -> Any:
        raise AssertionError("a command waited for its reply")

    with serving(handler):
        sender = smtp.SmtpSender("127.0.0.1", handler.port, timeout=5)
        monkeypatch.setattr(smtplib.SMTP, "mail", one_by_one)
        monkeypatch.setattr(smtplib.SMTP, "rcpt", one_by_one)
        sender.send("digest@example.org", "ada@example.org", MESSAGE)
        handler.refuse = {"bob@example.org"}
        with pytest.raises(PermanentSendError, match=re.escape("550 5.1.1 <bob@example.org>")):
            sender.send("digest@example.org", "bob@example.org", MESSAGE)
        sender.send("digest@example.org", "cy@example.org", MESSAGE)
        sender.close()
    assert handler.counts() == Counter(["ada@example.org", "cy@example.org"])
    assert handler.sessions == 1


@pytest.mark.parametrize(
    "recipient", ["ada@example.org", "o'neil+news@mail.example.org", "Ada <ada@example.org>"]
)
def test_lines_starting_with_a_dot_and_any_address_arrive_as_written(
    relay: Handler, recipient: str
) -> None:
    """Lines starting with '.' are dot-stuffed on the wire and arrive as written, and each
    envelope address is the one smtplib writes (plain ones unparsed, others through its
    parser)."""
    message = b".starts\r\nSubject: x\r\n\r\n.\r\n..two\r\nmid.dle\r\n.\r\nend."
    sender = smtp.SmtpSender("127.0.0.1", relay.port, tls="none", timeout=5)
    sender.send("digest@example.org", recipient, message)
    sender.close()
    expected = smtplib.quoteaddr(recipient).strip("<>")
    assert relay.accepted == [(expected, message + b"\r\n")]
