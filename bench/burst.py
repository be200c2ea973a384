"""A burst over real HTTP on loopback: many people start at once, the bot answers everyone.

    python -m bench.burst                    # 2,000 people x 10 messages, polling and
                                             # webhook, then httpx against aiohttp (~90 s)
    python -m bench.burst --no-compare       # only the two bursts (~40 s)
    python -m bench.burst --compare-clients  # only httpx against aiohttp (~50 s)
    python -m bench.burst --quick            # 100 x 5, polling (~5 s)
    python -m bench.burst --users 20 --messages 3 --mode webhook --client httpx --json out.json

The local Bot API server (`adapters.telegram.localserver`, real HTTP, every request checked
against the Bot API spec) runs in this process; the bot is `hotline serve` in a child
process, exactly as deployed: TelegramChannel + Hub + Engine + the encrypted SQLite store
(WAL, synchronous=NORMAL), the example flows, polling or webhook, with the rate limiter set
as for a self-hosted Bot API server (no overall, per-chat or group limit: `rate_limit:
{overall_per_second: 0, per_chat_per_second: 0, group_per_minute: 0}`; a 429 would still be
honoured). Nothing else is changed from the defaults (`concurrency: 16`, 32 connections,
webhook `max_connections: 40`).

The people: each follows the first `messages` events of a conversation planned by
`bench.driver` on the example flows (/start or a typed question, menu buttons, answers to a
form, a few invalid answers, a /back), in Russian or English; only conversations at least
that long are used (the forms), so nobody's conversation ends early. Everyone sends the
first message at the same moment, then each sends the next as soon as the whole answer to
the previous one has arrived (a person presses a button of the last message): a closed loop
with no think time, the worst case of a burst. The replies each event must bring (messages,
as Telegram would carry them) are computed beforehand by the same engine.

Figures, per mode: reply latency (from the update being made available by the server to
the last message of its answer being received by the server; `time.perf_counter`) p50, p99
and max (the JSON also has p90, the mean, and p50/p99 to the *first* message of each
answer); the total time until the last answer; and the CPU seconds of the bot process (from
/proc, all its threads) against that wall time: a ratio near 1.0 means the bot was busy all
along, i.e. the CPU is the limit, not waiting. The server's own CPU (this process) is given
too, to show it was not the bottleneck. Afterwards every person must have received exactly
the expected messages and their stored session (read back from the SQLite file) must be
where the plan says.

`--compare-clients` (issue 10, item 3) measures, for httpx and for
`adapters.telegram.aiohttp_request.AiohttpRequest`: a bare python-telegram-bot echo bot
(`Application`, concurrent updates, one `reply_text` per message: `python -m bench.burst
--echo-bot` is that child) and hotline's own path (`hotline serve`, polling), as updates
per second of wall time and per second of the bot's CPU.

`run(quick)` returns the rows for `bench.run` (keyword arguments of `bench.run.Result`).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import os
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.telegram.convert import MAX_TEXT, split_text
from adapters.telegram.localserver import ChatMessage, LocalBotApiServer
from bench.driver import (
    Plan,
    PlanError,
    SkipDocuments,
    default_scenarios,
    plan_conversation,
    to_inbound,
)
from engine.conversation import Address, InboundKind, SendDocument, SendText
from engine.loader import load_folder
from engine.model import FlowSet
from engine.privacy import KEY_SIZE, Sealer, SessionKeys
from engine.runtime import Engine
from engine.stores import SQLiteStore

ROOT = Path(__file__).resolve().parents[1]
FLOWS = ROOT / "flows"
TARGET_P99_MS = 1000.0
CLIENTS = ("aiohttp", "httpx")
MODES = ("polling", "webhook")
# The rate limiter of a self-hosted Bot API server: none of Telegram's cloud limits.
SELF_HOSTED_RATE_LIMIT = {"overall_per_second": 0, "per_chat_per_second": 0, "group_per_minute": 0}
START_TIMEOUT = 60.0  # seconds for the bot to start and answer the warm-up message
FIRST_USER = 100_000  # chat ids of the simulated people start here


@dataclass(frozen=True, slots=True)
class Settings:
    users: int
    messages: int
    modes: tuple[str, ...]
    client: str
    compare: tuple[int, int] | None  # (users, messages) of the client comparison, or none
    limit: float  # seconds a burst may take before it counts as failed
    overrides: tuple[tuple[str, Any], ...] = ()  # more `telegram:` settings (experiments)


FULL = Settings(2_000, 10, MODES, "aiohttp", (500, 10), 600.0)
QUICK = Settings(100, 5, ("polling",), "aiohttp", None, 120.0)


# --------------------------------------------------------------------------- the people


@dataclass(frozen=True, slots=True)
class Message:
    """One thing a person sends, and how many bot messages its answer is."""

    kind: InboundKind  # TEXT or PRESS
    value: str  # the text, or the button's callback_data
    replies: int


@dataclass(frozen=True, slots=True)
class Script:
    scenario: str
    language: str
    messages: tuple[Message, ...]
    final: tuple[str, str | None, str | None]  # (status, flow, step) after the last one


def telegram_messages(actions: Sequence[object]) -> int:
    """How many messages the Telegram channel sends for these actions (see its `perform`):
    a text in parts of at most 4,096 characters, an empty one only when it has buttons."""
    count = 0
    for action in actions:
        if isinstance(action, SendText):
            if action.text.strip():
                count += len(split_text(action.text, MAX_TEXT))
            elif action.buttons:
                count += 1
        elif isinstance(action, SendDocument):
            count += 1
    return count


def make_scripts(flows: FlowSet, messages: int) -> list[Script]:
    """The scripts people follow: every conversation of the mix with at least `messages`
    events of only texts and presses, cut there. Planned with the engine's real clock, as
    the serving bot runs it, so that date rules take the same branches."""
    engine = Engine(flows, documents=SkipDocuments())
    scripts = []
    for scenario in default_scenarios(flows):
        try:
            plan = plan_conversation(engine, scenario)
        except PlanError:
            continue  # a typed question the router sends elsewhere: not this bench's subject
        events = plan.events[:messages]
        if len(events) < messages or any(
            e.kind not in (InboundKind.TEXT, InboundKind.PRESS) for e in events
        ):
            continue
        scripts.append(script_of(engine, plan, messages))
    if not scripts:
        raise PlanError(f"no conversation of the example flows has {messages} messages")
    return scripts


def script_of(engine: Engine, plan: Plan, messages: int) -> Script:
    """The first `messages` events of `plan`, each with the number of Telegram messages its
    answer is (replayed through `engine`). Texts are sent as planned, with no per-person
    suffix: everyone's answers are alike, and so are their costs."""
    language = plan.scenario.language
    address = Address("telegram", "1")
    session = None
    steps = []
    for planned in plan.events[:messages]:
        outcome = engine.handle(session, to_inbound(planned, address, language))
        session = outcome.session
        steps.append(Message(planned.kind, planned.value, telegram_messages(outcome.actions)))
    final = plan.states[messages - 1]
    return Script(plan.scenario.name, language, tuple(steps), final)


# --------------------------------------------------------------------------- the server


@dataclass(slots=True)
class _Wait:
    due: int  # messages still to come
    future: asyncio.Future[tuple[float, float]]
    first: float = 0.0


class BurstServer(LocalBotApiServer):
    """The local Bot API server, telling when a chat has received the messages it waits
    for. (The server has no public "a message arrived" hook; this wraps the one method
    every bot message goes through, `_bot_message`, called once the request was read and
    checked.)"""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._waits: dict[int, _Wait] = {}
        self.unexpected = 0  # bot messages nobody waited for

    def expect(self, chat_id: int, count: int) -> asyncio.Future[tuple[float, float]]:
        """A future set to the `perf_counter()` times the next message and the `count`-th
        next message to `chat_id` arrive."""
        future: asyncio.Future[tuple[float, float]] = asyncio.get_running_loop().create_future()
        self._waits[chat_id] = _Wait(count, future)
        return future

    def _bot_message(
        self, chat_id: Any, markup: dict[str, Any] | None, **fields: Any
    ) -> ChatMessage:
        message = super()._bot_message(chat_id, markup, **fields)
        wait = self._waits.get(chat_id)
        if wait is None:
            self.unexpected += 1
            return message
        now = time.perf_counter()
        wait.first = wait.first or now
        wait.due -= 1
        if wait.due == 0:
            del self._waits[chat_id]
            if not wait.future.done():
                wait.future.set_result((wait.first, now))
        return message


# --------------------------------------------------------------------------- the bot


@dataclass(slots=True)
class BotProcess:
    process: asyncio.subprocess.Process
    log_path: Path
    store_path: Path | None = None
    keys: tuple[bytes, bytes] | None = None  # (sealing key, HMAC secret) of the store

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.process.pid)

    async def stop(self) -> int:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 60)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        return self.process.returncode or 0

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def log_problems(self) -> int:
        """Lines at WARNING or above in the bot's log (a failed send, a retry...)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return 0
        return sum(
            1
            for line in text.splitlines()
            if any(f" {level} " in line for level in ("WARNING", "ERROR", "CRITICAL"))
        )


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and all its threads, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def child_env(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


async def start_serve(
    server: LocalBotApiServer,
    folder: Path,
    *,
    mode: str,
    client: str,
    flows_dir: Path = FLOWS,
    store_path: Path | None = None,
    keys: tuple[bytes, bytes] | None = None,
    overrides: dict[str, Any] | None = None,
) -> BotProcess:
    """`hotline serve` in a child process, against `server`; `overrides` are more keys of
    its `telegram:` section (e.g. `{"concurrency": 64}`)."""
    keys = keys or (os.urandom(KEY_SIZE), os.urandom(KEY_SIZE))
    store_path = store_path or folder / "sessions.sqlite3"
    telegram: dict[str, Any] = {
        "mode": mode,
        "api_url": server.api_url,
        "http_client": client,
        "poll_timeout": 10,
        "rate_limit": SELF_HOSTED_RATE_LIMIT,
    }
    env = {
        "TELEGRAM_BOT_TOKEN": server.token,
        "HOTLINE_KEYS": base64.b64encode(keys[0]).decode(),
        "HOTLINE_KEY_SECRET": base64.b64encode(keys[1]).decode(),
    }
    if mode == "webhook":
        port = free_port()
        telegram["webhook"] = {
            "url": f"http://127.0.0.1:{port}/telegram",
            "listen": "127.0.0.1",
            "port": port,
        }
        env["TELEGRAM_WEBHOOK_SECRET"] = base64.urlsafe_b64encode(os.urandom(24)).decode()
    telegram.update(overrides or {})
    config = {
        "flows": str(flows_dir),
        "store": {"sqlite": str(store_path)},
        "telegram": telegram,
    }
    config_path = folder / f"hotline-{mode}-{client}.yaml"
    # JSON is YAML: no need for a YAML writer.
    config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    log_path = folder / f"serve-{mode}-{client}.log"
    with open(log_path, "wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "adapters.cli",
            "serve",
            "--config",
            str(config_path),
            cwd=ROOT,
            env=child_env(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
        )
    return BotProcess(process, log_path, store_path, keys)


async def start_echo(server: LocalBotApiServer, folder: Path, client: str) -> BotProcess:
    """The bare PTB echo bot (`--echo-bot`) in a child process, against `server`."""
    log_path = folder / f"echo-{client}.log"
    env = {
        "TELEGRAM_BOT_TOKEN": server.token,
        "BURST_API_URL": server.api_url,
        "BURST_HTTP_CLIENT": client,
    }
    with open(log_path, "wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.burst",
            "--echo-bot",
            cwd=ROOT,
            env=child_env(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
        )
    return BotProcess(process, log_path)


def echo_bot_main() -> int:
    """The child of `start_echo`: python-telegram-bot's own Application and Updater (long
    polling), every text answered with itself, updates handled concurrently. No hotline
    code but the request layer."""
    from telegram import Update
    from telegram.ext import Application, ContextTypes, MessageHandler, filters
    from telegram.request import HTTPXRequest

    from adapters.telegram.aiohttp_request import AiohttpRequest

    token = os.environ["TELEGRAM_BOT_TOKEN"]
    api_url = os.environ["BURST_API_URL"]
    make = AiohttpRequest if os.environ.get("BURST_HTTP_CLIENT") == "aiohttp" else HTTPXRequest

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None and update.message.text is not None
        await update.message.reply_text(update.message.text)

    async def main() -> None:
        app = (
            Application.builder()
            .token(token)
            .base_url(f"{api_url}/bot")
            .base_file_url(f"{api_url}/file/bot")
            .request(make(connection_pool_size=32, read_timeout=10, pool_timeout=10))
            .get_updates_request(make(connection_pool_size=2, read_timeout=20))
            .concurrent_updates(True)
            .build()
        )
        app.add_handler(MessageHandler(filters.TEXT, echo))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with app:
            await app.start()
            assert app.updater is not None
            await app.updater.start_polling(poll_interval=0, timeout=10)
            await stop.wait()
            await app.updater.stop()
            await app.stop()

    asyncio.run(main())
    return 0


# --------------------------------------------------------------------------- the burst


@dataclass(slots=True)
class Figures:
    # Seconds from a message to the last, and to the first, message of its answer.
    latencies: list[float] = field(default_factory=list)
    first_replies: list[float] = field(default_factory=list)
    first_sent: float = 0.0
    last_answer: float = 0.0
    sent: int = 0

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        first = sorted(self.first_replies)
        wall = self.last_answer - self.first_sent
        return {
            "messages": self.sent,
            "answered": len(ordered),
            "p50_ms": round(_quantile(ordered, 0.50) * 1000, 1),
            "p90_ms": round(_quantile(ordered, 0.90) * 1000, 1),
            "p99_ms": round(_quantile(ordered, 0.99) * 1000, 1),
            "max_ms": round(ordered[-1] * 1000, 1) if ordered else None,
            "mean_ms": round(statistics.fmean(ordered) * 1000, 1) if ordered else None,
            "first_message_p50_ms": round(_quantile(first, 0.50) * 1000, 1),
            "first_message_p99_ms": round(_quantile(first, 0.99) * 1000, 1),
            "total_seconds": round(wall, 3),
            "messages_per_second": round(self.sent / wall, 1) if wall > 0 else None,
        }


def _quantile(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank quantile (no interpolation: every value is a measured one)."""
    if not ordered:
        return float("nan")
    return ordered[max(1, math.ceil(len(ordered) * q)) - 1]


def _send(server: LocalBotApiServer, user: int, language: str, message: Message) -> int:
    if message.kind is InboundKind.PRESS:
        return server.press(user, data=message.value, language_code=language)
    return server.send_text(user, message.value, language_code=language)


async def person(server: BurstServer, user: int, script: Script, figures: Figures) -> None:
    """One simulated person: each message once the whole answer to the previous arrived."""
    for message in script.messages:
        done = server.expect(user, message.replies) if message.replies else None
        started = time.perf_counter()
        figures.sent += 1
        _send(server, user, script.language, message)
        if done is not None:
            first, answered = await done
            figures.latencies.append(answered - started)
            figures.first_replies.append(first - started)
            figures.last_answer = max(figures.last_answer, answered)


async def warm_up(server: BurstServer, bot: BotProcess) -> None:
    """One person says /start and gets the menu: the bot is up (and, with a webhook, the
    webhook is set) before the clock starts."""
    done = server.expect(1, 1)
    server.send_text(1, "/start")
    waiter = asyncio.ensure_future(bot.process.wait())
    finished, _ = await asyncio.wait(
        {done, waiter}, timeout=START_TIMEOUT, return_when="FIRST_COMPLETED"
    )
    waiter.cancel()
    if done not in finished:
        raise RuntimeError(
            f"the bot did not answer within {START_TIMEOUT:.0f}s "
            f"(exit code {bot.process.returncode}); its log ends with:\n{bot.log_tail()}"
        )


async def drive(
    server: BurstServer,
    bot: BotProcess,
    people: Sequence[tuple[int, Script]],
    limit: float,
) -> tuple[Figures, dict[str, float]]:
    """Everyone starts at once; returns the figures and the CPU seconds of the bot and of
    this process (the server and the people) during the burst."""
    figures = Figures()
    cpu_bot = bot.cpu_seconds()
    cpu_here = time.process_time()
    figures.first_sent = time.perf_counter()
    tasks = [
        asyncio.ensure_future(person(server, user, script, figures)) for user, script in people
    ]
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), limit)
    except TimeoutError:
        raise RuntimeError(
            f"the burst did not finish in {limit:.0f}s: {len(figures.latencies)} of "
            f"{sum(len(s.messages) for _, s in people)} answers; bot log:\n{bot.log_tail()}"
        ) from None
    cpu = {
        "bot": bot.cpu_seconds() - cpu_bot,
        "server": time.process_time() - cpu_here,
    }
    return figures, cpu


def check_answers(server: BurstServer, people: Sequence[tuple[int, Script]]) -> dict[str, int]:
    """Everyone received exactly the messages their script's answers consist of."""
    wrong = 0
    for user, script in people:
        if len(server.received(user)) != sum(m.replies for m in script.messages):
            wrong += 1
    return {"people_with_wrong_message_count": wrong, "unexpected_messages": server.unexpected}


def check_sessions(bot: BotProcess, people: Sequence[tuple[int, Script]]) -> int:
    """How many people's stored sessions are not where their script ends (read from the
    encrypted SQLite file with the bot's keys, after it stopped)."""
    assert bot.store_path is not None and bot.keys is not None
    keys = SessionKeys(bot.keys[1])
    store = SQLiteStore(bot.store_path, sealer=Sealer([bot.keys[0]]), identity=keys.fingerprint())
    try:
        wrong = 0
        for user, script in people:
            session = store.load(keys.key(Address("telegram", str(user))))
            state = (
                ("deleted", None, None)
                if session is None
                else (session.status.value, session.flow, session.step)
            )
            wrong += state != script.final
        return wrong
    finally:
        store.close()


def assign_scripts(scripts: Sequence[Script], users: int) -> list[tuple[int, Script]]:
    return [(FIRST_USER + u, scripts[u % len(scripts)]) for u in range(users)]


async def burst(
    *,
    users: int,
    messages: int,
    mode: str = "polling",
    client: str = "aiohttp",
    kind: str = "hotline",
    flows: FlowSet | None = None,
    limit: float = 600.0,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One burst against a fresh server and a fresh bot; the figures as a dict."""
    if kind == "echo":
        script = Script(
            "echo",
            "en",
            tuple(Message(InboundKind.TEXT, f"echo {i}", 1) for i in range(messages)),
            ("", None, None),
        )
        scripts = [script]
    else:
        if flows is None:
            flows = load_flows()
        scripts = make_scripts(flows, messages)
    people = assign_scripts(scripts, users)
    with tempfile.TemporaryDirectory(prefix="hotline-burst-") as tmp:
        folder = Path(tmp)
        # Updates made here are ours and well-formed: checking each against the spec would
        # only spend this process's CPU. The bot's requests are still all checked.
        async with BurstServer(check_updates=False) as server:
            if kind == "echo":
                bot = await start_echo(server, folder, client)
            else:
                bot = await start_serve(
                    server, folder, mode=mode, client=client, overrides=overrides
                )
            try:
                await warm_up(server, bot)
                figures, cpu = await drive(server, bot, people, limit)
            finally:
                exit_code = await bot.stop()
            answers = check_answers(server, people)
            problems = bot.log_problems()
            wrong_sessions = check_sessions(bot, people) if kind == "hotline" else 0
    result = figures.summary()
    wall = result["total_seconds"]
    result.update(
        {
            "kind": kind,
            "mode": mode,
            "http_client": client,
            "users": users,
            "messages_per_user": messages,
            "bot_cpu_seconds": round(cpu["bot"], 3),
            "bot_cpu_per_wall": round(cpu["bot"] / wall, 3) if wall else None,
            "bot_cpu_ms_per_message": round(cpu["bot"] / figures.sent * 1000, 3),
            "server_cpu_seconds": round(cpu["server"], 3),
            "server_cpu_per_wall": round(cpu["server"] / wall, 3) if wall else None,
            "messages_per_bot_cpu_second": round(figures.sent / cpu["bot"], 1)
            if cpu["bot"]
            else None,
            "bot_exit_code": exit_code,
            "bot_log_warnings": problems,
            "wrong_sessions": wrong_sessions,
            **answers,
            "scripts": sorted({s.scenario for _, s in people}),
            "bot_messages_expected": sum(sum(m.replies for m in s.messages) for _, s in people),
            # Messages whose answer is no message at all: sent, not timed.
            "silent_messages": sum(1 for _, s in people for m in s.messages if not m.replies),
        }
    )
    if kind == "hotline":
        result["config"] = {
            "rate_limit": SELF_HOSTED_RATE_LIMIT,
            "concurrency": 16,
            "connection_pool_size": 32,
            "webhook_max_connections": 40 if mode == "webhook" else None,
            **(overrides or {}),
            "store": "SQLite, WAL, synchronous=NORMAL, encrypted",
        }
    return result


def load_flows(flows_dir: Path = FLOWS) -> FlowSet:
    flows, report = load_folder(flows_dir)
    if flows is None:
        raise SystemExit(f"{flows_dir}: the flows do not load: {report.errors[:3]}")
    return flows


def correct(result: dict[str, Any]) -> bool:
    """Every message that has an answer got all of it, nobody got more, and every stored
    session is where its plan ends."""
    return (
        result["answered"] == result["messages"] - result.get("silent_messages", 0)
        and result["people_with_wrong_message_count"] == 0
        and result["unexpected_messages"] == 0
        and result["wrong_sessions"] == 0
    )


# --------------------------------------------------------------------------- rows


def _log(message: str) -> None:
    print(f"[burst] {message}", file=sys.stderr, flush=True)


def burst_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    mode, client = result["mode"], result["http_client"]
    who = f"{result['users']:,} people x {result['messages_per_user']} messages, {mode}, {client}"
    details = dict(result)
    rows = [
        _row(
            f"burst_{mode}_p99_ms",
            f"burst reply latency p99 ({who})",
            result["p99_ms"],
            "ms",
            TARGET_P99_MS,
            "<",
            details,
        ),
        _row(f"burst_{mode}_p50_ms", f"burst reply latency p50 ({mode})", result["p50_ms"], "ms"),
        _row(f"burst_{mode}_max_ms", f"burst reply latency max ({mode})", result["max_ms"], "ms"),
        _row(
            f"burst_{mode}_total_s",
            f"burst total time, bot CPU in the CPU column ({mode})",
            result["total_seconds"],
            "s",
            cpu_value=result["bot_cpu_seconds"],
        ),
    ]
    if not correct(result):
        # A burst that answered wrongly has no meaningful speed: its row fails, whatever
        # the latency (the details say who got what).
        rows[0]["name"] += " - WRONG ANSWERS"
        rows[0]["target"] = 0.0
    return rows


def compare_rows(result: dict[str, Any]) -> dict[str, Any]:
    what = "bare PTB echo" if result["kind"] == "echo" else "hotline serve, polling"
    return _row(
        f"clients_{result['kind']}_{result['http_client']}",
        f"updates/s, {what}, {result['http_client']} (by bot CPU in the CPU column)",
        result["messages_per_second"],
        "updates/s",
        details=result,
        cpu_value=result["messages_per_bot_cpu_second"],
    )


def _row(
    id_: str,
    name: str,
    value: float,
    unit: str,
    target: float | None = None,
    comparison: str = ">=",
    details: dict[str, Any] | None = None,
    cpu_value: float | None = None,
) -> dict[str, Any]:
    """A row as `bench.run.Result(**row)` takes it."""
    return {
        "id": id_,
        "name": name,
        "value": value,
        "unit": unit,
        "target": target,
        "comparison": comparison,
        "details": details or {},
        "cpu_value": cpu_value,
    }


async def _measure(settings: Settings, compare_only: bool = False) -> list[dict[str, Any]]:
    flows = load_flows()
    rows: list[dict[str, Any]] = []
    if not compare_only:
        for mode in settings.modes:
            _log(f"{settings.users:,} x {settings.messages}, {mode}, {settings.client}...")
            result = await burst(
                users=settings.users,
                messages=settings.messages,
                mode=mode,
                client=settings.client,
                flows=flows,
                limit=settings.limit,
                overrides=dict(settings.overrides),
            )
            _log(
                f"  p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, max "
                f"{result['max_ms']} ms, {result['total_seconds']} s, bot CPU/wall "
                f"{result['bot_cpu_per_wall']}"
            )
            rows += burst_rows(result)
    if settings.compare is not None:
        users, messages = settings.compare
        for kind in ("echo", "hotline"):
            for client in ("httpx", "aiohttp"):
                _log(f"compare: {kind}, {client}, {users} x {messages}...")
                result = await burst(
                    users=users,
                    messages=messages,
                    client=client,
                    kind=kind,
                    flows=flows,
                    limit=settings.limit,
                )
                _log(
                    f"  {result['messages_per_second']} updates/s, "
                    f"{result['bot_cpu_ms_per_message']} ms of bot CPU each"
                )
                rows.append(compare_rows(result))
    return rows


def run(quick: bool) -> list[dict[str, Any]]:
    """The rows for `bench.run` (each: keyword arguments of `bench.run.Result`)."""
    return asyncio.run(_measure(QUICK if quick else FULL))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.burst", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100 people x 5 messages, polling")
    parser.add_argument("--users", type=int)
    parser.add_argument("--messages", type=int)
    parser.add_argument("--mode", choices=(*MODES, "both"))
    parser.add_argument("--client", choices=CLIENTS)
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--compare-clients", action="store_true", help="only the httpx/aiohttp comparison"
    )
    which.add_argument("--no-compare", action="store_true", help="only the bursts")
    parser.add_argument("--compare-size", help="USERSxMESSAGES of the comparison (500x10)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="another `telegram:` setting of the bot (VALUE in JSON), e.g. concurrency=64",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the JSON document here")
    parser.add_argument("--echo-bot", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.echo_bot:
        return echo_bot_main()
    base = QUICK if args.quick else FULL
    modes = base.modes if args.mode is None else (MODES if args.mode == "both" else (args.mode,))
    compare = FULL.compare if args.compare_clients else base.compare
    if args.compare_size:
        users, messages = (int(n) for n in args.compare_size.lower().split("x"))
        compare = (users, messages)
    settings = Settings(
        users=args.users or base.users,
        messages=args.messages or base.messages,
        modes=modes,
        client=args.client or base.client,
        compare=None if args.no_compare else compare,
        limit=base.limit,
        overrides=tuple(_setting(item) for item in args.set),
    )
    rows = asyncio.run(_measure(settings, compare_only=args.compare_clients))
    from bench.run import print_report  # bench.run imports this module: not at the top

    print_report("hotline burst", rows, args.quick, args.json)
    return 0


def _setting(item: str) -> tuple[str, Any]:
    key, _, value = item.partition("=")
    try:
        return key.strip(), json.loads(value)
    except ValueError:
        return key.strip(), value


if __name__ == "__main__":
    sys.exit(main())
