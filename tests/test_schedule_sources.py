"""End to end: `digest schedule` polls the sources by URL on a local HTTP server and sends at
07:00 an issue of articles that only that server had."""

from __future__ import annotations

import email
import email.policy
import logging
from datetime import UTC, datetime, timedelta, tzinfo
from email.utils import format_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from digest import db, schedule, sources, store
from digest.settings import load_settings

from .conftest import Handler
from .test_fetch import Site
from .test_fetch import site as site  # the fixture: an HTTP server on loopback
from .test_polling import LEADS, rss_route
from .test_schedule import _config, _scheduler, _wait_for, turn_back


def _zone_past_seven(now: datetime) -> tuple[str, datetime]:
    """A fixed-offset zone whose 07:00 today came an hour or two before ``now`` (the run a
    scheduler started now finds due, within the misfire grace), and that 07:00.

    The scheduler reads the wall clock; choosing the zone is how the test sets its clock."""
    hours = (8 - now.hour) % 24
    hours = hours - 24 if hours > 14 else hours  # Etc/GMT zones span UTC-12 … UTC+14
    name = "UTC" if hours == 0 else f"Etc/GMT{'-' if hours > 0 else '+'}{abs(hours)}"
    local = now.astimezone(ZoneInfo(name))
    return name, local.replace(hour=7, minute=0, second=0, microsecond=0)


def _feed(base: str, zone: tzinfo, day: datetime) -> bytes:
    """Two stories of the day before ``day`` (local), each with its whole text."""
    items = ""
    for n in (1, 2):
        when = format_datetime((day - timedelta(days=1)).replace(hour=9 + n, tzinfo=zone))
        items += (
            f"<item><title>Harbour story {n}</title><link>{base}/story/{n}</link>"
            f"<pubDate>{when}</pubDate><description>{LEADS[n]}</description></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Harbour Times</title><link>{base}/</link>{items}</channel></rss>"
    ).encode()


@pytest.mark.slow
def test_the_scheduler_polls_then_sends_at_seven_what_only_the_server_had(
    site: Site, relay: Handler, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="digest.schedule")
    caplog.set_level(logging.DEBUG, logger="apscheduler.scheduler")
    zone, seven = _zone_past_seven(datetime.now(UTC))
    feed_url = site.route("/feed.xml", rss_route(_feed(site.base, seven.tzinfo, seven), '"v1"'))
    people = tmp_path / "subscribers.csv"
    people.write_text("email,name,tags\nada@example.org,Ada,\nbob@example.org,Bob,harbour\n")
    config = _config(
        tmp_path,
        seeds_dir=f'"{tmp_path / "no-seeds"}"',
        outbox_dir=f'"{tmp_path / "outbox"}"',
        subscribers_file=f'"{people}"',
        schedule_time='"07:00"',
        smtp_host='"127.0.0.1"',
        smtp_port=str(relay.port),
        smtp_timeout="10",
    )
    text = config.read_text(encoding="utf-8").replace('timezone = "UTC"', f'timezone = "{zone}"')
    config.write_text(text, encoding="utf-8")

    # The scheduler ran before (no source yet): its job waits for 07:00 tomorrow. Turned back
    # to today's 07:00, as if the process had stopped just before it.
    turn_back(caplog, load_settings(config), config, seven, runner=schedule.send_issue)

    with config.open("a", encoding="utf-8") as handle:
        handle.write(f'[[sources]]\nurl = "{feed_url}"\nname = "Harbour"\ntags = ["harbour"]\n')
    settings = load_settings(config)
    with _scheduler(caplog, settings, config, runner=schedule.send_issue) as reports:
        assert _wait_for(lambda: len(reports) == 1, 60)
    (report,) = reports
    assert report is not None and report.delivery is not None
    assert report.issue.date == seven.date()
    assert sorted(a.title for a in report.issue.articles) == ["Harbour story 1", "Harbour story 2"]
    assert all(a.origin.startswith(feed_url) for a in report.issue.articles)
    assert report.delivery.sent == 2
    assert sorted(rcpt for rcpt, _ in relay.accepted) == ["ada@example.org", "bob@example.org"]
    for _, raw in relay.accepted:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        plain = message.get_body(preferencelist=("plain",))
        assert plain is not None
        shown = plain.get_content()
        assert "Harbour story 1" in shown and "Harbour story 2" in shown

    # Polled once (by the scheduler's poll or the run's own, whichever came first), and kept.
    assert len(site.requests("/feed.xml")) == 1
    with db.opened(settings.database_url) as engine:
        (state,) = sources.load_states(engine).values()
        assert (state.last_status, state.new_articles, state.etag) == (200, 2, '"v1"')
        assert {a.source for a in store.query(engine)} == {"Harbour"}
