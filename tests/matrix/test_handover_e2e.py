"""End to end across channels: a Telegram person (local Bot API server) is served by a
lawyer in a Matrix operators' room (the throwaway Synapse), and the other way round.

The ticket appears in the room; the person's message arrives in the ticket's thread; the
operator's thread reply reaches the person as "Lawyer"; !close returns them to the bot;
/forget during a case edits the person's tickets to say they were deleted.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from matrix_support import KEY, account, person, run
from nio import RoomCreateResponse

from adapters.matrix.channel import MatrixChannel
from adapters.matrix.config import MatrixConfig, Secrets
from adapters.matrix.replay import MatrixPerson, Message
from adapters.matrix.synapse_launcher import LocalSynapse
from adapters.serve.channel import Channel
from adapters.serve.handover import CaseStore, Desk, watch
from adapters.serve.hub import Hub
from adapters.telegram.channel import TelegramChannel
from adapters.telegram.localserver import LocalBotApiServer
from engine.conversation import Address, Status
from engine.model import FlowSet
from engine.runtime import Engine
from engine.stores import MemoryStore
from tests.telegram.tg_helpers import make_config

pytestmark = pytest.mark.slow

PERSON = 5001
OPERATOR, GROUP = 7001, -100123


async def _next(operator: MatrixPerson, room: str, want: str, timeout: float = 30) -> Message:
    """The next message in the room whose body contains `want` (others are passed over)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        left = deadline - asyncio.get_running_loop().time()
        (message,) = await operator.messages(1, timeout=max(left, 0.1), room_id=room)
        if want in str(message.content.get("body", "")):
            return message


async def _received(server: LocalBotApiServer, before: int, timeout: float = 30) -> list[str]:
    deadline = asyncio.get_running_loop().time() + timeout
    while len(server.received(PERSON)) <= before:
        assert asyncio.get_running_loop().time() < deadline, "nothing reached the person"
        await asyncio.sleep(0.05)
    return [m.text or "" for m in server.received(PERSON)[before:]]


def _thread_reply(text: str, root: str) -> dict[str, Any]:
    return {
        "msgtype": "m.text",
        "body": text,
        "m.relates_to": {
            "rel_type": "m.thread",
            "event_id": root,
            "is_falling_back": True,
            "m.in_reply_to": {"event_id": root},
        },
    }


def _bot(synapse: LocalSynapse, user: Any, store_dir: Path) -> MatrixChannel:
    config = {
        "homeserver": synapse.url,
        "user_id": user.user_id,
        "store_dir": str(store_dir),
        "sync_timeout_ms": 500,
        "encryption": "off",
    }
    return MatrixChannel(
        MatrixConfig.model_validate(config), Secrets(password=user.password, store_key=KEY)
    )


def test_a_telegram_person_is_served_from_a_matrix_room(
    synapse: LocalSynapse, matrix_flows: FlowSet, tmp_path: Path
) -> None:
    bot_account = account(synapse, "hotline")

    async def scenario() -> None:
        async with person(synapse, "lawyer") as lawyer, LocalBotApiServer() as server:
            created = await lawyer.client.room_create(name="Lawyers", invite=[bot_account.user_id])
            assert isinstance(created, RoomCreateResponse)
            room = created.room_id
            matrix = _bot(synapse, bot_account, tmp_path / "matrix")
            telegram = TelegramChannel(make_config(server), server.token)
            channels: dict[str, Channel] = {"telegram": telegram, "matrix": matrix}
            for channel in channels.values():
                channel.bind(matrix_flows)
            desk = Desk({"lawyers": Address("matrix", room)}, CaseStore(), channels)
            watch(desk, channels.values())
            store = MemoryStore()
            engine = Engine(matrix_flows)
            hub = Hub(engine, store, channels, desk)
            await matrix.start(hub.deliver)
            await telegram.start(hub.deliver)
            try:
                await lawyer.wait_for_member(bot_account.user_id, room_id=room)
                await matrix.wait_synced(1)
                await server.wait_confirmed(server.send_text(PERSON, "/lawyer"))
                ticket = await _next(lawyer, room, "Case #")
                body = str(ticket.content["body"])
                assert str(PERSON) not in body and "language en" in body

                await server.wait_confirmed(server.send_text(PERSON, "They came to my door"))
                relay = await _next(lawyer, room, "They came to my door")
                assert relay.content["m.relates_to"]["rel_type"] == "m.thread"
                assert relay.content["m.relates_to"]["event_id"] == ticket.event_id

                before = len(server.received(PERSON))
                await lawyer.send(
                    _thread_reply("Do not open the door.", ticket.event_id), room_id=room
                )
                assert await _received(server, before) == ["Lawyer: Do not open the door."]
                taken = await _next(lawyer, room, "taken by")
                assert lawyer.user_id in str(taken.content["body"])

                before = len(server.received(PERSON))
                await lawyer.send(_thread_reply("!close", ticket.event_id), room_id=room)
                told = await _received(server, before)
                assert told and "Lawyer" not in told[0]
                key = engine.key(Address("telegram", str(PERSON)))
                assert store.load(key).status is Status.IDLE
                await _next(lawyer, room, "closed by")

                # A new case, then /forget: the ticket is edited in the room.
                await server.wait_confirmed(server.send_text(PERSON, "/lawyer"))
                second = await _next(lawyer, room, "Case #")
                await server.wait_confirmed(server.send_text(PERSON, "/forget"))
                # Both of the person's tickets, the closed one too.
                edits = [await _next(lawyer, room, "deleted at the person's request") for _ in "12"]
                assert {e.content["m.relates_to"]["rel_type"] for e in edits} == {"m.replace"}
                edited = {e.content["m.relates_to"]["event_id"] for e in edits}
                assert edited == {ticket.event_id, second.event_id}
                assert desk.store.count() == 0
            finally:
                await telegram.stop()
                await matrix.stop()

    run(scenario())


def test_a_matrix_person_is_served_from_a_telegram_group(
    synapse: LocalSynapse, matrix_flows: FlowSet, tmp_path: Path
) -> None:
    bot_account = account(synapse, "hotline")

    async def scenario() -> None:
        async with person(synapse) as someone, LocalBotApiServer() as server:
            matrix = _bot(synapse, bot_account, tmp_path / "matrix")
            telegram = TelegramChannel(make_config(server), server.token)
            channels: dict[str, Channel] = {"telegram": telegram, "matrix": matrix}
            for channel in channels.values():
                channel.bind(matrix_flows)
            desk = Desk({"lawyers": Address("telegram", str(GROUP))}, CaseStore(), channels)
            watch(desk, channels.values())
            store = MemoryStore()
            engine = Engine(matrix_flows)
            hub = Hub(engine, store, channels, desk)
            await matrix.start(hub.deliver)
            await telegram.start(hub.deliver)
            try:

                async def operator(text: str, reply_to: int | None = None) -> None:
                    update = server.send_text(
                        OPERATOR, text, chat_id=GROUP, chat_type="supergroup", reply_to=reply_to
                    )
                    await server.wait_confirmed(update)

                def group() -> list[str]:
                    return [m.text or "" for m in server.received(GROUP) if m.from_bot]

                async def posted(want: str, timeout: float = 30) -> int:
                    deadline = asyncio.get_running_loop().time() + timeout
                    while True:
                        for m in server.received(GROUP):
                            if m.from_bot and want in (m.text or ""):
                                return m.message_id
                        assert asyncio.get_running_loop().time() < deadline, want
                        await asyncio.sleep(0.05)

                await operator("/cases")  # the group exists once someone wrote there
                room = await someone.open_dm(bot_account.user_id)
                await _next(someone, room, "Menu")
                await someone.say("/lawyer")
                ticket = await posted("Case #")
                assert someone.user_id not in " ".join(group()) and room not in " ".join(group())
                await someone.say("They came to my door")
                await posted("Person: They came to my door")
                await operator("Do not open the door.", reply_to=ticket)
                answer = await _next(someone, room, "Lawyer:")
                assert answer.content["body"] == "Lawyer: Do not open the door."
                await operator("/close", reply_to=ticket)
                await posted("closed by User7001")
                await _next(someone, room, "")
                key = engine.key(Address("matrix", room))
                session = store.load(key)
                assert session is not None and session.status is Status.IDLE
            finally:
                await telegram.stop()
                await matrix.stop()

    run(scenario())
