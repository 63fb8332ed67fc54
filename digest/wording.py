"""How counts are written for people: "1 article", "3 articles", "2 stories". Imports
nothing, so a command that prints a count does not load the renderer to say it."""

from __future__ import annotations


def counted(n: int, noun: str, nouns: str | None = None) -> str:
    """``1 article``, ``3 articles``; ``nouns`` where the plural is not noun + "s"."""
    return f"{n} {noun}" if n == 1 else f"{n} {nouns or noun + 's'}"
