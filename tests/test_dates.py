"""Strict date reading: whole dates with their time and zone, never a word read as a date."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from digest import dates
from digest.dates import date_line, find_date, zone

UTC = zone("UTC")


def tz(hours: float) -> timezone:
    return timezone(timedelta(hours=hours))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("11 Jun 2018, 08:51 GMT+10", datetime(2018, 6, 11, 8, 51, tzinfo=tz(10))),
        ("Sat, 20 Oct 2018", datetime(2018, 10, 20, tzinfo=UTC)),
        ("December 31, 2018", datetime(2018, 12, 31, tzinfo=UTC)),
        ("Published March 3, 2019 at 10:15 a.m. EST", datetime(2019, 3, 3, 10, 15, tzinfo=tz(-5))),
        ("Posted on 2019-03-04T10:00:00+02:00", datetime(2019, 3, 4, 10, tzinfo=tz(2))),
        ("Posted: 2019-03-04T10:00:00Z", datetime(2019, 3, 4, 10, tzinfo=tz(0))),
        ("January 5, 2019 at 3:15 pm", datetime(2019, 1, 5, 15, 15, tzinfo=UTC)),
        ("Updated 10:15 EST, 3 March 2019", datetime(2019, 3, 3, 10, 15, tzinfo=tz(-5))),
        (
            "OCTOBER 8, 2019 / 11:20 AM / UPDATED 3 HOURS AGO",
            datetime(2019, 10, 8, 11, 20, tzinfo=UTC),
        ),
        ("Published: the 3rd of March, 2019", datetime(2019, 3, 3, tzinfo=UTC)),
        ("Tuesday, March 12, 2019", datetime(2019, 3, 12, tzinfo=UTC)),
        ("12 June 2020, 12:30 PM IST", datetime(2020, 6, 12, 12, 30, tzinfo=tz(5.5))),
        # a US zone that does not say summer or winter: the place's offset on the day
        ("Nov 5, 2012 - 3:39PM PT", datetime(2012, 11, 5, 15, 39, tzinfo=tz(-8))),
        ("July 4, 2012 10:00 ET", datetime(2012, 7, 4, 10, tzinfo=tz(-4))),
        # a section or site set off before the date
        ("In Depth | 19 July 2012", datetime(2012, 7, 19, tzinfo=UTC)),
        (
            "example.co.uk, Monday 29 October 2012 14.00 EDT",
            datetime(2012, 10, 29, 14, tzinfo=tz(-4)),
        ),
    ],
)
def test_date_lines(line: str, expected: datetime) -> None:
    found = date_line(line, UTC)
    assert found is not None
    assert found[0] == expected
    assert found[0].utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    "line",
    [
        "we",
        "We met on Wednesday",
        "October 2020",
        "On March 3, 2019 the council voted to approve the plan",
        "May the best team win",
        "3 days ago",
        "Published: soon",
        "31 Feb 2019",
        "The mayor said | March 3, 2019",  # more than a label before it
        "Weather. Sports | March 3, 2019",  # a sentence ends in it
        "Archive | March 3, 2019 and more",  # words after the date
    ],
)
def test_not_date_lines(line: str) -> None:
    assert date_line(line, UTC) is None


def test_updated_lines_say_so() -> None:
    assert date_line("Updated March 4, 2019", UTC) == (datetime(2019, 3, 4, tzinfo=UTC), True)


def test_naive_dates_take_the_given_zone() -> None:
    ny = zone("America/New_York")
    found = find_date("July 4, 2019 at 9:00 am", ny)
    assert found is not None
    assert found[0].utcoffset() == timedelta(hours=-4)


def test_unknown_zone_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="Mars/Olympus"):
        zone("Mars/Olympus")


# Stamps the patterns half-match: each raised (ValueError, KeyError) before dates were
# validated. An offset no clock keeps counts as no zone; an impossible time is no date.
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # ISO 8601's end of a day is the next day's midnight.
        ("2019-03-04T24:00", datetime(2019, 3, 5, tzinfo=UTC)),
        ("2019-03-04T24:00:00Z", datetime(2019, 3, 5, tzinfo=UTC)),
        ("2019-03-04T23:59:59.1234567+14:00", datetime(2019, 3, 4, 23, 59, 59, 123456, tz(14))),
        ("2019-03-04T10:00-12:00", datetime(2019, 3, 4, 10, tzinfo=tz(-12))),
        ("11 Jun 2018, 08:51 GMT+9", datetime(2018, 6, 11, 8, 51, tzinfo=tz(9))),
        ("11 Jun 2018, 08:51 GMT+99", datetime(2018, 6, 11, 8, 51, tzinfo=UTC)),
        ("11 Jun 2018, 08:51 GMT+10:60", datetime(2018, 6, 11, 8, 51, tzinfo=UTC)),
        ("4 March 2019 10:15 +9999", datetime(2019, 3, 4, 10, 15, tzinfo=UTC)),
        ("4 March 2019 10:15 -1500", datetime(2019, 3, 4, 10, 15, tzinfo=UTC)),
        ("4 March 2019 10:15 AESD", datetime(2019, 3, 4, 10, 15, tzinfo=UTC)),
        ("4 March 2019 10:15 AEDT", datetime(2019, 3, 4, 10, 15, tzinfo=tz(11))),
        ("2019-03-04T10:00+99:99", datetime(2019, 3, 4, 10, tzinfo=UTC)),
        ("2019-03-04T10:00+14:30", datetime(2019, 3, 4, 10, tzinfo=UTC)),
        ("2019-03-04T10:00-0960", datetime(2019, 3, 4, 10, tzinfo=UTC)),
        ("2019-03-04T10:00z", datetime(2019, 3, 4, 10, tzinfo=UTC)),
    ],
)
def test_half_matching_stamps_give_a_valid_date(text: str, expected: datetime) -> None:
    found = find_date(text, UTC)
    assert found is not None
    assert found[0] == expected
    assert found[0].utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    "text",
    [
        "2019-03-04T24:01",
        "2019-03-04T25:00",
        "2019-03-04T10:60",
        "2019-03-04T10:00:61",
        "2019-02-31",
        "02/31/2019",
        "2019-13-01",
        "2019-00-10",
        "31 Feb 2019 10:00",
        "February 29, 2019",
    ],
)
def test_impossible_stamps_are_no_date(text: str) -> None:
    assert find_date(text, UTC) is None
    assert date_line(text, UTC) is None
    assert date_line(f"Published: {text}", UTC) is None


@pytest.mark.parametrize(
    "line",
    [
        "4 March 2019 10:15 AESD",  # an abbreviation we do not know is left over: not a date line
        # dateparser reads this as the year 126; a date must name the year it is in
        "Published: 1900 T year pm 00 00",
    ],
)
def test_lines_with_nonsense_are_not_date_lines(line: str) -> None:
    assert date_line(line, UTC) is None


@pytest.mark.parametrize("offset", ["GMT+99", "GMT+10:60", "+9999", "-1500"])
def test_an_offset_no_clock_keeps_still_makes_a_date_line(offset: str) -> None:
    """It is a stamp's zone, unreadable: the line is the page's date, in the default zone."""
    found = date_line(f"Published: 11 Jun 2018, 08:51 {offset}", UTC)
    assert found == (datetime(2018, 6, 11, 8, 51, tzinfo=UTC), False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("07-28-2008", datetime(2008, 7, 28, tzinfo=UTC)),  # month first, as US sites print
        ("03/04/2019", datetime(2019, 3, 4, tzinfo=UTC)),
        ("28/07/2008", datetime(2008, 7, 28, tzinfo=UTC)),  # 28 is no month: day first
        ("Nov. 6,2012 at 5:32 PM EST", datetime(2012, 11, 6, 17, 32, tzinfo=tz(-5))),
    ],
)
def test_numeric_dates_with_dashes_or_slashes_and_a_comma_glued_to_the_year(
    text: str, expected: datetime
) -> None:
    found = find_date(text, UTC)
    assert found is not None and found[0] == expected
    assert date_line(f"Posted: {text}", UTC) == (expected, False)


@pytest.mark.parametrize(
    "text",
    ["128/07/2008", "07/28/20081", "07-28/2008", "1.2.2008", "13/13/2019", "2019-03-045"],
)
def test_no_date_is_read_out_of_a_longer_number_or_a_mixed_form(text: str) -> None:
    assert find_date(text, UTC) is None


def test_dateparser_is_asked_only_of_a_text_that_could_name_a_whole_date(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its first question costs more than cleaning a page: a labelled line with neither a
    month's name nor three numbers in it is no date without asking."""
    import dateparser

    asked: list[str] = []
    monkeypatch.setattr(dateparser, "parse", lambda text, **_: asked.append(text))
    assert date_line("Published: polling and politics 2012", UTC) is None
    assert asked == []
    assert date_line("Published: the 3rd of Marchember 2012", UTC) is None
    assert asked == ["the 3rd of Marchember 2012"]


def test_the_lower_cased_date_pattern_holds_no_upper_case_letter() -> None:
    """Dates are looked for in lower-cased text by ``_DATE`` with its upper-case letters
    lowered (``_DATE_LOWER``): a capital left in it (a new "T" or "Z" form) would find no
    date at all. Group names and escapes (``\\d``, ``\\S``) are not letters of the text."""
    letters = re.sub(r"\(\?P<\w+>|\(\?P=\w+\)|\\.", "", dates._DATE_LOWER.pattern)
    assert not [c for c in letters if c.isupper()]
    assert dates._DATE_LOWER.flags & re.IGNORECASE == 0  # the point of it: three times faster
