"""Lead-3 ROUGE of our summarizer on the CNN/DailyMail sample, beside the published baseline.

The 20 stories in ../shared/data/cnndm_lead_sample.jsonl go through the product's own path:
``clean.clean_collection`` (as ``ingest`` calls it), then ``summarize.lead_summary`` with 3
sentences and no character budget. ROUGE-1/2/Lsum F1 come from the ``rouge-score`` package
(Porter stemmer on; one sentence a line for Lsum).
20 stories are a sample: the figures are indicative, not a reproduction of the full test set.

    .venv/bin/python bench/bench_rouge.py
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import usage  # noqa: E402

from digest import clean, dates  # noqa: E402
from digest.summarize import lead_summary, split_sentences  # noqa: E402

SAMPLE = ROOT.parent / "shared" / "data" / "cnndm_lead_sample.jsonl"
PUBLISHED = ("Lead-3, full CNN/DM test set (See et al. 2017)", 40.34, 17.70, 36.57)
NO_BUDGET = 1_000_000
Splitter = Callable[[str], list[str]]


def page_text(story: dict[str, str]) -> str:
    """The story as a scraped page. The sample has no headlines and the cleaner finds an
    article by its headline, so a neutral line that shares no word with the story heads it."""
    return f"Story {story['id'][:8]}\n\n{story['article']}"


def cleaned(stories: list[dict[str, str]]) -> list[tuple[str, tuple[str, ...]]]:
    """(title, body paragraphs) of each story, by the cleaner as ingest runs it."""
    utc = dates.zone("UTC")
    cleaned = clean.clean_collection((page_text(story) for story in stories), default_tz=utc)
    out = []
    for story, drafts in zip(stories, cleaned, strict=True):
        if len(drafts) != 1:
            raise SystemExit(f"story {story['id']}: the cleaner found {len(drafts)} articles")
        out.append((drafts[0].title, drafts[0].paragraphs))
    return out


def lead3(title: str, paragraphs: tuple[str, ...], splitter: Splitter) -> list[str]:
    summary = lead_summary(
        paragraphs, title=title, max_sentences=3, max_chars=NO_BUDGET, splitter=splitter
    )
    return splitter(summary)  # one sentence a line, for ROUGE-Lsum


def raw_lead3(story: dict[str, str]) -> list[str]:
    """No cleaning: the first three sentences of the text as stored in the data set."""
    return split_sentences(story["article"])[:3]


def pysbd_splitter() -> Splitter:
    import pysbd

    segmenter = pysbd.Segmenter(language="en", clean=False)
    return lambda text: [s.strip() for s in segmenter.segment(text) if s.strip()]


def scores(summaries: list[list[str]], stories: list[dict[str, str]]) -> tuple[float, ...]:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeLsum"], use_stemmer=True)
    found: dict[str, list[float]] = {"rouge1": [], "rouge2": [], "rougeLsum": []}
    for sentences, story in zip(summaries, stories, strict=True):
        reference = "\n".join(story["highlights"])
        result = scorer.score(reference, "\n".join(sentences))
        for name, values in found.items():
            values.append(result[name].fmeasure)
    return tuple(100 * statistics.fmean(values) for values in found.values())


def main() -> int:
    if not SAMPLE.is_file():
        print(f"{SAMPLE} is absent: the lead-3 ROUGE row is skipped")
        return 0
    stories = [json.loads(line) for line in SAMPLE.read_text().splitlines() if line.strip()]
    articles = cleaned(stories)
    rows = [
        ("ours: cleaner + lead_summary (split_sentences)", split_sentences),
        ("ours: cleaner + lead_summary, pySBD as the splitter", pysbd_splitter()),
    ]
    print(f"{len(stories)} CNN stories from {SAMPLE.name}: indicative figures, not the test set\n")
    print("| lead-3 | stories | ROUGE-1 | ROUGE-2 | ROUGE-Lsum |")
    print("|---|---:|---:|---:|---:|")
    for name, splitter in rows:
        summaries = [lead3(title, body, splitter) for title, body in articles]
        r1, r2, rl = scores(summaries, stories)
        print(f"| {name} | {len(stories)} | {r1:.2f} | {r2:.2f} | {rl:.2f} |")
    r1, r2, rl = scores([raw_lead3(story) for story in stories], stories)
    print(
        f"| no cleaning: first 3 sentences of the raw text | {len(stories)} | {r1:.2f} "
        f"| {r2:.2f} | {rl:.2f} |"
    )
    name, r1, r2, rl = PUBLISHED
    print(f"| {name} | 11,490 | {r1:.2f} | {r2:.2f} | {rl:.2f} |")
    return 0


if __name__ == "__main__":
    usage.report()
    sys.exit(main())
