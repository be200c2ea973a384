"""The `telegram:` section of the `hotline serve` config, and the secrets from the environment.

    telegram:
      mode: polling                    # or webhook
      api_url: http://127.0.0.1:8081   # optional: a self-hosted Bot API server
      poll_timeout: 30                 # long polling, seconds
      concurrency: 16                  # updates of different chats handled at once
      webhook:                         # mode: webhook only
        url: https://bot.example.org/telegram   # the public HTTPS URL Telegram calls
        listen: 127.0.0.1              # where our HTTP server listens (behind a TLS proxy)
        port: 8443
        path: /telegram                # defaults to the path of `url`
        max_connections: 40
        reuse_port: false              # true: several workers share the port (PostgreSQL)
      http_client: aiohttp             # or httpx (PTB's default): the Bot API client
      connection_pool_size: 32         # HTTP connections to the Bot API
      rate_limit:
        overall_per_second: 30         # 0: no overall limit (a self-hosted server)
        per_chat_per_second: 1
        per_chat_burst: 3
        group_per_minute: 20
        max_retries: 5                 # after a 429, honouring its retry_after
        network_retries: 5             # network errors, with exponential back-off

Secrets never live in the file: TELEGRAM_BOT_TOKEN (always) and TELEGRAM_WEBHOOK_SECRET
(webhook mode) come from the environment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from adapters.serve.config import ConfigError

TOKEN_ENV = "TELEGRAM_BOT_TOKEN"  # noqa: S105 - the variable's name, not a secret
SECRET_ENV = "TELEGRAM_WEBHOOK_SECRET"  # noqa: S105 - likewise
# A bot token: the bot's numeric id, a colon, then 35 characters of [A-Za-z0-9_-].
TOKEN_PATTERN = re.compile(r"^[0-9]{1,20}:[A-Za-z0-9_-]{30,60}$")
# Telegram's rule for secret_token: 1-256 characters of A-Z, a-z, 0-9, _ and -.
SECRET_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


class WebhookConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    url: str = Field(description="the public HTTPS URL that Telegram POSTs updates to")
    listen: str = Field("127.0.0.1", description="address our HTTP server binds")
    port: int = Field(8443, ge=0, le=65535)
    path: str | None = Field(None, description="request path served; default: url's path")
    max_connections: int = Field(40, ge=1, le=100)
    reuse_port: bool = Field(
        False,
        description="let several `hotline serve` workers listen on the same port (Linux "
        "SO_REUSEPORT; the kernel spreads Telegram's requests over them); needs store.url",
    )

    @property
    def served_path(self) -> str:
        path = self.path if self.path is not None else urlsplit(self.url).path
        return "/" + path.lstrip("/")


class RateLimitConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    overall_per_second: float = Field(30, ge=0)
    per_chat_per_second: float = Field(1, ge=0)
    per_chat_burst: int = Field(3, ge=1)
    group_per_minute: float = Field(20, ge=0)
    max_retries: int = Field(5, ge=0, description="429 retries, each after its retry_after")
    network_retries: int = Field(5, ge=0)
    backoff_initial: float = Field(0.5, gt=0)
    backoff_max: float = Field(30, gt=0)


class TimeoutConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    connect: float = Field(5, gt=0)
    read: float = Field(10, gt=0)
    write: float = Field(20, gt=0)
    pool: float = Field(10, gt=0)


class TelegramConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    mode: Literal["polling", "webhook"] = "polling"
    api_url: str | None = Field(
        None, description="base URL of a self-hosted Bot API server, e.g. http://127.0.0.1:8081"
    )
    poll_timeout: int = Field(30, ge=0, le=600)
    webhook: WebhookConfig | None = None
    rate_limit: RateLimitConfig = Field(default_factory=RateLimitConfig)
    timeouts: TimeoutConfig = Field(default_factory=TimeoutConfig)
    connection_pool_size: int = Field(32, ge=1)
    http_client: Literal["aiohttp", "httpx"] = Field(
        "aiohttp", description="python-telegram-bot's HTTP layer; aiohttp costs less CPU"
    )
    concurrency: int = Field(16, ge=1, description="updates (of different chats) handled at once")
    commands: bool = Field(True, description="register the command menu (setMyCommands)")

    @model_validator(mode="after")
    def _check(self) -> TelegramConfig:
        if self.api_url is not None:
            parts = urlsplit(self.api_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError("api_url must be an http(s) URL such as http://127.0.0.1:8081")
        if self.mode == "webhook":
            if self.webhook is None:
                raise ValueError("mode webhook needs a `webhook:` section with at least `url`")
            scheme = urlsplit(self.webhook.url).scheme
            # Telegram only calls HTTPS webhooks; a self-hosted server may call plain HTTP.
            if scheme != "https" and not (scheme == "http" and self.api_url is not None):
                raise ValueError("webhook.url must be an https:// URL (Telegram calls only HTTPS)")
        return self

    @property
    def base_url(self) -> str:
        """PTB's base_url: the API root followed by /bot (PTB appends the token)."""
        return f"{self._root()}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self._root()}/file/bot"

    def _root(self) -> str:
        root = (self.api_url or "https://api.telegram.org").rstrip("/")
        return root.removesuffix("/bot")


def parse_config(section: Mapping[str, Any] | None) -> TelegramConfig:
    try:
        return TelegramConfig.model_validate(dict(section or {}))
    except ValidationError as err:
        lines = []
        for item in err.errors():
            where = ".".join(str(p) for p in ("telegram", *item["loc"]))
            lines.append(f"{where}: {item['msg']}")
        raise ConfigError("\n".join(lines)) from None


def read_token(env: Mapping[str, str]) -> str:
    """The bot token from the environment, or a ConfigError that never shows the value."""
    token = env.get(TOKEN_ENV, "")
    if not token.strip():
        raise ConfigError(
            f"{TOKEN_ENV} is not set: create a bot with @BotFather on Telegram and "
            f"export {TOKEN_ENV}=<the token it gives you> before `hotline serve`"
        )
    if not TOKEN_PATTERN.match(token):
        hint = " (it has spaces or quotes around it)" if token != token.strip(" \"'") else ""
        raise ConfigError(
            f"{TOKEN_ENV} does not look like a bot token{hint}: expected the bot's number, "
            "a colon and about 35 letters, digits, - or _, as @BotFather shows it"
        )
    return token


def read_webhook_secret(env: Mapping[str, str]) -> str:
    secret = env.get(SECRET_ENV, "")
    if not secret:
        raise ConfigError(
            f"{SECRET_ENV} is not set: webhook mode needs a secret that Telegram sends with "
            "every update; generate one with "
            '`python -c "import secrets; print(secrets.token_urlsafe(32))"` and export it'
        )
    if not SECRET_PATTERN.match(secret):
        raise ConfigError(
            f"{SECRET_ENV} may only contain A-Z, a-z, 0-9, _ and - (1 to 256 characters)"
        )
    return secret
