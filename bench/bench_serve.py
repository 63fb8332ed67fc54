"""Load benchmark of `digest serve`: requests/s and p99 latency for 200 and 304 answers on feed.xml.

The server runs `digest.serve.serve` in a child process on a free loopback port (pinned to
one core) with a ~50 KB feed.xml. A bounded closed-loop load generator drives it: wrk when
installed, else a Python asyncio keep-alive client. Runs interleave the scenarios; the table
shows medians of the runs. The whole load phase is capped at 60 s.

    .venv/bin/python bench/bench_serve.py                    # 3 scenarios x 3 runs x 6 s
    .venv/bin/python bench/bench_serve.py --client python    # the fallback client
    .venv/bin/python bench/bench_serve.py --quick            # 1 run of 2 s each (smoke test)
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import usage
from common import fingerprint, snapshot

MAX_LOAD_SECONDS = 60
BUSY = 0.9  # server CPU / wall below this: its core was shared, or the client was too slow
FEED_BYTES = 50_000
HOST = "127.0.0.1"
PYTHONPATH = os.environ.get("PYTHONPATH", "")


@dataclass(frozen=True)
class Scenario:
    name: str
    headers: dict[str, str]
    status: int
    encoding: str | None  # the Content-Encoding the answer must carry


@dataclass(frozen=True)
class Run:
    rps: float
    p99_ms: float
    bytes_per_answer: float
    server_cpu: float  # the server's CPU time / wall time during the run (1.0 = one core)


# ---------------------------------------------------------------- the served outbox


def write_feed(outbox: Path) -> int:
    """A valid RSS 2.0 feed of about FEED_BYTES bytes, the same on every run."""
    words = ["harbour", "council", "budget", "tariff", "vote", "ferry", "museum", "storm"]
    items = []
    n = 0
    while sum(len(i) for i in items) < FEED_BYTES - 600:
        text = " ".join(words[(n * 7 + k) % len(words)] for k in range(150))
        items.append(
            f"<item><title>Story {n}: {words[n % len(words)]}</title>"
            f"<link>https://news.example/{n}</link><guid>https://news.example/{n}</guid>"
            f"<pubDate>Fri, 27 Nov 2026 07:{n % 60:02d}:00 +0000</pubDate>"
            f"<description>{text}.</description></item>\n"
        )
        n += 1
    feed = (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        "<title>Bench Digest</title><link>http://127.0.0.1/</link><description>bench"
        "</description>\n" + "".join(items) + "</channel></rss>\n"
    )
    outbox.mkdir(parents=True, exist_ok=True)
    (outbox / "feed.xml").write_text(feed, encoding="utf-8")
    return len(feed.encode())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def start_server(
    work: Path, src: Path, port: int, cpu: int, access_log: bool
) -> subprocess.Popen[str]:
    code = (
        "import os, sys; from pathlib import Path; from digest.serve import serve; "
        f"os.sched_setaffinity(0, {{{cpu}}}); "
        f"serve(Path({str(work / 'outbox')!r}), host={HOST!r}, port={port}, "
        f"engine_url={'sqlite:///' + str(work / 'bench.db')!r}, unsubscribe_secret='bench', "
        f"cache_max_age=300, title='Bench', log_level='warning', access_log={access_log}, "
        "on_started=lambda host, port: print(__import__('digest').__file__, flush=True))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(src), PYTHONPATH]))}
    server = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env, cwd=work
    )
    assert server.stdout is not None
    started = server.stdout.readline().strip()  # blocks until on_started, or the child dies
    if not started.startswith(str(src)):
        server.kill()
        sys.exit(f"the server did not start from the snapshot in {src} (got {started!r})")
    return server


def check(port: int, scenario: Scenario) -> None:
    """One request as the load generator will send it: the answer must be the expected one."""
    conn = http.client.HTTPConnection(HOST, port, timeout=5)
    conn.request("GET", "/feed.xml", headers=scenario.headers)
    answer = conn.getresponse()
    answer.read()
    conn.close()
    encoding = answer.getheader("Content-Encoding")
    if (answer.status, encoding) != (scenario.status, scenario.encoding):
        sys.exit(f"{scenario.name}: got {answer.status} {encoding}, not the expected answer")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- load generators

_WRK_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}
_SIZE_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}


def wrk(
    port: int, scenario: Scenario, seconds: float, connections: int, cpu: int
) -> tuple[float, float, float]:
    """(requests/s, p99 ms, bytes per answer) from one wrk run."""
    cmd = ["taskset", "-c", str(cpu), "wrk", "-t1", f"-c{connections}", f"-d{round(seconds)}s"]
    cmd += ["--latency", "--timeout", "5s"]
    for name, value in scenario.headers.items():
        cmd += ["-H", f"{name}: {value}"]
    out = subprocess.run(
        [*cmd, f"http://{HOST}:{port}/feed.xml"], capture_output=True, text=True, check=True
    ).stdout
    if "Non-2xx or 3xx" in out or "Socket errors" in out:
        sys.exit(f"wrk saw errors:\n{out}")
    p99 = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
    total = re.search(r"(\d+) requests in [\d.]+\w+, ([\d.]+)(B|KB|MB|GB) read", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not (p99 and total and rps):
        sys.exit(f"cannot read wrk's output:\n{out}")
    read = float(total[2]) * _SIZE_UNITS[total[3]]
    return float(rps[1]), float(p99[1]) * _WRK_UNITS[p99[2]], read / int(total[1])


def python_client(
    port: int, scenario: Scenario, seconds: float, connections: int, cpu: int
) -> tuple[float, float, float]:
    """The same measure without wrk: keep-alive connections, each one request at a time."""
    request = "GET /feed.xml HTTP/1.1\r\nHost: bench\r\n"
    request += "".join(f"{k}: {v}\r\n" for k, v in scenario.headers.items()) + "\r\n"
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    received = [0]

    async def connection(deadline: float) -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        while (start := time.perf_counter()) < deadline:
            writer.write(request.encode("latin-1"))
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            body = await reader.readexactly(int(length[1])) if length else b""
            latencies.append(time.perf_counter() - start)
            statuses[int(head[9:12])] += 1
            received[0] += len(head) + len(body)
        writer.close()
        await writer.wait_closed()

    async def load() -> float:
        begin = time.perf_counter()
        deadline = begin + seconds
        await asyncio.gather(*(connection(deadline) for _ in range(connections)))
        return time.perf_counter() - begin

    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        elapsed = asyncio.run(load())
    finally:
        os.sched_setaffinity(0, previous)
    if set(statuses) != {scenario.status}:
        sys.exit(f"{scenario.name}: answers {dict(statuses)}, expected only {scenario.status}")
    p99 = statistics.quantiles(latencies, n=100)[98] * 1e3
    return len(latencies) / elapsed, p99, received[0] / len(latencies)


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--seconds", type=int, default=6, help="per run (default 6)")
    parser.add_argument("--runs", type=int, default=3, help="runs per scenario (default 3)")
    parser.add_argument("--connections", type=int, default=4, help="keep-alive connections")
    parser.add_argument("--access-log", action="store_true", help="keep uvicorn's access log on")
    parser.add_argument("--quick", action="store_true", help="1 run of 2 s per scenario")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.runs = 2, 1
    client = args.client if args.client != "auto" else ("wrk" if shutil.which("wrk") else "python")
    if client == "wrk" and not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install -y wrk), or use --client python")
    if 3 * args.runs * args.seconds > MAX_LOAD_SECONDS:
        sys.exit(f"scenarios x runs x seconds must stay within {MAX_LOAD_SECONDS} s")
    measure = wrk if client == "wrk" else python_client

    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        work = Path(tmp)
        code = snapshot(work / "src")
        size = write_feed(work / "outbox")
        port = free_port()
        server = start_server(work, work / "src", port, args.server_cpu, args.access_log)
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=5)
            conn.request("GET", "/feed.xml", headers={"Accept-Encoding": "gzip"})
            etag = conn.getresponse().getheader("ETag") or ""
            conn.close()
            scenarios = [
                Scenario("200 (identity)", {"Accept-Encoding": "identity"}, 200, None),
                Scenario("200 (gzip)", {"Accept-Encoding": "gzip"}, 200, "gzip"),
                Scenario("304 (If-None-Match)", {"If-None-Match": etag}, 304, None),
            ]
            print(
                f"digest sources {code} (snapshot), python {sys.version.split()[0]}, "
                f"client {client}, {args.connections} connections, feed.xml {size:,} bytes, "
                f"server on CPU {args.server_cpu}, client on CPU {args.client_cpu}, "
                f"access log {'on' if args.access_log else 'off'}"
            )
            runs: dict[str, list[Run]] = {s.name: [] for s in scenarios}
            for _ in range(args.runs):
                for scenario in scenarios:
                    check(port, scenario)
                    before, begin = cpu_seconds(server.pid), time.perf_counter()
                    rps, p99, per = measure(
                        port, scenario, args.seconds, args.connections, args.client_cpu
                    )
                    cpu = (cpu_seconds(server.pid) - before) / (time.perf_counter() - begin)
                    runs[scenario.name].append(Run(rps, p99, per, cpu))
                    print(
                        f"  {scenario.name:<20} {rps:9,.0f} req/s  p99 {p99:7.2f} ms  "
                        f"{per:9,.0f} B/answer  server CPU {cpu:4.0%}{' *' if cpu < BUSY else ''}",
                        flush=True,
                    )
        finally:
            server.terminate()
            server.wait(15)
        if server.returncode != 0:
            sys.exit(f"the server did not stop cleanly on SIGTERM (exit {server.returncode})")

    print("\n| answer on feed.xml | requests/s | p99 latency | bytes/answer | server CPU |")
    print("|---|---:|---:|---:|---:|")
    for name, done in runs.items():
        rps = statistics.median(r.rps for r in done)
        p99 = statistics.median(r.p99_ms for r in done)
        per = statistics.median(r.bytes_per_answer for r in done)
        cpu = statistics.median(r.server_cpu for r in done)
        print(f"| {name} | {rps:,.0f} | {p99:.1f} ms | {per:,.0f} | {cpu:.0%} |")
    print(f"\nmedians of {args.runs} run(s) of {args.seconds:g} s each")
    if any(r.server_cpu < BUSY for done in runs.values() for r in done):
        print(f"* the server used < {BUSY:.0%} of its core: it shared it, or waited on the client")
    if fingerprint() != code:
        print(f"note: digest/*.py changed during the run; figures are for {fingerprint}")


if __name__ == "__main__":
    usage.report()
    main()
