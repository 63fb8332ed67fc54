"""The page benchmark's lead scorer: the page's own headline or caption atop the gold is not
the article's first line; nothing else is skipped."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def bench() -> ModuleType:
    path = Path(__file__).parent.parent / "bench" / "bench_pages.py"
    spec = importlib.util.spec_from_file_location("bench_pages", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


PAGE = (
    b"<html><head><title>Will the old harbour bridge close this year? | The Gazette</title>"
    b'<meta name="description" content="Repairs to the old harbour bridge cannot wait another'
    b' winter, the council says."></head><body><h1>Will the old harbour bridge close this'
    b' year?</h1><img src="a.jpg" alt="Workers inspect a pier of the old bridge in May.">'
    b"<p>The city council voted on Monday to close the old harbour bridge for a year.</p>"
    b"</body></html>"
)
STORY = "The city council voted on Monday to close the old harbour bridge for a year."
DECK = "Repairs to the old harbour bridge cannot wait another winter, the council says."


def test_a_headline_or_caption_atop_the_gold_is_skipped_a_first_line_of_prose_is_not() -> None:
    b = bench()
    heads = b.heads(PAGE)
    headline = "Will the old harbour bridge close this year?"
    gold = f"{headline}\nWorkers inspect a pier of the old bridge in May.\n{STORY}\nMore."
    assert b.lead_correct(gold, STORY, heads)
    assert not b.lead_correct(gold, STORY)  # without the page, the headline is the line
    assert not b.lead_correct(gold, "Will the old harbour bridge close this year? It may.", heads)
    other = "Ferries will run every twenty minutes while the bridge is closed to traffic."
    assert not b.lead_correct(f"{other}\n{STORY}", STORY, heads)  # prose is never skipped


def test_after_the_page_description_the_next_line_counts_too() -> None:
    b = bench()
    heads = b.heads(PAGE)
    gold = f"{DECK}\n{STORY}\n"
    assert b.lead_correct(gold, STORY, heads) and b.lead_correct(gold, DECK, heads)
    assert not b.lead_correct(f"{STORY}\n{DECK}\n", DECK, heads)  # only after it, not before
