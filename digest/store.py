"""The article store: stories saved, folded with their copies, queried by window and tag.

Also which source files were read (``ingested_files``) and the summaries' cache key. The
database plumbing under it (engines, errors, instants) is ``digest.db``.

Two items are one story only when their distinctive text matches (``same_story``): the
body keys (first and last 40 words) and the id only find candidates, and the whole bodies
decide. A batch is written in one transaction; one the database refuses is halved and
written again, down to the article it cannot hold, which is refused alone
(``SaveReport.refused``).
"""

from __future__ import annotations

import hashlib
import heapq
import importlib
import itertools
import operator
import re
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    RowMapping,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError, StatementError

from digest.db import reason, utc_naive
from digest.errors import StoreError
from digest.lines import words  # casefold()ed already or not: casefold is idempotent
from digest.models import DATE_SOURCE_RANK, Article, Evidence
from digest.multimap import Multimap, code, hex_name
from digest.runtime import no_cyclic_gc
from digest.schema import (
    article_tags,
    articles,
    evidence_sources,
    ingested_files,
    issue_articles,
    line_evidence,
    scanned_folders,
    store_meta,
)

_SUMMARY_KEY = "summary_key"
_CHUNK = 400
_REFRESH_PAGE = 1_000  # articles read at once when summaries are made again
_KEY_WORDS = 40
_KEY_SPAN = 1200  # characters read from each end of a body: ample for 40 words
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # NUL (PostgreSQL text), lone surrogates
_SURROGATE = re.compile("[\ud800-\udfff]")

# When two bodies are one story (same_story), measured on 4-word shingles (sets of every run
# of 4 words, case and punctuation aside): copies share nearly all of them, while pages that
# merely end alike (a sign-off, a newsletter footer) or one template with another product
# share a part. Checked on 1,381 distinct real pages (bench/bench_folds.py).
_SHINGLE_WORDS = 4
_SAME_TEXT = 0.8  # resemblance (shared / all shingles of the two) of two copies of one text
_DISTINCT = 100  # shared shingles that make a text distinctive without the title's help
_CONTAINED = 0.9  # same title and lead: share of the shorter body found in the longer (an excerpt)
# A body key more stories share than this is boilerplate (a site's footer, a template's
# head): no evidence of a copy, and comparing each new item with all of them would be
# quadratic.
_CANDIDATES = 8
_CACHED = 2_000  # shingle sets kept while one batch is saved
# The cleaner's evidence of one source (line_evidence) is bounded: a key no run has seen for
# this long goes (a site's old layout), and past this many keys the least seen, oldest go.
# A page adds about a hundred keys, most of them its own story's lines, seen once.
EVIDENCE_DAYS = 180
EVIDENCE_KEYS = 50_000
_LINE, _POST = 0, 1  # line_evidence.kind
_EVIDENCE_PK = ["source_key", "kind", "key"]


def _limit(column: Column[Any]) -> int | None:
    length = getattr(column.type, "length", None)
    return int(length) if length is not None else column.info.get("max_chars")


_LIMITS = {c.name: n for c in articles.columns if (n := _limit(c)) is not None}
TAG_CHARS = _limit(article_tags.c.tag) or 80  # the longest tag the store holds
_TEXTS = ("title", "subtitle", "author", "source", "dateline")  # cut to their cap at a word


@dataclass(frozen=True, slots=True)
class Refused:
    """An article the database refused, by its origin (file, and #N within it), and why."""

    origin: str
    reason: str


@dataclass(frozen=True, slots=True)
class SaveReport:
    """What one save did: new rows, rows changed, copies folded into a stored story, and the
    articles the database refused (each alone: the rest of the batch is stored)."""

    inserted: int
    updated: int
    unchanged: int
    duplicates: int
    refused: tuple[Refused, ...] = ()


def body_keys(paragraphs: Sequence[str]) -> tuple[str, str]:
    """Fingerprints of a body's first and last words: the same story under any chrome."""
    text = " ".join(paragraphs).casefold()
    head = words(text[:_KEY_SPAN])
    tail = words(text[-_KEY_SPAN:])
    if len(text) > _KEY_SPAN:
        # The spans may cut a word in two: drop the pieces unless the words run short.
        head, tail = head[:-1] or head, tail[1:] or tail
        if len(head) < _KEY_WORDS or len(tail) < _KEY_WORDS:
            head = tail = words(text)
    return _hash(" ".join(head[:_KEY_WORDS])), _hash(" ".join(tail[-_KEY_WORDS:]))


def article_id(title: str, lead_key: str) -> str:
    """A stable id for a story: the same title over the same lead always gets the same id."""
    return _hash(title.casefold().strip() + "\n" + lead_key)


def fit(article: Article) -> Article:
    """``article`` with every value fitted to its column (``schema``'s limits): texts cut at a
    word with "…", a URL too long to be one dropped, tags longer than the column dropped, and
    no character the database cannot hold (NUL, lone surrogates). Ingest builds every article
    through it and ``save`` fits again, so no value reaches an INSERT too long for its column.
    """
    changes: dict[str, Any] = {}
    for name in _TEXTS:
        value = getattr(article, name)
        if value is not None and (fitted := _cut(_storable(value), _LIMITS[name])) != value:
            changes[name] = fitted
    if article.url is not None and (
        len(article.url) > _LIMITS["url"] or not _is_storable(article.url)
    ):
        changes["url"] = None
    for name in ("summary", "origin"):
        if not _is_storable(value := getattr(article, name)):
            changes[name] = _storable(value)
    if not all(map(_is_storable, article.paragraphs)):
        changes["paragraphs"] = tuple(_storable(p) for p in article.paragraphs)
    if not all(t and len(t) <= TAG_CHARS and _is_storable(t) for t in article.tags):
        tags = (_storable(t) for t in article.tags)
        changes["tags"] = frozenset(t for t in tags if t and len(t) <= TAG_CHARS)
    if len(article.id) > _LIMITS["id"]:  # ids are made to fit (article_id); any other, hashed
        changes["id"] = _hash(article.id)
    return replace(article, **changes) if changes else article


def same_story(a: Article, b: Article, *, cache: dict[str, frozenset[int]] | None = None) -> bool:
    """Whether two items are copies of one story: their distinctive text matches.

    Nearly the same words (resemblance of their 4-word shingles) and enough of them to be
    distinctive, or else the same title; or the same title and lead with one body inside the
    other (a feed's excerpt of a page). Bodies that merely end or begin alike never are.
    ``cache`` keeps the bodies' shingles between calls.
    """
    same_title = _title_words(a.title) == _title_words(b.title)
    if same_title and a.body == b.body:  # the same file read again, the commonest case
        return True
    cache = {} if cache is None else cache
    one, two = _shingles(a.body, cache), _shingles(b.body, cache)
    if not one or not two:
        return same_title and one == two
    shared = len(one & two)
    if shared / (len(one) + len(two) - shared) >= _SAME_TEXT:
        return same_title or shared >= _DISTINCT
    same_lead = a.keys[:1] == b.keys[:1]
    return same_title and same_lead and shared / min(len(one), len(two)) >= _CONTAINED


class Written:
    """What the earlier chunks of one batch stored, so that ``save`` of its next chunk folds
    a copy of one of their stories into it, just as if the whole batch were saved at once.

    Held for the whole batch, so compact (``multimap``): each story's id a slot, its keys
    64-bit codes in arrays, about 0.2 KB a story where dicts of strings cost 0.75 KB."""

    __slots__ = ("_codes", "_counted", "_keys", "_odd", "_slots")

    def __init__(self) -> None:
        self._keys = Multimap()  # id, lead and tail keys' codes → slots, as save added them
        self._slots = Multimap()  # an id's code → the slots of the ids of that code
        self._codes = array("Q")  # slot → its id's code
        self._odd: dict[int, str] = {}  # slot → its id, when that is no 16-hex-digit hash
        self._counted = bytearray()  # slot → _INSERTED, _UPDATED, _UNCHANGED or _NOT_STORED

    def holders(self, key: str, limit: int | None = None) -> list[str]:
        """The ids added under ``key``, oldest first (repeats kept), at most ``limit``."""
        return [self._id(slot) for slot in self._keys.get(code(key), limit)]

    def add(self, key: str, id_: str) -> None:
        """``id_`` under ``key``, after the ids already there."""
        self._keys.add(code(key), self._slot(id_))

    def counted(self, id_: str) -> int | None:
        """How the batch counted ``id_`` when it stored it; None when it did not store it."""
        slot = self._find(id_)
        if slot is None or self._counted[slot] == _NOT_STORED:
            return None
        return self._counted[slot]

    def count(self, id_: str, counted: int) -> None:
        """``id_`` stored, and counted as ``counted``."""
        self._counted[self._slot(id_)] = counted

    def _id(self, slot: int) -> str:
        return self._odd[slot] if slot in self._odd else hex_name(self._codes[slot])

    def _find(self, id_: str) -> int | None:
        return next((s for s in self._slots.get(code(id_)) if self._id(s) == id_), None)

    def _slot(self, id_: str) -> int:
        slot = self._find(id_)
        if slot is None:
            slot = len(self._counted)
            self._codes.append(number := code(id_))
            if hex_name(number) != id_:
                self._odd[slot] = id_
            self._counted.append(_NOT_STORED)
            self._slots.add(number, slot)
        return slot


_INSERTED, _UPDATED, _UNCHANGED, _NOT_STORED = 0, 1, 2, 3


def save(
    engine: Engine, batch: Iterable[Article], *, now: datetime, written: Written | None = None
) -> SaveReport:
    """Insert new stories; fold re-ingested and syndicated copies into the stored one.

    An article the database refuses (a constraint, a value it cannot hold) is refused alone
    and named in the report; a store that cannot be written at all raises StoreError. A
    batch saved in chunks passes one ``written`` to the save of each: a copy of a story an
    earlier chunk stored is then a duplicate folded into it, as in one save.
    """
    written = Written() if written is None else written
    cache: dict[str, frozenset[int]] = {}
    merged: dict[str, Article] = {}
    origins: dict[str, list[str]] = {}  # merged id → the origins folded into it
    by_key: dict[str, tuple[str, ...]] = {}  # this save's: id, lead and tail keys → ids
    earlier: dict[str, Article] = {}  # stories of earlier chunks this one folds into
    duplicates = 0
    try:
        for article in map(fit, batch):
            keys = (article.id, *article.keys)
            found = dict.fromkeys(
                m
                for k in keys
                if len(holders := _holders(k, by_key, written, k == article.id)) <= _CANDIDATES
                or k == article.id
                for m in holders
                if m in merged or written.counted(m) is not None
            )
            _load_earlier(engine, [m for m in found if m not in merged], earlier)
            known = next(
                (m for m in found if same_story(merged.get(m) or earlier[m], article, cache=cache)),
                None,
            )
            if known is not None:
                duplicates += 1
                if known in merged:
                    sources = [*origins.pop(known), article.origin]
                    article = merge(merged.pop(known), article)
                else:
                    sources = [article.origin]
                    article = merge(earlier[known], article)
            else:
                sources = [article.origin]
                if article.id in merged or written.counted(article.id) is not None:
                    # one title and lead over another story
                    article = replace(article, id=_other_id(article))
            merged[article.id] = article
            origins[article.id] = sources
            for key in (article.id, *keys, *article.keys):
                by_key[key] = (*by_key.get(key, ()), article.id)
    finally:
        for key, ids in by_key.items():
            for id_ in ids:
                written.add(key, id_)
    counts = [0, 0, 0]
    refused: list[Refused] = []
    # One transaction, as fast as ever; when the database refuses a value in it, each half
    # again, down to the article it refuses: a few more transactions per refused article.
    parts = [list(merged.values())]
    while parts:
        part = parts.pop()
        if not part or (failure := _refused(engine, part, now, counts, cache, written)) is None:
            continue
        if len(part) > 1:
            parts += [part[len(part) // 2 :], part[: len(part) // 2]]
            continue
        why = f"cannot write to the database: {reason(failure)}"
        refused.extend(Refused(origin, why) for origin in origins[part[0].id])
    inserted, updated, unchanged = counts
    return SaveReport(inserted, updated, unchanged, duplicates, tuple(refused))


def _holders(
    key: str, by_key: Mapping[str, tuple[str, ...]], written: Written, whole: bool
) -> list[str]:
    """The ids under ``key``, earlier chunks' first; past the cap, only enough to tell."""
    before = written.holders(key, None if whole else _CANDIDATES + 1)
    return [*before, *by_key.get(key, ())]


def _load_earlier(engine: Engine, ids: Sequence[str], into: dict[str, Article]) -> None:
    """The stored articles of ``ids`` (stored by an earlier chunk), into ``into``."""
    wanted = [id_ for id_ in ids if id_ not in into]
    if not wanted:
        return
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(articles).where(articles.c.id.in_(wanted))).mappings().all()
            tags = _tags_of(conn, [row["id"] for row in rows])
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the database: {reason(exc)}") from exc
    for row in rows:
        into[row["id"]] = _article(row, tags.get(row["id"], frozenset()))


def _refused(
    engine: Engine,
    batch: Sequence[Article],
    now: datetime,
    counts: list[int],
    cache: dict[str, frozenset[int]],
    written: Written,
) -> SQLAlchemyError | None:
    """``_write``; the error when the database refused a value in it (nothing was written)."""
    try:
        _write(engine, batch, now, counts, cache, written)
    except SQLAlchemyError as exc:
        if not _refusal(exc):
            raise StoreError(f"cannot write to the database: {reason(exc)}") from exc
        return exc
    return None


def _write(
    engine: Engine,
    batch: Sequence[Article],
    now: datetime,
    counts: list[int],
    cache: dict[str, frozenset[int]],
    written: Written,
) -> None:
    """Store ``batch`` in one transaction, a chunk of statements at a time: each article
    inserted, or folded into its stored copy; ``counts`` (inserted, updated, unchanged) and
    ``written`` grow only once it is committed."""
    done = [0, 0, 0]
    stored: dict[str, int] = {}
    with engine.begin() as conn:
        for start in range(0, len(batch), _CHUNK):
            _write_chunk(conn, batch[start : start + _CHUNK], now, done, cache, stored)
    for id_, counted in stored.items():
        first = written.counted(id_)
        if first is None:
            written.count(id_, counted)
        elif first == _UNCHANGED and counted == _UPDATED:  # a later copy changed it after all
            done[_UNCHANGED] -= 1
            written.count(id_, _UPDATED)
        else:  # a story an earlier chunk stored, counted there once
            done[counted] -= 1
    for n, value in enumerate(done):
        counts[n] += value


def _write_chunk(
    conn: Connection,
    chunk: Sequence[Article],
    now: datetime,
    done: list[int],
    cache: dict[str, frozenset[int]],
    stored_ids: dict[str, int],
) -> None:
    stored = _stored_matches(conn, chunk)
    new_rows: list[dict[str, object]] = []
    new_tags: list[dict[str, str]] = []
    for article in chunk:
        keys = (article.id, *article.keys)  # a second story of one title and lead: its lead
        found = dict.fromkeys(c for k in keys for c in stored.get(k, ()))
        old = next((c for c in found if same_story(c, article, cache=cache)), None)
        if old is None:
            if any(c.id == article.id for c in found):  # the same title and lead, not a copy
                article = replace(article, id=_other_id(article))
            new_rows.append(_row(article, now))
            new_tags.extend({"article_id": article.id, "tag": t} for t in article.tags)
            done[_INSERTED] += 1
            stored_ids[article.id] = _INSERTED
            continue
        combined = merge(old, article)
        if combined == old and combined.summary == old.summary:
            done[_UNCHANGED] += 1
            stored_ids[old.id] = _UNCHANGED
            continue
        row = _row(combined, now)
        del row["ingested_at"]
        conn.execute(update(articles).where(articles.c.id == old.id).values(row))
        conn.execute(delete(article_tags).where(article_tags.c.article_id == old.id))
        new_tags.extend({"article_id": old.id, "tag": t} for t in combined.tags)
        done[_UPDATED] += 1
        stored_ids[old.id] = _UPDATED
    if new_rows:
        conn.execute(insert(articles), new_rows)
    if new_tags:
        conn.execute(insert(article_tags), new_tags)


def _refusal(exc: SQLAlchemyError) -> bool:
    """Whether the database refused a value (so one article, not the store, is at fault):
    a constraint or a value it cannot hold, or one the driver could not send."""
    return isinstance(exc, (DataError, IntegrityError)) or (
        isinstance(exc, StatementError) and not isinstance(exc, DBAPIError)
    )


def merge(old: Article, new: Article) -> Article:
    """One story from two copies: the richer copy's text and metadata, gaps filled from the other.

    The stored id never changes, so links and feed ids stay stable.
    """
    rich, poor = (new, old) if _richness(new) > _richness(old) else (old, new)
    dated = min((rich, poor), key=lambda a: DATE_SOURCE_RANK[a.date_source])
    return replace(
        rich,
        id=old.id,
        published=dated.published,
        date_source=dated.date_source,
        tags=rich.tags | poor.tags,
        subtitle=rich.subtitle or poor.subtitle,
        author=rich.author or poor.author,
        source=rich.source or poor.source,
        url=rich.url or poor.url,
        dateline=rich.dateline or poor.dateline,
        keys=old.keys,
        lang=rich.lang or poor.lang,
    )


def query(
    engine: Engine,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    tags: Sequence[str] = (),
    ids: Sequence[str] | None = None,
    limit: int | None = None,
) -> list[Article]:
    """Stored articles published in [start, end), with any of ``tags``, newest first."""
    stmt = select(articles).order_by(articles.c.published_utc.desc(), articles.c.id)
    if ids is not None:
        stmt = stmt.where(articles.c.id.in_(list(ids)))
    if start is not None:
        stmt = stmt.where(articles.c.published_utc >= utc_naive(start))
    if end is not None:
        stmt = stmt.where(articles.c.published_utc < utc_naive(end))
    if tags:
        tagged = select(article_tags.c.article_id).where(article_tags.c.tag.in_(list(tags)))
        stmt = stmt.where(articles.c.id.in_(tagged))
    if limit is not None:
        stmt = stmt.limit(limit)
    try:
        with engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
            tag_map = _tags_of(conn, [row["id"] for row in rows])
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the database: {reason(exc)}") from exc
    return [_article(row, tag_map.get(row["id"], frozenset())) for row in rows]


def refresh_summaries(engine: Engine, key: str, summarize: Callable[[Article], str]) -> int:
    """Recompute every stored summary unless they were made under ``key``; how many changed.

    ``key`` names the summarizer and its settings, so changing either refreshes the store.
    The articles are read a page at a time by id, and the changed summaries of each page
    written in one statement, all in one transaction (a failure leaves the old ones).
    """
    changed = 0
    stmt = update(articles).where(articles.c.id == bindparam("i")).values(summary=bindparam("s"))
    try:
        with engine.begin() as conn:
            stored = conn.execute(
                select(store_meta.c.value).where(store_meta.c.key == _SUMMARY_KEY)
            ).scalar_one_or_none()
            if stored == key:
                return 0
            page = select(articles.c.id, articles.c.title, articles.c.body, articles.c.summary)
            last = None
            while True:
                after = page if last is None else page.where(articles.c.id > last)
                rows = conn.execute(after.order_by(articles.c.id).limit(_REFRESH_PAGE)).all()
                if not rows:
                    break
                last = rows[-1].id
                new = [
                    {"i": id_, "s": summary}
                    for id_, title, body, old in rows
                    if (summary := summarize(_summary_source(id_, title, body))) != old
                ]
                if new:
                    conn.execute(stmt, new)
                changed += len(new)
            conn.execute(delete(store_meta).where(store_meta.c.key == _SUMMARY_KEY))
            conn.execute(insert(store_meta).values(key=_SUMMARY_KEY, value=key))
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot write to the database: {reason(exc)}") from exc
    return changed


def known_tags(engine: Engine, tags: Iterable[str]) -> set[str]:
    """Which of ``tags`` some stored article has."""
    wanted = sorted(set(tags))
    if not wanted:
        return set()
    try:
        with engine.connect() as conn:
            found = conn.execute(
                select(article_tags.c.tag).where(article_tags.c.tag.in_(wanted)).distinct()
            ).scalars()
            return set(found)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the database: {reason(exc)}") from exc


def stored_urls(engine: Engine, urls: Iterable[str]) -> set[str]:
    """Which of ``urls`` a stored article links to (a full-text page not to fetch again)."""
    wanted = sorted(set(urls))
    found: set[str] = set()
    try:
        with engine.connect() as conn:
            for start in range(0, len(wanted), 500):  # within any database's bound parameters
                chunk = wanted[start : start + 500]
                query = select(articles.c.url).where(articles.c.url.in_(chunk)).distinct()
                found.update(conn.execute(query).scalars())
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the database: {reason(exc)}") from exc
    return found


def unsent_since(
    engine: Engine, since: datetime, *, besides: datetime | None = None
) -> Iterator[Article]:
    """The articles ingested since ``since`` that no issue has carried yet (which a later
    run may still clean better: ``revise``), by id, read ``_CHUNK`` at a time: a batch just
    stored is all of them, and is not held at once. ``besides``: not those first stored at
    that moment (a run's own batch, stored at its ``now``)."""
    earlier = true() if besides is None else articles.c.ingested_at != utc_naive(besides)
    carried = select(issue_articles.c.article_id).where(
        issue_articles.c.article_id == articles.c.id
    )
    after = ""
    while True:
        try:
            with engine.connect() as conn:
                rows = (
                    conn.execute(
                        select(articles)
                        .where(
                            articles.c.ingested_at >= utc_naive(since),
                            earlier,
                            ~carried.exists(),
                            articles.c.id > after,
                        )
                        .order_by(articles.c.id)
                        .limit(_CHUNK)
                    )
                    .mappings()
                    .all()
                )
                tags = _tags_of(conn, [r["id"] for r in rows])
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot read the database: {reason(exc)}") from exc
        yield from (_article(r, tags.get(r["id"], frozenset())) for r in rows)
        if len(rows) < _CHUNK:
            return
        after = rows[-1]["id"]


def revise(engine: Engine, changes: Mapping[str, Article | None], *, now: datetime) -> int:
    """Put each stored article (by id) as cleaned again: its new text under the same id, so
    links and feed ids stay, or gone (None: the page holds no such article after all); an
    article an issue has carried meanwhile is left as it was. How many changed."""
    changed = 0
    carried = select(issue_articles.c.article_id).where(
        issue_articles.c.article_id == articles.c.id
    )
    try:
        with engine.begin() as conn:
            for id_, article in changes.items():
                mine = (articles.c.id == id_, ~carried.exists())
                if article is None:
                    result = conn.execute(delete(articles).where(*mine))
                    if result.rowcount:
                        conn.execute(delete(article_tags).where(article_tags.c.article_id == id_))
                    changed += result.rowcount
                    continue
                row = _row(replace(fit(article), id=id_), now)
                del row["ingested_at"]
                result = conn.execute(update(articles).where(*mine).values(row))
                if result.rowcount:
                    conn.execute(delete(article_tags).where(article_tags.c.article_id == id_))
                    tags = [{"article_id": id_, "tag": t} for t in fit(article).tags]
                    if tags:
                        conn.execute(insert(article_tags), tags)
                changed += result.rowcount
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot write to the database: {reason(exc)}") from exc
    return changed


def load_evidence(engine: Engine, sources: Iterable[str]) -> dict[str, Evidence]:
    """What earlier runs saw of each of ``sources`` (those with no evidence are left out)."""
    found: dict[str, Evidence] = {}
    try:
        with engine.connect() as conn:
            for source in dict.fromkeys(sources):
                rows = conn.execute(
                    select(
                        line_evidence.c.kind, line_evidence.c.key, line_evidence.c.stories
                    ).where(line_evidence.c.source_key == _hash(source))
                ).all()
                if rows:
                    lines = {key: n for kind, key, n in rows if kind == _LINE}
                    posts = frozenset(key for kind, key, _ in rows if kind == _POST)
                    found[source] = Evidence(lines, posts)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the database: {reason(exc)}") from exc
    return found


def add_evidence(engine: Engine, added: Mapping[str, Evidence], *, now: datetime) -> None:
    """Add what a batch saw to each source's evidence (``Cleaning.learned``): each line's
    count of stories grows by what it added, each key and post seen is stamped ``now``, and
    the evidence is kept to its bounds (``EVIDENCE_DAYS``, ``EVIDENCE_KEYS``)."""
    seen = utc_naive(now)
    try:
        with engine.begin() as conn, no_cyclic_gc():  # a row a line: see runtime
            upsert = _upsert(conn)
            stamp = _bound_value(conn, line_evidence.c.seen, seen)
            for source, evidence in added.items():
                source_key = _hash(source)
                mine = line_evidence.c.source_key == source_key
                first = conn.execute(select(line_evidence.c.kind).where(mine).limit(1)).first()
                kept = _kept_first(evidence) if first is None else _everything
                rows: Iterator[tuple[Any, ...]] = itertools.chain(
                    (
                        (source_key, _LINE, k, n, stamp)
                        for k, n in evidence.lines.items()
                        if kept(n, _LINE, k)
                    ),
                    ((source_key, _POST, k, 0, stamp) for k in evidence.posts if kept(0, _POST, k)),
                )
                # a first batch: bounded here, not inserted to be deleted
                statement = upsert if first is not None else insert(line_evidence)
                while chunk := list(itertools.islice(rows, _EVIDENCE_CHUNK)):  # a chunk at a time
                    _driver_many(conn, statement, _EVIDENCE_COLUMNS, chunk)
                conn.execute(
                    delete(evidence_sources).where(evidence_sources.c.source_key == source_key)
                )
                conn.execute(
                    insert(evidence_sources).values(
                        source_key=source_key, name=source, updated_at=seen
                    )
                )
                if first is not None:  # a first batch's rows are bounded already
                    cutoff = seen - timedelta(days=EVIDENCE_DAYS)
                    _bound_evidence(conn, source_key, cutoff)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot write to the database: {reason(exc)}") from exc


_EVIDENCE_COLUMNS = ("source_key", "kind", "key", "stories", "seen")
# The order in which a source's evidence past EVIDENCE_KEYS goes, first to last: the fewest
# stories, seen longest ago, then (a tie) lines before posts and by key, so that which keys
# are kept never depends on the database.
_EVIDENCE_DOOM = tuple(line_evidence.c[name] for name in ("stories", "seen", "kind", "key"))


def _everything(stories: int, kind: int, key: int) -> bool:
    return True


def _kept_first(evidence: Evidence) -> Callable[[int, int, int], bool]:
    """Which of a first batch's evidence rows (stories, kind, key) ``_bound_evidence`` would
    keep of ``EVIDENCE_KEYS``: its rows all share one ``seen``, so the doom order is by
    stories, then kind, then key. Found from a count of each number of stories and, among the
    rows at the number where the bound falls, the least key that stays (their keys sorted:
    8 bytes a key, and a sort in C); no row is held."""
    lines, posts = evidence.lines, evidence.posts
    if len(lines) + len(posts) <= EVIDENCE_KEYS:
        return _everything
    counts = Counter(lines.values())
    counts[0] += len(posts)
    room, edge = EVIDENCE_KEYS, 0
    for stories in sorted(counts, reverse=True):  # the most stories stay first
        if counts[stories] >= room:
            edge = stories
            break
        room -= counts[stories]
    # At the edge, posts (the later kind) stay before lines; then the larger keys.
    post_room = len(posts) if edge == 0 else 0
    post_keys = heapq.nlargest(min(room, post_room), posts)
    room -= len(post_keys)
    at_edge = sorted(key for key, n in lines.items() if n == edge) if room > 0 else []
    least_post = post_keys[-1] if len(post_keys) < post_room else None
    least_line = at_edge[-room] if at_edge else None  # room > 0: the keys at the edge fill it

    def kept(stories: int, kind: int, key: int) -> bool:
        if stories != edge:
            return stories > edge
        if kind == _POST:
            return least_post is None or key >= least_post
        return least_line is not None and key >= least_line

    return kept


_EVIDENCE_CHUNK = 10_000  # evidence rows handed to the driver at once


def _upsert(conn: Connection) -> Any:
    """INSERT into line_evidence that, for a key already there, adds to its stories."""
    # Imported here, the one needed: a SQLite store's process need not load PostgreSQL's
    # dialect (20 ms of its start).
    dialect = "postgresql" if conn.dialect.name == "postgresql" else "sqlite"
    stmt = importlib.import_module(f"sqlalchemy.dialects.{dialect}").insert(line_evidence)
    return stmt.on_conflict_do_update(
        index_elements=_EVIDENCE_PK,
        set_={
            "stories": line_evidence.c.stories + stmt.excluded.stories,
            "seen": stmt.excluded.seen,
        },
    )


def _driver_many(
    conn: Connection, statement: Any, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """``statement`` once for each of ``rows`` (values of its ``columns``, in that order),
    the rows handed to the driver as they are.

    A batch's evidence is a row for each distinct line of its pages (a hundred thousand
    for a thousand pages): SQLAlchemy's processing of each row's parameters would cost more
    than the database's work. The values are plain ints and strings; one that needs
    processing (a timestamp) comes processed (``_bound_value``).
    """
    if not rows:
        return
    compiled = statement.compile(dialect=conn.dialect)
    fixed = {name: value for name, value in compiled.params.items() if name not in columns}
    every, extra = (*columns, *fixed), tuple(fixed.values())
    names = compiled.positiontup
    if names is None:  # named parameters (psycopg)
        conn.exec_driver_sql(
            str(compiled), [dict(zip(every, row + extra, strict=True)) for row in rows]
        )
        return
    if tuple(names) == tuple(columns):  # the rows are the parameters already
        conn.exec_driver_sql(str(compiled), list(rows))
        return
    pick = operator.itemgetter(*(every.index(name) for name in names))
    conn.exec_driver_sql(str(compiled), [pick(row + extra) for row in rows])


def _bound_value(conn: Connection, column: Any, value: Any) -> Any:
    """``value`` for ``column`` as SQLAlchemy would hand it to the driver."""
    process = column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return process(value) if process is not None else value


def _bound_evidence(conn: Connection, source_key: str, cutoff: datetime) -> None:
    """Keys of one source with evidence from before this batch unseen since ``cutoff`` go
    (the batch's own were all seen now); then, past ``EVIDENCE_KEYS``, those first in
    ``_EVIDENCE_DOOM``."""
    mine = line_evidence.c.source_key == source_key
    conn.execute(delete(line_evidence).where(mine, line_evidence.c.seen < cutoff))
    count = conn.execute(select(func.count()).select_from(line_evidence).where(mine)).scalar_one()
    if count <= EVIDENCE_KEYS:
        return
    doomed = (
        select(line_evidence.c.kind, line_evidence.c.key)
        .where(mine)
        .order_by(*_EVIDENCE_DOOM)
        .limit(count - EVIDENCE_KEYS)
    )  # deleted in one statement: the database picks and drops them, none read out
    conn.execute(
        delete(line_evidence).where(
            mine, tuple_(line_evidence.c.kind, line_evidence.c.key).in_(doomed)
        )
    )


def new_files(engine: Engine, files: Sequence[Path]) -> list[Path]:
    """The files not yet ingested as they are now (a changed size or mtime counts as new)."""
    stamps = {str(path): _stamp(path) for path in files}
    paths = list(stamps)
    try:
        with engine.connect() as conn:
            known = {
                row.path: (row.size, row.mtime_ns)
                for start in range(0, len(paths), _CHUNK)
                for row in conn.execute(
                    select(ingested_files).where(
                        ingested_files.c.path.in_(paths[start : start + _CHUNK])
                    )
                )
            }
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the database: {reason(exc)}") from exc
    return [path for path in files if known.get(str(path)) != stamps[str(path)]]


def folder_marks(engine: Engine) -> dict[str, int]:
    """Each source folder's mtime when last walked (``scanned_folders``), by ``folder_key``."""
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(scanned_folders.c.path_key, scanned_folders.c.mtime_ns))
            return {key: mtime for key, mtime in rows}
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the database: {reason(exc)}") from exc


def fresh(
    engine: Engine,
    files: Sequence[Path],
    inodes: Mapping[Path, int],
    folders: Iterable[str],
    passed: Iterable[str],
    *,
    watched_since: datetime,
) -> list[Path]:
    """The files not ingested as they are now, of a walk that listed ``files`` (with their
    ``inodes``) in ``folders`` and passed over the unchanged folders ``passed``, without a
    stat of each file ever ingested: a listed file is looked at (its size and mtime) when
    its name or inode is not the one stored, as with a new or a replaced file; and any file
    read since ``watched_since``, listed or not (one written again in place keeps both).
    Listed files found unchanged get their folder and inode stored (older stores have
    none)."""
    wanted = sorted(set(folders))
    unlisted = set(passed)
    try:
        with engine.connect() as conn:
            known = {
                path: inode
                for start in range(0, len(wanted), _CHUNK)
                for path, inode in conn.execute(
                    select(ingested_files.c.path, ingested_files.c.inode).where(
                        ingested_files.c.folder.in_(wanted[start : start + _CHUNK])
                    )
                )
            }
            recent = conn.execute(
                select(ingested_files.c.path).where(
                    ingested_files.c.ingested_at >= utc_naive(watched_since)
                )
            ).scalars()
            watched = set(recent)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the database: {reason(exc)}") from exc
    named = {str(path) for path in files}
    unknown = [path for path in files if known.get(str(path), -1) != inodes.get(path)]
    looked = [Path(p) for p in sorted(watched - named) if str(Path(p).parent) in unlisted]
    looked += [path for path in files if str(path) in watched]
    found = new_files(engine, list(dict.fromkeys([*unknown, *looked])))
    new = set(found)
    _mark_seen(engine, {p: inodes[p] for p in unknown if p not in new and p in inodes})
    return [path for path in files if path in new] + [p for p in found if str(p) not in named]


def _mark_seen(engine: Engine, inodes: Mapping[Path, int]) -> None:
    """Store the folder and the inode (as listed) of ingested files found unchanged."""
    rows = [
        {"p": str(path), "folder": str(path.parent), "inode": inode}
        for path, inode in inodes.items()
    ]
    if not rows:
        return
    stmt = (
        update(ingested_files)
        .where(ingested_files.c.path == bindparam("p"))
        .values(folder=bindparam("folder"), inode=bindparam("inode"))
    )
    try:
        with engine.begin() as conn:
            conn.execute(stmt, rows)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot write to the database: {reason(exc)}") from exc


def folder_key(path: str) -> str:
    """A folder's key in ``scanned_folders`` (a hash: a path may be of any length)."""
    return _hash(path)


def mark_folders(engine: Engine, folders: Mapping[str, int]) -> None:
    """Remember each walked folder's mtime (after its new files are marked ingested)."""
    rows = [{"path_key": folder_key(path), "mtime_ns": mtime} for path, mtime in folders.items()]
    _replace(engine, scanned_folders.c.path_key, rows)


def mark_ingested(
    engine: Engine, files: Sequence[Path], *, now: datetime, failed: Mapping[str, str] | None = None
) -> None:
    """Remember ``files`` as ingested in their current state; those in ``failed`` (path →
    why) as read and rejected, so they are read again only once they change."""
    failed = failed or {}
    rows = (  # made a chunk at a time, as they are written
        {
            "path": str(p),
            "size": s[0],
            "mtime_ns": s[1],
            "ingested_at": utc_naive(now),
            "status": "failed" if str(p) in failed else "ok",
            "error": failed.get(str(p), "")[:1000] or None,
            "folder": str(p.parent),
            "inode": _inode(p),
        }
        for p in files
        if (s := _stamp(p)) is not None
    )
    _replace(engine, ingested_files.c.path, rows)


def _replace(engine: Engine, key: Column[Any], rows: Iterable[dict[str, Any]]) -> None:
    """Write ``rows`` into ``key``'s table in place of those with the same key, a chunk at
    a time, in one transaction."""
    table, each = key.table, iter(rows)
    try:
        with engine.begin() as conn:
            while chunk := list(itertools.islice(each, _CHUNK)):
                conn.execute(delete(table).where(key.in_([row[key.name] for row in chunk])))
                conn.execute(insert(table), chunk)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot write to the database: {reason(exc)}") from exc


# ---------------------------------------------------------------- rows


def _inode(path: Path) -> int | None:
    """The inode of the entry itself (a symlink's own), as its folder's listing gives it."""
    try:
        return path.lstat().st_ino
    except OSError:
        return None


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def _summary_source(id_: str, title: str, body: str) -> Article:
    """Just what a summarizer reads: the title and the paragraphs."""
    return Article(
        id=id_,
        title=title,
        published=datetime.min.replace(tzinfo=UTC),
        date_source="text",
        tags=frozenset(),
        paragraphs=tuple(body.split("\n\n")) if body else (),
    )


def _stored_matches(conn: Connection, chunk: Sequence[Article]) -> dict[str, list[Article]]:
    """The stored stories that may be copies of the chunk's: by id, lead or tail key, under
    each of those keys."""
    ids = [a.id for a in chunk]
    keys = [k for a in chunk for k in a.keys]
    columns = (articles.c.id, articles.c.lead_key, articles.c.tail_key)
    matching = or_(
        articles.c.id.in_(ids), articles.c.lead_key.in_(keys), articles.c.tail_key.in_(keys)
    )
    holders: dict[str, set[str]] = {}
    present: set[str] = set()
    for id_, *body_keys_of in conn.execute(select(*columns).where(matching)):
        present.add(id_)
        for key in body_keys_of:
            holders.setdefault(key, set()).add(id_)
    if not present:
        return {}
    wanted = present.intersection(ids)  # an id is one story: never boilerplate
    for key in keys:
        if len(found_ids := holders.get(key, set())) <= _CANDIDATES:
            wanted |= found_ids
    listed = sorted(wanted)
    rows = [
        row
        for start in range(0, len(listed), _CHUNK)
        for row in conn.execute(
            select(articles).where(articles.c.id.in_(listed[start : start + _CHUNK]))
        ).mappings()
    ]
    tag_map = _tags_of(conn, [row["id"] for row in rows])
    found: dict[str, list[Article]] = {}
    for row in rows:
        article = _article(row, tag_map.get(row["id"], frozenset()))
        for key in dict.fromkeys((row["id"], row["lead_key"], row["tail_key"])):
            found.setdefault(key, []).append(article)
    return found


def _tags_of(conn: Connection, ids: Sequence[str]) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for start in range(0, len(ids), _CHUNK):
        stmt = select(article_tags).where(
            article_tags.c.article_id.in_(ids[start : start + _CHUNK])
        )
        for article_id_, tag in conn.execute(stmt):
            out.setdefault(article_id_, set()).add(tag)
    return {k: frozenset(v) for k, v in out.items()}


def _row(article: Article, now: datetime) -> dict[str, object]:
    offset = article.published.utcoffset() or timedelta(0)
    lead, tail = article.keys
    return {
        "id": article.id,
        "title": article.title,
        "subtitle": article.subtitle,
        "author": article.author,
        "source": article.source,
        "url": article.url,
        "dateline": article.dateline,
        "published_utc": utc_naive(article.published),
        "utc_offset_min": int(offset.total_seconds() // 60),
        "date_source": article.date_source,
        "body": article.body,
        "summary": article.summary,
        "origin": article.origin,
        "lead_key": lead,
        "tail_key": tail,
        "ingested_at": utc_naive(now),
        "lang": article.lang,
    }


def _article(r: RowMapping, tags: frozenset[str]) -> Article:
    offset = timezone(timedelta(minutes=r["utc_offset_min"]))
    published = r["published_utc"].replace(tzinfo=UTC).astimezone(offset)
    body: str = r["body"]
    return Article(
        id=r["id"],
        title=r["title"],
        published=published,
        date_source=r["date_source"],
        tags=tags,
        paragraphs=tuple(body.split("\n\n")) if body else (),
        subtitle=r["subtitle"],
        author=r["author"],
        source=r["source"],
        url=r["url"],
        dateline=r["dateline"],
        origin=r["origin"],
        summary=r["summary"],
        keys=(r["lead_key"], r["tail_key"]),
        lang=r["lang"],
    )


def _richness(article: Article) -> tuple[int, int]:
    filled = sum(
        value is not None
        for value in (article.author, article.url, article.subtitle, article.source)
    )
    dated = 2 - min(DATE_SOURCE_RANK[article.date_source], 2)
    return filled + dated + bool(article.tags), len(article.body)


def _other_id(article: Article) -> str:
    """The id of a story whose title and lead are another's (a blog's front page on two
    days): its whole body tells them apart, and gives it the same id each time it is read."""
    return _hash(article.id + "\n" + article.body)


def _shingles(body: str, cache: dict[str, frozenset[int]]) -> frozenset[int]:
    """Every run of 4 words of the body (case and punctuation aside), hashed."""
    found = cache.get(body)
    if found is None:
        if len(cache) >= _CACHED:
            cache.clear()
        found_words = words(body)
        n = _SHINGLE_WORDS
        runs = (" ".join(found_words[i : i + n]) for i in range(max(len(found_words) - n + 1, 1)))
        found = cache[body] = frozenset(hash(run) for run in runs if run)
    return found


def _title_words(title: str) -> list[str]:
    return words(title)


def _is_storable(text: str) -> bool:
    return "\x00" not in text and (text.isascii() or not _SURROGATE.search(text))


def _storable(text: str) -> str:
    """``text`` without what no database column holds: NUL, lone surrogates (as "\ufffd")."""
    if _is_storable(text):
        return text
    return _UNSTORABLE.sub(lambda m: "" if m.group() == "\x00" else "\ufffd", text)


def _cut(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters: cut at a word, marked with "…"."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,.;:-–—|/") + "…"


def _hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()
