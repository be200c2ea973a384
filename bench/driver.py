"""The conversation driver: plans realistic conversations once, then replays them fast.

A *plan* is made by talking to the engine like a person would: /start, the menu button of
a topic (or a typed question, or /lawyer), then an answer to every question until the flow
ends. The planner reads the session's current step to pick a sensible answer (a valid date
for a date input, a long enough text for a text input, a button for a choice), and mixes in
what people really do: a few invalid answers, a label typed instead of pressed, one /back.
Choices are picked by a seeded random walk that prefers steps not seen yet and, after a
while, the shortest way to an `end`; choices that lead only to a hand-over are avoided
unless the scenario is about the lawyer queue, which ends with the operator closing it.

Because the engine is deterministic, a plan replays identically for any number of users
starting afresh (button payloads depend only on the turn count): `build_work` turns plans
into one interleaved list of (session key, inbound event) for many simulated users, so the
timed loop does nothing but load, handle and save.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from engine.conversation import (
    Address,
    Button,
    Inbound,
    InboundKind,
    SendDocument,
    SendText,
    Session,
    Status,
)
from engine.documents import DocumentRenderer
from engine.model import FlowSet, InputSpec, InputType, Step, StepKind, Target
from engine.runtime import Engine
from engine.stores.base import SessionStore

# A fixed "today", so that age() and days_until() branches take the same arm on every run.
TODAY = dt.datetime(2025, 6, 2, 12, 0)
CHANNEL = "bench"
MAX_EVENTS = 200  # a plan longer than this is a planner bug (a loop it did not escape)
PATIENCE = 40  # events after which choices take the shortest way to an end
INF = 1 << 30

Node = tuple[str, str]


def fixed_clock() -> dt.datetime:
    return TODAY


class SkipDocuments(DocumentRenderer):
    """A renderer that makes no document: isolates the engine's own cost per step."""

    def render(
        self, template: str, answers: Mapping[str, object], language: str, today: dt.date
    ) -> bytes:
        return b""


class RecordingRenderer(DocumentRenderer):
    """Passes renders on to `inner` and keeps the arguments of the first per template."""

    def __init__(self, inner: DocumentRenderer) -> None:
        self.inner = inner
        self.calls: dict[tuple[str, str], tuple[str, dict[str, object], str, dt.date]] = {}

    def render(
        self, template: str, answers: Mapping[str, object], language: str, today: dt.date
    ) -> bytes:
        self.calls.setdefault((template, language), (template, dict(answers), language, today))
        return self.inner.render(template, answers, language, today)


def make_engine(flows: FlowSet, documents: DocumentRenderer | None = None) -> Engine:
    """The engine as production builds it (documents rendered from the flows folder's
    templates), with a fixed clock; `documents=SkipDocuments()` leaves them out."""
    return Engine(flows, clock=fixed_clock, documents=documents)


class PlanError(RuntimeError):
    """The planner could not drive a flow (a flow it does not understand, or a loop)."""


# --------------------------------------------------------------------------- plans


@dataclass(frozen=True, slots=True)
class Planned:
    """One inbound event of a plan. `personal`: a valid free-text answer, to which a
    replay appends the user's number so that every simulated person's answers differ."""

    kind: InboundKind
    value: str = ""  # the typed text, or the pressed button's payload
    personal: bool = False


@dataclass(frozen=True, slots=True)
class Scenario:
    """What one simulated person does."""

    flow: str
    language: str = "ru"
    entry: str = "menu"  # "menu": /start + its button; "question": a typed question; "lawyer"
    seed: int = 1
    invalid: int = 3  # at most this many invalid answers
    back: bool = True  # one /back after the third accepted answer
    type_label: bool = True  # once, type a choice's label instead of pressing it

    @property
    def name(self) -> str:
        return f"{self.flow}/{self.language}/{self.entry}/{self.seed}"


@dataclass(slots=True)
class Plan:
    scenario: Scenario
    events: list[Planned] = field(default_factory=list)
    # After each event: (status, flow, step) and how many actions the engine returned.
    states: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    action_counts: list[int] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)  # answers saved after each event
    categories: list[str] = field(default_factory=list)  # see `category`
    saved: set[str] = field(default_factory=set)  # every answer name saved on the way
    last_texts: list[str] = field(default_factory=list)  # the bot's texts after the last event
    steps_visited: list[Node] = field(default_factory=list)
    invalid_answers: int = 0
    backs: int = 0
    typed_labels: int = 0

    @property
    def final(self) -> tuple[str, str | None, str | None]:
        return self.states[-1]

    def cut_with_answers(self, answers: int) -> int | None:
        """How many events lead to the first question with at least `answers` saved."""
        for index, (state, saved) in enumerate(zip(self.states, self.answers, strict=True)):
            if state[0] == Status.ASKING.value and saved >= answers:
                return index + 1
        return None

    def midpoint(self) -> int:
        """How many events lead to a mid-flow session: the last question at or before 60 %
        of the plan (the memory benchmark's fallback for flows without forms)."""
        limit = max(1, int(len(self.events) * 0.6))
        for cut in range(limit, 0, -1):
            if self.states[cut - 1][0] == Status.ASKING.value:
                return cut
        raise PlanError(f"{self.scenario.name}: no question mid-flow")


def category(planned: Planned, status_before: str) -> str:
    """What kind of event this is, for the per-kind cost breakdown."""
    if planned.kind is InboundKind.PRESS:
        return "press"
    if planned.kind is not InboundKind.TEXT:
        return planned.kind.value
    if planned.value.startswith("/"):
        return "command"
    if status_before == Status.ASKING.value:
        return "answer"
    if status_before == Status.HANDOVER.value:
        return "relay"
    return "question"


def _state(session: Session | None) -> tuple[str, str | None, str | None]:
    if session is None:
        return ("deleted", None, None)
    return (session.status.value, session.flow, session.step)


# Answers a person might give, long enough for the example flows' min_length rules:
# a name, an address, an institution, and an account in their own words.
_TEXTS = {
    "ru": [
        "Иванов Иван Иванович",
        "г. Самара, ул. Ленина, д. 12, кв. 34, индекс 443001",
        "Военный комиссариат Ленинского и Самарского районов г. Самары",
        "Я с детства считаю, что нельзя брать в руки оружие и причинять вред людям. "
        "Это часть моей веры: я хожу в общину с 14 лет и работаю волонтёром в больнице.",
    ],
    "en": [
        "Ivanov Ivan Ivanovich",
        "12 Lenin Street, flat 34, Samara 443001",
        "Military Commissariat of the Leninsky and Samarsky Districts of Samara",
        "Since childhood I have believed that taking up arms and harming people is wrong. "
        "It is part of my faith: I have been in the community since I was 14 and volunteer.",
    ],
}
_QUESTION = {"ru": "Здравствуйте! У меня вопрос: {}", "en": "Hello, I have a question: {}"}
_RELAY = {
    "ru": "Меня вызвали в военкомат на завтра, что делать?",
    "en": "I was summoned to the commissariat tomorrow, what should I do?",
}
_REGEX_CANDIDATES = ("443001", "1234", "AB1234567", "12-34", "abc", "A1", "2024-01-31")
_BAD_REGEX = ("???", "-", "x" * 40)
SUFFIX_ROOM = 8  # characters a replay may append to a personal answer
# Which of _TEXTS fits an input, by words in the name it is saved under; else the account.
_TEXT_FOR = (("name", 0), ("address", 1), ("where", 1), ("commissariat", 2), ("unit", 2))


def _valid_answer(spec: InputSpec, language: str, variant: int) -> tuple[str, bool]:
    """(typed text, personal) that `spec` accepts."""
    kind = spec.type
    if kind is InputType.TEXT:
        low = spec.min_length or 1
        high = (spec.max_length or 2000) - SUFFIX_ROOM
        pool = _TEXTS.get(language, _TEXTS["en"])
        first = next((i for word, i in _TEXT_FOR if word in spec.save), len(pool) - 1)
        for text in [pool[first], *reversed(pool)]:
            if low <= len(text) <= high:
                return text, True
        text = (pool[-1] * (low // len(pool[-1]) + 1))[: max(low, 1)]
        if len(text) > (spec.max_length or 2000):
            raise PlanError(f"cannot write a text of {low}..{spec.max_length} characters")
        return text, False
    if kind is InputType.INTEGER or kind is InputType.NUMBER:
        value = 25.0
        if spec.minimum is not None:
            value = max(value, spec.minimum)
        if spec.maximum is not None:
            value = min(value, spec.maximum)
        if kind is InputType.INTEGER:
            return str(int(value) if int(value) >= value else int(value) + 1), False
        return str(value).replace(".", ","), False
    if kind is InputType.DATE:
        return ("01.02.2004", "15.03.2001")[variant % 2], False
    if kind is InputType.PHONE:
        return "+7 900 123-45-67", False
    if kind is InputType.EMAIL:
        return "ivan.petrov@example.org", False
    if kind is InputType.REGEX:
        assert spec.pattern is not None
        for text in _REGEX_CANDIDATES:
            if re.fullmatch(spec.pattern, text):
                return text, False
        raise PlanError(f"no sample answer matches the pattern {spec.pattern!r}")
    raise PlanError(f"input type {kind} is answered with a button")


def _invalid_answer(spec: InputSpec) -> str | None:
    """A typed answer `spec` refuses, or None when this input accepts nearly anything."""
    kind = spec.type
    if kind is InputType.TEXT:
        return "а" if spec.min_length and spec.min_length >= 2 else None
    if kind is InputType.INTEGER:
        return "двадцать"
    if kind is InputType.NUMBER:
        return "много"
    if kind is InputType.DATE:
        return "31.02.2004"
    if kind is InputType.PHONE:
        return "12345"
    if kind is InputType.EMAIL:
        return "ivan@"
    if kind is InputType.REGEX:
        assert spec.pattern is not None
        return next((t for t in _BAD_REGEX if not re.fullmatch(spec.pattern, t)), None)
    return None


# --------------------------------------------------------------------------- distances


def distances_to_end(flows: FlowSet, allow_handover: bool) -> dict[Node, int]:
    """Fewest moves from each step to an `end` (or to a hand-over, when allowed)."""
    dist: dict[Node, int] = {}
    moves: dict[Node, list[Node]] = {}
    for flow in flows.flows.values():
        for name, step in flow.steps.items():
            node = (flow.id, name)
            if step.kind is StepKind.END or (allow_handover and step.kind is StepKind.HANDOVER):
                dist[node] = 0
            else:
                dist[node] = INF
            moves[node] = [(t.flow, t.step) for t in step.targets()]
    changed = True
    while changed:
        changed = False
        for node, nexts in moves.items():
            best = min((dist.get(n, INF) for n in nexts), default=INF)
            if best < INF and best + 1 < dist[node]:
                dist[node] = best + 1
                changed = True
    return dist


# --------------------------------------------------------------------------- planner


class _Planner:
    def __init__(self, engine: Engine, scenario: Scenario, max_events: int) -> None:
        self.engine = engine
        self.max_events = max_events
        self.flows = engine.flows
        self.scenario = scenario
        self.rng = random.Random(scenario.seed)
        self.address = Address(CHANNEL, f"plan-{scenario.name}")
        self.session: Session | None = None
        self.buttons: tuple[Button, ...] = ()
        self.plan = Plan(scenario)
        self.dist = distances_to_end(self.flows, allow_handover=scenario.flow == "lawyer")
        self.visited: set[Node] = set()
        self.invalid_types: set[InputType] = set()
        self.accepted = 0

    # ------------------------------------------------------------------ talking

    def send(self, planned: Planned) -> None:
        if len(self.plan.events) >= self.max_events:
            raise PlanError(f"{self.scenario.name}: no end after {self.max_events} events")
        event = to_inbound(planned, self.address, self.scenario.language)
        before = self.plan.states[-1][0] if self.plan.states else Status.IDLE.value
        outcome = self.engine.handle(self.session, event)
        self.session = outcome.session
        shown = [a for a in outcome.actions if isinstance(a, SendText)]
        if shown:
            self.buttons = shown[-1].buttons
        self.plan.events.append(planned)
        self.plan.states.append(_state(self.session))
        self.plan.action_counts.append(len(outcome.actions))
        self.plan.answers.append(0 if self.session is None else len(self.session.answers))
        kind = category(planned, before)
        if any(isinstance(a, SendDocument) for a in outcome.actions):
            kind += "+document"
        self.plan.categories.append(kind)
        self.plan.last_texts = [a.text for a in shown]
        if self.session is not None:
            self.plan.saved.update(self.session.answers)

    def typed(self, text: str, personal: bool = False) -> None:
        self.send(Planned(InboundKind.TEXT, text, personal))

    def press(self, index: int) -> None:
        if index >= len(self.buttons):
            raise PlanError(f"{self.scenario.name}: no button {index} on screen")
        self.send(Planned(InboundKind.PRESS, self.buttons[index].payload))

    @property
    def status(self) -> Status:
        return Status.IDLE if self.session is None else self.session.status

    def current(self) -> Step:
        s = self.session
        assert s is not None and s.flow is not None and s.step is not None
        return self.flows.step(Target(s.flow, s.step))

    # ------------------------------------------------------------------ the conversation

    def run(self) -> Plan:
        self.enter()
        while True:
            status = self.status
            if status is Status.IDLE:
                return self.plan
            if status is Status.HANDOVER:
                self.typed(_RELAY.get(self.scenario.language, _RELAY["en"]))
                self.send(Planned(InboundKind.CLOSE))
                if self.status is not Status.IDLE:
                    raise PlanError(f"{self.scenario.name}: closing the hand-over did not end it")
                return self.plan
            if status is Status.MENU:
                raise PlanError(f"{self.scenario.name}: back at the menu mid-conversation")
            step = self.current()
            node = (step.flow, step.name)
            self.visited.add(node)
            self.plan.steps_visited.append(node)
            if step.kind is StepKind.CHOICES:
                self.answer_choice(step)
            elif step.input is not None:
                self.answer_input(step)
            else:
                raise PlanError(f"{self.scenario.name}: asking at a {step.kind} step")

    def enter(self) -> None:
        sc = self.scenario
        if sc.entry == "lawyer":
            self.typed("/lawyer")
        elif sc.entry == "question":
            phrases = self.flows.flows[sc.flow].match.get(sc.language, ())
            if not phrases:
                raise PlanError(f"{sc.name}: flow has no match phrases in {sc.language}")
            template = _QUESTION.get(sc.language, _QUESTION["en"])
            self.typed(template.format(phrases[0]))
            if self.status is Status.MENU:
                # Not sure enough to start it: "did you mean" buttons; press the topic's.
                title = self.flows.flows[sc.flow].title
                label = title.get(sc.language, self.flows.bot.default_language)
                labels = [b.label for b in self.buttons]
                if label not in labels:
                    raise PlanError(f"{sc.name}: the question was not routed to the flow")
                self.press(labels.index(label))
        else:
            self.typed("/start")
            if self.status is not Status.MENU:
                raise PlanError(f"{sc.name}: /start did not show the menu")
            self.press(self.flows.bot.menu.flows.index(sc.flow))
        if self.session is None or self.session.flow != sc.flow:
            got = None if self.session is None else self.session.flow
            raise PlanError(f"{sc.name}: entered flow {got!r}")

    def answer_choice(self, step: Step) -> None:
        sc, plan = self.scenario, self.plan
        if plan.invalid_answers < sc.invalid and not any(
            e.kind is InboundKind.TEXT and e.value == "???" for e in plan.events
        ):
            before = self.plan.states[-1]
            self.typed("???")  # normalises to nothing: matches no label
            if self.plan.states[-1][1:] != before[1:]:
                raise PlanError(f"{sc.name}: '???' was taken as a choice")
            plan.invalid_answers += 1
        index = self.pick(step)
        if sc.type_label and plan.typed_labels == 0 and len(plan.events) > 3:
            plan.typed_labels += 1
            self.typed(self.buttons[index].label)
        else:
            self.press(index)

    def pick(self, step: Step) -> int:
        targets = [(c.target.flow, c.target.step) for c in step.choices]
        finite = [i for i, t in enumerate(targets) if self.dist.get(t, INF) < INF]
        candidates = finite or list(range(len(targets)))
        fresh = [i for i in candidates if targets[i] not in self.visited]
        if fresh and len(self.plan.events) < PATIENCE:
            return self.rng.choice(fresh)
        return min(candidates, key=lambda i: (self.dist.get(targets[i], INF), i))

    def answer_input(self, step: Step) -> None:
        sc, plan = self.scenario, self.plan
        spec = step.input
        assert spec is not None
        if spec.type is InputType.ONE_OF:
            self.press(self.rng.randrange(len(spec.options)))
            self.accepted += 1
            return
        if plan.invalid_answers < sc.invalid and spec.type not in self.invalid_types:
            wrong = _invalid_answer(spec)
            if wrong is not None:
                self.invalid_types.add(spec.type)
                self.typed(wrong)
                if self.session is None or self.session.step != step.name:
                    raise PlanError(f"{sc.name}: {wrong!r} was accepted at {step.name}")
                plan.invalid_answers += 1
        text, personal = _valid_answer(spec, sc.language, self.accepted)
        self.typed(text, personal)
        self.accepted += 1
        if sc.back and plan.backs == 0 and self.accepted == 3 and self.status is Status.ASKING:
            plan.backs += 1
            self.typed("/back")
            if self.session is None or self.session.step != step.name:
                raise PlanError(f"{sc.name}: /back did not return to {step.name}")
            self.typed(_valid_answer(spec, sc.language, self.accepted)[0], personal)


def plan_conversation(engine: Engine, scenario: Scenario, max_events: int = MAX_EVENTS) -> Plan:
    """Talk to `engine` as `scenario` says, to the end of the conversation."""
    return _Planner(engine, scenario, max_events).run()


def default_scenarios(flows: FlowSet) -> list[Scenario]:
    """The traffic mix: every menu topic through the menu in each language, typed questions,
    and the lawyer queue. The longest form (acs_application) is weighted double."""
    result: list[Scenario] = []
    languages = flows.bot.languages
    for index, flow_id in enumerate(flows.bot.menu.flows):
        if flow_id == "lawyer":
            result.append(Scenario(flow_id, languages[0], "lawyer", seed=index))
            continue
        for language in languages:
            result.append(Scenario(flow_id, language, "menu", seed=index))
            if flows.flows[flow_id].match.get(language):
                result.append(Scenario(flow_id, language, "question", seed=index + 100))
    if "acs_application" in flows.flows:
        result.append(Scenario("acs_application", languages[0], "menu", seed=7))
    return result


# --------------------------------------------------------------------------- replay


def to_inbound(planned: Planned, address: Address, language: str, suffix: str = "") -> Inbound:
    if planned.kind is InboundKind.PRESS:
        return Inbound.press(address, planned.value, language)
    if planned.kind is InboundKind.TEXT:
        text = planned.value + suffix if planned.personal else planned.value
        return Inbound.typed(address, text, language)
    return Inbound(planned.kind, address, language_hint=language)


def user_key(user: int) -> str:
    return f"{CHANNEL}:u{user}"


def user_events(plan: Plan, user: int, limit: int | None = None) -> list[Inbound]:
    address = Address(CHANNEL, f"u{user}")
    suffix = f" {user}"
    events = plan.events if limit is None else plan.events[:limit]
    return [to_inbound(p, address, plan.scenario.language, suffix) for p in events]


def assign(plans: Sequence[Plan], users: int) -> list[Plan]:
    """Which plan each simulated user follows: round-robin over the mix."""
    return [plans[u % len(plans)] for u in range(users)]


def build_work(plans: Sequence[Plan], users: int, first_user: int = 0) -> list[tuple[str, Inbound]]:
    """Every user's events, interleaved round by round as concurrent users would send them."""
    per_user = [
        (user_key(first_user + u), user_events(plan, first_user + u))
        for u, plan in enumerate(assign(plans, users))
    ]
    work: list[tuple[str, Inbound]] = []
    longest = max(len(events) for _, events in per_user)
    for round_ in range(longest):
        for key, events in per_user:
            if round_ < len(events):
                work.append((key, events[round_]))
    return work


def replay(engine: Engine, store: SessionStore, work: Iterable[tuple[str, Inbound]]) -> None:
    """The measured loop: per event, load the session, handle the event, save the result,
    and make the documents the event produced (the engine only prepares them; the serving
    hub makes them in a worker thread, which costs the same CPU)."""
    load, save, delete, handle = store.load, store.save, store.delete, engine.handle
    for key, event in work:
        outcome = handle(load(key), event)
        session = outcome.session
        if session is None:
            delete(key)
        else:
            save(session)
        for action in outcome.actions:
            if type(action) is SendDocument:
                action.data  # noqa: B018 - making the document is the point


def replay_checked(
    engine: Engine, store: SessionStore, work: Iterable[tuple[str, Inbound]]
) -> dict[str, list[int]]:
    """`replay`, also recording how many actions each event produced per key (to compare
    with the plans: a replay must say exactly what the planner heard)."""
    counts: dict[str, list[int]] = {}
    for key, event in work:
        outcome = engine.handle(store.load(key), event)
        counts.setdefault(key, []).append(len(outcome.actions))
        if outcome.session is None:
            store.delete(key)
        else:
            store.save(outcome.session)
    return counts


def verify(store: SessionStore, plans: Sequence[Plan], users: int, first_user: int = 0) -> None:
    """Every simulated user's stored session ended where its plan ended."""
    for u, plan in enumerate(assign(plans, users)):
        key = user_key(first_user + u)
        got = _state(store.load(key))
        if got != plan.final:
            raise AssertionError(f"{key} ({plan.scenario.name}): ended at {got}, not {plan.final}")
