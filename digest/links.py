"""Public URLs of what digest publishes, and the unsubscribe token that goes in them."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable
from datetime import date
from urllib.parse import quote, urlsplit

from digest.models import Article

_MAC_BYTES = 16
# An address that is safe as it stands in a header and an SMTP command: no space, no
# brackets or separators, ASCII (subscribers.normalize only stores such addresses).
PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.]+@[A-Za-z0-9.-]+")


def article_link(article: Article, base_url: str) -> str:
    """The article's own web URL, or its cleaned page in the outbox when it has none."""
    return web_url(article.url) or f"{base_url.rstrip('/')}/articles/{article.id}.html"


def web_url(url: str | None) -> str | None:
    """Only http(s) URLs become links: a scraped ``javascript:`` URL must not."""
    return url if url and urlsplit(url).scheme.lower() in ("http", "https") else None


def issue_link(issue_date: date, base_url: str, tags: Iterable[str] = ()) -> str:
    """The browser version of an issue, or of its variant for ``tags``."""
    folder = f"{base_url.rstrip('/')}/{issue_page(issue_date)}"
    return folder if not tags else folder + variant_page(tags)


def issue_page(issue_date: date) -> str:
    """Where an issue's page lives under outbox/ (its index.html)."""
    return f"issues/{issue_date.isoformat()}/"


def variant_page(tags: Iterable[str]) -> str:
    """The file name of a variant's page beside its issue's index.html (tag slugs are
    [a-z0-9-], so "+" between them keeps the name a plain URL)."""
    return "+".join(sorted(tags)) + ".html"


def unsubscribe_token(secret: str, email: str) -> str:
    """``<address>.<mac>``, both base64url: only the holder of ``secret`` can make one."""
    address = email.encode("utf-8")
    mac = hmac.digest(secret.encode("utf-8"), address, "sha256")[:_MAC_BYTES]
    return f"{_b64(address)}.{_b64(mac)}"


def verify_unsubscribe_token(secret: str, token: str) -> str | None:
    """The address a genuine token names, or None for a forged, altered or malformed one."""
    head, dot, tail = token.partition(".")
    if not dot:
        return None
    try:
        address = _unb64(head)
        mac = _unb64(tail)
        email = address.decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    expected = hmac.new(secret.encode("utf-8"), address, hashlib.sha256).digest()[:_MAC_BYTES]
    return email if hmac.compare_digest(mac, expected) else None


def unsubscribe_url(secret: str, email: str, base_url: str) -> str:
    """The one-click (RFC 8058) unsubscribe URL of one subscriber."""
    token = quote(unsubscribe_token(secret, email), safe="")
    return f"{base_url.rstrip('/')}/unsubscribe?token={token}"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
