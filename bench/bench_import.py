"""Subscriber import benchmark: `digest subscribers import` of 100,000 and 1,000,000 rows,
on SQLite and on PostgreSQL, each a fresh store, then the same file again (every row an
update). Each import is its own `digest` process: CPU is its user+sys time, memory its peak
RSS.

Targets (issues 14 and 15): 1,000,000 subscribers imported in ≤ 120 s CPU on either store,
with flat time per row (1M costs ≤ 12× what 100k costs) and flat memory (≤ 1.2×).

    .venv/bin/python bench/bench_import.py            # 100k and 1M, both stores
    .venv/bin/python bench/bench_import.py --quick    # 10k and 100k

PostgreSQL: 127.0.0.1:5432, trust auth, database test (DIGEST_BENCH_PG to change); each run
in a schema of its own, dropped after. Skipped, with a reason, where none is reachable.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import usage
from common import PG, drop_schema, fingerprint, pg_schema, run_digest

TARGET_CPU = 120.0
TAGS = ("", "russia", "summit usa", "sanctions", "arms-control")


def write_csv(path: Path, count: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write("email,name,tags\n")
        for n in range(count):
            out.write(f"reader{n:07d}@example.org,Reader {n},{TAGS[n % len(TAGS)]}\n")


def store_url(kind: str, work: Path, count: int) -> tuple[str, str | None]:
    if kind == "sqlite":
        return f"sqlite:///{work / f'store-{count}.db'}", None
    from sqlalchemy.exc import SQLAlchemyError

    try:
        url, schema = pg_schema("bench_import")
    except SQLAlchemyError as exc:
        return "", f"no PostgreSQL at {PG}: {str(exc).splitlines()[0]}"
    return url, schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10k and 100k rows")
    args = parser.parse_args()
    sizes = (10_000, 100_000) if args.quick else (100_000, 1_000_000)
    print(f"digest {fingerprint()}; {os.cpu_count()} cores")
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for kind in ("sqlite", "postgresql"):
            figures: dict[int, tuple[float, float]] = {}
            for count in sizes:
                csv_file = work / f"subscribers-{count}.csv"
                if not csv_file.exists():
                    write_csv(csv_file, count)
                url, schema = store_url(kind, work, count)
                if not url:
                    print(f"{kind}: skipped ({schema})")
                    break
                config = work / "digest.toml"
                config.write_text(f'database_url = "{url}"\n', encoding="utf-8")
                try:
                    for label in ("new", "again"):
                        wall, cpu, rss, _, line = run_digest(
                            config, "subscribers", "import", str(csv_file)
                        )
                        print(
                            f"{kind:>10} {count:>9,} {label:>5}: {wall:6.1f} s wall, "
                            f"{cpu:6.1f} s CPU, {cpu / count * 1e6:5.1f} µs CPU a row, "
                            f"peak RSS {rss:4.0f} MB | {line}"
                        )
                        if label == "new":
                            figures[count] = (cpu, rss)
                finally:
                    if schema is not None:
                        drop_schema(schema)
            if len(figures) == 2:
                (small_cpu, small_rss), (big_cpu, big_rss) = (figures[n] for n in sizes)
                growth = big_cpu / small_cpu
                size_ratio = sizes[1] / sizes[0]
                flat = growth <= size_ratio * 1.2 and big_rss <= small_rss * 1.2
                fits = args.quick or big_cpu <= TARGET_CPU
                ok = ok and flat and fits
                print(
                    f"{kind}: {size_ratio:.0f}× the rows cost {growth:.1f}× the CPU and "
                    f"{big_rss / small_rss:.2f}× the memory; "
                    f"{'PASS' if flat and fits else 'FAIL'}"
                    + ("" if args.quick else f" (target ≤ {TARGET_CPU:.0f} s CPU at 1M)")
                )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    usage.report()
    main()
