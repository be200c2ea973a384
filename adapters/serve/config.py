"""The `hotline serve` configuration file (YAML), validated with pydantic.

Secrets never live here: tokens and passwords come from the environment (see README).
Each channel section is handed, as it is, to that channel's own `build_channel`, which
validates it with its own model; this module knows only the common keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

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


class RoomConfig(BaseModel):
    """One queue's operators' room: `{channel: matrix, room: "!abc:server"}` or
    `{channel: telegram, chat: -100123}` (a group or supergroup the bot is a member of)."""

    model_config = ConfigDict(extra="forbid")
    channel: Literal["matrix", "telegram"]
    room: str | None = Field(None, description="Matrix room id, !abc:server")
    chat: int | None = Field(None, description="Telegram group chat id, e.g. -100123")

    @model_validator(mode="after")
    def _check(self) -> RoomConfig:
        if self.channel == "matrix" and (not self.room or not self.room.startswith("!")):
            raise ValueError("a Matrix operators' room needs `room:` with its id, !abc:server")
        if self.channel == "telegram" and (self.chat is None or self.chat >= 0):
            raise ValueError(
                "a Telegram operators' room needs `chat:` with the group's id (negative)"
            )
        return self


class ServeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    flows: str = "flows"
    store: StoreConfig = Field(default_factory=StoreConfig)
    log_format: str = Field("plain", pattern="^(plain|json)$")
    telegram: dict[str, Any] | None = None
    matrix: dict[str, Any] | None = None
    handover: dict[str, RoomConfig] = Field(
        default_factory=dict, description="queue -> its operators' room"
    )


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
