"""Readers: bytes of a source file → text, or → drafts for HTML pages and RSS/Atom feeds."""

from __future__ import annotations

import codecs
import html
import warnings
from datetime import UTC, datetime, tzinfo

from digest import clean, dates
from digest.errors import IngestError
from digest.models import DateSource, Draft

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_WESTERN = "cp1252"
_BLOCK_TAGS = ("p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "tr", "pre")

Found = tuple[Draft, str | None, str | None]  # the draft, its URL, its source name


def decode(data: bytes) -> str:
    """Text of ``data``: BOM, then UTF-8, then the most plausible legacy code page.

    Among code pages that fit equally well, windows-1252 wins: it is what legacy
    English-language pages are written in (and what browsers assume for "latin-1").
    """
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError as exc:
                raise IngestError(f"cannot decode text: broken {codec} after its BOM") from exc
    if b"\x00" in data[:8192]:
        raise IngestError("binary file, not text (it holds NUL bytes)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    import charset_normalizer  # deferred: only legacy encodings need it

    matches = list(charset_normalizer.from_bytes(data))
    if not matches:
        raise IngestError(
            "cannot decode text: not UTF-8, and no other encoding fits; save it as UTF-8"
        )
    best = matches[0]
    for match in matches:
        if (
            _WESTERN in match.could_be_from_charset
            and match.chaos <= best.chaos + 0.01
            and match.coherence >= best.coherence - 0.05
        ):
            try:
                return data.decode(_WESTERN)
            except UnicodeDecodeError:
                break
    if best.chaos > 0.3:
        raise IngestError(
            "cannot decode text: it reads as noise in every encoding; save it as UTF-8"
        )
    return str(best)


def read_html(data: bytes, default_tz: tzinfo) -> Found:
    """One article from a web page, through trafilatura's main-text extraction."""
    import trafilatura  # deferred: heavy, and only HTML needs it

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        document = trafilatura.bare_extraction(
            decode(data), with_metadata=True, include_comments=False, include_tables=False
        )
    if document is None:
        raise IngestError("no article found in the HTML page")
    meta = document.as_dict() if hasattr(document, "as_dict") else dict(document)
    lines = [line for line in (meta.get("text") or "").splitlines() if line.strip()]
    title = (meta.get("title") or "").strip()
    if not title and lines:
        title = lines[0]
    published, source = _date(meta.get("date"), default_tz, "html")
    categories = [*(meta.get("categories") or []), *(meta.get("tags") or [])]
    draft = _draft(title, lines, meta.get("author"), published, source, categories)
    return draft, meta.get("url"), meta.get("sitename")


def read_feed(data: bytes, default_tz: tzinfo) -> list[Found]:
    """Every entry of an RSS or Atom feed that has a title and text."""
    import feedparser

    parsed = feedparser.parse(data)
    if not parsed.entries:
        problem = parsed.get("bozo_exception")
        detail = f": {str(problem).splitlines()[0]}" if problem else ""
        raise IngestError(f"not an RSS or Atom feed with entries{detail}")
    site = parsed.feed.get("title") or None
    found: list[Found] = []
    for entry in parsed.entries:
        content = entry.get("content") or []
        markup = content[0].get("value") if content else entry.get("summary", "")
        lines = _html_lines(markup or "")
        title = html.unescape(entry.get("title", "")).strip()
        if not title or not lines:
            continue
        published, source = _date(
            entry.get("published") or entry.get("updated"), default_tz, "feed"
        )
        if published is None:
            stamp = entry.get("published_parsed") or entry.get("updated_parsed")
            if stamp:
                published, source = datetime(*stamp[:6]).replace(tzinfo=UTC), "feed"
        categories = [t.get("term", "") for t in entry.get("tags", [])]
        draft = _draft(title, lines, entry.get("author"), published, source, categories)
        found.append((draft, entry.get("link"), site))
    if not found:
        raise IngestError("the feed has no entry with both a title and text")
    return found


def _draft(
    title: str,
    lines: list[str],
    author: str | None,
    published: datetime | None,
    source: DateSource | None,
    categories: list[str],
) -> Draft:
    paragraphs, dateline = clean.polish(title, lines)
    if not title or not paragraphs:
        raise IngestError("no article found: no title, or no text under it")
    return Draft(
        title=title,
        paragraphs=paragraphs,
        author=(author or "").strip() or None,
        published=published,
        date_source=source if published else None,
        dateline=dateline,
        categories=tuple(clean.tag_slug(c) for c in categories if clean.tag_slug(c)),
    )


def _date(
    value: str | None, default_tz: tzinfo, source: DateSource
) -> tuple[datetime | None, DateSource | None]:
    if not value:
        return None, None
    found = dates.find_date(value, default_tz)
    return (found[0], source) if found else (None, None)


def _html_lines(markup: str) -> list[str]:
    """Text of an HTML fragment, one line per block element."""
    from lxml import etree
    from lxml import html as lxml_html

    if "<" not in markup:
        return [line.strip() for line in html.unescape(markup).splitlines() if line.strip()]
    try:
        root = lxml_html.fragment_fromstring(markup, create_parent="div")
    except (etree.ParserError, ValueError):
        return []
    for element in root.iter("br", *_BLOCK_TAGS):
        element.tail = "\n" + (element.tail or "")
        if element.tag != "br":
            element.text = "\n" + (element.text or "")
    return [line.strip() for line in root.text_content().splitlines() if line.strip()]
