"""The lawyers' desk: hand-over cases between a person's channel and an operators' room.

Channel-neutral. The hub routes the engine's hand-over actions here; channels hand the
messages written in an operators' room here as `OperatorMessage`s and post into rooms with
`Channel.post_to_room` (see adapters/serve/channel.py). A Telegram user can so be served
from a Matrix room and the other way round, without either adapter knowing the other.

- StartHandover -> one ticket message in the queue's room: case number, language, flow path
  and the answers given; nothing else about the person (never their chat id or name).
- RelayToOperator -> the person's message in the ticket's thread (a Matrix thread, a
  Telegram reply to the ticket).
- An operator's message in the thread -> the person, as "Lawyer: <text>" (operators' names
  are never shown to the person; operators see each other's).
- CancelHandover -> "the person left the queue" in the thread.
- ForgetUser -> the person's cases deleted from the store, their tickets edited to
  "deleted at the person's request".
- Operators' commands (`/` or `!`): /take and /close and /note in a ticket's thread, /cases
  anywhere in the room. /close delivers an `InboundKind.CLOSE` for the person through the
  hub, so the engine takes the conversation back.

Cases live in SQLite (`CaseStore`), so a restart keeps them. Of the person it keeps only
their address and the answers of the flow (sealed through `CaseStore.seal`/`unseal`, the
one place where the encryption of stored text plugs in). Nothing about a case is logged
beyond counts.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from adapters.serve.channel import Channel, OperatorHandler, OperatorMessage
from engine.conversation import (
    Action,
    Address,
    CancelHandover,
    ForgetUser,
    HandoverContext,
    Inbound,
    InboundKind,
    RelayToOperator,
    SendText,
    StartHandover,
)
from engine.privacy import Sealer, SessionKeys, session_key

log = logging.getLogger(__name__)

CASE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud without doubt
LAWYER_PREFIX = "Lawyer: "
PERSON_PREFIX = "Person: "
OPERATOR_COMMANDS = ("take", "close", "note", "cases", "help")
__all__ = ["Case", "CaseStore", "Desk", "OperatorHandler", "OperatorMessage", "ticket_text"]

OPERATOR_HELP = (
    "Reply in a ticket's thread to answer the person (they see it as from 'Lawyer'). "
    "Commands: /take (claim the case), /close (end it; the person returns to the bot), "
    "/note TEXT (internal, never sent), /cases (open cases). On Matrix write !take etc."
)


@dataclass(slots=True)
class Case:
    number: str  # "#A7K2"
    user: Address
    queue: str
    language: str
    path: tuple[str, ...]
    answers: tuple[tuple[str, str], ...]
    room: Address
    ticket: str | None = None  # message id of the ticket in the room
    taken_by: str | None = None
    opened: float = 0.0
    state: str = "open"  # open | left (the person cancelled) | closed (by an operator)
    messages: list[str] = field(default_factory=list)  # ids of the case's messages in the room


# --------------------------------------------------------------------------- store


class CaseStore:
    """Cases in SQLite: a table of their own (`handover_cases`, `handover_messages`), in the
    sessions' database file or any other. Thread-safe like the session store; small."""

    def __init__(
        self,
        path: str | Path = ":memory:",
        sealer: Sealer | None = None,
        keys: SessionKeys | None = None,
    ) -> None:
        """`sealer` encrypts what a stolen file would reveal (the person's chat id and
        answers); `keys` makes the per-person lookup key pseudonymous, like session keys.
        Without them (tests, a throwaway store) they are kept as they are."""
        self._sealer = sealer
        self._keys = keys
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout = 5000")
        self._db.execute("PRAGMA secure_delete=ON")  # a forgotten case leaves no trace
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS handover_cases (
                number TEXT PRIMARY KEY,
                user_channel TEXT NOT NULL,
                user_key TEXT NOT NULL,
                user_chat BLOB NOT NULL,
                queue TEXT NOT NULL,
                language TEXT NOT NULL,
                path TEXT NOT NULL,
                answers BLOB NOT NULL,
                room_channel TEXT NOT NULL,
                room TEXT NOT NULL,
                ticket TEXT,
                taken_by TEXT,
                opened REAL NOT NULL,
                state TEXT NOT NULL
            );
            CREATE INDEX IF NOT EXISTS handover_cases_user
                ON handover_cases (user_key);
            CREATE TABLE IF NOT EXISTS handover_messages (
                room_channel TEXT NOT NULL,
                room TEXT NOT NULL,
                message_id TEXT NOT NULL,
                number TEXT NOT NULL,
                PRIMARY KEY (room_channel, room, message_id)
            );
            """
        )

    # The one place where stored case text goes in and out: the person's answers. The
    # encryption of stored text (the privacy work) seals and unseals here.
    def seal(self, plain: str, number: str) -> bytes:
        data = plain.encode("utf-8")
        return self._sealer.seal(data, number.encode()) if self._sealer else data

    def unseal(self, stored: bytes, number: str) -> str:
        data = bytes(stored)
        return (self._sealer.open(data, number.encode()) if self._sealer else data).decode()

    def _user_key(self, user: Address) -> str:
        return session_key(user, self._keys)

    def save(self, case: Case) -> None:
        row = (
            case.number,
            case.user.channel,
            self._user_key(case.user),
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
        )
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO handover_cases VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", row
            )
            self._db.executemany(
                "INSERT OR IGNORE INTO handover_messages VALUES (?,?,?,?)",
                [(case.room.channel, case.room.chat, m, case.number) for m in case.messages],
            )

    def get(self, number: str) -> Case | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM handover_cases WHERE number = ?", (number,)
            ).fetchone()
        return self._case(row) if row else None

    def by_message(self, room: Address, message_id: str) -> Case | None:
        with self._lock:
            row = self._db.execute(
                "SELECT number FROM handover_messages WHERE room_channel=? AND room=? "
                "AND message_id=?",
                (room.channel, room.chat, message_id),
            ).fetchone()
        return self.get(row[0]) if row else None

    def of_user(self, user: Address) -> list[Case]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM handover_cases WHERE user_key=? ORDER BY opened",
                (self._user_key(user),),
            ).fetchall()
        return [self._case(r) for r in rows]

    def open_cases(self) -> list[Case]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM handover_cases WHERE state='open' ORDER BY opened"
            ).fetchall()
        return [self._case(r) for r in rows]

    def delete(self, number: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM handover_cases WHERE number=?", (number,))
            self._db.execute("DELETE FROM handover_messages WHERE number=?", (number,))

    def purge(self, before: float) -> int:
        """Delete the cases that are over (closed or left) and were opened before `before`
        (a time.time()); how many. For the retention purge: open cases stay."""
        with self._lock:
            numbers = [
                n
                for (n,) in self._db.execute(
                    "SELECT number FROM handover_cases WHERE state != 'open' AND opened < ?",
                    (before,),
                )
            ]
            for number in numbers:
                self._db.execute("DELETE FROM handover_cases WHERE number=?", (number,))
                self._db.execute("DELETE FROM handover_messages WHERE number=?", (number,))
        return len(numbers)

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM handover_cases").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _case(self, row: tuple) -> Case:  # type: ignore[type-arg]
        number, uch, _key, uchat, queue, language, path, answers, rch, room = row[:10]
        ticket, taken, opened, state = row[10:]
        with self._lock:
            messages = [
                m
                for (m,) in self._db.execute(
                    "SELECT message_id FROM handover_messages WHERE number=?", (number,)
                )
            ]
        return Case(
            number=number,
            user=Address(uch, self.unseal(uchat, number + ":chat")),
            queue=queue,
            language=language,
            path=tuple(json.loads(path)),
            answers=tuple((a, b) for a, b in json.loads(self.unseal(answers, number))),
            room=Address(rch, room),
            ticket=ticket,
            taken_by=taken,
            opened=opened,
            state=state,
            messages=messages,
        )


# --------------------------------------------------------------------------- desk

Deliver = Callable[[Inbound], Awaitable[None]]
Send = Callable[[Action], Awaitable[None]]


class Desk:
    """Owns the open cases; see the module docstring.

    `rooms`: queue -> the operators' room (an Address: channel and room/chat id);
    `channels`: channel name -> Channel (each must implement post_to_room for its rooms).
    `connect(deliver, send)` is called by the hub: `deliver` runs an inbound event through
    the engine (for /close), `send` performs an action for the person (the replies)."""

    def __init__(
        self,
        rooms: Mapping[str, Address],
        store: CaseStore,
        channels: Mapping[str, Channel],
        clock: Callable[[], float] = time.time,
    ) -> None:
        for queue, room in rooms.items():
            if room.channel not in channels:
                raise ValueError(
                    f"handover.{queue}: its room is on {room.channel}, which is not configured"
                )
        self.rooms = dict(rooms)
        self.store = store
        self.channels = channels
        self.clock = clock
        self._deliver: Deliver | None = None
        self._send: Send | None = None
        self.stats: dict[str, int] = {}

    def connect(self, deliver: Deliver, send: Send) -> None:
        self._deliver, self._send = deliver, send

    def rooms_of(self, channel: str) -> set[str]:
        """The room ids on `channel` that operators work in (the channel watches them)."""
        return {room.chat for room in self.rooms.values() if room.channel == channel}

    def serves(self, action: Action) -> bool:
        """Whether this action is the desk's (a queue it has a room for, or a forget)."""
        if isinstance(action, ForgetUser):
            return True
        if isinstance(action, StartHandover | RelayToOperator | CancelHandover):
            return action.queue in self.rooms
        return False

    def _count(self, what: str) -> None:
        self.stats[what] = self.stats.get(what, 0) + 1

    # ------------------------------------------------------------------ the person's side

    async def perform(self, action: Action) -> None:
        if isinstance(action, StartHandover):
            await self._open(action.user, action.queue, action.context)
        elif isinstance(action, RelayToOperator):
            await self._relay(action)
        elif isinstance(action, CancelHandover):
            await self._cancel(action)
        elif isinstance(action, ForgetUser):
            await self._forget(action.user)
        else:
            raise TypeError(f"the desk cannot perform {type(action).__name__}")

    def _open_case(self, user: Address) -> Case | None:
        for case in self.store.of_user(user):
            if case.state == "open":
                return case
        return None

    async def _open(self, user: Address, queue: str, context: HandoverContext) -> None:
        old = self._open_case(user)
        if old is not None:  # a second hand-over while one is open: the old one ends
            old.state = "left"
            self.store.save(old)
        case = Case(
            number=self._new_number(),
            user=user,
            queue=queue,
            language=context.language,
            path=context.path,
            answers=context.answers,
            room=self.rooms[queue],
            opened=self.clock(),
        )
        self.store.save(case)  # first, so a reply racing the post finds the case
        case.ticket = await self._post(case.room, ticket_text(case), None)
        case.messages.append(case.ticket)
        self.store.save(case)
        self._count("opened")

    async def _relay(self, action: RelayToOperator) -> None:
        case = self._open_case(action.user)
        if case is None or case.ticket is None:
            self._count("relay_without_case")
            return
        message_id = await self._post(case.room, PERSON_PREFIX + action.text, case.ticket)
        case.messages.append(message_id)
        self.store.save(case)
        self._count("relayed")

    async def _cancel(self, action: CancelHandover) -> None:
        case = self._open_case(action.user)
        if case is None:
            return
        case.state = "left"
        case.answers = ()  # no longer needed once the case is over
        self.store.save(case)
        if case.ticket is not None:
            await self._post(case.room, f"{case.number}: the person left the queue.", case.ticket)
        self._count("left")

    async def _forget(self, user: Address) -> None:
        for case in self.store.of_user(user):
            self.store.delete(case.number)
            if case.ticket is not None:
                text = f"Case {case.number}: deleted at the person's request."
                try:
                    await self._edit(case.room, case.ticket, text)
                except NotImplementedError:
                    await self._post(case.room, text, case.ticket)
            self._count("forgotten")

    # ------------------------------------------------------------------ the operators' side

    async def on_operator(self, message: OperatorMessage) -> None:
        """An operator wrote in an operators' room (channels call this)."""
        if message.room not in self.rooms.values():
            return
        text = message.text.strip()
        command = _operator_command(text)
        if command == "cases":
            await self._post(message.room, self.cases_text(message.room), message.thread_id)
            return
        if command == "help":
            await self._post(message.room, OPERATOR_HELP, message.thread_id)
            return
        case = (
            self.store.by_message(message.room, message.thread_id)
            if message.thread_id is not None
            else None
        )
        if case is None:
            if command in ("take", "close", "note"):
                await self._post(
                    message.room,
                    f"/{command} works in a ticket's thread: reply to the ticket.",
                    message.thread_id,
                )
            return  # operators talking among themselves
        assert case.ticket is not None
        if case.state != "open":
            if command != "note":
                await self._post(case.room, f"{case.number} is no longer open.", case.ticket)
            return
        if command == "note":
            self._count("notes")  # stays in the room; never sent, never stored
        elif command == "take":
            await self._take(case, message.sender)
        elif command == "close":
            await self._close(case, message.sender)
        elif text:
            await self._answer(case, message.sender, text)

    async def _take(self, case: Case, operator: str) -> None:
        assert case.ticket is not None
        case.taken_by = operator
        self.store.save(case)
        await self._post(case.room, f"{case.number} taken by {operator}.", case.ticket)
        self._count("taken")

    async def _close(self, case: Case, operator: str) -> None:
        assert case.ticket is not None and self._deliver is not None
        case.state, case.answers = "closed", ()
        self.store.save(case)
        await self._post(case.room, f"{case.number} closed by {operator}.", case.ticket)
        # The engine tells the person and takes the conversation back.
        await self._deliver(Inbound(InboundKind.CLOSE, case.user))
        self._count("closed")

    async def _answer(self, case: Case, operator: str, text: str) -> None:
        assert self._send is not None and case.ticket is not None
        if case.taken_by is None:
            await self._take(case, operator)
        await self._send(SendText(case.user, LAWYER_PREFIX + text))
        self._count("answered")

    def cases_text(self, room: Address) -> str:
        now = self.clock()
        lines = []
        for case in self.store.open_cases():
            if case.room != room:
                continue
            waited = max(0, int((now - case.opened) // 60))
            who = f"taken by {case.taken_by}" if case.taken_by else "not taken"
            lines.append(f"{case.number} · {case.queue} · {case.language} · {waited} min · {who}")
        return "Open cases:\n" + "\n".join(lines) if lines else "No open cases."

    # ------------------------------------------------------------------ helpers

    def _new_number(self) -> str:
        while True:
            number = "#" + "".join(secrets.choice(CASE_ALPHABET) for _ in range(4))
            if self.store.get(number) is None:
                return number

    async def _post(self, room: Address, text: str, thread_id: str | None) -> str:
        return await self.channels[room.channel].post_to_room(room.chat, text, thread_id)

    async def _edit(self, room: Address, message_id: str, text: str) -> None:
        await self.channels[room.channel].edit_in_room(room.chat, message_id, text)


def ticket_text(case: Case) -> str:
    """The ticket: case number, language, path, answers; nothing else about the person."""
    lines = [
        f"Case {case.number} · queue {case.queue} · language {case.language}",
        "Path: " + (" › ".join(case.path) if case.path else "(none: asked for a lawyer)"),
    ]
    if case.answers:
        lines.append("Answers:")
        lines.extend(f"  {name}: {value}" for name, value in case.answers)
    else:
        lines.append("Answers: none")
    lines.append("Reply in this thread to answer; /take to claim, /close to end, /note for notes.")
    return "\n".join(lines)


def _operator_command(text: str) -> str | None:
    """'take' for '/take', '!take' or '/take@hotline_bot'; None for anything else."""
    if not text or text[0] not in "/!":
        return None
    name = text[1:].split(" ", 1)[0].split("@", 1)[0].lower()
    return name if name in OPERATOR_COMMANDS else None


def rooms_from_config(section: Mapping[str, Mapping[str, object]]) -> dict[str, Address]:
    """queue -> room Address from the validated `handover:` config (see config.py)."""
    rooms = {}
    for queue, room in section.items():
        channel = str(room["channel"])
        chat = room.get("room") if channel == "matrix" else room.get("chat")
        rooms[queue] = Address(channel, str(chat))
    return rooms


def watch(desk: Desk, channels: Iterable[Channel]) -> None:
    """Tell each channel which of its rooms are operators' rooms, and where to send their
    messages (before the channels start)."""
    for channel in channels:
        rooms = desk.rooms_of(channel.name)
        if rooms:
            channel.watch_rooms(rooms, desk.on_operator)
