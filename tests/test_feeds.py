"""RSS and Atom feeds, read back by feedparser and newsboat as feed readers would."""

from __future__ import annotations

import calendar
import gzip
import html
import os
import re
import shutil
import sqlite3
import subprocess
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from functools import partial
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import feedparser
import pytest

from digest.errors import DigestError
from digest.feeds import MAX_FEED_BYTES, FeedInfo, build_feeds, write_feeds
from digest.links import article_link
from digest.models import Issue, Site

from . import factories
from .factories import make_issue

BASE = "https://news.example.org/digest"
INFO = FeedInfo(
    site=Site("The Daily Digest", BASE, "daily", UTC),
    author_name="The Editors",
    author_email="editors@example.org",
)
EST = timezone(timedelta(hours=-5))
HOSTILE = "Fare <script>alert(1)</script> {{ 7*7 }}\r\nBcc: x@example.org"


make_article = partial(
    factories.make_article,
    subtitle=None,
    url=None,
    published=datetime(2018, 3, 5, 14, 30, tzinfo=EST),
    paragraphs=("The lanes open Monday.", "Riders save ten minutes."),
)


def sample_issues() -> list[Issue]:
    newer = make_issue(
        date(2018, 3, 6),
        make_article(),
        make_article(
            id="d4e5f6",
            title="Port strike ends",
            published=datetime(2018, 3, 5, 9, 0, tzinfo=UTC),
            tags=frozenset({"labor"}),
            author=None,
            url="https://wire.example.com/port-strike",
        ),
    )
    older = make_issue(
        date(2017, 12, 31),
        make_article(
            id="0f0f0f",
            title="New year, new budget",
            published=datetime(2017, 12, 30, 23, 30, tzinfo=UTC),
            tags=frozenset(),
        ),
    )
    return [newer, older]


def parse(document: bytes) -> Any:
    parsed = feedparser.parse(document)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    return parsed


@pytest.fixture(params=["rss", "atom"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def feed_of(kind: str, issues: list[Issue], info: FeedInfo = INFO) -> bytes:
    rss, atom = build_feeds(issues, info)
    return rss if kind == "rss" else atom


def test_entries_carry_ids_dates_links_categories_and_content(kind: str) -> None:
    issues = sample_issues()
    parsed = parse(feed_of(kind, issues))
    articles = [a for issue in issues for a in issue.articles]
    assert [e.id for e in parsed.entries] == [
        "tag:news.example.org,2018:daily/a1b2c3",
        "tag:news.example.org,2018:daily/d4e5f6",
        "tag:news.example.org,2017:daily/0f0f0f",
    ]
    for entry, article in zip(parsed.entries, articles, strict=True):
        assert entry.title == article.title
        assert entry.link == article_link(article, BASE)
        published = calendar.timegm(entry.published_parsed)
        assert published == article.published.timestamp()
        if kind == "atom":  # RSS 2.0 items have no date of change
            assert calendar.timegm(entry.updated_parsed) == published
        assert sorted(t.term for t in entry.get("tags", [])) == sorted(article.tags)
        assert entry.summary == article.summary
        assert entry.content[0].type == "text/html"
        assert entry.content[0].value == "\n".join(f"<p>{p}</p>" for p in article.paragraphs)
    assert parsed.entries[0].author == "Jane Roe"
    assert parsed.entries[0].link == f"{BASE}/articles/a1b2c3.html"  # no URL: its own page
    assert parsed.entries[1].link == "https://wire.example.com/port-strike"
    # The feed's date is its newest article's, not the time of the build.
    assert calendar.timegm(parsed.feed.updated_parsed) == articles[0].published.timestamp()


def test_self_link_first_and_the_site_as_channel_link(kind: str) -> None:
    parsed = parse(feed_of(kind, sample_issues()))
    own = f"{BASE}/feed.xml" if kind == "rss" else f"{BASE}/atom.xml"
    assert [link.href for link in parsed.feed.links if link.rel == "self"] == [own]
    assert parsed.feed.link == f"{BASE}/"
    assert parsed.feed.title == "The Daily Digest"
    if kind == "atom":
        assert parsed.feed.id == "tag:news.example.org,2024:daily"


def test_a_rebuild_is_byte_identical_and_ids_depend_only_on_the_article() -> None:
    first = build_feeds(sample_issues(), INFO)
    assert build_feeds(sample_issues(), INFO) == first
    newer, older = sample_issues()
    extra = make_article(id="99aa", published=datetime(2018, 3, 5, 20, 0, tzinfo=UTC))
    grown = [replace(newer, articles=(extra, *newer.articles)), older]
    for before, after in zip(first, build_feeds(grown, INFO), strict=True):
        old_ids = [e.id for e in parse(before).entries]
        new_ids = [e.id for e in parse(after).entries]
        assert new_ids == ["tag:news.example.org,2018:daily/99aa", *old_ids]
    assert b"python-feedgen" not in first[0] + first[1]


def test_newest_first_ties_by_id_and_each_article_once(kind: str) -> None:
    same = datetime(2018, 3, 5, 8, 0, tzinfo=UTC)
    late = make_article(id="zz", published=same)
    early = make_article(id="aa", published=same)
    newest = make_article(id="mm", published=same + timedelta(hours=1))
    issues = [make_issue(date(2018, 3, 6), late, newest), make_issue(date(2018, 3, 5), early, late)]
    ids = [e.id.rsplit("/", 1)[1] for e in parse(feed_of(kind, issues)).entries]
    assert ids == ["mm", "aa", "zz"]


def test_hostile_text_is_inert(kind: str) -> None:
    article = make_article(
        title=HOSTILE,
        paragraphs=("<script>alert(2)</script> & {{ 7*7 }}", "Line\x00with\x0bcontrol"),
        summary="<img src=x onerror=alert(3)>",
        author="Eve\r\nX-Header: 1",
    )
    document = feed_of(kind, [make_issue(date(2018, 3, 6), article)])
    assert b"<script" not in document and b"<img" not in document
    entry = parse(document).entries[0]
    assert entry.title == "Fare <script>alert(1)</script> {{ 7*7 }} Bcc: x@example.org"
    assert entry.title_detail.type == "text/plain"
    assert entry.content[0].value == (
        "<p>&lt;script&gt;alert(2)&lt;/script&gt; &amp; {{ 7*7 }}</p>\n<p>Linewithcontrol</p>"
    )
    assert entry.author == "Eve X-Header: 1"


class _Markup(HTMLParser):
    """The elements and the text of an HTML fragment, as a feed reader would render it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text += data


def rendered(value: str) -> _Markup:
    markup = _Markup()
    markup.feed(value)
    markup.close()
    return markup


MARKUP_TEXT = (
    "<img src=x onerror=alert(3)>",
    'A "quote" & AT&amp;T <b>bold</b> &lt;i&gt; <a href="javascript:alert(4)">x</a>',
    "<![CDATA[ ]]> <!-- c --> <svg onload=alert(5)>",
)


@pytest.mark.parametrize("text", MARKUP_TEXT)
def test_no_article_text_becomes_markup_in_a_feed_reader(kind: str, text: str) -> None:
    """Read back unsanitized, as a reader that trusts the feed would: the RSS description and
    Atom's html content render to the article's text with only the tags the feed wrote, and
    Atom's summary is plain text."""
    article = make_article(summary=text, subtitle=text, paragraphs=(text, "Plain."))
    document = feed_of(kind, [make_issue(date(2018, 3, 6), article)])
    entry = feedparser.parse(document, sanitize_html=False, resolve_relative_uris=False).entries[0]
    if kind == "rss":  # <description> is HTML to every RSS reader
        assert entry.summary_detail.type == "text/html"
        summary = rendered(entry.summary)
        assert (summary.tags, summary.text) == ([], text)
    else:
        assert entry.summary_detail.type == "text/plain"
        assert entry.summary == text
    assert entry.content[0].type == "text/html"
    content = rendered(entry.content[0].value)
    assert content.tags == ["p", "em", "p", "p"]
    assert content.text == "\n".join((text, text, "Plain."))


def test_the_rss_description_is_the_escaped_summary() -> None:
    article = make_article(summary="Fares <rise> & fall")
    rss, _ = build_feeds([make_issue(date(2018, 3, 6), article)], INFO)
    assert b"<description>Fares &amp;lt;rise&amp;gt; &amp;amp; fall</description>" in rss
    assert html.unescape(parse(rss).entries[0].summary) == "Fares <rise> & fall"


def test_ids_keep_the_pinned_host_when_base_url_moves(kind: str) -> None:
    """Readers key items on their ids: a site moved to a new domain keeps every id (the
    host of the first publish), while the links follow the new base_url."""
    before = parse(feed_of(kind, sample_issues()))
    site = replace(INFO.site, base_url="https://digest.example.net/news")
    moved = replace(INFO, site=site, id_host="news.example.org")
    after = parse(feed_of(kind, sample_issues(), moved))
    assert [e.id for e in after.entries] == [e.id for e in before.entries]
    assert after.entries[0].link == "https://digest.example.net/news/articles/a1b2c3.html"
    if kind == "atom":
        assert after.feed.id == before.feed.id == "tag:news.example.org,2024:daily"
    unpinned = parse(feed_of(kind, sample_issues(), replace(moved, id_host=None)))
    assert unpinned.entries[0].id == "tag:digest.example.net,2018:daily/a1b2c3"


@pytest.mark.parametrize("host", ["", "news example.org", "news.example.org/", "-x.org", "a@b"])
def test_a_bad_pinned_host_is_refused(host: str) -> None:
    with pytest.raises(DigestError, match=f"feed id host {re.escape(repr(host))} is not a host"):
        build_feeds(sample_issues(), replace(INFO, id_host=host))


@pytest.mark.slow
def test_feeds_stay_under_one_megabyte_dropping_the_oldest_first(kind: str) -> None:
    start = datetime(2018, 3, 1, tzinfo=UTC)
    big = tuple(f"Paragraph {n} " + "words " * 2_000 for n in range(4))  # ~48 KB an article
    articles = [
        make_article(id=f"id{n:03}", published=start + timedelta(hours=n), paragraphs=big)
        for n in range(60)
    ]
    articles.reverse()  # newest first, as issues hold them
    document = feed_of(kind, [make_issue(date(2018, 3, 4), *articles)])
    assert len(document) <= MAX_FEED_BYTES
    entries = parse(document).entries
    kept = [e.id.rsplit("/", 1)[1] for e in entries]
    assert 10 <= len(kept) < 60
    assert kept == [a.id for a in articles[: len(kept)]]  # the newest, none skipped
    assert all(e.content[0].value.startswith("<p>Paragraph 0 ") for e in entries)


def test_an_article_too_big_alone_keeps_its_summary(kind: str) -> None:
    huge = make_article(paragraphs=("word " * 300_000,), summary="A very long report.")
    small = make_article(id="b2", published=datetime(2018, 3, 4, tzinfo=UTC))
    document = feed_of(kind, [make_issue(date(2018, 3, 6), huge, small)])
    assert len(document) <= MAX_FEED_BYTES
    entries = parse(document).entries
    assert [e.summary for e in entries] == ["A very long report.", "The lanes open Monday."]
    assert all("content" not in e for e in entries)


def test_issues_without_articles_still_make_a_dated_feed(kind: str) -> None:
    parsed = parse(feed_of(kind, [make_issue(date(2018, 3, 6))]))
    assert parsed.entries == []
    assert parsed.feed.updated_parsed[:3] == (2018, 3, 6)


def test_a_base_url_without_a_host_is_a_config_error() -> None:
    with pytest.raises(DigestError, match="base_url 'outbox' has no host name"):
        build_feeds(sample_issues(), replace(INFO, site=replace(INFO.site, base_url="outbox")))


def test_write_feeds_is_atomic_and_leaves_unchanged_files_alone(tmp_path: Path) -> None:
    write_feeds(tmp_path, sample_issues(), INFO)
    rss, atom = build_feeds(sample_issues(), INFO)
    assert (tmp_path / "feed.xml").read_bytes() == rss
    assert (tmp_path / "atom.xml").read_bytes() == atom
    # Each beside its gzipped copy (nginx's gzip_static and digest serve send it as it is).
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "atom.xml", "atom.xml.gz", "feed.xml", "feed.xml.gz",
    ]  # fmt: skip
    assert gzip.decompress((tmp_path / "feed.xml.gz").read_bytes()) == rss
    os.utime(tmp_path / "feed.xml", ns=(1_000_000_000, 1_000_000_000))
    zipped_at = (tmp_path / "feed.xml.gz").stat().st_mtime_ns
    write_feeds(tmp_path, sample_issues(), INFO)
    assert (tmp_path / "feed.xml").stat().st_mtime_ns == 1_000_000_000
    assert (tmp_path / "feed.xml.gz").stat().st_mtime_ns == zipped_at
    # A copy older than its file (a crash between the two writes) is written again.
    os.utime(tmp_path / "atom.xml.gz", ns=(1_000, 1_000))
    (tmp_path / "atom.xml.gz").write_bytes(gzip.compress(b"stale"))
    os.utime(tmp_path / "atom.xml.gz", ns=(1_000, 1_000))
    write_feeds(tmp_path, sample_issues(), INFO)
    assert gzip.decompress((tmp_path / "atom.xml.gz").read_bytes()) == atom


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("newsboat") is None, reason="newsboat is not installed")
def test_newsboat_reads_the_feed(kind: str, tmp_path: Path) -> None:
    issues = sample_issues()
    article = make_article(id="ee11", title=HOSTILE, published=datetime(2018, 3, 6, tzinfo=UTC))
    issues[0] = replace(issues[0], articles=(article, *issues[0].articles))
    feed = tmp_path / ("feed.xml" if kind == "rss" else "atom.xml")
    feed.write_bytes(feed_of(kind, issues))
    (tmp_path / "urls").write_text(f'"exec:cat {feed}"\n', encoding="utf-8")
    (tmp_path / "config").write_text("", encoding="utf-8")
    completed = subprocess.run(
        ["newsboat", "-x", "reload", "-u", "urls", "-c", "cache.db", "-C", "config"],
        cwd=tmp_path,
        env={**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    with sqlite3.connect(tmp_path / "cache.db") as db:
        site = db.execute("SELECT url, title FROM rss_feed").fetchall()
        items = db.execute("SELECT guid, title, url, pubDate FROM rss_item").fetchall()
    assert site == [(f"{BASE}/", "The Daily Digest")]
    expected = [
        (
            f"tag:news.example.org,{a.published.astimezone(UTC).year}:daily/{a.id}",
            " ".join(a.title.split()),
            article_link(a, BASE),
            int(a.published.timestamp()),
        )
        for issue in issues
        for a in issue.articles
    ]
    assert sorted(items) == sorted(expected)


# ---------------------------------------------------------------- languages


def test_each_entry_carries_its_language_and_the_feed_one_only_when_all_share_it(
    kind: str,
) -> None:
    mixed = make_issue(
        date(2018, 3, 6),
        make_article(lang="de"),
        make_article(id="d4e5f6", title="Greve no porto", lang="pt-BR"),
        make_article(id="0f0f0f", title="No language known"),
    )
    document = feed_of(kind, [mixed])
    parsed = parse(document)
    by_title = {e.title: e.get("language") for e in parsed.entries}
    assert by_title == {"Bus lanes open on Main Street": "de", "Greve no porto": "pt-BR"} | {
        "No language known": None
    }
    assert b"<language>" not in document and b'xml:lang="' not in document

    german = make_issue(date(2018, 3, 6), make_article(lang="de"), make_article(id="x", lang="de"))
    parsed = parse(feed_of(kind, [german]))
    assert parsed.feed.get("language") == "de"


def test_articles_without_a_language_leave_the_feed_as_it_was(kind: str) -> None:
    assert b"dc:language" not in feed_of(kind, sample_issues())
    assert b"<language>" not in feed_of(kind, sample_issues())
