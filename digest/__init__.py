"""digest: scraped news in, a daily email and RSS/Atom feeds out."""

__version__ = "0.1.0"
