"""How a database is named in messages and logs: never with its password, never with more
of a driver's error than its first line."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit


def reason(err: BaseException) -> str:
    """A database error's first line: what went wrong, without libpq's hints."""
    text = str(err).strip()
    return text.splitlines()[0][:200] if text else type(err).__name__


def redacted(url: str) -> str:
    """`url` with its password (if any) replaced by ***, for messages and logs."""
    if not url.startswith(("postgresql://", "postgres://")):
        return _PASSWORD.sub(r"\1***", url)  # a "key=value" connection string
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")
