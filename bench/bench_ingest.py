"""Ingestion benchmark: generated scraped pages → ``pipeline.ingest_sources`` (what `digest
ingest` runs: read, clean, store, evidence, files marked) → a fresh SQLite store.

Acceptance targets (issue 15): 10,000 → 40,000 pages linear, CPU at 40k ≤ 4.2× that at 10k;
peak RSS at 40k ≤ 1.2× that at 10k; and peak RSS at 10k ≤ 200 MB.

Every timed run is a fresh child process (``--child``) pinned to one core; it times
``pipeline.ingest_sources`` as `digest ingest` calls it (CPU: user+sys of the child over the
call; wall beside it), checks that every generated article was stored, and prints JSON with
its peak RSS (``ru_maxrss``, start-up and imports included). Generation is deterministic
(seeded) and not timed.

    .venv/bin/python bench/bench_ingest.py            # 10k / 40k, 3 runs each, interleaved
    .venv/bin/python bench/bench_ingest.py --quick    # 1k / 4k, 1 run each (smoke test)
    .venv/bin/python bench/bench_ingest.py --profile  # also: cProfile one child at the small N
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import random
import resource
import shutil
import statistics
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common import fingerprint, snapshot
from common import run_child as run_child_in

TARGET_RSS_MB = 200.0  # peak RSS, at the small N
LINEAR_SLACK = 1.05  # CPU(large) / CPU(small) ≤ this × large / small: 4.2 for 4× the pages
TARGET_RSS_RATIO = 1.2  # peak RSS(large) / peak RSS(small): flat
READ_SHARE = 0.999  # of the generated articles, at least this share is read (and all stored)
LISTED = 51  # articles `digest ingest` keeps for its table without --verbose (cli._TABLE_UP_TO + 1)
CONTENTION = 1.15  # wall / CPU time above which a run is flagged as sharing its core
Result = dict[str, Any]  # the JSON a child prints
TAG_RULES = {"arms-control": ["arms race", "nuclear"], "harbor": ["harbor", "harbour"]}

# ---------------------------------------------------------------- text generator


def _split(text: str) -> list[str]:
    return text.split()


_ONSETS = _split("b bl br c ch cl cr d dr f fl fr g gl gr h j k l m n p pl pr qu r s sh sk sl sp")
_ONSETS += _split("st t th tr v w z")
_VOWELS = _split("a e i o u ai ea ee io oa ou")
_CODAS = ["", "", "", "n", "r", "l", "s", "m", "nd", "st", "rt", "ck", "ng", "th"]
_SUFFIXES = {
    "noun": _split("ment tion ity ance er ism ure ship age ory ar"),
    "verb": _split("ates ifies izes ens ers ades ounds ects"),
    "past": _split("ated ified ized ened ered aded ounded ected"),
    "adj": _split("al ous ic ive ible ary ent ish"),
    "adv": _split("ally ously ively ently ibly"),
}
_FIRST = _split(
    "Ada Bram Celia Dario Elin Farah Gideon Hana Ivo Jasmin Kofi Lena Mateo Nadia Oren Priya "
    "Quentin Rosa Soren Talia Umar Vera Wendell Ximena Yusuf Zora Anselm Beatrix Cyrus Delphine"
)
_LAST = _split(
    "Abernathy Blackwood Castellano Dunmore Eriksen Fairweather Galloway Halvorsen Ibarra "
    "Jablonski Kettering Lindqvist Marchetti Nakamura Okonkwo Pereira Quillfeather Rasmussen "
    "Sandoval Thorne Underhill Valdez Whitcombe Yardley Zielinski Achterberg Brennan Delacroix"
)
_PLACES = _split("BRENMOOR ORLATH KESTREL VANTMERE DUNHOLT ASHGROVE MARLOWE QUAYSIDE")
_COUNTRIES = ["Norvania", "Estrel", "the Caldera Isles", "Westmark", "Ostria"]
_ROLES = ["spokesperson", "director", "senior analyst", "deputy minister", "chair", "professor"]


class Words:
    """A few thousand made-up but plausible words, in parts of speech, and sentences of them."""

    def __init__(self, rng: random.Random, size: int = 3_000) -> None:
        self.rng = rng
        stems: set[str] = set()
        while len(stems) < size:
            stem = "".join(
                rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(rng.choice((1, 1, 2)))
            )
            stems.add(stem + rng.choice(_CODAS))
        ordered = sorted(stems)
        rng.shuffle(ordered)
        share = size // 5
        self.pos: dict[str, list[str]] = {}
        for n, part in enumerate(("noun", "verb", "adj", "adv", "name")):
            chunk = ordered[n * share : (n + 1) * share]
            if part == "name":
                self.pos[part] = [w.capitalize() for w in chunk]
                continue
            ends = [rng.randrange(len(_SUFFIXES[part])) for _ in chunk]
            self.pos[part] = [w + _SUFFIXES[part][i] for w, i in zip(chunk, ends, strict=True)]
            if part == "verb":
                self.pos["past"] = [
                    w + _SUFFIXES["past"][i] for w, i in zip(chunk, ends, strict=True)
                ]

    def w(self, part: str) -> str:
        # Skewed: the head of each list is used far more often than its tail.
        words = self.pos[part]
        return words[int(len(words) * self.rng.random() ** 2)]

    def person(self) -> str:
        return f"{self.rng.choice(_FIRST)} {self.rng.choice(_LAST)}"

    def org(self) -> str:
        kind = self.rng.choice(["Institute", "Council", "Agency", "Group"])
        return f"the {self.w('name')} {kind}"

    def clause(self) -> str:
        r = self.rng
        w = self.w
        templates: list[Callable[[], str]] = [
            lambda: f"the {w('adj')} {w('noun')} {w('verb')} the {w('noun')} of {w('name')}",
            lambda: f"officials in {w('name')} {w('past')} a {w('adj')} {w('noun')} {w('adv')}",
            lambda: f"{r.randint(2, 900)} {w('noun')}s were {w('past')} near the {w('noun')}",
            lambda: f"a {w('noun')} from {self.org()} {w('verb')} every {w('adj')} {w('noun')}",
            lambda: (
                f"the {w('noun')} {w('adv')} {w('verb')} a {w('adj')} {w('noun')} in {w('name')}"
            ),
            lambda: (
                f"{w('name')} {w('past')} the {w('noun')} after the {w('adj')} {w('noun')} "
                f"{w('past')}"
            ),
            lambda: f"its {w('noun')} has {w('past')} since {r.randint(1998, 2019)}",
            lambda: (
                f"the {w('adj')} {w('noun')} and the {w('noun')} {w('verb')} "
                f"{r.randint(3, 97)} percent of the {w('noun')}"
            ),
        ]
        return r.choice(templates)()

    def sentence(self) -> str:
        r = self.rng
        kind = r.random()
        if kind < 0.12:
            said = f"said {self.person()}, {r.choice(_ROLES)} at {self.org()}"
            first = self.clause()
            return f"“{first[0].upper()}{first[1:]}, and {self.clause()},” {said}."
        parts = [self.clause()]
        for _ in range(r.choice((0, 1, 1, 2))):
            parts.append(r.choice(("and", "but", "because", "while", "although")))
            parts.append(self.clause())
        text = " ".join(parts)
        end = "?" if kind > 0.97 else "."
        return text[0].upper() + text[1:] + end

    def paragraph(self) -> str:
        return " ".join(self.sentence() for _ in range(self.rng.randint(1, 4)))

    def title(self) -> str:
        w = self.w
        r = self.rng
        templates: list[Callable[[], str]] = [
            lambda: f"{w('name')} {w('verb')} {w('adj')} {w('noun')} as {w('noun')} {w('verb')}",
            lambda: f"Why the {w('noun')} of {w('name')} {w('verb')} the {w('adj')} {w('noun')}",
            lambda: (
                f"{w('adj')} {w('noun')} in {w('name')} {w('verb')} {r.randint(2, 90)} {w('noun')}s"
            ),
            lambda: f"{self.person()} {w('verb')} {w('noun')} over {w('adj')} {w('noun')}",
            lambda: f"After the {w('noun')}, {w('name')} {w('verb')} a {w('adj')} {w('noun')}",
        ]
        return " ".join(x[0].upper() + x[1:] for x in r.choice(templates)().split())

    def tags(self) -> list[str]:
        pool = [
            "Politics",
            "World",
            "Economy",
            "Harbor Affairs",
            "Science",
            "Opinion",
            "Transit",
            "Arms Control",
            "Culture",
            "Local",
        ]
        return self.rng.sample(pool, self.rng.randint(1, 3))


# ---------------------------------------------------------------- dates


def _when(rng: random.Random) -> datetime:
    start = datetime(2016, 1, 1, tzinfo=UTC)
    return start + timedelta(minutes=rng.randint(0, 4 * 365 * 24 * 60))


def _date_line(rng: random.Random, when: datetime) -> str:
    style = rng.randrange(6)
    ampm = f"{(when.hour % 12) or 12}:{when.minute:02d} {'a.m.' if when.hour < 12 else 'p.m.'}"
    if style == 0:
        return f"{when.day} {when:%b %Y}, {when:%H:%M} GMT+{rng.randint(0, 11)}"
    if style == 1:
        return f"Published: {when:%B} {when.day}, {when.year} at {ampm} EST"
    if style == 2:
        return f"{when:%Y-%m-%dT%H:%M:%S}+0{rng.randint(0, 9)}:00"
    if style == 3:
        return f"{when:%A}, {when:%B} {when.day}, {when.year} - {when:%H:%M} CET"
    if style == 4:
        return f"Posted {when:%m/%d/%Y} {ampm}"
    return f"Updated {when:%d %B %Y}, {when:%H:%M} UTC"


# ---------------------------------------------------------------- sites


@dataclass
class Site:
    name: str
    head: list[str]  # nav lines at the top of every page
    disclaimer: str | None  # a prose line repeated on every page
    share: list[str]
    prompt: str
    related_head: str
    related: list[str]  # evergreen headlines for the "related" widget
    foot: list[str]
    layout: str  # news | blog | archive | column | wire


def _sites(words: Words) -> list[Site]:
    def evergreen() -> list[str]:
        return [words.title() for _ in range(24)]

    return [
        Site(
            "Harbor Ledger",
            [
                "Harbor Ledger",
                "Home",
                "World",
                "Politics",
                "Business",
                "Opinion",
                "Subscribe",
                "Search",
            ],
            None,
            ["Share this article", "Facebook", "Twitter", "Email", "Print"],
            "Sign up for the Morning Ledger newsletter and get the day’s headlines in your inbox",
            "Related stories",
            evergreen(),
            ["© 2019 Harbor Ledger Media. All rights reserved.", "Privacy Policy", "Contact us"],
            "news",
        ),
        Site(
            "Lamplighter Notes",
            [
                "Lamplighter Notes",
                "Streets, schools and sky on the east side of the river",
                "Home",
                "About",
                "Contact",
            ],
            None,
            ["Share this:", "Tweet", "Email"],
            "Never miss a post: subscribe by email",
            "You may also like",
            evergreen(),
            ["© Lamplighter Notes · Proudly powered by WordPress"],
            "blog",
        ),
        Site(
            "Riverbend Commuter",
            [
                "Riverbend Commuter",
                "Getting around the valley, one stop at a time",
                "Menu",
                "Home",
                "About",
                "Subscribe",
            ],
            None,
            [],
            "Subscribe to our newsletter to explore all the corners of the valley",
            "Recent Posts",
            evergreen(),
            ["← Older posts", "Search for:", "Archives", "Meta", "Log in", "Entries feed"],
            "archive",
        ),
        Site(
            "The Contrarian Column",
            ["X", "Contrarian", "Think beyond ordinary", "in ,"],
            "The statements, views and opinions expressed in this column are solely those of "
            "the author and do not necessarily represent those of this site.",
            ["Share", "Facebook", "WhatsApp", "Copy link"],
            "Subscribe to our newsletter to explore all the corners of worldly happenings",
            "Read next",
            evergreen(),
            ["Advertisement", "© 2019 Contrarian Media Group"],
            "column",
        ),
        Site(
            "Meridian Wire",
            ["MERIDIAN WIRE", "Top News | Markets | World"],
            "Our Standards: every Meridian Wire story is edited and checked under the "
            "Meridian Trust Principles.",
            [],
            "Get the Meridian Daily Briefing newsletter",
            "More from Meridian Wire",
            evergreen(),
            ["All quotes delayed a minimum of 15 minutes.", "© 2019 Meridian Wire"],
            "wire",
        ),
    ]


@dataclass
class Post:
    title: str
    lines: list[str]


def _body(words: Words, dateline: bool) -> list[str]:
    rng = words.rng
    paragraphs = [words.paragraph() for _ in range(rng.randint(5, 15))]
    if dateline:
        place = rng.choice(_PLACES)
        if rng.random() < 0.5:
            place += f", {rng.choice(_COUNTRIES)}"
        paragraphs[0] = f"{place} - {paragraphs[0]}"
    return paragraphs


def _comments(words: Words) -> list[str]:
    rng = words.rng
    n = rng.randint(1, 4)
    out = [f"{n} Comment{'s' if n > 1 else ''}", ""]
    when = _when(rng)
    for _ in range(n):
        when += timedelta(minutes=rng.randint(30, 3000))
        stamp = f"{when:%B} {when.day}, {when.year} at {(when.hour % 12) or 12}:{when.minute:02d} "
        out += [
            words.person(),
            stamp + ("am" if when.hour < 12 else "pm"),
            "",
            " ".join(words.sentence() for _ in range(rng.randint(1, 2))),
            "",
            "Reply",
            "",
        ]
    out += [
        "Leave a Reply",
        "Your email address will not be published. Required fields are marked *",
        "Name *",
        "Email *",
        "Post Comment",
        "",
    ]
    return out


def _single_post(words: Words, site: Site) -> list[str]:
    """One article page in the site's layout."""
    rng = words.rng
    when = _when(rng)
    title = words.title()
    author = words.person()
    lines: list[str] = [*site.head, ""]
    if site.layout == "news":
        lines += [f"{(when + timedelta(days=rng.randint(0, 3))):%a, %d %b %Y}", "", title, ""]
        if rng.random() < 0.5:
            lines += [words.sentence(), ""]  # deck
        lines += [f"By {author}, {site.name}", _date_line(rng, when), ""]
        lines += _paras(_body(words, rng.random() < 0.4))
        lines += [*site.share, "", site.prompt, "", site.related_head]
        lines += [*rng.sample(site.related, 3), ""]
        if rng.random() < 0.3:
            lines += _comments(words)
    elif site.layout == "blog":
        stamp = f"{when:%B} {when.day}, {when.year}"
        lines += [title, "", f"Posted on {stamp} by {author}", ""]
        lines += _paras(_body(words, False))
        lines += [f"Filed under: {', '.join(words.tags())}", "", *site.share, ""]
        if rng.random() < 0.6:
            lines += _comments(words)
    elif site.layout == "column":
        lines += ["", title, "", site.disclaimer or "", ""]
        if rng.random() < 0.5:
            lines += [author, _date_line(rng, when), ""]
        lines += _paras(_body(words, rng.random() < 0.2))
        if rng.random() < 0.5:
            lines += [f"Posted in {', '.join(words.tags())}", ""]
        lines += [*site.share, "", site.prompt, "", site.related_head]
        lines += [*rng.sample(site.related, 4), ""]
    else:  # wire: hard-wrapped at 72 columns, like a plain-text wire feed
        lines += [title, "", f"By {author}", _date_line(rng, when), ""]
        body = _body(words, True)
        for para in body:
            lines += [*textwrap.wrap(para, 72), ""]
        lines += [site.disclaimer or "", "", site.prompt, "", site.related_head]
        lines += [*rng.sample(site.related, 3), ""]
    lines += site.foot
    return lines


def _archive_page(words: Words, site: Site, posts: int) -> list[str]:
    """A category archive page holding several posts, split by their "Posted in" footers."""
    rng = words.rng
    lines: list[str] = [*site.head, "", f"Category: {words.tags()[0]}", ""]
    for _ in range(posts):
        when = _when(rng)
        lines += [words.title(), ""]
        if rng.random() < 0.7:
            lines += [f"Posted on {when:%B} {when.day}, {when.year} by {words.person()}", ""]
        else:
            lines += [f"{when:%B} {when.day}, {when.year}", ""]
        lines += _paras(_body(words, False))
        n = rng.randint(0, 5)
        tail = "Leave a comment" if n == 0 else f"{n} Comment{'s' if n > 1 else ''}"
        lines += [f"Posted in {', '.join(words.tags())} | {tail}", ""]
    lines += [*site.foot, "", site.related_head, *rng.sample(site.related, 5)]
    return lines


def _paras(paragraphs: list[str]) -> list[str]:
    out: list[str] = []
    for p in paragraphs:
        out += [p, ""]
    return out


def generate(folder: Path, n_articles: int, seed: int) -> tuple[int, int]:
    """Write pages holding exactly ``n_articles`` articles; (articles, files)."""
    rng = random.Random(seed)
    words = Words(rng)
    sites = _sites(words)
    written = files = 0
    while written < n_articles:
        site = rng.choice(sites)
        sub = folder / site.name.lower().replace(" ", "-")
        if site.layout == "archive":
            posts = min(rng.randint(2, 3), n_articles - written)
            lines = _archive_page(words, site, posts)
        else:
            posts = 1
            lines = _single_post(words, site)
        sub.mkdir(exist_ok=True)
        (sub / f"{files:06d}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        written += posts
        files += 1
    return written, files


# ---------------------------------------------------------------- child: one timed run


def child(folder: Path, expected: int, db: Path, profile: Path | None, cpu: int) -> None:
    if cpu not in os.sched_getaffinity(0):
        sys.exit(f"CPU {cpu} is not available to this process; pick one with --cpu")
    os.sched_setaffinity(0, {cpu})
    t_import = time.perf_counter()
    from sqlalchemy import func, select

    from digest import db as stores
    from digest import ingest, pipeline, schema
    from digest.settings import Settings

    imported = time.perf_counter() - t_import
    settings = Settings(database_url=f"sqlite:///{db}", seeds_dir=folder, tag_rules=TAG_RULES)
    profiler = None
    if profile is not None:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    c0 = time.process_time()
    t0 = time.perf_counter()
    with stores.opened(settings.database_url) as engine:
        done = pipeline.ingest_sources(
            engine, settings, now=datetime.now(UTC), paths=[folder], keep=LISTED
        )
        t1 = time.perf_counter()
        c1 = time.process_time()
        if profiler is not None and profile is not None:
            profiler.disable()
            profiler.dump_stats(profile)
        with engine.connect() as conn:
            stored = conn.execute(select(func.count()).select_from(schema.articles)).scalar_one()
    problems = []
    if done.rejected:
        problems.append(f"{len(done.rejected)} rejected, e.g. {done.rejected[0]}")
    if done.count < READ_SHARE * expected:  # the cleaner misses one generated post in ~4,000
        problems.append(f"read {done.count} articles, expected {expected}")
    if stored + done.saved.duplicates != done.count or done.saved.inserted != stored:
        problems.append(
            f"stored {stored} (inserted {done.saved.inserted}, {done.saved.duplicates} "
            f"copies folded), expected {done.count}"
        )
    if problems:
        sys.exit("SANITY CHECK FAILED: " + "; ".join(problems))
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "articles": done.count,
                "files": done.files,
                "seconds": t1 - t0,
                "cpu_s": c1 - c0,
                "import_s": imported,
                "peak_rss_kib": peak_kib,
                "cpu": cpu,
                "digest": str(Path(ingest.__file__).resolve()),
            }
        )
    )


def run_child(
    folder: Path, expected: int, work: Path, src: Path, cpu: int, profile: Path | None = None
) -> Result:
    """One timed run in a fresh process that imports digest from the snapshot in ``src``."""
    db = work / f"bench-{time.monotonic_ns()}.db"
    args = [str(Path(__file__).resolve()), "--child", str(folder)]
    args += [str(expected), str(db), "--cpu", str(cpu)]
    if profile is not None:
        args += ["--profile-out", str(profile)]
    try:
        return run_child_in(args, src, cwd=work)  # type: ignore[return-value]
    finally:
        db.unlink(missing_ok=True)


# ---------------------------------------------------------------- parent


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def print_profile(path: Path, src: Path, top: int = 10) -> None:
    package = str(src / "digest") + os.sep
    stats = pstats.Stats(str(path))
    items = stats.stats.items()  # type: ignore[attr-defined]
    rows = []
    for (filename, line, name), (_cc, calls, tottime, cumtime, _callers) in items:
        if filename.startswith(package):
            rows.append((cumtime, tottime, calls, f"{Path(filename).name}:{line}({name})"))
    rows.sort(reverse=True)
    total = max(stats.total_tt, 1e-9)  # type: ignore[attr-defined]
    print(f"\nTop {top} functions in digest/ by cumulative time (profiled total {total:.2f} s):")
    print(f"{'cum s':>8} {'cum %':>6} {'own s':>8} {'calls':>10}  function")
    for cumtime, tottime, calls, where in rows[:top]:
        print(f"{cumtime:8.2f} {100 * cumtime / total:5.1f}% {tottime:8.2f} {calls:10d}  {where}")
    own = sorted(
        ((tottime, calls, _where(key, package)) for key, (_cc, calls, tottime, *_) in items),
        reverse=True,
    )
    print(f"\nTop {top} functions anywhere by own time (C calls such as re.search included):")
    print(f"{'own s':>8} {'own %':>6} {'calls':>10}  function")
    for tottime, calls, where in own[:top]:
        print(f"{tottime:8.2f} {100 * tottime / total:5.1f}% {calls:10d}  {where}")


def _where(key: tuple[str, int, str], package: str) -> str:
    filename, line, name = key
    if filename == "~":
        return name
    if filename.startswith(package):
        return f"digest/{Path(filename).name}:{line}({name})"
    return f"{Path(filename).parent.name}/{Path(filename).name}:{line}({name})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 / 4,000 articles, 1 repeat")
    parser.add_argument("--repeats", type=int, default=None, help="runs per size (default 3)")
    parser.add_argument("--sizes", type=int, nargs=2, metavar=("SMALL", "LARGE"), default=None)
    parser.add_argument("--seed", type=int, default=20190301)
    parser.add_argument(
        "--cpu", type=int, default=0, help="the core each timed run is pinned to (default 0)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="also cProfile one child run at the small size"
    )
    parser.add_argument(
        "--child", nargs=3, metavar=("FOLDER", "EXPECTED", "DB"), help=argparse.SUPPRESS
    )
    parser.add_argument("--profile-out", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        folder, expected, db = args.child
        child(Path(folder), int(expected), Path(db), args.profile_out, args.cpu)
        return

    small, large = args.sizes or ((1_000, 4_000) if args.quick else (10_000, 40_000))
    repeats = args.repeats or (1 if args.quick else 3)
    work = Path(tempfile.mkdtemp(prefix="digest-bench-"))
    try:
        src = work / "src"
        code = snapshot(src)
        print(f"digest sources {code} (snapshot), python {sys.version.split()[0]}")
        data: dict[int, tuple[Path, int, int]] = {}
        for n in (small, large):
            t0 = time.perf_counter()
            folder = work / f"pages-{n}"
            folder.mkdir()
            articles, files = generate(folder, n, args.seed + n)
            size = sum(p.stat().st_size for p in folder.rglob("*.txt"))
            data[n] = (folder, articles, files)
            print(
                f"generated {articles:,} articles in {files:,} files "
                f"({size / 1e6:.1f} MB) in {time.perf_counter() - t0:.1f} s"
            )
        results: dict[int, list[Result]] = {small: [], large: []}
        contended = 0
        for r in range(repeats):
            for n in (small, large):
                folder, articles, _ = data[n]
                res = run_child(folder, articles, work, src, args.cpu)
                results[n].append(res)
                print(
                    f"  run {r + 1}/{repeats} N={n:>6,}: {res['cpu_s']:.2f} s CPU "
                    f"({res['seconds']:.2f} s wall), peak RSS {res['peak_rss_kib'] / 1024:.0f} MB, "
                    f"on cpu {res['cpu']}"
                )
                if res["seconds"] > CONTENTION * res["cpu_s"]:
                    contended += 1
                    print("    ^ wall time well above CPU time: the core was shared")

        cpu = {n: statistics.median(x["cpu_s"] for x in rs) for n, rs in results.items()}
        wall = {n: statistics.median(x["seconds"] for x in rs) for n, rs in results.items()}
        rss = {
            n: statistics.median(x["peak_rss_kib"] for x in rs) / 1024 for n, rs in results.items()
        }
        print(
            f"\n{'N':>7} {'CPU s':>8} {'wall s':>8} {'ms CPU/article':>15} {'articles/CPU s':>15} "
            f"{'peak RSS MB':>12}"
        )
        for n in results:
            print(
                f"{n:>7,} {cpu[n]:8.2f} {wall[n]:8.2f} {1e3 * cpu[n] / n:15.3f} "
                f"{n / cpu[n]:15,.0f} {rss[n]:12.1f}"
            )
        cpu_ratio = cpu[large] / cpu[small]
        cpu_target = LINEAR_SLACK * large / small
        rss_ratio = rss[large] / rss[small]
        checks = [
            (
                f"CPU {large:,} / {small:,}: {cpu_ratio:.2f}× for {large / small:.0f}× the pages "
                f"(target ≤ {cpu_target:.2f}×)",
                cpu_ratio <= cpu_target,
            ),
            (
                f"peak RSS {large:,} / {small:,}: {rss_ratio:.2f}× (target ≤ {TARGET_RSS_RATIO})",
                rss_ratio <= TARGET_RSS_RATIO,
            ),
            (
                f"peak RSS at {small:,}: {rss[small]:.1f} MB (target ≤ {TARGET_RSS_MB:.0f})",
                rss[small] <= TARGET_RSS_MB,
            ),
        ]
        print()
        for line, ok in checks:
            print(f"{line} {_verdict(ok)}")
        if contended:
            print(
                f"WARNING: {contended} run(s) shared CPU {args.cpu} with another process; "
                "rerun on an idle machine or pick another core with --cpu"
            )
        if args.profile:
            prof = work / "ingest.prof"
            folder, articles, _ = data[small]
            res = run_child(folder, articles, work, src, args.cpu, profile=prof)
            print(f"\nprofiled run N={small:,}: {res['seconds']:.2f} s under cProfile")
            print_profile(prof, src)
        if fingerprint() != code:
            print(f"note: digest/*.py changed during the run; figures are for {code}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not all(ok for _, ok in checks):
        sys.exit(1)


if __name__ == "__main__":
    main()
