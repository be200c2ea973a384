"""The hand-over cases, in SQLite or PostgreSQL: `CaseStore("hotline.sqlite3")` or
`CaseStore("postgresql://user@host/db")`.

Tables of their own, next to the sessions' (the same file or database, or any other):
- `handover_cases`: one row a case. Of the person only their channel, a pseudonymous
  lookup key (an HMAC, like session keys), their chat id and the flow's answers, the last
  two sealed (`seal`/`unseal`, the one place where the encryption of stored text plugs
  in); the rest is the desk's bookkeeping (ticket, who took it, what the person was told).
- `handover_messages`: the ids of a case's messages in its room, so that a reply to any of
  them finds the case.
- `handover_pending`: what the person sent while the room could not be reached (sealed),
  posted and deleted in order once it can.

The database enforces what several workers sharing it must agree on: a case number is
unique (`create` raises `CaseNumberTaken`, the desk draws another), and one worker at a time
posts a case's pending messages (`claim`, a lease). Every write is one statement or one
transaction; reads never see half a case.
"""

from __future__ import annotations

import abc
import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.conversation import Address, Attachment
from engine.privacy import Sealer, SessionKeys, session_key

POSTGRES_SCHEMES = ("postgresql://", "postgres://")

_COLUMNS = (
    "number",
    "user_channel",
    "user_key",
    "user_chat",
    "queue",
    "language",
    "path",
    "answers",
    "room_channel",
    "room",
    "ticket",
    "taken_by",
    "opened",
    "state",
    "told_position",
    "told_opening",
)
# Built from the constant column names above, never from anything received (hence noqa).
_SELECT = "SELECT " + ", ".join(_COLUMNS) + " FROM handover_cases"  # noqa: S608
_INSERT = (
    f"INSERT INTO handover_cases ({', '.join(_COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join('?' * len(_COLUMNS))})"
)
_UPSERT = (
    _INSERT
    + " ON CONFLICT (number) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[1:])
)

# {blob} and {real} differ between the dialects; the rest is common SQL.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS handover_cases (
    number TEXT PRIMARY KEY,
    user_channel TEXT NOT NULL,
    user_key TEXT NOT NULL,
    user_chat {blob} NOT NULL,
    queue TEXT NOT NULL,
    language TEXT NOT NULL,
    path TEXT NOT NULL,
    answers {blob} NOT NULL,
    room_channel TEXT NOT NULL,
    room TEXT NOT NULL,
    ticket TEXT,
    taken_by TEXT,
    opened {real} NOT NULL,
    state TEXT NOT NULL,
    told_position INTEGER NOT NULL DEFAULT 0,
    told_opening {real} NOT NULL DEFAULT 0,
    post_lease {real} NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS handover_cases_user ON handover_cases (user_key);
CREATE INDEX IF NOT EXISTS handover_cases_queue ON handover_cases (queue, state, opened);
CREATE TABLE IF NOT EXISTS handover_messages (
    room_channel TEXT NOT NULL,
    room TEXT NOT NULL,
    message_id TEXT NOT NULL,
    number TEXT NOT NULL,
    PRIMARY KEY (room_channel, room, message_id)
);
CREATE INDEX IF NOT EXISTS handover_messages_number ON handover_messages (number);
CREATE TABLE IF NOT EXISTS handover_pending (
    number TEXT NOT NULL,
    seq INTEGER NOT NULL,
    body {blob} NOT NULL,
    PRIMARY KEY (number, seq)
);
"""
# Columns added after the first release of the table: added to an older one at start.
_ADDED_COLUMNS = (
    ("told_position", "INTEGER NOT NULL DEFAULT 0"),
    ("told_opening", "{real} NOT NULL DEFAULT 0"),
    ("post_lease", "{real} NOT NULL DEFAULT 0"),
)


class CaseNumberTaken(Exception):
    """`create` with a number another case (maybe of another worker) already has."""


@dataclass(slots=True)
class Case:
    number: str  # "#A7K2"
    user: Address
    queue: str
    language: str
    path: tuple[str, ...]
    answers: tuple[tuple[str, str], ...]
    room: Address
    ticket: str | None = None  # message id of the ticket in the room; None: not posted yet
    taken_by: str | None = None
    opened: float = 0.0
    # open | left (the person cancelled) | closed (by an operator) | forgotten (deleted at
    # the person's request; kept, emptied, only until its ticket says so)
    state: str = "open"
    messages: list[str] = field(default_factory=list)  # ids of the case's messages in the room
    told_position: int = 0  # the queue position the person was last told (0: none)
    told_opening: float = 0.0  # the opening time the person was last told to wait for


@dataclass(frozen=True, slots=True)
class Pending:
    """Something the person sent that is not in the room yet."""

    seq: int
    text: str
    attachment: Attachment | None


class CaseStore:
    """Cases in SQLite (a path, or ":memory:") or PostgreSQL (a postgresql:// URL; `schema`
    puts the tables in that schema, created if needed). Thread-safe; small."""

    def __init__(
        self,
        location: str | Path = ":memory:",
        sealer: Sealer | None = None,
        keys: SessionKeys | None = None,
        *,
        schema: str | None = None,
    ) -> None:
        """`sealer` encrypts what a stolen database would reveal (the person's chat id,
        answers and pending messages); `keys` makes the per-person lookup key pseudonymous,
        like session keys. Without them (tests, a throwaway store) they are kept as they
        are."""
        self._sealer = sealer
        self._keys = keys
        self._lock = threading.RLock()
        where = str(location)
        self._db: _Database = (
            _Postgres(where, schema) if where.startswith(POSTGRES_SCHEMES) else _SQLite(where)
        )
        self._db.create()

    # The one place where stored case text goes in and out. The encryption of stored text
    # (the privacy work) seals and unseals here, bound to what the text belongs to.
    def seal(self, plain: str, number: str) -> bytes:
        data = plain.encode("utf-8")
        return self._sealer.seal(data, number.encode()) if self._sealer else data

    def unseal(self, stored: bytes, number: str) -> str:
        data = bytes(stored)
        return (self._sealer.open(data, number.encode()) if self._sealer else data).decode()

    def _user_key(self, user: Address) -> str:
        return session_key(user, self._keys)

    # ------------------------------------------------------------------ writing

    def _row(self, case: Case) -> tuple[Any, ...]:
        return (
            case.number,
            case.user.channel,
            self._user_key(case.user) if case.state != "forgotten" else "",
            self.seal(case.user.chat, case.number + ":chat"),
            case.queue,
            case.language,
            json.dumps(list(case.path)),
            self.seal(json.dumps([list(a) for a in case.answers], ensure_ascii=False), case.number),
            case.room.channel,
            case.room.chat,
            case.ticket,
            case.taken_by,
            case.opened,
            case.state,
            case.told_position,
            case.told_opening,
        )

    def create(self, case: Case) -> None:
        """Store a new case; `CaseNumberTaken` if its number is not free."""
        with self._lock, self._db.transaction():
            try:
                self._db.run(_INSERT, self._row(case))
            except self._db.integrity_errors:
                raise CaseNumberTaken(case.number) from None
            self._add_messages(case.room, case.number, case.messages)

    def save(self, case: Case) -> None:
        """Store the whole case, new or not (for what changes field by field, `update`)."""
        with self._lock, self._db.transaction():
            self._db.run(_UPSERT, self._row(case))
            self._add_messages(case.room, case.number, case.messages)

    def update(
        self,
        case: Case,
        *,
        state: str | None = None,
        taken_by: str | None = None,
        told_position: int | None = None,
        told_opening: float | None = None,
        drop_answers: bool = False,
    ) -> None:
        """Change some fields of a stored case (and of `case`), leaving the others as the
        database has them: a worker's change does not undo another's."""
        sets: list[str] = []
        values: list[Any] = []
        if state is not None:
            case.state = state
            sets.append("state = ?")
            values.append(state)
        if taken_by is not None:
            case.taken_by = taken_by
            sets.append("taken_by = ?")
            values.append(taken_by)
        if told_position is not None:
            case.told_position = told_position
            sets.append("told_position = ?")
            values.append(told_position)
        if told_opening is not None:
            case.told_opening = told_opening
            sets.append("told_opening = ?")
            values.append(told_opening)
        if drop_answers:
            case.answers = ()
            sets.append("answers = ?")
            values.append(self.seal("[]", case.number))
        if not sets:
            return
        with self._lock:
            # `sets` holds only the fixed clauses above; the values go as parameters.
            self._db.run(
                f"UPDATE handover_cases SET {', '.join(sets)} WHERE number = ?",  # noqa: S608
                (*values, case.number),
            )

    def set_ticket(self, case: Case, message_id: str) -> None:
        case.ticket = message_id
        case.messages.append(message_id)
        with self._lock, self._db.transaction():
            self._db.run(
                "UPDATE handover_cases SET ticket = ? WHERE number = ?", (message_id, case.number)
            )
            self._add_messages(case.room, case.number, [message_id])

    def add_message(self, case: Case, message_id: str) -> None:
        """One more message of the case in its room (a reply to it finds the case)."""
        case.messages.append(message_id)
        with self._lock:
            self._add_messages(case.room, case.number, [message_id])

    def _add_messages(self, room: Address, number: str, ids: Sequence[str]) -> None:
        self._db.run_many(
            "INSERT INTO handover_messages (room_channel, room, message_id, number) "
            "VALUES (?,?,?,?) ON CONFLICT DO NOTHING",
            [(room.channel, room.chat, m, number) for m in ids],
        )

    def forget(self, case: Case) -> None:
        """Empty a case of everything about the person, keeping the row (state
        'forgotten') only until its ticket in the room is marked deleted; then `delete`."""
        case.state, case.answers, case.path = "forgotten", (), ()
        case.user = Address(case.user.channel, "")
        with self._lock, self._db.transaction():
            self._db.run("DELETE FROM handover_pending WHERE number = ?", (case.number,))
            self._db.run(
                "UPDATE handover_cases SET state = 'forgotten', user_key = '', user_chat = ?, "
                "answers = ?, path = '[]' WHERE number = ?",
                (self.seal("", case.number + ":chat"), self.seal("[]", case.number), case.number),
            )

    def delete(self, number: str) -> None:
        with self._lock, self._db.transaction():
            self._delete(number)

    def _delete(self, number: str) -> None:
        for table in ("handover_cases", "handover_messages", "handover_pending"):
            self._db.run(f"DELETE FROM {table} WHERE number = ?", (number,))  # noqa: S608

    def purge(self, before: float) -> int:
        """Delete the cases that are over (closed or left) and were opened before `before`
        (a time.time()); how many. For the retention purge: open cases stay."""
        with self._lock, self._db.transaction():
            numbers = [
                n
                for (n,) in self._db.run(
                    "SELECT number FROM handover_cases "
                    "WHERE state IN ('closed', 'left') AND opened < ?",
                    (before,),
                )
            ]
            for number in numbers:
                self._delete(number)
        return len(numbers)

    # ------------------------------------------------------------------ reading

    def get(self, number: str) -> Case | None:
        with self._lock:
            rows = self._db.run(_SELECT + " WHERE number = ?", (number,))
            return self._case(rows[0]) if rows else None

    def by_message(self, room: Address, message_id: str) -> Case | None:
        with self._lock:
            rows = self._db.run(
                "SELECT number FROM handover_messages WHERE room_channel = ? AND room = ? "
                "AND message_id = ?",
                (room.channel, room.chat, message_id),
            )
            return self.get(rows[0][0]) if rows else None

    def of_user(self, user: Address) -> list[Case]:
        with self._lock:
            rows = self._db.run(
                _SELECT + " WHERE user_key = ? ORDER BY opened, number", (self._user_key(user),)
            )
            return [self._case(r) for r in rows]

    def open_cases(self, queue: str | None = None) -> list[Case]:
        sql = _SELECT + " WHERE state = 'open'"
        params: tuple[Any, ...] = ()
        if queue is not None:
            sql, params = sql + " AND queue = ?", (queue,)
        with self._lock:
            return [self._case(r) for r in self._db.run(sql + " ORDER BY opened, number", params)]

    def waiting(self, queue: str) -> list[tuple[str, int]]:
        """(number, position last told) of the queue's open cases nobody took yet, first
        come first; a case's position is its index + 1. Nothing is unsealed."""
        with self._lock:
            rows = self._db.run(
                "SELECT number, told_position FROM handover_cases WHERE queue = ? "
                "AND state = 'open' AND taken_by IS NULL ORDER BY opened, number",
                (queue,),
            )
        return [(str(n), int(p)) for n, p in rows]

    def position(self, case: Case) -> int:
        """Where `case` stands among the queue's cases nobody took yet (1: next)."""
        with self._lock:
            rows = self._db.run(
                "SELECT count(*) FROM handover_cases WHERE queue = ? AND state = 'open' "
                "AND taken_by IS NULL AND number != ? AND (opened < ? OR "
                "(opened = ? AND number < ?))",
                (case.queue, case.number, case.opened, case.opened, case.number),
            )
        return int(rows[0][0]) + 1

    def count(self) -> int:
        with self._lock:
            return int(self._db.run("SELECT count(*) FROM handover_cases")[0][0])

    def _case(self, row: Sequence[Any]) -> Case:
        values = dict(zip(_COLUMNS, row, strict=True))
        number = values["number"]
        with self._lock:
            messages = [
                str(m)
                for (m,) in self._db.run(
                    "SELECT message_id FROM handover_messages WHERE number = ?", (number,)
                )
            ]
        return Case(
            number=number,
            user=Address(
                values["user_channel"], self.unseal(values["user_chat"], number + ":chat")
            ),
            queue=values["queue"],
            language=values["language"],
            path=tuple(json.loads(values["path"])),
            answers=tuple((a, b) for a, b in json.loads(self.unseal(values["answers"], number))),
            room=Address(values["room_channel"], values["room"]),
            ticket=values["ticket"],
            taken_by=values["taken_by"],
            opened=float(values["opened"]),
            state=values["state"],
            messages=messages,
            told_position=int(values["told_position"]),
            told_opening=float(values["told_opening"]),
        )

    # ------------------------------------------------------------------ pending messages

    def add_pending(self, number: str, text: str, attachment: Attachment | None) -> None:
        body: dict[str, Any] = {"t": text}
        if attachment is not None:
            a = attachment
            body["a"] = [a.ref, a.file_name, a.mime_type, a.size]
        plain = json.dumps(body, ensure_ascii=False)
        with self._lock, self._db.transaction():
            rows = self._db.run(
                "SELECT coalesce(max(seq), 0) FROM handover_pending WHERE number = ?", (number,)
            )
            seq = int(rows[0][0]) + 1
            self._db.run(
                "INSERT INTO handover_pending (number, seq, body) VALUES (?,?,?)",
                (number, seq, self.seal(plain, f"{number}:pending:{seq}")),
            )

    def pending(self, number: str) -> list[Pending]:
        with self._lock:
            rows = self._db.run(
                "SELECT seq, body FROM handover_pending WHERE number = ? ORDER BY seq", (number,)
            )
        items = []
        for seq, body in rows:
            data = json.loads(self.unseal(body, f"{number}:pending:{seq}"))
            found = data.get("a")
            attachment = Attachment(found[0], found[1], found[2], int(found[3])) if found else None
            items.append(Pending(int(seq), data.get("t", ""), attachment))
        return items

    def has_pending(self, number: str) -> bool:
        with self._lock:
            return bool(
                self._db.run("SELECT 1 FROM handover_pending WHERE number = ? LIMIT 1", (number,))
            )

    def drop_pending(self, number: str, seq: int | None = None) -> None:
        """One pending message (posted), or all of the case's (`seq` None)."""
        with self._lock:
            if seq is None:
                self._db.run("DELETE FROM handover_pending WHERE number = ?", (number,))
            else:
                self._db.run(
                    "DELETE FROM handover_pending WHERE number = ? AND seq = ?", (number, seq)
                )

    def unposted(self) -> list[str]:
        """Cases with something for the room still to do: an open case's ticket or
        pending messages, a forgotten case's ticket to mark."""
        with self._lock:
            rows = self._db.run(
                "SELECT number FROM handover_cases WHERE state = 'forgotten' "
                "OR (state = 'open' AND (ticket IS NULL OR number IN "
                "(SELECT number FROM handover_pending))) ORDER BY opened, number"
            )
        return [str(n) for (n,) in rows]

    def claim(self, number: str, now: float, lease: float) -> bool:
        """Whether this worker may post the case's pending messages until now + lease
        (no other worker holds an unexpired claim)."""
        with self._lock:
            return (
                self._db.run_count(
                    "UPDATE handover_cases SET post_lease = ? WHERE number = ? AND post_lease < ?",
                    (now + lease, number, now),
                )
                == 1
            )

    def release(self, number: str) -> None:
        with self._lock:
            self._db.run("UPDATE handover_cases SET post_lease = 0 WHERE number = ?", (number,))

    def close(self) -> None:
        with self._lock:
            self._db.close()


# --------------------------------------------------------------------------- databases


class _Database(abc.ABC):
    """The few things CaseStore needs of a database; SQL is written with `?` marks."""

    integrity_errors: tuple[type[Exception], ...] = ()

    @abc.abstractmethod
    def create(self) -> None: ...

    @abc.abstractmethod
    def run(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Execute; the rows of a query ([] for anything else)."""

    @abc.abstractmethod
    def run_count(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Execute; how many rows it changed."""

    @abc.abstractmethod
    def run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    @abc.abstractmethod
    def transaction(self) -> contextlib.AbstractContextManager[None]: ...

    @abc.abstractmethod
    def close(self) -> None: ...


class _SQLite(_Database):
    integrity_errors = (sqlite3.IntegrityError,)

    def __init__(self, path: str) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout = 5000")
        self._db.execute("PRAGMA secure_delete = ON")  # a forgotten case leaves no trace
        self._depth = 0

    def create(self) -> None:
        self._db.executescript(_SCHEMA.format(blob="BLOB", real="REAL"))
        have = {row[1] for row in self._db.execute("PRAGMA table_info(handover_cases)")}
        for name, kind in _ADDED_COLUMNS:
            if name not in have:
                self._db.execute(
                    f"ALTER TABLE handover_cases ADD COLUMN {name} {kind.format(real='REAL')}"
                )

    def run(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._db.execute(sql, tuple(params)).fetchall()

    def run_count(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._db.execute(sql, tuple(params)).rowcount

    def run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._db.executemany(sql, [tuple(r) for r in rows])

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        # Nested uses (a method calling another) join the outer transaction.
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")
        finally:
            self._depth = 0

    def close(self) -> None:
        self._db.close()


class _Postgres(_Database):
    def __init__(self, url: str, schema: str | None) -> None:
        try:
            import psycopg
        except ImportError as err:  # pragma: no cover - depends on the installation
            raise RuntimeError(
                'a postgresql:// case store needs psycopg: pip install "psycopg[binary]"'
            ) from err
        self._psycopg = psycopg
        self.integrity_errors = (psycopg.IntegrityError,)
        self._url = url
        self._schema = schema
        self._conn: Any = None
        self._connect()

    def _connect(self) -> None:
        psycopg = self._psycopg
        self._conn = psycopg.connect(self._url, autocommit=True)
        if self._schema is not None:
            from psycopg import sql

            name = sql.Identifier(self._schema)
            self._conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(name))
            self._conn.execute(sql.SQL("SET search_path TO {}").format(name))

    def _live(self) -> Any:
        """The connection; a new one if the server dropped it (a restart, a failover)."""
        if self._conn.closed or self._conn.broken:
            self._connect()  # the failed call raised; this one starts afresh
        return self._conn

    def create(self) -> None:
        conn = self._live()
        with conn.transaction():
            # One worker at a time creates or alters the tables.
            conn.execute("SELECT pg_advisory_xact_lock(7357001)")
            for statement in _SCHEMA.format(blob="BYTEA", real="DOUBLE PRECISION").split(";"):
                if statement.strip():
                    conn.execute(statement)
            # Altering takes a lock on the whole table: only when a column is missing.
            have = {
                row[0]
                for row in conn.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_name = 'handover_cases' AND table_schema = current_schema()"
                ).fetchall()
            }
            for name, kind in _ADDED_COLUMNS:
                if name not in have:
                    conn.execute(
                        f"ALTER TABLE handover_cases ADD COLUMN {name} "
                        + kind.format(real="DOUBLE PRECISION")
                    )

    @staticmethod
    def _sql(sql: str) -> str:
        return sql.replace("?", "%s")

    def run(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cursor = self._live().execute(self._sql(sql), tuple(params))
        return list(cursor.fetchall()) if cursor.description is not None else []

    def run_count(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int(self._live().execute(self._sql(sql), tuple(params)).rowcount)

    def run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            with self._live().cursor() as cursor:
                cursor.executemany(self._sql(sql), [tuple(r) for r in rows])

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        return self._live().transaction()  # nested ones become savepoints

    def close(self) -> None:
        self._conn.close()
