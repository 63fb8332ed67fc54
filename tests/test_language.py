"""The article's language: declared tags read and normalised, else detected when confident."""

from __future__ import annotations

from datetime import UTC

import pytest

from digest import language, readers

from .conftest import DATA

LANG = DATA / "lang"

GERMAN = (
    "Der Stadtrat hat am Dienstag beschlossen, die Lampen am Hafen nach Mitternacht zu "
    "dimmen. Das spart Strom, und die Anwohner sehen wieder die Sterne. Gegner fürchten um "
    "die Sicherheit auf dem Heimweg, die Polizei soll deshalb öfter Streife fahren."
)
ENGLISH = (
    "The harbour council voted on Tuesday to dim the quay lamps after midnight. It saves "
    "power, and the people who live there can see the stars again. Opponents fear for the "
    "safety of the walk home, so the police will patrol more often."
)


@pytest.mark.parametrize(
    ("declared", "tag"),
    [
        ("de", "de"),
        ("en_US", "en-US"),
        ("PT-br", "pt-BR"),
        ("zh-hans-cn", "zh-Hans-CN"),
        ("en-GB, en", "en-GB"),
        (" fr ", "fr"),
        ("English", None),
        ("und", None),
        ("x-default", None),
        ("", None),
        (None, None),
        (42, None),
        ("de-" + "a" * 40, None),
    ],
)
def test_declared_tags_are_normalised(declared: object, tag: str | None) -> None:
    assert language.normalise(declared) == tag


@pytest.mark.parametrize(
    ("tag", "direction"),
    [
        *[("ar", "rtl"), ("he-IL", "rtl"), ("fa", "rtl"), ("ur", "rtl"), ("az-Arab", "rtl")],
        *[("en", None), ("de", None), ("ja", None), (None, None), ("ku-Latn", None)],
    ],
)
def test_right_to_left_languages(tag: str | None, direction: str | None) -> None:
    assert language.direction(tag) == direction


def declared(markup: str) -> str:
    """The language a page declares, read as ``readers.read_html`` reads it ("" for none)."""
    return readers._page_meta(markup).language


def test_a_page_declares_json_ld_first_then_html_lang_then_og_locale() -> None:
    page = (LANG / "de-page.html").read_text(encoding="utf-8")
    assert declared(page) == "de-AT"  # the article's own inLanguage
    without_ld = page.replace('"inLanguage": "de-AT"', '"x": 1')
    assert declared(without_ld) == "de-DE"
    only_og = without_ld.replace('<html lang="de-DE">', "<html>")
    assert declared(only_og) == "de-DE"
    nothing = only_og.replace('content="de_DE"', 'content=""')
    assert declared(nothing) == ""


@pytest.mark.parametrize(
    "markup", ["", "<html", "<script type='application/ld+json'>{not json</script>", "\x00"]
)
def test_a_broken_page_declares_nothing_and_raises_nothing(markup: str) -> None:
    assert declared(markup) == ""


def test_an_html_page_carries_its_declared_language() -> None:
    draft, _, _ = readers.read_html((LANG / "de-page.html").read_bytes(), UTC)
    assert draft.lang == "de-AT"


def test_feed_entries_carry_the_feeds_language() -> None:
    site, entries = readers.read_feed((LANG / "ja-feed.rss").read_bytes())
    found = [readers.read_entry(entry, site, UTC) for entry in entries]
    assert [f[0].lang for f in found if f] == ["ja", "ja"]


def test_an_entry_xml_lang_beats_the_feeds() -> None:
    atom = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en"><title>T</title><id>urn:t</id>
<updated>2024-03-05T00:00:00Z</updated>
<entry xml:lang="fr"><title>Les lampes du port</title><id>urn:1</id>
<updated>2024-03-05T00:00:00Z</updated>
<content
 type="html">&lt;p&gt;Le conseil a vot\xc3\xa9 mardi pour baisser les lampes.&lt;/p&gt;</content>
</entry>
<entry><title>Harbour lamps</title><id>urn:2</id><updated>2024-03-05T00:00:00Z</updated>
<content type="html">&lt;p&gt;The council voted on Tuesday to dim the lamps.&lt;/p&gt;</content>
</entry></feed>"""
    site, entries = readers.read_feed(atom)
    langs = [found[0].lang for e in entries if (found := readers.read_entry(e, site, UTC))]
    assert langs == ["fr", "en"]


@pytest.mark.parametrize(
    ("title", "paragraphs", "tag"),
    [
        ("Hafenlampen werden gedimmt", [GERMAN], "de"),
        ("Harbour lamps dimmed", [ENGLISH], "en"),
        ("", [(LANG / "ja-page.txt").read_text(encoding="utf-8")], "ja"),
        ("", [(LANG / "zh-page.txt").read_text(encoding="utf-8")], "zh"),
    ],
    ids=["german", "english", "japanese", "chinese"],
)
def test_the_language_is_detected_from_the_text(
    title: str, paragraphs: list[str], tag: str
) -> None:
    assert language.detect(title, paragraphs) == tag
    assert language.of_article(None, title, paragraphs) == tag


@pytest.mark.parametrize("text", ["Quick update", "OK", "12 34 56 78", "Berlin, Paris, Rom"])
def test_too_little_text_is_not_guessed(text: str) -> None:
    assert language.detect(text, []) is None


def test_what_the_source_declares_wins_over_detection() -> None:
    assert language.of_article("en-GB", "Harbour lamps dimmed", [ENGLISH]) == "en-GB"
    assert language.of_article("nl", "Kort", ["Kort bericht."]) == "nl"  # too short to doubt


def test_a_declaration_the_text_plainly_contradicts_is_not_believed() -> None:
    """A site template's lang="en" over a German article: the text decides."""
    assert language.of_article("en", "Hafenlampen werden gedimmt", [GERMAN, GERMAN]) == "de"
    assert language.of_article("kn", "Harbour lamps dimmed", [ENGLISH, ENGLISH]) == "en"


@pytest.mark.parametrize("odd", ["\ud800", "\x00\x01\x02", "\ufffe"])
def test_text_the_detector_cannot_take_is_no_language_and_no_crash(odd: str) -> None:
    assert language.detect("", [odd + ENGLISH[:60] + odd]) is None
