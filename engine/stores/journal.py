"""The serving bot's durable seam: each inbound event handled once, each reply sent once.

`hotline serve` handles an event like this (adapters/serve/hub.py):

    async with journal.conversation(key) as conv:   # exclusive, across processes if shared
        if not await conv.seen(event_id):
            outcome = engine.handle(await conv.load(), event)
            await conv.commit(outcome.session, event_id, outcome.actions)   # ONE transaction
        for item in await conv.pending():            # the outbox, oldest first
            await channel.perform(item.action, idempotency_key=item.key)
            await conv.sent(item)

- `commit` stores the new session (or deletes it), records the event id as handled and
  puts the actions in the outbox, atomically: a crash leaves either nothing of the step
  (the channel has not acknowledged the update, so it comes again and is handled then) or
  all of it (the update comes again, is recognised as seen, and only the unsent replies
  leave).
- An outbox entry's `key` is stable ("<event id>/<index>"): the Matrix channel uses it as
  the transaction id, so even a send repeated after a crash is one message there.
- A commit that deletes the session (/forget) also drops the person's unsent replies
  queued before it.

`VolatileJournal` gives any `SessionStore` this interface in memory (tests, replay, the
bench's in-memory figures); `SQLiteStore` and `PostgresStore` implement it durably.
Actions are stored as sealed JSON records (`action_record` / `action_from_record`).
"""

from __future__ import annotations

import base64
import dataclasses
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson

from engine import conversation
from engine.conversation import Action, SendDocument, SendText, Session
from engine.privacy import Sealer
from engine.stores.base import SessionStore

SEEN_KEEP_SECONDS = 3 * 86400.0  # Telegram re-sends unconfirmed updates for up to 24 h
UPDATED_GRAIN = 3600.0  # seconds: times stored in clear are rounded down to the hour


class StoreUnavailable(RuntimeError):
    """The database cannot be reached right now (connection lost, server restarting): the
    caller backs off and tries again; nothing was committed."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One unsent action in the outbox. `id` orders and identifies the row; `key` is the
    stable idempotency key handed to the channel."""

    id: int
    key: str
    action: Action


class Conversation(ABC):
    """One conversation, held exclusively (see `Journal.conversation`)."""

    key: str

    @abstractmethod
    async def seen(self, event_id: str) -> bool:
        """Whether the event with this id was handled already ("" is never seen)."""

    @abstractmethod
    async def load(self) -> Session | None:
        """The stored session, or None for someone new."""

    @abstractmethod
    async def commit(
        self, session: Session | None, event_id: str, actions: Sequence[Action]
    ) -> list[Outgoing] | None:
        """Store `session` (None: delete it and the unsent replies queued before), mark
        `event_id` handled and queue `actions`, in one transaction. SendDocuments must be
        made (`ready`) before. Returns the queued entries when they are all the outbox
        holds for this conversation (the caller sends them without reading them back),
        None when older ones wait before them (the caller reads `pending()`)."""

    @abstractmethod
    async def pending(self) -> list[Outgoing]:
        """The unsent actions of this conversation, oldest first."""

    @abstractmethod
    async def sent(self, item: Outgoing) -> None:
        """Drop `item` from the outbox: it was delivered (or given up on)."""


class Journal(ABC):
    """The durable store of a serving bot; see the module docstring."""

    @abstractmethod
    def conversation(self, key: str) -> Any:
        """An async context manager yielding the `Conversation` for `key`, held exclusively:
        in this process, and across processes where the store is shared (PostgreSQL)."""

    @abstractmethod
    async def keys_with_pending(self) -> list[str]:
        """The conversations with unsent actions (sent after a restart)."""

    async def close_journal(self) -> None:  # noqa: B027 - optional hook
        """Release what the journal holds beyond the store itself."""


# --------------------------------------------------------------------------- in memory


class _VolatileConversation(Conversation):
    __slots__ = ("_journal", "key")

    def __init__(self, journal: VolatileJournal, key: str) -> None:
        self._journal = journal
        self.key = key

    async def seen(self, event_id: str) -> bool:
        return bool(event_id) and event_id in self._journal._seen

    async def load(self) -> Session | None:
        return self._journal.store.load(self.key)

    async def commit(
        self, session: Session | None, event_id: str, actions: Sequence[Action]
    ) -> list[Outgoing] | None:
        journal = self._journal
        if session is None:
            journal.store.delete(self.key)
            journal._outbox.pop(self.key, None)
        else:
            journal.store.save(session)
        if event_id:
            journal._remember(event_id)
        older = self.key in journal._outbox
        queued = []
        for index, action in enumerate(actions):
            journal._next_id += 1
            queued.append(Outgoing(journal._next_id, outbox_key(event_id, index), action))
        if queued:
            journal._outbox.setdefault(self.key, []).extend(queued)
        return None if older else queued

    async def pending(self) -> list[Outgoing]:
        return list(self._journal._outbox.get(self.key, ()))

    async def sent(self, item: Outgoing) -> None:
        queue = self._journal._outbox.get(self.key)
        if queue is not None:
            if item in queue:
                queue.remove(item)
            if not queue:
                del self._journal._outbox[self.key]


class VolatileJournal(Journal):
    """Any `SessionStore` with the journal's interface kept in memory: nothing survives
    the process, which is right for tests, replay and the console. At most `remember`
    event ids are kept for deduplication (the oldest are forgotten first)."""

    def __init__(self, store: SessionStore, remember: int = 100_000) -> None:
        self.store = store
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._remember_max = remember
        self._outbox: dict[str, list[Outgoing]] = {}
        self._next_id = 0

    def _remember(self, event_id: str) -> None:
        self._seen[event_id] = None
        if len(self._seen) > self._remember_max:
            self._seen.popitem(last=False)

    @asynccontextmanager
    async def conversation(self, key: str) -> AsyncIterator[Conversation]:
        # The hub already runs one event at a time per key in this process.
        yield _VolatileConversation(self, key)

    async def keys_with_pending(self) -> list[str]:
        return list(self._outbox)


# --------------------------------------------------------------------------- records


def outbox_key(event_id: str, index: int) -> str:
    """The stable idempotency key of the `index`-th action caused by `event_id`."""
    return f"{event_id or '-'}/{index}"


def seal_session(sealer: Sealer, session: Session) -> tuple[str, float, bytes]:
    """A session as a durable store keeps it: (key, `updated` rounded down to the hour,
    the record sealed under the key). The hour is enough for the retention purge and too
    coarse to match a row with a message."""
    # orjson: the record is written and read on every step of a serving bot, and the
    # standard library's json costs several times more for the same compact UTF-8.
    sealed = sealer.seal(orjson.dumps(session.to_record()), session.key.encode("utf-8"))
    return session.key, session.updated // UPDATED_GRAIN * UPDATED_GRAIN, sealed


def open_session(sealer: Sealer, key: str, sealed: bytes) -> Session:
    return Session.from_record(key, orjson.loads(sealer.open(sealed, key.encode("utf-8"))))


def seal_action(sealer: Sealer, key: str, action: Action) -> bytes:
    """An outbox row's record: the action sealed and bound to its conversation (a row
    copied under another key does not open)."""
    return sealer.seal(orjson.dumps(action_record(action)), _outbox_aad(key))


def open_action(sealer: Sealer, key: str, sealed: bytes) -> Action:
    return action_from_record(orjson.loads(sealer.open(sealed, _outbox_aad(key))))


def _outbox_aad(key: str) -> bytes:
    return b"outbox\0" + key.encode("utf-8")


def action_record(action: Action) -> dict[str, Any]:
    """A JSON-able record of `action` (a SendDocument must be made)."""
    if type(action) is SendText:
        # Most of what leaves is a text: the generic `_encode`'s record, built directly
        # (a few microseconds on every step of a serving bot).
        to = action.to
        return {
            "$t": "SendText",
            "to": {"$t": "Address", "channel": to.channel, "chat": to.chat},
            "text": action.text,
            "buttons": [
                {"$t": "Button", "label": b.label, "payload": b.payload} for b in action.buttons
            ],
        }
    if isinstance(action, SendDocument):
        return {
            "$t": "SendDocument",
            "to": _encode(action.to),
            "file_name": action.file_name,
            "mime_type": action.mime_type,
            "data": base64.b64encode(action.data).decode("ascii"),
            "fallback_text": action.fallback_text,
        }
    return _encode(action)


def action_from_record(record: dict[str, Any]) -> Action:
    """The action `action_record` made `record` from."""
    if record.get("$t") == "SendDocument":
        return SendDocument(
            _decode(record["to"]),
            record["file_name"],
            base64.b64decode(record["data"]),
            mime_type=record["mime_type"],
            fallback_text=record.get("fallback_text", ""),
        )
    return _decode(record)


def _encode(value: Any) -> Any:
    # Every value in an action is a str, int, enum, None, tuple or one of the frozen
    # dataclasses of engine.conversation: tagged by class name, rebuilt from that module.
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        record = {"$t": type(value).__name__}
        for item in dataclasses.fields(value):
            record[item.name] = _encode(getattr(value, item.name))
        return record
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    if isinstance(value, bytes):
        return {"$b": base64.b64encode(value).decode("ascii")}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_decode(v) for v in value)
    if isinstance(value, dict):
        if "$b" in value:
            return base64.b64decode(value["$b"])
        name = value.get("$t")
        cls = getattr(conversation, name, None) if isinstance(name, str) else None
        if cls is None or not dataclasses.is_dataclass(cls):
            raise ValueError(f"an outbox record names an unknown type {name!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: _decode(v) for k, v in value.items() if k in names})
    return value
