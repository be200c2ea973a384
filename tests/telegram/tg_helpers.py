"""Helpers for the Telegram tests: the local Bot API server, a running bot, `run`.

Every test talks real HTTP on 127.0.0.1 (ephemeral ports) between the real
python-telegram-bot and `adapters.telegram.localserver.LocalBotApiServer`. Tests are plain
functions that run their scenario with `run(...)` (asyncio.run with a time limit), and wait
on events (`server.wait_confirmed`), never on sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from adapters.serve.channel import Deliver
from adapters.serve.hub import Hub
from adapters.telegram.channel import TelegramChannel
from adapters.telegram.config import TelegramConfig
from adapters.telegram.localserver import LocalBotApiServer
from engine.loader import load_folder
from engine.model import FlowSet
from engine.runtime import Engine
from engine.stores import MemoryStore

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T], limit: float = 20.0) -> T:
    """Run one test scenario; a hang fails after `limit` seconds instead of blocking CI."""

    async def bounded() -> T:
        return await asyncio.wait_for(coroutine, limit)

    return asyncio.run(bounded())


def load_example_flows() -> FlowSet:
    loaded, report = load_folder(ROOT / "flows")
    assert loaded is not None, [str(d) for d in report.sorted()]
    return loaded


def make_config(server: LocalBotApiServer, **overrides: Any) -> TelegramConfig:
    """A config for the local server: no flood limits, quick retries."""
    rate_limit = {
        "overall_per_second": 0,
        "per_chat_per_second": 0,
        "group_per_minute": 0,
        "backoff_initial": 0.02,
        "backoff_max": 0.2,
        "max_retries": 3,
        "network_retries": 4,
    }
    rate_limit.update(overrides.pop("rate_limit", {}))
    data: dict[str, Any] = {
        "api_url": server.api_url,
        "poll_timeout": 10,
        "rate_limit": rate_limit,
    }
    data.update(overrides)
    return TelegramConfig.model_validate(data)


@dataclass
class Bot:
    server: LocalBotApiServer
    channel: TelegramChannel
    hub: Hub | None
    store: MemoryStore

    async def say(self, user: int, text: str, language: str | None = "en") -> list[str]:
        """The user types `text`; the texts the bot answered with (once it acknowledged)."""
        before = len(self.server.received(user))
        await self.server.wait_confirmed(self.server.send_text(user, text, language_code=language))
        return [m.text or "" for m in self.server.received(user)[before:]]

    async def press(self, user: int, label: str, language: str | None = "en") -> list[str]:
        before = len(self.server.received(user))
        await self.server.wait_confirmed(self.server.press(user, label, language_code=language))
        return [m.text or "" for m in self.server.received(user)[before:]]


@contextlib.asynccontextmanager
async def running_bot(
    engine: Engine | None = None,
    *,
    deliver: Deliver | None = None,
    webhook_secret: str | None = None,
    server: LocalBotApiServer | None = None,
    **config: Any,
) -> AsyncIterator[Bot]:
    """A local server and a started TelegramChannel; the hub runs `engine` (share one: an
    Engine is immutable, and building one costs about a second) unless `deliver` replaces
    it."""
    own_server = server is None
    server = server or LocalBotApiServer()
    if own_server:
        await server.start()
    try:
        channel = TelegramChannel(
            make_config(server, **config), server.token, webhook_secret=webhook_secret
        )
        store = MemoryStore()
        hub = None
        if deliver is None:
            assert engine is not None
            channel.bind(engine.flows)
            hub = Hub(engine, store, {"telegram": channel})
            deliver = hub.deliver
        await channel.start(deliver)
        try:
            yield Bot(server, channel, hub, store)
        finally:
            await channel.stop()
    finally:
        if own_server:
            await server.stop()


async def serve_process(config: Path, env: dict[str, str]) -> asyncio.subprocess.Process:
    """A real `hotline serve --config config` in a child process, `env` added to ours;
    its output is piped."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "adapters.cli",
        "serve",
        "--config",
        str(config),
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
