"""The loaded, checked and frozen form of a flows folder.

Everything here is immutable once `engine.loader` has built it: the runtime trusts it and
never re-validates. Positions are kept so that runtime tools (coverage, graphs) can point
back at FILE:LINE.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from engine.diagnostics import Position
from engine.expressions import Expression


@dataclass(frozen=True, slots=True)
class Text:
    """An authored text: one string per language (a one-language text has key '*')."""

    by_language: Mapping[str, str]

    ANY = "*"

    def get(self, language: str, fallback: str) -> str:
        texts = self.by_language
        if language in texts:
            return texts[language]
        if fallback in texts:
            return texts[fallback]
        if Text.ANY in texts:
            return texts[Text.ANY]
        return next(iter(texts.values()), "")

    def all(self) -> list[str]:
        return list(self.by_language.values())

    @staticmethod
    def plain(text: str) -> Text:
        return Text(MappingProxyType({Text.ANY: text}))


@dataclass(frozen=True, slots=True)
class Target:
    """Where a move goes: a step of a flow. `flow` is always filled in after loading."""

    flow: str
    step: str

    def __str__(self) -> str:
        return f"{self.flow}.{self.step}"


class InputType(StrEnum):
    TEXT = "text"
    INTEGER = "integer"
    NUMBER = "number"
    DATE = "date"
    PHONE = "phone"
    EMAIL = "email"
    ONE_OF = "one_of"
    REGEX = "regex"


@dataclass(frozen=True, slots=True)
class InputSpec:
    save: str
    type: InputType
    min_length: int | None = None
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    options: tuple[Text, ...] = ()
    pattern: str | None = None


@dataclass(frozen=True, slots=True)
class Choice:
    label: Text
    target: Target
    sets: Mapping[str, object]
    position: Position


@dataclass(frozen=True, slots=True)
class BranchArm:
    condition: Expression | None  # None: the else arm
    target: Target
    position: Position


@dataclass(frozen=True, slots=True)
class Handover:
    queue: str
    say: Text | None


@dataclass(frozen=True, slots=True)
class DocumentSpec:
    template: str  # relative to the flows folder
    name: Text


class StepKind(StrEnum):
    CHOICES = "choices"
    INPUT = "input"
    BRANCH = "branch"
    GOTO = "goto"
    CALL = "call"
    HANDOVER = "handover"
    END = "end"


@dataclass(frozen=True, slots=True)
class Step:
    flow: str
    name: str
    kind: StepKind
    position: Position
    say: Text | None = None
    choices: tuple[Choice, ...] = ()
    input: InputSpec | None = None
    invalid: Text | None = None
    branch: tuple[BranchArm, ...] = ()
    goto: Target | None = None  # for input, goto and call steps
    call: str | None = None
    handover: Handover | None = None
    document: DocumentSpec | None = None

    @property
    def waits_for_user(self) -> bool:
        """True when the conversation stops here until the person answers."""
        return self.kind in (StepKind.CHOICES, StepKind.INPUT)

    def targets(self) -> list[Target]:
        """Every step this one can move to directly (not counting call returns)."""
        if self.kind is StepKind.CHOICES:
            return [choice.target for choice in self.choices]
        if self.kind is StepKind.BRANCH:
            return [arm.target for arm in self.branch]
        return [self.goto] if self.goto is not None else []


@dataclass(frozen=True, slots=True)
class Flow:
    id: str
    file: str
    title: Text
    match: Mapping[str, tuple[str, ...]]
    start: str
    steps: Mapping[str, Step]
    position: Position = field(default_factory=Position)


@dataclass(frozen=True, slots=True)
class Menu:
    say: Text
    flows: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BotConfig:
    languages: tuple[str, ...]
    menu: Menu
    texts: Mapping[str, Text]
    queues: Mapping[str, Text]
    retention_days: int
    file: str = "bot.yaml"
    menu_positions: tuple[Position, ...] = ()

    @property
    def default_language(self) -> str:
        return self.languages[0]


# The flow that /lawyer starts: startable even when it is not in the menu.
LAWYER_FLOW = "lawyer"


def startable(flow: Flow, bot: BotConfig | None) -> bool:
    """A flow a person can start directly (menu, typed question, /lawyer), not only
    through another flow's call or jump. The checker and the pictures share this rule."""
    in_menu = bot is not None and flow.id in bot.menu.flows
    return in_menu or any(flow.match.values()) or flow.id == LAWYER_FLOW


@dataclass(frozen=True, slots=True)
class FlowSet:
    """A whole checked folder: the bot settings and every flow by id."""

    folder: str
    bot: BotConfig
    flows: Mapping[str, Flow]

    def step(self, target: Target) -> Step:
        return self.flows[target.flow].steps[target.step]
