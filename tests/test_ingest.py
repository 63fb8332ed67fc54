"""Ingest: encodings, formats, operator metadata, fallbacks, bad input and idempotency."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from digest import clean, dates, ingest, readers
from digest.models import Article

from .conftest import DATA, SEEDS, run, write_config
from .factories import UNPRINTABLE

STORY = (
    "Council votes to dim the harbour lights\n\n"
    "By Jane Roe\n\n"
    "Published March 3, 2019 at 10:15 a.m. EST\n\n"
    "The harbour council voted on Tuesday to dim the lamps along the quay after midnight.\n\n"
    "“It costs us nothing and the fishermen can see the stars again,” said the café owner.\n\n"
    "The change starts in April and will be reviewed after one year of use.\n"
)


def options(**extra: object) -> ingest.Options:
    return ingest.Options(default_tz=dates.zone("UTC"), **extra)  # type: ignore[arg-type]


def articles_json(config: Path) -> list[dict[str, object]]:
    result = run("articles", "--json", config=config)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252", "latin-1", "utf-16"], ids=str)
def test_text_in_any_common_encoding_reads_without_mojibake(tmp_path: Path, encoding: str) -> None:
    text = STORY if encoding != "latin-1" else STORY.replace("“", '"').replace("”", '"')
    (tmp_path / "story.txt").write_bytes(text.encode(encoding))
    batch = ingest.read_paths([tmp_path], options())
    assert not batch.rejected
    (article,) = batch.articles
    assert article.title == "Council votes to dim the harbour lights"
    assert "said the café owner." in article.body
    assert "Ã" not in article.body and "â€" not in article.body


def test_html_page_through_the_extractor(tmp_path: Path) -> None:
    page = """<!doctype html><html><head><title>Ferry fares rise | Coast Ledger</title>
    <meta name="author" content="Ana Ruiz">
    <meta property="article:published_time" content="2019-04-02T08:00:00-04:00">
    </head><body><nav><a href="/">Home</a> <a href="/world">World</a></nav>
    <article><h1>Ferry fares rise by 25 cents in April</h1>
    <p>PORTLAND, Maine — Ferry fares to the islands will rise by 25 cents in April, the
    transit district said on Monday, the first increase in six years.</p>
    <p>The district said fuel costs had doubled since the last increase in 2013.</p>
    <p>Share this article</p></article>
    <footer>© 2019 Coast Ledger. All rights reserved.</footer></body></html>"""
    (tmp_path / "ferry.html").write_text(page, encoding="utf-8")
    (article,) = ingest.read_paths([tmp_path], options()).articles
    assert article.title == "Ferry fares rise by 25 cents in April"
    assert article.author == "Ana Ruiz"
    assert article.date_source == "html"
    assert article.published.date().isoformat() == "2019-04-02"
    assert article.dateline == "PORTLAND, Maine"
    assert article.paragraphs[0].startswith("Ferry fares to the islands")
    assert not any("Share" in p or "©" in p for p in article.paragraphs)


RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Harbour Gazette</title><link>https://example.org/</link>
<description>News</description>
<item><title>Quay lamps dimmed</title><link>https://example.org/quay</link>
<pubDate>Tue, 05 Mar 2019 09:30:00 +0100</pubDate><category>Light Pollution</category>
<description>&lt;p&gt;The quay lamps were dimmed last night for the first time.&lt;/p&gt;
&lt;p&gt;Residents said the harbour looked different.&lt;/p&gt;</description></item>
<item><title>Second item</title><link>https://example.org/two</link>
<pubDate>Wed, 06 Mar 2019 10:00:00 GMT</pubDate>
<description>Only a plain sentence of text in this one.</description></item>
</channel></rss>"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Valley Notes</title>
<id>tag:example.org,2019:feed</id>
<updated>2019-03-07T12:00:00Z</updated>
<entry><title>Bike lanes open early</title><id>tag:example.org,2019:1</id>
<link href="https://example.org/bikes"/><updated>2019-03-07T12:00:00-08:00</updated>
<author><name>Dana White</name></author>
<content type="html">&lt;p&gt;The Elm Street bike lane opened two months early on Thursday.
&lt;/p&gt;</content>
</entry></feed>"""


def test_rss_and_atom_entries(tmp_path: Path) -> None:
    (tmp_path / "gazette.rss").write_text(RSS, encoding="utf-8")
    (tmp_path / "valley.atom").write_text(ATOM, encoding="utf-8")
    batch = ingest.read_paths([tmp_path], options())
    by_title = {a.title: a for a in batch.articles}
    assert set(by_title) == {"Quay lamps dimmed", "Second item", "Bike lanes open early"}
    quay = by_title["Quay lamps dimmed"]
    assert quay.url == "https://example.org/quay"
    assert quay.source == "Harbour Gazette"
    assert quay.tags == {"light-pollution"}
    assert quay.published.isoformat() == "2019-03-05T09:30:00+01:00"
    assert quay.paragraphs == (
        "The quay lamps were dimmed last night for the first time.",
        "Residents said the harbour looked different.",
    )
    bikes = by_title["Bike lanes open early"]
    assert (bikes.author, bikes.date_source) == ("Dana White", "feed")
    assert bikes.published.isoformat() == "2019-03-07T12:00:00-08:00"


def test_date_fallbacks_are_reported_seeds_toml_then_mtime(tmp_path: Path) -> None:
    undated = STORY.replace("Published March 3, 2019 at 10:15 a.m. EST\n\n", "")
    (tmp_path / "a.txt").write_text(undated, encoding="utf-8")
    (tmp_path / "b.txt").write_text(undated.replace("harbour", "river"), encoding="utf-8")
    (tmp_path / "seeds.toml").write_text(
        '[[article]]\nfile = "a.txt"\npublished = 2018-05-06\nsource = "Gazette"\n'
        'tags = ["Harbour Life"]\n',
        encoding="utf-8",
    )
    stamp = datetime(2020, 1, 2, 3, 4).timestamp()
    os.utime(tmp_path / "b.txt", (stamp, stamp))
    by_file = {a.origin: a for a in ingest.read_paths([tmp_path], options()).articles}
    a, b = by_file[str(tmp_path / "a.txt")], by_file[str(tmp_path / "b.txt")]
    assert (a.date_source, a.published.isoformat()) == ("seeds.toml", "2018-05-06T00:00:00+00:00")
    assert a.source == "Gazette" and "harbour-life" in a.tags
    assert (b.date_source, b.published.isoformat()) == ("mtime", "2020-01-02T03:04:00+00:00")


def test_text_date_beats_operator_metadata(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text(STORY, encoding="utf-8")
    (tmp_path / "seeds.toml").write_text(
        '[[article]]\nfile = "a.txt"\npublished = 2001-01-01\n', encoding="utf-8"
    )
    (article,) = ingest.read_paths([tmp_path], options()).articles
    assert article.date_source == "text"
    assert article.published.isoformat() == "2019-03-03T10:15:00-05:00"


def test_keyword_tag_rules(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text(STORY, encoding="utf-8")
    rules = {"light-pollution": ["see the stars", "dark sky"], "budget": ["budget"]}
    (article,) = ingest.read_paths([tmp_path], options(tag_rules=rules)).articles
    assert article.tags == {"light-pollution"}


@pytest.mark.parametrize(
    ("text", "tags"),
    [
        ("The DARK  SKY and the Dark Sky Park", {"light-pollution"}),
        ("a darksky, a budgetary line", set()),  # whole words only
        ("the budget's end", {"budget"}),
        ("the \u212ailn (a Kelvin sign's K), \u017fee the stars (a long s)", {"kiln"}),
        ("D\u0130NNER, d\u0131nner: Turkish i's", set()),
        ("nothing here", set()),
    ],
)
@pytest.mark.parametrize("more", [{}, {"zurich": ["straße"]}])  # a rule not in ASCII too
def test_tag_rules_find_each_phrase_in_any_case(
    text: str, tags: set[str], more: dict[str, list[str]]
) -> None:
    rules = {
        "light-pollution": ["see the stars", "dark sky"],
        "budget": ["budget"],
        "kiln": ["kiln"],
        "dinner": ["dinner"],
    }
    assert ingest._tagger(rules | more)(text) == tags
    assert ingest._tagger(rules | more)(text + " in Stra\u00dfe") == tags | set(more)


def test_seeds_ingest_to_six_articles_and_reingest_is_idempotent(tmp_path: Path) -> None:
    config = write_config(tmp_path, seeds_dir=f'"{SEEDS}"')
    first = run("ingest", config=config)
    assert first.exit_code == 0, first.output
    assert "6 articles from 5 of 5 files: 6 new, 0 updated, 0 unchanged" in first.output
    before = articles_json(config)
    again = run("ingest", config=config)
    assert "6 new" not in again.output and "6 unchanged" in again.output
    assert articles_json(config) == before
    seed4 = next(a for a in before if a["author"] == "Sheetal Sukhija")
    assert seed4["published"] == "2018-06-11T08:51:00+10:00"
    assert seed4["date_source"] == "text"


def test_syndicated_copy_is_stored_once_with_the_richer_metadata(tmp_path: Path) -> None:
    rich = tmp_path / "rich"
    poor = tmp_path / "poor"
    rich.mkdir()
    poor.mkdir()
    (rich / "story.txt").write_text("Coast Ledger\n\n" + STORY, encoding="utf-8")
    plain = STORY.replace("By Jane Roe\n\n", "").replace(
        "Published March 3, 2019 at 10:15 a.m. EST\n\n", ""
    )
    (poor / "copy.txt").write_text(
        "Wire Daily\nHome\nNews\n\n" + plain + "\nWire Daily 2019\n", encoding="utf-8"
    )
    config = write_config(tmp_path)
    assert run("ingest", str(poor), config=config).exit_code == 0
    result = run("ingest", str(rich), config=config)
    assert "1 updated" in result.output
    (article,) = articles_json(config)
    assert article["author"] == "Jane Roe"
    assert article["date_source"] == "text"
    # And the other way round: a poorer copy later changes nothing.
    result = run("ingest", str(poor), config=config)
    assert "1 unchanged" in result.output
    assert articles_json(config) == [article]


BAD_FILES = {
    "empty.txt": (b"", "empty file"),
    "blank.txt": (b"  \n\n \t\n", "empty file"),
    "image.txt": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200), "binary file"),
    "noise.txt": (bytes(range(128, 256)) * 64, "cannot decode"),
    "chrome.txt": (b"Home\nAbout\nContact\n", "no article found"),
    "broken.rss": (b"<?xml version='1.0'?><rss><channel><title>x</title>", "not an RSS or Atom"),
}


def test_bad_files_are_named_with_a_reason_and_the_rest_is_ingested(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "good.txt").write_text(STORY, encoding="utf-8")
    for name, (data, _) in BAD_FILES.items():
        (src / name).write_bytes(data)
    (src / "huge.txt").write_bytes(b"word " * 1_000_001)
    config = write_config(tmp_path)
    result = run("ingest", str(src), str(tmp_path / "missing.txt"), config=config)
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line]
    assert len(errors) == len(BAD_FILES) + 2
    assert all(line.startswith("Error: ") and line.endswith("; skipped") for line in errors)
    for name, (_, reason) in BAD_FILES.items():
        assert any(f"{name}: {reason}" in line for line in errors), (name, errors)
    assert any("huge.txt: file too large (5,000,005 bytes, limit 5,000,000)" in e for e in errors)
    assert any("missing.txt: no such file or directory" in e for e in errors)
    assert "Traceback" not in result.output
    (article,) = articles_json(config)
    assert article["title"] == "Council votes to dim the harbour lights"


def test_unreadable_file_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "secret.txt").write_text(STORY, encoding="utf-8")
    (tmp_path / "good.txt").write_text(STORY.replace("harbour", "river"), encoding="utf-8")
    real = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self.name == "secret.txt":
            raise PermissionError(13, "Permission denied")
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    batch = ingest.read_paths([tmp_path], options())
    assert [(Path(r.path).name, r.reason) for r in batch.rejected] == [
        ("secret.txt", "cannot read file: permission denied")
    ]
    assert len(batch.articles) == 1


def test_a_store_failure_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text(STORY, encoding="utf-8")
    config = write_config(tmp_path, database_url="sqlite:////proc/no/such/dir/x.db")
    result = run("ingest", str(tmp_path / "a.txt"), config=config)
    assert result.exit_code == 1
    assert result.output.startswith("Error: ")
    assert "database" in result.output and "Traceback" not in result.output


# ------------------------------------------------------------- one bad input, never the batch


def assert_printable(article: Article) -> None:
    """What reaches the store holds no control character, NUL or lone surrogate."""
    fields = (article.title, article.subtitle, article.author, article.source, article.url)
    for text in (*fields, article.dateline, article.summary, *article.paragraphs, *article.tags):
        assert not UNPRINTABLE.search(text or ""), (text, article.origin)


def feed_with(description: str, title: str = "Quay lamps dimmed") -> str:
    return RSS.replace("Quay lamps dimmed", title).replace(
        "The quay lamps were dimmed last night", description, 1
    )


@pytest.mark.parametrize(
    "description",
    [
        "The quay\x1b lamps were dimmed last night",  # raw, inside the escaped HTML
        "The quay&amp;#27; lamps were dimmed last night",  # a character reference to it
        "The quay\x00 lamps\x7f were\ud800 dimmed last night",
    ],
    ids=["raw", "reference", "nul-ff-surrogate"],
)
def test_control_characters_in_feed_html_are_dropped(tmp_path: Path, description: str) -> None:
    (tmp_path / "gazette.rss").write_bytes(
        feed_with(description, "Quay\x1b lamps dimmed").encode("utf-8", "surrogatepass")
    )
    batch = ingest.read_paths([tmp_path], options())
    assert not batch.rejected
    quay = next(a for a in batch.articles if a.title == "Quay lamps dimmed")
    assert quay.paragraphs[0].startswith("The quay lamps were")
    for article in batch.articles:
        assert_printable(article)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tab\tand\r\nlines\n", "tab\tand\r\nlines\n"),
        (
            "no\x00 nul, no\x1b escape, no\x7f delete, no\x9b csi",
            "no nul, no escape, no delete, no csi",
        ),
        ("lone \ud800surrogate, \ufffenoncharacter", "lone surrogate, noncharacter"),
        ("page\x0cbreak, vertical\x0btab, next\x85line", "page\nbreak, vertical\ntab, next\nline"),
        ("café “quoted” — 😀", "café “quoted” — 😀"),
    ],
)
def test_printable_text(text: str, expected: str) -> None:
    assert readers.printable(text) == expected


def test_control_characters_in_an_html_page_are_dropped(tmp_path: Path) -> None:
    page = (
        "<!doctype html><html><head><title>Ferry\x1b fares</title></head><body><article>"
        "<h1>Ferry fares rise&#27; by 25 cents</h1><p>Ferry fares to the islands will rise"
        "\x1b by 25 cents in April, the transit district said on Monday, the first rise.</p>"
        "<p>The district said fuel costs had doubled&#x1b; since the last increase in 2013."
        "</p></article></body></html>"
    )
    (tmp_path / "ferry.html").write_text(page, encoding="utf-8")
    batch = ingest.read_paths([tmp_path], options())
    assert not batch.rejected
    (article,) = batch.articles
    assert article.title == "Ferry fares rise by 25 cents"
    assert (
        article.paragraphs[1]
        == "The district said fuel costs had doubled since the last increase in 2013."
    )
    assert_printable(article)


def test_nul_after_the_first_8_kib_of_a_text_file_is_dropped(tmp_path: Path) -> None:
    long_story = (
        STORY
        + ("The lamps along the quay stay on until midnight. " * 200 + "\n\n")
        + ("The council\x00 will\x1b meet again in May.\n")
    )
    assert len(long_story.encode()) > 9000
    (tmp_path / "story.txt").write_text(long_story, encoding="utf-8")
    batch = ingest.read_paths([tmp_path], options())
    assert not batch.rejected
    (article,) = batch.articles
    assert article.paragraphs[-1] == "The council will meet again in May."
    assert_printable(article)


# Files that each stopped a whole batch with a traceback before ingest validated dates and
# dropped control characters; now each is read like any other.
CRASHERS = {
    "iso-hour-24.txt": STORY.replace("March 3, 2019 at 10:15 a.m. EST", "2019-03-04T24:61"),
    "gmt-offset.txt": STORY.replace("10:15 a.m. EST", "10:15 a.m. GMT+99"),
    "numeric-offset.txt": STORY.replace("10:15 a.m. EST", "10:15 a.m. +9999"),
    "zone-abbreviation.txt": STORY.replace("10:15 a.m. EST", "10:15 a.m. AESD"),
    "byline-date.txt": STORY.replace("By Jane Roe", "By Jane Roe | 2019-03-04T10:00+99:99"),
    "escape.rss": feed_with("The quay\x1b lamps were dimmed last night"),
    "bad-date.rss": RSS.replace("09:30:00 +0100", "09:30:00 +9999"),
    "nul.txt": STORY + "The lamps stay on until midnight, the council said. " * 200 + "\x00\n",
}


@pytest.mark.parametrize("name", CRASHERS)
def test_a_batch_with_a_file_that_crashed_reads_every_file(tmp_path: Path, name: str) -> None:
    (tmp_path / "good.txt").write_text(STORY.replace("harbour", "river"), encoding="utf-8")
    (tmp_path / name).write_text(CRASHERS[name], encoding="utf-8")
    batch = ingest.read_paths([tmp_path], options())
    assert not batch.rejected
    origins = {Path(a.origin.partition("#")[0]).name for a in batch.articles}
    assert origins == {"good.txt", name}
    for article in batch.articles:
        assert_printable(article)


@pytest.mark.parametrize(
    ("name", "source", "published"),
    [
        ("iso-hour-24.txt", "mtime", None),  # 24:61 is no time: no date on the page
        ("gmt-offset.txt", "text", "2019-03-03T10:15:00+00:00"),  # GMT+99: the default zone
    ],
)
def test_a_half_matched_date_in_a_text_file(
    tmp_path: Path, name: str, source: str, published: str | None
) -> None:
    (tmp_path / "a.txt").write_text(CRASHERS[name], encoding="utf-8")
    (article,) = ingest.read_paths([tmp_path], options()).articles
    assert article.date_source == source
    if published is not None:
        assert article.published.isoformat() == published


def test_a_feed_date_with_an_impossible_offset_keeps_the_default_zone(tmp_path: Path) -> None:
    (tmp_path / "gazette.rss").write_text(CRASHERS["bad-date.rss"], encoding="utf-8")
    by_title = {a.title: a for a in ingest.read_paths([tmp_path], options()).articles}
    # "+9999" names no clock: the stamp is read as a time of the default zone
    quay = by_title["Quay lamps dimmed"]
    assert (quay.date_source, quay.published.isoformat()) == ("feed", "2019-03-05T09:30:00+00:00")
    assert by_title["Second item"].published.isoformat() == "2019-03-06T10:00:00+00:00"


def one_line(reason: str) -> bool:
    return "\n" not in reason and "Traceback" not in reason and len(reason) < 300


@pytest.mark.parametrize("stage", ["readers.read_html", "clean._clean_page", "readers.decode"])
def test_an_unexpected_failure_rejects_that_file_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stage: str
) -> None:
    (tmp_path / "good.txt").write_text(STORY, encoding="utf-8")
    (tmp_path / "good.rss").write_text(RSS, encoding="utf-8")
    bad = "bad.html" if stage == "readers.read_html" else "bad.txt"
    (tmp_path / bad).write_text(STORY.replace("harbour", "bad harbour"), encoding="utf-8")
    module, name = stage.split(".")
    real = getattr(getattr(ingest, module), name)

    def failing(data: Any, *args: Any, **kwargs: Any) -> Any:
        if "bad harbour" in str(data if isinstance(data, bytes) else [u.text for u in data]):
            raise RuntimeError("something broke\nin two lines")
        return real(data, *args, **kwargs)

    monkeypatch.setattr(getattr(ingest, module), name, failing)
    batch = ingest.read_paths([tmp_path], options())
    ((path, reason),) = [(Path(r.path).name, r.reason) for r in batch.rejected]
    assert path == bad
    assert one_line(reason)
    assert "RuntimeError" in reason and "something broke in two lines" in reason
    titles = {a.title for a in batch.articles}
    assert titles == {"Council votes to dim the harbour lights", "Quay lamps dimmed", "Second item"}


def test_an_entry_that_fails_rejects_that_entry_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "gazette.rss").write_text(RSS, encoding="utf-8")
    real = clean.polish

    def polish(title: str, lines: Any) -> Any:
        if title == "Quay lamps dimmed":
            raise KeyError("quay")
        return real(title, lines)

    monkeypatch.setattr(clean, "polish", polish)
    batch = ingest.read_paths([tmp_path], options())
    assert [a.title for a in batch.articles] == ["Second item"]
    ((path, reason),) = [(Path(r.path).name, r.reason) for r in batch.rejected]
    assert path == "gazette.rss"
    assert reason.startswith("entry 1: ") and "KeyError" in reason and one_line(reason)


def test_an_entry_without_prose_does_not_cost_the_feed_and_is_kept(tmp_path: Path) -> None:
    """What the page cleaner calls furniture is, in a feed, the publisher's own entry: a
    feed reader shows it, so it is stored as it is (every entry with a title or text is)."""
    furniture = RSS.replace(
        "Only a plain sentence of text in this one.", "Share on Facebook"
    ).replace("Second item", "Share")
    (tmp_path / "gazette.rss").write_text(furniture, encoding="utf-8")
    batch = ingest.read_paths([tmp_path], options())
    assert not batch.rejected and not batch.skipped
    by_title = {a.title: a for a in batch.articles}
    assert set(by_title) == {"Quay lamps dimmed", "Share"}
    assert by_title["Share"].paragraphs == ("Share on Facebook",)


def test_a_feed_stamp_out_of_range_is_not_a_date(tmp_path: Path) -> None:
    (tmp_path / "gazette.rss").write_text(
        RSS.replace("Tue, 05 Mar 2019 09:30:00 +0100", "Tue, 05 Mar 0001 09:30:00 GMT"),
        encoding="utf-8",
    )
    by_title = {a.title: a for a in ingest.read_paths([tmp_path], options()).articles}
    assert by_title["Quay lamps dimmed"].date_source == "mtime"


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("tags = 3", 'tags of "a.txt" must be a list'),
        ("author = 3", 'author of "a.txt" must be a string'),
        ("published = 9999-12-31T23:00:00-05:00", 'published of "a.txt" must be a date'),
        ('published = "2019-03-04"', 'published of "a.txt" must be a date'),
        ('lang = "German"', 'lang of "a.txt" must be a language tag'),
    ],
)
def test_wrong_operator_metadata_is_named(tmp_path: Path, entry: str, reason: str) -> None:
    (tmp_path / "a.txt").write_text(STORY, encoding="utf-8")
    (tmp_path / "seeds.toml").write_text(f'[[article]]\nfile = "a.txt"\n{entry}\n', "utf-8")
    batch = ingest.read_paths([tmp_path], options())
    ((path, message),) = [(Path(r.path).name, r.reason) for r in batch.rejected]
    assert path == "a.txt" and reason in message and one_line(message)


def test_a_file_time_out_of_range_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.txt").write_text(STORY, encoding="utf-8")
    (tmp_path / "b.txt").write_text(STORY.replace("harbour", "river"), encoding="utf-8")
    real = Path.stat

    def stat(self: Path, **kwargs: Any) -> os.stat_result:
        found = real(self, **kwargs)
        if self.name != "a.txt":
            return found
        return os.stat_result((*found[:8], 1e300, 1e300))

    monkeypatch.setattr(Path, "stat", stat)
    batch = ingest.read_paths([tmp_path], options())
    ((path, reason),) = [(Path(r.path).name, r.reason) for r in batch.rejected]
    assert path == "a.txt" and "modification time" in reason
    assert len(batch.articles) == 1


def test_an_article_keeps_at_most_40_tags_of_at_most_80_characters(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text(
        "Library opens\n\nThe mayor opened a new library on Tuesday in the old town.\n\n"
        "Many people came to see the building and its books.\n",
        encoding="utf-8",
    )
    many = ", ".join(f'"t{n:05d}"' for n in range(5000))
    (tmp_path / "seeds.toml").write_text(
        f'[[article]]\nfile = "a.txt"\ntags = ["{"k" * 81}", "mayor", {many}]\n',
        encoding="utf-8",
    )
    rules = {"library": ["library"]}
    batch = ingest.read_paths(
        [tmp_path], ingest.Options(default_tz=dates.zone("UTC"), tag_rules=rules)
    )
    (article,) = batch.articles
    assert len(article.tags) == 40
    assert "k" * 81 not in article.tags
    assert {"library", "mayor", "t00000"} <= article.tags  # the rules' first


# ---------------------------------------------------------------- language


def test_the_operators_lang_wins_then_the_text_is_detected(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text(STORY, encoding="utf-8")
    (tmp_path / "b.txt").write_text(STORY.replace("harbour", "river"), encoding="utf-8")
    (tmp_path / "seeds.toml").write_text('[[article]]\nfile = "a.txt"\nlang = "en_GB"\n', "utf-8")
    by_file = {Path(a.origin).name: a for a in ingest.read_paths([tmp_path], options()).articles}
    assert (by_file["a.txt"].lang, by_file["b.txt"].lang) == ("en-GB", "en")


def test_japanese_and_chinese_pages_are_stored_with_their_language(tmp_path: Path) -> None:
    for name in ("ja-page.txt", "zh-page.txt"):
        (tmp_path / name).write_bytes((DATA / "lang" / name).read_bytes())
    by_file = {Path(a.origin).name: a for a in ingest.read_paths([tmp_path], options()).articles}
    assert {name: a.lang for name, a in by_file.items()} == {
        "ja-page.txt": "ja",
        "zh-page.txt": "zh",
    }
    ja = by_file["ja-page.txt"]
    assert ja.summary == ja.paragraphs[0]  # its two whole sentences, no space between them
    assert len(ja.summary) <= options().summary_chars


# Short Western European texts in windows-1252 that charset-normalizer alone ranks under a
# rarer code page (mac_latin2, cp1257, cp1250, UTF-16) or rejects outright.
WESTERN_1252 = [
    "déjà déjà",
    "brûlée",
    "— niño vu vu le résumé naïve brûlée déjà façade crème größer",
    "“bien le le le comió über le 5 dit-il año la — déjà le Straß",
    "œuvre über comió très et comió déjà € délicieuse très déjà “",
]


@pytest.mark.parametrize("text", WESTERN_1252)
def test_windows_1252_wins_over_rarer_code_pages_that_fit_too(text: str) -> None:
    assert readers.decode(text.encode("cp1252")) == text


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Gdańsk, Łódź i Kraków", "cp1250"),  # "£ódŸ" in windows-1252: symbols inside words
        ("Zażółć gęślą jaźń, pchnąć w tę łódź jeża lub ośm skrzyń fig.", "cp1250"),
        ("Съешь же ещё этих мягких французских булок, да выпей чаю.", "koi8_r"),
        ("Ξεσκεπάζω την ψυχοφθόρα βδελυγμία", "cp1253"),
    ],
)
def test_other_code_pages_are_not_taken_for_windows_1252(text: str, encoding: str) -> None:
    assert readers.decode(text.encode(encoding)) == text


def test_bidi_controls_leave_titles_authors_and_decks(tmp_path: Path) -> None:
    """A right-to-left override in a title makes a mail client show "gnp.exe" as "exe.png"."""
    rlo, pdf, isolate = "\u202e", "\u202c", "\u2066"
    page = (
        f"Council votes{rlo} to dim the harbour lights{pdf}\n\n"
        f"By Jane Roe{isolate}\n\n" + STORY.split("\n\n", 2)[2]
    )
    (tmp_path / "story.txt").write_text(page, encoding="utf-8")
    (article,) = ingest.read_paths([tmp_path], options()).articles
    assert article.title == "Council votes to dim the harbour lights"
    assert article.author == "Jane Roe"


# ---------------------------------------------------------------- streaming


def _units_alive() -> int:
    import gc

    from digest import segment

    return sum(isinstance(found, segment.Unit) for found in gc.get_objects())


def test_the_cleaner_holds_no_more_than_one_prepared_page_while_it_gathers() -> None:
    """A collection's pages are gathered one at a time: when the cleaner asks for the next
    text, the pages it prepared before are set aside, not held (the first pass keeps their
    keys), so a batch of any size costs about one page of memory."""
    stories = [STORY.replace("dim", f"dim {n}") for n in range(40)]
    page_units = len(clean.segment.prepare(stories[0]))
    alive: list[int] = []

    def texts() -> Any:
        for story in stories:
            alive.append(_units_alive())
            yield story

    before = _units_alive()
    drafts = list(clean.clean_collection(texts(), default_tz=dates.zone("UTC")))
    assert len(drafts) == len(stories)
    assert max(alive) - before <= page_units


def test_a_batch_is_stored_a_chunk_at_a_time_as_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``pipeline.ingest_sources`` stores the articles in chunks of SAVE_CHUNK while it goes
    on cleaning pages, and reports just what one save of the whole batch would."""
    from digest import db, pipeline, settings, store

    def ingested(chunk: int, name: str) -> tuple[pipeline.Ingested, list[tuple[str, int]]]:
        events: list[tuple[str, int]] = []
        real_clean, real_save = clean._clean_page, store.save

        def cleaning(*args: Any, **options: Any) -> Any:
            events.append(("clean", 1))
            return real_clean(*args, **options)

        def saving(engine: Any, batch: Any, **options: Any) -> store.SaveReport:
            batch = list(batch)
            events.append(("save", len(batch)))
            return real_save(engine, batch, **options)

        monkeypatch.setattr(pipeline, "SAVE_CHUNK", chunk)
        monkeypatch.setattr(clean, "_clean_page", cleaning)
        monkeypatch.setattr(store, "save", saving)
        config = write_config(tmp_path, f"sqlite:///{tmp_path / name}", seeds_dir=f'"{SEEDS}"')
        chosen = settings.load_settings(config)
        with db.opened(chosen.database_url) as engine:
            done = pipeline.ingest_sources(engine, chosen, now=datetime(2026, 1, 1))
        monkeypatch.undo()
        return done, events

    whole, _ = ingested(1_000, "whole.db")
    done, events = ingested(2, "chunks.db")
    saves = [n for kind, n in events if kind == "save"]
    assert saves == [2, 2, 2]
    first_save = events.index(("save", 2))
    assert ("clean", 1) in events[first_save:]  # stored while pages were still to be cleaned
    assert (done.saved, done.count, done.rejected) == (whole.saved, whole.count, whole.rejected)
    assert [a.id for a in done.articles] == [a.id for a in whole.articles]
