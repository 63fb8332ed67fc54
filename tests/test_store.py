"""The store, on SQLite and on PostgreSQL: the same code, the same answers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from digest import dates, db, selection, store
from digest.errors import StoreError
from digest.models import Article

from .factories import stored_article as make_article

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_round_trip_keeps_the_offset_and_every_field(engine: Engine) -> None:
    article = make_article(
        author="Jane Roe", subtitle="Deck", url="https://x.test/a", source="S", lang="pt-BR"
    )
    assert store.save(engine, [article], now=NOW) == store.SaveReport(1, 0, 0, 0)
    (back,) = store.query(engine)
    assert back == article
    assert back.published.utcoffset() == timedelta(hours=-5)


def test_saving_twice_changes_nothing(engine: Engine) -> None:
    articles = [make_article(title=f"Story {n}", paragraphs=(f"Text {n}.",)) for n in range(5)]
    store.save(engine, articles, now=NOW)
    assert store.save(engine, articles, now=NOW) == store.SaveReport(0, 0, 5, 0)
    assert len(store.query(engine)) == 5


def test_copies_fold_into_one_story_keeping_the_richer_metadata(engine: Engine) -> None:
    poor = make_article(date_source="mtime", tags=frozenset({"wire"}))
    rich = make_article(title="A retitled copy", author="Jane Roe", tags=frozenset({"port"}))
    store.save(engine, [poor], now=NOW)
    assert store.save(engine, [rich], now=NOW).updated == 1
    (kept,) = store.query(engine)
    assert kept.id == poor.id  # ids never change
    assert kept.author == "Jane Roe"
    assert kept.date_source == "text"
    assert kept.tags == {"wire", "port"}


def test_copies_in_one_batch_are_counted_as_duplicates(engine: Engine) -> None:
    report = store.save(engine, [make_article(), make_article(author="X")], now=NOW)
    assert (report.inserted, report.duplicates) == (1, 1)


def test_query_by_local_day_window_and_any_of_tags(engine: Engine) -> None:
    ny = dates.zone("America/New_York")
    stamps = {
        "late": datetime(2019, 3, 9, 23, 59, tzinfo=ny),
        "next": datetime(2019, 3, 10, 0, 0, tzinfo=ny),
        "early": datetime(2019, 3, 8, 0, 0, tzinfo=ny),
    }
    tags = {"late": {"a"}, "next": {"b"}, "early": {"a", "c"}}
    store.save(
        engine,
        [
            make_article(title=n, paragraphs=(f"Body {n}.",), published=t, tags=frozenset(tags[n]))
            for n, t in stamps.items()
        ],
        now=NOW,
    )
    start, end = selection.window(date(2019, 3, 8), date(2019, 3, 9), ny)
    found = store.query(engine, start=start, end=end)
    assert [a.title for a in found] == ["late", "early"]
    assert [a.title for a in store.query(engine, tags=["b", "c"])] == ["next", "early"]
    assert store.query(engine, start=start, end=end, tags=["b"]) == []


def test_only_new_or_changed_files_count_as_new(engine: Engine, tmp_path: Path) -> None:
    one, two = tmp_path / "one.txt", tmp_path / "two.txt"
    one.write_text("a")
    two.write_text("b")
    assert store.new_files(engine, [one, two]) == [one, two]
    store.mark_ingested(engine, [one, two], now=NOW)
    assert store.new_files(engine, [one, two]) == []
    two.write_text("changed")
    assert store.new_files(engine, [one, two]) == [two]
    store.mark_ingested(engine, [two], now=NOW)
    assert store.new_files(engine, [one, two]) == []


def test_summaries_are_recomputed_only_when_the_summarizer_changes(engine: Engine) -> None:
    store.save(engine, [make_article(paragraphs=("One. Two.", "Three."))], now=NOW)
    calls: list[str] = []

    def shout(article: Article) -> str:
        calls.append(article.id)
        return article.paragraphs[0].upper()

    assert store.refresh_summaries(engine, "v1", shout) == 1
    assert store.refresh_summaries(engine, "v1", shout) == 0
    assert len(calls) == 1
    assert [a.summary for a in store.query(engine)] == ["ONE. TWO."]
    assert store.refresh_summaries(engine, "v2", lambda a: a.paragraphs[-1]) == 1
    assert [a.summary for a in store.query(engine)] == ["Three."]


def test_a_sqlite_path_under_a_file_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    with pytest.raises(StoreError) as caught:
        db.connect(f"sqlite:///{tmp_path / 'afile' / 'digest.db'}")
    assert str(caught.value).endswith(f"{tmp_path / 'afile'} is not a folder; check database_url")


def test_a_store_made_by_an_older_digest_gets_the_new_columns(database_url: str) -> None:
    """Subscribers and ingested files of an older store: the status columns are added, and
    the rows already there read as active (and as read fine)."""
    from sqlalchemy import create_engine, text

    old = create_engine(database_url)
    with old.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE subscribers (email VARCHAR(320) PRIMARY KEY, name TEXT, "
                "tags TEXT NOT NULL, created_at TIMESTAMP NOT NULL)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO subscribers VALUES ('ada@example.org', 'Ada', 'usa', "
                "'2019-01-01 07:00:00')"
            )
        )
    old.dispose()
    from digest import subscribers

    with db.opened(database_url) as engine:
        (ada,) = subscribers.listing(engine)
        assert (ada.email, ada.status, ada.since) == (
            "ada@example.org",
            "active",
            datetime(2019, 1, 1, 7),
        )
        assert [s.email for s in subscribers.stream(engine)] == ["ada@example.org"]
    with db.opened(database_url) as engine:  # a second open changes nothing
        assert subscribers.count(engine) == 1


@pytest.mark.slow
def test_psycopg_cleanup_warnings_never_reach_the_terminal() -> None:
    """psycopg logs what it ignores while cleaning up after an error that digest reports
    itself; with no handler, Python's last resort printed it raw beside the Error line."""
    import subprocess
    import sys

    code = (
        "import logging, digest.cli\n"
        "logging.getLogger('psycopg').warning('error ignored terminating %r', 'pipeline')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (0, "")


def test_a_store_made_before_languages_gets_the_lang_column(database_url: str) -> None:
    """An older articles table, without lang: the column is added, old rows read as None."""
    from sqlalchemy import create_engine, inspect, text

    with db.opened(database_url) as engine:
        store.save(engine, [make_article()], now=NOW)
    old = create_engine(database_url)
    with old.begin() as conn:
        conn.execute(text("ALTER TABLE articles DROP COLUMN lang"))
    assert "lang" not in {c["name"] for c in inspect(old).get_columns("articles")}
    old.dispose()
    with db.opened(database_url) as engine:
        (before,) = store.query(engine)
        assert before.lang is None
        other = make_article(title="Another", paragraphs=("Ein anderer Text.",), lang="de")
        store.save(engine, [other], now=NOW)
        assert {a.lang for a in store.query(engine)} == {None, "de"}
