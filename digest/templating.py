"""The template layer: one Jinja environment for the email, the web pages and the
unsubscribe page, and one way a template's failure reaches the operator.

Article text is untrusted (it was scraped), so every template runs with StrictUndefined and
autoescape on (off only for ``*.txt.j2``, the plain-text email). Templates live in
``templates/`` beside the package, where operators edit them; a wheel carries them as
``digest/templates``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from digest.errors import DigestError


def _shipped_templates() -> Path:
    """The copy a wheel installs as digest/templates, else templates/ beside the package
    (a source checkout)."""
    package = Path(__file__).resolve().parent
    installed = package / "templates"
    return installed if installed.is_dir() else package.parent / "templates"


TEMPLATES_DIR = _shipped_templates()
TEXT_WIDTH = 72  # of the plain-text email's lines


def render(
    name: str,
    context: Mapping[str, Any],
    *,
    error: type[DigestError],
    templates_dir: Path | None = None,
) -> str:
    """Template ``name`` filled with ``context``; a missing or broken template raises
    ``error`` (the caller's stage: a mail or a page) naming the file and what to do."""
    env = environment(templates_dir or TEMPLATES_DIR)
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateNotFound as exc:
        raise error(
            f"template {name} not found in {templates_dir or TEMPLATES_DIR}; "
            "restore it from the repository's templates/"
        ) from exc
    except jinja2.TemplateError as exc:
        where = f"{name}:{exc.lineno}" if isinstance(exc, jinja2.TemplateSyntaxError) else name
        raise error(f"template {where} failed: {exc}; fix the template") from exc


@lru_cache(maxsize=8)
def environment(templates_dir: Path) -> jinja2.Environment:
    """The environment on ``templates_dir`` (one per folder, made once)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("mjml.j2", "html.j2"),
            disabled_extensions=("txt.j2",),
            default_for_string=True,
            default=True,
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["wrap"] = wrap
    return env


def wrap(text: str, width: int = TEXT_WIDTH) -> str:
    """Fill at ``width`` without splitting words or hyphens (tokens and URLs contain '-')."""
    return textwrap.fill(text, width, break_long_words=False, break_on_hyphens=False)
