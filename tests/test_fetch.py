"""The fetcher against real HTTP servers on loopback, and the sources' state in the store."""

from __future__ import annotations

import gzip
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import brotli
import pytest
from sqlalchemy import Engine

from digest import __version__, fetch, readers, sources
from digest.sources import Source, SourceState

NOW = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
OPTIONS = fetch.Options(
    base_url="https://news.example.org/",
    max_bytes=20_000,
    connect_timeout=0.5,
    read_timeout=0.5,
    total_timeout=2.0,
    backoff=60.0,
    backoff_max=3600.0,
)
slow = pytest.mark.slow  # real HTTP over loopback


def same(delay: float) -> float:
    """No jitter: the waits a test asserts."""
    return delay


def rss(*titles: str, declaration: str = '<?xml version="1.0" encoding="utf-8"?>\n') -> str:
    items = "".join(
        f"<item><title>{t}</title><link>https://site.test/{n}</link>"
        f"<pubDate>Thu, 26 Nov 2026 0{n}:00:00 +0000</pubDate>"
        f"<description>{t}: the lead sentence of the story, long enough to read.</description>"
        "</item>"
        for n, t in enumerate(titles)
    )
    return (
        f'{declaration}<rss version="2.0"><channel><title>Site</title>'
        f"<link>https://site.test/</link>{items}</channel></rss>"
    )


FEED = rss("First story", "Second story").encode()
PNG = b"\x89PNG\r\n\x1a\n" + bytes(500)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering
    length: bool = True  # send Content-Length; else the body ends when the connection does
    pause: float = 0.0  # seconds between two bytes of the body: a trickle


@dataclass(frozen=True)
class Seen:
    path: str
    headers: dict[str, str]


Route = Callable[[Seen], Reply]


class Site:
    """An HTTP server on a loopback address: routes by path, every request and body kept."""

    def __init__(self, host: str) -> None:
        self.routes: dict[str, Route] = {}
        self.seen: list[Seen] = []
        self.body_bytes: dict[str, int] = {}
        self.in_flight = self.most_in_flight = 0
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer((host, 0), self._handler())
        self.server.daemon_threads = True
        self.base = f"http://{host}:{self.server.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def route(self, path: str, reply: Reply | Route) -> str:
        self.routes[path] = reply if callable(reply) else (lambda _seen: reply)
        return self.url(path)

    def requests(self, path: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.path == path]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen = Seen(self.path, {k.lower(): v for k, v in self.headers.items()})
                with site._lock:
                    site.seen.append(seen)
                    site.in_flight += 1
                    site.most_in_flight = max(site.most_in_flight, site.in_flight)
                try:
                    route = site.routes.get(self.path)
                    reply = route(seen) if route else Reply(404, b"not here")
                    if reply.delay:
                        site.stop.wait(reply.delay)
                    with site._lock:  # done before it answers: the client may ask again at once
                        site.in_flight -= 1
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    if reply.length and "Content-Length" not in reply.headers:
                        self.send_header("Content-Length", str(len(reply.body)))
                    with site._lock:  # before it goes: the client may look at once
                        site.body_bytes[self.path] = site.body_bytes.get(self.path, 0) + len(
                            reply.body
                        )
                    self.end_headers()
                    if not reply.pause:
                        self.wfile.write(reply.body)
                    for byte in reply.body if reply.pause else b"":
                        self.wfile.write(bytes((byte,)))
                        self.wfile.flush()
                        if site.stop.wait(reply.pause):
                            break
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler

    def __enter__(self) -> Site:
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site() -> Iterator[Site]:
    with Site("127.0.0.1") as running:
        yield running


def poll_one(
    url: str,
    state: SourceState | None = None,
    *,
    now: datetime = NOW,
    options: fetch.Options = OPTIONS,
) -> fetch.Fetched:
    """One poll of one source, with its state from an earlier poll."""
    states = {url: state} if state else {}
    [fetched] = fetch.poll([Source(url)], states, options, now=now, jitter=same)
    return fetched


def etag_route(etag: str, body: bytes) -> Route:
    modified = "Thu, 26 Nov 2026 05:00:00 GMT"

    def reply(seen: Seen) -> Reply:
        if seen.headers.get("if-none-match") == etag:
            return Reply(304, headers={"ETag": etag})
        ctype = "application/rss+xml; charset=utf-8"
        return Reply(200, body, {"ETag": etag, "Last-Modified": modified, "Content-Type": ctype})

    return reply


@slow
def test_unchanged_feed_costs_one_304_and_no_body(site: Site, engine: Engine) -> None:
    url = site.route("/feed.xml", etag_route('"v1"', FEED))
    first = poll_one(url)
    assert (first.outcome, first.kind, first.state.etag) == ("new", "feed", '"v1"')
    assert [readers.entry_title(e) for e in readers.read_feed(first.data)[1]] == [
        "First story",
        "Second story",
    ]
    sources.save_states(engine, [first.state])
    stored = sources.load_states(engine)
    assert stored == {url: first.state}

    later = NOW + timedelta(minutes=30)
    second = poll_one(url, stored[url], now=later)
    assert (second.outcome, second.data, second.state.last_ok) == ("unchanged", b"", later)
    asked = site.requests("/feed.xml")[-1].headers
    assert asked["if-none-match"] == '"v1"'
    assert asked["if-modified-since"] == "Thu, 26 Nov 2026 05:00:00 GMT"
    assert site.body_bytes["/feed.xml"] == len(FEED)  # the 304 sent nothing after it
    assert second.state.etag == '"v1"'


@slow
def test_user_agent_names_digest_and_the_operator(site: Site) -> None:
    poll_one(site.route("/feed.xml", Reply(200, FEED)))
    [seen] = site.requests("/feed.xml")
    assert seen.headers["user-agent"] == f"digest/{__version__} (+https://news.example.org/)"
    assert "application/rss+xml" in seen.headers["accept"]


@slow
@pytest.mark.parametrize(("status", "permanent"), [(301, True), (308, True), (302, False)])
def test_permanent_redirect_moves_the_source(site: Site, status: int, permanent: bool) -> None:
    url = site.route("/old.xml", Reply(status, headers={"Location": "/new.xml"}))
    new = site.route("/new.xml", Reply(200, FEED))
    first = poll_one(url)
    assert first.outcome == "new"
    assert first.url == new
    assert first.moved == (new if permanent else None)
    assert first.state.moved_to == (new if permanent else None)
    assert first.state.url == url  # still keyed by the configured URL
    poll_one(url, first.state, now=NOW + timedelta(hours=1))
    assert len(site.requests("/old.xml")) == (1 if permanent else 2)
    assert len(site.requests("/new.xml")) == 2


@slow
def test_a_permanent_move_then_a_temporary_one_moves_to_the_first_target(site: Site) -> None:
    url = site.route("/old.xml", Reply(301, headers={"Location": "/rss"}))
    moved = site.route("/rss", Reply(307, headers={"Location": "/today.xml"}))
    site.route("/today.xml", Reply(200, FEED))
    fetched = poll_one(url)
    assert (fetched.outcome, fetched.moved, fetched.state.moved_to) == ("new", moved, moved)


@slow
def test_a_redirect_loop_a_trickle_and_a_closed_port_fail_alone(site: Site) -> None:
    loop = site.route("/a.xml", Reply(302, headers={"Location": "/b.xml"}))
    site.route("/b.xml", Reply(302, headers={"Location": "/a.xml"}))
    trickle = site.route("/trickle.xml", Reply(200, FEED[:40], pause=0.1))
    with Site("127.0.0.1") as gone:
        closed = gone.url("/feed.xml")
    good = site.route("/feed.xml", Reply(200, FEED))
    options = replace(OPTIONS, total_timeout=1.0)
    every = [Source(url) for url in (loop, trickle, closed, good)]
    polled = fetch.poll(every, {}, options, now=NOW, jitter=same)
    assert [f.outcome for f in polled] == ["failed", "failed", "failed", "new"]
    assert polled[0].error == "more than 5 redirects"
    assert polled[1].error == "timed out: no whole reply within 1 s"
    assert (polled[2].error or "").startswith(f"cannot fetch {closed}: ")
    assert polled[2].state.last_status is None


@slow
def test_failures_are_counted_per_source_and_the_others_come_in(site: Site) -> None:
    good = [site.route(f"/good{n}.xml", Reply(200, FEED)) for n in range(2)]
    bad = {
        "404": site.route("/gone.xml", Reply(404, b"no")),
        "500": site.route("/broken.xml", Reply(500, b"oops")),
        "timeout": site.route("/slow.xml", Reply(200, FEED, delay=3.0)),
        "oversized": site.route("/big.xml", Reply(200, rss("x" * 30_000).encode())),
        "unannounced": site.route(
            "/chunked.xml",
            Reply(200, b"<rss>" + b" " * 30_000, length=False),
        ),
        "garbage": site.route("/logo.png", Reply(200, PNG, {"Content-Type": "image/png"})),
    }
    every = [Source(url) for url in [good[0], *bad.values(), good[1]]]
    polled = {f.source.url: f for f in fetch.poll(every, {}, OPTIONS, now=NOW, jitter=same)}
    assert [polled[url].outcome for url in good] == ["new", "new"]
    errors = {name: polled[url].error for name, url in bad.items()}
    assert errors["404"] == "HTTP 404 Not Found"
    assert errors["500"] == "HTTP 500 Internal Server Error"
    assert errors["timeout"] == "timed out waiting for the reply"
    assert errors["oversized"] == errors["unannounced"] == "larger than 20,000 bytes"
    assert errors["garbage"] == "not a feed or a web page (image/png)"
    for url in bad.values():
        state = polled[url].state
        assert (polled[url].outcome, state.errors_in_a_row) == ("failed", 1)
        assert state.next_poll == NOW + timedelta(seconds=60)

    states = {url: f.state for url, f in polled.items()}
    again = fetch.poll(every, states, OPTIONS, now=NOW + timedelta(seconds=30), jitter=same)
    assert {f.source.url for f in again if f.outcome == "waiting"} == set(bad.values())
    later = NOW + timedelta(seconds=61)
    third = {f.source.url: f for f in fetch.poll(every, states, OPTIONS, now=later, jitter=same)}
    assert {third[url].state.errors_in_a_row for url in bad.values()} == {2}
    assert third[bad["404"]].state.next_poll == later + timedelta(seconds=120)


@slow
def test_a_refused_body_is_asked_for_whole_next_time(site: Site) -> None:
    headers = {"ETag": '"v1"', "Last-Modified": "Thu, 26 Nov 2026 05:00:00 GMT"}
    url = site.route("/feed.xml", Reply(200, PNG, headers))
    refused = poll_one(url)
    assert (refused.outcome, refused.state.etag, refused.state.last_modified) == (
        "failed",
        None,
        None,
    )
    poll_one(url, refused.state, now=NOW + timedelta(hours=1))
    assert "if-none-match" not in site.requests("/feed.xml")[-1].headers
    # A body the caller's readers refuse is counted alike.
    read = fetch.failure(
        replace(refused.state, etag='"v2"'), "no entries", now=NOW, options=OPTIONS, forget=True
    )
    assert (read.etag, read.errors_in_a_row, read.last_error) == (None, 2, "no entries")


@slow
@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize("form", ["seconds", "date"])
def test_retry_after_is_honoured(site: Site, status: int, form: str) -> None:
    value = "120" if form == "seconds" else format_datetime(NOW + timedelta(seconds=120), True)
    url = site.route("/feed.xml", Reply(status, b"later", {"Retry-After": value}))
    first = poll_one(url)
    assert (first.outcome, first.state.last_status) == ("failed", status)
    assert first.state.next_poll == NOW + timedelta(seconds=120)
    early = poll_one(url, first.state, now=NOW + timedelta(seconds=119))
    assert early.outcome == "waiting"
    assert len(site.requests("/feed.xml")) == 1
    site.route("/feed.xml", Reply(200, FEED))
    on_time = poll_one(url, first.state, now=NOW + timedelta(seconds=120))
    assert (on_time.outcome, on_time.state.errors_in_a_row) == ("new", 0)


@slow
@pytest.mark.parametrize(
    ("coding", "compress"),
    [("gzip", gzip.compress), ("br", brotli.compress), ("deflate", zlib.compress)],
)
def test_compressed_bodies(site: Site, coding: str, compress: Callable[[bytes], bytes]) -> None:
    body = rss(*(f"Story {n}" for n in range(8))).encode()
    url = site.route("/feed.xml", Reply(200, compress(body), {"Content-Encoding": coding}))
    fetched = poll_one(url)
    assert coding in site.requests("/feed.xml")[0].headers["accept-encoding"]
    assert fetched.data == body
    assert site.body_bytes["/feed.xml"] < len(body)


@slow
def test_a_compressed_bomb_is_cut_at_the_cap(site: Site) -> None:
    bomb = gzip.compress(b"<rss>" + b" " * 1_000_000)
    url = site.route("/feed.xml", Reply(200, bomb, {"Content-Encoding": "gzip"}))
    assert poll_one(url).error == "larger than 20,000 bytes"


@slow
def test_the_content_type_charset_decodes_a_feed_that_declares_none(site: Site) -> None:
    title = "Новости дня"
    body = rss(title, declaration="").encode("koi8-r")
    url = site.route("/feed.xml", Reply(200, body, {"Content-Type": "text/xml; charset=koi8-r"}))
    _site, entries = readers.read_feed(poll_one(url).data)
    assert readers.entry_title(entries[0]) == title


@slow
def test_one_request_at_a_time_per_host() -> None:
    with Site("127.0.0.1") as one, Site("127.0.0.2") as two:
        urls = [
            s.route(f"/f{n}.xml", Reply(200, FEED, delay=0.1)) for s in (one, two) for n in range(3)
        ]
        polled = fetch.poll([Source(u) for u in urls], {}, OPTIONS, now=NOW, jitter=same)
    assert [f.outcome for f in polled] == ["new"] * 6
    assert (one.most_in_flight, two.most_in_flight) == (1, 1)


def test_disabled_sources_are_not_polled() -> None:
    assert fetch.poll([Source("http://127.0.0.1:9/", enabled=False)], {}, OPTIONS, now=NOW) == []


def test_backoff_doubles_up_to_its_cap() -> None:
    state = SourceState(url="https://site.test/feed.xml")
    waits = []
    for _ in range(8):
        state = fetch.failure(state, "HTTP 500", now=NOW, options=OPTIONS, jitter=same)
        assert state.next_poll is not None
        waits.append((state.next_poll - NOW).total_seconds())
    assert waits == [60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert state.errors_in_a_row == 8
    jittered = fetch.failure(state, "HTTP 500", now=NOW, options=OPTIONS)
    assert jittered.next_poll is not None
    assert 0.75 * 3600 <= (jittered.next_poll - NOW).total_seconds() <= 3600


@pytest.mark.parametrize(
    ("data", "charset", "expected"),
    [
        ("Привет".encode("koi8-r"), "koi8-r", "Привет".encode()),
        ("Привет".encode(), "iso-8859-1", "Привет".encode()),  # a server's stale default
        (b'<?xml version="1.0" encoding="koi8-r"?><rss/>', "cp1251", None),  # its own says
        (b'<html><meta charset="koi8-r">\xf0', "cp1251", None),
        ("\ufeffcafé".encode(), "iso-8859-1", None),
        ("café".encode("utf-16-le"), "utf-16-le", "café".encode()),
        (b"caf\xe9", "no-such-charset", None),
        (b"caf\xe9", None, None),
    ],
)
def test_with_charset(data: bytes, charset: str | None, expected: bytes | None) -> None:
    assert fetch.with_charset(data, charset) == (data if expected is None else expected)


def test_states_are_stored_and_replaced(engine: Engine) -> None:
    state = SourceState(
        url="https://site.test/feed.xml",
        moved_to="https://site.test/rss",
        etag='W/"abc"',
        last_modified="Thu, 26 Nov 2026 05:00:00 GMT",
        last_fetch=NOW,
        last_ok=NOW - timedelta(hours=1),
        last_status=500,
        errors_in_a_row=2,
        next_poll=NOW + timedelta(minutes=4),
        last_error="HTTP 500\nInternal Server Error",
        new_articles=3,
    )
    other = SourceState(url="https://other.test/")
    sources.save_states(engine, [state, other])
    assert sources.load_states(engine) == {
        state.url: replace(state, last_error="HTTP 500 Internal Server Error"),
        other.url: other,
    }
    healed = replace(state, errors_in_a_row=0, last_error=None, next_poll=None)
    sources.save_states(engine, [healed])
    assert sources.load_states(engine, [state.url]) == {state.url: healed}
