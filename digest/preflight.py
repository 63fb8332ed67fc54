"""Pre-flight of a real send: the shipped example settings never reach a subscriber.

Checked before the first message and without any network lookup: what the settings say is
enough to tell a test install from one that can face a mail filter and a subscriber.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from digest.errors import ConfigError
from digest.settings import PLACEHOLDER_SECRET, Settings

MIN_SECRET_BYTES = 16  # an HMAC key shorter than this can be guessed
_MIN_DISTINCT = 8  # characters; "aaaa…" or "abababab…" is no secret whatever its length
# RFC 2606 and RFC 6761: names reserved for examples and tests; mail to them goes nowhere.
_RESERVED_DOMAINS = ("example.com", "example.net", "example.org")
_RESERVED_SUFFIXES = ("example", "test", "invalid", "localhost", "local")


def check(settings: Settings) -> None:
    """Refuse a real send whose settings are still examples: one line per problem."""
    found = problems(settings)
    if found:
        lines = "\n".join(f"  {problem}" for problem in found)
        raise ConfigError(
            "a real send needs real settings (`digest send --dry-run` works with these); "
            f"fix in the config or its DIGEST_* variables:\n{lines}"
        )


def problems(settings: Settings) -> list[str]:
    """What stops a real send, each naming the setting and what to write instead."""
    found: list[str] = []
    parts = urlsplit(settings.base_url)
    host = (parts.hostname or "").rstrip(".").lower()
    if _loopback(host):
        found.append(
            f"base_url {settings.base_url} is this machine, which no subscriber can reach; "
            "set the public https URL where outbox/ is served"
        )
    elif reserved_domain(host):
        found.append(
            f"base_url {settings.base_url} is at a reserved example domain; set the public "
            "https URL where outbox/ is served"
        )
    elif _private(host):
        found.append(
            f"base_url {settings.base_url} is a private address or a name without a domain, "
            "which subscribers' phones cannot reach; set the public https URL where outbox/ "
            "is served"
        )
    if parts.scheme != "https":
        found.append(
            f"base_url {settings.base_url} is not https: unsubscribe links would travel in "
            "the clear and one-click unsubscribe (RFC 8058) needs https"
        )
    for name, address in (
        ("from_address", settings.from_address),
        ("unsubscribe_mailto", settings.unsubscribe_mailto),
    ):
        domain = (address or "").rpartition("@")[2].rstrip(".").lower()
        if address and (reserved_domain(domain) or _loopback(domain)):
            found.append(
                f"{name} {address} is at a reserved example domain, so no mail reaches it; "
                "use a mailbox of your own domain"
            )
    postal = " ".join(settings.postal_address.split())
    if not postal:
        found.append(
            "postal_address is empty; bulk-sender rules (CAN-SPAM, Gmail, Yahoo) ask for "
            "your real postal address in every message"
        )
    elif postal == Settings.model_fields["postal_address"].default:
        found.append(
            "postal_address is the shipped example; bulk-sender rules (CAN-SPAM, Gmail, "
            "Yahoo) ask for your real postal address"
        )
    secret = settings.unsubscribe_secret.get_secret_value().strip()
    if secret == PLACEHOLDER_SECRET:
        found.append(
            "unsubscribe_secret is the shipped placeholder, so anyone could forge "
            "unsubscribe links; set a random one (DIGEST_UNSUBSCRIBE_SECRET), e.g. from "
            "`python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    elif len(secret.encode()) < MIN_SECRET_BYTES or len(set(secret)) < _MIN_DISTINCT:
        found.append(
            f"unsubscribe_secret is shorter than {MIN_SECRET_BYTES} bytes (spaces aside) or "
            "repeats a few characters, so unsubscribe links could be forged; set a random "
            "one (DIGEST_UNSUBSCRIBE_SECRET), e.g. from "
            "`python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    return found


def reserved_domain(domain: str) -> bool:
    """A domain of RFC 2606/6761's examples and tests (example.org, *.test, *.invalid, …)."""
    name = domain.rstrip(".").lower()
    if any(name == d or name.endswith("." + d) for d in _RESERVED_DOMAINS):
        return True
    return name.rpartition(".")[2] in _RESERVED_SUFFIXES


def _private(host: str) -> bool:
    """A private, link-local or shared address (10/8, 192.168/16, fe80::/10, …), or a bare
    name with no domain ("intranet"): neither is reachable from a subscriber's phone."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return "." not in host
    return not address.is_global


def _loopback(host: str) -> bool:
    """localhost, 127.0.0.0/8, ::1, or an unspecified address (0.0.0.0, ::)."""
    if host in ("localhost", "") or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified
