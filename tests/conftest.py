"""Shared fixtures: the CLI runner, and a store URL on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine

from digest import db
from digest.cli import cli
from digest.models import Article

from .test_smtp import Handler, free_port, serving

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
SEEDS = ROOT / "seeds"
# DESIGN.md: every object of `digest articles --json` has at least these.
JSON_FIELDS = ("id", "title", "url", "published", "tags", "author", "source", "summary", "body")
PG_URL = os.environ.get(
    "DIGEST_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def run(*args: str, config: Path | None = None) -> Result:
    """Invoke the CLI in-process, as a user would type it."""
    argv = (["--config", str(config)] if config else []) + list(args)
    return CliRunner().invoke(cli, argv, catch_exceptions=False)


def make_article(**overrides: Any) -> Article:
    """A plausible stored article; override any field (modules pin their own with partial)."""
    fields: dict[str, Any] = {
        "id": "a1b2c3",
        "title": "Bus lanes open on Main Street",
        "subtitle": "Riders save ten minutes",
        "published": datetime(2018, 3, 5, 19, 30, tzinfo=UTC),
        "date_source": "text",
        "tags": frozenset({"transit", "city"}),
        "paragraphs": ("The lanes open Monday.", "Buses run every six minutes."),
        "author": "Jane Roe",
        "source": "NewsDaily",
        "url": "https://newsdaily.example.com/bus-lanes",
        "summary": "The lanes open Monday.",
    }
    return Article(**(fields | overrides))


# What a real install sets before its first send (the pre-flight refuses the shipped values).
REAL_SENDER = {
    "base_url": '"https://news.digest-test.net/daily"',
    "from_address": '"news@digest-test.net"',
    "postal_address": '"Digest Test Ltd · 12 Harbour Road · Leith EH6 6LB · Scotland"',
    "unsubscribe_secret": '"test-secret-0123456789abcdef"',
}


def write_config(tmp_path: Path, database_url: str | None = None, **extra: str) -> Path:
    """A config file for one test, with its own SQLite store unless told otherwise, and
    sender settings that pass the pre-flight of a real send (each can be overridden)."""
    url = database_url or f"sqlite:///{tmp_path / 'digest.db'}"
    lines = [f'database_url = "{url}"', 'timezone = "UTC"']
    lines += [f"{key} = {value}" for key, value in (REAL_SENDER | extra).items()]
    path = tmp_path / "digest.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store on SQLite, and on PostgreSQL where one is reachable."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    admin = create_engine(PG_URL)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    except SQLAlchemyError as exc:
        admin.dispose()
        pytest.skip(f"no PostgreSQL reachable at {PG_URL}: {str(exc).splitlines()[0]}")
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A connected store (schema created), disposed after the test."""
    with db.opened(database_url) as connected:
        yield connected


def seeds_config(
    tmp_path: Path, port: int | None = None, database_url: str | None = None, **extra: str
) -> Path:
    """A config that sends the seeds' 2019-01-01 issue to the shipped subscribers through an
    SMTP relay on ``port`` (none: a port nobody listens on), each setting overridable."""
    settings = {
        "seeds_dir": f'"{SEEDS}"',
        "outbox_dir": f'"{tmp_path / "outbox"}"',
        "subscribers_file": f'"{ROOT / "config" / "subscribers.csv"}"',
        "issue_date": "2019-01-01",
        "window": '"800d"',
        "smtp_host": '"127.0.0.1"',
        "smtp_port": str(port or free_port()),
        "smtp_timeout": "5",
        "smtp_retries": "0",
        # The shipped subscribers follow these tags: each gets a variant of the seeds.
        "tag_rules": '{ arms-control = ["arms race"], sanctions = ["sanctions"] }',
    }
    return write_config(tmp_path, database_url, **{**settings, **extra})


@pytest.fixture
def relay() -> Iterator[Handler]:
    """A real SMTP server on loopback that records what it takes (``relay.port``)."""
    handler = Handler()
    with serving(handler) as controller:
        handler.port = controller.port  # type: ignore[attr-defined]
        yield handler
