"""The CLI: help on every command, exact errors, exit statuses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest

from digest.cli import cli

from .conftest import JSON_FIELDS, ROOT, SEEDS, run, write_config


def all_commands() -> list[str]:
    return sorted(cli.commands)


@pytest.mark.parametrize("command", all_commands())
def test_every_command_has_help(command: str) -> None:
    result = run(command, "--help")
    assert result.exit_code == 0
    assert cli.commands[command].help
    assert "Usage: " in result.output


def test_top_level_help_lists_commands() -> None:
    result = run("--help")
    assert all(name in result.output for name in all_commands())
    assert isinstance(cli, click.Group)


@pytest.mark.slow
def test_articles_json_contract(tmp_path: Path) -> None:
    config = write_config(tmp_path, seeds_dir=f'"{SEEDS}"')
    run("ingest", config=config)
    result = run(
        "articles", "--json", "--since", "2018-06-10", "--until", "2018-06-11", config=config
    )
    (article,) = json.loads(result.output)
    assert set(JSON_FIELDS) <= set(article)
    assert article["title"] == "Putin wants to meet Trump and discuss dangers of arms race"
    assert article["published"] == "2018-06-11T08:51:00+10:00"
    assert all(tag == tag.lower() and " " not in tag for tag in article["tags"])


@pytest.mark.slow
def test_articles_table_and_tag_filter(tmp_path: Path) -> None:
    config = write_config(tmp_path, seeds_dir=f'"{SEEDS}"')
    run("ingest", config=config)
    result = run("articles", "--tag", "Trump VS Putin", config=config)
    assert result.exit_code == 0
    assert result.output.rstrip().endswith("2 articles.")
    assert (
        run("articles", "--tag", "nothing-like-this", config=config).output
        == "No articles match.\n"
    )


def test_a_large_ingest_prints_its_counts_and_lists_articles_only_when_asked(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "pages"
    folder.mkdir()
    for n in range(51):
        (folder / f"story-{n:02d}.txt").write_text(
            f"Harbour report number {n}\n\nThe ferry number {n} left the pier on time "
            f"this morning, and {n} passengers were on board when it reached the island.\n",
            encoding="utf-8",
        )
    config = write_config(tmp_path)
    quiet = run("ingest", str(folder), config=config)
    assert quiet.exit_code == 0, quiet.output
    assert quiet.output.splitlines() == [
        "51 articles from 51 of 51 files: 51 new, 0 updated, 0 unchanged, 0 duplicate "
        "copies folded."
    ]
    listed = run("ingest", "--verbose", str(folder), config=config)
    assert "story-50.txt" in listed.output and "Ingested" in listed.output


@pytest.mark.slow
@pytest.mark.parametrize(("columns", "author"), [(80, False), (100, False), (140, True)])
def test_the_articles_table_fits_the_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, columns: int, author: bool
) -> None:
    config = write_config(tmp_path, seeds_dir=f'"{SEEDS}"')
    run("ingest", config=config)
    monkeypatch.setenv("COLUMNS", str(columns))
    lines = run("articles", config=config).output.splitlines()
    assert max(len(line) for line in lines) <= columns
    assert ("Author" in lines[1]) is author
    assert all(h in lines[1] for h in ("Published", "Title", "Tags", "ID"))
    assert "2018-06-11 08:51" in "\n".join(lines)  # dates and ids are never cut
    assert "83cfda704649bf98" in "\n".join(lines)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["articles", "--since", "2019-13-01"], "Invalid value for '--since'"),
        (
            ["articles", "--since", "2019-03-02", "--until", "2019-03-01"],
            "--since is after --until",
        ),
        (["nope"], "No such command 'nope'"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = run(*args, config=write_config(tmp_path))
    assert result.exit_code == 2
    assert message in result.output


def test_bad_config_is_one_error_line(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('timezone = "Nowhere/Land"\n')
    result = run("articles", config=config)
    assert result.exit_code == 1
    assert result.output == (
        f"Error: timezone: unknown time zone 'Nowhere/Land' (in {config} or DIGEST_TIMEZONE)\n"
    )


def test_an_environment_variable_that_is_not_json_is_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_TAG_RULES", "sanctions=sanctions")
    result = run("articles", config=write_config(tmp_path))
    assert result.exit_code == 1
    assert result.output == (
        "Error: DIGEST_TAG_RULES is not JSON; write it as a JSON object, "
        'e.g. DIGEST_TAG_RULES=\'{"sanctions": ["sanctions"]}\'\n'
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            'window = "7"',
            "window: '7' is not a number of days; write it like \"7d\" (1d to 9999d) "
            "(in {config} or DIGEST_WINDOW)",
        ),
        (
            'window = "0d"',
            "window: '0d' is not a number of days; write it like \"7d\" (1d to 9999d) "
            "(in {config} or DIGEST_WINDOW)",
        ),
        (
            'schedule_time = "7:00 am"',
            "schedule_time: '7:00 am' is not a time of day; write it as HH:MM, e.g. \"07:00\" "
            "(in {config} or DIGEST_SCHEDULE_TIME)",
        ),
        (
            'digest_name = "Daily News"',
            "digest_name: 'Daily News' is not a short name; use lower-case letters, digits and "
            'dashes (at most 40), e.g. "daily" (in {config} or DIGEST_DIGEST_NAME)',
        ),
        (
            'datbase_url = "sqlite:///x.db"',
            "datbase_url: unknown setting; did you mean database_url? (in {config})",
        ),
        (
            "colour = 1",
            "colour: unknown setting; the settings are listed in README.md (in {config})",
        ),
        (
            '[smtp]\nhost = "mail.example.org"',
            "smtp: unknown setting; settings are not grouped: write smtp_host = … before any "
            "[table], not under [smtp] (in {config})",
        ),
    ],
)
def test_a_bad_setting_says_what_to_write(tmp_path: Path, line: str, message: str) -> None:
    config = write_config(tmp_path)
    config.write_text(config.read_text(encoding="utf-8") + line + "\n", encoding="utf-8")
    result = run("articles", config=config)
    assert result.exit_code == 1
    assert result.output == f"Error: {message.format(config=config)}\n"


def test_a_bad_variable_without_a_config_file_names_only_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no config/digest.toml here
    monkeypatch.setenv("DIGEST_SMTP_PORT", "twenty-five")
    result = run("articles")
    assert result.exit_code == 1
    assert result.output == (
        "Error: smtp_port: Input should be a valid integer, unable to parse string as an "
        "integer (in DIGEST_SMTP_PORT)\n"
    )


@pytest.mark.parametrize(
    ("subject", "message"),
    [
        ("{nope}", "'{nope}' names {nope}; use only {title}, {date}, {count} and {stories}"),
        (
            "{title.__class__}",
            "'{title.__class__}' names {title.__class__}; use only {title}, {date}, {count} "
            "and {stories}",
        ),
        (
            "{0} stories",
            "'{0} stories' names {0}; use only {title}, {date}, {count} and {stories}",
        ),
        (
            "{date:%Q}",
            "'{date:%Q}' has %Q, which is not a date format code; use codes like %A, %B, %d, %Y",
        ),
        (
            "{title} {",
            "'{title} {' is not a template (Single '{' encountered in format string); "
            "write {{ and }} for a literal brace",
        ),
        (
            "{count:%Y}",
            "'{count:%Y}' is not a template (Invalid format specifier '%Y' for object of type "
            "'int'); write {{ and }} for a literal brace",
        ),
    ],
)
def test_a_bad_subject_template_is_refused_before_anything_runs(
    tmp_path: Path, subject: str, message: str
) -> None:
    config = write_config(tmp_path, seeds_dir=f'"{SEEDS}"', outbox_dir=f'"{tmp_path / "out"}"')
    config.write_text(
        config.read_text(encoding="utf-8") + f"subject = {json.dumps(subject)}\n", encoding="utf-8"
    )
    result = run("send", "--dry-run", config=config)
    assert result.exit_code == 1
    assert result.output == f"Error: subject: {message} (in {config} or DIGEST_SUBJECT)\n"
    assert not (tmp_path / "out").exists()  # nothing written before the error


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            'base_url = "ftp://news.example.org"',
            "base_url: 'ftp://news.example.org' is not an http(s) URL with a host; set it to the "
            "public URL of outbox/, e.g. https://news.example.org/digest "
            "(in {config} or DIGEST_BASE_URL)",
        ),
        (
            'base_url = "news.example.org"',
            "base_url: 'news.example.org' is not an http(s) URL with a host; set it to the "
            "public URL of outbox/, e.g. https://news.example.org/digest "
            "(in {config} or DIGEST_BASE_URL)",
        ),
        (
            'base_url = "https://nachrichten.bücher.example/tägl ich"',
            "base_url: 'https://nachrichten.bücher.example/tägl ich' has spaces or non-ASCII "
            "characters; write the host in punycode (xn--…) and percent-encode the path "
            "(in {config} or DIGEST_BASE_URL)",
        ),
        (
            'from_address = "The Digest <digest@example.org>"',
            "from_address: 'The Digest <digest@example.org>' is not a plain email address; "
            "write it like digest@example.org, the name in from_name "
            "(in {config} or DIGEST_FROM_ADDRESS)",
        ),
        (
            'unsubscribe_mailto = "unsubscribe"',
            "unsubscribe_mailto: 'unsubscribe' is not a plain email address; "
            "write it like unsubscribe@example.org (in {config} or DIGEST_UNSUBSCRIBE_MAILTO)",
        ),
    ],
)
def test_a_bad_address_or_url_is_refused_before_the_outbox_is_touched(
    tmp_path: Path, line: str, message: str
) -> None:
    key, _, value = line.partition(" = ")
    config = write_config(
        tmp_path, seeds_dir=f'"{SEEDS}"', outbox_dir=f'"{tmp_path / "out"}"', **{key: value}
    )
    result = run("send", "--dry-run", config=config)
    assert result.exit_code == 1
    assert result.output == f"Error: {message.format(config=config)}\n"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DIGEST_SMTP_TIMEOUT", "inf", "smtp_timeout: Input should be a finite number"),
        (
            "DIGEST_SMTP_TIMEOUT",
            "1e300",
            "smtp_timeout: Input should be less than or equal to 3600",
        ),
        ("DIGEST_SMTP_RETRIES", "100000", "smtp_retries: Input should be less than or equal to 20"),
        (
            "DIGEST_MISFIRE_GRACE_SECONDS",
            "99999999999999",
            "misfire_grace_seconds: Input should be less than or equal to 604800",
        ),
        (
            "DIGEST_CACHE_MAX_AGE",
            "99999999999999999999",
            "cache_max_age: Input should be less than or equal to 31536000",
        ),
        (
            "DIGEST_ISSUE_DATE",
            "0001-01-01",
            "issue_date: 0001-01-01 is out of range; use a date from 1900-01-01 to 9998-12-31",
        ),
        (
            "DIGEST_SEEDS_DIR",
            "",
            "seeds_dir: is empty, which would mean the current folder; set it, e.g. to seeds",
        ),
        (
            "DIGEST_OUTBOX_DIR",
            " ",
            "outbox_dir: is empty, which would mean the current folder; set it, e.g. to outbox",
        ),
        (
            "DIGEST_SUBSCRIBERS_FILE",
            "",
            "subscribers_file: is empty, which would mean the current folder; set it, "
            "e.g. to config/subscribers.csv",
        ),
    ],
)
def test_a_value_out_of_range_is_refused_when_the_settings_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    config = write_config(tmp_path, smtp_port="1")
    monkeypatch.setenv(variable, value)
    result = run("send", config=config)
    assert result.exit_code == 1
    assert result.output == f"Error: {message} (in {config} or {variable})\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["send", "--dry-run", "--date", "2019-02-30"],
            "Invalid value for '--date': '2019-02-30' is not a calendar date "
            "(day is out of range for month)",
        ),
        (
            ["send", "--dry-run", "--date", "0001-01-01"],
            "Invalid value for '--date': 0001-01-01 is out of range; "
            "use a date from 1900-01-01 to 9998-12-31",
        ),
        (
            ["articles", "--until", "9999-12-31"],
            "Invalid value for '--until': 9999-12-31 is out of range; "
            "use a date from 1900-01-01 to 9998-12-31",
        ),
        (
            ["articles", "--since", "1.3.2019"],
            "Invalid value for '--since': '1.3.2019' is not a date; write it as YYYY-MM-DD",
        ),
    ],
)
def test_a_day_that_is_no_date_is_a_usage_error(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = run(*args, config=write_config(tmp_path))
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == f"Error: {message}"
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_the_widest_days_list_without_overflow(tmp_path: Path) -> None:
    config = write_config(tmp_path, seeds_dir=f'"{SEEDS}"', window='"9999d"')
    text = config.read_text(encoding="utf-8").replace('"UTC"', '"Pacific/Kiritimati"')
    config.write_text(text, encoding="utf-8")
    run("ingest", config=config)
    result = run("articles", "--since", "1900-01-01", "--until", "9998-12-31", config=config)
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith("6 articles.")
    early = run("send", "--dry-run", "--date", "1900-01-01", config=config)
    assert early.exit_code == 0, early.output
    assert "Issue 1900-01-01: no new articles published 1872-08-16 … 1899-12-31" in early.output


def test_ingest_counts_files_and_reports_missing_paths_apart(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    seed = sorted(SEEDS.glob("*.txt"))[0]
    missing = tmp_path / "nosuch.txt"
    result = run(
        "ingest",
        str(seed),
        str(tmp_path / "empty.txt"),
        str(missing),
        config=write_config(tmp_path),
    )
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert (
        "2 articles from 1 of 2 files: 2 new, 0 updated, 0 unchanged, 0 duplicate copies folded."
        in lines
    )
    assert lines[-2:] == [
        f"Error: {missing}: no such file or directory; skipped",
        f"Error: {tmp_path / 'empty.txt'}: empty file; skipped",
    ]


@pytest.mark.parametrize(
    "args",
    [["articles", "--tag", "!!!"], ["subscribers", "add", "ada@example.org", "--tag", "!!!"]],
)
def test_a_tag_with_no_letter_or_digit_is_a_usage_error(tmp_path: Path, args: list[str]) -> None:
    config = write_config(tmp_path)
    result = run(*args, config=config)
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == (
        "Error: Invalid value for '--tag': '!!!' has no letter or digit, so it names no tag; "
        "use tags like arms-control"
    )
    assert run("subscribers", "list", "--json", config=config).output == "[]\n"


def test_serve_refuses_an_outbox_that_is_a_file(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    outbox.write_text("not a folder", encoding="utf-8")
    result = run("serve", "--port", "0", config=write_config(tmp_path, outbox_dir=f'"{outbox}"'))
    assert result.exit_code == 1
    assert result.output == (
        f"Error: outbox_dir {outbox} is not a folder; set outbox_dir to the folder "
        "`digest send` writes\n"
    )


@pytest.mark.slow
def test_titles_and_paths_are_printed_as_they_are_not_as_markup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = tmp_path / "[red]sources"
    sources.mkdir()
    title = "Vote [/b] passes [red]at last :thumbs_up:"
    body = (
        "The city council passed the budget on Tuesday evening after a debate that ran for six "
        "hours. Members argued over the money for buses, parks and the new library.\n\n"
        "The mayor said she was pleased with the result and thanked the residents who came to "
        "speak. The budget takes effect in July, when the fiscal year begins.\n"
    )
    (sources / "budget.txt").write_text(f"{title}\n\nMarch 5, 2018\n\n{body}", encoding="utf-8")
    config = write_config(
        tmp_path,
        seeds_dir=f'"{sources}"',
        outbox_dir=f'"{sources / "outbox"}"',
        subscribers_file=f'"{ROOT / "config" / "subscribers.csv"}"',
        issue_date="2018-03-06",
    )
    ingested = run("ingest", config=config)
    assert ingested.exit_code == 0, ingested.output
    assert "Traceback" not in ingested.output
    listed = run("articles", "--json", config=config)
    (article,) = json.loads(listed.output)
    assert article["title"] == title
    monkeypatch.setenv("COLUMNS", "240")
    table = run("articles", config=config)
    assert table.exit_code == 0
    assert title in table.output
    preview = run("send", "--dry-run", config=config)
    assert f"Preview written to {sources / 'outbox' / 'preview' / '2018-03-06'}/ " in preview.output


def _waiting_in_pipe_read(pid: int) -> bool:
    """Whether the process sleeps in the kernel reading a pipe (Linux: its wchan)."""
    return "pipe_read" in Path(f"/proc/{pid}/wchan").read_text(encoding="ascii")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/wchan").exists(), reason="needs Linux's /proc")
def test_ctrl_c_in_any_command_is_one_error_line(tmp_path: Path) -> None:
    fifo = tmp_path / "subscribers.csv"
    os.mkfifo(fifo)  # like `digest subscribers import <(curl …)`: waits for its writer
    config = write_config(tmp_path)
    command = [sys.executable, "-m", "digest", "--config", str(config)]
    with subprocess.Popen(
        [*command, "subscribers", "import", str(fifo)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        deadline = time.monotonic() + 30
        while True:  # a writer can open the FIFO once the reader has
            try:
                writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError:
                assert child.poll() is None, child.communicate()
                assert time.monotonic() < deadline, "the command never opened the FIFO"
                time.sleep(0.05)
        try:
            # Interrupted where a user would press Ctrl-C: waiting for the pipe's data.
            while not _waiting_in_pipe_read(child.pid):
                assert child.poll() is None, child.communicate()
                assert time.monotonic() < deadline, "the command never read the FIFO"
                time.sleep(0.01)
            child.send_signal(signal.SIGINT)
            out, err = child.communicate(timeout=20)
        finally:
            os.close(writer)
    assert (child.returncode, out, err) == (
        130,
        "",
        "Error: interrupted; run the command again to finish\n",
    )
    assert run("subscribers", "list", "--json", config=config).output == "[]\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b"timezone = UTC\n",
            "cannot read config file {config}: Invalid value (at line 1, column 12); "
            'write it as TOML: key = value, text in quotes, e.g. timezone = "UTC"',
        ),
        (
            b'\xef\xbb\xbftimezone = "UTC"\n',
            "config file {config} starts with a byte order mark (BOM); save it as UTF-8 "
            "without BOM",
        ),
        (
            b'title = "Caf\xe9 News"\n',
            "config file {config} is not UTF-8 text (invalid continuation byte); save it as UTF-8",
        ),
    ],
)
def test_a_config_file_that_is_not_toml_says_how_to_write_it(
    tmp_path: Path, content: bytes, message: str
) -> None:
    config = tmp_path / "digest.toml"
    config.write_bytes(content)
    result = run("articles", config=config)
    assert result.exit_code == 1
    assert result.output == f"Error: {message.format(config=config)}\n"


def test_a_tag_rule_whose_name_has_no_letter_or_digit_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path, tag_rules='{ "!!!" = ["sanctions"] }')
    result = run("articles", config=config)
    assert result.exit_code == 1
    assert result.output == (
        "Error: tag_rules: '!!!' has no letter or digit, so it names no tag; "
        f"use tags like arms-control (in {config} or DIGEST_TAG_RULES)\n"
    )


def test_help_imports_nothing_heavy() -> None:
    """`digest --help` starts without the pipeline's libraries (bench/bench_startup.py
    times it): they load when a command first uses them."""
    heavy = {"sqlalchemy", "pydantic", "rich", "trafilatura", "feedgen", "httpx", "jinja2"}
    _, loaded = modules_loaded_by(["--help"], heavy)
    assert loaded == []


def test_ingest_of_text_imports_no_sending_fetching_or_rendering(tmp_path: Path) -> None:
    """`digest ingest` of a text page (bench/bench_ingest_real.py times the whole process)
    loads neither the fetcher, the feeds, the mail, the subscribers, trafilatura nor, on a
    SQLite store, PostgreSQL's dialect."""
    (tmp_path / "page.txt").write_text(
        "Harbour bridge to close\n\nThe city council voted on Monday to close the old harbour"
        " bridge for a year, after engineers found that two of its piers had cracked.\n",
        encoding="utf-8",
    )
    config = tmp_path / "digest.toml"
    config.write_text(f'database_url = "sqlite:///{tmp_path / "d.db"}"\n', encoding="utf-8")
    heavy = {"trafilatura", "feedgen", "feedparser", "httpx", "jinja2", "mjml"}
    heavy |= {"email_validator", "dateparser", "lxml", "digest.smtp", "digest.deliver"}
    heavy.add("sqlalchemy.dialects.postgresql")
    output, loaded = modules_loaded_by(["--config", str(config), "ingest", str(tmp_path)], heavy)
    assert "1 article from 1 of 1 files" in output
    assert loaded == []


def modules_loaded_by(args: list[str], heavy: set[str]) -> tuple[str, list[str]]:
    """What `digest ARGS` printed in a fresh process, and which of ``heavy`` (modules, or
    packages by their first name) it had imported by its end."""
    probe = (
        "import sys\n"
        f"sys.argv = ['digest', *{args!r}]\n"
        "from digest.cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        f"heavy = {sorted(heavy)!r}\n"
        "print(sorted(set(heavy) & {*sys.modules, *(m.split('.')[0] for m in sys.modules)}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    *output, loaded = done.stdout.strip().splitlines()
    return "\n".join(output), json.loads(loaded.replace("'", '"'))
