"""Readers: bytes of a source file → text, or → drafts for HTML pages and for feeds (RSS,
Atom, RDF, JSON Feed), these entry by entry.

Which reader a file gets is decided here too (``kind_of``: its suffix, else ``sniff`` of its
first bytes, which also tells a folder scan which unknown files are sources);
``ingest.read_paths`` hands the bytes to the reader of that kind.
"""

from __future__ import annotations

import codecs
import html
import json
import re
import textwrap
import warnings
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, Literal

from digest import clean, dates, language, lines, pagemeta, segment
from digest.errors import IngestError
from digest.models import DateSource, Draft, Evidence
from digest.summarize import lead_summary

Kind = Literal["text", "html", "feed"]
TEXT_SUFFIXES = frozenset({".txt", ".text"})
HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})
FEED_SUFFIXES = frozenset({".xml", ".rss", ".atom", ".feed", ".rdf"})
# What a folder scan reads by its name; any other file is read when ``sniff`` knows it.
SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | FEED_SUFFIXES
SNIFF_BYTES = 4096  # bytes looked at to tell a page or a feed from anything else
# What may stand before the root element: an XML declaration, comments, a stylesheet PI,
# a doctype that is not HTML's (RSS 0.91's), and white space.
_PROLOGUE = re.compile(r"\A(?:\s+|<\?.*?\?>|<!--.*?-->|<!doctype\s+(?!html)[^>]*>)*", re.S | re.I)
_DECLARED = re.compile(rb"""\s*<\?xml[^>]*?encoding\s*=\s*["'](?P<codec>[A-Za-z0-9._:-]+)""")
_JSON_FEED = re.compile(r'"https?://jsonfeed\.org/version/')  # a JSON Feed's "version"

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_WESTERN = "cp1252"
# Elements that make a paragraph of their own in feed content.
# fmt: off
_BLOCK_TAGS = frozenset({
    "p", "div", "li", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "tr",
    "pre", "ul", "ol", "dl", "table", "caption", "hr", "address", "article", "section",
    "aside", "header", "footer", "nav", "main", "figure", "figcaption", "details",
    "summary", "center", "form", "fieldset",
})
# fmt: on
_CELL_TAGS = frozenset(("td", "th"))  # a space between cells of one row
_HIDDEN_TAGS = frozenset(("script", "style", "template", "noscript", "head", "title"))
_BREAK = "\n\n"  # a paragraph break, as in plain text
_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n\s*")  # a blank line, maybe with spaces on it
_SOURCE_SPACE = re.compile(r"\s+")
_TAG = re.compile(r"</?[A-Za-z][^<>]*>")
_UNESCAPE_ROUNDS = 3  # "&amp;amp;lt;": feeds escape their titles twice, rarely more
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")  # an absolute URL (http:, https:, mailto: …)
# At most this share of the letters of a Western European text are not ASCII (French and
# Portuguese have the most, about one in ten); a Cyrillic or Greek code page read as
# windows-1252 gives nearly all.
WESTERN_NON_ASCII = 0.3
# Windows-1252 letters of Cyrillic or Greek bytes are nearly all non-ASCII; a short Western
# text ("déjà", "brûlée") has up to half.
PLAINLY_WESTERN_NON_ASCII = 0.6
# A non-ASCII character that is no letter, with a letter on either side of it: "³" in "b³ad".
_IN_WORD_SYMBOL = re.compile(
    r"(?<=[^\W\d_])[^\x00-\x7f\w’‘“”–—…•€™]|[^\x00-\x7f\w’‘“”–—…•€™](?=[^\W\d_])"
)
_MARKUP_BYTES = re.compile(rb"<[^<>]*>|&#?\w+;")  # tags and references: no letters of the text
ENTRY_TITLE_CHARS = 100  # an untitled entry's title: its first sentence, cut to this length
# A paragraph in this many different stories of one feed, and this share of them, is the
# feed's furniture (a sign-off each entry carries), not an entry's text. Measured on the 31
# real feeds of feeds-dev: what stands in >= 20% is a sign-off, a "Continue reading...", a
# promotion or a series' standard opening; below that, subheads two posts share.
FEED_CHROME_MIN_ENTRIES = 3
FEED_CHROME_SHARE = 0.2
# Control characters (but tab, LF and CR), lone surrogates and the two noncharacters XML
# forbids: lxml refuses them, PostgreSQL refuses NUL, and no reader can see them.
_UNPRINTABLE = re.compile("[\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]")
# The ASCII characters ``printable`` keeps as they are: printable ones, tab and line breaks.
_ASCII_FINE = bytes(range(0x20, 0x7F)) + b"\t\n\r"
# The controls str.splitlines breaks lines at: they go, the line break they made stays.
_LINE_BREAKING = re.compile("[\x0b\x0c\x1c-\x1e\x85]")
# A numeric character reference, which an HTML parser would turn into any of the above.
_CHAR_REF = re.compile(r"&#(?:[xX]0*(?P<hex>[0-9a-fA-F]{1,8})|0*(?P<dec>[0-9]{1,10}));?")

# The block elements of trafilatura's XML body: a node holding one is a container.
_XML_BLOCKS = frozenset(("p", "head", "list", "item", "quote", "table", "div"))
OPENING_LOOK = 4  # the extracted text's first paragraph of prose is looked for this far down
OPENING_MAX = 3  # paragraphs of the page put back before it, at most
_PARAGRAPH_END = (".", "!", "?", "…", "。", "！", "？", '."', ".”", "!”", "?”")
TABLE_PROSE_WORDS = 20  # a table cell this long is a paragraph: the table is the page's layout
_BREAK_PAIR = re.compile(r"(<br\s*/?>)(?=<br[\s/>])", re.I)  # <br><br>: a paragraph break

Found = tuple[Draft, str | None, str | None]  # the draft, its URL, its source name
Entry = Mapping[str, Any]  # one entry of a feed, as feedparser gives it (JSON Feed's too)


def kind_of(suffix: str, data: bytes) -> Kind:
    """Which reader a file's bytes need: by its suffix, else by how the bytes begin (a file
    named on the command line with no known suffix and no markup is read as text)."""
    suffix = suffix.lower()
    if suffix in HTML_SUFFIXES:
        return "html"
    if suffix in FEED_SUFFIXES:
        return "feed"
    if suffix in TEXT_SUFFIXES:
        return "text"
    return sniff(data) or "text"


def sniff(data: bytes) -> Kind | None:
    """ "feed" (RSS, Atom, RDF or JSON Feed) or "html" by how the bytes begin; else None.

    This is how a folder scan tells a feed saved without a suffix (wget's ``feeds/main``)
    from a file that is no source at all.
    """
    head = _head_text(data[:SNIFF_BYTES])
    if head.startswith("{"):
        return "feed" if _JSON_FEED.search(head) else None
    head = _PROLOGUE.sub("", head).lower()
    if head.startswith(("<!doctype html", "<html", "<head", "<body")):
        return "html"
    if head.startswith(("<rss", "<feed", "<rdf:rdf", "<rdf ", "<channel")):
        return "feed"
    return None


def _head_text(head: bytes) -> str:
    """The first bytes as text enough to see markup: UTF-16/32 by their BOM, else ASCII."""
    for bom, codec in _BOMS:
        if head.startswith(bom):
            return head.decode(codec, "ignore").lstrip("\ufeff \t\r\n")
    return head.decode("latin-1").lstrip(" \t\r\n")


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
    if text.isascii() and not text.encode().translate(None, _ASCII_FINE):
        return text  # most text: one pass in C finds no control in it
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
    if _plainly_western(data):  # before the guesser, which may take it for a rarer code page
        return data.decode(_WESTERN)
    import charset_normalizer  # deferred: only legacy encodings need it

    matches = list(charset_normalizer.from_bytes(data))
    if not matches:
        raise IngestError(
            "cannot decode text: not UTF-8, and no other encoding fits; save it as UTF-8"
        )
    best = matches[0]
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

    # trafilatura keeps both of two line breaks in a row only with a space between them.
    markup = _BREAK_PAIR.sub(r"\1\n", _printable_markup(decode(data)))
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
    lines = _with_opening(lines, page)
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
    paragraphs, dateline = clean.polish(title, lines)
    if not title or not paragraphs:
        raise IngestError("no article found: no title, or no text under it")
    draft = _draft(
        title,
        paragraphs,
        dateline,
        author=author,
        published=published,
        source=source,
        categories=categories,
        lang=page.language or None,
    )
    return draft, _text(meta, "url") or None, sitename or None


def _with_opening(lines: list[str], page: pagemeta.PageMeta) -> list[str]:
    """The text with the story's opening paragraphs the extractor left out put back.

    An extractor may start a story at its second or third paragraph. When the page prints,
    as siblings right before the extracted text's first paragraph of prose, paragraphs of
    prose that the text lacks (a sentence's length, a sentence's end, not furniture), those
    are its opening and go back in before it; a paragraph of links among them stays out.
    """
    for number, line in enumerate(lines[:OPENING_LOOK]):
        if len(line.split()) < clean.STORY_START_WORDS:
            continue
        missed: list[str] = []
        for text in reversed(pagemeta.opening(page.runs, line)):
            if not text:
                continue  # a line of links between them ("Watch: …"): not put back
            if len(missed) >= OPENING_MAX or not _opening_prose(text, lines, page):
                break
            missed.insert(0, text)
        return [*lines[:number], *missed, *lines[number:]]
    return lines


def _opening_prose(text: str, lines: Sequence[str], page: pagemeta.PageMeta) -> bool:
    return (
        len(text.split()) >= clean.STORY_START_WORDS
        and text.endswith(_PARAGRAPH_END)
        and not text[0].islower()
        and text not in lines
        and not pagemeta.is_furniture_line(text, page.furniture)
    )


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
    """A block's text, spaces single; parted at two line breaks in a row (``<br><br>``),
    and at one after a sentence's end.

    trafilatura often prints one ``<lb/>`` for a ``<br>`` and for ``<br><br>`` alike: a
    break after a full stop parts paragraphs, one mid-sentence (an address, a wrapped line)
    is a space; where it keeps both, a heading above its text stands apart.
    """
    from lxml import etree

    parts: list[str] = []
    pieces: list[str] = []
    since_break: int | None = None  # where the text after the last line break starts
    for event, child in etree.iterwalk(node, events=("start", "end")):
        if event == "start":
            if child.tag == "lb":
                text = "".join(pieces)
                doubled = since_break is not None and not "".join(pieces[since_break:]).strip()
                if doubled or text.rstrip().endswith(_PARAGRAPH_END):
                    parts.append(text)
                    pieces = []
                since_break = len(pieces) + 1
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


FEED_TYPES = frozenset(("application/rss+xml", "application/atom+xml", "application/feed+json"))
# A feed of part of a site (its comments, one section, tag or author), not its main one.
_PART_FEED = re.compile(
    r"comment|/(?:category|categories|tag|tags|topic|topics|author|authors|section)/", re.I
)


@dataclass(frozen=True, slots=True)
class FeedLink:
    """A feed a web page names in ``<link rel="alternate" type="…">``."""

    url: str  # absolute
    title: str
    type: str


def feed_links(data: bytes, base: str) -> list[FeedLink]:
    """The feeds an HTML page names (RSS, Atom, JSON Feed), the site's main feed first: one
    on the page's own host before another's, one of the whole site before one of its
    comments, a section, a tag or an author, then the shorter address; else in page order."""
    from urllib.parse import urljoin, urlsplit

    from lxml import etree
    from lxml import html as lxml_html

    try:
        root = lxml_html.fromstring(decode(data).encode("utf-8", "replace"),
                                    parser=lxml_html.HTMLParser(encoding="utf-8"))  # fmt: skip
    except (etree.ParserError, ValueError, UnicodeError):
        return []
    found: dict[str, FeedLink] = {}
    for link in root.iter("link"):
        rel = (link.get("rel") or "").lower().split()
        kind = (link.get("type") or "").strip().lower().partition(";")[0]
        href = (link.get("href") or "").strip()
        if "alternate" not in rel or kind not in FEED_TYPES or not href:
            continue
        url = urljoin(base, href)
        if _absolute(url) and url not in found:
            found[url] = FeedLink(url, " ".join((link.get("title") or "").split()), kind)
    host = (urlsplit(base).hostname or "").lower().removeprefix("www.")

    def rank(item: tuple[int, FeedLink]) -> tuple[bool, bool, int, int]:
        number, feed = item
        parts = urlsplit(feed.url)
        other = (parts.hostname or "").lower().removeprefix("www.") != host
        part = bool(_PART_FEED.search(feed.url) or _PART_FEED.search(feed.title))
        return other, part, len(parts.path) + len(parts.query), number

    return [feed for _, feed in sorted(enumerate(found.values()), key=rank)]


def read_feed(data: bytes) -> tuple[str | None, list[Entry]]:
    """The site name and the entries of an RSS, Atom, RDF or JSON feed, each read by
    ``read_entry``; every entry's link is absolute (resolved against ``xml:base``, then the
    feed's own link) or absent."""
    if _head_text(data[:SNIFF_BYTES]).startswith("{"):
        return _json_feed(data)
    import feedparser

    try:
        # From the bytes: feedparser honours the encoding the feed declares.
        parsed = feedparser.parse(_utf8_declared(data))
    except ValueError as exc:  # its loose parser re-encodes a reference to a surrogate (&#xD800;)
        raise IngestError(
            f"cannot parse the feed: {_first_line(exc)}; check it with a feed validator"
        ) from exc
    broken = parsed.get("bozo") and not any(map(_has_text, parsed.entries))
    if not parsed.entries or broken:  # a truncated file: its one "entry" is the parser's guess
        problem = _first_line(parsed.get("bozo_exception") or "")
        detail = f": {problem}" if problem else ""
        raise IngestError(f"not an RSS or Atom feed with entries{detail}")
    feed = parsed.feed
    links = [_text(link, "href") for link in feed.get("links") or []]
    base = next((u for u in (_text(feed, "link"), *links) if _absolute(u)), "")
    for entry in parsed.entries:
        entry["link"] = _resolved(base, _text(entry, "link"))
        entry["feed_language"] = feed.get("language")  # feedparser gives it the feed only
    return _plain(_text(feed, "title")) or None, list(parsed.entries)


def _has_text(entry: Entry) -> bool:
    return bool(_text(entry, "title") or _text(entry, "summary") or entry.get("content"))


def _utf8_declared(data: bytes) -> bytes:
    """The feed's bytes as feedparser should read them: as their XML declaration says, but
    when that is wrong or missing.

    A declaration of a legacy encoding over bytes that are UTF-8 (a CMS's stale template)
    would give mojibake: legacy text is almost never valid UTF-8 once it has a non-ASCII
    letter, so such a feed is read as UTF-8. A feed that declares no encoding and is not
    UTF-8 (which XML would then assume) is windows-1252, as feedparser (and browsers) take
    it, while its letters read that way are mostly ASCII, as in every Western European
    language; else (Cyrillic, Greek … in a code page) it is decoded as ``decode`` guesses.
    """
    declared = _DECLARED.match(data)
    if declared is not None and declared["codec"].lower().startswith((b"utf", b"ucs")):
        return data
    if data.startswith(tuple(bom for bom, _ in _BOMS)):
        return data
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        if declared is not None or _western(data):
            return data
        try:
            return decode(data).encode("utf-8")
        except IngestError:
            return data  # feedparser says what is wrong with it
    if declared is None or text.isascii():
        return data
    return data[: declared.start("codec")] + b"utf-8" + data[declared.end("codec") :]


def _plainly_western(data: bytes) -> bool:
    """Bytes that windows-1252 reads as Western European text: every byte defined, letters
    mostly ASCII (``PLAINLY_WESTERN_NON_ASCII``), and every other character next to a
    letter a letter too.
    Central European code pages fit windows-1252's bytes as well, but their letters come out
    as symbols inside words ("³" for "ł", "¹" for "ą"); Cyrillic and Greek as mostly
    non-ASCII letters. Where windows-1252 fits so plainly, it wins over any rarer code page a
    guesser may rank first (mac_latin2's "cafť")."""
    try:
        text = _MARKUP_BYTES.sub(b" ", data).decode(_WESTERN)
    except UnicodeDecodeError:
        return False
    letters = [c for c in text if c.isalpha()]
    foreign = sum(1 for c in letters if not c.isascii())
    if foreign > PLAINLY_WESTERN_NON_ASCII * len(letters):
        return False
    return _IN_WORD_SYMBOL.search(text) is None


def _western(data: bytes) -> bool:
    """Bytes that read as windows-1252 text whose letters (markup's aside) are mostly ASCII."""
    try:
        letters = [c for c in _MARKUP_BYTES.sub(b" ", data).decode(_WESTERN) if c.isalpha()]
    except UnicodeDecodeError:
        return False
    return sum(1 for c in letters if not c.isascii()) <= WESTERN_NON_ASCII * len(letters)


def _json_feed(data: bytes) -> tuple[str | None, list[Entry]]:
    """A JSON Feed (1.0 or 1.1) as the entries feedparser would give for it."""
    try:
        feed = json.loads(decode(data))
    except (ValueError, RecursionError) as exc:
        raise IngestError(f"cannot parse the JSON feed: {_first_line(exc)}") from exc
    items = feed.get("items") if isinstance(feed, dict) else None
    if not isinstance(items, list) or not items:
        raise IngestError('not a JSON Feed with entries: no "items" list')
    base = next((u for u in (_text(feed, "home_page_url"), _text(feed, "feed_url")) if u), "")
    feed_language = _text(feed, "language") or None  # JSON Feed 1.1's, as RSS's <language>
    return _plain(_text(feed, "title")) or None, [
        _json_entry(item, base, feed_language) for item in items if isinstance(item, dict)
    ]


def _json_entry(item: Mapping[str, Any], base: str, feed_language: str | None) -> Entry:
    authors = [item.get("author"), *_list(item, "authors")]  # 1.0 has one, 1.1 a list
    content = [
        {"type": kind, "value": _text(item, key)}
        for key, kind in (("content_html", "text/html"), ("content_text", "text/plain"))
        if _text(item, key)
    ]
    return {
        "title": _text(item, "title"),
        "link": _resolved(base, _text(item, "url") or _text(item, "external_url")),
        "content": content,
        "summary": _text(item, "summary"),
        "summary_detail": {"type": "text/plain"},
        "published": _text(item, "date_published") or _text(item, "date_modified"),
        "author": next((_text(a, "name") for a in authors if _text(a, "name")), ""),
        "tags": [{"term": printable(t)} for t in _list(item, "tags") if isinstance(t, str)],
        "language": _text(item, "language") or None,
        "feed_language": feed_language,
    }


def _list(fields: Mapping[str, Any], key: str) -> list[Any]:
    value = fields.get(key)
    return value if isinstance(value, list) else []


def _absolute(url: str) -> bool:
    return bool(_SCHEME.match(url))


def _resolved(base: str, link: str) -> str:
    """``link`` made absolute against ``base``; "" when it cannot be."""
    link = link.strip()
    if not link or _absolute(link):
        return link
    from urllib.parse import urljoin

    joined = urljoin(base, link) if base else ""
    return joined if _absolute(joined) else ""


def entry_text(entry: Entry) -> list[str]:
    """The paragraphs of an entry's richest text: every ``content`` (content:encoded
    among them) and the summary, whichever holds the most text once markup is gone."""
    summary = entry.get("summary_detail")
    candidates = [
        (_text(detail, "type"), _text(detail, "value"))
        for detail in entry.get("content") or []
        if isinstance(detail, Mapping)
    ]
    candidates.append((_text(summary, "type"), _text(entry, "summary")))
    best: list[str] = []
    for kind, value in candidates:
        paragraphs = _text_paragraphs(value) if kind == "text/plain" else _html_lines(value)
        if sum(map(len, paragraphs)) > sum(map(len, best)):
            best = paragraphs
    return best


def entry_title(entry: Entry) -> str:
    """An entry's own title as text ("" when it has none)."""
    return _plain(_text(entry, "title"))


def feed_chrome(
    texts: Sequence[Sequence[str]], evidence: Evidence | None = None
) -> tuple[frozenset[int], Evidence]:
    """Keys of the paragraphs that stand in many different stories of one feed (a sign-off
    every episode carries): the feed's furniture, as ``clean`` finds a site's across pages;
    and what these entries add to the feed's evidence (``evidence``: what earlier reads of
    the same feed saw, so a feed that lists only its latest few entries learns its sign-off
    over days).

    Copies of one story (an entry listed twice, an update) share their long paragraphs, so
    entries are first grouped into stories as the cleaner groups posts, and an entry read
    before (its fingerprint in ``evidence``) adds nothing; only repetition across different
    stories counts.
    """
    evidence = evidence or Evidence()
    entries = list({tuple(segment.key(p) for p in text): text for text in texts}.items())
    long_keys = [
        [
            k
            for k, p in zip(keys, text, strict=True)
            if lines.word_count(p) >= clean.STORY_LINE_WORDS
        ]
        for keys, text in entries
    ]
    prints = [segment.stable_key(" ".join(map(str, keys))) for keys, _ in entries]
    stories: defaultdict[int, set[int]] = defaultdict(set)
    seen: set[int] = set()
    for story, (paragraph_keys, _), mark in zip(
        clean.story_of(long_keys), entries, prints, strict=True
    ):
        stories[story].update(paragraph_keys)
        if mark in evidence.posts:
            seen.add(story)
    more = Counter(key for story, keys in stories.items() if story not in seen for key in keys)
    present: set[int] = set().union(*stories.values())
    counts = {key: evidence.lines.get(key, 0) + more[key] for key in present}
    earlier = len(evidence.posts - set(prints))  # stories read before, not in this read
    need = max(FEED_CHROME_MIN_ENTRIES, FEED_CHROME_SHARE * (len(stories) + earlier))
    chrome = frozenset(key for key, count in counts.items() if count >= need)
    return chrome, Evidence(dict(more), frozenset(prints))


def read_entry(
    entry: Entry,
    site: str | None,
    default_tz: tzinfo,
    *,
    text: Sequence[str] | None = None,
    chrome: frozenset[int] = frozenset(),
) -> Found | None:
    """One feed entry as an article; ``None`` when it has neither a title nor text.

    ``text`` is its ``entry_text`` when already read; paragraphs whose key is in ``chrome``
    (``feed_chrome``) go, unless nothing would be left. An untitled entry is titled by its
    first sentence; one with a title and no text keeps the title as its text, as a feed
    reader shows it.
    """
    found = list(entry_text(entry) if text is None else text)
    found = [p for p in found if segment.key(p) not in chrome] or found
    title = entry_title(entry)
    paragraphs, dateline = clean.polish(title, found)
    if not paragraphs:  # all furniture to the page cleaner: the publisher's text stands
        title_key = segment.key(title)
        paragraphs = tuple(p for p in found if segment.key(p) != title_key) or tuple(found)
    if not title:
        if not paragraphs:
            return None
        # The first sentence of its story (past a dateline or a date line), else of its text.
        title = lead_summary(paragraphs, max_sentences=1, max_chars=ENTRY_TITLE_CHARS)
        if not title:
            title = textwrap.shorten(paragraphs[0], ENTRY_TITLE_CHARS, placeholder="…")
            title = paragraphs[0][:ENTRY_TITLE_CHARS] if title == "…" else title
    if not paragraphs:
        paragraphs = (title,)
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
    draft = _draft(
        title,
        paragraphs,
        dateline,
        author=_plain(_text(entry, "author")),
        published=published,
        source=source,
        categories=categories,
        lang=language.declared_in_entry(entry),
    )
    return draft, _text(entry, "link") or None, site


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
    paragraphs: tuple[str, ...],
    dateline: str | None,
    *,
    author: str | None,
    published: datetime | None,
    source: DateSource | None,
    categories: list[str],
    lang: str | None,
) -> Draft:
    """A page's or an entry's draft: the author stripped, the date's source only with a
    date, the categories as tags."""
    return Draft(
        title=title,
        paragraphs=paragraphs,
        author=(author or "").strip() or None,
        published=published,
        date_source=source if published else None,
        dateline=dateline,
        categories=tuple(clean.tag_slug(c) for c in categories if clean.tag_slug(c)),
        lang=lang,
    )


def _date(
    value: str | None, default_tz: tzinfo, source: DateSource
) -> tuple[datetime | None, DateSource | None]:
    if not value:
        return None, None
    found = dates.find_date(value, default_tz)
    return (found[0], source) if found else (None, None)


def _html_lines(markup: str) -> list[str]:
    """Paragraphs of an HTML fragment, by its structure: one per block element, and where
    two or more ``<br>`` stand in a row; a single ``<br>`` and the source's own line breaks
    are spaces. Text with no block element or ``<br>`` at all (plain text, or text with a
    link or two in it) is paragraphed as plain text is: by its blank lines."""
    from lxml import etree
    from lxml import html as lxml_html

    markup = _printable_markup(markup)
    if "<" not in markup:
        return _text_paragraphs(printable(html.unescape(markup)))
    try:
        root = lxml_html.fragment_fromstring(markup, create_parent="div")
    except (etree.ParserError, ValueError):
        return []
    # Walked, not edited: lxml checks every string it is handed, and refuses text its own
    # parser produced (a reference this scrub missed); reading never fails that way.
    pieces: list[str] = []
    hidden = 0  # inside a script, a style …: not read
    # Inside a <pre>, or in a fragment with no structure: the source's line breaks are kept.
    pre = 0 if any(_structure(node) for node in root.iterdescendants()) else 1
    for event, node in etree.iterwalk(root, events=("start", "end", "comment", "pi")):
        tag = node.tag if isinstance(node.tag, str) else ""
        if event == "start":
            hidden += tag in _HIDDEN_TAGS
            pre += tag == "pre"
            if not hidden:
                pieces.append(_BREAK if tag in _BLOCK_TAGS else " " if tag in _CELL_TAGS else "")
                pieces.append(_spaced(node.text, pre))
            continue
        if event == "end":
            if not hidden:
                pieces.append(_BREAK if tag in _BLOCK_TAGS else "\n" if tag == "br" else "")
            hidden -= tag in _HIDDEN_TAGS
            pre -= tag == "pre"
        if node is not root and not hidden:  # a comment's or PI's own text is not read
            pieces.append(_spaced(node.tail, pre))
    return _text_paragraphs(printable("".join(pieces)))


def _structure(node: Any) -> bool:
    """An element that makes paragraphs: a block, or a line break."""
    return isinstance(node.tag, str) and (node.tag in _BLOCK_TAGS or node.tag == "br")


def _spaced(text: str | None, pre: int) -> str:
    """Source text inside a block: its line breaks are spaces (but in a ``<pre>``)."""
    if not text:
        return ""
    return text if pre else _SOURCE_SPACE.sub(" ", text)


def _text_paragraphs(text: str) -> list[str]:
    """Paragraphs of plain text: blank lines separate them, a single line break is a space."""
    paragraphs = (" ".join(p.split()) for p in _PARAGRAPH_BREAK.split(text))
    return [p for p in paragraphs if p]


def _plain(text: str) -> str:
    """A title or name as text: entities decoded (twice-escaped ones too), markup removed,
    white space collapsed."""
    for _ in range(_UNESCAPE_ROUNDS):
        before = text
        if "&" in text:
            text = html.unescape(text)
        if _TAG.search(text):
            text = " ".join(_html_lines(text))
        if text == before:
            break
    return " ".join(printable(text).split())


def _lines(text: str) -> list[str]:
    """The non-blank lines of ``text``, stripped (a code block keeps its lines)."""
    return [line.strip() for line in text.splitlines() if line.strip()]
