"""Scraped text pages: body F1 and lead-correct of our TEXT path, beside jusText, in one run.

Each page of ../shared/data/pages-dragnet/ (AGPLv3 data: measured here, never trained on;
absent, the benchmark says so and exits) is dumped to plain text as a scraper would,
``html_text.extract_text(html, guess_layout=True)`` (the ``html-text`` package, of the
``bench`` extra), from the HTML as ``readers.decode`` reads its bytes. The dumps are cached
under var/bench-text-dumps/, keyed by the html-text version and the page's bytes.

The dumps then go through the product's text path, ``pipeline.ingest_sources`` (what
``digest ingest`` and ``digest send`` run) on a fresh SQLite store, in two modes:

- batch: every dump in one folder, read and stored by one run;
- one page per run (the daily path): a second fresh store, and each dump, in file-name
  order, put into the folder and ingested by its own run against that store, so what the
  store keeps across runs is used as it would be day after day.

A page's body is its articles' paragraphs (several when the text path split it), its lead
the first article's stored summary (``lead_summary`` with the shipped defaults); a page
rejected scores precision 0, recall 0 and a wrong lead. The peers, on the same dumps:
jusText (each line of the dump a paragraph, the English stop list; its lead the first kept
paragraph) and the whole dump kept (its lead the first line of 8 words or more).

Scoring is bench_pages.py's (imported from it): 4-token shingles of the gold text and ours,
per-page precision and recall, F1 the harmonic mean of their means; lead correct when the
lead's first 8 words are those of the gold article's first line of prose.

    .venv/bin/python bench/bench_text.py                       # every page, both modes
    .venv/bin/python bench/bench_text.py --sample 10           # every 10th page: quick
    .venv/bin/python bench/bench_text.py --pages readability   # the cross-check set
    .venv/bin/python bench/bench_text.py --worst 15 --json var/text.json
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from bench_pages import (  # noqa: E402
    LEAD_WORDS,
    SETS,
    Heads,
    Score,
    first_words,
    gold_text,
    heads,
    is_one_of,
    lead_correct,
    page_scores,
    page_set_parser,
)
from peers import justext_kept  # noqa: E402

from digest import dates, db, pagemeta, pipeline, readers  # noqa: E402
from digest.models import Article  # noqa: E402
from digest.settings import Settings  # noqa: E402

CACHE = ROOT / "var" / "bench-text-dumps"
_WORD = re.compile(r"\w+")
NOW = datetime(2026, 1, 5, 7, 0, tzinfo=UTC)  # the first run's clock; each daily run a day on
Output = tuple[str, str]  # (body text, lead)
DATE_SLACK = timedelta(days=1)  # a date right within a day: zones the dump does not print


@dataclass(frozen=True)
class Meta:
    """What the page's own structured data says (JSON-LD, meta tags: ``pagemeta``), the
    reference for the text path's title, date and author; blank where it says nothing."""

    title: str = ""
    published: datetime | None = None
    author: str = ""


def page_meta(data: bytes) -> Meta:
    """The reference metadata of a page's HTML."""
    found = readers._page_meta(readers.decode(data))
    site = [found.site_name] if found.site_name else []
    when = dates.find_date(found.published, UTC) if found.published else None
    published = when[0] if when is not None else None
    return Meta(
        pagemeta.title(found.title, site) if found.title else "",
        published,
        pagemeta.authors(found.authors) or "",
    )


def _words(text: str) -> Counter[str]:
    return Counter(_WORD.findall(text.casefold()))


def meta_right(reference: Meta, article: Article | None) -> tuple[bool | None, ...]:
    """Title, date and author of the text path's first article against the page's own
    metadata: None where the page declares none; a title right when it is the page's,
    nearly word for word (``is_one_of``), a date within ``DATE_SLACK`` and not the file's
    mtime, an author when every word of the page's is in ours."""
    title = date = author = None
    if reference.title:
        title = article is not None and is_one_of(article.title, [_words(reference.title)])
    if reference.published is not None:
        date = (
            article is not None
            and article.date_source != "mtime"
            and abs(article.published - reference.published) <= DATE_SLACK
        )
    if reference.author:
        want = _words(reference.author)
        author = article is not None and not (want - _words(article.author or ""))
    return title, date, author


def dump(data: bytes, cache: Path | None = CACHE) -> str:
    """The page as a scraper's plain text: html-text's layout-guessing dump, cached."""
    import html_text

    key = hashlib.sha256(f"{html_text.__version__}\0".encode() + data).hexdigest()[:24]
    path = cache / f"{key}.txt" if cache is not None else None
    if path is not None and path.is_file():
        return path.read_text(encoding="utf-8")
    text: str = html_text.extract_text(readers.decode(data), guess_layout=True)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return text


def keep_everything(text: str) -> Output:
    """The whole dump; its lead the first line of 8 words or more."""
    lead = next((line for line in text.splitlines() if len(line.split()) >= LEAD_WORDS), "")
    return text, lead


def _settings(store: Path, folder: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{store}", seeds_dir=folder)


def _outputs(articles: Sequence[Article], names: Sequence[str]) -> dict[str, Output]:
    """Each file's (body, lead): its articles' paragraphs, and its first article's summary."""
    found = _by_file(articles, names)
    return {
        name: (
            "\n".join(p for a in got for p in a.paragraphs),
            got[0].summary if got else "",
        )
        for name, got in found.items()
    }


def _by_file(articles: Sequence[Article], names: Sequence[str]) -> dict[str, list[Article]]:
    found: dict[str, list[Article]] = {name: [] for name in names}
    for article in articles:  # an article's origin is its file, and #N for its N-th
        found.setdefault(Path(article.origin.split("#", 1)[0]).name, []).append(article)
    return found


FIRSTS: dict[str, dict[str, Article]] = {"batch": {}, "daily": {}}  # each file's first article


def _keep_firsts(mode: str, articles: Sequence[Article], names: Sequence[str]) -> None:
    for name, got in _by_file(articles, names).items():
        if got:
            FIRSTS[mode][name] = got[0]


def batch(dumps: dict[str, str], work: Path) -> tuple[dict[str, Output], float]:
    """Every dump in one folder, ingested by one run: each file's output, and CPU seconds."""
    folder = work / "batch"
    folder.mkdir()
    for name, text in dumps.items():
        (folder / name).write_text(text, encoding="utf-8")
    started = time.process_time()
    settings = _settings(work / "batch.db", folder)
    with db.opened(settings.database_url) as engine:
        done = pipeline.ingest_sources(engine, settings, now=NOW, paths=[folder])
    seconds = time.process_time() - started
    _keep_firsts("batch", done.articles, list(dumps))
    return _outputs(done.articles, list(dumps)), seconds


def daily(dumps: dict[str, str], work: Path) -> tuple[dict[str, Output], float, float]:
    """Each dump, in file-name order, put into the folder and ingested by its own run on
    one store: each file's output, CPU seconds and wall seconds."""
    folder = work / "daily"
    folder.mkdir()
    settings = _settings(work / "daily.db", folder)
    outputs: dict[str, Output] = {}
    started, wall = time.process_time(), time.perf_counter()
    with db.opened(settings.database_url) as engine:
        for day, (name, text) in enumerate(sorted(dumps.items())):
            path = folder / name
            path.write_text(text, encoding="utf-8")
            now = NOW + timedelta(days=day)
            done = pipeline.ingest_sources(engine, settings, now=now, paths=[path])
            outputs.update(_outputs(done.articles, [name]))
            _keep_firsts("daily", done.articles, [name])
    return outputs, time.process_time() - started, time.perf_counter() - wall


@dataclass
class Row(Score):
    """bench_pages' sums over pages of one extractor, with each page's F1 kept."""

    f1s: dict[str, float] = field(default_factory=dict)

    def add(self, page: str, gold: str, out: Output, page_heads: Heads) -> bool:
        """Score one page; whether its lead is right."""
        precision, recall = page_scores(gold, out[0])
        self.precision += precision
        self.recall += recall
        self.f1s[page] = 2 * precision * recall / (precision + recall) if precision else 0.0
        right = lead_correct(gold, out[1], page_heads)
        self.leads += right
        self.empty += not out[0].strip()
        self.pages += 1
        return right

    def line(self, name: str) -> str:
        p, r = self.precision / self.pages, self.recall / self.pages
        return (
            f"| {name} | {self.pages:,} | {p:.3f} | {r:.3f} | **{self.f1:.3f}** "
            f"| {self.leads:,} ({self.lead:.1f}%) | {self.empty} "
            f"| {1000 * self.seconds / self.pages:.1f} |"
        )


def _timed(run: Callable[[str], Output], dumps: dict[str, str]) -> tuple[dict[str, Output], float]:
    started = time.process_time()
    outputs = {name: run(text) for name, text in dumps.items()}
    return outputs, time.process_time() - started


def main() -> None:
    parser = page_set_parser(__doc__.splitlines()[0])
    parser.add_argument("--worst", type=int, metavar="N", help="print the N lowest-F1 pages")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write per-page results")
    args = parser.parse_args()
    folder, gold_suffix = SETS[args.pages]
    if not (folder / "html").is_dir():
        sys.exit(f"skipped: {folder} is not here (../shared/data/, beside the checkout)")
    pages = sorted((folder / "html").glob("*.html.gz"))[:: args.sample or 1]
    pages = pages[: args.limit] if args.limit else pages
    golds: dict[str, str] = {}
    page_heads: dict[str, Heads] = {}
    metas: dict[str, Meta] = {}
    dumps: dict[str, str] = {}
    started = time.process_time()
    for page in pages:
        gold_path = folder / "gold" / page.name.replace(".html.gz", gold_suffix)
        if not gold_path.is_file():
            continue
        name = page.name.removesuffix(".html.gz")
        data = gzip.decompress(page.read_bytes())
        golds[name], page_heads[name] = gold_text(gold_path), heads(data)
        metas[f"{name}.txt"] = page_meta(data)
        dumps[f"{name}.txt"] = dump(data)
    dumping = time.process_time() - started
    work = Path(tempfile.mkdtemp(prefix="bench-text-"))
    try:
        ours_batch, batch_cpu = batch(dumps, work)
        ours_daily, daily_cpu, daily_wall = daily(dumps, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    peer, peer_cpu = _timed(justext_kept, dumps)
    everything, everything_cpu = _timed(keep_everything, dumps)
    runs = {
        "digest: text path, batch (one ingest run)": (ours_batch, batch_cpu),
        "digest: text path, one page per run (daily)": (ours_daily, daily_cpu),
        "jusText (a paragraph per line, English stop list)": (peer, peer_cpu),
        "keep everything (the whole dump)": (everything, everything_cpu),
    }
    rows = {name: Row(seconds=cpu) for name, (_, cpu) in runs.items()}
    per_page: list[dict[str, object]] = []
    for file_name in dumps:
        page = file_name.removesuffix(".txt")
        rights = [
            rows[name].add(page, golds[page], outputs.get(file_name, ("", "")), page_heads[page])
            for name, (outputs, _) in runs.items()
        ]
        per_page.append(
            {
                "page": page,
                "f1": {
                    key: row.f1s[page]
                    for key, row in zip(
                        ("batch", "daily", "justext", "everything"), rows.values(), strict=True
                    )
                },
                "lead_right": {"batch": rights[0], "daily": rights[1], "justext": rights[2]},
                "ours_first": " ".join(first_words(ours_batch.get(file_name, ("", ""))[1])),
                "gold_first": " ".join(first_words(golds[page])),
            }
        )
    licence = "AGPLv3: measured, never trained on" if args.pages == "dragnet" else "Apache-2.0"
    print(f"{len(dumps):,} pages of {folder} ({licence}), dumped by html-text")
    print(f"(dumping: {dumping:.1f} CPU s, cached in {CACHE.relative_to(ROOT)}/)\n")
    print(
        "| extractor | pages | precision | recall | body F1 | lead correct | empty/rejected "
        "| CPU ms/page |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, row in rows.items():
        print(row.line(name))
    print(f"\none page per run: {1000 * daily_wall / max(len(dumps), 1):.1f} ms/page wall")
    print(
        "\nmetadata of the first article against the page's own structured data "
        "(JSON-LD, meta tags), of the pages that declare it:\n"
    )
    print("| mode | title right | date right | author right |")
    print("|---|---:|---:|---:|")
    for mode in FIRSTS:
        checks = [meta_right(metas[name], FIRSTS[mode].get(name)) for name in dumps]
        cells = []
        for column in range(3):
            found = [c[column] for c in checks if c[column] is not None]
            right = sum(bool(c) for c in found)
            cells.append(f"{right:,} of {len(found):,} ({100 * right / max(len(found), 1):.1f}%)")
        print(f"| {mode} | " + " | ".join(cells) + " |")
    if args.worst:
        ours_f1, peer_f1 = rows[next(iter(rows))].f1s, rows[list(rows)[2]].f1s
        print(f"\nthe {args.worst} lowest-F1 pages of ours (batch): page, F1 ours, F1 jusText")
        for page in sorted(ours_f1, key=lambda p: (ours_f1[p], p))[: args.worst]:
            print(f"  {page}  {ours_f1[page]:.3f}  {peer_f1[page]:.3f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(per_page, indent=1) + "\n", encoding="utf-8")
        print(f"\nper-page results: {args.json}")


if __name__ == "__main__":
    main()
