"""The digest email in a real browser: no sideways scrolling on a phone, legible in dark mode.

Headless Chromium will not make a window narrower than 500 px, so the email is shown in
iframes of the widths we care about (a phone's 375 px, the email's 600 px) and measured from
inside each one: its media queries and its scroll width are those of that width.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from digest.render import personalize, render_browser_page, render_email

from .factories import VALUES, make_look, many_articles
from .factories import email_article as make_article
from .factories import email_issue as make_issue

WIDTHS = (375, 600)
CHROMIUM = shutil.which("chromium")
LONG_WORD = "https://example.org/" + "averyveryverylongpathsegment" * 7  # 216 chars, no break
pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed"),
]

# Runs in the wrapper page once every frame has loaded; writes what it saw into <pre id=m>.
_MEASURE = """
function effectiveBackground(el) {
  for (; el; el = el.parentElement) {
    var bg = getComputedStyle(el).backgroundColor;
    if (!/rgba\\(.*, 0\\)$/.test(bg) && bg !== "transparent") return bg;
  }
  return "rgb(255, 255, 255)";
}
function colours(doc, selector) {
  return Array.from(doc.querySelectorAll(selector)).map(function (el) {
    return {color: getComputedStyle(el).color, background: effectiveBackground(el)};
  });
}
window.addEventListener("load", function () {
  var seen = Array.from(document.querySelectorAll("iframe")).map(function (frame) {
    var win = frame.contentWindow, doc = frame.contentDocument;
    return {
      width: win.innerWidth,
      scrollWidth: doc.documentElement.scrollWidth,
      dark: win.matchMedia("(prefers-color-scheme: dark)").matches,
      preheader: Array.from(doc.querySelectorAll(".preheader")).map(function (el) {
        var box = el.getBoundingClientRect();
        return {height: box.height, text: el.textContent.length};
      }),
      text: colours(doc, ".masthead, .issue-date, .a-title a, .a-meta, .a-sum, .f-line, .f-link")
    };
  });
  var pre = document.createElement("pre");
  pre.id = "m";
  pre.textContent = JSON.stringify(seen);
  document.body.appendChild(pre);
});
"""


def _measure(page: str, tmp_path: Path, *, dark: bool) -> list[dict[str, Any]]:
    """Load ``page`` at each width in headless Chromium and return what the script measured."""
    frames = "".join(
        f'<iframe width="{width}" height="800" style="border:0;display:block" '
        f'srcdoc="{html.escape(page, quote=True)}"></iframe>'
        for width in WIDTHS
    )
    wrapper = tmp_path / "wrapper.html"
    wrapper.write_text(
        f"<!doctype html><html><body style='margin:0'>{frames}<script>{_MEASURE}</script>"
        "</body></html>",
        encoding="utf-8",
    )
    assert CHROMIUM is not None
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=800,1000",
        "--virtual-time-budget=2000",
        *(["--force-dark-mode"] if dark else []),
        "--dump-dom",
        wrapper.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    found = re.search(r'<pre id="m">(.*?)</pre>', done.stdout, re.DOTALL)
    assert found, f"chromium printed no measurement (exit {done.returncode}): {done.stderr[-500:]}"
    seen: list[dict[str, Any]] = json.loads(html.unescape(found.group(1)))
    return seen


def _contrast(foreground: str, background: str) -> float:
    """WCAG contrast ratio of two computed ``rgb(...)`` colours."""

    def luminance(colour: str) -> float:
        channels = [int(c) / 255 for c in re.findall(r"\d+", colour)[:3]]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


@pytest.fixture(scope="module")
def email_page() -> str:
    """A full 25-article issue, one article titled with a long unbroken URL-like word."""
    articles = (make_article(id="long", title=LONG_WORD, url=LONG_WORD), *many_articles(24))
    page, _ = personalize(render_email(make_issue(*articles), make_look()), VALUES)
    return page


@pytest.fixture(scope="module", params=[False, True], ids=["light", "dark"])
def measured(
    request: pytest.FixtureRequest, email_page: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[bool, list[dict[str, Any]]]:
    """The email measured at every width, once in light mode and once in dark mode."""
    dark: bool = request.param
    return dark, _measure(email_page, tmp_path_factory.mktemp("chromium"), dark=dark)


def test_email_fits_phone_and_desktop_width(measured: tuple[bool, list[dict[str, Any]]]) -> None:
    _, seen = measured
    assert [frame["width"] for frame in seen] == list(WIDTHS)
    for frame in seen:
        assert frame["scrollWidth"] <= frame["width"], f"sideways scroll at {frame['width']} px"


def test_preheader_takes_no_room(measured: tuple[bool, list[dict[str, Any]]]) -> None:
    """The inbox preview line is in the email but shows nowhere in it, at every width."""
    _, seen = measured
    for frame in seen:
        (preheader,) = frame["preheader"]
        assert preheader["text"] > 0
        assert preheader["height"] == 0, f"preheader shows at {frame['width']} px"


def test_text_is_legible_in_light_and_dark_mode(
    measured: tuple[bool, list[dict[str, Any]]],
) -> None:
    dark, seen = measured
    for frame in seen:
        assert frame["dark"] is dark, "chromium did not apply the colour scheme asked for"
        assert len(frame["text"]) >= 3 * 25  # every article's title, meta and summary
        worst = min(_contrast(t["color"], t["background"]) for t in frame["text"])
        assert worst >= 4.5, f"contrast {worst:.2f} at {frame['width']} px"
        body = frame["text"][0]["background"]
        assert body == ("rgb(22, 27, 34)" if dark else "rgb(255, 255, 255)")


def test_browser_page_fits_a_phone(tmp_path: Path) -> None:
    page = render_browser_page(make_issue(make_article(title=LONG_WORD)), make_look())
    for frame in _measure(page, tmp_path, dark=False):
        assert frame["scrollWidth"] <= frame["width"]
