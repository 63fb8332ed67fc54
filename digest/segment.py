"""A scraped page's text → its lines (units) → its posts, split at post footers.

A blog or archive page prints several posts, each closed by a footer ("Posted in A, B |
3 Comments", "Filed under …", "Tags: …"); a tag or category archive opens with a head
("Tag Archive | Light pollution"). The segmenter cuts the page after each footer and reads
the tag names footers and heads print; ``clean`` judges what each post holds.
"""

from __future__ import annotations

import hashlib
import itertools
import marshal
import re
from collections.abc import Iterable

from digest import lines

# ---------------------------------------------------------------- thresholds

PROSE_MIN_WORDS = 6  # a line of this many words that ends a sentence reads as prose
PROSE_WORDS = 20  # a line this long reads as prose however it ends
CAPS_WORD_LETTERS = 4  # words this long count towards a line's share of capitals
CAPS_MIN_WORDS = 4  # fewer such words and a line has no share of capitals (0.0)
WRAP_MIN_LINES = 6  # fewer non-empty lines and a page is never taken as hard-wrapped
WRAP_MAX_CHARS = 100  # a line longer than this and the page was not wrapped at a width
WRAP_FOLLOWED_CHARS = 50  # a line this long followed by another is a wrapped one
WRAP_FOLLOWED_EVERY = 3  # one line in this many followed by another: a hard-wrapped page
WRAP_SHORT_SHARE = 0.6  # a wrapped line shorter than this share of the width ends its paragraph
FOOTER_MAX_WORDS = 40  # a footer line is never longer
FOOTER_TAGS_WORDS = 16  # the tags a footer lists, all together
TAG_MAX_WORDS = 4  # one tag of a footer, or the name an archive head gives
ARCHIVE_HEAD_MAX_WORDS = 12  # an archive head is a short line
POST_MIN_PROSE_WORDS = 30  # a footer ends a post only below this many words of prose …
POST_LINE_MIN_WORDS = 10  # … counting the prose lines this long (not a list of teasers) …
FOOTER_PROSE_REACH = 12  # … among the lines this near above it (a post ends right above)

_ODD_SPACES = "\t\u00a0" + "".join(map(chr, range(0x2000, 0x200B))) + "\u202f\u205f\u3000"
_ODD = re.compile(f"[{_ODD_SPACES}]")
_RUNS = re.compile(" {2,}")
_INVISIBLES = "\u200b\u200c\u200d\u2060\ufeff\u00ad"  # zero-width, BOM, soft hyphen
_INVISIBLE = re.compile(f"[{_INVISIBLES}]")
_BULLET_MARKS = "•·▪◦●*‣-"
_BULLET = re.compile(r"^[•·▪◦●*‣-]\s+")
_CLOSERS = "\"'”’»)]*」』）】〕》"
_TERMINAL = frozenset(".!?…:;。！？．：；।॥؟۔။។")

# A tag or category archive's head, with the name it gives ("Tag Archive | "Lamps"",
# "Posts tagged lamps"); only on lines of up to ARCHIVE_HEAD_MAX_WORDS words. The cleaner
# also takes these heads for page furniture.
ARCHIVE_HEAD = re.compile(
    r"^(?:(?:tag|category|author|topic|monthly|yearly|daily)\s+)?archives?\b\s*[:|]?\s*(?P<name>.*)$"
    r"|^(?:posts? tagged|posts? in)\s*[:|]?\s*(?P<name2>.*)$",
    re.I,
)
# A post footer and the tags it lists: "Posted in A, B", "Filed under A", "Tags: a, b".
_FOOTER = re.compile(
    r"^(?:(?:posted|published|filed) (?:in|under)"
    r"|(?:categor(?:y|ies)|tags?|tagged(?: with| as| in)?|topics?|labels?)\s*:)"
    r"\s*(?P<rest>\S.*)$",
    re.I,
)
# What ends a footer after its tags: a comment count, "Comments Off on <title>", a byline.
_FOOTER_TAIL = re.compile(
    r"\s*(?:[|•·]\s*)?(?:(?:\d+|no)\s+comments?\b.*|comments?\s+off\s+on\s+(?P<hint>.*)"
    r"|leave a (?:comment|reply).*|comments are closed.*|\bby\s+[A-Z].*|edit)$",
    re.I,
)
# The first letters a footer and an archive head can start with (in any case: no other
# character matches them ignoring case): a line starting otherwise is asked no pattern.
_FOOTER_FIRST = frozenset("pfctlPFCTL")
_ARCHIVE_FIRST = frozenset("tcamydpTCAMYDP")
_SPLIT_TAGS = re.compile(r"\s*(?:[,;|/•·]|\band\b)\s*", re.I)

UNASKED = object()  # a question not yet asked of a unit
# A unit's key, word count, whether it ends with a mark that ends a sentence, whether it
# reads as prose: from its text alone, so worked out once per distinct line (a site's menus
# and footers repeat on every page) and kept for the next FACTS_KEPT distinct lines.
Facts = tuple[int, int, bool, bool]
FACTS_KEPT = 20_000
_FACTS: dict[str, Facts | None] = {}


class Unit:
    """One line (or unwrapped paragraph) of a page, with what the cleaner asks of it cached."""

    __slots__ = (
        "key",
        "memo_byline",
        "memo_date",
        "memo_footer",
        "memo_furniture",
        "prose",
        "terminal",
        "text",
        "words",
    )

    def __init__(self, text: str, facts: Facts) -> None:
        self.text = text
        self.key, self.words, self.terminal, self.prose = facts
        self.memo_date: object = UNASKED
        self.memo_byline: object = UNASKED
        self.memo_footer: object = UNASKED
        self.memo_furniture: object = UNASKED  # judged against the one chrome set of its batch

    @property
    def capitalised(self) -> float:
        """Share of longer words that start upper-case: high for headlines and decks."""
        long_words = [
            w for w in self.text.split() if len(w) >= CAPS_WORD_LETTERS and w[0].isalpha()
        ]
        if len(long_words) < CAPS_MIN_WORDS:
            return 0.0
        return sum(w[0].isupper() for w in long_words) / len(long_words)

    @property
    def ends_sentence(self) -> bool:
        """Ends with a full stop (before closing quotes and brackets)."""
        return self.text.rstrip(_CLOSERS).endswith(".")


Page = tuple[Unit, ...]
# (the lines of a post, the tag names its footer prints, the title its footer names)
Post = tuple[list[Unit], list[str], str | None]
# (tag names, the title a footer names) of a footer or archive head line
Footer = tuple[list[str], str | None]


def prepare(text: str) -> Page:
    """Split a page into normalised lines, joining hard-wrapped paragraphs."""
    text = _single_spaced(text)
    page_lines = [
        _BULLET.sub("• ", line) if line[:1] in _BULLET_MARKS else line  # _strip_bullet
        for line in map(str.strip, text.splitlines())
    ]
    if _hard_wrapped(page_lines):
        page_lines = _unwrap(page_lines)
    return tuple(units(page_lines))


def pack(page: Page) -> bytes:
    """A prepared page as bytes, to set aside (on disk) and ``unpack`` later: cheaper by far
    than preparing its text again. Each unit's footer (``footer``) is kept too, answered here
    if not yet asked: ``segments`` asks it of every line, before and after."""
    return marshal.dumps(
        tuple(
            ((unit.key, unit.words, unit.terminal, unit.prose), unit.text, footer(unit))
            for unit in page
        )
    )


def unpack(data: bytes) -> Page:
    """The page ``pack`` made, as ``prepare`` made it, its footers answered (its other memos
    not yet asked)."""
    page = []
    for facts, text, found in marshal.loads(data):
        unit = Unit(text, facts)
        unit.memo_footer = found
        page.append(unit)
    return tuple(page)


def units(normalised: Iterable[str]) -> list[Unit]:
    """Units of normalised lines; a line with no word in it is dropped."""
    out = []
    known = _FACTS
    for line in normalised:
        if not line:
            continue
        found = known.get(line, UNASKED)
        if found is UNASKED:
            if len(known) >= FACTS_KEPT:
                known.clear()
            found = known[line] = facts_of(line)
        if found is not None:
            out.append(Unit(line, found))  # type: ignore[arg-type]
    return out


def facts_of(line: str) -> Facts | None:
    """What a unit of a normalised line knows from its text alone (``Facts``), or None for
    a line with no word in it."""
    words_key = lines.words_key(line)
    if not words_key:
        return None
    words = lines.word_count(line)  # lines are normalised to single spaces
    stripped = line.rstrip(_CLOSERS)
    terminal = bool(stripped) and stripped[-1] in _TERMINAL
    # Reads as a paragraph of running text, not a heading, label or link.
    prose = (words >= PROSE_MIN_WORDS and terminal) or words >= PROSE_WORDS
    return _hashed(words_key), words, terminal, prose


def normalise(line: str) -> str:
    """A line as ``prepare`` makes it: odd and repeated spaces single, bullets "• "."""
    return _strip_bullet(_single_spaced(line).strip())


def _single_spaced(text: str) -> str:
    """``text`` without invisible characters, each odd space (a tab, a no-break space …)
    and each run of spaces one plain space; most text holds neither, and costs a scan."""
    if not text.isascii():  # a character is looked for faster than a class is matched
        if any(map(text.__contains__, _INVISIBLES)):
            text = _INVISIBLE.sub("", text)
        if any(map(text.__contains__, _ODD_SPACES)):
            text = _ODD.sub(" ", text)
    elif "\t" in text:
        text = text.replace("\t", " ")
    return _RUNS.sub(" ", text) if "  " in text else text


def key(text: str) -> int:
    """The hashed key of any line of text, as a unit of it would have."""
    return _hashed(lines.words_key(normalise(text)))


def fingerprint(units: Iterable[Unit]) -> int:
    """A post's lines, all of them in order, as one ``stable_key``: the same post read again."""
    return stable_key(" ".join(str(unit.key) for unit in units))


def stable_key(words_key: str) -> int:
    """A line's words as a signed 64-bit number, the same in every process (Python's own
    ``hash`` of a string is salted per process), so the store can keep it across runs."""
    return _hashed(words_key.encode())


def _hashed(data: bytes) -> int:
    """``stable_key`` of text already encoded."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big", signed=True)


def line_key(text: str) -> str:
    """The comparison key of a line: its case-folded words only."""
    return words_of(normalise(text))


def words_of(text: str) -> str:
    """A line's words as its key hashes them: lower-case, single-spaced."""
    return " ".join(lines.words(text))


def _strip_bullet(line: str) -> str:
    return _BULLET.sub("• ", line) if line[:1] in _BULLET_MARKS else line


def _hard_wrapped(page_lines: list[str]) -> bool:
    """True when paragraphs were wrapped at a fixed width, one paragraph a block of lines."""
    lengths = [len(line) for line in page_lines if line]
    if len(lengths) < WRAP_MIN_LINES or max(lengths) > WRAP_MAX_CHARS:
        return False
    followed = sum(
        1 for a, b in itertools.pairwise(page_lines) if a and b and len(a) >= WRAP_FOLLOWED_CHARS
    )
    return followed >= len(lengths) / WRAP_FOLLOWED_EVERY


def _unwrap(page_lines: list[str]) -> list[str]:
    """Join each block's wrapped lines; a line well short of the width ends its paragraph."""
    width = max(len(line) for line in page_lines)
    out: list[str] = []
    block: list[str] = []
    for line in [*page_lines, ""]:
        ends = bool(block) and len(block[-1]) < WRAP_SHORT_SHARE * width
        if line and not (block and (line.startswith("• ") or ends)):
            block.append(line)
            continue
        if block:
            out.append(" ".join(block))
        block = [line] if line else []
    return out


# ---------------------------------------------------------------- posts


def segments(page: Page) -> tuple[list[Post], list[str]]:
    """Split at post footers; footers above the first prose hold the page's own categories.

    A footer ends a post only right under a post's worth of prose (``POST_MIN_PROSE_WORDS``
    in the ``FOOTER_PROSE_REACH`` lines above it): a menu whose items read like sentences
    ("Archives: the blog's time machine.") ends none, nor a post's own head ("Categories:"
    under its byline).
    """
    posts: list[Post] = []
    page_tags: list[str] = []
    current: list[Unit] = []
    current_tags: list[str] = []
    for unit in page:
        memo = unit.memo_footer  # ``footer(unit)``, its answer read here: asked of every line
        found: Footer | None = footer(unit) if memo is UNASKED else memo  # type: ignore[assignment]
        if found is None:
            current.append(unit)
            continue
        tags, hint = found
        above = current[-FOOTER_PROSE_REACH:]
        prose_words = sum(u.words for u in above if u.prose and u.words >= POST_LINE_MIN_WORDS)
        if prose_words < POST_MIN_PROSE_WORDS:  # a menu's blurbs, or a post's head, above it
            (current_tags if posts else page_tags).extend(tags)
            continue
        posts.append((current, [*current_tags, *tags], hint))
        current, current_tags = [], []
    posts.append((current, current_tags, None))
    return posts, page_tags


def archive_head(text: str) -> re.Match[str] | None:
    """``ARCHIVE_HEAD.match(text)``, asked only of a line whose first letter it can match."""
    return ARCHIVE_HEAD.match(text) if text[:1] in _ARCHIVE_FIRST else None


def footer(unit: Unit) -> Footer | None:
    """(tag names, title named by the footer) of a "Posted in A, B | Comments Off on T" line.

    A tag or category archive header ("Tag Archive | "Light pollution"") gives its name.
    """
    if unit.memo_footer is UNASKED:
        unit.memo_footer = _read_footer(unit)
    return unit.memo_footer  # type: ignore[return-value]


def _read_footer(unit: Unit) -> Footer | None:
    if unit.words > FOOTER_MAX_WORDS:
        return None
    match = _FOOTER.match(unit.text) if unit.text[:1] in _FOOTER_FIRST else None
    if match is None:
        archive = archive_head(unit.text) if unit.words <= ARCHIVE_HEAD_MAX_WORDS else None
        if archive is None:
            return None
        name = (archive.group("name") or archive.group("name2") or "").strip(" \"'“”‘’")
        return ([name] if 0 < len(name.split()) <= TAG_MAX_WORDS else []), None
    rest = match.group("rest")
    tail = _FOOTER_TAIL.search(rest)
    hint = None
    if tail is not None:
        hint = tail.group("hint")
        rest = rest[: tail.start()]
    parts = _SPLIT_TAGS.split(rest)
    if len(rest.split()) > FOOTER_TAGS_WORDS or any(len(p.split()) > TAG_MAX_WORDS for p in parts):
        return None
    return [part for part in parts if lines.words(part)], hint  # a part without a word is no tag
