"""`digest fetch`, `digest sources` and `digest sources add`: polling from the command line,
each source's health, and a home page's feed found and written into the config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from digest import readers
from digest.settings import load_settings

from .conftest import run, write_config
from .test_fetch import Reply, Site
from .test_fetch import site as site  # the fixture: an HTTP server on loopback
from .test_polling import feed, rss_route

slow = pytest.mark.slow  # real HTTP over loopback

HOME = """<!doctype html><html><head><title>Harbour Times</title>
<link rel="alternate" type="application/rss+xml" title="Comments" href="/comments/feed/">
<link rel="alternate" type="application/rss+xml" title="Sport" href="/category/sport/feed/">
<link rel="alternate" type="application/atom+xml" title="Elsewhere" href="https://other.test/feed">
<link rel="alternate" type="application/rss+xml" title="Harbour Times" href="/feed/">
<link rel="stylesheet" href="/style.css">
</head><body><p>Welcome</p></body></html>"""


def test_the_main_feed_of_a_home_page_comes_first() -> None:
    links = readers.feed_links(HOME.encode(), "https://www.harbour.test/")
    assert [link.url for link in links] == [
        "https://www.harbour.test/feed/",
        "https://www.harbour.test/comments/feed/",
        "https://www.harbour.test/category/sport/feed/",
        "https://other.test/feed",
    ]
    assert links[0].title == "Harbour Times" and links[0].type == "application/rss+xml"
    assert readers.feed_links(b"<html><head></head></html>", "https://a.test/") == []


def _config(tmp_path: Path, *tables: str) -> Path:
    config = write_config(tmp_path, seeds_dir=f'"{tmp_path / "none"}"')
    with config.open("a", encoding="utf-8") as handle:
        handle.write("# my own note, kept\n" + "".join(tables))
    return config


@slow
def test_sources_add_finds_the_home_pages_main_feed_and_keeps_the_comments(
    site: Site, tmp_path: Path
) -> None:
    site.route("/", Reply(200, HOME.encode(), {"Content-Type": "text/html"}))
    site.route("/feed/", rss_route(feed(site.base, 1), '"v1"'))
    config = _config(tmp_path)
    result = run("sources", "add", site.url("/"), "--tag", "Islands", "--full-text", config=config)
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"Added {site.url('/feed/')} (the main feed {site.url('/')} names) to {config} as "
        "'Harbour Times'.\n"
    )
    text = config.read_text(encoding="utf-8")
    assert "# my own note, kept\n" in text
    (source,) = load_settings(config).sources
    assert (source.url, source.name, source.tags, source.full_text) == (
        site.url("/feed/"), "Harbour Times", ("islands",), True,
    )  # fmt: skip
    again = run("sources", "add", site.url("/feed/"), config=config)
    assert again.exit_code == 1
    assert again.output == f"Error: {site.url('/feed/')} is a source already (in {config})\n"


@slow
def test_sources_add_of_a_page_without_a_feed_is_one_line(site: Site, tmp_path: Path) -> None:
    site.route("/", Reply(200, b"<html><head></head><body>hi</body></html>", {}))
    config = _config(tmp_path)
    result = run("sources", "add", site.url("/"), config=config)
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {site.url('/')} names no feed (no <link rel=")
    assert result.output.count("\n") == 1
    assert run("sources", "add", "example.org", config=config).exit_code == 2


@slow
def test_fetch_prints_what_came_and_sources_shows_the_health(site: Site, tmp_path: Path) -> None:
    good = site.route("/feed.xml", rss_route(feed(site.base, 1, 2), '"v1"'))
    bad = site.url("/gone.xml")  # 404
    config = _config(
        tmp_path,
        f'[[sources]]\nurl = "{good}"\nname = "Harbour"\ntags = ["islands"]\n',
        f'[[sources]]\nurl = "{bad}"\n',
        '[[sources]]\nurl = "http://127.0.0.1:9/off.xml"\nenabled = false\n',
    )
    result = run("fetch", config=config)
    assert result.exit_code == 1
    assert "Polled 2 sources: 2 new articles; 0 unchanged, 1 failed, 0 waiting." in result.output
    assert f"Error: {bad}: HTTP 404 Not Found (1 error in a row; next poll after " in result.output
    articles = run("articles", "--json", config=config)
    assert '"source": "Harbour"' in articles.output

    shown = run("sources", config=config)
    assert shown.exit_code == 0, shown.output
    assert f"{bad}: last error: HTTP 404 Not Found\n" in shown.output
    rows = {
        row["source"]: row for row in json.loads(run("sources", "--json", config=config).output)
    }
    assert {k: rows[good][k] for k in ("name", "tags", "http", "new", "errors")} == {
        "name": "Harbour", "tags": ["islands"], "http": 200, "new": 2, "errors": 0,
    }  # fmt: skip
    assert (rows[bad]["http"], rows[bad]["errors"], rows[bad]["last_error"]) == (
        404, 1, "HTTP 404 Not Found",
    )  # fmt: skip
    assert rows[bad]["next_poll"].endswith(" backoff")
    off = rows["http://127.0.0.1:9/off.xml"]
    assert (off["enabled"], off["last_fetch"], off["next_poll"]) == (False, "never", "disabled")


def test_fetch_and_sources_without_sources_say_how_to_add_one(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert run("fetch", config=config).output.startswith("No [[sources]] by URL configured;")
    assert run("sources", config=config).output.startswith("No [[sources]] configured:")


def test_a_folder_source_is_read_beside_seeds_dir_with_its_tags_and_name(
    tmp_path: Path,
) -> None:
    from .conftest import SEEDS

    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / "story.txt").write_bytes((SEEDS / "000_73dbec342217d4c1.txt").read_bytes())
    config = _config(
        tmp_path, '[[sources]]\npath = "clips"\nname = "Clippings"\ntags = ["Press Clips"]\n'
    )
    result = run("ingest", config=config)
    assert result.exit_code == 0, result.output  # no seeds_dir is needed once sources are set
    assert "2 articles from 1 of 1 files" in result.output
    for article in json.loads(run("articles", "--json", config=config).output):
        assert article["source"] == "Clippings" and "press-clips" in article["tags"]


@slow
def test_send_polls_first_and_reports_a_source_failing_polls_in_a_row(
    site: Site, tmp_path: Path
) -> None:
    good = site.route("/feed.xml", rss_route(feed(site.base, 1, 2), '"v1"'))
    bad = site.url("/gone.xml")  # 404
    people = tmp_path / "subscribers.csv"
    people.write_text("email,name,tags\nada@example.org,Ada,\n", encoding="utf-8")
    config = write_config(
        tmp_path,
        seeds_dir=f'"{tmp_path / "none"}"',
        outbox_dir=f'"{tmp_path / "outbox"}"',
        subscribers_file=f'"{people}"',
        issue_date="2026-11-27",
        failing_polls_reported="1",
    )
    with config.open("a", encoding="utf-8") as handle:
        handle.write(f'[[sources]]\nurl = "{good}"\n[[sources]]\nurl = "{bad}"\n')
    result = run("send", "--dry-run", config=config)
    assert result.exit_code == 0, result.output
    assert "Ingested 2 new articles from the sources.\n" in result.output
    assert "Polled 2 sources by URL: 2 new articles, 1 failed.\n" in result.output
    assert (
        f"Error: {bad}: failing for 1 polls in a row (last: HTTP 404 Not Found); "
        "`digest sources` shows its health\n"
    ) in result.output
    assert "Issue 2026-11-27 (dry run: nothing sent)" in result.output
