"""Subscribers: validated addresses, upserts, the streamed list, CSV import and the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from digest import subscribers
from digest.errors import SubscriberError
from digest.models import Subscriber

from .conftest import ROOT, run, write_config

NOW = datetime(2019, 1, 1, 7, tzinfo=UTC)


def write_csv(tmp_path: Path, text: str, *, encoding: str = "utf-8") -> Path:
    path = tmp_path / "subscribers.csv"
    path.write_bytes(text.encode(encoding))
    return path


# ---------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("ada@example.org", "ada@example.org"),
        ("  Ada@EXAMPLE.org ", "ada@example.org"),  # one inbox, whatever the case
        ("a.b+news@sub.example.com", "a.b+news@sub.example.com"),
        ("kim@bücher.de", "kim@xn--bcher-kva.de"),  # IDN domains stored in ASCII
    ],
)
def test_normalize(given: str, stored: str) -> None:
    assert subscribers.normalize(given) == stored


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("nobody", "'nobody' is not a valid email address: An email address must have an @-sign."),
        ("a@b", "'a@b' is not a valid email address: The part after the @-sign is not valid."),
        ("ü@example.org", "Internationalized characters before the @-sign are not supported"),
        ("a..b@example.org", "cannot have two periods in a row"),
        ("a@example.org\r\nBcc: x@example.org", "is not a valid email address"),
    ],
)
def test_normalize_rejects_with_one_line_reason(given: str, reason: str) -> None:
    with pytest.raises(SubscriberError) as caught:
        subscribers.normalize(given)
    assert reason in str(caught.value)
    assert "\n" not in str(caught.value)


# ---------------------------------------------------------------- the store


def test_add_upserts_by_normalized_address(engine: Engine) -> None:
    first, action = subscribers.add(engine, "Ada@Example.org", name="Ada", tags=["Russia"], now=NOW)
    assert (first.subscriber, first.status, action) == (
        Subscriber("ada@example.org", "Ada", frozenset({"russia"})),
        "active",
        "added",
    )
    again, action = subscribers.add(engine, "Ada@EXAMPLE.ORG", tags=["Arms Control"], now=NOW)
    # "Ada@" and "ada@" are one subscriber: no provider tells them apart.
    assert subscribers.normalize("ADA@example.org") == again.email
    # Same person: only what is given changes: a tag is added, the name kept.
    assert action == "updated"
    assert again.subscriber == Subscriber(
        "ada@example.org", "Ada", frozenset({"arms-control", "russia"})
    )
    replaced, _ = subscribers.add(
        engine, "ada@example.org", tags=["usa"], replace_tags=True, now=NOW
    )
    assert replaced.subscriber == Subscriber("ada@example.org", "Ada", frozenset({"usa"}))
    assert subscribers.all_subscribers(engine) == [replaced.subscriber]
    assert subscribers.count(engine) == 1


@pytest.mark.slow
def test_unsubscribed_stays_as_a_suppression_record(engine: Engine) -> None:
    subscribers.add(engine, "ada@example.org", now=NOW)
    subscribers.add(engine, "bob@example.org", now=NOW)
    later = datetime(2019, 2, 3, 4, 5, tzinfo=UTC)
    found, action = subscribers.suppress(engine, "ada@example.ORG", via="one-click", now=later)
    assert (found.status, found.via, found.since, action) == (
        "unsubscribed",
        "one-click",
        datetime(2019, 2, 3, 4, 5),
        "suppressed",
    )
    # A second request keeps the first record.
    again, action = subscribers.suppress(engine, "ada@example.org", via="operator", now=NOW)
    assert (again.via, action) == ("one-click", "already")
    assert [s.email for s in subscribers.all_subscribers(engine)] == ["bob@example.org"]
    assert [s.email for s in subscribers.stream(engine)] == ["bob@example.org"]
    assert subscribers.counts(engine) == {"active": 1, "unsubscribed": 1}
    # An address not on the list is recorded as suppressed, so no import adds it later.
    zed, action = subscribers.suppress(engine, "zed@example.org", via="operator", now=NOW)
    assert (zed.status, action) == ("unsubscribed", "recorded")
    assert [s.email for s in subscribers.listing(engine, status="unsubscribed")] == [
        "ada@example.org",
        "zed@example.org",
    ]


def test_a_suppressed_address_comes_back_only_by_resubscribe(engine: Engine) -> None:
    subscribers.add(engine, "ada@example.org", tags=["usa"], now=NOW)
    subscribers.suppress(engine, "ada@example.org", via="bounce", status="bounced", now=NOW)
    with pytest.raises(SubscriberError) as caught:
        subscribers.add(engine, "Ada@example.org", tags=["russia"], now=NOW)
    assert str(caught.value) == (
        "ada@example.org bounced on 2019-01-01 (bounce) and is never mailed again; if they "
        "asked to come back, run `digest subscribers add --resubscribe` (it is recorded)"
    )
    assert subscribers.count(engine) == 0
    back, action = subscribers.add(engine, "ada@example.org", resubscribe=True, now=NOW)
    assert (back.status, back.via, action) == ("active", "resubscribe", "resubscribed")
    assert back.subscriber.tags == frozenset({"usa"})


@pytest.mark.slow
def test_import_never_reactivates_a_suppressed_address(engine: Engine, tmp_path: Path) -> None:
    subscribers.add(engine, "ada@example.org", name="Ada", now=NOW)
    subscribers.suppress(engine, "ada@example.org", via="operator", now=NOW)
    path = write_csv(tmp_path, "email,name,tags\nada@example.org,Ada L.,usa\nbob@example.org,,\n")
    report = subscribers.import_csv(engine, path, now=NOW)
    assert (report.added, report.updated, report.suppressed, report.errors) == (1, 0, 1, ())
    (ada,) = subscribers.listing(engine, status="unsubscribed")
    assert (ada.subscriber.name, ada.subscriber.tags) == ("Ada", frozenset())


@pytest.mark.slow
def test_stream_groups_equal_tag_sets_across_pages(engine: Engine) -> None:
    tag_sets = [(), ("usa",), ("russia", "usa"), ("summit",), ("usa",), (), ("russia", "usa")]
    for n, tags in enumerate(tag_sets * 3):
        subscribers.add(engine, f"user{n:02d}@example.org", tags=tags, now=NOW)
    streamed = list(subscribers.stream(engine, chunk=4))
    assert len(streamed) == subscribers.count(engine) == 21
    assert len({s.email for s in streamed}) == 21
    runs = [s.tags for n, s in enumerate(streamed) if n == 0 or streamed[n - 1].tags != s.tags]
    assert len(runs) == len(set(runs)) == 4  # each tag set in one run
    assert runs[0] == frozenset()  # no tags sorts first
    within = [s.email for s in streamed if s.tags == frozenset({"usa"})]
    assert within == sorted(within)


def test_stream_of_empty_store(engine: Engine) -> None:
    assert list(subscribers.stream(engine)) == []


# ---------------------------------------------------------------- CSV import


def test_import_csv_reports_bad_rows_and_imports_the_rest(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        "\ufeffEmail,Name,Tags\n"
        "ada@example.org,Ada Lovelace,Russia; arms control\n"
        "not-an-address,Nobody,usa\n"
        "\n"
        'grace@example.com,Grace,"summit, sanctions"\n'
        ",No Address,usa\n"
        "ada@EXAMPLE.ORG,Ada again,usa\n"
        "alan@example.org,,\n",
    )
    report = subscribers.import_csv(engine, path, now=NOW)
    assert report == subscribers.ImportReport(
        added=3,
        updated=0,
        errors=(
            "line 3: 'not-an-address' is not a valid email address: "
            "An email address must have an @-sign.",
            "line 6: no email address",
            "line 7: ada@example.org is already on line 2; skipped",
        ),
    )
    assert subscribers.all_subscribers(engine) == [
        Subscriber("ada@example.org", "Ada Lovelace", frozenset({"russia", "arms", "control"})),
        Subscriber("alan@example.org", None, frozenset()),
        Subscriber("grace@example.com", "Grace", frozenset({"summit", "sanctions"})),
    ]


def test_import_csv_updates_stored_subscribers(engine: Engine, tmp_path: Path) -> None:
    subscribers.add(engine, "ada@example.org", name="Ada", tags=["usa"], now=NOW)
    path = write_csv(tmp_path, "email,tags\nada@example.org,russia\nbob@example.org,usa\n")
    report = subscribers.import_csv(engine, path, now=NOW)
    assert (report.added, report.updated, report.errors) == (1, 1, ())
    ada = subscribers.all_subscribers(engine)[0]
    assert ada == Subscriber("ada@example.org", "Ada", frozenset({"russia"}))


@pytest.mark.slow
def test_import_csv_in_batches(engine: Engine, tmp_path: Path) -> None:
    rows = "".join(f"user{n}@example.org,,t{n % 7}\n" for n in range(1234))
    report = subscribers.import_csv(
        engine, write_csv(tmp_path, "email,name,tags\n" + rows), now=NOW
    )
    assert (report.added, report.updated, report.errors) == (1234, 0, ())
    assert subscribers.count(engine) == 1234


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("name,tags\nAda,usa\n", "has no 'email' column; its first line must be email,name,tags"),
        ("", "has no 'email' column"),
    ],
)
def test_import_csv_without_email_column(
    engine: Engine, tmp_path: Path, content: str, message: str
) -> None:
    with pytest.raises(SubscriberError, match=message):
        subscribers.import_csv(engine, write_csv(tmp_path, content), now=NOW)
    assert subscribers.count(engine) == 0


def test_import_csv_missing_or_not_utf8(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(SubscriberError, match=r"cannot read .*nope.csv: No such file"):
        subscribers.import_csv(engine, tmp_path / "nope.csv", now=NOW)
    latin = write_csv(tmp_path, "email,name\nada@example.org,Zoë\n", encoding="utf-16")
    with pytest.raises(SubscriberError, match="is not UTF-8 text"):
        subscribers.import_csv(engine, latin, now=NOW)
    assert subscribers.count(engine) == 0


def test_shipped_list_gives_different_variants(engine: Engine) -> None:
    report = subscribers.import_csv(engine, ROOT / "config" / "subscribers.csv", now=NOW)
    assert (report.added, report.errors) == (3, ())
    stored = subscribers.all_subscribers(engine)
    tag_sets = {s.tags for s in stored}
    assert len(tag_sets) == 3 and frozenset() in tag_sets
    known = {"russia", "usa", "arms-control", "summit", "sanctions", "diplomacy"}
    assert set().union(*tag_sets) <= known
    assert all(s.email.endswith(("@example.org", "@example.com")) for s in stored)


def test_read_csv_stores_nothing(tmp_path: Path) -> None:
    found, errors = subscribers.read_csv(write_csv(tmp_path, "email\nada@example.org\nbad\n"))
    assert found == [Subscriber("ada@example.org")]
    assert errors == (
        "line 3: 'bad' is not a valid email address: An email address must have an @-sign.",
    )


# ---------------------------------------------------------------- CLI


@pytest.mark.slow
def test_cli_add_list_remove(tmp_path: Path) -> None:
    config = write_config(tmp_path, tag_rules='{ russia = ["Moscow"], arms-control = ["arms"] }')
    added = run(
        "subscribers", "add", "Ada@Example.ORG", "--name", "Ada",
        "--tag", "Russia", "--tag", "arms control", config=config,
    )  # fmt: skip
    assert added.exit_code == 0
    assert added.output == "Subscribed ada@example.org (arms-control, russia).\n"
    assert run("subscribers", "add", "bob@example.org", config=config).output == (
        "Subscribed bob@example.org (every article).\n"
    )
    listed = run("subscribers", "list", config=config)
    assert listed.exit_code == 0
    assert "│ ada@example.org │ Ada  │ arms-control, russia │ active │" in listed.output
    assert "│ bob@example.org │      │ (every article)      │ active │" in listed.output
    assert listed.output.endswith("2 subscribers: 2 active.\n")
    removed = run("subscribers", "remove", "bob@EXAMPLE.org", config=config)
    assert (removed.exit_code, removed.output) == (
        0,
        "Removed bob@example.org: unsubscribed, never mailed again.\n",
    )
    again = run("subscribers", "remove", "bob@example.org", config=config)
    assert again.exit_code == 0
    assert again.output.startswith("bob@example.org is already unsubscribed (")
    assert again.output.endswith(", operator).\n")
    unknown = run("subscribers", "remove", "zed@example.org", config=config)
    assert unknown.exit_code == 0
    assert unknown.output == (
        "zed@example.org was not on the list; recorded as unsubscribed, so no import adds it.\n"
    )
    as_json = json.loads(run("subscribers", "list", "--json", config=config).output)
    assert [(s["email"], s["name"], s["tags"], s["status"], s["via"]) for s in as_json] == [
        ("ada@example.org", "Ada", ["arms-control", "russia"], "active", None),
        ("bob@example.org", None, [], "unsubscribed", "operator"),
        ("zed@example.org", None, [], "unsubscribed", "operator"),
    ]
    only = run("subscribers", "list", "--status", "unsubscribed", config=config)
    assert "bob@example.org" in only.output
    assert "ada@example.org" not in only.output
    assert only.output.endswith("2 subscribers: 2 unsubscribed.\n")
    back = run("subscribers", "add", "bob@example.org", config=config)
    assert back.exit_code == 1
    assert back.output.startswith("Error: bob@example.org unsubscribed on ")
    assert run("subscribers", "add", "bob@example.org", "--resubscribe", config=config).output == (
        "Resubscribed bob@example.org (every article).\n"
    )


@pytest.mark.slow
def test_cli_add_changes_only_what_is_given(tmp_path: Path) -> None:
    config = write_config(tmp_path, tag_rules='{ usa = ["Washington"], russia = ["Moscow"] }')
    run("subscribers", "add", "ada@example.org", "--name", "Ada", "--tag", "usa", config=config)
    more = run("subscribers", "add", "ada@example.org", "--tag", "russia", config=config)
    assert more.output == "Updated ada@example.org (russia, usa).\n"
    reset = run("subscribers", "add", "ada@example.org", "--set-tags", config=config)
    assert reset.output == "Updated ada@example.org (every article).\n"
    (ada,) = json.loads(run("subscribers", "list", "--json", config=config).output)
    assert (ada["name"], ada["tags"]) == ("Ada", [])


def test_cli_add_warns_of_a_tag_nothing_produces(tmp_path: Path) -> None:
    config = write_config(tmp_path, tag_rules='{ space = ["NASA"] }')
    result = run(
        "subscribers", "add", "ada@example.org", "--tag", "spcae", "--tag", "space", config=config
    )
    assert result.exit_code == 0
    assert result.output == (
        "Warning: no tag rule and no stored article has the tag 'spcae', so ada@example.org "
        "gets nothing for it yet; check its spelling, or add a tag rule for it\n"
        "Subscribed ada@example.org (space, spcae).\n"
    )


def test_cli_list_empty(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    assert run("subscribers", "list", config=config).output == "No subscribers.\n"
    assert run("subscribers", "list", "--json", config=config).output == "[]\n"


def test_cli_add_bad_address(tmp_path: Path) -> None:
    result = run("subscribers", "add", "ada at example.org", config=write_config(tmp_path))
    assert result.exit_code == 1
    assert result.output == (
        "Error: 'ada at example.org' is not a valid email address: "
        "An email address must have an @-sign.\n"
    )


def test_cli_import_with_a_bad_row(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    path = write_csv(tmp_path, "email,name,tags\nada@example.org,Ada,usa\nada@,Bad,\n")
    result = run("subscribers", "import", str(path), config=config)
    assert result.exit_code == 1
    assert result.stdout == f"Imported {path}: 1 added, 0 updated, 1 row skipped.\n"
    assert result.stderr == (
        f"Error: {path}:line 3: 'ada@' is not a valid email address: "
        "There must be something after the @-sign.\n"
    )
    clean = run("subscribers", "import", str(ROOT / "config" / "subscribers.csv"), config=config)
    assert clean.exit_code == 0
    assert clean.output.endswith(": 2 added, 1 updated, 0 rows skipped.\n")  # ada: updated


def test_cli_import_missing_file(tmp_path: Path) -> None:
    result = run("subscribers", "import", str(tmp_path / "nope.csv"), config=write_config(tmp_path))
    assert result.exit_code == 1
    assert result.output == (
        f"Error: cannot read {tmp_path / 'nope.csv'}: No such file or directory; "
        "check the file name\n"
    )


def test_import_csv_from_excel_bom_crlf_and_quoted_fields(engine: Engine, tmp_path: Path) -> None:
    """What a spreadsheet saves: a BOM, CRLF line ends, quoted cells holding commas, quotes
    and a line break; errors still name the line the row ends on."""
    path = write_csv(
        tmp_path,
        '\ufeff"Email","Name","Tags"\r\n'
        '"ada@example.org","Lovelace, Ada","Russia, arms-control"\r\n'
        '"bob@example.org","Bob ""The Builder""\r\nJones",usa\r\n'
        '"bad address",x,y\r\n'
        "Cy+News@Example.ORG,,\r\n",
    )
    report = subscribers.import_csv(engine, path, now=NOW)
    assert report == subscribers.ImportReport(
        added=3,
        updated=0,
        errors=(
            "line 5: 'bad address' is not a valid email address: "
            "An email address must have an @-sign.",
        ),
    )
    assert subscribers.all_subscribers(engine) == [
        Subscriber("ada@example.org", "Lovelace, Ada", frozenset({"russia", "arms-control"})),
        Subscriber("bob@example.org", 'Bob "The Builder" Jones', frozenset({"usa"})),
        Subscriber("cy+news@example.org", None, frozenset()),
    ]


@pytest.mark.slow
@pytest.mark.parametrize("chunk", [1, 3, 7, 10, 49, 50, 51])
def test_stream_is_one_total_order_across_any_page_size(engine: Engine, chunk: int) -> None:
    """Many subscribers per tag set, pages ending inside and at the edge of a tag set,
    addresses differing only in punctuation or '+': each once, equal tag sets together, in
    the same order whatever the page size."""
    tag_sets = [(), ("usa",), ("russia", "usa"), ("summit",), ("arms-control", "usa")]
    for n in range(50):
        local = ["reader", "reader-", "reader+news", "reader_", "r.eader"][n % 5]
        subscribers.add(engine, f"{local}{n // 5}@example.org", tags=tag_sets[n // 5 % 5], now=NOW)
    everyone = subscribers.all_subscribers(engine)
    assert len(everyone) == 50
    streamed = list(subscribers.stream(engine, chunk=chunk))
    assert sorted(streamed, key=lambda s: s.email) == everyone
    assert streamed == list(subscribers.stream(engine, chunk=1000))
    runs = [s.tags for n, s in enumerate(streamed) if n == 0 or streamed[n - 1].tags != s.tags]
    assert len(runs) == len(set(runs))  # each tag set in one run: one render of its variant


def test_a_subscribers_name_loses_its_bidi_controls(engine: Engine, tmp_path: Path) -> None:
    """Added one by one or imported: a right-to-left override, or a control character the
    fuzzing found, never reaches a greeting."""
    stored, _ = subscribers.add(engine, "ada@example.org", name="Ada \u202eLovelace\u202c", now=NOW)
    assert stored.subscriber.name == "Ada Lovelace"
    people = tmp_path / "people.csv"
    people.write_text(
        "email,name,tags\nbob@example.org,\u2066Bob\u2069 R\x08oe,\n", encoding="utf-8"
    )
    subscribers.import_csv(engine, people, now=NOW)
    names = {s.email: s.name for s in subscribers.all_subscribers(engine)}
    assert names == {"ada@example.org": "Ada Lovelace", "bob@example.org": "Bob Roe"}
