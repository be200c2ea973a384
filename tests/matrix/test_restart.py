"""Never answer twice, never answer the past: restarts, repeats and transaction ids."""

from __future__ import annotations

from pathlib import Path

import pytest
from matrix_support import Bot, account, person, run, running

from adapters.matrix.channel import transaction_id
from adapters.matrix.convert import text_content
from adapters.matrix.state import ChannelState
from adapters.matrix.synapse_launcher import LocalSynapse
from engine.model import FlowSet

pytestmark = pytest.mark.slow


def test_a_restart_answers_what_arrived_meanwhile_exactly_once(
    synapse: LocalSynapse, matrix_flows: FlowSet, tmp_path: Path
) -> None:
    async def scenario() -> None:
        bot = Bot(synapse, matrix_flows, tmp_path / "bot", account(synapse, "bot"))
        async with person(synapse) as alice:
            async with running(bot) as channel:
                await alice.open_dm(bot.user_id)
                (menu,) = await alice.messages(1)
                assert menu.text == "Menu"
                device = channel.client.device_id if channel.client else None
            # The bot is down; the person writes twice.
            await alice.say("1")
            await alice.say("/start")
            async with running(bot) as channel:
                kind, menu = await alice.messages(2)
                assert kind.text == "Which kind?"
                assert menu.text == "Menu"
                await bot.settle(3)
                assert await alice.quiet(1.0) == []
                assert channel.client is not None
                assert channel.client.device_id == device  # the same device, not a new one
            # A third start has nothing to answer: the past stays the past.
            async with running(bot):
                await bot.settle(3)
                assert await alice.quiet(0.5) == []
                await alice.say("1")  # the menu's buttons survived the restarts
                (kind,) = await alice.messages(1)
                assert kind.text == "Which kind?"
        state = ChannelState(tmp_path / "bot")
        try:
            assert state.sync_token()
            login = state.login()
            assert login is not None and login.device_id == device
        finally:
            state.close()

    run(scenario())


def test_a_send_repeated_with_its_transaction_id_is_one_message(
    synapse: LocalSynapse, matrix_flows: FlowSet, tmp_path: Path
) -> None:
    async def scenario() -> None:
        bot = Bot(synapse, matrix_flows, tmp_path / "bot", account(synapse, "bot"))
        async with running(bot) as channel, person(synapse) as alice:
            room = await alice.open_dm(bot.user_id)
            await alice.messages(1)
            tx = transaction_id("$some-inbound-event", 0)
            content = text_content("Once", (), "m.notice")
            first = await channel._send(room, content, tx)
            again = await channel._send(room, content, tx)
            assert first == again
            (once,) = await alice.messages(1)
            assert once.text == "Once"
            assert await alice.quiet(0.5) == []

    run(scenario())


def test_the_bot_does_not_answer_what_was_said_before_it_joined(
    synapse: LocalSynapse, matrix_flows: FlowSet, tmp_path: Path
) -> None:
    async def scenario() -> None:
        bot = Bot(synapse, matrix_flows, tmp_path / "bot", account(synapse, "bot"))
        async with person(synapse) as alice:
            # Invited while the bot is not running; the person writes before it joins.
            await alice.open_dm(bot.user_id)
            await alice.say("1")
            await alice.say("hello?")
            async with running(bot) as channel:
                await alice.wait_for_member(bot.user_id)
                (greeting,) = await alice.messages(1)
                assert greeting.text == "Menu"
                await bot.settle(2)
                assert await alice.quiet(0.5) == []
                assert channel.stats["events"] == 0
                assert channel.stats["before_join"] >= 2  # seen, and skipped as the past

    run(scenario())
