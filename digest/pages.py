"""Static web pages in outbox/: one page per cleaned article, and the archive of issues.

Article text is untrusted (it was scraped), so the templates run with autoescape on and
StrictUndefined, and every page forbids scripts in its Content-Security-Policy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from digest.errors import DigestError
from digest.files import write_if_changed
from digest.links import article_link, issue_link, web_url
from digest.models import Article, Issue
from digest.render import TEMPLATES_DIR

ARTICLE_TEMPLATE = "article.html.j2"
ARCHIVE_TEMPLATE = "archive.html.j2"
ARCHIVE_TITLES = 3  # titles shown under each issue in the archive

# The id becomes a file name: nothing that could climb out of articles/ or hide the file.
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


def write_article_pages(
    outbox: Path, articles: Iterable[Article], *, title: str, base_url: str, tz: tzinfo
) -> int:
    """Write ``articles/<id>.html`` for each article; return how many files changed."""
    written = 0
    for article in articles:
        page = _render(
            ARTICLE_TEMPLATE,
            site=_site(title, base_url),
            article=article,
            source_url=web_url(article.url),
            published=_when(article.published, tz),
            tags=sorted(article.tags),
            paragraphs=article.paragraphs,
        )
        written += write_if_changed(article_path(outbox, article), page)
    return written


def write_archive(
    outbox: Path, issues: Sequence[Issue], *, title: str, base_url: str, tz: tzinfo
) -> None:
    """Write ``index.html``: every issue, newest first, with its link, count and first titles."""
    rows = [
        {
            "label": _day_label(issue.date),
            "iso": issue.date.isoformat(),
            "href": issue_link(issue.date, base_url),
            "count": len(issue.articles),
            "window": _window(issue, tz),
            "first": [
                {"title": a.title, "href": article_link(a, base_url)}
                for a in issue.articles[:ARCHIVE_TITLES]
            ],
            "more": max(0, len(issue.articles) - ARCHIVE_TITLES),
        }
        for issue in _one_per_date(issues)
    ]
    write_if_changed(
        outbox / "index.html", _render(ARCHIVE_TEMPLATE, site=_site(title, base_url), issues=rows)
    )


def article_path(outbox: Path, article: Article) -> Path:
    """Where an article's page lives; ``links.article_link`` points at the same name."""
    if not _SAFE_ID.fullmatch(article.id):
        raise DigestError(
            f"article id {article.id!r} cannot name a page; re-ingest the article so it "
            "gets a stored id"
        )
    return outbox / "articles" / f"{article.id}.html"


def _site(title: str, base_url: str) -> dict[str, str]:
    root = base_url.rstrip("/")
    return {
        "title": title,
        "home": f"{root}/",
        "rss": f"{root}/feed.xml",
        "atom": f"{root}/atom.xml",
    }


def _one_per_date(issues: Sequence[Issue]) -> list[Issue]:
    """Newest first, one issue a day: the whole issue wins over a tag variant of it."""
    chosen: dict[date, Issue] = {}
    for issue in issues:
        held = chosen.get(issue.date)
        if held is None or (held.tags and not issue.tags):
            chosen[issue.date] = issue
    return [chosen[day] for day in sorted(chosen, reverse=True)]


def _when(moment: datetime, tz: tzinfo) -> dict[str, str]:
    local = moment.astimezone(tz)
    return {
        "iso": local.isoformat(),
        "label": f"{_day_label(local)}, {local:%H:%M} {local.tzname() or ''}".rstrip(),
    }


def _day_label(day: date) -> str:
    """``Monday, March 5, 2018``: spelled out, no locale and no zero padding."""
    return f"{day:%A}, {day:%B} {day.day}, {day.year}"


def _window(issue: Issue, tz: tzinfo) -> str:
    first = issue.start.astimezone(tz).date()
    last = (issue.end.astimezone(tz) - timedelta(microseconds=1)).date()
    if last <= first:
        return f"Stories of {first:%B} {first.day}, {first.year}"
    return f"Stories of {first:%B} {first.day}, {first.year} – {last:%B} {last.day}, {last.year}"


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _render(name: str, **context: Any) -> str:
    try:
        return _environment().get_template(name).render(**context)
    except jinja2.TemplateSyntaxError as exc:
        raise DigestError(
            f"cannot read {TEMPLATES_DIR / name} line {exc.lineno}: {exc.message}; fix the template"
        ) from exc
    except jinja2.TemplateError as exc:
        raise DigestError(
            f"cannot render {TEMPLATES_DIR / name}: {exc.message}; fix the template"
        ) from exc
