"""Render an issue as the digest email (HTML and plain text) and as its browser page.

The email is rendered once per variant with placeholder tokens where each recipient's own
values go; ``personalize`` swaps them in by plain string replacement, so article text is never
run through a template a second time and rendering does not scale with the subscriber count.
"""

from __future__ import annotations

import html as _html
import re
import secrets
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import css_inline
import mjml

from digest import language, templating
from digest.errors import DeliveryError
from digest.links import article_link, issue_link
from digest.models import Article, Issue, Site
from digest.wording import counted as counted  # its home; deliver imports it from here

HTML_TEMPLATE = "digest.mjml.j2"
TEXT_TEMPLATE = "digest.txt.j2"
TOKEN_NAMES = ("unsubscribe_url", "email")

_PREHEADER_CHARS = 140
# C0/C1 controls and the Unicode line/paragraph separators: none belongs in a one-line field.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_LEFTOVER_MJ = re.compile(r"<(/?mj-[a-z-]*)", re.IGNORECASE)
_EMPTY_STYLE = re.compile(r"<style[^>]*>\s*</style>")
# css-inline keeps the style tags (MJML's media queries and the dark-mode block must stay)
# but drops the rules it inlined, so the head carries only what inlining cannot express.
_INLINER = css_inline.CSSInliner(
    keep_style_tags=True, remove_inlined_selectors=True, load_remote_stylesheets=False
)


@dataclass(frozen=True, slots=True)
class Look:
    """What rendering needs from the settings."""

    site: Site
    postal_address: str
    subject: str  # a str.format template: {title}, {date} (a date), {count}, {stories}


@dataclass(frozen=True, slots=True)
class Email:
    """One rendered variant of an issue, with a placeholder token per recipient value."""

    subject: str
    html: str
    text: str
    tokens: Mapping[str, str]  # name -> placeholder, e.g. {"unsubscribe_url": "digest-tok-…"}


@dataclass(frozen=True, slots=True)
class _Entry:
    """One article as the templates show it: every field already one clean line."""

    title: str
    url: str
    source: str
    date: str
    tags: tuple[str, ...]
    summary: str
    lang: str | None = None  # the article's BCP 47 tag: its block's lang attribute
    dir: str | None = None  # "rtl" for a language written right to left


def render_email(issue: Issue, look: Look, *, templates_dir: Path | None = None) -> Email:
    """The email of one issue variant, its recipient values left as tokens for ``personalize``."""
    nonce = secrets.token_hex(8)
    tokens = {name: f"digest-tok-{name.replace('_', '-')}-{nonce}" for name in TOKEN_NAMES}
    context = _context(issue, look, browser=False, **tokens)
    html = _compile(_render(HTML_TEMPLATE, context, templates_dir), HTML_TEMPLATE)
    text = _render(TEXT_TEMPLATE, context, templates_dir)
    for name, token in tokens.items():
        for part, template in ((html, HTML_TEMPLATE), (text, TEXT_TEMPLATE)):
            if token not in part:
                raise DeliveryError(
                    f"template {template} does not show {{{{ {name} }}}}; "
                    "every email must carry it, put it back in the template"
                )
    return Email(subject=_subject(issue, look), html=html, text=text, tokens=tokens)


def personalize(email: Email, values: Mapping[str, str]) -> tuple[str, str]:
    """The (html, text) of one recipient: each token replaced by its value, HTML-escaped in html."""
    missing = sorted(set(email.tokens) - set(values))
    if missing:
        raise DeliveryError(f"no value for {', '.join(missing)}; pass one for every email token")
    html, text = email.html, email.text
    for name, token in email.tokens.items():
        html = html.replace(token, _html.escape(values[name], quote=True))
        text = text.replace(token, values[name])
    return html, text


def render_browser_page(issue: Issue, look: Look, *, templates_dir: Path | None = None) -> str:
    """The whole issue as a web page (outbox/issues/YYYY-MM-DD/index.html), for no recipient."""
    context = _context(issue, look, browser=True, unsubscribe_url="", email="")
    return _compile(_render(HTML_TEMPLATE, context, templates_dir), HTML_TEMPLATE)


def one_line(text: str) -> str:
    """``text`` with control characters and line breaks gone and its whitespace collapsed."""
    return " ".join(_CONTROL.sub(" ", text).split())


def long_date(day: date) -> str:
    """'Friday, November 27, 2026': spelled out, with no platform-specific strftime flag."""
    return f"{day:%A, %B} {day.day}, {day.year}"


def stories(count: int) -> str:
    """'1 story', '3 stories': the count of an issue as the subject and the email say it."""
    return counted(count, "story", "stories")


def _subject(issue: Issue, look: Look) -> str:
    count = len(issue.articles)
    try:
        subject = look.subject.format(
            title=look.site.title, date=issue.date, count=count, stories=stories(count)
        )
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        raise DeliveryError(
            f"subject template {look.subject!r} is invalid ({exc}); "
            "use only {title}, {date}, {count} and {stories} in `subject`"
        ) from exc
    return one_line(subject)


def _context(issue: Issue, look: Look, *, browser: bool, **tokens: str) -> dict[str, Any]:
    entries = [_entry(article, look) for article in issue.articles]
    return {
        "title": one_line(look.site.title),
        "date_text": long_date(issue.date),
        "count": len(entries),
        "stories": stories(len(entries)),  # "1 story", "3 stories"
        "articles": entries,
        "topics": sorted(one_line(tag) for tag in issue.tags),
        "preheader": _preheader(entries),
        "browser": browser,
        "browser_url": issue_link(issue.date, look.site.base_url, issue.tags),
        "postal_address": one_line(look.postal_address),
        **tokens,
    }


def _entry(article: Article, look: Look) -> _Entry:
    published = article.published.astimezone(look.site.timezone)
    return _Entry(
        title=one_line(article.title),
        url=one_line(article_link(article, look.site.base_url)),
        source=one_line(article.source or ""),
        date=f"{published:%b} {published.day}, {published.year}",
        tags=tuple(sorted(one_line(tag) for tag in article.tags)),
        summary=one_line(article.summary),
        lang=language.normalise(article.lang),
        dir=language.direction(language.normalise(article.lang)),
    )


def _preheader(entries: list[_Entry]) -> str:
    """The inbox preview line: the first titles, cut at a word within the budget."""
    joined = " · ".join(entry.title for entry in entries)
    return textwrap.shorten(joined, _PREHEADER_CHARS, placeholder=" …") if joined else ""


def _render(name: str, context: Mapping[str, Any], templates_dir: Path | None) -> str:
    return templating.render(name, context, error=DeliveryError, templates_dir=templates_dir)


def _compile(source: str, name: str) -> str:
    """MJML to HTML with the inline-marked CSS inlined; refuses output with MJML tags left."""
    try:
        compiled = mjml.mjml2html(source, disable_comments=True, fonts={})
    except ValueError as exc:
        raise DeliveryError(f"MJML in template {name} is invalid: {exc}; fix the template") from exc
    try:
        inlined = _INLINER.inline(compiled)
    except css_inline.InlineError as exc:
        raise DeliveryError(f"cannot inline the CSS of template {name}: {exc}") from exc
    # The inline-only <mj-style> comes out of css-inline as an empty tag: drop it.
    inlined = _EMPTY_STYLE.sub("", inlined)
    leftover = _LEFTOVER_MJ.search(inlined)
    if leftover:
        raise DeliveryError(
            f"MJML left <{leftover.group(1)}> uncompiled in template {name}; "
            "it is not a tag mjml-python knows there: fix or move it"
        )
    return inlined
