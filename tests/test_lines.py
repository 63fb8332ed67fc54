"""The line recognisers the cleaner and the summarizer share: names, bylines, dates, datelines."""

from __future__ import annotations

import re

import pytest

from digest.lines import (
    AUTHOR_PARTICLES,
    NAME_LINKS,
    after_byline,
    is_date_line,
    name_like,
    read_byline,
    split_dateline,
    word_count,
    words,
    words_key,
)


@pytest.mark.parametrize(
    "text",
    ["Jane Doe", "Ludwig van Beethoven", "Jane and John Doe", "Harbour Gazette", "CNN"],
)
def test_names_of_people_and_organisations(text: str) -> None:
    assert name_like(text, AUTHOR_PARTICLES, any_case=True)
    assert name_like(text, NAME_LINKS)


@pytest.mark.parametrize(
    "text",
    ["", "the council voted", "Jane Doe 2019", "One Two Three Four Five Six Seven"],
    ids=["empty", "lower-case words", "a digit", "seven words"],
)
def test_what_is_not_a_name(text: str) -> None:
    assert not name_like(text, AUTHOR_PARTICLES, any_case=True)
    assert not name_like(text, NAME_LINKS)


def test_the_two_sets_of_linking_words_differ_as_their_callers_need() -> None:
    # an author's particles: "le", "di", "den"; an organisation's links: "of", "for"
    assert name_like("Jean le Rond", AUTHOR_PARTICLES, any_case=True)
    assert not name_like("Jean le Rond", NAME_LINKS)
    assert name_like("Department of State", NAME_LINKS)
    assert not name_like("Department of State", AUTHOR_PARTICLES, any_case=True)


def test_an_author_particle_is_matched_in_any_case_a_name_link_as_printed() -> None:
    assert name_like("Ludwig vAN Beethoven", AUTHOR_PARTICLES, any_case=True)
    assert not name_like("Ludwig vAN Beethoven", NAME_LINKS)


def test_words_are_case_folded_without_punctuation() -> None:
    assert words("Council Dims the Quay-Lamps!") == ["council", "dims", "the", "quay", "lamps"]
    assert words("— ... —") == []


@pytest.mark.parametrize(
    "line",
    [
        "“Don’t,” she said — and left…",
        "► Résumé « Straße » © 2012 ‘ÉTÉ’",
        "Ünïcödé – ΣΊΣΥΦΟΣ • 東京 · ﬁne",
        "plain_snake_case and ® marks",
    ],
)
def test_words_of_a_line_with_typographic_marks_are_those_of_the_pattern(line: str) -> None:
    """Typographic marks blanked to read a line as ASCII give its words as the pattern does."""
    assert words(line) == re.findall(r"[^\W_]+", line.casefold())


@pytest.mark.parametrize(
    "line",
    [
        "Council Dims the Quay-Lamps!",
        "  odd_spacing\tand 42 digits ",
        "“Don’t,” she said",
        "— …",
        "",
    ],
)
def test_a_lines_words_key_is_its_words_single_spaced_in_utf8(line: str) -> None:
    """The key's bytes, read by a byte table for ASCII, are the words joined, whatever path."""
    assert words_key(line) == " ".join(words(line)).encode()


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "By Maria Lopez, Coast Ledger",
            ("Maria Lopez", "Coast Ledger", "Maria Lopez, Coast Ledger"),
        ),
        ("Written by Tom Baker | June 2, 2020", ("Tom Baker", None, "Tom Baker | June 2, 2020")),
        ("Author: Jane Doe", ("Jane Doe", None, "Jane Doe")),
        ("By the harbour at night", (None, None, "the harbour at night")),
    ],
)
def test_a_byline_line_gives_author_organisation_and_the_rest(
    line: str, expected: tuple[str | None, str | None, str]
) -> None:
    assert read_byline(line) == expected


@pytest.mark.parametrize("line", ["Bylines are hard", "Jane Doe", "By"])
def test_a_line_without_the_by_prefix_is_no_byline(line: str) -> None:
    assert read_byline(line) is None


@pytest.mark.parametrize(
    ("paragraph", "after"),
    [
        ("By Jane Doe", ""),
        ("By Jane Doe and John Roe, Harbour Gazette", ""),
        ("By Jane Doe | March 3, 2019", ""),
        ("By Monday, the harbour council had voted to dim the quay lamps.", None),
        ("The council voted.", None),
        (
            "By . Sam Webb . PUBLISHED: . 05:47 EST, 9 October 2013 . | . UPDATED: . "
            "09:14 EST, 9 October 2013 . The council voted on Monday.",
            "The council voted on Monday.",
        ),
    ],
    ids=["name", "two names", "name and date", "prose", "no byline", "daily mail"],
)
def test_what_follows_a_byline_opening_a_paragraph(paragraph: str, after: str | None) -> None:
    assert after_byline(paragraph) == after


@pytest.mark.parametrize(
    ("line", "dated"),
    [
        ("Published March 3, 2019 at 10:15 a.m. EST", True),
        ("Updated 10:12 AM ET, Tue March 3, 2015", True),
        ("11 Jun 2018, 08:51 GMT+10", True),
        ("On March 3, 2019 the council voted to dim the lamps.", False),
        ("Council dims the quay lamps", False),
    ],
)
def test_a_date_line_is_nothing_but_a_date(line: str, dated: bool) -> None:
    assert is_date_line(line) is dated


@pytest.mark.parametrize(
    ("text", "dateline", "rest"),
    [
        ("QINGDAO, China - A week after", "QINGDAO, China", "A week after"),
        ("WASHINGTON (Reuters) - The", "WASHINGTON (Reuters)", "The"),
        ("(CNN) -- The", "(CNN)", "The"),
        ("(CNN)The", "(CNN)", "The"),
        ("LONDON, England (CNN) -- The", "LONDON, England (CNN)", "The"),
        ("Marseille, France (CNN)The", "Marseille, France (CNN)", "The"),
        ("NEW YORK — The", "NEW YORK", "The"),
        ("TEMA - Dockworkers", "TEMA", "Dockworkers"),
    ],
)
def test_a_dateline_is_split_off(text: str, dateline: str, rest: str) -> None:
    assert split_dateline(text) == (dateline, rest)


@pytest.mark.parametrize(
    "text", ["US - Russia talks resume in Geneva.", "The council voted.", "(see below) the"]
)
def test_a_text_without_a_dateline_is_left_whole(text: str) -> None:
    assert split_dateline(text) == (None, text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The council voted on Tuesday.", 5),
        ("Der Stadtrat stimmte am Dienstag zu.", 6),  # spaced, accented: by its spaces
        ("市議会は火曜日、港の街灯を暗くする案を可決した。", 1 + 22 // 2),
        ("市议会周二投票通过。", 1 + 8 // 2),
        ("시의회는 화요일에 법안을 통과시켰다.", 4 + 16 // 4),  # spaced, particles joined
        ("สภาเมืองลงมติเมื่อวันอังคาร", 1 + 27 // 3),
    ],
    ids=["english", "german", "japanese", "chinese", "korean", "thai"],
)
def test_words_are_counted_by_spaces_or_by_characters_where_none_are_written(
    text: str, expected: int
) -> None:
    assert word_count(text) == expected
