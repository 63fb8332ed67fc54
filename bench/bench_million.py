"""A million subscribers: imported, then sent through 4 workers, with flat memory.

On PostgreSQL (each size in a schema of its own), `digest subscribers import` of N rows,
then `digest send --dry-run`, then a real `digest send --workers 4` of the seeds' issue to
Postfix's smtp-sink (a fast C sink; unpack it from Debian's postfix package: see below), at
N = 100,000 and 1,000,000.
Each command is its own process: its CPU is user+sys of it and its workers; its memory the
largest peak RSS of any one of them.

Targets (issues 14, 15): the send's and the dry run's memory flat (1M ≤ 1.2× the peak of
100k), every recipient
sent once (the ledger holds N 'sent' rows); the import ≤ 120 s CPU at 1M.

    .venv/bin/python bench/bench_million.py            # 100k and 1M
    .venv/bin/python bench/bench_million.py --quick    # 10k and 100k

smtp-sink: `apt-get download postfix && dpkg -x postfix_*.deb /tmp/postfix`, then
DIGEST_SMTP_SINK=/tmp/postfix/usr/sbin/smtp-sink (common.start_sink). PostgreSQL:
DIGEST_BENCH_PG (default 127.0.0.1:5432, database test).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import usage
from common import (
    drop_schema,
    fingerprint,
    free_port,
    pg_schema,
    run_digest,
    send_config,
    start_sink,
    subscribers_csv,
)

WORKERS = 4
RSS_FLAT = 1.2
IMPORT_CPU = 120.0


def run_size(count: int, work: Path, port: int) -> dict[str, float]:
    from sqlalchemy import create_engine, text

    url, schema = pg_schema("bench_million")
    try:
        csv_file = subscribers_csv(work / f"subscribers-{count}.csv", count)
        (work / str(count)).mkdir()
        config = send_config(work / "digest.toml", url, work / str(count), port, workers=WORKERS)
        figures: dict[str, float] = {}
        for step, args in (
            ("import", ("subscribers", "import", str(csv_file))),
            ("dry", ("send", "--dry-run")),
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
    sizes = (10_000, 100_000) if args.quick else (100_000, 1_000_000)
    print(f"digest {fingerprint()}; {os.cpu_count()} cores; {WORKERS} workers; smtp-sink")
    port = free_port()
    sink = start_sink(port)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            results = {n: run_size(n, Path(tmp), port) for n in sizes}
    finally:
        sink.terminate()
    small, big = (results[n] for n in sizes)
    flat = big["send_rss"] <= small["send_rss"] * RSS_FLAT
    dry_flat = big["dry_rss"] <= small["dry_rss"] * RSS_FLAT
    complete = all(results[n]["sent"] == n for n in sizes)
    quick_import = args.quick or big["import_cpu"] <= IMPORT_CPU
    print(
        f"send memory {big['send_rss']:.0f} MB at {sizes[1]:,} against "
        f"{small['send_rss']:.0f} MB at {sizes[0]:,} ({big['send_rss'] / small['send_rss']:.2f}×): "
        f"{'PASS' if flat else 'FAIL'}; dry run {big['dry_rss'] / small['dry_rss']:.2f}×: "
        f"{'PASS' if dry_flat else 'FAIL'}; "
        f"every recipient sent: {'PASS' if complete else 'FAIL'}; "
        f"import {big['import_cpu']:.0f} s CPU: {'PASS' if quick_import else 'FAIL'}"
    )
    sys.exit(0 if flat and dry_flat and complete and quick_import else 1)


if __name__ == "__main__":
    usage.report()
    main()
