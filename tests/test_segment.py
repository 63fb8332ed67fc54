"""The segmenter's page, set aside and read back (``pack`` / ``unpack``)."""

from __future__ import annotations

from digest import segment

PAGE = """Lamp Notes

Tag Archive | Lamps

A reading lamp for the long winter evenings, and what it costs to run one all night.
It draws less than a kettle does in a minute, the makers say, and lasts for ten years.

Posted in Lamps, Winter | 3 Comments

The second post of the page, about shades: paper, glass and the cloth ones we liked.
Cloth gives the warmest light of the three, and the paper ones scorch if left on long.

Filed under Shades
"""


def test_a_packed_page_reads_back_as_prepared_with_its_footers() -> None:
    page = segment.prepare(PAGE)
    assert segment.segments(page)[0][0][1] == ["Lamps", "Winter"]  # footers asked, as in use
    again = segment.unpack(segment.pack(page))
    facts = [(u.text, u.key, u.words, u.terminal, u.prose, u.memo_footer) for u in page]
    assert [(u.text, u.key, u.words, u.terminal, u.prose, u.memo_footer) for u in again] == facts
    assert {u.memo_date for u in again} == {segment.UNASKED}  # other memos asked afresh
    assert posts(again) == posts(page)


def posts(page: segment.Page) -> list[tuple[list[str], list[str], str | None]]:
    return [
        ([u.text for u in units], tags, hint) for units, tags, hint in segment.segments(page)[0]
    ]


def test_a_page_packed_before_its_footers_are_asked_has_them_answered() -> None:
    page = segment.prepare(PAGE)
    again = segment.unpack(segment.pack(page))
    assert [u.memo_footer for u in again] == [segment.footer(u) for u in segment.prepare(PAGE)]
