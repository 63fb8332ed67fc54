"""Settings, read once at the edge: defaults → config file → ``DIGEST_*`` env → CLI flags."""

from __future__ import annotations

import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from digest import dates
from digest.errors import ConfigError

DEFAULT_CONFIG = Path("config/digest.toml")
_config_file: ContextVar[Path | None] = ContextVar("config_file", default=None)


class Settings(BaseSettings):
    """Every setting of digest; each can be set as ``DIGEST_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="DIGEST_", extra="forbid", frozen=True)

    database_url: str = Field(
        "sqlite:///var/digest.db",
        description="SQLAlchemy URL of the store: a SQLite file, or postgresql+psycopg://…",
    )
    seeds_dir: Path = Field(
        Path("seeds"), description="Where `digest ingest` reads when given no paths."
    )
    seeds_metadata: str = Field(
        "seeds.toml",
        description="Operator metadata file in a source folder; fills gaps the text leaves.",
    )
    outbox_dir: Path = Field(Path("outbox"), description="Where rendered output is written.")
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

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        dates.zone(value)
        return value

    @field_validator("tag_rules")
    @classmethod
    def _slug_keys(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        from digest.clean import tag_slug

        return {tag_slug(slug): phrases for slug, phrases in value.items() if tag_slug(slug)}

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
            sources += (TomlConfigSettingsSource(settings_cls, toml_file=path),)
        return sources


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Settings from ``config`` (the default file is optional, a named one is not)."""
    path = config if config is not None else DEFAULT_CONFIG
    if config is not None and not path.is_file():
        raise ConfigError(f"config file {path} not found; pass --config PATH or create it")
    if path.is_file():
        try:
            with path.open("rb") as handle:
                tomllib.load(handle)
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    token = _config_file.set(path if path.is_file() else None)
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "settings"
        message = error["msg"].removeprefix("Value error, ")
        raise ConfigError(
            f"{where}: {message} (in {path} or DIGEST_{str(error['loc'][0]).upper()})"
        ) from exc
    finally:
        _config_file.reset(token)


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
