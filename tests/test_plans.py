"""The hot queries use their indexes at any history size, on SQLite and on PostgreSQL.

Each test runs the real operation on a store with some history, captures the SELECTs it
sends, and asks the database for each one's plan: no full scan of a large table (SQLite:
no bare ``SCAN table``; PostgreSQL, with sequential scans priced out: no ``Seq Scan``), so
the cost of a daily run follows the work of the day, not the size of the store.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, insert, text

from digest import deliver, ingest, selection, store, subscribers
from digest.schema import issue_articles, issues
from digest.schema import subscribers as subscriber_table

from .factories import SEND_NOW as NOW
from .factories import stored_article, wire_issue

LARGE = {"articles", "article_tags", "issue_articles", "issues", "sends", "subscribers"}
LARGE.add("ingested_files")  # scanned_folders is read whole: a row per folder, not per file


@contextmanager
def captured(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """The SELECT statements ``engine`` sends inside the block (and those that start with
    one, in a WITH), with their parameters."""
    seen: list[tuple[str, Any]] = []

    def keep(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", keep)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", keep)


def full_scans(engine: Engine, statement: str, params: Any) -> list[str]:
    """The large tables ``statement``'s plan reads from end to end."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params).all()
            details = [row[-1] for row in rows]
            return [
                found[1]
                for line in details
                if (found := re.match(r"SCAN (\w+)(?! USING)", line)) and found[1] in LARGE
            ]
        conn.execute(text("SET enable_seqscan = off"))
        (plan,) = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", params).one()
        plan = plan if isinstance(plan, list) else json.loads(plan)
        scans: list[str] = []

        def walk(node: dict[str, Any]) -> None:
            if node.get("Node Type") == "Seq Scan" and node.get("Relation Name") in LARGE:
                scans.append(node["Relation Name"])
            for child in node.get("Plans", ()):
                walk(child)

        walk(plan[0]["Plan"])
        return scans


def assert_indexed(engine: Engine, operation: Callable[[], object]) -> None:
    with captured(engine) as seen:
        operation()
    assert seen, "the operation sent no SELECT"
    for statement, params in seen:
        assert full_scans(engine, statement, params) == [], statement


def history(engine: Engine, articles: int = 120, past_issues: int = 40) -> None:
    """Stored articles over past days, and past issues that showed some of them."""
    batch = [
        stored_article(
            title=f"Harbour notice {n}",
            paragraphs=(f"Notice {n}: the pier {n} closes for repairs on day {n}.",),
            published=NOW - timedelta(hours=n),
            origin=f"seeds/site{n % 3}/page{n}.txt",
        )
        for n in range(articles)
    ]
    store.save(engine, batch, now=NOW)
    with engine.begin() as conn:
        for n in range(past_issues):
            issue_id = conn.execute(
                insert(issues)
                .values(
                    digest="daily",
                    issue_date=(NOW - timedelta(days=n + 1)).date(),
                    window_start=NOW - timedelta(days=n + 2),
                    window_end=NOW - timedelta(days=n + 1),
                    created_at=NOW,
                )
                .returning(issues.c.id)
            ).scalar_one()
            conn.execute(
                insert(issue_articles),
                [{"issue_id": issue_id, "article_id": batch[n].id, "position": 0}],
            )


def test_choosing_an_issue_reads_by_index(engine: Engine) -> None:
    history(engine)

    def choose() -> object:
        return selection.select_issue(
            engine,
            digest="daily",
            issue_date=NOW.date() + timedelta(days=1),
            days=800,
            tz=NOW.tzinfo,  # type: ignore[arg-type]
            max_articles=10,
            caps={"seeds/site0": 2},
        )

    assert len(choose().articles) == 10  # type: ignore[attr-defined]
    assert_indexed(engine, choose)
    # Only the chosen articles are read whole: the window's others, by id and origin.
    with captured(engine) as seen:
        choose()
    whole = [statement for statement, _ in seen if "articles.body" in statement]
    assert whole and all(re.search(r"articles\.id IN", s) for s in whole), whole


def test_streaming_subscribers_reads_by_index(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(subscriber_table),
            [{"email": f"r{n:04d}@example.org", "tags": "", "created_at": NOW} for n in range(300)],
        )
    assert_indexed(engine, lambda: sum(1 for _ in subscribers.stream(engine, chunk=50)))


def test_enrolling_and_claiming_read_by_index(engine: Engine) -> None:
    history(engine, articles=10, past_issues=3)
    with engine.begin() as conn:
        conn.execute(
            insert(subscriber_table),
            [{"email": f"r{n:04d}@example.org", "tags": "", "created_at": NOW} for n in range(300)],
        )
    issue_id, issue = selection.claim(engine, wire_issue(), now=NOW)
    deliver.enroll(engine, issue, issue_id, variant=selection.variant, max_articles=10, now=NOW)
    ledger = deliver.Ledger(engine, issue_id, now=NOW)
    assert_indexed(engine, lambda: ledger.claim(100))


@pytest.mark.parametrize("count", [10, 2000])
def test_finding_new_source_files_asks_by_key(engine: Engine, tmp_path: Any, count: int) -> None:
    files = []
    for n in range(count):
        path = tmp_path / f"page{n}.txt"
        path.write_text(f"Page {n}\n", encoding="utf-8")
        files.append(path)
    store.mark_ingested(engine, files[: count // 2], now=NOW)
    assert_indexed(engine, lambda: store.new_files(engine, files))
    assert store.new_files(engine, files) == files[count // 2 :]


def test_the_daily_pass_asks_for_folders_and_recent_files_by_key(
    engine: Engine, tmp_path: Any
) -> None:
    files = []
    for site in range(20):
        folder = tmp_path / f"site{site}"
        folder.mkdir()
        for n in range(100):
            path = folder / f"page{n}.txt"
            path.write_text(f"Page {n}\n", encoding="utf-8")
            files.append(path)
    store.mark_ingested(engine, files, now=NOW - timedelta(days=30))
    store.mark_ingested(engine, files[:5], now=NOW)
    found = ingest.scan([tmp_path], unchanged={})
    store.mark_folders(engine, found.folders)
    listed = {str(tmp_path / "site3")}
    passed = set(found.folders) - listed
    again = [p for p in found.files if p.parent == tmp_path / "site3"]
    since = NOW - timedelta(days=7)

    def fresh() -> list[Any]:
        return store.fresh(engine, again, found.inodes, listed, passed, watched_since=since)

    assert_indexed(engine, fresh)
    assert fresh() == []


def test_a_large_import_renews_the_planners_statistics(engine: Engine, tmp_path: Any) -> None:
    path = tmp_path / "big.csv"
    rows = "".join(f"reader{n:06d}@example.org,,\n" for n in range(10_000))
    path.write_text("email,name,tags\n" + rows, encoding="utf-8")
    subscribers.import_csv(engine, path, now=NOW)
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            analyzed = conn.execute(text("SELECT tbl FROM sqlite_stat1")).scalars().all()
        else:
            analyzed = (
                conn.execute(
                    text(
                        "SELECT relname FROM pg_stat_user_tables "
                        "WHERE last_analyze IS NOT NULL AND schemaname = current_schema()"
                    )
                )
                .scalars()
                .all()
            )
    assert "subscribers" in analyzed
