"""Static web pages in outbox/: one page per cleaned article, and the archive of issues.

Article text is untrusted (it was scraped), so the templates run with autoescape on and
StrictUndefined, and every page forbids scripts in its Content-Security-Policy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from digest import language, templating
from digest.errors import OutputError
from digest.files import write_if_changed
from digest.links import article_link, issue_link, web_url
from digest.models import Article, Issue, Site

ARTICLE_TEMPLATE = "article.html.j2"
ARCHIVE_TEMPLATE = "archive.html.j2"
ARCHIVE_TITLES = 3  # titles shown under each issue in the archive

# The id becomes a file name: nothing that could climb out of articles/ or hide the file.
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


def write_article_pages(outbox: Path, articles: Iterable[Article], site: Site) -> int:
    """Write ``articles/<id>.html`` for each article; return how many files changed."""
    written = 0
    for article in articles:
        page = _render(
            ARTICLE_TEMPLATE,
            site=_links(site),
            article=article,
            source_url=web_url(article.url),
            published=_when(article.published, site.timezone),
            tags=sorted(article.tags),
            paragraphs=article.paragraphs,
            lang=language.normalise(article.lang),
            dir=language.direction(language.normalise(article.lang)),
        )
        written += write_if_changed(article_path(outbox, article), page)
    return written


def write_archive(outbox: Path, issues: Sequence[Issue], site: Site) -> None:
    """Write ``index.html``: every issue, newest first, with its link, count and first titles."""
    rows = [
        {
            "label": _day_label(issue.date),
            "iso": issue.date.isoformat(),
            "href": issue_link(issue.date, site.base_url),
            "count": len(issue.articles),
            "window": _window(issue, site.timezone),
            "first": [
                {"title": a.title, "href": article_link(a, site.base_url)}
                for a in issue.articles[:ARCHIVE_TITLES]
            ],
            "more": max(0, len(issue.articles) - ARCHIVE_TITLES),
        }
        for issue in _one_per_date(issues)
    ]
    write_if_changed(
        outbox / "index.html", _render(ARCHIVE_TEMPLATE, site=_links(site), issues=rows)
    )


def article_path(outbox: Path, article: Article) -> Path:
    """Where an article's page lives; ``links.article_link`` points at the same name."""
    if not _SAFE_ID.fullmatch(article.id):
        raise OutputError(
            f"article id {article.id!r} cannot name a page; re-ingest the article so it "
            "gets a stored id"
        )
    return outbox / "articles" / f"{article.id}.html"


def _links(site: Site) -> dict[str, str]:
    """The site as the page templates show it: its title and links."""
    root = site.base_url.rstrip("/")
    return {
        "title": site.title,
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


def _render(name: str, **context: Any) -> str:
    return templating.render(name, context, error=OutputError)
