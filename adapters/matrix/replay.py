"""Talking to the bot over a real homeserver, as a person would: for tests and replays.

    async with MatrixReplayDriver(flows) as driver:     # a throwaway Synapse, if installed
        said = await driver.send_text("/start")         # [Said("Hello ...", ("Topic", ...))]
        said = await driver.press("Topic")              # typed as its number, "1"

`MatrixReplayDriver` runs the real bot (engine, hub and `MatrixChannel`) against a
homeserver: a throwaway local Synapse (`synapse_launcher`) when none is named, or the one
named by `homeserver=` with existing accounts. A `MatrixPerson` (a plain nio client) opens
a direct chat with the bot, writes, and reads what the bot sent back. Each answer is a
list of neutral values: `Said(text, buttons)` (the labels from the message's
`org.hotline.buttons`), `Document(name, data, mime_type)` (downloaded, and decrypted in an
encrypted room) and `HandedOver(queue)`. The driver knows when the bot is done answering:
the channel reports when it has handled the person's event and which messages it sent
because of it, so no answer is waited for by guesswork.

`replay_transcripts` replays transcripts with it for `hotline replay --channel matrix`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from nio import (
    AsyncClient,
    AsyncClientConfig,
    DownloadResponse,
    LoginResponse,
    MegolmEvent,
    RoomCreateResponse,
    RoomSendResponse,
    SyncResponse,
)
from nio.crypto import ENCRYPTION_ENABLED, decrypt_attachment

from adapters.matrix import convert
from adapters.matrix.channel import MatrixChannel
from adapters.matrix.config import MatrixConfig, Secrets
from adapters.matrix.synapse_launcher import Account, LocalSynapse, synapse_available
from adapters.serve.hub import Hub
from engine.conversation import (
    Action,
    Address,
    Button,
    Inbound,
    InboundKind,
    SendDocument,
    SendText,
    StartHandover,
)
from engine.model import FlowSet
from engine.runtime import Engine
from engine.stores import MemoryStore
from engine.transcripts import Run, Transcript

T = TypeVar("T")


class MatrixReplayError(Exception):
    """The replay could not run (no homeserver, an account refused, a timeout)."""


# --------------------------------------------------------------------------- what arrives


@dataclass(frozen=True, slots=True)
class Said:
    text: str
    buttons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Document:
    name: str
    data: bytes
    mime_type: str = ""


@dataclass(frozen=True, slots=True)
class HandedOver:
    queue: str


Received = Said | Document | HandedOver


@dataclass(frozen=True, slots=True)
class Message:
    """An event someone else sent to a room the person is in (decrypted if need be)."""

    room_id: str
    event_id: str
    sender: str
    type: str
    content: dict[str, Any]

    @property
    def msgtype(self) -> str | None:
        value = self.content.get("msgtype")
        return value if isinstance(value, str) else None

    @property
    def text(self) -> str:
        return convert.split_body(self.content)[0]

    @property
    def buttons(self) -> tuple[str, ...]:
        return convert.split_body(self.content)[1]


# --------------------------------------------------------------------------- the person


class MatrixPerson:
    """A person's Matrix client (matrix-nio), logged in with an existing access token.

    With `store_dir` (and `matrix-nio[e2e]`), it reads and writes encrypted rooms too."""

    def __init__(
        self,
        homeserver: str,
        account: Account,
        *,
        store_dir: Path | None = None,
        store_key: str = "",
    ) -> None:
        encryption = store_dir is not None and ENCRYPTION_ENABLED
        if store_dir is not None:
            store_dir.mkdir(parents=True, exist_ok=True)
        config = AsyncClientConfig(
            encryption_enabled=encryption,
            store_sync_tokens=False,
            pickle_key=store_key or secrets.token_hex(16),
        )
        self.user_id = account.user_id
        self.client = AsyncClient(
            homeserver,
            account.user_id,
            store_path=str(store_dir) if store_dir is not None else "",
            config=config,
        )
        self.client.restore_login(account.user_id, account.device_id, account.access_token)
        self.encryption = encryption
        self.room_id: str | None = None
        self._token: str | None = None
        self._inbox: dict[str, list[Message]] = {}
        self._seen: set[str] = set()
        self._undecrypted: list[tuple[str, MegolmEvent]] = []

    async def start(self) -> None:
        if self.encryption and self.client.should_upload_keys:
            await self.client.keys_upload()
        await self.sync()

    async def close(self) -> None:
        await self.client.close()

    # ------------------------------------------------------------------ receiving

    async def sync(self, timeout_ms: int = 0) -> None:
        client = self.client
        reply = await client.sync(
            timeout=timeout_ms, since=self._token, full_state=None, sync_filter=_PERSON_FILTER
        )
        if not isinstance(reply, SyncResponse):
            await asyncio.sleep(0.2)
            return
        self._token = reply.next_batch
        if self.encryption:
            if client.should_upload_keys:
                await client.keys_upload()
            if client.should_query_keys:
                await client.keys_query()
            if client.should_claim_keys:
                await client.keys_claim(client.get_users_for_key_claiming())
            await client.send_to_device_messages()
        for room_id, info in reply.rooms.join.items():
            for event in info.timeline.events:
                self._collect(room_id, event)
        retry, self._undecrypted = self._undecrypted, []
        for room_id, event in retry:
            with contextlib.suppress(Exception):
                event = client.decrypt_event(event)
            self._collect(room_id, event)

    def _collect(self, room_id: str, event: Any) -> None:
        source = getattr(event, "source", None)
        event_id = getattr(event, "event_id", None)
        sender = getattr(event, "sender", None)
        if not isinstance(source, dict) or not event_id or sender == self.user_id:
            return
        if isinstance(event, MegolmEvent):
            self._undecrypted.append((room_id, event))
            return
        if event_id in self._seen or "state_key" in source:
            return
        self._seen.add(event_id)
        content = source.get("content")
        message = Message(
            room_id,
            event_id,
            str(sender),
            str(source.get("type")),
            dict(content) if isinstance(content, dict) else {},
        )
        self._inbox.setdefault(room_id, []).append(message)

    async def messages(
        self, count: int = 1, timeout: float = 30.0, room_id: str | None = None
    ) -> list[Message]:
        """The next `count` messages others sent to the room, waiting up to `timeout` s."""
        room = self._room(room_id)
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self._inbox.get(room, ())) < count:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                got = len(self._inbox.get(room, ()))
                raise MatrixReplayError(f"expected {count} messages, got {got} in {timeout} s")
            await self.sync(timeout_ms=int(min(left, 5) * 1000))
        inbox = self._inbox[room]
        taken, self._inbox[room] = inbox[:count], inbox[count:]
        return taken

    async def messages_with_ids(
        self, event_ids: list[str], timeout: float = 30.0, room_id: str | None = None
    ) -> list[Message]:
        """Exactly the messages with these ids, in this order (others stay in the inbox)."""
        room = self._room(room_id)
        wanted = set(event_ids)
        deadline = asyncio.get_running_loop().time() + timeout
        while not wanted <= {m.event_id for m in self._inbox.get(room, ())}:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise MatrixReplayError(f"the bot's messages did not arrive in {timeout} s")
            await self.sync(timeout_ms=int(min(left, 5) * 1000))
        inbox = self._inbox[room]
        found = {m.event_id: m for m in inbox if m.event_id in wanted}
        self._inbox[room] = [m for m in inbox if m.event_id not in wanted]
        return [found[event_id] for event_id in event_ids]

    async def quiet(self, seconds: float, room_id: str | None = None) -> list[Message]:
        """Everything others send to the room within `seconds` (expected: nothing)."""
        room = self._room(room_id)
        deadline = asyncio.get_running_loop().time() + seconds
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            await self.sync(timeout_ms=int(left * 1000))
        taken, self._inbox[room] = self._inbox.get(room, []), []
        return taken

    # ------------------------------------------------------------------ rooms

    async def open_dm(self, bot_user_id: str, encrypted: bool = False) -> str:
        """Create a direct chat and invite the bot, as a client's "Start chat" does."""
        initial_state = (
            [{"type": "m.room.encryption", "state_key": "", "content": {"algorithm": _MEGOLM}}]
            if encrypted
            else []
        )
        reply = await self.client.room_create(
            is_direct=True, invite=[bot_user_id], initial_state=initial_state
        )
        if not isinstance(reply, RoomCreateResponse):
            raise MatrixReplayError(f"cannot create a room: {reply}")
        self.room_id = reply.room_id
        return reply.room_id

    async def wait_for_member(
        self, user_id: str, timeout: float = 30.0, room_id: str | None = None
    ) -> None:
        room = self._room(room_id)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            matrix_room = self.client.rooms.get(room)
            member = matrix_room.users.get(user_id) if matrix_room else None
            if member is not None and not member.invited:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise MatrixReplayError(f"{user_id} did not join in {timeout} s")
            await self.sync(timeout_ms=1000)

    async def leave(self, room_id: str | None = None) -> None:
        await self.client.room_leave(self._room(room_id))

    # ------------------------------------------------------------------ sending

    async def send(
        self,
        content: dict[str, Any],
        event_type: str = "m.room.message",
        room_id: str | None = None,
    ) -> str:
        room = self._room(room_id)
        if room not in self.client.rooms:
            await self.sync()
        reply = await self.client.room_send(
            room, event_type, content, ignore_unverified_devices=True
        )
        if not isinstance(reply, RoomSendResponse):
            raise MatrixReplayError(f"cannot send: {reply}")
        return reply.event_id

    async def say(self, text: str, room_id: str | None = None) -> str:
        return await self.send({"msgtype": "m.text", "body": text}, room_id=room_id)

    async def react(self, event_id: str, key: str, room_id: str | None = None) -> str:
        relates = {"rel_type": "m.annotation", "event_id": event_id, "key": key}
        return await self.send({"m.relates_to": relates}, "m.reaction", room_id)

    async def download(self, message: Message) -> bytes:
        """The bytes of an m.file message (decrypted when it came encrypted)."""
        encrypted = message.content.get("file")
        url = encrypted["url"] if isinstance(encrypted, dict) else message.content.get("url")
        reply = await self.client.download(mxc=url)
        if not isinstance(reply, DownloadResponse):
            raise MatrixReplayError(f"cannot download: {reply}")
        data = bytes(reply.body)
        if isinstance(encrypted, dict):
            data = decrypt_attachment(
                data, encrypted["key"]["k"], encrypted["hashes"]["sha256"], encrypted["iv"]
            )
        return data

    def _room(self, room_id: str | None) -> str:
        room = room_id or self.room_id
        if room is None:
            raise MatrixReplayError("no room: open_dm first")
        return room


_MEGOLM = "m.megolm.v1.aes-sha2"
# Everything since the last sync, not the default last 10 events of each room.
_PERSON_FILTER = {"room": {"timeline": {"limit": 500}}, "presence": {"types": []}}


# --------------------------------------------------------------------------- the driver


@dataclass(frozen=True, slots=True)
class Credentials:
    """An existing account on a homeserver named by flags."""

    user_id: str
    password: str


@dataclass(slots=True)
class _Recorder:
    """The channel's observer: what each inbound event caused, and when it was handled."""

    caused: dict[str, list[tuple[str, Any]]] = field(default_factory=dict)
    done: dict[str, asyncio.Event] = field(default_factory=dict)

    def performed(self, origin: str | None, action: Action, event_id: str | None) -> None:
        if origin is None:
            return
        items = self.caused.setdefault(origin, [])
        if isinstance(action, StartHandover):
            items.append(("handover", action.queue))
        elif event_id is not None:
            items.append(("message", (event_id, action)))

    def handled(self, event_id: str) -> None:
        self.done.setdefault(event_id, asyncio.Event()).set()

    async def wait(self, event_id: str, timeout: float) -> list[tuple[str, Any]]:
        event = self.done.setdefault(event_id, asyncio.Event())
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError as err:
            raise MatrixReplayError(f"the bot did not handle a message in {timeout} s") from err
        self.done.pop(event_id, None)
        return self.caused.pop(event_id, [])


class MatrixReplayDriver:
    """The bot and one person on a homeserver; `send_text` and `press` return what the
    person received in answer. Use as `async with`."""

    def __init__(
        self,
        flows: FlowSet,
        homeserver: str | None = None,
        *,
        bot: Credentials | None = None,
        person: Credentials | None = None,
        encrypted: bool = False,
        workdir: str | Path | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        timeout: float = 30.0,
    ) -> None:
        if homeserver is not None and (bot is None or person is None):
            raise MatrixReplayError(
                "a homeserver named by flags needs the bot's and the person's accounts"
            )
        if encrypted and not ENCRYPTION_ENABLED:
            raise MatrixReplayError(
                'encrypted rooms need matrix-nio[e2e] (pip install "matrix-nio[e2e]")'
            )
        self.flows = flows
        self.homeserver = homeserver
        self.encrypted = encrypted
        self.timeout = timeout
        self._bot_credentials = bot
        self._person_credentials = person
        self._workdir = Path(workdir) if workdir is not None else None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._clock = clock
        self.synapse: LocalSynapse | None = None
        self.channel: MatrixChannel | None = None
        self.person: MatrixPerson | None = None
        self.store = MemoryStore()
        self._recorder = _Recorder()
        self._buttons: tuple[str, ...] = ()
        self._store_key = secrets.token_hex(16)

    # ------------------------------------------------------------------ life cycle

    async def __aenter__(self) -> MatrixReplayDriver:
        try:
            await self._start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _start(self) -> None:
        if self._workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="hotline-matrix-")
            self._workdir = Path(self._tmp.name)
        work = self._workdir
        if self.homeserver is None:
            if not synapse_available():
                raise MatrixReplayError(
                    "no homeserver: install matrix-synapse (pip install matrix-synapse) for a "
                    "throwaway local one, or name one with --homeserver"
                )
            self.synapse = LocalSynapse(work / "synapse")
            await asyncio.to_thread(self.synapse.start)
            tag = secrets.token_hex(3)
            bot = await asyncio.to_thread(self.synapse.register, f"hotline-bot-{tag}")
            person = await asyncio.to_thread(self.synapse.register, f"person-{tag}")
            homeserver = self.synapse.url
        else:
            assert self._bot_credentials is not None and self._person_credentials is not None
            homeserver = self.homeserver
            bot_c = self._bot_credentials
            bot = Account(bot_c.user_id, bot_c.password, "", "")
            person = await _log_in(homeserver, self._person_credentials)
        config = MatrixConfig(
            homeserver=homeserver,
            user_id=bot.user_id,
            store_dir=work / "bot",
            allowed_servers=(person.user_id.split(":", 1)[1],),
            encryption="on" if self.encrypted else "off",
            greet_on_join=False,  # a transcript starts with the person's first line
            sync_timeout_ms=1000,
        )
        self.channel = MatrixChannel(
            config, Secrets(password=bot.password, store_key=self._store_key)
        )
        self.channel.observer = self._recorder
        hub = Hub(Engine(self.flows, clock=self._clock), self.store, {"matrix": self.channel})
        await self.channel.start(hub.deliver)
        self.person = MatrixPerson(
            homeserver,
            person,
            store_dir=work / "person" if self.encrypted else None,
            store_key=self._store_key,
        )
        await self.person.start()
        await self.new_conversation()

    async def close(self) -> None:
        if self.person is not None:
            with contextlib.suppress(Exception):
                await self.person.close()
            self.person = None
        if self.channel is not None:
            with contextlib.suppress(Exception):
                await self.channel.stop()
            self.channel = None
        if self.synapse is not None:
            await asyncio.to_thread(self.synapse.close)
            self.synapse = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    async def new_conversation(self) -> str:
        """A new direct chat with the bot: a new conversation, as a new person would have."""
        person, channel = self._person(), self._channel()
        room = await person.open_dm(channel.user_id, encrypted=self.encrypted)
        await person.wait_for_member(channel.user_id, timeout=self.timeout)
        self._buttons = ()
        return room

    # ------------------------------------------------------------------ talking

    async def send_text(self, text: str) -> list[Received]:
        event_id = await self._person().say(text)
        return await self._answers(event_id)

    async def press(self, label: str) -> list[Received]:
        """Press a button of the latest message with buttons: type its number."""
        if label not in self._buttons:
            raise MatrixReplayError(f'no button "{label}" among {list(self._buttons)}')
        return await self.send_text(str(self._buttons.index(label) + 1))

    async def react(self, label: str, event_id: str) -> list[Received]:
        """Press a button with a number reaction on the bot's message `event_id`."""
        number = self._buttons.index(label) + 1
        reaction = await self._person().react(event_id, convert.NUMBER_KEYS[number - 1])
        return await self._answers(reaction)

    async def _answers(self, event_id: str) -> list[Received]:
        caused = await self._recorder.wait(event_id, self.timeout)
        ids = [value[0] for kind, value in caused if kind == "message"]
        messages = await self._person().messages_with_ids(ids, timeout=self.timeout)
        by_id = {m.event_id: m for m in messages}
        received: list[Received] = []
        for kind, value in caused:
            if kind == "handover":
                received.append(HandedOver(value))
                continue
            event_id, action = value
            message = by_id[event_id]
            if isinstance(action, SendDocument) and message.msgtype == "m.file":
                data = await self._person().download(message)
                received.append(Document(str(message.content.get("body")), data, action.mime_type))
            else:
                said = Said(message.text, message.buttons)
                if said.buttons:
                    self._buttons = said.buttons
                received.append(said)
        return received

    def _person(self) -> MatrixPerson:
        if self.person is None:
            raise MatrixReplayError("the driver is not started")
        return self.person

    def _channel(self) -> MatrixChannel:
        if self.channel is None:
            raise MatrixReplayError("the driver is not started")
        return self.channel


async def _log_in(homeserver: str, credentials: Credentials) -> Account:
    client = AsyncClient(homeserver, credentials.user_id)
    try:
        reply = await client.login(credentials.password, device_name="hotline replay")
    finally:
        await client.close()
    if not isinstance(reply, LoginResponse):
        raise MatrixReplayError(f"{credentials.user_id}: login refused")
    return Account(reply.user_id, credentials.password, reply.access_token, reply.device_id)


# --------------------------------------------------------------------------- transcripts


class _LoopThread:
    """An asyncio loop in a thread: the transcript matcher is synchronous, the driver not."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


class MatrixReplayer:
    """`engine.transcripts.Replayer` over Matrix: one bot and one homeserver for a flows
    folder, a new direct chat (a new conversation) per transcript. Use as `with`.

    The matching is the in-process replayer's own (`engine.transcripts.matching`): only
    where the bot's messages come from differs. A transcript's `language` is set with
    `/language` before it starts (Matrix reports no language), its answers unseen."""

    def __init__(
        self,
        flows: FlowSet,
        homeserver: str | None = None,
        *,
        bot: Credentials | None = None,
        person: Credentials | None = None,
        encrypted: bool = False,
        timeout: float = 60.0,
    ) -> None:
        self.flows = flows
        self._now: dt.datetime | None = None
        self._thread: _LoopThread | None = None
        self.timeout = timeout
        self.driver = MatrixReplayDriver(
            flows,
            homeserver,
            bot=bot,
            person=person,
            encrypted=encrypted,
            clock=self._clock,
            timeout=timeout,
        )

    def _clock(self) -> dt.datetime:
        return self._now if self._now is not None else dt.datetime.now()

    def __enter__(self) -> MatrixReplayer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start the homeserver (if it is ours), the bot and the person; `replay` does it
        when needed."""
        if self._thread is not None:
            return
        self._thread = _LoopThread()
        try:
            self._thread.call(self.driver.__aenter__(), timeout=300)
        except BaseException:
            self._thread.close()
            self._thread = None
            raise

    def close(self) -> None:
        if self._thread is not None:
            with contextlib.suppress(Exception):
                self._thread.call(self.driver.close(), timeout=60)
            self._thread.close()
            self._thread = None

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._thread is None:
            raise MatrixReplayError("the replayer is not started")
        return self._thread.call(coro, timeout=self.timeout * 4)

    def replay(self, transcript: Transcript) -> Run:
        self.start()
        started = time.perf_counter()
        self._now = transcript.now
        try:
            self.call(self.driver.new_conversation())
            language = transcript.language
            if language and language != self.flows.bot.default_language:
                self.call(self.driver.send_text(f"/language {language}"))
            replay = _matrix_replay(self, transcript)
            failure = replay.run()
        finally:
            self._now = None
        return Run(
            transcript.file,
            transcript.title,
            failure=failure,
            lines=replay.done,
            seconds=time.perf_counter() - started,
        )


def _matrix_replay(replayer: MatrixReplayer, transcript: Transcript) -> Any:
    """The in-process matcher with its `feed` going through Matrix."""
    from engine.transcripts import matching

    class MatrixReplay(matching._Replay):
        __slots__ = ()

        def feed(self, event: Inbound) -> None:
            driver = replayer.driver
            if event.kind is InboundKind.PRESS:
                label = next(b.label for b in self.buttons if b.payload == event.payload)
                received = replayer.call(driver.press(label))
            else:
                received = replayer.call(driver.send_text(event.text))
            after_handover = False
            for item in received:
                if isinstance(item, HandedOver):
                    self.handovers.append(item.queue)
                    after_handover = True
                elif isinstance(item, Document):
                    sent = SendDocument(_ADDRESS, item.name, item.data, item.mime_type)
                    self.pending.append(matching._Sent(sent, after_handover))
                else:
                    buttons = tuple(Button(x, f"matrix.{i}") for i, x in enumerate(item.buttons))
                    self.pending.append(
                        matching._Sent(SendText(_ADDRESS, item.text, buttons), after_handover)
                    )
                    if buttons:
                        self.buttons = buttons

    engine = Engine(replayer.flows)  # the matcher's own engine is never used: Matrix is
    return MatrixReplay(engine, transcript)


_ADDRESS = Address("matrix", "transcript")


def replayers_from_args(flow_sets: dict[Path, FlowSet], args: Any) -> dict[Path, MatrixReplayer]:
    """`hotline replay --channel matrix`: one replayer per flows folder, from the flags
    --homeserver, --matrix-bot and --matrix-person (passwords from MATRIX_PASSWORD and
    MATRIX_REPLAY_PASSWORD), or a throwaway local Synapse when --homeserver is not given."""
    homeserver = getattr(args, "homeserver", None)
    bot = person = None
    if homeserver:
        bot_id, person_id = getattr(args, "matrix_bot", None), getattr(args, "matrix_person", None)
        bot_password = os.environ.get("MATRIX_PASSWORD")
        person_password = os.environ.get("MATRIX_REPLAY_PASSWORD")
        if not (bot_id and person_id and bot_password and person_password):
            raise MatrixReplayError(
                "--homeserver needs --matrix-bot and --matrix-person (two existing accounts) "
                "and their passwords in MATRIX_PASSWORD and MATRIX_REPLAY_PASSWORD"
            )
        bot, person = Credentials(bot_id, bot_password), Credentials(person_id, person_password)
    elif not synapse_available():
        raise MatrixReplayError(
            "--channel matrix needs a homeserver: pip install matrix-synapse for a throwaway "
            "local one, or name one with --homeserver"
        )
    encrypted = bool(getattr(args, "encrypted", False))
    return {
        folder: MatrixReplayer(flows, homeserver, bot=bot, person=person, encrypted=encrypted)
        for folder, flows in flow_sets.items()
    }
