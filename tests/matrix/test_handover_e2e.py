"""End to end across channels: a Telegram person (local Bot API server) is served by a
lawyer in a Matrix operators' room (the throwaway Synapse), and the other way round.

The ticket appears in the room; the person's message arrives in the ticket's thread; the
operator's thread reply reaches the person as "Lawyer"; a file goes each way (a scan from
the person into the thread, a draft from the lawyer to the person); !close returns them to
the bot; /forget during a case edits the person's tickets to say they were deleted.
Outside the opening hours the person is told when to expect an answer; an encrypted
operators' room works like a plain one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from matrix_support import KEY, account, person, run
from nio import RoomCreateResponse, UploadResponse
from nio.crypto import ENCRYPTION_ENABLED

from adapters.matrix import convert
from adapters.matrix.channel import MatrixChannel
from adapters.matrix.config import MatrixConfig, Secrets
from adapters.matrix.replay import MatrixPerson, Message
from adapters.matrix.synapse_launcher import LocalSynapse
from adapters.serve.channel import Channel
from adapters.serve.handover import CaseStore, Desk, watch
from adapters.serve.hours import OpeningHours
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


async def _received(
    server: LocalBotApiServer, before: int, timeout: float = 30, count: int = 1
) -> list[str]:
    deadline = asyncio.get_running_loop().time() + timeout
    while len(server.received(PERSON)) < before + count:
        assert asyncio.get_running_loop().time() < deadline, "nothing reached the person"
        await asyncio.sleep(0.05)
    return [m.text or "" for m in server.received(PERSON)[before:]]


async def _file(sender: MatrixPerson, data: bytes, name: str, encrypt: bool = False) -> dict:
    """Upload `data` as `sender` (encrypted for an encrypted room): an m.file content."""
    reply, keys = await sender.client.upload(
        lambda *_: io.BytesIO(data),
        content_type="application/pdf",
        filename=name,
        encrypt=encrypt,
        filesize=len(data),
    )
    assert isinstance(reply, UploadResponse), reply
    if encrypt:
        assert keys is not None
        return convert.file_content(
            name, "application/pdf", len(data), encrypted_file={**keys, "url": reply.content_uri}
        )
    return convert.file_content(name, "application/pdf", len(data), url=reply.content_uri)


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


def _bot(
    synapse: LocalSynapse, user: Any, store_dir: Path, encryption: str = "off"
) -> MatrixChannel:
    config = {
        "homeserver": synapse.url,
        "user_id": user.user_id,
        "store_dir": str(store_dir),
        "sync_timeout_ms": 500,
        "encryption": encryption,
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
                assert await _received(server, before, count=2) == [
                    "A lawyer has taken your case and will answer here.",
                    "Lawyer: Do not open the door.",
                ]
                taken = await _next(lawyer, room, "taken by")
                assert lawyer.user_id in str(taken.content["body"])

                # A file each way: the person's scan into the thread...
                scan = b"%PDF-1.4 the summons, scanned"
                await server.wait_confirmed(
                    server.send_user_document(PERSON, "summons.pdf", scan, caption="the paper")
                )
                await _next(lawyer, room, "Person: the paper")
                posted = await _next(lawyer, room, "summons.pdf")
                assert posted.content["msgtype"] == "m.file"
                assert posted.content["m.relates_to"]["event_id"] == ticket.event_id
                assert await lawyer.download(posted) == scan
                # ...and the lawyer's draft, sent in the thread, to the person.
                draft = b"%PDF-1.4 an appeal to sign"
                content = await _file(lawyer, draft, "appeal.pdf")
                before = len(server.received(PERSON))
                await lawyer.send(convert.in_thread(content, ticket.event_id), room_id=room)
                assert (await _received(server, before, count=2))[0] == (
                    "The lawyer sent you a file:"
                )
                document = server.received(PERSON)[before + 1].document
                assert document is not None and document.data == draft
                assert document.filename == "appeal.pdf"
                # Over the room's upload limit (1 MB here): the person is told, nothing posted.
                big = server.send_user_document(PERSON, "big.pdf", b"x" * (1_048_576 + 1))
                before = len(server.received(PERSON))
                await server.wait_confirmed(big)
                assert "(at most 1 MB)" in (await _received(server, before))[0]

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
            # Saturday noon in Moscow: nobody is on duty until Monday 10:00.
            saturday = dt.datetime(2026, 11, 28, 12, tzinfo=ZoneInfo("Europe/Moscow"))
            desk = Desk(
                {"lawyers": Address("telegram", str(GROUP))},
                CaseStore(),
                channels,
                clock=saturday.timestamp,
                hours={"lawyers": OpeningHours.parse("Europe/Moscow", "mon-fri", "10:00", "19:00")},
            )
            desk.bind(matrix_flows)
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
                notice = str((await _next(someone, room, "registered")).content["body"])
                assert "You are number 1 in the queue." in notice
                assert "Lawyers answer Mon–Fri 10:00–19:00 (Europe/Moscow)" in notice
                assert "from Monday 30.11 10:00" in notice
                await someone.say("They came to my door")
                await posted("Person: They came to my door")
                # A file each way: the person's scan into the group, as a reply to the ticket...
                scan = b"%PDF-1.4 the summons, scanned"
                await someone.send(await _file(someone, scan, "summons.pdf"))
                await posted("Person sent a file:")
                deadline = asyncio.get_running_loop().time() + 30
                while not [m for m in server.received(GROUP) if m.document is not None]:
                    assert asyncio.get_running_loop().time() < deadline, "no file in the group"
                    await asyncio.sleep(0.05)
                (filed,) = [m for m in server.received(GROUP) if m.document is not None]
                assert filed.document is not None and filed.document.data == scan
                assert filed.reply_to == ticket
                # ...and the lawyer's draft, a reply to the ticket, to the person.
                draft = b"%PDF-1.4 an appeal to sign"
                await server.wait_confirmed(
                    server.send_user_document(
                        OPERATOR,
                        "appeal.pdf",
                        draft,
                        chat_id=GROUP,
                        chat_type="supergroup",
                        reply_to=ticket,
                    )
                )
                await _next(someone, room, "The lawyer sent you a file:")
                sent = await _next(someone, room, "appeal.pdf")
                assert sent.content["msgtype"] == "m.file"
                assert await someone.download(sent) == draft
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


@pytest.mark.skipif(
    not ENCRYPTION_ENABLED,
    reason='matrix-nio[e2e] is not installed (pip install "matrix-nio[e2e]")',
)
def test_an_encrypted_operators_room_gets_tickets_replies_and_files(
    synapse: LocalSynapse, matrix_flows: FlowSet, tmp_path: Path
) -> None:
    bot_account = account(synapse, "hotline")
    encrypted = [
        {
            "type": "m.room.encryption",
            "state_key": "",
            "content": {"algorithm": "m.megolm.v1.aes-sha2"},
        }
    ]

    async def scenario() -> None:
        async with (
            person(synapse, "lawyer", store_dir=tmp_path / "lawyer") as lawyer,
            LocalBotApiServer() as server,
        ):
            created = await lawyer.client.room_create(
                name="Lawyers", invite=[bot_account.user_id], initial_state=encrypted
            )
            assert isinstance(created, RoomCreateResponse)
            room = created.room_id
            matrix = _bot(synapse, bot_account, tmp_path / "matrix", encryption="on")
            telegram = TelegramChannel(make_config(server), server.token)
            channels: dict[str, Channel] = {"telegram": telegram, "matrix": matrix}
            for channel in channels.values():
                channel.bind(matrix_flows)
            desk = Desk({"lawyers": Address("matrix", room)}, CaseStore(), channels)
            watch(desk, channels.values())
            hub = Hub(Engine(matrix_flows), MemoryStore(), channels, desk)
            await matrix.start(hub.deliver)
            await telegram.start(hub.deliver)
            try:
                await lawyer.wait_for_member(bot_account.user_id, room_id=room)
                await matrix.wait_synced(2)
                await lawyer.sync()  # the lawyer learns the bot's device keys
                await server.wait_confirmed(server.send_text(PERSON, "/lawyer"))
                ticket = await _next(lawyer, room, "Case #", timeout=60)
                assert str(PERSON) not in str(ticket.content["body"])
                await server.wait_confirmed(server.send_text(PERSON, "A summons came"))
                await _next(lawyer, room, "Person: A summons came")
                scan = b"%PDF-1.4 the summons, scanned"
                await server.wait_confirmed(server.send_user_document(PERSON, "summons.pdf", scan))
                posted = await _next(lawyer, room, "summons.pdf")
                assert "url" not in posted.content and "file" in posted.content  # encrypted
                assert await lawyer.download(posted) == scan

                before = len(server.received(PERSON))
                await lawyer.send(_thread_reply("Keep it safe.", ticket.event_id), room_id=room)
                texts = await _received(server, before, timeout=60, count=2)
                assert texts[-1] == "Lawyer: Keep it safe."
                draft = b"%PDF-1.4 an appeal to sign"
                content = await _file(lawyer, draft, "appeal.pdf", encrypt=True)
                before = len(server.received(PERSON))
                await lawyer.send(convert.in_thread(content, ticket.event_id), room_id=room)
                await _received(server, before, timeout=60, count=2)
                document = server.received(PERSON)[before + 1].document
                assert document is not None and document.data == draft
            finally:
                await telegram.stop()
                await matrix.stop()

    run(scenario())
