"""Readers: bytes of a source file → text, or → drafts for HTML pages and RSS/Atom feeds.

Which reader a file gets is decided here too (``kind_of``: its suffix, else a sniff of its
first bytes); ``ingest.read_paths`` hands the bytes to the reader of that kind.
"""

from __future__ import annotations

import codecs
import html
import re
import warnings
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any, Literal

from digest import clean, dates, pagemeta
from digest.errors import IngestError
from digest.models import DateSource, Draft

Kind = Literal["text", "html", "feed"]
TEXT_SUFFIXES = frozenset({".txt", ".text"})
HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})
FEED_SUFFIXES = frozenset({".xml", ".rss", ".atom", ".feed"})
SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | FEED_SUFFIXES  # what a folder scan picks up
_SNIFF = 2048  # bytes looked at to tell a page or a feed from text

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_WESTERN = "cp1252"
_BLOCK_TAGS = frozenset(
    ("p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "tr", "pre")
)
# Control characters (but tab, LF and CR), lone surrogates and the two noncharacters XML
# forbids: lxml refuses them, PostgreSQL refuses NUL, and no reader can see them.
_UNPRINTABLE = re.compile("[\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]")
# The controls str.splitlines breaks lines at: they go, the line break they made stays.
_LINE_BREAKING = re.compile("[\x0b\x0c\x1c-\x1e\x85]")
# A numeric character reference, which an HTML parser would turn into any of the above.
_CHAR_REF = re.compile(r"&#(?:[xX]0*(?P<hex>[0-9a-fA-F]{1,8})|0*(?P<dec>[0-9]{1,10}));?")

# The block elements of trafilatura's XML body: a node holding one is a container.
_XML_BLOCKS = frozenset(("p", "head", "list", "item", "quote", "table", "div"))
_PARAGRAPH_END = (".", "!", "?", "…", "。", "！", "？", '."', ".”", "!”", "?”")
TABLE_PROSE_WORDS = 20  # a table cell this long is a paragraph: the table is the page's layout

Found = tuple[Draft, str | None, str | None]  # the draft, its URL, its source name
Entry = Mapping[str, Any]  # one entry of a feed, as feedparser gives it


def kind_of(suffix: str, data: bytes) -> Kind:
    """Which reader a file's bytes need: by its suffix, else by how the bytes begin."""
    suffix = suffix.lower()
    if suffix in HTML_SUFFIXES:
        return "html"
    if suffix in FEED_SUFFIXES:
        return "feed"
    if suffix in TEXT_SUFFIXES:
        return "text"
    head = data[:_SNIFF].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<!doctype html", b"<html")):
        return "html"
    if head.startswith(b"<?xml") or head.startswith((b"<rss", b"<feed", b"<rdf")):
        return "feed"
    return "text"


def decode(data: bytes) -> str:
    """Printable text of ``data``: BOM, then UTF-8, then the most plausible legacy code page.

    Among code pages that fit equally well, windows-1252 wins: it is what legacy
    English-language pages are written in (and what browsers assume for "latin-1").
    """
    return printable(_decoded(data))


def printable(text: str) -> str:
    """``text`` without control characters (but tab and line breaks) or lone surrogates.

    Every text a reader gives passes here, so neither lxml nor the store meets them. A
    control that breaks a line for ``str.splitlines`` (form feed, vertical tab) leaves a
    newline behind.
    """
    if _UNPRINTABLE.search(text):
        text = _UNPRINTABLE.sub("", text)
    return _LINE_BREAKING.sub("\n", text) if _LINE_BREAKING.search(text) else text


def _printable_markup(markup: str) -> str:
    """HTML made printable, character references to what ``printable`` drops included."""
    return printable(_CHAR_REF.sub(_printable_ref, markup))


def _printable_ref(match: re.Match[str]) -> str:
    code = int(match["hex"], 16) if match["hex"] else int(match["dec"])
    if code > 0x10FFFF:
        return ""
    if 0x80 <= code <= 0x9F or printable(chr(code)) == chr(code):
        return match.group(0)  # HTML parsers read &#x93; as windows-1252's “, not a control
    return printable(chr(code))


def _decoded(data: bytes) -> str:
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
    """One article from a web page: the text through trafilatura's main-text extraction
    (tables kept, as rows), the metadata from the page's own structured data first
    (``pagemeta``), and the lines the page marks as captions, credits or embeds left out."""
    import trafilatura  # deferred: heavy, and only HTML needs it

    markup = _printable_markup(decode(data))
    page = _page_meta(markup)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        document = trafilatura.bare_extraction(
            markup,
            with_metadata=True,
            include_comments=False,
            include_tables=True,
        )
    if document is None:
        raise IngestError("no article found in the HTML page")
    meta = document.as_dict() if hasattr(document, "as_dict") else dict(document)
    body = meta.get("body")
    extracted = (
        _paragraphs(body)
        if body is not None
        else [line for line in _text(meta, "text").splitlines() if line.strip()]
    )
    lines = [line for line in extracted if not pagemeta.is_furniture_line(line, page.furniture)]
    if not any(len(line.split()) >= clean.STORY_START_WORDS for line in lines):
        lines = extracted  # a photo page: its captions are all its text
    sitename = page.site_name or _text(meta, "sitename")
    names = [sitename, _text(meta, "sitename"), pagemeta.host_name(_text(meta, "url"))]
    title = pagemeta.title(printable(page.title) or _text(meta, "title"), names)
    if not title and lines:  # an untitled page: its first line, or the start of its story
        words = lines[0].split()
        title = " ".join(words[: clean.TITLE_MAX_WORDS]) + (
            "…" if len(words) > clean.TITLE_MAX_WORDS else ""
        )
    published, source = _date(printable(page.published), default_tz, "html")
    if published is None:
        published, source = _date(_text(meta, "date"), default_tz, "html")
    author = pagemeta.authors(map(printable, page.authors)) or pagemeta.author(
        _text(meta, "author")
    )
    categories = pagemeta.keywords(
        [*_texts(meta, "categories"), *_texts(meta, "tags"), *map(printable, page.keywords)]
    )
    draft = _draft(title, lines, author, published, source, categories)
    if draft is None:
        raise IngestError("no article found: no title, or no text under it")
    return draft, _text(meta, "url") or None, sitename or None


def _paragraphs(body: Any) -> list[str]:
    """The paragraphs of trafilatura's XML body, by its blocks, never by source lines.

    A paragraph, heading or list item is one line, its hard-wrapped source lines joined and
    a line break read as a space unless a sentence ends before it; list items keep their
    bullet, a table's rows read "cell | cell", and a layout table (a cell of prose) gives
    its cells' paragraphs; a code block keeps its lines.
    """
    out: list[str] = []
    loose = " ".join((body.text or "").split())
    if loose:  # text straight in a container, beside its blocks
        out.append(printable(loose))
    for node in body:
        tag = node.tag
        if isinstance(tag, str) and tag != "graphic":
            if tag == "code":
                out.extend(_lines(printable("".join(node.itertext()))))
            elif tag == "table":
                out.extend(_table(node))
            elif any(isinstance(c.tag, str) and c.tag in _XML_BLOCKS for c in node):
                out.extend(_paragraphs(node))  # a list, a quote, a cell of paragraphs
            else:
                bullet = "• " if tag == "item" else ""
                out.extend(bullet + part for part in _inline_text(node) if part)
        tail = " ".join((node.tail or "").split())
        if tail:
            out.append(printable(tail))
    return out


def _inline_text(node: Any) -> list[str]:
    """A block's text, spaces single; parted at a line break after a sentence's end.

    trafilatura prints one ``<lb/>`` for a ``<br>`` and for ``<br><br>`` alike: a break
    after a full stop parts paragraphs, one mid-sentence (an address, a wrapped line) is a
    space.
    """
    from lxml import etree

    parts: list[str] = []
    pieces: list[str] = []
    for event, child in etree.iterwalk(node, events=("start", "end")):
        if event == "start":
            if child.tag == "lb" and "".join(pieces).rstrip().endswith(_PARAGRAPH_END):
                parts.append("".join(pieces))
                pieces = []
            pieces.append(" " if child.tag == "lb" else "")
            pieces.append(child.text or "")
        elif child is not node:
            pieces.append(child.tail or "")
    parts.append("".join(pieces))
    return [" ".join(printable(part).split()) for part in parts]


def _table(table: Any) -> list[str]:
    """A table as text: a line per row, "cell | cell"; a layout table's cells as paragraphs."""
    rows = [[cell for cell in row if cell.tag == "cell"] for row in table.iter("row")]
    texts = [[" ".join(" ".join(_inline_text(cell)).split()) for cell in row] for row in rows]
    if any(len(text.split()) >= TABLE_PROSE_WORDS for row in texts for text in row):
        out: list[str] = []
        for row in rows:
            for cell in row:
                out.extend(_paragraphs(cell) or [t for t in _inline_text(cell) if t])
        return out
    return [" | ".join(t for t in row if t) for row in texts if any(row)]


def _page_meta(markup: str) -> pagemeta.PageMeta:
    """The page's own metadata; an empty one when lxml cannot parse the page."""
    from lxml import etree
    from lxml import html as lxml_html

    try:
        root = lxml_html.fromstring(
            markup.encode("utf-8", "replace"),
            parser=lxml_html.HTMLParser(encoding="utf-8", remove_comments=True),
        )
    except (etree.ParserError, ValueError, UnicodeError):
        return pagemeta.PageMeta()
    return pagemeta.read(root)


def read_feed(data: bytes) -> tuple[str | None, list[Entry]]:
    """The site name and the entries of an RSS or Atom feed; each is read by ``read_entry``."""
    import feedparser

    try:
        parsed = feedparser.parse(data)
    except ValueError as exc:  # its loose parser re-encodes a reference to a surrogate (&#xD800;)
        raise IngestError(
            f"cannot parse the feed: {_first_line(exc)}; check it with a feed validator"
        ) from exc
    if not parsed.entries:
        problem = _first_line(parsed.get("bozo_exception") or "")
        detail = f": {problem}" if problem else ""
        raise IngestError(f"not an RSS or Atom feed with entries{detail}")
    return _text(parsed.feed, "title") or None, list(parsed.entries)


def read_entry(entry: Entry, site: str | None, default_tz: tzinfo) -> Found | None:
    """One feed entry as an article; ``None`` when it has no title or no text to read."""
    content = entry.get("content") or []
    markup = _text(content[0], "value") if content else _text(entry, "summary")
    lines = _html_lines(markup)
    title = printable(html.unescape(_text(entry, "title"))).strip()
    if not title or not lines:
        return None
    # "updated" only when the entry has one: feedparser would answer with "published" again,
    # and a DeprecationWarning.
    stamp = _text(entry, "published") or (_text(entry, "updated") if "updated" in entry else "")
    published, source = _date(stamp, default_tz, "feed")
    if published is None:
        fields = entry.get("published_parsed")
        if not fields and "updated_parsed" in entry:
            fields = entry.get("updated_parsed")
        published = _stamp(fields)
        source = "feed" if published else None
    categories = [_text(tag, "term") for tag in entry.get("tags") or []]
    draft = _draft(title, lines, _text(entry, "author"), published, source, categories)
    # An entry of nothing but page furniture ("Share on Facebook") is no article.
    return (draft, _text(entry, "link") or None, site) if draft is not None else None


def _text(fields: Any, key: str) -> str:
    """A text field of a feedparser or trafilatura result, made printable ("" when absent)."""
    value = fields.get(key) if isinstance(fields, Mapping) else None
    return printable(value) if isinstance(value, str) else ""


def _texts(fields: Mapping[str, Any], key: str) -> list[str]:
    value = fields.get(key) or []
    items = [value] if isinstance(value, str) else value
    return [printable(item) for item in items if isinstance(item, str)]


def _first_line(problem: object) -> str:
    """The first line of a parser's complaint, printable."""
    lines = printable(str(problem)).strip().splitlines()
    return lines[0] if lines else ""


def _stamp(fields: Any) -> datetime | None:
    """feedparser's UTC reading of a stamp we could not read: any nine numbers, not a date."""
    try:
        return dates.plausible(datetime(*fields[:6]).replace(tzinfo=UTC)) if fields else None
    except (TypeError, ValueError, OverflowError):
        return None


def _draft(
    title: str,
    lines: list[str],
    author: str | None,
    published: datetime | None,
    source: DateSource | None,
    categories: list[str],
) -> Draft | None:
    """The draft of extracted text; ``None`` when no title or no paragraph of it is left."""
    paragraphs, dateline = clean.polish(title, lines)
    if not title or not paragraphs:
        return None
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
    """Printable text of an HTML fragment, one line per block element."""
    from lxml import etree
    from lxml import html as lxml_html

    markup = _printable_markup(markup)
    if "<" not in markup:
        return _lines(printable(html.unescape(markup)))
    try:
        root = lxml_html.fragment_fromstring(markup, create_parent="div")
    except (etree.ParserError, ValueError):
        return []
    # Walked, not edited: lxml checks every string it is handed, and refuses text its own
    # parser produced (a reference this scrub missed); reading never fails that way.
    pieces: list[str] = []
    for event, node in etree.iterwalk(root, events=("start", "end", "comment", "pi")):
        if event == "start":
            pieces.append("\n" if node.tag in _BLOCK_TAGS else "")
            pieces.append(node.text or "")
            continue
        if event == "end" and (node.tag == "br" or node.tag in _BLOCK_TAGS):
            pieces.append("\n")
        if node is not root:  # a comment's or PI's own text is not read, its tail is
            pieces.append(node.tail or "")
    return _lines(printable("".join(pieces)))


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]
