"""The cleaner's repetition evidence kept per source across runs: a page read alone on the
day it comes is judged against its site's earlier pages, as it would be in one batch."""

from __future__ import annotations

import itertools
import json
import random
from array import array
from datetime import UTC
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest import clean, readers, segment
from digest.cli import cli
from digest.models import Draft, Evidence

CHROME_HEAD = [
    "Valley Ledger",
    "Notes from the river towns, every single week of the year.",
    "Home | News | Opinion | About",
]
CHROME_FOOT = [
    "Our standards: the Valley Ledger follows the trust principles of the press.",
    "All prices shown are delayed a minimum of fifteen minutes for every market.",
]


def page(title: str, *paragraphs: str) -> str:
    return "\n\n".join([*CHROME_HEAD, title, "By Ann Example", *paragraphs, *CHROME_FOOT])


PAGES = [
    page(
        "Ferry Service Returns to the East Landing",
        "The ferry to the east landing ran again on Monday after three weeks of repairs to "
        "its ramp, and the first crossing carried forty cars.",
        "Crews replaced the hinge of the ramp and two of its cables. The operator said the "
        "timetable would stay as it was before the closure.",
        "Drivers who had taken the long road around the lake for three weeks were glad. One "
        "said the detour had added an hour to each of her trips to the market.",
        "The ramp will be inspected again in the spring, when the river is at its highest.",
    ),
    page(
        "Library Opens a Second Reading Room Upstairs",
        "The town library opened a second reading room on its upper floor on Saturday, the "
        "first change to the building since it was built in 1962.",
        "The room seats thirty and has desks with lamps and power for laptops. The old "
        "reading room downstairs will keep the newspapers.",
        "The librarian said the new room had been a store for old books for forty years, and "
        "that volunteers had spent the summer sorting them for a sale.",
        "The sale raised enough money to pay for the lamps and half of the new carpet.",
    ),
    page(
        "Council Delays the Vote on the Bridge Budget",
        "The council put off its vote on next year's bridge budget until December, after "
        "two members asked for the engineers' report first.",
        "The report is due in three weeks. The mayor said the delay would not hold up the "
        "repairs planned for the spring.",
        "Residents who came to the meeting asked for a footpath on the bridge. The council "
        "said it would ask the engineers whether the deck could carry one.",
        "The bridge carries about six thousand cars a day and was last rebuilt in 1988.",
    ),
]


def cleaned(texts: list[str], evidence: Evidence | None = None) -> tuple[list[Draft], Evidence]:
    run = clean.clean_collection(texts, default_tz=UTC, evidence=evidence)
    drafts = [draft for _ in texts for draft in next(run)]
    return drafts, run.learned


def test_a_page_read_alone_with_its_sites_evidence_is_read_as_in_one_batch() -> None:
    batch, _ = cleaned(PAGES)
    evidence = Evidence()
    alone = []
    for text in PAGES:
        drafts, learned = cleaned([text], evidence)
        evidence = evidence.plus(learned)
        alone.append(drafts)
    assert [d.title for d in batch] == [p.split("\n\n")[3] for p in PAGES]
    # the third page, read alone with the evidence of the first two, is the batch's
    assert alone[2] == [batch[2]]
    assert all("trust principles" not in p for p in alone[2][0].paragraphs)
    # the first, read alone, could not know its site's footer
    assert any("trust principles" in p for p in alone[0][0].paragraphs)


def test_a_page_read_again_adds_nothing_and_keeps_its_story() -> None:
    _, first = cleaned(PAGES[:2])
    again, more = cleaned([PAGES[0]], first)
    assert all(n == 0 for key, n in more.lines.items() if first.lines.get(key))
    assert clean.became_chrome(first, more) == frozenset()
    assert again[0].paragraphs[0].startswith("The ferry to the east landing")


def test_a_copy_of_an_earlier_story_on_another_page_is_that_story_not_chrome() -> None:
    _, evidence = cleaned(PAGES[:2])
    # the ferry story again, on a page of its own with a new headline: a copy, its
    # paragraphs are not lines two different stories printed
    copy = page("Ferry Is Back", *PAGES[0].split("\n\n")[5:9])
    drafts, _ = cleaned([copy], evidence)
    assert drafts[0].paragraphs[0].startswith("The ferry to the east landing")


def test_lines_a_later_batch_shows_to_be_chrome_are_named() -> None:
    _, first = cleaned(PAGES[:1])
    _, second = cleaned(PAGES[1:2], first)
    became = clean.became_chrome(first, second)
    assert clean.segment.key(CHROME_FOOT[0]) in became
    assert clean.segment.key(PAGES[1].split("\n\n")[5]) not in became


def test_a_stored_page_is_cleaned_again_once_its_sites_next_page_shows_its_chrome(
    tmp_path: Path,
) -> None:
    site = tmp_path / "src" / "valley-ledger"
    site.mkdir(parents=True)
    cfg = tmp_path / "digest.toml"
    cfg.write_text(f'database_url = "sqlite:///{tmp_path / "t.db"}"\ntimezone = "UTC"\n')
    runner = CliRunner()
    for number, text in enumerate(PAGES[:2]):
        (site / f"page-{number}.txt").write_text(text, encoding="utf-8")
        ran = runner.invoke(cli, ["--config", str(cfg), "ingest", str(site / f"page-{number}.txt")])
        assert ran.exit_code == 0, ran.output
    assert "1 stored article cleaned again" in ran.output
    listing = runner.invoke(cli, ["--config", str(cfg), "articles", "--json"])
    bodies = {a["title"]: a["body"] for a in json.loads(listing.stdout)}
    assert len(bodies) == 2
    assert not any("trust principles" in body for body in bodies.values())
    assert bodies["Ferry Service Returns to the East Landing"].startswith("The ferry to the east")


SIGN_OFF = "Full notes and the transcript of this episode are on our website every week."


def episode(n: int) -> list[str]:
    return [
        f"In episode {n} we talk to a guest about the river towns and their {n} bridges, "
        "and what it takes to keep the old ones standing through the winter floods.",
        SIGN_OFF,
    ]


def test_a_feed_learns_its_sign_off_over_reads_of_a_few_entries_each() -> None:
    first, learned = readers.feed_chrome([episode(1), episode(2)])
    assert segment.key(SIGN_OFF) not in first  # two entries: too few to tell
    again, more = readers.feed_chrome([episode(1), episode(2)], learned)
    assert segment.key(SIGN_OFF) not in again and sum(more.lines.values()) == 0
    later, _ = readers.feed_chrome([episode(2), episode(3)], learned)
    assert segment.key(SIGN_OFF) in later  # three different episodes printed it
    assert segment.key(episode(3)[0]) not in later


# ---------------------------------------------------------------- counting in arrays


def _dict_story_of(long_keys: list[list[int]]) -> list[int]:
    """``clean.story_of`` as it was, with a dict of every long key: what it must match (the
    joining of posts that share lines, which did not change, is the cleaner's own)."""
    where: dict[int, list[int]] = {}
    for index, keys in enumerate(long_keys):
        for key in dict.fromkeys(keys):
            where.setdefault(key, []).append(index)
    return clean._joined(long_keys, where.values())


def _dict_chrome(
    keys: list[list[int]],
    long_keys: list[list[int]],
    main_runs: list[list[int]],
    prints: list[int],
    evidence: Evidence,
) -> tuple[frozenset[int], list[tuple[int, int]]]:
    """``clean._collection_chrome`` as it was, with a dict of every key: the chrome, and
    each key's count in the order the posts first print it."""
    stories = _dict_story_of(long_keys)
    known = evidence.lines
    seen = {stories[index] for index, found in enumerate(prints) if found in evidence.posts}
    more = dict.fromkeys(itertools.chain.from_iterable(keys), 0)
    by_story = sorted(range(len(stories)), key=stories.__getitem__)
    for story, group in itertools.groupby(by_story, key=stories.__getitem__):
        posts = list(group)
        if story not in seen and clean._seen_before(
            {key for index in posts for key in main_runs[index]}, known
        ):
            seen.add(story)
        again = story in seen
        for key in {key for index in posts for key in keys[index]}:
            if not again or not known.get(key):
                more[key] += 1
    chrome = frozenset(key for key, n in more.items() if known.get(key, 0) + n >= 2)
    return chrome, list(more.items())


def _collection(seed: int) -> tuple[list[list[int]], list[list[int]], list[list[int]], list[int]]:
    """Posts of a made-up site: chrome lines in many, copies of a story sharing its long
    lines (some with a line more or less), each post's keys once; keys of both signs."""
    rng = random.Random(seed)
    pool = [rng.getrandbits(64) - (1 << 63) for _ in range(400)]
    chrome = pool[:12]
    keys: list[list[int]] = []
    long_keys: list[list[int]] = []
    for _ in range(rng.randint(1, 60)):
        if keys and rng.random() < 0.3:  # a copy of an earlier post, perhaps changed a little
            story = list(long_keys[rng.randrange(len(long_keys))])
            if story and rng.random() < 0.5:
                story.pop(rng.randrange(len(story)))
        else:
            story = rng.sample(pool[12:], rng.randint(0, 8))
        story += [rng.choice(pool[12:])] * rng.randint(0, 1)  # a long line printed twice
        lines = [*rng.sample(chrome, rng.randint(0, 5)), *story]
        keys.append(list(dict.fromkeys(lines)))
        long_keys.append(story)
    main_runs = [story[: len(story) // 2 + 1] for story in long_keys]
    prints = [hash(tuple(k)) for k in keys]
    return keys, long_keys, main_runs, prints


@pytest.mark.parametrize("seed", range(40))
def test_story_of_groups_posts_as_a_dict_of_every_key_did(seed: int) -> None:
    _, long_keys, _, _ = _collection(seed)
    assert clean.story_of(long_keys) == _dict_story_of(long_keys)


@pytest.mark.parametrize("seed", range(60))
def test_collection_counts_in_arrays_are_a_dicts_in_its_order(seed: int) -> None:
    keys, long_keys, main_runs, prints = _collection(seed)
    rng = random.Random(seed)
    flat = list(dict.fromkeys(itertools.chain.from_iterable(keys)))
    known = {key: rng.randint(0, 3) for key in rng.sample(flat, len(flat) // 3)}
    posts = frozenset(rng.sample(prints, len(prints) // 4))
    for evidence in (Evidence(), Evidence(known, posts)):
        chrome, learned = clean._collection_chrome(keys, long_keys, main_runs, prints, evidence)
        want_chrome, want_counts = _dict_chrome(keys, long_keys, main_runs, prints, evidence)
        assert chrome == want_chrome
        assert list(learned.lines.items()) == want_counts  # the order the store writes
        assert list(learned.lines) == [key for key, _ in want_counts]
        assert list(learned.lines.values()) == [n for _, n in want_counts]
        assert dict(learned.lines) == dict(want_counts)  # a key looked up
        assert set(learned.posts) == set(prints)


def test_repeated_names_every_key_given_more_than_once() -> None:
    rng = random.Random(7)
    keys = [rng.getrandbits(64) - (1 << 63) for _ in range(5_000)]
    given = [*keys, *keys[::3], *keys[::7]]
    rng.shuffle(given)
    found = clean._repeated(given, len(given))
    assert set(keys[::3]) | set(keys[::7]) <= set(found) <= set(keys)
    assert len(found) < len(keys) // 3 + len(keys) // 7 + len(keys) // 10  # few others
    assert set(found.values()) == {-1}
    assert clean._repeated([], 0) == {}


def test_counts_read_in_order_without_a_dict_of_every_key() -> None:
    counts = clean._Counts(array("q", [5, -3, 9]), array("i", [1, 0, 2]))
    assert list(counts) == [5, -3, 9]
    assert list(counts.values()) == [1, 0, 2]
    assert list(counts.items()) == [(5, 1), (-3, 0), (9, 2)]
    assert counts._index is None  # read through, as the store does: no lookups
    assert counts[9] == 2 and counts.get(4) is None
