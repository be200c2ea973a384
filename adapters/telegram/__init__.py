"""The Telegram channel: the flows on Telegram through python-telegram-bot.

`hotline serve` calls `build_channel(section, os.environ, base)` with the config's
`telegram:` section (see `adapters.telegram.config` for its keys). The token comes from
TELEGRAM_BOT_TOKEN and, in webhook mode, the secret from TELEGRAM_WEBHOOK_SECRET; a missing
or malformed one stops the start with a ConfigError that says what to do (and never shows
the value).

Modules: `channel` (TelegramChannel), `convert` (updates -> events, texts -> messages),
`polling` and `webhook` (receiving, acknowledging only handled updates), `ordering` (one
update at a time per chat), `ratelimit` (limits, 429, network retries), `logging` (the token
never reaches a log line), `config`, `localserver` (a strict local Bot API server for tests
and replays), `apispec` (the Bot API spec it checks requests against) and `replay` (the
driver of `hotline replay --channel telegram`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adapters.telegram.channel import TelegramChannel
from adapters.telegram.config import (
    TelegramConfig,
    parse_config,
    read_token,
    read_webhook_secret,
)

__all__ = ["TelegramChannel", "TelegramConfig", "build_channel"]


def build_channel(
    section: Mapping[str, Any] | None, env: Mapping[str, str], base: Path
) -> TelegramChannel:
    """The channel for a `telegram:` config section; ConfigError when it cannot start.
    (`base`, the config's folder, is not needed: nothing here names a file.)"""
    config = parse_config(section)
    token = read_token(env)
    secret = read_webhook_secret(env) if config.mode == "webhook" else None
    return TelegramChannel(config, token, webhook_secret=secret)
