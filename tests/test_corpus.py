"""Black-box test: the text cleaner must generalize to an original corpus of scraped pages.

The corpus in tests/data/corpus/ holds several site layouts (news site, blog with comments,
category archive pages, wire service, school-district page), a cp1252 file, a file without any
date, a syndicated duplicate and a post repeated on two archive pages. Everything is ingested in
ONE call (cross-file evidence is part of the cleaner's input) and checked against
tests/data/corpus/expected.toml.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from digest.cli import cli

from .conftest import JSON_FIELDS

CORPUS = Path(__file__).parent / "data" / "corpus"
EXPECTED: dict[str, Any] = tomllib.loads((CORPUS / "expected.toml").read_text(encoding="utf-8"))
EXPECTED_ARTICLES: list[dict[str, Any]] = EXPECTED["article"]
CHROME: list[str] = EXPECTED["chrome"]
CHROME_LINES: set[str] = set(EXPECTED["chrome_lines"])

# Files not given an explicit mtime in expected.toml get this one, far from every real date,
# so a wrong fallback to the mtime is detected.
OTHER_MTIME = datetime.fromisoformat("2021-06-01T08:00:00+00:00")

TAG_RULES = """
[tag_rules]
light-pollution = ["light pollution", "dark sky", "dark-sky"]
heat-wave = ["heat wave", "heat emergency", "excessive heat"]
wildfire = ["wildfire", "wildfires"]
schools = ["school board", "school district"]
transit = ["bus rapid transit", "light rail", "light-rail", "bus route"]
labor = ["strike", "walkout", "dockworkers"]
"""

REQUIRED_FIELDS = (*JSON_FIELDS, "subtitle", "date_source")
DATE_SOURCES = {"text", "seeds.toml", "page-header", "mtime", "html", "feed"}
MOJIBAKE = ("â€", "Ã", "Â", "\ufffd")


def _short(text: str | None, n: int = 160) -> str:
    text = text or ""
    return repr(text if len(text) <= n else text[:n] + "…")


def _parse_json_array(out: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(out)
    except json.JSONDecodeError:
        # tolerate log lines printed around the array
        match = re.search(r"^\[.*^\]", out, re.DOTALL | re.MULTILINE)
        if match is None:
            pytest.fail(f"articles --json printed no JSON array: {_short(out, 400)}")
        data = json.loads(match.group(0))
    assert isinstance(data, list), f"articles --json did not print a JSON array: {_short(out)}"
    return data


@pytest.fixture(scope="module", params=["one-batch", "one-file-per-send"])
def corpus_run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The corpus ingested in one `digest ingest`, or file by file, each new file followed by
    a `digest send --dry-run` (the daily path: it reads only the new file, and the cleaner
    judges it against its site's evidence from the earlier runs, kept in the store)."""
    tmp = tmp_path_factory.mktemp("corpus")
    src = tmp / "corpus"
    staged = tmp / "staged"
    for path in sorted(CORPUS.rglob("*.txt")):
        dest = staged / path.relative_to(CORPUS)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
        stamp = OTHER_MTIME.timestamp()
        os.utime(dest, (stamp, stamp))
    for exp in EXPECTED_ARTICLES:
        if "mtime" in exp:
            stamp = datetime.fromisoformat(exp["mtime"]).timestamp()
            dest = staged / exp["file"]
            os.utime(dest, (stamp, stamp))

    cfg = tmp / "digest.toml"
    cfg.write_text(
        f"database_url = 'sqlite:///{(tmp / 't.db').as_posix()}'\n"
        "timezone = 'UTC'\n"
        f"seeds_dir = '{src.as_posix()}'\n"
        f"outbox_dir = '{(tmp / 'outbox').as_posix()}'\n" + TAG_RULES,
        encoding="utf-8",
    )
    runner = CliRunner()
    if request.param == "one-batch":
        shutil.copytree(staged, src, copy_function=shutil.copy2)
        ingest = runner.invoke(cli, ["--config", str(cfg), "ingest", str(src)])
    else:
        for path in sorted(staged.rglob("*.txt")):
            dest = src / path.relative_to(staged)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)
            ingest = runner.invoke(cli, ["--config", str(cfg), "send", "--dry-run"])
            assert ingest.exit_code in (0, 1), f"{path.name}: {ingest.output}\n{ingest.exception!r}"
    listing = runner.invoke(cli, ["--config", str(cfg), "articles", "--json"])
    assert listing.exit_code == 0, (
        f"`articles --json` failed (exit {listing.exit_code}): {listing.output}\n"
        f"{listing.exception!r}\ningest output: {ingest.output}"
    )
    return {"ingest": ingest, "articles": _parse_json_array(listing.stdout)}


@pytest.fixture(scope="module")
def articles(corpus_run: dict[str, Any]) -> list[dict[str, Any]]:
    return corpus_run["articles"]


def _find(articles: list[dict[str, Any]], title: str) -> dict[str, Any]:
    hits = [a for a in articles if a.get("title") == title]
    if not hits:
        found = "\n  ".join(repr(a.get("title")) for a in articles)
        pytest.fail(f"no article titled {title!r}; titles found:\n  {found}")
    assert len(hits) == 1, f"{len(hits)} articles titled {title!r} (duplicate not merged)"
    return hits[0]


def _paragraphs(body: str | None) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", body or "") if p.strip()]


def _dt(value: str | None, what: str) -> datetime:
    assert value, f"{what}: no published date"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        pytest.fail(f"{what}: published {value!r} is not ISO 8601")
    assert parsed.utcoffset() is not None, f"{what}: published {value!r} has no UTC offset"
    return parsed


def _ids(exp: dict[str, Any]) -> str:
    return re.sub(r"[^a-z0-9]+", "-", exp["title"].lower()).strip("-")[:48]


per_article = pytest.mark.parametrize("exp", EXPECTED_ARTICLES, ids=_ids)


def test_ingest_reads_every_file(corpus_run: dict[str, Any]) -> None:
    result = corpus_run["ingest"]
    assert result.exit_code == 0, (
        f"ingest exited {result.exit_code} (a file was rejected?): {result.output}\n"
        f"{result.exception!r}"
    )


def test_json_fields(articles: list[dict[str, Any]]) -> None:
    for art in articles:
        missing = [f for f in REQUIRED_FIELDS if f not in art]
        assert not missing, f"{art.get('title')!r}: missing fields {missing}"
        assert isinstance(art["tags"], list), f"{art['title']!r}: tags is {art['tags']!r}"
        for tag in art["tags"]:
            assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", tag), (
                f"{art['title']!r}: tag {tag!r} is not a lower-case slug"
            )
        assert art["date_source"] in DATE_SOURCES, (
            f"{art['title']!r}: date_source {art['date_source']!r}"
        )
        _dt(art["published"], repr(art["title"]))


def test_article_count(articles: list[dict[str, Any]]) -> None:
    got = [a.get("title") for a in articles]
    want = [e["title"] for e in EXPECTED_ARTICLES]
    extra = [t for t in got if t not in want]
    missing = [t for t in want if t not in got]
    dupes = sorted({t for t in got if got.count(t) > 1}, key=str)
    assert len(got) == len(want), (
        f"expected {len(want)} articles, got {len(got)}; "
        f"unexpected: {extra}; missing: {missing}; duplicated: {dupes}"
    )


@per_article
def test_published(articles: list[dict[str, Any]], exp: dict[str, Any]) -> None:
    art = _find(articles, exp["title"])
    what = repr(exp["title"])
    got = _dt(art.get("published"), what)
    if "mtime" in exp:
        want = datetime.fromisoformat(exp["mtime"])
    else:
        want = datetime.fromisoformat(exp["published"])
    assert got == want, (
        f"{what}: published {art.get('published')!r} (date_source "
        f"{art.get('date_source')!r}), expected {want.isoformat()}"
    )
    if "date_source" in exp:
        assert art.get("date_source") == exp["date_source"], (
            f"{what}: date_source {art.get('date_source')!r}, expected {exp['date_source']!r}"
        )


@per_article
def test_author(articles: list[dict[str, Any]], exp: dict[str, Any]) -> None:
    art = _find(articles, exp["title"])
    want = exp.get("author") or ""
    got = art.get("author") or ""
    assert got == want, f"{exp['title']!r}: author {got!r}, expected {want!r}"


@per_article
def test_tags(articles: list[dict[str, Any]], exp: dict[str, Any]) -> None:
    art = _find(articles, exp["title"])
    missing = sorted(set(exp["tags"]) - set(art.get("tags") or []))
    assert not missing, f"{exp['title']!r}: tags {art.get('tags')!r} lack {missing}"


@per_article
def test_body_start_and_end(articles: list[dict[str, Any]], exp: dict[str, Any]) -> None:
    art = _find(articles, exp["title"])
    body = (art.get("body") or "").strip()
    assert body.startswith(exp["first"]), (
        f"{exp['title']!r}: body starts {_short(body[:200])}, expected {exp['first']!r}"
    )
    assert body.endswith(exp["last"]), (
        f"{exp['title']!r}: body ends {_short(body[-200:])}, expected {exp['last']!r}"
    )
    for text in exp.get("contains", []):
        assert text in body, f"{exp['title']!r}: body lacks {text!r} (decoding?)"


@pytest.mark.parametrize("exp", [e for e in EXPECTED_ARTICLES if "dateline" in e], ids=_ids)
def test_dateline(articles: list[dict[str, Any]], exp: dict[str, Any]) -> None:
    art = _find(articles, exp["title"])
    body = (art.get("body") or "").strip()
    assert not body.startswith(exp["dateline"]), (
        f"{exp['title']!r}: dateline {exp['dateline']!r} left at the start of the body"
    )
    if "dateline" in art:  # optional field of `articles --json`
        got = art["dateline"] or ""
        assert exp["dateline"] in got, (
            f"{exp['title']!r}: dateline field {got!r}, expected {exp['dateline']!r}"
        )


@per_article
def test_subtitle(articles: list[dict[str, Any]], exp: dict[str, Any]) -> None:
    art = _find(articles, exp["title"])
    got = (art.get("subtitle") or "").strip()
    want = exp.get("subtitle", "")
    assert got == want, f"{exp['title']!r}: subtitle {got!r}, expected {want!r}"
    if want:
        assert want not in (art.get("body") or ""), (
            f"{exp['title']!r}: the subtitle is repeated inside the body"
        )


def test_no_chrome(articles: list[dict[str, Any]]) -> None:
    problems = []
    for art in articles:
        fields = {
            "title": art.get("title") or "",
            "subtitle": art.get("subtitle") or "",
            "body": art.get("body") or "",
        }
        for name, text in fields.items():
            problems += [f"{art.get('title')!r} {name} contains {c!r}" for c in CHROME if c in text]
        for line in [fields["title"], fields["subtitle"], *_paragraphs(fields["body"])]:
            if line.strip() in CHROME_LINES:
                problems.append(f"{art.get('title')!r} has a chrome line {line.strip()!r}")
    assert not problems, "chrome left in articles:\n  " + "\n  ".join(problems)


def test_no_mojibake(articles: list[dict[str, Any]]) -> None:
    problems = []
    for art in articles:
        for name in ("title", "subtitle", "author", "body"):
            text = art.get(name) or ""
            for bad in MOJIBAKE:
                pos = text.find(bad)
                if pos >= 0:
                    around = _short(text[max(0, pos - 40) : pos + 40])
                    problems.append(f"{art.get('title')!r} {name}: {bad!r} in {around}")
    assert not problems, "mojibake:\n  " + "\n  ".join(problems)


def test_no_title_as_body_paragraph(articles: list[dict[str, Any]]) -> None:
    titles = {(a.get("title") or "").strip() for a in articles}
    titles |= {e["title"] for e in EXPECTED_ARTICLES}
    problems = [
        f"{art.get('title')!r} body has the title paragraph {p!r}"
        for art in articles
        for p in _paragraphs(art.get("body"))
        if p in titles
    ]
    assert not problems, "titles left inside bodies:\n  " + "\n  ".join(problems)
