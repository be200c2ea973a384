"""Sessions and the serving journal in PostgreSQL (psycopg 3): several workers, one database.

Chosen by `store: {url: postgresql://...}` in the serve config; SQLite stays the default.
What is stored is what the SQLite store keeps (see engine/stores/sqlite.py): pseudonymous
keys, records sealed with AES-GCM, `updated` rounded to the hour, a sealed canary that
refuses wrong keys, the ids of handled events and the sealed outbox.

Several `hotline serve` processes may share the database. A conversation is held with a
session-level advisory lock (`pg_advisory_lock`) on one pooled connection for the whole
of an event's handling: its step and its sends. So one event at a time per conversation,
across processes, in the order the workers asked for the lock (PostgreSQL queues lock
waiters first come, first served); different conversations run concurrently, up to the
pool's size per process. A worker that dies releases its locks with its connections.

The serving bot uses the async journal (an `AsyncConnectionPool`); the `SessionStore`
methods (purge, count, the CLI) use one plain connection of their own. A lost connection
or a database that is down raises `StoreUnavailable`: the hub backs off and retries.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from engine.conversation import Action, Session
from engine.privacy import Sealer
from engine.stores.base import SessionStore
from engine.stores.canary import CanaryError, checked_canary
from engine.stores.dbnames import reason, redacted
from engine.stores.journal import (
    SEEN_KEEP_SECONDS,
    UPDATED_GRAIN,
    Conversation,
    Journal,
    Outgoing,
    StoreUnavailable,
    open_action,
    open_session,
    outbox_key,
    seal_action,
    seal_session,
)
from engine.stores.sqlite import StoreError

SCHEMA_VERSION = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    name     TEXT PRIMARY KEY,
    value    BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    key      TEXT PRIMARY KEY,
    updated  DOUBLE PRECISION NOT NULL,
    record   BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS seen (
    event    TEXT PRIMARY KEY,
    at       DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    id       BIGSERIAL PRIMARY KEY,
    key      TEXT NOT NULL,
    idem     TEXT NOT NULL,
    record   BYTEA NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_by_key ON outbox(key, id);
"""

_UPSERT = (
    "INSERT INTO sessions(key, updated, record) VALUES (%s, %s, %s) "
    "ON CONFLICT(key) DO UPDATE SET updated = excluded.updated, record = excluded.record"
)

# Errors that mean "the database is not there right now", not "this request is wrong".
_UNAVAILABLE = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout)


class PostgresStore(SessionStore, Journal):
    def __init__(
        self,
        url: str,
        *,
        sealer: Sealer,
        identity: bytes = b"",
        schema: str | None = None,
        pool_size: int = 10,
        connect_timeout: float = 10.0,
    ) -> None:
        """`url`: a libpq connection string or URL. `schema`: a PostgreSQL schema to keep
        the tables in (created if missing; default: the connection's search_path).
        `pool_size`: connections of the serving journal, so conversations handled at once
        by this process. Creating the tables and checking the keys happen here."""
        self.url = url
        self.sealer = sealer
        self.where = redacted(url) + (f" (schema {schema})" if schema else "")
        self._kwargs: dict[str, Any] = {
            "connect_timeout": max(1, int(connect_timeout)),
            # Shown in pg_stat_activity: an administrator sees which connections are ours.
            "application_name": f"hotline {schema}"[:63] if schema else "hotline",
        }
        if schema is not None:
            self._kwargs["options"] = f"-c search_path={schema}"
        try:
            self._db = psycopg.connect(url, autocommit=True, **self._kwargs)
        except psycopg.Error as err:
            raise StoreError(
                f"{self.where}: cannot connect to the PostgreSQL store ({reason(err)}); "
                "check store.url and that the server is running"
            ) from None
        self._lock = threading.Lock()
        try:
            if schema is not None:
                self._db.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))
                )
            self._create(identity)
        except psycopg.Error as err:
            self._db.close()
            raise StoreError(f"{self.where}: cannot prepare the store ({reason(err)})") from None
        except StoreError:
            self._db.close()
            raise
        self._pool_size = pool_size
        self._connect_timeout = connect_timeout
        self._pool: AsyncConnectionPool | None = None
        self._pool_loop: asyncio.AbstractEventLoop | None = None

    def _create(self, identity: bytes) -> None:
        db = self._db
        with db.transaction():
            # One worker at a time creates or upgrades the tables.
            db.execute("SELECT pg_advisory_xact_lock(7270161)")
            db.execute(_SCHEMA)
            row = db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
            version = int(row[0].decode()) if row else SCHEMA_VERSION
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.where}: session store schema {version} is newer than this "
                    f"release understands ({SCHEMA_VERSION}); upgrade hotline"
                )
            db.execute(
                "INSERT INTO meta(name, value) VALUES ('schema', %s) ON CONFLICT DO NOTHING",
                (str(SCHEMA_VERSION).encode(),),
            )
            row = db.execute("SELECT value FROM meta WHERE name = 'canary'").fetchone()
            has_sessions = db.execute("SELECT EXISTS (SELECT 1 FROM sessions)").fetchone()[0]
            try:
                renewed = checked_canary(
                    bytes(row[0]) if row else None,
                    bool(has_sessions),
                    self.sealer,
                    identity,
                    self.where,
                )
            except CanaryError as err:
                raise StoreError(str(err)) from err
            if renewed is not None:
                db.execute(
                    "INSERT INTO meta(name, value) VALUES ('canary', %s) "
                    "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                    (renewed,),
                )

    # ------------------------------------------------------------------ SessionStore

    def load(self, key: str) -> Session | None:
        with self._lock:
            row = self._db.execute("SELECT record FROM sessions WHERE key = %s", (key,)).fetchone()
        return None if row is None else open_session(self.sealer, key, bytes(row[0]))

    def save(self, session: Session) -> None:
        row = seal_session(self.sealer, session)
        with self._lock:
            self._db.execute(_UPSERT, row)

    def delete(self, key: str) -> None:
        with self._lock, self._db.transaction():
            self._db.execute("DELETE FROM sessions WHERE key = %s", (key,))
            self._db.execute("DELETE FROM outbox WHERE key = %s", (key,))

    def purge_idle(self, older_than: float) -> int:
        with self._lock, self._db.transaction():
            cursor = self._db.execute("DELETE FROM sessions WHERE updated < %s", (older_than,))
            self._db.execute("DELETE FROM seen WHERE at < %s", (time.time() - SEEN_KEEP_SECONDS,))
        return cursor.rowcount

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM sessions").fetchone()[0]

    def outbox_size(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM outbox").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ the journal

    async def open_journal(self) -> AsyncConnectionPool:
        """The serving pool, opened on first use in the running event loop (a pool belongs
        to one loop: a new loop, as in a second `asyncio.run`, gets a new pool)."""
        loop = asyncio.get_running_loop()
        if self._pool is None or self._pool_loop is not loop:
            self._pool = AsyncConnectionPool(
                self.url,
                min_size=1,
                max_size=self._pool_size,
                kwargs={"autocommit": True, **self._kwargs},
                open=False,
                timeout=self._connect_timeout,
                reconnect_timeout=24 * 3600.0,  # keep trying while the database is away
            )
            self._pool_loop = loop
            await self._pool.open(wait=False)
        return self._pool

    async def close_journal(self) -> None:
        if self._pool is not None and self._pool_loop is asyncio.get_running_loop():
            await self._pool.close()
        self._pool = self._pool_loop = None

    @asynccontextmanager
    async def conversation(self, key: str) -> AsyncIterator[Conversation]:
        pool = await self.open_journal()
        lock_id = _lock_id(key)
        try:
            async with pool.connection() as conn:
                await conn.execute("SELECT pg_advisory_lock(%s)", (lock_id,))
                try:
                    yield _PostgresConversation(self, conn, key)
                finally:
                    if not conn.closed and not conn.broken:
                        await conn.execute("SELECT pg_advisory_unlock(%s)", (lock_id,))
        except _UNAVAILABLE as err:
            raise StoreUnavailable(f"{self.where}: {reason(err)}") from None

    async def keys_with_pending(self) -> list[str]:
        pool = await self.open_journal()
        try:
            async with pool.connection() as conn:
                cursor = await conn.execute("SELECT DISTINCT key FROM outbox")
                return [row[0] for row in await cursor.fetchall()]
        except _UNAVAILABLE as err:
            raise StoreUnavailable(f"{self.where}: {reason(err)}") from None


class _PostgresConversation(Conversation):
    __slots__ = ("_conn", "_store", "key")

    def __init__(self, store: PostgresStore, conn: psycopg.AsyncConnection[Any], key: str) -> None:
        self._store = store
        self._conn = conn
        self.key = key

    async def seen(self, event_id: str) -> bool:
        if not event_id:
            return False
        cursor = await self._conn.execute("SELECT 1 FROM seen WHERE event = %s", (event_id,))
        return await cursor.fetchone() is not None

    async def load(self) -> Session | None:
        cursor = await self._conn.execute("SELECT record FROM sessions WHERE key = %s", (self.key,))
        row = await cursor.fetchone()
        return None if row is None else open_session(self._store.sealer, self.key, bytes(row[0]))

    async def commit(
        self, session: Session | None, event_id: str, actions: Sequence[Action]
    ) -> list[Outgoing] | None:
        store, key = self._store, self.key
        row = None if session is None else seal_session(store.sealer, session)
        queued = [
            (key, outbox_key(event_id, index), seal_action(store.sealer, key, action))
            for index, action in enumerate(actions)
        ]
        conn = self._conn
        ids: list[int] = []
        older = False
        async with conn.transaction():
            if row is None:
                await conn.execute("DELETE FROM sessions WHERE key = %s", (key,))
                await conn.execute("DELETE FROM outbox WHERE key = %s", (key,))
            else:
                await conn.execute(_UPSERT, row)
                if queued:
                    found = await conn.execute(
                        "SELECT 1 FROM outbox WHERE key = %s LIMIT 1", (key,)
                    )
                    older = await found.fetchone() is not None
            if event_id:
                await conn.execute(
                    "INSERT INTO seen(event, at) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                    (event_id, time.time() // UPDATED_GRAIN * UPDATED_GRAIN),
                )
            for entry in queued:
                cursor = await conn.execute(
                    "INSERT INTO outbox(key, idem, record) VALUES (%s, %s, %s) RETURNING id",
                    entry,
                )
                inserted = await cursor.fetchone()
                assert inserted is not None
                ids.append(inserted[0])
        if older:
            return None
        return [
            Outgoing(id, entry[1], action)
            for id, entry, action in zip(ids, queued, actions, strict=True)
        ]

    async def pending(self) -> list[Outgoing]:
        cursor = await self._conn.execute(
            "SELECT id, idem, record FROM outbox WHERE key = %s ORDER BY id", (self.key,)
        )
        sealer, key = self._store.sealer, self.key
        return [
            Outgoing(id, idem, open_action(sealer, key, bytes(sealed)))
            for id, idem, sealed in await cursor.fetchall()
        ]

    async def sent(self, item: Outgoing) -> None:
        await self._conn.execute("DELETE FROM outbox WHERE id = %s", (item.id,))


def _lock_id(key: str) -> int:
    """The advisory lock id of a conversation: 64 bits of a hash of its key."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
