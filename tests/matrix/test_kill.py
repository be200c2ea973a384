"""A real `hotline serve` on Matrix killed with SIGKILL in the middle of a burst, then
restarted on the same stores: every message is answered, in order, and not one reply twice.

Every person talks to tests/data/counter, which answers each number with that number: a
person's replies show at once whether each message was handled, once, in order. Telegram
can repeat the one reply in flight at the kill (tests/test_workers.py); Matrix cannot: the
restarted bot is the same device, and a reply it sends again carries the same transaction
id (made from the hub's outbox key), which the homeserver answers with the first event.
The rooms are read back through the client API (/messages), as each person, from the
room's first event: what the homeserver holds, not what one sync happened to carry.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from matrix_support import ROOT, account, person, run, serve_config
from nio import MessageDirection, RoomMessagesResponse

from adapters.matrix.convert import split_body
from adapters.matrix.replay import MatrixPerson
from adapters.matrix.synapse_launcher import LocalSynapse

pytestmark = pytest.mark.slow

T = TypeVar("T")

FLOWS = ROOT / "tests" / "data" / "counter"
PEOPLE = 24
SCRIPT = ["count", *(str(n) for n in range(1, 10))]
# The greeting when the bot joins, then one reply to each message of the script.
EXPECTED = ["Menu", "Number?", *(f"Got {n}. Next?" for n in range(1, 10))]


class Serve:
    """`hotline serve --config FILE` as a subprocess; both runs log to one file."""

    def __init__(self, config: Path, env: dict[str, str], log: Path) -> None:
        self.config, self.env, self.log = config, env, log
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "adapters.cli",
                "serve",
                "--config",
                str(self.config),
                cwd=self.config.parent,
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> int | None:
        proc = self.proc
        if proc is None:
            return None
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        return proc.returncode

    async def while_alive(self, work: Awaitable[T]) -> T:
        """`work`'s result, unless the bot exits first (its log then says why)."""
        assert self.proc is not None
        task = asyncio.ensure_future(work)
        exited = asyncio.ensure_future(self.proc.wait())
        await asyncio.wait({task, exited}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            task.cancel()
            self.check_alive()
        exited.cancel()
        return task.result()

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.returncode is not None:
            raise AssertionError(f"hotline serve exited ({self.proc.returncode}):\n{self.text()}")

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-6000:]


async def replies(someone: MatrixPerson, bot_id: str) -> list[str]:
    """The bot's messages in the person's room, oldest first, read with /messages from the
    room's very beginning (not the person's sync: every event the room holds)."""
    room = someone.room_id
    assert room is not None
    only_the_bot = {"types": ["m.room.message"], "senders": [bot_id]}
    texts: list[str] = []
    token: str | None = None
    while True:
        page = await someone.client.room_messages(
            room,
            start=token,
            direction=MessageDirection.front,
            limit=100,
            message_filter=only_the_bot,
        )
        assert isinstance(page, RoomMessagesResponse), page
        texts += [split_body(event.source.get("content", {}))[0] for event in page.chunk]
        if not page.chunk or not page.end:
            return texts
        token = page.end


async def all_replies(people: list[MatrixPerson], bot_id: str) -> list[list[str]]:
    return list(await asyncio.gather(*(replies(p, bot_id) for p in people)))


async def wait_for_replies(
    people: list[MatrixPerson],
    bot_id: str,
    enough: Callable[[list[list[str]]], bool],
    serve: Serve,
    every: float,
    limit: float = 90.0,
) -> list[list[str]]:
    """Everyone's replies, read again and again until `enough` of them arrived."""
    deadline = time.monotonic() + limit
    while True:
        got = await all_replies(people, bot_id)
        if enough(got):
            return got
        serve.check_alive()
        if time.monotonic() > deadline:
            missing = sum(max(0, len(EXPECTED) - len(r)) for r in got)
            raise AssertionError(f"{missing} replies missing after {limit:.0f} s:\n{serve.text()}")
        await asyncio.sleep(every)


def answered(got: list[list[str]]) -> int:
    """How many of the people's messages were answered (the greetings not counted)."""
    return sum(max(0, len(r) - 1) for r in got)


def devices(synapse: LocalSynapse, user_id: str) -> set[str]:
    """The account's devices, as a Synapse administrator lists them."""
    path = f"/_synapse/admin/v2/users/{urllib.parse.quote(user_id)}/devices"
    request = urllib.request.Request(f"{synapse.url}{path}")
    request.add_header("Authorization", f"Bearer {synapse.admin_token}")
    with urllib.request.urlopen(request, timeout=30) as reply:
        return {d["device_id"] for d in json.loads(reply.read())["devices"]}


def test_a_bot_killed_mid_burst_answers_every_message_exactly_once(
    synapse: LocalSynapse, tmp_path: Path
) -> None:
    """SIGKILL while two dozen conversations are mid-way, then a restart on the same
    session store and the same store_dir: every room holds exactly the expected replies, in
    order; nothing lost, and no reply twice, not even the ones in flight at the kill.

    The people write while the bot is stopped, so that it starts on a backlog and the kill
    finds every room in the middle of a step (a reply committed and not sent, or sent and
    not yet dropped from the outbox: resent after the restart). A bot that keeps up with
    people typing is mostly idle between their messages, where a kill tests nothing."""
    bot = account(synapse, "bot")
    config, env = serve_config(synapse, bot, tmp_path, FLOWS, sync_timeout_ms=500)
    serve = Serve(config, env, tmp_path / "serve.log")
    total = PEOPLE * len(SCRIPT)

    async def scenario() -> None:
        async with contextlib.AsyncExitStack() as stack:
            people = [
                await stack.enter_async_context(person(synapse, f"p{n}")) for n in range(PEOPLE)
            ]
            await serve.start()
            stack.push_async_callback(serve.stop)
            # Everyone opens a chat and waits for the greeting: what is written before the
            # bot joined is the past, never answered.
            await asyncio.gather(*(p.open_dm(bot.user_id) for p in people))
            greetings = await serve.while_alive(
                asyncio.gather(*(p.messages(1, timeout=60) for p in people))
            )
            assert all(m.text == "Menu" for (m,) in greetings)
            device_before = devices(synapse, bot.user_id)

            # The bot stops (cleanly); meanwhile everyone writes the whole script, quickly.
            assert await serve.stop() == 0, serve.text()
            for text in SCRIPT:
                await asyncio.gather(*(p.say(text) for p in people))
            # Started again, it has all of it to answer at once: kill it once about a third
            # of the replies (the greetings aside) arrived, in the thick of it.
            await serve.start()
            await wait_for_replies(
                people, bot.user_id, lambda got: answered(got) >= total // 3, serve, every=0.05
            )
            await serve.kill()
            at_kill = [len(r) - 1 for r in await all_replies(people, bot.user_id)]
            assert sum(at_kill) < total, "the bot was done before the kill: kill it sooner"
            await serve.start()
            await wait_for_replies(
                people,
                bot.user_id,
                lambda got: all(len(r) >= len(EXPECTED) for r in got),
                serve,
                every=0.2,
            )
            await asyncio.sleep(1.0)  # a reply sent twice would be in the room by now
            got = await all_replies(people, bot.user_id)
            wrong = [(n, at_kill[n], r) for n, r in enumerate(got) if r != EXPECTED]
            assert not wrong, "\n".join(f"person {n} ({k} at the kill): {r}" for n, k, r in wrong)
            # The restarted bot is the same device (its transaction ids are scoped to it).
            assert devices(synapse, bot.user_id) == device_before
            assert await serve.stop() == 0, serve.text()

    run(scenario())
