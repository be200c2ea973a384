"""The runtime's semantics: feed events, assert the actions (no network, no mocks)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from engine.conversation import (
    Address,
    CancelHandover,
    ForgetUser,
    Inbound,
    InboundKind,
    RelayToOperator,
    SendText,
    Session,
    StartHandover,
    Status,
)
from engine.loader import load_folder
from engine.runtime import Engine
from engine.stores import MemoryStore

FLOWS = Path(__file__).parent / "data" / "semantics"
ADDRESS = Address("test", "42")


@pytest.fixture(scope="module")
def engine() -> Engine:
    flows, report = load_folder(FLOWS)
    assert flows is not None, [str(d) for d in report.diagnostics]
    return Engine(flows, clock=lambda: dt.datetime(2026, 11, 25, 12, 0))


class Chat:
    """One person talking to the engine, the way an adapter would drive it."""

    def __init__(self, engine: Engine, language: str | None = "en") -> None:
        self.engine = engine
        self.store = MemoryStore()
        self.language = language
        self.last: list = []

    @property
    def session(self) -> Session | None:
        return self.store.load(f"{ADDRESS.channel}:{ADDRESS.chat}")

    def feed(self, event: Inbound) -> list:
        outcome = self.engine.handle(self.session, event)
        if outcome.session is None:
            self.store.delete(f"{ADDRESS.channel}:{ADDRESS.chat}")
        else:
            self.store.save(outcome.session)
        self.last = outcome.actions
        return outcome.actions

    def type(self, text: str) -> list[str]:
        return texts(self.feed(Inbound.typed(ADDRESS, text, self.language)))

    def press(self, label: str) -> list[str]:
        buttons = [b for a in self.last if isinstance(a, SendText) for b in a.buttons]
        (button,) = [b for b in buttons if b.label == label]
        return texts(self.feed(Inbound.press(ADDRESS, button.payload, self.language)))

    def buttons(self) -> list[str]:
        return [b.label for a in self.last if isinstance(a, SendText) for b in a.buttons]


def texts(actions: list) -> list[str]:
    return [a.text for a in actions if isinstance(a, SendText)]


def through_to_name(chat: Chat) -> None:
    chat.type("/start")
    chat.press("Intake")
    chat.press("Conscription")


def test_start_shows_the_menu_with_a_button_per_flow(engine: Engine) -> None:
    chat = Chat(engine)
    assert chat.type("/start") == ["Menu"]
    assert chat.buttons() == ["Intake", "Talk to a lawyer"]


def test_a_whole_flow_with_inputs_a_branch_a_call_and_its_return(engine: Engine) -> None:
    chat = Chat(engine)
    chat.type("/start")
    assert chat.press("Intake") == ["Which kind?"]
    assert chat.press("Mobilisation") == ["Your name?"]
    assert chat.type("Ivan Petrov") == ["Ivan Petrov, date of birth?"]
    assert chat.type("01.02.2004") == ["Phone?"]  # branch: under 30, then the call
    assert chat.type("+7 (900) 123-45-67") == ["How many children?"]
    assert chat.type("2") == ["Pick one"]
    assert chat.buttons() == ["Red", "Blue"]
    session = chat.session
    assert session is not None and session.stack == [("intake", "contacts")]
    assert session.answers["birth_date"] == dt.date(2004, 2, 1)
    assert session.answers["children"] == 2
    assert chat.press("Blue") == ["Done Ivan Petrov, mobilisation, +79001234567.", "Bye."]
    session = chat.session
    assert session is not None and session.status is Status.IDLE and session.stack == []


def test_branch_condition_uses_the_engine_clock(engine: Engine) -> None:
    chat = Chat(engine)
    through_to_name(chat)
    chat.type("Ivan Petrov")
    assert chat.type("1996-11-25") == ["Over 30 on 25.11.1996."]  # 30 today, on 2026-11-25
    assert chat.session is not None and chat.session.status is Status.IDLE


def test_invalid_input_gets_the_invalid_text_then_the_question_again(engine: Engine) -> None:
    chat = Chat(engine)
    through_to_name(chat)
    assert chat.type("Iv") == ["Longer please.", "Your name?"]
    chat.type("Ivan Petrov")
    # No `invalid` text on this step: the bot-wide default, then the question.
    replies = chat.type("31.02.2004")
    assert replies[1] == "Ivan Petrov, date of birth?"
    assert "could not read" in replies[0]


@pytest.mark.parametrize("answer", ["1", "conscription", "  CONSCRIPTION! ", "Conscriptoin"])
def test_typed_text_equal_or_close_to_a_label_or_its_number_counts_as_a_press(
    engine: Engine, answer: str
) -> None:
    chat = Chat(engine)
    chat.type("/start")
    chat.press("Intake")
    assert chat.type(answer) == ["Your name?"]
    assert chat.session is not None and chat.session.answers["kind"] == "conscription"


def test_text_that_matches_no_choice_gets_the_default_and_the_question(engine: Engine) -> None:
    chat = Chat(engine)
    chat.type("/start")
    chat.press("Intake")
    replies = chat.type("what is this")
    assert replies[1] == "Which kind?" and "press one of the buttons" in replies[0]
    assert chat.buttons() == ["Conscription", "Mobilisation", "Lawyer"]


def test_a_button_from_an_old_message_is_refused_politely(engine: Engine) -> None:
    chat = Chat(engine)
    chat.type("/start")
    chat.press("Intake")
    old = chat.last
    chat.press("Conscription")
    stale = next(b for a in old if isinstance(a, SendText) for b in a.buttons)
    replies = texts(chat.feed(Inbound.press(ADDRESS, stale.payload, "en")))
    assert replies == ["That question has moved on. Here is the current one:", "Your name?"]
    assert chat.session is not None and chat.session.answers["kind"] == "conscription"


def test_garbage_payload_is_a_stale_press(engine: Engine) -> None:
    chat = Chat(engine)
    chat.type("/start")
    replies = texts(chat.feed(Inbound.press(ADDRESS, "x.y.z", "en")))
    assert replies[0].startswith("That question has moved on")


def test_back_returns_to_the_previous_question_even_across_a_call(engine: Engine) -> None:
    chat = Chat(engine)
    through_to_name(chat)
    chat.type("Ivan Petrov")
    chat.type("01.02.2004")
    assert chat.type("/back") == ["Ivan Petrov, date of birth?"]
    assert chat.session is not None and chat.session.stack == []
    assert chat.type("02.02.2004") == ["Phone?"]
    assert chat.session is not None and chat.session.stack == [("intake", "contacts")]
    chat.type("+79001234567")
    assert chat.type("/back") == ["Phone?"]
    assert chat.type("/back") == ["Ivan Petrov, date of birth?"]
    assert chat.type("/back") == ["Your name?"]
    assert chat.type("/back") == ["Which kind?"]
    assert chat.type("/back") == ["There is no previous step.", "Which kind?"]


def test_restart_starts_the_flow_again_with_nothing_saved(engine: Engine) -> None:
    chat = Chat(engine)
    through_to_name(chat)
    chat.type("Ivan Petrov")
    assert chat.type("/restart") == ["Which kind?"]
    assert chat.session is not None and chat.session.answers == {}


def test_language_switch_keeps_the_place_and_translates(engine: Engine) -> None:
    chat = Chat(engine)
    through_to_name(chat)
    replies = chat.type("/language")
    assert replies == ["Choose a language:"] and chat.buttons() == ["English", "Русский"]
    assert chat.press("Русский") == ["Язык: русский.", "Ваше имя?"]
    assert chat.type("/language en") == ["Language: English.", "Your name?"]


def test_language_comes_from_the_channel_hint_or_the_text(engine: Engine) -> None:
    assert Chat(engine, language="ru-RU").type("/start") == ["Меню"]
    assert Chat(engine, language=None).type("повестка") == ["Какая?"]
    assert Chat(engine, language="de").type("/start") == ["Menu"]


def test_typed_question_at_the_menu_is_routed_or_not_understood(engine: Engine) -> None:
    chat = Chat(engine)
    chat.type("/start")
    assert chat.type("I got a draft notice") == ["Which kind?"]
    chat.type("/start")
    replies = chat.type("what's the weather")
    assert replies[1] == "Menu" and "did not understand" in replies[0]


def test_end_then_anything_starts_afresh(engine: Engine) -> None:
    chat = Chat(engine)
    through_to_name(chat)
    chat.type("Ivan Petrov")
    chat.type("1990-01-01")  # too old: an end
    assert chat.session is not None and chat.session.answers == {}  # nothing kept after an end
    assert chat.type("hello")[-1] == "Menu"


def test_handover_relays_until_closed(engine: Engine) -> None:
    chat = Chat(engine)
    chat.type("/start")
    chat.press("Intake")
    actions = chat.feed(
        Inbound.press(ADDRESS, next(b for b in chat.last[0].buttons if b.label == "Lawyer").payload)
    )
    assert texts(actions) == ["Passing you on.", "A lawyer will answer."]
    (start,) = [a for a in actions if isinstance(a, StartHandover)]
    assert start.queue == "lawyers" and start.context.path == ("intake", "lawyer")
    relayed = chat.feed(Inbound.typed(ADDRESS, "my son is held"))
    assert relayed == [RelayToOperator(ADDRESS, "lawyers", "my son is held")]
    closed = chat.feed(Inbound(InboundKind.CLOSE, ADDRESS))
    assert texts(closed) == ["The lawyer has closed the conversation. /start for the menu."]
    assert chat.type("/start") == ["Menu"]


def test_lawyer_command_and_cancel(engine: Engine) -> None:
    chat = Chat(engine)
    chat.type("/start")
    actions = chat.feed(Inbound.typed(ADDRESS, "/lawyer"))
    assert any(isinstance(a, StartHandover) for a in actions)
    actions = chat.feed(Inbound.typed(ADDRESS, "/cancel"))
    assert isinstance(actions[0], CancelHandover)
    assert texts(actions) == ["You have left the queue for a lawyer.", "Menu"]


def test_forget_deletes_the_session_and_confirms(engine: Engine) -> None:
    chat = Chat(engine)
    through_to_name(chat)
    actions = chat.feed(Inbound.typed(ADDRESS, "/forget"))
    assert isinstance(actions[0], ForgetUser)
    assert "deleted" in texts(actions)[0]
    assert chat.session is None


def test_help_and_unknown_commands(engine: Engine) -> None:
    chat = Chat(engine)
    assert "/forget" in chat.type("/help")[0]
    assert "/forget" in chat.type("/nonsense")[0]
    assert chat.type("/START@hotline_bot") == ["Menu"]


def test_unsupported_message_gets_a_polite_reply_and_changes_nothing(engine: Engine) -> None:
    chat = Chat(engine)
    through_to_name(chat)
    before = chat.session
    replies = texts(chat.feed(Inbound(InboundKind.UNSUPPORTED, ADDRESS)))
    assert replies == ["I can only read text and buttons."]
    after = chat.session
    assert before is not None and after is not None and before.step == after.step


def test_a_huge_answer_is_cut_and_refused_without_cost(engine: Engine) -> None:
    chat = Chat(engine)
    through_to_name(chat)
    replies = chat.type("x" * 100_000)
    assert replies == ["Longer please.", "Your name?"]  # over the text limit: refused


def test_control_characters_are_stripped_from_answers(engine: Engine) -> None:
    chat = Chat(engine)
    through_to_name(chat)
    assert chat.type("Iv\x00an\x1b Petrov") == ["Ivan Petrov, date of birth?"]


def test_the_engine_never_mutates_the_session_it_was_given(engine: Engine) -> None:
    chat = Chat(engine)
    through_to_name(chat)
    session = chat.session
    assert session is not None
    snapshot = session.to_record()
    engine.handle(session, Inbound.typed(ADDRESS, "Ivan Petrov"))
    assert session.to_record() == snapshot


def test_session_record_round_trips(engine: Engine) -> None:
    chat = Chat(engine)
    through_to_name(chat)
    chat.type("Ivan Petrov")
    chat.type("01.02.2004")
    session = chat.session
    assert session is not None
    again = Session.from_record(session.key, session.to_record())
    assert again == session


def test_each_flow_is_one_transitions_machine_built_once(engine: Engine) -> None:
    from transitions import Machine

    machines = engine._machines
    assert set(machines) == {"intake", "contact", "lawyer"}
    intake = machines["intake"].machine
    assert isinstance(intake, Machine)
    assert set(engine.flows.flows["intake"].steps) <= set(intake.states)
    assert "lawyer.start" in intake.states  # a jump into another flow is a state of its own
    assert not intake.models  # no conversation is ever attached to a machine
    # A move is a trigger on that machine: firing one lands where the flow says.
    assert engine.move("intake", "kind", 2).flow == "lawyer"
    assert engine.move("intake", "name", 0).step == "born"


def test_a_number_typed_at_the_menu_presses_that_button(engine: Engine) -> None:
    chat = Chat(engine)
    chat.type("/start")
    assert chat.type("1") == ["Which kind?"]
    chat.type("/start")
    replies = chat.type("7")  # no such button: read as a question, not understood
    assert replies[-1] == "Menu"
