"""Ingest never crashes: dates, readers and the cleaner on generated input.

Each property says: whatever the text or bytes, the only exception is a ``DigestError``
(a one-line reason for the operator), and what comes out is valid (an aware date in the
years news names, text without control characters).  The examples are derandomized, so
a run is the same on every machine, and few enough to stay fast on a loaded CI.
"""

from __future__ import annotations

import json
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest import clean, dates, ingest, readers, segment, subscribers
from digest.errors import DigestError
from digest.models import Draft

from .factories import UNPRINTABLE

UTC = dates.zone("UTC")
NEW_YORK = dates.zone("America/New_York")
ZONES = st.sampled_from([UTC, NEW_YORK, dates.zone("Pacific/Kiritimati")])


def properties(examples: int) -> settings:
    """Same examples on every run, no example database, no timing: CI noise cannot fail them."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# Characters that broke things: controls, NUL, lone surrogates, line separators, BOMs.
HOSTILE = st.sampled_from(
    [
        *"\x00\x1b\x0c\x0b\x7f\x85\x9b\ud800\udfff\ufffe\ufeff\u2028\u200b\r\t&",
        "&#27;",
        "&#0;",
        "&#xD800;",
    ]
)
TEXT = st.lists(st.characters() | HOSTILE, max_size=40).map("".join)

# Pieces of dates, the way news pages print them and half-print them.
MONTHS = ["Jan", "January", "feb", "Feb.", "March", "may", "JUNE", "Sept", "Dec", "Octo"]
ABBREVIATIONS = ["EST", "EDT", "PST", "BST", "CEST", "AEST", "AEDT", "AESD", "IST", "XST", "Z"]
LABELS = ["Published:", "Updated", "Posted on", "Last updated", "on", "at", "By Jane Roe |"]
NUMBER = st.integers(0, 99_999).map(str) | st.integers(0, 99).map(lambda n: f"{n:02d}")
YEAR = st.integers(1890, 2110).map(str)
OFFSET = st.builds(
    lambda sign, hours, minutes, colon: f"{sign}{hours:02d}{':' if colon else ''}{minutes:02d}",
    st.sampled_from("+-"),
    st.integers(0, 99),
    st.integers(0, 99),
    st.booleans(),
)
GMT = st.builds(
    lambda name, sign, n: f"{name}{sign}{n}",
    st.sampled_from(["GMT", "UTC", "GMT ", "utc"]),
    st.sampled_from(["+", "-", "+ ", ""]),
    st.integers(0, 9999),
)
ISO = st.builds(
    lambda y, mo, d, h, mi, rest: f"{y}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}{rest}",
    YEAR,
    st.integers(0, 19),
    st.integers(0, 39),
    st.integers(0, 29),
    st.integers(0, 69),
    st.sampled_from(["", ":60", ":59.9999999", "Z", "z", ".5"]) | OFFSET,
)
PIECE = st.one_of(
    NUMBER,
    YEAR,
    st.sampled_from(MONTHS),
    st.sampled_from(ABBREVIATIONS),
    st.sampled_from(LABELS),
    st.sampled_from(["T", ":", "+", "-", "/", ".", ",", " ", "am", "p.m.", "th", "ago", "|"]),
    OFFSET,
    GMT,
    ISO,
    HOSTILE,
)
# Whole date lines with every part in or out of range: 31 February, 24:61, GMT+99, AESD.
DATE_LINE = st.builds(
    lambda *parts: " ".join(part for part in parts if part),
    st.sampled_from(["", *LABELS]),
    st.one_of(
        st.builds("{} {} {}".format, st.integers(0, 39), st.sampled_from(MONTHS), YEAR),
        st.builds("{} {}, {}".format, st.sampled_from(MONTHS), st.integers(0, 39), YEAR),
        st.builds("{}-{:02d}-{:02d}".format, YEAR, st.integers(0, 19), st.integers(0, 39)),
        st.builds("{}/{}/{}".format, st.integers(0, 19), st.integers(0, 39), YEAR),
        ISO,
    ),
    st.builds(
        "{}{}:{:02d}{}{}".format,
        st.sampled_from(["", "at ", ", "]),
        st.integers(0, 29),
        st.integers(0, 69),
        st.sampled_from(["", ":00", ":60", ":99"]),
        st.sampled_from(["", " am", " p.m.", "PM"]),
    )
    | st.just(""),
    st.one_of(st.just(""), st.sampled_from(ABBREVIATIONS), GMT, OFFSET),
)
DATE_LIKE = st.one_of(
    DATE_LINE,
    st.lists(PIECE, max_size=10).map(" ".join),
    st.lists(PIECE, max_size=10).map("".join),
)


def assert_valid_date(when: datetime) -> None:
    offset = when.utcoffset()
    assert offset is not None, when
    assert abs(offset) <= timedelta(hours=14), when
    assert 1900 <= when.year <= 2100, when  # 24:00 on 31 December 2099 is 2100
    when.astimezone(UTC)  # and it can be moved to any zone without overflowing


def assert_printable(*texts: str | None) -> None:
    for text in texts:
        assert not UNPRINTABLE.search(text or ""), text


@properties(600)
@given(st.one_of(TEXT, DATE_LIKE), ZONES)
def test_find_date_gives_a_valid_date_or_none(text: str, default_tz: Any) -> None:
    found = dates.find_date(text, default_tz)
    if found is not None:
        when, start, end = found
        assert_valid_date(when)
        assert 0 <= start < end <= len(text)


@properties(600)
@given(st.one_of(TEXT, DATE_LIKE), ZONES)
def test_date_line_gives_a_valid_date_or_none(text: str, default_tz: Any) -> None:
    found = dates.date_line(text, default_tz)
    if found is not None:
        assert_valid_date(found[0])


# ---------------------------------------------------------------- readers

PROSE = st.lists(
    st.sampled_from(
        ["The council", "voted", "on Tuesday", "to dim", "the lamps", "along the quay", "said"]
    )
    | TEXT,
    min_size=1,
    max_size=14,
).map(" ".join)
SENTENCE = PROSE.map(lambda text: text + ".")
STAMP = DATE_LIKE | st.sampled_from(["Tue, 05 Mar 2019 09:30:00 +0100", "2019-03-07T12:00:00Z"])
FRAGMENT = st.lists(
    st.one_of(
        SENTENCE.map(lambda s: f"<p>{s}</p>"),
        SENTENCE.map(lambda s: f"<div><b>{s}</b><br>{s}</div>"),
        st.sampled_from(["<br>", "<!-- note -->", "<p>", "</div>", "<li>Share</li>", "&#27;"]),
        TEXT,
    ),
    max_size=6,
).map("".join)


def rss(items: list[tuple[str, str, str]], title: str) -> str:
    entries = "".join(
        f"<item><title>{escape(t)}</title><pubDate>{escape(d)}</pubDate>"
        f"<description>{escape(body)}</description><category>{escape(t)}</category></item>"
        for t, d, body in items
    )
    return (
        '<?xml version="1.0"?><rss version="2.0">'
        f"<channel><title>{escape(title)}</title>{entries}</channel></rss>"
    )


def atom(items: list[tuple[str, str, str]], title: str) -> str:
    entries = "".join(
        f"<entry><title>{escape(t)}</title><updated>{escape(d)}</updated>"
        f'<author><name>{escape(t)}</name></author><content type="html">{escape(body)}</content>'
        f"</entry>"
        for t, d, body in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>{escape(title)}</title>{entries}</feed>"
    )


ITEMS = st.lists(st.tuples(PROSE, STAMP, FRAGMENT), min_size=1, max_size=3)
FEED = st.builds(rss, ITEMS, PROSE) | st.builds(atom, ITEMS, PROSE)
STORY = (
    "<p>The harbour council voted on Tuesday to dim the lamps along the quay after midnight,"
    " and the fishermen who asked for it said they could see the stars again.</p>"
    "<p>The change starts in April and will be reviewed after one year, the council said in"
    " a statement that also named the streets where the lamps will stay as they are.</p>"
)
PAGE = st.builds(
    lambda title, stamp, body: (
        f"<!doctype html><html><head><title>{title}</title>"
        f'<meta property="article:published_time" content="{escape(stamp)}"></head>'
        f"<body><article><h1>{title}</h1><p>Published: {stamp}</p>{STORY}{body}{STORY}"
        "</article></body></html>"
    ),
    PROSE,
    STAMP,
    FRAGMENT,
)
ENCODED = st.builds(
    lambda text, codec: text.encode(codec, "surrogatepass" if codec == "utf-8" else "replace"),
    st.one_of(FEED, PAGE, TEXT),
    st.sampled_from(["utf-8", "utf-16", "cp1252"]),
)
SOME_BYTES = st.one_of(st.binary(max_size=300), ENCODED)


def utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")  # lone surrogates too, as a broken file has


def assert_found(found: tuple[Draft, str | None, str | None]) -> None:
    draft, url, site = found
    assert draft.title and draft.paragraphs
    assert_printable(draft.title, draft.author, draft.dateline, url, site, *draft.paragraphs)
    if draft.published is not None:
        assert_valid_date(draft.published)


@properties(200)
@given(SOME_BYTES)
def test_decode_gives_printable_text_or_says_why(data: bytes) -> None:
    try:
        text = readers.decode(data)
    except DigestError:
        return
    assert_printable(text)


@properties(120)
@given(st.one_of(FEED.map(utf8), SOME_BYTES), ZONES)
def test_feeds_give_printable_entries_or_say_why(data: bytes, default_tz: Any) -> None:
    assert_feed_reads(data, default_tz)


def assert_feed_reads(data: bytes, default_tz: Any) -> None:
    """A feed's bytes give printable entries, or a ``DigestError`` saying why not."""
    try:
        site, entries = readers.read_feed(data)
    except DigestError:
        return
    assert_printable(site)
    for entry in entries:
        found = readers.read_entry(entry, site, default_tz)
        if found is not None:
            assert_found(found)


@properties(60)
@given(st.one_of(PAGE.map(utf8), SOME_BYTES), ZONES)
def test_html_pages_give_a_printable_article_or_say_why(data: bytes, default_tz: Any) -> None:
    try:
        found = readers.read_html(data, default_tz)
    except DigestError:
        return
    assert_found(found)


FILES = st.lists(
    st.tuples(st.sampled_from([".txt", ".html", ".rss", ".atom", ".text", ".xml"]), SOME_BYTES),
    min_size=1,
    max_size=3,
)


@properties(40)
@given(FILES)
def test_a_batch_rejects_only_with_known_reasons(files: list[tuple[str, bytes]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        for number, (suffix, data) in enumerate(files):
            (Path(folder) / f"{number}{suffix}").write_bytes(data)
        batch = ingest.read_paths([Path(folder)], ingest.Options(default_tz=UTC))
    for rejected in batch.rejected:
        assert "unexpected" not in rejected.reason, rejected
        assert "\n" not in rejected.reason
    for article in batch.articles:
        assert_printable(article.title, article.summary, *article.paragraphs)
        assert_valid_date(article.published)


# ---------------------------------------------------------------- the cleaner

FURNITURE = (
    "Share",
    "Home",
    "By Jane Roe, Harbour Gazette",
    "Posted in News, Harbour | 3 Comments",
    "Tags: lamps, quay",
    "Tag Archive | Lamps",
    "Related stories",
    "© 2019 Gazette",
    "Jane says:",
    "Reply",
    "Leave a comment",
    "• item",
    "QUINCY, Mass. — The lamps were dimmed.",
)
LINE = st.one_of(
    TEXT,
    PROSE,
    SENTENCE,
    st.sampled_from(FURNITURE),
    st.builds(lambda label, stamp: f"{label} {stamp}", st.sampled_from(LABELS), STAMP),
    st.builds(lambda stamp: f"Posted on {stamp} by Jane Roe in News", STAMP),
)
PAGE_TEXT = st.lists(LINE | st.just(""), max_size=25).map("\n".join)


@properties(150)
@given(st.lists(PAGE_TEXT, min_size=1, max_size=3), ZONES)
def test_the_cleaner_takes_any_lines(texts: list[str], default_tz: Any) -> None:
    for drafts in clean.clean_collection(texts, default_tz=default_tz):
        for draft in drafts:
            assert draft.title and draft.paragraphs
            if draft.published is not None:
                assert_valid_date(draft.published)


@properties(150)
@given(TEXT | PROSE, st.lists(LINE, max_size=12))
def test_polish_takes_any_lines(title: str, lines: list[str]) -> None:
    paragraphs, dateline = clean.polish(title, lines)
    assert all(paragraphs) and (dateline is None or dateline)


@properties(150)
@given(PAGE_TEXT | TEXT)
def test_the_segmenter_keeps_every_line_of_text_once(text: str) -> None:
    """Lines of decoded text (``readers.printable``, as every reader gives) become units,
    split into posts at footers: every unit is in one post or is a footer, and none holds
    a control character."""
    page = segment.prepare(readers.printable(text))
    posts, _ = segment.segments(page)
    in_posts = [unit for units, _, _ in posts for unit in units]
    footers = [unit for unit in page if segment.footer(unit) is not None]
    assert len(in_posts) + len(footers) >= len(page) >= len(in_posts)
    assert_printable(*(unit.text for unit in page))


JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
JSON_ITEM = st.fixed_dictionaries(
    {},
    optional={
        "id": TEXT | st.integers(),
        "url": st.sampled_from(["https://example.org/a", "/b", "", "not a url"]) | JSON_VALUE,
        "title": PROSE | JSON_VALUE,
        "content_html": FRAGMENT | JSON_VALUE,
        "content_text": PROSE | JSON_VALUE,
        "summary": SENTENCE | JSON_VALUE,
        "date_published": STAMP | JSON_VALUE,
        "authors": st.lists(st.fixed_dictionaries({"name": TEXT | JSON_VALUE}), max_size=2)
        | JSON_VALUE,
        "tags": st.lists(TEXT, max_size=3) | JSON_VALUE,
        "language": st.sampled_from(["en", "de-DE", "xx"]) | JSON_VALUE,
    },
)
JSON_FEED = st.fixed_dictionaries(
    {"version": st.just("https://jsonfeed.org/version/1.1"), "items": st.lists(JSON_ITEM)},
    optional={"title": TEXT | JSON_VALUE, "home_page_url": TEXT | JSON_VALUE},
) | st.dictionaries(TEXT, JSON_VALUE, max_size=4)


@properties(150)
@given(JSON_FEED, ZONES)
def test_json_feeds_give_printable_entries_or_say_why(feed: Any, default_tz: Any) -> None:
    assert_feed_reads(
        json.dumps(feed, ensure_ascii=False).encode("utf-8", "surrogatepass"), default_tz
    )


CSV_CELL = st.one_of(
    TEXT,
    st.sampled_from(["ada@example.org", "Bob@Example.ORG", "bad@@x", "=cmd()", '"', "a,b"]),
)
CSV_BYTES = st.one_of(
    st.lists(st.lists(CSV_CELL, max_size=4), max_size=6)
    .map(lambda rows: "email,name,tags\n" + "\n".join(",".join(row) for row in rows))
    .map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.binary(max_size=200),
)


@properties(150)
@given(CSV_BYTES)
def test_a_subscriber_csv_gives_valid_subscribers_or_says_why(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "people.csv"
        path.write_bytes(data)
        try:
            found, errors = subscribers.read_csv(path)
        except DigestError:
            return
    for subscriber in found:
        assert subscribers.normalize(subscriber.email) == subscriber.email
        assert_printable(subscriber.email, subscriber.name, *subscriber.tags)
    assert all("\n" not in error for error in errors)
