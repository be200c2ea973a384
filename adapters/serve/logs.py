"""Logging for `hotline serve`: one handler on stderr, plain or JSON lines, no secrets.

- `log_format: plain` (the default) prints `time level logger: message`; `json` prints one
  object a line (`time`, `level`, `logger`, `message`, and `error` with a traceback) for a
  log collector.
- The HTTP clients' and the chat libraries' loggers (`httpx`, `httpcore`, `telegram`,
  `nio`) are kept at WARNING: at INFO and DEBUG they log request URLs (the Telegram token
  is in each) and whole payloads (message texts).
- The Telegram adapter's `TokenRedactor` sits on the handler for every secret found in the
  environment: the bot token, the Matrix access token and password, and the store's keys.

Our own modules log ids and counts only, never message text, answers or chat ids; the
privacy test replays every transcript at DEBUG and scans the output to keep it so.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Mapping
from typing import TextIO

from adapters.telegram.logging import TokenRedactor
from engine.privacy import KEYS_VAR, SECRET_VAR

QUIET_LOGGERS = ("httpx", "httpcore", "telegram", "telegram.ext", "nio", "transitions")
SECRET_VARS = ("TELEGRAM_BOT_TOKEN", "MATRIX_ACCESS_TOKEN", "MATRIX_PASSWORD", SECRET_VAR)
_PLAIN = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object a line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["error"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def secrets_in(environ: Mapping[str, str]) -> list[str]:
    """Every secret value the serving bot may hold, from the environment."""
    found = [environ.get(name, "").strip() for name in SECRET_VARS]
    found += [part.strip() for part in environ.get(KEYS_VAR, "").split(",")]
    return [value for value in found if len(value) >= 8]


def configure_logging(
    log_format: str,
    environ: Mapping[str, str],
    level: int = logging.INFO,
    stream: TextIO | None = None,
) -> Callable[[], None]:
    """Replace the root logger's handlers with one that formats as `log_format` and redacts
    the environment's secrets; returns a function that puts everything back."""
    if log_format not in ("plain", "json"):
        raise ValueError(f"log_format must be plain or json, not {log_format!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(_PLAIN))
    for secret in secrets_in(environ):
        handler.addFilter(TokenRedactor(secret))
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    for old in saved_handlers:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    quiet = [(logging.getLogger(name), logging.getLogger(name).level) for name in QUIET_LOGGERS]
    for logger, _ in quiet:
        logger.setLevel(logging.WARNING)

    def undo() -> None:
        root.removeHandler(handler)
        for old in saved_handlers:
            root.addHandler(old)
        root.setLevel(saved_level)
        for logger, previous in quiet:
            logger.setLevel(previous)

    return undo
