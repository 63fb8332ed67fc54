"""Real sends to smtp-sink beside a naive smtplib loop, one connection each (issue 15, item 4).

For each store (a SQLite file, and a PostgreSQL schema of its own), N subscribers are
imported and the seeds' issue is sent for real: `digest send` with one worker, hence one SMTP
connection, to Postfix's smtp-sink (a fast C sink that offers PIPELINING). Beside it, in the
same run and interleaved with it, the naive loop: one smtplib.SMTP connection and
``sendmail()`` N times, each to its own recipient, of the message digest rendered for the
issue (the dry run's variant file: the same size as each of digest's messages).

The target is on the rate a connection carries, as the issue asks ("per connection"): each
side is run at N and at a small n (``--small``), and its rate is (N - n) recipients over the
difference of the two wall times, what the N - n more messages cost once the connection is
going. Of `digest send`, the small run is the same store with N - n of its recipients sent
already (their ledger rows written before it starts), so both runs pay the same start-up,
ingest, enrolment and claims, and only the messages differ; the loop's wall time is its
connection's life. The whole-process rate of `digest send` (N over its process's wall
time, start-up included) is printed beside it, and the CPU seconds (user+sys of the `digest
send` process; of the loop's process) with the ratio naive/digest: wall rates share the
machine with the sink and with anyone else, and the CPU says what each message costs the
sender. Target: the connection's rate ratio digest/naive ≥ 0.9, medians of 3
(``--repeats``), else exit 1. Every send is checked: the ledger holds N 'sent' rows.

Between repeats the ledger is emptied (the issue stays claimed), so each `digest send` sends
to all N again; the dry run before the first repeat ingests the seeds, so the timed sends
do not.

    .venv/bin/python bench/bench_sink.py               # 20,000 (and 1,000) ×3 per store, ~3 min
    .venv/bin/python bench/bench_sink.py --quick       # 2,000 (and 200) ×1 (smoke)
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
from typing import Any

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


def added_rate(messages: int, wall: float, small_wall: float) -> float:
    """msg/s of the ``messages`` a send of N carries past a send of n: over the wall time
    they add."""
    return messages / (wall - small_wall)


def sent_already(engine: Any, keep: int) -> None:
    """The ledger as a send that stopped would leave it: every subscriber but the last
    ``keep`` (by email) sent the issue, so the next `digest send` sends ``keep`` only."""
    from sqlalchemy import text

    with engine.begin() as conn:
        conn.execute(text("DELETE FROM sends"))
        issue = conn.execute(text("SELECT id FROM issues")).scalar_one_or_none()
        if issue is None:  # the first send, which claims the issue: to everyone
            return
        total = conn.execute(text("SELECT count(*) FROM subscribers")).scalar_one()
        conn.execute(
            text(
                "INSERT INTO sends (issue_id, email, status, attempts, updated_at, tags) "
                "SELECT :issue, email, 'sent', 1, CURRENT_TIMESTAMP, tags FROM subscribers "
                "ORDER BY email LIMIT :n"
            ),
            {"issue": issue, "n": total - keep},
        )


def run_store(
    store: str, count: int, small: int, repeats: int, work: Path, port: int,
    profile: Path | None,
) -> dict[str, float]:  # fmt: skip
    """The repeats on one store, at ``count`` and ``small``, interleaved with the naive loop:
    the medians."""
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
        runs: dict[str, list[tuple[float, float]]] = {
            "digest": [], "naive": [], "digest_small": [], "naive_small": [],
        }  # fmt: skip

        def digest_send(size: int, into: str) -> None:
            sent_already(engine, size)
            runs[into].append(run_digest(config, "send")[:2])
            with engine.connect() as conn:
                sent = conn.execute(text("SELECT count(*) FROM sends WHERE status = 'sent'"))
                if sent.scalar_one() != count:
                    sys.exit(f"{store}: the ledger does not hold {count:,} 'sent' rows")

        for n in range(repeats):
            # N before n: the first `digest send` claims the issue the small one's rows name
            for pair in (
                [
                    lambda: runs["naive"].append(naive(port, message, count)),
                    lambda: digest_send(count, "digest"),
                ],
                [
                    lambda: runs["naive_small"].append(naive(port, message, small)),
                    lambda: digest_send(small, "digest_small"),
                ],
            ):
                for step in pair if n % 2 else reversed(pair):
                    step()
            (dw, dc), (nw, nc) = runs["digest"][-1], runs["naive"][-1]
            dws, nws = runs["digest_small"][-1][0], runs["naive_small"][-1][0]
            print(
                f"  {store:<10} run {n + 1}: digest {added_rate(count - small, dw, dws):6,.0f} "
                f"msg/s ({count / dw:,.0f} whole process), {dc:5.2f} s CPU | naive "
                f"{added_rate(count - small, nw, nws):6,.0f} msg/s, {nc:5.2f} s CPU",
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
    rates = {
        side: [
            added_rate(count - small, big[0], little[0])
            for big, little in zip(runs[side], runs[f"{side}_small"], strict=True)
        ]
        for side in ("digest", "naive")
    }
    return {
        "digest_rate": statistics.median(rates["digest"]),
        "naive_rate": statistics.median(rates["naive"]),
        "ratio": statistics.median(
            d / n for d, n in zip(rates["digest"], rates["naive"], strict=True)
        ),
        "digest_wall": statistics.median(w for w, _ in runs["digest"]),
        "digest_cpu": statistics.median(c for _, c in runs["digest"]),
        "naive_wall": statistics.median(w for w, _ in runs["naive"]),
        "naive_cpu": statistics.median(c for _, c in runs["naive"]),
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
    parser.add_argument(
        "--small", type=int, default=1_000, help="the small send (default 1,000): see above"
    )
    parser.add_argument("--stores", nargs="+", choices=("sqlite", "postgresql"),
                        default=["sqlite", "postgresql"])  # fmt: skip
    parser.add_argument("--profile", type=Path, help="also one send under cProfile, to this file")
    args = parser.parse_args()
    count, repeats = (2_000, 1) if args.quick else (args.count, args.repeats)
    small = 200 if args.quick else args.small
    if not 0 < small < count:
        sys.exit(f"--small {small} must be above 0 and under --count {count}")
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
                    store, count, small, repeats, Path(tmp) / store, port, args.profile
                )
    finally:
        sink.terminate()
    print(
        f"{'store':<11}{'digest msg/s':>13}{'whole':>8}{'CPU s':>7}{'naive msg/s':>13}"
        f"{'CPU s':>7}{'rate ratio':>12}{'whole':>8}{'CPU ratio':>11}"
    )
    passed = True
    for store, r in results.items():
        passed &= r["ratio"] >= TARGET
        print(
            f"{store:<11}{r['digest_rate']:>13,.0f}{count / r['digest_wall']:>8,.0f}"
            f"{r['digest_cpu']:>7.2f}{r['naive_rate']:>13,.0f}{r['naive_cpu']:>7.2f}"
            f"{r['ratio']:>11.2f}×{r['naive_wall'] / r['digest_wall']:>7.2f}×"
            f"{r['naive_cpu'] / r['digest_cpu']:>10.2f}×"
        )
    size = next(iter(results.values()))["bytes"]
    print(
        f"messages of {size:,.0f} bytes; msg/s = the {count - small:,} messages past the "
        f"first {small:,} over the wall time they add (whole = {count:,} over the whole "
        f"`digest send` process); rate ratio = digest's over the loop's (target ≥ {TARGET}): "
        f"{'PASS' if passed else 'FAIL'}; whole = the same of the whole process; CPU ratio = "
        "naive CPU over digest's"
    )
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    if sys.argv[1:2] != ["--naive"]:  # the loop's child prints its JSON alone
        usage.report()
    main()
