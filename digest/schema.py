"""The database schema, in one place: every table of the store, the subscribers and the ledgers.

Columns added after a table first shipped have a server default or are nullable:
``db.connect`` adds them to an older store (db._add_missing_columns).

Every bounded value has its limit here, once: a ``String(n)`` column's length, or for a text
column ``info={"max_chars": n}``, a sane cap on what one article may carry. ``store.fit``
fits an article to these limits before any INSERT (ingest builds every article through it).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

articles = Table(
    "articles",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("title", Text, nullable=False, info={"max_chars": 300}),
    Column("subtitle", Text, info={"max_chars": 600}),
    Column("author", Text, info={"max_chars": 200}),
    Column("source", Text, info={"max_chars": 200}),
    Column("url", Text, info={"max_chars": 2000}),
    Column("dateline", Text, info={"max_chars": 200}),
    Column("published_utc", DateTime, nullable=False, index=True),
    Column("utc_offset_min", Integer, nullable=False),
    Column("date_source", String(16), nullable=False),
    Column("body", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("origin", Text, nullable=False),
    Column("lead_key", String(16), nullable=False, index=True),
    Column("tail_key", String(16), nullable=False, index=True),
    Column("ingested_at", DateTime, nullable=False),
    Column("lang", String(35)),  # BCP 47 ("de", "pt-BR"); NULL when not known
)

article_tags = Table(
    "article_tags",
    metadata,
    Column(
        "article_id", String(16), ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("tag", String(80), primary_key=True),
    Index("ix_article_tags_tag", "tag"),
)

# Small facts about the store itself, e.g. which summarizer settings made the stored summaries.
store_meta = Table(
    "store_meta",
    metadata,
    Column("key", String(40), primary_key=True),
    Column("value", Text, nullable=False),
)

# Source files `digest send` has read, so each run ingests only new or changed files.
ingested_files = Table(
    "ingested_files",
    metadata,
    Column("path", Text, primary_key=True),  # any length a file system allows
    Column("size", BigInteger, nullable=False),
    Column("mtime_ns", BigInteger, nullable=False),
    Column("ingested_at", DateTime, nullable=False),
    # "failed": read and rejected, with why; it is read again only once it changes.
    Column("status", String(12), nullable=False, server_default="ok"),  # ok | failed
    Column("error", Text),
    # The folder the path is in (str of its parent) and its inode, as a listing of the
    # folder shows them: the daily pass tells new and replaced files by them (store.fresh).
    Column("folder", Text),
    Column("inode", BigInteger),
    Index("ix_ingested_files_folder", "folder"),
    Index("ix_ingested_files_at", "ingested_at"),
)

# Each source folder as last walked, by its mtime: one whose mtime is the same has had no
# file added, removed or renamed since, so the daily pass does not list its files again.
scanned_folders = Table(
    "scanned_folders",
    metadata,
    Column("path_key", String(16), primary_key=True),  # store._hash of the path: any length
    Column("mtime_ns", BigInteger, nullable=False),
)

# The cleaner's repetition evidence of each source (a site's folder of scraped pages), kept
# across runs so a page read alone on a day is judged against its site's earlier pages:
# kind 0 rows are line keys with the number of different stories that printed them, kind 1
# rows the fingerprints of the posts seen (stories 0). Bounded per source: keys unseen
# for store.EVIDENCE_DAYS go, and past store.EVIDENCE_KEYS the least seen, oldest go.
line_evidence = Table(
    "line_evidence",
    metadata,
    Column("source_key", String(16), primary_key=True),  # store._hash of the source's name
    Column("kind", Integer, primary_key=True, autoincrement=False),  # 0 line | 1 post
    Column("key", BigInteger, primary_key=True, autoincrement=False),  # segment.key
    Column("stories", Integer, nullable=False),
    Column("seen", DateTime, nullable=False),  # UTC; when a run last saw it
)

# Each source with evidence: its name in full (a path of any length), for an operator.
evidence_sources = Table(
    "evidence_sources",
    metadata,
    Column("source_key", String(16), primary_key=True),
    Column("name", Text, nullable=False),
    Column("updated_at", DateTime, nullable=False),  # UTC
)

subscribers = Table(
    "subscribers",
    metadata,
    Column("email", String(320), primary_key=True),  # stored normalised (lower-case domain)
    Column("name", Text),
    Column("tags", Text, nullable=False, default=""),  # sorted slugs, space-separated
    Column("created_at", DateTime, nullable=False),
    # Nobody is deleted: an unsubscribed or bounced address stays, as the suppression list
    # that no import or `subscribers add` overrides (only `add --resubscribe`).
    Column("status", String(12), nullable=False, server_default="active"),  # SUBSCRIBER_STATUSES
    Column("status_at", DateTime),  # UTC; when it last changed (unset: active since created_at)
    Column("status_via", String(16)),  # how: one-click, link-page, operator, mailto, bounce, …
    # deliver streams subscribers by (tags, email) in keyset pages: equal tag sets together.
    Index("ix_subscribers_tags_email", "tags", "email"),
)

# An issue of a digest is claimed once per (digest, date); its articles are frozen then,
# so a re-run after a crash sends the same content, and no article appears in two issues.
issues = Table(
    "issues",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("digest", String(40), nullable=False),
    Column("issue_date", Date, nullable=False),
    Column("window_start", DateTime, nullable=False),  # UTC
    Column("window_end", DateTime, nullable=False),  # UTC
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("digest", "issue_date", name="uq_issues_digest_date"),
)

issue_articles = Table(
    "issue_articles",
    metadata,
    Column("issue_id", Integer, ForeignKey("issues.id", ondelete="CASCADE"), primary_key=True),
    Column("article_id", String(16), primary_key=True),
    Column("position", Integer, nullable=False),
    Index("ix_issue_articles_article", "article_id"),
)

# The send ledger: one row per (issue, subscriber), written 'pending' when a send enrols the
# issue's audience, claimed in batches by a sender (one row is one sender's at a time: its
# name and lease in claimed_by and lease_until) before hand-off to SMTP, and marked after,
# so a re-run skips who got the issue and finishes who did not, and several workers share
# one issue (deliver.Ledger).
sends = Table(
    "sends",
    metadata,
    Column("issue_id", Integer, ForeignKey("issues.id", ondelete="CASCADE"), primary_key=True),
    Column("email", String(320), primary_key=True),
    Column("status", String(12), nullable=False),  # pending | claimed | sent | deferred | failed
    # failed: refused for good (5xx), with the reply in error; only --retry-failed retries.
    Column("attempts", Integer, nullable=False, default=0),
    Column("error", Text),
    Column("updated_at", DateTime, nullable=False),
    Column("tags", Text),  # the subscriber's, when enrolled: claims go in (tags, email) order
    Column("claimed_by", String(160)),  # the sender that claimed it last (deliver.sender_name)
    Column("lease_until", DateTime),  # UTC, the database's clock; a claim past it is over
    Index("ix_sends_queue", "issue_id", "status", "tags", "email"),
)

# The scheduler's run ledger: one row per (digest, issue date), claimed before a scheduled or
# `--once` run sends, so two schedulers, an overlap or a doubled DST hour run an issue once.
issue_runs = Table(
    "issue_runs",
    metadata,
    Column("digest", String(40), nullable=False),
    Column("issue_date", Date, nullable=False),
    Column("started_at", DateTime, nullable=False),  # UTC
    Column("finished_at", DateTime),  # UTC; unset while running
    Column("status", String(12), nullable=False),  # running | done | failed
    UniqueConstraint("digest", "issue_date", name="uq_issue_runs_digest_date"),
)

# Each source polled by URL (sources.Source), keyed by the URL the config gives it, and how
# its last polls went: the validators of a conditional GET, the failures in a row and when
# it may be polled again (backoff, Retry-After), where a permanent redirect moved it. Written
# by sources.save_states after each poll; what `digest sources` shows.
source_state = Table(
    "source_state",
    metadata,
    Column("url", Text, primary_key=True),  # as configured; any length a URL has
    Column("moved_to", Text),  # the target of a permanent redirect (301, 308): polled instead
    Column("etag", Text),  # the last 200's ETag, sent back as If-None-Match
    Column("last_modified", String(64)),  # its Last-Modified, sent back as If-Modified-Since
    Column("last_fetch", DateTime),  # UTC; the last request, whatever came of it
    Column("last_ok", DateTime),  # UTC; the last 200 or 304
    Column("last_status", Integer),  # HTTP status of the last reply; NULL: none (timeout …)
    Column("errors_in_a_row", Integer, nullable=False, server_default="0"),
    Column("next_poll", DateTime),  # UTC; not polled before (backoff, Retry-After); NULL: any
    Column("last_error", Text),  # one line: what went wrong last, while errors_in_a_row > 0
    Column("new_articles", Integer, nullable=False, server_default="0"),  # of the last poll
)
