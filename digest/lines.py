"""What a single line of an article says it is: a byline, a name, a timestamp, a dateline.

The recognisers the cleaner (``clean``, on the lines of a scraped page) and the summarizer
(``summarize``, on the first paragraphs of a body) share. Pure: text in, answer out.
"""

from __future__ import annotations

import re

from digest import dates

NAME_MAX_WORDS = 6  # a name or an organisation is a few words, never a sentence
ORG_MAX_WORDS = 5  # the organisation after a byline's name: "By Jane Doe, Harbour Gazette"
BYLINE_MAX_CHARS = 160  # a paragraph that opens with "By" and is longer is a sentence

PROBE_TZ = dates.zone("UTC")  # only to tell whether a line is a timestamp, never to read it
CJK_CHARS_PER_WORD = 2  # Chinese and Japanese: a word is one to three characters, most two
SEA_CHARS_PER_WORD = 3  # Thai, Lao, Khmer, Burmese: letters and marks, no space between words
HANGUL_PER_WORD = 4  # Korean is spaced, but a spaced word carries its particles: one more
_WORD = re.compile(r"[^\W_]+")
# ``_WORD`` on ASCII text, as a byte table: a letter or digit lower-cased, anything else a space.
_ASCII_WORD_BYTES = bytes(
    ord(chr(b).lower()) if chr(b).isalnum() and b < 128 else ord(" ") for b in range(256)
)
# The marks of English typography beyond ASCII (none of them a letter or digit): quotes,
# dashes, the ellipsis, bullets, guillemets, ©, ®. Most non-ASCII lines of English pages hold
# no other: blanked, the byte table reads them (half the time of ``_WORD``).
_TYPOGRAPHIC = "’“”‘…—–•·►»«©®"
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
# Scripts written without spaces between words: Han and kana; Southeast Asian scripts.
_CJK_CHAR = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_SEA_CHAR = re.compile(r"[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff]")
_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_UNSPACED = re.compile(
    r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u0e00-\u0eff\u1000-\u109f"
    r"\u1780-\u17ff\uac00-\ud7a3]"
)

# ---------------------------------------------------------------- names

# Lower-case words a byline's author may hold ("Ludwig van Beethoven", "Jane and John Doe"),
# compared in any case: the cleaner's bylines and the name above a date line.
AUTHOR_PARTICLES = frozenset(
    {"and", "de", "da", "van", "von", "der", "den", "al", "bin", "la", "le", "di"}
)
# Lower-case words of names and organisations in a body's opening byline ("Department of
# State", "Jane Doe for The Times"), compared as printed: the summarizer's bylines.
NAME_LINKS = frozenset({"and", "for", "of", "de", "da", "van", "von", "der", "al", "bin", "la"})


def name_like(text: str, links: frozenset[str], *, any_case: bool = False) -> bool:
    """A few words, no digit, each capitalised or one of ``links`` (lower-cased first when
    ``any_case``): a person's or an organisation's name."""
    words = text.split()
    if not 1 <= len(words) <= NAME_MAX_WORDS or any(map(str.isdigit, text)):
        return False
    if any_case:
        return all(w[0].isupper() or w.lower() in links for w in words)
    return all(w[0].isupper() or w in links for w in words)


def without_bidi_controls(text: str) -> str:
    """``text`` without the controls that reorder what follows them (U+202A…U+202E
    embeddings and overrides, U+2066…U+2069 isolates): in a title or a name, a right-to-left
    override makes "gnp.exe" read as "exe.png" in a mail client's list."""
    return _BIDI_CONTROLS.sub("", text) if _BIDI_CONTROLS.search(text) else text


def word_count(text: str) -> int:
    """How many words a single-spaced line holds: its spaces, and in a script written
    without them (Chinese, Japanese, Thai) its letters at a typical word length."""
    spaced = text.count(" ") + 1
    if text.isascii() or _UNSPACED.search(text) is None:  # most lines: one scan at most
        return spaced
    cjk = len(_CJK_CHAR.findall(text))
    sea = len(_SEA_CHAR.findall(text)) if not cjk else 0
    hangul = len(_HANGUL.findall(text)) if not cjk else 0
    return (
        spaced + cjk // CJK_CHARS_PER_WORD + sea // SEA_CHARS_PER_WORD + hangul // HANGUL_PER_WORD
    )


def words_key(text: str) -> bytes:
    """``words`` of a line single-spaced, as UTF-8 bytes (what a line's key hashes): an
    ASCII line, most lines, goes through the byte table alone, never decoded to words."""
    if text.isascii():
        return b" ".join(text.encode().translate(_ASCII_WORD_BYTES).split())
    return " ".join(words(text)).encode()


def words(text: str) -> list[str]:
    """The case-folded words of a line, without its punctuation."""
    if not text.isascii():
        for mark in _TYPOGRAPHIC:  # ends a word, as a space does
            if mark in text:
                text = text.replace(mark, " ")
        if not text.isascii():
            return _WORD.findall(text.casefold())
    # most text: a byte table lower-cases letters and blanks the rest
    return text.encode().translate(_ASCII_WORD_BYTES).decode().split()


# ---------------------------------------------------------------- timestamps


def is_date_line(text: str) -> bool:
    """A line that is nothing but a (labelled) date: "Updated: March 3, 2019 10:15"."""
    return dates.date_line(text, PROBE_TZ) is not None


# ---------------------------------------------------------------- bylines

_BY_WORDS = r"by|written by|words by|story by|reporting by|posted by"
# A whole line of a page that is a byline: "By Jane Doe, Agency | March 3".
_BYLINE = re.compile(rf"^(?:{_BY_WORDS}|author:?)\s+(?P<rest>\S.*)$", re.I)
# The letters a byline line can start with, in any case ("ſ" matches "s" ignoring case):
# a line starting otherwise is not matched against the pattern.
_BYLINE_FIRST = frozenset("bwsrpaBWSRPA\u017f")
# The links a byline prints after the name: "By Jane Doe Email Author", "… Follow".
_NAME_UI_TAIL = re.compile(
    r"\s+(?:e-?mail(?:\s+(?:the\s+)?author)?|follow(?:\s+on\s+\w+)?|contact(?:\s+author)?"
    r"|view\s+(?:full\s+)?profile|become\s+a\s+fan|more\s+by\s+.*|all\s+posts)\s*$",
    re.I,
)
# A byline line's parts: name, organisation, date ("By Jane Doe, Agency on March 3",
# "By Jane Doe at 1:12 pm").
_LINE_BYLINE_PARTS = re.compile(r"\s*(?:[,|•·]|\s[-–—]\s|\s+(?:on|at)\s+(?=[A-Z0-9]))\s*")
# The byline that opens a paragraph of a body.
_BY = re.compile(rf"(?:{_BY_WORDS})\b\s*", re.I)
_DAILY_MAIL_BY = re.compile(r"by\s+\.\s", re.I)  # newlines turned into " . " by a scraper
_DM_SEPARATOR = re.compile(r"\s+[.|](?:\s+[.|])*\s+")
_BYLINE_SEPARATOR = re.compile(r"\s*(?:[|•·]|\s[-–—]\s)\s*")
_DATE_LABEL = re.compile(r"(?:published|updated|last updated|posted|modified)\s*:?", re.I)


def read_byline(line: str) -> tuple[str | None, str | None, str] | None:
    """(author, organisation, rest) of a byline line of a page ("By Jane Doe, Agency | date"),
    or None when the line is no byline; author and organisation are None when not names."""
    match = _BYLINE.match(line) if line[:1] in _BYLINE_FIRST else None
    if match is None:
        return None
    rest = match.group("rest")
    parts = [p.strip() for p in _LINE_BYLINE_PARTS.split(rest) if p.strip()]
    if parts:
        parts[0] = _NAME_UI_TAIL.sub("", parts[0]) or parts[0]  # "Jane Doe Email Author"
    author = parts[0] if parts and name_like(parts[0], AUTHOR_PARTICLES, any_case=True) else None
    org = (
        parts[1]
        if len(parts) > 1
        and len(parts[1].split()) <= ORG_MAX_WORDS
        and name_like(parts[1], AUTHOR_PARTICLES, any_case=True)
        else None
    )
    return author, org, rest


def after_byline(paragraph: str) -> str | None:
    """What follows a byline opening ``paragraph`` ("" for a byline paragraph), or
    None when it does not start with one.

    A scraper that turned newlines into " . " glues the story to the byline ("By . Jane Doe
    . PUBLISHED: … . | . UPDATED: … . The story"); the story starts at its first prose piece.
    """
    if _DAILY_MAIL_BY.match(paragraph):
        starts = [0, *(m.end() for m in _DM_SEPARATOR.finditer(paragraph))]
        for n, begin in enumerate(starts[1:], 1):
            following = starts[n + 1] if n + 1 < len(starts) else len(paragraph)
            if not _byline_piece(paragraph[begin:following].strip(" .|")):
                return paragraph[begin:] if n > 1 else None
        return ""
    match = _BY.match(paragraph)
    if match is None or len(paragraph) > BYLINE_MAX_CHARS:
        return None
    pieces = _BYLINE_SEPARATOR.split(paragraph[match.end() :].strip(" .|"))
    names = pieces[0].split(", ")
    if all(name_like(n, NAME_LINKS) for n in names) and all(map(_byline_piece, pieces[1:])):
        return ""
    return None


def _byline_piece(piece: str) -> bool:
    return (
        not piece
        or _DATE_LABEL.fullmatch(piece) is not None
        or name_like(piece, NAME_LINKS)
        or is_date_line(piece)
    )


# ---------------------------------------------------------------- datelines

_PLACE = r"[A-Z][\w.'’]*(?: [A-Z][\w.'’]*){0,2}(?:, ?[A-Z][\w.'’]*(?: [\w.'’]+){0,2})?"
_CREDIT = r"\([A-Z][\w&.'’ ]{0,24}\)"
_DASH = r"\s*(?:--|[-–—])\s*"
# "PORTLAND, Maine - ", "LONDON, England (CNN) -- ", or a credit: "(CNN)The", "Paris (AFP) -".
_DATELINE = re.compile(
    r"(?:[A-Z][A-Z.'’]{2,}(?:[ -][A-Z][A-Z.'’]+){0,3}(?:, ?[A-Z][\w.'’]*(?: [\w.'’]+){0,2})?"
    rf"(?: ?{_CREDIT})?{_DASH}"
    rf"|(?:{_PLACE} ?)?{_CREDIT}(?:{_DASH}|(?=[A-Z“\"‘'])))"
    r"(?=[A-Z0-9“\"‘'])"
)
_DASH_END = re.compile(rf"{_DASH}$")


def split_dateline(text: str) -> tuple[str | None, str]:
    """("QINGDAO, China", "rest…") for "QINGDAO, China - rest…", or (None, text)."""
    match = _DATELINE.match(text)
    if match is None:
        return None, text
    return _DASH_END.sub("", match.group()).strip(), text[match.end() :]
