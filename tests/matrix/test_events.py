"""What is not plain text: images, stickers, edits, redactions, notices, malformed events;
invitations the bot declines; rooms it leaves; and what it logs (never content)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from matrix_support import Bot, account, person, run, running
from nio import RoomCreateResponse

from adapters.matrix.synapse_launcher import LocalSynapse
from engine.model import FlowSet

pytestmark = pytest.mark.slow

POLITE = "I can only read text and buttons."


def test_non_text_events_get_a_polite_reply_or_are_ignored(
    synapse: LocalSynapse, matrix_flows: FlowSet, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    async def scenario() -> None:
        bot = Bot(synapse, matrix_flows, tmp_path / "bot", account(synapse, "bot"))
        async with running(bot) as channel, person(synapse) as alice:
            await alice.open_dm(bot.user_id)
            await alice.messages(1)
            image = {"msgtype": "m.image", "body": "passport-scan.jpg", "url": "mxc://x/y"}
            await alice.send(image)
            (reply,) = await alice.messages(1)
            assert reply.text == POLITE
            sticker = {"body": "a sticker", "url": "mxc://x/z", "info": {}}
            await alice.send(sticker, "m.sticker")
            (reply,) = await alice.messages(1)
            assert reply.text == POLITE
            location = {"msgtype": "m.location", "body": "here", "geo_uri": "geo:1,2"}
            await alice.send(location)
            (reply,) = await alice.messages(1)
            assert reply.text == POLITE

            # Ignored: an edit, a redaction, a notice (bots), a malformed message.
            first = await alice.say("Ivan Secretname")
            (reply,) = await alice.messages(1)  # at the menu: not understood + menu
            await alice.messages(1)
            edit = {
                "msgtype": "m.text",
                "body": "* Ivan Othername",
                "m.new_content": {"msgtype": "m.text", "body": "Ivan Othername"},
                "m.relates_to": {"rel_type": "m.replace", "event_id": first},
            }
            await alice.send(edit)
            await alice.client.room_redact(alice.room_id, first)
            await alice.send({"msgtype": "m.notice", "body": "I am another bot"})
            # Malformed (Synapse lets these through): skipped, only their ids logged.
            await alice.send({"body": "Secretname sticker"}, "m.sticker")  # no url
            await alice.send({"msgtype": "m.text", "body": "x", "m.relates_to": "bad"})
            await bot.settle(2)
            assert await alice.quiet(0.5) == []
            assert channel.stats["ignored_edit"] == 1
            assert channel.stats["ignored_notice"] == 1
            assert channel.stats["malformed"] == 2
            assert channel.stats["own"] >= 5  # its own messages came back and were skipped

            # The sync loop survived all of it.
            await alice.say("/start")
            (menu,) = await alice.messages(1)
            assert menu.text == "Menu"

    run(scenario())
    # Nothing anybody wrote reaches a log line: not ours, not nio's (kept at WARNING).
    assert any(r.name == "hotline.matrix" for r in caplog.records)
    for record in caplog.records:
        line = record.getMessage()
        for secret in ("Secretname", "Othername", "passport", "another bot", "@person"):
            assert secret not in line, (record.name, line)


def test_the_bot_leaves_a_room_it_is_alone_in(
    synapse: LocalSynapse, matrix_flows: FlowSet, tmp_path: Path
) -> None:
    async def scenario() -> None:
        bot = Bot(synapse, matrix_flows, tmp_path / "bot", account(synapse, "bot"))
        async with running(bot) as channel, person(synapse) as alice:
            room = await alice.open_dm(bot.user_id)
            await alice.messages(1)
            assert channel.client is not None
            await alice.leave()
            for _ in range(50):
                joined = await channel.client.joined_rooms()
                if room not in joined.rooms:
                    break
                await asyncio.sleep(0.1)
            assert room not in joined.rooms
            assert channel.stats["left_alone"] == 1

    run(scenario())


def test_invitations_other_than_direct_chats_from_allowed_servers_are_declined(
    synapse: LocalSynapse, matrix_flows: FlowSet, tmp_path: Path
) -> None:
    async def scenario() -> None:
        bot = Bot(synapse, matrix_flows, tmp_path / "bot", account(synapse, "bot"))
        picky = Bot(
            synapse,
            matrix_flows,
            tmp_path / "picky",
            account(synapse, "picky"),
            allowed_servers=["elsewhere.example"],
        )
        async with running(bot) as channel, running(picky) as other, person(synapse) as alice:
            group = await alice.client.room_create(invite=[bot.user_id], name="a group")
            assert isinstance(group, RoomCreateResponse)
            await alice.open_dm(picky.user_id)  # a direct chat, but from localhost
            await bot.settle(2)
            await picky.settle(2)
            assert channel.stats["invites_declined"] == 1
            assert other.stats["invites_declined"] == 1
            assert channel.client is not None and other.client is not None
            assert group.room_id not in (await channel.client.joined_rooms()).rooms
            assert alice.room_id not in (await other.client.joined_rooms()).rooms

    run(scenario())
