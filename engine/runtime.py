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
import functools
import hashlib
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
NO_FLOW = "-"  # the counts' label of a hand-over begun outside any flow (not a flow id)
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
    # What happened worth counting, as (event, label): ("start", flow), ("complete", flow),
    # ("handover", flow), ("queue", queue), ("error", kind). Labels are flow ids, queue ids
    # and error kinds only, never anything about the person. See `_Turn.count` for what
    # each means. Empty (the shared `()`, nothing allocated) for most events.
    counts: tuple[tuple[str, str], ...] = ()


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


# A button by where it is shown ("flow.step", or _MENU / _LANGUAGES) and its payload index.
ButtonKey = tuple[str, int]
_MENU, _LANGUAGES = "#menu", "#languages"  # '#' never starts a flow id


def _button_meanings(flows: FlowSet) -> dict[ButtonKey, object]:
    """What pressing each button the flows can show stands for: the flow a menu button
    starts, the language a language button picks, the label of a choice or an option (in
    every language). A changed label counts as a changed button: the person pressed the
    words they read, so the old press is stale rather than read as the new words."""
    meanings: dict[ButtonKey, object] = {}
    for index, language in enumerate(flows.bot.languages):
        meanings[(_LANGUAGES, index)] = language
    for index, fid in enumerate(flows.bot.menu.flows):
        meanings[(_MENU, index)] = fid
    for flow in flows.flows.values():
        for step in flow.steps.values():
            where = f"{flow.id}.{step.name}"
            if step.kind is StepKind.CHOICES:
                for index, choice in enumerate(step.choices):
                    meanings[(where, index)] = ("choice", _words(choice.label))
            elif step.input is not None:
                for index, option in enumerate(step.input.options):
                    meanings[(where, index)] = ("option", _words(option))
    return meanings


def _words(text: Text) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(text.by_language.items()))


@functools.lru_cache(maxsize=4096)
def _print(meaning: object) -> str:
    """A short fingerprint of what a button stands for, carried in its payload
    ("<turn>.<index>.<print>"): a press made before the flows changed, even across a
    restart of the bot, is recognised as stale instead of being read by its position
    as whatever button now has that place. `repr` of these tuples of strings is the same
    in every process."""
    return hashlib.blake2b(repr(meaning).encode("utf-8"), digest_size=3).hexdigest()


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
        # What each button stands for, and (after `take_over`) when that last changed.
        self._meanings = _button_meanings(flows)
        self._changed: dict[ButtonKey, float] = {}
        # A session last seen since then was moved by this engine: it fits these flows.
        self._active_since = time.time()

    # ------------------------------------------------------------------ public

    def key(self, address: Address) -> str:
        """The key `address`'s session is stored under (the hub and chats load by it)."""
        return session_key(address, self.keys)

    def new_session(self, key: str, language_hint: str | None = None, text: str = "") -> Session:
        return Session(key=key, language=self._pick_language(language_hint, text))

    def handle(self, session: Session | None, event: Inbound) -> Outcome:
        """Apply one inbound event. `session` is None for someone the bot does not know yet."""
        if session is None:
            if event.kind in (InboundKind.UNSUPPORTED, InboundKind.FILE):
                # A photo from a stranger: answer, and keep nothing at all about them.
                turn = _Turn(
                    self,
                    self.new_session(self.key(event.address), event.language_hint),
                    event.address,
                )
                turn.say(turn.text("unsupported_message"))
                return Outcome(None, turn.actions)
            session = self.new_session(self.key(event.address), event.language_hint, event.text)
            seen: float | None = None
        else:
            # When this person last wrote: what they have on screen may predate a reload.
            seen = session.updated
            session = session.copy()
        session.updated = time.time()
        turn = _Turn(self, session, event.address)
        if self.trace:
            turn.visited, turn.moves = [], []
        try:
            turn.begin(event, seen)
        except _Forget:
            return Outcome(None, turn.actions, *turn.traced(), counts=turn.tally())
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
            turn.count("error", "runaway")
        return Outcome(session, turn.actions, *turn.traced(), counts=turn.tally())

    def take_over(self, previous: Engine, now: float | None = None) -> None:
        """Call right before this engine replaces `previous` in a running bot (between two
        events, as `adapters.serve.reload` does).

        Buttons carry only "<turn>.<index>", so a press made on a message shown before the
        reload must not be read against the new flows if the button at that index now
        means something else. Each button whose meaning differs from `previous`'s is marked
        as changed `now`, and so is one that is gone (should it come back, a press on the
        old one is stale); the other marks are kept. A button no engine had before cannot
        be on anybody's screen: it is not marked, so adding a choice at the end leaves the
        others pressable. A conversation last seen before a mark on a button it has on
        screen gets fresh buttons (`_Turn.begin`). A bot started afresh has no previous
        engine: it only restarts the conversations whose step is gone."""
        now = time.time() if now is None else now
        old, mine = previous._meanings, self._meanings
        changed = dict(previous._changed)
        for key, meaning in mine.items():
            if key in old:
                if old[key] != meaning:
                    changed[key] = now
            elif key in changed:  # back after it was gone
                changed[key] = now
        for key in old:
            if key not in mine:
                changed[key] = now
        self._changed = changed
        self._active_since = now

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

    __slots__ = ("actions", "address", "counts", "engine", "moves", "session", "visited")

    def __init__(self, engine: Engine, session: Session, address: Address) -> None:
        self.engine = engine
        self.session = session
        self.address = address
        self.actions: list[Action] = []
        self.visited: list[tuple[str, str]] | None = None
        self.moves: list[tuple[str, str, int]] | None = None
        self.counts: list[tuple[str, str]] | None = None  # made on the first count only

    def count(self, event: str, label: str) -> None:
        """Note something for the metrics and `hotline stats`. A conversation is counted
        for the flow it began in (`session.path[0]`: picked from the menu, routed to, or
        /restart-ed), so per flow `complete / start` is that topic's completion rate:
        - start: a flow was begun (menu, typed question, /restart, /lawyer's flow);
        - complete: an `end` was reached with nothing to return to. A goto into another
          flow is the same conversation; a called flow's `end` that returns to its caller
          is not a completion (the caller goes on), only the outermost end counts;
        - handover, queue: a hand-over began, counted for the flow (or NO_FLOW, /lawyer
          from the menu) and for the queue;
        - error: the flow misbehaved at run time (a runaway chain, a failing condition)."""
        if self.counts is None:
            self.counts = []
        self.counts.append((event, label))

    def tally(self) -> tuple[tuple[str, str], ...]:
        return tuple(self.counts) if self.counts else ()

    def entry_flow(self, fallback: str | None = None) -> str:
        """The flow this conversation began in, for the counts."""
        path = self.session.path
        return path[0] if path else (fallback or NO_FLOW)

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
        if event.kind is InboundKind.FILE and event.attachment is not None:
            if s.status is Status.HANDOVER:
                # A document for the lawyer: passed on by reference (the desk fetches it);
                # nothing of it, not even its caption, is kept in the session.
                assert s.queue is not None
                relay = RelayToOperator(self.address, s.queue, clean(event.text), event.attachment)
                self.actions.append(relay)
            else:
                self.say(self.text("unsupported_message"))
            return
        if event.kind in (InboundKind.UNSUPPORTED, InboundKind.FILE):
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

    # ------------------------------------------------------------------ after a reload

    def begin(self, event: Inbound, seen: float | None) -> None:
        """Dispatch `event`, first making sure the stored session still fits the loaded
        flows (they may have been reloaded since the person last wrote, at `seen`).

        - Its step (or a call it is inside, or a menu offer) is gone: a polite restart.
        - Its step is there but buttons it has on screen changed meaning: those buttons
          are made stale, so a press (or a typed button number) made on them is never
          read as the new button at the same index.
        - Otherwise it carries on unchanged, answers included. /back skips questions that
          are gone. A hand-over is left alone: a human has the conversation."""
        s = self.session
        if seen is None or seen > self.engine._active_since or s.status is Status.HANDOVER:
            self.dispatch(event)  # the common case: nothing reloaded since the last message
            return
        if not self.still_fits():
            self.restart_after_update(event)
            return
        if self.engine._changed and not self.screen_current(seen):
            s.turn += 1  # every button shown before the change is stale now
            if event.kind is InboundKind.TEXT and self.button_number(event.text):
                self.say(self.text("moved_on"))
                self.present_current()
                return
            turn = s.turn
            self.dispatch(event)
            # /help or a photo shows no buttons: show the current ones, so that the old
            # ones are not pressed or their numbers typed.
            asking = s.status in (Status.ASKING, Status.MENU)
            if s.turn == turn and asking and event.kind is not InboundKind.CLOSE:
                self.present_current()
            return
        self.dispatch(event)

    def still_fits(self) -> bool:
        """Whether the session's position exists in the loaded flows. Trims on the way what
        can go without a restart: a language the bot no longer speaks, flows gone from the
        path (for /restart), and /back history up to the last question that is gone."""
        s = self.session
        bot = self.engine.bot
        flows = self.engine.flows.flows
        if s.language not in bot.languages:
            s.language = bot.default_language
        if any(fid not in flows for fid in s.path):
            s.path[:] = [fid for fid in s.path if fid in flows]
        for index in range(len(s.history) - 1, -1, -1):
            frame = s.history[index]
            if not self.fits(frame.flow, frame.step, frame.stack):
                del s.history[: index + 1]
                break
        if s.status is Status.ASKING:
            return self.fits(s.flow, s.step, tuple(s.stack))
        if s.status is Status.MENU:
            return all(fid == LAWYER_OFFER or fid in flows for fid in s.offers)
        return True

    def fits(
        self, flow_id: str | None, step_name: str | None, stack: tuple[tuple[str, str], ...]
    ) -> bool:
        """A question the person can be at: it exists and waits for an answer, and every
        call it is inside is still a call step (whose return is its move 0)."""
        flows = self.engine.flows.flows
        flow = flows.get(flow_id) if flow_id is not None else None
        step = flow.steps.get(step_name) if flow is not None and step_name is not None else None
        if step is None or not step.waits_for_user:
            return False
        for caller_flow, caller_step in stack:
            caller = flows.get(caller_flow)
            call = caller.steps.get(caller_step) if caller is not None else None
            if call is None or call.kind is not StepKind.CALL:
                return False
        return True

    def screen_current(self, seen: float) -> bool:
        """Whether every button the person may have on screen means what it did at `seen`."""
        s = self.session
        changed = self.engine._changed
        keys = [(_LANGUAGES, i) for i in range(len(self.engine.bot.languages))]
        if s.status is Status.MENU and not s.offers:
            keys += [(_MENU, i) for i in range(len(self.engine.bot.menu.flows))]
        elif s.status is Status.ASKING:
            step = self.current_step()
            count = len(step.choices) or (len(step.input.options) if step.input else 0)
            keys += [(f"{step.flow}.{step.name}", i) for i in range(count)]
        return all(key not in changed or changed[key] < seen for key in keys)

    def button_number(self, text: str) -> bool:
        """Typed text that is a button's number ("2") where buttons are on screen."""
        s = self.session
        if not clean(text).rstrip(".)").isdigit():
            return False
        if s.status is Status.MENU:
            return True
        if s.status is Status.ASKING:
            step = self.current_step()
            return bool(step.choices or (step.input is not None and step.input.options))
        return False

    def restart_after_update(self, event: Inbound) -> None:
        """The person's step is gone from the reloaded flows: say so and show the menu.
        The event is not read against a step it was not meant for; only the commands that
        do not depend on where the person was are carried out as usual."""
        log.info("a conversation's step is gone after a flows reload: restarted politely")
        s = self.session
        command = _command(clean(event.text)) if event.kind is InboundKind.TEXT else None
        name = command[0] if command is not None else None
        if event.kind is InboundKind.CLOSE or name in ("forget", "lawyer"):
            self.dispatch(event)
            return
        if name == "restart" and s.path:
            self.dispatch(event)  # the topic still exists: start it again, as asked
            return
        self.reset()
        self.say(self.text("flows_updated"))
        if command is not None and name in ("help", "language"):
            self.on_command(*command)
            if name == "language":
                return  # it ends with the menu or the language buttons
        self.show_menu()

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
        which, _, printed = which.partition(".")
        if not which.isdigit():
            self.say(self.text("moved_on"))
            self.present_current()
            return
        index = int(which)

        def same(meaning: object) -> bool:
            # A payload from before fingerprints (no print) is read by its place, as then.
            return not printed or printed == _print(meaning)

        if s.status is Status.MENU:
            offered = s.offers or self.engine.bot.menu.flows
            if index < len(offered) and same(offered[index]):
                if offered[index] == LAWYER_OFFER:
                    self.to_lawyer()
                else:
                    self.start_flow(offered[index])
                return
        elif s.status is Status.ASKING:
            step = self.current_step()
            if (
                step.kind is StepKind.CHOICES
                and index < len(step.choices)
                and same(("choice", _words(step.choices[index].label)))
            ):
                self.choose(step, index)
                return
            if (
                step.input is not None
                and index < len(step.input.options)
                and same(("option", _words(step.input.options[index])))
            ):
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
        buttons = tuple(
            Button(label, f"{s.turn}.{i}.{_print(fid)}")
            for i, (label, fid) in enumerate(zip(labels, offers, strict=True))
        )
        self.say(self.text("did_you_mean") if prompt else self.text("lawyer_button"), buttons)

    # ------------------------------------------------------------------ moving

    def start_flow(self, flow_id: str) -> None:
        self.reset()
        self.session.path.append(flow_id)
        self.count("start", flow_id)
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
                self.count("complete", self.entry_flow(step.flow))
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
                self.count("error", "condition")
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
                Button(
                    self.render(choice.label),
                    f"{s.turn}.{i}.{_print(('choice', _words(choice.label)))}",
                )
                for i, choice in enumerate(step.choices)
            )
        elif step.input is not None and step.input.options:
            buttons = tuple(
                Button(self.render(option), f"{s.turn}.{i}.{_print(('option', _words(option)))}")
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
            Button(self.render(flows[fid].title), f"{s.turn}.{i}.{_print(fid)}")
            for i, fid in enumerate(menu.flows)
        )
        self.say(self.render(menu.say), buttons)

    # ------------------------------------------------------------------ hand-over

    def open_handover(self, queue: str) -> None:
        s = self.session
        # /lawyer from the menu or after an end is no flow's hand-over.
        self.count("handover", self.entry_flow() if s.flow is not None else NO_FLOW)
        self.count("queue", queue)
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
