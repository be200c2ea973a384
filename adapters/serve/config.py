"""The `hotline serve` configuration file (YAML), validated with pydantic.

Secrets never live here: tokens and passwords come from the environment (see README).
Each channel section is handed, as it is, to that channel's own `build_channel`, which
validates it with its own model; this module knows only the common keys.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from adapters.serve.hours import OpeningHours

CHANNELS = ("telegram", "matrix")


class ConfigError(Exception):
    """A configuration problem, worded as `FILE: key: what is wrong and what to do`."""


class StoreConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    sqlite: str = Field("hotline.sqlite3", description="path of the SQLite session store")
    synchronous: str = Field("NORMAL", description="NORMAL, or FULL to survive power cuts")
    url: str | None = Field(
        None,
        description="postgresql://user@host/db: a PostgreSQL store shared by several "
        "workers, instead of the SQLite file",
    )
    schema_: str | None = Field(
        None, alias="schema", description="PostgreSQL schema for the tables (default: public)"
    )
    pool_size: int = Field(
        10, ge=1, le=200, description="PostgreSQL connections per worker: conversations at once"
    )

    @model_validator(mode="after")
    def _check_url(self) -> StoreConfig:
        if self.url is not None and not self.url.startswith(("postgresql://", "postgres://")):
            raise ValueError("store.url must be a PostgreSQL URL, postgresql://user@host/db")
        return self


class HoursConfig(BaseModel):
    """When a queue's lawyers are on duty: `{timezone: Europe/Moscow, days: mon-fri,
    from: "10:00", to: "19:00", holidays: [2027-01-01], zone_name: {ru: ..., en: ...}}`.
    Outside them a person handed over is told when to expect an answer (see hours.py)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    timezone: str = Field(description="IANA time zone of the hours, e.g. Europe/Moscow")
    days: str | list[str] = Field("mon-fri", description="e.g. mon-fri, or mon-fri,sat")
    # str | int: YAML reads an unquoted 10:00 as the number 600 (minutes); both are taken.
    from_: str | int = Field(alias="from", description='opening time, "10:00"')
    to: str | int = Field(description='closing time, "19:00" (at most "24:00")')
    holidays: list[dt.date] = Field(
        default_factory=list, description="dates (YYYY-MM-DD) when nobody is on duty"
    )
    zone_name: str | dict[str, str] | None = Field(
        None, description="the zone as people read it, by language: {ru: МСК, en: Moscow time}"
    )

    @model_validator(mode="after")
    def _check(self) -> HoursConfig:
        self.opening_hours()  # raises ValueError, worded for the config file
        return self

    def opening_hours(self) -> OpeningHours:
        return OpeningHours.parse(
            self.timezone, self.days, self.from_, self.to, self.holidays, self.zone_name
        )


class RoomConfig(BaseModel):
    """One queue's operators' room: `{channel: matrix, room: "!abc:server"}` or
    `{channel: telegram, chat: -100123}` (a group or supergroup the bot is a member of),
    with `hours:` when lawyers are not on duty around the clock."""

    model_config = ConfigDict(extra="forbid")
    channel: Literal["matrix", "telegram"]
    room: str | None = Field(None, description="Matrix room id, !abc:server")
    chat: int | None = Field(None, description="Telegram group chat id, e.g. -100123")
    hours: HoursConfig | None = Field(None, description="opening hours; none: always open")

    @model_validator(mode="after")
    def _check(self) -> RoomConfig:
        if self.channel == "matrix" and (not self.room or not self.room.startswith("!")):
            raise ValueError("a Matrix operators' room needs `room:` with its id, !abc:server")
        if self.channel == "telegram" and (self.chat is None or self.chat >= 0):
            raise ValueError(
                "a Telegram operators' room needs `chat:` with the group's id (negative)"
            )
        return self

    def opening_hours(self) -> OpeningHours | None:
        return self.hours.opening_hours() if self.hours is not None else None


class MetricsConfig(BaseModel):
    """`metrics: {listen: 127.0.0.1, port: 9464}`: Prometheus metrics over HTTP at
    /metrics (counts only, no identifiers). Worker N of several serves port + N."""

    model_config = ConfigDict(extra="forbid")
    listen: str = Field("127.0.0.1", description="address to listen on; 0.0.0.0 for all")
    port: int = Field(9464, ge=0, le=65535, description="TCP port of worker 0")


class ServeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    flows: str = "flows"
    store: StoreConfig = Field(default_factory=StoreConfig)
    log_format: str = Field("plain", pattern="^(plain|json)$")
    reload: bool = Field(True, description="reload changed flows while serving; SIGHUP always")
    telegram: dict[str, Any] | None = None
    matrix: dict[str, Any] | None = None
    handover: dict[str, RoomConfig] = Field(
        default_factory=dict, description="queue -> its operators' room"
    )
    metrics: MetricsConfig | None = Field(None, description="Prometheus endpoint; off if absent")


def describe(error: ValidationError, file: str) -> str:
    lines = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(top level)"
        lines.append(f"{file}: {where}: {item['msg']}")
    return "\n".join(lines)


def load_config(path: str | Path | None) -> tuple[ServeConfig, Path]:
    """The config and the folder its relative paths are relative to."""
    if path is None:
        return ServeConfig(), Path.cwd()
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the config: {err.strerror}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the config must be a mapping of keys to values")
    try:
        config = ServeConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(describe(err, str(path))) from err
    if config.telegram is None and config.matrix is None:
        raise ConfigError(
            f"{path}: no channel configured: add a `telegram:` and/or a `matrix:` section"
        )
    for queue, room in config.handover.items():
        if getattr(config, room.channel) is None:
            raise ConfigError(
                f"{path}: handover.{queue}: its room is on {room.channel}: "
                f"add a `{room.channel}:` section"
            )
    return config, path.parent
