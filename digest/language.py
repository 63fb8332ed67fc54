"""An article's language, as a BCP 47 tag ("de", "pt-BR", "zh-Hans"): declared, else detected.

What the source declares wins: a page's JSON-LD ``inLanguage``, ``<html lang>``, ``og:locale``
or Content-Language meta; a feed entry's ``xml:lang`` or its feed's ``<language>``; the
operator's ``lang`` in seeds.toml (read by ``ingest``). With nothing declared the text is
identified by CLD2 (pycld2: Chromium's compact language detector, 80+ languages, offline,
a few megabytes, microseconds a text) and the answer kept only when it is reliable and
covers most of the text; else there is no language. Pure: text in, a tag or None out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

MAX_TAG_CHARS = 35  # BCP 47's advice for a stored tag; the column is this wide
DETECT_MIN_LETTERS = 40  # fewer letters (a title alone) and the text is not identified
DETECT_SAMPLE_CHARS = 400  # the text identified: title and first paragraphs, this long
DETECT_MIN_PERCENT = 80  # CLD2 reliable, and its language this share of the text (percent)
# A declaration the text plainly contradicts (a template's lang="en" over German prose) is
# not believed: a text this long, reliably of another language, none of it the declared one.
CONTRADICT_MIN_LETTERS = 200
CONTRADICT_SAMPLE_CHARS = 1000  # a longer sample than to detect: doubting needs more text
CONTRADICT_MIN_PERCENT = 90
JSON_LD_MAX_CHARS = 200_000  # a structured-data block longer than this is not read

_TAG = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*")
_UNDETERMINED = frozenset({"und", "mul", "zxx", "mis", "xx"})
# Written right to left: the email and the pages set dir="rtl" on their blocks.
_RTL = frozenset(
    {"ar", "arc", "ckb", "dv", "fa", "he", "iw", "ku", "ps", "sd", "syr", "ug", "ur", "yi"}
)
_RTL_SCRIPTS = frozenset({"Arab", "Hebr", "Syrc", "Thaa", "Nkoo", "Adlm"})
_LETTER = re.compile(r"[^\W\d_]")
_UNKNOWN = frozenset({"un", "xxx", "zzb", "zzh", "zzp"})  # CLD2's "unknown" and its own codes


def normalise(value: object) -> str | None:
    """A declared language as a BCP 47 tag in its usual case ("en_us" → "en-US"), or None
    when it is not one ("English", "x-default", "und")."""
    if not isinstance(value, str):
        return None
    tag = re.split(r"[,;\s]", value.strip().replace("_", "-"), maxsplit=1)[0]
    if len(tag) > MAX_TAG_CHARS or not _TAG.fullmatch(tag):
        return None
    primary, *rest = tag.split("-")
    if primary.lower() in _UNDETERMINED:
        return None
    parts = [primary.lower()]
    for part in rest:
        if len(part) == 4 and part.isalpha():
            parts.append(part.title())  # a script: "Hans", "Latn"
        elif len(part) == 2 and part.isalpha():
            parts.append(part.upper())  # a region: "BR", "US"
        else:
            parts.append(part.lower())
    return "-".join(parts)


def direction(tag: str | None) -> str | None:
    """ "rtl" for a language written right to left, else None (the default, left to right)."""
    if not tag:
        return None
    primary, *rest = tag.split("-")
    if any(part in _RTL_SCRIPTS for part in rest):
        return "rtl"
    return "rtl" if primary in _RTL and "Latn" not in rest else None


# ---------------------------------------------------------------- declared


def declared_in_page(root: Any) -> str | None:
    """The language a web page (parsed: an lxml HTML tree) declares: JSON-LD
    ``inLanguage``, ``<html lang>``, ``og:locale``, then a Content-Language meta."""
    for script in root.iter("script"):
        if (script.get("type") or "").strip().lower() == "application/ld+json":
            found = _in_language(script.text or "")
            if found:
                return found
    found = normalise(root.get("lang") or root.get("{http://www.w3.org/XML/1998/namespace}lang"))
    if found:
        return found
    for meta in root.iter("meta"):
        name = (meta.get("property") or meta.get("name") or meta.get("http-equiv") or "").lower()
        if name in ("og:locale", "content-language", "language", "dc.language"):
            found = normalise(meta.get("content"))
            if found:
                return found
    return None


def declared_in_entry(entry: Mapping[str, Any]) -> str | None:
    """The language of a feed entry (feedparser's): its content's ``xml:lang``, its
    summary's or title's (which inherit the feed's ``xml:lang``), its ``dc:language``, else
    its feed's ``<language>`` (``feed_language``, which ``readers`` copies into each entry)."""
    details: list[Any] = [*(entry.get("content") or [])[:1]]
    details += [entry.get("summary_detail"), entry.get("title_detail")]
    for detail in details:
        if isinstance(detail, Mapping):
            found = normalise(detail.get("language"))
            if found:
                return found
    return normalise(entry.get("language")) or normalise(entry.get("feed_language"))


def _in_language(block: str) -> str | None:
    if len(block) > JSON_LD_MAX_CHARS:
        return None
    try:
        data = json.loads(block)
    except ValueError:
        return None
    for node in _nodes(data):
        value = node.get("inLanguage")
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, Mapping):
            value = value.get("alternateName") or value.get("identifier")
        found = normalise(value)
        if found:
            return found
    return None


def _nodes(data: Any) -> Iterable[Mapping[str, Any]]:
    """The objects of a JSON-LD document, breadth first (an ``@graph`` is common)."""
    queue = [data]
    while queue:
        item = queue.pop(0)
        if isinstance(item, Mapping):
            yield item
            queue.extend(v for v in item.values() if isinstance(v, (Mapping, list)))
        elif isinstance(item, list):
            queue.extend(item)


# ---------------------------------------------------------------- detected


def detect(title: str, paragraphs: Sequence[str]) -> str | None:
    """The language the text is written in, when CLD2 is confident of it; else None."""
    sample = _sample(title, paragraphs, DETECT_SAMPLE_CHARS)
    if len(_LETTER.findall(sample)) < DETECT_MIN_LETTERS:
        return None
    found = _languages(sample)
    if not found:
        return None
    tag, percent = found[0]
    return normalise(tag) if percent >= DETECT_MIN_PERCENT else None


def _contradicted(declared: str, title: str, paragraphs: Sequence[str]) -> bool:
    sample = _sample(title, paragraphs, CONTRADICT_SAMPLE_CHARS)
    if len(_LETTER.findall(sample)) < CONTRADICT_MIN_LETTERS:
        return False
    found = _languages(sample)
    primary = declared.split("-")[0]
    return (
        bool(found)
        and found[0][1] >= CONTRADICT_MIN_PERCENT
        and all(tag.split("-")[0] != primary for tag, _ in found)
    )


def _languages(sample: str) -> list[tuple[str, int]]:
    """CLD2's languages of the text with their share of it (percent), largest first; empty
    when it is not reliable."""
    import pycld2

    try:
        reliable, _, details = pycld2.detect(sample)
    except (pycld2.error, ValueError):  # text CLD2 cannot take (invalid UTF-8, a surrogate)
        return []
    if not reliable:
        return []
    return [(code, percent) for _, code, percent, _ in details if code not in _UNKNOWN]


def _sample(title: str, paragraphs: Sequence[str], limit: int) -> str:
    """The title and the first paragraphs, up to ``limit`` characters."""
    parts = [title]
    size = len(title)
    for paragraph in paragraphs:
        if size >= limit:
            break
        parts.append(paragraph)
        size += len(paragraph) + 1
    return "\n".join(parts)[:limit]


def of_article(declared: str | None, title: str, paragraphs: Sequence[str]) -> str | None:
    """The article's language: what its source declared (unless its text plainly says
    otherwise), else what its text is written in."""
    tag = normalise(declared)
    if tag is not None and not _contradicted(tag, title, paragraphs):
        return tag
    return detect(title, paragraphs)
