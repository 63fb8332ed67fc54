"""The fetcher polling many sources: wall time of one poll, CPU per source, bytes of a 304.

A child process serves SOURCES feeds over loopback from HOSTS addresses (127.0.0.1 …), each
answer after LATENCY s; one source in twenty fails (500), the rest answer 200 with an ETag,
or 304 to it. The first poll is mixed: half the sources come with the ETag of their feed
stored (304), half without (200). The second poll asks again with the states the first gave:
every healthy source costs a 304, and the bytes each exchange took (request and reply, as the
server counted them) are the target's.

    .venv/bin/python bench/bench_fetch.py               # 500 sources on 50 hosts, 3 runs
    .venv/bin/python bench/bench_fetch.py --quick       # 100 sources, 1 run (smoke test)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import usage  # noqa: E402

from digest import fetch  # noqa: E402
from digest.sources import Source, SourceState  # noqa: E402

LATENCY = 0.05
FAILING_EVERY = 20  # 5 %
FEED_ITEMS = 20  # about 6 KB a feed
MAX_304_BYTES = 1024
NOW = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)


def _feed(number: int) -> bytes:
    items = "".join(
        f"<item><title>Story {number}.{n}</title><link>https://site{number}.test/{n}</link>"
        f"<description>The lead sentence of story {n} of feed {number}, as a teaser."
        "</description></item>"
        for n in range(FEED_ITEMS)
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Site {number}</title><link>https://site{number}.test/</link>{items}"
        "</channel></rss>"
    ).encode()


async def _serve(hosts: int) -> None:
    """The child: serve /feed/N on 127.0.0.1..127.0.0.HOSTS; /stats gives the byte counts."""
    exchanged: dict[str, int] = {}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split()[1]
                asked = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (line.partition(":") for line in lines[1:] if line)
                }
                if path == "/stats":
                    body, status, extra = json.dumps(exchanged).encode(), "200 OK", ""
                else:
                    await asyncio.sleep(LATENCY)
                    number = int(path.rsplit("/", 1)[1])
                    etag = f'"v{number}"'
                    if number % FAILING_EVERY == 0:
                        body, status, extra = b"oops", "500 Internal Server Error", ""
                    elif asked.get("if-none-match") == etag:
                        body, status, extra = b"", "304 Not Modified", f"ETag: {etag}\r\n"
                    else:
                        body, status = _feed(number), "200 OK"
                        extra = f"ETag: {etag}\r\nContent-Type: application/rss+xml\r\n"
                reply = (
                    f"HTTP/1.1 {status}\r\n{extra}Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                if path != "/stats":
                    exchanged[path] = exchanged.get(path, 0) + len(head) + len(reply)
                writer.write(reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    servers = [
        await asyncio.start_server(handle, f"127.0.0.{n + 1}", 0, backlog=512) for n in range(hosts)
    ]
    ports = [s.sockets[0].getsockname()[1] for s in servers]
    print(json.dumps(ports), flush=True)
    await asyncio.Event().wait()


def _stats(port: int) -> dict[str, int]:
    import httpx

    return dict(httpx.get(f"http://127.0.0.1:{port}/stats", timeout=10).json())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=500)
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="100 sources, 1 run")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the child
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.serve))
        return 0
    if args.quick:
        args.sources, args.hosts, args.runs = 100, 10, 1
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(args.hosts)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        ports = json.loads(child.stdout.readline())
        options = fetch.Options(base_url="https://bench.example.org/")
        print(
            f"{args.sources} sources on {args.hosts} hosts, {LATENCY * 1000:.0f} ms each, "
            f"1 in {FAILING_EVERY} failing; concurrency {options.concurrency}, one per host"
        )
        rows = []
        for run in range(args.runs):
            urls = [
                f"http://127.0.0.{n % args.hosts + 1}:{ports[n % args.hosts]}/feed/{run}{n:04d}"
                for n in range(args.sources)
            ]
            sources = [Source(url) for url in urls]
            states = {  # half come with their feed's ETag stored: the first poll is mixed
                url: SourceState(url=url, etag=f'"v{int(url.rsplit("/", 1)[1])}"')
                for url in urls[1::2]
            }
            wall, cpu = time.perf_counter(), time.process_time()
            first = fetch.poll(sources, states, options, now=NOW)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            before = _stats(ports[0])
            later = NOW + timedelta(hours=1)
            again = {
                u: replace(f.state, next_poll=None) for u, f in ((f.source.url, f) for f in first)
            }
            second = fetch.poll(sources, again, options, now=later)
            after = _stats(ports[0])
            outcomes = [f.outcome for f in first]
            unchanged = [f for f in second if f.outcome == "unchanged"]
            per_304 = [
                after[p] - before[p]
                for f in unchanged
                if (p := "/" + f.source.url.split("/", 3)[3])
            ]
            rows.append((wall, cpu / args.sources, max(per_304), outcomes, len(unchanged)))
            print(
                f"run {run + 1}: first poll {wall:.2f} s wall, {cpu / args.sources * 1000:.2f} ms "
                f"CPU a source ({outcomes.count('new')} new, {outcomes.count('unchanged')} "
                f"unchanged, {outcomes.count('failed')} failed); second poll: "
                f"{len(unchanged)} unchanged, at most {max(per_304)} bytes each"
            )
    finally:
        child.terminate()
        child.wait(10)
    wall = statistics.median(r[0] for r in rows)
    cpu = statistics.median(r[1] for r in rows)
    worst = max(r[2] for r in rows)
    print(
        f"median: {wall:.2f} s wall a poll, {cpu * 1000:.2f} ms CPU a source; "
        f"a 304 exchange at most {worst} bytes (target < {MAX_304_BYTES})"
    )
    return 0 if worst < MAX_304_BYTES else 1


if __name__ == "__main__":
    usage.report()
    sys.exit(main())
