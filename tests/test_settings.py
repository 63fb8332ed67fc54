"""Settings: defaults, then the config file, then DIGEST_* variables, then flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.errors import ConfigError
from digest.settings import Settings, load_settings

from .conftest import ROOT


def test_the_shipped_config_loads_and_documents_every_setting() -> None:
    settings = load_settings(ROOT / "config" / "digest.toml")
    assert settings.timezone == "America/New_York"
    text = (ROOT / "config" / "digest.toml").read_text(encoding="utf-8")
    for name in Settings.model_fields:
        documented = (f"\n{name} = ", f"\n# {name} = ", f"[{name}]")
        assert any(form in text for form in documented), f"{name} missing from the config"


def test_environment_beats_the_file_and_flags_beat_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "c.toml"
    config.write_text('database_url = "sqlite:///file.db"\ntimezone = "Europe/Paris"\n')
    monkeypatch.setenv("DIGEST_DATABASE_URL", "sqlite:///env.db")
    monkeypatch.setenv("DIGEST_TAG_RULES", '{"Light Pollution": ["dark sky"]}')
    settings = load_settings(config)
    assert settings.database_url == "sqlite:///env.db"
    assert settings.timezone == "Europe/Paris"
    assert settings.tag_rules == {"light-pollution": ["dark sky"]}
    assert (
        load_settings(config, database_url="sqlite:///flag.db").database_url == "sqlite:///flag.db"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('timezone = "Mars/Olympus"', "timezone: unknown time zone 'Mars/Olympus'"),
        ("max_file_bytes = -1", "max_file_bytes: Input should be greater than 0"),
        ('datbase_url = "x"', "datbase_url: unknown setting; did you mean database_url?"),
        ("timezone = ", "cannot read config file"),
    ],
)
def test_bad_config_is_one_clear_error(tmp_path: Path, content: str, message: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(content + "\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_named_config_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml")


def test_the_readme_settings_table_is_the_generated_one() -> None:
    from digest.settings import settings_table

    assert settings_table() in (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("subject", ["{date:%%Q} {{braces}}", "{date.year}: {count:,}", "Digest"])
def test_subjects_that_format_are_accepted(tmp_path: Path, subject: str) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f"subject = {subject!r}\n", encoding="utf-8")
    assert load_settings(config).subject == subject


def test_tag_rules_that_name_one_tag_two_ways_keep_both_phrase_lists(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[tag_rules]\n"Arms Control" = ["arms race"]\narms-control = ["INF treaty"]\n',
        encoding="utf-8",
    )
    assert load_settings(config).tag_rules == {"arms-control": ["arms race", "INF treaty"]}


def test_relative_paths_in_a_config_file_are_read_from_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "srv" / "news"
    folder.mkdir(parents=True)
    config = folder / "digest.toml"
    config.write_text(
        'database_url = "sqlite:///var/digest.db"\n'
        'schedule_db = "sqlite:///../schedule.db?timeout=5"\n'
        'seeds_dir = "sources"\noutbox_dir = "../public"\nsubscribers_file = "list.csv"\n',
        encoding="utf-8",
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = load_settings(config)
    assert settings.database_url == f"sqlite:///{folder / 'var' / 'digest.db'}"
    assert settings.schedule_db == f"sqlite:///{tmp_path / 'srv' / 'schedule.db'}?timeout=5"
    assert settings.seeds_dir == folder / "sources"
    assert settings.outbox_dir == tmp_path / "srv" / "public"
    assert settings.subscribers_file == folder / "list.csv"
    # Environment variables and absolute paths are taken as they are.
    monkeypatch.setenv("DIGEST_OUTBOX_DIR", "out")
    assert load_settings(config).outbox_dir == Path("out")
    config.write_text(
        f'seeds_dir = "{tmp_path}"\ndatabase_url = "postgresql+psycopg://db/x"\n',
        encoding="utf-8",
    )
    settings = load_settings(config)
    assert (settings.seeds_dir, settings.database_url) == (tmp_path, "postgresql+psycopg://db/x")


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        (
            '{ "Feedback ID" = "x" }',
            "headers: header name 'Feedback ID' is not a field name; use printable ASCII "
            "without spaces or ':', e.g. Feedback-ID",
        ),
        ('{ Subject = "x" }', "headers: header Subject is one digest writes itself; remove it"),
        (
            '{ List-Unsubscribe = "x" }',
            "headers: header List-Unsubscribe is one digest writes itself; remove it",
        ),
        (
            '{ X-Campaign = "a\\nBcc: victim@example.org" }',
            "headers: header X-Campaign value 'a\\nBcc: victim@example.org' is not one line "
            "of printable ASCII; write it on one line, without non-ASCII characters",
        ),
        (
            '{ X-Campaign = "" }',
            "headers: header X-Campaign has no value; give it one or remove it",
        ),
    ],
)
def test_bad_extra_headers_are_refused(tmp_path: Path, headers: str, message: str) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f"headers = {headers}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert str(caught.value) == f"{message} (in {config} or DIGEST_HEADERS)"


def test_extra_headers_and_no_mailto_by_default(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[headers]\nFeedback-ID = "daily:digest:news"\n', encoding="utf-8")
    settings = load_settings(config)
    assert settings.headers == {"Feedback-ID": "daily:digest:news"}
    assert settings.unsubscribe_mailto is None


def test_an_empty_mailto_in_the_environment_unsets_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_UNSUBSCRIBE_MAILTO", "")
    assert load_settings().unsubscribe_mailto is None


# ---------------------------------------------------------------- [[sources]]


def test_sources_are_read_with_their_keys_and_relative_paths_from_the_file(
    tmp_path: Path,
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        "poll_interval = 15\n"
        "[[sources]]\n"
        'url = "https://news.example.org/feed.xml"\n'
        'name = "Example News"\n'
        'tags = ["World News", "world-news", "Asia"]\n'
        "full_text = true\n"
        "max_per_issue = 3\n"
        "[[sources]]\n"
        'path = "clips"\n'
        "enabled = false\n",
        encoding="utf-8",
    )
    settings = load_settings(config)
    feed, folder = settings.sources
    assert (feed.url, feed.name, feed.tags) == (
        "https://news.example.org/feed.xml",
        "Example News",
        ("world-news", "asia"),
    )
    assert (feed.full_text, feed.max_per_issue, feed.enabled) == (True, 3, True)
    assert (folder.path, folder.enabled, folder.key) == (
        tmp_path / "clips",
        False,
        str(tmp_path / "clips"),
    )
    assert settings.poll_interval == 15
    assert Settings().poll_interval == 30 and Settings().sources == ()


def test_sources_can_come_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_SOURCES", '[{"url": "https://a.example/feed", "tags": ["x"]}]')
    (source,) = load_settings().sources
    assert (source.url, source.tags) == ("https://a.example/feed", ("x",))


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('url = "ftp://example.org/feed"', "[[sources]] #1: url 'ftp://example.org/feed' is not"),
        ('urll = "https://example.org/"', "[[sources]] #1: unknown key urll; did you mean url?"),
        ('name = "x"', "[[sources]] #1: has neither url nor path; give one"),
        ('url = "https://a.example/"\npath = "x"', "[[sources]] #1: has both url and path"),
        ('path = "x"\nfull_text = true', "[[sources]] #1: full_text works with url sources only"),
        ('url = "https://a.example/"\ntags = ["!!"]', "[[sources]] #1: tags: '!!' has no letter"),
        ('url = "https://a.example/"\nmax_per_issue = 0', "#1: max_per_issue: Input should be"),
        (
            'url = "https://a.example/"\n[[sources]]\nurl = "https://a.example/"',
            "[[sources]] #2 repeats https://a.example/; keep one table for it",
        ),
    ],
)
def test_a_bad_source_is_one_line_naming_its_table(
    tmp_path: Path, table: str, message: str
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[[sources]]\n" + table + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value) and str(config) in str(caught.value)


def test_sources_that_are_no_tables_are_one_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('sources = "https://a.example/feed"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^sources: must be tables, written \[\[sources\]\]"):
        load_settings(config)
