"""The Matrix path, transport stubbed: updates per second through the real Matrix channel.

    python -m bench.run --only matrix [--quick]

matrix-nio's `AsyncClient` does all its HTTP through one aiohttp `ClientSession`
(`AsyncClient.send` -> `client_session.request`); here that session is `StubSession`, which
answers from memory like a homeserver (`Homeserver`): login, the sync long poll, room
sends. Everything above it is real: nio builds each request, parses each response
(`SyncResponse.from_dict` validates the whole sync against its schema), updates its rooms
and runs its callbacks.

Contenders, fed the same people's messages:
- *hotline, SQLite* / *hotline, memory*: the real `MatrixChannel` (its own sync loop,
  `convert.classify`, typed numbers pressing buttons, the handled-event ids and latest
  buttons kept in its SQLite state file, transaction ids) with the `Hub`, the `Engine` and
  a sealed `SQLiteStore` with pseudonymous keys, or a `MemoryStore`;
- *nio echo*: a bare `AsyncClient` running `sync_forever` with a `RoomMessageText`
  callback that sends the body back (skipping its own messages), the floor of a nio bot.

The people follow the Telegram path's script (bench/telegram_path.py `SCRIPT`) in their own
direct rooms, as a Matrix person would: `!start` for /start, and the number of a button
("5") to press it. Each round, every person's next message arrives in one sync (one
timeline event per room, after the bot's own messages of the previous round, which a
homeserver sends back in the sync too); the round is over when the bot comes back for the
next sync (the channel saves its sync token only after handling every event, nio's loop
only after running every callback). Only that is timed.

Checks: after every round every room has a new message from the bot; after every run every
person heard exactly what the check run heard (the hotline), or one message per message
(the echo).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import tempfile
import time
from abc import ABC, abstractmethod
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from nio import AsyncClient, AsyncClientConfig, MatrixRoom, RoomMessageText

import adapters.matrix.channel as matrix_channel
from adapters.matrix.channel import MatrixChannel
from adapters.matrix.config import MatrixConfig, Secrets
from adapters.serve.hub import Hub
from bench.telegram_path import SCRIPT, PlaceholderDocuments, language, load_flows
from engine.model import FlowSet
from engine.privacy import Sealer, SessionKeys
from engine.runtime import Engine
from engine.stores import MemoryStore, SQLiteStore
from engine.stores.base import SessionStore

ROOT = Path(__file__).resolve().parents[1]
HOMESERVER = "https://matrix.bench.invalid"
SERVER_NAME = "bench.invalid"
BOT = f"@hotline:{SERVER_NAME}"
DEVICE = "BENCHDEVICE"
FIRST_USER = 1
TS = 1_750_000_000_000

HOTLINE_SQLITE = "matrix_hotline_sqlite"
HOTLINE_MEMORY = "matrix_hotline_memory"
ECHO = "nio_echo"
ORDER = (HOTLINE_SQLITE, HOTLINE_MEMORY, ECHO)


def people(count: int) -> list[int]:
    return [FIRST_USER + i for i in range(count)]


def user_id(person: int) -> str:
    return f"@person{person}:{SERVER_NAME}"


def room_id(person: int) -> str:
    return f"!room{person}:{SERVER_NAME}"


def typed_text(person: int, index: int) -> str:
    """What `person` writes for the script's `index`-th move, as a Matrix person would."""
    move = SCRIPT[index]
    if move.press is not None:
        return str(move.press + 1)  # "5": the fifth button of the bot's latest question
    assert move.text is not None
    text = move.text[language(person)]
    return "!" + text[1:] if text.startswith("/") else text


# --------------------------------------------------------------------------- the homeserver


class Homeserver:
    """The homeserver's side, in memory: logs the bot in, hands out the queued syncs (each
    carrying the bot's own messages since the last one, as a real server does), keeps
    every message the bot sends (per room: the transcript). One per contender run."""

    def __init__(self) -> None:
        # Syncs to hand out, each with the future that is done once it was handled.
        self._syncs: asyncio.Queue[tuple[dict[str, Any], asyncio.Future[None]]] = asyncio.Queue()
        self._handed_out: asyncio.Future[None] | None = None
        self._batch = 0
        self._event = 0
        self.own_events: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
        self.transcripts: defaultdict[str, list[str]] = defaultdict(list)
        self.sent: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self.stub_seconds = 0.0

    # ------------------------------------------------------------------ the people's side

    def initial_sync(self, persons: Sequence[int]) -> dict[str, Any]:
        """The first sync: each person's direct room with both members, nothing said yet."""
        rooms = {}
        for person in persons:
            members = [self._member(BOT), self._member(user_id(person))]
            rooms[room_id(person)] = {
                "timeline": {"events": [], "limited": False, "prev_batch": "p0"},
                "state": {"events": members},
            }
        return self._sync(rooms)

    def round_sync(self, persons: Sequence[int], index: int) -> dict[str, Any]:
        """The sync bringing every person's `index`-th message (after the bot's own)."""
        rooms = {}
        for person in persons:
            room = room_id(person)
            events = self.own_events.pop(room, [])
            self._event += 1
            events.append(
                {
                    "type": "m.room.message",
                    "event_id": f"$in{self._event}",
                    "sender": user_id(person),
                    "origin_server_ts": TS + self._event,
                    "content": {"msgtype": "m.text", "body": typed_text(person, index)},
                }
            )
            rooms[room] = {"timeline": {"events": events, "limited": False, "prev_batch": "p"}}
        return self._sync(rooms)

    def _member(self, who: str) -> dict[str, Any]:
        self._event += 1
        return {
            "type": "m.room.member",
            "event_id": f"$member{self._event}",
            "sender": who,
            "state_key": who,
            "origin_server_ts": TS,
            "content": {"membership": "join"},
        }

    def _sync(self, rooms: dict[str, Any]) -> dict[str, Any]:
        self._batch += 1
        return {"next_batch": f"batch{self._batch}", "rooms": {"join": rooms}}

    def push(self, sync: dict[str, Any]) -> asyncio.Future[None]:
        """Queue a sync; the future is done when the client asks for the next one (it has
        handled this one)."""
        handled: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._syncs.put_nowait((sync, handled))
        return handled

    # ------------------------------------------------------------------ the client's side

    async def answer(self, method: str, url: str, data: Any) -> tuple[int, bytes]:
        path = urlsplit(url).path
        if path.endswith("/sync"):
            self.calls["sync"] += 1
            # Asking again means the sync handed out last was handled.
            if self._handed_out is not None and not self._handed_out.done():
                self._handed_out.set_result(None)
            body, self._handed_out = await self._syncs.get()
            started = time.perf_counter()
            encoded = json.dumps(body).encode()  # as it comes off the wire: nio parses it
            self.stub_seconds += time.perf_counter() - started
            return 200, encoded
        started = time.perf_counter()
        status, result = self._answer(method, path, data)
        encoded = json.dumps(result).encode()
        self.stub_seconds += time.perf_counter() - started
        return status, encoded

    def _answer(self, method: str, path: str, data: Any) -> tuple[int, dict[str, Any]]:
        if "/send/" in path and method == "PUT":
            self.calls["send"] += 1
            parts = path.split("/")
            room = unquote(parts[parts.index("rooms") + 1])
            content = json.loads(data)
            self._event += 1
            event_id = f"$out{self._event}"
            self.own_events[room].append(
                {
                    "type": "m.room.message",
                    "event_id": event_id,
                    "sender": BOT,
                    "origin_server_ts": TS + self._event,
                    "content": content,
                }
            )
            self.sent[room] += 1
            self.transcripts[room].append(str(content.get("body")))
            return 200, {"event_id": event_id}
        if path.endswith("/media/config"):
            return 200, {"m.upload.size": 50 * 1024 * 1024}
        if path.endswith("/upload") and method == "POST":
            self.calls["upload"] += 1
            self._event += 1
            return 200, {"content_uri": f"mxc://{SERVER_NAME}/upload{self._event}"}
        if path.endswith("/login"):
            return 200, {"user_id": BOT, "access_token": "bench-token", "device_id": DEVICE}
        if path.endswith("/account/whoami"):
            return 200, {"user_id": BOT, "device_id": DEVICE}
        if "/join/" in path:
            return 200, {"room_id": unquote(path.rsplit("/", 1)[1])}
        self.calls["other"] += 1
        return 404, {"errcode": "M_UNRECOGNIZED", "error": "not in the benchmark"}


class StubResponse:
    """What nio reads of an aiohttp `ClientResponse`."""

    __slots__ = ("_body", "content_disposition", "content_type", "headers", "status")

    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self._body = body
        self.content_type = "application/json"
        self.content_disposition = None
        self.headers: dict[str, str] = {"Content-Type": "application/json"}

    async def json(self, **_: Any) -> Any:
        return json.loads(self._body)

    async def text(self) -> str:
        return self._body.decode()

    async def read(self) -> bytes:
        return self._body

    def release(self) -> None:
        return None


class StubSession:
    """nio's transport: an aiohttp `ClientSession` stand-in answered by a `Homeserver`."""

    def __init__(self, server: Homeserver) -> None:
        self.server = server
        self.closed = False

    async def request(self, method: str, url: str, data: Any = None, **_: Any) -> StubResponse:
        status, body = await self.server.answer(method, url, data)
        return StubResponse(status, body)

    async def close(self) -> None:
        self.closed = True


def stub_client(server: Homeserver) -> type[AsyncClient]:
    """An `AsyncClient` whose transport is `server`."""

    class StubbedClient(AsyncClient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.client_session = StubSession(server)  # type: ignore[assignment]

    return StubbedClient


@contextlib.contextmanager
def stubbed_transport(server: Homeserver) -> Iterator[None]:
    """While active, the Matrix channel builds its client on `server`. The channel makes
    its `AsyncClient` inside `start()` and logs in at once, so there is no other place to
    hand it a transport: the module's name is swapped, and put back."""
    original = matrix_channel.AsyncClient
    matrix_channel.AsyncClient = stub_client(server)  # type: ignore[misc]
    try:
        yield
    finally:
        matrix_channel.AsyncClient = original  # type: ignore[misc]


# --------------------------------------------------------------------------- contenders


class Contender(ABC):
    name: str

    def __init__(self, server: Homeserver) -> None:
        self.server = server

    @abstractmethod
    async def start(self, first: dict[str, Any]) -> None:
        """Start, and handle the initial sync `first`."""

    async def feed(self, sync: dict[str, Any]) -> None:
        """One round: the sync, handled."""
        await self.server.push(sync)

    @abstractmethod
    async def stop(self) -> None: ...


class Hotline(Contender):
    """`hotline serve`'s Matrix side: channel, hub, engine, store (adapters/serve/run.py)."""

    def __init__(
        self,
        name: str,
        server: Homeserver,
        flows: FlowSet,
        folder: Path,
        store: SessionStore,
        keys: SessionKeys | None,
    ) -> None:
        super().__init__(server)
        self.name = name
        self.store = store
        config = MatrixConfig.model_validate(
            {
                "homeserver": HOMESERVER,
                "user_id": BOT,
                "store_dir": str(folder / f"matrix-{name}"),
                "encryption": "off",
                "msgtype": "notice",
            }
        )
        self.channel = MatrixChannel(config, Secrets(password="bench-password"))
        self.channel.bind(flows)
        engine = Engine(flows, documents=PlaceholderDocuments(), keys=keys)
        self.hub = Hub(engine, store, {self.channel.name: self.channel})

    async def start(self, first: dict[str, Any]) -> None:
        handled = self.server.push(first)
        with stubbed_transport(self.server):
            await self.channel.start(self.hub.deliver)
        await self.hub.start()
        await handled

    async def stop(self) -> None:
        # The channel waits for the sync in progress; the long poll it is in is cancelled.
        await self.channel.stop()
        await self.hub.stop()
        self.store.close()


class NioEcho(Contender):
    """A bare nio bot: `sync_forever` and one callback that sends each text back."""

    name = ECHO

    def __init__(self, server: Homeserver) -> None:
        super().__init__(server)
        config = AsyncClientConfig(encryption_enabled=False, store_sync_tokens=False)
        self.client = stub_client(server)(HOMESERVER, BOT, config=config)
        self.client.restore_login(BOT, DEVICE, "bench-token")
        self.client.add_event_callback(self.echo, RoomMessageText)  # type: ignore[arg-type]
        self._task: asyncio.Task[None] | None = None

    async def echo(self, room: MatrixRoom, event: RoomMessageText) -> None:
        if event.sender == self.client.user_id:
            return
        content = {"msgtype": "m.notice", "body": event.body}
        await self.client.room_send(room.room_id, "m.room.message", content)

    async def start(self, first: dict[str, Any]) -> None:
        handled = self.server.push(first)
        self._task = asyncio.create_task(self.client.sync_forever(timeout=30_000, full_state=True))
        await handled

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.client.close()


# --------------------------------------------------------------------------- driving


async def drive(contender: Contender, persons: Sequence[int]) -> dict[str, float]:
    """Every person's messages, round by round; wall and CPU seconds of the timed part."""
    server = contender.server
    seconds = cpu_seconds = stub = 0.0
    await contender.start(server.initial_sync(persons))
    try:
        for index in range(len(SCRIPT)):
            sync = server.round_sync(persons, index)
            before = [server.sent[room_id(p)] for p in persons]
            stub_before = server.stub_seconds
            cpu, wall = time.process_time(), time.perf_counter()
            await contender.feed(sync)
            seconds += time.perf_counter() - wall
            cpu_seconds += time.process_time() - cpu
            stub += server.stub_seconds - stub_before
            for person, count in zip(persons, before, strict=True):
                if server.sent[room_id(person)] <= count:
                    raise AssertionError(
                        f"{contender.name}: message {index + 1} of person {person} got no reply"
                    )
    finally:
        await contender.stop()
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "stub_seconds": stub}


def new_hotline(
    name: str, server: Homeserver, flows: FlowSet, folder: Path, durable: bool
) -> Hotline:
    if not durable:
        return Hotline(name, server, flows, folder, MemoryStore(), None)
    keys = SessionKeys(os.urandom(32))
    store = SQLiteStore(
        folder / f"sessions-{name}.sqlite3",
        sealer=Sealer([os.urandom(32)]),
        identity=keys.fingerprint(),
        synchronous="NORMAL",
    )
    return Hotline(name, server, flows, folder, store, keys)


def _checked(name: str, server: Homeserver, persons: Sequence[int], expected: dict[str, str]):
    for person in persons:
        room = room_id(person)
        if name == ECHO:
            if server.sent[room] != len(SCRIPT):
                raise AssertionError(f"{name}: person {person} got {server.sent[room]} replies")
        elif "\n".join(server.transcripts[room]) != expected[language(person)]:
            raise AssertionError(f"{name}: person {person} heard something else than the flow")


async def _measure(
    flows_dir: Path, users: int, reps: int, progress: Callable[[str], None]
) -> dict[str, Any]:
    flows = load_flows(flows_dir)
    persons = people(users)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in ORDER}
    with tempfile.TemporaryDirectory(prefix="hotline-bench-matrix-") as tmp:
        # The check run: one person per language; what they hear is what everyone must.
        server = Homeserver()
        few = people(2)
        await drive(new_hotline("check", server, flows, Path(tmp), False), few)
        expected = {language(p): "\n".join(server.transcripts[room_id(p)]) for p in few}
        for rep in range(reps):
            for name in ORDER:
                server = Homeserver()
                folder = Path(tmp) / f"{name}-{rep}"
                folder.mkdir()
                contender: Contender = (
                    NioEcho(server)
                    if name == ECHO
                    else new_hotline(name, server, flows, folder, name == HOTLINE_SQLITE)
                )
                gc.collect()
                runs[name].append(await drive(contender, persons))
                _checked(name, server, persons, expected)
            updates = users * len(SCRIPT)
            progress(
                f"  rep {rep + 1}/{reps}: "
                + ", ".join(f"{n} {runs[n][-1]['seconds'] / updates * 1e6:,.0f} µs" for n in ORDER)
            )
    return {name: _summary(runs[name], users * len(SCRIPT)) for name in ORDER}


def _summary(runs: list[dict[str, float]], updates: int) -> dict[str, Any]:
    best = min(r["seconds"] for r in runs)
    best_cpu = min(r["cpu_seconds"] for r in runs)
    return {
        "updates_per_rep": updates,
        "reps": len(runs),
        "seconds": [round(r["seconds"], 4) for r in runs],
        "cpu_seconds": [round(r["cpu_seconds"], 4) for r in runs],
        "us_per_update": round(best / updates * 1e6, 1),
        "cpu_us_per_update": round(best_cpu / updates * 1e6, 1),
        "updates_per_s": round(updates / best, 1),
        "cpu_updates_per_s": round(updates / best_cpu, 1),
        "stub_us_per_update": round(min(r["stub_seconds"] for r in runs) / updates * 1e6, 1),
    }


def measure(
    flows_dir: Path = ROOT / "flows",
    users: int = 100,
    reps: int = 3,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Per contender the best of `reps` runs, and the hotline's cost ratios to the echo."""
    figures = asyncio.run(_measure(flows_dir, users, reps, progress))
    echo = figures[ECHO]
    ratios = {
        name: {
            "ratio": round(figures[name]["us_per_update"] / echo["us_per_update"], 3),
            "cpu_ratio": round(figures[name]["cpu_us_per_update"] / echo["cpu_us_per_update"], 3),
        }
        for name in (HOTLINE_SQLITE, HOTLINE_MEMORY)
    }
    return {
        "users": users,
        "updates_per_person": len(SCRIPT),
        "flow": "detained_relative (+ collect_contacts)",
        "contenders": figures,
        "ratios_to_echo": ratios,
    }


if __name__ == "__main__":
    import pprint

    pprint.pprint(measure(users=20, reps=1, progress=print))
