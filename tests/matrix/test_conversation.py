"""The bot on a real Synapse, talked to through the client-server API as a person would."""

from __future__ import annotations

from pathlib import Path

import pytest
from matrix_support import Bot, account, person, run, running

from adapters.matrix.synapse_launcher import LocalSynapse
from engine.model import FlowSet

pytestmark = pytest.mark.slow

MENU = ("Intake", "Talk to a lawyer")
KINDS = ("Conscription", "Mobilisation", "Lawyer")


def test_invite_join_menu_and_answers_by_number_label_and_reaction(
    synapse: LocalSynapse, matrix_flows: FlowSet, tmp_path: Path
) -> None:
    async def scenario() -> None:
        bot = Bot(synapse, matrix_flows, tmp_path / "bot", account(synapse, "bot"))
        async with running(bot), person(synapse) as alice:
            await alice.open_dm(bot.user_id)
            # The bot joins and greets with the menu.
            (greeting,) = await alice.messages(1)
            assert greeting.msgtype == "m.notice"
            assert greeting.text == "Menu"
            assert greeting.buttons == MENU
            assert greeting.content["body"] == "Menu\n\n1. Intake\n2. Talk to a lawyer"
            assert greeting.content["format"] == "org.matrix.custom.html"
            assert (
                "<ol><li>Intake</li><li>Talk to a lawyer</li></ol>"
                in (greeting.content["formatted_body"])
            )

            await alice.say("/start")
            (menu,) = await alice.messages(1)
            assert menu.buttons == MENU

            await alice.say("1")  # by number
            (kind,) = await alice.messages(1)
            assert (kind.text, kind.buttons) == ("Which kind?", KINDS)

            await alice.say("mobilisation")  # by label, as typed
            (name,) = await alice.messages(1)
            assert (name.text, name.buttons) == ("Your name?", ())

            await alice.say("2")  # no buttons now: "2" is an answer, here a too short name
            invalid, again = await alice.messages(2)
            assert invalid.text == "Longer please."
            assert again.text == "Your name?"

            await alice.say("!start")  # clients keep "/" for themselves
            (menu,) = await alice.messages(1)
            await alice.react(greeting.event_id, "1️⃣")  # an old question: nothing happens
            await alice.react(menu.event_id, "1\u20e3")  # keycap without VS16, as some send
            (kind,) = await alice.messages(1)
            assert kind.text == "Which kind?"
            await alice.react(kind.event_id, "3️⃣")  # Lawyer: hand-over
            said = await alice.messages(2)
            assert [m.text for m in said] == ["Passing you on.", "A lawyer will answer."]
            assert await alice.quiet(1.0) == []
            assert bot.channel is not None
            assert bot.channel.stats["ignored_stale_reaction"] == 1

    run(scenario())
