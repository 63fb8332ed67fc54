"""Daily-run benchmark: CPU of `digest send --dry-run` as the store's history grows.

Acceptance (issue 15): the daily dry run's CPU (user+sys of the process) is flat, at most
1.3× the small store's, from 1,000 to 100,000 stored articles, from 10 to 2,500 past
issues, and from 1,000 to 100,000 source files already ingested.

Each case is a store built once (not timed) in a SQLite file: ``articles`` stored articles
spread over the 800 days before the issue's window (plus 40 in the window itself, the
same in every case), ``issues`` past issues of 10 articles each, and ``files`` source files
on disk in 10 site folders, recorded as ingested (a scraper's archive). Then each timed
run adds that day's 5 new pages to one site folder (new names) and runs `digest send
--dry-run` of the issue (50 subscribers; window "1d", the default) as a fresh process:
it finds the new files, ingests them, selects the issue and writes its preview. The
figure is the median over ``--repeats`` runs of each case, runs of all cases interleaved.

    .venv/bin/python bench/bench_daily.py            # 1k / 100k, 3 runs each, ~5 min
    .venv/bin/python bench/bench_daily.py --quick    # 1k / 10k, 1 run each (smoke)
    .venv/bin/python bench/bench_daily.py --profile files   # cProfile one run of a case
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import usage
from common import ROOT, SITE, fingerprint, run_digest

TARGET = 1.3  # CPU of a large case / CPU of the small one
ISSUE = date(2026, 6, 1)
IN_WINDOW = 40
SITES = 10
NEW_PER_RUN = 5
SUBSCRIBERS = 50
_WORDS = "council harbour budget river vote plan school road rail grid water market report union "
WORDS = (_WORDS + "court farm port bridge tower energy field storm trade health housing").split()


def sentence(rng: random.Random, n: int) -> str:
    words = [rng.choice(WORDS) for _ in range(n)]
    return " ".join(words).capitalize() + "."


def page(rng: random.Random, number: int) -> str:
    """A small scraped page: a title, then paragraphs of prose (unique by ``number``)."""
    title = f"{sentence(rng, 6)[:-1]} {number}"
    paras = [" ".join(sentence(rng, rng.randint(9, 16)) for _ in range(3)) for _ in range(4)]
    return f"{title}\n\n" + "\n\n".join(paras) + "\n"


def build(work: Path, *, articles: int, issues: int, files: int, seed: int = 7) -> Path:
    """A store and source folders of the given history; the config's path."""
    from sqlalchemy import insert

    from digest import db, pipeline, store
    from digest.models import Article
    from digest.schema import issue_articles
    from digest.schema import issues as issues_table
    from digest.settings import Settings

    rng = random.Random(seed)
    seeds = work / "seeds"
    for site in range(SITES):
        (seeds / f"site-{site:02d}").mkdir(parents=True)
    old = datetime.combine(ISSUE - timedelta(days=900), datetime.min.time(), UTC).timestamp()
    paths = []
    for n in range(files):
        path = seeds / f"site-{n % SITES:02d}" / f"page-{n:07d}.txt"
        path.write_text(page(rng, n), encoding="utf-8")
        os.utime(path, (old, old))
        paths.append(path)
    url = f"sqlite:///{work / 'store.db'}"
    now = datetime.combine(ISSUE, datetime.min.time(), UTC)
    window_start = now - timedelta(days=1)
    body = tuple(" ".join(sentence(rng, 12) for _ in range(3)) for _ in range(4))

    def article(n: int, published: datetime) -> Article:
        return Article(
            id=f"{n:016x}",
            title=f"{sentence(rng, 7)[:-1]} {n}",
            published=published,
            date_source="text",
            tags=frozenset({rng.choice(("city", "sport", "world"))}),
            paragraphs=body,
            source=f"site-{n % SITES:02d}",
            origin=str(seeds / f"site-{n % SITES:02d}" / f"stored-{n:07d}.txt"),
            summary=body[0],
            keys=store.body_keys((f"{n}", *body)),
        )

    with db.opened(url) as engine:
        # A new store: its summarizer key is set first, as ingest does, so the articles
        # stored here count as summarized under the current settings.
        pipeline.refresh_summaries(engine, Settings(database_url=url))
        batch: list[Article] = []
        for n in range(articles + IN_WINDOW):
            if n < IN_WINDOW:  # the issue's own window: the same 40 in every case
                published = window_start + timedelta(minutes=30 * n + 7)
            else:
                published = window_start - timedelta(minutes=rng.randrange(1, 800 * 24 * 60))
            batch.append(article(n, published))
            if len(batch) == 5_000:
                store.save(engine, batch, now=now)
                batch = []
        store.save(engine, batch, now=now)
        with engine.begin() as conn:
            for k in range(issues):
                day = ISSUE - timedelta(days=k + 2)
                start = datetime.combine(day - timedelta(days=1), datetime.min.time())
                end = datetime.combine(day, datetime.min.time())
                issue_id = conn.execute(
                    insert(issues_table).values(
                        digest="daily", issue_date=day, window_start=start, window_end=end,
                        created_at=end,
                    )
                ).inserted_primary_key[0]  # fmt: skip
                first = IN_WINDOW + (k * 10) % max(articles - 10, 1)
                conn.execute(
                    insert(issue_articles),
                    [
                        {"issue_id": issue_id, "article_id": f"{first + p:016x}", "position": p}
                        for p in range(10)
                    ],
                )
        store.mark_ingested(engine, paths, now=now)
        db.analyze(engine, "articles", "article_tags", "issue_articles", "ingested_files")
    listing = work / "subscribers.csv"
    listing.write_text(
        "email\n" + "".join(f"reader{n:04d}@example.org\n" for n in range(SUBSCRIBERS)),
        encoding="utf-8",
    )
    config = work / "digest.toml"
    config.write_text(
        "\n".join(
            [
                f'database_url = "{url}"',
                *SITE,
                f'seeds_dir = "{seeds}"',
                f'outbox_dir = "{work / "outbox"}"',
                f'subscribers_file = "{listing}"',
                f'issue_date = "{ISSUE.isoformat()}"',
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    return config


def add_new_pages(work: Path, run: int) -> None:
    """The day's new pages: NEW_PER_RUN files with new names in one site folder, dated long
    before the window (so every run's issue is the same)."""
    rng = random.Random(run)
    folder = work / "seeds" / "site-00"
    when = datetime.combine(ISSUE - timedelta(days=400), datetime.min.time(), UTC).timestamp()
    for k in range(NEW_PER_RUN):
        path = folder / f"new-{run:03d}-{k}.txt"
        path.write_text(page(rng, 10_000_000 + run * 100 + k), encoding="utf-8")
        os.utime(path, (when, when))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1k / 10k, one run each")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--large", type=int, default=100_000, help="the large history")
    parser.add_argument("--issues", type=int, default=2_500, help="past issues, large case")
    parser.add_argument("--profile", choices=("articles", "issues", "files"), default=None)
    args = parser.parse_args()
    large, many, repeats = args.large, args.issues, args.repeats
    if args.quick:
        large, many, repeats = 10_000, 250, 1
    cases = {
        "small": {"articles": 1_000, "issues": 10, "files": 1_000},
        "articles": {"articles": large, "issues": 10, "files": 1_000},
        "issues": {"articles": max(1_000, many * 10 // 4), "issues": many, "files": 1_000},
        "files": {"articles": 1_000, "issues": 10, "files": large},
    }
    if not args.quick:  # the issues case is measured against a store of its own size
        cases["issues-small"] = {**cases["issues"], "issues": 10}
    print(f"digest {fingerprint()}; {os.cpu_count()} cores; SQLite; window 1d; "
          f"{repeats} runs per case, interleaved")  # fmt: skip
    root = Path(tempfile.mkdtemp(prefix="bench-daily-"))
    try:
        configs = {}
        for name, shape in cases.items():
            start = time.perf_counter()
            configs[name] = build(root / name, **shape)
            print(f"  built {name:>12}: {shape} in {time.perf_counter() - start:.0f} s")
        if args.profile:
            add_new_pages(root / args.profile, 999)
            out = root / "profile.out"
            subprocess.run(
                [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "digest", "--config",
                 str(configs[args.profile]), "send", "--dry-run"],
                check=True, cwd=ROOT, capture_output=True,
            )  # fmt: skip
            import pstats

            pstats.Stats(str(out)).sort_stats("cumulative").print_stats(35)
            return
        cpu: dict[str, list[float]] = {name: [] for name in cases}
        wall: dict[str, list[float]] = {name: [] for name in cases}
        for run in range(repeats):
            for name, config in configs.items():
                add_new_pages(root / name, run)
                took, used, _rss, _workers, line = run_digest(config, "send", "--dry-run")
                wall[name].append(took)
                cpu[name].append(used)
                if run == 0:
                    print(f"  {name:>12}: {line[:100]}")
        print(f"{'case':>12} {'articles':>9} {'issues':>7} {'files':>8} "
              f"{'wall s':>7} {'CPU s':>6} {'× small':>8}")  # fmt: skip
        ratios = {}
        for name, shape in cases.items():
            base = "issues-small" if name == "issues" and "issues-small" in cases else "small"
            ratio = statistics.median(cpu[name]) / statistics.median(cpu[base])
            ratios[name] = ratio
            print(f"{name:>12} {shape['articles']:>9,} {shape['issues']:>7,} "
                  f"{shape['files']:>8,} {statistics.median(wall[name]):>7.2f} "
                  f"{statistics.median(cpu[name]):>6.2f} {ratio:>7.2f}×")  # fmt: skip
        worst = max(ratios.values())
        ok = worst <= TARGET
        print(f"worst ratio {worst:.2f}×: {'PASS' if ok else 'FAIL'} (target ≤ {TARGET}×)")
        sys.exit(0 if ok or args.quick else 1)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    usage.report()
    main()
