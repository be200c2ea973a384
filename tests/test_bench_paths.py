"""The Telegram and Matrix path benchmarks drive real bots: a handful of people, no timing.

Each contender must answer with the flow's own texts (the menu, the questions, the refusals,
the document, the last words), so that a path broken anywhere fails here rather than
looking fast in `python -m bench.run`.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # bench/ is not an installed package; plain `pytest` works too
    sys.path.insert(0, str(ROOT))

from bench import matrix_path as mp  # noqa: E402
from bench import profile_telegram  # noqa: E402
from bench import telegram_path as tp  # noqa: E402
from bench.ptb_baselines import load_texts  # noqa: E402
from engine.model import FlowSet  # noqa: E402

FLOWS = ROOT / "flows"
FLOW = "detained_relative"


def _say(flows: FlowSet, flow: str, step: str, language: str) -> str:
    text = flows.flows[flow].steps[step].say
    assert text is not None
    return text.get(language, language)


def _invalid(flows: FlowSet, flow: str, step: str, language: str) -> str:
    text = flows.flows[flow].steps[step].invalid
    assert text is not None
    return text.get(language, language)


def test_telegram_hotline_answers_with_the_flows_texts() -> None:
    flows = tp.load_flows(FLOWS)
    users = tp.user_ids(2)  # one Russian, one English person
    api = tp.BotApi()
    with tempfile.TemporaryDirectory() as tmp:
        contender = tp.new_hotline("test", api, flows, Path(tmp))  # the durable store
        run = asyncio.run(tp.drive(contender, api, users))
    assert run.updates == 2 * len(tp.SCRIPT)
    for user in users:
        language = tp.language(user)
        heard = api.transcripts[user]
        menu_title = flows.flows[FLOW].title.get(language, language)
        assert heard[0].startswith(flows.bot.menu.say.get(language, language))
        assert menu_title in heard[0]  # the topic's button, pressed next
        assert heard[1].startswith(_say(flows, FLOW, "start", language))
        assert _invalid(flows, FLOW, "relative_name", language) in heard
        assert _invalid(flows, FLOW, "relative_birth", language) in heard
        assert _invalid(flows, "collect_contacts", "phone", language) in heard
        document = load_texts(FLOWS).document_name[language]
        assert f"<document {document}>" in heard
        assert heard[-1] == _say(flows, FLOW, "done", language)
    # Every press was answered and its keyboard taken off.
    presses = sum(1 for move in tp.SCRIPT if move.press is not None)
    assert api.calls["answerCallbackQuery"] == 2 * presses
    assert api.calls["editMessageReplyMarkup"] == 2 * presses


def test_telegram_baselines_say_what_the_hotline_says() -> None:
    """`measure` checks every contender's transcripts; two people, one run each."""
    data = tp.measure(FLOWS, users=2, reps=1)
    assert set(data["contenders"]) == set(tp.ORDER)
    for figures in data["contenders"].values():
        assert figures["updates_per_rep"] == 2 * len(tp.SCRIPT)
        assert figures["us_per_update"] > 0
    assert set(data["ratios"]) == {"sqlite_vs_echo", "memory_vs_conversation_handler"}
    echo_calls = data["contenders"][tp.ECHO]["bot_api_calls_per_update"]
    assert echo_calls["sendMessage"] == 1.0  # one echo per update


def test_matrix_hotline_answers_with_the_flows_texts() -> None:
    flows = tp.load_flows(FLOWS)
    persons = mp.people(2)
    server_holder: list[mp.Homeserver] = []

    async def scenario() -> None:
        server = mp.Homeserver()
        server_holder.append(server)
        with tempfile.TemporaryDirectory() as tmp:
            await mp.drive(mp.new_hotline("test", server, flows, Path(tmp), True), persons)

    asyncio.run(scenario())
    server = server_holder[0]
    for person in persons:
        # Matrix has no language_code: the engine speaks the bot's first language until the
        # person writes in another; the answers are Russian or English by the person.
        heard = server.transcripts[mp.room_id(person)]
        assert heard[0].startswith(flows.bot.menu.say.get("ru", "ru"))
        assert "5. " + flows.flows[FLOW].title.get("ru", "ru") in heard[0]
        assert heard[-1] in {_say(flows, FLOW, "done", lang) for lang in ("ru", "en")}
        assert len(heard) > len(tp.SCRIPT)  # questions, refusals and asked-again, documents


def test_matrix_echo_and_hotline_run_through_measure() -> None:
    data = mp.measure(FLOWS, users=2, reps=1)
    assert set(data["contenders"]) == set(mp.ORDER)
    assert set(data["ratios_to_echo"]) == {mp.HOTLINE_SQLITE, mp.HOTLINE_MEMORY}


def test_profile_of_the_telegram_path_names_its_costs() -> None:
    stats, updates, _ = profile_telegram.collect(2, "memory")
    assert updates == 2 * len(tp.SCRIPT)
    components = profile_telegram.by_component(stats)
    assert "engine (runtime, transitions, routing)" in components
    assert any(name.startswith("PTB objects") for name in components)
    text = profile_telegram.report(stats, updates, 1.0, "memory", 10)
    assert "1. Own time by component" in text and "convert.read_update" in text
