"""Folding precision: how many distinct pages the store wrongly folds into another.

Every page of a page set is meant to be a different story, so each fold counted here is
suspect: `--show` lists them to check (a few are the same wire story on two sites).
The pages are read from ../shared/data (never copied: Dragnet's are AGPLv3), decompressed
into a temporary folder, read with ``ingest.read_paths`` and saved into a fresh SQLite store.

    .venv/bin/python bench/bench_folds.py            # pages-dragnet and pages-readability
    .venv/bin/python bench/bench_folds.py --show 5   # also: the first 5 folds of each set
"""

from __future__ import annotations

import argparse
import gzip
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import usage

from digest import db, ingest, store

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SETS = ("pages-dragnet", "pages-readability")
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def measure(name: str, show: int) -> None:
    source = DATA / name / "html"
    pages = sorted(source.glob("*.html.gz"))
    if not pages:
        print(f"{name}: no pages under {source}; skipped")
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "pages"
        folder.mkdir()
        for page in pages:
            (folder / page.name.removesuffix(".gz")).write_bytes(gzip.decompress(page.read_bytes()))
        batch = ingest.read_paths([folder], ingest.Options(default_tz=UTC))
        with db.opened(f"sqlite:///{tmp}/digest.db") as engine:
            started = time.perf_counter()
            report = store.save(engine, batch.articles, now=NOW)
            took = time.perf_counter() - started
            stored = {a.origin for a in store.query(engine)}
    folded = [a for a in batch.articles if a.origin not in stored]
    print(
        f"{name}: {len(pages)} pages, {len(batch.articles)} articles, "
        f"{len(batch.rejected)} rejected, {report.inserted} stored, "
        f"{len(batch.articles) - report.inserted} folded into another page, save {took:.2f} s"
    )
    for article in folded[:show]:
        print(f"  folded: {Path(article.origin).name}  {article.title[:70]!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show", type=int, default=0, help="list the first N folds of each set")
    args = parser.parse_args()
    print(f"reading the page sets from {DATA} (not copied)")
    for name in SETS:
        measure(name, args.show)


if __name__ == "__main__":
    usage.report()
    main()
