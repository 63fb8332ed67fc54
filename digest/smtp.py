"""The two senders: an SMTP relay for real sends, and the outbox writer for ``--dry-run``."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import smtplib
import ssl
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import SecretStr

from digest.errors import DeliveryError, PermanentSendError, TransientSendError
from digest.files import write_atomic

TlsMode = Literal["auto", "starttls", "ssl", "none"]
PER_RECIPIENT_LIMIT = 1000  # above this many recipients a dry run writes one file per variant
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9@._+-]")
_END = b"\r\n.\r\n"
_BEFORE_LEADING_DOT = re.compile(rb"\n(?=\.)")  # a line end the next line's dot follows
# An address smtplib.quoteaddr gives back as <address> unchanged: a dot-atom local part and
# a domain of dot-separated labels (RFC 5321). Anything else goes through quoteaddr.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM_ADDRESS = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
_FINAL_REPLY_WAIT = 600.0  # RFC 5321 4.5.3.2.6: ten minutes for the reply to the final dot


class SmtpSender:
    """Hands messages to an SMTP relay over one connection, reconnecting when it drops.

    STARTTLS is used whenever the server offers it ("auto"), required ("starttls") or
    replaced by implicit TLS ("ssl"). A password is only ever sent over TLS to a server whose
    certificate verifies: with a user and no TLS, connecting fails with a DeliveryError
    instead. With no password to protect, "auto" encrypts whatever certificate the relay
    shows (a local Postfix's self-signed one), as it would otherwise send in the clear.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        user: str | None = None,
        password: SecretStr | str | None = None,
        tls: TlsMode = "auto",
        timeout: float = 30.0,
        context: ssl.SSLContext | None = None,
    ) -> None:
        if user and tls == "none":
            raise DeliveryError(
                'smtp_user is set but smtp_tls = "none": the password would travel '
                'unencrypted; use smtp_tls = "auto", "starttls" or "ssl", or unset smtp_user'
            )
        self._host, self._port = host, port
        self._user, self._password = user, password
        self._tls, self._timeout = tls, timeout
        self._context = context
        self._conn: smtplib.SMTP | None = None
        self._connected_once = False
        self._from: tuple[str, str] = ("", "")  # the last sender, and its quoted form

    def send(self, sender: str, recipient: str, message: bytes) -> None:
        """One message to one recipient; 4xx and lost connections are transient, 5xx not."""
        self.send_confirmed(sender, recipient, message, None)

    def send_confirmed(
        self,
        sender: str,
        recipient: str,
        message: bytes,
        confirm: Callable[[], None] | None,
    ) -> None:
        """``send``, calling ``confirm()`` once the relay is ready for the message and before
        its final dot: when it raises, the connection is dropped and nothing handed over.

        The SMTP transaction is spelled out (not smtplib's sendmail) so that each reply is
        judged where it comes (a 4xx to MAIL FROM is a busy server, not a bad sender), and to
        tell a connection lost before the final dot, when the server cannot have the message,
        from one lost after it, when it may. The reply to the dot is waited for as long as
        RFC 5321 asks: giving up sooner sends a message the server already took once more.
        """
        conn = self._connection()
        sent_dot = False
        try:
            options = [f"SIZE={len(message)}"] if conn.has_extn("size") else []
            if conn.has_extn("pipelining"):
                self._envelope_pipelined(conn, sender, recipient, options)
            else:
                self._envelope(conn, sender, recipient, options)
            if confirm is not None:
                try:
                    confirm()
                except BaseException:
                    self._drop()  # amid DATA: a QUIT now would be read as message text
                    raise
            conn.send(_data(message))
            sent_dot = True
            if conn.sock is not None:
                conn.sock.settimeout(max(self._timeout, _FINAL_REPLY_WAIT))
            code, reply = conn.getreply()
            if conn.sock is not None:
                conn.sock.settimeout(self._timeout)
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            if sent_dot:
                raise TransientSendError(
                    f"{self._where} closed the connection before confirming the message to "
                    f"{recipient} (it may have arrived; it is sent again): {_why(exc)}"
                ) from exc
            raise TransientSendError(f"{self._where} failed: {_why(exc)}") from exc
        except DeliveryError:
            raise  # a refusal: the connection is reset or dropped already
        except BaseException:
            self._drop()  # Ctrl-C mid-transaction: a QUIT now would be read as message text
            raise
        if not 200 <= code < 300:
            raise self._refused(conn, code, reply, recipient)

    def _envelope(
        self, conn: smtplib.SMTP, sender: str, recipient: str, options: list[str]
    ) -> None:
        """MAIL FROM, RCPT TO and DATA, each waiting for its reply; raises on a refusal."""
        code, reply = conn.mail(sender, options)
        if code != 250:
            raise self._refused(conn, code, reply, recipient, sender=sender)
        code, reply = conn.rcpt(recipient)
        if code not in (250, 251):
            raise self._refused(conn, code, reply, recipient)
        code, reply = conn.docmd("DATA")
        if code != 354:
            raise self._refused(conn, code, reply, recipient)

    def _envelope_pipelined(
        self, conn: smtplib.SMTP, sender: str, recipient: str, options: list[str]
    ) -> None:
        """The same three commands in one write, then their replies in order (RFC 2920, for
        a server that offers PIPELINING): one round trip instead of three."""
        extra = "".join(f" {option}" for option in options)
        if self._from[0] != sender:
            self._from = (sender, _quoted(sender))
        conn.send(f"MAIL FROM:{self._from[1]}{extra}\r\nRCPT TO:{_quoted(recipient)}\r\nDATA\r\n")
        mail, rcpt, data = conn.getreply(), conn.getreply(), conn.getreply()
        if data[0] == 354 and (mail[0] != 250 or rcpt[0] not in (250, 251)):
            # The server waits for a message that has no sender or recipient: end it empty
            # (it refuses it), so the reset that follows is read as a command.
            conn.send(b".\r\n")
            conn.getreply()
        if mail[0] != 250:
            raise self._refused(conn, *mail, recipient, sender=sender)
        if rcpt[0] not in (250, 251):
            raise self._refused(conn, *rcpt, recipient)
        if data[0] != 354:
            raise self._refused(conn, *data, recipient)

    def close(self) -> None:
        """Say QUIT and hang up (a server that is gone already is fine)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.quit()
            except (OSError, smtplib.SMTPException):
                conn.close()

    @property
    def _where(self) -> str:
        return f"SMTP server {self._host}:{self._port}"

    def _connection(self) -> smtplib.SMTP:
        if self._conn is None:
            try:
                self._conn = self._connect()
            except ssl.SSLCertVerificationError as exc:
                why = (
                    "the SMTP password only goes to a verified server"
                    if self._user
                    else f'smtp_tls = "{self._tls}" asks for a verified one ("auto" does not)'
                )
                raise DeliveryError(
                    f"the TLS certificate of {self._where} does not verify "
                    f"({exc.verify_message}), and {why}; give the relay a trusted "
                    "certificate, or connect by the name on it"
                ) from exc
            except (OSError, smtplib.SMTPException) as exc:
                if self._connected_once and not isinstance(exc, smtplib.SMTPAuthenticationError):
                    raise TransientSendError(f"cannot reconnect to {self._where}: {exc}") from exc
                raise DeliveryError(
                    f"cannot reach {self._where}: {_why(exc)}; check smtp_host and smtp_port "
                    "(DIGEST_SMTP_HOST, DIGEST_SMTP_PORT), or use --dry-run"
                ) from exc
            self._connected_once = True
        return self._conn

    def _connect(self) -> smtplib.SMTP:
        context = self._context or ssl.create_default_context()
        if self._context is None and self._tls == "auto" and not self._user:
            # Opportunistic (RFC 7435): an unchecked certificate still beats plain text.
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        conn: smtplib.SMTP
        if self._tls == "ssl":
            conn = smtplib.SMTP_SSL(self._host, self._port, timeout=self._timeout, context=context)
        else:
            conn = smtplib.SMTP(self._host, self._port, timeout=self._timeout)
        try:
            conn.ehlo()
            secure = self._tls == "ssl"
            if self._tls in ("auto", "starttls") and conn.has_extn("starttls"):
                conn.starttls(context=context)
                conn.ehlo()
                secure = True
            elif self._tls == "starttls":
                raise DeliveryError(
                    f'{self._where} does not offer STARTTLS, which smtp_tls = "starttls" '
                    'requires; use smtp_tls = "ssl" (port 465) or another relay'
                )
            if self._user:
                if not secure:
                    raise DeliveryError(
                        f"{self._where} offers no TLS, and the SMTP password is never sent "
                        'unencrypted; use smtp_tls = "ssl", a relay with STARTTLS, or unset '
                        "smtp_user for a local relay"
                    )
                password = self._password or ""
                if isinstance(password, SecretStr):
                    password = password.get_secret_value()
                conn.login(self._user, password)
        except smtplib.SMTPAuthenticationError as exc:
            conn.close()
            raise DeliveryError(
                f"{self._where} refused the login of {self._user!r} ({_why(exc)}); "
                "check smtp_user and smtp_password"
            ) from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _refused(
        self, conn: smtplib.SMTP, code: int, reply: bytes, recipient: str, *, sender: str = ""
    ) -> DeliveryError:
        """The error for a refusal, the connection reset (RSET) or, after a 421, dropped.

        A 5xx to MAIL FROM refuses every message alike (the sender, the login), so it stops
        the run, but for 552: the message is too big (SIZE), which only fails its recipients.
        """
        shown = _reply(code, reply)
        if code == 421 or not 400 <= code < 600:
            self._drop()
        else:
            self._reset(conn)
        if 400 <= code < 500:
            return TransientSendError(f"{self._where} deferred {recipient}: {shown}")
        if sender and code != 552:
            check = "from_address"
            if code in (530, 535) or shown.startswith((f"{code} 5.7.", f"{code} 5.3.")):
                check = (
                    "smtp_user and smtp_password, the relay's policy for this host and "
                    "from_address, and whether the relay blocks this IP"
                )
            return DeliveryError(
                f"{self._where} refused the sender {sender}: {shown}; check {check}; "
                "nobody was marked failed: run `digest send` again after the fix"
            )
        if not 500 <= code < 600:
            return TransientSendError(f"{self._where} answered {recipient} with {shown}")
        return PermanentSendError(shown)

    def _reset(self, conn: smtplib.SMTP) -> None:
        try:
            conn.rset()
        except (OSError, smtplib.SMTPException):
            self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def _data(message: bytes) -> bytes:
    """The message as DATA sends it: each line starting with '.' dot-stuffed (RFC 5321
    4.5.2), then the final dot. Lines end at LF, as smtplib's own stuffing reads them."""
    stuffed = _BEFORE_LEADING_DOT.sub(b"\n.", message)  # (bytes.replace takes 3× as long)
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    return stuffed + (b".\r\n" if stuffed.endswith(b"\r\n") else _END)


def _quoted(address: str) -> str:
    """``<address>`` for MAIL FROM and RCPT TO, as smtplib.quoteaddr writes it (which parses
    the address as a header would: the plain ones need no parsing)."""
    if _DOT_ATOM_ADDRESS.fullmatch(address):
        return f"<{address}>"
    return smtplib.quoteaddr(address)


def _why(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return _reply(exc.smtp_code, exc.smtp_error)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


def _reply(code: int, reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return f"{code} {' '.join(text.split())}"


class OutboxWriter:
    """The ``--dry-run`` sender: what would go out, as .eml files in ``directory``
    (outbox/preview/YYYY-MM-DD/mail/).

    Up to 1,000 recipients, one file per recipient; above that, one file per variant (the
    message of its first recipient) plus recipients.csv (email, variant file). The folder's
    .eml files from an earlier run are cleared on construction. Pass ``recipients`` when the
    count is known; else both kinds are written until the count decides, the other dropped.
    """

    def __init__(self, directory: Path, *, recipients: int | None = None) -> None:
        self.directory = directory
        self._clear()
        self._many = None if recipients is None else recipients > PER_RECIPIENT_LIMIT
        self._recipients = 0
        self._variants = 0
        self._variant_file: str | None = None
        self._tags: frozenset[str] = frozenset()
        self._variant_paths: list[Path] = []
        self._recipient_paths: list[Path] = []
        self._csv = _StreamingFile(self.directory / "recipients.csv")
        self._closed = False

    def begin_variant(self, tags: frozenset[str], articles: int) -> None:
        """The next recipients get the variant for ``tags``."""
        self._variants += 1
        self._variant_file = None
        self._tags = tags

    def send(self, sender: str, recipient: str, message: bytes) -> None:
        """Write the message where the operator can read it."""
        self._recipients += 1
        if self._many is not False:
            if self._variant_file is None:
                slug = "+".join(sorted(self._tags)) or "all"
                self._variant_file = _safe_name(f"variant-{self._variants:03d}-{slug}", ".eml")
                path = self.directory / self._variant_file
                write_atomic(path, message)
                self._variant_paths.append(path)
            self._csv.write_row(recipient, self._variant_file)
        if self._many is None and self._recipients > PER_RECIPIENT_LIMIT:
            self._many = True
            for path in self._recipient_paths:
                path.unlink(missing_ok=True)
        if not self._many:
            path = self.directory / _safe_name(recipient, ".eml")
            write_atomic(path, message)
            if self._many is None:
                self._recipient_paths.append(path)

    def close(self) -> None:
        """Keep either the per-recipient files or the per-variant files and recipients.csv."""
        if self._closed:
            return
        self._closed = True
        if self._many:
            self._csv.commit()
            return
        self._csv.discard()
        for path in self._variant_paths:
            path.unlink(missing_ok=True)

    def _clear(self) -> None:
        try:
            if not self.directory.is_dir():
                return
            for path in self.directory.iterdir():
                if path.suffix == ".eml" or path.name.startswith(("recipients.csv", ".")):
                    path.unlink(missing_ok=True)
        except OSError as exc:
            raise DeliveryError(
                f"cannot clear {self.directory}: {exc.strerror or exc}; check outbox_dir"
            ) from exc


class _StreamingFile:
    """A CSV written row by row to a temp file beside it, renamed into place when complete.

    (files.write_atomic needs the whole content at once; a million rows need not be held.)
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._tmp = path
        self._handle: io.TextIOWrapper | None = None

    def write_row(self, *cells: str) -> None:
        try:
            if self._handle is None:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(
                    dir=self._path.parent, prefix=f".{self._path.name}.", suffix=".tmp"
                )
                self._tmp = Path(tmp)
                self._handle = open(fd, "w", encoding="utf-8", newline="")  # noqa: SIM115
                _write_row(self._handle, ("email", "variant"))
            _write_row(self._handle, cells)
        except OSError as exc:
            raise self._error(exc) from exc

    def commit(self) -> None:
        if self._handle is None:
            return
        try:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            os.chmod(self._tmp, 0o644)
            os.replace(self._tmp, self._path)
        except OSError as exc:
            raise self._error(exc) from exc

    def discard(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._tmp.unlink(missing_ok=True)

    def _error(self, exc: OSError) -> DeliveryError:
        return DeliveryError(f"cannot write {self._path}: {exc.strerror or exc}; check outbox_dir")


# A spreadsheet reads a cell starting with one of these as a formula (=HYPERLINK(…), DDE), and
# an address may start with =, + or - (OWASP, "CSV Injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _write_row(handle: io.TextIOWrapper, cells: tuple[str, ...]) -> None:
    """One CSV row a spreadsheet shows as text: a formula's first character behind a ', and
    every cell quoted (a spreadsheet splitting at ';' still sees one text cell)."""
    inert = ["'" + cell if cell.startswith(_FORMULA_START) else cell for cell in cells]
    csv.writer(handle, quoting=csv.QUOTE_ALL).writerow(inert)


def _safe_name(name: str, suffix: str) -> str:
    """A file name from an address or label: safe characters only, unique, not too long."""
    safe = _UNSAFE_NAME.sub("_", name)
    if safe != name or len(safe) > 120:
        safe = f"{safe[:120]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
    return safe + suffix
