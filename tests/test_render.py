"""The digest email as subscribers get it: HTML, plain text and subject of one issue."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import lxml.html
import pytest

from digest.errors import DeliveryError
from digest.links import article_link, issue_link
from digest.render import Email, personalize, render_browser_page, render_email

from .factories import EMAIL_DAY, NEW_YORK, SUMMARY, VALUES, make_look, many_articles
from .factories import email_article as make_article
from .factories import email_issue as make_issue

TZ = NEW_YORK
ISSUE_DATE = EMAIL_DAY
HOSTILE = "<script>alert(1)</script> {{ 7*7 }}\r\nBcc: victim@example.org"


@pytest.fixture(scope="module")
def hostile() -> Email:
    return render_email(make_issue(make_article(title=HOSTILE), make_article(id="a2")), make_look())


def test_subject_has_title_date_and_count_on_one_line() -> None:
    email = render_email(make_issue(*many_articles(3)), make_look())
    assert email.subject == "The Daily Digest for Friday, November 27, 2026: 3 stories"


@pytest.mark.parametrize(
    ("count", "stories"), [(1, "1 story"), (2, "2 stories"), (25, "25 stories")]
)
def test_subject_and_body_count_stories_in_singular_or_plural(count: int, stories: str) -> None:
    email = render_email(make_issue(*many_articles(count)), make_look())
    assert email.subject == f"The Daily Digest for Friday, November 27, 2026: {stories}"
    assert f"Friday, November 27, 2026 · {stories}</p>" in email.html
    assert f"\nFriday, November 27, 2026 · {stories}\n" in email.text
    assert "1 stories" not in email.html + email.text


def test_subject_may_still_say_the_bare_count() -> None:
    email = render_email(make_issue(*many_articles(3)), make_look(subject="{count} new: {title}"))
    assert email.subject == "3 new: The Daily Digest"


def test_subject_from_hostile_title_is_one_line() -> None:
    email = render_email(make_issue(), make_look(title="Evil\r\nBcc: x@y\x00\x1b[1m  digest"))
    assert email.subject == "Evil Bcc: x@y [1m digest for Friday, November 27, 2026: 1 story"
    assert not re.search(r"[\x00-\x1f\x7f]", email.subject)


def test_subject_with_unknown_field_says_what_to_fix() -> None:
    with pytest.raises(
        DeliveryError, match=r"use only \{title\}, \{date\}, \{count\} and \{stories\}"
    ):
        render_email(make_issue(), make_look(subject="{title} {author}"))


def test_hostile_title_is_inert_in_html(hostile: Email) -> None:
    html, _ = personalize(hostile, VALUES)  # the random tokens could hold "49"
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; {{ 7*7 }} Bcc: victim@example.org" in html
    assert "49" not in html


def test_hostile_title_is_inert_in_text(hostile: Email) -> None:
    _, text = personalize(hostile, VALUES)
    assert "1. <script>alert(1)</script> {{ 7*7 }} Bcc: victim@example.org\n" in text
    assert "49" not in text
    assert "\r" not in text


def test_html_is_compiled_mjml_without_web_fonts(hostile: Email) -> None:
    assert hostile.html.lstrip().lower().startswith("<!doctype html>")
    assert "<mj-" not in hostile.html
    assert "fonts.googleapis" not in hostile.html
    assert "<link" not in hostile.html


def test_css_is_inlined_on_the_elements(hostile: Email) -> None:
    title = re.search(r'<h2 class="a-title[^"]*" style="([^"]*)"', hostile.html)
    assert title, "article titles carry inline styles"
    assert "color: #1f2328" in title.group(1)
    assert "background-color: #ffffff" in title.group(1)
    assert "overflow-wrap: anywhere" in title.group(1)


def test_dark_mode_is_declared_and_flips_colours(hostile: Email) -> None:
    assert '<meta name="color-scheme" content="light dark">' in hostile.html
    assert '<meta name="supported-color-schemes" content="light dark">' in hostile.html
    dark = hostile.html[hostile.html.index("@media (prefers-color-scheme: dark)") :]
    dark = dark[: dark.index("</style>")]
    assert "background-color: #161b22 !important" in dark
    assert "color: #e6edf3 !important" in dark


def test_content_shows_every_article_and_the_issue(hostile: Email) -> None:
    html = hostile.html
    assert "Friday, November 27, 2026" in html
    assert 'href="https://news.example.org/2026/11/26/night-buses"' in html
    assert ">Night buses reach the eastern districts</a>" in html
    assert "The Wire · Nov 26, 2026 · city-hall, transit" in html
    assert SUMMARY in html
    assert f'href="{issue_link(ISSUE_DATE, "https://d.example.org")}"' in html
    assert ">View in browser</a>" in html
    assert "The Daily Digest · 1 Example Street · Springfield, ST 00000" in html


def test_preheader_previews_the_first_titles() -> None:
    email = render_email(make_issue(*many_articles(5)), make_look())
    preheader = re.search(r'<div class="preheader" [^>]*>([^<]*)</div>', email.html)
    assert preheader
    assert preheader.group(1).startswith("Story 0: night buses reach the eastern districts of the")
    assert len(preheader.group(1)) <= 140
    # The first text of the body, so inbox previews show it rather than the masthead.
    body = email.html[email.html.index("<body") :]
    assert re.sub(r"<[^>]*>", "", body).lstrip().startswith(preheader.group(1))


def test_preheader_is_hidden_without_invisible_text_signals() -> None:
    """Hidden by height and overflow (and mso-hide for Outlook), as Cerberus does: not the
    colour of the background or a 1px font (SpamAssassin's HTML_FONT_LOW_CONTRAST), nor
    display:none (its invisible-text count), nor runs of &zwnj;&nbsp; padding."""
    html = render_email(make_issue(*many_articles(5)), make_look()).html
    tag = re.search(r'<div class="preheader" [^>]*>', html)
    assert tag
    assert 'style="max-height:0;overflow:hidden;mso-hide:all"' in tag.group(0)
    assert 'aria-hidden="true"' in tag.group(0)  # the titles follow: not read out twice
    assert "display:none" not in html.replace(" ", "")
    assert "&zwnj;" not in html and "\u200c" not in html
    assert not re.search(r"font-size:\s*1px", html)


def test_browser_page_has_no_preheader() -> None:
    assert 'class="preheader"' not in render_browser_page(make_issue(), make_look())


def test_article_date_is_shown_in_the_look_timezone() -> None:
    late = make_article(published=datetime(2026, 11, 27, 3, 0, tzinfo=UTC))
    email = render_email(make_issue(late), make_look())
    assert "The Wire · Nov 26, 2026" in email.html  # 22:00 the day before in New York
    assert "The Wire · Nov 26, 2026" in email.text


def test_article_without_url_links_to_its_outbox_page() -> None:
    article = make_article(url=None)
    email = render_email(make_issue(article), make_look())
    link = article_link(article, "https://d.example.org")
    assert link == "https://d.example.org/articles/a1.html"
    assert f'href="{link}"' in email.html
    assert f"\n   {link}\n" in email.text


def test_empty_summary_renders_title_without_summary() -> None:
    email = render_email(make_issue(make_article(summary="")), make_look())
    assert ">Night buses reach the eastern districts</a>" in email.html
    assert 'class="a-sum' not in email.html
    assert "Night buses reach the eastern districts" in email.text


def test_tokens_are_fresh_and_present_until_personalized() -> None:
    issue = make_issue()
    first, second = render_email(issue, make_look()), render_email(issue, make_look())
    assert set(first.tokens) == {"unsubscribe_url", "email"}
    assert first.tokens != second.tokens
    for token in first.tokens.values():
        assert re.fullmatch(r"[A-Za-z0-9-]+", token)
        assert token in first.html
        assert token in first.text
    html, text = personalize(first, VALUES)
    for token in first.tokens.values():
        assert token not in html
        assert token not in text
    assert re.search(f'href="{re.escape(VALUES["unsubscribe_url"])}"[^>]*>Unsubscribe</a>', html)
    assert f"Unsubscribe:\n{VALUES['unsubscribe_url']}\n" in text
    assert "sent to a@b.org because" in " ".join(html.split())
    assert "This email was sent to a@b.org because" in text


def test_personalize_escapes_values_in_html_only() -> None:
    email = render_email(make_issue(), make_look())
    html, text = personalize(
        email, {"unsubscribe_url": "https://d.example.org/u?t=1&x=<b>", "email": '"q"@x.org'}
    )
    assert 'href="https://d.example.org/u?t=1&amp;x=&lt;b&gt;"' in html
    assert "&quot;q&quot;@x.org" in html
    assert "<b>" not in html
    assert "https://d.example.org/u?t=1&x=<b>\n" in text
    assert '"q"@x.org' in text


def test_personalize_needs_every_value() -> None:
    email = render_email(make_issue(), make_look())
    with pytest.raises(DeliveryError, match="no value for email"):
        personalize(email, {"unsubscribe_url": "https://d.example.org/u"})


def test_article_text_cannot_forge_a_token() -> None:
    forged = make_article(title="digest-tok-email-0000000000000000 digest-tok-unsubscribe-url-x")
    email = render_email(make_issue(forged), make_look())
    html, text = personalize(email, VALUES)
    assert "digest-tok-email-0000000000000000 digest-tok-unsubscribe-url-x" in html
    assert "digest-tok-email-0000000000000000 digest-tok-unsubscribe-url-x" in text


def test_html_of_25_articles_stays_under_gmail_clipping() -> None:
    email = render_email(make_issue(*many_articles(25)), make_look())
    html, _ = personalize(email, VALUES)
    assert email.html.count('class="a-title') == 25
    assert len(html.encode("utf-8")) < 102 * 1024


def test_text_part_has_every_title_and_url() -> None:
    articles = many_articles(12)
    email = render_email(make_issue(*articles), make_look())
    _, text = personalize(email, VALUES)
    lines = text.splitlines()
    for number, article in enumerate(articles, start=1):
        assert f"{number}. {article.title}" in lines
        assert f"   {article.url}" in lines  # a line of its own
    assert issue_link(ISSUE_DATE, "https://d.example.org") in lines
    prose = [line for line in lines if "://" not in line]
    assert max(map(len, prose)) <= 72


def test_text_part_wraps_summary_sentences() -> None:
    email = render_email(make_issue(), make_look())
    summary_lines = [line for line in email.text.splitlines() if line.startswith("   ")]
    assert len(summary_lines) > 3
    assert " ".join(SUMMARY.split()) in " ".join(line.strip() for line in summary_lines)


def test_browser_page_has_no_recipient_parts() -> None:
    page = render_browser_page(make_issue(), make_look())
    assert "digest-tok-" not in page
    assert "To unsubscribe, use the link" in " ".join(page.split())
    assert "View in browser" not in page
    assert ">Night buses reach the eastern districts</a>" in page
    assert "<mj-" not in page


def test_template_without_unsubscribe_link_is_refused(tmp_path: Path) -> None:
    real = Path(__file__).resolve().parent.parent / "templates"
    source = (real / "digest.mjml.j2").read_text(encoding="utf-8")
    (tmp_path / "digest.mjml.j2").write_text(
        source.replace('href="{{ unsubscribe_url }}"', 'href="#"'), encoding="utf-8"
    )
    (tmp_path / "digest.txt.j2").write_text(
        (real / "digest.txt.j2").read_text(encoding="utf-8"), encoding="utf-8"
    )
    with pytest.raises(DeliveryError, match=r"digest.mjml.j2 does not show \{\{ unsubscribe_url"):
        render_email(make_issue(), make_look(), templates_dir=tmp_path)


@pytest.mark.parametrize(
    ("mjml", "message"),
    [
        ("<mjml><mj-body><mj-text>x</mj-body></mjml>", "MJML in template digest.mjml.j2 is"),
        ("<mjml><mj-body><mj-bogus>x</mj-bogus></mj-body></mjml>", "left <mj-bogus> uncompiled"),
        ("<mjml>{{ nowhere }}</mjml>", "'nowhere' is undefined"),
        ("<mjml>{% if %}</mjml>", r"template digest.mjml.j2:1 failed"),
    ],
)
def test_broken_template_is_a_delivery_error(tmp_path: Path, mjml: str, message: str) -> None:
    (tmp_path / "digest.mjml.j2").write_text(mjml, encoding="utf-8")
    (tmp_path / "digest.txt.j2").write_text("{{ unsubscribe_url }} {{ email }}\n", "utf-8")
    with pytest.raises(DeliveryError, match=message):
        render_browser_page(make_issue(), make_look(), templates_dir=tmp_path)


def test_missing_template_says_where_it_was_looked_for(tmp_path: Path) -> None:
    with pytest.raises(DeliveryError, match=f"digest.mjml.j2 not found in {tmp_path}"):
        render_email(make_issue(), make_look(), templates_dir=tmp_path)


def test_variant_names_its_topics() -> None:
    issue = replace(make_issue(), tags=frozenset({"transit", "cycling"}))
    email = render_email(issue, make_look())
    assert "Friday, November 27, 2026 · 1 story on cycling, transit" in email.html
    assert "Friday, November 27, 2026 · 1 story on cycling, transit\n" in email.text


def test_each_article_block_carries_its_language_and_the_email_stays_in_the_digests() -> None:
    german = make_article(title="Hafenlampen werden gedimmt", lang="de")
    arabic = make_article(title="مصابيح الميناء", url="https://x.example/ar", lang="ar")
    unknown = make_article(title="No language known", url="https://x.example/n")
    email = render_email(make_issue(german, arabic, unknown), make_look())
    tree = lxml.html.fromstring(email.html)
    assert tree.get("lang") == "en"
    blocks = {
        " ".join(b.xpath("string(.//h2)").split()): (b.get("lang"), b.get("dir"))
        for b in tree.xpath("//div[contains(@class, 'article')]")
    }
    assert blocks == {
        "Hafenlampen werden gedimmt": ("de", None),
        "مصابيح الميناء": ("ar", "rtl"),
        "No language known": (None, None),
    }
    page = lxml.html.fromstring(render_browser_page(make_issue(german), make_look()))
    assert page.xpath("//div[contains(@class, 'article')]/@lang") == ["de"]
