"""Sessions in SQLite: the default store of a running bot.

WAL journal and one transaction per saved step: a crash leaves the old or the new session,
never half of one. The schema version is recorded in `PRAGMA user_version`, so a newer
release can migrate an older file instead of misreading it. There is no index on `updated`:
it would be rewritten on every step, while the retention purge that needs it runs rarely
and may scan.

Nothing readable about a person is in the file (schema 2): a row's `key` is the engine's
pseudonymous session key (an HMAC of channel and chat, see `engine.privacy`), `record` is
the session sealed with AES-GCM by the `Sealer` (bound to its key), and `updated` is
rounded down to the hour: enough for retention, too coarse to match a row with a message.
The `meta` table holds a canary sealed with the current key: a store opened with keys
that open nothing is refused at once, instead of failing on each person's next message.
`secure_delete` overwrites deleted rows, so /forget and purges leave no sealed leftovers.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path

from engine.conversation import Session
from engine.privacy import KEYS_VAR, SECRET_VAR, PrivacyError, Sealer
from engine.stores.base import SessionStore

SCHEMA_VERSION = 2
UPDATED_GRAIN = 3600.0  # seconds: `updated` as stored in clear, for the retention purge
CANARY = b"hotline canary\0"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    key      TEXT PRIMARY KEY,
    updated  REAL NOT NULL,
    record   BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    name     TEXT PRIMARY KEY,
    value    BLOB NOT NULL
) WITHOUT ROWID;
"""


class StoreError(RuntimeError):
    """The store file cannot be used (newer schema, not a database, no permission, keys that
    do not open it)."""


class SQLiteStore(SessionStore):
    def __init__(
        self,
        path: str | Path,
        *,
        sealer: Sealer,
        identity: bytes = b"",
        synchronous: str = "NORMAL",
    ) -> None:
        """`sealer` seals every record. `identity` (the session keys' fingerprint) is kept
        in the canary: opening the store with another HMAC secret is refused too.
        `synchronous`: NORMAL survives a crash of the bot process (the WAL default);
        FULL also survives a power cut, at the price of one fsync per step."""
        self.path = str(path)
        self.sealer = sealer
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as err:
            raise StoreError(f"{self.path}: cannot open the session store: {err}") from err
        try:
            if self.path != ":memory:" and Path(self.path).stat().st_size == 0:
                # Readable by the bot's user only (SQLite gives -wal and -shm the same mode).
                os.chmod(self.path, 0o600)
            self._db.execute("PRAGMA secure_delete=ON")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={_checked_sync(synchronous)}")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: session store schema {version} is newer than this "
                    f"release understands ({SCHEMA_VERSION}); upgrade hotline"
                )
            if version == 1:
                self._upgrade_v1()
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self._check_canary(identity)
        except sqlite3.DatabaseError as err:
            self._db.close()
            raise StoreError(f"{self.path}: cannot open the session store: {err}") from err
        except StoreError:
            self._db.close()
            raise
        self._lock = threading.Lock()

    def _upgrade_v1(self) -> None:
        """Schema 1 kept records unsealed under plain "channel:chat" keys: an empty file is
        upgraded, one holding sessions is refused (sealing it in place would leave the
        plain text in the file's free pages and journal)."""
        rows = self._db.execute("SELECT count(*) FROM sessions").fetchone()[0]
        if rows:
            raise StoreError(
                f"{self.path}: this store was written by an older hotline (schema 1) and "
                f"holds {rows} unencrypted session(s). Stop the bot, delete the file (and "
                "its -wal and -shm files; the conversations in it restart), or securely "
                "wipe it, then start again: the new store is encrypted"
            )

    def _check_canary(self, identity: bytes) -> None:
        expected = CANARY + identity
        row = self._db.execute("SELECT value FROM meta WHERE name = 'canary'").fetchone()
        if row is None:
            sessions = self._db.execute("SELECT count(*) FROM sessions").fetchone()[0]
            if sessions:
                raise StoreError(f"{self.path}: the store's key check (canary) is missing")
        else:
            try:
                found = self.sealer.open(row[0], b"canary")
            except PrivacyError as err:
                raise StoreError(
                    f"{self.path}: {KEYS_VAR} does not open this session store (none of its "
                    "keys is the one the store was sealed with). Set it to the keys in use "
                    "when the store was last written, newest first; a new key goes in front "
                    "of the old ones, never instead of them"
                ) from err
            if found != expected:
                raise StoreError(
                    f"{self.path}: {SECRET_VAR} differs from the one this store was created "
                    "with: nobody's session would be found. Set it back to that secret"
                )
            if self.sealer.sealed_with_current(row[0]):
                return
        # A new store, or keys rotated: the canary is (re)sealed with the current key.
        self._db.execute(
            "INSERT INTO meta(name, value) VALUES ('canary', ?) "
            "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            (self.sealer.seal(expected, b"canary"),),
        )

    def load(self, key: str) -> Session | None:
        with self._lock:
            row = self._db.execute("SELECT record FROM sessions WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        plain = self.sealer.open(row[0], key.encode("utf-8"))
        return Session.from_record(key, json.loads(plain))

    def save(self, session: Session) -> None:
        record = json.dumps(session.to_record(), ensure_ascii=False, separators=(",", ":"))
        sealed = self.sealer.seal(record.encode("utf-8"), session.key.encode("utf-8"))
        updated = session.updated // UPDATED_GRAIN * UPDATED_GRAIN
        with self._lock:
            # With isolation_level=None each statement is its own transaction: one per step.
            self._db.execute(
                "INSERT INTO sessions(key, updated, record) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET updated = excluded.updated, "
                "record = excluded.record",
                (session.key, updated, sealed),
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
