"""The `matrix:` section of the serve config, and the secrets the bot takes from the environment.

    matrix:
      homeserver: https://matrix.example.org
      user_id: "@hotline:example.org"
      store_dir: matrix-store            # relative to the config file
      allowed_servers: [example.org]     # whose users may invite the bot (default: its own)
      msgtype: notice                    # or text
      encryption: auto                   # auto | on | off

Environment: MATRIX_PASSWORD or MATRIX_ACCESS_TOKEN (one is needed the first time; later
the token kept in `store_dir` is reused), MATRIX_STORE_KEY (encrypts the end-to-end key
store; needed for encrypted rooms).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from adapters.serve.config import ConfigError, describe

_USER_ID = re.compile(r"^@[^:\s]+:[^\s]+$")

DEFAULT_ENCRYPTED_NOTICE = (
    "This bot cannot read encrypted messages. Please write to it in a chat without "
    "encryption.\n"
    "Бот не может читать зашифрованные сообщения. Пожалуйста, напишите ему в чат без "
    "шифрования."
)
DEFAULT_TOO_BIG = (
    "The document is too large for this server. Please ask a lawyer (/lawyer).\n"
    "Документ слишком большой для этого сервера. Обратитесь к юристу (/lawyer)."
)


class MatrixConfig(BaseModel):
    """The validated `matrix:` section. Read-only after construction."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    homeserver: str = Field(description="base URL of the homeserver, https://...")
    user_id: str = Field(description="the bot's full Matrix id, @name:server")
    store_dir: Path = Field(
        Path("matrix-store"),
        description="where the login, device, sync position and key store are kept",
    )
    allowed_servers: tuple[str, ...] | None = Field(
        None, description="homeservers whose users may invite the bot; default: its own"
    )
    msgtype: Literal["notice", "text"] = "notice"
    encryption: Literal["auto", "on", "off"] = "auto"
    device_name: str = "hotline"
    greet_on_join: bool = Field(True, description="show the menu when the bot joins a chat")
    sync_timeout_ms: int = Field(30_000, ge=0, le=120_000)
    seen_events: int = Field(
        10_000, ge=100, description="how many handled event ids are kept against repeats"
    )
    encrypted_notice: str = DEFAULT_ENCRYPTED_NOTICE
    too_big_notice: str = DEFAULT_TOO_BIG

    @field_validator("homeserver")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be a URL starting with https:// (or http:// for a local test)")
        return value.rstrip("/")

    @field_validator("user_id")
    @classmethod
    def _user(cls, value: str) -> str:
        if not _USER_ID.match(value):
            raise ValueError("must be a full Matrix id like @hotline:example.org")
        return value

    @property
    def server_name(self) -> str:
        return self.user_id.split(":", 1)[1]

    @property
    def allowed(self) -> frozenset[str]:
        servers = self.allowed_servers if self.allowed_servers is not None else ()
        return frozenset(s.lower() for s in servers) or frozenset({self.server_name.lower()})


@dataclass(frozen=True, slots=True)
class Secrets:
    """From the environment only; never written to a log."""

    password: str | None = None
    access_token: str | None = None
    store_key: str | None = None

    def __repr__(self) -> str:  # never show a secret, even in a traceback
        shown = ", ".join(
            f"{name}={'set' if getattr(self, name) else 'unset'}"
            for name in ("password", "access_token", "store_key")
        )
        return f"Secrets({shown})"


def load_config(
    section: Mapping[str, Any], env: Mapping[str, str], base: Path
) -> tuple[MatrixConfig, Secrets]:
    """Validate the section; resolve `store_dir` against `base`; read the secrets."""
    try:
        config = MatrixConfig.model_validate(dict(section))
    except ValidationError as err:
        raise ConfigError(describe(err, "matrix")) from err
    if not config.store_dir.is_absolute():
        config = config.model_copy(update={"store_dir": (base / config.store_dir).resolve()})
    secrets = Secrets(
        password=env.get("MATRIX_PASSWORD") or None,
        access_token=env.get("MATRIX_ACCESS_TOKEN") or None,
        store_key=env.get("MATRIX_STORE_KEY") or None,
    )
    if config.encryption == "on" and not secrets.store_key:
        raise ConfigError(
            "matrix: encryption: on needs MATRIX_STORE_KEY in the environment (a long random "
            "secret: it encrypts the bot's end-to-end key store)"
        )
    return config, secrets
