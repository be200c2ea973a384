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

Schema 3 adds the serving journal (`engine.stores.journal`): `seen` holds the ids of the
inbound events handled (Telegram update ids, Matrix event ids: no content) and `outbox`
the sealed actions not sent yet. A step's session, its event id and its actions are
written in one transaction. One process owns the file: several workers need PostgreSQL.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from engine.conversation import Action, Session
from engine.privacy import Sealer
from engine.stores.base import SessionStore
from engine.stores.canary import CanaryError, checked_canary
from engine.stores.journal import (
    SEEN_KEEP_SECONDS,
    UPDATED_GRAIN,
    Conversation,
    Journal,
    Outgoing,
    open_action,
    open_session,
    outbox_key,
    seal_action,
    seal_session,
)

SCHEMA_VERSION = 4

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
CREATE TABLE IF NOT EXISTS seen (
    event    TEXT PRIMARY KEY,
    at       REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
    key      TEXT NOT NULL,
    n        INTEGER NOT NULL,
    idem     TEXT NOT NULL,
    record   BLOB NOT NULL,
    PRIMARY KEY (key, n)
) WITHOUT ROWID;
"""


class StoreError(RuntimeError):
    """The store file cannot be used (newer schema, not a database, no permission, keys that
    do not open it)."""


class SQLiteStore(SessionStore, Journal):
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
            if version == 3:
                self._upgrade_v3()
            self._db.executescript(_SCHEMA)
            if version == 3:
                self._db.executescript(_FROM_V3)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self._check_canary(identity)
        except sqlite3.DatabaseError as err:
            self._db.close()
            raise StoreError(f"{self.path}: cannot open the session store: {err}") from err
        except StoreError:
            self._db.close()
            raise
        self._lock = threading.Lock()
        # Outbox rows are numbered in the order they were queued, above any row a previous
        # run left: one process owns the file, so a counter in memory is enough.
        last = self._db.execute("SELECT max(n) FROM outbox").fetchone()[0]
        self._numbers = itertools.count((last or 0) + 1)

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

    def _upgrade_v3(self) -> None:
        """Schema 3 kept the outbox in a rowid table with an index; 4 clusters it by
        conversation (one B-tree: a third less written per step). Rows are carried over."""
        self._db.executescript(
            "DROP INDEX IF EXISTS outbox_by_key; ALTER TABLE outbox RENAME TO outbox_v3;"
        )

    def _check_canary(self, identity: bytes) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE name = 'canary'").fetchone()
        sessions = self._db.execute("SELECT count(*) FROM sessions").fetchone()[0]
        try:
            renewed = checked_canary(
                row[0] if row else None, bool(sessions), self.sealer, identity, self.path
            )
        except CanaryError as err:
            raise StoreError(str(err)) from err
        if renewed is not None:
            self._db.execute(
                "INSERT INTO meta(name, value) VALUES ('canary', ?) "
                "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                (renewed,),
            )

    def load(self, key: str) -> Session | None:
        with self._lock:
            return self._load(key)

    def _load(self, key: str) -> Session | None:
        """`load` for a caller that holds the lock."""
        row = self._db.execute("SELECT record FROM sessions WHERE key = ?", (key,)).fetchone()
        return None if row is None else open_session(self.sealer, key, row[0])

    def save(self, session: Session) -> None:
        row = seal_session(self.sealer, session)
        with self._lock:
            # With isolation_level=None each statement is its own transaction: one per step.
            self._db.execute(_UPSERT, row)

    def delete(self, key: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM sessions WHERE key = ?", (key,))
            self._db.execute("DELETE FROM outbox WHERE key = ?", (key,))

    def purge_idle(self, older_than: float) -> int:
        with self._lock:
            cursor = self._db.execute("DELETE FROM sessions WHERE updated < ?", (older_than,))
            # Event ids are kept only as long as a channel may deliver the same event again.
            self._db.execute("DELETE FROM seen WHERE at < ?", (time.time() - SEEN_KEEP_SECONDS,))
        return cursor.rowcount

    # ------------------------------------------------------------------ the journal

    @asynccontextmanager
    async def conversation(self, key: str) -> AsyncIterator[Conversation]:
        # One process owns the file, and the hub runs one event at a time per key in it.
        yield _SQLiteConversation(self, key)

    async def keys_with_pending(self) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT DISTINCT key FROM outbox").fetchall()
        return [row[0] for row in rows]

    def outbox_size(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM outbox").fetchone()[0]

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM sessions").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


_FROM_V3 = """
INSERT INTO outbox(key, n, idem, record) SELECT key, id, idem, record FROM outbox_v3;
DROP TABLE outbox_v3;
"""


def _has_outbox(db: sqlite3.Connection, key: str) -> bool:
    found = db.execute("SELECT 1 FROM outbox WHERE key = ? LIMIT 1", (key,)).fetchone()
    return found is not None


_UPSERT = (
    "INSERT INTO sessions(key, updated, record) VALUES (?, ?, ?) "
    "ON CONFLICT(key) DO UPDATE SET updated = excluded.updated, record = excluded.record"
)


class _SQLiteConversation(Conversation):
    __slots__ = ("_store", "key")

    def __init__(self, store: SQLiteStore, key: str) -> None:
        self._store = store
        self.key = key

    async def seen(self, event_id: str) -> bool:
        if not event_id:
            return False
        store = self._store
        with store._lock:
            row = store._db.execute("SELECT 1 FROM seen WHERE event = ?", (event_id,)).fetchone()
        return row is not None

    async def load(self) -> Session | None:
        store = self._store
        with store._lock:
            return store._load(self.key)

    async def commit(
        self, session: Session | None, event_id: str, actions: Sequence[Action]
    ) -> list[Outgoing] | None:
        store, key = self._store, self.key
        # Sealing happens before the transaction: the lock is held for the writes only.
        row = None if session is None else seal_session(store.sealer, session)
        queued = [
            (key, outbox_key(event_id, index), seal_action(store.sealer, key, action))
            for index, action in enumerate(actions)
        ]
        with store._lock:
            db = store._db
            db.execute("BEGIN IMMEDIATE")
            try:
                if row is None:
                    db.execute("DELETE FROM sessions WHERE key = ?", (key,))
                    db.execute("DELETE FROM outbox WHERE key = ?", (key,))
                    older = False
                else:
                    db.execute(_UPSERT, row)
                    older = bool(queued) and _has_outbox(db, key)
                if event_id:
                    db.execute(
                        "INSERT OR IGNORE INTO seen(event, at) VALUES (?, ?)",
                        (event_id, time.time() // UPDATED_GRAIN * UPDATED_GRAIN),
                    )
                ids = [next(store._numbers) for _ in queued]
                db.executemany(
                    "INSERT INTO outbox(key, n, idem, record) VALUES (?, ?, ?, ?)",
                    [
                        (key, n, idem, sealed)
                        for n, (_, idem, sealed) in zip(ids, queued, strict=True)
                    ],
                )
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        if older:
            return None
        return [
            Outgoing(id, entry[1], action)
            for id, entry, action in zip(ids, queued, actions, strict=True)
        ]

    async def pending(self) -> list[Outgoing]:
        store, key = self._store, self.key
        with store._lock:
            rows = store._db.execute(
                "SELECT n, idem, record FROM outbox WHERE key = ? ORDER BY n", (key,)
            ).fetchall()
        return [
            Outgoing(id, idem, open_action(store.sealer, key, sealed)) for id, idem, sealed in rows
        ]

    async def sent(self, item: Outgoing) -> None:
        store = self._store
        with store._lock:
            store._db.execute("DELETE FROM outbox WHERE key = ? AND n = ?", (self.key, item.id))


def _checked_sync(value: str) -> str:
    value = value.upper()
    if value not in ("OFF", "NORMAL", "FULL", "EXTRA"):
        raise StoreError(f"synchronous must be NORMAL, FULL or EXTRA, not {value!r}")
    return value
