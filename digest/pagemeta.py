"""What a web page says about its article in its own structured data, and its furniture.

Read from the parsed page before the text extractor sees it: JSON-LD (an ``Article``,
``NewsArticle``, ``BlogPosting`` …, also inside ``@graph`` and lists), then the
``article:*``/OpenGraph/``<meta name>`` tags. The reader (``readers.read_html``) takes these
first and the extractor's guesses after them. Also here: the texts the page marks as
furniture by its structure (figure captions and credits, embedded posts), which the
extractor keeps as paragraphs, and the tidying of what metadata says (a title's site-name
suffix, "By …"/"View all posts by …" around an author, a keywords line as tags).
Pure: a parsed tree or strings in, values out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from digest import dates, language, lines, segment

# ---------------------------------------------------------------- thresholds

KEYWORD_MAX_CHARS = 50  # a tag from a keywords meta is cut (at a word) to this length
KEYWORD_MAX_WORDS = 6  # a "keyword" with more words is a sentence: dropped
MAX_KEYWORDS = 20  # keywords kept from one page (the first ones: pages list the main first)
AUTHOR_MAX_CHARS = 120  # a longer "author" is a bio or a paragraph: cut to its first name
CAPTION_MAX_WORDS = 80  # a figure's text longer than this is content, not a caption
TITLE_MIN_WORDS = 2  # a title cut of its site name keeps at least this many words …
TITLE_MIN_CHARS = 12  # … or this many characters
JSONLD_MAX_CHARS = 200_000  # a JSON-LD block longer than this is not read
LINKED_SHARE = 0.5  # a paragraph with more of its text in links than this is a teaser

# ---------------------------------------------------------------- vocabulary

# The schema.org types of an article (any type ending in "Article" counts too).
_ARTICLE_TYPES = frozenset(
    {"article", "blogposting", "liveblogposting", "report", "posting", "socialmediaposting"}
)
# What a site wraps around an author's name, in many a CMS's template.
_AUTHOR_LEAD = re.compile(
    r"^(?:(?:view|see|read|more|show) (?:all |the )?(?:posts|articles|stories) (?:by|from)|"
    r"(?:posted|written|words|story|reporting|text|report) by|by|von|par|por|di|door|"
    r"autor(?:in)?|author|auteur|redakteur(?:in)?)\b[\s:]*",
    re.I,
)
# Between a name and an organisation or a role: "Jane Doe; Site", "Jane Doe, Reporter".
_AUTHOR_SPLIT = re.compile(r"\s*(?:[;|•·/,]|\s[-–—]\s)\s*")
_URLISH = re.compile(r"(?i)^(?:https?:|www\.)|\.(?:com|org|net|html?)\b|/")
_KEYWORD_SPLIT = re.compile(r"\s*[,;|、，；]\s*")
_JUNK_KEYWORD = re.compile(r"(?i)^(?:null|none|undefined|n/?a|\W+|\d[\d\W]*)$")
# Separators between a title and its site name or date: "Title | Site", "Site - Title".
_TITLE_SEPARATOR = re.compile(r"\s+(?:[|·•»«:~/]|[-–—]{1,2}|::)\s+")
# An embedded post's credit line: "— Jane Doe (@jane) March 3, 2019".
TWEET_CREDIT = re.compile(r"[-–—]\s*[^()\n]{0,60}\(@\w{1,30}\)\s*\w{3,9}\.? \d{1,2},? \d{4}\s*$")
# Class or id words of the elements that hold a caption, a credit or an embedded post.
_FURNITURE_CLASS = re.compile(
    r"(?i)(?:^|[\s_-])(?:caption|credit|figcaption|wp-caption-text|photo-?credit|"
    r"image-?credit|twitter-tweet|instagram-media|tiktok-embed)(?:$|[\s_-])"
)


@dataclass(frozen=True, slots=True)
class PageMeta:
    """The article's metadata as the page states it; empty fields where it does not."""

    title: str = ""
    published: str = ""  # as printed: "2012-08-09T17:00:00Z"
    authors: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    site_name: str = ""
    language: str = ""
    furniture: frozenset[int] = frozenset()  # segment.key of captions, credits, embeds
    # The page's <p> paragraphs as runs of siblings, in page order, each as its text
    # (spaces single), or "" for one that is mostly links; empty ones left out.
    runs: tuple[tuple[str, ...], ...] = ()


def read(root: Any) -> PageMeta:
    """The metadata of a parsed page (an lxml HTML tree): JSON-LD first, then meta tags."""
    article, publisher = _jsonld(root)
    meta = _meta_tags(root)
    keywords = _strings(article.get("keywords")) or meta.get("keywords", [])
    keywords += meta.get("news_keywords", []) if not keywords else []
    return PageMeta(
        title=_first(_strings(article.get("headline")), meta.get("og:title")),
        published=_first(
            _strings(article.get("datePublished")),
            meta.get("article:published_time"),
            meta.get("og:published_time"),
            meta.get("datepublished"),
            meta.get("pubdate"),
            meta.get("publishdate"),
            meta.get("date"),
            meta.get("dc.date.issued"),
            meta.get("dc.date"),
        ),
        authors=tuple(_author_names(article.get("author")))
        or tuple(meta.get("author", [])[:1] or meta.get("article:author", [])[:1]),
        keywords=tuple(keywords),
        site_name=_first(
            meta.get("og:site_name"), _strings(publisher), meta.get("application-name")
        ),
        language=language.declared_in_page(root) or "",
        furniture=frozenset(_furniture_keys(root)),
        runs=tuple(_paragraph_runs(root)),
    )


def opening(runs: Iterable[Sequence[str]], first: str) -> list[str]:
    """The page's paragraphs right before the one that is ``first`` among its siblings,
    nearest last: where the extractor started a story past its opening paragraphs."""
    for run in runs:
        if first in run:
            return list(run[: run.index(first)])
    return []


# ---------------------------------------------------------------- tidying


def title(raw: str, site_names: Iterable[str]) -> str:
    """The title without a separated part that is the site's name or a date.

    "Flood warning | DW | 19.01.2020" → "Flood warning"; "Site - Title" → "Title". A part is
    cut only from either end, and only when what is left is still a title.
    """
    parts = _TITLE_SEPARATOR.split(raw.strip())
    if len(parts) < 2:
        return raw.strip()
    names = {_squash(n) for name in site_names for n in (name, host_name(name)) if _squash(n)}
    kept = list(parts)
    while len(kept) > 1 and _site_or_date(kept[-1], names):
        kept.pop()
    while len(kept) > 1 and _site_or_date(kept[0], names):
        kept.pop(0)
    if len(kept) == len(parts):
        return raw.strip()
    left = _rejoin(raw, kept)
    return left if _real_title(left) else raw.strip()


def author(raw: str) -> str | None:
    """A name only: "View all posts by Jane Doe" → "Jane Doe", "Jane Doe; Site" → "Jane Doe",
    "By Jane Doe and John Roe" → "Jane Doe and John Roe"; ``None`` when no name is in it."""
    text = " ".join(raw.split())[:AUTHOR_MAX_CHARS]
    names = []
    for part in _AUTHOR_SPLIT.split(text):
        part = _AUTHOR_LEAD.sub("", part.strip(" ,.:")).strip(" ,.:")
        if not part or _URLISH.search(part) or "@" in part:
            continue
        if lines.name_like(part, lines.AUTHOR_PARTICLES, any_case=True) or _script_name(part):
            names.append(part)
            break  # the first name; what follows is an organisation or a role
    return names[0] if names else None


def authors(raws: Iterable[str]) -> str | None:
    """Several authors as one byline: "Jane Doe and John Roe", "A, B and C"."""
    names = list(dict.fromkeys(name for raw in raws if (name := author(raw))))
    if len(names) <= 1:
        return names[0] if names else None
    return ", ".join(names[:-1]) + " and " + names[-1]


def keywords(raws: Iterable[str]) -> list[str]:
    """A keywords meta as tags: split at commas and semicolons, junk dropped, each capped."""
    tags: list[str] = []
    for raw in raws:
        for piece in _KEYWORD_SPLIT.split(raw):
            tag = " ".join(piece.split()).strip(" \"'#")
            if not tag or _JUNK_KEYWORD.match(tag) or _URLISH.search(tag):
                continue
            if len(tag.split()) > KEYWORD_MAX_WORDS:
                continue
            if len(tag) > KEYWORD_MAX_CHARS:  # cut at a word; one endless "word" is junk
                if " " not in tag[: KEYWORD_MAX_CHARS + 1]:
                    continue
                tag = tag[: KEYWORD_MAX_CHARS + 1].rsplit(" ", 1)[0]
            if tag.casefold() not in (t.casefold() for t in tags):
                tags.append(tag)
            if len(tags) >= MAX_KEYWORDS:
                return tags
    return tags


def is_furniture_line(text: str, furniture: frozenset[int]) -> bool:
    """A line of extracted text that the page marked as a caption, a credit or an embed."""
    return segment.key(text) in furniture or bool(TWEET_CREDIT.search(text))


# ---------------------------------------------------------------- reading the tree


def _jsonld(root: Any) -> tuple[dict[str, Any], Any]:
    """The first article object of the page's JSON-LD, and its publisher's name."""
    for script in root.iterfind(".//script[@type]"):
        if "ld+json" not in (script.get("type") or "").lower():
            continue
        text = script.text or ""
        if len(text) > JSONLD_MAX_CHARS:
            continue
        try:
            data = json.loads(text.strip().rstrip(";"))
        except ValueError:
            continue
        for item in _objects(data):
            if _is_article(item):
                publisher = item.get("publisher")
                name = publisher.get("name") if isinstance(publisher, dict) else None
                return item, name
    return {}, None


def _objects(data: Any, depth: int = 0) -> Iterator[dict[str, Any]]:
    """Every object of a JSON-LD document: lists, ``@graph`` and ``mainEntity`` walked."""
    if depth > 4:
        return
    if isinstance(data, list):
        for item in data:
            yield from _objects(item, depth + 1)
    elif isinstance(data, dict):
        yield data
        for key in ("@graph", "mainEntity", "mainEntityOfPage"):
            if isinstance(data.get(key), (list, dict)):
                yield from _objects(data[key], depth + 1)


def _is_article(item: dict[str, Any]) -> bool:
    types = item.get("@type")
    names = [types] if isinstance(types, str) else types if isinstance(types, list) else []
    return any(
        isinstance(t, str) and (t.lower() in _ARTICLE_TYPES or t.lower().endswith("article"))
        for t in names
    )


def _author_names(value: Any) -> list[str]:
    names: list[str] = []
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, dict):
            names.extend(_strings(item.get("name")))
        elif isinstance(item, str):
            names.append(item)
    return [n for n in (" ".join(name.split()) for name in names) if n]


def _strings(value: Any) -> list[str]:
    """A JSON-LD value as strings: a string, a list of them, or an object's ``name``."""
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    if isinstance(value, dict):
        return _strings(value.get("name") or value.get("@value"))
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def _meta_tags(root: Any) -> dict[str, list[str]]:
    """``<meta>`` contents by lower-cased property, name or itemprop, in page order."""
    found: dict[str, list[str]] = {}
    for node in root.iterfind(".//meta"):
        content = (node.get("content") or "").strip()
        if not content:
            continue
        for attribute in ("property", "name", "itemprop"):
            key = (node.get(attribute) or "").strip().lower()
            if key:
                found.setdefault(key, []).append(content)
    return found


def _furniture_keys(root: Any) -> Iterator[int]:
    """Keys of the texts of figure captions, credits and embedded posts, and their lines."""
    for node in root.iter("figcaption", "figure", "blockquote", "div", "span", "p", "cite"):
        tag = node.tag
        if tag not in ("figcaption", "figure"):
            marks = f"{node.get('class') or ''} {node.get('id') or ''}"
            if not _FURNITURE_CLASS.search(marks):
                continue
        text = " ".join(_texts(node))
        if not text or len(text.split()) > CAPTION_MAX_WORDS:
            continue
        yield segment.key(text)
        for piece in _texts(node):
            if piece:
                yield segment.key(piece)


def _paragraph_runs(root: Any) -> Iterator[tuple[str, ...]]:
    """The <p> children of each element that has some, in page order, as ``runs``."""
    seen: set[Any] = set()
    for paragraph in root.iter("p"):
        parent = paragraph.getparent()
        if parent is None or parent in seen:
            continue
        seen.add(parent)
        texts = (_paragraph_text(p) for p in parent.iterchildren("p"))
        yield tuple(text for text in texts if text is not None)


def _paragraph_text(paragraph: Any) -> str | None:
    """Its text; "" when most of it is links; ``None`` when it has none (a spacer)."""
    text = " ".join(paragraph.text_content().split())
    if not text:
        return None
    linked = sum(len(" ".join(a.text_content().split())) for a in paragraph.iter("a"))
    return "" if linked > LINKED_SHARE * len(text) else text


def _texts(node: Any) -> list[str]:
    """The text pieces of an element, one per block (as an extractor would print them)."""
    pieces: list[str] = []
    for text in node.itertext():
        if isinstance(text, str):
            pieces.append(" ".join(text.split()))
    return [p for p in pieces if p]


# ---------------------------------------------------------------- helpers


def _first(*candidates: list[str] | None) -> str:
    for values in candidates:
        for value in values or []:
            if value.strip():
                return " ".join(value.split())
    return ""


def _squash(text: str) -> str:
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def _site_or_date(part: str, names: set[str]) -> bool:
    squashed = _squash(part)
    if not squashed:
        return True
    if squashed in names or any(
        len(squashed) >= 3 and (name.startswith(squashed) or squashed.startswith(name))
        for name in names
    ):
        return True
    return dates.date_line(part, lines.PROBE_TZ) is not None or _numeric_date(part)


def _numeric_date(part: str) -> bool:
    return bool(re.fullmatch(r"\d{1,4}[./-]\d{1,2}[./-]\d{1,4}", part.strip()))


def _rejoin(raw: str, kept: list[str]) -> str:
    start = raw.find(kept[0])
    end = raw.rfind(kept[-1]) + len(kept[-1])
    return raw[start:end].strip() if 0 <= start < end else " ".join(kept)


def _real_title(text: str) -> bool:
    return len(text.split()) >= TITLE_MIN_WORDS or len(text) >= TITLE_MIN_CHARS


def _script_name(text: str) -> bool:
    """A name in a script without capitals (CJK, Arabic …): a few words, no digit."""
    return (
        len(text.split()) <= lines.NAME_MAX_WORDS
        and not any(ch.isdigit() for ch in text)
        and all(not ch.isascii() or not ch.isalpha() for ch in text)
    )


def host_name(url: str) -> str:
    """The site's name in its host: "https://www.dw.com/en/…" → "dw"."""
    host = re.sub(r"^[a-z]+://", "", url.strip().lower()).split("/", 1)[0].split(":", 1)[0]
    labels = [label for label in host.split(".") if label not in ("www", "m", "amp")]
    return labels[-2] if len(labels) >= 2 else (labels[0] if labels else "")
