"""Settings, read once at the edge: defaults → config file → ``DIGEST_*`` env → CLI flags."""

from __future__ import annotations

import codecs
import difflib
import os
import re
import string
import tomllib
from contextvars import ContextVar
from datetime import date
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from digest import dates
from digest.errors import ConfigError
from digest.links import PLAIN_ADDRESS

DEFAULT_CONFIG = Path("config/digest.toml")
# The shipped unsubscribe key: fine for dry runs, refused for real sends (anyone could
# forge unsubscribe links with it).
PLACEHOLDER_SECRET = "change-me"
# What is wrong with a tag name that slugs to nothing ("!!!"), and what to write instead.
NO_TAG = "has no letter or digit, so it names no tag; use tags like arms-control"
# Issue and listing dates: a window of up to 9999 days before the first, and a day after the
# last, must still be dates.
FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(9998, 12, 31)
_config_file: ContextVar[Path | None] = ContextVar("config_file", default=None)
# The settings written in a fixed form: the form, and what to tell an operator who missed it.
_FORMS = {
    "digest_name": (
        re.compile(r"[a-z0-9][a-z0-9-]{0,39}"),
        'is not a short name; use lower-case letters, digits and dashes (at most 40), e.g. "daily"',
    ),
    "window": (
        re.compile(r"[1-9][0-9]{0,3}d"),
        'is not a number of days; write it like "7d" (1d to 9999d)',
    ),
    "schedule_time": (
        re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]"),
        'is not a time of day; write it as HH:MM, e.g. "07:00"',
    ),
}
# What the mail headers and the SMTP envelope take as is: no display name, ASCII only.
_DATE_CODE = re.compile(r"%%|%[-_0^#]?[A-Za-z]")  # "%%" is a literal percent sign
_SAMPLE_DAY = date(2026, 11, 27)
# pydantic-settings reads a list or dict setting from the environment as JSON.
_JSON_EXAMPLES = {
    "tag_rules": '{"sanctions": ["sanctions"]}',
    "headers": '{"Feedback-ID": "issue:daily:news"}',
    "sources": '[{"url": "https://example.org/feed.xml", "tags": ["world"]}]',
}
# Settings that name files or folders, and SQLite URLs: relative ones in a config file are
# read from that file's folder, so `digest --config /srv/news/digest.toml` works from anywhere.
_PATH_SETTINGS = ("seeds_dir", "outbox_dir", "subscribers_file")
_URL_SETTINGS = ("database_url", "schedule_db")


class SourceConfig(BaseModel):
    """One ``[[sources]]`` entry: a feed, page or home page by ``url``, or a folder by ``path``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str | None = None  # a feed, an article page, or a site's home page (its feed found)
    path: Path | None = None  # a folder (or file) of source files, as seeds_dir
    name: str = ""  # shown in reports and as the articles' source; empty: the site's own name
    tags: tuple[str, ...] = ()  # added to every article of the source
    full_text: bool = False  # fetch each new entry's linked page and read the article there
    max_per_issue: int | None = Field(None, ge=1)  # most articles of this source in one issue
    enabled: bool = True  # a disabled source is neither polled nor read

    @field_validator("url")
    @classmethod
    def _feed_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"url {value!r} is not an http(s) URL with a host; write the feed's or the "
                'site\'s address, e.g. url = "https://example.org/feed.xml"'
            )
        if any(c.isspace() for c in value):
            raise ValueError(f"url {value!r} has spaces; percent-encode them (%20)")
        return value

    @field_validator("path", mode="before")
    @classmethod
    def _some_path(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            raise ValueError("path is empty, which would mean the current folder; name a folder")
        return value

    @field_validator("tags")
    @classmethod
    def _slugs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from digest.clean import tag_slug

        slugs = []
        for name in value:
            if not (slug := tag_slug(name)):
                raise ValueError(f"{name!r} {NO_TAG}")
            slugs.append(slug)
        return tuple(dict.fromkeys(slugs))

    @model_validator(mode="after")
    def _url_or_path(self) -> SourceConfig:
        if (self.url is None) == (self.path is None):
            has = "has both url and path" if self.url else "has neither url nor path"
            raise ValueError(
                f'{has}; give one: url = "https://…" (a feed, a page or a site) or path = "FOLDER"'
            )
        if self.full_text and self.url is None:
            raise ValueError("full_text works with url sources only (files are read whole)")
        return self

    @property
    def key(self) -> str:
        """What names the source in the store and the reports: its URL, or its path."""
        return self.url if self.url is not None else str(self.path)


class Settings(BaseSettings):
    """Every setting of digest; each can be set as ``DIGEST_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="DIGEST_", extra="forbid", frozen=True)

    database_url: str = Field(
        "sqlite:///var/digest.db",
        description="SQLAlchemy URL of the store: a SQLite file, or postgresql+psycopg://…"
        " (a relative SQLite file in a config file: from that file's folder).",
    )
    seeds_dir: Path = Field(
        Path("seeds"),
        description="Where `digest ingest` and `digest send` read sources (relative, in a "
        "config file: from that file's folder).",
    )
    seeds_metadata: str = Field(
        "seeds.toml",
        description="Operator metadata file in a source folder; fills gaps the text leaves.",
    )
    outbox_dir: Path = Field(
        Path("outbox"),
        description="Where a real send publishes (a dry run: only into preview/DATE/); "
        "relative, in a config file: from that file's folder.",
    )
    timezone: str = Field(
        "UTC", description="IANA zone of the digest, and of dates printed without an offset."
    )
    tag_rules: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Tag slug → phrases; an article whose title or body has one gets the tag.",
    )
    max_file_bytes: int = Field(
        5_000_000, gt=0, description="Files larger than this are rejected at ingest."
    )
    summary_sentences: int = Field(
        2, ge=1, le=10, description="Sentences in an article's lead summary."
    )
    summary_chars: int = Field(
        320, ge=40, description="Character budget of a lead summary (whole sentences within it)."
    )
    digest_name: str = Field(
        "daily",
        description="Short name of this digest, used in its List-Id, feed ids and send ledger.",
    )
    title: str = Field("The Daily Digest", description="Name shown in the email, feeds and pages.")
    issue_date: date | None = Field(
        None, description="Pin the issue date (YYYY-MM-DD); unset means today in `timezone`."
    )
    window: str = Field(
        "1d",
        description="Whole local days an issue covers, ending the day before the issue date.",
    )
    max_articles: int = Field(
        25, ge=1, le=200, description="Most articles in one issue (keeps the email under ~102 KB)."
    )
    base_url: str = Field(
        "http://127.0.0.1:8080",
        description="Public URL where outbox/ is served: links in the email and feeds use it.",
    )
    from_address: str = Field("digest@example.org", description="Sender address of the email.")
    from_name: str = Field("The Daily Digest", description="Sender display name.")
    subject: str = Field(
        "{title} for {date:%A, %B %-d, %Y}: {stories}",
        description='Subject line; {title}, {date}, {count} and {stories} ("1 story", '
        '"3 stories") are filled in.',
    )
    postal_address: str = Field(
        "The Daily Digest · 1 Example Street · Springfield, ST 00000",
        description="Postal/identity line in the email footer (required of bulk senders).",
    )
    unsubscribe_secret: SecretStr = Field(
        SecretStr(PLACEHOLDER_SECRET),
        description="HMAC key of unsubscribe tokens; set your own, keep it secret.",
    )
    unsubscribe_mailto: str | None = Field(
        None,
        description="Mailbox of a mailto: List-Unsubscribe alternative; unset: none (only "
        "set it once something reads that mailbox).",
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description='Extra mail headers, e.g. { Feedback-ID = "issue:daily:news" } for Gmail.',
    )
    subscribers_file: Path = Field(
        Path("config/subscribers.csv"),
        description="CSV (email,name,tags) imported once, by the first `digest send` of an empty "
        "store (relative, in a config file: from that file's folder).",
    )
    feed_issues: int = Field(7, ge=1, description="Issues whose articles the feeds carry.")
    smtp_host: str = Field("127.0.0.1", description="SMTP relay host.")
    smtp_port: int = Field(25, ge=1, le=65535, description="SMTP relay port.")
    smtp_user: str | None = Field(None, description="SMTP login; unset means no AUTH.")
    smtp_password: SecretStr | None = Field(None, description="SMTP password (never logged).")
    smtp_tls: Literal["auto", "starttls", "ssl", "none"] = Field(
        "auto",
        description="auto: STARTTLS when offered (certificate checked only with a login); "
        "starttls: required; ssl: implicit TLS; none.",
    )
    smtp_timeout: float = Field(
        30.0,
        gt=0,
        le=3600,
        allow_inf_nan=False,
        description="Seconds to wait on the SMTP server (its reply to a sent message: 10 min).",
    )
    smtp_retries: int = Field(
        5,
        ge=0,
        le=20,
        description="Retries of a transient SMTP failure (4xx, disconnect, timeout).",
    )
    send_workers: int = Field(
        1,
        ge=1,
        le=64,
        description="Processes a real send delivers through, each with its own SMTP "
        "connection (more than 1 needs PostgreSQL).",
    )
    send_lease: float = Field(
        120.0,
        ge=5,
        le=3600,
        allow_inf_nan=False,
        description="Seconds a sender's claim on its recipients lasts unless renewed; a "
        "claim of a sender that died (on another machine) is taken over after it.",
    )
    schedule_time: str = Field("07:00", description="Daily run, local HH:MM.")
    schedule_db: str = Field(
        "sqlite:///var/schedule.db",
        description="SQLAlchemy URL of the scheduler's job store (relative SQLite file: as "
        "database_url).",
    )
    misfire_grace_seconds: int = Field(
        21600,
        ge=1,
        le=604800,
        description="A run missed by downtime still runs if this late (6 h).",
    )
    cache_max_age: int = Field(
        300,
        ge=0,
        le=31536000,
        description="Cache-Control max-age (seconds) of what `digest serve` serves.",
    )
    sources: tuple[SourceConfig, ...] = Field(
        (),
        description="`[[sources]]` tables: url (a feed, page or home page) or path (a folder), "
        "name, tags, full_text, max_per_issue, enabled; see Adding sources.",
    )
    poll_interval: int = Field(
        30,
        ge=5,
        le=1440,
        description="Minutes between two polls of the url sources by `digest schedule` "
        "(jittered by up to a tenth).",
    )
    failing_polls_reported: int = Field(
        3,
        ge=1,
        le=1000,
        description="A source failing this many polls in a row is listed in the send report "
        "(one blip is not).",
    )

    @field_validator("sources")
    @classmethod
    def _distinct_sources(cls, value: tuple[SourceConfig, ...]) -> tuple[SourceConfig, ...]:
        seen: set[str] = set()
        for number, source in enumerate(value, 1):
            if source.key in seen:
                raise ValueError(
                    f"[[sources]] #{number} repeats {source.key}; keep one table for it"
                )
            seen.add(source.key)
        return value

    @field_validator("digest_name", "window", "schedule_time")
    @classmethod
    def _in_its_form(cls, value: str, info: ValidationInfo) -> str:
        form, wrong = _FORMS[info.field_name or ""]
        if not form.fullmatch(value):
            raise ValueError(f"{value!r} {wrong}")
        return value

    @field_validator("subject")
    @classmethod
    def _subject_template(cls, value: str) -> str:
        _check_subject(value)
        return value

    @field_validator("base_url")
    @classmethod
    def _web_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"{value!r} is not an http(s) URL with a host; set it to the public URL of "
                "outbox/, e.g. https://news.example.org/digest"
            )
        if not value.isascii() or any(c.isspace() for c in value):
            # It goes into the List-Unsubscribe header as it stands, which takes plain ASCII.
            raise ValueError(
                f"{value!r} has spaces or non-ASCII characters; write the host in punycode "
                "(xn--…) and percent-encode the path"
            )
        return value

    @field_validator("unsubscribe_mailto", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # DIGEST_UNSUBSCRIBE_MAILTO= (empty) is how an environment unsets it.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("from_address", "unsubscribe_mailto")
    @classmethod
    def _plain_address(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if not PLAIN_ADDRESS.fullmatch(value.strip()):
            example = "digest@example.org, the name in from_name"
            if info.field_name == "unsubscribe_mailto":
                example = "unsubscribe@example.org"
            raise ValueError(f"{value!r} is not a plain email address; write it like {example}")
        return value

    @field_validator("headers")
    @classmethod
    def _extra_headers(cls, value: dict[str, str]) -> dict[str, str]:
        if value:
            from digest.message import header_problem  # the one rule, where headers are made

            for name, text in value.items():
                if problem := header_problem(name, text):
                    raise ValueError(problem)
        return value

    @field_validator("seeds_dir", "outbox_dir", "subscribers_file", mode="before")
    @classmethod
    def _not_empty(cls, value: object, info: ValidationInfo) -> object:
        # Path("") is the current folder: ingest would read it all, send would write into it.
        if isinstance(value, str) and not value.strip():
            default = cls.model_fields[info.field_name or ""].default
            raise ValueError(
                f"is empty, which would mean the current folder; set it, e.g. to {default}"
            )
        return value

    @field_validator("issue_date")
    @classmethod
    def _in_range(cls, value: date | None) -> date | None:
        if value is not None and not FIRST_DAY <= value <= LAST_DAY:
            raise ValueError(f"{value} is out of range; use a date from {FIRST_DAY} to {LAST_DAY}")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        dates.zone(value)
        return value

    @field_validator("tag_rules")
    @classmethod
    def _slug_keys(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        from digest.clean import tag_slug

        merged: dict[str, list[str]] = {}
        for name, phrases in value.items():  # "Arms Control" and "arms-control" are one tag
            if not (slug := tag_slug(name)):
                raise ValueError(f"{name!r} {NO_TAG}")
            merged.setdefault(slug, []).extend(phrases)
        return merged

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = _config_file.get()
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
        if path is not None:
            sources += (_ConfigFile(settings_cls, toml_file=path),)
        return sources


class _ConfigFile(TomlConfigSettingsSource):
    """The TOML file, its relative paths and SQLite URLs read from the file's own folder."""

    def __call__(self) -> dict[str, Any]:
        values = super().__call__()
        path = _config_file.get()
        folder = path.parent if path is not None else Path()
        for name in _PATH_SETTINGS:
            value = values.get(name)
            if isinstance(value, str) and value.strip() and not Path(value).is_absolute():
                values[name] = os.path.normpath(folder / value)
        for name in _URL_SETTINGS:
            value = values.get(name)
            if isinstance(value, str):
                values[name] = _sqlite_from(folder, value)
        entries = values.get("sources")
        if isinstance(entries, list):
            values["sources"] = [_path_from(folder, entry) for entry in entries]
        return values


def _path_from(folder: Path, entry: object) -> object:
    """A ``[[sources]]`` table with its relative path read from the config file's folder."""
    if not isinstance(entry, dict):
        return entry
    value = entry.get("path")
    if isinstance(value, str) and value.strip() and not Path(value).is_absolute():
        return {**entry, "path": os.path.normpath(folder / value)}
    return entry


def _sqlite_from(folder: Path, url: str) -> str:
    """A relative SQLite file read from ``folder``; other URLs as they are."""
    prefix, sep, file = url.partition(":///")
    if not sep or not prefix.startswith("sqlite") or not file or file.startswith(":memory:"):
        return url
    name, query_sep, query = file.partition("?")
    if Path(name).is_absolute():
        return url
    return f"{prefix}:///{os.path.normpath(folder / name)}{query_sep}{query}"


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Settings from ``config`` (the default file is optional, a named one is not)."""
    path = config if config is not None else DEFAULT_CONFIG
    if config is not None and not path.is_file():
        raise ConfigError(f"config file {path} not found; pass --config PATH or create it")
    if path.is_file():
        _check_toml(path)
    token = _config_file.set(path if path.is_file() else None)
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as exc:
        raise ConfigError(_env_json_message(str(exc))) from exc
    except ValidationError as exc:
        raise ConfigError(_validation_message(exc, path)) from exc
    finally:
        _config_file.reset(token)


def add_source(config: Path, table: dict[str, Any]) -> None:
    """Append a ``[[sources]]`` table to the config file (created when missing), keeping its
    comments and layout (tomlkit), after checking it; the file is replaced atomically."""
    import tomlkit
    from tomlkit.exceptions import TOMLKitError
    from tomlkit.items import AoT

    try:
        entry = SourceConfig(**table)
    except ValidationError as exc:
        raise ConfigError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from exc
    if config.is_file():
        _check_toml(config)
        text = config.read_text(encoding="utf-8")
    else:
        text = ""
    try:
        doc = tomlkit.parse(text)
        found = doc.get("sources")
        if found is None:
            doc.append("sources", tomlkit.aot())
            found = doc["sources"]
        if not isinstance(found, AoT):
            raise ConfigError(
                f"sources in {config} is not written as [[sources]] tables; write each source "
                "as a [[sources]] table, then run this again"
            )
        if any(item.get("url") == entry.url for item in found):
            raise ConfigError(f"{entry.url} is a source already (in {config})")
        found.append(tomlkit.item(table))
        data = tomlkit.dumps(doc)
    except TOMLKitError as exc:
        raise ConfigError(f"cannot edit config file {config}: {exc}") from exc
    tomllib.loads(data)  # what tomlkit wrote must read back
    temp = config.with_name(f".{config.name}.tmp")
    try:
        config.parent.mkdir(parents=True, exist_ok=True)
        temp.write_text(data, encoding="utf-8")
        os.replace(temp, config)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise ConfigError(f"cannot write config file {config}: {exc.strerror or exc}") from exc


def _check_toml(path: Path) -> None:
    """Read the file once here, so a syntax error is one line saying how to write it."""
    try:
        data = path.read_bytes()
        if data.startswith(codecs.BOM_UTF8):  # Notepad's UTF-8; tomllib refuses it
            raise ConfigError(
                f"config file {path} starts with a byte order mark (BOM); "
                "save it as UTF-8 without BOM"
            )
        tomllib.loads(data.decode("utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not UTF-8 text ({exc.reason}); save it as UTF-8"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"cannot read config file {path}: {exc}; write it as TOML: key = value, "
            'text in quotes, e.g. timezone = "UTC"'
        ) from exc


def _validation_message(exc: ValidationError, path: Path) -> str:
    """The first error, naming the setting, what to write, and where it was read from."""
    error = exc.errors()[0]
    name = str(error["loc"][0]) if error["loc"] else "settings"
    where = ".".join(str(part) for part in error["loc"]) or "settings"
    if name == "sources":
        return _source_message(error, path)
    if error["type"] == "extra_forbidden":  # only the file can hold an unknown key
        return f"{where}: unknown setting; {_unknown_hint(name, error['input'])} (in {path})"
    message = error["msg"].removeprefix("Value error, ")
    variable = f"DIGEST_{name.upper()}"
    return f"{where}: {message} (in {f'{path} or ' if path.is_file() else ''}{variable})"


def _source_message(error: Any, path: Path) -> str:
    """A bad ``[[sources]]`` table, named by its number in the file and the key at fault."""
    loc = error["loc"]
    where = f"in {path} or DIGEST_SOURCES" if path.is_file() else "in DIGEST_SOURCES"
    message = error["msg"].removeprefix("Value error, ")
    if len(loc) < 2 or not isinstance(loc[1], int):
        if error["type"] in ("tuple_type", "list_type"):
            message = 'must be tables, written [[sources]] with url = "…" or path = "…" under it'
        shown = "" if message.startswith("[[sources]]") else "sources: "
        return f"{shown}{message} ({where})"
    number = f"[[sources]] #{loc[1] + 1}"
    key = str(loc[2]) if len(loc) > 2 else ""
    if error["type"] == "extra_forbidden":
        close = difflib.get_close_matches(key, SourceConfig.model_fields, n=1)
        hint = (
            f"did you mean {close[0]}?"
            if close
            else "the keys are " + ", ".join(SourceConfig.model_fields)
        )
        return f"{number}: unknown key {key}; {hint} ({where})"
    if error["type"] == "model_type":
        return f'{number}: must be a table with url = "…" or path = "…" ({where})'
    shown = f"{key}: " if key and not message.startswith(key) else ""
    return f"{number}: {shown}{message} ({where})"


def _unknown_hint(name: str, value: object) -> str:
    """A [section] of flat settings (smtp → smtp_host), a misspelling, or where to look."""
    if isinstance(value, dict):
        flat = [f"{name}_{key}" for key in value if f"{name}_{key}" in Settings.model_fields]
        if flat:
            where = f"before any [table], not under [{name}]"
            return f"settings are not grouped: write {flat[0]} = … {where}"
    close = difflib.get_close_matches(name, Settings.model_fields, n=1)
    return f"did you mean {close[0]}?" if close else "the settings are listed in README.md"


def _check_subject(template: str) -> None:
    """Fill the subject once with sample values, so a bad one stops a run before it starts."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(_not_a_template(template, exc)) from exc
    for _, field, spec, _ in parts:
        if field is None:
            continue
        names = re.split(r"[.\[]", field)
        # "{date.year}" is fine; "{title.__class__}" would reach into Python's objects.
        if names[0] not in ("title", "date", "count", "stories") or any(
            name.startswith("_") for name in names[1:]
        ):
            raise ValueError(
                f"{template!r} names {{{field}}}; use only {{title}}, {{date}}, {{count}} "
                "and {stories}"
            )
        for code in _DATE_CODE.findall(spec or "") if field == "date" else ():
            if code != "%%" and _SAMPLE_DAY.strftime(code) == code:  # the C library kept it
                raise ValueError(
                    f"{template!r} has {code}, which is not a date format code; "
                    "use codes like %A, %B, %d, %Y"
                )
    try:
        template.format(title="Title", date=_SAMPLE_DAY, count=3, stories="3 stories")
    except (ValueError, AttributeError, KeyError, IndexError) as exc:
        raise ValueError(_not_a_template(template, exc)) from exc


def _not_a_template(template: str, exc: Exception) -> str:
    return f"{template!r} is not a template ({exc}); write {{{{ and }}}} for a literal brace"


def _env_json_message(error: str) -> str:
    """pydantic-settings names the field it could not parse only inside its message."""
    found = re.search(r'field "(\w+)"', error)
    name = found.group(1) if found else "tag_rules"
    example = _JSON_EXAMPLES.get(name)
    shown = f", e.g. DIGEST_{name.upper()}='{example}'" if example else ""
    return f"DIGEST_{name.upper()} is not JSON; write it as a JSON object{shown}"


def settings_table() -> str:
    """The settings as a Markdown table (the README embeds it; a test keeps them equal)."""
    rows = [
        "| Setting | Environment variable | Default | What it does |",
        "|---|---|---|---|",
    ]
    for name, info in Settings.model_fields.items():
        default = info.get_default(call_default_factory=True)
        shown = str(default) if not isinstance(default, dict) else (default or "{}")
        rows.append(f"| `{name}` | `DIGEST_{name.upper()}` | `{shown}` | {info.description} |")
    return "\n".join(rows)
