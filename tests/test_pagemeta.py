"""The page's own metadata (JSON-LD, meta tags), its tidying, and the HTML path that uses it."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from lxml import html as lxml_html

from digest import dates, pagemeta, readers
from digest.summarize import lead_summary

BERLIN = dates.zone("Europe/Berlin")
STORY = (
    "<p>The city council voted on Monday to close the old harbour bridge for a year of repairs."
    "</p><p>Engineers found cracks in two of its piers during a routine inspection in May, the"
    " mayor said, and the repairs could not wait another winter.</p><p>Ferries will run every"
    " twenty minutes while the bridge is closed, and the council will pay for the extra boats."
    "</p>"
)


def page(head: str = "", body: str = STORY, title: str = "Harbour bridge to close") -> bytes:
    return (
        f"<html><head><title>{title}</title>{head}</head><body><article>"
        f"<h1>Harbour bridge to close</h1>{body}</article></body></html>"
    ).encode()


def ld(data: object) -> str:
    return f'<script type="application/ld+json">{json.dumps(data)}</script>'


def test_jsonld_article_in_a_graph_gives_headline_date_authors_keywords_language() -> None:
    graph = {
        "@context": "https://schema.org",
        "@graph": [
            {"@type": "WebSite", "name": "Harbour Gazette"},
            {
                "@type": ["NewsArticle"],
                "headline": "Harbour bridge to close for a year",
                "datePublished": "2012-08-09T17:00:00Z",
                "author": [{"@type": "Person", "name": "Jane Doe"}, {"name": "John Roe"}],
                "keywords": ["Bridges", "City council"],
                "inLanguage": "en-GB",
                "publisher": {"@type": "Organization", "name": "Harbour Gazette"},
            },
        ],
    }
    meta = pagemeta.read(lxml_html.fromstring(page(ld(graph))))
    assert meta.title == "Harbour bridge to close for a year"
    assert meta.published == "2012-08-09T17:00:00Z"
    assert meta.authors == ("Jane Doe", "John Roe")
    assert meta.keywords == ("Bridges", "City council")
    assert meta.language == "en-GB"
    assert meta.site_name == "Harbour Gazette"


def test_meta_tags_when_there_is_no_jsonld() -> None:
    head = (
        '<meta property="og:title" content="Bridge closes">'
        '<meta property="article:published_time" content="2012-08-09T19:00:00+02:00">'
        '<meta name="author" content="Jane Doe">'
        '<meta property="og:site_name" content="Harbour Gazette">'
        '<meta name="keywords" content="bridges, council; ferries">'
    )
    meta = pagemeta.read(lxml_html.fromstring(page(head)))
    assert (meta.title, meta.published, meta.authors) == (
        "Bridge closes",
        "2012-08-09T19:00:00+02:00",
        ("Jane Doe",),
    )
    assert meta.site_name == "Harbour Gazette"
    assert pagemeta.keywords(meta.keywords) == ["bridges", "council", "ferries"]


def test_broken_jsonld_is_skipped_for_the_next_block() -> None:
    head = '<script type="application/ld+json">{not json</script>' + ld(
        [{"@type": "BlogPosting", "headline": "Second block"}]
    )
    assert pagemeta.read(lxml_html.fromstring(page(head))).title == "Second block"


@pytest.mark.parametrize(
    ("raw", "names", "expected"),
    [
        ("Flood warning on the Rhine | DW | 19.01.2020", ["DW.COM"], "Flood warning on the Rhine"),
        ("The Gazette - Bridge to close for good", ["The Gazette"], "Bridge to close for good"),
        ("Bridge to close – harbourgazette", ["harbourgazette"], "Bridge to close"),
        ("Bridge to close | News", ["Harbour Gazette"], "Bridge to close | News"),
        ("Gazette | Gazette", ["Gazette"], "Gazette | Gazette"),
        ("Rust - The Book", ["Ferris Blog"], "Rust - The Book"),
    ],
)  # fmt: skip
def test_title_loses_a_site_name_or_date_part_only_when_a_title_is_left(
    raw: str, names: list[str], expected: str
) -> None:
    assert pagemeta.title(raw, names) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("View all posts by Jane Doe", "Jane Doe"),
        ("Jane Doe; Heise Online", "Jane Doe"),
        ("By Jane Doe and John Roe", "Jane Doe and John Roe"),
        ("https://www.facebook.com/janedoe", None),
        ("Posted by: Ludwig van Beethoven", "Ludwig van Beethoven"),
        ("Staff 2019 report 42", None),
    ],
)
def test_author_is_a_name_only(raw: str, expected: str | None) -> None:
    assert pagemeta.author(raw) == expected


def test_keywords_split_capped_and_junk_dropped() -> None:
    long_one = "word " * 3 + "x" * 80
    sentence = "this is a whole sentence pretending to be a keyword of the page"
    raws = ["Bridges, bridges; 2019, null, http://example.com/tag", long_one, sentence]
    tags = pagemeta.keywords([*raws, ",".join(f"tag{n}x" for n in range(100))])
    assert tags[0] == "Bridges"
    assert "bridges" not in tags and "2019" not in tags and "null" not in tags
    assert all(len(tag) <= pagemeta.KEYWORD_MAX_CHARS for tag in tags)
    assert sentence not in tags
    assert len(tags) == pagemeta.MAX_KEYWORDS


def test_html_page_takes_structured_data_first_with_time_of_day() -> None:
    head = (
        ld(
            {
                "@type": "NewsArticle",
                "headline": "Harbour bridge to close | Harbour Gazette",
                "datePublished": "2012-08-09T17:00:00Z",
                "author": {"name": "View all posts by Jane Doe"},
                "publisher": {"name": "Harbour Gazette"},
            }
        )
        + '<meta name="keywords" content="'
        + ", ".join(["bridges"] * 2 + ["x" * 400])
        + '">'
    )
    draft, _url, site = readers.read_html(page(head), BERLIN)
    assert draft.title == "Harbour bridge to close"
    assert draft.published == datetime(2012, 8, 9, 17, tzinfo=UTC)
    assert draft.author == "Jane Doe"
    assert draft.categories == ("bridges",)
    assert site == "Harbour Gazette"


def test_html_page_article_published_time_keeps_its_zone() -> None:
    head = '<meta property="article:published_time" content="2012-08-09T19:00:00+02:00">'
    draft, _url, _site = readers.read_html(page(head), BERLIN)
    assert draft.published == datetime(2012, 8, 9, 19, tzinfo=timezone(timedelta(hours=2)))


def test_captions_credits_and_embedded_posts_are_not_the_lead() -> None:
    body = (
        '<figure><img src="a.jpg"><figcaption>Workers inspect a pier of the old bridge in'
        " May.</figcaption></figure>"
        "<p>A crane stands beside the bridge on Monday. (Getty Images)</p>"
        '<blockquote class="twitter-tweet"><p>The bridge is closing, what a mess for all of'
        " us.</p>— Jane Doe (@janedoe) August 9, 2012</blockquote>"
        "<p>This article originally appeared on the Harbour Gazette website.</p>" + STORY
    )
    draft, _url, _site = readers.read_html(page(body=body), BERLIN)
    assert draft.paragraphs[0].startswith("The city council voted on Monday")
    text = " ".join(draft.paragraphs)
    assert "inspect a pier" not in text and "Getty" not in text
    assert "@janedoe" not in text and "originally appeared" not in text


def test_head_lines_above_the_first_sentence_are_not_the_body() -> None:
    body = "<p>Local news</p><p>9 August 2012 Last updated at 17:00 GMT</p>" + STORY
    draft, _url, _site = readers.read_html(page(body=body), BERLIN)
    assert draft.paragraphs[0].startswith("The city council voted")


def test_a_table_of_content_is_kept_as_readable_rows() -> None:
    table = (
        "<table><tr><th>Ferry</th><th>Departs</th></tr><tr><td>North pier</td><td>07:00</td>"
        "</tr><tr><td>South pier</td><td>07:20</td></tr></table>"
    )
    draft, _url, _site = readers.read_html(page(body=STORY + table), BERLIN)
    assert "North pier | 07:00" in draft.paragraphs
    assert not any(p.startswith("|") for p in draft.paragraphs)


PAGES = Path(__file__).parent / "data" / "pages"  # Readability's test pages (Apache-2.0)


def real_page(name: str) -> bytes:
    return gzip.decompress((PAGES / f"{name}.html.gz").read_bytes())


def test_a_real_page_dated_to_the_minute_by_its_structured_data() -> None:
    draft, _url, site = readers.read_html(real_page("citylab-1"), BERLIN)
    assert draft.published == datetime(2019, 4, 30, 13, 39, tzinfo=timezone(timedelta(hours=-4)))
    assert site is not None and site not in draft.title
    assert draft.author is not None and pagemeta.author(draft.author) == draft.author
    first = draft.paragraphs[0]
    assert len(first.split()) >= 8 and first.rstrip("”\"')")[-1] in ".!?"


def test_a_real_page_keywords_are_capped_tags() -> None:
    draft, _url, _site = readers.read_html(real_page("telegraph"), BERLIN)
    assert draft.published == datetime(2017, 11, 16, 14, 15, tzinfo=UTC)
    assert 0 < len(draft.categories) <= pagemeta.MAX_KEYWORDS
    assert all(len(tag) <= pagemeta.KEYWORD_MAX_CHARS for tag in draft.categories)


def test_an_untitled_page_is_titled_by_the_start_of_its_story() -> None:
    data = f"<html><body>{STORY}</body></html>".encode()
    draft, _url, _site = readers.read_html(data, BERLIN)
    assert draft.title.startswith("The city council voted") and draft.title.endswith("…")
    assert draft.paragraphs[0].startswith("The city council voted on Monday")


def test_a_line_break_after_a_sentence_parts_paragraphs_one_mid_sentence_does_not() -> None:
    first = "The council voted on Monday to close the old bridge for a year of repairs."
    second = "Ferries will run every twenty minutes while the bridge is closed to traffic."
    body = f"<p>{first}<br><br>{second}</p><p>The repairs start at the north<br>pier in May.</p>"
    draft, _url, _site = readers.read_html(page(body=body + STORY), BERLIN)
    assert draft.paragraphs[:3] == (first, second, "The repairs start at the north pier in May.")


def test_a_heading_above_two_line_breaks_stands_apart_from_the_story() -> None:
    """``<b>Heading</b><br><br>Story``: no sentence ends before the breaks, but two in a row
    part paragraphs, so the heading is not glued to the lead; one break stays a space."""
    heading = "Bridge works begin on the north side"
    first = "The council voted on Monday to close the old bridge for a year of repairs."
    body = (
        f"<p><b>{heading}</b><br><br>{first}</p>"
        "<p>The repairs start at the north<br>pier in May, the council said.</p>"
    )
    draft, _url, _site = readers.read_html(page(body=body + STORY), BERLIN)
    assert first in draft.paragraphs
    assert not any(p.startswith(heading) and first in p for p in draft.paragraphs)
    assert "The repairs start at the north pier in May, the council said." in draft.paragraphs
    assert lead_summary(draft.paragraphs, title=draft.title).startswith(first)


def test_opening_paragraphs_the_extractor_left_out_go_back_before_its_first() -> None:
    second = "Engineers found cracks in two of its piers during a routine inspection in May."
    third = "Ferries will run every twenty minutes while the bridge is closed, the mayor said."
    body = (
        '<div><p><a href="/more">Read more about the harbour and the bridges of the city</a>'
        "</p><p>The council voted on Monday to close the old harbour bridge for a year.</p>"
        f"<p>{second}</p><p>{third}</p></div>"
    )
    meta = pagemeta.read(lxml_html.fromstring(page(body=body)))
    assert pagemeta.opening(meta.runs, third)[-1] == second
    lines = ["By Jane Doe", second, third]
    assert readers._with_opening(lines, meta) == [
        "By Jane Doe",
        "The council voted on Monday to close the old harbour bridge for a year.",
        second,
        third,
    ]  # the line of links above it is not put back
    assert readers._with_opening([third], meta)[1:] == [second, third]  # siblings, in order
    fragment = "<p>and then the council voted to close the old harbour bridge for a year.</p>"
    meta = pagemeta.read(lxml_html.fromstring(page(body=f"<div>{fragment}<p>{second}</p></div>")))
    assert readers._with_opening([second], meta) == [second]  # a fragment is not an opening
