"""The hub: runs each inbound event through the engine and routes the resulting actions.

- One event at a time per conversation, in arrival order (an asyncio lock per session key,
  and the journal's lock across processes when workers share PostgreSQL); different
  conversations run concurrently.
- Nothing lost, nothing twice (engine/stores/journal.py): the step's session, the event's
  id and its actions are committed in one transaction, and only then are the actions sent
  from the outbox, each removed once sent. `deliver` returns after that, so a channel
  acknowledges an update (polling offset, webhook 200, sync token) only once it is
  committed; an update delivered again is recognised by its id and only what was not sent
  yet leaves. A send that fails is retried with back-off by a background task, the
  conversation's later replies queued behind it; a send the channel calls `Undeliverable`
  is dropped. At start, what a crash left unsent is sent (`start`).
- The database going away (`StoreUnavailable`) holds the event and retries with back-off:
  it is not acknowledged until it is committed.
- Each action goes to the channel named by its address: a Telegram user's hand-over ticket
  can go to a Matrix operators' room without either adapter knowing the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TypeVar

from adapters.serve.channel import Channel, Undeliverable
from adapters.serve.handover import Desk
from adapters.serve.metrics import Metrics
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
from engine.stores.journal import (
    Conversation,
    Journal,
    Outgoing,
    StoreUnavailable,
    VolatileJournal,
)

log = logging.getLogger(__name__)

BACKOFF_INITIAL = 0.5  # seconds
BACKOFF_MAX = 60.0
GIVE_UP_AFTER = 24 * 3600.0  # a reply still unsent after a day is dropped (and counted)

T = TypeVar("T")

_DESK_ACTIONS = (StartHandover, RelayToOperator, CancelHandover, ForgetUser)


class Hub:
    def __init__(
        self,
        engine: Engine,
        store: SessionStore | Journal,
        channels: Mapping[str, Channel],
        desk: Desk | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.engine = engine
        # Without a table or a port, Metrics only counts in memory (tests, replay).
        self.metrics = metrics if metrics is not None else Metrics()
        self.store = store
        # A store that is not durable (the in-memory one) gets the journal's interface in
        # memory: tests, replay and the bench run the same code path as production.
        self.journal: Journal = store if isinstance(store, Journal) else VolatileJournal(store)
        self.channels = dict(channels)
        self.desk = desk
        if desk is not None:
            desk.connect(self.deliver, self.perform)
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiting: dict[str, int] = {}
        self._unsent: dict[str, float] = {}  # key -> when its oldest failed send first failed
        # Outbox rows sent (or given up) whose deletion has not been committed yet.
        self._done: set[int] = set()
        self._retrier: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.handled = 0
        self.duplicates = 0
        self.dropped = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Send what a previous run committed but did not send; retry failed sends from now
        on. Call once the channels are started."""
        for key in await self._until_stored(self.journal.keys_with_pending):
            self._unsent.setdefault(key, time.monotonic())
        if self._retrier is None:
            self._retrier = asyncio.create_task(self._retry_unsent(), name="hub-outbox")
        self._wake.set()

    async def stop(self) -> None:
        if self._retrier is not None:
            self._retrier.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retrier
            self._retrier = None

    @property
    def unsent(self) -> int:
        """Conversations with replies waiting for a retry."""
        return len(self._unsent)

    # ------------------------------------------------------------------ inbound

    async def deliver(self, event: Inbound) -> None:
        """Handle one inbound event; returns once its step is committed and its actions
        were sent (or queued for a retry)."""
        self.metrics.update(event.address.channel)
        key = self.engine.key(event.address)
        async with self._conversation_lock(key):
            await self._with_store(key, event)

    @contextlib.asynccontextmanager
    async def _conversation_lock(self, key: str):  # type: ignore[no-untyped-def]
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            # Forget the lock once nobody waits on it: memory stays bounded by live chats.
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key]
                del self._locks[key]

    async def _with_store(self, key: str, event: Inbound | None) -> None:
        """Step `event` (None: only send what is pending), retrying while the store is
        unavailable."""

        async def once() -> None:
            async with self.journal.conversation(key) as conv:
                queued = None
                if event is not None:
                    queued = await self._step(conv, event)
                await self._flush(conv, queued)

        await self._until_stored(once)

    async def _until_stored(self, call: Callable[[], Awaitable[T]]) -> T:
        """`call()`, again and again with back-off while the store is unavailable."""
        delay = BACKOFF_INITIAL
        while True:
            try:
                return await call()
            except StoreUnavailable as err:
                self.metrics.error("store")
                wait = min(delay, BACKOFF_MAX) * random.uniform(0.8, 1.2)  # noqa: S311
                log.warning("the store is unavailable (%s); retrying in %.1fs", err, wait)
                await asyncio.sleep(wait)
                delay *= 2

    async def _step(self, conv: Conversation, event: Inbound) -> list[Outgoing] | None:
        """Take the step; the replies it queued, if nothing older waits before them."""
        if await conv.seen(event.event_id):
            # Delivered again after a crash or a lost acknowledgement: already committed.
            self.duplicates += 1
            return None
        started = time.perf_counter()
        outcome = self.engine.handle(await conv.load(), event)
        handled = time.perf_counter()
        actions = await _made(outcome.actions, self.metrics)
        made = time.perf_counter()
        queued = await conv.commit(outcome.session, event.event_id, actions)
        self.handled += 1
        # Engine and store time; making documents (in a worker thread) is not the step's.
        self.metrics.observe(outcome.counts, (handled - started) + (time.perf_counter() - made))
        return queued

    async def _flush(self, conv: Conversation, queued: list[Outgoing] | None = None) -> None:
        """Send the conversation's outbox in order (`queued`: the step's replies, when they
        are all it holds: no need to read them back); stop at a send that fails (the later
        ones wait behind it, so the person reads the replies in order)."""
        if queued is None or conv.key in self._unsent:
            queued = await conv.pending()
        for item in queued:
            if item.id in self._done:
                # Sent already, but dropping its row failed (the database went away): only
                # the row is left to drop. A send is never repeated for that reason.
                await conv.sent(item)
                self._done.discard(item.id)
                continue
            try:
                await self._send(item.action, item.key)
            except Undeliverable as err:
                self.metrics.error("undeliverable")
                self.dropped += 1
                log.error("dropped a %s the channel refused (%s)", type(item.action).__name__, err)
            except Exception as err:
                self.metrics.error("send")
                first = self._unsent.get(conv.key)
                if first is None:
                    first = self._unsent[conv.key] = time.monotonic()
                    self._wake.set()
                if time.monotonic() - first < GIVE_UP_AFTER:
                    log.warning(
                        "a %s could not be sent (%s); it will be retried",
                        type(item.action).__name__,
                        type(err).__name__,
                    )
                    return
                self.metrics.error("dropped")
                self.dropped += 1
                log.error("dropped a %s unsent for a day", type(item.action).__name__)
            self._done.add(item.id)
            await conv.sent(item)
            self._done.discard(item.id)
        self._unsent.pop(conv.key, None)

    # ------------------------------------------------------------------ outbound

    async def _send(self, action: Action, key: str | None) -> None:
        """Perform one action through its channel (or the desk); raises when it failed."""
        desk = self.desk
        if isinstance(action, _DESK_ACTIONS) and desk is not None and desk.serves(action):
            # The desk posts hand-overs in the queue's operators' room (on any channel) and
            # retries there itself; a forget also goes to the person's own channel.
            try:
                await desk.perform(action)
            except Exception:
                self.metrics.error("desk")
                log.exception("the desk could not perform %s", type(action).__name__)
            if not isinstance(action, ForgetUser):
                return
        to = action.to if isinstance(action, SendText | SendDocument) else action.user
        channel = self.channels.get(to.channel)
        if channel is None:
            raise Undeliverable(f"no channel serves {to.channel!r}")
        await channel.perform(action, idempotency_key=key)

    async def perform(self, action: Action) -> None:
        """Perform one action outside any step (the desk's replies to a person): made if
        it is a document, errors logged, never raised."""
        (action,) = await _made([action], self.metrics)
        try:
            await self._send(action, None)
        except Exception as err:
            log.error("could not perform %s (%s)", type(action).__name__, type(err).__name__)

    # ------------------------------------------------------------------ retries

    async def _retry_unsent(self) -> None:
        delay = BACKOFF_INITIAL
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            self._wake.clear()
            if not self._unsent:
                delay = BACKOFF_INITIAL
                continue
            before = len(self._unsent)
            for key in list(self._unsent):
                try:
                    async with self._conversation_lock(key):
                        await self._with_store(key, None)
                except Exception:
                    log.exception("retrying unsent replies failed")
            # Back off while sends keep failing; start over once something got through.
            delay = BACKOFF_INITIAL if len(self._unsent) < before else min(delay * 2, BACKOFF_MAX)


async def _made(actions: Sequence[Action], metrics: Metrics | None = None) -> list[Action]:
    """The actions with every document made: a document is stored in the outbox as bytes.
    Filling a Word template takes milliseconds of CPU: a worker thread does it, so other
    conversations are not held up meanwhile; one that fails becomes its fallback text."""
    made = list(actions)
    for index, action in enumerate(made):
        if isinstance(action, SendDocument) and not action.ready:
            try:
                await asyncio.to_thread(lambda a=action: a.data)
            except DocumentError:
                if metrics is not None:
                    metrics.error("document")
                made[index] = SendText(action.to, action.fallback_text)
    return made
