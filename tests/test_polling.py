"""Sources by URL polled into the store: feeds read as feed files are, the source's tags and
name, full text from linked pages (each fetched once), and one bad source costing itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from digest import ingest, polling, sources, store
from digest.sources import Source

from .test_fetch import OPTIONS, Reply, Route, Seen, Site, same
from .test_fetch import site as site  # the fixture: an HTTP server on loopback

NOW = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
READING = ingest.Options(default_tz=UTC)
slow = pytest.mark.slow  # real HTTP over loopback

LEADS = {
    1: "The harbour authority opened the new ferry terminal on Thursday after six years of "
    "building, and the first boats left for the islands within the hour.",
    2: "Farmers in the valley began the grape harvest two weeks early this year, after the "
    "warmest summer the regional weather service has recorded since 1950.",
    3: "The city library will stay open until midnight during the exam season, the council "
    "decided on Wednesday after a petition signed by four thousand students.",
}


def feed(base: str, *numbers: int, teaser: bool = False) -> bytes:
    """An RSS feed of the stories ``numbers``, each linking to /story/N on ``base``."""
    items = "".join(
        f"<item><title>Story {n}</title><link>{base}/story/{n}?utm_source=rss</link>"
        f"<guid>{base}/story/{n}</guid><category>Local</category>"
        f"<pubDate>Thu, 26 Nov 2026 0{n}:00:00 +0000</pubDate>"
        f"<description>{'Read more…' if teaser else LEADS[n]}</description></item>"
        for n in numbers
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Harbour Times</title><link>{base}/</link>{items}</channel></rss>"
    ).encode()


def page(n: int, *, dated: bool = True) -> bytes:
    """Story N's own page: its whole text, and its date only when ``dated``."""
    when = '<meta property="article:published_time" content="2026-11-26T08:30:00+00:00">'
    more = (
        "Officials said the service would run every two hours in winter and every hour from "
        "April, and that tickets would cost the same as on the old boats for the first year."
    )
    return (
        "<!doctype html><html><head><title>Story {n} page | Harbour Times</title>"
        f"{when if dated else ''}</head><body><nav>Home · World · Sport</nav><article>"
        f"<h1>Story {n} from the page</h1><p>{LEADS[n]}</p><p>{more}</p><p>{more}</p>"
        "</article><footer>© Harbour Times</footer></body></html>"
    ).encode()


def rss_route(body: bytes, etag: str) -> Route:
    def reply(seen: Seen) -> Reply:
        if seen.headers.get("if-none-match") == etag:
            return Reply(304, headers={"ETag": etag})
        return Reply(200, body, {"ETag": etag, "Content-Type": "application/rss+xml"})

    return reply


def html_route(body: bytes) -> Reply:
    return Reply(200, body, {"Content-Type": "text/html; charset=utf-8"})


def poll(engine: Engine, *configured: Source, now: datetime = NOW) -> polling.PollReport:
    return polling.poll_sources(engine, configured, OPTIONS, READING, now=now, jitter=same)


@slow
def test_a_feed_is_stored_with_its_sources_tags_and_name_then_costs_a_304(
    site: Site, engine: Engine
) -> None:
    url = site.route("/feed.xml", rss_route(feed(site.base, 1, 2), '"v1"'))
    source = Source(url, name="Harbour", tags=frozenset({"islands"}))
    first = poll(engine, source)
    (one,) = first.polled
    assert (one.outcome, one.new, one.read, one.state.new_articles) == ("new", 2, 2, 2)
    articles = store.query(engine)
    assert sorted(a.title for a in articles) == ["Story 1", "Story 2"]
    assert all(a.tags >= {"islands", "local"} and a.source == "Harbour" for a in articles)
    assert all(a.origin.startswith(url) for a in articles)
    assert sources.load_states(engine)[url].etag == '"v1"'

    second = poll(engine, source, now=NOW + timedelta(minutes=30))
    assert [(p.outcome, p.new) for p in second.polled] == [("unchanged", 0)]
    assert site.requests("/feed.xml")[-1].headers["if-none-match"] == '"v1"'
    assert sources.load_states(engine)[url].new_articles == 0
    assert len(store.query(engine)) == 2


@slow
def test_full_text_reads_each_new_entry_from_its_page_once(site: Site, engine: Engine) -> None:
    url = site.route("/feed.xml", rss_route(feed(site.base, 1, 2, teaser=True), '"v1"'))
    for n in (1, 2, 3):
        site.route(f"/story/{n}", html_route(page(n, dated=n != 2)))
    source = Source(url, tags=frozenset({"islands"}), full_text=True)
    (one,) = poll(engine, source).polled
    assert (one.new, one.pages, one.page_failures) == (2, 2, 0)
    found = {a.url: a for a in store.query(engine)}
    first, second = found[site.url("/story/1")], found[site.url("/story/2")]
    assert first.summary.startswith("The harbour authority opened")  # the lead, from the page
    assert first.title == "Story 1 from the page"
    assert first.published == datetime(2026, 11, 26, 8, 30, tzinfo=UTC)  # the page's date
    assert second.published == datetime(2026, 11, 26, 2, 0, tzinfo=UTC)  # the feed's
    assert first.tags >= {"islands", "local"} and second.tags >= {"islands", "local"}

    # The feed changes: one entry more; only its page is fetched.
    site.route("/feed.xml", rss_route(feed(site.base, 1, 2, 3, teaser=True), '"v2"'))
    (again,) = poll(engine, source, now=NOW + timedelta(minutes=30)).polled
    assert (again.new, again.pages) == (1, 1)
    assert [len(site.requests(f"/story/{n}")) for n in (1, 2, 3)] == [1, 1, 1]
    assert len(store.query(engine)) == 3


@slow
def test_a_page_that_fails_leaves_the_feeds_text_and_is_counted(site: Site, engine: Engine) -> None:
    url = site.route("/feed.xml", rss_route(feed(site.base, 1, 2), '"v1"'))
    site.route("/story/1", html_route(page(1)))  # /story/2: 404
    (one,) = poll(engine, Source(url, full_text=True)).polled
    assert (one.new, one.pages, one.page_failures) == (2, 1, 1)
    teased = next(a for a in store.query(engine) if a.url == site.url("/story/2"))
    assert teased.title == "Story 2" and teased.summary.startswith("Farmers in the valley")


@slow
def test_a_body_no_reader_takes_fails_its_source_alone(site: Site, engine: Engine) -> None:
    good = site.route("/feed.xml", rss_route(feed(site.base, 1), '"v1"'))
    bad = site.route("/broken.xml", Reply(200, b"<rss><channel><item>", {"ETag": '"b"'}))
    report = poll(engine, Source(bad), Source(good))
    by_url = {p.source.url: p for p in report.polled}
    assert by_url[good].new == 1
    failed = by_url[bad]
    assert failed.outcome == "failed" and failed.state.errors_in_a_row == 1
    assert failed.state.etag is None  # forgotten: the next poll gets the body whole
    assert "not an RSS or Atom feed" in (failed.error or "")
    assert report.failed == (failed,)


def test_stale_after_polls_only_sources_not_polled_that_recently(engine: Engine) -> None:
    fresh = sources.SourceState("http://127.0.0.1:9/fresh", last_fetch=NOW - timedelta(minutes=5))
    sources.save_states(engine, [fresh])
    report = polling.poll_sources(
        engine, [Source(fresh.url)], OPTIONS, READING, now=NOW, stale_after=1800
    )
    assert report.polled == ()


def test_canonical_urls_fold_spellings_of_one_page() -> None:
    spellings = [
        "HTTPS://News.Example.org:443/a/b?id=3&utm_source=rss#comments",
        "https://news.example.org/a/b?id=3",
    ]
    assert {sources.canonical_url(u) for u in spellings} == {"https://news.example.org/a/b?id=3"}
    assert sources.canonical_url("http://a.example") == "http://a.example/"


@slow
def test_a_home_page_source_is_polled_through_the_feed_it_names(site: Site, engine: Engine) -> None:
    home = (
        b'<html><head><link rel="alternate" type="application/rss+xml" href="/feed.xml">'
        b"</head><body><p>Welcome to the Harbour Times.</p></body></html>"
    )
    url = site.route("/", html_route(home))
    site.route("/feed.xml", rss_route(feed(site.base, 1, 2), '"v1"'))
    (one,) = poll(engine, Source(url)).polled
    assert (one.outcome, one.new, one.found_feed) == ("new", 2, site.url("/feed.xml"))
    assert one.state.moved_to == site.url("/feed.xml") and one.state.etag == '"v1"'
    (again,) = poll(engine, Source(url), now=NOW + timedelta(minutes=30)).polled
    assert again.outcome == "unchanged" and len(site.requests("/")) == 1
