"""Daily counts for `hotline stats`, in the sessions' own database.

One small table, `counters(day, name, n)`: `day` is a UTC date 'YYYY-MM-DD', `name` says
what was counted ('start:summons', 'complete:summons', 'handover:summons',
'queue:lawyers', 'update:telegram', 'step', 'error:document'), `n` how many times. Counts
only: never a person's id, chat or text, so the table needs no sealing and no retention.

The running bot adds counts in memory and writes them every few seconds
(`adapters.serve.metrics`), as `n = n + excluded.n` upserts: several workers writing the
same rows add up instead of overwriting each other.

`open_stats(where)` takes what the session store is opened with: a SQLite file path, or a
`postgresql://` URL (psycopg 3, imported only then). A URL's password never appears in an
error message.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.stores.dbnames import reason, redacted

TABLE = "counters"
Counts = Mapping[tuple[str, str], int]  # (day, name) -> n
Row = tuple[str, str, int]  # (day, name, n)

_CREATE = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    "day TEXT NOT NULL, name TEXT NOT NULL, n {int} NOT NULL, PRIMARY KEY (day, name))"
)


class StatsError(RuntimeError):
    """The counts' database cannot be opened, read or written; the message names it."""


class StatsTable(ABC):
    """The counters table of one database. Methods may be called from any one thread at a
    time (the bot writes from a worker thread, off the event loop)."""

    where: str  # the file or the URL, password removed: for messages

    @abstractmethod
    def add(self, counts: Counts) -> None:
        """Add `counts` to the stored ones, all in one transaction (all or nothing)."""

    @abstractmethod
    def read(self, since: str | None = None, until: str | None = None) -> list[Row]:
        """Every row with since <= day <= until (either may be None: no bound), in day and
        name order. A database the bot never wrote counts to reads as no rows."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection."""


def open_stats(where: str | Path, *, schema: str | None = None, create: bool = True) -> StatsTable:
    """The counters table in the database at `where`: a SQLite file path, or PostgreSQL as
    a postgresql:// URL or a libpq "key=value ..." string, with the sessions' `schema` if
    they are kept in one. `create=False` opens it for reading only (`hotline stats`):
    nothing is created, and a missing SQLite file is an error, not a new empty database."""
    text = str(where)
    if is_postgres(text):
        return PostgresStats(text, schema=schema, create=create)
    return SQLiteStats(text, create=create)


def is_postgres(where: str) -> bool:
    """A PostgreSQL URL or libpq connection string, rather than a file path."""
    return where.startswith(("postgresql://", "postgres://")) or bool(_CONNINFO.match(where))


_CONNINFO = re.compile(r"\s*[a-z_]+\s*=")  # "host=db dbname=hotline"


# The table's name is a constant, never input: these f-strings are not an injection.
_SELECT = f"SELECT day, name, n FROM {TABLE}{{where}} ORDER BY day, name"  # noqa: S608
_UPSERT = (
    f"INSERT INTO {TABLE}(day, name, n) VALUES ({{p}}, {{p}}, {{p}}) "  # noqa: S608
    f"ON CONFLICT (day, name) DO UPDATE SET n = {TABLE}.n + excluded.n"
)


def _select(since: str | None, until: str | None, p: str) -> tuple[str, list[str]]:
    """The query of `StatsTable.read` with `p` as the placeholder, and its parameters."""
    clauses, params = [], []
    if since is not None:
        clauses.append(f"day >= {p}")
        params.append(since)
    if until is not None:
        clauses.append(f"day <= {p}")
        params.append(until)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    return _SELECT.format(where=where), params


# --------------------------------------------------------------------------- SQLite


class SQLiteStats(StatsTable):
    """Its own connection to the session store's file. The store made the file (with its
    permissions) and set WAL; this never creates the file, so a mistyped path is an error
    rather than a stray empty database."""

    def __init__(self, path: str, *, create: bool = True) -> None:
        self.where = path
        self._lock = threading.Lock()
        mode = "rw" if create else "ro"
        uri = f"{Path(path).resolve().as_uri()}?mode={mode}"
        try:
            # timeout: wait (up to 5 s) while the session store writes, instead of failing.
            self._db = sqlite3.connect(
                uri, uri=True, timeout=5.0, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as err:
            raise StatsError(f"{path}: cannot open the store: {err}") from err
        try:
            if create:
                self._db.execute(_CREATE.format(int="INTEGER") + " WITHOUT ROWID")
            else:
                self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as err:
            self._db.close()
            raise StatsError(f"{path}: cannot open the store: {err}") from err

    def add(self, counts: Counts) -> None:
        if not counts:
            return
        rows = [(day, name, n) for (day, name), n in counts.items()]
        with self._lock:
            try:
                # IMMEDIATE: take the write lock at once, so the busy timeout applies to
                # the whole short transaction rather than failing half-way.
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._db.executemany(_UPSERT.format(p="?"), rows)
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as err:
                raise StatsError(f"{self.where}: cannot write the counts: {err}") from err

    def read(self, since: str | None = None, until: str | None = None) -> list[Row]:
        query, params = _select(since, until, "?")
        with self._lock:
            try:
                found = self._db.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)
                ).fetchone()
                if found is None:
                    return []
                cursor = self._db.execute(query, params)
                return [(day, name, int(n)) for day, name, n in cursor.fetchall()]
            except sqlite3.Error as err:
                raise StatsError(f"{self.where}: cannot read the counts: {err}") from err

    def close(self) -> None:
        with self._lock:
            self._db.close()


# --------------------------------------------------------------------------- PostgreSQL


class PostgresStats(StatsTable):
    """The table in a PostgreSQL database, via psycopg 3: in `schema` if given (as the
    session store does it), else where the connection's search_path puts it (a URL may set
    one: `?options=-csearch_path%3Dx`). A connection lost between writes is opened again
    on the next write."""

    def __init__(self, url: str, *, schema: str | None = None, create: bool = True) -> None:
        try:
            import psycopg
        except ImportError as err:  # pragma: no cover - a dependency of the package
            raise StatsError("a postgresql:// store needs psycopg: pip install psycopg") from err
        self._psycopg: Any = psycopg
        self._url = url
        self.where = redacted(url) + (f" (schema {schema})" if schema else "")
        self._options = {"options": f"-c search_path={schema}"} if schema else {}
        self._lock = threading.Lock()
        self._conn: Any = self._connect()
        if create:
            try:
                if schema:
                    self._conn.execute(
                        psycopg.sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                            psycopg.sql.Identifier(schema)
                        )
                    )
                self._conn.execute(_CREATE.format(int="BIGINT"))
            except psycopg.errors.UniqueViolation:
                # Two workers creating the table at the same instant: the other one won.
                pass
            except psycopg.Error as err:
                self._conn.close()
                raise StatsError(
                    f"{self.where}: cannot create the counts table: {reason(err)}"
                ) from None

    def _connect(self) -> Any:
        try:
            return self._psycopg.connect(
                self._url, autocommit=True, connect_timeout=10, **self._options
            )
        except self._psycopg.Error as err:
            # `from None`: the chained error could show the connection string.
            raise StatsError(f"{self.where}: cannot open the store: {reason(err)}") from None

    def _connection(self) -> Any:
        if self._conn.closed or self._conn.broken:
            self._conn = self._connect()
        return self._conn

    def add(self, counts: Counts) -> None:
        if not counts:
            return
        rows = [(day, name, n) for (day, name), n in counts.items()]
        with self._lock:
            try:
                conn = self._connection()
                with conn.transaction(), conn.cursor() as cursor:
                    cursor.executemany(_UPSERT.format(p="%s"), rows)
            except self._psycopg.Error as err:
                raise StatsError(f"{self.where}: cannot write the counts: {reason(err)}") from None

    def read(self, since: str | None = None, until: str | None = None) -> list[Row]:
        query, params = _select(since, until, "%s")
        with self._lock:
            try:
                conn = self._connection()
                if conn.execute("SELECT to_regclass(%s)", (TABLE,)).fetchone()[0] is None:
                    return []
                cursor = conn.execute(query, params)
                return [(day, name, int(n)) for day, name, n in cursor.fetchall()]
            except self._psycopg.Error as err:
                raise StatsError(f"{self.where}: cannot read the counts: {reason(err)}") from None

    def close(self) -> None:
        with self._lock:
            self._conn.close()
