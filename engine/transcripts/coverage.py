"""Which steps and edges of a flow set some run reached, and which none did.

    coverage = compute_coverage(flows, runs)

`flows` is a loaded `FlowSet`; `runs` is any iterable of objects with `visited` (an
iterable of (flow, step) pairs) and `moves` (an iterable of (flow, step, move index)
triples): the `Run`s of a replay, or the `Outcome`s of an `Engine(..., trace=True)`.

An edge is one choice of a `choices` step or one arm of a `branch` step, numbered from 0 in
the order of the file; the other moves (an input's or a goto's only way on, a call's
return) are not edges: reaching their step is what counts.

`Coverage` (frozen):
- `flows`: flow id -> `FlowCoverage` (`steps`, `steps_reached`, `edges`, `edges_reached`,
  `steps_percent`, `edges_percent`, `unreached_steps`, `unreached_edges`), in the order of
  the flow set;
- `reached_steps`: frozenset of (flow, step); `reached_edges`: frozenset of
  (flow, step, index), only those that exist in `flows` (for colouring a graph);
- `unreached_steps`: tuple of `UnreachedStep(flow, step, file, position)`;
- `unreached_edges`: tuple of `UnreachedEdge(flow, step, index, kind, label, target, file,
  position)`, `kind` being "choice" or "arm", `label` the choice's label in the bot's first
  language or the arm's condition ("else" for a bare goto), `position` the choice's or the
  arm's own line;
- totals: `steps`, `steps_reached`, `edges`, `edges_reached`, and the percentages
  `steps_percent`, `edges_percent`, `lowest_percent` (the lower of the two: what
  `hotline replay --min-coverage` compares) and `percent` (steps and edges counted together);
- `report()`: the lines `hotline replay --coverage` prints.
A flow set with nothing to count is 100% covered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

from engine.diagnostics import Position
from engine.model import FlowSet, StepKind


class Traced(Protocol):
    """What coverage needs from a run: the steps entered and the moves taken."""

    @property
    def visited(self) -> Iterable[tuple[str, str]]: ...

    @property
    def moves(self) -> Iterable[tuple[str, str, int]]: ...


@dataclass(frozen=True, slots=True)
class UnreachedStep:
    flow: str
    step: str
    file: str
    position: Position

    def __str__(self) -> str:
        return f"{self.file}:{self.position.line}: step {self.step} never reached"


@dataclass(frozen=True, slots=True)
class UnreachedEdge:
    flow: str
    step: str
    index: int
    kind: str  # "choice" or "arm"
    label: str
    target: str  # FLOW.STEP
    file: str
    position: Position

    def __str__(self) -> str:
        what = f'choice "{self.label}"' if self.kind == "choice" else f"arm '{self.label}'"
        return (
            f"{self.file}:{self.position.line}: {what} of step {self.step} "
            f"(to {self.target}) never taken"
        )


def percent(part: int, whole: int) -> float:
    return 100.0 if whole == 0 else 100.0 * part / whole


@dataclass(frozen=True, slots=True)
class FlowCoverage:
    flow: str
    file: str
    steps: int
    steps_reached: int
    edges: int
    edges_reached: int
    unreached_steps: tuple[UnreachedStep, ...]
    unreached_edges: tuple[UnreachedEdge, ...]

    @property
    def steps_percent(self) -> float:
        return percent(self.steps_reached, self.steps)

    @property
    def edges_percent(self) -> float:
        return percent(self.edges_reached, self.edges)


@dataclass(frozen=True, slots=True)
class Coverage:
    flows: Mapping[str, FlowCoverage]
    reached_steps: frozenset[tuple[str, str]]
    reached_edges: frozenset[tuple[str, str, int]]
    unreached_steps: tuple[UnreachedStep, ...]
    unreached_edges: tuple[UnreachedEdge, ...]

    @property
    def steps(self) -> int:
        return sum(f.steps for f in self.flows.values())

    @property
    def steps_reached(self) -> int:
        return sum(f.steps_reached for f in self.flows.values())

    @property
    def edges(self) -> int:
        return sum(f.edges for f in self.flows.values())

    @property
    def edges_reached(self) -> int:
        return sum(f.edges_reached for f in self.flows.values())

    @property
    def steps_percent(self) -> float:
        return percent(self.steps_reached, self.steps)

    @property
    def edges_percent(self) -> float:
        return percent(self.edges_reached, self.edges)

    @property
    def lowest_percent(self) -> float:
        return min(self.steps_percent, self.edges_percent)

    @property
    def percent(self) -> float:
        return percent(self.steps_reached + self.edges_reached, self.steps + self.edges)

    def report(self) -> list[str]:
        """Per flow its numbers and what no run reached, then the totals."""
        lines: list[str] = []
        width = max((len(fid) for fid in self.flows), default=0)
        for fid, flow in self.flows.items():
            lines.append(
                f"{fid.ljust(width)}  steps {_ratio(flow.steps_reached, flow.steps)}"
                f"  edges {_ratio(flow.edges_reached, flow.edges)}"
            )
            missing = [(u.position, str(u)) for u in flow.unreached_steps]
            missing += [(u.position, str(u)) for u in flow.unreached_edges]
            lines.extend(f"  {text}" for _, text in sorted(missing, key=lambda m: m[0]))
        lines.append(
            f"coverage: steps {_ratio(self.steps_reached, self.steps)}, "
            f"edges {_ratio(self.edges_reached, self.edges)}, "
            f"lowest {_percent_text(self.lowest_percent)}"
        )
        return lines


def _percent_text(value: float) -> str:
    # Never round 99.6% up to "100%": a gap must stay visible.
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    if value < 100.0 and text == "100":
        text = "99.9"
    return f"{text}%"


def _ratio(part: int, whole: int) -> str:
    return f"{part}/{whole} ({_percent_text(percent(part, whole))})"


def compute_coverage(flows: FlowSet, runs: Iterable[Traced]) -> Coverage:
    """What `runs` reached of `flows` (see the module docstring for the API)."""
    visited: set[tuple[str, str]] = set()
    moves: set[tuple[str, str, int]] = set()
    for run in runs:
        visited.update(run.visited)
        moves.update(run.moves)
    language = flows.bot.default_language
    per_flow: dict[str, FlowCoverage] = {}
    reached_steps: set[tuple[str, str]] = set()
    reached_edges: set[tuple[str, str, int]] = set()
    all_steps: list[UnreachedStep] = []
    all_edges: list[UnreachedEdge] = []
    for fid, flow in flows.flows.items():
        steps_reached = edges = edges_reached = 0
        unreached_steps: list[UnreachedStep] = []
        unreached_edges: list[UnreachedEdge] = []
        for name, step in flow.steps.items():
            if (fid, name) in visited:
                steps_reached += 1
                reached_steps.add((fid, name))
            else:
                unreached_steps.append(UnreachedStep(fid, name, flow.file, step.position))
            if step.kind is StepKind.CHOICES:
                arms = [
                    ("choice", c.label.get(language, language), str(c.target), c.position)
                    for c in step.choices
                ]
            elif step.kind is StepKind.BRANCH:
                arms = [
                    (
                        "arm",
                        f"when {a.condition.source}" if a.condition is not None else "else",
                        str(a.target),
                        a.position,
                    )
                    for a in step.branch
                ]
            else:
                continue
            for index, (kind, label, target, position) in enumerate(arms):
                edges += 1
                if (fid, name, index) in moves:
                    edges_reached += 1
                    reached_edges.add((fid, name, index))
                else:
                    unreached_edges.append(
                        UnreachedEdge(fid, name, index, kind, label, target, flow.file, position)
                    )
        per_flow[fid] = FlowCoverage(
            fid,
            flow.file,
            len(flow.steps),
            steps_reached,
            edges,
            edges_reached,
            tuple(unreached_steps),
            tuple(unreached_edges),
        )
        all_steps.extend(unreached_steps)
        all_edges.extend(unreached_edges)
    return Coverage(
        MappingProxyType(per_flow),
        frozenset(reached_steps),
        frozenset(reached_edges),
        tuple(all_steps),
        tuple(all_edges),
    )
