"""Delivery benchmark: a dry run of one issue to 100,000 subscribers, beside a naive baseline.

Acceptance target: 100,000 subscribers in 50 tag sets, an issue of 25 articles, delivered
(dry run, to a null sender that counts bytes and discards) at ≥ 20,000 recipients/s on one
core with a peak RSS ≤ 150 MB, and flat: 1,000,000 subscribers need no more memory.

Subscribers are streamed from a SQLite store, as `digest send` does. Each timed run is a
fresh child process (``--child``) pinned to one core, so its ``ru_maxrss`` is its own. The
naive baseline, timed in the same run on fewer recipients, renders the variant and builds an
``EmailMessage`` for every recipient.

    .venv/bin/python bench/bench_send.py           # 100k and 1M, baseline 2,000; 3 runs each
    .venv/bin/python bench/bench_send.py --quick   # 10k and 50k, baseline 300; 1 run each
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import usage
from common import fingerprint, snapshot
from common import run_child as run_child_in

TARGET_RATE = 20_000.0  # recipients/s at 100,000 subscribers
TARGET_RSS_MB = 150.0
RSS_NOISE_MB = 5.0  # the large run may exceed the small one by this much (allocator noise)
CONTENTION = 1.15  # wall / CPU time above which a run is flagged as sharing its core
TAG_SETS = 50
ARTICLES = 25
ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2019, 1, 1, 12, tzinfo=UTC)
VOCABULARY = [
    "russia",
    "usa",
    "arms-control",
    "summit",
    "sanctions",
    "diplomacy",
    "energy",
    "trade",
    "cyber",
    "nato",
    "china",
    "europe",
]
Result = dict[str, Any]


# ---------------------------------------------------------------- data (deterministic)


def tag_sets(seed: int = 4) -> list[frozenset[str]]:
    """The empty set (every article) and 49 distinct sets of one to three tags."""
    rng = random.Random(seed)
    found: list[frozenset[str]] = [frozenset()]
    while len(found) < TAG_SETS:
        candidate = frozenset(rng.sample(VOCABULARY, rng.randint(1, 3)))
        if candidate not in found:
            found.append(candidate)
    return found


def make_issue() -> Any:
    """25 articles with news-sized titles and summaries, one to three tags each."""
    from digest.models import Article, Issue

    rng = random.Random(25)
    words = [
        "talks",
        "treaty",
        "minister",
        "council",
        "missile",
        "border",
        "tariff",
        "pipeline",
        "vote",
        "summit",
    ]
    articles = []
    for n in range(ARTICLES):
        title = " ".join(rng.choice(words) for _ in range(9)).capitalize()
        summary = " ".join(rng.choice(words) for _ in range(48)).capitalize() + "."
        articles.append(
            Article(
                id=f"{n:016x}",
                title=f"{title} — “{n}”",
                published=NOW - timedelta(hours=n + 1),
                date_source="text",
                tags=frozenset(rng.sample(VOCABULARY, rng.randint(1, 3))),
                paragraphs=(summary,),
                source="Wire Service",
                url=f"https://news.example.com/2018/12/31/story-{n}",
                summary=summary,
            )
        )
    return Issue("daily", date(2019, 1, 1), NOW - timedelta(days=1), NOW, tuple(articles))


def populate(db: Path, count: int) -> None:
    """A SQLite store with ``count`` subscribers spread evenly over the 50 tag sets."""
    from digest.db import connect

    connect(f"sqlite:///{db}").dispose()  # the schema, as digest creates it
    sets = [" ".join(sorted(s)) for s in tag_sets()]
    rows = (
        (f"reader{n:07d}@example{n % 97}.org", None, sets[n % TAG_SETS], "2019-01-01 00:00:00")
        for n in range(count)
    )
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "INSERT INTO subscribers (email, name, tags, created_at) VALUES (?, ?, ?, ?)", rows
        )


# ---------------------------------------------------------------- child: one timed run


class NullSender:
    """Counts what it is given and keeps nothing."""

    def __init__(self) -> None:
        self.messages = 0
        self.bytes = 0

    def send(self, sender: str, recipient: str, message: bytes) -> None:
        self.messages += 1
        self.bytes += len(message)

    def close(self) -> None:
        pass


def renderer() -> tuple[Any, str]:
    """The real digest.render.render_email when importable, else a stand-in of its shape."""
    try:
        from digest.models import Site
        from digest.render import Look, render_email
    except ImportError:
        return _fake_render, "a stand-in renderer (digest.render is not importable)"
    look = Look(
        site=Site("The Daily Digest", "https://news.example.org/daily", "daily", UTC),
        postal_address="The Daily Digest · 1 Example Street · Springfield, ST 00000",
        subject="{title} for {date:%B %d}: {count} stories",
    )
    return (lambda issue: render_email(issue, look)), "digest.render.render_email (MJML)"


def _fake_render(issue: Any) -> Any:
    import html
    from types import SimpleNamespace

    tokens = {"unsubscribe_url": "tok-unsubscribe-url-0", "email": "tok-email-0"}
    items = "".join(
        f'<tr><td><a href="{html.escape(a.url)}">{html.escape(a.title)}</a>'
        f"<p>{html.escape(a.summary)}</p></td></tr>\n"
        for a in issue.articles
    )
    text = "".join(f"{a.title}\n{a.url}\n\n{a.summary}\n\n" for a in issue.articles)
    return SimpleNamespace(
        subject=f"Digest: {len(issue.articles)} stories",
        html=f"<table>{items}</table><p>{tokens['email']} "
        f'<a href="{tokens["unsubscribe_url"]}">Unsubscribe</a></p>',
        text=f"{text}{tokens['email']}\nUnsubscribe: {tokens['unsubscribe_url']}\n",
        tokens=tokens,
    )


def child(mode: str, db: Path, count: int, cpu: int) -> None:
    if cpu not in os.sched_getaffinity(0):
        sys.exit(f"CPU {cpu} is not available to this process; pick one with --cpu")
    os.sched_setaffinity(0, {cpu})
    from digest import deliver, message, selection, subscribers
    from digest.db import connect
    from digest.models import Site

    info = message.MailInfo(
        site=Site("The Daily Digest", "https://news.example.org/daily", "daily", UTC),
        from_address="digest@example.org",
        from_name="The Daily Digest",
        unsubscribe_secret="bench-secret",
        unsubscribe_mailto="unsubscribe@example.org",
        max_articles=ARTICLES,
    )
    render, rendered_by = renderer()
    issue = make_issue()
    sender = NullSender()
    engine = connect(f"sqlite:///{db}")
    c0, t0 = time.process_time(), time.perf_counter()
    if mode == "deliver":
        report = deliver.preview(
            issue, subscribers.stream(engine),
            render=render, variant=selection.variant, info=info, sender=sender, now=NOW,
            retries=0,
        )  # fmt: skip
        recipients, variants = report.recipients, report.variants
        problems = []
        if recipients != count or report.sent + report.skipped_empty != count:
            problems.append(f"{report.sent} sent of {recipients} streamed, expected {count}")
        if sender.messages != report.sent or sender.bytes != report.bytes:
            problems.append("the sender saw other messages than the report counts")
        if problems:
            sys.exit("SANITY CHECK FAILED: " + "; ".join(problems))
    else:
        recipients = _naive(engine, issue, info, render, sender, count)
        variants = len(tag_sets())
    seconds, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    engine.dispose()
    print(
        json.dumps(
            {
                "mode": mode,
                "recipients": recipients,
                "sent": sender.messages,
                "bytes": sender.bytes,
                "variants": variants,
                "seconds": seconds,
                "cpu_s": cpu_s,
                "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                "cpu": cpu,
                "rendered_by": rendered_by,
                "digest": str(Path(deliver.__file__).resolve()),
            }
        )
    )


def _naive(engine: Any, issue: Any, info: Any, render: Any, sender: NullSender, count: int) -> int:
    """The obvious way: render the subscriber's variant and build an EmailMessage, each time."""
    from email.headerregistry import Address
    from email.message import EmailMessage
    from email.policy import SMTP
    from email.utils import format_datetime, make_msgid

    from digest import links, selection, subscribers
    from digest.render import personalize

    done = 0
    for subscriber in itertools.islice(subscribers.stream(engine), count):
        chosen = selection.variant(issue, subscriber.tags, info.max_articles)
        done += 1
        if not chosen.articles:
            continue
        email = render(chosen)
        url = links.unsubscribe_url(info.unsubscribe_secret, subscriber.email, info.site.base_url)
        html, text = personalize(email, {"unsubscribe_url": url, "email": subscriber.email})
        message = EmailMessage()
        message["From"] = Address(info.from_name, addr_spec=info.from_address)
        message["To"] = subscriber.email
        message["Subject"] = email.subject
        message["Date"] = format_datetime(NOW)
        message["Message-ID"] = make_msgid(domain="example.org")
        message["List-Id"] = f'"{info.site.title}" <{info.site.name}.example.org>'
        message["List-Unsubscribe"] = f"<{url}>, <mailto:{info.unsubscribe_mailto}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        sender.send(info.from_address, subscriber.email, message.as_bytes(policy=SMTP))
    return done


def run_child(mode: str, db: Path, count: int, src: Path, cpu: int) -> Result:
    script = str(Path(__file__).resolve())
    args = [script, "--child", mode, str(db), str(count), "--cpu", str(cpu)]
    return run_child_in(args, src, cwd=src)  # type: ignore[return-value]


# ---------------------------------------------------------------- parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k / 50k, baseline 300, 1 run")
    parser.add_argument("--repeats", type=int, default=None, help="runs of each (default 3)")
    parser.add_argument("--cpu", type=int, default=0, help="the core runs are pinned to")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "DB", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, db, count = args.child
        child(mode, Path(db), int(count), args.cpu)
        return
    small, large, naive = (10_000, 50_000, 300) if args.quick else (100_000, 1_000_000, 2_000)
    repeats = args.repeats or (1 if args.quick else 3)
    work = Path(tempfile.mkdtemp(prefix="digest-bench-send-"))
    try:
        src = work / "src"
        print(f"digest sources {snapshot(src)} (snapshot), python {sys.version.split()[0]}")
        sys.path.insert(0, str(src))
        dbs = {}
        for n in (small, large):
            t0 = time.perf_counter()
            dbs[n] = work / f"subscribers-{n}.db"
            populate(dbs[n], n)
            took = time.perf_counter() - t0
            print(f"stored {n:,} subscribers in {TAG_SETS} tag sets in {took:.1f} s")
        runs: dict[str, list[Result]] = {"small": [], "large": [], "naive": []}
        plan = [("small", "deliver", small), ("naive", "naive", naive), ("large", "deliver", large)]
        for r in range(repeats):
            for key, mode, n in plan:
                res = run_child(mode, dbs[small if key == "naive" else n], n, src, args.cpu)
                runs[key].append(res)
                flag = " (core shared)" if res["seconds"] > CONTENTION * res["cpu_s"] else ""
                print(
                    f"  run {r + 1}/{repeats} {mode:>7} N={n:>9,}: {res['seconds']:6.2f} s, "
                    f"{res['recipients'] / res['seconds']:9,.0f}/s, peak RSS "
                    f"{res['peak_rss_kib'] / 1024:5.1f} MB{flag}"
                )
        print(f"\nrenderer: {runs['small'][0]['rendered_by']}; runs pinned to CPU {args.cpu}; "
              f"medians of {repeats} run(s), peak RSS the largest\n")  # fmt: skip
        print("| Run | Recipients | Median time | Recipients/s | Peak RSS | Sent |")
        print("|---|---:|---:|---:|---:|---:|")
        figures = {}
        for key, label in (
            ("small", "deliver: template per variant, byte fill"),
            ("large", "deliver: template per variant, byte fill"),
            ("naive", "naive: render + EmailMessage per recipient"),
        ):
            rs = runs[key]
            seconds = statistics.median(x["seconds"] for x in rs)
            rate = rs[0]["recipients"] / seconds
            rss = max(x["peak_rss_kib"] for x in rs) / 1024
            figures[key] = (rate, rss)
            print(
                f"| {label} | {rs[0]['recipients']:,} | {seconds:.2f} s | {rate:,.0f} | "
                f"{rss:.0f} MB | {rs[0]['sent']:,} msgs, {rs[0]['bytes'] / 1e6:,.0f} MB |"
            )
        (rate, rss), (_, rss_large), (naive_rate, _) = (
            figures["small"],
            figures["large"],
            figures["naive"],
        )
        checks = [
            (f"throughput at {small:,}: {rate:,.0f}/s (target ≥ {TARGET_RATE:,.0f}; "
             f"{rate / naive_rate:,.0f}× the naive baseline)", rate >= TARGET_RATE),
            (f"peak RSS at {small:,}: {rss:.0f} MB (target ≤ {TARGET_RSS_MB:.0f})",
             rss <= TARGET_RSS_MB),
            (f"peak RSS at {large:,}: {rss_large:.0f} MB (target ≤ {rss:.0f} + {RSS_NOISE_MB:.0f} "
             "noise, and ≤ 150)", rss_large <= min(rss + RSS_NOISE_MB, TARGET_RSS_MB)),
        ]  # fmt: skip
        print()
        for text, ok in checks:
            print(f"{'PASS' if ok else 'FAIL'} {text}")
        if fingerprint() != fingerprint(src):
            print(
                "note: digest/ or templates/ changed during the run; figures are for the snapshot"
            )
        if not all(ok for _, ok in checks):
            sys.exit(1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    usage.report()
    main()
