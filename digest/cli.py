"""The command line: load settings, call one library function, print the result.

The modules behind the commands are imported when a command first uses them, so that
`digest --help` and the small commands start in a fraction of the time the pipeline's
imports (SQLAlchemy, pydantic, trafilatura, rich …) take.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from digest import __version__
from digest.errors import ConfigError, DigestError
from digest.runtime import OnFirstUse
from digest.wording import counted

if TYPE_CHECKING:
    from digest import clean, dates, db, pipeline, selection, store, tables
    from digest import settings as configuration
    from digest.settings import Settings
else:
    clean, dates, db, pipeline, selection, store, tables, configuration = (
        OnFirstUse(f"digest.{name}")
        for name in ("clean", "dates", "db", "pipeline", "selection", "store", "tables", "settings")
    )
tag_slug = clean.tag_slug if TYPE_CHECKING else (lambda text: clean.tag_slug(text))

_INTERRUPTED = 130  # what a shell reports for a command stopped by Ctrl-C (128 + SIGINT)


class _Day(click.ParamType[date]):
    """A calendar day written YYYY-MM-DD, within the days the store and the windows handle."""

    name = "YYYY-MM-DD"
    _FORM = re.compile(r"(\d{4})-(\d{2})-(\d{2})")

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> date:
        if isinstance(value, date):
            return value
        found = self._FORM.fullmatch(str(value).strip())
        if not found:
            self.fail(f"{value!r} is not a date; write it as YYYY-MM-DD", param, ctx)
        try:
            day = date(*(int(part) for part in found.groups()))
        except ValueError as exc:
            self.fail(f"{value!r} is not a calendar date ({exc})", param, ctx)
        first, last = configuration.FIRST_DAY, configuration.LAST_DAY
        if not first <= day <= last:
            self.fail(f"{day} is out of range; use a date from {first} to {last}", param, ctx)
        return day


_DAY = _Day()
_ISSUE_DATE = click.option(
    "--date",
    "issue_date",
    type=_DAY,
    help="Issue date, YYYY-MM-DD (default: the issue_date setting, else today).",
)


class _Group(click.Group):
    """Maps a ``DigestError`` to one ``Error: …`` line and exit status 1, and Ctrl-C to one
    line and 130 (click's own "Aborted!" says neither what happened nor what to do)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DigestError as exc:
            raise click.ClickException(str(exc)) from exc
        except KeyboardInterrupt:
            click.echo("Error: interrupted; run the command again to finish", err=True)
            ctx.exit(_INTERRUPTED)


@click.group(cls=_Group)
@click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Settings file (TOML). Default: config/digest.toml when it exists.",
)
@click.version_option(__version__, prog_name="digest")
@click.pass_context
def cli(ctx: click.Context, config: Path | None) -> None:
    """digest: scraped news in, a daily email and RSS/Atom feeds out."""
    ctx.obj = config


def _settings(ctx: click.Context) -> Settings:
    return configuration.load_settings(ctx.find_root().obj)


def _named_tags(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...]:
    """Refuse a --tag that slugs to nothing: it would match nothing, or follow everything."""
    for value in values:
        if not tag_slug(value):
            raise click.BadParameter(f"{value!r} {configuration.NO_TAG}", ctx, param)
    return values


_TABLE_UP_TO = 50  # articles `digest ingest` lists one by one without --verbose


@cli.command("ingest")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--verbose",
    "-v",
    is_flag=True,
    help=f"List every article read (without it: only batches of up to {_TABLE_UP_TO}).",
)
@click.pass_context
def ingest_command(ctx: click.Context, paths: tuple[Path, ...], verbose: bool) -> None:
    """Read articles from PATHS (files or folders; default: the seeds folder) into the store.

    Plain text (any common encoding), HTML pages and RSS/Atom/JSON feeds (in a folder, a
    file without a known suffix is read when its bytes are a feed or a page). Re-ingesting
    is idempotent; a syndicated copy of a stored story is folded into it.
    """
    settings = _settings(ctx)
    with db.opened(settings.database_url) as engine:
        batch = pipeline.ingest_sources(
            engine, settings, now=datetime.now(UTC), paths=paths,
            keep=None if verbose else _TABLE_UP_TO + 1,
        )  # fmt: skip
    saved = batch.saved
    if batch.articles and (verbose or batch.count <= _TABLE_UP_TO):
        table = tables.new_table("File", "Published", "Date from", "Title", title="Ingested")
        for article in batch.articles:
            table.add_row(
                Path(article.origin).name.replace("#", " #"),
                tables.when(article),
                article.date_source,
                article.title,
            )
        tables.console().print(table)
    # The summary without rich (a large batch prints no table: rich is not even imported)
    click.echo(
        f"{counted(batch.count, 'article')} from "
        f"{batch.files - len({r.path.partition('#')[0] for r in batch.rejected})} of "
        f"{batch.files} files: {saved.inserted} new, "
        f"{saved.updated} updated, "
        f"{saved.unchanged} unchanged, {saved.duplicates} duplicate copies folded."
    )
    # Paths that name no file are reported apart, so the count is of the files read.
    for rejected in (*batch.missing, *batch.rejected):
        click.echo(f"Error: {rejected.path}: {rejected.reason}; skipped", err=True)
    if batch.skipped:  # entries with nothing to read: not an error
        tables.print_skipped(batch.skipped)
    if batch.missing or batch.rejected:
        ctx.exit(1)


@cli.command("articles")
@click.option("--since", type=_DAY, help="First day, YYYY-MM-DD.")
@click.option("--until", type=_DAY, help="Last day, YYYY-MM-DD.")
@click.option(
    "--tag",
    "tags",
    multiple=True,
    callback=_named_tags,
    help="Only articles with this tag (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@click.pass_context
def articles_command(
    ctx: click.Context,
    since: date | None,
    until: date | None,
    tags: tuple[str, ...],
    as_json: bool,
) -> None:
    """List stored articles, newest first (days are whole days in the configured zone)."""
    if since and until and since > until:
        raise click.BadParameter("--since is after --until", param_hint="--since")
    settings = _settings(ctx)
    with db.opened(settings.database_url) as engine:
        found = selection.find(
            engine,
            since=since,
            until=until,
            tz=dates.zone(settings.timezone),
            tags=[tag_slug(t) for t in tags],
        )
    if as_json:
        click.echo(
            json.dumps([tables.article_json(a) for a in found], ensure_ascii=False, indent=2)
        )
        return
    tables.print_articles(found)


@cli.command("send")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Write what would go out to outbox/mail/DATE/ instead; no ledger, no subscriber change.",
)
@_ISSUE_DATE
@click.option("--force", is_flag=True, help="Also pick articles already shown in another issue.")
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Also send again to whom the relay refused for good (once you fixed the cause).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    help="Processes to send through, each with its own SMTP connection (PostgreSQL only; "
    "default: the send_workers setting).",
)
@click.pass_context
def send_command(
    ctx: click.Context,
    dry_run: bool,
    issue_date: date | None,
    force: bool,
    retry_failed: bool,
    workers: int | None,
) -> None:
    """Ingest new sources, select the issue, render it into outbox/ and deliver it.

    A re-run sends only to whom the issue has not reached yet. Exit status 1 while a
    recipient of the issue was refused or deferred, or a source folder is missing.
    """
    from rich.progress import MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

    settings = _settings(ctx)
    now = datetime.now(UTC)
    day = pipeline.issue_date_of(settings, now, issue_date)
    out = tables.console()
    progress_to = tables.console(stderr=True)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        MofNCompleteColumn(),
        console=progress_to,
        transient=True,
        disable=not progress_to.is_terminal,  # no bar in logs, cron mail or pipes
    ) as bar:
        task = bar.add_task("Delivering" if not dry_run else "Writing", total=None)
        try:
            report = pipeline.run(
                settings,
                now=now,
                issue_date=day,
                dry_run=dry_run,
                force=force,
                retry_failed=retry_failed,
                progress=_every_tenth_second(lambda n: bar.advance(task, n)),
                workers=workers,
            )
        except KeyboardInterrupt:
            again = "`digest send` again to send to whom this run did not reach"
            if dry_run:
                again = "`digest send --dry-run` again for the whole issue"
            click.echo(f"Error: interrupted; run {again}", err=True)
            ctx.exit(_INTERRUPTED)
    tables.print_run(out, report)
    if report.unfinished:
        ctx.exit(1)


@cli.command("worker")
@_ISSUE_DATE
@click.option(
    "--wait",
    type=click.FloatRange(0, 86400),
    default=0,
    show_default=True,
    help="Seconds to wait for `digest send` to start the issue.",
)
@click.pass_context
def worker_command(ctx: click.Context, issue_date: date | None, wait: float) -> None:
    """Help a `digest send` on another machine deliver an issue (same PostgreSQL store).

    Claims recipients in batches, sends them over its own SMTP connection, and ends when
    nobody is left. Exit status 1 while a recipient it tried was refused or deferred.
    """
    from digest import workers

    settings = _settings(ctx)
    try:
        day, report = workers.work_on(
            settings, now=datetime.now(UTC), issue_date=issue_date, wait=wait
        )
    except KeyboardInterrupt:
        click.echo("Error: interrupted; what this worker held goes to the others", err=True)
        ctx.exit(_INTERRUPTED)
    tables.print_work(tables.console(), day, report)
    if report.failed_count or report.deferred:
        ctx.exit(1)


@cli.command("status")
@_ISSUE_DATE
@click.pass_context
def status_command(ctx: click.Context, issue_date: date | None) -> None:
    """Where an issue's delivery stands: sent, deferred, failed (with the relay's first
    replies), suppressed, pending. Exit status 1 while any recipient has not got it."""
    settings = _settings(ctx)
    day, found = pipeline.status(settings, now=datetime.now(UTC), issue_date=issue_date)
    out = tables.console()
    if found is None:
        out.print(f"Issue {day} was not sent yet; `digest send --dry-run` shows what would go out.")
        return
    tables.print_status(out, day, found)
    if found.failed or found.deferred or found.pending or found.claimed:
        ctx.exit(1)


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--with-scheduler", is_flag=True, help="Also run the daily send (small installs: one process)."
)
@click.option(
    "--access-log",
    is_flag=True,
    help="Log each request (its path only, never the query) to stdout; off by default.",
)
@click.pass_context
def serve_command(
    ctx: click.Context, host: str, port: int, with_scheduler: bool, access_log: bool
) -> None:
    """Serve outbox/ (feeds with ETag/304 and gzip, archive pages) and one-click unsubscribe."""
    from digest.serve import serve

    settings = _settings(ctx)
    if settings.outbox_dir.exists() and not settings.outbox_dir.is_dir():
        raise ConfigError(
            f"outbox_dir {settings.outbox_dir} is not a folder; set outbox_dir to the folder "
            "`digest send` writes"
        )
    if with_scheduler:
        _log_to_stderr()
    serve(
        settings.outbox_dir,
        extra_lifespan=_scheduler_beside(settings, ctx.find_root().obj) if with_scheduler else None,
        host=host,
        port=port,
        engine_url=settings.database_url,
        unsubscribe_secret=settings.unsubscribe_secret.get_secret_value(),
        cache_max_age=settings.cache_max_age,
        title=settings.title,
        on_started=lambda bound, real: click.echo(
            f"Serving {settings.outbox_dir} on http://{bound}:{real}/"
        ),
        access_log=access_log,
    )


@cli.command("schedule")
@click.option(
    "--once",
    is_flag=True,
    help="Run today's issue now unless it ran already, then exit (cron, systemd timers).",
)
@click.option(
    "--force", is_flag=True, help="With --once: run even if today's run is recorded as done."
)
@click.option("--next", "show_next", is_flag=True, help="Print the next run times and exit.")
@click.pass_context
def schedule_command(ctx: click.Context, once: bool, force: bool, show_next: bool) -> None:
    """Send each day's issue at schedule_time (in timezone), until SIGTERM or Ctrl-C."""
    from digest import schedule

    if force and not once:
        raise click.UsageError("--force works with --once only")
    settings = _settings(ctx)
    if show_next:
        for when in schedule.next_runs(settings, now=datetime.now(UTC)):
            click.echo(f"{when:%Y-%m-%d %H:%M %Z} ({when.astimezone(UTC):%H:%M} UTC)")
        return
    _log_to_stderr()
    if once:
        report = schedule.run_once(settings, now=datetime.now(UTC), force=force)
        if report is None:
            click.echo("This issue already ran; --once --force runs it again.")
        else:
            tables.print_run(tables.console(), report)
            if report.unfinished:
                ctx.exit(1)
        return
    schedule.run_scheduler(settings, config=ctx.find_root().obj)


def _every_tenth_second(advance: Callable[[int], None]) -> Callable[[int], None]:
    """``advance``, given what was counted since, at most ten times a second: a bar redraws
    no more often, and a send counts thousands of recipients a second."""
    import time

    counted, due = 0, 0.0

    def count(n: int) -> None:
        nonlocal counted, due
        counted += n
        if counted and (now := time.monotonic()) >= due:
            advance(counted)
            counted, due = 0, now + 0.1

    return count


def _scheduler_beside(
    settings: Settings, config: Path | None
) -> Callable[[], AbstractAsyncContextManager[None]]:
    """The scheduler in a thread of the server's process, stopped when the server stops."""
    from starlette.concurrency import run_in_threadpool

    from digest import schedule

    @asynccontextmanager
    async def running() -> AsyncIterator[None]:
        stop = threading.Event()
        failed: list[DigestError] = []

        def work() -> None:
            try:
                schedule.run_scheduler(settings, config=config, stop=stop)
            except DigestError as exc:
                failed.append(exc)

        thread = threading.Thread(target=work, name="digest-schedule", daemon=True)
        thread.start()
        await run_in_threadpool(thread.join, 1.0)
        if failed:
            raise failed[0]
        try:
            yield
        finally:
            stop.set()
            await run_in_threadpool(thread.join)

    return running


def _log_to_stderr() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


@cli.command("fetch")
@click.pass_context
def fetch_command(ctx: click.Context) -> None:
    """Poll the sources by URL now (those not waiting after a failure) and store what came.

    Exit status 1 when a source failed or an entry could not be stored.
    """
    settings = _settings(ctx)
    report = pipeline.poll_now(settings, now=datetime.now(UTC))
    out = tables.console()
    if report is None:
        out.print(
            "No [[sources]] by URL configured; `digest sources add URL` adds one "
            "(folders are read by `digest ingest`)."
        )
        return
    tables.print_polled(out, report)
    if report.failed or report.rejected:
        ctx.exit(1)


@cli.group("sources", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@click.pass_context
def sources_group(ctx: click.Context, as_json: bool) -> None:
    """The configured sources and their health: last fetch, HTTP status, new articles,
    errors in a row, next poll (`digest sources add URL` adds one)."""
    if ctx.invoked_subcommand is not None:
        return
    settings = _settings(ctx)
    found = pipeline.source_health(settings)
    now, every = datetime.now(UTC), timedelta(minutes=settings.poll_interval)
    if as_json:
        rows = [tables.source_row(s, now=now, interval=every) for s in found]
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    tables.print_sources(tables.console(), found, now=now, interval=every)


@sources_group.command("add")
@click.argument("url")
@click.option("--name", default="", help="Name shown in reports and as the articles' source.")
@click.option(
    "--tag", "tags", multiple=True, callback=_named_tags, help="Add this tag (repeatable)."
)
@click.option("--full-text", is_flag=True, help="Read each new entry's linked page.")
@click.option(
    "--max-per-issue", type=click.IntRange(min=1), help="Most articles of it in one issue."
)
@click.pass_context
def sources_add_command(
    ctx: click.Context,
    url: str,
    name: str,
    tags: tuple[str, ...],
    full_text: bool,
    max_per_issue: int | None,
) -> None:
    """Add the feed at URL, or the main feed a site's home page at URL names, to the config
    file as a [[sources]] table (its comments kept)."""
    from digest.settings import DEFAULT_CONFIG, add_source

    settings = _settings(ctx)
    config: Path = ctx.find_root().obj or DEFAULT_CONFIG
    if not re.match(r"https?://[^/\s]", url.strip()):
        raise click.BadParameter(
            f"{url!r} is not an http(s) URL; write it like https://example.org/", param_hint="URL"
        )
    feed, title = pipeline.find_feed(settings, url.strip(), now=datetime.now(UTC))
    known = {s.url for s in settings.sources}
    if feed in known:
        raise ConfigError(f"{feed} is a source already (in {config})")
    table: dict[str, Any] = {"url": feed}
    if name or title:
        table["name"] = name or title
    if tags:
        table["tags"] = [tag_slug(t) for t in tags]
    if full_text:
        table["full_text"] = True
    if max_per_issue is not None:
        table["max_per_issue"] = max_per_issue
    add_source(config, table)
    found = "" if feed == url.strip() else f" (the main feed {url.strip()} names)"
    click.echo(f"Added {feed}{found} to {config} as {table.get('name', feed)!r}.")


@cli.group("subscribers")
def subscribers_group() -> None:
    """Who gets the digest: add, remove, list, or import subscribers from a CSV file."""


@subscribers_group.command("add")
@click.argument("email")
@click.option("--name", help="The subscriber's name.")
@click.option(
    "--tag",
    "tags",
    multiple=True,
    callback=_named_tags,
    help="Follow articles with this tag (repeatable; added to a stored subscriber's tags; "
    "none at all: every article).",
)
@click.option(
    "--set-tags",
    is_flag=True,
    help="The --tag values replace the stored tags (none: every article).",
)
@click.option(
    "--resubscribe",
    is_flag=True,
    help="Make an unsubscribed or bounced address active again; only when they asked you to "
    "(recorded).",
)
@click.pass_context
def subscribers_add_command(
    ctx: click.Context,
    email: str,
    name: str | None,
    tags: tuple[str, ...],
    set_tags: bool,
    resubscribe: bool,
) -> None:
    """Add a subscriber, or change what is given of a stored one (its name; --tag adds).

    An unsubscribed or bounced address is refused unless --resubscribe.
    """
    from digest import subscribers

    settings = _settings(ctx)
    with db.opened(settings.database_url) as engine:
        saved, action = subscribers.add(
            engine,
            email,
            name=name,
            tags=tags,
            replace_tags=set_tags,
            resubscribe=resubscribe,
            now=datetime.now(UTC),
        )
        asked = {tag_slug(tag) for tag in tags}
        unknown = sorted(asked - set(settings.tag_rules) - store.known_tags(engine, asked))
    for tag in unknown:
        click.echo(
            f"Warning: no tag rule and no stored article has the tag {tag!r}, so {saved.email} "
            "gets nothing for it yet; check its spelling, or add a tag rule for it",
            err=True,
        )
    follows = ", ".join(sorted(saved.subscriber.tags)) or "every article"
    done = {"added": "Subscribed", "updated": "Updated", "resubscribed": "Resubscribed"}[action]
    click.echo(f"{done} {saved.email} ({follows}).")


@subscribers_group.command("remove")
@click.argument("email")
@click.option("--bounced", is_flag=True, help="Record the address as bounced, not unsubscribed.")
@click.pass_context
def subscribers_remove_command(ctx: click.Context, email: str, bounced: bool) -> None:
    """Unsubscribe an address: never mailed again, and no import brings it back (also one
    that is not on the list yet)."""
    from digest import subscribers

    address = subscribers.normalize(email)
    settings = _settings(ctx)
    with db.opened(settings.database_url) as engine:
        found = subscribers.suppress(
            engine,
            address,
            via="bounce" if bounced else "operator",
            status="bounced" if bounced else "unsubscribed",
            now=datetime.now(UTC),
        )
    stored, action = found
    if action == "already":
        click.echo(f"{address} is already {stored.status} ({stored.since:%Y-%m-%d}, {stored.via}).")
    elif action == "recorded":
        click.echo(
            f"{address} was not on the list; recorded as {stored.status}, so no import adds it."
        )
    else:
        click.echo(f"Removed {address}: {stored.status}, never mailed again.")


@subscribers_group.command("list")
@click.option(
    "--status",
    "status",
    type=click.Choice(["active", "unsubscribed", "bounced"]),
    help="Only subscribers with this status.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@click.pass_context
def subscribers_list_command(ctx: click.Context, status: str | None, as_json: bool) -> None:
    """List the subscribers, their status and the tags each follows, by address."""
    from digest import subscribers

    settings = _settings(ctx)
    chosen = next((s for s in subscribers.STATUSES if s == status), None)
    with db.opened(settings.database_url) as engine:
        found = subscribers.listing(engine, status=chosen)
    if as_json:
        rows = [
            {
                "email": s.email,
                "name": s.subscriber.name,
                "tags": sorted(s.subscriber.tags),
                "status": s.status,
                "since": s.since.replace(tzinfo=UTC).isoformat(),
                "via": s.via,
            }
            for s in found
        ]
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    tables.print_subscribers(tables.console(), found)


@subscribers_group.command("import")
@click.argument("path", metavar="FILE.csv", type=click.Path(path_type=Path))
@click.pass_context
def subscribers_import_command(ctx: click.Context, path: Path) -> None:
    """Add or update the subscribers of a CSV file with the columns email,name,tags.

    Tags within a cell are separated by spaces, commas or semicolons. A bad row is reported
    with its line number and skipped; the rest are imported.
    """
    from digest import subscribers

    settings = _settings(ctx)
    with db.opened(settings.database_url) as engine:
        report = subscribers.import_csv(engine, path, now=datetime.now(UTC))
    suppressed = f", {report.suppressed} unsubscribed or bounced left as they are"
    click.echo(
        f"Imported {path}: {report.added} added, {report.updated} updated"
        f"{suppressed if report.suppressed else ''}, "
        f"{tables.count(len(report.errors), 'row')} skipped."
    )
    for error in report.errors:
        click.echo(f"Error: {path}:{error}", err=True)
    if report.errors:
        ctx.exit(1)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="digest")
    sys.exit(0)
