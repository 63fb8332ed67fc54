"""Real sends to smtp-sink beside a naive smtplib loop, one connection each (issue 15, item 4).

For each store (a SQLite file, and a PostgreSQL schema of its own), N subscribers are
imported and the seeds' issue is sent for real: `digest send` with one worker, hence one SMTP
connection, to Postfix's smtp-sink (a fast C sink that offers PIPELINING). Beside it, in the
same run and interleaved with it, the naive loop: one smtplib.SMTP connection and
``sendmail()`` N times, each to its own recipient, of the message digest rendered for the
issue (the dry run's variant file: the same size as each of digest's messages).

Figures, medians of 3 (``--repeats``): msg/s (N over the wall time of the whole `digest send`
process, start-up, ingest, enrolment and ledger included; of the loop, its connection's
life), CPU seconds (user+sys of the `digest send` process; of the loop's process), and the
ratios digest/naive of both. The target is on the rate a connection carries, as the issue's
table measured it (msg/s to the sink): ratio ≥ 0.9, else exit 1. The CPU ratio (naive CPU a
message over digest's) is printed beside it: wall rates share the machine with the sink and
with anyone else, and the CPU says what each message costs the sender. Every send is
checked: the ledger holds N 'sent' rows.

Between repeats the ledger is emptied (the issue stays claimed), so each `digest send` sends
to all N again; the dry run before the first repeat ingests the seeds, so the timed sends
do not.

    .venv/bin/python bench/bench_sink.py               # 20,000 recipients ×3 per store, ~2 min
    .venv/bin/python bench/bench_sink.py --quick       # 2,000 ×1 (smoke)
    .venv/bin/python bench/bench_sink.py --stores sqlite --count 50000
    .venv/bin/python bench/bench_sink.py --profile /tmp/send.prof   # + one send under cProfile

smtp-sink: see bench/common.py (DIGEST_SMTP_SINK). PostgreSQL: DIGEST_BENCH_PG (default
127.0.0.1:5432, database test).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import usage
from common import (
    ROOT,
    drop_schema,
    fingerprint,
    free_port,
    pg_schema,
    run_digest,
    send_config,
    start_sink,
    subscribers_csv,
)

TARGET = 0.9
SENDER = "news@digest-bench.net"


def naive_main(port: int, message: Path, count: int) -> None:
    """The loop itself (a child process): one connection, ``count`` sendmail() calls."""
    import smtplib

    body = message.read_bytes()
    start = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as conn:
        for n in range(count):
            conn.sendmail(SENDER, [f"reader{n:07d}@example.org"], body)
    print(json.dumps({"wall": time.perf_counter() - start}))


def naive(port: int, message: Path, count: int) -> tuple[float, float]:
    """(wall s, CPU s) of one naive loop."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [sys.executable, __file__, "--naive", str(port), str(message), str(count)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"the naive loop failed: {done.stderr.strip()[-2000:]}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return float(json.loads(done.stdout)["wall"]), cpu


def profiled(config: Path, out: Path) -> None:
    """One `digest send` under cProfile, written to ``out``; its top functions printed."""
    import pstats

    done = subprocess.run(
        [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "digest", "--config",
         str(config), "send"],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )  # fmt: skip
    if done.returncode != 0:
        sys.exit(f"digest send (profiled) failed: {done.stderr.strip()[-2000:]}")
    pstats.Stats(str(out)).sort_stats("tottime").print_stats(25)


def run_store(
    store: str, count: int, repeats: int, work: Path, port: int, profile: Path | None
) -> dict[str, float]:
    """The repeats on one store, interleaved with the naive loop: the medians."""
    from sqlalchemy import create_engine, text

    schema = None
    if store == "sqlite":
        url = f"sqlite:///{work / 'store.db'}"
    else:
        url, schema = pg_schema("bench_sink")
    engine = create_engine(url)
    try:
        config = send_config(work / "digest.toml", url, work, port)
        csv_file = subscribers_csv(work.parent / f"subscribers-{count}.csv", count)
        run_digest(config, "subscribers", "import", str(csv_file))
        run_digest(config, "send", "--dry-run")
        message = next((work / "outbox" / "preview").rglob("*.eml"))
        digest_runs: list[tuple[float, float]] = []
        naive_runs: list[tuple[float, float]] = []
        for n in range(repeats):
            with engine.begin() as conn:
                conn.execute(text("DELETE FROM sends"))
            pair = [
                lambda: naive_runs.append(naive(port, message, count)),
                lambda: digest_runs.append(run_digest(config, "send")[:2]),
            ]
            for step in pair if n % 2 else reversed(pair):
                step()
            with engine.connect() as conn:
                sent = conn.execute(text("SELECT count(*) FROM sends WHERE status = 'sent'"))
                if sent.scalar_one() != count:
                    sys.exit(f"{store}: the ledger does not hold {count:,} 'sent' rows")
            (dw, dc), (nw, nc) = digest_runs[-1], naive_runs[-1]
            print(
                f"  {store:<10} run {n + 1}: digest {count / dw:6,.0f} msg/s, {dc:5.2f} s CPU"
                f" | naive {count / nw:6,.0f} msg/s, {nc:5.2f} s CPU",
                flush=True,
            )
        if profile is not None:
            with engine.begin() as conn:
                conn.execute(text("DELETE FROM sends"))
            profiled(config, profile.with_suffix(f".{store}{profile.suffix}"))
    finally:
        engine.dispose()
        if schema is not None:
            drop_schema(schema)
    return {
        "digest_wall": statistics.median(w for w, _ in digest_runs),
        "digest_cpu": statistics.median(c for _, c in digest_runs),
        "naive_wall": statistics.median(w for w, _ in naive_runs),
        "naive_cpu": statistics.median(c for _, c in naive_runs),
        "bytes": float(message.stat().st_size),
    }


def main() -> None:
    if sys.argv[1:2] == ["--naive"]:
        naive_main(int(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 recipients, 1 repeat")
    parser.add_argument("--count", type=int, default=20_000, help="recipients (default 20,000)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stores", nargs="+", choices=("sqlite", "postgresql"),
                        default=["sqlite", "postgresql"])  # fmt: skip
    parser.add_argument("--profile", type=Path, help="also one send under cProfile, to this file")
    args = parser.parse_args()
    count, repeats = (2_000, 1) if args.quick else (args.count, args.repeats)
    print(
        f"digest {fingerprint()}; {os.cpu_count()} cores; {count:,} recipients, one "
        f"connection, medians of {repeats}; smtp-sink"
    )
    port = free_port()
    sink = start_sink(port)
    results = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for store in args.stores:
                (Path(tmp) / store).mkdir()
                results[store] = run_store(
                    store, count, repeats, Path(tmp) / store, port, args.profile
                )
    finally:
        sink.terminate()
    print(
        f"{'store':<11}{'digest msg/s':>13}{'CPU s':>7}{'naive msg/s':>13}{'CPU s':>7}"
        f"{'rate ratio':>12}{'CPU ratio':>11}"
    )
    passed = True
    for store, r in results.items():
        rate = r["naive_wall"] / r["digest_wall"]
        cpu = r["naive_cpu"] / r["digest_cpu"]
        passed &= rate >= TARGET
        print(
            f"{store:<11}{count / r['digest_wall']:>13,.0f}{r['digest_cpu']:>7.2f}"
            f"{count / r['naive_wall']:>13,.0f}{r['naive_cpu']:>7.2f}{rate:>11.2f}×"
            f"{cpu:>10.2f}×"
        )
    size = next(iter(results.values()))["bytes"]
    print(
        f"messages of {size:,.0f} bytes; rate ratio = digest msg/s over naive msg/s (target "
        f"≥ {TARGET}): {'PASS' if passed else 'FAIL'}; CPU ratio = naive CPU over digest's"
    )
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    if sys.argv[1:2] != ["--naive"]:  # the loop's child prints its JSON alone
        usage.report()
    main()
