"""The conversation engine: (session, inbound event) -> (new session, outbound actions).

No I/O and no awaiting here. Each loaded flow becomes one `transitions` state machine,
built once: its states are the flow's steps (plus one state per step of another flow that
it jumps to) and every move a step can make is a trigger. A conversation is a small
`Session` record, never a machine or a model attached to one: to move, the engine puts the
session's step on a throwaway cursor and fires the move's trigger on it.

Authored names never become callbacks: the machines carry no callbacks at all, so
`transitions` never resolves a string from YAML into Python.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from transitions import Machine
from transitions.core import Event

from engine.conversation import (
    DOCX_MIME,
    Action,
    Address,
    Button,
    CancelHandover,
    ForgetUser,
    Frame,
    HandoverContext,
    Inbound,
    InboundKind,
    RelayToOperator,
    SendDocument,
    SendText,
    Session,
    StartHandover,
    Status,
)
from engine.documents import (
    DocumentError,
    DocumentRenderer,
    DocxRenderer,
    safe_file_name,
)
from engine.expressions import EvaluationError
from engine.inputs import Refused, clean, match_option, read_answer
from engine.model import LAWYER_FLOW, Flow, FlowSet, InputType, Step, StepKind, Target, Text
from engine.privacy import SessionKeys, session_key
from engine.routing import Router, TextRouter, written_in
from engine.texts import LANGUAGE_NAMES

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

# A chain of steps that need no answer (goto, branch, call, end-return) longer than this is
# a loop the checker could not rule out (conditions that never change); stop it politely.
MAX_AUTOMATIC_STEPS = 500
MAX_HISTORY = 30
COMMANDS = ("start", "back", "restart", "language", "lawyer", "forget", "help", "cancel")
LAWYER_OFFER = "/lawyer"  # in Session.offers: the "talk to a lawyer" button
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([a-z_][a-z0-9_]*)\}")


@dataclass(frozen=True, slots=True)
class Outcome:
    """The engine's answer: the session to store (None: delete it) and what to send."""

    session: Session | None
    actions: list[Action]
    # Filled only when the engine was built with trace=True (replay coverage, graphs):
    # every step entered, and every move taken as (flow, step, move index).
    visited: tuple[tuple[str, str], ...] = ()
    moves: tuple[tuple[str, str, int], ...] = ()


class _Cursor:
    """The model that `transitions` moves: it only holds the current state's name."""

    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state = ""


class _FlowMachine:
    """One flow's `transitions.Machine` and, per step, the Event of each of its moves."""

    __slots__ = ("destinations", "machine", "moves")

    def __init__(self, flow: Flow) -> None:
        states: list[str] = list(flow.steps)
        self.destinations: dict[str, Target] = {name: Target(flow.id, name) for name in states}
        transitions: list[dict[str, str]] = []
        for name, step in flow.steps.items():
            for index, target in enumerate(_move_targets(step)):
                dest = target.step if target.flow == flow.id else str(target)
                if dest not in self.destinations:
                    states.append(dest)
                    self.destinations[dest] = target
                transitions.append({"trigger": f"{name}#{index}", "source": name, "dest": dest})
        self.machine = Machine(
            model=None,
            states=states,
            initial=flow.start,
            transitions=transitions,
            auto_transitions=False,
        )
        self.moves: dict[str, tuple[Event, ...]] = {
            name: tuple(self.machine.events[f"{name}#{i}"] for i in range(len(_move_targets(step))))
            for name, step in flow.steps.items()
        }


def _move_targets(step: Step) -> list[Target]:
    """A step's moves, in trigger order. A call's only move is the return to its goto."""
    return step.targets()


class Engine:
    """Runs a checked FlowSet. Thread-compatible: use one event at a time per session."""

    def __init__(
        self,
        flows: FlowSet,
        router: Router | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        trace: bool = False,
        documents: DocumentRenderer | None = None,
        keys: SessionKeys | None = None,
    ) -> None:
        self.flows = flows
        # Pseudonymous session keys for stores on disk; None: plain "channel:chat".
        self.keys = keys
        self.trace = trace
        # Fills `document` steps' templates; by default the .docx files of the flows folder.
        self.documents = documents if documents is not None else DocxRenderer(flows.folder)
        self.bot = flows.bot
        self.router = router or TextRouter(flows)
        self.clock = clock or dt.datetime.now
        self._machines = {fid: _FlowMachine(flow) for fid, flow in flows.flows.items()}
        self._cursor = _Cursor()

    # ------------------------------------------------------------------ public

    def key(self, address: Address) -> str:
        """The key `address`'s session is stored under (the hub and chats load by it)."""
        return session_key(address, self.keys)

    def new_session(self, key: str, language_hint: str | None = None, text: str = "") -> Session:
        return Session(key=key, language=self._pick_language(language_hint, text))

    def handle(self, session: Session | None, event: Inbound) -> Outcome:
        """Apply one inbound event. `session` is None for someone the bot does not know yet."""
        if session is None:
            if event.kind is InboundKind.UNSUPPORTED:
                # A photo from a stranger: answer, and keep nothing at all about them.
                turn = _Turn(
                    self,
                    self.new_session(self.key(event.address), event.language_hint),
                    event.address,
                )
                turn.say(turn.text("unsupported_message"))
                return Outcome(None, turn.actions)
            session = self.new_session(self.key(event.address), event.language_hint, event.text)
        else:
            session = session.copy()
        session.updated = time.time()
        turn = _Turn(self, session, event.address)
        if self.trace:
            turn.visited, turn.moves = [], []
        try:
            turn.dispatch(event)
        except _Forget:
            return Outcome(None, turn.actions, *turn.traced())
        except _RunawayChain:
            log.error(
                "flow %s stopped after %d automatic steps; check its branch conditions",
                session.flow,
                MAX_AUTOMATIC_STEPS,
            )
            session.status = Status.IDLE
            session.flow = session.step = None
            session.stack.clear()
            turn.actions.append(SendText(event.address, turn.text("error")))
        return Outcome(session, turn.actions, *turn.traced())

    # ------------------------------------------------------------------ helpers for _Turn

    def move(self, flow_id: str, step: str, index: int) -> Target:
        """Fire move `index` of `step` on the flow's machine; where it lands.
        (Turns call `_Turn.move`, which also records the move when tracing.)"""
        fm = self._machines[flow_id]
        cursor = self._cursor
        cursor.state = step
        fm.moves[step][index].trigger(cursor)
        return fm.destinations[cursor.state]

    def _pick_language(self, hint: str | None, text: str) -> str:
        languages = self.bot.languages
        if hint:
            base = hint.split("-")[0].split("_")[0].lower()
            if base in languages:
                return base
        return written_in(text, languages) or self.bot.default_language


class _Forget(Exception):
    """Raised inside a turn to drop the whole session."""


class _RunawayChain(Exception):
    pass


class _Turn:
    """The handling of one inbound event: mutates its own session copy, collects actions."""

    __slots__ = ("actions", "address", "engine", "moves", "session", "visited")

    def __init__(self, engine: Engine, session: Session, address: Address) -> None:
        self.engine = engine
        self.session = session
        self.address = address
        self.actions: list[Action] = []
        self.visited: list[tuple[str, str]] | None = None
        self.moves: list[tuple[str, str, int]] | None = None

    def traced(self) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str, int], ...]]:
        return tuple(self.visited or ()), tuple(self.moves or ())

    def move(self, flow_id: str, step: str, index: int) -> Target:
        if self.moves is not None:
            self.moves.append((flow_id, step, index))
        return self.engine.move(flow_id, step, index)

    # ------------------------------------------------------------------ texts

    def text(self, key: str) -> str:
        return self.render(self.engine.bot.texts[key])

    def render(self, text: Text) -> str:
        raw = text.by_language.get(self.session.language)
        if raw is None:
            raw = text.get(self.session.language, self.engine.bot.default_language)
        if "{" not in raw and "}" not in raw:
            return raw
        answers = self.session.answers

        def substitute(match: re.Match[str]) -> str:
            found = match.group(0)
            if found == "{{":
                return "{"
            if found == "}}":
                return "}"
            value = answers.get(match.group(1))
            return found if value is None else format_value(value)

        return _PLACEHOLDER.sub(substitute, raw)

    def say(self, text: str, buttons: tuple[Button, ...] = ()) -> None:
        self.actions.append(SendText(self.address, text, buttons))

    # ------------------------------------------------------------------ dispatch

    def dispatch(self, event: Inbound) -> None:
        s = self.session
        if event.kind is InboundKind.CLOSE:
            if s.status is Status.HANDOVER:
                s.status, s.queue = Status.IDLE, None
                s.flow = s.step = None
                self.say(self.text("handover_closed"))
            return
        if event.kind is InboundKind.UNSUPPORTED:
            if s.status is not Status.HANDOVER:
                self.say(self.text("unsupported_message"))
            return
        if event.kind is InboundKind.PRESS:
            self.on_press(event.payload)
            return
        text = clean(event.text)
        command = _command(text)
        if command is not None:
            self.on_command(*command)
        elif s.status is Status.HANDOVER:
            assert s.queue is not None
            self.actions.append(RelayToOperator(self.address, s.queue, text))
        elif s.status is Status.ASKING:
            self.on_answer(text)
        else:
            self.on_question(text)

    # ------------------------------------------------------------------ commands

    def on_command(self, name: str, argument: str) -> None:
        s = self.session
        if name == "forget":
            self.actions.append(ForgetUser(self.address))
            if s.status is Status.HANDOVER and s.queue:
                self.actions.insert(0, CancelHandover(self.address, s.queue))
            self.say(self.text("forgotten"))
            raise _Forget
        if name == "help":
            self.say(self.text("help"))
            return
        if name == "language":
            self.on_language(argument)
            return
        if s.status is Status.HANDOVER:
            if name in ("cancel", "start", "restart"):
                self.leave_handover()
                self.show_menu()
            else:
                self.say(self.text("handover_waiting"))
            return
        if name == "start" or name == "cancel":
            self.reset()
            self.show_menu()
        elif name == "restart":
            first = s.path[0] if s.path else None
            if first is None:
                self.reset()
                self.show_menu()
            else:
                self.start_flow(first)
        elif name == "back":
            self.go_back()
        elif name == "lawyer":
            self.to_lawyer()
        else:  # pragma: no cover - _command only yields known names
            self.say(self.text("help"))

    def reset(self) -> None:
        s = self.session
        s.offers = []
        s.status = Status.IDLE
        s.flow = s.step = s.queue = None
        s.stack.clear()
        s.answers.clear()
        s.history.clear()
        s.path.clear()

    def on_language(self, argument: str) -> None:
        languages = self.engine.bot.languages
        wanted = argument.strip().lower()
        chosen = None
        for lang in languages:
            if wanted in (lang, LANGUAGE_NAMES.get(lang, lang).lower()):
                chosen = lang
        if chosen is not None:
            self.set_language(chosen)
            return
        self.session.turn += 1
        buttons = tuple(
            Button(LANGUAGE_NAMES.get(lang, lang), f"{self.session.turn}.L{i}")
            for i, lang in enumerate(languages)
        )
        self.say(self.text("language_prompt"), buttons)

    def set_language(self, language: str) -> None:
        self.session.language = language
        self.say(self.text("language_set"))
        if self.session.status is not Status.HANDOVER:
            self.present_current()

    def to_lawyer(self) -> None:
        if LAWYER_FLOW in self.engine.flows.flows:
            self.start_flow(LAWYER_FLOW)
            return
        queue = next(iter(self.engine.bot.queues), None)
        if queue is None:
            self.say(self.text("not_understood"))
            self.show_menu()
            return
        self.open_handover(queue)

    def go_back(self) -> None:
        s = self.session
        if s.status is Status.ASKING and len(s.history) >= 2:
            s.history.pop()
            frame = s.history[-1]
            s.flow, s.step, s.stack = frame.flow, frame.step, list(frame.stack)
            self.ask(self.engine.flows.step(Target(frame.flow, frame.step)), remember=False)
            return
        self.say(self.text("back_unavailable"))
        self.present_current()

    # ------------------------------------------------------------------ buttons

    def on_press(self, payload: str) -> None:
        s = self.session
        turn, _, which = payload.partition(".")
        if s.status is Status.HANDOVER:
            self.say(self.text("handover_waiting"))
            return
        if not turn.isdigit() or int(turn) != s.turn or not which:
            self.say(self.text("moved_on"))
            self.present_current()
            return
        if which.startswith("L") and which[1:].isdigit():
            languages = self.engine.bot.languages
            index = int(which[1:])
            if index < len(languages):
                self.set_language(languages[index])
                return
        if not which.isdigit():
            self.say(self.text("moved_on"))
            self.present_current()
            return
        index = int(which)
        if s.status is Status.MENU:
            offered = s.offers or self.engine.bot.menu.flows
            if index < len(offered):
                if offered[index] == LAWYER_OFFER:
                    self.to_lawyer()
                else:
                    self.start_flow(offered[index])
                return
        elif s.status is Status.ASKING:
            step = self.current_step()
            if step.kind is StepKind.CHOICES and index < len(step.choices):
                self.choose(step, index)
                return
            if step.input is not None and index < len(step.input.options):
                self.accept(step, self.render(step.input.options[index]))
                return
        self.say(self.text("moved_on"))
        self.present_current()

    # ------------------------------------------------------------------ answers

    def current_step(self) -> Step:
        s = self.session
        assert s.flow is not None and s.step is not None
        return self.engine.flows.step(Target(s.flow, s.step))

    def on_answer(self, text: str) -> None:
        step = self.current_step()
        if step.kind is StepKind.CHOICES:
            labels = [self.render(choice.label) for choice in step.choices]
            picked = match_option(text, labels)
            if isinstance(picked, Refused):
                self.refuse(step, "invalid_choice")
                return
            self.choose(step, labels.index(picked))
            return
        assert step.input is not None
        options = [self.render(option) for option in step.input.options]
        value = read_answer(step.input, text, options)
        if isinstance(value, Refused):
            default = "invalid_choice" if step.input.type is InputType.ONE_OF else "invalid_input"
            self.refuse(step, default)
            return
        self.accept(step, value)

    def refuse(self, step: Step, default_text: str) -> None:
        self.say(self.render(step.invalid) if step.invalid else self.text(default_text))
        self.ask(step, remember=False)

    def choose(self, step: Step, index: int) -> None:
        choice = step.choices[index]
        if choice.sets:
            self.session.answers.update(choice.sets)
        self.run(self.move(step.flow, step.name, index))

    def accept(self, step: Step, value: object) -> None:
        assert step.input is not None
        self.session.answers[step.input.save] = value
        self.run(self.move(step.flow, step.name, 0))

    # ------------------------------------------------------------------ free text

    def on_question(self, text: str) -> None:
        s = self.session
        if s.status is Status.MENU and text.isdigit():
            # "2" at the menu presses its second button, on every channel alike.
            offered = s.offers or self.engine.bot.menu.flows
            if 1 <= int(text) <= len(offered):
                self.on_press(f"{s.turn}.{int(text) - 1}")
                return
        route = self.engine.router.route(text, self.session.language)
        flows = self.engine.flows.flows
        if route.flow is not None and route.flow in flows:
            self.start_flow(route.flow)
            return
        if route.candidates:
            self.offer([fid for fid in route.candidates if fid in flows])
            return
        self.say(self.text("not_understood"))
        self.show_menu()
        if LAWYER_FLOW not in self.engine.bot.menu.flows:
            self.offer([], prompt=False)

    def offer(self, flow_ids: list[str], prompt: bool = True) -> None:
        """'Did you mean' with up to three flows as buttons, plus a lawyer button."""
        s = self.session
        s.status = Status.MENU
        s.turn += 1
        offers = flow_ids[:3]
        if LAWYER_FLOW not in offers:
            offers.append(LAWYER_OFFER)
        s.offers = offers
        flows = self.engine.flows.flows
        labels = [
            self.text("lawyer_button") if fid == LAWYER_OFFER else self.render(flows[fid].title)
            for fid in offers
        ]
        buttons = tuple(Button(label, f"{s.turn}.{i}") for i, label in enumerate(labels))
        self.say(self.text("did_you_mean") if prompt else self.text("lawyer_button"), buttons)

    # ------------------------------------------------------------------ moving

    def start_flow(self, flow_id: str) -> None:
        self.reset()
        self.session.path.append(flow_id)
        flow = self.engine.flows.flows[flow_id]
        self.run(Target(flow_id, flow.start))

    def run(self, target: Target) -> None:
        """Enter `target` and go on through steps that need no answer."""
        s = self.session
        engine = self.engine
        flows = engine.flows
        for _ in range(MAX_AUTOMATIC_STEPS):
            if target.flow != s.flow and (not s.path or s.path[-1] != target.flow):
                s.path.append(target.flow)
            s.flow, s.step = target.flow, target.step
            if self.visited is not None:
                self.visited.append((target.flow, target.step))
            step = flows.step(target)
            kind = step.kind
            if kind is StepKind.CHOICES or kind is StepKind.INPUT:
                s.status = Status.ASKING
                self.ask(step)
                return
            if step.say is not None:
                self.say(self.render(step.say))
            self.send_document(step)
            if kind is StepKind.GOTO:
                target = self.move(step.flow, step.name, 0)
            elif kind is StepKind.BRANCH:
                target = self.move(step.flow, step.name, self.pick_arm(step))
            elif kind is StepKind.CALL:
                assert step.call is not None
                s.stack.append((step.flow, step.name))
                target = Target(step.call, flows.flows[step.call].start)
            elif kind is StepKind.HANDOVER:
                assert step.handover is not None
                if step.handover.say is not None:
                    self.say(self.render(step.handover.say))
                self.open_handover(step.handover.queue)
                return
            else:  # END
                if s.stack:
                    caller_flow, caller_step = s.stack.pop()
                    target = self.move(caller_flow, caller_step, 0)
                    continue
                # The conversation is over: keep nothing it no longer needs.
                s.status = Status.IDLE
                s.flow = s.step = None
                s.history.clear()
                s.answers.clear()
                return
        raise _RunawayChain

    def pick_arm(self, step: Step) -> int:
        today = self.engine.clock().date()
        for index, arm in enumerate(step.branch):
            if arm.condition is None:
                return index
            try:
                if arm.condition.test(self.session.answers, today):
                    return index
            except EvaluationError as err:
                # Never log the values: only where, and the kind of problem.
                log.warning(
                    "condition of %s.%s arm %d failed (%s); taking the next arm",
                    step.flow,
                    step.name,
                    index + 1,
                    type(err).__name__,
                )
        return len(step.branch) - 1

    def ask(self, step: Step, remember: bool = True) -> None:
        """Send a question step's text with its buttons; remember it for /back."""
        s = self.session
        s.turn += 1
        buttons: tuple[Button, ...] = ()
        if step.kind is StepKind.CHOICES:
            buttons = tuple(
                Button(self.render(choice.label), f"{s.turn}.{i}")
                for i, choice in enumerate(step.choices)
            )
        elif step.input is not None and step.input.options:
            buttons = tuple(
                Button(self.render(option), f"{s.turn}.{i}")
                for i, option in enumerate(step.input.options)
            )
        self.say(self.render(step.say) if step.say is not None else "", buttons)
        if remember:
            # A question asked again (wrong answer, /language, stale button) is two
            # messages: the invalid text and the question; its document came the first time.
            self.send_document(step)
            frame = Frame(step.flow, step.name, tuple(s.stack))
            if not s.history or s.history[-1] != frame:
                s.history.append(frame)
                if len(s.history) > MAX_HISTORY:
                    del s.history[0]

    def send_document(self, step: Step) -> None:
        """Fill the step's document, if it has one, and send it as its own message right
        after the step's `say`. The file name is the step's `name` in the person's language
        with `{var}`s filled in and made safe. If the document cannot be made, the person
        gets the error text instead, and the log gets the step and the kind of problem."""
        document = step.document
        if document is None:
            return
        s = self.session
        renderer = self.engine.documents
        template, language = document.template, s.language
        # A snapshot: the session goes on changing after this turn, the document must not.
        answers = dict(s.answers)
        today = self.engine.clock().date()
        where = f"{step.flow}.{step.name}"

        def make() -> bytes:
            try:
                return renderer.render(template, answers, language, today)
            except DocumentError as err:
                # Never log the message text or the answers: only where, and what kind.
                log.error("document of %s not made (%s)", where, err.kind)
                raise

        name = safe_file_name(self.render(document.name))
        self.actions.append(
            SendDocument(self.address, name, make, DOCX_MIME, fallback_text=self.text("error"))
        )

    def present_current(self) -> None:
        s = self.session
        if s.status is Status.ASKING and s.flow is not None:
            self.ask(self.current_step(), remember=False)
        elif s.status is Status.HANDOVER:
            self.say(self.text("handover_waiting"))
        else:
            self.show_menu()

    def show_menu(self) -> None:
        s = self.session
        s.status = Status.MENU
        s.offers = []
        s.turn += 1
        menu = self.engine.bot.menu
        flows = self.engine.flows.flows
        buttons = tuple(
            Button(self.render(flows[fid].title), f"{s.turn}.{i}")
            for i, fid in enumerate(menu.flows)
        )
        self.say(self.render(menu.say), buttons)

    # ------------------------------------------------------------------ hand-over

    def open_handover(self, queue: str) -> None:
        s = self.session
        s.status = Status.HANDOVER
        s.queue = queue
        answers = tuple((name, format_value(value)) for name, value in s.answers.items())
        context = HandoverContext(s.language, tuple(s.path), answers)
        self.actions.append(StartHandover(self.address, queue, context))

    def leave_handover(self) -> None:
        s = self.session
        if s.queue is not None:
            self.actions.append(CancelHandover(self.address, s.queue))
        self.say(self.text("handover_cancelled"))
        self.reset()


def _command(text: str) -> tuple[str, str] | None:
    """('start', '') for '/start', '/START@hotline_bot' or '/language en'."""
    if not text.startswith("/"):
        return None
    head, _, argument = text[1:].partition(" ")
    name = head.split("@", 1)[0].lower()
    if name in COMMANDS:
        return name, argument.strip()
    return None if not name.isalpha() else ("help", "")


def format_value(value: object) -> str:
    """How a saved answer reads inside a text: dates as DD.MM.YYYY, 3.0 as 3."""
    if isinstance(value, dt.date):
        return value.strftime("%d.%m.%Y")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
