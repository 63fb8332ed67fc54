"""The cleaner on the seeds (with their hand labels) and on generic page structures."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from digest import clean
from digest.clean import clean_collection
from digest.dates import zone
from digest.models import Draft
from digest.segment import line_key

from .conftest import DATA, ROOT, SEEDS

UTC = zone("UTC")
LABELS = [
    json.loads(line)
    for line in (DATA / "seed_line_labels.jsonl").read_text(encoding="utf-8").splitlines()
]
BODY_LABELS = {"body", "other_article_body"}


def clean_all(*texts: str) -> list[list[Draft]]:
    return list(clean_collection(texts, default_tz=UTC))


@pytest.fixture(scope="module")
def seeds() -> dict[str, list[Draft]]:
    names = sorted(p.name for p in SEEDS.glob("*.txt"))
    cleaned = clean_all(*((SEEDS / name).read_text(encoding="utf-8") for name in names))
    return dict(zip(names, cleaned, strict=True))


def test_seeds_give_six_articles_with_their_real_titles(seeds: dict[str, list[Draft]]) -> None:
    titles = {name[:3]: [d.title for d in drafts] for name, drafts in seeds.items()}
    assert titles == {
        "000": [
            "Will Trump and Putin Meet in Paris in November?",
            "Trump Invited Putin to Washington",
        ],
        "001": ["A Trump – Putin Summit Meeting Coming?"],
        "002": ["US President Donald Trump Invites Russian President Vladimir Putin"],
        "003": ["Putin trying again to open doors to better US-Russia relations"],
        "004": ["Putin wants to meet Trump and discuss dangers of arms race"],
    }


def test_seed_004_byline_date_beats_the_page_header(seeds: dict[str, list[Draft]]) -> None:
    (draft,) = seeds["004_1da4d44115ccccca.txt"]
    assert draft.author == "Sheetal Sukhija"
    assert draft.published == datetime(2018, 6, 11, 8, 51, tzinfo=timezone(timedelta(hours=10)))
    assert draft.date_source == "text"
    assert draft.dateline == "QINGDAO, China"
    assert draft.paragraphs[0].startswith("A week after blaming America’s")


def test_seed_deck_is_kept_apart(seeds: dict[str, list[Draft]]) -> None:
    first = seeds["000_73dbec342217d4c1.txt"][0]
    assert first.subtitle is not None and first.subtitle.startswith("Unbending US Hostility")
    assert all(first.subtitle != p for p in first.paragraphs)
    assert {"usa", "russia", "trump-vs-putin"} <= set(first.categories)


def test_no_labelled_chrome_in_any_title_or_body(seeds: dict[str, list[Draft]]) -> None:
    for record in LABELS:
        drafts = seeds[record["file"]]
        kept = {line_key(p) for d in drafts for p in d.paragraphs}
        kept |= {line_key(d.subtitle) for d in drafts if d.subtitle}
        for line, label in zip(record["lines"], record["labels"], strict=True):
            if label == "boilerplate":
                assert line_key(line) not in kept, f"{record['file']}: chrome kept: {line!r}"


def test_commenters_and_their_words_are_gone(seeds: dict[str, list[Draft]]) -> None:
    body = "\n".join(seeds["003_ce081450231abc4d.txt"][0].paragraphs)
    record = next(r for r in LABELS if r["file"].startswith("003"))
    names = [
        line
        for line, label in zip(record["lines"], record["labels"], strict=True)
        if label == "boilerplate" and len(line.split()) == 2 and line.istitle()
    ]
    assert len(names) >= 3
    for name in names:
        assert name not in body


def body_line_scores(seeds: dict[str, list[Draft]]) -> tuple[float, float]:
    """Body-line precision and recall of the cleaner against the hand labels."""
    tp = fp = fn = 0
    for record in LABELS:
        keys = {line_key(p) for d in seeds[record["file"]] for p in d.paragraphs}
        for line, label in zip(record["lines"], record["labels"], strict=True):
            key = line_key(line)
            # A paragraph may have lost its dateline ("QINGDAO, China - ") to the metadata.
            predicted = key in keys or any(
                key.endswith(k) and len(k) > 0.7 * len(key) for k in keys
            )
            gold = label in BODY_LABELS
            tp += predicted and gold
            fp += predicted and not gold
            fn += gold and not predicted
    return tp / (tp + fp), tp / (tp + fn)


def test_body_line_precision_and_recall_against_labels(seeds: dict[str, list[Draft]]) -> None:
    precision, recall = body_line_scores(seeds)
    print(f"\nbody-line precision {precision:.3f} recall {recall:.3f}")
    assert precision >= 0.97
    assert recall >= 0.97


def test_no_seed_phrase_in_the_cleaner_code() -> None:
    code = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "digest").glob("*.py")).lower()
    for record in LABELS:
        for line in record["lines"]:
            for phrase in re.findall(r"[a-z’']+(?: [a-z’']+){3}", line.lower()):
                assert phrase not in code, f"seed phrase {phrase!r} in digest/"


# ---------------------------------------------------------------- generic structures

NEWS_PAGE = """Home
World
Business
Share
Tweet

Harbor cranes fall silent as dockworkers strike

By Maria Lopez, Coast Ledger
Published March 3, 2019 at 10:15 a.m. EST

OAKLAND, Calif. — Dockworkers walked off the job at dawn on Sunday, idling the cranes of the port.

The union said talks over automation had broken down after six weeks.

ADVERTISEMENT

"We have waited long enough," said Dr. Ana Ruiz, who leads the local.

Related:
Port traffic hits a record
Shipping rates climb again
Truckers face longer lines

© 2019 Coast Ledger. All rights reserved.
Privacy Policy
"""


def test_news_layout_byline_date_dateline_and_furniture() -> None:
    ((draft,),) = clean_all(NEWS_PAGE)
    assert draft.title == "Harbor cranes fall silent as dockworkers strike"
    assert (draft.author, draft.byline_source) == ("Maria Lopez", "Coast Ledger")
    assert draft.published == datetime(2019, 3, 3, 10, 15, tzinfo=timezone(timedelta(hours=-5)))
    assert draft.dateline == "OAKLAND, Calif."
    assert draft.paragraphs == (
        "Dockworkers walked off the job at dawn on Sunday, idling the cranes of the port.",
        "The union said talks over automation had broken down after six weeks.",
        '"We have waited long enough," said Dr. Ana Ruiz, who leads the local.',
    )


# Stamps the date patterns half-match; each raised out of the cleaner before dates were
# validated, wherever the head of a page holds a date.
UNREADABLE_ZONE = [
    "March 3, 2019 10:15 GMT+99",
    "2019-03-03T10:15+99:99",
    "March 3, 2019 10:15 +9999",
]
IMPOSSIBLE = ["2019-03-04T24:61", "02/31/2019 at 10:15", "March 3, 2019 10:15 AESD"]


@pytest.mark.parametrize("stamp", UNREADABLE_ZONE + IMPOSSIBLE)
@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("Published March 3, 2019 at 10:15 a.m. EST", "Published {}"),
        ("By Maria Lopez, Coast Ledger", "By Maria Lopez, Coast Ledger | {}"),
        ("By Maria Lopez, Coast Ledger", "Posted on {} by Maria Lopez"),
    ],
    ids=["date-line", "byline", "posted-by"],
)
def test_a_half_matched_stamp_in_the_head_is_no_crash(stamp: str, old: str, new: str) -> None:
    ((draft,),) = clean_all(NEWS_PAGE.replace(old, new.format(stamp)))
    assert draft.paragraphs[0].startswith("Dockworkers walked off the job")
    if draft.published is not None:
        assert draft.published.utcoffset() in (timedelta(0), timedelta(hours=-5))


@pytest.mark.parametrize("stamp", UNREADABLE_ZONE)
def test_a_stamp_with_an_unreadable_zone_is_the_date_in_the_default_zone(stamp: str) -> None:
    page = NEWS_PAGE.replace("Published March 3, 2019 at 10:15 a.m. EST", f"Published {stamp}")
    ((draft,),) = clean_all(page)
    assert draft.title == "Harbor cranes fall silent as dockworkers strike"
    assert draft.published == datetime(2019, 3, 3, 10, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("opening", "dateline"),
    [
        ("(Wirefeed) -- Dockworkers", "(Wirefeed)"),
        ("(Wirefeed)Dockworkers", "(Wirefeed)"),
        ("LAGOS, Nigeria (Wirefeed) -- Dockworkers", "LAGOS, Nigeria (Wirefeed)"),
        ("TEMA - Dockworkers", "TEMA"),
    ],
)
def test_a_credit_dateline_goes_to_the_dateline_field(opening: str, dateline: str) -> None:
    page = NEWS_PAGE.replace("OAKLAND, Calif. — Dockworkers", opening)
    ((draft,),) = clean_all(page)
    assert draft.dateline == dateline
    assert draft.paragraphs[0].startswith("Dockworkers walked off the job at dawn")


BLOG_POST = """Notes From the Ridge
a small blog about the night sky

Counting stars from the valley floor

Posted on June 2, 2020 by Tom Baker

We drove out past the last streetlight on Friday and counted what we could see.

Without the glow of the town the Milky Way was plain, and the owls were loud.

Filed under: Astronomy, Light Pollution

2 Comments

Alice Green
June 5, 2020 at 9:12 pm

What a lovely night that must have been. We should all go out more.

Reply

Bob White
June 6, 2020 at 7:40 am

The county should turn the lamps down after midnight, I say.

Reply

Leave a Reply
Your email address will not be published.
"""


def test_blog_comment_thread_is_cut_and_footer_becomes_tags() -> None:
    ((draft,),) = clean_all(BLOG_POST)
    assert draft.title == "Counting stars from the valley floor"
    assert draft.author == "Tom Baker"
    assert draft.published == datetime(2020, 6, 2, tzinfo=UTC)
    assert draft.categories == ("astronomy", "light-pollution")
    assert len(draft.paragraphs) == 2
    assert not any("Alice" in p or "county" in p for p in draft.paragraphs)


def test_a_page_that_fails_costs_only_its_own_articles(monkeypatch: pytest.MonkeyPatch) -> None:
    real = clean._clean_page

    def failing(page: Any, **kwargs: Any) -> list[Draft]:
        if any("broken" in unit.text for unit in page):
            raise RuntimeError("broken page")
        return real(page, **kwargs)

    monkeypatch.setattr(clean, "_clean_page", failing)
    cleaned = clean_collection([NEWS_PAGE + "\nbroken\n", BLOG_POST], default_tz=UTC)
    with pytest.raises(RuntimeError, match="broken page"):
        next(cleaned)
    ((draft,),) = list(cleaned)
    assert draft.title == "Counting stars from the valley floor"


def test_lines_repeated_across_stories_are_chrome_but_syndicated_copies_are_not() -> None:
    notice = "Opinions here are the writers' own and not those of this publication, ever."
    story = "\n\n".join(
        f"Paragraph {n} of the shared story says something quite specific {n}." for n in range(6)
    )
    page_a = f"Alpha Site\n\nThe shared story headline\n\n{notice}\n\n{story}\n"
    page_b = f"Beta Wire\n\nThe shared story headline\n\n{story}\n\nBeta Wire news, every day\n"
    page_c = f"Alpha Site\n\nAnother story entirely here\n\n{notice}\n\n" + "\n\n".join(
        f"A different line {n} about another matter altogether, plainly {n}." for n in range(5)
    )
    (a,), (b,), (c,) = clean_all(page_a, page_b, page_c)
    assert a.paragraphs == b.paragraphs
    assert len(a.paragraphs) == 6
    assert notice not in a.paragraphs and notice not in c.paragraphs


def test_hard_wrapped_paragraphs_are_joined() -> None:
    text = (
        "Council approves the new library budget\n\n"
        "The city council voted on Monday to approve the library budget for the\n"
        "coming year, after a long debate about opening hours and staffing in\n"
        "the branches that serve the north side of town.\n\n"
        "Supporters said the vote was overdue. Opponents said the money would\n"
        "be better spent on roads, which they called the most urgent need of\n"
        "all, and promised to raise the matter again in the spring session.\n"
    )
    ((draft,),) = clean_all(text)
    assert draft.title == "Council approves the new library budget"
    assert len(draft.paragraphs) == 2
    assert draft.paragraphs[0].endswith("serve the north side of town.")


@pytest.mark.parametrize(
    "text",
    ["", "\n\n", "Home\nAbout\nContact\n", "© 2020 Example. All rights reserved.\n"],
)
def test_pages_without_an_article_give_nothing(text: str) -> None:
    assert clean_all(text) == [[]]


# ---------------------------------------------------------------- text without spaces


@pytest.mark.parametrize("name", ["ja-page.txt", "zh-page.txt", "ko-page.txt", "th-page.txt"])
def test_chinese_japanese_korean_and_thai_pages_are_prose(name: str) -> None:
    """Words are not counted by spaces where none are written: every paragraph is kept."""
    text = (DATA / "lang" / name).read_text(encoding="utf-8")
    blocks = [b.strip() for b in text.split("\n\n") if b.strip()]
    ((draft,),) = clean_all(text)
    assert draft.title == blocks[0]
    assert draft.paragraphs == tuple(blocks[1:])


def test_a_japanese_feed_entry_keeps_its_lines() -> None:
    lines = ["市議会は火曜日、港の街灯を暗くする案を可決した。", "新しい運用は四月から始まる。"]
    assert clean.polish("港の灯り", lines) == (tuple(lines), None)


def test_polish_keeps_the_extract_and_starts_at_the_story() -> None:
    """Extracted text (HTML, feeds) loses only furniture by itself and the head above it."""
    story = "The council voted on Monday to close the old bridge for a year of repairs."
    rows = ["Ferry | Departs", "North pier | 07:00", "South pier | 07:20"]
    items = ["• Ferries every twenty minutes", "• Buses on the ring road", "• Bikes free"]
    lines = [
        "Local news",
        "Bridge to close",
        "A crane beside the bridge on Monday. Photo: Jane Doe/AP",
        story,
        *rows,
        "Continue reading",
        *items,
        "This article originally appeared on the Harbour Gazette.",
    ]
    paragraphs, _dateline = clean.polish("Bridge to close", lines)
    assert paragraphs == (story, *rows, *items)


def test_polish_keeps_a_photo_page_whose_captions_are_all_its_text() -> None:
    caption = "Visitors pose with a painting at the art fair in Hangzhou. (Getty Images)"
    assert clean.polish("Art fair", [caption])[0] == (caption,)


# What a scraper prints of a page: its <title> first, then the menu, a sidebar whose blurb
# reads like prose and which lists the site's own headlines (this story's among them), then
# the story under its headline.
TITLED_PAGE = "".join(
    line + "\n"
    for line in (
        "Night trains return to the valley line - The Valley Courier",
        "Home",
        "News",
        "Sport",
        "Our newsroom has covered the towns of the valley since 1921 and is owned by its "
        "readers, who elect the board each spring at the annual meeting.",
        "Most read",
        "Night trains return to the valley line",
        "Council delays the vote on the new bus depot",
        "Night trains return to the valley line",
        "The first night train in twenty years left the central station at midnight on "
        "Friday, carrying more than two hundred passengers to the towns of the upper "
        "valley.",
        "The operator said the service would run every weekend until the end of the year, "
        "and every night from the spring if enough tickets were sold in the winter.",
        "Passengers said they had waited years for a way home after the last bus, which "
        "leaves the city at ten.",
        "Share this article",
    )
)


def test_the_story_starts_under_the_headline_the_page_title_names() -> None:
    ((draft,),) = clean_all(TITLED_PAGE)
    assert draft.title == "Night trains return to the valley line"
    assert draft.paragraphs[0].startswith("The first night train in twenty years")
    assert not any("newsroom" in p or "bus depot" in p for p in draft.paragraphs)


@pytest.mark.parametrize(
    ("page_title", "headline"),
    [
        ("Night trains return | The Valley Courier", "Night trains return"),
        ("News :: Night trains return to the valley", "Night trains return to the valley"),
        ("Night trains return – Transport – Courier", "Night trains return"),
        ("Night trains return", "Night trains return"),
        ("Well-known x-ray", "Well-known x-ray"),
    ],
)
def test_a_page_titles_headline_is_its_longest_part(page_title: str, headline: str) -> None:
    assert clean.headline_of(page_title) == headline


# A blog's menu whose items read like sentences, an "Archives" item among them, and a
# "Tags:" line above the post: neither ends a post, and the post is the page's article.
MENU_PAGE = "".join(
    line + "\n"
    for line in (
        "Back from the hills - The Walking Notes",
        "About Who writes this, and how to reach her.",
        "Archives Every walk since the first one.",
        "Guides Coming soon, maybe.",
        "Back from the hills",
        "Tags: Walks, Weather",
        "The fog came down on the second morning, and we spent the day in the hut, reading the"
        " old visitors' book and listening to the rain on the tin roof above the bunks.",
        "By the third day it had lifted, and the ridge was clear all the way to the sea, so we"
        " walked the whole of it in one go and came down to the village after dark.",
    )
)


def test_a_menu_line_that_looks_like_a_footer_does_not_split_the_page() -> None:
    ((draft,),) = clean_all(MENU_PAGE)
    assert draft.title == "Back from the hills"
    assert draft.paragraphs[0].startswith("The fog came down on the second morning")
    assert len(draft.paragraphs) == 2


# A blog's page: a box of its topics' latest posts lists this post's headline among
# one-line teasers (some ending like sentences) and a "Tags:" line closes the box; the
# post itself stands under its headline, a byline and a share row of a dozen links.
SHARE_ROW = ("Text size", "Print", "Share:", "Facebook", "Twitter", "Email", "More", "Digg")
TEASER_PAGE = "".join(
    line + "\n"
    for line in (
        "Why the harbour froze this winter - The Coast Blog",
        "Harbours",
        "Why the harbour froze this winter",
        "Who will pay for the new sea wall in the town?",
        "The ferry timetable is changing again this spring.",
        "Tags: Harbours, Weather",
        "Comments",
        "Why the harbour froze this winter",
        "Posted by Ann Lee on January 9, 2026 at 2:54 pm",
        *SHARE_ROW,
        "Boats in the frozen harbour on Tuesday. (Photo: Ann Lee)",
        "The harbour froze from one wall to the other on Tuesday for the first time in forty"
        " years, after a week in which the temperature never rose above ten degrees below.",
        "Fishermen said the ice was thick enough to walk on by the evening, and the coast guard"
        " asked people to keep off it until the thaw that was forecast for the weekend.",
    )
)


def test_the_story_is_the_headline_with_most_prose_under_it_past_a_share_row() -> None:
    ((draft,),) = clean_all(TEASER_PAGE)
    assert draft.title == "Why the harbour froze this winter"
    assert draft.paragraphs[0].startswith("The harbour froze from one wall to the other")
    assert draft.author == "Ann Lee"


# A page title long enough to read as prose, and the headline printed again with the
# section and the time glued to it on one line, as html-text prints an inline head.
GLUED_PAGE = "".join(
    line + "\n"
    for line in (
        "Council splits over the new harbour bridge as the mayor and her deputy clash again"
        " - Politics - Local News - Coast Online",
        "Home",
        "Politics",
        "Council splits over the new harbour bridge as the mayor and her deputy clash again"
        " Politics news, Updated Nov 06, 2012 at 10:45pm",
        "The town council split on Tuesday over the plan for a new bridge across the harbour,"
        " with the mayor and her deputy each calling the other's figures a fantasy.",
        "A vote is due next month, and neither side said it had the numbers to win it.",
    )
)


def test_a_headline_glued_to_its_section_line_still_marks_the_story() -> None:
    ((draft,),) = clean_all(GLUED_PAGE)
    assert draft.title == (
        "Council splits over the new harbour bridge as the mayor and her deputy clash again"
    )
    assert draft.paragraphs[0].startswith("The town council split on Tuesday")
    assert draft.published == datetime(2012, 11, 6, 22, 45, tzinfo=UTC)  # glued to it too


STORY_TWICE = (
    "The river rose a metre overnight and the footbridge by the mill was closed at dawn,"
    " the third time this winter that the town has been cut in two by the water.",
    "Advertisement",
    "The council said the new flood wall, due to open in the spring, would have held it.",
)


def test_a_site_colon_headline_title_and_a_story_printed_twice() -> None:
    """A blog's title "Site: Headline" names the headline printed above the post; a page
    that prints its post twice (a print copy under the comments) keeps its paragraphs,
    while a label the page repeats still goes."""
    page = "\n".join(
        (
            "River Notes: Flood closes the mill bridge",
            "River Notes",
            "About This blog is written by the people who live along the river, for them.",
            "January 9, 2026",
            "Flood closes the mill bridge",
            *STORY_TWICE,
            "Comments",
            "Flood closes the mill bridge",
            *STORY_TWICE,
        )
    )
    ((draft,),) = clean_all(page)
    assert draft.title == "Flood closes the mill bridge"
    assert draft.paragraphs == (STORY_TWICE[0], STORY_TWICE[2])


STORY = (
    "It's a happy day for some sausage makers: the town's sausages are the latest food to be"
    " given protected status, after a campaign by the butchers of the market that took ten years.",
    "One of them said he had made the first application a decade ago and had almost given up"
    " on it twice, when the rules changed and the forms had to be filled in all over again.",
    "Critics say such awards give a few firms an unfair advantage over the rest, and that the"
    " buyers of the food gain little from them beyond a label they rarely read or understand.",
)


def test_a_name_and_date_above_the_story_are_its_byline_not_a_comment() -> None:
    """The deck, a share row, the author's bare name and a labelled date line, then the
    story: one name / date pair with a story under it is the byline (a thread repeats it),
    and the deck stays out of the body though the share row stands between."""
    page = "\n".join(
        (
            "Sausages win protected status",
            "Newmarket sausages now have protected status. But do such awards help anyone?",
            *SHARE_ROW[:4],
            "Oliver Thring",
            "example.co.uk, Monday 29 October 2012 14.00 EDT",
            *STORY[:3],
        )
    )
    ((draft,),) = clean_all(page)
    assert draft.paragraphs == STORY[:3]
    assert (draft.author, draft.published) == (
        "Oliver Thring",
        datetime(2012, 10, 29, 14, tzinfo=timezone(timedelta(hours=-4))),
    )


def test_a_byline_under_the_story_does_not_make_its_last_lines_a_deck() -> None:
    page = "\n".join(
        (
            "Yesterday is over",
            "Yesterday is over",
            "This is bad news for the leaders of every market, and great news for everyone else.",
            "And it happens again, fresh, every day.",
            "Tweet",
            "Posted by Ann Lee on July 12, 2012 | Permalink",
            "TrackBack",
        )
    )
    ((draft,),) = clean_all(page)
    assert draft.paragraphs[0].startswith("This is bad news")


def test_a_date_printed_over_several_short_lines_is_the_date() -> None:
    page = "\n".join(
        ("Archives", "23", "Jul", "2012", "6:06pm, EDT", "Lungs were not from victims", *STORY[:3])
    )
    ((draft,),) = clean_all(page)
    assert draft.published == datetime(2012, 7, 23, 18, 6, tzinfo=timezone(timedelta(hours=-4)))
    assert draft.paragraphs == STORY[:3]


def test_a_category_line_in_the_posts_head_does_not_split_it_from_its_story() -> None:
    """A sidebar's blurbs above, then the headline, a byline with its links, the date and
    a "Categories:" line over the story: the story's own head, no footer of a post."""
    page = "\n".join(
        (
            "Weekly notes on the security of the town's harbour and its shipping, every Tuesday.",
            "Signing up takes a minute, and you can leave the list whenever you want to.",
            "Someone needs to win tonight",
            "By Ann Lee Email Author",
            "November 6, 2012 |",
            "Categories: Harbours, Elections",
            *STORY,
        )
    )
    ((draft,),) = clean_all(page)
    assert (draft.title, draft.author) == ("Someone needs to win tonight", "Ann Lee")
    assert draft.paragraphs == STORY


def test_a_one_word_label_above_the_date_is_no_author() -> None:
    page = "\n".join(("Lungs were not from victims", "Profile", "Logout", "August 9, 2012", *STORY))
    ((draft,),) = clean_all(page)
    assert draft.author is None
    assert draft.published == datetime(2012, 8, 9, tzinfo=UTC)


def test_boxes_and_comments_after_a_post_are_no_articles_of_their_own() -> None:
    """Under the post's footer, an about-the-blog box with a line of text, and a comment
    headed by its writer's name and stamp: neither is an article, while the post is."""
    comment = "I have read this three times now, and I still think the butchers had a point. " * 4
    page = "\n".join(
        (
            "Sausages win protected status",
            *STORY,
            "Posted in Food, Markets",
            "About this blog",
            "This blog is written by the market's traders, about the market and its food.",
            "Tags: About",
            "Chris Nahr 07.15.12 at 11:59",
            comment.strip(),
            "Jane Doe said,",
            comment.strip(),
        )
    )
    (drafts,) = clean_all(page)
    assert [draft.title for draft in drafts] == ["Sausages win protected status"]
    assert drafts[0].paragraphs == STORY


@pytest.mark.parametrize(
    ("title", "comment"),
    [
        ("Chris Nahr 07.15.12 at 11:59", True),
        ("Robyn Oxner 10/8/12 2:59 PM", True),
        ("11.05.12 at 5:02 pm", True),
        ("Kevin said,", True),
        ("On November 1, 2012 at 10:12 am Maggie Dodson said", True),
        ("Gary McGraw on National Cybersecurity", False),
        ("Obama wins on November 6, 2012", False),
        ("Q&A: Filtering Videos on YouTube", False),
    ],
)
def test_a_comments_head_is_a_name_and_a_stamp(title: str, comment: bool) -> None:
    assert clean._commenter_head(title) is comment


def test_a_share_rows_comments_label_under_the_first_line_does_not_end_the_story() -> None:
    """A "Comments" link of the share row under the story's first line, the story under
    it; a "Comments" heading after the story still ends it."""
    page = "\n".join(
        (
            "Sausages win protected status",
            "By Ann Lee",
            STORY[0],
            "Comments",
            *STORY[1:],
            *MORE,
            "Comments",
            "I have read this three times now, and I still think the butchers had a point.",
        )
    )
    ((draft,),) = clean_all(page)
    assert draft.paragraphs == (*STORY, *MORE)


MORE = (
    "The award covers sausages made within ten miles of the market from pork raised in the"
    " county, to a recipe that was written down by the butchers' guild two centuries ago.",
    "Other towns have tried for the same status for their own foods, and three of them are"
    " still waiting for an answer from the ministry after more than five years of letters.",
)


def test_an_archives_short_dated_post_beside_a_long_one_is_kept() -> None:
    """A post of a fifth of the long one's length, dated: a post of the archive, no box."""
    long_post = [
        f"On stall number {n} of the market the {n}th trader of the morning sold out of"
        f" sausages before nine, and {n} more customers were turned away at the gate."
        for n in range(1, 25)
    ]
    page = "\n".join(
        (
            "Sausages win protected status",
            "Posted on March 3, 2019 by Ann Lee",
            *long_post,
            "Posted in Food | 2 Comments",
            "Back from the market",
            "March 2, 2019",
            *STORY,
            MORE[0],
            "Posted in Market | Leave a comment",
        )
    )
    (drafts,) = clean_all(page)
    assert [d.title for d in drafts] == ["Sausages win protected status", "Back from the market"]


@pytest.mark.parametrize(
    ("byline", "when"),
    [
        (
            "Ann Lee | Aug. 9, 2012, 10:10 AM | 17,749 | 78",
            datetime(2012, 8, 9, 10, 10, tzinfo=UTC),
        ),
        (
            "By Ann Lee at 1:12 pm Thursday, August 9, 2012",
            datetime(2012, 8, 9, 13, 12, tzinfo=UTC),
        ),
    ],
    ids=["name-bar-date", "by-name-at-time"],
)
def test_a_byline_in_its_other_shapes_gives_author_and_date(byline: str, when: datetime) -> None:
    page = "\n".join(("Sausages win protected status", byline, *STORY))
    ((draft,),) = clean_all(page)
    assert (draft.author, draft.published) == ("Ann Lee", when)
    assert draft.paragraphs == STORY


def test_the_page_titles_headline_is_the_title_however_long_and_however_it_ends() -> None:
    headline = "They were laid off from their game studio. Now they want to change how we play."
    page = "\n".join((f"{headline} > Features", "Google Plus", "Share", headline, *STORY))
    ((draft,),) = clean_all(page)
    assert draft.title == headline
    assert draft.paragraphs == STORY
