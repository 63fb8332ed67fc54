"""Issue selection: whole local days (across DST), tags, the cap, and no article twice."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine

from digest import dates, selection, store
from digest.errors import ConfigError
from digest.models import Issue

from .factories import stored_article as make_article

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
NY = dates.zone("America/New_York")


def _story(name: str, when: datetime, *tags: str) -> object:
    return make_article(
        title=name, paragraphs=(f"Body of {name}.",), published=when, tags=frozenset(tags or "x")
    )


def _save(engine: Engine, *stories: object) -> None:
    store.save(engine, stories, now=NOW)  # type: ignore[arg-type]


def _titles(issue: object) -> list[str]:
    return [a.title for a in issue.articles]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("issue_date", "last_day"),
    [
        (date(2026, 3, 9), date(2026, 3, 8)),  # spring forward: a 23-hour day
        (date(2026, 11, 2), date(2026, 11, 1)),  # fall back: a 25-hour day
        (date(2026, 6, 16), date(2026, 6, 15)),  # an ordinary day
    ],
)
def test_a_daily_issue_covers_the_whole_local_day_before_it(
    engine: Engine, issue_date: date, last_day: date
) -> None:
    after = last_day + timedelta(days=1)
    before = last_day - timedelta(days=1)
    _save(
        engine,
        _story("first minute", datetime(last_day.year, last_day.month, last_day.day, tzinfo=NY)),
        _story(
            "last minute", datetime(last_day.year, last_day.month, last_day.day, 23, 59, tzinfo=NY)
        ),
        _story("next midnight", datetime(after.year, after.month, after.day, tzinfo=NY)),
        _story("day before", datetime(before.year, before.month, before.day, 23, 59, tzinfo=NY)),
    )
    issue = selection.select_issue(engine, digest="d", issue_date=issue_date, days=1, tz=NY)
    assert _titles(issue) == ["last minute", "first minute"]
    # Same-zone subtraction is wall-clock time in Python: measure the real hours in UTC.
    hours = (issue.end.astimezone(UTC) - issue.start.astimezone(UTC)).total_seconds() / 3600
    assert hours == {date(2026, 3, 8): 23, date(2026, 11, 1): 25}.get(last_day, 24)


def test_a_week_window_is_seven_whole_days_newest_first(engine: Engine) -> None:
    _save(
        engine,
        *[_story(f"day {n}", datetime(2026, 11, n, 12, tzinfo=NY)) for n in range(18, 28)],
    )
    issue = selection.select_issue(
        engine, digest="d", issue_date=date(2026, 11, 27), days=selection.window_days("7d"), tz=NY
    )
    assert _titles(issue) == [f"day {n}" for n in range(26, 19, -1)]


def test_tags_are_any_of_and_the_cap_keeps_the_newest(engine: Engine) -> None:
    _save(
        engine,
        _story("a1", datetime(2026, 11, 26, 9, tzinfo=NY), "a"),
        _story("b1", datetime(2026, 11, 26, 10, tzinfo=NY), "b"),
        _story("c1", datetime(2026, 11, 26, 11, tzinfo=NY), "c"),
        _story("ab", datetime(2026, 11, 26, 12, tzinfo=NY), "a", "b"),
    )
    pick = {"digest": "d", "issue_date": date(2026, 11, 27), "days": 1, "tz": NY}
    assert _titles(selection.select_issue(engine, tags=["a", "b"], **pick)) == ["ab", "b1", "a1"]
    assert _titles(selection.select_issue(engine, max_articles=2, **pick)) == ["ab", "c1"]


def test_an_article_is_in_one_issue_of_a_digest_unless_forced(engine: Engine) -> None:
    _save(engine, _story("old", datetime(2026, 11, 25, 9, tzinfo=NY)))
    week = {"days": 7, "tz": NY}
    first = selection.select_issue(engine, digest="d", issue_date=date(2026, 11, 26), **week)
    selection.claim(engine, first, now=NOW)
    _save(engine, _story("new", datetime(2026, 11, 26, 9, tzinfo=NY)))
    second = selection.select_issue(engine, digest="d", issue_date=date(2026, 11, 27), **week)
    assert _titles(second) == ["new"]
    forced = selection.select_issue(
        engine, digest="d", issue_date=date(2026, 11, 27), force=True, **week
    )
    assert _titles(forced) == ["new", "old"]
    other = selection.select_issue(engine, digest="other", issue_date=date(2026, 11, 27), **week)
    assert _titles(other) == ["new", "old"]  # another digest has its own history


def test_a_claimed_issue_is_frozen_and_claimed_once(engine: Engine) -> None:
    _save(engine, _story("one", datetime(2026, 11, 26, 9, tzinfo=NY)))
    pick = {"digest": "d", "issue_date": date(2026, 11, 27), "days": 1, "tz": NY}
    issue = selection.select_issue(engine, **pick)
    issue_id, claimed = selection.claim(engine, issue, now=NOW)
    assert claimed == issue
    _save(engine, _story("late arrival", datetime(2026, 11, 26, 10, tzinfo=NY)))
    again = selection.select_issue(engine, **pick)
    assert _titles(again) == ["one"]  # a re-run after a crash sends the same issue
    assert again.start == issue.start and again.end == issue.end
    rival = selection.select_issue(engine, **{**pick, "force": True})
    assert selection.claim(engine, rival, now=NOW) == (issue_id, again)
    assert selection.issue_id_of(engine, "d", date(2027, 1, 1)) is None


def test_recent_issues_newest_first(engine: Engine) -> None:
    for day in (24, 25, 26):
        _save(engine, _story(f"story {day}", datetime(2026, 11, day, 9, tzinfo=NY)))
        issue = selection.select_issue(
            engine, digest="d", issue_date=date(2026, 11, day + 1), days=1, tz=NY
        )
        selection.claim(engine, issue, now=NOW)
    found = selection.recent(engine, "d", limit=2)
    assert [i.date.day for i in found] == [27, 26]
    assert [_titles(i) for i in found] == [["story 26"], ["story 25"]]
    assert [
        i.date.day for i in selection.recent(engine, "d", limit=5, before=date(2026, 11, 26))
    ] == [26, 25]


def test_a_variant_keeps_the_articles_of_its_tags() -> None:
    when = datetime(2026, 11, 26, 9, tzinfo=NY)
    issue = Issue(
        "d",
        date(2026, 11, 27),
        when,
        when,
        tuple(_story(n, when, *t) for n, t in [("a", "a"), ("b", "b"), ("ab", "ab")]),  # type: ignore[misc]
    )
    assert _titles(selection.variant(issue, frozenset({"a"}), 25)) == ["a", "ab"]
    assert _titles(selection.variant(issue, frozenset(), 2)) == ["a", "b"]
    assert selection.variant(issue, frozenset({"z"}), 25).articles == ()


@pytest.mark.parametrize("text", ["", "7", "0d", "d", "7 days", "-1d", "99999d"])
def test_a_bad_window_is_a_clear_error(text: str) -> None:
    with pytest.raises(ConfigError, match="number of days"):
        selection.window_days(text)


def test_max_per_issue_keeps_one_busy_source_from_filling_the_issue(engine: Engine) -> None:
    busy, quiet = "https://busy.example/feed.xml", "/srv/clips/"
    day = datetime(2026, 11, 26, tzinfo=UTC)
    stories = [
        make_article(
            title=f"Busy {n}",
            paragraphs=(f"Busy story number {n} of the day.",),
            published=day + timedelta(hours=n),
            origin=f"{busy}#{n}" if n else busy,
        )
        for n in range(5)
    ]
    stories += [
        make_article(
            title=f"Quiet {n}",
            paragraphs=(f"Quiet story number {n} of the day.",),
            published=day + timedelta(minutes=n),
            origin=f"{quiet}a{n}.txt",
        )
        for n in range(2)
    ]
    _save(engine, *stories)
    issue = selection.select_issue(
        engine, digest="d", issue_date=date(2026, 11, 27), days=1, tz=UTC,
        caps={busy: 2, quiet: 1},
    )  # fmt: skip
    assert _titles(issue) == ["Busy 4", "Busy 3", "Quiet 1"]  # newest of each, within its cap
    uncapped = selection.select_issue(
        engine, digest="e", issue_date=date(2026, 11, 27), days=1, tz=UTC
    )
    assert len(uncapped.articles) == 7
