"""HTML pages: body F1 and lead-correct of our HTML path, beside trafilatura alone, in one run.

Reads the 1,381 real news and blog pages of ../shared/data/pages-dragnet/ (AGPLv3 data:
measured here, never trained on; absent, the benchmark says so and exits). Each page goes
through the product's HTML path as ingest runs it, ``readers.read_html`` then
``summarize.lead_summary`` (2 sentences, 320 characters, the shipped defaults), and through
``trafilatura.extract`` alone with its defaults.

Scoring is the public article-extraction benchmarks' (../shared/data/README.md): the gold
text and ours split into ``\\w+`` tokens, multisets of 4-token shingles, per page TP/FP/FN as
fractions of their sum; precision and recall are means over pages, F1 their harmonic mean.
A page with no output scores precision 0 and recall 0. Lead correct: the first 8 words of
the lead equal the first 8 of the gold article's first line of prose (8 words or more,
ending as a sentence does: what the page printed above the story, its date, headline and
byline, is in the gold text too), or those after a leading dateline; for trafilatura the
lead is its first paragraph. A line at the top of the gold that is the page's headline or
deck is not that line of prose, however it ends ("… a question?", "… (video)"): one whose
words are, nearly all, those of a heading the page's HTML prints (``<title>``,
``og:title``, ``twitter:title``, ``<h1>``, ``<h2>``) or of a caption it prints
(``<figcaption>``, an element whose class or id says caption, an image's ``alt`` or
``title``) is skipped; when that first line is the page's description (its
``description``, ``og:description`` or ``twitter:description`` meta: a deck, or the
story's first paragraph again), a lead that starts as the next line of prose is right too.
The rule reads the page, not either extractor's output, so it is the same for both rows.
A gold file's comments are cut at its marker line, however it was typed.

``--pages readability`` scores the 116 pages of ../shared/data/pages-readability/ instead
(Apache-2.0): their gold is Readability.js's output, an extractor's and not a person's, so
it is a cross-check against tuning to Dragnet, not a target.

    .venv/bin/python bench/bench_pages.py                       # every page
    .venv/bin/python bench/bench_pages.py --limit 200           # the first 200, by file name
    .venv/bin/python bench/bench_pages.py --sample 4            # every 4th page: quick
    .venv/bin/python bench/bench_pages.py --pages readability   # the cross-check set
"""

from __future__ import annotations

import argparse
import gzip
import re
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import usage  # noqa: E402

from digest import dates, readers  # noqa: E402
from digest.errors import IngestError  # noqa: E402
from digest.lines import split_dateline  # noqa: E402
from digest.summarize import lead_summary  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
PAGES = DATA / "pages-dragnet"
SETS = {  # --pages: the folder of each set, and how its gold file of a page is named
    "dragnet": (PAGES, ".txt"),
    "readability": (DATA / "pages-readability", ".txt.gz"),
}
_GOLD_BLOCKS = frozenset(
    ("p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "tr", "pre", "section")
)
# In a gold file, what follows the line "!@#$%^&*()  COMMENTS" is the comments; the hand-typed
# marker varies ("!@#$%^&*() COMMENTS", "!@ $%^&*()  COMMENTS", a tab …): any run of those
# marks before the word.
COMMENTS = re.compile(r"^[ \t!@#$%^&*()]{4,}COMMENTS[ \t]*$", re.MULTILINE)
LEAD_WORDS = 8
_TOKEN = re.compile(r"\w+")
_SENTENCE_END = tuple(".!?\"'”’)…:")
# A gold line is a heading of the page when this share of its words are the heading's, and
# the heading's words are at least this share its (a <title> adds " | Site Name").
HEADING_OVERLAP = 0.8
HEADING_COVER = 0.5
_CAPTION = re.compile(r"(?i)caption")
CAPTION_MAX_WORDS = 80  # a "caption" element longer than this holds the story
Extractor = Callable[[bytes], tuple[str, str]]  # page bytes → (body text, lead)


@dataclass
class Score:
    """Sums over pages of each page's precision, recall and lead-correct, and the count."""

    precision: float = 0.0
    recall: float = 0.0
    leads: int = 0
    pages: int = 0
    empty: int = 0
    seconds: float = 0.0

    @property
    def f1(self) -> float:
        """The harmonic mean of mean precision and mean recall."""
        p, r = self.precision / self.pages, self.recall / self.pages
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def lead(self) -> float:
        """Lead correct, in percent of the pages."""
        return 100 * self.leads / self.pages

    def row(self, name: str) -> str:
        p, r = self.precision / self.pages, self.recall / self.pages
        ms = 1000 * self.seconds / self.pages
        return (
            f"| {name} | {self.pages:,} | {p:.3f} | {r:.3f} | **{self.f1:.3f}** "
            f"| {self.lead:.1f}% | {self.empty} | {ms:.1f} |"
        )


def gold_text(path: Path) -> str:
    """The article's hand-made text (any encoding), without the comments after the marker;
    for pages-readability, the text of Readability.js's article HTML, a line per block."""
    from charset_normalizer import from_bytes

    if path.name.endswith(".gz"):
        return _html_text(gzip.decompress(path.read_bytes()))
    data = path.read_bytes()
    best = from_bytes(data).best()
    text = str(best) if best is not None else data.decode("utf-8", "replace")
    return COMMENTS.split(text, 1)[0]


def _html_text(data: bytes) -> str:
    from lxml import etree
    from lxml import html as lxml_html

    root = lxml_html.fromstring(data.decode("utf-8", "replace") or "<div></div>")
    pieces: list[str] = []
    for event, node in etree.iterwalk(root, events=("start", "end")):
        if not isinstance(node.tag, str):
            continue
        if event == "start":
            pieces.append(("\n" if node.tag in _GOLD_BLOCKS else "") + (node.text or ""))
        else:
            pieces.append("\n" if node.tag in _GOLD_BLOCKS or node.tag == "br" else "")
            pieces.append(node.tail or "")
    return "\n".join(" ".join(line.split()) for line in "".join(pieces).splitlines())


def shingles(text: str) -> Counter[tuple[str, ...]]:
    tokens = _TOKEN.findall(text.casefold())
    return Counter(tuple(tokens[i : i + 4]) for i in range(max(len(tokens) - 3, 0)))


def page_scores(gold: str, ours: str) -> tuple[float, float]:
    """(precision, recall) of one page, from TP/FP/FN as fractions of their sum."""
    want, got = shingles(gold), shingles(ours)
    tp = sum((want & got).values())
    fp = sum(got.values()) - tp
    fn = sum(want.values()) - tp
    if not tp:
        return 0.0, 0.0
    # As fractions of tp + fp + fn each page weighs the same; the ratios are the same.
    return tp / (tp + fp), tp / (tp + fn)


def first_words(text: str) -> list[str]:
    return _TOKEN.findall(text.casefold())[:LEAD_WORDS]


@dataclass
class Heads:
    """The words of what a page prints above or beside its story: headlines and captions
    (never the story's first line), and its description (a deck, or that first line)."""

    headings: list[Counter[str]]
    descriptions: list[Counter[str]]


def heads(data: bytes) -> Heads:
    """A page's headlines (title, og:/twitter:title, h1, h2, figcaption) and descriptions."""
    from lxml import etree
    from lxml import html as lxml_html

    try:
        root = lxml_html.fromstring(data, parser=lxml_html.HTMLParser(remove_comments=True))
    except (etree.ParserError, ValueError):
        return Heads([], [])
    headings = [node.text_content() for node in root.iter("title", "h1", "h2", "figcaption")]
    headings += [
        node.text_content()
        for node in root.iter("div", "p", "span", "td")
        if _CAPTION.search(f"{node.get('class') or ''} {node.get('id') or ''}")
        and len(node.text_content().split()) <= CAPTION_MAX_WORDS
    ]
    headings += [text for img in root.iter("img") for text in (img.get("alt"), img.get("title"))
                 if text]  # fmt: skip
    descriptions = []
    for meta in root.iter("meta"):
        name = (meta.get("property") or meta.get("name") or "").casefold()
        if name in ("og:title", "twitter:title"):
            headings.append(meta.get("content") or "")
        elif name in ("description", "og:description", "twitter:description"):
            descriptions.append(meta.get("content") or "")
    return Heads(_word_counts(headings), _word_counts(descriptions))


def _word_counts(texts: list[str]) -> list[Counter[str]]:
    words = (Counter(_TOKEN.findall(text.casefold())) for text in texts)
    return [counts for counts in words if counts]


def is_one_of(line: str, texts: list[Counter[str]]) -> bool:
    """The line is one of these texts again, nearly word for word."""
    words = Counter(_TOKEN.findall(line.casefold()))
    size = sum(words.values())
    for text in texts:
        shared = sum((words & text).values())
        if shared >= HEADING_OVERLAP * size and shared >= HEADING_COVER * sum(text.values()):
            return True
    return False


def lead_correct(gold: str, lead: str, page: Heads | None = None) -> bool:
    """The lead starts as the gold article does, or as it does after its dateline."""
    got = first_words(lead)
    if not got:
        return False
    page = page or Heads([], [])
    # The gold text opens with what the page printed above the story (a date, the headline,
    # a byline): its article starts at the first line of prose, a sentence of 8 words or more
    # that is not one of the page's headlines or captions; after a description, the next.
    paragraphs = [
        p.strip()
        for p in gold.splitlines()
        if len(_TOKEN.findall(p)) >= LEAD_WORDS
        and p.strip()[-1:] in _SENTENCE_END
        and not is_one_of(p, page.headings)
    ]
    starts = 2 if paragraphs and is_one_of(paragraphs[0], page.descriptions) else 1
    for paragraph in paragraphs[:starts]:
        if got == first_words(paragraph) or got == first_words(split_dateline(paragraph)[1]):
            return True
    return False


def ours(data: bytes) -> tuple[str, str]:
    try:
        draft, _url, _source = readers.read_html(data, dates.zone("UTC"))
    except IngestError:
        return "", ""
    lead = lead_summary(draft.paragraphs, title=draft.title)
    return "\n".join(draft.paragraphs), lead


def trafilatura_alone(data: bytes) -> tuple[str, str]:
    import trafilatura

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text = trafilatura.extract(data) or ""
    first = next((line for line in text.splitlines() if line.strip()), "")
    return text, first


def page_set_parser(description: str) -> argparse.ArgumentParser:
    """The options of a benchmark over a page set: --limit, --sample, --pages."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--limit", type=int, help="only the first N pages, by file name")
    parser.add_argument(
        "--sample", type=int, metavar="K", help="every K-th page only (a quick spread sample)"
    )
    parser.add_argument(
        "--pages",
        choices=sorted(SETS),
        default="dragnet",
        help="the page set: dragnet (1,381 pages, hand-made gold; the default) or "
        "readability (116 pages, Readability.js's output as gold: a cross-check)",
    )
    return parser


def main() -> None:
    args = page_set_parser(__doc__.splitlines()[0]).parse_args()
    folder, gold_suffix = SETS[args.pages]
    if not (folder / "html").is_dir():
        sys.exit(f"skipped: {folder} is not here (../shared/data/, beside the checkout)")
    pages = sorted((folder / "html").glob("*.html.gz"))[:: args.sample or 1]
    pages = pages[: args.limit] if args.limit else pages
    extractors: dict[str, Extractor] = {
        "digest: HTML path (read_html + lead_summary)": ours,
        "trafilatura alone (extract, first paragraph as lead)": trafilatura_alone,
    }
    scores = {name: Score() for name in extractors}
    for page in pages:
        gold_path = folder / "gold" / page.name.replace(".html.gz", gold_suffix)
        if not gold_path.is_file():
            continue
        gold = gold_text(gold_path)
        data = gzip.decompress(page.read_bytes())
        page_heads = heads(data)
        for name, extract in extractors.items():  # side by side, page by page
            started = time.process_time()
            body, lead = extract(data)
            score = scores[name]
            score.seconds += time.process_time() - started
            precision, recall = page_scores(gold, body)
            score.precision += precision
            score.recall += recall
            score.leads += lead_correct(gold, lead, page_heads)
            score.empty += not body.strip()
            score.pages += 1
    licence = "AGPLv3: measured, never trained on" if args.pages == "dragnet" else "Apache-2.0"
    print(f"{len(pages):,} pages of {folder} ({licence})\n")
    print(
        "| extractor | pages | precision | recall | body F1 | lead correct | empty | CPU ms/page |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, score in scores.items():
        print(score.row(name))
    ours_score, peer = scores.values()
    checks = [
        (f"body F1 {ours_score.f1:.3f} (target ≥ trafilatura's {peer.f1:.3f})",
         ours_score.f1 >= peer.f1),
        (f"lead correct {ours_score.lead:.1f}% (target ≥ trafilatura's first paragraph "
         f"{peer.lead:.1f}% + 10 points)", ours_score.lead >= peer.lead + 10),
    ]  # fmt: skip
    print()
    for text, passed in checks:
        print(("PASS " if passed else "FAIL ") + text)
    if not all(passed for _, passed in checks):
        sys.exit(1)


if __name__ == "__main__":
    usage.report()
    main()
