"""Reading feeds (``readers.read_feed``/``read_entry`` through ``ingest.read_paths``): every
entry read on its own, the richer of content and summary, untitled and title-only entries,
JSON Feed, kinds from the bytes, declared encodings, links, titles, paragraphs by the
HTML's structure, and lines repeated across a feed's entries."""

from __future__ import annotations

import json
import re
from html import escape
from pathlib import Path

import pytest

from digest import dates, ingest, readers
from digest.models import Article

from .conftest import run, write_config

DATA = Path(__file__).parent / "data" / "feeds"
MOJIBAKE = re.compile("[ÃÂ][\u0080-\u00bf]|[ÐÑ][\u0080-\u00bf\u2018-\u203a]|â€|\ufffd")


def options() -> ingest.Options:
    return ingest.Options(default_tz=dates.zone("UTC"))


def item(
    title: str | None, description: str | None = None, *, link: str = "", extra: str = ""
) -> str:
    """One RSS item; ``description`` is HTML (escaped here, as feeds carry it)."""
    parts = [f"<title>{escape(title)}</title>" if title is not None else ""]
    parts.append(f"<link>{escape(link)}</link>" if link else "")
    if description is not None:
        parts.append(f"<description>{escape(description)}</description>")
    return "<item>" + "".join(parts) + extra + "</item>"


def rss(*items: str, head: str = "<link>https://example.org/</link>") -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/">'
        f"<channel><title>Harbour Gazette</title>{head}{''.join(items)}</channel></rss>"
    )


def read(tmp_path: Path, name: str, text: str | bytes) -> ingest.Batch:
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return ingest.read_paths([path], options())


def by_title(batch: ingest.Batch) -> dict[str, Article]:
    return {a.title: a for a in batch.articles}


LAMPS = "<p>The quay lamps were dimmed last night for the first time in forty years.</p>"
BRIDGE = "<p>The new footbridge over the river opens to walkers in April, the council said.</p>"


# ------------------------------------------------------------- per entry, never per file


def test_an_empty_entry_is_skipped_and_counted_and_the_rest_stored(tmp_path: Path) -> None:
    feed = rss(
        item("Quay lamps dimmed", LAMPS),
        item(None, None, link="https://example.org/nothing"),  # neither title nor text
        item("Bridge opens in April", BRIDGE),
    )
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "gazette.rss").write_text(feed, encoding="utf-8")
    config = write_config(tmp_path)
    result = run("ingest", str(tmp_path / "src"), config=config)
    assert result.exit_code == 0, result.output  # a skipped entry is not an error
    assert "2 articles from 1 of 1 files" in result.stdout
    notes = [line for line in result.stderr.splitlines() if line]
    assert notes == [
        f"Note: {tmp_path / 'src' / 'gazette.rss'}: 1 of 3 entries skipped: no title or text"
    ]
    assert "Error" not in result.output and "Traceback" not in result.output


def test_a_send_shows_the_skipped_entries_too(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    feed = rss(item("Quay lamps dimmed", LAMPS), item(None, None, link="https://example.org/x"))
    (seeds / "gazette.rss").write_text(feed, encoding="utf-8")
    config = write_config(tmp_path, seeds_dir=f'"{seeds}"', outbox_dir=f'"{tmp_path / "out"}"')
    result = run("send", "--dry-run", config=config)
    assert result.exit_code == 0, result.output
    note = f"Note: {seeds / 'gazette.rss'}: 1 of 2 entries skipped: no title or text"
    assert note in result.stderr.splitlines()


def test_a_feed_of_only_empty_entries_is_an_error_of_the_file(tmp_path: Path) -> None:
    batch = read(tmp_path, "empty.rss", rss(item(None, None, link="https://example.org/a")))
    assert not batch.articles
    assert [r.reason for r in batch.rejected] == ["no entry has a title or text (1 entry)"]


def test_an_entry_the_cleaner_would_empty_is_stored_as_the_publisher_wrote_it(
    tmp_path: Path,
) -> None:
    """A release note "3.9.0", a test post "Lorem ipsum": short, not prose, still entries."""
    feed = rss(item("v3.9.0", "<p>3.9.0</p>"), item("Quay lamps dimmed", LAMPS))
    found = by_title(read(tmp_path, "releases.rss", feed))
    assert found["v3.9.0"].paragraphs == ("3.9.0",)
    assert set(found) == {"v3.9.0", "Quay lamps dimmed"}


# ------------------------------------------------------------- richer of content and summary


@pytest.mark.parametrize(
    ("content", "description", "expected"),
    [
        ("", LAMPS + BRIDGE, "The quay lamps were dimmed"),  # an empty content hides nothing
        (LAMPS + BRIDGE, "<p>Lamps dimmed.</p>", "The quay lamps were dimmed"),
        ("<p>Lamps dimmed.</p>", LAMPS + BRIDGE, "The quay lamps were dimmed"),
    ],
    ids=["empty-content", "content-richer", "description-richer"],
)
def test_the_richer_of_content_and_description(
    tmp_path: Path, content: str, description: str, expected: str
) -> None:
    encoded = f"<content:encoded>{escape(content)}</content:encoded>"
    feed = rss(item("Quay lamps dimmed", description, extra=encoded))
    (article,) = read(tmp_path, "gazette.rss", feed).articles
    assert article.paragraphs[0].startswith(expected)
    assert len(article.paragraphs) == 2


# ------------------------------------------------------------- untitled and title-only entries


def test_an_untitled_entry_is_titled_by_its_first_sentence(tmp_path: Path) -> None:
    short = "<p>Ferries run late tonight. The harbour master blamed the fog.</p>"
    long = (
        "<p>The harbour council voted on Tuesday evening to dim every lamp along the quay "
        "after midnight from April onwards, after fishermen asked for darker skies.</p>"
    )
    found = read(tmp_path, "micro.rss", rss(item(None, short), item(None, long))).articles
    titles = sorted(a.title for a in found)
    assert titles[0] == "Ferries run late tonight."
    ferries = next(a for a in found if a.title == titles[0])
    # The title is the post's first sentence: the summary still starts there.
    assert ferries.summary == "Ferries run late tonight. The harbour master blamed the fog."
    cut = titles[1]
    assert len(cut) <= readers.ENTRY_TITLE_CHARS and cut.endswith("…")
    words = cut[:-1].split()
    sentence = readers._html_lines(long)[0].split()
    assert words == sentence[: len(words)]  # whole words from the start, none cut in two


def test_a_title_only_entry_keeps_its_title_as_its_text(tmp_path: Path) -> None:
    feed = rss(item("Harbour closed for the regatta", None, link="https://example.org/r"))
    (article,) = read(tmp_path, "links.rss", feed).articles
    assert article.title == "Harbour closed for the regatta"
    assert article.paragraphs == ("Harbour closed for the regatta",)
    assert article.url == "https://example.org/r"


# ------------------------------------------------------------- JSON Feed


def json_feed(version: str, items: list[dict[str, object]]) -> str:
    return json.dumps(
        {
            "version": f"https://jsonfeed.org/version/{version}",
            "title": "Valley &amp; Notes",
            "home_page_url": "https://example.org/valley/",
            "items": items,
        }
    )


def test_json_feed_1_1_and_1_0(tmp_path: Path) -> None:
    (tmp_path / "v11.json").write_text(
        json_feed(
            "1.1",
            [
                {
                    "id": "1",
                    "url": "bikes",  # relative: resolved against home_page_url
                    "title": "Bike lanes open early",
                    "content_html": LAMPS.replace("quay lamps were dimmed", "bike lanes opened"),
                    "date_published": "2019-03-07T12:00:00-08:00",
                    "authors": [{"name": "Dana White"}],
                    "tags": ["Cycling"],
                },
                {"id": "2", "content_text": "Short note without a title.\n\nSecond paragraph."},
                {"id": "3"},  # nothing to read: skipped and counted
            ],
        ),
        encoding="utf-8",
    )
    (tmp_path / "v10.feed").write_text(
        json_feed(
            "1",
            [
                {
                    "id": "a",
                    "title": "Old style",
                    "summary": "Summary only text.",
                    "author": {"name": "Ann Lee"},
                    "external_url": "https://x.example/a",
                }
            ],
        ),
        encoding="utf-8",
    )
    batch = ingest.read_paths([tmp_path], options())
    found = by_title(batch)
    assert set(found) == {"Bike lanes open early", "Short note without a title.", "Old style"}
    bikes = found["Bike lanes open early"]
    assert bikes.url == "https://example.org/valley/bikes"
    assert (bikes.author, bikes.source, bikes.tags) == ("Dana White", "Valley & Notes", {"cycling"})
    assert bikes.published.isoformat() == "2019-03-07T12:00:00-08:00"
    assert found["Short note without a title."].paragraphs == (
        "Short note without a title.",
        "Second paragraph.",
    )
    assert (found["Old style"].author, found["Old style"].url) == ("Ann Lee", "https://x.example/a")
    assert [r.reason for r in batch.skipped] == ["1 of 3 entries skipped: no title or text"]


def test_a_broken_json_feed_is_one_line(tmp_path: Path) -> None:
    batch = read(
        tmp_path, "broken.feed", '{"version": "https://jsonfeed.org/version/1.1", "items": ['
    )
    ((reason,),) = [(r.reason,) for r in batch.rejected]
    assert reason.startswith("cannot parse the JSON feed: ") and "\n" not in reason


# ------------------------------------------------------------- kind from the bytes


def test_files_without_a_known_suffix_are_read_by_their_bytes(tmp_path: Path) -> None:
    src = tmp_path / "feeds"
    src.mkdir()
    (src / "main").write_text(rss(item("Quay lamps dimmed", LAMPS)), encoding="utf-8")  # wget
    (src / "index.php").write_text(
        "<!doctype html><html><head><title>Bridge</title></head><body><article><h1>Bridge "
        "opens in April</h1>" + BRIDGE * 3 + "</article></body></html>",
        encoding="utf-8",
    )
    (src / "feed.json").write_text(
        json_feed("1.1", [{"id": "1", "title": "Json one", "content_text": "A JSON entry."}])
    )
    (src / "package.json").write_text('{"name": "not a feed"}')  # passed over quietly
    (src / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    (src / "seeds.toml").write_text('[[article]]\nfile = "main"\nauthor = "Desk"\n')
    (src / ".hidden.rss").write_text(rss(item("Hidden", LAMPS)), encoding="utf-8")
    (src / ".git").mkdir()
    (src / ".git" / "HEAD.rss").write_text(rss(item("In git", LAMPS)), encoding="utf-8")
    files, rejected = ingest.discover([src])
    assert sorted(p.name for p in files) == ["feed.json", "index.php", "main"]
    assert not rejected
    config = write_config(tmp_path)
    result = run("ingest", str(src), config=config)
    assert result.exit_code == 0, result.output
    assert "3 articles from 3 of 3 files" in result.stdout
    found = by_title(ingest.read_paths([src], options()))
    assert found["Quay lamps dimmed"].author == "Desk"  # seeds.toml read as metadata only


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b'<?xml version="1.0"?>\n<!-- made by hand -->\n<rss version="2.0">', "feed"),
        (b"\xef\xbb\xbf<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom'>", "feed"),
        (b'<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf">', "feed"),
        (b'<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN"><rss>', "feed"),
        ('<?xml version="1.0" encoding="utf-16"?><rss>'.encode("utf-16"), "feed"),
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": []}', "feed"),
        (b"<!DOCTYPE html><html><body>", "html"),
        (b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml">', "html"),
        (b'{"name": "a package"}', None),
        (b"Plain words of a note.", None),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg">', None),
    ],
)
def test_sniff(head: bytes, kind: str | None) -> None:
    assert readers.sniff(head) == kind


# ------------------------------------------------------------- encodings


@pytest.mark.parametrize(
    ("name", "title", "script"),
    [
        ("koi8-r.rss", "Мост через реку откроют весной", "Новый мост через реку"),
        ("gb2312.rss", "新桥将于春天开放", "市政府表示"),
        ("shift_jis.atom", "図書館の開館時間が延長されます", "中央図書館は平日の夜十時まで"),
    ],
)
def test_a_feed_in_its_declared_encoding_reads_in_its_script(
    name: str, title: str, script: str
) -> None:
    batch = ingest.read_paths([DATA / name], options())
    assert not batch.rejected
    article = by_title(batch)[title]
    assert article.paragraphs[0].startswith(script)
    assert article.summary.startswith(script)
    for found in batch.articles:
        assert not MOJIBAKE.search(found.title + "".join(found.paragraphs) + (found.source or ""))


def test_a_utf8_feed_that_declares_a_legacy_encoding_is_read_as_utf8(tmp_path: Path) -> None:
    feed = rss(item("Café “Ёлка” opens", "<p>Ёлка, the new café, opens on the quay today.</p>"))
    data = feed.replace('encoding="UTF-8"', 'encoding="windows-1251"').encode("utf-8")
    (article,) = read(tmp_path, "stale.rss", data).articles
    assert article.title == "Café “Ёлка” opens"
    assert article.paragraphs == ("Ёлка, the new café, opens on the quay today.",)


@pytest.mark.parametrize(
    ("codec", "title", "text"),
    [
        ("cp1251", "Мост откроют весной", "Новый мост через реку откроют для пешеходов в апреле."),
        ("cp1252", "Café à côté du quai", "Le café à côté du quai rouvre ses portes en avril."),
    ],
)
def test_a_feed_that_declares_no_encoding_and_is_not_utf8(
    tmp_path: Path, codec: str, title: str, text: str
) -> None:
    feed = rss(item(title, f"<p>{text}</p>")).replace(' encoding="UTF-8"', "")
    (article,) = read(tmp_path, "undeclared.rss", feed.encode(codec)).articles
    assert (article.title, article.paragraphs) == (title, (text,))


# ------------------------------------------------------------- links


def test_links_are_resolved_against_xml_base_then_the_feed_link(tmp_path: Path) -> None:
    atom = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Releases</title>
<link rel="alternate" href="https://example.org/project/releases"/>
<entry><title>v2</title><link href="/project/releases/v2"/>
<content type="html">Two.</content></entry>
<entry xml:base="https://mirror.example.net/base/"><title>v1</title><link href="v1"/>
<content type="html">One.</content></entry></feed>"""
    found = by_title(read(tmp_path, "releases.atom", atom))
    assert found["v2"].url == "https://example.org/project/releases/v2"
    assert found["v1"].url == "https://mirror.example.net/base/v1"


def test_a_relative_link_with_no_base_is_not_stored(tmp_path: Path) -> None:
    feed = rss(item("Quay lamps dimmed", LAMPS, link="/2019/03/05/quay"), head="")
    (article,) = read(tmp_path, "gazette.rss", feed).articles
    assert article.url is None


def test_the_self_link_is_the_base_when_the_feed_has_no_page(tmp_path: Path) -> None:
    head = '<atom:link xmlns:atom="http://www.w3.org/2005/Atom" rel="self" href="https://example.org/feeds/main"/>'
    feed = rss(item("Quay lamps dimmed", LAMPS, link="/2019/03/05/quay"), head=head)
    (article,) = read(tmp_path, "gazette.rss", feed).articles
    assert article.url == "https://example.org/2019/03/05/quay"


# ------------------------------------------------------------- titles are text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Flat in Oakland &lt;sup&gt;2&lt;/sup&gt; &amp;#x0024;4300", "Flat in Oakland 2 $4300"),
        ("Tom &amp;amp; Jerry &amp;amp;amp; friends", "Tom & Jerry & friends"),
        ('<![CDATA[Price <span class="rupee">₹</span>500\n   only]]>', "Price ₹500 only"),
        ("AT&amp;T  and   a &lt; b", "AT&T and a < b"),
    ],
    ids=["markup", "double-escaped", "cdata-markup", "plain-ampersand"],
)
def test_titles_are_text(tmp_path: Path, raw: str, expected: str) -> None:
    feed = rss(item("PLACEHOLDER", LAMPS)).replace(
        "<title>PLACEHOLDER</title>", f"<title>{raw}</title>"
    )
    (article,) = read(tmp_path, "titles.rss", feed).articles
    assert article.title == expected


# ------------------------------------------------------------- paragraphs by structure


@pytest.mark.parametrize(
    ("markup", "paragraphs"),
    [
        (
            "<p>The council voted on Tuesday\nto dim the lamps along\nthe quay after midnight.</p>",
            ["The council voted on Tuesday to dim the lamps along the quay after midnight."],
        ),
        ("Line one<br>goes on<br/><br />New paragraph", ["Line one goes on", "New paragraph"]),
        ("a<br>\n  <br>b", ["a", "b"]),
        (
            "<div><h2>Head</h2><ul><li>one</li><li>two</li></ul></div>tail",
            ["Head", "one", "two", "tail"],
        ),
        ("<blockquote>Quoted words.</blockquote>After.", ["Quoted words.", "After."]),
        (
            "<table><tr><td>Ferry</td><td>£2</td></tr><tr><td>Bus</td><td>£1</td></tr></table>",
            ["Ferry £2", "Bus £1"],
        ),
        ("<p>Kept</p><script>var x = 1;</script><style>p {}</style>", ["Kept"]),
        (
            "<pre>code line one\ncode line two\n\nafter a blank</pre>",
            ["code line one code line two", "after a blank"],
        ),
        (
            "Plain text, hard\nwrapped at forty.\n\nSecond paragraph\nhere.",
            ["Plain text, hard wrapped at forty.", "Second paragraph here."],
        ),
        ("Words &amp; more", ["Words & more"]),
        (
            'One <a href="/a">link</a>\nwrapped.\n\nTwo <b>bold</b>.',
            ["One link wrapped.", "Two bold."],
        ),
        ("<p>One <b>bold</b> word</p><!-- a comment -->after", ["One bold word", "after"]),
    ],
    ids=[
        "hard-wrapped",
        "br-br",
        "br-space-br",
        "blocks",
        "blockquote",
        "table",
        "script",
        "pre",
        "plain-text",
        "entity",
        "inline-only",
        "inline",
    ],
)
def test_html_to_paragraphs_by_structure(markup: str, paragraphs: list[str]) -> None:
    assert readers._html_lines(markup) == paragraphs


def test_a_hard_wrapped_entry_gives_a_whole_summary(tmp_path: Path) -> None:
    wrapped = (
        "<p>The harbour council voted on Tuesday to dim\nthe lamps along the quay after\n"
        "midnight, and the fishermen who asked\nfor it said they could see the stars.</p>\n"
        "<p>The change starts in April and\nwill be reviewed after a year.</p>"
    )
    (article,) = read(tmp_path, "wrapped.rss", rss(item("Quay lamps dimmed", wrapped))).articles
    assert len(article.paragraphs) == 2
    assert article.summary == (
        "The harbour council voted on Tuesday to dim the lamps along the quay after midnight, "
        "and the fishermen who asked for it said they could see the stars. "
        "The change starts in April and will be reviewed after a year."
    )


# ------------------------------------------------------------- lines repeated across entries


def test_a_line_every_entry_carries_is_the_feeds_furniture(tmp_path: Path) -> None:
    sign_off = "<p>Full transcript and show notes at our website every week.</p>"
    stories = [
        "<p>This week the harbour master talks about the fog and the ferries.</p>",
        "<p>Our guest built a boat in her garden and sailed it to the islands.</p>",
        "<p>A look at the history of the lighthouse and the keepers who lived there.</p>",
        "<p>Listeners ask about the new footbridge and when it will open.</p>",
    ]
    entries = [item(f"Episode {n}", story + sign_off) for n, story in enumerate(stories, 1)]
    entries.append(item("Bonus", sign_off))  # nothing but the sign-off: never emptied
    entries.append(item("Other", "<p>A line only two entries share stays in both.</p>"))
    entries.append(
        item("Another", "<p>A line only two entries share stays in both.</p><p>Yes.</p>")
    )
    found = by_title(read(tmp_path, "podcast.rss", rss(*entries)))
    for n in range(1, 5):
        assert found[f"Episode {n}"].paragraphs == (readers._html_lines(stories[n - 1])[0],)
        assert "transcript" not in found[f"Episode {n}"].summary
    assert found["Bonus"].paragraphs == (
        "Full transcript and show notes at our website every week.",
    )
    assert found["Other"].paragraphs == ("A line only two entries share stays in both.",)


def test_copies_of_one_story_in_a_feed_keep_their_shared_paragraphs(tmp_path: Path) -> None:
    """An entry listed three times (under three sections, or as updates) shares its text with
    its copies: that is one story repeated, not the feed's furniture."""
    story = (
        "<p>The harbour council voted on Tuesday to dim the lamps along the quay.</p>"
        "<p>The fishermen who asked for it said they could see the stars again at night.</p>"
    )
    others = [
        "<p>Our guest built a boat in her garden and sailed it all the way to the islands.</p>",
        "<p>A look at the history of the lighthouse and the keepers who lived there alone.</p>",
        "<p>Listeners ask about the new footbridge over the river and when it will open.</p>",
    ]
    entries = [
        item(f"Lamps dimmed ({section})", story + f"<p>Filed under {section}.</p>")
        for section in ("news", "harbour", "council")
    ]
    entries += [item(f"Other {n}", text) for n, text in enumerate(others, 1)]
    found = by_title(read(tmp_path, "sections.rss", rss(*entries)))
    for section in ("news", "harbour", "council"):
        paragraphs = found[f"Lamps dimmed ({section})"].paragraphs
        assert paragraphs[:2] == tuple(readers._html_lines(story))
