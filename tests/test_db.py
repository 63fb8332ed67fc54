"""Database plumbing: which file a SQLite URL names, URLs fit to print, instants as stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy.exc import ArgumentError

from digest import db


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///var/digest.db", Path("var/digest.db")),
        ("sqlite:////srv/digest/digest.db", Path("/srv/digest/digest.db")),
        ("sqlite+pysqlite:///x.db", Path("x.db")),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("postgresql+psycopg://digest@db.example.org/digest", None),
    ],
)
def test_sqlite_file_names_the_file_of_a_sqlite_url_only(url: str, path: Path | None) -> None:
    assert db.sqlite_file(url) == path


def test_sqlite_file_refuses_what_is_no_url() -> None:
    with pytest.raises(ArgumentError):
        db.sqlite_file("not a url")


def test_shown_url_hides_the_password() -> None:
    shown = db.shown_url("postgresql+psycopg://digest:s3cret@db.example.org/digest")
    assert shown == "postgresql+psycopg://digest:***@db.example.org/digest"
    assert db.shown_url("::") == "(unparsable URL)"


def test_utc_naive_is_the_same_instant_in_utc_without_a_zone() -> None:
    when = datetime(2019, 1, 1, 7, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert db.utc_naive(when) == datetime(2019, 1, 1, 12, 30)
    assert db.utc_naive(when).tzinfo is None
    assert db.utc_naive(datetime(2019, 1, 1, tzinfo=UTC)) == datetime(2019, 1, 1)


def test_meta_values_keep_the_first_value_set(tmp_path: Path) -> None:
    with db.opened(f"sqlite:///{tmp_path / 'store.db'}") as engine:
        assert db.meta_value(engine, "feed_id_host:daily") is None
        assert db.keep_meta_value(engine, "feed_id_host:daily", "news.example.org") == (
            "news.example.org"
        )
        assert db.keep_meta_value(engine, "feed_id_host:daily", "other.example.net") == (
            "news.example.org"
        )
        assert db.meta_value(engine, "feed_id_host:daily") == "news.example.org"
