"""The text benchmarks' peers, importing nothing of digest: a peer's process pays only its
own imports when it is timed as a whole (bench_ingest_real.py)."""

from __future__ import annotations

import html

Output = tuple[str, str]  # (body text, lead)
LEAD_SENTENCES = 2  # the lead-2 baseline: the shipped summary_sentences


def justext_paragraphs(text: str) -> list[str]:
    """jusText on the dump, a paragraph per line, the English stop list: the paragraphs it
    does not call boilerplate."""
    import justext

    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    page = "<html><body>" + "".join(f"<p>{html.escape(line)}</p>" for line in lines)
    return [
        p.text
        for p in justext.justext(page + "</body></html>", justext.get_stoplist("English"))
        if not p.is_boilerplate
    ]


def justext_kept(text: str) -> Output:
    """jusText's kept paragraphs, and the first of them as the lead."""
    kept = justext_paragraphs(text)
    return "\n".join(kept), (kept[0] if kept else "")


def lead_sentences(paragraphs: list[str], segment: object, count: int = LEAD_SENTENCES) -> str:
    """The first ``count`` sentences of the paragraphs, in order, split by ``segment`` (a
    pySBD ``Segmenter``): the paragraphs are split one by one until there are enough."""
    found: list[str] = []
    for paragraph in paragraphs:
        found += [s.strip() for s in segment.segment(paragraph) if s.strip()]  # type: ignore[attr-defined]
        if len(found) >= count:
            break
    return " ".join(found[:count])
