"""The store, on SQLite and on PostgreSQL: the same code, the same answers."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, event

from digest import dates, db, ingest, selection, store
from digest.errors import StoreError
from digest.models import Article, Evidence

from .factories import stored_article as make_article

NOW = datetime(2026, 1, 1, tzinfo=UTC)

# A story of ordinary length (about 150 words), written for these tests.
STORY = (
    "The harbour board voted on Tuesday to close the old north pier for two years while "
    "engineers rebuild its foundations, which divers found badly worn by the tides.",
    "Fishing crews who tie up at the pier will move to the south basin from March. The "
    "board said berths there would be free of charge until the work is done, and that a "
    "shuttle bus would run between the two basins every half hour.",
    "Several skippers said the move would cost them an hour each morning. One asked why "
    "the repairs had waited so long, since the first survey warned of the damage in 2015.",
    "The chair of the board, Maria Olsen, said the money had only now been found, after "
    "the regional council agreed to pay a third of the bill. The rest comes from harbour "
    "dues and a loan that the board expects to repay within twelve years.",
    "Work on the foundations starts in April, and the pier should reopen in the spring "
    "after next, with a wider deck and lighting along its whole length.",
)


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
    """A syndicated copy under another title folds: its text is long enough to be its own.
    (A short text under two titles no longer folds: see the short-items test below.)"""
    poor = make_article(paragraphs=STORY, date_source="mtime", tags=frozenset({"wire"}))
    rich = make_article(
        title="A retitled copy", paragraphs=STORY, author="Jane Roe", tags=frozenset({"port"})
    )
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


@pytest.mark.parametrize("stored_before", [False, True], ids=["new", "stored before"])
def test_a_batch_saved_in_chunks_reports_and_stores_what_one_save_would(
    engine: Engine, stored_before: bool
) -> None:
    """A copy in a later chunk of a story an earlier chunk stored is a duplicate folded into
    it (``store.Written``), not one more update: the counts are those of one save."""
    poor = make_article(paragraphs=STORY, date_source="mtime", tags=frozenset({"wire"}))
    rich = make_article(
        title="A retitled copy", paragraphs=STORY, author="Jane Roe", tags=frozenset({"port"})
    )
    other = make_article(title="Another story", paragraphs=("The ferry runs again today.",))
    if stored_before:
        store.save(engine, [poor], now=NOW)
    written = store.Written()
    first = store.save(engine, [poor, other], now=NOW, written=written)
    second = store.save(engine, [rich], now=NOW, written=written)
    counts = [
        sum(getattr(report, name) for report in (first, second))
        for name in ("inserted", "updated", "unchanged", "duplicates")
    ]
    assert counts == ([1, 1, 0, 1] if stored_before else [2, 0, 0, 1])
    kept = {a.id: a for a in store.query(engine)}
    assert sorted(kept) == sorted([poor.id, other.id])  # one story of the two copies
    assert (kept[poor.id].author, kept[poor.id].tags) == ("Jane Roe", {"wire", "port"})


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


def test_summaries_are_made_again_a_page_at_a_time_in_one_statement_each(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "_REFRESH_PAGE", 2)
    batch = [
        make_article(id=f"a{n}", title=f"Story {n}", paragraphs=(f"Text {n}.",)) for n in range(5)
    ]
    store.save(engine, batch, now=NOW)
    updates: list[str] = []

    def keep(conn: object, cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().upper().startswith("UPDATE ARTICLES"):
            updates.append(statement)

    event.listen(engine, "before_cursor_execute", keep)
    try:
        assert store.refresh_summaries(engine, "v9", lambda a: a.title.upper()) == 5
    finally:
        event.remove(engine, "before_cursor_execute", keep)
    assert len(updates) == 3  # pages of 2, 2 and 1; before, one statement per article
    assert sorted(a.summary for a in store.query(engine)) == [f"STORY {n}" for n in range(5)]


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


# ---------------------------------------------------------------- folding precision


def _words(count: int, stem: str) -> str:
    """``count`` distinct made-up words: text no other test body shares."""
    return " ".join(f"{stem}{n:03d}" for n in range(count))


def test_pages_that_only_end_alike_stay_apart(engine: Engine) -> None:
    """The same sign-off and newsletter footer (far more than 40 words) under two stories."""
    footer = (
        "Thanks for reading. If you liked this post, share it with a friend and sign up for "
        "our weekly newsletter, which brings every new post, the best comments of the week "
        "and a few links we found worth reading to your inbox each Sunday morning. You can "
        "unsubscribe at any time with one click, and we never share your address."
    )
    one = make_article(title="Harbour", paragraphs=(*STORY[:2], footer))
    two = make_article(title="Library", paragraphs=(_words(120, "lib"), footer))
    assert one.keys[1] == two.keys[1]  # the same last 40 words
    report = store.save(engine, [one], now=NOW)
    assert store.save(engine, [two], now=NOW).inserted == 1
    assert report.inserted == 1
    assert sorted(a.title for a in store.query(engine)) == ["Harbour", "Library"]


def test_two_products_on_one_shop_template_stay_apart(engine: Engine) -> None:
    head = (
        "Free delivery on every order over fifty euros, and returns are free within thirty "
        "days of delivery. Order before two in the afternoon and your parcel leaves the "
        "warehouse the same day; we pack every item by hand in recycled paper and send you "
        "a tracking link by email."
    )
    tail = (
        "Questions about this product? Our team answers by chat and email every weekday from "
        "eight to six, and our guide to sizes and care explains how to choose, wash and store "
        "everything we sell. Customers who bought this item also bought the items below."
    )
    kettle = make_article(title="Kettle", paragraphs=(head, _words(30, "kettle"), tail))
    teapot = make_article(title="Teapot", paragraphs=(head, _words(30, "teapot"), tail))
    assert kettle.keys == teapot.keys  # the same first and last 40 words
    report = store.save(engine, [kettle, teapot], now=NOW)
    assert (report.inserted, report.duplicates) == (2, 0)


def test_short_items_with_one_text_under_two_titles_stay_apart(engine: Engine) -> None:
    """Podcast entries with the same stock description are different episodes."""
    text = ("A new episode is out: listen in your podcast app or on our site.",)
    one = make_article(title="Episode 1: Tides", paragraphs=text)
    two = make_article(title="Episode 2: Winds", paragraphs=text)
    assert store.save(engine, [one, two], now=NOW).inserted == 2


def test_rss_and_atom_copies_of_one_post_fold(engine: Engine) -> None:
    """The same post from a blog's two feeds: other title case, whitespace, paragraphs and
    quotes; a short post, so the title is what makes the match distinctive."""
    rss = make_article(
        title="How We Moved Our Store To PostgreSQL",
        paragraphs=(
            "We moved the store to PostgreSQL last week. It took two evenings, one "
            "\u201cmigration\u201d script and no downtime.",
            "Here is what went well, and the one thing we would do differently.",
        ),
    )
    atom = make_article(
        title="How we moved our store to  PostgreSQL ",
        paragraphs=(
            "We moved the store to PostgreSQL last week.  It took two evenings, one "
            '"migration" script and no downtime. Here is what went well, and the one '
            "thing we would do differently.",
        ),
        url="https://blog.test/moved",
    )
    report = store.save(engine, [rss, atom], now=NOW)
    assert (report.inserted, report.duplicates) == (1, 1)
    (kept,) = store.query(engine)
    assert kept.url == "https://blog.test/moved"


def test_a_page_read_again_under_new_chrome_folds(engine: Engine) -> None:
    """The cleaner kept a navigation line this time: another lead key, the same story."""
    first = make_article(title="Pier to close", paragraphs=STORY)
    again = make_article(
        title="Pier to close | The Harbour Times",
        paragraphs=("Home News Sport Weather Business Opinion", *STORY),
        author="Jane Roe",
    )
    assert first.keys[0] != again.keys[0]
    store.save(engine, [first], now=NOW)
    assert store.save(engine, [again], now=NOW).updated == 1
    (kept,) = store.query(engine)
    assert (kept.id, kept.author) == (first.id, "Jane Roe")


def test_a_second_story_under_the_same_title_and_lead_is_kept(engine: Engine) -> None:
    """A blog's front page read on two days: the same title and newest post first, then
    different posts. Both are kept, each under an id of its own, the same on every read."""
    monday = make_article(title="Notes", paragraphs=(*STORY[:2], _words(150, "mon")))
    tuesday = make_article(title="Notes", paragraphs=(*STORY[:2], _words(150, "tue")))
    assert monday.id == tuesday.id
    assert store.save(engine, [monday], now=NOW).inserted == 1
    assert store.save(engine, [tuesday], now=NOW).inserted == 1
    ids = {a.id for a in store.query(engine)}
    assert len(ids) == 2 and monday.id in ids
    assert store.save(engine, [monday, tuesday], now=NOW) == store.SaveReport(0, 0, 2, 0)
    with db.opened(str(engine.url.render_as_string(hide_password=False))) as other:
        assert store.save(other, [tuesday], now=NOW).unchanged == 1


def test_same_story_never_on_the_tail_alone() -> None:
    body = (_words(60, "a"), _words(60, "z"))
    tail_only = make_article(title="Other", paragraphs=(_words(60, "b"), _words(60, "z")))
    assert not store.same_story(make_article(title="Other", paragraphs=body), tail_only)
    assert store.same_story(make_article(paragraphs=body), make_article(paragraphs=body))


# ---------------------------------------------------------------- one article refused alone


def _refuse_title(engine: Engine, title: str) -> None:
    """Make the database itself refuse any article titled ``title`` (as it would a value it
    cannot hold): a CHECK constraint on PostgreSQL, a trigger on SQLite."""
    from sqlalchemy import text

    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(
                text(f"ALTER TABLE articles ADD CONSTRAINT refused CHECK (title <> '{title}')")
            )
        else:
            conn.execute(
                text(
                    f"CREATE TRIGGER refused BEFORE INSERT ON articles WHEN NEW.title = '{title}' "
                    "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
                )
            )


@pytest.mark.parametrize("size", [3, 450])  # one chunk, and more than one
def test_one_article_the_database_refuses_costs_only_itself(engine: Engine, size: int) -> None:
    _refuse_title(engine, "Broken")
    batch = [
        make_article(title=f"Story {n}", paragraphs=(f"Text of story {n}.",), origin=f"/in/{n}.txt")
        for n in range(size)
    ]
    batch[1] = make_article(title="Broken", paragraphs=("Its text.",), origin="/in/broken.html")
    report = store.save(engine, batch, now=NOW)
    (refused,) = report.refused
    assert refused.origin == "/in/broken.html"
    assert refused.reason.startswith("cannot write to the database: ")
    assert "\n" not in refused.reason
    assert (report.inserted, report.updated, report.unchanged) == (size - 1, 0, 0)
    stored = store.query(engine)
    assert len(stored) == size - 1 and "Broken" not in {a.title for a in stored}


def test_a_refused_tag_takes_its_article_with_it_and_nothing_else(engine: Engine) -> None:
    from sqlalchemy import text

    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(
                text("ALTER TABLE article_tags ADD CONSTRAINT refused CHECK (tag <> 'bad')")
            )
        else:
            conn.execute(
                text(
                    "CREATE TRIGGER refused BEFORE INSERT ON article_tags WHEN NEW.tag = 'bad' "
                    "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
                )
            )
    good = make_article(title="Good", paragraphs=("Good text.",), origin="/in/good.txt")
    bad = make_article(
        title="Bad", paragraphs=("Bad text.",), tags=frozenset({"bad"}), origin="/in/bad.txt"
    )
    report = store.save(engine, [good, bad], now=NOW)
    assert [r.origin for r in report.refused] == ["/in/bad.txt"]
    assert [a.title for a in store.query(engine)] == ["Good"]  # no article without its tags


def test_a_refused_story_names_every_file_folded_into_it(engine: Engine) -> None:
    _refuse_title(engine, "Broken")
    copies = [make_article(title="Broken", paragraphs=STORY, origin=f"/in/{n}.xml") for n in "ab"]
    report = store.save(engine, copies, now=NOW)
    assert report.duplicates == 1
    assert sorted(r.origin for r in report.refused) == ["/in/a.xml", "/in/b.xml"]


def test_a_store_that_cannot_be_written_is_one_error_not_a_refusal(engine: Engine) -> None:
    from sqlalchemy import text

    with engine.begin() as conn:
        conn.execute(text("DROP TABLE article_tags"))
        conn.execute(text("DROP TABLE articles"))
    with pytest.raises(StoreError) as caught:
        store.save(engine, [make_article()], now=NOW)
    assert str(caught.value).startswith("cannot write to the database: ")


# ---------------------------------------------------------------- values fit their columns


def test_every_value_fits_its_column_before_the_store() -> None:
    long_title = "Word " * 100  # 500 characters
    article = make_article(
        title=long_title,
        author="Jane Roe " * 40,  # 360
        subtitle="Deck " * 200,
        source="Source " * 40,
        dateline="PLACE " * 50,
        url="https://x.test/" + "a" * 3000,
        tags=frozenset({"k" * 400, "x" * store.TAG_CHARS, "fine"}),
        paragraphs=("A NUL\x00 here, and a lone \udc80 surrogate.",),
        summary="Sum\x00mary",
    )
    fitted = store.fit(article)
    assert len(fitted.title) <= 300 and fitted.title.endswith("Word…")
    assert fitted.author is not None and len(fitted.author) <= 200
    assert fitted.author.endswith("Roe…")  # cut at a word
    for value, cap in ((fitted.subtitle, 600), (fitted.source, 200), (fitted.dateline, 200)):
        assert value is not None and len(value) <= cap
    assert fitted.url is None  # a cut URL would lead nowhere
    assert fitted.tags == {"x" * store.TAG_CHARS, "fine"}
    assert fitted.paragraphs == ("A NUL here, and a lone \ufffd surrogate.",)
    assert fitted.summary == "Summary"
    assert store.fit(fitted) == fitted
    short = make_article(author="Jane Roe", url="https://x.test/a")
    assert store.fit(short) is short


def test_overlong_values_store_fine(engine: Engine) -> None:
    """On PostgreSQL a tag over varchar(80) or a NUL used to roll back the whole batch."""
    article = make_article(
        title="T " * 400,
        author="A" * 300,
        tags=frozenset({"keywords-" * 45, "harbour"}),
        paragraphs=("Text with a NUL\x00 in it.",),
    )
    report = store.save(engine, [article, make_article(title="Other", paragraphs=("x.",))], now=NOW)
    assert (report.inserted, report.refused) == (2, ())
    back = next(a for a in store.query(engine) if a.title != "Other")
    assert back.tags == {"harbour"} and back.author is not None and len(back.author) <= 200
    assert back.paragraphs == ("Text with a NUL in it.",)


def test_a_page_with_a_long_keywords_meta_and_author_stores_fine(
    engine: Engine, tmp_path: Path
) -> None:
    """The acceptance case: an HTML page with a 400-character keywords meta and a
    300-character author, read through ingest, stores whole."""
    keywords = ", ".join(f"keyword number {n}" for n in range(24))[:400]
    author = ("Jane Roe and " * 30)[:300]
    assert (len(keywords), len(author)) == (400, 300)
    body = "".join(f"<p>{p}</p>" for p in STORY)
    page = tmp_path / "page.html"
    page.write_text(
        f'<html><head><title>Pier to close</title><meta name="keywords" content="{keywords}">'
        f'<meta name="author" content="{author}"></head><body><article><h1>Pier to close</h1>'
        f"{body}</article></body></html>",
        encoding="utf-8",
    )
    batch = ingest.read_paths([page], ingest.Options(default_tz=UTC))
    assert batch.rejected == ()
    report = store.save(engine, batch.articles, now=NOW)
    assert (report.inserted, report.refused) == (1, ())
    (back,) = store.query(engine)
    assert back.paragraphs[0].startswith("The harbour board voted")
    assert all(len(tag) <= store.TAG_CHARS for tag in back.tags)
    assert {"keyword-number-0", "keyword-number-1"} <= back.tags  # the meta split into tags
    assert back.author is not None and back.author.startswith("Jane Roe")
    assert len(back.author) <= 200


# ---------------------------------------------------------------- the daily path


def test_the_daily_path_marks_a_file_with_a_refused_article_as_failed(
    database_url: str, tmp_path: Path
) -> None:
    """``pipeline.ingest_sources``: the other files are stored and read; the file whose
    article the database refused is named, recorded as failed, and read again once fixed."""
    from sqlalchemy import select

    from digest import pipeline, settings
    from digest.schema import ingested_files

    from .conftest import write_config

    sources = tmp_path / "sources"
    sources.mkdir()
    (sources / "one.txt").write_text(
        "Story one\n\nThe council met on Monday and agreed to repair the harbour wall before "
        "the winter storms. Work starts next month and will take six weeks.\n",
        encoding="utf-8",
    )

    def feed(second: str) -> str:
        items = "".join(
            f"<item><title>{title}</title><link>https://x.test/{n}</link>"
            f"<description>{text}</description></item>"
            for n, (title, text) in enumerate(
                [
                    ("Fine entry", "The library opened a new reading room for children today."),
                    (second, "The ferry timetable changes on Sunday, with two more crossings."),
                ]
            )
        )
        channel = f"<channel><title>T</title>{items}</channel>"
        return f'<?xml version="1.0"?><rss version="2.0">{channel}</rss>'

    broken = sources / "news.xml"
    broken.write_text(feed("Broken"), encoding="utf-8")
    config = write_config(tmp_path, database_url, seeds_dir=f'"{sources}"')
    chosen = settings.load_settings(config)
    with db.opened(database_url) as engine:
        _refuse_title(engine, "Broken")
        first = pipeline.ingest_sources(engine, chosen, now=NOW, only_new=True)
        (rejected,) = first.rejected
        assert rejected.path == str(broken)  # the file, named; its second article refused
        assert rejected.reason.startswith("article 2: cannot be stored: cannot write to the ")
        assert first.saved.inserted == 2
        assert sorted(a.title for a in first.articles) == ["Fine entry", "Story one"]
        with engine.connect() as conn:
            status = dict(
                conn.execute(select(ingested_files.c.path, ingested_files.c.status)).all()
            )
        assert status[str(broken)] == "failed"
        assert status[str(sources / "one.txt")] == "ok"
        broken.write_text(feed("Fixed"), encoding="utf-8")
        again = pipeline.ingest_sources(engine, chosen, now=NOW, only_new=True)
        assert (again.files, again.rejected) == (1, ())
        assert (again.saved.inserted, again.saved.unchanged) == (1, 1)


def test_many_stories_with_one_footer_stay_apart_and_their_copies_still_fold(
    engine: Engine,
) -> None:
    """A footer that dozens of a site's stories share is no evidence (nor compared with each
    of them); a copy of one of them is still found by its lead."""
    footer = _words(60, "footer")
    stories = [
        make_article(title=f"Story {n}", paragraphs=(_words(120, f"s{n}x"), footer))
        for n in range(30)
    ]
    assert store.save(engine, stories[:20], now=NOW).inserted == 20
    copy = replace(stories[3], title="Story 3, retitled", author="Jane Roe")
    report = store.save(engine, [*stories[20:], copy], now=NOW)
    assert (report.inserted, report.updated) == (10, 1)
    assert len(store.query(engine)) == 30


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


def test_evidence_adds_up_per_source_across_runs(engine: Engine) -> None:
    assert store.load_evidence(engine, ["/site/a"]) == {}
    first = Evidence({1: 1, 2: 1}, frozenset({10}))
    store.add_evidence(engine, {"/site/a": first, "/site/b": Evidence({1: 1})}, now=NOW)
    store.add_evidence(engine, {"/site/a": Evidence({2: 1, 3: 0}, frozenset({11}))}, now=NOW)
    found = store.load_evidence(engine, ["/site/a", "/site/b", "/site/c"])
    assert found == {
        "/site/a": Evidence({1: 1, 2: 2, 3: 0}, frozenset({10, 11})),
        "/site/b": Evidence({1: 1}),
    }


def test_evidence_is_bounded_old_keys_age_out_then_the_least_seen(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "EVIDENCE_KEYS", 4)
    old = NOW - timedelta(days=store.EVIDENCE_DAYS + 1)
    store.add_evidence(engine, {"/s": Evidence({1: 5, 2: 1})}, now=old)
    store.add_evidence(engine, {"/s": Evidence({3: 1, 4: 3, 5: 2, 6: 1, 2: 0})}, now=NOW)
    kept = store.load_evidence(engine, ["/s"])["/s"].lines
    # 1 was not seen for EVIDENCE_DAYS; of the five left, one of the seen-once keys goes
    assert 1 not in kept and len(kept) == 4
    assert kept == {3: 1, 4: 3, 5: 2, 6: 1}  # of the seen-once keys, the lowest (a tie)


def test_a_first_batch_is_bounded_as_the_store_bounds_a_later_one(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source's first evidence is cut to the bound before it is stored; the keys kept are
    those the store keeps of a source it had evidence of, ties and all."""
    monkeypatch.setattr(store, "EVIDENCE_KEYS", 4)
    old = NOW - timedelta(days=store.EVIDENCE_DAYS + 1)
    store.add_evidence(engine, {"/later": Evidence({99: 1})}, now=old)  # aged out below
    batch = Evidence({7: 1, 3: 2, 5: 0, 1: 1, 4: 1, 9: 3}, frozenset({20, 10}))
    store.add_evidence(engine, {"/first": batch, "/later": batch}, now=NOW)
    found = store.load_evidence(engine, ["/first", "/later"])
    assert found["/first"] == found["/later"] == Evidence({3: 2, 4: 1, 7: 1, 9: 3})


@pytest.mark.parametrize("seed", range(12))
def test_a_first_batch_bound_falls_among_ties_of_any_kind_as_the_store_bounds(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """Wherever the bound falls (among keys seen in several stories, among lines of none,
    among the posts), a first batch keeps what the store keeps of a later one."""
    rng = random.Random(seed)
    monkeypatch.setattr(store, "EVIDENCE_KEYS", rng.choice((3, 8, 15)))
    keys = rng.sample(range(-1000, 1000), 24)
    split = rng.randint(2, 16)
    lines = {k: rng.choice((0, 0, 1, 1, 1, 2, 4)) for k in keys[:split]}
    batch = Evidence(lines, frozenset(keys[split : split + rng.randint(0, 8)]))
    old = NOW - timedelta(days=store.EVIDENCE_DAYS + 1)
    store.add_evidence(engine, {"/later": Evidence({5000: 1})}, now=old)  # aged out below
    store.add_evidence(engine, {"/first": batch, "/later": batch}, now=NOW)
    found = store.load_evidence(engine, ["/first", "/later"])
    assert found["/first"] == found["/later"]
    kept = found["/first"]
    given = len(batch.lines) + len(batch.posts)
    assert len(kept.lines) + len(kept.posts) == min(given, store.EVIDENCE_KEYS)


def test_unsent_since_leaves_out_a_batch_stored_at_the_moment_named(engine: Engine) -> None:
    """A run cleaning its stored pages again reads back only those of earlier runs."""
    later = NOW + timedelta(minutes=5)
    first = make_article(title="First story here", origin="/s/a.txt")
    second = make_article(title="Second story here", origin="/s/b.txt", paragraphs=STORY)
    store.save(engine, [first], now=NOW)
    store.save(engine, [second], now=later)
    since = NOW - timedelta(days=1)
    assert {a.id for a in store.unsent_since(engine, since)} == {first.id, second.id}
    assert [a.id for a in store.unsent_since(engine, since, besides=later)] == [first.id]


def test_revise_puts_new_text_under_the_same_id_unless_an_issue_carried_it(
    engine: Engine,
) -> None:
    later = datetime(2019, 6, 1, 9, 0, tzinfo=UTC)
    first = make_article(title="First story here", origin="/s/a.txt", published=later)
    second = make_article(title="Second story here", origin="/s/b.txt", paragraphs=STORY)
    third = make_article(title="Third story here", origin="/s/c.txt", published=later)
    store.save(engine, [first, second, third], now=NOW)
    unsent = {a.id for a in store.unsent_since(engine, NOW - timedelta(days=1))}
    assert unsent == {first.id, second.id, third.id}
    issue = selection.select_issue(
        engine, digest="daily", issue_date=date(2019, 3, 4), days=1, tz=UTC, max_articles=10
    )
    assert [a.id for a in issue.articles] == [second.id]
    selection.claim(engine, issue, now=NOW)  # a send carried it
    assert {a.id for a in store.unsent_since(engine, NOW - timedelta(days=1))} == {
        first.id,
        third.id,
    }
    better = replace(first, title="First story, cleaned again", id="other")
    changes = {first.id: better, second.id: None, third.id: None}
    assert store.revise(engine, changes, now=NOW) == 2
    stored = {a.id: a for a in store.query(engine)}
    assert stored[first.id].title == "First story, cleaned again"
    assert second.id in stored and third.id not in stored
