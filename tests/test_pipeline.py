"""`digest send` end to end: the seeds in, the outbox and a real SMTP server out."""

from __future__ import annotations

import email
import email.policy
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import feedparser
import pytest
from sqlalchemy import func, select

from digest import db, locks, store
from digest.errors import StoreError
from digest.schema import issues, sends, subscribers

from .conftest import SEEDS, Handler, free_port, run, seeds_config, serving
from .factories import SEND_NOW as NOW

pytestmark = pytest.mark.slow  # each test runs the whole pipeline on the seeds

# A short story, for a source folder's one more file.
LIBRARY = (
    "Library opens\n\nThe mayor opened a new library on Tuesday in the old town.\n\n"
    "Many people came to see the building and its books.\n"
)


def _seeds_copy(tmp_path: Path) -> Path:
    """A source folder holding the seeds, to add files to."""
    sources = tmp_path / "sources"
    shutil.copytree(SEEDS, sources)
    return sources


def _rows(tmp_path: Path, table: object) -> int:
    with db.opened(f"sqlite:///{tmp_path / 'digest.db'}") as engine, engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_a_dry_run_writes_the_outbox_and_changes_nothing_else(tmp_path: Path) -> None:
    result = run("send", "--dry-run", config=seeds_config(tmp_path))
    assert result.exit_code == 0, result.output
    assert "Ingested 6 new articles from the sources." in result.output
    assert "Issue 2019-01-01 (dry run: nothing sent)" in result.output
    assert "3 of 3 recipients written (dry run) in 3 variants" in result.output
    preview = tmp_path / "outbox" / "preview" / "2019-01-01"
    mails = sorted(p.name for p in (preview / "mail").glob("*.eml"))
    assert mails == ["ada@example.org.eml", "alan@example.org.eml", "grace@example.com.eml"]
    for name in ("feed.xml", "atom.xml", "index.html", "issues/2019-01-01/index.html"):
        assert (preview / name).stat().st_size > 0, name
        assert not (tmp_path / "outbox" / name).exists(), name  # nothing published
    assert len(list((preview / "articles").glob("*.html"))) == 6
    assert len(feedparser.parse(preview / "feed.xml").entries) == 6
    # No ledger rows, no issue claimed, no subscriber imported.
    assert (_rows(tmp_path, issues), _rows(tmp_path, sends), _rows(tmp_path, subscribers)) == (
        0,
        0,
        0,
    )


def test_a_send_reaches_everyone_once_and_a_rerun_sends_nothing(
    tmp_path: Path, relay: Handler
) -> None:
    config = seeds_config(tmp_path, relay.port)
    first = run("send", config=config)
    assert first.exit_code == 0, first.output
    assert "3 of 3 recipients sent in 3 variants" in first.output
    assert relay.counts() == {"ada@example.org": 1, "alan@example.org": 1, "grace@example.com": 1}
    again = run("send", config=config)
    assert again.exit_code == 0, again.output
    assert "0 of 3 recipients sent in 3 variants" in again.output
    assert "3 already sent" in again.output
    assert sum(relay.counts().values()) == 3
    assert (_rows(tmp_path, issues), _rows(tmp_path, sends), _rows(tmp_path, subscribers)) == (
        1,
        3,
        3,
    )
    for rcpt, raw in relay.accepted:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert message["To"] == rcpt
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]


def test_a_dry_run_after_a_send_shows_the_same_issue(tmp_path: Path, relay: Handler) -> None:
    config = seeds_config(tmp_path, relay.port)
    assert run("send", config=config).exit_code == 0
    preview = run("send", "--dry-run", config=config)
    assert "3 of 3 recipients written (dry run)" in preview.output
    assert "(all articles) │ 1          │ 6" in preview.output


def test_an_issue_with_no_articles_sends_nothing_and_says_so(
    tmp_path: Path, relay: Handler
) -> None:
    config = seeds_config(tmp_path, relay.port, window='"1d"')
    result = run("send", "--date", "2026-11-27", config=config)
    assert result.exit_code == 0, result.output
    assert "Issue 2026-11-27: no new articles published 2026-11-26 … 2026-11-26; nothing sent." in (
        result.output
    )
    assert relay.accepted == []
    assert _rows(tmp_path, issues) == 0


def test_an_unreachable_relay_is_one_error_line_and_the_rerun_finishes(tmp_path: Path) -> None:
    port = free_port()
    result = run("send", config=seeds_config(tmp_path, port))
    assert result.exit_code == 1
    (line,) = [x for x in result.output.splitlines() if x.startswith("Error:")]
    assert f"127.0.0.1:{port}" in line and "--dry-run" in line
    assert "Traceback" not in result.output
    handler = Handler()
    with serving(handler) as controller:
        later = run("send", config=seeds_config(tmp_path, controller.port))
    assert later.exit_code == 0, later.output
    assert sum(handler.counts().values()) == 3


def test_a_bad_date_is_a_usage_error(tmp_path: Path) -> None:
    result = run("send", "--date", "27/11/2026", config=seeds_config(tmp_path))
    assert result.exit_code == 2
    assert "Invalid value for '--date'" in result.output


def test_a_back_dated_issue_gets_its_own_page(tmp_path: Path, relay: Handler) -> None:
    config = seeds_config(tmp_path, relay.port)
    assert run("send", config=config).exit_code == 0
    earlier = run("send", "--dry-run", "--date", "2018-12-31", "--force", config=config)
    assert earlier.exit_code == 0, earlier.output
    preview = tmp_path / "outbox" / "preview" / "2018-12-31"
    page = preview / "issues" / "2018-12-31" / "index.html"
    assert "Monday, December 31, 2018" in page.read_text(encoding="utf-8")
    archive = (preview / "index.html").read_text(encoding="utf-8")
    assert archive.index("2019-01-01") < archive.index("2018-12-31")
    published = (tmp_path / "outbox" / "index.html").read_text(encoding="utf-8")
    assert "2019-01-01" in published
    assert "2018-12-31" not in published  # a dry run publishes nothing


def test_changing_the_summary_budget_recomputes_stored_summaries(tmp_path: Path) -> None:
    def summaries(config: Path) -> list[str]:
        listed = run("articles", "--json", config=config)
        return [a["summary"] for a in json.loads(listed.output)]

    two = seeds_config(tmp_path, summary_sentences="2")
    assert run("ingest", config=two).exit_code == 0
    before = summaries(two)
    one = seeds_config(tmp_path, summary_sentences="1")
    assert run("send", "--dry-run", config=one).exit_code == 0
    after = summaries(one)
    assert after != before
    assert all(b.startswith(a) for a, b in zip(after, before, strict=True))


def test_a_new_store_summarizes_each_article_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ingest made the summaries under the current settings: none is made or written again."""
    from digest import pipeline
    from digest.settings import load_settings

    resummarized: list[str] = []
    real = store.refresh_summaries

    def counting(engine: Any, key: str, summarize: Any) -> int:
        return real(
            engine, key, lambda article: resummarized.append(article.id) or summarize(article)
        )

    monkeypatch.setattr(store, "refresh_summaries", counting)
    settings = load_settings(seeds_config(tmp_path))
    with db.opened(settings.database_url) as engine:
        batch = pipeline.ingest_sources(engine, settings, now=NOW)
        assert len(batch.articles) == 6
        assert pipeline.refresh_summaries(engine, settings) == 0
    assert resummarized == []


def test_a_real_send_with_the_shipped_placeholder_secret_is_refused(
    tmp_path: Path, relay: Handler
) -> None:
    config = seeds_config(tmp_path, relay.port)
    text = config.read_text(encoding="utf-8").replace(
        '"test-secret-0123456789abcdef"', '"change-me"'
    )
    config.write_text(text, encoding="utf-8")
    refused = run("send", config=config)
    assert refused.exit_code == 1
    assert refused.output.splitlines()[1].startswith(
        "  unsubscribe_secret is the shipped placeholder"
    )
    assert relay.accepted == []
    assert run("send", "--dry-run", config=config).exit_code == 0  # a preview is fine


def test_two_real_sends_of_one_digest_never_run_at_once(
    tmp_path: Path, database_url: str, relay: Handler
) -> None:
    config = seeds_config(tmp_path, relay.port, database_url=database_url)
    with db.opened(database_url) as engine, locks.send_lock(engine, "daily"):
        busy = run("send", config=config)
        assert busy.exit_code == 1
        assert busy.output.startswith("Error: another real send of digest 'daily' is running")
        assert run("send", "--dry-run", config=config).exit_code == 0  # a preview may run
    assert relay.accepted == []
    done = run("send", config=config)
    assert done.exit_code == 0, done.output
    assert sum(relay.counts().values()) == 3


def test_a_missing_seeds_folder_is_reported_and_exits_1(tmp_path: Path) -> None:
    missing = tmp_path / "no-seeds"
    result = run("send", "--dry-run", config=seeds_config(tmp_path, seeds_dir=f'"{missing}"'))
    assert result.exit_code == 1, result.output
    assert (
        f"Error: {missing}: no such file or directory; check seeds_dir"
        in result.output.splitlines()
    )
    assert "Ingested 0 new articles from the sources." in result.output


@pytest.mark.parametrize("dry_run", [True, False])
def test_no_subscriber_stored_and_no_subscribers_file_is_an_error_before_anything(
    tmp_path: Path, relay: Handler, dry_run: bool
) -> None:
    missing = tmp_path / "subscribers.csv"
    config = seeds_config(tmp_path, relay.port, subscribers_file=f'"{missing}"')
    result = run("send", *(["--dry-run"] if dry_run else []), config=config)
    assert result.exit_code == 1
    assert result.output == (
        f"Error: no subscribers: none is stored and subscribers_file {missing} does not exist; "
        "add them with `digest subscribers add` or `digest subscribers import FILE.csv`, "
        "or fix subscribers_file\n"
    )
    assert not (tmp_path / "outbox").exists()
    assert _rows(tmp_path, issues) == 0


@pytest.mark.parametrize("dry_run", [True, False])
def test_rows_of_the_subscribers_file_that_are_skipped_are_shown(
    tmp_path: Path, relay: Handler, dry_run: bool
) -> None:
    listed = tmp_path / "subscribers.csv"
    listed.write_text(
        "email,name,tags\nada@example.org,Ada,\nada@example.org,Ada again,\nnobody,,\n",
        encoding="utf-8",
    )
    config = seeds_config(tmp_path, relay.port, subscribers_file=f'"{listed}"')
    result = run("send", *(["--dry-run"] if dry_run else []), config=config)
    assert result.exit_code == 0, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert errors == [
        f"Error: {listed}:line 3: ada@example.org is already on line 2; skipped",
        f"Error: {listed}:line 4: 'nobody' is not a valid email address: "
        "An email address must have an @-sign.",
    ]
    assert "1 of 1 recipients" in result.output


def test_a_send_to_an_empty_list_says_so_instead_of_an_empty_table(tmp_path: Path) -> None:
    listed = tmp_path / "subscribers.csv"
    listed.write_text("email,name,tags\n", encoding="utf-8")
    result = run("send", "--dry-run", config=seeds_config(tmp_path, subscribers_file=f'"{listed}"'))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == (
        "Issue 2019-01-01 (dry run: nothing sent): no subscribers, so nothing to send; add them "
        "with `digest subscribers add` or `digest subscribers import FILE.csv`."
    )
    assert "Variant" not in result.output


def test_ctrl_c_mid_send_is_one_error_line_and_the_rerun_sends_the_rest(tmp_path: Path) -> None:
    listed = tmp_path / "subscribers.csv"
    listed.write_text(
        "email,name,tags\n" + "".join(f"u{i}@example.org,,\n" for i in range(20)), encoding="utf-8"
    )
    handler = Handler(stall_after=1)  # takes one message, then holds the 250 of the next
    with serving(handler) as controller:
        config = seeds_config(tmp_path, controller.port, subscribers_file=f'"{listed}"')
        command = [sys.executable, "-m", "digest", "--config", str(config), "send"]
        with subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ) as child:
            try:
                deadline = time.monotonic() + 30
                while len(handler.accepted) < 2:  # the send waits for the second message's 250
                    assert child.poll() is None, child.communicate()
                    assert time.monotonic() < deadline, "the send reached no second message"
                    time.sleep(0.01)
                child.send_signal(signal.SIGINT)
                out, err = child.communicate(timeout=20)
            except BaseException:
                child.kill()  # else leaving the block waits for a child the relay holds
                raise
        assert child.returncode == 130
        assert err == (
            "Error: interrupted; run `digest send` again to send to whom this run did not reach\n"
        )
        assert "Traceback" not in out
        assert len(handler.counts()) == 2  # one sent, one in flight
        handler.stall_after = None
        rerun = run("send", config=config)
    assert rerun.exit_code == 0, rerun.output
    assert set(handler.counts()) == {f"u{i}@example.org" for i in range(20)}


def test_view_in_browser_shows_the_subscribers_own_variant(tmp_path: Path) -> None:
    assert run("send", "--dry-run", config=seeds_config(tmp_path)).exit_code == 0
    outbox = tmp_path / "outbox" / "preview" / "2019-01-01"
    mail = outbox / "mail"

    def html_of(name: str) -> str:
        message = email.message_from_bytes((mail / name).read_bytes(), policy=email.policy.default)
        body = message.get_body(("html",))
        assert body is not None
        return str(body.get_content())

    base = "https://news.digest-test.net/daily/issues/2019-01-01/"
    assert f'href="{base}"' in html_of("ada@example.org.eml")
    assert f'href="{base}arms-control.html"' in html_of("grace@example.com.eml")
    page = (outbox / "issues" / "2019-01-01" / "arms-control.html").read_text(encoding="utf-8")
    whole = (outbox / "issues" / "2019-01-01" / "index.html").read_text(encoding="utf-8")
    titles = [e.title for e in feedparser.parse(outbox / "feed.xml").entries]
    assert sum(title in whole for title in titles) == 6
    assert sum(title in page for title in titles) == 3


def test_a_file_that_fails_never_blocks_a_send_and_is_read_again_once_changed(
    tmp_path: Path, database_url: str, relay: Handler
) -> None:
    sources = _seeds_copy(tmp_path)
    big = sources / "huge.txt"
    big.write_text("A headline\n\n" + "Too long a page. " * 600, encoding="utf-8")
    config = seeds_config(
        tmp_path, relay.port, database_url=database_url,
        seeds_dir=f'"{sources}"', max_file_bytes="8000",
    )  # fmt: skip
    first = run("send", config=config)
    assert first.exit_code == 0, first.output
    assert f"Error: {big}: " in first.output
    assert "Ingested 6 new articles from the sources." in first.output
    assert sum(relay.counts().values()) == 3
    # Recorded as failed: the next run does not read it again, nor say so again.
    again = run("send", "--dry-run", config=config)
    assert f"Error: {big}" not in again.output
    # Once changed, it is read again (and now it fits).
    big.write_text("A new headline\n\nThe page is short now, and it reads well enough.\n")
    changed = run("send", "--dry-run", "--date", "2019-01-02", "--force", config=config)
    assert f"Error: {big}" not in changed.output
    assert "Ingested 1 new article from the sources." in changed.output


def test_an_article_the_database_refuses_costs_only_that_file(
    tmp_path: Path, database_url: str, relay: Handler, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A value the store cannot hold (today a column limit or a constraint; before, a NUL on
    PostgreSQL or a 350-character tag) rolls back the batch: the batch is stored again
    article by article, and only that file is rejected."""
    sources = _seeds_copy(tmp_path)
    (sources / "extra.txt").write_text(LIBRARY, encoding="utf-8")
    real_save = store.save

    def refusing(engine: Any, batch: Any, *, now: Any, **options: Any) -> store.SaveReport:
        batch = list(batch)
        if any(a.title == "Library opens" for a in batch):
            raise StoreError("cannot write to the database: value too long for type x")
        return real_save(engine, batch, now=now, **options)

    monkeypatch.setattr(store, "save", refusing)
    config = seeds_config(
        tmp_path, relay.port, database_url=database_url,
        seeds_dir=f'"{sources}"',
    )  # fmt: skip
    result = run("send", config=config)
    assert result.exit_code == 0, result.output
    assert (
        f"Error: {sources / 'extra.txt'}: cannot be stored: cannot write to the database: "
        "value too long for type x; skipped" in result.output.splitlines()
    )
    assert "Ingested 6 new articles from the sources." in result.output
    assert sum(relay.counts().values()) == 3


def test_seeds_dir_that_is_a_file_exits_1(tmp_path: Path) -> None:
    afile = tmp_path / "seeds.txt"
    afile.write_text("not a folder\n", encoding="utf-8")
    result = run("send", "--dry-run", config=seeds_config(tmp_path, seeds_dir=f'"{afile}"'))
    assert result.exit_code == 1
    assert (
        f"Error: {afile}: not a folder; set seeds_dir to the folder of your source files"
        in result.output.splitlines()
    )


def test_what_is_no_file_in_the_sources_is_named_and_the_send_goes_on(tmp_path: Path) -> None:
    sources = _seeds_copy(tmp_path)
    os.mkfifo(sources / "pipe.txt")
    (sources / "gone.txt").symlink_to(tmp_path / "nowhere.txt")
    result = run("send", "--dry-run", config=seeds_config(tmp_path, seeds_dir=f'"{sources}"'))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert f"Error: {sources / 'pipe.txt'}: not a regular file; skipped" in lines
    assert f"Error: {sources / 'gone.txt'}: not a regular file; skipped" in lines
    assert "Ingested 6 new articles from the sources." in lines


def test_a_file_with_a_very_long_path_never_blocks_a_send(
    tmp_path: Path, database_url: str, relay: Handler
) -> None:
    import random

    sources = _seeds_copy(tmp_path)
    pick = random.Random(7)
    deep = sources.joinpath(
        *("".join(pick.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(200))
          for _ in range(17))
    )  # fmt: skip
    deep.mkdir(parents=True)
    (deep / "a.txt").write_text(LIBRARY, encoding="utf-8")
    for folder in [deep, *deep.parents[: len(deep.relative_to(sources).parts)]]:
        os.utime(folder, (1e9, 1e9))  # walked long after their last change
    config = seeds_config(
        tmp_path, relay.port, database_url=database_url,
        seeds_dir=f'"{sources}"',
    )  # fmt: skip
    result = run("send", config=config)
    assert result.exit_code == 0, result.output
    assert "Ingested 7 new articles from the sources." in result.output
    assert sum(relay.counts().values()) == 3
    again = run("send", "--dry-run", config=config)
    assert again.exit_code == 0, again.output
    unrecorded = "so every run reads it again"
    if "postgresql" in database_url:  # the path is past what PostgreSQL's index holds
        assert unrecorded in result.output
        assert unrecorded in again.output  # its folder is listed again too, as promised
