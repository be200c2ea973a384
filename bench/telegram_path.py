"""The Telegram path, network stubbed: updates per second through the real adapter.

    python -m bench.run --only telegram [--quick]

Four contenders get the same people doing the same things, with Telegram's side of the wire
answered from memory (`MemoryRequest`, a python-telegram-bot `BaseRequest`):

- *hotline, SQLite*: raw update dicts go to the real `TelegramChannel.submit`
  (`convert.read_update` on the raw dict, the per-chat queues), the `Hub` (as
  `hotline serve` builds it), the `Engine` with pseudonymous keys, a sealed `SQLiteStore`
  (WAL, synchronous=NORMAL, a fresh file), and back through `channel.perform` to PTB's
  `ExtBot` with the `HotlineRateLimiter` (limits off, as for a self-hosted Bot API server)
  and the stub request;
- *hotline, memory*: the same with a `MemoryStore` and no pseudonymous keys;
- *PTB ConversationHandler*: the same flow written by hand (bench/ptb_baselines.py), in a
  PTB `Application`; updates are parsed with `Update.de_json` and put in its update_queue;
- *PTB echo*: the floor of any PTB bot, fed the very update dicts the hotline run got.

The people (`SCRIPT`, 18 updates each, half in Russian, half in English) open the menu,
pick the `detained_relative` topic and go through its form: buttons pressed (callback
queries carrying the callback_data and message the bot really sent: the stub keeps what
each bot sent), names, dates, places and a phone number typed, three answers refused and
asked again, the `collect_contacts` sub-flow, the summary with its document (placeholder
bytes on both sides: documents are benchmarked elsewhere) and the last button.
All people's n-th updates are handed over at once, then the next round is built from what
the bots answered. Only the handing over until every update was handled is timed (wall:
`perf_counter`, CPU: `process_time`); building the updates and the checks are not.

Nothing fast-but-broken can win: after every round each person must have got at least one
new message, and after every run each person's transcript (texts, buttons, documents) must
be exactly what the check run heard from the hotline engine; the hand-written bot must say
exactly the same, message for message; the echo must have sent one message per update.
"""

from __future__ import annotations

import asyncio
import cProfile
import datetime as dt
import gc
import json
import os
import tempfile
import time
from abc import ABC, abstractmethod
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from telegram import Update
from telegram.request import BaseRequest, RequestData

from adapters.serve.hub import Hub
from adapters.telegram.channel import TelegramChannel
from adapters.telegram.config import TelegramConfig
from bench.ptb_baselines import (
    PLACEHOLDER_DOCUMENT,
    PtbApplication,
    Texts,
    conversation_application,
    echo_application,
    load_texts,
)
from engine.documents import DocumentRenderer
from engine.loader import load_folder
from engine.model import FlowSet
from engine.privacy import Sealer, SessionKeys
from engine.runtime import Engine
from engine.stores import MemoryStore, SQLiteStore
from engine.stores.base import SessionStore

ROOT = Path(__file__).resolve().parents[1]
BOT_ID = 5_000_000_001
TOKEN = f"{BOT_ID}:BenchBenchBenchBenchBenchBenchBench1"
FIRST_USER = 700_000_000
DATE = 1_750_000_000
LANGUAGES = ("ru", "en")
BOT_USER = {
    "id": BOT_ID,
    "is_bot": True,
    "first_name": "Hotline bench",
    "username": "hotline_bench_bot",
    "can_join_groups": False,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
# As for a self-hosted Bot API server: no flood limits, but the limiter stays in the path.
NO_LIMITS = {"overall_per_second": 0, "per_chat_per_second": 0, "group_per_minute": 0}

# Targets (cost per update, by wall-clock time).
TARGET_SQLITE_VS_ECHO = 1.5
TARGET_MEMORY_VS_CONVERSATION = 1.1


# --------------------------------------------------------------------------- the people


@dataclass(frozen=True, slots=True)
class Move:
    """One thing a person does: type `text[language]`, or press button `press` (0-based)
    of the keyboard on the bot's latest message that has one."""

    text: Mapping[str, str] | None = None
    press: int | None = None


def _typed(en: str, ru: str | None = None) -> Move:
    return Move(text={"en": en, "ru": en if ru is None else ru})


def _press(index: int) -> Move:
    return Move(press=index)


SCRIPT: tuple[Move, ...] = (
    _typed("/start"),
    _press(4),  # the menu's fifth topic: detained_relative
    _press(0),  # Start
    _press(0),  # Son
    _typed("Ivan", "Иван"),  # too short: refused, asked again
    _typed("Ivanov Ivan Ivanovich", "Иванов Иван Иванович"),
    _typed("31.02.2004"),  # no such date: refused
    _typed("15.03.2001"),
    _typed("A basement near the front line", "Подвал в посёлке у линии фронта"),
    _typed("14.02.2025"),
    _typed("unit 12345", "в/ч 12345"),
    _typed(
        "He refused to go into combat; his commander told us by phone.",
        "Отказался идти в бой, нам сообщил его командир по телефону.",
    ),
    _typed("Ivanova Maria Petrovna", "Иванова Мария Петровна"),
    _press(0),  # Leave a phone number
    _typed("12345"),  # not a phone number: refused
    _typed("+7 900 123-45-67"),
    _press(1),  # No e-mail: the summary, its document and the last question
    _press(1),  # That's all for now
)


def user_ids(count: int) -> list[int]:
    return [FIRST_USER + i for i in range(count)]


def language(user: int) -> str:
    return LANGUAGES[user % len(LANGUAGES)]


# --------------------------------------------------------------------------- Telegram's side


class BotApi:
    """Telegram's side of the wire, in memory: answers the bot's calls, keeps what it sent
    to each chat (its texts, buttons and documents: the transcript), and makes the updates
    a person's moves produce. One per contender run."""

    def __init__(self) -> None:
        self.update_id = 0
        self._message_ids: dict[int, int] = {}
        # chat -> the bot's latest message that still shows an inline keyboard
        self.keyboards: dict[int, dict[str, Any]] = {}
        self.transcripts: defaultdict[int, list[str]] = defaultdict(list)
        self.sent: Counter[int] = Counter()  # chat -> messages the bot sent there
        self.calls: Counter[str] = Counter()  # Bot API method -> calls
        self.stub_seconds = 0.0  # time spent in here answering (the "server"), not the bot's

    def _next_id(self, chat: int) -> int:
        value = self._message_ids.get(chat, 0) + 1
        self._message_ids[chat] = value
        return value

    # ------------------------------------------------------------------ the person's side

    def update_for(self, user: int, move: Move) -> dict[str, Any]:
        """The raw update (as Telegram would send it, a fresh dict) for `move` by `user`."""
        self.update_id += 1
        person = {"id": user, "is_bot": False, "first_name": "Person"}
        person["language_code"] = language(user)
        if move.text is not None:
            text = move.text[language(user)]
            message: dict[str, Any] = {
                "message_id": self._next_id(user),
                "date": DATE,
                "chat": {"id": user, "type": "private", "first_name": "Person"},
                "from": person,
                "text": text,
            }
            if text.startswith("/"):
                command = text.split(" ", 1)[0]
                message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
            raw = {"update_id": self.update_id, "message": message}
        else:
            assert move.press is not None
            shown = self.keyboards.get(user)
            if shown is None:
                raise AssertionError(f"user {user}: no keyboard to press (the bot showed none)")
            row = shown["reply_markup"]["inline_keyboard"][move.press]
            raw = {
                "update_id": self.update_id,
                "callback_query": {
                    "id": str(self.update_id),
                    "from": person,
                    "chat_instance": f"chat{user}",
                    "data": row[0]["callback_data"],
                    "message": shown,
                },
            }
        # Through JSON, as it arrives: nothing shared with what the stub keeps.
        parsed: dict[str, Any] = json.loads(json.dumps(raw))
        return parsed

    # ------------------------------------------------------------------ the bot's side

    async def long_poll(self) -> None:
        """No update ever comes this way (the benchmark hands them to the bot): wait until
        the poll is cancelled, as the channel's stop does."""
        await asyncio.get_running_loop().create_future()

    def answer(self, method: str, data: RequestData | None) -> object:
        self.calls[method] += 1
        params = data.parameters if data is not None else {}
        if method in ("sendMessage", "sendDocument"):
            chat = int(params["chat_id"])
            message: dict[str, Any] = {
                "message_id": self._next_id(chat),
                "date": DATE,
                "chat": {"id": chat, "type": "private", "first_name": "Person"},
                "from": BOT_USER,
            }
            if method == "sendMessage":
                message["text"] = params["text"]
                line = str(params["text"])
                markup = params.get("reply_markup")
                if isinstance(markup, dict):
                    message["reply_markup"] = markup
                    self.keyboards[chat] = message
                    labels = [row[0]["text"] for row in markup["inline_keyboard"]]
                    line += " [" + " | ".join(labels) + "]"
            else:
                assert data is not None
                name = data.multipart_data["document"][0]
                message["document"] = {
                    "file_id": f"doc{message['message_id']}",
                    "file_unique_id": f"udoc{message['message_id']}",
                    "file_name": name,
                }
                line = f"<document {name}>"
            self.sent[chat] += 1
            self.transcripts[chat].append(line)
            return message
        if method == "editMessageReplyMarkup":
            chat = int(params["chat_id"])
            shown = self.keyboards.get(chat)
            if shown is not None and shown["message_id"] == params["message_id"]:
                del self.keyboards[chat]
                return {k: v for k, v in shown.items() if k != "reply_markup"}
            return True
        if method == "getMe":
            return BOT_USER
        return True  # answerCallbackQuery, setMyCommands, deleteWebhook, ...


class MemoryRequest(BaseRequest):
    """PTB's single HTTP seam, answered by a `BotApi` instead of the network. It encodes the
    request's parameters as an HTTP request layer would (PTB's `json_parameters`, and the
    multipart body of a file) and returns the JSON bytes Telegram would; a long poll
    (getUpdates) waits until it is cancelled."""

    __slots__ = ("api",)

    def __init__(self, api: BotApi) -> None:
        self.api = api

    @property
    def read_timeout(self) -> float | None:
        return None

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: object = None,
        write_timeout: object = None,
        connect_timeout: object = None,
        pool_timeout: object = None,
    ) -> tuple[int, bytes]:
        endpoint = url[url.rfind("/") + 1 :]
        if endpoint == "getUpdates":
            await self.api.long_poll()
            return 200, b'{"ok":true,"result":[]}'
        if request_data is not None:
            # What an HTTP layer must do with every request (HTTPXRequest does the same).
            if request_data.contains_files:
                request_data.multipart_data  # noqa: B018 - encoding it is the point
            request_data.json_parameters  # noqa: B018
        started = time.perf_counter()
        body = json.dumps({"ok": True, "result": self.api.answer(endpoint, request_data)})
        encoded = body.encode()
        self.api.stub_seconds += time.perf_counter() - started
        return 200, encoded


# --------------------------------------------------------------------------- contenders


class PlaceholderDocuments(DocumentRenderer):
    """Documents are benchmarked elsewhere: both bots send the same placeholder bytes."""

    def render(
        self, template: str, answers: Mapping[str, object], language: str, today: dt.date
    ) -> bytes:
        return PLACEHOLDER_DOCUMENT


class Contender(ABC):
    """One bot under test: started and stopped untimed; `feed` is the timed part."""

    name: str

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def feed(self, raws: list[dict[str, Any]]) -> None:
        """Hand over these updates; return once every one of them was handled."""

    @abstractmethod
    async def stop(self) -> None: ...


class Hotline(Contender):
    """The Telegram channel, hub, engine and store, built as `hotline serve` builds them
    (adapters/serve/run.py), in polling mode on the stub (the long poll just waits)."""

    def __init__(
        self,
        name: str,
        api: BotApi,
        flows: FlowSet,
        store: SessionStore,
        keys: SessionKeys | None,
    ) -> None:
        self.name = name
        self.store = store
        config = TelegramConfig.model_validate({"rate_limit": NO_LIMITS})
        self.channel = TelegramChannel(
            config, TOKEN, request=MemoryRequest(api), updates_request=MemoryRequest(api)
        )
        self.channel.bind(flows)
        engine = Engine(flows, documents=PlaceholderDocuments(), keys=keys)
        self.hub = Hub(engine, store, {self.channel.name: self.channel})

    async def start(self) -> None:
        await self.channel.start(self.hub.deliver)
        await self.hub.start()  # the outbox's retrier (idle here: no send fails)

    async def feed(self, raws: list[dict[str, Any]]) -> None:
        submit = self.channel.submit
        await asyncio.gather(*[submit(raw) for raw in raws])

    async def stop(self) -> None:
        await self.channel.stop()
        await self.hub.stop()
        self.store.close()


class Ptb(Contender):
    """A PTB Application: each raw update is parsed (`Update.de_json`, as PTB's Updater
    does) and put in the update_queue; done when the queue has been worked off."""

    def __init__(self, name: str, app: PtbApplication) -> None:
        self.name = name
        self.app = app

    async def start(self) -> None:
        await self.app.initialize()
        await self.app.start()

    async def feed(self, raws: list[dict[str, Any]]) -> None:
        bot, queue = self.app.bot, self.app.update_queue
        for raw in raws:
            queue.put_nowait(Update.de_json(raw, bot))
        await queue.join()

    async def stop(self) -> None:
        await self.app.stop()
        await self.app.shutdown()


# --------------------------------------------------------------------------- driving


@dataclass(slots=True)
class Run:
    """One contender's run: how many updates, and how long handing them over took."""

    name: str
    updates: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    stub_seconds: float = 0.0
    calls: dict[str, int] = field(default_factory=dict)


async def drive(
    contender: Contender,
    api: BotApi,
    users: Sequence[int],
    replay: Sequence[Sequence[str]] | None = None,
    record: list[list[str]] | None = None,
    profiler: cProfile.Profile | None = None,
) -> Run:
    """Every person does the script's moves, round by round (all their n-th updates at
    once); or, with `replay`, the recorded updates are handed over instead. `record`
    receives each round's updates (JSON); `profiler`, if given, runs only while timed."""
    run = Run(contender.name)
    await contender.start()
    try:
        for index, move in enumerate(SCRIPT):
            if replay is not None:
                raws = [json.loads(text) for text in replay[index]]
            else:
                raws = [api.update_for(user, move) for user in users]
            if record is not None:
                record.append([json.dumps(raw) for raw in raws])
            before = [api.sent[user] for user in users]
            stub_before = api.stub_seconds
            if profiler is not None:
                profiler.enable()
            cpu, wall = time.process_time(), time.perf_counter()
            await contender.feed(raws)
            run.seconds += time.perf_counter() - wall
            run.cpu_seconds += time.process_time() - cpu
            if profiler is not None:
                profiler.disable()
            run.stub_seconds += api.stub_seconds - stub_before
            run.updates += len(raws)
            for user, count in zip(users, before, strict=True):
                if api.sent[user] <= count:
                    raise AssertionError(
                        f"{contender.name}: update {index + 1} of user {user} got no reply"
                    )
    finally:
        await contender.stop()
    run.calls = dict(api.calls)
    return run


def new_hotline(
    name: str, api: BotApi, flows: FlowSet, folder: Path | None, tag: str = ""
) -> Hotline:
    """`folder` given: the durable production store (sealed SQLite, pseudonymous keys) in a
    fresh file there; else a MemoryStore without keys."""
    if folder is None:
        return Hotline(name, api, flows, MemoryStore(), None)
    keys = SessionKeys(os.urandom(32))
    store = SQLiteStore(
        folder / f"sessions-{name}{tag}.sqlite3",
        sealer=Sealer([os.urandom(32)]),
        identity=keys.fingerprint(),
        synchronous="NORMAL",
    )
    return Hotline(name, api, flows, store, keys)


def load_flows(flows_dir: Path) -> FlowSet:
    flows, report = load_folder(flows_dir)
    if flows is None:
        raise SystemExit(f"{flows_dir} does not load: " + "; ".join(map(str, report.errors[:5])))
    return flows


async def transcripts_of(contender: Contender, api: BotApi, users: Sequence[int]) -> list[str]:
    """What each of `users` heard: one string per user, the messages joined by newlines."""
    await drive(contender, api, users)
    return ["\n".join(api.transcripts[user]) for user in users]


# --------------------------------------------------------------------------- measuring

HOTLINE_SQLITE = "hotline_sqlite"
HOTLINE_MEMORY = "hotline_memory"
CONVERSATION = "ptb_conversation_handler"
ECHO = "ptb_echo"
ORDER = (HOTLINE_SQLITE, HOTLINE_MEMORY, CONVERSATION, ECHO)


def _checked(name: str, api: BotApi, users: Sequence[int], expected: Mapping[str, str]) -> None:
    """Every person heard exactly what the check run heard (for their language); the echo
    sent one message per update."""
    for user in users:
        if name == ECHO:
            if api.sent[user] != len(SCRIPT):
                raise AssertionError(f"{name}: user {user} got {api.sent[user]} replies")
            continue
        heard = "\n".join(api.transcripts[user])
        if heard != expected[language(user)]:
            raise AssertionError(f"{name}: user {user} heard something else than the flow says")


async def _measure(
    flows_dir: Path, users: int, reps: int, progress: Callable[[str], None]
) -> dict[str, Any]:
    flows = load_flows(flows_dir)
    texts: Texts = load_texts(flows_dir)
    people = user_ids(users)
    # The check run: one person per language through the engine, then the hand-written bot
    # must say the same thing, message for message.
    few = user_ids(len(LANGUAGES))
    api = BotApi()
    expected_list = await transcripts_of(new_hotline("check", api, flows, None), api, few)
    expected = {language(u): heard for u, heard in zip(few, expected_list, strict=True)}
    api = BotApi()
    handwritten = await transcripts_of(
        Ptb(CONVERSATION, conversation_application(TOKEN, *requests_for(api), texts)), api, few
    )
    if handwritten != expected_list:
        raise AssertionError("the hand-written ConversationHandler says something else")
    progress(f"  check run: {len(SCRIPT)} updates a person, both bots say the same")

    runs: dict[str, list[Run]] = {name: [] for name in ORDER}
    recorded: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="hotline-bench-telegram-") as tmp:
        for rep in range(reps):
            for name in ORDER:
                api = BotApi()
                contender: Contender
                if name == HOTLINE_SQLITE:
                    contender = new_hotline(name, api, flows, Path(tmp), str(rep))
                elif name == HOTLINE_MEMORY:
                    contender = new_hotline(name, api, flows, None)
                elif name == CONVERSATION:
                    app = conversation_application(TOKEN, *requests_for(api), texts)
                    contender = Ptb(name, app)
                else:
                    contender = Ptb(name, echo_application(TOKEN, *requests_for(api)))
                gc.collect()
                record = recorded if name == HOTLINE_SQLITE and not recorded else None
                run = await drive(
                    contender,
                    api,
                    people,
                    replay=recorded if name == ECHO else None,
                    record=record,
                )
                _checked(name, api, people, expected)
                runs[name].append(run)
            progress(
                f"  rep {rep + 1}/{reps}: "
                + ", ".join(
                    f"{n} {_us(runs[n][-1].seconds, runs[n][-1].updates):,.0f} µs" for n in ORDER
                )
            )
    return {name: _summary(runs[name]) for name in ORDER}


def requests_for(api: BotApi) -> tuple[MemoryRequest, MemoryRequest]:
    return MemoryRequest(api), MemoryRequest(api)


def _us(seconds: float, updates: int) -> float:
    return seconds / updates * 1e6


def _summary(runs: list[Run]) -> dict[str, Any]:
    updates = runs[0].updates
    best = min(r.seconds for r in runs)
    best_cpu = min(r.cpu_seconds for r in runs)
    calls = runs[0].calls
    return {
        "updates_per_rep": updates,
        "reps": len(runs),
        "seconds": [round(r.seconds, 4) for r in runs],
        "cpu_seconds": [round(r.cpu_seconds, 4) for r in runs],
        "us_per_update": round(_us(best, updates), 1),
        "cpu_us_per_update": round(_us(best_cpu, updates), 1),
        "updates_per_s": round(updates / best, 1),
        "cpu_updates_per_s": round(updates / best_cpu, 1),
        # The stub's own time (making Telegram's answers), included in the figures above.
        "stub_us_per_update": round(_us(min(r.stub_seconds for r in runs), updates), 1),
        "bot_api_calls_per_update": {k: round(v / updates, 2) for k, v in sorted(calls.items())},
    }


def measure(
    flows_dir: Path = ROOT / "flows",
    users: int = 100,
    reps: int = 3,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Per contender: the best of `reps` runs of `users` people through `SCRIPT` (see the
    module docstring), and the ratios the targets are about."""
    figures = asyncio.run(_measure(flows_dir, users, reps, progress))
    ratios = {}
    for ratio, (ours, theirs, target) in {
        "sqlite_vs_echo": (HOTLINE_SQLITE, ECHO, TARGET_SQLITE_VS_ECHO),
        "memory_vs_conversation_handler": (
            HOTLINE_MEMORY,
            CONVERSATION,
            TARGET_MEMORY_VS_CONVERSATION,
        ),
    }.items():
        a, b = figures[ours], figures[theirs]
        ratios[ratio] = {
            "ratio": round(a["us_per_update"] / b["us_per_update"], 3),
            "cpu_ratio": round(a["cpu_us_per_update"] / b["cpu_us_per_update"], 3),
            "target": target,
        }
    return {
        "users": users,
        "updates_per_person": len(SCRIPT),
        "flow": "detained_relative (+ collect_contacts)",
        "contenders": figures,
        "ratios": ratios,
    }


if __name__ == "__main__":
    import pprint

    pprint.pprint(measure(users=20, reps=1, progress=print))
