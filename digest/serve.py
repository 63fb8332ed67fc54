"""`digest serve`: outbox/ over HTTP with cheap polling, and the one-click unsubscribe endpoint.

Feed readers poll feed.xml every few minutes, so a file answer costs one ``stat`` when the
file has not changed: its bytes, hash and gzipped copy are cached per file version.

It gives nothing away: redirects stay on the site, every answer says nosniff and sends no
Referer, HTML answers carry a Content-Security-Policy, a client trickling its headers is
dropped, and the access log never holds a query (an unsubscribe link's token).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import logging
import mimetypes
import os
import re
import socket
import stat
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import HTTP
from email.utils import formatdate, parsedate_to_datetime
from functools import partial
from pathlib import Path
from urllib.parse import parse_qs, quote

import h11
import uvicorn
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from digest import db, signals, subscribers, templating
from digest.errors import DigestError, ServeError, SubscriberError
from digest.links import verify_unsubscribe_token

ExtraLifespan = Callable[[], AbstractAsyncContextManager[object]]

_log = logging.getLogger(__name__)
# outbox/preview/ holds what dry runs wrote (mails with addresses and unsubscribe tokens, an
# unsent issue), and outbox/mail/ an older digest's dry-run mails: neither is ever served.
_PRIVATE = ("preview", "mail")
_CACHE_BYTES = 64 * 1024 * 1024  # file bytes (plain + gzipped) kept in memory
_GZIP_MIN = 256  # smaller bodies gain nothing from gzip
_MAX_FORM = 64 * 1024
HEADER_TIMEOUT = 10.0  # seconds a client has to send its request line and headers
_MAX_TOKEN = 1024
_CODING = re.compile(r"([a-z0-9*!#$%&'+.^_`|~-]+)\s*(?:;\s*q\s*=\s*([01](?:\.[0-9]{0,3})?))?")
_ETAG = re.compile(r'\s*(?:W/)?("[^"]*")\s*(?:,|$)')
_TYPES = {  # by name, then by suffix; the rest by mimetypes
    "feed.xml": "application/rss+xml; charset=utf-8",
    "atom.xml": "application/atom+xml; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".eml": "message/rfc822",
}
_COMPRESSIBLE: tuple[str, ...] = ("text/", "image/svg+xml", "message/rfc822", "application/xml")
_COMPRESSIBLE += ("application/rss+xml", "application/atom+xml", "application/json")
_BAD_LINK = (
    "This unsubscribe link is not valid. Use the link in the latest email you got from us, "
    "whole: some mail programs cut long links in two."
)
_NOT_ONE_CLICK = "An unsubscribe POST carries the form field List-Unsubscribe=One-Click."
_TRY_AGAIN = "We could not unsubscribe you just now. Please try again in a few minutes."
UNSUBSCRIBE_TEMPLATE = "unsubscribe.html.j2"
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"
    "; base-uri 'none'; frame-ancestors 'none'",
}
# On every answer: no guessing a type the server did not send (a .txt run as a script), and no
# Referer to the sites the pages link to (an unsubscribe URL holds a token; the rest, what a
# reader reads, is nobody else's business).
_EVERY_ANSWER = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"))
# On every HTML answer without a policy of its own (the archive, articles, issue pages): the
# email HTML's inline <style> and style="" work; no script, frame, plugin, or fetch elsewhere.
_HTML_POLICY = (
    b"default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; "
    b"form-action 'self'; frame-ancestors 'none'"
)


@dataclass(frozen=True, slots=True)
class _File:
    """One version of a served file, with everything a response needs precomputed."""

    version: tuple[int, int, int]  # (inode, mtime_ns, size): a rename or rewrite changes it
    body: bytes
    gz: bytes | None  # None when not worth compressing
    etag: str
    gz_etag: str
    content_type: str
    last_modified: str
    mtime: int

    @property
    def cost(self) -> int:
        return len(self.body) + len(self.gz or b"")


class _Site:
    """The app's state: where files are, the file cache, the database engine."""

    def __init__(self, outbox: Path, secret: str, cache_max_age: int, title: str) -> None:
        self.root = os.path.realpath(outbox)
        self.private = tuple(os.path.join(self.root, name) for name in _PRIVATE)
        self.secret = secret
        self.cache_control = f"public, max-age={cache_max_age}"
        self.title = title
        self.files: OrderedDict[str, _File] = OrderedDict()
        self.cached_bytes = 0

    async def file(self, request: Request) -> Response:
        """A file of outbox/, or its index.html for a directory; 304 when the client has it."""
        path: str = request.scope["path"]
        target = self._target(path)
        try:
            info = os.stat(target or "\x00")  # ValueError: nothing to serve
            if stat.S_ISDIR(info.st_mode):
                if not path.endswith("/"):  # relative links in index.html need the slash
                    return RedirectResponse(_on_site(path) + "/", 301)
                target = os.path.join(str(target), "index.html")
                info = os.stat(target)
        except (OSError, ValueError):
            return PlainTextResponse("Not Found", 404)
        if target is None or not stat.S_ISREG(info.st_mode):
            return PlainTextResponse("Not Found", 404)
        entry = self.files.get(target)
        if entry is None or entry.version != (info.st_ino, info.st_mtime_ns, info.st_size):
            try:
                entry = await run_in_threadpool(_load, target)
            except OSError:
                return PlainTextResponse("Not Found", 404)
            self._remember(target, entry)
        else:
            self.files.move_to_end(target)
        return self._answer(request, entry)

    def _target(self, path: str) -> str | None:
        """The real path a URL path names, or None when it names nothing we serve."""
        parts = [part for part in path.split("/") if part]
        # Dot segments, hidden files (write_atomic's temp files) and NULs are never served.
        if any(part.startswith(".") or "\x00" in part or "\\" in part for part in parts):
            return None
        real = os.path.realpath(os.path.join(self.root, *parts))
        # Symlinks may not lead out of outbox/, nor into its private part.
        inside = real == self.root or real.startswith(self.root + os.sep)
        private = any(real == p or real.startswith(p + os.sep) for p in self.private)
        return real if inside and not private else None

    def _remember(self, target: str, entry: _File) -> None:
        old = self.files.pop(target, None)
        self.cached_bytes -= old.cost if old else 0
        self.files[target] = entry
        self.cached_bytes += entry.cost
        while self.cached_bytes > _CACHE_BYTES and len(self.files) > 1:
            _, evicted = self.files.popitem(last=False)
            self.cached_bytes -= evicted.cost

    def _answer(self, request: Request, entry: _File) -> Response:
        headers = {"Cache-Control": self.cache_control, "Last-Modified": entry.last_modified}
        if entry.content_type.startswith(_COMPRESSIBLE):
            headers["Vary"] = "Accept-Encoding"
        zipped = entry.gz is not None and _accepts_gzip(request.headers.get("accept-encoding", ""))
        headers["ETag"] = entry.gz_etag if zipped else entry.etag
        matched = _not_modified(request, entry)
        if matched is not None:
            headers["ETag"] = matched or headers["ETag"]
            return Response(None, 304, headers)
        body = entry.gz if zipped and entry.gz is not None else entry.body
        if zipped:
            headers["Content-Encoding"] = "gzip"
        headers["Content-Type"] = entry.content_type
        headers["Content-Length"] = str(len(body))
        return Response(b"" if request.method == "HEAD" else body, 200, headers)

    async def unsubscribe(self, request: Request) -> Response:
        """GET shows a confirm button; POST (RFC 8058 one-click, or that button) unsubscribes."""
        token = request.query_params.get("token", "")
        email = verify_unsubscribe_token(self.secret, token) if len(token) < _MAX_TOKEN else None
        if email is None:
            return self._page(400, "Link not valid", _BAD_LINK)
        if request.method != "POST":
            action = "unsubscribe?token=" + quote(token, safe="")
            return self._page(200, "Unsubscribe?", f"Stop sending {self.title} to {email}?", action)
        fields = _form_fields(request.headers.get("content-type", ""), await request.body())
        if fields.get("List-Unsubscribe") != "One-Click":
            return self._page(400, "Not an unsubscribe request", _NOT_ONE_CLICK)
        try:
            via: subscribers.Via = "link-page" if fields.get("via") == "page" else "one-click"
            await run_in_threadpool(_unsubscribe, request.state.engine, email, via)
        except DigestError as exc:
            _log.error("cannot unsubscribe a subscriber: %s", exc)
            return self._page(503, "Try again later", _TRY_AGAIN)
        done = f"You are unsubscribed: {email} will get no more {self.title}."
        return self._page(200, "You are unsubscribed", done)

    def _page(self, status: int, heading: str, text: str, action: str = "") -> Response:
        page = unsubscribe_page(self.title, heading, text, action)
        return HTMLResponse(page, status, _PAGE_HEADERS)


def unsubscribe_page(title: str, heading: str, text: str, action: str = "") -> str:
    """The unsubscribe page: a heading, a line, and a confirm button posting to ``action``."""
    context = {"title": title, "heading": heading, "text": text, "action": action}
    return templating.render(UNSUBSCRIBE_TEMPLATE, context, error=ServeError)


def create_app(
    outbox: Path,
    *,
    engine_url: str,
    unsubscribe_secret: str,
    cache_max_age: int,
    title: str,
    extra_lifespan: ExtraLifespan | None = None,
) -> ASGIApp:
    """The ASGI app; the engine is made at startup, inside ``extra_lifespan`` if given."""
    site = _Site(outbox, unsubscribe_secret, cache_max_age, title)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[dict[str, Engine]]:
        engine = await run_in_threadpool(db.connect, engine_url)
        try:
            async with extra_lifespan() if extra_lifespan else contextlib.nullcontext():
                yield {"engine": engine}  # handlers get it as request.state.engine
        finally:
            engine.dispose()

    routes = [
        Route("/unsubscribe", site.unsubscribe, methods=["GET", "POST"], max_body_size=_MAX_FORM),
        Route("/{path:path}", site.file, methods=["GET", "HEAD"]),
    ]
    return _Hardened(Starlette(routes=routes, lifespan=lifespan))


class _Hardened:
    """The app with the headers of ``_EVERY_ANSWER`` (and HTML's policy) on every answer.

    Outside Starlette, so its own error answers (a 500) carry them too.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_hardened(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                names = {name.lower() for name, _ in headers}
                headers += [header for header in _EVERY_ANSWER if header[0] not in names]
                types = [value for name, value in headers if name.lower() == b"content-type"]
                html = any(value.lower().startswith(b"text/html") for value in types)
                if html and b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", _HTML_POLICY))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_hardened)


def serve(
    outbox: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    engine_url: str,
    unsubscribe_secret: str,
    cache_max_age: int,
    title: str,
    on_started: Callable[[str, int], None] | None = None,
    extra_lifespan: ExtraLifespan | None = None,
    log_level: str = "info",
    access_log: bool = False,
    header_timeout: float = HEADER_TIMEOUT,
) -> None:
    """Serve until SIGTERM or SIGINT, then finish open requests and return."""
    with db.opened(engine_url):
        pass  # a bad URL or an unreachable database is reported here, not as a traceback
    unsubscribe_page(title, "", "")  # and a missing or broken page template
    sock = _bind(host, port)
    app = create_app(
        outbox,
        engine_url=engine_url,
        unsubscribe_secret=unsubscribe_secret,
        cache_max_age=cache_max_age,
        title=title,
        extra_lifespan=extra_lifespan,
    )
    server = server_for(
        app, header_timeout=header_timeout, log_level=log_level, access_log=access_log
    )
    with sock, signals.on_stop_signals(partial(setattr, server, "should_exit", True), once=False):
        try:
            asyncio.run(_serve(server, sock, on_started))
        except SystemExit as exc:  # uvicorn's way of saying the app did not start
            raise ServeError(f"digest serve stopped at startup: {exc}; see the log above") from exc


def server_for(
    app: ASGIApp,
    *,
    header_timeout: float = HEADER_TIMEOUT,
    log_level: str = "info",
    access_log: bool = False,
) -> uvicorn.Server:
    """The uvicorn server ``serve`` runs ``app`` in (tests run it on a socket of their own)."""
    config = uvicorn.Config(
        app,
        http=_with_header_timeout(header_timeout),
        log_level=log_level,
        access_log=access_log,
        lifespan="on",
        server_header=False,
    )
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _PathOnly) for f in access.filters):
        access.addFilter(_PathOnly())
    return uvicorn.Server(config)


class _PathOnly(logging.Filter):
    """uvicorn's access log lines with the path only: the query of an unsubscribe link is its
    token, which unsubscribes whoever reads the log, and any other query is the client's own."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args  # (client, method, path?query, HTTP version, status)
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (*args[:2], args[2].partition("?")[0], *args[3:])
        return True


class _TimedHead(H11Protocol):
    """uvicorn's HTTP/1.1 connection, closed when a request's line and headers take longer than
    ``head_timeout`` seconds from its first byte (or from connecting).

    uvicorn times out only an idle keep-alive connection, so a client sending its headers a
    line at a time (slowloris) held a connection, and a file descriptor, for as long as it liked.
    """

    head_timeout = HEADER_TIMEOUT
    _clock: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_clock()

    def data_received(self, data: bytes) -> None:
        if self._clock is None and self.conn.their_state is h11.IDLE:
            self._start_clock()  # the first bytes of the next request on a kept-alive connection
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._stop_clock()  # the head is in: the request's body and answer are not timed here

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_clock()
        super().connection_lost(exc)

    def _start_clock(self) -> None:
        self._clock = self.loop.call_later(self.head_timeout, self._too_slow)

    def _stop_clock(self) -> None:
        if self._clock is not None:
            self._clock.cancel()
            self._clock = None

    def _too_slow(self) -> None:
        self._clock = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def _with_header_timeout(seconds: float) -> type[_TimedHead]:
    class Protocol(_TimedHead):
        head_timeout = seconds

    return Protocol


async def _serve(
    server: uvicorn.Server, sock: socket.socket, on_started: Callable[[str, int], None] | None
) -> None:
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not task.done():
        await asyncio.sleep(0.02)
    if server.started:
        logging.getLogger("uvicorn.error").info("Serving on %s port %d", *sock.getsockname()[:2])
        if on_started is not None:
            host, port = sock.getsockname()[:2]
            on_started(str(host), int(port))  # the real port, when asked for port 0
    await task


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so a taken port is one clear error, not a log line."""
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on such sockets, and without it Nagle
    # holds back the end of every body until the client's delayed ACK (40 ms a response).
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
        except OSError:
            sock.close()
            raise
    except (OSError, UnicodeError) as exc:
        why = getattr(exc, "strerror", None) or exc
        raise ServeError(f"cannot listen on {host}:{port}: {why}; check --host and --port") from exc
    return sock


def _on_site(path: str) -> str:
    """``path`` as a Location that cannot leave the site: one leading slash, no empty segment.

    A browser reads ``//issues/`` (what ``GET //issues`` would get back) as the host "issues".
    """
    return "/" + "/".join(quote(part) for part in path.split("/") if part)


def _load(path: str) -> _File:
    with open(path, "rb") as handle:
        info = os.fstat(handle.fileno())
        body = handle.read()
    content_type = _content_type(os.path.basename(path))
    gz = None
    if len(body) >= _GZIP_MIN and content_type.startswith(_COMPRESSIBLE):
        gz = _precompressed(path, info.st_mtime_ns) or gzip.compress(body, 6, mtime=0)
        gz = gz if len(gz) < len(body) else None
    digest = hashlib.blake2b(body, digest_size=16).hexdigest()
    return _File(
        version=(info.st_ino, info.st_mtime_ns, info.st_size),
        body=body,
        gz=gz,
        etag=f'"{digest}"',
        gz_etag=f'"{digest}-gz"',
        content_type=content_type,
        last_modified=formatdate(info.st_mtime, usegmt=True),
        mtime=int(info.st_mtime),
    )


def _precompressed(path: str, mtime_ns: int) -> bytes | None:
    """The gzipped copy digest wrote beside a page or feed (files.write_if_changed), when
    it is not older than the file; else None."""
    try:
        with open(f"{path}.gz", "rb") as handle:
            if os.fstat(handle.fileno()).st_mtime_ns < mtime_ns:
                return None
            return handle.read()
    except OSError:
        return None


def _content_type(name: str) -> str:
    known = _TYPES.get(name) or _TYPES.get(os.path.splitext(name)[1].lower())
    if known:
        return known
    guessed = mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"
    return guessed + "; charset=utf-8" if guessed.startswith("text/") else guessed


def _accepts_gzip(header: str) -> bool:
    """Whether Accept-Encoding allows gzip (RFC 9110 §12.5.3: q=0 means "not acceptable")."""
    weights = {coding: float(q or 1) for coding, q in _CODING.findall(header.lower())}
    weight = weights.get("gzip", weights.get("x-gzip", weights.get("*", 0.0)))
    return weight > 0


def _not_modified(request: Request, entry: _File) -> str | None:
    """None for a full answer; else the ETag a 304 carries ("" to keep the negotiated one).

    If-None-Match compares weakly (RFC 9110 §13.1.2) against both representations, and when
    present, If-Modified-Since is ignored (§13.2.2).
    """
    if_none_match = ", ".join(request.headers.getlist("if-none-match"))  # lines may repeat
    if if_none_match:
        if if_none_match.strip() == "*":
            return ""
        tags = _ETAG.findall(if_none_match)
        return next((str(t) for t in tags if t in (entry.etag, entry.gz_etag)), None)
    try:
        since = parsedate_to_datetime(request.headers.get("if-modified-since", ""))
    except (TypeError, ValueError, IndexError):
        return None
    return "" if since.tzinfo is not None and entry.mtime <= since.timestamp() else None


def _form_fields(content_type: str, body: bytes) -> dict[str, str]:
    """The fields of a form POST, urlencoded or multipart (RFC 8058 allows both)."""
    if content_type.split(";")[0].strip().lower() == "multipart/form-data":
        head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
        message = message_from_bytes(head + body, policy=HTTP)
        fields: dict[str, str] = {}
        for part in message.walk() if message.is_multipart() else ():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                fields[name] = payload.decode("utf-8", "replace").strip()
        return fields
    text = body.decode("utf-8", "replace")
    return {key: values[-1].strip() for key, values in parse_qs(text).items()}


def _unsubscribe(engine: Engine, email: str, via: subscribers.Via) -> None:
    with contextlib.suppress(SubscriberError):  # not a valid address, so never stored: already gone
        subscribers.suppress(engine, email, via=via, now=datetime.now(UTC))
