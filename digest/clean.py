"""Scraped plain text → articles: title, deck, byline, date, tags and a chrome-free body.

The cleaner works by evidence, never by a list of any site's phrases:

* repetition — a line found in two different stories of one collection, or twice in one
  page, is site chrome (disclaimers, share blocks, footers);
* structure — a page is head (nav, title, deck, byline, dates), body (from the first
  paragraph of prose) and tail (related links, newsletter prompts, comment threads);
* vocabulary of page furniture — the words of buttons and widgets ("share", "reply",
  "subscribe", "©"), only ever on short lines that are not prose;
* rhythm — a comment thread is a name, a date and prose, again and again.

Post footers ("Posted in …", "Filed under …", "Tags: …") become tags, and on an archive
page they split it into its separate posts.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from digest import dates, lines
from digest.models import DateSource, Draft

_NON_WORD = re.compile(r"[\W_]+")
_ODD_SPACE = "\t\u00a0\u2000-\u200a\u202f\u205f\u3000"
# Runs of spaces, or any odd space: a single plain space is left alone (most of a page).
_SPACES = re.compile(f"[ {_ODD_SPACE}]{{2,}}|[{_ODD_SPACE}]")
_INVISIBLE = re.compile(r"[\u200b-\u200d\u2060\ufeff\u00ad]")
_BULLET_MARKS = "•·▪◦●*‣-"
_BULLET = re.compile(r"^[•·▪◦●*‣-]\s+")
_CLOSERS = "\"'”’»)]*"
_TERMINAL = frozenset(".!?…:;")

# Page furniture, matched only against short lines that are not prose.
_UI = re.compile(
    r"^(?:home(?:page)?|menu|search|main menu|navigation|log ?in|log ?out|sign ?in|sign ?up|"
    r"register|subscribe(?: now)?|skip to (?:main )?content|jump to .*|share(?: this)?(?: \w+)?|"
    r"share on \w+|tweet|email|e-mail|print|facebook|twitter|linkedin|whatsapp|reddit|"
    r"pinterest|telegram|flipboard|copy link|link copied|advertisement|advertising|"
    r"sponsored(?: content)?|ad|close|open|toggle .*|next|previous|prev|back to top|top|"
    r"more|loading|(?:continue|keep) reading.*|read (?:more|next|full).*|click here.*|"
    r"watch|listen|video|photo|gallery|cookies?.*|accept.*|privacy(?: policy)?|"
    r"terms(?: of (?:use|service))?|contact(?: us)?|about(?: us)?|follow us.*|rss|"
    r"all rights reserved.*|powered by .*|theme by .*|archives|recent posts|"
    r"recent comments|categories|meta|blogroll|tags|tag cloud|calendar|search for:?|"
    r"previous (?:post|article)|next (?:post|article)|older posts|newer posts)$",
    re.IGNORECASE,
)
_COPYRIGHT = re.compile(r"©|\(c\)\s*(?:19|20)\d\d|\bcopyright\b|all rights reserved", re.I)
_COPYRIGHT_HINTS = ("©", "(c)", "copyright", "rights reserved")
_PROMPT_HINTS = ("newsletter", "subscri", "sign up", "signup", "sign-up", "inbox")
_PROMPT = re.compile(
    r"\b(?:newsletters?|subscribe|subscription|sign up|signup|sign-up|inbox|unsubscribe)\b",
    re.I,
)
_COMMENT_WORDS = re.compile(
    r"\b(?:comments?|repl(?:y|ies)|feedbacks?|notify|discussion|responses|voted)\b", re.I
)
_SAYS = re.compile(r"^[\w .'’-]{2,40}\s(?:says|said|wrote)(?: on .*)?:$", re.I)
_RELATED = re.compile(
    r"^(?:related(?: \w+)?|read (?:also|more|next)|see also|also read|also on \w+|"
    r"more (?:from|on|in)\b.*|"
    r"more \w+(?: \w+)? (?:news|stories|articles|posts)|you (?:may|might) (?:also )?like|"
    r"recommended(?: for you)?|most (?:popular|read|viewed|shared)|trending(?: now)?|"
    r"further reading|popular posts|top stories|latest (?:news|stories|posts)|"
    r"don'?t miss|editors'? picks?|what to read next)\b",
    re.I,
)
_ARCHIVE_HEAD = re.compile(
    r"^(?:(?:tag|category|author|topic|monthly|yearly|daily)\s+)?archives?\b\s*[:|]?\s*(?P<name>.*)$"
    r"|^(?:posts? tagged|posts? in)\s*[:|]?\s*(?P<name2>.*)$",
    re.I,
)
_FOOTER = re.compile(
    r"^(?:(?:posted|published|filed) (?:in|under)"
    r"|(?:categor(?:y|ies)|tags?|tagged(?: with| as| in)?|topics?|labels?)\s*:)"
    r"\s*(?P<rest>\S.*)$",
    re.I,
)
_FOOTER_TAIL = re.compile(
    r"\s*(?:[|•·]\s*)?(?:(?:\d+|no)\s+comments?\b.*|comments?\s+off\s+on\s+(?P<hint>.*)"
    r"|leave a (?:comment|reply).*|comments are closed.*|\bby\s+[A-Z].*|edit)$",
    re.I,
)
_POSTED_BY = re.compile(r"^(?P<when>.*?)\s+by\s+(?P<who>[A-Z][^,|]*?)(?:\s+in\s+(?P<cats>.+))?$")
_ECHO = 5  # a headline printed again within this many lines of the story's start
_SPLIT_TAGS = re.compile(r"\s*(?:[,;|/•·]|\band\b)\s*", re.I)


def _words_of(text: str) -> str:
    return " ".join(lines.words(text))


class _Unit:
    """One line (or unwrapped paragraph) of a page, with what the cleaner asks of it cached."""

    __slots__ = (
        "_byline",
        "_date",
        "_footer",
        "_furniture",
        "key",
        "prose",
        "terminal",
        "text",
        "words",
    )

    def __init__(self, text: str, words_key: str) -> None:
        self.text = text
        self.key = hash(words_key)
        self.words = text.count(" ") + 1  # lines are normalised to single spaces
        stripped = text.rstrip(_CLOSERS)
        self.terminal = bool(stripped) and stripped[-1] in _TERMINAL
        # Reads as a paragraph of running text, not a heading, label or link.
        self.prose = (self.words >= 6 and self.terminal) or self.words >= 20
        self._date: object = _UNSET
        self._byline: object = _UNSET
        self._footer: object = _UNSET
        self._furniture: object = _UNSET  # judged against the one chrome set of its batch

    @property
    def capitalised(self) -> float:
        """Share of longer words that start upper-case: high for headlines and decks."""
        long_words = [w for w in self.text.split() if len(w) >= 4 and w[0].isalpha()]
        if len(long_words) < 4:
            return 0.0
        return sum(w[0].isupper() for w in long_words) / len(long_words)


_UNSET = object()
Page = tuple[_Unit, ...]


@dataclass(frozen=True, slots=True)
class _Head:
    title: str
    subtitle: str | None
    author: str | None
    byline_source: str | None
    published: datetime | None
    date_source: DateSource | None


def prepare(text: str) -> Page:
    """Split a page into normalised lines, joining hard-wrapped paragraphs."""
    text = _SPACES.sub(" ", _INVISIBLE.sub("", text))
    lines = [_strip_bullet(line.strip()) for line in text.splitlines()]
    if _hard_wrapped(lines):
        lines = _unwrap(lines)
    return tuple(_units(lines))


Keys = frozenset[int]  # hashed line keys: a page's lines cost one int each, not a string


def collection_chrome(pages: Sequence[Page]) -> Keys:
    """Keys of lines that stand in two or more different stories of one collection.

    Copies of one story (a syndicated article, a post shown on two archive pages) share
    their paragraphs, so posts are first grouped into stories by their shared long lines;
    only repetition across different stories counts.
    """
    posts = [units for page in pages for units, _, _ in _segments(page)[0]]
    where: defaultdict[int, list[int]] = defaultdict(list)
    long_keys: set[int] = set()
    long_counts: list[int] = []
    for index, units in enumerate(posts):
        long_counts.append(sum(1 for unit in units if unit.words >= 8))
        long_keys.update(unit.key for unit in units if unit.words >= 8)
        for key in {unit.key for unit in units}:
            where[key].append(index)
    parent = list(range(len(posts)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    shared: Counter[tuple[int, int]] = Counter()
    for key, found_in in where.items():
        if 2 <= len(found_in) <= 8 and key in long_keys:
            for n, a in enumerate(found_in):
                for b in found_in[n + 1 :]:
                    shared[a, b] += 1
    for (a, b), count in shared.items():
        if count >= 2 and count >= 0.5 * min(long_counts[a], long_counts[b]):
            parent[root(a)] = root(b)
    return frozenset(
        key
        for key, found_in in where.items()
        if len(found_in) >= 2 and len({root(i) for i in found_in}) >= 2
    )


def clean_page(page: Page, *, chrome: Keys, default_tz: tzinfo) -> list[Draft]:
    """The articles of one prepared page: one, or several for an archive page."""
    counts = Counter(unit.key for unit in page)
    repeated = frozenset(key for key, n in counts.items() if n >= 2)
    segments, page_tags = _segments(page)
    drafts = []
    for number, (units, tags, hint) in enumerate(segments):
        draft = _article(
            units,
            chrome=chrome,
            repeated=repeated,
            tags=(*page_tags, *tags),
            title_hint=hint,
            later=number > 0,
            default_tz=default_tz,
        )
        if draft is not None:
            drafts.append(draft)
    return drafts


def polish(title: str, lines: Sequence[str]) -> tuple[tuple[str, ...], str | None]:
    """Body paragraphs of already-extracted text (HTML, feeds): furniture out, dateline apart."""
    units = _units([_normalise(line) for line in lines])
    title_key = _key(title)
    kept = [u.text for u in _body_units(units, frozenset(), frozenset()) if u.key != title_key]
    return _split_dateline(kept) if kept else ((), None)


def line_key(text: str) -> str:
    """The comparison key of a line: its case-folded words only."""
    return _words_of(_normalise(text))


def tag_slug(text: str) -> str:
    """A tag as a lower-case slug: "Light Pollution" → "light-pollution"."""
    return "-".join(_NON_WORD.sub(" ", text.casefold()).split())


# ---------------------------------------------------------------- page structure


def _units(lines: Iterable[str]) -> list[_Unit]:
    """Units of normalised lines; a line with no word in it is dropped."""
    units = []
    for line in lines:
        words_key = _words_of(line) if line else ""
        if words_key:
            units.append(_Unit(line, words_key))
    return units


def _key(text: str) -> int:
    """The hashed key of any line of text, as a unit of it would have."""
    return hash(_words_of(_normalise(text)))


def _normalise(line: str) -> str:
    return _strip_bullet(_SPACES.sub(" ", _INVISIBLE.sub("", line)).strip())


def _strip_bullet(line: str) -> str:
    return _BULLET.sub("• ", line) if line[:1] in _BULLET_MARKS else line


def _hard_wrapped(lines: list[str]) -> bool:
    """True when paragraphs were wrapped at a fixed width, one paragraph a block of lines."""
    lengths = [len(line) for line in lines if line]
    if len(lengths) < 6 or max(lengths) > 100:
        return False
    followed = sum(1 for a, b in itertools.pairwise(lines) if a and b and len(a) >= 50)
    return followed >= len(lengths) / 3


def _unwrap(lines: list[str]) -> list[str]:
    """Join each block's wrapped lines; a line well short of the width ends its paragraph."""
    width = max(len(line) for line in lines)
    out: list[str] = []
    block: list[str] = []
    for line in [*lines, ""]:
        ends = bool(block) and len(block[-1]) < 0.6 * width
        if line and not (block and (line.startswith("• ") or ends)):
            block.append(line)
            continue
        if block:
            out.append(" ".join(block))
        block = [line] if line else []
    return out


def _segments(page: Page) -> tuple[list[tuple[list[_Unit], list[str], str | None]], list[str]]:
    """Split at post footers; footers above the first prose hold the page's own categories."""
    segments: list[tuple[list[_Unit], list[str], str | None]] = []
    page_tags: list[str] = []
    current: list[_Unit] = []
    current_tags: list[str] = []
    seen_prose = False
    for unit in page:
        footer = _footer(unit)
        if footer is None:
            current.append(unit)
            seen_prose = seen_prose or unit.prose
            continue
        tags, hint = footer
        if not seen_prose:
            (current_tags if segments else page_tags).extend(tags)
            continue
        segments.append((current, [*current_tags, *tags], hint))
        current, current_tags, seen_prose = [], [], False
    segments.append((current, current_tags, None))
    return segments, page_tags


def _footer(unit: _Unit) -> tuple[list[str], str | None] | None:
    """(tags, title named by the footer) of a "Posted in A, B | Comments Off on T" line.

    A tag or category archive header ("Tag Archive | "Light pollution"") gives its name.
    """
    if unit._footer is _UNSET:
        unit._footer = _read_footer(unit)
    return unit._footer  # type: ignore[return-value]


def _read_footer(unit: _Unit) -> tuple[list[str], str | None] | None:
    if unit.words > 40:
        return None
    match = _FOOTER.match(unit.text)
    if match is None:
        archive = _ARCHIVE_HEAD.match(unit.text) if unit.words <= 12 else None
        if archive is None:
            return None
        name = (archive.group("name") or archive.group("name2") or "").strip(" \"'“”‘’")
        return ([tag_slug(name)] if 0 < len(name.split()) <= 4 else []), None
    rest = match.group("rest")
    tail = _FOOTER_TAIL.search(rest)
    hint = None
    if tail is not None:
        hint = tail.group("hint")
        rest = rest[: tail.start()]
    parts = _SPLIT_TAGS.split(rest)
    if len(rest.split()) > 16 or any(len(part.split()) > 4 for part in parts):
        return None
    tags = [tag_slug(part) for part in parts]
    return [t for t in tags if t], hint


# ---------------------------------------------------------------- one article


def _article(
    units: list[_Unit],
    *,
    chrome: Keys,
    repeated: Keys,
    tags: Sequence[str],
    title_hint: str | None,
    later: bool,
    default_tz: tzinfo,
) -> Draft | None:
    start = _body_start(units, chrome)
    if start is None:
        return None
    if later and any(_comment_marker(units, i) for i in range(start)):
        return None
    echo = frozenset(u.key for u in units[start : start + _ECHO])
    head = _head(units[:start], chrome, echo, title_hint, default_tz)
    if head is None:
        return None
    stop = _body_stop(units, start)
    skip = {_key(head.title)} | ({_key(head.subtitle)} if head.subtitle else set())
    paragraphs = [
        unit.text
        for unit in _body_units(units[start:stop], chrome, repeated)
        if unit.key not in skip
    ]
    if not paragraphs:
        return None
    body, dateline = _split_dateline(paragraphs)
    return Draft(
        title=head.title,
        paragraphs=body,
        subtitle=head.subtitle,
        author=head.author,
        byline_source=head.byline_source,
        published=head.published,
        date_source=head.date_source,
        dateline=dateline,
        categories=tuple(dict.fromkeys(tags)),
    )


def _split_dateline(paragraphs: list[str]) -> tuple[tuple[str, ...], str | None]:
    """Take "QINGDAO, China - " or "(CNN) -- " off the first paragraph."""
    dateline, first = lines.split_dateline(paragraphs[0])
    if dateline is None:
        return tuple(paragraphs), None
    return (first, *paragraphs[1:]), dateline


def _has_any(text: str, needles: tuple[str, ...]) -> bool:
    """A cheap test before a regex: most lines hold none of the needles."""
    lowered = text.lower()
    return any(needle in lowered for needle in needles)


def _copyright(text: str) -> bool:
    return _has_any(text, _COPYRIGHT_HINTS) and bool(_COPYRIGHT.search(text))


def _is_furniture(unit: _Unit, chrome: Keys) -> bool:
    """Chrome by evidence or by the vocabulary of page furniture (short, non-prose lines)."""
    if unit._furniture is _UNSET:
        unit._furniture = _judge_furniture(unit, chrome)
    return unit._furniture is True


def _judge_furniture(unit: _Unit, chrome: Keys) -> bool:
    if unit.key in chrome:
        return True
    if unit.words <= 8 and not unit.terminal:
        text = unit.text.rstrip(" :»›>|")
        if _UI.match(text) or _copyright(text) or _PROMPT.search(text):
            return True
        if _COMMENT_WORDS.search(text) or _RELATED.match(text) or _ARCHIVE_HEAD.match(text):
            return True
    if unit.words <= 30 and (_copyright(unit.text) or _prompt_line(unit)):
        return True
    return unit.words <= 12 and bool(_ARCHIVE_HEAD.match(unit.text))


def _prompt_line(unit: _Unit) -> bool:
    """A newsletter or sign-up prompt: names the newsletter and asks, or is a fragment."""
    if unit.words > 30 or not _has_any(unit.text, _PROMPT_HINTS) or not _PROMPT.search(unit.text):
        return False
    first = unit.text[:1]
    asks = re.match(r"(?i)(?:sign|subscribe|join|get|enter|don'?t|never|receive|stay)\b", unit.text)
    return bool(asks) or first.islower() or not unit.terminal


def _body_start(units: list[_Unit], chrome: Keys) -> int | None:
    for i, unit in enumerate(units):
        if not unit.prose or unit.capitalised >= 0.75 or _is_furniture(unit, chrome):
            continue
        if _byline(unit) is not None or _footer(unit) is not None:
            continue
        # A sentence between the title and the byline or date line is the deck.
        following = units[i + 1 : i + 3]
        if any(_byline(u) is not None or _is_date(u) for u in following):
            continue
        return i
    return None


def _is_date(unit: _Unit) -> bool:
    if unit._date is _UNSET:
        unit._date = unit.words <= 14 and lines.is_date_line(unit.text)
    return unit._date is True


def _byline(unit: _Unit) -> tuple[str | None, str | None, str] | None:
    """(author, organisation, rest) of a "By Jane Doe, Agency | date" line."""
    if unit._byline is _UNSET:
        unit._byline = _read_byline(unit)
    return unit._byline  # type: ignore[return-value]


def _read_byline(unit: _Unit) -> tuple[str | None, str | None, str] | None:
    return None if unit.words > 16 else lines.read_byline(unit.text)


def _name_like(text: str) -> bool:
    return lines.name_like(text, lines.AUTHOR_PARTICLES, any_case=True)


def _comment_marker(units: list[_Unit], i: int) -> bool:
    """A comment widget line, or the start of a name / date / prose rhythm."""
    unit = units[i]
    if unit.words <= 8 and not unit.terminal and _COMMENT_WORDS.search(unit.text):
        return True
    if unit.text.endswith(":") and _SAYS.match(unit.text):
        return True
    if unit.words <= 5 and not unit.terminal and (_name_like(unit.text) or unit.text[:1].isupper()):
        nearby = units[i + 1 : i + 3]
        for j, other in enumerate(nearby):
            if _is_date(other):
                after = units[i + 2 + j : i + 3 + j]
                return not after or after[0].words >= 3
    return False


def _body_stop(units: list[_Unit], start: int) -> int:
    """Where the story ends: a comment thread, or chrome followed by no more prose."""
    # prose_after[i]: paragraphs of prose (not prompts) from line i on; only the body's count
    prose_after = [0] * (len(units) + 1)
    for i in range(len(units) - 1, start, -1):
        unit = units[i]
        prose_after[i] = prose_after[i + 1] + (unit.prose and not _prompt_line(unit))
    for i in range(start + 1, len(units)):
        if _comment_marker(units, i):
            stop = i
            # A short prompt or question right above a comment form belongs to the form.
            while stop > start + 1 and units[stop - 1].words <= 6:
                stop -= 1
            return stop
        unit = units[i]
        if unit.prose and not _prompt_line(unit) and not _copyright(unit.text):
            continue
        if prose_after[i + 1] <= 1 and not unit.prose:
            return i
    return len(units)


def _body_units(units: list[_Unit], chrome: Keys, repeated: Keys) -> Iterable[_Unit]:
    kept: list[_Unit] = []
    in_related = False
    for unit in units:
        if in_related and not unit.prose:
            continue
        in_related = False
        if unit.words <= 8 and not unit.terminal and _RELATED.match(unit.text.rstrip(" :»›>")):
            in_related = True
            continue
        if re.match(r"(?i)^(?:related|read (?:more|also|next)|see also|also read)\s*:", unit.text):
            continue
        if _is_furniture(unit, chrome) or unit.key in repeated:
            continue
        if _footer(unit) is not None or _is_date(unit) or _byline(unit) is not None:
            continue
        kept.append(unit)
    return _drop_link_runs(_trim_tail(kept))


def _trim_tail(units: list[_Unit]) -> list[_Unit]:
    while units and not units[-1].prose and not units[-1].text.startswith("• "):
        units = units[:-1]
    return units


def _drop_link_runs(units: list[_Unit]) -> list[_Unit]:
    """Three or more headline-like lines in a row inside a story are a list of links."""
    out: list[_Unit] = []
    run: list[_Unit] = []
    for unit in [*units, None]:
        if unit is not None and _headline_like(unit):
            run.append(unit)
            continue
        if len(run) < 3:
            out.extend(run)
        run = []
        if unit is not None:
            out.append(unit)
    return out


def _headline_like(unit: _Unit) -> bool:
    return 3 <= unit.words <= 20 and not unit.terminal and not unit.text.startswith("• ")


# ---------------------------------------------------------------- head: title, byline, date


def _head(
    units: list[_Unit],
    chrome: Keys,
    echo: Keys,
    title_hint: str | None,
    default_tz: tzinfo,
) -> _Head | None:
    hint_key = _key(title_hint) if title_hint else None
    candidates: list[int] = []
    author = org = None
    text_date: datetime | None = None
    updated_date: datetime | None = None
    dated_lines: list[tuple[int, datetime]] = []
    for i, unit in enumerate(units):
        byline = _byline(unit)
        if byline is not None:
            author, org = author or byline[0], org or byline[1]
            found = dates.find_date(byline[2], default_tz)
            text_date = text_date or (found[0] if found else None)
            continue
        dated = dates.date_line(unit.text, default_tz) if unit.words <= 14 else None
        if dated is not None:
            if dated[1]:
                updated_date = updated_date or dated[0]
            else:
                dated_lines.append((i, dated[0]))
            continue
        posted = _posted_by(unit, default_tz)
        if posted is not None:
            text_date = text_date or posted[0]
            author = author or posted[1]
            continue
        if _is_furniture(unit, chrome) or _footer(unit) is not None:
            continue
        if 2 <= unit.words <= 30 and not unit.text.rstrip(_CLOSERS).endswith("."):
            candidates.append(i)
    above = _headline_above_story(units, chrome)
    if above is not None and (not candidates or candidates[-1] < above):
        candidates.append(above)
    if not candidates:
        return None
    title_index = _pick_title(units, candidates, echo, hint_key)
    title = units[title_index].text
    subtitle = next(
        (
            units[i].text
            for i in candidates
            if i > title_index and units[i].words >= 5 and units[i].key != units[title_index].key
        ),
        None,
    )
    if subtitle is None:
        subtitle = next(
            (
                u.text
                for u in units[title_index + 1 :]
                if u.prose
                and not _is_furniture(u, chrome)
                and u.key != units[title_index].key
                and _byline(u) is None
                and not _is_date(u)
            ),
            None,
        )
    source: DateSource | None = None
    header_date = None
    for i, stamp in dated_lines:
        if i < title_index:
            header_date = header_date or stamp
        else:
            text_date = text_date or stamp
            # A name standing alone right above the date line is the byline.
            if author is None and i > 0 and _name_like(units[i - 1].text) and i - 1 != title_index:
                author = units[i - 1].text
    published = text_date or updated_date
    if published is not None:
        source = "text"
    elif header_date is not None:
        published, source = header_date, "page-header"
    return _Head(title, subtitle, author, org, published, source)


def _headline_above_story(units: list[_Unit], chrome: Keys) -> int | None:
    """The line right above the story (past its byline and date) when repetition marked it.

    A headline also listed in a sidebar or a related-links box of other pages is still
    the headline of the story printed right under it.
    """
    i = len(units) - 1
    while i >= 0 and (
        _byline(units[i]) is not None
        or _is_date(units[i])
        or _is_ui(units[i])
        or _posted_by(units[i], lines.PROBE_TZ) is not None
    ):
        i -= 1
    if i < 0 or units[i].key not in chrome:
        return None
    unit = units[i]
    ends_sentence = unit.text.rstrip(_CLOSERS).endswith(".")
    return i if 2 <= unit.words <= 16 and not ends_sentence and not _is_ui(unit) else None


def _is_ui(unit: _Unit) -> bool:
    return unit.words <= 8 and not unit.terminal and bool(_UI.match(unit.text.rstrip(" :»›>|")))


def _pick_title(
    units: list[_Unit],
    candidates: list[int],
    echo: Keys,
    hint: int | None,
) -> int:
    """The headline: the one a footer names, else one printed again as the story starts, else
    the one nearest the story (a longer line right under a headline is its deck).

    Branding is not a headline: a tagline (a line starting lower-case) and the site name
    right above it, a menu bar, and lines too long for a headline (decks) are skipped.
    """
    taglines = {i for i in candidates if units[i].text[:1].islower()}
    branding = taglines | {i for i in candidates if i + 1 in taglines}
    eligible = [
        i
        for i in candidates
        if i not in branding and units[i].words <= 16 and units[i].text.count(" | ") < 2
    ] or candidates
    if hint:
        for i in eligible:
            if units[i].key == hint:
                return i
    for i in eligible:
        if units[i].key in echo:
            return i
    last = eligible[-1]
    above = last - 1
    while above >= 0 and above not in candidates:
        above -= 1
    if above in eligible and units[above].words >= 4 and units[last].words > units[above].words:
        return above
    return last


def _posted_by(unit: _Unit, default_tz: tzinfo) -> tuple[datetime, str | None] | None:
    """ "Posted on March 3, 2019 by Jane Doe" → (date, author)."""
    if unit.words > 20:
        return None
    match = _POSTED_BY.match(unit.text)
    if match is None:
        return None
    when = dates.date_line(match.group("when"), default_tz)
    if when is None:
        return None
    who = match.group("who").strip()
    return when[0], who if _name_like(who) else None
