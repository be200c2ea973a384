"""Rules that need the whole folder: targets, reachability, ways out, and data flow.

The graph's nodes are (flow, step). Edges are the moves a conversation can make: a choice,
an answered input, a branch arm, a goto, a call into another flow's start, and the return
from a called flow's `end` to the calling step's `goto`. Rules:
- every target and called flow exists; every queue and menu flow is declared;
- every step can be reached from the start of some flow;
- from every reachable step the conversation can still reach an `end` or a handover;
- every `{var}` and every variable of a `when` is saved on *every* path to its step
  (a forward "must" data-flow analysis over the graph, context-insensitive for calls).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from pathlib import Path

from engine.diagnostics import Position, Report, did_you_mean
from engine.expressions import FUNCTIONS
from engine.loader import LoadedFlow, LoadedFolder, LoadedStep
from engine.model import Step, StepKind, Target

Node = tuple[str, str]


class _Graph:
    """Edges among loaded steps; `gen` says what an edge saves."""

    def __init__(self, flows: dict[str, LoadedFlow]) -> None:
        self.flows = flows
        self.succ: dict[Node, list[tuple[Node, frozenset[str]]]] = {}
        self.pred: dict[Node, list[Node]] = {}
        self.calls: dict[Node, str] = {}  # call step -> called flow
        self.ends_of: dict[str, set[Node]] = {}
        for flow_id, loaded in flows.items():
            for name, ls in loaded.steps.items():
                node = (flow_id, name)
                self.succ.setdefault(node, [])
                self.pred.setdefault(node, [])
                for target, gen in _moves(ls.step):
                    if self.has(target):
                        self._add(node, (target.flow, target.step), gen)
                if ls.step.kind is StepKind.CALL and ls.step.call in flows:
                    self.calls[node] = ls.step.call
                    start = (ls.step.call, flows[ls.step.call].flow.start)
                    if self.has(Target(*start)):
                        self._add(node, start, frozenset())
        for flow_id in flows:
            self.ends_of[flow_id] = self._ends(flow_id)
        # Return edges: from each end the called flow can reach to the caller's goto.
        self.returns: dict[Node, list[Node]] = {}
        for call_node, callee in self.calls.items():
            step = self.step(call_node)
            if step.goto is None or not self.has(step.goto):
                continue
            back = (step.goto.flow, step.goto.step)
            self.returns.setdefault(back, []).append(call_node)
            for end in self.ends_of[callee]:
                self._add(end, back, frozenset(), record=False)
                self.pred[back].append(end)

    def _add(self, a: Node, b: Node, gen: frozenset[str], record: bool = True) -> None:
        self.succ[a].append((b, gen))
        if record:
            self.pred.setdefault(b, []).append(a)

    def has(self, target: Target) -> bool:
        loaded = self.flows.get(target.flow)
        return loaded is not None and target.step in loaded.steps

    def step(self, node: Node) -> Step:
        return self.flows[node[0]].steps[node[1]].step

    def _ends(self, flow_id: str) -> set[Node]:
        """`end` steps a call of this flow can finish at (nested calls come back first)."""
        loaded = self.flows[flow_id]
        start = (flow_id, loaded.flow.start)
        if start[1] not in loaded.steps:
            return set()
        seen = {start}
        queue = deque([start])
        ends: set[Node] = set()
        while queue:
            node = queue.popleft()
            step = self.step(node)
            if step.kind is StepKind.END:
                ends.add(node)
            nexts = [t for t, _ in _moves(step)]
            for target in nexts:
                nxt = (target.flow, target.step)
                if self.has(target) and nxt not in seen:
                    seen.add(nxt)
                    queue.append(nxt)
        return ends


def _moves(step: Step) -> list[tuple[Target, frozenset[str]]]:
    """Direct moves with what each saves; a call's goto is reached through the return edge."""
    if step.kind is StepKind.CHOICES:
        return [(c.target, frozenset(c.sets)) for c in step.choices]
    if step.kind is StepKind.INPUT and step.goto and step.input:
        return [(step.goto, frozenset({step.input.save}))]
    if step.kind is StepKind.BRANCH:
        return [(arm.target, frozenset()) for arm in step.branch]
    if step.kind is StepKind.GOTO and step.goto:
        return [(step.goto, frozenset())]
    if step.kind is StepKind.CALL and step.goto:
        # Used only to find a called flow's ends; the graph itself goes through the callee.
        return [(step.goto, frozenset())]
    return []


def check(loaded: LoadedFolder) -> None:
    """Add every folder-wide problem to `loaded.report`."""
    report = loaded.report
    flows = loaded.flows
    bot = loaded.bot
    _check_references(loaded)
    if bot is not None:
        for index, flow_id in enumerate(bot.menu.flows):
            if flow_id not in flows:
                at = bot.menu_positions[index] if index < len(bot.menu_positions) else Position()
                report.error(
                    bot.file,
                    at,
                    f"menu.flows[{index}]: there is no flow '{flow_id}'"
                    f"{did_you_mean(flow_id, flows)}",
                )
    graph = _Graph(flows)
    # Calls are walked by the graph itself; drop the call->goto shortcut used for ends.
    for node, callee in graph.calls.items():
        step = graph.step(node)
        if step.goto is not None:
            back = (step.goto.flow, step.goto.step)
            graph.succ[node] = [(n, g) for n, g in graph.succ[node] if n != back]
            preds = graph.pred.get(back, [])
            if node in preds:
                preds.remove(node)
        if not graph.ends_of.get(callee):
            ls = flows[node[0]].steps[node[1]]
            report.error(
                flows[node[0]].flow.file,
                ls.call_position or step.position,
                f"step '{node[1]}': flow '{callee}' never reaches an `end: true`, "
                "so this call would never come back",
            )
    entries = _entries(loaded)
    reachable = _reach(graph, [e for e in entries if e[1] in flows[e[0]].steps])
    _check_unreachable(loaded, graph, reachable)
    _check_ways_out(loaded, graph, reachable)
    _check_data_flow(loaded, graph, entries, reachable)
    _check_documents(loaded)


def _entries(loaded: LoadedFolder) -> list[Node]:
    """Where conversations begin: every flow's start (menu, routing, /restart)."""
    result = []
    for flow_id, lf in loaded.flows.items():
        if _startable(loaded, flow_id):
            result.append((flow_id, lf.flow.start))
    return result


def _startable(loaded: LoadedFolder, flow_id: str) -> bool:
    """A flow a person can start directly (not only through a call or a jump)."""
    lf = loaded.flows[flow_id]
    in_menu = loaded.bot is not None and flow_id in loaded.bot.menu.flows
    return in_menu or any(lf.flow.match.values()) or flow_id == "lawyer"


def _reach(graph: _Graph, starts: Iterable[Node]) -> set[Node]:
    seen = set(starts)
    queue = deque(seen)
    while queue:
        node = queue.popleft()
        for nxt, _ in graph.succ.get(node, []):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen


def _check_references(loaded: LoadedFolder) -> None:
    report = loaded.report
    flows = loaded.flows
    queues = loaded.bot.queues if loaded.bot else {}
    for lf in flows.values():
        for name, ls in lf.steps.items():
            step = ls.step
            for raw, at in zip(ls.raw_targets, ls.target_positions, strict=True):
                target = _resolve(raw, lf.flow.id)
                _check_target(loaded, lf, name, raw, target, at)
            if step.call is not None and step.call not in flows:
                report.error(
                    lf.flow.file,
                    ls.call_position or step.position,
                    f"step '{name}': call: there is no flow '{step.call}'"
                    f"{did_you_mean(step.call, flows)}",
                )
            if step.handover is not None and loaded.bot is not None:
                queue = step.handover.queue
                if queue not in queues:
                    declared = ", ".join(queues) or "none"
                    report.error(
                        lf.flow.file,
                        ls.queue_position or step.position,
                        f"step '{name}': queue '{queue}' is not declared under `handover:` in "
                        f"bot.yaml (declared: {declared}){did_you_mean(queue, queues)}",
                    )
            for condition, at in ls.condition_uses:
                for fn in condition.functions:
                    if fn not in FUNCTIONS:  # the parser already refuses these; belt and braces
                        report.error(lf.flow.file, at, f"unknown function '{fn}'")


def _resolve(raw: str, flow_id: str) -> Target:
    if "." in raw:
        flow, step = raw.split(".", 1)
        return Target(flow, step)
    return Target(flow_id, raw)


def _check_target(
    loaded: LoadedFolder, lf: LoadedFlow, name: str, raw: str, target: Target, at: Position
) -> None:
    report = loaded.report
    other = loaded.flows.get(target.flow)
    if other is None:
        report.error(
            lf.flow.file,
            at,
            f"step '{name}': goto '{raw}': there is no flow '{target.flow}'"
            f"{did_you_mean(target.flow, loaded.flows)}",
        )
        return
    if target.step in other.steps:
        return
    if other.broken and target.step in _raw_step_names(other):
        return  # the step exists but could not be loaded; its own error says why
    where = "" if other is lf else f" in flow '{target.flow}'"
    report.error(
        lf.flow.file,
        at,
        f"step '{name}': goto '{raw}': there is no step '{target.step}'{where}"
        f"{did_you_mean(target.step, other.steps)}",
    )


def _raw_step_names(lf: LoadedFlow) -> set[str]:
    # A broken flow still knows which names its file declared.
    return set(lf.declared) | set(lf.steps)


def _check_unreachable(loaded: LoadedFolder, graph: _Graph, reachable: set[Node]) -> None:
    report = loaded.report
    for flow_id, lf in loaded.flows.items():
        if lf.broken:
            continue
        entered = any(n[0] == flow_id for n in reachable)
        if not entered:
            report.warning(
                lf.flow.file,
                lf.flow.position,
                f"flow '{flow_id}' can never be started: it is not in the menu, has no "
                "`match` phrases, and no other flow calls it or goes to it",
            )
            continue
        for name, ls in lf.steps.items():
            if (flow_id, name) not in reachable:
                report.error(
                    lf.flow.file,
                    ls.step.position,
                    f"step '{name}' can never be reached: no choice, goto, branch or call "
                    "leads to it",
                )


def _check_ways_out(loaded: LoadedFolder, graph: _Graph, reachable: set[Node]) -> None:
    """From each reachable step an `end` or a handover must remain possible."""
    terminals = [
        node for node in graph.succ if graph.step(node).kind in (StepKind.END, StepKind.HANDOVER)
    ]
    # Steps whose onward moves lead into a broken flow are given the benefit of the doubt.
    for node in graph.succ:
        step = graph.step(node)
        if any(not graph.has(t) for t, _ in _moves(step)) or (
            step.kind is StepKind.CALL and step.call not in graph.flows
        ):
            terminals.append(node)
    rev: dict[Node, list[Node]] = {}
    for a, edges in graph.succ.items():
        for b, _ in edges:
            rev.setdefault(b, []).append(a)
    can_finish = set(terminals)
    queue = deque(terminals)
    while queue:
        node = queue.popleft()
        for prev in rev.get(node, []):
            if prev not in can_finish:
                can_finish.add(prev)
                queue.append(prev)
    for node in sorted(reachable - can_finish):
        lf = loaded.flows[node[0]]
        if lf.broken:
            continue
        report_at = lf.steps[node[1]].step.position
        loaded.report.error(
            lf.flow.file,
            report_at,
            f"step '{node[1]}' is caught in a loop: from here the conversation can never "
            "reach an `end: true` or a handover",
        )


def _check_data_flow(
    loaded: LoadedFolder, graph: _Graph, entries: list[Node], reachable: set[Node]
) -> None:
    """Must-analysis: `saved[n]` = answers saved on every path from an entry to n."""
    all_saved = _all_saved_names(loaded)
    saved: dict[Node, frozenset[str] | None] = dict.fromkeys(graph.succ)  # None = not yet
    entry_set = set(entries)
    for node in entry_set:
        if node in saved:
            saved[node] = frozenset()
    incoming: dict[Node, list[tuple[Node, frozenset[str]]]] = {}
    for a, edges in graph.succ.items():
        for b, gen in edges:
            incoming.setdefault(b, []).append((a, gen))
    order = sorted(reachable)
    changed = True
    while changed:
        changed = False
        for node in order:
            value: frozenset[str] | None = frozenset() if node in entry_set else None
            for prev, gen in incoming.get(node, []):
                before = saved.get(prev)
                if before is None:
                    continue
                contribution = before | gen
                if node in graph.returns and graph.step(prev).kind is StepKind.END:
                    # Back from a call: the caller's answers are still there.
                    for caller in graph.returns[node]:
                        caller_saved = saved.get(caller)
                        if caller_saved is not None:
                            contribution = contribution | caller_saved
                value = contribution if value is None else value & contribution
            if value is not None and value != saved.get(node):
                saved[node] = value
                changed = True
    report = loaded.report
    for node in order:
        lf = loaded.flows[node[0]]
        ls = lf.steps[node[1]]
        have = saved.get(node) or frozenset()
        for use in ls.text_uses:
            for var in use.variables:
                _report_var(report, lf, ls, var, have, all_saved, use.position, incoming, saved)
        for condition, at in ls.condition_uses:
            for var in sorted(condition.variables):
                _report_var(report, lf, ls, var, have, all_saved, at, incoming, saved)


def _report_var(
    report: Report,
    lf: LoadedFlow,
    ls: LoadedStep,
    var: str,
    have: frozenset[str],
    all_saved: set[str],
    at: Position,
    incoming: dict[Node, list[tuple[Node, frozenset[str]]]],
    saved: dict[Node, frozenset[str] | None],
) -> None:
    if var in have:
        return
    name = ls.step.name
    if var not in all_saved:
        report.error(
            lf.flow.file,
            at,
            f"step '{name}': '{var}' is never saved by any input or choice"
            f"{did_you_mean(var, all_saved)}",
        )
        return
    culprit = ""
    for prev, gen in incoming.get((lf.flow.id, name), []):
        before = saved.get(prev)
        if before is not None and var not in before | gen:
            culprit = f" (for example when coming from step '{prev[0]}.{prev[1]}')"
            break
    else:
        culprit = " (for example when the flow starts here)"
    report.error(
        lf.flow.file,
        at,
        f"step '{name}': '{var}' may not be saved yet: a path reaches this step without "
        f"saving it{culprit}",
    )


def _all_saved_names(loaded: LoadedFolder) -> set[str]:
    names: set[str] = set()
    for lf in loaded.flows.values():
        for ls in lf.steps.values():
            step = ls.step
            if step.input is not None:
                names.add(step.input.save)
            for choice in step.choices:
                names.update(choice.sets)
    return names


def _check_documents(loaded: LoadedFolder) -> None:
    for lf in loaded.flows.values():
        for name, ls in lf.steps.items():
            document = ls.step.document
            if document is None:
                continue
            path = Path(loaded.folder) / document.template
            if not path.is_file():
                loaded.report.error(
                    lf.flow.file,
                    ls.document_position or ls.step.position,
                    f"step '{name}': document template '{document.template}' does not exist "
                    f"(looked for {path})",
                )
