"""The promises a newsletter service lives by, end to end through `digest send` and `digest
serve` with a real SMTP server: who left is never mailed again, a dry run publishes nothing,
a refused recipient is never "sent", and the shipped example settings never reach anyone."""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
import shutil
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from digest import db
from digest.serve import create_app

from .conftest import REAL_SENDER, ROOT, SEEDS, Handler, run, running, seeds_config

pytestmark = pytest.mark.slow  # end to end: the pipeline through a real SMTP relay

SECRET = REAL_SENDER["unsubscribe_secret"].strip('"')
EVERYONE = {"ada@example.org", "alan@example.org", "grace@example.com"}


def _readers(count: int) -> list[str]:
    return [f"reader{n:02d}@example.org" for n in range(count)]


def _readers_list(tmp_path: Path, count: int) -> Path:
    """A subscribers file of ``count`` readers, every article each."""
    path = tmp_path / "many.csv"
    path.write_text("email\n" + "".join(f"{r}\n" for r in _readers(count)), encoding="utf-8")
    return path


def _token(message: bytes) -> str:
    """The unsubscribe token of a received message's List-Unsubscribe URL."""
    parsed = email.message_from_bytes(message, policy=email.policy.default)
    url = re.search(r"<(https://[^>]+)>", str(parsed["List-Unsubscribe"]))
    assert url is not None
    return parse_qs(urlsplit(url[1]).query)["token"][0]


def _published(outbox: Path) -> dict[str, str]:
    """Every published file of outbox/ (not the dry runs' preview/) with its hash."""
    return {
        str(path.relative_to(outbox)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(outbox.rglob("*"))
        if path.is_file() and path.relative_to(outbox).parts[0] != "preview"
    }


# ---------------------------------------------------------------- who left is never mailed


def test_who_unsubscribed_gets_nothing_after_a_reimport(
    tmp_path: Path, database_url: str, relay: Handler
) -> None:
    config = seeds_config(tmp_path, relay.port, database_url)
    first = run("send", config=config)
    assert first.exit_code == 0, first.output
    assert relay.counts() == Counter(EVERYONE)
    tokens = {to: _token(message) for to, message in relay.accepted}

    # Ada presses one-click unsubscribe (RFC 8058: a POST to the link in her mail, here
    # reached through `digest serve` as a reverse proxy would); Alan asks the operator.
    outbox = tmp_path / "outbox"
    with db.opened(database_url) as engine:
        app = create_app(
            outbox, engine_url=database_url, unsubscribe_secret=SECRET, cache_max_age=0,
            title="The Daily Digest",
        )  # fmt: skip
        with running(app) as port:
            answer = httpx.post(
                f"http://127.0.0.1:{port}/unsubscribe",
                params={"token": tokens["ada@example.org"]},
                data={"List-Unsubscribe": "One-Click"},
                timeout=10,
            )
        assert answer.status_code == 200, answer.text
        engine.dispose()
    removed = run("subscribers", "remove", "alan@example.org", config=config)
    assert removed.exit_code == 0, removed.output

    # The operator imports the list again, as it was: the two stay unsubscribed.
    imported = run("subscribers", "import", str(ROOT / "config" / "subscribers.csv"), config=config)
    assert imported.output.startswith(
        f"Imported {ROOT / 'config' / 'subscribers.csv'}: 0 added, 1 updated, "
        "2 unsubscribed or bounced left as they are, 0 rows skipped."
    )
    relay.accepted.clear()
    second = run("send", "--date", "2019-01-02", "--force", config=config)
    assert second.exit_code == 0, second.output
    assert relay.counts() == Counter({"grace@example.com": 1})
    assert "2 unsubscribed or bounced: not sent to." in second.output

    # Everyone left: nothing is sent, and the run says why.
    assert run("subscribers", "remove", "grace@example.com", config=config).exit_code == 0
    relay.accepted.clear()
    third = run("send", "--date", "2019-01-03", "--force", config=config)
    assert third.exit_code == 0, third.output
    assert relay.accepted == []
    assert (
        "Issue 2019-01-03: no active subscribers (3 unsubscribed or bounced, never mailed "
        "again), so nothing to send." in third.output
    )
    listed = run("subscribers", "list", "--status", "unsubscribed", "--json", config=config)
    assert '"via": "one-click"' in listed.output
    assert '"via": "operator"' in listed.output


def test_the_subscribers_file_is_imported_once_only(tmp_path: Path, relay: Handler) -> None:
    listed = tmp_path / "subscribers.csv"
    listed.write_text("email\nada@example.org\nbob@example.org\n", encoding="utf-8")
    config = seeds_config(tmp_path, port=relay.port, subscribers_file=f'"{listed}"')
    assert run("send", config=config).exit_code == 0
    assert run("subscribers", "remove", "ada@example.org", config=config).exit_code == 0
    assert run("subscribers", "remove", "bob@example.org", config=config).exit_code == 0
    relay.accepted.clear()
    again = run("send", "--dry-run", "--date", "2019-01-02", "--force", config=config)
    assert again.exit_code == 0, again.output
    assert "no active subscribers (2 unsubscribed or bounced" in again.output
    preview = tmp_path / "outbox" / "preview" / "2019-01-02" / "mail"
    assert not list(preview.glob("*.eml"))


def test_an_address_removed_before_the_first_send_is_left_out_of_the_first_import(
    tmp_path: Path, relay: Handler
) -> None:
    config = seeds_config(tmp_path, port=relay.port)
    removed = run("subscribers", "remove", "alan@example.org", config=config)
    assert removed.output == (
        "alan@example.org was not on the list; recorded as unsubscribed, so no import adds it.\n"
    )
    preview = run("send", "--dry-run", config=config)
    assert "2 of 2 recipients written (dry run)" in preview.output
    assert run("send", config=config).exit_code == 0
    assert relay.counts() == Counter(EVERYONE - {"alan@example.org"})


def test_no_automatic_import_once_the_operator_gave_a_list(tmp_path: Path, relay: Handler) -> None:
    config = seeds_config(tmp_path, port=relay.port)
    assert run("subscribers", "add", "zoe@example.org", config=config).exit_code == 0
    assert run("subscribers", "remove", "zoe@example.org", config=config).exit_code == 0
    result = run("send", config=config)
    assert result.exit_code == 0, result.output
    assert relay.accepted == []
    assert "no active subscribers (1 unsubscribed or bounced" in result.output


# ---------------------------------------------------------------- a dry run publishes nothing


def test_a_dry_run_changes_no_published_file(tmp_path: Path, relay: Handler) -> None:
    config = seeds_config(tmp_path, port=relay.port)
    assert run("send", config=config).exit_code == 0
    outbox = tmp_path / "outbox"
    before = _published(outbox)
    assert {"feed.xml", "atom.xml", "index.html", "issues/2019-01-01/index.html"} <= set(before)
    relay.accepted.clear()
    for args in (
        ["--dry-run"],
        ["--dry-run", "--date", "2019-01-05", "--force"],
        ["--dry-run", "--date", "2018-12-20"],
    ):
        result = run("send", *args, config=config)
        assert result.exit_code == 0, result.output
        assert _published(outbox) == before, args
    assert relay.accepted == []
    preview = outbox / "preview" / "2019-01-05"
    assert (preview / "issues" / "2019-01-05" / "index.html").is_file()
    assert "2019-01-05" in (preview / "index.html").read_text(encoding="utf-8")
    assert len(list((preview / "mail").glob("*.eml"))) == 3
    assert "2019-01-05" not in (outbox / "index.html").read_text(encoding="utf-8")


def test_a_dry_run_on_an_empty_outbox_writes_only_its_preview(tmp_path: Path) -> None:
    config = seeds_config(tmp_path)
    assert run("send", "--dry-run", config=config).exit_code == 0
    outbox = tmp_path / "outbox"
    assert sorted(p.name for p in outbox.iterdir()) == ["preview"]


# ---------------------------------------------------------------- failed means failed


def test_a_refused_recipient_stays_failed_until_retried(tmp_path: Path, relay: Handler) -> None:
    config = seeds_config(tmp_path, port=relay.port)
    relay.refuse = {"alan@example.org"}
    first = run("send", config=config)
    assert first.exit_code == 1
    assert "2 of 3 recipients sent" in first.output
    assert "Error: alan@example.org: 550 5.1.1 <alan@example.org>: no such user" in first.output
    again = run("send", config=config)
    assert again.exit_code == 1
    assert "0 of 3 recipients sent" in again.output
    assert "2 already sent" in again.output
    assert "1 refused by an earlier run" in again.output
    status = run("status", config=config)
    assert status.exit_code == 1
    assert re.search(r"│ sent\s+│ 2\s+│", status.output), status.output
    assert re.search(r"│ failed \(refused for good\)\s+│ 1\s+│", status.output)
    assert "failed: alan@example.org: 550 5.1.1 <alan@example.org>: no such user" in status.output

    relay.refuse = set()
    retried = run("send", "--retry-failed", config=config)
    assert retried.exit_code == 0, retried.output
    assert relay.counts() == Counter(EVERYONE)
    assert run("send", "--retry-failed", config=config).exit_code == 0
    assert relay.counts() == Counter(EVERYONE)
    done = run("status", config=config)
    assert done.exit_code == 0, done.output
    assert re.search(r"│ sent\s+│ 3\s+│", done.output)


@pytest.mark.parametrize(
    "reply", ["535 5.7.8 Authentication credentials invalid", "554 5.7.1 Client host rejected"]
)
def test_a_relay_refusing_everyone_stops_and_leaves_them_to_send(
    tmp_path: Path, relay: Handler, reply: str
) -> None:
    many = _readers_list(tmp_path, 20)
    config = seeds_config(tmp_path, port=relay.port, subscribers_file=f'"{many}"')
    relay.refuse_all = reply
    stopped = run("send", config=config)
    assert stopped.exit_code == 1
    assert stopped.output.startswith(
        f"Error: delivery stopped: the relay refused the first 3 recipients alike ({reply}), "
    )
    assert len(relay.rcpt_tried) == 3
    status = run("status", config=config)
    assert re.search(r"│ failed \(refused for good\)\s+│ 0\s+│", status.output), status.output
    assert re.search(r"│ pending \(not tried yet\)\s+│ 17\s+│", status.output)

    relay.refuse_all = None
    fixed = run("send", config=config)
    assert fixed.exit_code == 0, fixed.output
    assert relay.counts() == Counter(_readers(20))


def test_a_relay_that_starts_refusing_mid_run_stops_and_loses_nobody(
    tmp_path: Path, relay: Handler
) -> None:
    many = _readers_list(tmp_path, 12)
    readers = _readers(12)
    config = seeds_config(tmp_path, port=relay.port, subscribers_file=f'"{many}"')
    relay.refuse_all, relay.refuse_all_after = "554 5.7.1 blocked: sending quota exceeded", 4
    stopped = run("send", config=config)
    assert stopped.exit_code == 1
    assert stopped.output.startswith(
        "Error: delivery stopped: the relay refused the last 3 recipients alike "
        "(554 5.7.1 blocked: sending quota exceeded)"
    )
    assert "4 sent this run" in stopped.output
    assert len(relay.rcpt_tried) == 7
    relay.refuse_all = None
    fixed = run("send", config=config)
    assert fixed.exit_code == 0, fixed.output
    assert relay.counts() == Counter(readers)


def test_a_recipient_refused_again_after_a_stop_is_failed_and_the_run_goes_on(
    tmp_path: Path, relay: Handler
) -> None:
    """After a stop, the deferred recipients refused once more are failed for good (their
    own addresses are refused), and no run stops on them again and again."""
    many = _readers_list(tmp_path, 8)
    readers = _readers(8)
    config = seeds_config(tmp_path, port=relay.port, subscribers_file=f'"{many}"')
    relay.refuse_all = "554 5.7.1 recipient domain blocked"
    assert run("send", config=config).exit_code == 1
    relay.refuse_all = None
    # The three it stopped on are refused for themselves, with the same policy reply.
    relay.rcpt_replies = dict.fromkeys(readers[:3], "554 5.7.1 recipient domain blocked")
    again = run("send", config=config)
    assert again.exit_code == 1
    assert "5 of 8 recipients sent" in again.output
    assert relay.counts() == Counter(readers[3:])


def test_a_relay_refusing_the_sender_stops_at_once_and_loses_nobody(
    tmp_path: Path, relay: Handler
) -> None:
    config = seeds_config(tmp_path, port=relay.port)
    relay.refuse_all_mail = "535 5.7.8 Authentication credentials invalid"
    stopped = run("send", config=config)
    assert stopped.exit_code == 1
    assert stopped.output.startswith("Error: SMTP server 127.0.0.1:")
    assert "check smtp_user and smtp_password" in stopped.output
    assert relay.accepted == []
    status = run("status", config=config)
    assert re.search(r"│ failed \(refused for good\)\s+│ 0\s+│", status.output), status.output
    relay.refuse_all_mail = None
    fixed = run("send", config=config)
    assert fixed.exit_code == 0, fixed.output
    assert relay.counts() == Counter(EVERYONE)


# ---------------------------------------------------------------- pre-flight


def test_a_real_send_on_the_shipped_config_is_refused_before_any_connection(
    tmp_path: Path, relay: Handler
) -> None:
    shipped = tmp_path / "config"
    shutil.copytree(ROOT / "config", shipped)
    text = (shipped / "digest.toml").read_text(encoding="utf-8")
    text = text.replace('"sqlite:///../var/digest.db"', f'"sqlite:///{tmp_path / "d.db"}"')
    text = text.replace('"../seeds"', f'"{SEEDS}"').replace('"../outbox"', f'"{tmp_path / "o"}"')
    text = text.replace("smtp_port = 25", f"smtp_port = {relay.port}")
    (shipped / "digest.toml").write_text(text, encoding="utf-8")
    refused = run("send", config=shipped / "digest.toml")
    assert refused.exit_code == 1
    lines = refused.output.splitlines()
    assert lines[0].startswith("Error: a real send needs real settings")
    named = [line.split()[0] for line in lines[1:]]
    assert named == [
        "base_url", "base_url", "from_address", "postal_address", "unsubscribe_secret"
    ]  # fmt: skip
    assert relay.sessions == 0
    assert not (tmp_path / "o").exists()
    assert run("send", "--dry-run", config=shipped / "digest.toml").exit_code == 0


# ---------------------------------------------------------------- operator safety


def test_feed_ids_stay_when_the_site_moves(tmp_path: Path, relay: Handler) -> None:
    import feedparser

    config = seeds_config(tmp_path, port=relay.port)
    assert run("send", config=config).exit_code == 0
    feed = tmp_path / "outbox" / "feed.xml"
    before = {e.link.rsplit("/", 1)[-1]: e.id for e in feedparser.parse(feed).entries}
    moved = seeds_config(
        tmp_path,
        port=relay.port,
        base_url='"https://digest.new-home.net/"',
    )
    assert run("send", "--date", "2019-01-02", "--force", config=moved).exit_code == 0
    entries = feedparser.parse(feed).entries
    assert all(e.link.startswith("https://digest.new-home.net/") for e in entries)
    after = {e.link.rsplit("/", 1)[-1]: e.id for e in entries}
    assert after == before
    assert all(i.startswith("tag:news.digest-test.net,") for i in after.values())


def test_status_of_an_issue_never_sent(tmp_path: Path) -> None:
    result = run("status", "--date", "2019-01-01", config=seeds_config(tmp_path))
    assert result.exit_code == 0
    assert result.output == (
        "Issue 2019-01-01 was not sent yet; `digest send --dry-run` shows what would go out.\n"
    )
