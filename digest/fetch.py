"""Polling sources by URL, politely: one poll asks each due source once, and gives its bytes.

Polite: at most ``Options.concurrency`` requests at once and one at a time per host; a
User-Agent that names digest and the operator's site; conditional GETs (an unchanged feed
costs one 304 and no body); a source that fails waits longer after each failure in a row,
and one that answers 429 or 503 with Retry-After is not asked again before then. Robust:
connect, read and total timeouts, a size cap read as the body streams in, redirects
followed (a permanent one moves the source, and is reported), and a source that fails
costs only itself. The bytes come with the Content-Type's charset applied, so the caller
hands them to the same readers as files (``readers.read_feed``, ``read_html``).

``poll`` takes the sources and their stored states (``sources.load_states``) and gives a
``Fetched`` for each, with the new state to store (``sources.save_states``). The instant
``now`` and the backoff's ``jitter`` are passed in, so tests need no waiting. A page fetched
once (a feed entry's link) is a poll of a ``Source`` with no state.
"""

from __future__ import annotations

import asyncio
import codecs
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from itertools import pairwise
from typing import Literal
from urllib.parse import urlsplit

import httpx

from digest import __version__, readers
from digest.sources import Source, SourceState

Outcome = Literal["new", "unchanged", "failed", "waiting"]
# What a feed reader asks for: feeds first, then pages (a site's home page, an article).
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, text/html;q=0.8, */*;q=0.5"
)
_PERMANENT = frozenset((301, 308))
_RETRY_LATER = frozenset((429, 503))
_BOMS = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)  # UTF-32's begin alike
# The bytes name their own encoding: an XML declaration's, or an HTML <meta charset>.
_DECLARES = re.compile(rb"""\A\s*<\?xml[^>]*?encoding\s*=|<meta[^>]+charset\s*=""", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Options:
    """How the fetcher behaves; built from the settings in one place (pipeline)."""

    base_url: str  # the operator's public site, named in the User-Agent
    max_bytes: int = 5_000_000  # a body larger than this fails the source, unread
    concurrency: int = 8  # requests at once, over all hosts (one at a time per host)
    connect_timeout: float = 10.0  # seconds to connect
    read_timeout: float = 30.0  # seconds between two pieces of the reply
    total_timeout: float = 60.0  # seconds for one whole request, redirects and body
    max_redirects: int = 5
    backoff: float = 600.0  # seconds a source waits after a failure, doubled each one more
    backoff_max: float = 86_400.0  # the longest wait after failures
    retry_after_max: float = 7 * 86_400.0  # a longer Retry-After is cut to this


@dataclass(frozen=True, slots=True)
class Fetched:
    """One source's poll: its new state (to store) and, when ``new``, the bytes to read."""

    source: Source
    state: SourceState
    outcome: Outcome  # new: a body; unchanged: 304; failed: see error; waiting: not asked
    data: bytes = b""  # the body, as the readers read a file (the header's charset applied)
    kind: readers.Kind | None = None  # which reader the bytes need
    url: str | None = None  # where the body came from, after redirects: links' base
    moved: str | None = None  # a permanent redirect seen by this poll: the source's new URL
    error: str | None = None  # one line, when failed


def user_agent(base_url: str) -> str:
    """The User-Agent of every request: digest, its version, and whose digest is asking."""
    return f"digest/{__version__} (+{base_url})"


def _jitter(delay: float) -> float:
    """A wait cut by up to a quarter at random, so failed sources do not all return at once."""
    return delay * random.uniform(0.75, 1.0)


def poll(
    sources: Sequence[Source],
    states: Mapping[str, SourceState],
    options: Options,
    *,
    now: datetime,
    jitter: Callable[[float], float] = _jitter,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[Fetched]:
    """Ask each enabled source that is due (in order), ``Options.concurrency`` at once; one
    ``Fetched`` a source. Blocks; from async code, await ``poll_async``."""
    return asyncio.run(
        poll_async(sources, states, options, now=now, jitter=jitter, transport=transport)
    )


async def poll_async(
    sources: Sequence[Source],
    states: Mapping[str, SourceState],
    options: Options,
    *,
    now: datetime,
    jitter: Callable[[float], float] = _jitter,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[Fetched]:
    """``poll``, in the caller's event loop."""
    slots = asyncio.Semaphore(options.concurrency)
    hosts: dict[str, asyncio.Lock] = {}
    async with httpx.AsyncClient(
        headers={"User-Agent": user_agent(options.base_url), "Accept": ACCEPT},
        timeout=httpx.Timeout(
            options.total_timeout, connect=options.connect_timeout, read=options.read_timeout
        ),
        follow_redirects=True,
        max_redirects=options.max_redirects,
        limits=httpx.Limits(max_connections=options.concurrency),
        transport=transport,
    ) as client:

        async def one(source: Source) -> Fetched:
            state = states.get(source.url) or SourceState(url=source.url)
            if not state.due(now):
                return Fetched(source, state, "waiting")
            host = (urlsplit(state.fetch_url).hostname or "").lower()
            async with hosts.setdefault(host, asyncio.Lock()), slots:
                return await _fetch(client, source, state, options, now, jitter)

        return list(await asyncio.gather(*(one(s) for s in sources if s.enabled)))


async def _fetch(
    client: httpx.AsyncClient,
    source: Source,
    state: SourceState,
    options: Options,
    now: datetime,
    jitter: Callable[[float], float],
) -> Fetched:
    """One conditional GET of the source, whatever comes of it."""

    def failed(
        error: str, status: int | None = None, *, wait: float | None = None, forget: bool = False
    ) -> Fetched:
        new = failure(
            state, error, now=now, options=options, jitter=jitter, status=status, forget=forget
        )
        if wait is not None:  # the server said when: that, not our backoff
            new = replace(new, next_poll=now + timedelta(seconds=wait))
        return Fetched(source, new, "failed", error=new.last_error)

    headers = {}
    if state.etag:
        headers["If-None-Match"] = state.etag
    if state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    try:
        async with (
            asyncio.timeout(options.total_timeout),
            client.stream("GET", state.fetch_url, headers=headers) as response,
        ):
            status = response.status_code
            moved = _moved(response, state)
            ok = replace(
                state,
                moved_to=moved if moved is not None else state.moved_to,
                last_fetch=now,
                last_ok=now,
                last_status=status,
                errors_in_a_row=0,
                next_poll=None,
                last_error=None,
                new_articles=0,
            )
            if status == 304:
                return Fetched(source, ok, "unchanged", url=str(response.url), moved=moved)
            if not response.is_success:
                wait = None
                if status in _RETRY_LATER:
                    wait = _retry_after(response.headers.get("Retry-After"), now, options)
                return failed(f"HTTP {status} {response.reason_phrase}".strip(), status, wait=wait)
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > options.max_bytes:
                return failed(_too_large(options), status, forget=True)
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > options.max_bytes:
                    return failed(_too_large(options), status, forget=True)
    except TimeoutError:
        return failed(f"timed out: no whole reply within {options.total_timeout:g} s")
    except httpx.TimeoutException as exc:
        return failed(f"timed out {_phase(exc)}")
    except httpx.TooManyRedirects:
        return failed(f"more than {options.max_redirects} redirects")
    except httpx.DecodingError as exc:
        return failed(f"cannot decode the body ({exc})")
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return failed(f"cannot fetch {state.fetch_url}: {exc or type(exc).__name__}")
    data = with_charset(bytes(body), response.charset_encoding)
    kind = readers.sniff(data)
    if kind is None and response.headers.get("Content-Type", "").startswith("text/plain"):
        kind = "text"
    if kind is None:
        shown = response.headers.get("Content-Type") or "no Content-Type"
        return failed(f"not a feed or a web page ({shown})", status, forget=True)
    ok = replace(
        ok,
        etag=response.headers.get("ETag"),
        last_modified=response.headers.get("Last-Modified"),
    )
    return Fetched(source, ok, "new", data, kind, str(response.url), moved)


def failure(
    state: SourceState,
    error: str,
    *,
    now: datetime,
    options: Options,
    jitter: Callable[[float], float] = _jitter,
    status: int | None = None,
    forget: bool = False,
) -> SourceState:
    """``state`` after a failed poll at ``now``: one more error in a row, and a wait before
    the next poll that doubles with each (``Options.backoff``, up to ``backoff_max``).

    ``forget``: the body came but was refused (too large, garbage; the caller's readers
    rejecting it count here too): its ETag and Last-Modified go, so the next poll gets the
    body whole instead of a 304 that would hide the failure."""
    errors = state.errors_in_a_row + 1
    wait = jitter(min(options.backoff_max, options.backoff * 2 ** min(errors - 1, 32)))
    return replace(
        state,
        etag=None if forget else state.etag,
        last_modified=None if forget else state.last_modified,
        last_fetch=now,
        last_status=status,
        errors_in_a_row=errors,
        next_poll=now + timedelta(seconds=wait),
        last_error=error,
        new_articles=0,
    )


def with_charset(data: bytes, charset: str | None) -> bytes:
    """``data`` as the readers should read it: re-encoded from the charset its Content-Type
    names to UTF-8, unless the bytes name their own (a BOM, an XML declaration, an HTML
    ``<meta charset>``) or are UTF-8 already (ASCII, or a server's stale default)."""
    if not charset:
        return data
    try:
        codec = codecs.lookup(charset).name
    except LookupError:
        return data
    head = data[: readers.SNIFF_BYTES]
    if codec == "utf-8" or head.startswith(_BOMS) or _DECLARES.search(head):
        return data
    if not codec.startswith(("utf-16", "utf-32")):  # their ASCII is valid UTF-8 too
        try:
            data.decode("utf-8")
            return data
        except UnicodeDecodeError:
            pass
    try:
        return data.decode(codec).encode("utf-8")
    except (UnicodeDecodeError, LookupError):
        return data  # not in the charset it claims: the readers' own guess is better


def _moved(response: httpx.Response, state: SourceState) -> str | None:
    """The URL the source moved to when the redirects began with permanent ones (the last
    of those is the new address), else None; a temporary redirect moves nothing."""
    hops = [*response.history, response]
    moved = None
    for hop, after in pairwise(hops):
        if hop.status_code not in _PERMANENT:
            break
        moved = str(after.url)
    return None if moved in (None, state.fetch_url) else moved


def _retry_after(value: str | None, now: datetime, options: Options) -> float | None:
    """Seconds a Retry-After header asks to wait (delta seconds or an HTTP date), capped."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        seconds = (when - now).total_seconds()
    return min(max(seconds, 0.0), options.retry_after_max)


def _too_large(options: Options) -> str:
    return f"larger than {options.max_bytes:,} bytes"


def _phase(exc: httpx.TimeoutException) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return "connecting"
    if isinstance(exc, httpx.ReadTimeout):
        return "waiting for the reply"
    return "sending the request" if isinstance(exc, httpx.WriteTimeout) else "for a connection"
