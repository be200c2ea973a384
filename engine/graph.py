"""Pictures of flows: Mermaid and Graphviz DOT text, channel-neutral and free of I/O.

A lawyer opens the picture of a flow and should recognise the decision tree:

- a step is a node labelled with the first words of its `say` (in one language), its id
  in small text (DOT), what an input saves ("→ birth_date (date)") and the document it sends;
- the node's shape and colour say what the step does: a question with buttons (blue rounded
  box), a typed answer (yellow box; a parallelogram in Mermaid), a condition (diamond), a
  call of another flow (box with side bars), a hand-over to people (pink hexagon,
  "→ Lawyers"), an end (green, double border in DOT, a pill in Mermaid), a plain "say and go
  on" step (white box); every flow starts at a black dot;
- a choice is an edge labelled with its button label, a branch arm an edge labelled with its
  `when` (the last arm "else" / "иначе"), a goto or an answered input an unlabelled edge;
- a `call` is a dashed edge into the called flow's start plus a dotted edge from the calling
  step to its `goto` (where the conversation goes on when the called flow ends);
- a jump into another flow (`goto: FLOW.STEP`) is a bold blue edge. When that flow is drawn
  too, the jumps of one flow to one target meet in a dashed connector inside the jumping
  flow's frame, with one bold edge on into the other frame (a lawyer hand-over reached from
  everywhere would otherwise cross the whole picture); when it is not drawn, a dashed stub
  named after its title sits beside each step that jumps there, like an off-page connector;
- a target that does not exist (only in a folder with errors) is a red "missing" node;
- a step that no conversation can reach is drawn with a red dashed border. Reachability
  mirrors `engine.checker`: conversations begin at the start of every flow that is in the
  menu, has `match` phrases, or is the `lawyer` flow (/lawyer); they follow choices, inputs,
  branch arms, gotos, jumps and calls, and come back from a call only when the called flow
  can reach an `end`. A flow no conversation ever enters is titled "can never be started"
  with a red dashed frame (the checker warns about it) rather than every step in red.
- with coverage (`unreached_steps`, `unreached_edges`, e.g. from
  `engine.transcripts.compute_coverage`) the steps no transcript entered get an orange fill
  and the moves none took a red edge. A move is (flow, step, index): the index of the choice
  or branch arm, and 0 for the single move of an input, goto or call step (for a call: the
  return to its goto), the same numbering as the runtime's trace (`Outcome.moves`). Every
  edge out of an unreached step is unreached too (so the coverage module, which lists only
  choices and arms, colours the gotos right).
- a leading remark in brackets in a `say` ("(This is an illustration...)") is skipped for
  the label when text follows it: the words after it identify the step.

The renderers take a `FlowSet`, which `engine.loader.load_folder` returns for a folder
without errors; a folder with errors can still be drawn from what was read, with
`read_folder(path).flow_set()` (steps that failed to load are left out and targets that
lead nowhere become "missing" nodes): a picture of a broken folder helps a lawyer see what
is wrong. Nothing here runs Graphviz; `adapters/commands/graph.py` does.
"""

from __future__ import annotations

import itertools
import re
import textwrap
from collections import deque
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from engine.model import Flow, FlowSet, Step, StepKind, Target, Text, startable

StepRef = tuple[str, str]  # (flow, step)
MoveRef = tuple[str, str, int]  # (flow, step, index of the choice or branch arm)

LABEL_WORDS = 6  # a node shows about this many words of the step's `say`
NODE_WIDTH = 24  # characters per line in a node
EDGE_WIDTH = 26  # characters per line of an edge label
EDGE_MAX = 60  # an edge label longer than this is shortened with "…"
FONT = "DejaVu Sans"  # has Cyrillic; Graphviz falls back to a similar font when missing

# The words the picture itself uses, per language; English when a language is not here.
_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "else": "else",
        "call": "call",
        "back": "when it ends",
        "document": "document",
        "missing": "missing",
        "never": "can never be started",
        "legend": "Legend",
        "entry": "start",
        "question": "question with buttons",
        "input": "typed answer",
        "branch": "condition",
        "goto": "message",
        "callstep": "runs another flow",
        "handover": "hand-over to people",
        "end": "end",
        "stub": "another flow",
        "unreachable": "can never be reached",
        "uncovered": "no transcript reaches it",
        "jump": "into another flow",
        "uncovered_edge": "no transcript takes it",
        "other": "Other flows",
    },
    "ru": {
        "else": "иначе",
        "call": "вызов",
        "back": "по окончании",
        "document": "документ",
        "missing": "нет такого шага",
        "never": "никогда не запускается",
        "legend": "Обозначения",
        "entry": "начало",
        "question": "вопрос с кнопками",
        "input": "ответ текстом",
        "branch": "условие",
        "goto": "сообщение",
        "callstep": "запускает другой сценарий",
        "handover": "передача человеку",
        "end": "конец",
        "stub": "другой сценарий",
        "unreachable": "недостижимый шаг",
        "uncovered": "ни один тест не доходит",
        "jump": "переход в другой сценарий",
        "uncovered_edge": "ни один тест не проходит",
        "other": "Другие сценарии",
    },
}


def _word(language: str, key: str) -> str:
    return _WORDS.get(language, _WORDS["en"]).get(key, _WORDS["en"][key])


# ----------------------------------------------------------------------------- reachability


def startable_flows(flows: FlowSet) -> list[str]:
    """Flows a person can start directly: in the menu, with match phrases, or /lawyer."""
    return [flow_id for flow_id, flow in flows.flows.items() if startable(flow, flows.bot)]


def _step(flows: FlowSet, target: Target) -> Step | None:
    flow = flows.flows.get(target.flow)
    return None if flow is None else flow.steps.get(target.step)


def _can_end(flows: FlowSet, flow_id: str) -> bool:
    """True when a call of this flow can come back: an `end` is reachable from its start.

    Like the checker, calls inside are walked as their shortcut (the call step's goto).
    """
    flow = flows.flows.get(flow_id)
    if flow is None:
        return False
    seen: set[StepRef] = set()
    queue = deque([Target(flow_id, flow.start)])
    while queue:
        target = queue.popleft()
        ref = (target.flow, target.step)
        step = _step(flows, target)
        if ref in seen or step is None:
            continue
        seen.add(ref)
        if step.kind is StepKind.END:
            return True
        queue.extend(step.targets())
    return False


def reachable_steps(flows: FlowSet) -> set[StepRef]:
    """Every (flow, step) some conversation can enter; mirrors `engine.checker`."""
    can_end: dict[str, bool] = {}
    starts = [Target(fid, flows.flows[fid].start) for fid in startable_flows(flows)]
    seen: set[StepRef] = set()
    queue = deque(starts)
    while queue:
        target = queue.popleft()
        ref = (target.flow, target.step)
        step = _step(flows, target)
        if ref in seen or step is None:
            continue
        seen.add(ref)
        if step.kind is StepKind.CALL:
            callee = flows.flows.get(step.call or "")
            if callee is not None:
                queue.append(Target(callee.id, callee.start))
                if callee.id not in can_end:
                    can_end[callee.id] = _can_end(flows, callee.id)
                if can_end[callee.id] and step.goto is not None:
                    queue.append(step.goto)
            continue
        queue.extend(step.targets())
    return seen


# ----------------------------------------------------------------------------- the picture


@dataclass(slots=True)
class Node:
    """One box of the picture. `kind` is a StepKind value, 'entry', 'stub' or 'missing'."""

    id: str  # unique and stable: "flow.step", "flow.>entry", "stub:flow.step", ...
    kind: str
    lines: list[str]  # the main label, already wrapped
    notes: list[str] = field(default_factory=list)  # input variable, document (in italics)
    small: str = ""  # the step id, in small grey text (DOT only)
    cluster: str | None = None  # the flow it is drawn in; None: outside every flow
    unreachable: bool = False
    uncovered: bool = False


@dataclass(slots=True)
class Edge:
    """One arrow. `kind`: 'move' (choice, arm, goto, input), 'call', 'return' or 'entry'."""

    source: str
    target: str
    kind: str
    label: list[str] = field(default_factory=list)  # wrapped lines; empty: no label
    jump: bool = False  # into another flow
    uncovered: bool = False


@dataclass(slots=True)
class Cluster:
    id: str  # the flow id
    title: str
    subtitle: str  # "flow_id · file"
    never_started: bool = False
    nodes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Picture:
    """The channel-neutral picture that the Mermaid and DOT writers both draw."""

    language: str
    clusters: list[Cluster]
    nodes: dict[str, Node]
    edges: list[Edge]
    coverage: bool = False  # coverage colours are in use (show them in the legend)

    def kinds(self) -> set[str]:
        return {node.kind for node in self.nodes.values()}


def _collapse(text: str) -> str:
    return " ".join(text.split())


_LEADING_ASIDE = re.compile(r"^\s*\([^()]*\)\s*(?=\S)")


def first_words(text: str, count: int = LABEL_WORDS) -> str:
    """The first `count` words of a text, with "…" when it goes on.

    A leading remark in brackets ("(This is an illustration...)") is skipped when text
    follows it: the words after it are what identifies the step.
    """
    text = _LEADING_ASIDE.sub("", text, count=1)
    words = text.split()
    if len(words) <= count:
        return " ".join(words)
    return " ".join(words[:count]).rstrip(",;:—–- ") + "…"


def wrap(text: str, width: int) -> list[str]:
    """Lines of at most `width` characters (a longer word is cut)."""
    return textwrap.wrap(_collapse(text), width=width, break_on_hyphens=False) or [""]


def shorten(text: str, limit: int = EDGE_MAX) -> str:
    text = _collapse(text)
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


class _Builder:
    def __init__(
        self,
        flows: FlowSet,
        drawn: list[str],
        language: str,
        unreached_steps: Collection[StepRef] | None,
        unreached_edges: Collection[MoveRef] | None,
    ) -> None:
        self.flows = flows
        self.drawn = drawn
        self.language = language
        self.fallback = flows.bot.default_language
        self.coverage = unreached_steps is not None or unreached_edges is not None
        self.unreached_steps = set(unreached_steps or ())
        self.unreached_edges = set(unreached_edges or ())
        self.reachable = reachable_steps(flows)
        self.entered = {flow for flow, _ in self.reachable}
        self.picture = Picture(language, [], {}, [], coverage=self.coverage)
        self.clusters: dict[str, Cluster] = {}
        self.connectors: dict[str, Edge] = {}  # connector node -> its edge into the flow

    def text(self, text: Text | None) -> str:
        return "" if text is None else text.get(self.language, self.fallback)

    def title(self, flow: Flow) -> str:
        return self.text(flow.title) or flow.id

    def build(self) -> Picture:
        for flow_id in self.drawn:
            self.add_flow(self.flows.flows[flow_id])
        for node_id, edge in self.connectors.items():
            incoming = [e for e in self.picture.edges if e.target == node_id]
            edge.uncovered = bool(incoming) and all(e.uncovered for e in incoming)
            self.picture.edges.append(edge)
        return self.picture

    def add_flow(self, flow: Flow) -> None:
        never = flow.id not in self.entered
        cluster = Cluster(
            id=flow.id,
            title=self.title(flow),
            subtitle=f"{flow.id} · {flow.file}",
            never_started=never,
        )
        self.picture.clusters.append(cluster)
        self.clusters[flow.id] = cluster
        entry = Node(f"{flow.id}.>entry", "entry", [_word(self.language, "entry")])
        self.add_node(entry, cluster)
        start = self.node_for(Target(flow.id, flow.start), flow.id)
        self.picture.edges.append(Edge(entry.id, start, "entry"))
        for step in flow.steps.values():
            self.add_step(step, cluster, never)

    def add_node(self, node: Node, cluster: Cluster | None) -> None:
        if cluster is not None:
            node.cluster = cluster.id
            cluster.nodes.append(node.id)
        self.picture.nodes[node.id] = node

    def add_step(self, step: Step, cluster: Cluster, never: bool) -> None:
        ref = (step.flow, step.name)
        node = Node(
            id=f"{step.flow}.{step.name}",
            kind=step.kind.value,
            lines=self.step_lines(step),
            small=step.name,
            unreachable=not never and ref not in self.reachable,
            uncovered=ref in self.unreached_steps,
        )
        if step.input is not None:
            node.notes.append(f"→ {step.input.save} ({step.input.type.value})")
        if step.document is not None:
            name = self.text(step.document.name) or step.document.template
            node.notes.append(f"{_word(self.language, 'document')}: {name}")
        self.add_node(node, cluster)
        step_uncovered = node.uncovered

        def uncovered(index: int) -> bool:
            return step_uncovered or (step.flow, step.name, index) in self.unreached_edges

        if step.kind is StepKind.CHOICES:
            for index, choice in enumerate(step.choices):
                label = shorten(self.text(choice.label))
                self.move(step, choice.target, label, uncovered(index))
        elif step.kind is StepKind.BRANCH:
            for index, arm in enumerate(step.branch):
                if arm.condition is None:
                    label = _word(self.language, "else")
                else:
                    label = shorten(arm.condition.source)
                self.move(step, arm.target, label, uncovered(index))
        elif step.kind is StepKind.CALL:
            callee = self.flows.flows.get(step.call or "")
            if callee is not None and callee.id in self.drawn:
                start = self.node_for(Target(callee.id, callee.start), callee.id)
            elif callee is not None:
                start = self.node_for(Target(callee.id, callee.start), step.flow, step.name)
            else:
                start = self.missing(Target(step.call or "?", "?"))
            self.picture.edges.append(
                Edge(
                    node.id,
                    start,
                    "call",
                    wrap(_word(self.language, "call"), EDGE_WIDTH),
                    uncovered=step_uncovered,
                )
            )
            if step.goto is not None:
                target = self.node_for(step.goto, step.flow)
                self.picture.edges.append(
                    Edge(
                        node.id,
                        target,
                        "return",
                        wrap(_word(self.language, "back"), EDGE_WIDTH),
                        uncovered=uncovered(0),
                    )
                )
        elif step.goto is not None:  # input, goto
            self.move(step, step.goto, "", uncovered(0))

    def move(self, step: Step, target: Target, label: str, uncovered: bool) -> None:
        node = self.node_for(target, step.flow, step.name)
        self.picture.edges.append(
            Edge(
                f"{step.flow}.{step.name}",
                node,
                "move",
                wrap(label, EDGE_WIDTH) if label else [],
                jump=target.flow != step.flow,
                uncovered=uncovered,
            )
        )

    def node_for(self, target: Target, from_flow: str, from_step: str = "") -> str:
        """The node id of a target: a step of the same flow, a connector or stub for a step
        of another flow, or a 'missing' node.

        A jump into another drawn flow goes through one connector per (flow, target) inside
        the jumping flow's frame, and one bold edge from it into the other frame: a flow that
        many steps hand over to (the lawyer) would otherwise pull arrows across the picture.
        A flow that is not drawn gets a stub beside each step that goes to it, as an
        off-page connector does on paper: no arrows converge from all over the picture.
        """
        if _step(self.flows, target) is None:
            return self.missing(target)
        if target.flow == from_flow:
            return f"{target.flow}.{target.step}"
        cluster = self.clusters.get(from_flow)
        if target.flow in self.drawn:
            node_id = f"link:{from_flow}>{target}"
        else:
            node_id = f"stub:{from_flow}.{from_step}>{target}"
        if node_id not in self.picture.nodes:
            flow = self.flows.flows[target.flow]
            lines = wrap("↪ " + self.title(flow), NODE_WIDTH)
            if target.step != flow.start:
                step = flow.steps[target.step]
                lines += wrap(first_words(self.text(step.say), 4) or target.step, NODE_WIDTH)
            self.add_node(Node(node_id, "stub", lines, small=str(target)), cluster)
            if target.flow in self.drawn:
                self.connectors[node_id] = Edge(
                    node_id, f"{target.flow}.{target.step}", "move", jump=True
                )
        return node_id

    def missing(self, target: Target) -> str:
        node_id = f"missing:{target}"
        if node_id not in self.picture.nodes:
            lines = wrap(f"{_word(self.language, 'missing')}: {target}", NODE_WIDTH)
            self.add_node(Node(node_id, "missing", lines, small=str(target)), None)
        return node_id

    def step_lines(self, step: Step) -> list[str]:
        say = first_words(self.text(step.say)) if step.say is not None else ""
        lines = wrap(say, NODE_WIDTH) if say else []
        if step.kind is StepKind.HANDOVER and step.handover is not None:
            if not lines and step.handover.say is not None:
                lines = wrap(first_words(self.text(step.handover.say)), NODE_WIDTH)
            queue = self.flows.bot.queues.get(step.handover.queue)
            name = self.text(queue) if queue is not None else step.handover.queue
            lines += wrap(f"→ {name or step.handover.queue}", NODE_WIDTH)
        elif step.kind is StepKind.CALL:
            callee = self.flows.flows.get(step.call or "")
            name = self.title(callee) if callee is not None else step.call or "?"
            lines += wrap(f"{_word(self.language, 'call')}: «{name}»", NODE_WIDTH)
        elif not lines and step.kind is StepKind.END:
            lines = [_word(self.language, "end")]
        elif not lines:
            lines = [step.name]
        return lines


def build_picture(
    flows: FlowSet,
    flow_ids: Iterable[str] | None = None,
    *,
    language: str | None = None,
    unreached_steps: Collection[StepRef] | None = None,
    unreached_edges: Collection[MoveRef] | None = None,
) -> Picture:
    """The picture of `flow_ids` (default: every flow, in folder order).

    Targets in flows that are not drawn become stub nodes. `language` defaults to the bot's
    first language. Coverage sets, when given, colour what transcripts never reached.
    """
    drawn = list(flows.flows) if flow_ids is None else list(flow_ids)
    for flow_id in drawn:
        if flow_id not in flows.flows:
            raise KeyError(f"there is no flow '{flow_id}'")
    language = language or flows.bot.default_language
    return _Builder(flows, drawn, language, unreached_steps, unreached_edges).build()


# ----------------------------------------------------------------------------- legend


def _legend(picture: Picture) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    """(node samples as (kind, marker, text), edge samples as (style, text)) to explain."""
    lang = picture.language
    kinds = picture.kinds()
    names = {
        "choices": "question",
        "input": "input",
        "branch": "branch",
        "goto": "goto",
        "call": "callstep",
        "handover": "handover",
        "end": "end",
        "stub": "stub",
    }
    nodes = [(kind, "", _word(lang, key)) for kind, key in names.items() if kind in kinds]
    if any(n.unreachable for n in picture.nodes.values()):
        nodes.append(("goto", "unreachable", _word(lang, "unreachable")))
    if picture.coverage:
        nodes.append(("goto", "uncovered", _word(lang, "uncovered")))
    edges: list[tuple[str, str]] = []
    if any(e.jump for e in picture.edges):
        edges.append(("jump", _word(lang, "jump")))
    if any(e.kind == "call" for e in picture.edges):
        edges.append(("call", _word(lang, "call")))
        edges.append(("return", _word(lang, "back")))
    if picture.coverage:
        edges.append(("uncovered", _word(lang, "uncovered_edge")))
    return nodes, edges


# ----------------------------------------------------------------------------- Mermaid

_MERMAID_ENTITIES = {
    '"': "#34;",
    "#": "#35;",
    "&": "#38;",
    "<": "#60;",
    ">": "#62;",
    "`": "#96;",
    "|": "#124;",
    "\\": "#92;",
}


def mermaid_text(text: str) -> str:
    """Text safe inside a quoted Mermaid label: entity codes for the characters it parses."""
    return "".join(_MERMAID_ENTITIES.get(ch, ch) for ch in _collapse(text))


def _mermaid_label(lines: Iterable[str]) -> str:
    return "<br/>".join(mermaid_text(line) for line in lines)


_MERMAID_SHAPES = {
    "choices": ('("', '")'),
    "input": ('[/"', '"/]'),
    "branch": ('{"', '"}'),
    "goto": ('["', '"]'),
    "call": ('[["', '"]]'),
    "handover": ('{{"', '"}}'),
    "end": ('(["', '"])'),
    "entry": ('(("', '"))'),
    "stub": ('>"', '"]'),
    "missing": ('["', '"]'),
}

_MERMAID_CLASSES = (
    "classDef k_choices fill:#e3f2fd,stroke:#1e88e5,color:#0d2a4a",
    "classDef k_input fill:#fffde7,stroke:#9e9d24,color:#333",
    "classDef k_branch fill:#f3e5f5,stroke:#8e24aa,color:#333",
    "classDef k_goto fill:#ffffff,stroke:#757575,color:#333",
    "classDef k_call fill:#e0f2f1,stroke:#00897b,color:#333",
    "classDef k_handover fill:#fce4ec,stroke:#d81b60,color:#333",
    "classDef k_end fill:#e8f5e9,stroke:#2e7d32,stroke-width:3px,color:#333",
    "classDef k_entry fill:#212121,stroke:#212121,color:#ffffff",
    "classDef k_stub fill:#fafafa,stroke:#9e9e9e,stroke-dasharray:4 3,color:#555",
    "classDef k_missing fill:#ffcdd2,stroke:#c62828,color:#b71c1c",
    "classDef unreachable stroke:#d50000,stroke-width:3px,stroke-dasharray:6 4",
    "classDef uncovered fill:#ffcc80",
    "classDef never stroke:#d50000,stroke-width:2px,stroke-dasharray:6 4",
    "classDef k_point fill:none,stroke:none",
)


class _MermaidIds:
    """Node ids Mermaid accepts (flow__step), unique even when names collide."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}
        self.used: set[str] = set()

    def __call__(self, key: str) -> str:
        if key in self.ids:
            return self.ids[key]
        base = key.replace(".", "__").replace(":", "_").replace(">", "_")
        base = re.sub(r"[^A-Za-z0-9_]", "_", base)
        if not base or not base[0].isalpha():
            base = "n_" + base
        candidate, number = base, 2
        while candidate in self.used:
            candidate, number = f"{base}_{number}", number + 1
        self.used.add(candidate)
        self.ids[key] = candidate
        return candidate


def _mermaid_node(node_id: str, node: Node) -> tuple[str, list[str]]:
    opening, closing = _MERMAID_SHAPES[node.kind]
    lines = list(node.lines) + node.notes
    classes = [f"k_{node.kind}"]
    if node.unreachable:
        classes.append("unreachable")
    if node.uncovered:
        classes.append("uncovered")
    # `:::` takes one class; the caller adds the others with `class` statements.
    return f"{node_id}{opening}{_mermaid_label(lines)}{closing}:::{classes[0]}", classes[1:]


def mermaid(picture: Picture, legend: bool = True) -> str:
    """Mermaid `flowchart TB` text: one subgraph per drawn flow."""
    ids = _MermaidIds()
    out = ["flowchart TB"]
    extra_classes: dict[str, list[str]] = {}

    def emit_node(node: Node, indent: str) -> None:
        node_id = ids(node.id)
        line, more = _mermaid_node(node_id, node)
        out.append(indent + line)
        for cls in more:
            extra_classes.setdefault(cls, []).append(node_id)

    never: list[str] = []
    for cluster in picture.clusters:
        sg = ids(f"sg:{cluster.id}")
        title = cluster.title
        if cluster.never_started:
            title += f" ({_word(picture.language, 'never')})"
            never.append(sg)
        out.append(f'  subgraph {sg}["{mermaid_text(title)}"]')
        out.append("    direction TB")
        for node_id in cluster.nodes:
            emit_node(picture.nodes[node_id], "    ")
        out.append("  end")
    for node in picture.nodes.values():
        if node.cluster is None:
            emit_node(node, "  ")
    link_styles: dict[str, list[int]] = {}
    links = 0  # Mermaid numbers every link, in order, for linkStyle

    def emit_edge(edge: Edge, indent: str) -> None:
        nonlocal links
        arrow = {"move": "-->", "entry": "-->", "call": "-.->", "return": "-.->"}[edge.kind]
        if edge.jump:
            arrow = "==>"
        label = f'|"{_mermaid_label(edge.label)}"|' if edge.label else ""
        out.append(f"{indent}{ids(edge.source)} {arrow}{label} {ids(edge.target)}")
        style = "uncovered" if edge.uncovered else ("jump" if edge.jump else edge.kind)
        if style in ("uncovered", "jump", "return", "call"):
            link_styles.setdefault(style, []).append(links)
        links += 1

    for edge in picture.edges:
        emit_edge(edge, "  ")
    samples, edge_samples = _legend(picture) if legend else ([], [])
    if samples or edge_samples:
        lang = picture.language
        legend_id = ids("legend:")
        out.append(f'  subgraph {legend_id}["{mermaid_text(_word(lang, "legend"))}"]')
        out.append("    direction LR")
        for number, (kind, marker, text) in enumerate(samples):
            sample = Node(f"legend.{number}", kind, [text])
            sample.unreachable = marker == "unreachable"
            sample.uncovered = marker == "uncovered"
            emit_node(sample, "    ")
        for number, (style, text) in enumerate(edge_samples):
            a, b = f"legend.e{number}a", f"legend.e{number}b"
            out.append(f'    {ids(a)}[" "]:::k_point')
            out.append(f'    {ids(b)}[" "]:::k_point')
            sample_edge = Edge(a, b, "move", [text])
            if style == "jump":
                sample_edge.jump = True
            elif style in ("call", "return"):
                sample_edge.kind = style
            elif style == "uncovered":
                sample_edge.uncovered = True
            emit_edge(sample_edge, "    ")
        # Invisible links keep the samples in a row; they come last, after every link
        # that a linkStyle below counts.
        chain = [ids(f"legend.{number}") for number in range(len(samples))]
        for number in range(len(edge_samples)):
            if chain:
                out.append(f"    {chain[-1]} ~~~ {ids(f'legend.e{number}a')}")
            chain.append(ids(f"legend.e{number}b"))
        if len(samples) > 1:
            out.append(f"    {' ~~~ '.join(chain[: len(samples)])}")
        out.append("  end")
    out.extend("  " + line for line in _MERMAID_CLASSES)
    for cls, members in extra_classes.items():
        out.append(f"  class {','.join(members)} {cls}")
    for sg in never:
        out.append(f"  class {sg} never")
    colours = {
        "uncovered": "stroke:#d50000,stroke-width:2px,color:#d50000",
        "jump": "stroke:#1565c0,stroke-width:2.5px",
        "call": "stroke:#00897b",
        "return": "stroke:#757575,stroke-dasharray:2 4",
    }
    for style, indexes in link_styles.items():
        out.append(f"  linkStyle {','.join(map(str, indexes))} {colours[style]}")
    return "\n".join(out) + "\n"


def render_mermaid(
    flows: FlowSet,
    flow_ids: Iterable[str] | None = None,
    *,
    language: str | None = None,
    unreached_steps: Collection[StepRef] | None = None,
    unreached_edges: Collection[MoveRef] | None = None,
    legend: bool = True,
) -> str:
    """One Mermaid flowchart of the flows (default: all), for a .mmd file or stdout."""
    picture = build_picture(
        flows,
        flow_ids,
        language=language,
        unreached_steps=unreached_steps,
        unreached_edges=unreached_edges,
    )
    return mermaid(picture, legend=legend)


# How the Markdown legend names each shape and arrow (Mermaid's drawing of them).
_LOOKS: dict[str, dict[str, str]] = {
    "en": {
        "choices": "blue rounded box",
        "input": "yellow slanted box",
        "branch": "violet diamond",
        "goto": "white box",
        "call": "green box with side bars",
        "handover": "pink hexagon",
        "end": "green pill with a thick border",
        "stub": "grey dashed flag",
        "unreachable": "red dashed border",
        "uncovered": "orange fill",
        "jump": "thick blue arrow",
        "call_edge": "dashed green arrow",
        "return": "dotted grey arrow",
        "uncovered_edge": "red arrow",
        "title": "Flows",
    },
    "ru": {
        "choices": "голубой скруглённый прямоугольник",
        "input": "жёлтый наклонный прямоугольник",
        "branch": "сиреневый ромб",
        "goto": "белый прямоугольник",
        "call": "зелёный прямоугольник с боковыми полосами",
        "handover": "розовый шестиугольник",
        "end": "зелёный овал с толстой рамкой",
        "stub": "серый пунктирный флажок",
        "unreachable": "красная пунктирная рамка",
        "uncovered": "оранжевая заливка",
        "jump": "толстая синяя стрелка",
        "call_edge": "зелёная пунктирная стрелка",
        "return": "серая точечная стрелка",
        "uncovered_edge": "красная стрелка",
        "title": "Сценарии",
    },
}


def _looks(language: str, key: str) -> str:
    return _LOOKS.get(language, _LOOKS["en"])[key]


def _markdown_legend(language: str, pictures: list[Picture]) -> list[str]:
    merged = Picture(language, [], {}, [], coverage=any(p.coverage for p in pictures))
    for picture in pictures:
        merged.nodes.update(picture.nodes)
        merged.edges.extend(picture.edges)
    nodes, edges = _legend(merged)
    lines = [f"**{_word(language, 'legend')}**", ""]
    for kind, marker, text in nodes:
        lines.append(f"- {_looks(language, marker or kind)}: {text}")
    arrows = {
        "jump": "jump",
        "call": "call_edge",
        "return": "return",
        "uncovered": "uncovered_edge",
    }
    for style, text in edges:
        lines.append(f"- {_looks(language, arrows[style])}: {text}")
    return [*lines, ""]


def render_markdown(
    flows: FlowSet,
    flow_ids: Iterable[str] | None = None,
    *,
    language: str | None = None,
    unreached_steps: Collection[StepRef] | None = None,
    unreached_edges: Collection[MoveRef] | None = None,
) -> str:
    """A Markdown page with one ```mermaid block per flow (GitHub and GitLab draw them)."""
    drawn = list(flows.flows) if flow_ids is None else list(flow_ids)
    language = language or flows.bot.default_language
    pictures = [
        build_picture(
            flows,
            [flow_id],
            language=language,
            unreached_steps=unreached_steps,
            unreached_edges=unreached_edges,
        )
        for flow_id in drawn
    ]
    out = [f"# {_looks(language, 'title')}: {_markdown_escape(flows.folder)}", ""]
    out += _markdown_legend(language, pictures)
    for flow_id, picture in zip(drawn, pictures, strict=True):
        flow = flows.flows[flow_id]
        title = _markdown_escape(picture.clusters[0].title)
        out.append(f"## {title}")
        out.append("")
        note = f"`{flow_id}` · `{flow.file}`"
        if picture.clusters[0].never_started:
            note += f" · **{_word(language, 'never')}**"
        out.append(note)
        out.append("")
        out.append("```mermaid")
        out.append(mermaid(picture, legend=False).rstrip("\n"))
        out.append("```")
        out.append("")
    return "\n".join(out)


def _markdown_escape(text: str) -> str:
    return re.sub(r"([\\`*_{}\[\]<>()#+!|])", r"\\\1", _collapse(text))


# ----------------------------------------------------------------------------- DOT


def dot_html(text: str) -> str:
    """Text safe inside a Graphviz HTML-like label."""
    return (
        _collapse(text)
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("]", "&#93;")
        .replace("[", "&#91;")
    )


def dot_id(text: str) -> str:
    """A quoted DOT identifier."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


_DOT_NODE_STYLES: Mapping[str, str] = {
    "choices": 'shape=box, style="rounded,filled", fillcolor="#e3f2fd", color="#1e88e5"',
    "input": 'shape=box, style="filled", fillcolor="#fffde7", color="#9e9d24"',
    "branch": 'shape=diamond, style="filled", fillcolor="#f3e5f5", color="#8e24aa"',
    "goto": 'shape=box, style="filled", fillcolor="#ffffff", color="#757575"',
    "call": 'shape=component, style="filled", fillcolor="#e0f2f1", color="#00897b"',
    "handover": 'shape=hexagon, style="filled", fillcolor="#fce4ec", color="#d81b60"',
    "end": (
        'shape=box, style="rounded,filled", fillcolor="#e8f5e9", color="#2e7d32", peripheries=2'
    ),
    "entry": 'shape=circle, style="filled", fillcolor="#212121", color="#212121", '
    'width=0.25, fixedsize=true, label=""',
    "stub": 'shape=box, style="rounded,dashed,filled", fillcolor="#fafafa", color="#9e9e9e"',
    "missing": 'shape=box, style="filled", fillcolor="#ffcdd2", color="#c62828"',
}


def _dot_node_label(node: Node) -> str:
    parts = [dot_html(line) for line in node.lines]
    parts += [f"<I>{dot_html(note)}</I>" for note in node.notes]
    if node.small and node.lines != [node.small]:
        parts.append(f'<FONT POINT-SIZE="8" COLOR="#777777">{dot_html(node.small)}</FONT>')
    return "<" + "<BR/>".join(parts) + ">"


def _dot_node(node: Node, indent: str) -> str:
    attrs = [_DOT_NODE_STYLES[node.kind]]
    if node.kind != "entry":
        attrs.append(f"label={_dot_node_label(node)}")
    if node.uncovered:
        attrs.append('fillcolor="#ffcc80"')
    if node.unreachable:
        style = _DOT_NODE_STYLES[node.kind].split('style="', 1)[1].split('"', 1)[0]
        attrs.append(f'style="{style},dashed", color="#d50000", penwidth=2.5')
    return f"{indent}{dot_id(node.id)} [{', '.join(attrs)}];"


def _dot_edge(edge: Edge, indent: str, *extra: str) -> str:
    attrs: list[str] = list(extra)
    if edge.label:
        attrs.append("label=<" + "<BR/>".join(dot_html(line) for line in edge.label) + ">")
    if edge.kind == "call":
        attrs.append('style=dashed, color="#00897b", fontcolor="#00695c"')
    elif edge.kind == "return":
        attrs.append('style=dotted, color="#616161", fontcolor="#616161"')
    elif edge.kind == "entry":
        attrs.append("arrowsize=0.6")
    if edge.jump:
        attrs.append('style=bold, color="#1565c0", fontcolor="#0d47a1"')
    if edge.uncovered:
        attrs.append('color="#d50000", fontcolor="#d50000", penwidth=2')
    tail = f" [{', '.join(attrs)}]" if attrs else ""
    return f"{indent}{dot_id(edge.source)} -> {dot_id(edge.target)}{tail};"


def dot(picture: Picture, legend: bool = True) -> str:
    """Graphviz DOT text: top to bottom, one cluster per drawn flow, UTF-8, DejaVu Sans."""
    font = dot_id(FONT)
    out = [
        "digraph hotline {",
        f'  graph [rankdir=TB, charset="UTF-8", fontname={font}, fontsize=14, '
        "newrank=true, nodesep=0.35, ranksep=0.5, labelloc=t, labeljust=l, pad=0.3];",
        f'  node [fontname={font}, fontsize=11, margin="0.15,0.07", color="#757575"];',
        f'  edge [fontname={font}, fontsize=9, color="#616161", arrowsize=0.7];',
    ]
    for cluster in picture.clusters:
        title = f"<B>{dot_html(cluster.title)}</B>"
        sub = f'<FONT POINT-SIZE="9" COLOR="#777777">{dot_html(cluster.subtitle)}</FONT>'
        out.append(f"  subgraph {dot_id('cluster_' + cluster.id)} {{")
        out.append("    labeljust=c;")
        if cluster.never_started:
            never = dot_html(_word(picture.language, "never"))
            title += f'<BR/><FONT COLOR="#d50000">{never}</FONT>'
            out.append('    style="rounded,dashed"; color="#d50000"; penwidth=2;')
        else:
            out.append('    style="rounded"; color="#9e9e9e";')
        out.append(f"    label=<{title}<BR/>{sub}>;")
        for node_id in cluster.nodes:
            out.append(_dot_node(picture.nodes[node_id], "    "))
        out.append("  }")
    for node in picture.nodes.values():
        if node.cluster is None:
            out.append(_dot_node(node, "  "))
    for edge in picture.edges:
        out.append(_dot_edge(edge, "  "))
    if legend:
        out.extend(_dot_legend(picture))
    out.append("}")
    return "\n".join(out) + "\n"


def _dot_legend(picture: Picture) -> list[str]:
    samples, edges = _legend(picture)
    if not samples and not edges:
        return []
    lang = picture.language
    out = [
        '  subgraph "cluster_legend" {',
        f'    label=<<B>{dot_html(_word(lang, "legend"))}</B>>; style="rounded"; '
        'color="#bdbdbd"; fontsize=11;',
    ]
    row: list[str] = []
    for number, (kind, marker, text) in enumerate(samples):
        node = Node(f"legend.{number}", kind, wrap(text, 16))
        node.unreachable = marker == "unreachable"
        node.uncovered = marker == "uncovered"
        out.append(_dot_node(node, "    "))
        row.append(node.id)
    if row:
        out.append(f"    {{rank=same; {'; '.join(map(dot_id, row))};}}")
        for a, b in itertools.pairwise(row):
            out.append(f"    {dot_id(a)} -> {dot_id(b)} [style=invis];")
    points: list[str] = []
    for number, (style, text) in enumerate(edges):
        a, b = f"legend.e{number}a", f"legend.e{number}b"
        out.append(f'    {dot_id(a)} [shape=point, width=0.06, color="#616161"];')
        out.append(f'    {dot_id(b)} [shape=point, width=0.06, color="#616161"];')
        sample = Edge(a, b, "move", wrap(text, 16))
        if style == "jump":
            sample.jump = True
        elif style in ("call", "return"):
            sample.kind = style
        elif style == "uncovered":
            sample.uncovered = True
        out.append(_dot_edge(sample, "    ", "minlen=3"))
        points += [a, b]
    if points:
        out.append(f"    {{rank=same; {'; '.join(map(dot_id, points))};}}")
        # Keep the samples in a row, in order: one sample's end, then the next one's start.
        for end, start in zip(points[1::2], points[2::2], strict=False):
            out.append(f"    {dot_id(end)} -> {dot_id(start)} [style=invis];")
        if row:
            out.append(f"    {dot_id(row[0])} -> {dot_id(points[0])} [style=invis];")
    out.append("  }")
    return out


def render_dot(
    flows: FlowSet,
    flow_ids: Iterable[str] | None = None,
    *,
    language: str | None = None,
    unreached_steps: Collection[StepRef] | None = None,
    unreached_edges: Collection[MoveRef] | None = None,
    legend: bool = True,
) -> str:
    """Graphviz DOT of the flows (default: all); `dot -Tsvg` turns it into a picture."""
    picture = build_picture(
        flows,
        flow_ids,
        language=language,
        unreached_steps=unreached_steps,
        unreached_edges=unreached_edges,
    )
    return dot(picture, legend=legend)


__all__ = [
    "MoveRef",
    "Picture",
    "StepRef",
    "build_picture",
    "dot",
    "first_words",
    "mermaid",
    "reachable_steps",
    "render_dot",
    "render_markdown",
    "render_mermaid",
    "startable_flows",
]
