"""Article pages and the archive, read back as a browser would read them."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import lxml.html
import pytest

from digest.errors import DigestError
from digest.links import article_link, issue_link
from digest.models import Article, Site
from digest.pages import write_archive, write_article_pages

from . import factories
from .factories import make_article

BASE = "https://news.example.org/digest"
TZ = ZoneInfo("America/New_York")
SITE = Site("The Daily Digest", BASE, "daily", TZ)
HOSTILE = "Fare <script>alert(1)</script> {{ 7*7 }}\r\nrise"


make_issue = partial(factories.make_issue, tz=TZ)


def write_pages(outbox: Path, *articles: Article) -> int:
    return write_article_pages(outbox, articles, SITE)


def read(path: Path) -> Any:
    return lxml.html.fromstring(path.read_bytes())


def text_of(tree: Any, xpath: str) -> list[str]:
    return [" ".join(node.text_content().split()) for node in tree.xpath(xpath)]


def test_article_page_shows_the_cleaned_article(tmp_path: Path) -> None:
    article = make_article()
    assert write_pages(tmp_path, article) == 1
    page = read(tmp_path / "articles" / "a1b2c3.html")
    assert text_of(page, "//h1") == ["Bus lanes open on Main Street"]
    assert text_of(page, "//p[@class='subtitle']") == ["Riders save ten minutes"]
    assert text_of(page, "//p[@class='meta']") == [
        "By Jane Roe · NewsDaily",
        "Monday, March 5, 2018, 14:30 EST",  # 19:30 UTC, shown in the digest's zone
    ]
    assert page.xpath("//time/@datetime") == ["2018-03-05T14:30:00-05:00"]
    assert text_of(page, "//ul[@class='tags']/li") == ["city", "transit"]
    assert text_of(page, "//article/p[not(@class)]") == list(article.paragraphs)
    hrefs = page.xpath("//a/@href")
    assert "https://newsdaily.example.com/bus-lanes" in hrefs
    assert f"{BASE}/" in hrefs and f"{BASE}/feed.xml" in hrefs and f"{BASE}/atom.xml" in hrefs
    assert text_of(page, "//title") == ["Bus lanes open on Main Street · The Daily Digest"]


def test_pages_load_nothing_from_elsewhere_and_adapt_to_phone_and_dark_mode(
    tmp_path: Path,
) -> None:
    write_pages(tmp_path, make_article())
    write_archive(tmp_path, [], SITE)
    for path in (tmp_path / "articles" / "a1b2c3.html", tmp_path / "index.html"):
        page = read(path)
        assert page.xpath("//script | //img | //iframe | //*[@src]") == []
        assert page.xpath("//link[@rel='stylesheet']") == []
        assert page.xpath("//meta[@name='viewport']/@content") == [
            "width=device-width, initial-scale=1"
        ]
        css = "".join(page.xpath("//style/text()"))
        assert "prefers-color-scheme:dark" in css and "url(" not in css and "@import" not in css
        policy = page.xpath("//meta[@http-equiv='Content-Security-Policy']/@content")
        assert policy and "default-src 'none'" in policy[0]


def test_hostile_text_is_inert(tmp_path: Path) -> None:
    article = make_article(
        title=HOSTILE,
        paragraphs=("<script>alert(2)</script> & {{ 7*7 }}",),
        author='"><img src=x onerror=alert(3)>',
        url="javascript:alert(4)",
    )
    write_pages(tmp_path, article)
    raw = (tmp_path / "articles" / "a1b2c3.html").read_text(encoding="utf-8")
    assert "<script" not in raw and "<img" not in raw and "javascript:" not in raw
    assert "49" not in raw
    page = read(tmp_path / "articles" / "a1b2c3.html")
    assert text_of(page, "//h1") == ["Fare <script>alert(1)</script> {{ 7*7 }} rise"]
    assert text_of(page, "//article/p[not(@class)]") == ["<script>alert(2)</script> & {{ 7*7 }}"]
    assert page.xpath("//script | //img") == []


def test_an_article_without_url_has_the_page_article_link_points_to(tmp_path: Path) -> None:
    article = make_article(url=None, source=None, author=None)
    write_pages(tmp_path, article)
    link = article_link(article, BASE)
    assert link == f"{BASE}/articles/a1b2c3.html"
    page_path = tmp_path / link.removeprefix(f"{BASE}/")
    page = read(page_path)
    assert text_of(page, "//h1") == ["Bus lanes open on Main Street"]
    assert page.xpath("//a[starts-with(text(), 'Read it at')]") == []
    assert page.xpath("//link[@rel='canonical']") == []


def test_an_unchanged_page_is_not_rewritten(tmp_path: Path) -> None:
    first, second = make_article(), make_article(id="d4e5f6", title="Port strike ends")
    assert write_pages(tmp_path, first, second) == 2
    old = 1_000_000_000
    for path in (tmp_path / "articles").iterdir():
        os.utime(path, ns=(old, old))
    changed = replace(second, paragraphs=("The strike ended at dawn.",))
    assert write_pages(tmp_path, first, changed) == 1
    assert (tmp_path / "articles" / "a1b2c3.html").stat().st_mtime_ns == old
    assert (tmp_path / "articles" / "d4e5f6.html").stat().st_mtime_ns != old
    assert "The strike ended at dawn." in (tmp_path / "articles" / "d4e5f6.html").read_text()


def test_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    write_pages(tmp_path, make_article(), make_article(id="d4e5f6"))
    write_archive(tmp_path, [], SITE)
    names = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert names == [
        "articles", "articles/a1b2c3.html", "articles/a1b2c3.html.gz", "articles/d4e5f6.html",
        "articles/d4e5f6.html.gz", "index.html", "index.html.gz",
    ]  # fmt: skip


@pytest.mark.parametrize("bad", ["../escape", "a/b", ".hidden", ""])
def test_an_id_that_cannot_be_a_file_name_is_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(DigestError, match="cannot name a page"):
        write_pages(tmp_path, make_article(id=bad))
    assert not (tmp_path / "articles").exists()


def test_archive_lists_issues_newest_first_with_links_counts_and_titles(tmp_path: Path) -> None:
    titles = ["One", "Two <b>bold</b>", "Three", "Four", "Five"]
    many = [make_article(id=f"m{n}", title=t, url=None) for n, t in enumerate(titles)]
    issues = [
        make_issue(date(2018, 3, 4), make_article(id="x1", title="Older story")),
        make_issue(date(2018, 3, 6), *many),
        make_issue(date(2018, 3, 6), many[0], tags=frozenset({"city"})),  # a variant of it
        make_issue(date(2018, 3, 5)),
    ]
    write_archive(tmp_path, issues, SITE)
    page = read(tmp_path / "index.html")
    assert text_of(page, "//h2") == [
        "Tuesday, March 6, 2018",
        "Monday, March 5, 2018",
        "Sunday, March 4, 2018",
    ]
    assert page.xpath("//h2/a/@href") == [
        issue_link(date(2018, 3, 6), BASE),
        issue_link(date(2018, 3, 5), BASE),
        issue_link(date(2018, 3, 4), BASE),
    ]
    assert text_of(page, "//p[@class='meta']") == [
        "5 stories · Stories of March 5, 2018",
        "0 stories · Stories of March 4, 2018",
        "1 story · Stories of March 3, 2018",
    ]
    newest = page.xpath("//li[@class='issue']")[0]
    assert text_of(newest, ".//ul/li") == ["One", "Two <b>bold</b>", "Three", "and 2 more"]
    assert newest.xpath(".//ul/li/a/@href")[:3] == [article_link(a, BASE) for a in many[:3]]
    assert page.xpath("//head/link[@rel='alternate']/@type") == [
        "application/rss+xml",
        "application/atom+xml",
    ]
    assert page.xpath("//head/link[@rel='alternate']/@href") == [
        f"{BASE}/feed.xml",
        f"{BASE}/atom.xml",
    ]
    assert f"{BASE}/feed.xml" in page.xpath("//body//a/@href")


def test_an_empty_archive_says_so(tmp_path: Path) -> None:
    write_archive(tmp_path, [], SITE)
    page = read(tmp_path / "index.html")
    assert "No issue yet." in text_of(page, "//main")[0]


def test_a_scraped_script_url_is_never_a_link() -> None:
    from digest.links import article_link

    article = make_article(url="javascript:alert(1)")
    assert article_link(article, "https://digest.test/") == (
        f"https://digest.test/articles/{article.id}.html"
    )
    assert article_link(make_article(url="https://news.test/a"), "x") == "https://news.test/a"


@pytest.mark.parametrize(
    ("lang", "attributes"),
    [("pt-BR", ("pt-BR", None)), ("he", ("he", "rtl")), (None, (None, None))],
)
def test_the_article_page_carries_the_articles_language(
    tmp_path: Path, lang: str | None, attributes: tuple[str | None, str | None]
) -> None:
    article = make_article(lang=lang)
    write_pages(tmp_path, article)
    tree = read(tmp_path / "articles" / f"{article.id}.html")
    assert tree.get("lang") == "en"  # the page's own words ("By", "All issues") are English
    (block,) = tree.xpath("//article")
    assert (block.get("lang"), block.get("dir")) == attributes
