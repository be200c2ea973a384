"""Generating transcripts that together reach every step and edge of a flows folder.

    generation = generate_transcripts(flows, language="ru", now=dt.datetime(2026, 3, 1, 12))
    for transcript in generation.transcripts:
        Path(out, transcript.name).write_text(transcript.text)

(`hotline transcripts generate FLOWS_DIR -o DIR` is the command line around it.)

The real engine is driven, never simulated: a search over conversations on an
`Engine(trace=True)` whose clock stands still at `now`, with a stub document renderer while
searching. A transcript starts with /start and the menu button of a flow (or, for a flow
that is not in the menu, a phrase that routes to it, or /lawyer) and then, at each
question, a breadth-first search over the answers (press a choice or a one_of option, type
a sample answer, or /back to the previous question, at most MAX_BACKS times in a row)
finds the nearest conversation that takes a step or an edge no transcript has taken yet; a
conversation that stays alive is preferred to one that ends (an `end` or a hand-over ends
the transcript). Answers for inputs that `when:` conditions read are derived from the
expression trees and the input type: birth dates around every age the condition compares
with (relative to `now`), dates that many days away, numbers around its constants and the
input's min/max, the texts it compares with; answers that make every condition come out the
same are tried only once. When no conversation can reach anything new, the next transcript
begins: first, for each flow of the menu in turn, transcripts that start there for its own
steps and edges (and those of flows no transcript starts in: sub-flows, flows only jumped
to), then, from any flow, for whatever is left. Then every transcript whose steps and edges
the others all reach is dropped, and the rest are written with the recorder's writer
(`engine.transcripts.recording`): each bot message pinned by its first sentence (about 60
characters at most), or by a later one when another message starts the same way; buttons in
full; a document with `contains:` a typed answer it shows; a hand-over with its
`handover:` line. The first answer to each input step, over all the transcripts, is one the
input refuses, so its `invalid` text is pinned too. Titles name the flow, the buttons
pressed and the answers that decide a branch.

A regex input that none of the sample answers (nor an example made from the pattern)
matches cannot be answered: a transcript that stops there ends with a
`# TODO: an answer matching /PATTERN/` comment and a commented-out placeholder line, and
`Generation.todos` lists such inputs.

`replay_generated(flows, files)` replays written transcripts in process and returns the
runs and their coverage (what `hotline transcripts generate` prints and checks).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from engine.conversation import (
    Address,
    Button,
    Inbound,
    SendDocument,
    SendText,
    Session,
    StartHandover,
    Status,
)
from engine.documents import DocumentRenderer
from engine.expressions import (
    Binary,
    BoolOp,
    Call,
    Compare,
    EvaluationError,
    Expression,
    ListLiteral,
    Literal,
    Node,
    Unary,
)
from engine.inputs import Refused, read_answer
from engine.model import FlowSet, InputSpec, InputType, Step, StepKind, Target
from engine.routing import Route, Router, TextRouter
from engine.runtime import LAWYER_FLOW, Engine
from engine.transcripts.coverage import Coverage, compute_coverage
from engine.transcripts.loading import load_transcript
from engine.transcripts.matching import Replayer, Run, document_text_function
from engine.transcripts.recording import FlowList, Recorder

__all__ = [
    "GeneratedTranscript",
    "Generation",
    "answer_candidates",
    "born_at_age",
    "distinctive_texts",
    "generate_transcripts",
    "invalid_sample",
    "regex_example",
    "replay_generated",
    "short_text",
    "valid_sample",
]

ADDRESS = Address("console", "generate")
BACK = "/back"
MAX_DEPTH = 40  # answers one search may look ahead
MAX_NODES = 6000  # conversations one search may try
MAX_BACKS = 2  # /back at most this many times in a row: a detour, not a maze
PREFER_ALIVE = 2  # look this much further for a conversation that goes on before ending one
SHORT_TEXT = 60

# A step entered: ("step", flow, step); an edge taken: ("edge", flow, step, index).
Item = tuple[str, ...] | tuple[str, str, str, int]


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class GeneratedTranscript:
    name: str  # the file name: <flow>_<n>.yaml
    flow: str  # the flow it starts in
    title: str
    text: str  # the transcript, YAML
    items: frozenset[Item]  # the steps and edges it reaches
    todo: str | None = None  # the regex pattern it stops at, if any


@dataclass(frozen=True, slots=True)
class Generation:
    transcripts: tuple[GeneratedTranscript, ...]
    todos: tuple[str, ...] = ()  # "flow.step: no answer matching /re/ found; ..." lines


# --------------------------------------------------------------------------- sample answers

_SAMPLES: dict[str, dict[str, str]] = {
    "ru": {
        "name": "Иванов Иван Иванович",
        "address": "443001, г. Самара, ул. Ленина, д. 1, кв. 2",
        "text": "Это пример ответа, чтобы проверить, как бот его примет.",
        "long": (
            "Я верующий человек и с детства не приемлю насилия: моя вера не позволяет мне "
            "брать в руки оружие, поэтому военная служба противоречит моим убеждениям."
        ),
        "bad_number": "пять",
        "bad_date": "1 марта 2004",
        "bad_option": "что-то другое",
    },
    "en": {
        "name": "Ivan Ivanovich Ivanov",
        "address": "1 Lenin Street, flat 2, Samara 443001",
        "text": "This is a sample answer, to see how the bot takes it.",
        "long": (
            "I am a believer and have rejected violence since childhood: my faith does not let "
            "me take up arms, so military service goes against my convictions."
        ),
        "bad_number": "five",
        "bad_date": "March 1, 2004",
        "bad_option": "something else",
    },
}
_PHONE = "+7 900 123-45-67"
_EMAIL = "ivan@example.org"
_REGEX_SAMPLES = (
    "12345",
    "123456",
    "1234567890",
    "AB123456",
    "АБ123456",
    "A1",
    "abc",
    "ABC",
    "Иванов",
    "Ivanov",
    "+79001234567",
    _EMAIL,
    "2024-01-01",
    "01.01.2024",
    "yes",
    "да",
    "a",
    "1",
)


def _samples(language: str) -> dict[str, str]:
    return _SAMPLES.get(language, _SAMPLES["en"])


def _date_text(day: dt.date) -> str:
    return day.strftime("%d.%m.%Y")


def born_at_age(today: dt.date, age: int) -> dt.date:
    """A birth date that makes someone exactly `age` today, the birthday a month past."""
    year = today.year - age
    try:
        anniversary = today.replace(year=year)
    except ValueError:  # 29 February
        anniversary = today.replace(year=year, day=28)
    return anniversary - dt.timedelta(days=30)


def _number_text(value: float, integer: bool) -> str:
    if integer or float(value).is_integer():
        return str(int(value))
    return f"{value:g}"


def _clip(value: float, spec: InputSpec) -> float:
    if spec.minimum is not None and value < spec.minimum:
        value = spec.minimum
    if spec.maximum is not None and value > spec.maximum:
        value = spec.maximum
    return value


def _fit_text(sample: str, spec: InputSpec) -> str:
    """`sample`, repeated up to min_length and cut at max_length."""
    text = sample
    if spec.min_length is not None:
        while len(text) < spec.min_length:
            text = f"{text} {sample}"
    if spec.max_length is not None and len(text) > spec.max_length:
        text = text[: spec.max_length].rstrip()
    return text


def _text_sample(spec: InputSpec, language: str) -> str:
    samples = _samples(language)
    save = spec.save.lower()
    if "name" in save:
        sample = samples["name"]
    elif "address" in save or "addr" in save:
        sample = samples["address"]
    elif spec.min_length is not None and spec.min_length > 20:
        sample = samples["long"]
    else:
        sample = samples["text"]
    return _fit_text(sample, spec)


def valid_sample(spec: InputSpec, language: str, today: dt.date) -> str | None:
    """The everyday answer for an input that no condition reads (None: one_of, or a regex
    nothing matches)."""
    kind = spec.type
    if kind is InputType.TEXT:
        return _text_sample(spec, language)
    if kind in (InputType.INTEGER, InputType.NUMBER):
        return _number_text(_clip(3, spec), kind is InputType.INTEGER)
    if kind is InputType.DATE:
        save = spec.save.lower()
        if "birth" in save or "born" in save:
            return _date_text(born_at_age(today, 25))
        return _date_text(today - dt.timedelta(days=14))
    if kind is InputType.PHONE:
        return _PHONE
    if kind is InputType.EMAIL:
        return _EMAIL
    if kind is InputType.REGEX:
        return regex_example(spec.pattern or "")
    return None


def invalid_sample(spec: InputSpec, language: str, options: list[str]) -> str | None:
    """An answer the input refuses, for pinning its `invalid` text; None if none is sensible."""
    samples = _samples(language)
    kind = spec.type
    candidates: list[str] = []
    if kind is InputType.TEXT:
        if spec.min_length is not None and spec.min_length >= 2:
            sample = _text_sample(spec, language)
            cut = sample[: spec.min_length - 1]
            if " " in cut.strip() and len(cut) < len(sample) and sample[len(cut)] != " ":
                cut = cut[: cut.rstrip().rfind(" ")]  # whole words only
            candidates.append(cut.rstrip(" ,.;:—-"))
        elif spec.max_length is not None and spec.max_length <= 100:
            candidates.append(("ab" * spec.max_length)[: spec.max_length + 1])
    elif kind in (InputType.INTEGER, InputType.NUMBER):
        candidates.append(samples["bad_number"])
        integer = kind is InputType.INTEGER
        if spec.maximum is not None:
            candidates.append(_number_text(spec.maximum + 1, integer))
        if spec.minimum is not None:
            candidates.append(_number_text(spec.minimum - 1, integer))
    elif kind is InputType.DATE:
        candidates += [samples["bad_date"], "31.02.2004"]
    elif kind is InputType.PHONE:
        candidates += ["123-45", "abc"]
    elif kind is InputType.EMAIL:
        candidates += ["ivan@example", "ivan"]
    elif kind is InputType.ONE_OF:
        candidates += [samples["bad_option"], "???"]
    elif kind is InputType.REGEX:
        candidates += ["?", "abc", "123", "-"]
    for text in candidates:
        if text and isinstance(read_answer(spec, text, options), Refused):
            return text
    return None


# --------------------------------------------------------------------------- regex examples


def regex_example(pattern: str) -> str | None:
    """An answer that fully matches `pattern`: a sample if one does, else one made from the
    pattern itself (literals, classes, the least repetitions, first alternatives)."""
    try:
        compiled = re.compile(pattern)
    except re.error:
        return None
    for sample in _REGEX_SAMPLES:
        if compiled.fullmatch(sample):
            return sample
    made = _made_from(pattern)
    if made is not None and made.strip() and compiled.fullmatch(made):
        return made
    return None


def _made_from(pattern: str) -> str | None:
    try:
        from re import _constants as c  # type: ignore[attr-defined]
        from re import _parser  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - Python < 3.11
        return None
    try:
        tree = _parser.parse(pattern)
    except Exception:  # any problem parsing it: no example
        return None

    class Unsupported(Exception):
        pass

    category = {
        c.CATEGORY_DIGIT: "5",
        c.CATEGORY_NOT_DIGIT: "a",
        c.CATEGORY_WORD: "a",
        c.CATEGORY_NOT_WORD: "-",
        c.CATEGORY_SPACE: " ",
        c.CATEGORY_NOT_SPACE: "a",
    }

    def in_set(items: list, ch: str) -> bool:
        for op, av in items:
            if op is c.LITERAL and chr(av) == ch:
                return True
            if op is c.RANGE and av[0] <= ord(ch) <= av[1]:
                return True
            if op is c.CATEGORY:
                probe = category.get(av)
                if probe is None:
                    raise Unsupported
                if re.fullmatch(_CATEGORY_RE[str(av)], ch):
                    return True
        return False

    def one_of(items: list) -> str:
        if items and items[0][0] is c.NEGATE:
            for ch in "a1 -x_Z":
                if not in_set(items[1:], ch):
                    return ch
            raise Unsupported
        op, av = items[0]
        if op is c.LITERAL:
            return chr(av)
        if op is c.RANGE:
            return chr(av[0])
        if op is c.CATEGORY and av in category:
            return category[av]
        raise Unsupported

    def emit(items: Iterable) -> str:
        out: list[str] = []
        for op, av in items:
            if op is c.LITERAL:
                out.append(chr(av))
            elif op is c.NOT_LITERAL:
                out.append("a" if chr(av) != "a" else "b")
            elif op is c.ANY:
                out.append("a")
            elif op is c.IN:
                out.append(one_of(av))
            elif op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)):
                low, _high, sub = av
                out.append(emit(sub) * low)
            elif op is c.SUBPATTERN:
                out.append(emit(av[-1]))
            elif op is getattr(c, "ATOMIC_GROUP", None):
                out.append(emit(av))
            elif op is c.BRANCH:
                out.append(emit(av[1][0]))
            elif op is c.AT:
                continue
            else:
                raise Unsupported
        return "".join(out)

    try:
        return emit(tree)
    except (Unsupported, TypeError, ValueError, IndexError):
        return None


_CATEGORY_RE = {
    "CATEGORY_DIGIT": r"\d",
    "CATEGORY_NOT_DIGIT": r"\D",
    "CATEGORY_WORD": r"\w",
    "CATEGORY_NOT_WORD": r"\W",
    "CATEGORY_SPACE": r"\s",
    "CATEGORY_NOT_SPACE": r"\S",
}


# --------------------------------------------------------------------------- conditions


def _nodes(node: Node) -> Iterator[Node]:
    yield node
    if isinstance(node, ListLiteral):
        children: tuple[Node, ...] = node.items
    elif isinstance(node, Unary):
        children = (node.operand,)
    elif isinstance(node, Binary | Compare):
        children = (node.left, node.right)
    elif isinstance(node, BoolOp):
        children = node.operands
    elif isinstance(node, Call):
        children = node.args
    else:
        children = ()
    for child in children:
        yield from _nodes(child)


@dataclass(slots=True)
class _Constants:
    """What the conditions reading one saved answer compare it with."""

    numbers: list[float] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    functions: set[str] = field(default_factory=set)


def condition_constants(conditions: Iterable[Expression]) -> dict[str, _Constants]:
    found: dict[str, _Constants] = {}
    for condition in conditions:
        numbers: list[float] = []
        texts: list[str] = []
        for node in _nodes(condition.tree):
            if isinstance(node, Literal):
                value = node.value
                if isinstance(value, bool) or value is None:
                    continue
                if isinstance(value, int | float):
                    numbers += [value, -value] if value else [value]
                elif isinstance(value, str):
                    texts.append(value)
        for name in sorted(condition.variables):
            constants = found.setdefault(name, _Constants())
            constants.numbers += [n for n in numbers if n not in constants.numbers]
            constants.texts += [t for t in texts if t not in constants.texts]
            constants.functions |= condition.functions
    return found


def answer_candidates(
    spec: InputSpec, constants: _Constants | None, language: str, today: dt.date
) -> list[str]:
    """Answers to try for an input, the everyday one first; all valid for the input."""
    candidates: list[str] = []
    base = valid_sample(spec, language, today)
    if base is not None:
        candidates.append(base)
    if constants is not None:
        candidates += _derived(spec, constants, language, today)
    kept: list[str] = []
    for text in candidates:
        if text not in kept and not isinstance(read_answer(spec, text, []), Refused):
            kept.append(text)
    return kept


def _around(numbers: Iterable[float]) -> list[float]:
    out: list[float] = []
    for number in numbers:
        for value in (number - 1, number, number + 1):
            if value not in out:
                out.append(value)
    return out


def _derived(spec: InputSpec, constants: _Constants, language: str, today: dt.date) -> list[str]:
    kind = spec.type
    out: list[str] = []
    if kind is InputType.DATE:
        ages: list[dt.date] = []
        for age in _around(n for n in constants.numbers if n >= 0):
            if 0 <= age <= 120 and float(age).is_integer():
                ages.append(born_at_age(today, int(age)))
        shifted: list[dt.date] = []
        for offset in _around(constants.numbers):
            if float(offset).is_integer() and abs(offset) <= 365 * 150:
                shifted.append(today + dt.timedelta(days=int(offset)))
        years: list[dt.date] = []
        for year in _around(n for n in constants.numbers if 1900 <= n <= 2200):
            if float(year).is_integer():
                years.append(dt.date(int(year), 6, 15))
        # What the conditions do with the date first: ages for age(), days for days_until().
        functions = constants.functions
        ranked = sorted(
            [("age" in functions, ages), ("days_until" in functions, shifted), (True, years)],
            key=lambda pair: not pair[0],
        )
        days = [day for _, group in ranked for day in group]
        for text in constants.texts:
            try:
                days.append(dt.date.fromisoformat(text))
            except ValueError:
                continue
        days += [today, today - dt.timedelta(days=1), today + dt.timedelta(days=1)]
        days += [born_at_age(today, age) for age in (10, 17, 25, 35, 70)]
        out += [
            _date_text(day) for day in days if dt.date(1900, 1, 1) <= day <= dt.date(2200, 12, 31)
        ]
    elif kind in (InputType.INTEGER, InputType.NUMBER):
        integer = kind is InputType.INTEGER
        values = _around(constants.numbers)
        values += [v for v in (spec.minimum, spec.maximum) if v is not None]
        values += [0, 1, 10, 100]
        out += [_number_text(v, integer) for v in values if not integer or float(v).is_integer()]
    elif kind in (InputType.TEXT, InputType.REGEX):
        out += constants.texts
        if "len" in constants.functions:
            base = _samples(language)["long"]
            for length in _around(n for n in constants.numbers if n > 0):
                if float(length).is_integer():
                    out.append(_fit_text(base, InputSpec("x", InputType.TEXT))[: int(length)])
    elif kind in (InputType.PHONE, InputType.EMAIL):
        out += constants.texts
    return [text for text in out if text and text == text.strip()]


# --------------------------------------------------------------------------- the search


class _LazyRouter(Router):
    """The engine's router, built when typed text first needs routing (it takes a while)."""

    def __init__(self, flows: FlowSet) -> None:
        self.flows = flows
        self.router: Router | None = None

    def route(self, text: str, language: str) -> Route:
        if self.router is None:
            self.router = TextRouter(self.flows)
        return self.router.route(text, language)


class _NoDocuments(DocumentRenderer):
    """While searching, documents are not made: the conversation is the same without."""

    def render(
        self, template: str, answers: Mapping[str, object], language: str, today: dt.date
    ) -> bytes:
        return b""


@dataclass(frozen=True, slots=True)
class _Act:
    kind: str  # "user" or "press"
    text: str  # typed text or the pressed label
    answers: tuple[str, str] | None = None  # the input step (flow, step) it answers
    decides: bool = False  # an answer some condition reads


@dataclass(slots=True)
class _Node:
    session: Session | None
    buttons: tuple[Button, ...]
    parent: _Node | None
    act: _Act | None
    gain: frozenset[Item]  # new items on the way from the search's start
    items: frozenset[Item]  # the items this very move reached
    depth: int = 0

    @property
    def alive(self) -> bool:
        return self.session is not None and self.session.status is Status.ASKING

    def path(self) -> list[_Node]:
        nodes: list[_Node] = []
        node: _Node | None = self
        while node is not None and node.act is not None:
            nodes.append(node)
            node = node.parent
        return nodes[::-1]


def _backs(node: _Node | None) -> int:
    """How many /back the conversation has just sent in a row."""
    count = 0
    while node is not None and node.act is not None and node.act.text == BACK:
        count += 1
        node = node.parent
    return count


@dataclass(slots=True)
class _Path:
    root: str  # the flow the transcript starts in
    acts: list[_Act]
    items: set[Item]
    todo: str | None = None  # stopped at a regex input with no answer
    gain: int = 0  # how many of the items wanted were new
    new: set[Item] = field(default_factory=set)  # the items no transcript had reached


@contextmanager
def _quiet_runtime() -> Iterator[None]:
    """Conditions tried on odd answers may fail; the runtime's warnings are noise here."""
    logger = logging.getLogger("engine.runtime")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


class _Explorer:
    def __init__(
        self, flows: FlowSet, language: str, now: dt.datetime, router: Router, back: bool = True
    ) -> None:
        self.flows = flows
        self.language = language
        self.today = now.date()
        self.back = back
        self.engine = Engine(flows, router, clock=lambda: now, trace=True, documents=_NoDocuments())
        self.conditions: list[Expression] = [
            arm.condition
            for flow in flows.flows.values()
            for step in flow.steps.values()
            for arm in step.branch
            if arm.condition is not None
        ]
        self.constants = condition_constants(self.conditions)
        self.read = sorted({name for c in self.conditions for name in c.variables})
        self._signatures: dict[tuple[str, ...], tuple] = {}
        self.all_items: list[Item] = []
        self.own: dict[tuple[str, str], frozenset[Item]] = {}
        for fid, flow in flows.flows.items():
            for name, step in flow.steps.items():
                own: list[Item] = [("step", fid, name)]
                arms = len(step.choices) if step.kind is StepKind.CHOICES else len(step.branch)
                own += [("edge", fid, name, i) for i in range(arms)]
                self.own[(fid, name)] = frozenset(own)
                self.all_items += own
        self.reach = self._static_reach()
        self.uncovered: set[Item] = set(self.all_items)
        self.wanted: set[Item] = set(self.uncovered)  # what the search now looks for
        self._candidates: dict[tuple[str, str], list[str]] = {}
        self.todos: dict[tuple[str, str], str] = {}

    # ------------------------------------------------------------------ the static graph

    def _successors(self, step: Step) -> list[Target]:
        targets = list(step.targets())
        if step.kind is StepKind.CALL and step.call is not None:
            targets.append(Target(step.call, self.flows.flows[step.call].start))
        return targets

    def _static_reach(self) -> dict[tuple[str, str], frozenset[Item]]:
        """Per step, every item some path from it might reach (more than the engine will)."""
        reach: dict[tuple[str, str], frozenset[Item]] = {}
        for fid, flow in self.flows.flows.items():
            for name in flow.steps:
                seen = {(fid, name)}
                todo = [(fid, name)]
                items: set[Item] = set()
                while todo:
                    here = todo.pop()
                    items |= self.own[here]
                    step = self.flows.step(Target(*here))
                    for target in self._successors(step):
                        key = (target.flow, target.step)
                        if key not in seen:
                            seen.add(key)
                            todo.append(key)
                reach[(fid, name)] = frozenset(items)
        return reach

    def may_gain(self, session: Session | None) -> bool:
        """Whether anything uncovered is still within reach of this conversation."""
        if session is None or session.status is not Status.ASKING:
            return False
        assert session.flow is not None and session.step is not None
        places = [(session.flow, session.step)]
        places += [self._return(flow, step) for flow, step in session.stack]
        if self.back:
            for frame in session.history:
                places.append((frame.flow, frame.step))
                places += [self._return(flow, step) for flow, step in frame.stack]
        return any(not self.reach[place].isdisjoint(self.wanted) for place in places)

    def _return(self, flow: str, step: str) -> tuple[str, str]:
        goto = self.flows.step(Target(flow, step)).goto
        return (goto.flow, goto.step) if goto is not None else (flow, step)

    # ------------------------------------------------------------------ moving

    def traced_items(self, visited: Iterable, moves: Iterable) -> frozenset[Item]:
        items: set[Item] = {("step", f, s) for f, s in visited}
        for flow, step, index in moves:
            kind = self.flows.step(Target(flow, step)).kind
            if kind is StepKind.CHOICES or kind is StepKind.BRANCH:
                items.add(("edge", flow, step, index))
        return frozenset(items)

    def event(self, node: _Node, act: _Act) -> Inbound | None:
        if act.kind == "press":
            button = next((b for b in node.buttons if b.label == act.text), None)
            if button is None:
                return None
            return Inbound.press(ADDRESS, button.payload, self.language)
        return Inbound.typed(ADDRESS, act.text, self.language)

    def apply(self, node: _Node, act: _Act) -> _Node | None:
        event = self.event(node, act)
        if event is None:
            return None
        outcome = self.engine.handle(node.session, event)
        buttons = node.buttons
        for action in outcome.actions:
            if isinstance(action, SendText) and action.buttons:
                buttons = action.buttons
        items = self.traced_items(outcome.visited, outcome.moves)
        gain = node.gain | (items & self.wanted)
        return _Node(outcome.session, buttons, node, act, frozenset(gain), items, node.depth + 1)

    def signature(self, answers: Mapping[str, object]) -> tuple:
        """What the answers decide: every condition's outcome (partial multi-answer ones by
        the answers they read so far)."""
        read = tuple(repr(answers.get(name)) for name in self.read)
        found = self._signatures.get(read)
        if found is None:
            found = self._signatures[read] = self._signature(answers)
        return found

    def _signature(self, answers: Mapping[str, object]) -> tuple:
        out: list[object] = []
        for condition in self.conditions:
            try:
                out.append(condition.test(answers, self.today))
            except EvaluationError:
                names = sorted(condition.variables)
                out.append(tuple(repr(answers.get(name)) for name in names))
        return tuple(out)

    def key(self, session: Session) -> tuple:
        history = tuple(session.history[-2:]) if self.back else ()
        return (
            session.status,
            session.flow,
            session.step,
            tuple(session.stack),
            self.signature(session.answers),
            history,
        )

    def candidates(self, step: Step) -> list[str]:
        place = (step.flow, step.name)
        if place not in self._candidates:
            assert step.input is not None
            found = answer_candidates(
                step.input, self.constants.get(step.input.save), self.language, self.today
            )
            if not found and step.input.type is InputType.REGEX:
                self.todos[place] = step.input.pattern or ""
            self._candidates[place] = found
        return self._candidates[place]

    def acts(self, node: _Node) -> list[_Act]:
        session = node.session
        if session is None or session.status is not Status.ASKING:
            return []
        assert session.flow is not None and session.step is not None
        step = self.flows.step(Target(session.flow, session.step))
        acts: list[_Act] = []
        labels: list[str] = []
        for button in node.buttons:
            if button.label not in labels:
                labels.append(button.label)
        place = (step.flow, step.name)
        if step.kind is StepKind.CHOICES:
            acts += [_Act("press", label) for label in labels]
        elif step.input is not None and step.input.options:
            acts += [_Act("press", label, place) for label in labels]
        elif step.input is not None:
            seen: set[tuple] = set()
            for text in self.candidates(step):
                value = read_answer(step.input, text, [])
                answers = {**session.answers, step.input.save: value}
                signature = self.signature(answers)
                if signature not in seen:
                    seen.add(signature)
                    decides = step.input.save in self.read
                    acts.append(_Act("user", text, place, decides))
        if self.back and len(session.history) >= 2 and _backs(node) < MAX_BACKS:
            acts.append(_Act("user", BACK))
        return acts

    def search(self, start: _Node) -> _Node | None:
        """The nearest conversation from `start` that reaches something new, preferring
        one that goes on to one that ends."""
        start = _Node(start.session, start.buttons, None, None, frozenset(), frozenset())
        assert start.session is not None
        frontier = [start]
        seen = {self.key(start.session)}
        ending: _Node | None = None
        tried = 0
        for depth in range(1, MAX_DEPTH + 1):
            going: list[_Node] = []
            following: list[_Node] = []
            for node in frontier:
                for act in self.acts(node):
                    child = self.apply(node, act)
                    tried += 1
                    if child is None:
                        continue
                    if child.gain:
                        if child.alive:
                            going.append(child)
                        elif ending is None or (
                            ending.depth == depth and len(child.gain) > len(ending.gain)
                        ):
                            ending = child  # the nearest ending, the best at its depth
                        continue
                    if child.alive and self.may_gain(child.session):
                        assert child.session is not None
                        key = self.key(child.session)
                        if key not in seen:
                            seen.add(key)
                            following.append(child)
            if going:
                return max(going, key=lambda n: len(n.gain))  # the first of the best
            if ending is not None and depth >= ending.depth + PREFER_ALIVE:
                return ending
            if not following or tried > MAX_NODES:
                break
            frontier = following
        return ending

    # ------------------------------------------------------------------ transcripts

    def begin(self, root: tuple[str, str, str]) -> tuple[_Node, list[_Act]] | None:
        """The conversation's opening for a root (flow, how, text): the menu button after
        /start, or a phrase or command that leads into the flow."""
        flow, how, text = root
        node = _Node(None, (), None, None, frozenset(), frozenset())
        if how == "menu":
            opening = [_Act("user", "/start"), _Act("press", text)]
        else:
            opening = [_Act("user", text)]
        for act in opening:
            child = self.apply(node, act)
            if child is None:
                return None
            node = child
        session = node.session
        if session is None or not session.path or session.path[0] != flow:
            return None
        return node, opening

    def transcript(self, root: tuple[str, str, str]) -> _Path | None:
        begun = self.begin(root)
        if begun is None:
            return None
        node, acts = begun
        path = _Path(root[0], list(acts), set())
        self.cover(path, node.items)
        while node.alive and self.may_gain(node.session):
            found = self.search(node)
            if found is None:
                break
            for step in found.path():
                path.acts.append(step.act)  # type: ignore[arg-type]
                self.cover(path, step.items)
            node = _Node(found.session, found.buttons, None, None, frozenset(), frozenset())
        if node.alive and node.session is not None:
            place = (node.session.flow or "", node.session.step or "")
            step = self.flows.step(Target(*place))
            input_spec = step.input
            if input_spec is not None and not input_spec.options and not self.candidates(step):
                path.todo = self.todos.get(place)
        return path

    def roots(self) -> list[tuple[str, str, str]]:
        """Where transcripts may start: each menu flow by its button, then the flows not in
        the menu by a phrase that routes to them (or /lawyer)."""
        node = self.apply(
            _Node(None, (), None, None, frozenset(), frozenset()), _Act("user", "/start")
        )
        roots: list[tuple[str, str, str]] = []
        menu = self.flows.bot.menu.flows
        if node is not None:
            for fid, button in zip(menu, node.buttons, strict=False):
                roots.append((fid, "menu", button.label))
        for fid, flow in self.flows.flows.items():
            if fid in menu:
                continue
            phrases = list(flow.match.get(self.language, ()))
            if fid == LAWYER_FLOW:
                phrases.insert(0, "/lawyer")
            for phrase in phrases[:3]:
                if self.begin((fid, "typed", phrase)) is not None:
                    roots.append((fid, "typed", phrase))
                    break
        return roots

    def cover(self, path: _Path, items: frozenset[Item]) -> None:
        path.items |= items
        path.gain += len(items & self.wanted)
        path.new |= items & self.uncovered
        self.uncovered -= items
        self.wanted -= items

    def run(self) -> list[_Path]:
        """Transcripts from each root in turn for what belongs to its flow (its own steps
        and edges and those of flows no root starts), then from any root for the rest."""
        roots = self.roots()
        paths: list[_Path] = []
        started = {flow for flow, _, _ in roots}
        for root in roots:
            self.wanted = {i for i in self.uncovered if i[1] == root[0] or i[1] not in started}
            paths += self._from(root)
        self.wanted = set(self.uncovered)
        for root in roots:
            paths += self._from(root)
        return paths

    def _from(self, root: tuple[str, str, str]) -> list[_Path]:
        paths: list[_Path] = []
        start = self.reach[(root[0], self.flows.flows[root[0]].start)]
        while not start.isdisjoint(self.wanted):
            path = self.transcript(root)
            if path is None or not path.gain:
                if path is not None:
                    self.uncovered |= path.new  # not kept: what it reached is still to do
                break
            paths.append(path)
        return paths


def _minimise(paths: list[_Path]) -> list[_Path]:
    """Drop every path whose items the others all reach, the smallest first."""
    counts: Counter[Item] = Counter()
    for path in paths:
        counts.update(path.items)
    dropped: set[int] = set()
    order = sorted(range(len(paths)), key=lambda i: (len(paths[i].items), -i))
    for index in order:
        path = paths[index]
        if path.todo is None and all(counts[item] >= 2 for item in path.items):
            dropped.add(index)
            counts.subtract(path.items)
    return [path for index, path in enumerate(paths) if index not in dropped]


# --------------------------------------------------------------------------- writing


_SENTENCE = re.compile(r"^.+?[.!?…](?=\s|$)")


def short_text(text: str, limit: int = SHORT_TEXT) -> str:
    """A `bot:` value for a message: its first sentence, or about `limit` characters of its
    first line cut at a word; always a substring that does not read as a /regex/."""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    sentence = _SENTENCE.match(line)
    if sentence is not None and len(sentence.group(0)) <= limit + limit // 3:
        short = sentence.group(0)
    elif len(line) <= limit + limit // 3:
        short = line
    else:
        cut = line.rfind(" ", 0, limit + 1)
        short = line[: cut if cut > limit // 2 else limit].rstrip(" ,;:—–-(«\"'")
    while len(short) >= 2 and short.startswith("/") and short.endswith("/"):
        short = short[:-1]
    return short


_SENTENCES = re.compile(r"[^.!?…]+(?:[.!?…]+(?=\s|$)|$)")


def distinctive_texts(texts: Iterable[str]) -> dict[str, str]:
    """Per message, its `bot:` value: the first of its sentences (shortened as by
    `short_text`) that no other message contains, else its first sentence."""
    distinct = list(dict.fromkeys(texts))
    pins: dict[str, str] = {}
    for text in distinct:
        pins[text] = short_text(text)
        others = [other for other in distinct if other != text]
        if not any(pins[text] in other for other in others):
            continue
        for line in text.splitlines():
            for sentence in _SENTENCES.findall(line):
                candidate = short_text(sentence)
                if len(candidate) >= 12 and not any(candidate in other for other in others):
                    pins[text] = candidate
                    break
            else:
                continue
            break
    return pins


class _Writer:
    """Replays chosen paths on an engine that makes real documents, into transcripts."""

    def __init__(
        self,
        flows: FlowSet,
        language: str,
        now: dt.datetime,
        router: Router,
        flows_ref: str | None,
    ) -> None:
        self.flows = flows
        self.language = language
        self.now = now
        self.flows_ref = flows_ref
        self.engine = Engine(flows, router, clock=lambda: now)
        self.pinned: set[tuple[str, str]] = set()
        self.bots: list[tuple[dict, str]] = []  # every bot: step written, with its full text
        self.written: list[tuple[Recorder, _Path, str, str]] = []

    def invalid_for(self, place: tuple[str, str], buttons: tuple[Button, ...]) -> str | None:
        step = self.flows.step(Target(*place))
        assert step.input is not None
        options = [b.label for b in buttons] if step.input.options else []
        return invalid_sample(step.input, self.language, options)

    def write(self, path: _Path, name: str) -> None:
        title = self.title(path)
        recorder = Recorder(self.now, self.language, title, self.flows_ref)
        session: Session | None = None
        buttons: tuple[Button, ...] = ()
        typed: list[str] = []
        for act in path.acts:
            feed: list[_Act] = [act]
            if act.answers is not None and act.answers not in self.pinned:
                self.pinned.add(act.answers)
                invalid = self.invalid_for(act.answers, buttons)
                if invalid is not None:
                    feed.insert(0, _Act("user", invalid))
            for one in feed:
                if one.kind == "press":
                    button = next(b for b in buttons if b.label == one.text)
                    event = Inbound.press(ADDRESS, button.payload, self.language)
                    recorder.typed(one.text, pressed=one.text)
                else:
                    event = Inbound.typed(ADDRESS, one.text, self.language)
                    recorder.typed(one.text)
                    if one is act and act.answers is not None:
                        typed.append(one.text)
                outcome = self.engine.handle(session, event)
                session = outcome.session
                shown = []
                for action in outcome.actions:
                    if isinstance(action, SendText | SendDocument | StartHandover):
                        shown.append(action)
                    if isinstance(action, SendText) and action.buttons:
                        buttons = action.buttons
                    if isinstance(action, StartHandover):
                        break  # the bot's notices about the queue are not pinned
                before = len(recorder.steps)
                recorder.answered(shown)
                for step, action in zip(recorder.steps[before:], shown, strict=True):
                    if isinstance(action, SendText):
                        self.bots.append((step, action.text))
                    elif isinstance(action, SendDocument):
                        found = _shown_answer(action.data, typed)
                        if found is not None:
                            step["contains"] = FlowList([found])
        self.written.append((recorder, path, name, title))

    def finish(self) -> list[GeneratedTranscript]:
        """The transcripts, each bot message pinned by a sentence that tells it apart."""
        pins = distinctive_texts(text for _, text in self.bots)
        for step, text in self.bots:
            step["bot"] = pins[text]
        transcripts: list[GeneratedTranscript] = []
        for recorder, path, name, title in self.written:
            text = recorder.to_yaml()
            if path.todo is not None:
                text += f"  # TODO: an answer matching /{path.todo}/\n  # - user: ANSWER\n"
            items = frozenset(path.items)
            transcripts.append(GeneratedTranscript(name, path.root, title, text, items, path.todo))
        return transcripts

    def title(self, path: _Path) -> str:
        """The flow, then the buttons pressed and the answers that decide a branch."""
        flow = self.flows.flows[path.root]
        head = flow.title.get(self.language, self.flows.bot.default_language)
        opening = 2 if path.acts[0].text == "/start" else 1
        shown = [
            act.text if act.kind == "press" or len(act.text) <= 30 else act.text[:29] + "…"
            for act in path.acts[opening:]
            if act.kind == "press" or act.decides
        ]
        steps = " → ".join(shown)
        if len(steps) > 160:
            steps = steps[:159].rstrip() + "…"
        return f"Generated: {head}" + (f": {steps}" if steps else "")


def _shown_answer(data: bytes, typed: list[str]) -> str | None:
    """The first typed answer that the document's text shows."""
    extract = document_text_function()
    if extract is None or not data:
        return None
    try:
        text = extract(data)
    except ValueError:
        return None
    return next((answer for answer in typed if len(answer) >= 3 and answer in text), None)


# --------------------------------------------------------------------------- the API


def generate_transcripts(
    flows: FlowSet,
    *,
    now: dt.datetime,
    language: str | None = None,
    flows_ref: str | None = None,
    back: bool = True,
) -> Generation:
    """The fewest transcripts this search finds that reach every reachable step and edge.
    `flows_ref` is the `flows:` to write (see `recording.flows_relative_to`); `back`: also
    use /back to return to a question (fewer transcripts)."""
    language = language or flows.bot.default_language
    router = _LazyRouter(flows)
    explorer = _Explorer(flows, language, now, router, back)
    with _quiet_runtime():
        paths = _minimise(explorer.run())
    order = {fid: i for i, fid in enumerate((*flows.bot.menu.flows, *flows.flows))}
    paths.sort(key=lambda p: order[p.root])  # stable: within a flow, in the order found
    writer = _Writer(flows, language, now, router, flows_ref)
    numbers: Counter[str] = Counter()
    with _quiet_runtime():
        for path in paths:
            numbers[path.root] += 1
            writer.write(path, f"{path.root}_{numbers[path.root]}.yaml")
    transcripts = writer.finish()
    todos = tuple(
        f"{flow}.{step}: no sample answer matches /{pattern}/; the transcript stops there "
        "with a TODO: write an answer that matches"
        for (flow, step), pattern in sorted(explorer.todos.items())
    )
    return Generation(tuple(transcripts), todos)


def replay_generated(flows: FlowSet, files: Iterable[str | Path]) -> tuple[list[Run], Coverage]:
    """Replay transcript files on `flows` in process; the runs and their coverage."""
    replayer = Replayer(flows)
    runs: list[Run] = []
    for file in files:
        transcript, report = load_transcript(file)
        if transcript is None:
            runs.append(Run.malformed(str(file), report))
            continue
        runs.append(replayer.replay(transcript))
    return runs, compute_coverage(flows, runs)
