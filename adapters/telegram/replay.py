"""Replaying conversations through the Telegram adapter, for `hotline replay --channel telegram`.

`TelegramReplayDriver` starts the local Bot API server, a `TelegramChannel` polling it and a
`Hub` with an in-memory store, then plays people:

    async with TelegramReplayDriver(flows) as driver:
        got = await driver.send_text(1001, "/start", language="ru")
        got = await driver.press(1001, "Мне пришла повестка")

Each call injects one update and returns what that person received because of it, in
order, as neutral values (`Received`: texts with their button labels and callback_data,
documents with their name and bytes, hand-over markers). It returns once the bot has
acknowledged the update: the adapter confirms an update only after its handling and every
resulting send finished, so no sleeping and no guessing. A press uses the callback_data of
the latest message that was sent with a keyboard holding that label (its keyboard is gone
after an earlier press, but its data is what the person's app would still send).

`TelegramTransport` is the same, synchronous and Engine-shaped, for the transcript replayer
(`engine.transcripts.Replayer`): `handle(session, event) -> Outcome` sends the event as a
Telegram user and returns what came back as engine actions (`SendText` with `Button`s whose
payload is the callback_data received, `SendDocument`, `StartHandover`), plus the steps and
moves the engine took (for --coverage). A `session` of None starts a new Telegram user: the
replayer starts each transcript on an empty store, so each transcript gets its own person.

`telegram_replayer(flows)` is a `Replayer` whose events all go through Telegram, the local
server running while the block runs:

    with telegram_replayer(flows) as replayer:
        runs = [replayer.replay(t) for t in transcripts]

`hotline replay --channel telegram` uses `replayers_for(flow_sets)`: one `TelegramReplayer`
(`replay(transcript) -> Run`, `close()`) per flows folder, as for `--channel matrix`.
Coverage works as in process: the steps and moves come from the engine behind the hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from telegram.error import TelegramError

from adapters.serve.channel import Channel, Deliver
from adapters.serve.hub import Hub
from adapters.telegram.channel import TelegramChannel
from adapters.telegram.config import RateLimitConfig, TelegramConfig
from adapters.telegram.localserver import LocalBotApiServer
from engine.conversation import (
    Action,
    Address,
    Button,
    HandoverContext,
    Inbound,
    InboundKind,
    SendDocument,
    SendText,
    Session,
    StartHandover,
)
from engine.model import FlowSet
from engine.privacy import session_key
from engine.runtime import Engine, Outcome
from engine.stores import MemoryStore
from engine.transcripts import Failure, Replayer, Run, Transcript

T = TypeVar("T")
FIRST_USER = 10_001


@dataclass(frozen=True, slots=True)
class Received:
    """One thing a person received: a text (with buttons), a document, or a hand-over."""

    kind: Literal["text", "document", "handover"]
    text: str = ""
    buttons: tuple[str, ...] = ()  # labels, in order
    callback_data: tuple[str, ...] = ()  # one per button
    file_name: str = ""
    data: bytes = b""
    queue: str = ""  # the hand-over queue


@dataclass(slots=True)
class _Trace:
    visited: list[tuple[str, str]] = field(default_factory=list)
    moves: list[tuple[str, str, int]] = field(default_factory=list)


class _TracingEngine:
    """The engine the hub runs, recording the steps and moves of each outcome."""

    def __init__(self, engine: Engine, trace: _Trace) -> None:
        self.engine = engine
        self.flows = engine.flows
        self.trace = trace
        self.key = engine.key

    def handle(self, session: Session | None, event: Inbound) -> Outcome:
        outcome = self.engine.handle(session, event)
        self.trace.visited.extend(outcome.visited)
        self.trace.moves.extend(outcome.moves)
        return outcome


class _Observer(Channel):
    """Passes actions on to the Telegram channel and notes where hand-overs happened."""

    name = "telegram"

    def __init__(self, channel: TelegramChannel, server: LocalBotApiServer) -> None:
        self.channel = channel
        self.server = server
        self.handovers: dict[int, list[tuple[int, str]]] = {}

    async def start(self, deliver: Deliver) -> None:  # pragma: no cover - never started
        raise NotImplementedError

    async def stop(self) -> None:  # pragma: no cover - never started
        raise NotImplementedError

    async def perform(self, action: Action, *, idempotency_key: str | None = None) -> None:
        if isinstance(action, StartHandover):
            chat = int(action.user.chat)
            position = len(self.server.received(chat))
            self.handovers.setdefault(chat, []).append((position, action.queue))
        await self.channel.perform(action, idempotency_key=idempotency_key)


class TelegramReplayDriver:
    """People talking to the flows through the Telegram adapter (see the module docstring)."""

    def __init__(
        self, flows: FlowSet, *, engine: Engine | None = None, timeout: float = 30.0
    ) -> None:
        self.flows = flows
        self.engine = engine or Engine(flows)
        self.timeout = timeout
        self.trace = _Trace()
        self.server = LocalBotApiServer()
        self._channel: TelegramChannel | None = None
        self._observer: _Observer | None = None

    async def __aenter__(self) -> TelegramReplayDriver:
        await self.server.start()
        config = TelegramConfig(
            api_url=self.server.api_url,
            poll_timeout=30,
            # A local server has no flood limits; keep quick retries for its faults.
            rate_limit=RateLimitConfig(
                overall_per_second=0,
                per_chat_per_second=0,
                group_per_minute=0,
                backoff_initial=0.05,
                backoff_max=1,
            ),
        )
        try:
            channel = self._channel = TelegramChannel(config, self.server.token)
            channel.bind(self.flows)
            self._observer = _Observer(channel, self.server)
            hub = Hub(
                _TracingEngine(self.engine, self.trace), MemoryStore(), {"telegram": self._observer}
            )  # type: ignore[arg-type]
            await channel.start(hub.deliver)
        except BaseException:
            await self.server.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self._channel is not None:
                await self._channel.stop()
        finally:
            await self.server.stop()

    # ------------------------------------------------------------------ people

    async def send_text(
        self, user_id: int, text: str, language: str | None = None
    ) -> list[Received]:
        return await self._exchange(
            user_id, lambda: self.server.send_text(user_id, text, language_code=language)
        )

    async def press(self, user_id: int, label: str, language: str | None = None) -> list[Received]:
        """Press the button `label` of the latest message sent with a keyboard that has it."""
        message = self.server.find_button_message(user_id, label, None, None)
        if message is None:
            raise LookupError(f"user {user_id} has been shown no button {label!r}")
        data = next(d for lbl, d in message.sent_buttons if lbl == label)
        return await self.press_data(user_id, data, language, message.message_id)

    async def press_data(
        self,
        user_id: int,
        data: str,
        language: str | None = None,
        message_id: int | None = None,
    ) -> list[Received]:
        """Press the button whose callback_data is `data` (on the latest message sent with
        it, unless `message_id` says which)."""
        if message_id is None:
            message = self.server.find_button_message(user_id, None, data, None)
            if message is None:
                raise LookupError(f"user {user_id} has been shown no button with data {data!r}")
            message_id = message.message_id
        return await self._exchange(
            user_id,
            lambda: self.server.press(
                user_id, data=data, message_id=message_id, language_code=language
            ),
        )

    async def send_photo(self, user_id: int, language: str | None = None) -> list[Received]:
        return await self._exchange(
            user_id, lambda: self.server.send_photo(user_id, language_code=language)
        )

    async def _exchange(self, user_id: int, inject: Callable[[], int]) -> list[Received]:
        assert self._observer is not None
        before = len(self.server.received(user_id))
        self._observer.handovers[user_id] = []
        update_id = inject()
        await self.server.wait_confirmed(update_id, self.timeout)
        return self._collect(user_id, before)

    def _collect(self, user_id: int, before: int) -> list[Received]:
        assert self._observer is not None
        messages = self.server.received(user_id)
        handovers = self._observer.handovers.pop(user_id, [])
        result: list[Received] = []
        for index in range(before, len(messages) + 1):
            result += [Received("handover", queue=q) for pos, q in handovers if pos == index]
            if index == len(messages):
                break
            message = messages[index]
            if message.document is not None:
                result.append(
                    Received(
                        "document",
                        file_name=message.document.filename,
                        data=message.document.data,
                    )
                )
            else:
                buttons = message.sent_buttons
                result.append(
                    Received(
                        "text",
                        text=message.text or "",
                        buttons=tuple(label for label, _ in buttons),
                        callback_data=tuple(data for _, data in buttons),
                    )
                )
        return result


# --------------------------------------------------------------------------- synchronous


class TelegramTransport:
    """An Engine-shaped stand-in for the transcript replayer: each `handle` goes through
    Telegram (see the module docstring). Use as a context manager; it runs the driver on a
    private event loop in a background thread."""

    def __init__(self, flows: FlowSet, *, engine: Engine | None = None, timeout: float = 30.0):
        self.flows = flows
        self.driver = TelegramReplayDriver(flows, engine=engine, timeout=timeout)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="telegram-replay", daemon=True
        )
        self._users = itertools.count(FIRST_USER)
        self._user = FIRST_USER
        self._timeout = timeout

    def __enter__(self) -> TelegramTransport:
        self._thread.start()
        try:
            self._run(self.driver.__aenter__())
        except BaseException:
            self._shutdown_loop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._run(self.driver.__aexit__(None, None, None))
        finally:
            self._shutdown_loop()

    def _shutdown_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(timeout=self._timeout * 2)

    def key(self, address: Address) -> str:
        """The replayer's session key: plain, its store is in memory."""
        return session_key(address, None)

    def handle(self, session: Session | None, event: Inbound) -> Outcome:
        if session is None:
            self._user = next(self._users)
        user, hint = self._user, event.language_hint
        trace = self.driver.trace
        trace.visited.clear()
        trace.moves.clear()
        if event.kind is InboundKind.PRESS:
            received = self._run(self.driver.press_data(user, event.payload, hint))
        elif event.kind is InboundKind.TEXT:
            received = self._run(self.driver.send_text(user, event.text, hint))
        elif event.kind is InboundKind.UNSUPPORTED:
            received = self._run(self.driver.send_photo(user, hint))
        else:
            raise ValueError(f"a Telegram user cannot send a {event.kind.value} event")
        language = session.language if session is not None else (hint or "")
        # Stored by the caller under the event's address (as the engine keys sessions), so
        # that the next event of this conversation comes with it and stays this person's.
        address = event.address
        marker = Session(key=f"{address.channel}:{address.chat}", language=language)
        return Outcome(
            marker,
            to_actions(received, event.address, language),
            tuple(trace.visited),
            tuple(trace.moves),
        )


def to_actions(received: list[Received], to: Address, language: str = "") -> list[Action]:
    """What a person received, as the engine actions that would have produced it."""
    actions: list[Action] = []
    for item in received:
        if item.kind == "text":
            buttons = tuple(
                Button(label, data)
                for label, data in zip(item.buttons, item.callback_data, strict=True)
            )
            actions.append(SendText(to, item.text, buttons))
        elif item.kind == "document":
            actions.append(SendDocument(to, item.file_name, item.data))
        else:
            actions.append(StartHandover(to, item.queue, HandoverContext(language, (), ())))
    return actions


@contextlib.contextmanager
def telegram_replayer(flows: FlowSet, timeout: float = 30.0) -> Iterator[Replayer]:
    """A transcript `Replayer` whose every event goes through the Telegram adapter and the
    local Bot API server (started here, stopped when the block ends). The replayer's own
    traced engine, with the clock that a transcript's `now:` sets, runs behind the hub."""
    replayer = Replayer(flows)
    with TelegramTransport(flows, engine=replayer.engine, timeout=timeout) as transport:
        # The replayer only calls engine.handle(session, event): the transport answers it.
        replayer.engine = transport  # type: ignore[assignment]
        yield replayer


class TelegramReplayer:
    """`hotline replay --channel telegram` for one flows folder: `replay(transcript) -> Run`
    through the adapter and a local Bot API server started here; `close()` stops them."""

    def __init__(self, flows: FlowSet, timeout: float = 30.0) -> None:
        self._stack = contextlib.ExitStack()
        self._replayer = self._stack.enter_context(telegram_replayer(flows, timeout))

    def replay(self, transcript: Transcript) -> Run:
        try:
            return self._replayer.replay(transcript)
        except (TimeoutError, LookupError, TelegramError, OSError) as err:
            # The bot did not answer over Telegram: a failure of this transcript only.
            why = f"the bot to answer over Telegram ({type(err).__name__}: {err})"
            return Run(
                transcript.file,
                transcript.title,
                failure=Failure(transcript.file, 0, f"expected {why}"),
            )

    def close(self) -> None:
        self._stack.close()


def replayers_for(flow_sets: Mapping[Path, FlowSet]) -> dict[Path, TelegramReplayer]:
    """One TelegramReplayer per flows folder (each its own local server and bot)."""
    replayers: dict[Path, TelegramReplayer] = {}
    try:
        for folder, flows in flow_sets.items():
            replayers[folder] = TelegramReplayer(flows)
    except BaseException:
        for replayer in replayers.values():
            replayer.close()
        raise
    return replayers
