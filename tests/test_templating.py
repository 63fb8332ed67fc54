"""The template layer: one environment, autoescape by kind, and errors in the caller's class."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest import templating
from digest.errors import DeliveryError, OutputError, ServeError
from digest.serve import unsubscribe_page


def test_html_templates_escape_and_text_templates_do_not(tmp_path: Path) -> None:
    (tmp_path / "page.html.j2").write_text("<p>{{ value }}</p>", encoding="utf-8")
    (tmp_path / "mail.txt.j2").write_text("{{ value }}", encoding="utf-8")
    value = {"value": "<b>&</b>"}
    assert templating.render("page.html.j2", value, error=OutputError, templates_dir=tmp_path) == (
        "<p>&lt;b&gt;&amp;&lt;/b&gt;</p>"
    )
    assert templating.render("mail.txt.j2", value, error=OutputError, templates_dir=tmp_path) == (
        "<b>&</b>"
    )


@pytest.mark.parametrize("error", [OutputError, DeliveryError, ServeError])
def test_a_missing_template_raises_the_callers_error_naming_the_folder(
    tmp_path: Path, error: type[OutputError]
) -> None:
    with pytest.raises(error) as caught:
        templating.render("gone.html.j2", {}, error=error, templates_dir=tmp_path)
    assert str(caught.value) == (
        f"template gone.html.j2 not found in {tmp_path}; "
        "restore it from the repository's templates/"
    )


def test_a_broken_template_names_its_line_and_an_undefined_value_fails(tmp_path: Path) -> None:
    (tmp_path / "broken.html.j2").write_text("<p>\n{% if %}\n</p>", encoding="utf-8")
    (tmp_path / "strict.html.j2").write_text("{{ missing }}", encoding="utf-8")
    with pytest.raises(OutputError, match=r"^template broken\.html\.j2:2 failed: .*; fix the"):
        templating.render("broken.html.j2", {}, error=OutputError, templates_dir=tmp_path)
    with pytest.raises(OutputError, match="'missing' is undefined"):
        templating.render("strict.html.j2", {}, error=OutputError, templates_dir=tmp_path)


def test_the_unsubscribe_page_is_the_shipped_template_with_its_button_only_when_asked() -> None:
    asking = unsubscribe_page("Digest <&>", "Unsubscribe?", "Stop?", "unsubscribe?token=a&b")
    assert "<title>Unsubscribe? · Digest &lt;&amp;&gt;</title>" in asking
    assert '<form method="post" action="unsubscribe?token=a&amp;b">' in asking
    done = unsubscribe_page("Digest", "You are unsubscribed", "Done.")
    assert "<form" not in done and "<h1>You are unsubscribed</h1>" in done
