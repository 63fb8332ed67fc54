"""Strict, fast parsing of the dates news pages print.

Free-text date search (dateparser's ``search_dates``) reads "we" as Wednesday
and "may" as a month; here a date must be a whole day-month-year form, found by
pattern, with an optional time and zone next to it.  dateparser is only asked,
strictly, about a line that a label ("Published:") marks as a date.

What a pattern captures is checked before it becomes a date: an impossible day or time
gives no date, an offset no clock keeps counts as no zone; ``find_date`` and ``date_line``
never raise.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_MONTHS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
    "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip
_MONTH = (
    r"(?P<{g}>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_WEEKDAY = r"(?:(?:mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)(?:day|nesday|urday|sday)?\.?,?\s+)?"
_DAY = r"(?P<{g}>[0-3]?\d)(?:st|nd|rd|th)?"
_YEAR = r"(?P<{g}>(?:19|20)\d\d)(?!\d)"
_BEFORE_YEAR = r"(?:,\s*|\s+)"  # "March 4, 2019", "4 March 2019", "March 4,2019"

_DATE = re.compile(
    "|".join(
        (
            # 11 Jun 2018 / Sat, 20 Oct 2018
            _WEEKDAY
            + _DAY.format(g="d1")
            + r"\s+"
            + _MONTH.format(g="m1")
            + _BEFORE_YEAR
            + _YEAR.format(g="y1"),
            # December 31, 2018 / Mon, March 4th 2019
            _WEEKDAY
            + _MONTH.format(g="m2")
            + r"\s+"
            + _DAY.format(g="d2")
            + _BEFORE_YEAR
            + _YEAR.format(g="y2"),
            # 2019-03-04 or 2019/03/04, optionally with an ISO time and offset
            r"(?<!\d)(?P<y3>(?:19|20)\d\d)[-/](?P<m3>[01]?\d)[-/](?P<d3>[0-3]?\d)(?!\d)"
            r"(?:[T ](?P<isotime>\d\d:\d\d(?::\d\d(?:\.\d+)?)?)(?P<isotz>Z|[+-]\d\d:?\d\d)?)?",
            # 03/04/2019, 07-28-2008: month first (US order, as English-language news sites
            # print it), unless the first number cannot be a month (28/07/2008). Not with
            # dots: 08.04.2015 is day first where it is printed, and a site's clock in US
            # order (10.27.2012) would be taken for the story's date.
            r"(?<![\w.])(?P<m4>[0-3]?\d)(?P<sep>[-/])(?P<d4>[0-3]?\d)(?P=sep)"
            r"(?P<y4>(?:19|20)\d\d)(?!\d)",
        )
    ),
    re.IGNORECASE,
)
_TIME = re.compile(
    r"(?:\bat\s+)?\b(?P<h>[0-2]?\d)[:.](?P<mi>[0-5]\d)(?::(?P<s>[0-5]\d))?\s*"
    r"(?P<ampm>[ap]\.?\s?m\b\.?)?",
    re.IGNORECASE,
)
_ABBR_HOURS = {
    "EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7,
    "BST": 1, "CET": 1, "CEST": 2, "EET": 2, "EEST": 3, "AEST": 10, "AEDT": 11,
    "JST": 9, "IST": 5.5,
}  # fmt: skip
# US zones named without saying summer or winter ("3:39PM PT"): the place's zone, its
# offset on the day (tz database).
_ABBR_PLACES = {
    "ET": "America/New_York", "CT": "America/Chicago", "MT": "America/Denver",
    "PT": "America/Los_Angeles",
}  # fmt: skip
# The pattern is built from the tables, so every abbreviation it matches has an offset.
_ZONE = re.compile(
    r"\b(?:(?P<gmt>GMT|UTC)\s*(?P<gmtoff>[+-]\s?\d{1,2}(?::?\d\d)?)?"
    r"|(?P<abbr>" + "|".join(sorted([*_ABBR_HOURS, *_ABBR_PLACES], key=len, reverse=True)) + r")\b)"
    r"|(?P<num>(?<![\d:])[+-]\d\d:?\d\d)\b"
)
# Every zone of the tz database keeps, from 1900 on, an offset within -12:00 and +14:00
# (Kiribati), the range XML Schema allows too; a larger one names no zone.
# Python would take up to ±23:59 and java.time ±18:00, but no place keeps those times.
_MAX_OFFSET = timedelta(hours=14)
# The years the patterns read: a parser's answer outside them is noise, and near the ends
# of Python's range, moving it to another zone overflows.
_FIRST_YEAR, _LAST_YEAR = 1900, 2099

# Words that may stand around a date on a date line without making it prose.
_LABEL = re.compile(
    r"^(?:(?:first\s+|originally\s+)?(?:published|posted|updated|last\s+updated|modified"
    r"|date|dated|released|issued)(?:\s+(?:on|at))?\s*:?\s*|on\s+)",
    re.IGNORECASE,
)
_YEAR_DIGITS = re.compile(r"(?:19|20)\d\d")  # every date we accept names its year
# ``_DATE`` for lower-cased text, case-sensitive: its upper-case letters lower-cased.
_DATE_LOWER = re.compile(
    _DATE.pattern.replace("[T ]", "[t ]").replace("(?P<isotz>Z|", "(?P<isotz>z|")
)
# What each form of ``_DATE`` holds, found far faster than the form (on lower-cased text):
# the first three letters of a month's name, or digits set off ("4-0", "9/0").
_DATE_HINT = re.compile("|".join(_MONTHS) + r"|\d[-/]\d")
# What a text needs for dateparser to read a day, a month and a year in it (in English): a
# month's name, or three numbers.
_COULD_BE_A_DATE = re.compile(r"\b(?:" + "|".join(_MONTHS) + r")|\d++\D++\d++\D++\d", re.IGNORECASE)
_UPDATED = re.compile(r"^(?:last\s+)?(?:updated|modified)\b", re.IGNORECASE)
STAMP_LABEL_MAX_WORDS = 3  # a section or site name set off before a date line's date
_STAMP_SEPARATORS = frozenset("|•·,–—-@")
_SENTENCE_END = re.compile(r"[.!?]\s")
_FILLER = re.compile(r"[\s,|/•·–—\-:()\[\]]+|\bat\b|\bon\b", re.IGNORECASE)
# "… / UPDATED 3 HOURS AGO": a relative stamp beside a real date says nothing more.
_AGO = re.compile(
    r"[\s/|•·–—-]*(?:(?:last\s+)?updated\s+)?(?:an?|\d+)\s+"
    r"(?:second|minute|min|hour|hr|day|week|month)s?\s+ago\s*$",
    re.IGNORECASE,
)


@lru_cache(maxsize=64)
def zone(name: str) -> tzinfo:
    """The IANA zone ``name``; ``ValueError`` when there is none of that name."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def find_date(text: str, default_tz: tzinfo) -> tuple[datetime, int, int] | None:
    """The first whole date in ``text`` with its time and zone, and the span it covers."""
    if _YEAR_DIGITS.search(text) is None:  # each form names its year: most text has none
        return None
    for match in _forms(text):
        day = _day_of(match)
        if day is not None:
            when, start, end = _with_time(text, match, day, default_tz)
            if when is not None:
                return when, start, end
    return None


def _any_form(text: str) -> bool:
    """Whether ``text`` holds one of ``_DATE``'s forms, possible or not."""
    return next(_forms(text), None) is not None


def _forms(text: str) -> Iterator[re.Match[str]]:
    """``_DATE``'s matches in ``text``, one after the other. Each is looked for in the text
    lower-cased, by the pattern without IGNORECASE (three times faster), then matched
    where found; and only in a text holding a ``_DATE_HINT``."""
    lowered = text.lower()
    if _DATE_HINT.search(lowered) is None:  # nor a month's name, nor digits set off
        return
    if len(lowered) != len(text):  # a letter whose lower case is longer: as it is
        yield from _DATE.finditer(text)
        return
    at = 0
    while (found := _DATE_LOWER.search(lowered, at)) is not None:
        match = _DATE.match(text, found.start())
        if match is None:  # not the same strings after all: as it is, from here
            yield from _DATE.finditer(text, found.start())
            return
        yield match
        at = match.end()


def names_a_year(text: str) -> bool:
    """Whether ``text`` holds a year's digits: every date line (``date_line``) does."""
    return _YEAR_DIGITS.search(text) is not None


def date_line(text: str, default_tz: tzinfo) -> tuple[datetime, bool] | None:
    """The date of a line that is nothing but a (labelled) date, and whether it says "updated".

    "11 Jun 2018, 08:51 GMT+10" and "Published: March 3, 2019 at 10:15 a.m. EST" are date
    lines; "On March 3, 2019 the council voted" is prose and gives ``None``.
    """
    if len(text) > 80 or not _YEAR_DIGITS.search(text):
        return None
    updated = bool(_UPDATED.match(text))
    label = _LABEL.match(text)
    rest = text[label.end() :] if label else text
    rest = _AGO.sub("", rest) if "ago" in rest.lower() else rest
    found = find_date(rest, default_tz)
    if found is not None:
        when, start, end = found
        leftover = _FILLER.sub("", rest[:start] + rest[end:])
        if not leftover or _labelled_stamp(rest[:start], rest[end:]):
            return when, updated
        return None
    # A form the patterns know but found impossible (2019-13-01) is not asked about again:
    # dateparser would guess another reading of it.
    if label and label.group(0).strip() and not _any_form(rest):
        parsed = _dateparser_strict(rest.strip(), default_tz)
        return (parsed, updated) if parsed is not None else None
    return None


def _labelled_stamp(before: str, after: str) -> bool:
    """Whether what stands before a line's date, and nothing after it, is a short label set
    off from it: a section or a site ("In Depth | 19 July 2012", "site.com, Monday 29
    October 2012"). A date inside a sentence ("On March 3, 2019 the council voted") has
    words after it, or none set off; an unknown zone after it ("10:15 AESD") is no date."""
    if after.strip():
        return False
    label = before.rstrip()
    return (
        bool(label)
        and label[-1] in _STAMP_SEPARATORS
        and len(label.split()) <= STAMP_LABEL_MAX_WORDS
        and _SENTENCE_END.search(label) is None
    )


def plausible(when: datetime) -> datetime | None:
    """``when`` if it is tz-aware and within the years a news date names, else ``None``."""
    aware = when.tzinfo is not None and when.utcoffset() is not None
    return when if aware and _FIRST_YEAR <= when.year <= _LAST_YEAR else None


def _day_of(match: re.Match[str]) -> date | None:
    for d, m, y in (("d1", "m1", "y1"), ("d2", "m2", "y2"), ("d3", "m3", "y3"), ("d4", "m4", "y4")):
        if match.group(y):
            month_text, day_text = match.group(m), match.group(d)
            month = _MONTHS.get(month_text[:3].lower()) if month_text[0].isalpha() else None
            if month is None and int(month_text) > 12 and m == "m4":  # 28/07/2008: day first
                month_text, day_text = day_text, month_text
            try:
                return date(int(match.group(y)), month or int(month_text), int(day_text))
            except ValueError:  # 31 February, month 13: the pattern only knows digits
                return None
    return None


def _with_time(
    text: str, match: re.Match[str], day: date, default_tz: tzinfo
) -> tuple[datetime | None, int, int]:
    """Attach the time and zone printed right after (or right before) the date.

    The date is ``None`` when the time printed with it is one no clock shows (25:10).
    """
    start, end = match.span()
    if match.group("isotime"):
        stamp = _iso_time(day, match.group("isotime"), match.group("isotz"), default_tz)
        return stamp, start, end
    hour = minute = second = 0
    after = text[end : end + 40]
    time_match = _TIME.match(after.lstrip(" ,|/–—-")) if after else None
    if time_match is not None:
        shift = len(after) - len(after.lstrip(" ,|/–—-"))
        end += shift + time_match.end()
    else:
        offset = max(0, start - 24)
        time_match = _TIME.search(text, offset, start)
        if time_match is not None:
            start = time_match.start()
    if time_match is not None:
        hour, minute = int(time_match.group("h")), int(time_match.group("mi"))
        second = int(time_match.group("s") or 0)
        ampm = (time_match.group("ampm") or "").lower()
        if ampm.startswith("p") and hour < 12:
            hour += 12
        elif ampm.startswith("a") and hour == 12:
            hour = 0
    tz, start, end = _zone_near(text, start, end, match.start(), default_tz)
    return _at(day, hour, minute, second, 0, tz), start, end


def _iso_time(day: date, clock: str, offset: str | None, default_tz: tzinfo) -> datetime | None:
    """``day`` at an ISO ``HH:MM[:SS[.f]]`` time and offset; ``None`` for an impossible time."""
    hour, minute, second = int(clock[:2]), int(clock[3:5]), int(clock[6:8] or 0)
    fraction = clock[9:]
    tz = UTC if offset and offset.upper() == "Z" else _zone_or(offset, default_tz)
    if (hour, minute, second) == (24, 0, 0) and not fraction.strip("0"):
        # ISO 8601's end of a day is the next day's midnight.
        return datetime.combine(day + timedelta(days=1), time(), tzinfo=tz)
    microsecond = int(fraction[:6].ljust(6, "0")) if fraction else 0
    return _at(day, hour, minute, second, microsecond, tz)


def _at(
    day: date, hour: int, minute: int, second: int, microsecond: int, tz: tzinfo
) -> datetime | None:
    """``day`` at that time, or ``None`` when no clock shows it (24:30, 10:60, a leap second)."""
    if hour > 23 or minute > 59 or second > 59:
        return None
    return datetime(day.year, day.month, day.day, hour, minute, second, microsecond, tzinfo=tz)


def _zone_near(
    text: str, start: int, end: int, date_start: int, default_tz: tzinfo
) -> tuple[tzinfo, int, int]:
    """The zone printed right after the time (or just before the date), and the span with it."""
    after = text[end : end + 16]
    zone_match = _ZONE.match(after, len(after) - len(after.lstrip(" ,/")))
    if zone_match is not None:
        return _zone_of(zone_match, default_tz), start, end + zone_match.end()
    zone_match = _ZONE.search(text, max(0, date_start - 12), date_start)
    if zone_match is not None:
        return _zone_of(zone_match, default_tz), min(start, zone_match.start()), end
    return default_tz, start, end


def _zone_of(match: re.Match[str], default_tz: tzinfo) -> tzinfo:
    """The zone a matched token names."""
    abbr = match.group("abbr")
    if abbr in _ABBR_PLACES:
        return ZoneInfo(_ABBR_PLACES[abbr])
    if abbr:
        return timezone(timedelta(hours=_ABBR_HOURS[abbr]))
    if match.group("gmt") and not match.group("gmtoff"):
        return UTC
    return _zone_or(match.group("gmtoff") or match.group("num"), default_tz)


def _zone_or(offset: str | None, default_tz: tzinfo) -> tzinfo:
    """The zone of a ``±H``, ``±HH``, ``±HMM``, ``±HHMM`` or ``±HH:MM`` offset.

    An offset no clock keeps ("GMT+99", "+9999") says nothing about the zone, as if none
    were printed: the default zone, not an error, and the date and time still count.
    """
    if not offset:
        return default_tz
    digits = offset[1:].replace(" ", "").replace(":", "")
    hours, minutes = (digits, "0") if len(digits) <= 2 else (digits[:-2], digits[-2:])
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    if int(minutes) > 59 or delta > _MAX_OFFSET:
        return default_tz
    return timezone(-delta if offset[0] == "-" else delta)


@lru_cache(maxsize=256)
def _dateparser_strict(text: str, default_tz: tzinfo) -> datetime | None:
    """Ask dateparser, strictly, about a labelled date our patterns do not know; once per
    line (the cleaner asks of a page's head line both whether it is a date and which)."""
    if not text or len(text) > 60 or _COULD_BE_A_DATE.search(text) is None:
        return None  # not asked: its first question costs more than a page's cleaning
    import dateparser  # deferred: its import costs more than all other parsing

    settings = {
        "STRICT_PARSING": True,
        "REQUIRE_PARTS": ["day", "month", "year"],
        "RETURN_AS_TIMEZONE_AWARE": True,
        "TIMEZONE": str(default_tz),
        "PREFER_DATES_FROM": "past",
    }
    parsed = dateparser.parse(text, languages=["en"], settings=settings)
    # It fills what a text lacks from today and reads stray digits as a year ("1900 T year
    # pm 00 00" is the year 126): only a date in a year the text names is one.
    if not isinstance(parsed, datetime) or str(parsed.year) not in _YEAR_DIGITS.findall(text):
        return None
    return plausible(parsed)
