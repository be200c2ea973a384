"""Real `hotline serve` processes against the local Bot API server: several workers on one
PostgreSQL behind one webhook, and a bot killed with SIGKILL in the middle of a burst.

Every person talks to tests/data/counter, which answers each number with that number: a
person's replies show at once whether each message was handled, once, in order.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.telegram.localserver import LocalBotApiServer
from engine.privacy import new_key
from tests.pg import PG_URL, fresh_schema

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
FLOWS = ROOT / "tests" / "data" / "counter"
SECRET = "workers-test-secret"
RATE_LIMIT = {  # a self-hosted Bot API server: no flood limits
    "overall_per_second": 0,
    "per_chat_per_second": 0,
    "group_per_minute": 0,
    "backoff_initial": 0.05,
    "backoff_max": 1.0,
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def expected(messages: int) -> list[str]:
    """What a person who types "count", then 1, 2, 3 ... reads back, in order."""
    return ["Number?"] + [f"Got {n}. Next?" for n in range(1, messages)]


def script(messages: int) -> list[str]:
    return ["count"] + [str(n) for n in range(1, messages)]


class Workers:
    """`hotline serve` processes sharing one config and the keys in their environment."""

    def __init__(self, config: dict[str, Any], tmp_path: Path, token: str) -> None:
        self.path = tmp_path / "hotline.yaml"
        self.path.write_text(yaml.safe_dump(config), encoding="utf-8")
        self.env = {
            **os.environ,
            "TELEGRAM_BOT_TOKEN": token,
            "TELEGRAM_WEBHOOK_SECRET": SECRET,
            "HOTLINE_KEYS": new_key(),
            "HOTLINE_KEY_SECRET": new_key(),
        }
        self.logs = tmp_path
        self.procs: list[asyncio.subprocess.Process] = []

    async def start(self, count: int = 1) -> None:
        for _ in range(count):
            log = open(self.logs / f"worker{len(self.procs)}.log", "wb")  # noqa: SIM115
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "adapters.cli",
                "serve",
                "--config",
                str(self.path),
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=log,
            )
            self.procs.append(proc)

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.logs.glob("*.log")))


def texts(server: LocalBotApiServer, user: int) -> list[str]:
    return [m.text or "" for m in server.received(user)]


async def wait_for_replies(
    server: LocalBotApiServer, users: list[int], each: int, limit: float, workers: Workers
) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if all(len(server.received(u)) >= each for u in users):
            return
        for proc in workers.procs:
            if proc.returncode not in (None, -signal.SIGKILL):
                raise AssertionError(f"a worker exited ({proc.returncode}):\n{workers.log_text()}")
        await asyncio.sleep(0.2)
    missing = sum(max(0, each - len(server.received(u))) for u in users)
    raise AssertionError(f"{missing} replies missing after {limit:.0f}s:\n{workers.log_text()}")


def test_four_workers_share_postgres_behind_one_webhook(tmp_path: Path) -> None:
    """4 workers, 1,000 people each sending 20 messages at once, interleaved: everyone's
    conversation is complete and in order, no message lost or answered twice."""
    people, messages = 1000, 20
    users = [10_000 + n for n in range(people)]

    async def scenario() -> None:
        with fresh_schema() as schema:
            async with LocalBotApiServer() as server:
                port = free_port()
                config = {
                    "flows": str(FLOWS),
                    "store": {"url": PG_URL, "schema": schema, "pool_size": 8},
                    "telegram": {
                        "mode": "webhook",
                        "api_url": server.api_url,
                        "rate_limit": RATE_LIMIT,
                        "webhook": {
                            "url": f"http://127.0.0.1:{port}/hook",
                            "port": port,
                            "max_connections": 100,
                            "reuse_port": True,
                        },
                    },
                }
                workers = Workers(config, tmp_path, server.token)
                await workers.start(4)
                try:
                    # Interleaved: everyone's first message, then everyone's second...
                    for text in script(messages):
                        for user in users:
                            server.send_text(user, text)
                    await wait_for_replies(server, users, messages, 600, workers)
                    await asyncio.sleep(1.0)  # a reply sent twice would arrive by now
                finally:
                    await workers.stop()
                wrong = [u for u in users if texts(server, u) != expected(messages)]
                assert not wrong, "\n".join(f"{u}: {texts(server, u)}" for u in wrong[:3])
                assert server.pending_updates == 0
                logs = workers.log_text()
                # All four took part (the kernel spreads connections over them).
                assert logs.count("channel telegram started") == 4
                assert "Got 1" not in logs and "User10" not in logs  # nothing of the people

    asyncio.run(scenario())


def test_a_bot_killed_mid_burst_answers_every_message_once_after_restart(tmp_path: Path) -> None:
    """SIGKILL while hundreds of conversations are mid-way, then a restart on the same
    SQLite store: nothing lost, no step taken twice, every session intact. A reply can be
    sent twice only if it was in flight at the kill (sent, but its outbox row not yet
    dropped): Telegram has no idempotency key; then it is the chat's latest reply."""
    people, messages = 300, 10
    users = [20_000 + n for n in range(people)]

    async def scenario() -> None:
        async with LocalBotApiServer() as server:
            config = {
                "flows": str(FLOWS),
                "store": {"sqlite": str(tmp_path / "hotline.sqlite3")},
                "telegram": {
                    "mode": "polling",
                    "api_url": server.api_url,
                    "poll_timeout": 1,
                    "rate_limit": RATE_LIMIT,
                },
            }
            workers = Workers(config, tmp_path, server.token)
            await workers.start(1)
            for text in script(messages):
                for user in users:
                    server.send_text(user, text)
            total = people * messages
            while sum(len(server.received(u)) for u in users) < total // 3:
                await asyncio.sleep(0.01)
            workers.kill_all()
            await workers.procs[0].wait()
            at_kill = {u: len(server.received(u)) for u in users}
            assert sum(at_kill.values()) < total  # killed in the middle of it
            await workers.start(1)
            try:
                await wait_for_replies(server, users, messages, 300, workers)
                await asyncio.sleep(1.0)
            finally:
                await workers.stop()
            for user in users:
                got = texts(server, user)
                killed = at_kill[user]
                if got != expected(messages):
                    # The one reply allowed twice: the latest one at the moment of the kill.
                    assert killed > 0 and got[killed] == got[killed - 1], (user, killed, got)
                    assert got[:killed] + got[killed + 1 :] == expected(messages), (user, got)

    asyncio.run(scenario())


def test_the_chat_server_and_the_database_going_away_lose_nothing(tmp_path: Path) -> None:
    """Mid-burst the Bot API server goes away for 3 s, then the database drops every
    connection of the bot for 2 s: the bot backs off, holds what it could not commit or
    send, and afterwards every message is answered once, in order."""
    people, messages = 100, 10
    users = [30_000 + n for n in range(people)]

    async def scenario() -> None:
        with fresh_schema() as schema:
            async with LocalBotApiServer() as server:
                config = {
                    "flows": str(FLOWS),
                    "store": {"url": PG_URL, "schema": schema, "pool_size": 4},
                    "telegram": {
                        "mode": "polling",
                        "api_url": server.api_url,
                        "poll_timeout": 1,
                        "rate_limit": RATE_LIMIT,
                    },
                }
                workers = Workers(config, tmp_path, server.token)
                await workers.start(1)
                try:
                    for text in script(messages):
                        for user in users:
                            server.send_text(user, text)
                    total = people * messages

                    async def answered_at_least(share: float) -> None:
                        while sum(len(server.received(u)) for u in users) < total * share:
                            await asyncio.sleep(0.01)

                    await answered_at_least(0.2)
                    server.outage(3.0)
                    await asyncio.sleep(3.0)
                    await answered_at_least(0.5)
                    await cut_database(f"hotline {schema}", seconds=2.0)
                    await wait_for_replies(server, users, messages, 300, workers)
                    await asyncio.sleep(1.0)
                finally:
                    await workers.stop()
                wrong = [u for u in users if texts(server, u) != expected(messages)]
                assert not wrong, "\n".join(f"{u}: {texts(server, u)}" for u in wrong[:3])
                logs = workers.log_text()
                assert "getUpdates failed" in logs  # the outage was seen...
                assert "the store is unavailable" in logs  # ...and so was the database's

    asyncio.run(scenario())


async def cut_database(application: str, seconds: float) -> None:
    """Terminate every connection of `application` again and again for `seconds`, as a
    database restarting or a network partition would."""
    import psycopg

    deadline = time.monotonic() + seconds
    async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as admin:
        while time.monotonic() < deadline:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (application,),
            )
            await asyncio.sleep(0.05)
