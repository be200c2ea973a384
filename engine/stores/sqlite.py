"""Sessions in SQLite: the default store of a running bot.

WAL journal and one transaction per saved step: a crash leaves the old or the new session,
never half of one. The schema version is recorded in `PRAGMA user_version`, so a newer
release can migrate an older file instead of misreading it. There is no index on `updated`:
it would be rewritten on every step, while the retention purge that needs it runs rarely
and may scan.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

from engine.conversation import Session
from engine.stores.base import SessionStore

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    key      TEXT PRIMARY KEY,
    updated  REAL NOT NULL,
    record   BLOB NOT NULL
) WITHOUT ROWID;
"""


class StoreError(RuntimeError):
    """The store file cannot be used (newer schema, not a database, no permission)."""


class SQLiteStore(SessionStore):
    def __init__(self, path: str | Path, synchronous: str = "NORMAL") -> None:
        """`synchronous`: NORMAL survives a crash of the bot process (the WAL default);
        FULL also survives a power cut, at the price of one fsync per step."""
        self.path = str(path)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={_checked_sync(synchronous)}")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: session store schema {version} is newer than this "
                    f"release understands ({SCHEMA_VERSION}); upgrade hotline"
                )
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as err:
            raise StoreError(f"{self.path}: cannot open the session store: {err}") from err
        self._lock = threading.Lock()

    def load(self, key: str) -> Session | None:
        with self._lock:
            row = self._db.execute("SELECT record FROM sessions WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return Session.from_record(key, json.loads(row[0]))

    def save(self, session: Session) -> None:
        record = json.dumps(session.to_record(), ensure_ascii=False, separators=(",", ":"))
        with self._lock:
            # With isolation_level=None each statement is its own transaction: one per step.
            self._db.execute(
                "INSERT INTO sessions(key, updated, record) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET updated = excluded.updated, "
                "record = excluded.record",
                (session.key, session.updated, record.encode("utf-8")),
            )

    def delete(self, key: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM sessions WHERE key = ?", (key,))

    def purge_idle(self, older_than: float) -> int:
        with self._lock:
            cursor = self._db.execute("DELETE FROM sessions WHERE updated < ?", (older_than,))
        return cursor.rowcount

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM sessions").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _checked_sync(value: str) -> str:
    value = value.upper()
    if value not in ("OFF", "NORMAL", "FULL", "EXTRA"):
        raise StoreError(f"synchronous must be NORMAL, FULL or EXTRA, not {value!r}")
    return value
