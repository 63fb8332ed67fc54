"""Acceptance of issue 11 on 31 real-world feeds (tests/data/feeds-dev/, MIT: see its
README): every entry a feed reader finds with a title or text is read and stored; titles
are text; links are absolute; no mojibake; no summary stops mid-sentence."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import pytest

from digest import db, ingest, store
from digest.models import Article

FEEDS = Path(__file__).parent / "data" / "feeds-dev"
FILES = sorted(p for p in FEEDS.iterdir() if p.name != "README.md")
MARKUP = re.compile(r"</?[a-zA-Z][^>]*>|&(?:[a-zA-Z]+|#\d+|#x[0-9a-fA-F]+);")
# UTF-8 read as a legacy code page (Ã©, â€™, Ð°), and the replacement character.
MOJIBAKE = re.compile("[ÃÂ][\u0080-\u00bf]|[ÐÑ][\u0080-\u00bf\u2018-\u203a]|â€|\ufffd")
SENTENCE_END = re.compile(r"[.!?…。！？:;][\"'”’)\]»]*$")
BIG_FEED_BYTES = 1_000_000  # the podcast's 730 entries take seconds: with the slow tests


def found_entries(path: Path) -> int:
    """The entries a feed reader finds with a title or some text."""
    data = path.read_bytes()
    if data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        items = json.loads(data).get("items") or []
        texts = ("title", "content_html", "content_text", "summary")
        return sum(1 for i in items if any(str(i.get(k) or "").strip() for k in texts))
    entries = feedparser.parse(data).entries
    return sum(1 for e in entries if e.get("title") or e.get("summary") or e.get("content"))


def cut_mid_sentence(article: Article) -> bool:
    """The summary ends without a sentence's end (or the "…" of a sentence cut to the
    budget) and the body's next words carry the sentence on (lower case, a comma)."""
    summary = article.summary.rstrip()
    if not summary or SENTENCE_END.search(summary):
        return False
    body = "\n".join(article.paragraphs)
    tail = summary[-40:]
    at = body.find(tail)
    after = body[at + len(tail) :].lstrip() if at >= 0 else ""
    if not after or after.startswith(("http:", "https:")):
        return False
    return after[0].islower() or after[0] in ",;:)]"


def marked(path: Path) -> Any:
    marks = []
    if path.stat().st_size > BIG_FEED_BYTES:
        marks.append(pytest.mark.slow)
    return pytest.param(path, marks=marks, id=path.name)


@pytest.mark.parametrize("path", [marked(p) for p in FILES])
def test_every_entry_of_a_real_feed_is_stored_clean(path: Path, tmp_path: Path) -> None:
    expected = found_entries(path)
    batch = ingest.read_paths([path], ingest.Options(default_tz=UTC))
    assert len(batch.articles) == expected, [r.reason for r in batch.rejected]
    assert not batch.skipped  # every entry found has a title or text
    if expected == 0:  # no entry to read: the file is named with a reason
        assert len(batch.rejected) == 1 and batch.rejected[0].reason
        return
    assert not batch.rejected
    with db.opened(f"sqlite:///{tmp_path / 'digest.db'}") as engine:
        store.save(engine, batch.articles, now=datetime.now(UTC))
        stored = store.query(engine)
    # Every distinct entry stored: entries with the same text are true copies and may fold
    # (one description pasted under two episodes), no other two may.
    assert {a.paragraphs for a in stored} == {a.paragraphs for a in batch.articles}
    for article in stored:
        assert article.title and not MARKUP.search(article.title), article.title
        assert article.title == " ".join(article.title.split())
        assert article.url is None or re.match(r"https?://", article.url), article.url
        text = "\n".join((article.title, *article.paragraphs, article.summary))
        assert not MOJIBAKE.search(text), (article.title, MOJIBAKE.search(text))
        assert not cut_mid_sentence(article), (article.title, article.summary)


def test_a_latin_1_feed_decodes_to_its_accented_letters() -> None:
    batch = ingest.read_paths([FEEDS / "encoding.rss"], ingest.Options(default_tz=UTC))
    accented = [a for a in batch.articles if re.search("[à-ÿ]", a.title)]
    assert len(accented) >= len(batch.articles) // 2  # Portuguese: most titles have one
