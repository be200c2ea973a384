"""Hot reload: conversations across a change of the flows, and the reloader of `serve`.

Engine level: a conversation is started on one folder and carried on by an engine built
from a changed copy of it, the way `FlowReloader` swaps them. Serve level: a real folder in
tmp_path, changed on disk while a conversation runs through the hub.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import shutil
import signal
from pathlib import Path

import pytest

from adapters.serve.channel import Channel, Deliver
from adapters.serve.hub import Hub
from adapters.serve.reload import FlowReloader, folder_stamps
from engine.conversation import (
    Action,
    Address,
    Inbound,
    RelayToOperator,
    SendText,
    Session,
    StartHandover,
    Status,
)
from engine.loader import load_folder
from engine.model import FlowSet
from engine.runtime import Engine
from engine.stores import MemoryStore
from engine.texts import DEFAULT_TEXTS

FLOWS = Path(__file__).parent / "data" / "semantics"
ADDRESS = Address("test", "42")
KEY = f"{ADDRESS.channel}:{ADDRESS.chat}"
UPDATED = DEFAULT_TEXTS["flows_updated"]["en"]
MOVED_ON = DEFAULT_TEXTS["moved_on"]["en"]

Edits = dict[str, list[tuple[str, str]]]


def copy_flows(tmp_path: Path, name: str, edits: Edits | None = None) -> Path:
    """tests/data/semantics copied to tmp_path/name, with (old, new) replacements per file."""
    folder = tmp_path / name
    shutil.copytree(FLOWS, folder)
    for file, pairs in (edits or {}).items():
        edit(folder / file, pairs)
    return folder


def edit(path: Path, pairs: list[tuple[str, str]]) -> None:
    text = path.read_text(encoding="utf-8")
    for old, new in pairs:
        assert old in text, (path.name, old)
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")


def loaded(folder: Path) -> FlowSet:
    flows, report = load_folder(folder)
    assert flows is not None, [str(d) for d in report.errors]
    return flows


def engine_for(folder: Path) -> Engine:
    return Engine(loaded(folder), clock=lambda: dt.datetime(2026, 11, 25, 12, 0))


class Chat:
    """One person; `reload` swaps the engine the way the running bot does."""

    def __init__(self, engine: Engine, language: str = "en") -> None:
        self.engine = engine
        self.store = MemoryStore()
        self.language = language
        self.last: list[Action] = []

    @property
    def session(self) -> Session | None:
        return self.store.load(KEY)

    def reload(self, folder: Path) -> None:
        new = engine_for(folder)
        new.take_over(self.engine)
        self.engine = new

    def feed(self, event: Inbound) -> list[Action]:
        outcome = self.engine.handle(self.session, event)
        if outcome.session is None:
            self.store.delete(KEY)
        else:
            self.store.save(outcome.session)
        self.last = outcome.actions
        return outcome.actions

    def type(self, text: str) -> list[str]:
        return texts(self.feed(Inbound.typed(ADDRESS, text, self.language)))

    def payload(self, label: str) -> str:
        return payload_of(self.last, label)

    def press(self, label: str) -> list[str]:
        return self.press_payload(self.payload(label))

    def press_payload(self, payload: str) -> list[str]:
        return texts(self.feed(Inbound.press(ADDRESS, payload, self.language)))

    def buttons(self) -> list[str]:
        return [b.label for a in self.last if isinstance(a, SendText) for b in a.buttons]


def texts(actions: list[Action]) -> list[str]:
    return [a.text for a in actions if isinstance(a, SendText)]


def payload_of(actions: list[Action], label: str) -> str:
    """The payload of the last button labelled `label` among `actions`."""
    buttons = [b for a in actions if isinstance(a, SendText) for b in a.buttons]
    return [b.payload for b in buttons if b.label == label][-1]


def to_name(chat: Chat) -> str:
    """Through to intake's 'Your name?'; the payload of the Conscription button pressed."""
    chat.type("/start")
    chat.press("Intake")
    pressed = chat.payload("Conscription")
    assert chat.press_payload(pressed) == ["Your name?"]
    return pressed


# The step 'name' of intake renamed: a conversation waiting there has nowhere to be.
NAME_RENAMED: Edits = {
    "intake.yaml": [("goto: name\n", "goto: ask_name\n"), ("\n  name:\n", "\n  ask_name:\n")]
}


# --------------------------------------------------------------------------- step gone


@pytest.mark.parametrize(
    "event",
    ["Ivan Petrov", "/back", "/start", "press"],
)
def test_a_conversation_whose_step_is_gone_is_restarted_politely(
    tmp_path: Path, event: str
) -> None:
    new = copy_flows(tmp_path, "new", NAME_RENAMED)
    chat = Chat(engine_for(FLOWS))
    pressed = to_name(chat)
    chat.reload(new)
    # Neither the typed name nor the old press is read against another step.
    replies = chat.press_payload(pressed) if event == "press" else chat.type(event)
    assert replies == [UPDATED, "Menu"]
    assert chat.buttons() == ["Intake", "Talk to a lawyer"]
    session = chat.session
    assert session is not None
    assert session.status is Status.MENU and session.step is None
    assert session.answers == {} and session.history == [] and session.stack == []
    # And the conversation goes on from the menu, in the new flows.
    chat.press("Intake")
    assert chat.press("Conscription") == ["Your name?"]
    assert chat.session is not None and chat.session.step == "ask_name"


def test_the_restart_speaks_the_persons_language_and_bot_yaml_may_reword_it(
    tmp_path: Path,
) -> None:
    new = copy_flows(tmp_path, "new", NAME_RENAMED)
    chat = Chat(engine_for(FLOWS), language="ru")
    chat.type("/start")
    chat.press("Анкета")
    chat.press("Призыв")
    chat.reload(new)
    assert chat.type("Иван Петров") == [DEFAULT_TEXTS["flows_updated"]["ru"], "Меню"]

    reworded = copy_flows(tmp_path, "reworded", NAME_RENAMED)
    with (reworded / "bot.yaml").open("a", encoding="utf-8") as bot:
        bot.write("texts:\n  flows_updated: {en: We changed things., ru: Мы всё поменяли.}\n")
    chat = Chat(engine_for(FLOWS))
    to_name(chat)
    chat.reload(reworded)
    assert chat.type("Ivan Petrov") == ["We changed things.", "Menu"]


def test_commands_that_do_not_depend_on_the_step_are_carried_out(tmp_path: Path) -> None:
    new = copy_flows(tmp_path, "new", NAME_RENAMED)
    chat = Chat(engine_for(FLOWS))
    to_name(chat)
    chat.reload(new)
    actions = chat.feed(Inbound.typed(ADDRESS, "/lawyer", "en"))
    assert texts(actions) == ["Passing you on.", "A lawyer will answer."]
    assert any(isinstance(a, StartHandover) for a in actions)

    chat = Chat(engine_for(FLOWS))
    to_name(chat)
    chat.reload(new)
    assert chat.type("/restart") == ["Which kind?"]  # the topic still exists: start it again

    chat = Chat(engine_for(FLOWS))
    to_name(chat)
    chat.reload(new)
    assert chat.type("/help")[:2] == [UPDATED, DEFAULT_TEXTS["help"]["en"]]
    assert chat.buttons() == ["Intake", "Talk to a lawyer"]

    chat = Chat(engine_for(FLOWS))
    to_name(chat)
    chat.reload(new)
    chat.type("/forget")
    assert chat.session is None


def test_a_conversation_inside_a_call_whose_caller_is_gone_is_restarted(tmp_path: Path) -> None:
    # intake's call step renamed: contact's end would return to a step that is not there.
    new = copy_flows(
        tmp_path,
        "new",
        {
            "intake.yaml": [
                ("goto: contacts\n", "goto: get_contacts\n"),
                ("  contacts:", "  get_contacts:"),
            ]
        },
    )
    chat = Chat(engine_for(FLOWS))
    to_name(chat)
    chat.type("Ivan Petrov")
    assert chat.type("01.02.2004") == ["Phone?"]
    chat.reload(new)
    assert chat.type("+79001234567") == [UPDATED, "Menu"]


def test_a_question_that_no_longer_asks_is_gone_too(tmp_path: Path) -> None:
    # 'How many children?' now only says it and goes on: nothing waits for an answer there.
    new = copy_flows(
        tmp_path,
        "new",
        {"contact.yaml": [("    input: {save: children, type: integer, min: 0, max: 20}\n", "")]},
    )
    chat = Chat(engine_for(FLOWS))
    to_name(chat)
    chat.type("Ivan Petrov")
    chat.type("01.02.2004")
    assert chat.type("+79001234567") == ["How many children?"]
    chat.reload(new)
    assert chat.type("2") == [UPDATED, "Menu"]


def test_a_language_the_bot_no_longer_speaks_falls_back_to_the_default(tmp_path: Path) -> None:
    chat = Chat(engine_for(FLOWS))
    chat.type("/start")
    chat.press("Intake")
    session = chat.session
    assert session is not None
    session.language = "uk"  # as if bot.yaml had listed Ukrainian before the reload
    chat.store.save(session)
    chat.reload(copy_flows(tmp_path, "new"))
    assert chat.press("Conscription") == ["Your name?"]
    assert chat.session is not None and chat.session.language == "en"


# --------------------------------------------------------------------------- step still there


def test_a_conversation_whose_step_exists_carries_on_with_its_answers(tmp_path: Path) -> None:
    new = copy_flows(
        tmp_path,
        "new",
        {
            "intake.yaml": [
                ("en: Conscription", "en: Call-up"),
                ('en: "Done {full_name}', 'en: "Ready {full_name}'),
            ],
            "contact.yaml": [("en: Phone?", "en: Your phone?")],
        },
    )
    chat = Chat(engine_for(FLOWS))
    to_name(chat)
    assert chat.type("Ivan Petrov") == ["Ivan Petrov, date of birth?"]
    chat.reload(new)
    assert chat.type("01.02.2004") == ["Your phone?"]
    chat.type("+79001234567")
    chat.type("2")
    assert chat.press("Blue") == ["Ready Ivan Petrov, conscription, +79001234567.", "Bye."]


def test_back_stops_at_a_question_that_is_gone(tmp_path: Path) -> None:
    # contact's first step renamed: the person is past it, at 'How many children?'.
    new = copy_flows(tmp_path, "new", {"contact.yaml": [("  phone:", "  telephone:")]})
    chat = Chat(engine_for(FLOWS))
    to_name(chat)
    chat.type("Ivan Petrov")
    chat.type("01.02.2004")
    assert chat.type("+79001234567") == ["How many children?"]
    chat.reload(new)
    assert chat.type("/back") == [DEFAULT_TEXTS["back_unavailable"]["en"], "How many children?"]
    chat.type("3")
    assert chat.type("/back") == ["How many children?"]


def test_a_hand_over_is_left_alone(tmp_path: Path) -> None:
    new = copy_flows(
        tmp_path,
        "new",
        {
            "lawyer.yaml": [("  start:", "  begin:")],
            "intake.yaml": [("goto: lawyer.start", "goto: lawyer.begin")],
        },
    )
    chat = Chat(engine_for(FLOWS))
    chat.type("/start")
    chat.press("Talk to a lawyer")
    chat.reload(new)
    actions = chat.feed(Inbound.typed(ADDRESS, "hello?", "en"))
    assert actions == [RelayToOperator(ADDRESS, "lawyers", "hello?")]
    assert chat.session is not None and chat.session.status is Status.HANDOVER


# --------------------------------------------------------------------------- buttons changed

SWAPPED: Edits = {
    "intake.yaml": [
        ("en: Conscription, ru: Призыв", "en: TMP, ru: TMP"),
        ("en: Mobilisation, ru: Мобилизация", "en: Conscription, ru: Призыв"),
        ("en: TMP, ru: TMP", "en: Mobilisation, ru: Мобилизация"),
        ("set: {kind: conscription}", "set: {kind: TMP}"),
        ("set: {kind: mobilisation}", "set: {kind: conscription}"),
        ("set: {kind: TMP}", "set: {kind: mobilisation}"),
    ]
}


@pytest.mark.parametrize("how", ["press", "typed number", "after /help"])
def test_a_press_made_before_the_buttons_changed_is_stale_never_another_choice(
    tmp_path: Path, how: str
) -> None:
    new = copy_flows(tmp_path, "new", SWAPPED)
    chat = Chat(engine_for(FLOWS))
    chat.type("/start")
    assert chat.press("Intake") == ["Which kind?"]
    old = chat.payload("Conscription")  # index 0, which is Mobilisation now
    chat.reload(new)
    if how == "press":
        replies = chat.press_payload(old)
    elif how == "typed number":
        replies = chat.type("1")
    else:
        # /help changes nothing on screen: the bot shows the current buttons after it...
        assert chat.type("/help")[1:] == ["Which kind?"]
        replies = chat.press_payload(old)  # ...and the old ones are stale all the same
    assert replies == [MOVED_ON, "Which kind?"]
    assert chat.buttons() == ["Mobilisation", "Conscription", "Lawyer"]
    assert chat.session is not None and "kind" not in chat.session.answers
    assert chat.press("Conscription") == ["Your name?"]
    assert chat.session is not None and chat.session.answers["kind"] == "conscription"


def test_after_a_restart_an_old_press_on_changed_buttons_is_stale_too(tmp_path: Path) -> None:
    """No reload seen by this process (the bot was restarted with new flows): the button's
    payload carries a fingerprint of what it meant, so it is still not read by its place."""
    new = copy_flows(tmp_path, "new", SWAPPED)
    chat = Chat(engine_for(FLOWS))
    chat.type("/start")
    chat.press("Intake")
    old = chat.payload("Conscription")
    chat.engine = engine_for(new)  # a fresh process: no take_over, no memory of the old flows
    assert chat.press_payload(old) == [MOVED_ON, "Which kind?"]
    assert chat.session is not None and "kind" not in chat.session.answers
    # A button whose meaning did not change still works across a restart.
    chat.engine = engine_for(new)
    assert chat.press("Conscription") == ["Your name?"]
    assert chat.session is not None and chat.session.answers["kind"] == "conscription"


def test_a_button_that_kept_its_meaning_still_counts(tmp_path: Path) -> None:
    # A choice added at the end and other texts changed: the first three mean the same.
    new = copy_flows(
        tmp_path,
        "new",
        {
            "intake.yaml": [
                (
                    "        goto: lawyer.start\n",
                    "        goto: lawyer.start\n"
                    "      - label: {en: Other, ru: Другое}\n        goto: lawyer.start\n",
                ),
                ("en: Your name?", "en: Your full name?"),
            ]
        },
    )
    chat = Chat(engine_for(FLOWS))
    chat.type("/start")
    chat.press("Intake")
    old = chat.payload("Mobilisation")
    chat.reload(new)
    assert chat.press_payload(old) == ["Your full name?"]
    assert chat.session is not None and chat.session.answers["kind"] == "mobilisation"


def test_a_button_gone_and_back_with_other_words_is_stale(tmp_path: Path) -> None:
    lawyer_choice = "      - label: {en: Lawyer, ru: Юрист}\n        goto: lawyer.start\n"
    without = copy_flows(tmp_path, "without", {"intake.yaml": [(lawyer_choice, "")]})
    attorney = lawyer_choice.replace("en: Lawyer", "en: Attorney")
    back = copy_flows(tmp_path, "back", {"intake.yaml": [(lawyer_choice, attorney)]})
    chat = Chat(engine_for(FLOWS))
    chat.type("/start")
    chat.press("Intake")
    old = chat.payload("Lawyer")
    chat.reload(without)
    chat.reload(back)  # the person wrote nothing in between
    assert chat.press_payload(old) == [MOVED_ON, "Which kind?"]
    assert chat.buttons() == ["Conscription", "Mobilisation", "Attorney"]


def test_a_choice_that_became_typed_text_takes_text_and_refuses_old_presses(
    tmp_path: Path,
) -> None:
    intake = (FLOWS / "intake.yaml").read_text(encoding="utf-8")
    start = intake.index("    choices:")
    end = intake.index("  name:")
    typed = "    input: {save: kind, type: text}\n    goto: name\n"
    new = copy_flows(tmp_path, "new")
    (new / "intake.yaml").write_text(intake[:start] + typed + intake[end:], encoding="utf-8")
    chat = Chat(engine_for(FLOWS))
    chat.type("/start")
    chat.press("Intake")
    old = chat.payload("Conscription")
    chat.reload(new)
    assert chat.press_payload(old) == [MOVED_ON, "Which kind?"]
    assert chat.buttons() == []
    assert chat.type("conscription") == ["Your name?"]


def test_a_reordered_menu_makes_the_old_menu_stale(tmp_path: Path) -> None:
    new = copy_flows(tmp_path, "new", {"bot.yaml": [("[intake, lawyer]", "[lawyer, intake]")]})
    chat = Chat(engine_for(FLOWS))
    chat.type("/start")
    old = chat.payload("Intake")
    chat.reload(new)
    assert chat.press_payload(old) == [MOVED_ON, "Menu"]
    assert chat.buttons() == ["Talk to a lawyer", "Intake"]
    assert chat.type("2") == ["Which kind?"]  # the new menu's numbers count


def test_a_bot_started_afresh_still_restarts_conversations_whose_step_is_gone(
    tmp_path: Path,
) -> None:
    # No take_over: the engine of a restarted process knows no previous flows.
    new = copy_flows(tmp_path, "new", NAME_RENAMED)
    chat = Chat(engine_for(FLOWS))
    to_name(chat)
    chat.engine = engine_for(new)
    assert chat.type("Ivan Petrov") == [UPDATED, "Menu"]


# --------------------------------------------------------------------------- the reloader


class RecordingChannel(Channel):
    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[Action] = []
        self.bound: list[FlowSet] = []

    def bind(self, flows: FlowSet) -> None:
        self.bound.append(flows)

    async def start(self, deliver: Deliver) -> None:
        self.deliver = deliver

    async def perform(self, action: Action, *, idempotency_key: str | None = None) -> None:
        self.sent.append(action)

    async def stop(self) -> None:
        pass


class Served:
    """A hub with one recording channel, serving a flows folder, and its reloader."""

    def __init__(self, folder: Path, watch: bool = True) -> None:
        self.channel = RecordingChannel("test")
        self.hub = Hub(engine_for(folder), MemoryStore(), {"test": self.channel})
        self.reloader = FlowReloader(
            folder, None, self.hub, {"test": self.channel}, poll=0.02, settle=0.05, watch=watch
        )

    async def say(self, text: str) -> list[str]:
        return await self._deliver(Inbound.typed(ADDRESS, text, "en"))

    async def press(self, label: str) -> list[str]:
        payload = payload_of(self.channel.sent, label)
        return await self._deliver(Inbound.press(ADDRESS, payload, "en"))

    async def _deliver(self, event: Inbound) -> list[str]:
        before = len(self.channel.sent)
        await self.hub.deliver(event)
        return texts(self.channel.sent[before:])


async def wait_for(condition: object, seconds: float = 3.0) -> None:
    assert callable(condition)
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


def test_a_broken_folder_keeps_the_old_flows_and_logs_where(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = copy_flows(tmp_path, "flows")
    served = Served(folder)
    engine = served.hub.engine
    edit(folder / "intake.yaml", [("goto: born\n", "goto: nowhere\n")])
    line = (folder / "intake.yaml").read_text(encoding="utf-8").split("\n").index(
        "    goto: nowhere"
    ) + 1

    async def run() -> None:
        assert await served.reloader.reload_now() is False
        # The old flows go on serving.
        await served.say("/start")
        assert await served.press("Intake") == ["Which kind?"]

    with caplog.at_level(logging.INFO, logger="hotline.serve.reload"):
        asyncio.run(run())
    assert served.hub.engine is engine and served.channel.bound == []
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(f"intake.yaml:{line}:" in message and "nowhere" in message for message in errors)
    assert any("flows not reloaded" in message for message in errors)
    assert not any("flows reloaded" in r.getMessage() for r in caplog.records)


def test_the_bot_picks_up_changed_flows_and_the_conversation_carries_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = copy_flows(tmp_path, "flows")
    served = Served(folder)
    intake, contact = folder / "intake.yaml", folder / "contact.yaml"

    async def run() -> None:
        await served.reloader.start()
        try:
            await served.say("/start")
            await served.press("Intake")
            await served.press("Conscription")
            assert await served.say("Ivan Petrov") == ["Ivan Petrov, date of birth?"]

            # 1. On request.
            edit(intake, [("date of birth?", "birthday?")])
            assert await served.reloader.reload_now() is True
            assert await served.say("someday") == [
                DEFAULT_TEXTS["invalid_input"]["en"],
                "Ivan Petrov, birthday?",
            ]

            # 2. Seen on disk: written in two steps, as editors do.
            reloads = served.reloader.reloads
            edit(contact, [("en: Phone?", "en: Phone")])
            await asyncio.sleep(0.01)
            edit(contact, [("en: Phone", "en: Telephone?")])
            await wait_for(lambda: served.reloader.reloads > reloads)
            assert await served.say("01.02.2004") == ["Telephone?"]

            # 3. SIGHUP, with nothing changed: a reload all the same.
            reloads = served.reloader.reloads
            os.kill(os.getpid(), signal.SIGHUP)
            await wait_for(lambda: served.reloader.reloads > reloads)
        finally:
            await served.reloader.stop()

    with caplog.at_level(logging.INFO, logger="hotline.serve.reload"):
        asyncio.run(run())
    assert served.reloader.reloads == 3
    assert len(served.channel.bound) == 3
    assert served.channel.bound[-1] is served.hub.engine.flows
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert infos.count("flows reloaded: 3 flows") == 3
    # Nothing the person wrote reaches the log.
    assert not any("Ivan" in r.getMessage() for r in caplog.records)


def test_without_the_watch_only_sighup_reloads(tmp_path: Path) -> None:
    folder = copy_flows(tmp_path, "flows")
    served = Served(folder, watch=False)

    async def run() -> None:
        await served.reloader.start()
        try:
            edit(folder / "intake.yaml", [("date of birth?", "birthday?")])
            await asyncio.sleep(0.2)
            assert served.reloader.reloads == 0
            os.kill(os.getpid(), signal.SIGHUP)
            await wait_for(lambda: served.reloader.reloads == 1)
        finally:
            await served.reloader.stop()

    asyncio.run(run())
    # Stopped: SIGHUP is the process's own business again (not sent: it would end pytest).
    assert not served.reloader._signal_set


def test_the_watch_sees_templates_and_ignores_lock_and_hidden_files(tmp_path: Path) -> None:
    folder = copy_flows(tmp_path, "flows")
    (folder / "templates").mkdir()
    (folder / "templates" / "letter.docx").write_bytes(b"one")
    before = folder_stamps(folder)
    (folder / "templates" / "~$letter.docx").write_bytes(b"lock")
    (folder / ".intake.yaml.swp").write_bytes(b"swap")
    assert folder_stamps(folder) == before
    (folder / "templates" / "letter.docx").write_bytes(b"two!")
    assert folder_stamps(folder) != before
    assert "bot.yaml" in before and os.path.join("templates", "letter.docx") in before
