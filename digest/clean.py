"""Scraped plain text → articles: title, deck, byline, date, tags and a chrome-free body.

The cleaner works by evidence, never by a list of any site's phrases:

* repetition — a line found in two different stories of one collection, or twice in one
  page, is site chrome (disclaimers, share blocks, footers);
* structure — a page is head (nav, title, deck, byline, dates), body (from the first
  paragraph of prose) and tail (related links, newsletter prompts, comment threads);
* vocabulary of page furniture — the words of buttons and widgets ("share", "reply",
  "subscribe", "©"), only ever on short lines that are not prose;
* rhythm — a comment thread is a name, a date and prose, again and again (one name and
  date over a story is its byline);
* the page title a scraper prints first — its headline, printed again above the story,
  marks where the story starts (of several repeats, the one with most prose under it)
  and is the title;
* proportion — beside a page's longest post, an undated post with a fraction of its text
  is a box of the page, not an article.

Post footers ("Posted in …", "Filed under …", "Tags: …") become tags, and on an archive
page they split it into its separate posts (``segment``), but only right under a post's
worth of prose. Bylines, names, date lines and datelines are read by ``lines`` and
``dates``, which the summarizer shares.

Two doors: ``clean_collection`` for the scraped pages of one collection (repetition across
them is evidence), ``polish`` for text another extractor already cut out (HTML, feeds).

How to add a chrome rule: put its words in the vocabulary group below that names what it
catches (or start a group, with its one-line comment), so it is tested only where that
group is: short non-prose lines (``LABEL_MAX_WORDS``) for widget words, lines up to
``PROMPT_MAX_WORDS`` for copyright and newsletter prompts. A new kind of evidence goes into
``_judge_furniture``, in its order. Then add a case to ``tests/test_clean.py``, copying
``test_news_layout_byline_date_dateline_and_furniture`` (a small page with the furniture
line and the story it must not cost), and run ``tests/test_clean.py`` (the seeds' hand
labels) and ``tests/test_corpus.py`` (chrome left in, and where each body starts and ends).
"""

from __future__ import annotations

import bisect
import itertools
import re
import tempfile
import weakref
from array import array
from collections import Counter
from collections.abc import ItemsView, Iterable, Iterator, Mapping, Sequence, ValuesView
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import IO, overload

from digest import dates, lines, segment
from digest.models import DateSource, Draft, Evidence
from digest.segment import UNASKED, Page, Unit

# ---------------------------------------------------------------- vocabulary

# UI and navigation: menus, buttons, share and ad labels, widget headings. Tested only on
# short lines that are not prose (LABEL_MAX_WORDS, no end mark), trailing "›", "|" off.
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
_LABEL_END = " :»›>|"  # marks after a widget label: "Share »", "Menu |"

# Copyright notices: "©", "(c) 2019", "Copyright". Tested on short non-prose lines and on
# any line up to PROMPT_MAX_WORDS; the hints are a cheap test before the regex.
_COPYRIGHT = re.compile(r"©|\(c\)\s*(?:19|20)\d\d|\bcopyright\b|all rights reserved", re.I)
_COPYRIGHT_HINTS = ("©", "(c)", "copyright", "rights reserved")

# Newsletter and sign-up prompts. Tested on short non-prose lines, and on lines up to
# PROMPT_MAX_WORDS that ask (_ASKS), start lower-case (a fragment) or end without a mark.
_PROMPT = re.compile(
    r"\b(?:newsletters?|subscribe|subscription|sign up|signup|sign-up|inbox|unsubscribe)\b",
    re.I,
)
_PROMPT_HINTS = ("newsletter", "subscri", "sign up", "signup", "sign-up", "inbox")
_ASKS = re.compile(r"(?i)(?:sign|subscribe|join|get|enter|don'?t|never|receive|stay)\b")

# Comment widgets ("3 Comments", "Reply", "Leave a reply") and a commenter's "Jane says:".
# The widget words are tested on short non-prose lines; "… says:" on lines ending in ":".
_COMMENT_WORDS = re.compile(
    r"\b(?:comments?|repl(?:y|ies)|feedbacks?|notify|discussion|responses|voted)\b", re.I
)
# A comment's stamp: "07.15.12", "10/8/12", "2:59 PM", and the words that join them.
_STAMP = re.compile(
    r"\b\d{1,2}[./-]\d{1,2}[./-]\d{2,4}\b|\b\d{1,2}:\d\d(?:\s*[ap]\.?m\.?)?|\b(?:at|on)\b",
    re.I,
)
_STAMP_DIGITS = re.compile(r"\d[./:-]\d")
_NAME_SEPARATOR = re.compile(r"\s*[|•·]\s*")
_SAID = re.compile(r"\b(?:says|said|wrote)\W*$", re.I)
_SAYS = re.compile(r"^[\w .'’-]{2,40}\s(?:says|said|wrote)(?: on .*)?:$", re.I)

# Related-links headings ("Related stories", "More from Sports", "Most read"). Tested on
# short non-prose lines (the non-prose lines under one go with it); a "Related: …" line
# with its link on it (_RELATED_LABEL) is dropped at any length.
_RELATED = re.compile(
    r"^(?:related(?: \w+)?|read (?:also|more|next)|see also|also read|also on \w+|"
    r"more (?:from|on|in)\b.*|"
    r"more \w+(?: \w+)? (?:news|stories|articles|posts)|you (?:may|might) (?:also )?like|"
    r"recommended(?: for you)?|most (?:popular|read|viewed|shared)|trending(?: now)?|"
    r"further reading|popular posts|top stories|latest (?:news|stories|posts)|"
    r"don'?t miss|editors'? picks?|what to read next)\b",
    re.I,
)
_RELATED_END = " :»›>"  # marks after a related-links heading
_RELATED_LABEL = re.compile(r"(?i)^(?:related|read (?:more|also|next)|see also|also read)\s*:")

# Archive heads ("Tag Archive | Lamps", "Posts tagged lamps") are ``segment.ARCHIVE_HEAD``:
# the segmenter reads the tag they name; here they are furniture, on short non-prose lines
# and on any line up to segment.ARCHIVE_HEAD_MAX_WORDS.

# Editorial notices around a story: where it first appeared, how to write to the editor, a
# link on to the rest, a reprint licence. Tested on lines up to NOTICE_MAX_WORDS.
_NOTICE = re.compile(
    r"(?i)\b(?:(?:this|the) (?:article|story|post|piece|column|essay|interview) "
    r"(?:was |is )?(?:originally |first )?(?:appeared|published|posted|ran)\b|"
    r"(?:originally|first) (?:appeared|published|posted) (?:on|in|at|by)\b|"
    r"(?:submit|send|write) (?:a |your )?letters? to the editor|letters? to the editor:|"
    r"^(?:continue|keep) reading\b|^read (?:the )?(?:full|more|rest|whole|original)\b|"
    r"^click here (?:to|for)\b|for (?:your )?personal,? non-?commercial use|"
    r"order (?:[\w-]+ )?(?:copies|reprints)|reprints? (?:&|and) permissions)"
)
# A caption's credit at the end of a line: "… Photo: AP", "(Getty Images)", "(AP Photo/Jane
# Doe)", "Credit: Jane Doe/Reuters", "Photograph: …". Tested on lines up to NOTICE_MAX_WORDS.
_CREDIT_LINE = re.compile(
    r"(?i)(?:\b(?:photo(?:graph)?s?|image|picture|pic|credit|courtesy|foto|bild|video)"
    r"(?: credit)?s?\s*(?::|by|via|courtesy of)\s*[^.!?]{1,60}$|"
    r"\((?:[^()]{0,60}[/ ])?(?:getty(?: images)?|ap(?: photo)?|afp|reuters|epa|"
    r"associated press|shutterstock|istock(?:photo)?|[\w.]+ photo|file photo|"
    r"photo[^()]{0,40}|[^()]{0,40}images?)\)\s*$)"
)

# "Posted on March 3, 2019 by Jane Doe in News": a date, an author, categories.
_POSTED_BY = re.compile(r"^(?P<when>.*?)\s+by\s+(?P<who>[A-Z][^,|]*?)(?:\s+in\s+(?P<cats>.+))?$")

_NON_WORD = re.compile(r"[\W_]+")
# Between a page title's parts: "Headline | Site", "Headline - Section - Site", "Site :: …".
_TITLE_SEPARATOR = re.compile(r"\s+(?:[|–—·»«:>›‹]{1,2}|-{1,2})\s+")
_COLON_TITLE = re.compile(r"(?<=\S):\s+")  # "Site: Headline" (or "Topic: Headline")

# ---------------------------------------------------------------- thresholds (in words)

LABEL_MAX_WORDS = 8  # a line this short and not ending a sentence is a label: widget words
PROMPT_MAX_WORDS = 30  # copyright notices and newsletter prompts are never longer
STORY_LINE_WORDS = 8  # a line this long is a story's own: copies of a story share such lines
COPY_MAX_POSTS = 8  # a long line in more posts than this is chrome, not a story's copies
COPY_SHARE = 0.5  # two posts sharing this share of their long lines are copies of one story
MAIN_RUN_GAP = 2  # short lines between two long ones that still leave them one run
HEADLINE_CAPS = 0.75  # a prose line this capitalised is a headline or deck, not the body
DECK_REACH = 2  # a sentence this few lines above a byline or date line is the deck …
DECK_SKIP_WORDS = 3  # … not counting the lines this short between them (a share row) …
DECK_SCAN = 8  # … of the lines this near; and with this much prose under the byline
DECK_STORY_WORDS = 40
DATE_LINE_MAX_WORDS = 14  # a line with more words is not a date line
BYLINE_MAX_WORDS = 16  # a line with more words is not a byline
POSTED_BY_MAX_WORDS = 20  # a "Posted on <date> by <name>" line is never longer
DATE_TAIL_CHARS = 4  # a date glued to a headline ends its line, but for a zone's letters
SPLIT_DATE_PART_WORDS = 3  # a line of a date printed over several: "23", "Jul", "6:06pm, EDT"
SPLIT_DATE_MAX_LINES = 4  # … over at most this many lines
ECHO_LINES = 5  # a headline printed again within this many lines of the story's start
GLUED_MIN_WORDS = 5  # a headline this long is found too where it opens a longer line
ECHO_PROSE_REACH = 20  # lines under a repeat of the page title's headline weighed for prose
BARE_NAME_MIN_WORDS = 2  # a name alone on its line above a date: at least a first and last
POST_SHARE_OF_MAIN = 0.25  # a page's post with less than this share of its longest: chrome
COMMENT_HEAD_MAX_WORDS = 12  # a commenter's name and stamp on one line
COMMENTER_MAX_WORDS = 5  # a commenter's name line, above the date of the comment
COMMENT_REACH = 12  # lines under a name / date pair looked at for another, or for a story
STORY_MIN_PARAGRAPHS = 2  # a comment label above fewer body paragraphs: maybe a share row's
STORY_MIN_PROSE_WORDS = 120  # prose under one name / date pair that makes it a byline
COMMENT_MIN_WORDS = 3  # the line after a commenter's name and date: the comment's words
FORM_PROMPT_MAX_WORDS = 6  # a short prompt right above a comment form belongs to the form
TAIL_PROSE = 1  # a non-prose line with no more than this much prose below it ends the story
LINK_RUN = 3  # this many headline-like lines in a row inside a story are a list of links
LINK_MIN_WORDS = 3  # a headline-like line of a link list: at least …
LINK_MAX_WORDS = 20  # … and at most this many words, not ending a sentence
HEAD_MIN_WORDS = 2  # a line of the head that may be the title or the deck: at least …
HEAD_MAX_WORDS = 30  # … and at most this many words
DECK_MIN_WORDS = 5  # a deck (subtitle) is at least this long
TITLE_MAX_WORDS = 16  # a longer line is a deck, not a headline
TITLE_MENU_BARS = 2  # a line with this many " | " is a menu bar, not a headline
TITLE_ABOVE_MIN_WORDS = 4  # a headline right above a longer line (its deck): at least …
STORY_START_WORDS = 8  # extracted text starts at its first sentence of this many words
NOTICE_MAX_WORDS = 60  # an editorial notice or a caption with its credit is never longer

SPILL_BYTES = 4_000_000  # a collection's gathered pages are held in memory up to this, then on disk

Keys = frozenset[int]  # hashed line keys: a page's lines cost one int each, not a string


@dataclass(frozen=True, slots=True)
class _Head:
    title: str
    subtitle: str | None
    author: str | None
    byline_source: str | None
    published: datetime | None
    date_source: DateSource | None


def clean_collection(
    texts: Iterable[str], *, default_tz: tzinfo, evidence: Evidence | None = None
) -> Cleaning:
    """The articles of each text of one collection, in order: one, or several for an archive.

    Every text is gathered first, as it is drawn from ``texts`` (``Gathering``: so a caller
    may pass a generator, and no more than one page is held at a time): lines repeated across
    the collection's stories are chrome. ``evidence`` is what earlier runs saw of the same
    source (``Cleaning.learned`` of those runs, summed: ``Evidence``), so a page cleaned
    alone is judged against its site's other pages too. Then each page is cleaned only when
    its articles are asked for, and dropped. A page that fails raises from its own
    ``next()`` and the next call goes on with the next page, so a caller can reject one page
    alone.
    """
    gathering = Gathering(evidence)
    for text in texts:
        gathering.add(text)
    return gathering.cleaning(default_tz)


class Gathering:
    """The first of a collection's two passes: each text, as it comes, is prepared, the line
    keys of its posts are noted for the collection's evidence (a few numbers a line, in
    arrays), and the prepared page is set aside (``segment.pack``; on disk past
    ``SPILL_BYTES``); ``cleaning`` then cleans the pages one by one, in order."""

    def __init__(self, evidence: Evidence | None = None) -> None:
        self._evidence = evidence or Evidence()
        self._keys = _Ragged()  # each post's line keys, each once, in order
        self._long = _Ragged()  # each post's keys of long lines (STORY_LINE_WORDS), in order
        self._main = _Ragged()  # each post's keys of its main run (``_main_run``)
        self._prints = array("q")  # each post's fingerprint
        # Closed when let go: by this gathering, or by the cleaning it hands the pages to.
        self._pages: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPILL_BYTES)  # noqa: SIM115
        self._release = weakref.finalize(self, self._pages.close)
        self._sizes = array("q")  # each packed page's length, in the order set aside

    def add(self, text: str) -> None:
        """Prepare one more text, note its posts' keys, and set the page aside."""
        page = segment.prepare(text)
        for units, _, _ in segment.segments(page)[0]:
            self._keys.append(dict.fromkeys(unit.key for unit in units))
            self._long.append([unit.key for unit in units if unit.words >= STORY_LINE_WORDS])
            self._main.append(_main_run(units))
            self._prints.append(segment.fingerprint(units))
        packed = segment.pack(page)
        self._pages.write(packed)
        self._sizes.append(len(packed))

    def cleaning(self, default_tz: tzinfo) -> Cleaning:
        """The second pass: the pages gathered, cleaned as they are asked for."""
        chrome, learned = _collection_chrome(
            self._keys, self._long, self._main, self._prints, self._evidence
        )
        self._keys = self._long = self._main = _Ragged()  # no longer needed: let go
        self._release.detach()
        self._pages.seek(0)
        return Cleaning(self._pages, self._sizes, chrome, learned, default_tz)


class _Ragged(Sequence["array[int]"]):
    """Rows of 64-bit numbers of any lengths, all in one array (a row costs 8 bytes a
    number, not a list and an object a number)."""

    def __init__(self) -> None:
        self._values = array("q")
        self._ends = array("q")

    def append(self, row: Iterable[int]) -> None:
        self._values.extend(row)
        self._ends.append(len(self._values))

    def __len__(self) -> int:
        return len(self._ends)

    @overload
    def __getitem__(self, index: int) -> array[int]: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[array[int]]: ...
    def __getitem__(self, index: int | slice) -> array[int] | Sequence[array[int]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        start = self._ends[index - 1] if index else 0
        return self._values[start : self._ends[index]]


def polish(title: str, lines: Sequence[str]) -> tuple[tuple[str, ...], str | None]:
    """Body paragraphs of already-extracted text (HTML, feeds): furniture out, dateline apart.

    The extractor already cut the page's chrome, so only what is furniture by itself goes:
    the title printed again, vocabulary furniture (``_judge_furniture``), editorial notices
    and captions' credits (``_notice``), footers, a related-links head with its links, and
    the head above the story's first sentence
    (labels, timestamps, a section label, the headline again: ``_story_start``). Every
    other paragraph stays, tables' rows and lists too.
    """
    units = segment.units([segment.normalise(line) for line in lines])
    title_key = segment.key(title)
    kept = [u for u in _extracted_units(units, credits=True) if u.key != title_key]
    if not any(u.prose for u in kept):  # a photo page: its captions are all its text
        kept = [u for u in _extracted_units(units, credits=False) if u.key != title_key]
    text = [u.text for u in kept[_story_start(kept) :]]
    return _split_dateline(text) if text else ((), None)


def _extracted_units(units: list[Unit], *, credits: bool) -> Iterator[Unit]:
    """The lines of extracted text that are not furniture by themselves (see ``polish``);
    notices and captions' credits out only when ``credits``."""
    for unit in _outside_related(units):
        if credits and _notice(unit):
            continue
        if _is_furniture(unit, frozenset()) or segment.footer(unit) is not None:
            continue
        yield unit


def _story_start(units: list[Unit]) -> int:
    """Where the story starts: its first sentence of prose, past the head above it.

    Labels, timestamps, a byline, a section label, a tagline and the headline again stand
    above the story as short lines or lines that end no sentence; an extract of no such
    sentence starts at 0.
    """
    for i, unit in enumerate(units):
        if unit.words > HEAD_MAX_WORDS:  # no head line is this long: the story is under way
            return i
        if unit.words >= STORY_START_WORDS and unit.terminal and _byline(unit) is None:
            return i
    return 0


def _notice(unit: Unit) -> bool:
    """An editorial notice or a caption's credit (``_NOTICE``, ``_CREDIT_LINE``)."""
    if unit.words > NOTICE_MAX_WORDS:
        return False
    return bool(_NOTICE.search(unit.text) or _CREDIT_LINE.search(unit.text))


def tag_slug(text: str) -> str:
    """A tag as a lower-case slug: "Light Pollution" → "light-pollution"."""
    return "-".join(_NON_WORD.sub(" ", text.casefold()).split())


class Cleaning(Iterator[list[Draft]]):
    """The gathered pages of a collection, each read back and cleaned when asked for, then
    let go; ``learned`` is the evidence they add to their source's (each line key with how
    many more different stories printed it, 0 for a line of a story seen before; the posts'
    fingerprints), for the store to keep and a later run to pass back as ``evidence``."""

    def __init__(
        self, pages: IO[bytes], sizes: array[int], chrome: Keys, learned: Evidence,
        default_tz: tzinfo,
    ) -> None:  # fmt: skip
        self._pages = pages
        self._sizes = sizes
        self._next = 0
        self._chrome = chrome
        self._default_tz = default_tz
        self.learned = learned
        self._release = weakref.finalize(self, pages.close)  # once read, or let go unread

    def __next__(self) -> list[Draft]:
        if self._next == len(self._sizes):
            raise StopIteration
        # Read before it is cleaned: a page that fails costs only itself.
        page = segment.unpack(self._pages.read(self._sizes[self._next]))
        self._next += 1
        if self._next == len(self._sizes):
            self._release()
        return _clean_page(page, chrome=self._chrome, default_tz=self._default_tz)


def _collection_chrome(
    keys: Sequence[Sequence[int]],
    long_keys: Sequence[Sequence[int]],
    main_runs: Sequence[Iterable[int]],
    prints: Sequence[int],
    evidence: Evidence,
) -> tuple[Keys, Evidence]:
    """Keys of lines that stand in two or more different stories of one collection, with
    the stories ``evidence`` counts for its source from earlier runs; and what these pages
    add to that evidence (each key with how many more stories printed it, and the posts).
    Of each post: its line ``keys``, the keys of its long lines and of its main run
    (``_main_run``), its fingerprint.

    Copies of one story (a syndicated article, a post shown on two archive pages, a page
    read again) share their paragraphs, so posts are first grouped into stories
    (``story_of``), and a story the evidence holds already (one of its posts seen as it is,
    or its long lines: ``_seen_before``) is that story again, not one more: only
    repetition across different stories counts. The counts are made in arrays, and only
    the keys printed by more than one post (``_repeated``) are held as objects meanwhile:
    a dict of every key of a large collection cost ~100 bytes a key, where its counts cost 12.
    ``keys`` gives each key of a post once (``Gathering`` does).
    """
    stories = story_of(long_keys)
    known = evidence.lines
    seen = {stories[index] for index, found in enumerate(prints) if found in evidence.posts}
    if known:  # with no lines seen before, no story is seen by its lines
        by_story = sorted(range(len(stories)), key=stories.__getitem__)
        for story, group in itertools.groupby(by_story, key=stories.__getitem__):
            posts = list(group)
            if story not in seen and _seen_before(
                {key for index in posts for key in main_runs[index]}, known
            ):
                seen.add(story)
    size = Counter(stories)  # posts of each story
    # Every key, in the order the posts first print it, with its count of stories: a key
    # printed by one post only (most are) is counted as it is met; one printed by more
    # (``_repeated``, which also names a few of the others) goes where it is first met and
    # is counted once a story, for a story of one post as it is met, for copies below.
    place = _repeated(itertools.chain.from_iterable(keys), sum(map(len, keys)))
    order, counts = array("q"), array("i")  # a count of stories is far below 2**31
    chrome: list[int] = []
    for index, post_keys in enumerate(keys):
        story = stories[index]
        again = story in seen
        alone = size[story] == 1
        for key in post_keys:
            at = place.get(key)
            if at is None:
                n = 0 if again and known.get(key) else 1
                if known and known.get(key, 0) + n >= 2:
                    chrome.append(key)
                order.append(key)
                counts.append(n)
                continue
            if at < 0:
                place[key] = at = len(order)
                order.append(key)
                counts.append(0)
            if alone and (not again or not known.get(key)):
                counts[at] += 1
    copies = sorted(
        (index for index, story in enumerate(stories) if size[story] > 1), key=stories.__getitem__
    )
    for story, group in itertools.groupby(copies, key=stories.__getitem__):
        again = story in seen
        for key in {key for index in group for key in keys[index] if key in place}:
            if not again or not known.get(key):
                counts[place[key]] += 1
    chrome.extend(key for key, at in place.items() if known.get(key, 0) + counts[at] >= 2)
    return frozenset(chrome), Evidence(_Counts(order, counts), _Prints(prints))


def _repeated(keys: Iterable[int], count: int) -> dict[int, int]:
    """Of the ``count`` keys given, each one given more than once, to -1 (for the caller to
    fill in); and a few given once, whose bit of the bitmap an earlier key had set (a false
    repeat costs the caller only its exact count). The bitmap has 32 to 64 bits for each
    key given, indexed by a key's low bits (line keys are hashes), so that of a collection's
    keys only the repeated ones are held as Python objects at once."""
    size = 1 << max(count * 32, 8).bit_length()
    bits = bytearray(size // 8)
    mask = size - 1
    found: dict[int, int] = {}
    for key in keys:
        bit = key & mask
        if bits[bit >> 3] & (1 << (bit & 7)):
            found[key] = -1
        else:
            bits[bit >> 3] |= 1 << (bit & 7)
    return found


class _Counts(Mapping[int, int]):
    """A batch's count for each line key, in arrays (12 bytes a key, not a dict's ~100),
    in the order given: read through in order, as the store does; a dict is built only
    when a key is looked up."""

    def __init__(self, keys: array[int], counts: array[int]) -> None:
        self._keys = keys
        self._counts = counts
        self._index: dict[int, int] | None = None

    def __getitem__(self, key: int) -> int:
        if self._index is None:
            self._index = dict(zip(self._keys, self._counts, strict=True))
        return self._index[key]

    def __iter__(self) -> Iterator[int]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def items(self) -> ItemsView[int, int]:
        return _CountsItems(self)

    def values(self) -> ValuesView[int]:
        return _CountsValues(self)


class _Prints(AbstractSet[int]):
    """A batch's post fingerprints, sorted in an array (8 bytes each, not a set's ~100)."""

    def __init__(self, prints: Iterable[int]) -> None:
        self._sorted = array("q", sorted(set(prints)))

    def __contains__(self, found: object) -> bool:
        if not isinstance(found, int):
            return False
        at = bisect.bisect_left(self._sorted, found)
        return at < len(self._sorted) and self._sorted[at] == found

    def __iter__(self) -> Iterator[int]:
        return iter(self._sorted)

    def __len__(self) -> int:
        return len(self._sorted)


class _CountsItems(ItemsView[int, int]):
    """The keys and counts of ``_Counts``, read side by side (no lookups)."""

    _mapping: _Counts

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return zip(self._mapping._keys, self._mapping._counts, strict=True)


class _CountsValues(ValuesView[int]):
    """The counts of ``_Counts``, read in order (no lookups: ``Mapping.values`` would look
    each key up, and so build the index dict of every key that ``_Counts`` is not)."""

    _mapping: _Counts

    def __iter__(self) -> Iterator[int]:
        return iter(self._mapping._counts)


def became_chrome(before: Evidence, added: Evidence) -> Keys:
    """The lines a batch showed to be chrome (``added`` to ``before``): a site's tagline
    or footer that its earlier pages, read one at a time, could only take for their own."""
    known = before.lines
    return frozenset(
        key for key, n in added.lines.items() if known.get(key, 0) < 2 <= known.get(key, 0) + n
    )


def _main_run(units: Sequence[Unit]) -> list[int]:
    """Keys of the long lines (``STORY_LINE_WORDS``) of a post's run of them with the most
    words (a short line or two between them, a caption or a subhead, does not end a run):
    its story, most likely, and not the list of headlines, sidebar or footer it shares with
    the site's other pages."""
    best: tuple[int, list[int]] = (0, [])
    words, run, gap = 0, [], 0
    for unit in (*units, None):
        if unit is not None and unit.words >= STORY_LINE_WORDS:
            words, gap = words + unit.words, 0
            run.append(unit.key)
        elif run and (unit is None or (gap := gap + 1) > MAIN_RUN_GAP):
            best = max(best, (words, run), key=lambda found: found[0])
            words, run = 0, []
    return best[1]


def _seen_before(long_keys: set[int], known: Mapping[int, int]) -> bool:
    """A story an earlier run saw already: ``story_of``'s test of two copies, of the long
    lines of its main run (``_main_run``: a new story beside a sidebar seen before is no
    copy of that sidebar's page) against those the evidence holds (those in more than
    ``COPY_MAX_POSTS`` stories prove nothing)."""
    shared = sum(1 for key in long_keys if 1 <= known.get(key, 0) <= COPY_MAX_POSTS)
    return shared >= 2 and shared >= COPY_SHARE * len(long_keys)


def story_of(long_keys: Sequence[Sequence[int]]) -> list[int]:
    """Which story each post is (one number for all copies of a story), from the keys of
    its long lines (``STORY_LINE_WORDS`` words or more).

    Two posts are copies when they share at least two long lines, and at least
    ``COPY_SHARE`` of the long lines of the one that has fewer; a long line in more than
    ``COPY_MAX_POSTS`` posts is a site's furniture and proves nothing. Shared by the
    cleaner (posts of a site's pages) and the feed reader (entries of a feed).
    """
    # Each key's posts, for the keys in more than one (and a few others: ``_repeated``), in
    # the order the posts first print them: one post as a number, more as a list.
    repeated = _repeated(itertools.chain.from_iterable(long_keys), sum(map(len, long_keys)))
    where: dict[int, int | list[int]] = {}
    for index, keys in enumerate(long_keys):
        for key in filter(repeated.__contains__, dict.fromkeys(keys)):
            found = where.get(key)
            if found is None:
                where[key] = index
            elif isinstance(found, int):
                where[key] = [found, index]
            else:
                found.append(index)
    del repeated
    return _joined(long_keys, where.values())


def _joined(long_keys: Sequence[Sequence[int]], where: Iterable[int | list[int]]) -> list[int]:
    """``story_of``'s stories from the posts of each long line (``where``: one post as a
    number, more as a list): posts that share enough of them joined into one."""
    parent = list(range(len(long_keys)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    shared: Counter[tuple[int, int]] = Counter()
    for found_in in where:
        if not isinstance(found_in, int) and len(found_in) <= COPY_MAX_POSTS:
            shared.update(itertools.combinations(found_in, 2))
    for (a, b), count in shared.items():
        if count >= 2 and count >= COPY_SHARE * min(len(long_keys[a]), len(long_keys[b])):
            parent[root(a)] = root(b)
    return [root(i) for i in range(len(long_keys))]


def _clean_page(page: Page, *, chrome: Keys, default_tz: tzinfo) -> list[Draft]:
    """The articles of one prepared page: one, or several for an archive page."""
    counts = Counter(unit.key for unit in page)
    repeated = frozenset(key for key, n in counts.items() if n >= 2)
    posts, page_tags = segment.segments(page)
    drafts = []
    for number, (units, tags, hint) in enumerate(posts):
        draft = _article(
            units,
            chrome=chrome,
            repeated=repeated,
            tags=(*page_tags, *tags),
            title_hint=hint,
            page_title=page[0] if number == 0 and page else None,
            later=number > 0,
            default_tz=default_tz,
        )
        if draft is not None:
            drafts.append(draft)
    return _beside_the_main(drafts)


def _beside_the_main(drafts: list[Draft]) -> list[Draft]:
    """The page's articles without its chrome posts: beside the page's longest article, an
    undated post with a fraction of its text is a box of the page (an "About the author",
    a "More blogs" list), not a post of an archive page (which prints each post's date);
    a post headed like a comment is a comment."""
    if len(drafts) < 2:
        return drafts
    drafts = [draft for draft in drafts if not _commenter_head(draft.title)] or drafts
    sizes = [sum(lines.word_count(p) for p in draft.paragraphs) for draft in drafts]
    least = max(sizes) * POST_SHARE_OF_MAIN
    return [
        draft
        for draft, size in zip(drafts, sizes, strict=True)
        if size >= least or draft.published is not None  # an archive's short post is dated
    ]


# ---------------------------------------------------------------- one article


def _article(
    units: list[Unit],
    *,
    chrome: Keys,
    repeated: Keys,
    tags: Sequence[str],
    title_hint: str | None,
    page_title: Unit | None,
    later: bool,
    default_tz: tzinfo,
) -> Draft | None:
    start = None
    glued = False  # the headline repeated opening a longer line: it is the title
    headline = headline_of(page_title.text) if page_title is not None else None
    found_echo = (
        _echoed_headline(units, page_title, headline)
        if page_title is not None and headline is not None
        else None
    )
    if found_echo is not None and page_title is not None:  # the story is under the headline
        echoed, headline = found_echo
        found = _body_start(units[echoed + 1 :], chrome)
        start = None if found is None else echoed + 1 + found
        glued = units[echoed].key not in {segment.key(headline), page_title.key}
        title_hint = title_hint or (None if glued else units[echoed].text)
    if start is None:
        start = _body_start(units, chrome)
        if start == 0 and page_title is not None and units[0] is page_title:
            found = _body_start(units[1:], chrome)  # a long page title reads as prose
            start = None if found is None else 1 + found
    if start is None:
        return None
    if later and any(_comment_marker(units, i) for i in range(start)):
        return None
    echo = frozenset(u.key for u in units[start : start + ECHO_LINES])
    head = _head(units[:start], chrome, echo, title_hint, default_tz)
    if head is None:
        return None
    stop = _body_stop(units, start)
    skip = {segment.key(head.title)} | ({segment.key(head.subtitle)} if head.subtitle else set())
    paragraphs = [
        unit.text
        for unit in _body_units(units[start:stop], chrome, repeated)
        if unit.key not in skip
    ]
    if not paragraphs:
        return None
    body, dateline = _split_dateline(paragraphs)
    title = head.title
    if headline is not None and page_title is not None and (glued or title == page_title.text):
        title = headline  # of "Headline - Site"
    published, date_source = head.published, head.date_source
    if glued and found_echo is not None and published is None:  # "Headline Politics, Nov 6 …"
        published = _date_after(units[found_echo[0]].text, len(found_echo[1]), default_tz)
        date_source = "text" if published is not None else None
    return Draft(
        title=title,
        paragraphs=body,
        subtitle=head.subtitle,
        author=head.author,
        byline_source=head.byline_source,
        published=published,
        date_source=date_source,
        dateline=dateline,
        categories=tuple(dict.fromkeys(tag_slug(tag) for tag in tags)),
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
    return any(map(lowered.__contains__, needles))  # no generator: asked of most lines


def _copyright(text: str) -> bool:
    return _has_any(text, _COPYRIGHT_HINTS) and bool(_COPYRIGHT.search(text))


def _is_furniture(unit: Unit, chrome: Keys) -> bool:
    """``_judge_furniture``, asked once per line (a line's chrome set is its batch's)."""
    if unit.memo_furniture is UNASKED:
        unit.memo_furniture = _judge_furniture(unit, chrome)
    return unit.memo_furniture is True


def _judge_furniture(unit: Unit, chrome: Keys) -> bool:
    """Whether a line is page furniture: the one decision, evidence in this order.

    1. Repetition: a line in ``chrome`` (two different stories of the collection).
    2. Vocabulary on labels (up to LABEL_MAX_WORDS, not ending a sentence, trailing marks
       off): UI words, copyright, prompts, comment-widget words, related-links headings,
       archive heads.
    3. Copyright notices and newsletter prompts on any line up to PROMPT_MAX_WORDS.
    4. Archive heads on any line up to segment.ARCHIVE_HEAD_MAX_WORDS.

    A line printed twice in one page is left out of the body (``_body_units``) but is not
    furniture: a headline is often printed again where its story starts.

    Other places ask narrower questions on purpose and say why: the related-links run and
    "Related:" lines (``_body_units``), the comment thread (``_comment_marker``), prompts
    counted out of the story's tail (``_body_stop``), UI labels above the story
    (``_is_ui``), and editorial notices and captions' credits (``_notice``) on extracted
    text only (``polish``: there no head or tail is left for the structure rules to cut, and
    a photo page whose captions are all its text keeps them).
    """
    if unit.key in chrome:
        return True
    if _is_label(unit):
        text = unit.text.rstrip(_LABEL_END)
        if _UI.match(text) or _copyright(text) or _PROMPT.search(text):
            return True
        if _COMMENT_WORDS.search(text) or _RELATED.match(text) or segment.archive_head(text):
            return True
    if unit.words <= PROMPT_MAX_WORDS and (_copyright(unit.text) or _prompt_line(unit)):
        return True
    return unit.words <= segment.ARCHIVE_HEAD_MAX_WORDS and bool(segment.archive_head(unit.text))


def _is_label(unit: Unit) -> bool:
    """A short line that does not end a sentence: where widget vocabulary is tested."""
    return unit.words <= LABEL_MAX_WORDS and not unit.terminal


def _prompt_line(unit: Unit) -> bool:
    """A newsletter or sign-up prompt: names the newsletter and asks, or is a fragment."""
    if (
        unit.words > PROMPT_MAX_WORDS
        or not _has_any(unit.text, _PROMPT_HINTS)
        or not _PROMPT.search(unit.text)
    ):
        return False
    first = unit.text[:1]
    return bool(_ASKS.match(unit.text)) or first.islower() or not unit.terminal


def _body_start(units: list[Unit], chrome: Keys) -> int | None:
    for i, unit in enumerate(units):
        if not unit.prose or unit.capitalised >= HEADLINE_CAPS or _is_furniture(unit, chrome):
            continue
        if _byline(unit) is not None or segment.footer(unit) is not None:
            continue
        if unit.words <= HEAD_MAX_WORDS and _deck_above_story(units, i):
            continue
        return i
    return None


def _deck_above_story(units: list[Unit], i: int) -> bool:
    """Whether the sentence at ``i`` stands between the title and the byline or date line
    of a story: the deck. A share row or a name may stand between them; the story under
    them (a byline under the story is its footer, and the sentence its last)."""
    following = [
        j
        for j in range(i + 1, min(i + 1 + DECK_SCAN, len(units)))
        if units[j].words > DECK_SKIP_WORDS
    ]
    for j in following[:DECK_REACH]:
        if _byline(units[j]) is not None or _is_date(units[j]):
            return _prose_words(units[j + 1 : j + 1 + COMMENT_REACH]) >= DECK_STORY_WORDS
    return False


def _is_date(unit: Unit) -> bool:
    if unit.memo_date is UNASKED:
        unit.memo_date = unit.words <= DATE_LINE_MAX_WORDS and lines.is_date_line(unit.text)
    return unit.memo_date is True


def _byline(unit: Unit) -> tuple[str | None, str | None, str] | None:
    """(author, organisation, rest) of a "By Jane Doe, Agency | date" line."""
    if unit.memo_byline is UNASKED:
        unit.memo_byline = None if unit.words > BYLINE_MAX_WORDS else lines.read_byline(unit.text)
    return unit.memo_byline  # type: ignore[return-value]


def _author_like(text: str) -> bool:
    return lines.name_like(text, lines.AUTHOR_PARTICLES, any_case=True)


def _commenter_head(title: str) -> bool:
    """Whether a title is a comment's head: a name and a stamp ("Jane Doe 07.15.12 at
    11:59", "12.05.12 at 5:02 pm"), or a name that said ("Jane said,")."""
    rest = title
    found = dates.find_date(rest, UTC)
    if found is not None:
        rest = rest[: found[1]] + " " + rest[found[2] :]
    rest = _STAMP.sub(" ", rest)
    rest = " ".join(rest.split()).strip(" ,:;-|")
    if len(rest.split()) > COMMENTER_MAX_WORDS:
        return False
    if _SAID.search(rest):
        return True
    stamped = found is not None or _STAMP_DIGITS.search(title) is not None
    return stamped and (not rest or _author_like(rest))


def _name_and_date(unit: Unit) -> tuple[str | None, str | None, str] | None:
    """(author, None, the rest) of a "Jane Doe | Aug. 9, 2012, 10:10 AM" line: a byline
    without its "By", a name set off from a date."""
    if unit.words > BYLINE_MAX_WORDS or not _has_separator(unit.text):
        return None
    parts = [part.strip() for part in _NAME_SEPARATOR.split(unit.text)]
    if len(parts) < 2:
        return None
    name, stamp = parts[0], parts[1]  # what follows the date (a count of views) may stay
    if not (len(name.split()) >= BARE_NAME_MIN_WORDS and _author_like(name)):
        return None
    if dates.date_line(stamp, UTC) is None:
        return None
    return name, None, stamp


def _has_separator(text: str) -> bool:
    """Whether ``text`` holds one of ``_NAME_SEPARATOR``'s marks (most lines hold none)."""
    return "|" in text or "•" in text or "·" in text


def _bare_name(unit: Unit) -> bool:
    """A line that is a person's name and nothing else ("Jane Doe"; one word is a label)."""
    return unit.words >= BARE_NAME_MIN_WORDS and not _is_ui(unit) and _author_like(unit.text)


def _comment_marker(units: list[Unit], i: int) -> bool:
    """A comment widget line, or the start of a name / date / prose rhythm.

    Not ``_is_furniture``: this asks where the story ends (a comment widget word is furniture
    too, but here only it counts, and repetition must not end a story).
    """
    unit = units[i]
    if _comment_label(unit):
        return True
    if unit.text.endswith(":") and _SAYS.match(unit.text):
        return True
    end = _rhythm_end(units, i)
    if end is None:
        return False
    # One name and date above a story is its byline: a thread has the rhythm again, or
    # little prose under it.
    return not _story_follows(units, end)


def _comment_label(unit: Unit) -> bool:
    return _is_label(unit) and _COMMENT_WORDS.search(unit.text) is not None


def _story_follows(units: list[Unit], i: int) -> bool:
    """Whether the lines from ``i`` on are more of a story: a story's worth of prose in
    the next ``COMMENT_REACH`` lines, and no commenter's rhythm among them."""
    reach = units[i : i + COMMENT_REACH]
    if _prose_words(reach) < STORY_MIN_PROSE_WORDS:
        return False
    return all(_rhythm_end(units, j) is None for j in range(i, i + len(reach)))


def _rhythm_end(units: list[Unit], i: int) -> int | None:
    """Where a commenter's name / date / words rhythm that starts at ``i`` has its words
    (the name and the date may share a line: "Jane Doe 07.15.12 at 11:59", "Jane said,")."""
    unit = units[i]
    if (
        unit.words <= COMMENT_HEAD_MAX_WORDS
        and i + 1 < len(units)
        and units[i + 1].words >= COMMENT_MIN_WORDS
        and _commenter_head(unit.text)
    ):
        return i + 1
    if (
        unit.words <= COMMENTER_MAX_WORDS
        and not unit.terminal
        and (_author_like(unit.text) or unit.text[:1].isupper())
    ):
        nearby = units[i + 1 : i + 3]
        for j, other in enumerate(nearby):
            if _is_date(other):
                after = units[i + 2 + j : i + 3 + j]
                if not after or after[0].words >= COMMENT_MIN_WORDS:
                    return i + 2 + j
                return None
    return None


def _body_stop(units: list[Unit], start: int) -> int:
    """Where the story ends: a comment thread, or chrome followed by no more prose.

    Prompts and copyright are asked directly, not through ``_is_furniture``: a prose line
    that is a prompt or a notice does not count as the story's prose, whatever else it is.
    """
    # prose_after[i]: paragraphs of prose (not prompts) from line i on; only the body's count
    prose_after = [0] * (len(units) + 1)
    for i in range(len(units) - 1, start, -1):
        unit = units[i]
        prose_after[i] = prose_after[i + 1] + (unit.prose and not _prompt_line(unit))
    for i in range(start + 1, len(units)):
        if _comment_marker(units, i) and not (
            # a share row's "Comments" under the story's first lines, the rest under it
            _comment_label(units[i])
            and sum(u.prose for u in units[start:i]) < STORY_MIN_PARAGRAPHS
            and _story_follows(units, i + 1)
        ):
            stop = i
            # A short prompt or question right above a comment form belongs to the form.
            while stop > start + 1 and units[stop - 1].words <= FORM_PROMPT_MAX_WORDS:
                stop -= 1
            return stop
        unit = units[i]
        if unit.prose and not _prompt_line(unit) and not _copyright(unit.text):
            continue
        if prose_after[i + 1] <= TAIL_PROSE and not unit.prose:
            return i
    return len(units)


def _body_units(units: list[Unit], chrome: Keys, repeated: Keys) -> Iterable[Unit]:
    """The body's lines: furniture, repeats (the page's repeated labels, the body's
    repeated paragraphs after their first), footers, dates and bylines out.

    A related-links heading is asked before ``_is_furniture`` (which also takes it for
    furniture) because it drops the non-prose lines under it as well: its links.
    """
    kept: list[Unit] = []
    seen: set[int] = set()
    for unit in _outside_related(units):
        # A label the page prints twice goes; a paragraph only where it repeats (a pull
        # quote), not because the page prints the whole story twice.
        if (
            _is_furniture(unit, chrome)
            or unit.key in seen
            or (unit.key in repeated and not unit.prose)
        ):
            continue
        seen.add(unit.key)
        if segment.footer(unit) is not None or _is_date(unit) or _byline(unit) is not None:
            continue
        kept.append(unit)
    return _drop_link_runs(_trim_tail(kept))


def _outside_related(units: Iterable[Unit]) -> Iterator[Unit]:
    """The lines outside a related-links section: its heading ("Related stories"), the
    links under it (the lines up to the next prose) and related-links labels go."""
    in_related = False
    for unit in units:
        if in_related and not unit.prose:
            continue
        in_related = False
        if _is_label(unit) and _RELATED.match(unit.text.rstrip(_RELATED_END)):
            in_related = True
            continue
        if not _RELATED_LABEL.match(unit.text):
            yield unit


def _trim_tail(units: list[Unit]) -> list[Unit]:
    while units and not units[-1].prose and not units[-1].text.startswith("• "):
        units = units[:-1]
    return units


def _drop_link_runs(units: list[Unit]) -> list[Unit]:
    """Three or more headline-like lines in a row inside a story are a list of links."""
    out: list[Unit] = []
    run: list[Unit] = []
    for unit in [*units, None]:
        if unit is not None and _headline_like(unit):
            run.append(unit)
            continue
        if len(run) < LINK_RUN:
            out.extend(run)
        run = []
        if unit is not None:
            out.append(unit)
    return out


def _headline_like(unit: Unit) -> bool:
    return (
        LINK_MIN_WORDS <= unit.words <= LINK_MAX_WORDS
        and not unit.terminal
        and not unit.text.startswith("• ")
    )


# ---------------------------------------------------------------- head: title, byline, date


def _head(
    units: list[Unit],
    chrome: Keys,
    echo: Keys,
    title_hint: str | None,
    default_tz: tzinfo,
) -> _Head | None:
    hint_key = segment.key(title_hint) if title_hint else None
    candidates: list[int] = []
    author = org = None
    text_date: datetime | None = None
    updated_date: datetime | None = None
    dated_lines: list[tuple[int, datetime]] = []
    split = _split_dates(units, default_tz)
    covered = {i + n for i, (_, _, parts) in split.items() for n in range(1, parts)}
    for i, unit in enumerate(units):
        if i in covered:
            continue
        if i in split:
            when, updated, _ = split[i]
            if updated:
                updated_date = updated_date or when
            else:
                dated_lines.append((i, when))
            continue
        byline = _byline(unit) or _name_and_date(unit)
        if byline is not None:
            author, org = author or byline[0], org or byline[1]
            found = dates.find_date(byline[2], default_tz)
            text_date = text_date or (found[0] if found else None)
            continue
        dated = (
            dates.date_line(unit.text, default_tz) if unit.words <= DATE_LINE_MAX_WORDS else None
        )
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
        if _is_furniture(unit, chrome) or segment.footer(unit) is not None:
            continue
        if HEAD_MIN_WORDS <= unit.words <= HEAD_MAX_WORDS and not unit.ends_sentence:
            candidates.append(i)
    above = _headline_above_story(units, chrome)
    if above is not None and (not candidates or candidates[-1] < above):
        candidates.append(above)
    hinted = [i for i, unit in enumerate(units) if unit.key == hint_key]
    if hinted and hinted[-1] not in candidates:  # named by a footer or the page title
        candidates = sorted([*candidates, hinted[-1]])
    # A name standing alone right above a date line is the byline, not a headline.
    dated_at = {i for i, _ in dated_lines}
    named = {i for i in candidates if i + 1 in dated_at and _bare_name(units[i])}
    candidates = [i for i in candidates if i not in named] or candidates
    if not candidates:
        return None
    title_index = _pick_title(units, candidates, echo, hint_key)
    title = units[title_index].text
    subtitle = next(
        (
            units[i].text
            for i in candidates
            if i > title_index
            and units[i].words >= DECK_MIN_WORDS
            and units[i].key != units[title_index].key
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
            if author is None and i > 0 and _bare_name(units[i - 1]) and i - 1 != title_index:
                author = units[i - 1].text
    published = text_date or updated_date
    if published is not None:
        source = "text"
    elif header_date is not None:
        published, source = header_date, "page-header"
    return _Head(title, subtitle, author, org, published, source)


def _date_after(text: str, start: int, default_tz: tzinfo) -> datetime | None:
    """The date a line prints after its first ``start`` characters (what the dump glued
    to a headline), if the rest of the line is a date line."""
    found = dates.find_date(text[start:], default_tz)
    if found is None or found[2] < len(text[start:].rstrip()) - DATE_TAIL_CHARS:
        return None
    return found[0]


def _split_dates(units: list[Unit], default_tz: tzinfo) -> dict[int, tuple[datetime, bool, int]]:
    """Dates a page prints over several short lines ("23" / "Jul" / "2012" / "6:06pm, EDT",
    a calendar-leaf block): where each starts, its date, whether it says "updated", and
    how many lines it spans."""
    found: dict[int, tuple[datetime, bool, int]] = {}
    short = [u.words <= SPLIT_DATE_PART_WORDS for u in units]
    # A date line names its year, and a year is never split over two lines: a run with no
    # short line naming one is not asked.
    yearly = [part and dates.names_a_year(u.text) for part, u in zip(short, units, strict=True)]
    if not any(yearly):  # most heads
        return found
    i = 0
    while i < len(units):
        if short[i] and any(yearly[i : i + SPLIT_DATE_MAX_LINES]):
            for parts in range(SPLIT_DATE_MAX_LINES, 1, -1):
                if i + parts > len(units) or not all(short[i : i + parts]):
                    continue
                if not any(yearly[i : i + parts]):
                    continue
                run = units[i : i + parts]
                dated = dates.date_line(" ".join(u.text for u in run), default_tz)
                if dated is not None:
                    found[i] = (dated[0], dated[1], parts)
                    i += parts - 1
                    break
        i += 1
    return found


def headline_of(page_title: str) -> str:
    """A page title's headline: its longest part between separators ("Headline - Section |
    Site Name" → "Headline"), the site's name and sections being the shorter parts."""
    parts = [part.strip() for part in _TITLE_SEPARATOR.split(page_title) if part.strip()]
    return max(parts, key=lambda part: len(part.split()), default=page_title)


def _echoed_headline(units: list[Unit], page_title: Unit, headline: str) -> tuple[int, str] | None:
    """Where the page prints again the headline its title names, and that headline: the
    page title a scraper prints first ("Headline - Site Name", "Site: Headline") names the
    story, and the story starts under the line that repeats its headline. Of several such
    lines (a list of the site's own headlines in a sidebar, the story's own), the one with
    the most prose under it. ``headline`` is the page title's (``headline_of``)."""
    wanted = {page_title.key: headline}
    for variant in (headline, *_COLON_TITLE.split(headline, maxsplit=1)):
        if len(variant.split()) >= HEAD_MIN_WORDS:
            wanted.setdefault(segment.key(variant), variant.strip())
    if len(wanted) == 1 and len(headline.split()) < HEAD_MIN_WORDS:
        return None
    # A scraper may glue the headline to what follows it ("Headline Politics, Updated …").
    prefix = segment.words_of(headline) + " " if len(headline.split()) >= GLUED_MIN_WORDS else None
    # Each word of a line's key is in its case-folded text: a line without the prefix's
    # longest word is not asked for its key.
    probe = max(prefix.split(), key=len) if prefix is not None else ""
    found = [
        i
        for i, unit in enumerate(units)
        if unit is not page_title
        and (
            unit.key in wanted
            or (
                prefix is not None
                and unit.words <= HEAD_MAX_WORDS
                and probe in unit.text.casefold()
                and segment.words_of(unit.text).startswith(prefix)
            )
        )
    ]
    if not found:
        return None
    ends = [*found[1:], len(units)]  # under one repeat, up to the next

    def prose_under(n: int) -> int:
        i = found[n]
        return _prose_words(units[i + 1 : min(i + 1 + ECHO_PROSE_REACH, ends[n])])

    best = found[max(range(len(found)), key=lambda n: (prose_under(n), -n))]
    return best, wanted.get(units[best].key, headline)


def _prose_words(units: Sequence[Unit]) -> int:
    return sum(unit.words for unit in units if unit.prose)


def _headline_above_story(units: list[Unit], chrome: Keys) -> int | None:
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
    fits = HEAD_MIN_WORDS <= unit.words <= TITLE_MAX_WORDS
    return i if fits and not unit.ends_sentence and not _is_ui(unit) else None


def _is_ui(unit: Unit) -> bool:
    """A UI label only, not ``_is_furniture``: the headline looked for is itself chrome."""
    return _is_label(unit) and bool(_UI.match(unit.text.rstrip(_LABEL_END)))


def _pick_title(
    units: list[Unit],
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
        if i not in branding
        and units[i].words <= TITLE_MAX_WORDS
        and units[i].text.count(" | ") < TITLE_MENU_BARS
    ] or candidates
    if hint:  # named by a footer or the page title: whatever its length or ending
        for i in candidates:
            if units[i].key == hint:
                return i
    for i in eligible:
        if units[i].key in echo:
            return i
    last = eligible[-1]
    above = last - 1
    while above >= 0 and above not in candidates:
        above -= 1
    if (
        above in eligible
        and units[above].words >= TITLE_ABOVE_MIN_WORDS
        and units[last].words > units[above].words
    ):
        return above
    return last


def _posted_by(unit: Unit, default_tz: tzinfo) -> tuple[datetime, str | None] | None:
    """ "Posted on March 3, 2019 by Jane Doe" → (date, author)."""
    if unit.words > POSTED_BY_MAX_WORDS or "by" not in unit.text:  # the pattern's " by "
        return None
    match = _POSTED_BY.match(unit.text)
    if match is None:
        return None
    when = dates.date_line(match.group("when"), default_tz)
    if when is None:
        return None
    who = match.group("who").strip()
    return when[0], who if _author_like(who) else None
