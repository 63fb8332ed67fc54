"""The daily pass finds new and changed source files without a stat of every file ever
ingested: a folder unchanged since its last walk is not listed, a listed file is looked at
only when its name or inode is new, and files read in the last WATCH_DAYS are looked at
wherever they are (a page written again in place)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, update

from digest import db, pipeline, settings, store
from digest.schema import ingested_files

from .conftest import write_config

NOW = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)
LONG_AGO = NOW - timedelta(days=400)
ONE_DAY = timedelta(days=1)


def page(n: int, words: str = "The harbour board met on Tuesday") -> str:
    return (
        f"Story number {n} of the harbour\n\n"
        f"{words} and agreed the plan for berth {n}, which opens next spring after a "
        "year of work on the quay.\n\n"
        f"Work on berth {n} starts in March, the board said, and the road stays open.\n"
    )


def old(path: Path) -> None:
    """Give a file or folder an mtime long ago (out of the racy window)."""
    when = (NOW - timedelta(days=30)).timestamp()
    os.utime(path, (when, when))


@pytest.fixture
def site(tmp_path: Path, database_url: str) -> Iterator[tuple[Path, settings.Settings, Engine]]:
    sources = tmp_path / "sources"
    folder = sources / "harbour-news"
    folder.mkdir(parents=True)
    for n in range(6):
        (folder / f"p{n}.txt").write_text(page(n), encoding="utf-8")
        old(folder / f"p{n}.txt")
    old(folder)
    old(sources)
    config = write_config(tmp_path, database_url, seeds_dir=f'"{sources}"')
    with db.opened(database_url) as engine:
        yield folder, settings.load_settings(config), engine


def daily(engine: Engine, chosen: settings.Settings, now: datetime) -> list[str]:
    """The names of the files the daily pass read."""
    found = pipeline.ingest_sources(engine, chosen, now=now, only_new=True)
    return sorted(Path(a.origin.split("#")[0]).name for a in found.articles)


@pytest.fixture
def stamps(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every file whose size and mtime the store looks at."""
    seen: list[Path] = []
    real = store._stamp

    def spy(path: Path) -> tuple[int, int] | None:
        seen.append(path)
        return real(path)

    monkeypatch.setattr(store, "_stamp", spy)
    return seen


def test_an_unchanged_folder_of_old_files_costs_no_stat_of_them(
    site: tuple[Path, settings.Settings, Engine], stamps: list[Path]
) -> None:
    _folder, chosen, engine = site
    assert len(daily(engine, chosen, LONG_AGO)) == 6
    stamps.clear()
    assert daily(engine, chosen, NOW) == []
    assert stamps == []  # before: each of the six, every run


def test_new_and_replaced_files_are_read_and_the_rest_not_looked_at(
    site: tuple[Path, settings.Settings, Engine], stamps: list[Path]
) -> None:
    folder, chosen, engine = site
    daily(engine, chosen, LONG_AGO)
    (folder / "p6.txt").write_text(page(6), encoding="utf-8")
    replacement = folder / "p2.tmp"  # written beside it, then renamed over it: a new inode
    replacement.write_text(page(2, "The harbour board met again on Friday"), encoding="utf-8")
    replacement.replace(folder / "p2.txt")
    stamps.clear()
    assert daily(engine, chosen, NOW) == ["p2.txt", "p6.txt"]
    looked = sorted(p.name for p in stamps)  # each: to tell it changed, then to mark it read
    assert looked == ["p2.txt", "p2.txt", "p6.txt", "p6.txt"]


def test_a_file_written_again_in_place_is_read_while_watched(
    site: tuple[Path, settings.Settings, Engine],
) -> None:
    folder, chosen, engine = site
    daily(engine, chosen, NOW - ONE_DAY)
    target = folder / "p3.txt"
    target.write_text(page(3, "The harbour board met late on Tuesday"), encoding="utf-8")
    old(target)  # as `wget -N` does: the server's date, an mtime older than the last read
    old(folder)  # nothing added, removed or renamed: the folder is the same
    assert daily(engine, chosen, NOW) == ["p3.txt"]


def test_after_the_watch_a_rewrite_in_place_waits_for_a_full_ingest(
    site: tuple[Path, settings.Settings, Engine],
) -> None:
    folder, chosen, engine = site
    daily(engine, chosen, LONG_AGO)
    target = folder / "p3.txt"
    target.write_text(page(3, "The harbour board met late on Tuesday"), encoding="utf-8")
    old(target)
    old(folder)
    assert daily(engine, chosen, NOW) == []  # the documented cost of not looking
    full = pipeline.ingest_sources(engine, chosen, now=NOW)
    assert (full.saved.inserted, full.saved.unchanged) == (1, 5)


def test_a_folder_changed_just_now_is_listed_again(
    site: tuple[Path, settings.Settings, Engine],
) -> None:
    folder, chosen, engine = site
    (folder / "p6.txt").write_text(page(6), encoding="utf-8")  # the folder's mtime: now
    walked = folder.stat().st_mtime_ns
    assert "p6.txt" in daily(engine, chosen, LONG_AGO)
    (folder / "p7.txt").write_text(page(7), encoding="utf-8")
    os.utime(folder, ns=(walked, walked))  # as if in the same clock tick as the walk
    assert daily(engine, chosen, NOW) == ["p7.txt"]


def test_the_rows_of_an_older_store_are_mended_by_the_first_pass(
    site: tuple[Path, settings.Settings, Engine], stamps: list[Path]
) -> None:
    folder, chosen, engine = site
    daily(engine, chosen, LONG_AGO)
    with engine.begin() as conn:  # as a store from before folders and inodes were kept
        conn.execute(update(ingested_files).values(folder=None, inode=None))
        conn.exec_driver_sql("DELETE FROM scanned_folders")
    stamps.clear()
    assert daily(engine, chosen, NOW) == []
    assert len(stamps) == 6  # each looked at once, as before
    (folder / "p6.txt").write_text(page(6), encoding="utf-8")
    stamps.clear()
    assert daily(engine, chosen, NOW) == ["p6.txt"]
    assert {p.name for p in stamps} == {"p6.txt"}


def test_a_removed_watched_file_is_not_an_error(
    site: tuple[Path, settings.Settings, Engine],
) -> None:
    folder, chosen, engine = site
    daily(engine, chosen, NOW - ONE_DAY)
    (folder / "p4.txt").unlink()
    found = pipeline.ingest_sources(engine, chosen, now=NOW, only_new=True)
    assert (found.files, found.rejected) == (0, ())
