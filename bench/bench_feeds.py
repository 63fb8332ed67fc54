"""Real feeds read whole: per file, the entries a feed reader finds beside those we store.

Reads the 31 real-world feeds of ../shared/data/feeds-dev/ (MIT, rbren/rss-parser's test
inputs; a copy is in tests/data/feeds-dev/, which this reads when the shared folder is
absent). For each file: the entries feedparser (or, for a JSON Feed, ``json``) finds with a
title or text; what ``ingest.read_paths`` gives and ``store.save`` keeps in a fresh SQLite
store (distinct by link, else guid); and the acceptance checks of issue 11 over what is
stored: titles with markup or entities, relative links, mojibake, and summaries that stop
mid-sentence while the body goes on (the checks of tests/test_feeds_dev.py, imported, so the
figures and the test agree). Exits 1 when one check fails.

    .venv/bin/python bench/bench_feeds.py
    .venv/bin/python bench/bench_feeds.py --folder some/feeds
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import usage  # noqa: E402

from digest import db, ingest, store  # noqa: E402
from tests.test_feeds_dev import MARKUP, MOJIBAKE, cut_mid_sentence  # noqa: E402  the test's checks

SHARED = ROOT.parent / "shared" / "data" / "feeds-dev"
COPY = ROOT / "tests" / "data" / "feeds-dev"


def expected_entries(path: Path) -> int:
    """Distinct entries (by link, else guid, else title and text) a feed reader finds with a
    title or some text."""
    data = path.read_bytes()
    if data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        try:
            items = json.loads(data).get("items") or []
        except ValueError:
            return 0
        texts = ("title", "content_html", "content_text", "summary")
        return len(
            {
                item.get("url") or item.get("id") or repr([item.get(k) for k in texts])
                for item in items
                if any(str(item.get(k) or "").strip() for k in texts)
            }
        )
    import feedparser

    return len(
        {
            e.get("link") or e.get("id") or repr([e.get("title"), e.get("summary")])
            for e in feedparser.parse(data).entries
            if e.get("title") or e.get("summary") or e.get("content")
        }
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", type=Path, default=SHARED if SHARED.is_dir() else COPY)
    args = parser.parse_args()
    files = sorted(p for p in args.folder.iterdir() if p.is_file() and p.suffix != ".md")
    options = ingest.Options(default_tz=UTC)
    totals = dict.fromkeys(("expected", "read", "stored", "markup", "relative", "moji", "cut"), 0)
    print(f"{args.folder}: {len(files)} files")
    print(f"{'file':30} {'found':>5} {'read':>5} {'kept':>5} mark rel moji cut  notes")
    with tempfile.TemporaryDirectory() as tmp:
        for n, path in enumerate(files):
            batch = ingest.read_paths([path], options)
            with db.opened(f"sqlite:///{tmp}/{n}.db") as engine:
                store.save(engine, batch.articles, now=datetime.now(UTC))
                kept = store.query(engine)
            distinct = {a.url or a.id for a in kept}
            row = {
                "expected": expected_entries(path),
                "read": len(batch.articles),
                "stored": len(distinct),
                "markup": sum(1 for a in kept if MARKUP.search(a.title)),
                "relative": sum(1 for a in kept if a.url and not re.match(r"https?://", a.url)),
                "moji": sum(1 for a in kept if MOJIBAKE.search(a.title + "\n".join(a.paragraphs))),
                "cut": sum(1 for a in kept if cut_mid_sentence(a)),
            }
            for key, value in row.items():
                totals[key] += value
            notes = "; ".join(r.reason[:60] for r in (*batch.rejected, *batch.skipped))
            print(
                f"{path.name[:30]:30} {row['expected']:5} {row['read']:5} {row['stored']:5} "
                f"{row['markup']:4} {row['relative']:3} {row['moji']:4} {row['cut']:3}  {notes}"
            )
    print(
        f"total: {totals['expected']} entries found, {totals['read']} read, "
        f"{totals['stored']} stored distinct; titles with markup {totals['markup']}, "
        f"relative links {totals['relative']}, mojibake {totals['moji']}, "
        f"cut summaries {totals['cut']}"
    )
    ok = totals["stored"] >= totals["expected"] and not any(
        totals[k] for k in ("markup", "relative", "moji", "cut")
    )
    return 0 if ok else 1


if __name__ == "__main__":
    usage.report()
    sys.exit(main())
