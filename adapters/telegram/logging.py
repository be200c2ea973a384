"""Keeping the bot token out of every log line.

The token is part of every Bot API URL (`https://api.telegram.org/bot<token>/sendMessage`),
and httpx logs each request URL at INFO; python-telegram-bot logs its base URL and every
call's parameters (message texts included) at DEBUG. So, while the channel runs:

1. the `httpx`, `httpcore`, `telegram` and `telegram.ext` loggers are set to WARNING, so
   those lines are never even created, whatever level the root logger has;
2. a `TokenRedactor` filter sits on every handler of the root logger and on those library
   loggers: any record that still carries the token (in its message, its arguments, its
   formatted traceback or stack) has it replaced by `<redacted>` (`bot<token>` becomes
   `bot<redacted>`), the secret half of the token on its own too (it appears URL-encoded).

`protect(token)` does both and returns a function that undoes them (the channel calls it on
stop). Handlers added to the root logger after `protect` are not covered: configure logging
first (as `hotline` does), then start the channel.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

REDACTED = "<redacted>"
QUIET_LOGGERS = ("httpx", "httpcore", "telegram", "telegram.ext")


class TokenRedactor(logging.Filter):
    """Replaces the token (and its secret half) in every record that passes."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token
        # After the colon is the secret part; the bot id before it is public.
        self.secret = token.partition(":")[2] or token

    def redact(self, text: str) -> str:
        return text.replace(self.token, REDACTED).replace(self.secret, REDACTED)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep it, but never with the token
            message = f"{record.msg} {record.args}"
        if self.secret in message:
            record.msg = self.redact(message)
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text and self.secret in record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info and self.secret in record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def protect(token: str) -> Callable[[], None]:
    """Quiet the HTTP and telegram loggers and redact `token` everywhere; returns an undo."""
    redactor = TokenRedactor(token)
    levels: list[tuple[logging.Logger, int]] = []
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        levels.append((logger, logger.level))
        if logger.level == logging.NOTSET or logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)
    targets: list[logging.Filterer] = [logging.getLogger(n) for n in QUIET_LOGGERS]
    targets += logging.getLogger().handlers
    for target in targets:
        target.addFilter(redactor)

    def undo() -> None:
        for target in targets:
            target.removeFilter(redactor)
        for logger, level in levels:
            logger.setLevel(level)

    return undo
