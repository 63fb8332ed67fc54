"""What the command line prints: tables that fit a terminal, and one line per problem."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.table import Table

from digest.models import Article
from digest.sources import SourceState
from digest.wording import counted

if TYPE_CHECKING:
    from digest import deliver, ingest, pipeline, polling, subscribers

_VARIANTS_SHOWN = 20


def print_run(out: Console, report: pipeline.RunReport) -> None:
    """What a send did: a row per variant, the summary line, and an Error line per problem."""
    issue, delivery = report.issue, report.delivery
    out.print(f"Ingested {count(report.ingested, 'new article')} from the sources.")
    if report.polled is not None:
        polled = report.polled
        done = [one for one in polled.polled if one.outcome != "waiting"]
        out.print(
            f"Polled {count(len(done), 'source')} by URL: {count(polled.new, 'new article')}, "
            f"{len(polled.failed)} failed."
        )
    for state in report.failing:
        click.echo(
            f"Error: {state.url}: failing for {state.errors_in_a_row} polls in a row "
            f"(last: {state.last_error}); `digest sources` shows its health",
            err=True,
        )
    for missing in report.missing:
        hint = "" if "seeds_dir" in missing.reason else "; check seeds_dir"
        click.echo(f"Error: {missing.path}: {missing.reason}{hint}", err=True)
    for rejected in report.rejected:
        click.echo(f"Error: {rejected.path}: {rejected.reason}; skipped", err=True)
    print_skipped(report.skipped)
    for skipped in report.skipped_subscribers:
        click.echo(f"Error: {skipped}", err=True)
    if delivery is None:
        last = issue.date - timedelta(days=1)
        out.print(
            f"Issue {issue.date}: no new articles published {issue.start:%Y-%m-%d} … {last}; "
            "nothing sent."
        )
        return
    title = f"Issue {issue.date}" + (" (dry run: nothing sent)" if report.dry_run else "")
    if delivery.recipients == 0:
        if report.suppressed:
            out.print(
                f"{title}: no active subscribers ({report.suppressed} unsubscribed or bounced, "
                "never mailed again), so nothing to send."
            )
        else:
            out.print(
                f"{title}: no subscribers, so nothing to send; add them with "
                "`digest subscribers add` or `digest subscribers import FILE.csv`."
            )
        return
    table = new_table("Variant (tags)", "Recipients", "Articles", "Bytes", title=title)
    for row in delivery.by_variant[:_VARIANTS_SHOWN]:
        table.add_row(
            ", ".join(sorted(row.tags)) or "(all articles)",
            f"{row.recipients:,}",
            str(row.articles),
            f"{row.bytes:,}",
        )
    if len(delivery.by_variant) > _VARIANTS_SHOWN:
        table.add_row(f"… {len(delivery.by_variant) - _VARIANTS_SHOWN} more", "", "", "")
    out.print(table)
    out.print(delivery.summary(dry_run=report.dry_run))
    if report.suppressed:
        out.print(f"{report.suppressed} unsubscribed or bounced: not sent to.")
    if report.preview_dir is not None:
        out.print(
            f"Preview written to {report.preview_dir}/ (messages in mail/; the published "
            "archive and feeds are unchanged)."
        )
    for address, reply in delivery.failed:
        click.echo(f"Error: {address}: {reply}", err=True)
    day = issue.date
    if delivery.failed_earlier:
        click.echo(
            f"Error: {counted(delivery.failed_earlier, 'recipient')} of issue {day} refused by "
            f"an earlier run; `digest status --date {day}` lists them, and `digest send "
            f"--retry-failed --date {day}` sends to them again once the cause is fixed",
            err=True,
        )
    if delivery.deferred:
        click.echo(
            f"Error: {counted(delivery.deferred, 'recipient')} deferred by the relay; "
            f"`digest send --date {day}` again later sends to them",
            err=True,
        )


def print_polled(out: Console, report: polling.PollReport) -> None:
    """What one poll brought: a row per source, the summary line, a line per problem."""
    table = Table(title="Polled")
    table.add_column("Source", overflow="fold", min_width=24)
    for column in ("Result", "HTTP", "New", "Read"):
        table.add_column(column, no_wrap=True)
    for one in report.polled:
        result: str = one.outcome
        if one.outcome == "waiting" and one.state.next_poll is not None:
            result = f"waiting until {stamp(one.state.next_poll)}"
        if one.pages or one.page_failures:
            result += f" ({one.pages} pages read, {one.page_failures} failed)"
        status = one.state.last_status if one.outcome != "waiting" else None
        table.add_row(
            source_name(one.source.name, one.source.url),
            result,
            str(status or "-"),
            str(one.new),
            str(one.read),
        )
    out.print(table)
    outcomes = Counter(one.outcome for one in report.polled)
    out.print(
        f"Polled {count(len(report.polled), 'source')}: {count(report.new, 'new article')}; "
        f"{outcomes['unchanged']} unchanged, {outcomes['failed']} failed, "
        f"{outcomes['waiting']} waiting."
    )
    print_poll_problems(report)


def print_poll_problems(report: polling.PollReport) -> None:
    """An Error line per source that failed or entry not stored, a Note per move or feed with
    empty entries."""
    for one in report.polled:
        if one.found_feed:
            click.echo(
                f"Note: {one.source.url}: the home page names the feed {one.found_feed}; "
                "polled there from now on",
                err=True,
            )
        if one.moved:
            click.echo(
                f"Note: {one.source.url}: moved permanently to {one.moved}; polled there from now "
                "on (write the new url in its [[sources]] table when you like)",
                err=True,
            )
        if one.outcome == "failed":
            click.echo(
                f"Error: {one.source.url}: {one.error} ({count(one.state.errors_in_a_row, 'error')}"
                f" in a row; next poll after {stamp(one.state.next_poll)} UTC)",
                err=True,
            )
        if one.page_failures:
            click.echo(
                f"Note: {one.source.url}: {count(one.page_failures, 'linked page')} could not be "
                "read; their feed text was kept",
                err=True,
            )
    for rejected in report.rejected:
        click.echo(f"Error: {rejected.path}: {rejected.reason}; skipped", err=True)
    print_skipped(report.skipped)


def print_sources(
    out: Console,
    found: Sequence[pipeline.SourceHealth],
    *,
    now: datetime,
    interval: timedelta,
) -> None:
    """The configured sources and their health: a row each, then each one's last error."""
    if not found:
        out.print(
            "No [[sources]] configured: only seeds_dir is read; `digest sources add URL` adds one."
        )
        return
    table = Table(title="Sources (times in UTC)")
    table.add_column("Source", overflow="fold", min_width=24)
    for column in ("Last fetch", "HTTP", "New", "Errors", "Next poll"):
        table.add_column(column, no_wrap=True)
    for source in found:
        row = source_row(source, now=now, interval=interval)
        table.add_row(
            source_name(source.name, source.key),
            *(str(row[key]) for key in ("last_fetch", "http", "new", "errors", "next_poll")),
        )
    out.print(table)
    for source in found:
        state = source.state
        if state is not None and state.errors_in_a_row and state.last_error:
            out.print(f"{source.key}: last error: {state.last_error}")
        if state is not None and state.moved_to:
            out.print(f"{source.key}: moved permanently to {state.moved_to} (polled there)")


def source_row(
    source: pipeline.SourceHealth, *, now: datetime, interval: timedelta
) -> dict[str, Any]:
    """One source's health as `digest sources --json` prints it (and the table shows it)."""
    state = source.state
    row: dict[str, Any] = {
        "source": source.key,
        "name": source.name,
        "tags": list(source.tags),
        "enabled": source.enabled,
        "last_fetch": "-",
        "http": "-",
        "new": "-",
        "errors": "-",
        "next_poll": "each ingest and send",
        "last_error": None,
        "moved_to": None,
    }
    if not source.by_url:
        row["last_fetch"] = "(folder)"
        return row
    row["errors"] = 0
    row["next_poll"] = "disabled" if not source.enabled else "now"
    if state is None:
        row["last_fetch"] = "never"
        return row
    row.update(
        last_fetch=stamp(state.last_fetch),
        http=state.last_status or "-",
        new=state.new_articles,
        errors=state.errors_in_a_row,
        next_poll=_next_poll(source, state, now, interval),
        last_error=state.last_error,
        moved_to=state.moved_to,
    )
    return row


def _next_poll(
    source: pipeline.SourceHealth, state: SourceState, now: datetime, every: timedelta
) -> str:
    """When `digest schedule` asks next: never when disabled; after a failure's backoff or a
    Retry-After; else poll_interval after the last fetch (now when that has passed)."""
    if not source.enabled:
        return "disabled"
    if state.next_poll is not None and state.next_poll > now:
        return stamp(state.next_poll) + " backoff"
    if state.last_fetch is None or state.last_fetch + every <= now:
        return "now"
    return stamp(state.last_fetch + every)


def source_name(name: str, key: str) -> str:
    """A source as the tables name it: its configured name and address, or the address."""
    return f"{name} ({key})" if name else key


def stamp(when: datetime | None) -> str:
    """An instant as the source tables show it, in UTC."""
    return "-" if when is None else when.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def print_work(out: Console, day: date, done: deliver.WorkReport) -> None:
    """`digest worker`: what this worker sent of issue ``day``."""
    refused = f"{done.failed_count} refused" + (
        f" (first: {done.failed[0][0]}: {done.failed[0][1]})" if done.failed else ""
    )
    out.print(
        f"Issue {day}: {done.sent} sent by this worker ({done.bytes:,} bytes), "
        f"{done.deferred} deferred, {refused}."
    )


def print_status(out: Console, day: date, found: deliver.LedgerStatus) -> None:
    """`digest status`: the ledger's counts of one issue, and the first refusals."""
    table = new_table("Status", "Recipients", title=f"Issue {day}")
    for name, value in (
        ("sent", found.sent),
        ("deferred (sent again by the next run)", found.deferred),
        ("failed (refused for good)", found.failed),
        ("claimed by a run (sent again if it was stopped)", found.claimed),
        ("pending (not tried yet)", found.pending),
        ("no matching articles", found.no_articles),
        ("suppressed (unsubscribed or bounced)", found.suppressed),
    ):
        table.add_row(name, f"{value:,}")
    out.print(table)
    for address, reply in found.failures:
        out.print(f"failed: {address}: {reply}")
    if found.failed:
        click.echo(
            f"Error: {counted(found.failed, 'recipient')} refused for good; after fixing the "
            f"cause (an address, the relay), `digest send --retry-failed --date {day}` sends "
            "to them again",
            err=True,
        )
    if found.deferred or found.pending or found.claimed:
        waiting = found.deferred + found.pending + found.claimed
        click.echo(
            f"Error: {counted(waiting, 'recipient')} still to send; `digest send --date {day}` "
            "sends to them",
            err=True,
        )


def print_subscribers(out: Console, found: Sequence[subscribers.Stored]) -> None:
    """`digest subscribers list`: address, name, tags, and status with when and how."""
    if not found:
        out.print("No subscribers.")
        return
    table = new_table("Email", "Name", "Tags", "Status")
    for s in found:
        status = s.status if s.status == "active" else f"{s.status} {s.since:%Y-%m-%d} ({s.via})"
        table.add_row(
            s.email,
            s.subscriber.name or "",
            ", ".join(sorted(s.subscriber.tags)) or "(every article)",
            status,
        )
    out.print(table)
    by_status = Counter(s.status for s in found)
    shown = ", ".join(f"{n} {status}" for status, n in sorted(by_status.items()))
    out.print(f"{count(len(found), 'subscriber')}: {shown}.")


def article_json(article: Article) -> dict[str, Any]:
    """One object of `digest articles --json` (docs/DESIGN.md's contract)."""
    return {
        "id": article.id,
        "title": article.title,
        "subtitle": article.subtitle,
        "url": article.url,
        "published": article.published.isoformat(),
        "date_source": article.date_source,
        "tags": sorted(article.tags),
        "author": article.author,
        "source": article.source,
        "dateline": article.dateline,
        "summary": article.summary,
        "body": article.body,
        "origin": article.origin,
    }


_WIDE_TABLE = 110  # columns needed to show author and source too


def print_articles(found: Sequence[Article]) -> None:
    """The articles table, fitted to the terminal."""
    out = console()
    if not found:
        out.print("No articles match.")
        return
    # Author and source only where they fit: squeezed to nothing they would hide the rest.
    wide = out.width >= _WIDE_TABLE
    columns = ("Published", "Title", "Author", "Source", "Tags", "ID")
    shown = [c for c in columns if wide or c not in ("Author", "Source")]
    # The title gives way first: the other columns keep their width (16 for a date or an id,
    # 14 for the rest), and each column costs 3 more for its border and padding.
    others = sum(16 if c in ("Published", "ID") else 14 for c in shown if c != "Title")
    title_width = max(16, min(44, out.width - others - 3 * len(shown) - 1))
    table = new_table(*shown, title_width=title_width)
    for article in found:
        cells = [when(article), article.title, article.author or "", article.source or ""]
        table.add_row(*cells[:2], *cells[2:] * wide, ", ".join(sorted(article.tags)), article.id)
    out.print(table)
    out.print(f"{count(len(found), 'article')}.")


def new_table(*columns: str, title: str | None = None, title_width: int = 44) -> Table:
    """A table whose dates, ids and file names never wrap; long titles end in "…"."""
    table = Table(title=title)
    for name in columns:
        if name == "Title":
            table.add_column(name, no_wrap=True, overflow="ellipsis", max_width=title_width)
        elif name in ("Tags", "Author", "Source"):
            table.add_column(name, overflow="fold", min_width=14, max_width=24)
        else:
            table.add_column(name, no_wrap=True)
    return table


def when(article: Article) -> str:
    """An article's date and time as the tables show it."""
    return article.published.strftime("%Y-%m-%d %H:%M")


def console(*, stderr: bool = False) -> Console:
    """A console that prints titles, names and paths as they are: "[red]" or ":smile:" in an
    article's title is text, not rich markup or an emoji code (a stray "[/b]" would crash)."""
    return Console(soft_wrap=True, markup=False, emoji=False, stderr=stderr)


def print_skipped(skipped: Sequence[ingest.Rejected]) -> None:
    """A line per feed whose empty entries were skipped: a note, not an error."""
    for note in skipped:
        click.echo(f"Note: {note.path}: {note.reason}", err=True)


def count(n: int, noun: str) -> str:
    """``3 articles``, ``1 article``."""
    return counted(n, noun)
