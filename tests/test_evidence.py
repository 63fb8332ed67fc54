"""The cleaner's repetition evidence kept per source across runs: a page read alone on the
day it comes is judged against its site's earlier pages, as it would be in one batch."""

from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path

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
