"""`digest serve` over real HTTP on loopback: caching headers, gzip, files, unsubscribe."""

from __future__ import annotations

import gzip
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import formatdate
from html import unescape
from pathlib import Path
from urllib.parse import urljoin

import feedparser
import httpx
import lxml.html
import pytest
from sqlalchemy import Engine, delete, insert, select

from digest import db
from digest.errors import DigestError
from digest.feeds import write_feeds
from digest.files import write_atomic
from digest.links import unsubscribe_token, unsubscribe_url
from digest.render import render_browser_page
from digest.schema import subscribers
from digest.serve import create_app, serve, server_for

from .conftest import free_port, running
from .factories import email_issue, make_look, many_articles
from .test_feeds import INFO as FEED_INFO
from .test_feeds import sample_issues

pytestmark = pytest.mark.slow  # real HTTP over loopback, and `digest serve` processes

SECRET = "test-secret"
TITLE = "The <Test> Digest"
RSS = "application/rss+xml; charset=utf-8"
IDENTITY = {"Accept-Encoding": "identity"}
ROOT = Path(__file__).resolve().parent.parent


def rss(*titles: str) -> str:
    """A small valid RSS 2.0 feed with one item per title."""
    items = "".join(
        f"<item><title>{t}</title><link>https://news.test/{n}</link>"
        f'<guid isPermaLink="false">urn:test:{n}</guid>'
        f"<pubDate>Fri, 27 Nov 2026 0{n}:00:00 +0000</pubDate>"
        f"<description>The lead sentence of {t}, long enough to be worth compressing.</description>"
        "</item>"
        for n, t in enumerate(titles)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        "<title>The Test Digest</title><link>http://127.0.0.1/</link>"
        f"<description>Test feed</description>{items}</channel></rss>\n"
    )


@dataclass(frozen=True)
class Site:
    url: str
    port: int
    outbox: Path
    engine: Engine

    def emails(self) -> set[str]:
        """The addresses still mailed (active)."""
        with self.engine.connect() as conn:
            active = subscribers.c.status == "active"
            return set(conn.execute(select(subscribers.c.email).where(active)).scalars())

    def status(self, email: str) -> tuple[str, str | None]:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(subscribers.c.status, subscribers.c.status_via).where(
                    subscribers.c.email == email
                )
            ).one()
            return row.status, row.status_via


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """One server for the module (starting and stopping one takes longer than a test)."""
    tmp_path = tmp_path_factory.mktemp("serve")
    url = f"sqlite:///{tmp_path / 'digest.db'}"
    outbox = tmp_path / "outbox"
    with db.opened(url) as engine:
        app = create_app(
            outbox, engine_url=url, unsubscribe_secret=SECRET, cache_max_age=300, title=TITLE
        )
        with running(app, server_for(app, log_level="warning")) as port:
            yield Site(f"http://127.0.0.1:{port}", port, outbox, engine)


@pytest.fixture
def site(server: Site) -> Site:
    """The server with a fresh outbox and three subscribers."""
    shutil.rmtree(server.outbox, ignore_errors=True)
    write_atomic(server.outbox / "feed.xml", rss("First story", "Second story"))
    atom = '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"/>'
    write_atomic(server.outbox / "atom.xml", atom)
    write_atomic(server.outbox / "index.html", "<!doctype html><title>Archive</title>")
    write_atomic(
        server.outbox / "issues/2026-11-27/index.html", "<!doctype html><title>Issue</title>"
    )
    write_atomic(server.outbox / "mail/0001.eml", "To: a@example.org\r\n\r\nprivate\r\n")
    (server.outbox.parent / "secret.txt").write_text("outside the outbox")
    with server.engine.begin() as conn:
        conn.execute(delete(subscribers))
        conn.execute(
            insert(subscribers),
            [
                {"email": e, "name": None, "tags": "", "created_at": datetime.now(UTC)}
                for e in ("a@example.org", "b@example.org", "x<b>@example.org")
            ],
        )
    return server


def get(site: Site, path: str, **headers: str) -> httpx.Response:
    return httpx.get(site.url + path, headers=headers, timeout=5)


def raw_get(site: Site, target: str) -> int:
    """The status of a GET whose target is sent byte for byte (httpx would normalise it)."""
    with socket.create_connection(("127.0.0.1", site.port), timeout=5) as conn:
        conn.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        head = conn.recv(4096).decode("latin-1")
    return int(head.split()[1])


# ---------------------------------------------------------------- files and caching


def test_feed_answers_200_with_etag_then_304_with_it(site: Site) -> None:
    feed = site.outbox / "feed.xml"
    first = get(site, "/feed.xml", **IDENTITY)
    assert first.status_code == 200
    assert first.content == feed.read_bytes()
    assert first.headers["content-type"] == RSS
    assert first.headers["cache-control"] == "public, max-age=300"
    assert first.headers["last-modified"] == formatdate(feed.stat().st_mtime, usegmt=True)
    etag = first.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)

    for sent in (etag, f"W/{etag}", f'"nope", {etag}', "*"):
        again = get(site, "/feed.xml", **IDENTITY, **{"If-None-Match": sent})
        assert (again.status_code, again.content) == (304, b""), sent
        assert again.headers["etag"] == etag
        assert again.headers["cache-control"] == "public, max-age=300"
    stale = get(site, "/feed.xml", **IDENTITY, **{"If-None-Match": '"nope"'})
    assert stale.status_code == 200


def test_if_modified_since_gets_304_unless_the_file_is_newer(site: Site) -> None:
    modified = get(site, "/feed.xml").headers["last-modified"]
    assert get(site, "/feed.xml", **{"If-Modified-Since": modified}).status_code == 304
    earlier = formatdate((site.outbox / "feed.xml").stat().st_mtime - 60, usegmt=True)
    assert get(site, "/feed.xml", **{"If-Modified-Since": earlier}).status_code == 200
    assert get(site, "/feed.xml", **{"If-Modified-Since": "yesterday"}).status_code == 200
    # If-None-Match decides when both are sent (RFC 9110 §13.2.2).
    both = {"If-Modified-Since": modified, "If-None-Match": '"other"'}
    assert get(site, "/feed.xml", **both).status_code == 200


def test_a_rebuilt_feed_gets_a_new_etag_and_an_unchanged_one_keeps_it(site: Site) -> None:
    feed = site.outbox / "feed.xml"
    old = get(site, "/feed.xml", **IDENTITY).headers["etag"]
    write_atomic(feed, rss("First story", "Second story"))  # same bytes, new inode
    assert get(site, "/feed.xml", **IDENTITY).headers["etag"] == old
    before = feed.stat()

    write_atomic(feed, rss("First story", "Second storY"))  # same size and mtime: only bytes
    os.utime(feed, ns=(before.st_atime_ns, before.st_mtime_ns))
    rebuilt = get(site, "/feed.xml", **IDENTITY, **{"If-None-Match": old})
    assert rebuilt.status_code == 200
    assert rebuilt.headers["etag"] != old
    assert b"Second storY" in rebuilt.content


def test_gzip_when_asked_and_not_when_not(site: Site) -> None:
    plain = get(site, "/feed.xml", **IDENTITY)
    assert "content-encoding" not in plain.headers
    assert plain.headers["vary"] == "Accept-Encoding"
    for accept in ("gzip", "br;q=1.0, gzip;q=0.8", "*"):
        zipped = get(site, "/feed.xml", **{"Accept-Encoding": accept})
        assert zipped.headers["content-encoding"] == "gzip", accept
        assert zipped.headers["vary"] == "Accept-Encoding"
        assert zipped.content == plain.content  # httpx decompressed it
        assert int(zipped.headers["content-length"]) < len(plain.content)
        assert zipped.headers["etag"] == plain.headers["etag"][:-1] + '-gz"'
    refused = get(site, "/feed.xml", **{"Accept-Encoding": "gzip;q=0, deflate"})
    assert "content-encoding" not in refused.headers
    # A client that switched encodings still holds a valid copy: either ETag gets a 304.
    for etag in (plain.headers["etag"], plain.headers["etag"][:-1] + '-gz"'):
        for accept in ("gzip", "identity"):
            answer = get(site, "/feed.xml", **{"Accept-Encoding": accept, "If-None-Match": etag})
            assert (answer.status_code, answer.headers["etag"]) == (304, etag)


def test_head_has_the_headers_of_get_and_no_body(site: Site) -> None:
    got = get(site, "/feed.xml", **{"Accept-Encoding": "gzip"})
    head = httpx.head(site.url + "/feed.xml", headers={"Accept-Encoding": "gzip"}, timeout=5)
    assert head.status_code == 200
    assert head.content == b""
    for name in ("etag", "content-length", "content-type", "content-encoding", "last-modified"):
        assert head.headers[name] == got.headers[name]


def test_content_types(site: Site) -> None:
    for path, content_type in [
        ("/feed.xml", RSS),
        ("/atom.xml", "application/atom+xml; charset=utf-8"),
        ("/", "text/html; charset=utf-8"),
        ("/issues/2026-11-27/", "text/html; charset=utf-8"),
    ]:
        answer = get(site, path)
        assert (answer.status_code, answer.headers["content-type"]) == (200, content_type), path


def test_directories_serve_their_index_html(site: Site) -> None:
    assert get(site, "/").text == "<!doctype html><title>Archive</title>"
    assert get(site, "/issues/2026-11-27/").text == "<!doctype html><title>Issue</title>"
    moved = get(site, "/issues/2026-11-27")
    assert (moved.status_code, moved.headers["location"]) == (301, "/issues/2026-11-27/")
    assert get(site, "/issues/").status_code == 404  # no index.html: no listing either


def test_post_on_a_file_is_not_allowed(site: Site) -> None:
    assert httpx.post(site.url + "/feed.xml", timeout=5).status_code == 405


OUTSIDE = [
    "/../secret.txt",
    "/%2e%2e/secret.txt",
    "/issues/..%2F..%2F..%2Fsecret.txt",
    "/issues/%2e%2e/%2e%2e/secret.txt",
    "/..%5csecret.txt",
    "/feed.xml%00.html",
    "/.feed.xml.tmp",  # a half-written file of write_atomic
    "/outside.txt",  # a symlink out of the outbox
]


def test_nothing_outside_the_outbox_is_served(site: Site) -> None:
    (site.outbox / "outside.txt").symlink_to(site.outbox.parent / "secret.txt")
    (site.outbox / ".feed.xml.tmp").write_text("half a file")
    assert {target: raw_get(site, target) for target in OUTSIDE} == dict.fromkeys(OUTSIDE, 404)
    assert raw_get(site, "/feed.xml") == 200


def test_the_dry_run_mails_are_not_served(site: Site) -> None:
    (site.outbox / "latest.eml").symlink_to(site.outbox / "mail" / "0001.eml")
    private = ["/mail/0001.eml", "/mail/", "/mail", "/issues/../mail/0001.eml", "/latest.eml"]
    assert {target: raw_get(site, target) for target in private} == dict.fromkeys(private, 404)


# ---------------------------------------------------------------- giving nothing away


def raw_answer(site: Site, target: str, method: str = "GET") -> tuple[int, dict[str, str]]:
    """The status and headers (names lowercased) of a request sent byte for byte."""
    request = f"{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", site.port), timeout=5) as conn:
        conn.sendall(request.encode())
        data = b""
        while b"\r\n\r\n" not in data and len(data) < 65536:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
    status_line, *lines = data.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines)
    return int(status_line.split()[1]), headers


# Each names a directory (issues/) by a path a browser would read as another host.
OFFSITE = ["//issues", "///issues", "/%2F%2Fissues", "/%2F/issues", "//issues/2026-11-27"]


@pytest.mark.parametrize("target", OFFSITE)
def test_a_redirect_never_leaves_the_site(site: Site, target: str) -> None:
    (site.outbox / "issues" / "index.html").write_text("<!doctype html><title>Issues</title>")
    status, headers = raw_answer(site, target)
    location = headers.get("location", "")
    assert status == 301 and re.match(r"/(?![/\\])", location), (target, location)
    assert urljoin("http://127.0.0.1/a/", location).startswith("http://127.0.0.1/")
    assert get(site, location).status_code == 200


def test_a_redirect_keeps_the_path_it_names(site: Site) -> None:
    write_atomic(site.outbox / "a b" / "index.html", "<!doctype html><title>Spaced</title>")
    assert raw_answer(site, "/a%20b")[1]["location"] == "/a%20b/"
    assert raw_answer(site, "/issues//2026-11-27")[1]["location"] == "/issues/2026-11-27/"


def _answers(site: Site) -> dict[str, tuple[int, dict[str, str]]]:
    """One answer of each kind the server gives, by a name for it."""
    token = unsubscribe_token(SECRET, "a@example.org")
    etag = get(site, "/feed.xml", **IDENTITY).headers["etag"]
    with httpx.Client(base_url=site.url, timeout=5) as client:
        answers = {
            "feed": client.get("/feed.xml"),
            "304": client.get("/feed.xml", headers={"If-None-Match": etag, **IDENTITY}),
            "archive": client.get("/"),
            "issue": client.get("/issues/2026-11-27/"),
            "301": client.get("/issues/2026-11-27"),
            "404": client.get("/nothing"),
            "405": client.post("/feed.xml"),
            "unsubscribe page": client.get("/unsubscribe", params={"token": token}),
            "bad link": client.get("/unsubscribe", params={"token": "forged"}),
        }
    return {name: (a.status_code, dict(a.headers)) for name, a in answers.items()}


def test_every_answer_says_nosniff_and_sends_no_referrer(site: Site) -> None:
    answers = _answers(site)
    assert [status for status, _ in answers.values()] == [
        200,
        304,
        200,
        200,
        301,
        404,
        405,
        200,
        400,
    ]
    for name, (_, headers) in answers.items():
        assert headers.get("x-content-type-options") == "nosniff", name
        assert headers.get("referrer-policy") == "no-referrer", name


def test_every_html_answer_has_a_content_security_policy(site: Site) -> None:
    for name, (_, headers) in _answers(site).items():
        if headers.get("content-type", "").startswith("text/html"):
            policy = headers.get("content-security-policy", "")
            assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy, name
    policy = _answers(site)["issue"][1]["content-security-policy"]
    assert "style-src 'unsafe-inline'" in policy  # the email HTML's inline styles


def test_the_issue_page_needs_nothing_its_policy_blocks(site: Site) -> None:
    page = render_browser_page(email_issue(*many_articles(3)), make_look())
    write_atomic(site.outbox / "issues" / "2019-01-01" / "index.html", page)
    answer = get(site, "/issues/2019-01-01/")
    policy = answer.headers["content-security-policy"]
    tree = lxml.html.fromstring(answer.content)
    # Inline <style> and style="" are what the page has, and what the policy lets in.
    assert tree.xpath("//style") and tree.xpath("//*[@style]") and "'unsafe-inline'" in policy
    # Nothing it would block: no script, no stylesheet, font, frame or image to fetch.
    fetched = tree.xpath("//script | //link[@rel='stylesheet'] | //iframe | //object | //img")
    assert fetched == []
    assert "@import" not in answer.text and "@font-face" not in answer.text


@pytest.mark.browser
@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
@pytest.mark.parametrize(("extra", "refused"), [("", 0), ("<script>1</script>", 1)])
def test_chromium_shows_the_served_issue_page_within_its_policy(
    site: Site, tmp_path: Path, extra: str, refused: int
) -> None:
    """Nothing the issue page needs is refused (the script, that Chromium reports refusals)."""
    page = render_browser_page(email_issue(*many_articles(3)), make_look())
    write_atomic(
        site.outbox / "issues/2019-01-01/index.html", page.replace("</body>", extra + "</body>")
    )
    command = [
        "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
        "--virtual-time-budget=2000", "--dump-dom", site.url + "/issues/2019-01-01/",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert "The Daily Digest" in done.stdout, done.stderr[-500:]
    assert done.stderr.count("violates the following Content Security Policy") == refused


def _dropped(conn: socket.socket, trickle: Iterator[bytes]) -> bool:
    """Whether the server closes ``conn`` while it is sent ``trickle``, 0.1 s between pieces."""
    conn.settimeout(0.1)
    for piece in trickle:
        try:
            conn.sendall(piece)
            if conn.recv(4096) == b"":
                return True
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            return True
    return False


@pytest.mark.parametrize("before", [b"", b"GET /feed.xml HTTP/1.1\r\nHost: x\r\n\r\n"])
def test_a_client_trickling_its_headers_is_dropped(site: Site, before: bytes) -> None:
    """Slowloris: headers sent a line at a time, for ever, held a connection for ever."""
    app = create_app(
        site.outbox, engine_url=str(site.engine.url), unsubscribe_secret=SECRET, cache_max_age=0,
        title=TITLE,
    )  # fmt: skip
    server = server_for(app, header_timeout=0.5, log_level="warning")
    with running(app, server) as port, socket.create_connection(("127.0.0.1", port), 5) as conn:
        conn.sendall(before)  # nothing, or one whole request: the clock starts at the next one
        head = (b"GET /feed.xml HTTP/1.1\r\n", *(b"X-Slow-%d: 1\r\n" % n for n in range(100)))
        assert _dropped(conn, iter(head))  # within 100 × 0.1 s, far beyond the 0.5 s bound
        # A client that sends its request at once is answered as before.
        assert httpx.get(f"http://127.0.0.1:{port}/feed.xml", timeout=5).status_code == 200


# ---------------------------------------------------------------- unsubscribe


def unsubscribe_link(site: Site, email: str, secret: str = SECRET) -> str:
    return unsubscribe_url(secret, email, site.url)


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_one_click_post_removes_exactly_that_subscriber(site: Site, encoding: str) -> None:
    link = unsubscribe_link(site, "a@example.org")
    for _ in range(2):  # the second time finds nobody to remove, and says the same
        if encoding == "urlencoded":
            answer = httpx.post(link, data={"List-Unsubscribe": "One-Click"}, timeout=5)
        else:
            answer = httpx.post(link, files={"List-Unsubscribe": (None, "One-Click")}, timeout=5)
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "text/html; charset=utf-8"
        assert "You are unsubscribed" in answer.text
        assert "set-cookie" not in answer.headers
        assert "location" not in answer.headers
        assert site.emails() == {"b@example.org", "x<b>@example.org"}
        assert site.status("a@example.org") == ("unsubscribed", "one-click")


FORGED = [
    unsubscribe_token("another-secret", "a@example.org"),  # right address, wrong MAC
    unsubscribe_token(SECRET, "a@example.org")[:-2] + "AA",  # MAC altered
    unsubscribe_token(SECRET, "b@example.org").split(".")[0]
    + "."
    + unsubscribe_token(SECRET, "a@example.org").split(".")[1],  # another's MAC
    "garbage",
    "%%%.###",
    "",
]


def test_a_forged_token_gets_400_and_removes_nobody(site: Site) -> None:
    for token in FORGED:
        answer = httpx.post(
            site.url + "/unsubscribe",
            params={"token": token},
            data={"List-Unsubscribe": "One-Click"},
            timeout=5,
        )
        assert (answer.status_code, "not valid" in answer.text) == (400, True), token
    assert site.emails() == {"a@example.org", "b@example.org", "x<b>@example.org"}


def test_a_post_without_the_one_click_field_removes_nobody(site: Site) -> None:
    link = unsubscribe_link(site, "a@example.org")
    for body in ({}, {"List-Unsubscribe": "yes"}):
        assert httpx.post(link, data=body, timeout=5).status_code == 400
    assert httpx.post(site.url + "/unsubscribe", timeout=5).status_code == 400
    assert "a@example.org" in site.emails()


def test_get_shows_a_confirm_button_and_does_not_unsubscribe(site: Site) -> None:
    link = unsubscribe_link(site, "a@example.org")
    page = httpx.get(link, timeout=5)
    assert page.status_code == 200
    assert "a@example.org" in page.text
    assert site.emails() == {"a@example.org", "b@example.org", "x<b>@example.org"}
    assert httpx.head(link, timeout=5).status_code == 200
    assert "a@example.org" in site.emails()

    # Pressing the button sends the form as a browser would.
    form = re.search(r'<form method="post" action="([^"]+)">(.*?)</form>', page.text)
    assert form is not None
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]+)">', form[2]))
    pressed = httpx.post(urljoin(link, unescape(form[1])), data=fields, timeout=5)
    assert pressed.status_code == 200
    assert site.emails() == {"b@example.org", "x<b>@example.org"}
    assert site.status("a@example.org") == ("unsubscribed", "link-page")


def test_get_with_a_forged_token_gets_400(site: Site) -> None:
    answer = httpx.get(unsubscribe_link(site, "a@example.org", "another-secret"), timeout=5)
    assert answer.status_code == 400
    assert "<form" not in answer.text


def test_what_is_echoed_is_escaped(site: Site) -> None:
    page = httpx.get(unsubscribe_link(site, "x<b>@example.org"), timeout=5).text
    assert "x&lt;b&gt;@example.org" in page
    assert "The &lt;Test&gt; Digest" in page
    assert "<b>" not in page and "<Test>" not in page


# ---------------------------------------------------------------- feed readers


def test_feedparser_polls_twice_and_the_second_answer_is_304(site: Site) -> None:
    first = feedparser.parse(site.url + "/feed.xml")
    assert first.status == 200
    assert [e.title for e in first.entries] == ["First story", "Second story"]
    assert first.etag
    second = feedparser.parse(site.url + "/feed.xml", etag=first.etag, modified=first.modified)
    assert second.status == 304
    assert second.entries == []


def test_newsboat_reloads_the_served_feed(site: Site, tmp_path: Path) -> None:
    newsboat = shutil.which("newsboat")
    if newsboat is None:
        pytest.skip("newsboat is not installed (apt-get install -y newsboat)")
    home = tmp_path / "home"
    home.mkdir()
    (home / "urls").write_text(site.url + "/feed.xml\n")
    (home / "config").write_text("")
    cache = home / "cache.db"
    command = [newsboat, "-x", "reload", "-u", str(home / "urls"), "-c", str(cache)]
    command += ["-C", str(home / "config")]
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8"}
    for _ in range(2):  # the second reload is a conditional GET
        subprocess.run(command, env=env, timeout=30, check=True, capture_output=True)
    with sqlite3.connect(cache) as db:
        titles = {row[0] for row in db.execute("SELECT title FROM rss_item")}
        (etag,) = db.execute("SELECT etag FROM rss_feed").fetchone()
    assert titles == {"First story", "Second story"}
    assert etag == get(site, "/feed.xml", **{"Accept-Encoding": "gzip"}).headers["etag"]


# ---------------------------------------------------------------- the serve() entry point


@contextmanager
def serve_process(tmp_path: Path, **options: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``serve()`` of tmp_path/outbox in a child process on a free port: it and its port."""
    arguments = "".join(f"{name}={value}, " for name, value in options.items())
    code = (
        "from pathlib import Path; from digest.serve import serve; "
        f"serve(Path({str(tmp_path / 'outbox')!r}), port=0, "
        f"engine_url={f'sqlite:///{tmp_path}/d.db'!r}, unsubscribe_secret='s', "
        f"cache_max_age=60, title='T', {arguments}"
        "on_started=lambda host, port: print('started', port, flush=True)); "
        "print('returned', flush=True)"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        started, port = child.stdout.readline().split()  # the port the kernel gave it
        assert started == "started" and port != "0"
        yield child, port
    finally:
        child.kill() if child.poll() is None else None


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_runs_until_a_signal_and_returns_cleanly(tmp_path: Path, signum: int) -> None:
    feed = rss(*(f"Story {n} " + "word " * 200 for n in range(22)))
    write_atomic(tmp_path / "outbox" / "feed.xml", feed)
    with serve_process(tmp_path, log_level="'warning'") as (child, port):
        with httpx.Client(headers=IDENTITY, timeout=5) as client:
            answer = client.get(f"http://127.0.0.1:{port}/feed.xml")
            assert answer.status_code == 200
            assert answer.headers["cache-control"] == "public, max-age=60"
            assert len(answer.content) > 40_000
        child.send_signal(signum)
        out, err = child.communicate(timeout=15)
    assert (child.returncode, out.strip(), err) == (0, "returned", "")


def test_the_access_log_has_the_path_and_never_the_token(tmp_path: Path) -> None:
    """An unsubscribe link's token, in a log, unsubscribes whoever reads the log."""
    token = unsubscribe_token("s", "a@example.org")
    with serve_process(tmp_path, access_log="True") as (child, port):
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            assert client.get("/unsubscribe", params={"token": token}).status_code == 200
            assert client.get("/nothing?token=" + token).status_code == 404
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=15)
    assert '"GET /unsubscribe HTTP/1.1" 200' in out and '"GET /nothing HTTP/1.1" 404' in out
    assert token not in out + err and "token=" not in out + err


def test_serve_says_what_to_do_when_the_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(DigestError, match=rf"cannot listen on 127.0.0.1:{port}: .*--port"):
            serve(
                tmp_path,
                port=port,
                engine_url=f"sqlite:///{tmp_path / 'd.db'}",
                unsubscribe_secret="s",
                cache_max_age=60,
                title="T",
            )


def test_gzip_bytes_are_real_gzip(site: Site) -> None:
    with httpx.stream(
        "GET", site.url + "/feed.xml", headers={"Accept-Encoding": "gzip"}, timeout=5
    ) as answer:
        raw = b"".join(answer.iter_raw())
    assert gzip.decompress(raw) == (site.outbox / "feed.xml").read_bytes()


def test_the_access_log_is_off_unless_asked_for(tmp_path: Path) -> None:
    with serve_process(tmp_path) as (child, port):
        assert httpx.get(f"http://127.0.0.1:{port}/nothing", timeout=5).status_code == 404
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=15)
    assert "GET /nothing" not in out + err


def test_a_gzip_request_gets_the_precompressed_copy(site: Site) -> None:
    """The copy digest wrote beside the feed (files.write_if_changed) is sent as it is; an
    older copy (the file was rewritten since) is not."""
    feed = (site.outbox / "feed.xml").read_bytes()
    packed = gzip.compress(feed, compresslevel=1, mtime=0)  # not what serve would make
    assert packed != gzip.compress(feed, compresslevel=6, mtime=0)
    (site.outbox / "feed.xml.gz").write_bytes(packed)
    with httpx.stream(
        "GET", site.url + "/feed.xml", headers={"Accept-Encoding": "gzip"}, timeout=5
    ) as answer:
        assert b"".join(answer.iter_raw()) == packed
    os.utime(site.outbox / "feed.xml.gz", ns=(1_000, 1_000))
    (site.outbox / "feed.xml").write_bytes(feed + b"\n")  # a new version: the copy is older
    with httpx.stream(
        "GET", site.url + "/feed.xml", headers={"Accept-Encoding": "gzip"}, timeout=5
    ) as answer:
        assert gzip.decompress(b"".join(answer.iter_raw())) == feed + b"\n"


def test_the_extra_lifespan_runs_while_the_app_serves(tmp_path: Path) -> None:
    events: list[str] = []

    @asynccontextmanager
    async def scheduler() -> AsyncIterator[None]:
        events.append("start")
        yield
        events.append("stop")

    app = create_app(
        tmp_path,
        engine_url=f"sqlite:///{tmp_path / 'd.db'}",
        unsubscribe_secret="s",
        cache_max_age=60,
        title="T",
        extra_lifespan=scheduler,
    )
    with running(app) as port:
        assert events == ["start"]
        assert httpx.get(f"http://127.0.0.1:{port}/nothing", timeout=5).status_code == 404
    assert events == ["start", "stop"]


def test_serve_reports_a_bad_database_url_before_listening(tmp_path: Path) -> None:
    with pytest.raises(DigestError, match="bad database URL"):
        serve(
            tmp_path,
            port=0,
            engine_url="nosuchdb://x",
            unsubscribe_secret="s",
            cache_max_age=60,
            title="T",
        )


def test_the_listening_socket_is_tcp_so_answers_skip_nagles_delay() -> None:
    """asyncio sets TCP_NODELAY only on sockets made with proto=IPPROTO_TCP; without it every
    keep-alive answer waited 40 ms for the client's delayed ACK (bench_serve found it)."""
    from digest.serve import _bind

    with _bind("127.0.0.1", 0) as sock:
        assert sock.proto == socket.IPPROTO_TCP


def test_serve_with_scheduler_runs_both_in_one_process(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    write_atomic(outbox / "feed.xml", rss("One story"))
    config = tmp_path / "digest.toml"
    config.write_text(
        f'database_url = "sqlite:///{tmp_path}/d.db"\n'
        f'outbox_dir = "{outbox}"\n'
        f'schedule_db = "sqlite:///{tmp_path}/schedule.db"\n'
        'timezone = "Europe/Paris"\nschedule_time = "06:30"\n',
        encoding="utf-8",
    )
    command = [sys.executable, "-m", "digest", "--config", str(config)]
    lines: list[str] = []
    with subprocess.Popen(
        [*command, "serve", "--port", "0", "--with-scheduler"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as child:
        assert child.stdout is not None
        reader = threading.Thread(target=lambda: lines.extend(child.stdout or ()))
        reader.start()
        try:
            # Both say they are up, in either order: the server its port, the scheduler its run.
            deadline = time.monotonic() + 30
            while not (_port(lines) and any("daily at 06:30 Europe/Paris" in x for x in lines)):
                assert child.poll() is None, lines
                assert time.monotonic() < deadline, lines
                time.sleep(0.02)
            answer = httpx.get(f"http://127.0.0.1:{_port(lines)}/feed.xml", timeout=5)
            assert answer.status_code == 200
            second = subprocess.run(
                [*command, "schedule"], capture_output=True, text=True, timeout=30
            )
            assert second.returncode == 1
            assert "another `digest schedule` is running" in second.stderr
            child.send_signal(signal.SIGTERM)
            assert child.wait(timeout=20) == 0
        finally:
            child.kill()
            reader.join(timeout=10)


def _port(lines: list[str]) -> str:
    """The port of digest's "Serving … on http://127.0.0.1:PORT/" line so far, or ""."""
    for line in list(lines):
        if found := re.fullmatch(r"Serving \S+ on http://127\.0\.0\.1:(\d+)/\n", line):
            return found[1]
    return ""


def test_serve_on_port_0_says_the_port_it_got(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    write_atomic(outbox / "feed.xml", rss("One story"))
    config = tmp_path / "digest.toml"
    config.write_text(
        f'database_url = "sqlite:///{tmp_path}/d.db"\noutbox_dir = "{outbox}"\n', encoding="utf-8"
    )
    command = [sys.executable, "-m", "digest", "--config", str(config), "serve", "--port", "0"]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as child:
        try:
            assert child.stdout is not None
            line = child.stdout.readline()
            match = re.fullmatch(r"Serving \S+ on http://127\.0\.0\.1:(\d+)/\n", line)
            assert match is not None and match.group(1) != "0", line
            assert (
                httpx.get(f"http://127.0.0.1:{match.group(1)}/feed.xml", timeout=5).status_code
                == 200
            )
            child.send_signal(signal.SIGTERM)
            assert child.wait(timeout=20) == 0
        finally:
            child.kill()


def _nginx_block() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return readme.split("```nginx\n", 1)[1].split("```", 1)[0]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
def test_the_readmes_nginx_block_passes_nginx_t_and_serves_the_gzipped_feed(
    tmp_path: Path,
) -> None:
    """The README's nginx block, as given, in an nginx.conf of its own: `nginx -t` takes it,
    and it sends feed.xml.gz (as digest wrote it) to a client that accepts gzip, typed."""
    outbox = tmp_path / "outbox"
    write_feeds(outbox, sample_issues(), FEED_INFO)
    port = free_port()
    block = (
        _nginx_block()
        .replace("/srv/digest/outbox", str(outbox))
        .replace("/var/log/nginx/digest.access.log", str(tmp_path / "access.log"))
        .replace("server {", f"server {{\n    listen 127.0.0.1:{port};", 1)
    )
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"user root;\npid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        f"events {{}}\nhttp {{\n{block}\n}}\n",
        encoding="utf-8",
    )
    nginx = ["nginx", "-p", str(tmp_path), "-c", str(conf)]
    checked = subprocess.run([*nginx, "-t"], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    server = subprocess.Popen([*nginx, "-g", "daemon off;"], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                answer = httpx.get(
                    f"http://127.0.0.1:{port}/feed.xml",
                    headers={"Accept-Encoding": "gzip"},
                    timeout=5,
                )
                break
            except httpx.TransportError:
                log = (tmp_path / "error.log").read_text(encoding="utf-8", errors="replace")
                assert time.monotonic() < deadline and server.poll() is None, log
                time.sleep(0.05)
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/rss+xml; charset=utf-8"
        assert answer.headers["content-encoding"] == "gzip"
        assert int(answer.headers["content-length"]) == (outbox / "feed.xml.gz").stat().st_size
        assert answer.content == (outbox / "feed.xml").read_bytes()
        assert answer.headers["x-content-type-options"] == "nosniff"
    finally:
        server.terminate()
        server.wait(timeout=10)
