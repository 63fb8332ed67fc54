"""Lead summaries: sentences split by rule, and the first of them that tell the story.

A sentence ends at ``.``, ``!``, ``?`` or an ellipsis followed by a space, unless the word
before it reads as an abbreviation: a title ("Gov.", "Sra."), an initial or initialism ("J.",
"U.S."), a word used before a number ("No. 2", "pág. 4"), a word that never ends one ("bzw.",
"z. B.", "p. ex."), or a postpositive abbreviation ("Co.", "a.m.", "usw.", "EE. UU."). Those
last end a sentence only when a word that often starts one follows ("U.S. How" splits, "U.S.
Army" does not); the starters are English, German, French, Spanish and Portuguese closed-class
words. A German ordinal ("am 3. Oktober") goes on. A lower-case word never starts a sentence.
Spanish "¿…?", French spaced "?" and guillemets ("« Non ! » dit-il") are read as such.

Chinese and Japanese sentences end at "。！？．" (and "!?" after such text) with no space
after them, their closing quotes and brackets ("」』）”") kept with them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence

from digest import lines

SUMMARY_VERSION = 2
"""Bumped whenever a summary of the same text could come out different."""

LOOK_AHEAD = 6  # paragraphs: chrome sits in the first few of a body, never further down
# A title ending so may be its text's first sentence (not ? or !: those end headlines).
_TITLE_SENTENCE_ENDS = ".…。"
TITLE_SHARE = 0.8  # a deck sharing this share of its words with the headline repeats it
FOLLOWING_CHARS = 40  # how far past a full stop the word that follows is looked for
PAREN_REACH = 250  # characters: a bracket that closes this soon encloses the full stop
QUOTE_REACH = 300  # characters: a quotation that closes this soon encloses the full stop
# characters: how far back of a full stop an opening bracket or quotation is looked for, so
# a text that never ends a sentence (an unclosed bracket, "U.S. U.S. …") costs linear time
ENCLOSED_LOOKBACK = 1000

# Han, kana and the full-width forms: text whose sentences end with no space after them.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff01-\uff5e"
_CJK_CLOSE = '」』”’）)】〕》〉"'  # an ASCII '"' only when it closes a quotation
# A run of sentence-ending marks (with a spaced ellipsis " . . ."), its closing quotes and
# brackets, then a space or the end; CJK full stops (a full-width "．" not in a number, "!?"
# after CJK text) need no space after them.
_MARK = r"(?P<mark>[.!?‽…।؟۔]+(?: \.(?=[ \"'”’»)\]]|$))*)(?P<close>[\"'”’»“)\]]*)(?= |$)"
_CANDIDATE = re.compile(_MARK)
_CANDIDATE_CJK = re.compile(
    rf"(?P<cjk>(?:[。！？]|．(?![０-９0-9])|(?<=[{_CJK}])[!?])[。！？!?]*[{_CJK_CLOSE}]*)|{_MARK}"
)
_HAS_CJK = re.compile(f"[{_CJK}]")
_CJK_ENDS = frozenset("。！？．」』）】〕》〉")
_LINE_BULLET = re.compile(r"\s*(?:[•⁃‣◦▪●*\-–—]|\d{1,3}\.?\)|\d{1,3}\.|[a-z][.)])\s")
_INLINE_BULLET = re.compile(r" (?=[•⁃‣◦▪●])")
_LIST_START = re.compile(r"[•⁃‣◦▪●]?\s?(\d{1,2}|[a-z])(\.\)|\.|\))\s+(?=[A-Z])")
_OPENERS = "\"'“‘«„([{¿¡*•⁃‣◦▪●-–—"
_OPENING = re.compile("[" + re.escape(_OPENERS) + " ]*")  # what may stand before a list marker
_QUOTES = (("“", "”"), ("«", "»"), ("「", "」"), ("『", "』"))
_SPACED_PART = re.compile(r"[^\W\d_]{1,2}\.")  # "z." of "z. B.", "EE." of "EE. UU."
_INITIALISM = re.compile(r"(?:[A-Za-z]{1,2}\.)+[A-Za-z]{1,2}")
_MARKER = re.compile(r"\d{1,3}|[A-Za-z]|[ivxIVX]{1,4}")
_INITIAL = re.compile(r"[A-Z]\.")
_HAS_WORD = re.compile(r"\w")


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Before a capitalised word these never end a sentence (case as printed).
_TITLES = _set(
    "Mr Mrs Ms Mx Messrs Mmes Dr Drs Prof Sen Sens Rep Reps Gov Govs Gen Lt Col Maj Capt Cmdr "
    "Adm Sgt Cpl Pvt Brig Rev Hon Pres Supt Det Insp Atty Amb Fr Msgr Mme Mlle "
    "e.g i.e vs v cf viz "
    "Hr Hrn Dres Profa Profe Sra Sras Srta Sres Dra Dras Dña Dª Sto Sta Lic Ing Arq Gral Exmo "
    "Exma MM Mgr Pr Ud Uds Vd Vds"
)
# Whatever follows, these never end a sentence (lower-cased): German, French, Spanish,
# Portuguese abbreviations used inside one.
_INNER = _set(
    "bzw vgl ggf evtl bspw inkl exkl zzgl bzgl sog ggü geb verh ehem zit lt gem cf env resp"
)
# The same, printed in spaced parts ("z. B.", "p. ex.") or not ("z.B."): dots and spaces
# taken out, lower-cased.
_INNER_SPACED = _set("zb dh pex pej va zt uu me ia id ie eg")
# Before a number these never end a sentence (lower-cased).
_BEFORE_NUMBER = _set(
    "no nos nr vol vols p pp fig figs ch chap art sec para op eq ex rt rte hwy apt ste ext tel "
    "approx ca jan feb mar apr jun jul aug sep sept oct nov dec "
    "abb abs bd kap tab hft anm env aprox pág págs pag núm nº n° núms cap séc sec t"
)
# These may end a sentence: they do when a sentence starter follows (lower-cased).
_POSTPOSITIVE = _set(
    "co inc ltd corp bros llc plc jr sr st mt ft ave blvd rd etc al esq dept univ assn "
    "usw usf jh jhd mio mrd tsd str hrsg aufl cía cia ltda av avda bd"
)
# The same, in spaced parts: "u. a.", "o. ä.", "EE. UU.", "s. o." (as ``_INNER_SPACED``).
_POSTPOSITIVE_SPACED = _set("ua uä oä eeuu so su")
# A German ordinal ("am 3. Oktober", "im 20. Jahrhundert") follows these (lower-cased) or
# is followed by a month: it does not end a sentence.
_ORDINAL_AFTER = _set("am im vom zum beim bis ab seit der die das den dem des zur vor nach")
_MONTHS_DE = _set(
    "Januar Jänner Februar März April Mai Juni Juli August September Oktober November Dezember"
)
# Months and US state abbreviations (AP style) are ordinary words in lower case.
_CAPITALISED = _set(
    "Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec Ala Ariz Ark Calif Colo Conn Del Fla Ga "
    "Ill Ind Kan Kans Ky La Md Mass Mich Minn Miss Mo Mont Neb Nev Okla Ore Pa Penn Tenn Tex "
    "Vt Va Wash Wis Wyo"
)
_DAYS_MONTHS = _set("Mon Tue Wed Thu Fri Sat Sun Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec")
# Closed-class words that often start an English sentence.
_STARTERS = _set(
    "a an the this that these those it its he she they we you i his her their our my your "
    "there here what when where why who whom whose which how but and or nor so yet if as at "
    "in on by for from with after before since while although though because however "
    "meanwhile moreover then now still also instead thus today yesterday tomorrow last next "
    "some many most all both each every no not one another such other others nothing nobody "
    "everyone someone "
    # German, French, Spanish, Portuguese (never a name's particle: "M. Le Pen", "J. La Salle")
    "der die das ein eine einen dies diese dieser er sie es wir ich man aber auch doch dann "
    "heute gestern nun zudem danach damit deshalb trotzdem im am auf nach bei mit seit für "
    "les un une il elle ils elles on nous vous je ce cette ces mais et puis alors ainsi selon "
    "après avant depuis aujourd hier dans pour par sur au aux "
    "los las una unos unas él ella ellos ellas nosotros yo esto esta este pero también "
    "según tras desde hoy ayer después luego en con para "
    "os as um uma ele ela eles elas nós eu isso isto mas também segundo hoje ontem depois "
    "em na nas nos com"
)


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text``, in order, each stripped; a bullet line is one of its own."""
    out: list[str] = []
    for block in _blocks(text):
        for chunk in _chunks(block):
            _split_chunk(chunk, out)
    return out


def _blocks(text: str) -> Iterator[str]:
    """Paragraphs of ``text`` with spaces made single; a bullet line stands alone."""
    if "\n" not in text:
        yield _single_spaced(text)
        return
    block: list[str] = []
    for line in text.split("\n"):
        bullet = _LINE_BULLET.match(line) is not None
        if block and (bullet or not line.strip()):
            yield _single_spaced(" ".join(block))
            block = []
        if bullet:
            yield _single_spaced(line)
        elif line.strip():
            block.append(line)
    if block:
        yield _single_spaced(" ".join(block))


def _single_spaced(text: str) -> str:
    return " ".join(text.split())


def _chunks(block: str) -> Iterator[str]:
    """Split before inline bullets and before the next item of an inline numbered list."""
    for piece in _INLINE_BULLET.split(block) if "•" in block or "⁃" in block else (block,):
        start = _LIST_START.match(piece.lstrip())
        if start is None:
            yield piece
            continue
        marker, suffix = start.group(1), start.group(2)
        begin = 0
        while True:
            marker = str(int(marker) + 1) if marker.isdigit() else chr(ord(marker) + 1)
            found = piece.find(f" {marker}{suffix} ", begin)
            after = found + len(marker) + len(suffix) + 2
            if found < 0 or not piece[after : after + 1].isupper():
                break
            yield piece[begin:found]
            begin = found + 1
        yield piece[begin:]


def _split_chunk(chunk: str, out: list[str]) -> None:
    start = 0
    quotes = tuple(pair for pair in _QUOTES if pair[0] in chunk)
    nested = bool(quotes) or "(" in chunk or '"' in chunk
    cjk = not chunk.isascii() and _HAS_CJK.search(chunk) is not None
    for match in (_CANDIDATE_CJK if cjk else _CANDIDATE).finditer(chunk):
        if cjk and match.group("cjk"):
            cut = _cjk_boundary(chunk, match, start)
        else:
            cut = _boundary(chunk, match, start)
        if cut is None or cut >= len(chunk) or (nested and _enclosed(chunk, start, cut, quotes)):
            continue
        sentence = chunk[start:cut].strip()
        if _HAS_WORD.search(sentence):  # a stray "..." or quote mark joins the next sentence
            out.append(sentence)
            start = cut
    tail = chunk[start:].strip()
    if tail:
        out.append(tail)


def _cjk_boundary(text: str, match: re.Match[str], start: int) -> int | None:
    """After a CJK full stop, unless a Japanese quotation goes on: 「…。」と話した."""
    end = match.end()
    if text[end - 1] == '"' and text.count('"', start, end) % 2:
        end -= 1  # it opens the next sentence's quotation
    if text[end - 1 : end] in "」』" and text[end : end + 1] == "と":
        return None
    return end


def _enclosed(text: str, start: int, cut: int, quotes: tuple[tuple[str, str], ...]) -> bool:
    """Inside parentheses or a quotation that closes soon: "(Ore. Times, AP)" and
    "I stayed. I saw it," he said. are one sentence each (an unclosed mark is ignored)."""
    start = max(start, cut - ENCLOSED_LOOKBACK)
    if (
        text.count("(", start, cut) > text.count(")", start, cut)
        and ")" in text[cut : cut + PAREN_REACH]
    ):
        return True
    if text.count('"', start, cut) % 2 and '"' in text[cut : cut + QUOTE_REACH]:
        return True
    return bool(quotes) and any(
        text.count(opening, start, cut) > text.count(closing, start, cut)
        and closing in text[cut : cut + QUOTE_REACH]
        for opening, closing in quotes
    )


def _boundary(text: str, match: re.Match[str], start: int) -> int | None:
    """Where the sentence ends at this candidate, or None when it goes on."""
    end = match.end()
    if text[end + 1 : end + 2] in ('"', "”", "»") and text[end + 2 : end + 3] in (" ", ""):
        end += 2  # a quote closed after a space: … 'Bad Newz Kennels.' ", « Non ! »
    if end >= len(text):
        return None
    following = text[end + 1 : end + FOLLOWING_CHARS].lstrip(_OPENERS)
    head = following.split(" ", 1)[0]
    first = head[:1]
    if first.islower():
        return None
    mark, pos = match.group("mark"), match.start()
    if mark.strip(". …"):  # a "!" or "?" in it, or another script's mark: "।", "؟"
        return end
    dots = mark.count(".") + 3 * mark.count("…")
    if dots >= 3:
        return _after_ellipsis(text, mark, pos, end, dots, first)
    space = text.rfind(" ", start, pos)
    word_start = space + 1 if space >= 0 else start
    word = text[word_start:pos].lstrip(_OPENERS)
    if not word:
        return end
    opening = _OPENING.match(text, start)  # always matches, if only the empty string
    if opening is not None and opening.end() >= word_start and _MARKER.fullmatch(word):
        return None  # a list marker: "2. The second item", "• a. First"
    key = word.rsplit("-", 1)[-1]
    lower = key.lower()
    if first.isdigit():
        if lower in _BEFORE_NUMBER or len(key) == 1 or not key[-1].isalnum():
            return None
        return end
    if key in _TITLES or lower in _INNER or lower in ("e.g", "i.e"):
        return None
    if key.isdigit():
        return _after_number(text, start, word_start, key, head, end)
    spaced = _spaced(text, start, word_start, key, head)
    if spaced in _INNER_SPACED:
        return None
    if lower in ("a.m", "p.m"):
        return None if _goes_with_time(head) else end
    if key == "I" and _previous_word(text, start, word_start)[:1].islower():
        return end  # the pronoun: "you and I. Did you"
    ambiguous = (
        len(key) == 1
        or lower in _POSTPOSITIVE
        or spaced in _POSTPOSITIVE_SPACED
        or key in _CAPITALISED
        or _INITIALISM.fullmatch(key) is not None
    )
    if not ambiguous:
        return end
    if _INITIAL.fullmatch(head):
        return None  # another initial follows: "J. R. Smith"
    starter = re.split(r"[^\w]", head, maxsplit=1)[0].lower()
    return end if starter in _STARTERS else None


def _after_number(
    text: str, start: int, word_start: int, key: str, head: str, end: int
) -> int | None:
    """A number and a full stop: a German ordinal goes on ("am 3. Oktober", "dem 20.
    Jahrhundert"), anything else ends the sentence ("fiel 1989. Danach")."""
    if len(key) <= 3 and (
        head.rstrip(",.;:") in _MONTHS_DE
        or _previous_word(text, start, word_start).lower() in _ORDINAL_AFTER
    ):
        return None
    return end


def _spaced(text: str, start: int, word_start: int, key: str, head: str) -> str:
    """An abbreviation printed in parts, without its dots and spaces, lower-cased: "zb" at
    either dot of "z. B." (and of "z.B."); "" when the word is not one."""
    if len(key) > 4:
        return ""
    if len(key) <= 2 and _SPACED_PART.fullmatch(head):  # the first part: "z" before "B."
        return (key + head[:-1]).lower()
    if "." in key:  # printed without spaces: "z.B", "EE.UU"
        return key.replace(".", "").lower()
    previous = _previous_word(text, start, word_start) if len(key) <= 2 else ""
    if _SPACED_PART.fullmatch(previous):  # the last part: "B" after "z."
        return (previous[:-1] + key).lower()
    return ""


def _goes_with_time(head: str) -> bool:
    """After "a.m.": a title ("5 a.m. Mr. Smith went"), a day, a month or a zone."""
    word = re.split(r"[^\w]", head, maxsplit=1)[0]
    return (
        word in _TITLES
        or word[:3] in _DAYS_MONTHS
        or (word.isupper() and len(word) <= 4)
        or word in ("Eastern", "Central", "Mountain", "Pacific", "Greenwich")
    )


def _after_ellipsis(text: str, mark: str, pos: int, end: int, dots: int, first: str) -> int | None:
    """Three spaced dots are an omission inside a sentence; a fourth dot ends it.

    "compounds. . . . The" ends at the first dot: the ellipsis opens the next sentence.
    """
    if text[pos - 1 : pos] == "[":
        return None  # an editorial omission "[...]"
    attached = pos > 0 and text[pos - 1] != " "
    spaced = " " in mark
    if not first:
        return end
    if spaced and dots == 3:
        return None
    if spaced and attached and dots == 4:
        return pos + 1
    return end


def _previous_word(text: str, start: int, word_start: int) -> str:
    space = text.rfind(" ", start, max(start, word_start - 1))
    return text[(space + 1 if space >= 0 else start) : word_start].strip(_OPENERS + " ")


# ---------------------------------------------------------------- lead summary

_NOTE = re.compile(r"editor[’']?s[’']? note\b", re.I)


def summary_key(max_sentences: int, max_chars: int) -> str:
    """What a stored summary was made with: recompute it when this changes."""
    return f"lead-v{SUMMARY_VERSION}-{max_sentences}s-{max_chars}c"


def lead_summary(
    paragraphs: Sequence[str],
    *,
    title: str = "",
    max_sentences: int = 2,
    max_chars: int = 320,
    splitter: Callable[[str], list[str]] = split_sentences,
) -> str:
    """The story's first sentences, whole, within ``max_chars`` (always at least one).

    A first sentence longer than the budget is cut at a word boundary and ends with "…".
    ``splitter`` is a seam for the benchmark, which compares sentence splitters inside it.
    """
    if title and _is_first_sentence(title, paragraphs):
        title = ""  # an untitled feed entry, titled by its first sentence: the lead keeps it
    chosen: list[str] = []
    length = 0
    for sentence in (s for p in _story(paragraphs, title) for s in splitter(p)):
        gap = _gap(chosen[-1], sentence) if chosen else ""
        if chosen and length + len(gap) + len(sentence) > max_chars:
            break
        chosen.append(gap + sentence)
        length += len(gap) + len(sentence)
        if len(chosen) >= max_sentences:
            break
    if not chosen:
        # All of it repeats the title (an untitled feed entry, titled by its one sentence):
        # the text itself is the lead, so a story is never without one.
        return (
            lead_summary(
                paragraphs, max_chars=max_chars, max_sentences=max_sentences, splitter=splitter
            )
            if title
            else ""
        )
    if length > max_chars:
        return _shorten(chosen[0], max_chars)
    return "".join(chosen)


def _is_first_sentence(title: str, paragraphs: Sequence[str]) -> bool:
    """A title that is the text's own opening sentence (it ends like one, or was cut with
    "…", and the text begins with it), not a headline whose repeat is a deck to skip."""
    title = title.strip()
    if not paragraphs or title[-1:] not in _TITLE_SENTENCE_ENDS:
        return False
    opening = paragraphs[0].strip()
    stem = title[:-1].rstrip() if title.endswith("…") else title
    return opening.startswith(stem)


def _gap(previous: str, sentence: str) -> str:
    """A space between two sentences, none between Chinese or Japanese ones."""
    cjk_end = previous[-1] in _CJK_ENDS or (
        previous[-1] in "!?" and _HAS_CJK.match(previous[-2:-1]) is not None
    )
    return "" if cjk_end and not sentence[:1].isascii() else " "


def _story(paragraphs: Sequence[str], title: str) -> Iterator[str]:
    """The body from where the story starts, without its dateline.

    A dateline opens the story, so what stands above one (a caption, an editor's note) is
    not the story; with no dateline, bylines, timestamps, notes and a deck that repeats
    the title are skipped.
    """
    head = [p.strip() for p in paragraphs[:LOOK_AHEAD]]
    opening = next((n for n, p in enumerate(head) if _opens_story(p, n)), None)
    if opening is None:
        title_words = lines.words(title)
        for n, paragraph in enumerate(head):
            after_byline = lines.after_byline(paragraph)
            if after_byline is not None:
                paragraph = after_byline
            if paragraph and not _is_chrome(paragraph, title_words):
                opening, head[n] = n, paragraph
                break
        else:
            yield from paragraphs[len(head) :]
            return
    yield lines.split_dateline(head[opening])[1]
    yield from paragraphs[opening + 1 :]


def _opens_story(paragraph: str, number: int) -> bool:
    """A dateline; below the first paragraph only a full one ("MIAMI, Florida (CNN) --"),
    not a capitalised word and a dash."""
    dateline = lines.split_dateline(paragraph)[0]
    return dateline is not None and (number == 0 or any(c in dateline for c in "(,"))


def _is_chrome(paragraph: str, title_words: list[str]) -> bool:
    if _NOTE.match(paragraph) or lines.is_date_line(paragraph):
        return True
    return bool(title_words) and _repeats_title(paragraph, title_words)


def _repeats_title(paragraph: str, title_words: list[str]) -> bool:
    """A deck that is the headline again: the same words, or one of its sentences is."""
    words = lines.words(paragraph)
    if words == title_words:
        return True
    if paragraph.rstrip("\"'”’)")[-1:] not in ".!?…":
        shared = set(words) & set(title_words)
        return len(shared) >= TITLE_SHARE * len(set(words) | set(title_words))
    return len(words) > len(title_words) and any(
        lines.words(s) == title_words for s in split_sentences(paragraph)
    )


def _shorten(sentence: str, limit: int) -> str:
    """Cut at the last word boundary that leaves room for "…" (at a character only in a
    text without spaces, such as Chinese)."""
    cut = sentence[: max(limit - 1, 0)]
    if sentence[len(cut) : len(cut) + 1] not in (" ", "") and " " in cut:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,;:–—-([{\"'“‘") + "…"
