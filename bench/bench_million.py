"""A million subscribers: imported, then sent through 4 workers, with flat memory.

On PostgreSQL (each size in a schema of its own), `digest subscribers import` of N rows,
then a real `digest send --workers 4` of the seeds' issue to Postfix's smtp-sink (a fast C
sink; unpack it from Debian's postfix package: see below), at N = 100,000 and 1,000,000.
Each command is its own process: its CPU is user+sys of it and its workers; its memory the
largest peak RSS of any one of them.

Targets (issue 14): the send's memory flat (1M ≤ 1.2× the peak of 100k), every recipient
sent once (the ledger holds N 'sent' rows); the import ≤ 120 s CPU at 1M.

    .venv/bin/python bench/bench_million.py            # 100k and 1M
    .venv/bin/python bench/bench_million.py --quick    # 10k and 100k

smtp-sink: `apt-get download postfix && dpkg -x postfix_*.deb /tmp/postfix`, then
DIGEST_SMTP_SINK=/tmp/postfix/usr/sbin/smtp-sink (its libraries are found beside it, in
../lib/postfix). PostgreSQL: DIGEST_BENCH_PG (default 127.0.0.1:5432, database test).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, drop_schema, fingerprint, pg_schema, run_digest

SINK = Path(os.environ.get("DIGEST_SMTP_SINK", "/usr/sbin/smtp-sink"))
WORKERS = 4
RSS_FLAT = 1.2
IMPORT_CPU = 120.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_size(count: int, work: Path, port: int) -> dict[str, float]:
    from sqlalchemy import create_engine, text

    url, schema = pg_schema("bench_million")
    try:
        csv_file = work / f"subscribers-{count}.csv"
        if not csv_file.exists():
            with csv_file.open("w", encoding="utf-8") as out:
                out.write("email\n")
                for n in range(count):
                    out.write(f"reader{n:07d}@example.org\n")
        config = work / "digest.toml"
        config.write_text(
            "\n".join(
                [
                    f'database_url = "{url}"',
                    'timezone = "UTC"',
                    'base_url = "https://news.digest-bench.net/daily"',
                    'from_address = "news@digest-bench.net"',
                    'postal_address = "Digest Bench Ltd, 12 Harbour Road, Leith"',
                    'unsubscribe_secret = "bench-secret-0123456789abcdef"',
                    f'seeds_dir = "{ROOT / "seeds"}"',
                    f'outbox_dir = "{work / f"outbox-{count}"}"',
                    f'subscribers_file = "{work / "none.csv"}"',
                    'issue_date = "2019-01-01"',
                    'window = "800d"',
                    'smtp_host = "127.0.0.1"',
                    f"smtp_port = {port}",
                    'smtp_tls = "none"',
                    f"send_workers = {WORKERS}",
                ]
            )
            + "\n",
            encoding="utf-8",
        )
        figures: dict[str, float] = {}
        for step, args in (
            ("import", ("subscribers", "import", str(csv_file))),
            ("send", ("send",)),
        ):
            wall, cpu, own, workers, line = run_digest(config, *args)
            rss = max(own, workers)
            figures |= {f"{step}_wall": wall, f"{step}_cpu": cpu, f"{step}_rss": rss}
            print(
                f"{count:>9,} {step:>6}: {wall:7.1f} s wall, {cpu:7.1f} s CPU, peak RSS "
                f"{own:4.0f} MB (digest) / {workers:4.0f} MB (largest worker) | {line[:110]}"
            )
        with create_engine(url).connect() as conn:
            sent = conn.execute(text("SELECT count(*) FROM sends WHERE status = 'sent'")).scalar()
        figures["sent"] = float(sent or 0)
        rate = count / figures["send_wall"]
        print(f"{count:>9,}   sent: {sent:,} ledger rows 'sent'; {rate:,.0f} recipients/s")
        return figures
    finally:
        drop_schema(schema)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10k and 100k")
    args = parser.parse_args()
    if not SINK.exists():
        sys.exit(f"no smtp-sink at {SINK}; see this script's docstring (DIGEST_SMTP_SINK)")
    sizes = (10_000, 100_000) if args.quick else (100_000, 1_000_000)
    print(f"digest {fingerprint()}; {os.cpu_count()} cores; {WORKERS} workers; smtp-sink")
    port = free_port()
    libraries = SINK.resolve().parent.parent / "lib" / "postfix"
    env = os.environ | {"LD_LIBRARY_PATH": str(libraries)}
    user = ["-u", "nobody"] if os.getuid() == 0 else []
    sink = subprocess.Popen(
        [str(SINK), *user, "-c", "-m", "256", f"127.0.0.1:{port}", "512"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(0.5)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            results = {n: run_size(n, Path(tmp), port) for n in sizes}
    finally:
        sink.terminate()
    small, big = (results[n] for n in sizes)
    flat = big["send_rss"] <= small["send_rss"] * RSS_FLAT
    complete = all(results[n]["sent"] == n for n in sizes)
    quick_import = args.quick or big["import_cpu"] <= IMPORT_CPU
    print(
        f"send memory {big['send_rss']:.0f} MB at {sizes[1]:,} against "
        f"{small['send_rss']:.0f} MB at {sizes[0]:,} ({big['send_rss'] / small['send_rss']:.2f}×): "
        f"{'PASS' if flat else 'FAIL'}; every recipient sent: {'PASS' if complete else 'FAIL'}; "
        f"import {big['import_cpu']:.0f} s CPU: {'PASS' if quick_import else 'FAIL'}"
    )
    sys.exit(0 if flat and complete and quick_import else 1)


if __name__ == "__main__":
    main()
