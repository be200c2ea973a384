"""The hub: runs each inbound event through the engine and routes the resulting actions.

- One event at a time per conversation, in arrival order (an asyncio lock per session key);
  different conversations run concurrently.
- The session change is stored before any action is performed, so a crash after the store
  never replays the step (the outbox of the trust work makes the sends exactly-once).
- Each action goes to the channel named by its address: a Telegram user's hand-over ticket
  can go to a Matrix operators' room without either adapter knowing the other.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from adapters.serve.channel import Channel
from adapters.serve.handover import Desk
from engine.conversation import (
    Action,
    CancelHandover,
    ForgetUser,
    Inbound,
    RelayToOperator,
    SendDocument,
    SendText,
    StartHandover,
)
from engine.documents import DocumentError
from engine.runtime import Engine
from engine.stores.base import SessionStore

log = logging.getLogger(__name__)


class Hub:
    def __init__(
        self,
        engine: Engine,
        store: SessionStore,
        channels: Mapping[str, Channel],
        desk: Desk | None = None,
    ) -> None:
        self.engine = engine
        self.store = store
        self.channels = dict(channels)
        self.desk = desk
        if desk is not None:
            desk.connect(self.deliver, self.perform)
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiting: dict[str, int] = {}
        self.handled = 0

    async def deliver(self, event: Inbound) -> None:
        """Handle one inbound event; returns when its actions were performed."""
        key = self.engine.key(event.address)
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            async with lock:
                actions = self._step(key, event)
                for action in actions:
                    await self.perform(action)
        finally:
            # Forget the lock once nobody waits on it: memory stays bounded by live chats.
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key]
                del self._locks[key]

    def _step(self, key: str, event: Inbound) -> list[Action]:
        outcome = self.engine.handle(self.store.load(key), event)
        if outcome.session is None:
            self.store.delete(key)
        else:
            self.store.save(outcome.session)
        self.handled += 1
        return outcome.actions

    async def perform(self, action: Action) -> None:
        if isinstance(action, SendDocument) and not action.ready:
            # Filling a Word template takes tens of milliseconds of CPU: a worker thread
            # does it, so other conversations are not held up meanwhile.
            try:
                await asyncio.to_thread(lambda: action.data)
            except DocumentError:
                action = SendText(action.to, action.fallback_text)
        if isinstance(action, SendText | SendDocument):
            channel = self.channels.get(action.to.channel)
        elif isinstance(action, StartHandover | RelayToOperator | CancelHandover | ForgetUser):
            # The desk posts hand-overs in the queue's operators' room (on any channel);
            # a forget goes to the desk and to the person's own channel.
            if self.desk is not None and self.desk.serves(action):
                try:
                    await self.desk.perform(action)
                except Exception:
                    log.exception("the desk could not perform %s", type(action).__name__)
                if not isinstance(action, ForgetUser):
                    return
            channel = self.channels.get(action.user.channel)
        else:  # pragma: no cover - the Action union is closed
            raise TypeError(f"unknown action {type(action).__name__}")
        if channel is None:
            log.error("no channel serves %s; action dropped", type(action).__name__)
            return
        try:
            await channel.perform(action)
        except Exception:
            # One failed send must not stop the conversation's other messages or the hub.
            log.exception("channel %s could not perform %s", channel.name, type(action).__name__)
