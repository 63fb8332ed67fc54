"""The pre-flight of a real send: example settings are named, one line each, before any mail."""

from __future__ import annotations

from typing import Any

import pytest

from digest import preflight
from digest.errors import ConfigError
from digest.settings import Settings

REAL: dict[str, Any] = {
    "base_url": "https://news.digest-test.net/daily",
    "from_address": "news@digest-test.net",
    "postal_address": "Digest Test Ltd · 12 Harbour Road · Leith EH6 6LB",
    "unsubscribe_secret": "0123456789abcdef-long-enough",
}


def problems(**overrides: Any) -> list[str]:
    return preflight.problems(Settings(**(REAL | overrides)))


def test_realistic_settings_pass() -> None:
    assert problems() == []
    preflight.check(Settings(**REAL))  # no error


def test_the_shipped_defaults_are_each_named() -> None:
    found = preflight.problems(Settings())
    assert [line.split()[0] for line in found] == [
        "base_url", "base_url", "from_address", "postal_address", "unsubscribe_secret"
    ]  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        preflight.check(Settings())
    lines = str(caught.value).splitlines()
    assert lines[0].startswith("a real send needs real settings")
    assert lines[1:] == [f"  {line}" for line in found]


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1:8080",
        "https://127.3.4.5/digest",
        "https://localhost/",
        "https://news.localhost/",
        "https://[::1]:8443/",
        "https://0.0.0.0/",
    ],
)
def test_base_url_on_this_machine(url: str) -> None:
    assert problems(base_url=url) == [
        f"base_url {url} is this machine, which no subscriber can reach; set the public https "
        "URL where outbox/ is served"
    ]


@pytest.mark.parametrize(
    "url",
    [
        "https://example.org/",
        "https://news.example.com/x",
        "https://site.test/",
        "https://a.invalid/",
    ],
)
def test_base_url_at_a_reserved_domain(url: str) -> None:
    assert problems(base_url=url) == [
        f"base_url {url} is at a reserved example domain; set the public https URL where "
        "outbox/ is served"
    ]


def test_plain_http_is_refused() -> None:
    assert problems(base_url="http://news.digest-test.net") == [
        "base_url http://news.digest-test.net is not https: unsubscribe links would travel in "
        "the clear and one-click unsubscribe (RFC 8058) needs https"
    ]


@pytest.mark.parametrize(
    ("name", "address"),
    [
        ("from_address", "digest@example.org"),
        ("from_address", "news@mail.example.net"),
        ("from_address", "news@digest.test"),
        ("unsubscribe_mailto", "unsubscribe@example.org"),
    ],
)
def test_mailboxes_at_reserved_domains(name: str, address: str) -> None:
    assert problems(**{name: address}) == [
        f"{name} {address} is at a reserved example domain, so no mail reaches it; use a "
        "mailbox of your own domain"
    ]


@pytest.mark.parametrize(
    "domain", ["example.org.uk", "myexample.org", "examples.com", "testing.net", "news.exampled"]
)
def test_real_domains_that_look_like_examples_pass(domain: str) -> None:
    assert not preflight.reserved_domain(domain)
    assert problems(from_address=f"news@{domain}") == []


@pytest.mark.parametrize(
    ("secret", "placeholder"),
    [("change-me", True), ("", False), ("short-key", False), ("fifteen-bytes!!", False)],
)
def test_a_weak_secret_is_refused(secret: str, placeholder: bool) -> None:
    (found,) = problems(unsubscribe_secret=secret)
    if placeholder:
        assert found.startswith("unsubscribe_secret is the shipped placeholder")
    else:
        assert found.startswith("unsubscribe_secret is shorter than 16 bytes (spaces aside)")


def test_a_sixteen_byte_secret_passes() -> None:
    assert problems(unsubscribe_secret="0123456789abcdef") == []


@pytest.mark.parametrize(
    "url",
    ["https://192.168.1.5/", "https://10.0.0.2:8443/x", "https://[fe80::1]/", "https://intranet/"],
)
def test_base_url_no_subscriber_can_reach(url: str) -> None:
    assert problems(base_url=url) == [
        f"base_url {url} is a private address or a name without a domain, which subscribers' "
        "phones cannot reach; set the public https URL where outbox/ is served"
    ]


def test_a_public_address_passes() -> None:
    assert problems(base_url="https://93.184.215.14/digest") == []


@pytest.mark.parametrize(
    ("postal", "problem"),
    [
        ("", "postal_address is empty"),
        ("   ", "postal_address is empty"),
        (Settings.model_fields["postal_address"].default + " ", "postal_address is the shipped"),
    ],
)
def test_an_empty_or_shipped_postal_address(postal: str, problem: str) -> None:
    (found,) = problems(postal_address=postal)
    assert found.startswith(problem)
