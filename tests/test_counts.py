"""What the engine counts for the metrics and `hotline stats` (`Outcome.counts`).

A conversation is counted for the flow it began in: its start, its completion (the
outermost `end`, not a called flow's return) and its hand-over. Only flow ids, queue ids
and error kinds ever appear, never anything about the person.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.conversation import Address, Inbound, InboundKind, SendText, Session
from engine.loader import load_folder
from engine.runtime import NO_FLOW, Engine, Outcome

ADDRESS = Address("test", "4242")

BOT = """\
languages: [en]
menu:
  say: Hello
  flows: [main, direct]
handover:
  lawyers: Lawyers
"""

MAIN = """\
flow: main
title: Main
match:
  en: [summons]
steps:
  pick:
    say: Which?
    choices:
      - label: Finish here
        goto: done
      - label: With a call
        goto: with_call
      - label: Elsewhere
        goto: other.start
      - label: Human
        goto: human
      - label: Divide
        goto: divisor
      - label: Loop
        goto: loop
  with_call:
    call: sub
    goto: done
  human:
    handover: {queue: lawyers}
  divisor:
    say: A number?
    input: {save: n, type: number}
    goto: divide
  divide:
    branch:
      - when: 10 / n > 1
        goto: done
      - goto: done
  loop:
    branch:
      - when: today() < today()
        goto: done
      - goto: loop_again
  loop_again:
    goto: loop
  done:
    say: Bye
    end: true
"""

SUB = """\
flow: sub
title: Sub
steps:
  ask:
    say: Sub question?
    choices:
      - label: Go on
        goto: over
  over:
    end: true
"""

OTHER = """\
flow: other
title: Other
steps:
  start:
    say: Other flow
    end: true
"""

DIRECT = """\
flow: direct
title: Direct
steps:
  start:
    say: Straight to a human
    handover: {queue: lawyers}
"""


@pytest.fixture
def engine(flows: Callable[[dict[str, str | bytes | None]], Path]) -> Engine:
    folder = flows(
        {
            "bot.yaml": BOT,
            "main.yaml": MAIN,
            "sub.yaml": SUB,
            "other.yaml": OTHER,
            "direct.yaml": DIRECT,
        }
    )
    loaded, report = load_folder(folder)
    assert loaded is not None, [str(d) for d in report.diagnostics]
    return Engine(loaded, clock=lambda: dt.datetime(2026, 11, 25, 12, 0))


class Person:
    """Drives the engine like the hub does, keeping each outcome's counts."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.session: Session | None = None
        self.last: Outcome | None = None

    def feed(self, event: Inbound) -> tuple[tuple[str, str], ...]:
        self.last = self.engine.handle(self.session, event)
        self.session = self.last.session
        return self.last.counts

    def type(self, text: str) -> tuple[tuple[str, str], ...]:
        return self.feed(Inbound.typed(ADDRESS, text, "en"))

    def press(self, label: str) -> tuple[tuple[str, str], ...]:
        assert self.last is not None
        buttons = [b for a in self.last.actions if isinstance(a, SendText) for b in a.buttons]
        (button,) = [b for b in buttons if b.label == label]
        return self.feed(Inbound.press(ADDRESS, button.payload, "en"))


def test_nothing_to_count_is_the_shared_empty_tuple(engine: Engine) -> None:
    person = Person(engine)
    assert person.type("/start") == ()
    assert person.last is not None and person.last.counts == ()
    assert person.type("/help") == ()


def test_a_flow_from_the_menu_starts_and_completes(engine: Engine) -> None:
    person = Person(engine)
    person.type("/start")
    assert person.press("Main") == (("start", "main"),)
    assert person.press("Finish here") == (("complete", "main"),)
    # The conversation is over; the next message counts nothing by itself.
    assert person.type("/help") == ()


def test_a_typed_question_routed_to_a_flow_is_a_start(engine: Engine) -> None:
    person = Person(engine)
    assert person.type("I got a summons") == (("start", "main"),)


def test_a_called_flows_end_is_no_completion_only_the_outermost_end_is(engine: Engine) -> None:
    person = Person(engine)
    person.type("/start")
    person.press("Main")
    # The call runs `sub` from its start: no start of `sub` is counted.
    assert person.press("With a call") == ()
    # `sub` ends, returns to `main`, which goes on to its own end: one completion, of main.
    assert person.press("Go on") == (("complete", "main"),)


def test_a_goto_into_another_flow_completes_the_flow_the_person_began(engine: Engine) -> None:
    person = Person(engine)
    person.type("/start")
    person.press("Main")
    assert person.press("Elsewhere") == (("complete", "main"),)


def test_a_handover_step_counts_the_flow_and_the_queue(engine: Engine) -> None:
    person = Person(engine)
    person.type("/start")
    person.press("Main")
    assert person.press("Human") == (("handover", "main"), ("queue", "lawyers"))
    # Messages relayed to the lawyers and the operator's close count nothing.
    assert person.type("hello?") == ()
    assert person.feed(Inbound(InboundKind.CLOSE, ADDRESS)) == ()


def test_a_flow_that_hands_over_at_once_counts_its_start_and_its_handover(
    engine: Engine,
) -> None:
    person = Person(engine)
    person.type("/start")
    assert person.press("Direct") == (
        ("start", "direct"),
        ("handover", "direct"),
        ("queue", "lawyers"),
    )


def test_lawyer_from_the_menu_is_no_flows_handover(engine: Engine) -> None:
    # No `lawyer` flow here: /lawyer opens the first queue directly.
    person = Person(engine)
    person.type("/start")
    assert person.type("/lawyer") == (("handover", NO_FLOW), ("queue", "lawyers"))


def test_lawyer_in_the_middle_of_a_flow_is_that_flows_handover(engine: Engine) -> None:
    person = Person(engine)
    person.type("/start")
    person.press("Main")
    person.press("With a call")  # now inside the called flow `sub`
    assert person.type("/lawyer") == (("handover", "main"), ("queue", "lawyers"))


def test_restart_is_a_new_start(engine: Engine) -> None:
    person = Person(engine)
    person.type("/start")
    person.press("Main")
    assert person.type("/restart") == (("start", "main"),)


def test_a_failing_condition_counts_an_error_kind(engine: Engine) -> None:
    person = Person(engine)
    person.type("/start")
    person.press("Main")
    person.press("Divide")
    assert person.type("0") == (("error", "condition"), ("complete", "main"))


def test_a_runaway_chain_counts_an_error_kind(engine: Engine) -> None:
    person = Person(engine)
    person.type("/start")
    person.press("Main")
    assert person.press("Loop") == (("error", "runaway"),)


def test_counts_hold_no_identifiers(engine: Engine) -> None:
    person = Person(engine)
    seen: list[tuple[str, str]] = []
    for step in ("/start", "summons", "/restart", "/lawyer", "I am Ivan, +7 999 123 45 67"):
        seen.extend(person.type(step))
    labels = {label for _, label in seen}
    assert labels <= {"main", "direct", "sub", "other", "lawyers", NO_FLOW}
    assert ADDRESS.chat not in repr(seen)
