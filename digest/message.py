"""One variant's message as a byte template: headers encoded and folded by hand (RFC 5322,
RFC 2047), both parts quoted-printable (RFC 2045), gaps left for each recipient's values."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import re
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from urllib.parse import urlsplit

from digest.errors import DeliveryError, PermanentSendError
from digest.links import PLAIN_ADDRESS, unsubscribe_url
from digest.models import Issue, Site
from digest.render import Email, one_line

_LINE = 78  # header lines fold at RFC 5322's recommended length
_MAX_LINE = 998  # RFC 5322's hard limit of a line, for what goes out unfolded
_ENCODED_WORD = 75  # RFC 2047's longest encoded word
# Display-name words that need no quoting: RFC 5322 atext.
_ATOMS = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ ]*")
# A URL that can stand in <…> in a header: printable ASCII but space, '"', '<' and '>'.
_HEADER_URL = re.compile(r"[!#-;=?-~]+")
# RFC 5322 ftext: a field name is printable ASCII but ':'.
_FIELD_NAME = re.compile(r"[!-9;-~]+")
# An extra header's value goes out verbatim, unfolded and unencoded: printable ASCII only.
_FIELD_VALUE = re.compile(r"[ -~]*")
# Fields an extra header must not repeat or override: those the message writes itself
# (List-* and Content-* by prefix); Cc/Bcc, which would show an address to every reader
# while the envelope decides who gets the message; Sender/Reply-To, which would send the
# readers' answers elsewhere; and the relay's own trace and signature fields.
_OWN_FIELDS = frozenset(
    {"from", "to", "subject", "date", "message-id", "mime-version", "precedence"}
)  # fmt: skip
_OWN_PREFIXES = ("list-", "content-")
# Extra headers that are not the sender's to write, and why (Reply-To, Sender… are fine).
_NOT_OURS = {
    "cc": "it would show every subscriber another address; digest sends one message each",
    "bcc": "it would show every subscriber another address; digest sends one message each",
    "return-path": "the receiving server writes it from the envelope sender",
    "received": "each server on the way writes its own",
    "dkim-signature": "the relay signs the message (with a key digest never sees)",
    "arc-seal": "the relay signs the message (with a key digest never sees)",
}


@dataclass(frozen=True, slots=True)
class MailInfo:
    """What the messages need from the settings."""

    site: Site
    from_address: str
    from_name: str
    unsubscribe_secret: str
    max_articles: int
    unsubscribe_mailto: str | None = None  # the mailto: alternative in List-Unsubscribe
    headers: tuple[tuple[str, str], ...] = ()  # extra (name, value) fields, e.g. Feedback-ID


@dataclass(frozen=True, slots=True)
class Template:
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
    def build(cls, email: Email, issue: Issue, info: MailInfo, now: datetime) -> Template:
        """The template of one rendered variant (the render's tokens become slots)."""
        sender = _config_address(info.from_address, "from_address")
        extra = _extra_headers(info.headers)
        if not _HEADER_URL.fullmatch(
            unsubscribe_url(info.unsubscribe_secret, sender, info.site.base_url)
        ):
            raise DeliveryError(
                f"base_url {info.site.base_url!r} is not a plain ASCII URL, which the "
                "List-Unsubscribe header needs; write the host in punycode (xn--…) and "
                "percent-encode the path; fix base_url"
            )
        domain = sender.rpartition("@")[2].lower()
        title = one_line(info.site.title)
        boundary = "=_" + hashlib.sha256(" ".join(sorted(issue.tags)).encode()).hexdigest()[:24]
        # NUL marks the recipient slots: no header or QP-encoded body can contain one.
        out = [
            _header("From", _phrase("From", one_line(info.from_name)), f"<{sender}>"),
            b"To: \0to\0\n",
            _header("Subject", _text("Subject", one_line(email.subject))),
            _header("Date", [format_datetime(now)]),
            b"Message-ID: \0message_id\0\n",
            _header(
                "List-Id", _phrase("List-Id", title, quote=True), f"<{info.site.name}.{domain}>"
            ),
            _list_unsubscribe(info),
            # Bulk mail says so, as list servers and newsletter tools do: vacation
            # auto-replies that heed it stay quiet, filters file it as a newsletter.
            b"Precedence: bulk\n",
            extra,
            b"MIME-Version: 1.0\n",
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
            info.site.base_url,
            (f"<{info.site.name}.{issue.date:%Y%m%d}.", f"@{domain}>"),
        )

    def fill(self, address: str) -> bytes:
        """The message to one recipient."""
        if not PLAIN_ADDRESS.fullmatch(address):
            raise PermanentSendError(f"{address!r} is not a plain ASCII address; not sent")
        url = unsubscribe_url(self.secret, address, self.base_url)
        # Its own HMAC input: the unsubscribe token's MAC is HMAC(secret, address), and a
        # Message-ID, quoted in every reply, must not carry a piece of it.
        mark = hmac.digest(self.secret.encode(), b"message-id\0" + address.encode(), "sha256")
        plain_url, plain_address = _qp_crlf(url), _qp_crlf(address)
        html_url, html_address = html.escape(url), html.escape(address)
        values = {
            "to": address.encode(),
            "message_id": f"{self.message_id[0]}{mark.hex()[:12]}{self.message_id[1]}".encode(),
            "url": url.encode(),
            "plain:unsubscribe_url": plain_url,
            "plain:email": plain_address,
            "html:unsubscribe_url": plain_url if html_url == url else _qp_crlf(html_url),
            "html:email": plain_address if html_address == address else _qp_crlf(html_address),
        }
        out = [self.pieces[0]]
        for slot, piece in zip(self.slots, self.pieces[1:], strict=True):
            out += (values[slot], piece)
        return b"".join(out)


def header_problem(name: str, value: str) -> str | None:
    """What is wrong with the extra header ``name: value``, in one line that says what to fix;
    None when it can go out verbatim."""
    if not _FIELD_NAME.fullmatch(name):
        return (
            f"header name {name!r} is not a field name; use printable ASCII without "
            "spaces or ':', e.g. Feedback-ID"
        )
    folded = name.lower()
    if folded in _OWN_FIELDS or folded.startswith(_OWN_PREFIXES):
        return f"header {name} is one digest writes itself; remove it"
    if folded in _NOT_OURS:
        return f"header {name} cannot be set: {_NOT_OURS[folded]}; remove it"
    if not value.strip():
        return f"header {name} has no value; give it one or remove it"
    if not _FIELD_VALUE.fullmatch(value):
        return (
            f"header {name} value {value!r} is not one line of printable ASCII; "
            "write it on one line, without non-ASCII characters"
        )
    if len(name) + 2 + len(value) > _MAX_LINE:
        return f"header {name} is longer than {_MAX_LINE} characters; shorten its value"
    return None


def _list_unsubscribe(info: MailInfo) -> bytes:
    """List-Unsubscribe (RFC 2369), with List-Unsubscribe-Post (RFC 8058) when one-click works.

    RFC 8058 requires the one-click URL to be https; over plain http a receiver must not
    offer the button, so the header is left out rather than sent beside the wrong scheme.
    """
    if info.unsubscribe_mailto is None:
        header = b"List-Unsubscribe: <\0url\0>\n"
    else:
        mailto = _config_address(info.unsubscribe_mailto, "unsubscribe_mailto")
        header = f"List-Unsubscribe: <\0url\0>,\n <mailto:{mailto}?subject=unsubscribe>\n".encode()
    if urlsplit(info.site.base_url).scheme.lower() == "https":
        header += b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\n"
    return header


def _extra_headers(headers: tuple[tuple[str, str], ...]) -> bytes:
    """The extra header lines as given, each checked: none may break or override the message."""
    lines, seen = [], set()
    for name, value in headers:
        problem = header_problem(name, value)
        if problem is None and name.lower() in seen:
            problem = f"header {name} is given twice; keep one"
        if problem:
            raise DeliveryError(f"{problem} (in the headers setting)")
        seen.add(name.lower())
        lines.append(f"{name}: {value}\n".encode("ascii"))
    return b"".join(lines)


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
    if not PLAIN_ADDRESS.fullmatch(address):
        raise DeliveryError(f"{setting} {value!r} is not a plain email address; fix {setting}")
    return address
