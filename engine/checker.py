"""Rules that need the whole folder: targets, reachability, ways out, and data flow.

The graph's nodes are (flow, step). Edges are the moves a conversation can make: a choice,
an answered input, a branch arm, a goto, a call into another flow's start, and the return
from a called flow's `end` to the calling step's `goto`. Rules:
- every target and called flow exists; every queue and menu flow is declared;
- every step can be reached from the start of some flow;
- from every reachable step the conversation can still reach an `end` or a handover;
- every `{var}` and every variable of a `when` is saved on *every* path to its step
  (a forward "must" data-flow analysis over the graph, context-insensitive for calls).

One mistake should give one error. So the graph reads a target that does not exist as the
step it most likely meant (the did-you-mean of its error), a call of a flow that never
ends still goes on to its `goto`, steps that failed to load still count as ways into the
steps they name, and a loop is reported once, at the step where a conversation enters it.
"""

from __future__ import annotations

import difflib
from collections import deque
from collections.abc import Iterable
from dataclasses import fields, is_dataclass
from pathlib import Path

from engine.diagnostics import Position, Report, did_you_mean
from engine.documents import (
    HELPERS,
    LANG,
    DocumentError,
    check_template,
    document_uses,
    template_files,
    template_variables,
)
from engine.expressions import FUNCTIONS, Expression, Variable
from engine.loader import LoadedFlow, LoadedFolder, LoadedStep
from engine.model import Step, StepKind, Target, startable

Node = tuple[str, str]


def _closest(word: str, candidates: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return close[0] if close else None


class _Graph:
    """Edges among loaded steps; `gen` says what an edge saves."""

    def __init__(self, flows: dict[str, LoadedFlow], all_saved: frozenset[str]) -> None:
        self.flows = flows
        self.succ: dict[Node, list[tuple[Node, frozenset[str]]]] = {}
        self.calls: dict[Node, str] = {}  # call step -> called flow
        self.ends_of: dict[str, set[Node]] = {}
        for flow_id, loaded in flows.items():
            for name, ls in loaded.steps.items():
                node = (flow_id, name)
                self.succ.setdefault(node, [])
                for target, gen in _moves(ls.step):
                    nxt = self.resolve(target)
                    if nxt is not None:
                        self.succ[node].append((nxt, gen))
                if ls.step.kind is StepKind.CALL and ls.step.call is not None:
                    callee = self.flow_named(ls.step.call)
                    if callee is not None:
                        self.calls[node] = callee
        for flow_id in flows:
            self.ends_of[flow_id] = self._ends(flow_id)
        # A call goes into the callee's start; the callee's ends come back to the caller's
        # goto. A call whose callee never ends goes straight on (its error says why).
        self.returns: dict[Node, list[Node]] = {}  # goto of a call -> the call steps
        for call_node, callee in self.calls.items():
            step = self.step(call_node)
            back = self.resolve(step.goto) if step.goto is not None else None
            ends = self.ends_of[callee]
            start = self.start_of(callee)
            if ends or back is None:
                self.succ[call_node] = [(n, g) for n, g in self.succ[call_node] if n != back]
            elif flows[callee].broken:
                # What a broken callee saves is unknown: assume it saves everything, so
                # that its own errors are not followed by "may not be saved" ones.
                self.succ[call_node] = [
                    (n, all_saved if n == back else g) for n, g in self.succ[call_node]
                ]
            if start is not None:
                self.succ[call_node].append((start, frozenset()))
            if back is None:
                continue
            self.returns.setdefault(back, []).append(call_node)
            for end in ends:
                self.succ[end].append((back, frozenset()))

    def flow_named(self, flow: str) -> str | None:
        """The flow `flow`, or the one it most likely meant."""
        return flow if flow in self.flows else _closest(flow, self.flows)

    def start_of(self, flow: str) -> Node | None:
        loaded = self.flows[flow]
        return (flow, loaded.flow.start) if loaded.flow.start in loaded.steps else None

    def resolve(self, target: Target) -> Node | None:
        """The step a target names, or the one it most likely meant; None if neither."""
        flow = self.flow_named(target.flow)
        if flow is None:
            return None
        steps = self.flows[flow].steps
        step = target.step if target.step in steps else _closest(target.step, steps)
        return (flow, step) if step is not None else None

    def has(self, target: Target) -> bool:
        loaded = self.flows.get(target.flow)
        return loaded is not None and target.step in loaded.steps

    def step(self, node: Node) -> Step:
        return self.flows[node[0]].steps[node[1]].step

    def _ends(self, flow_id: str) -> set[Node]:
        """`end` steps a call of this flow can finish at (nested calls come back first)."""
        start = self.start_of(flow_id)
        if start is None:
            return set()
        seen = {start}
        queue = deque([start])
        ends: set[Node] = set()
        while queue:
            node = queue.popleft()
            step = self.step(node)
            if step.kind is StepKind.END:
                ends.add(node)
            for target, _ in _moves(step):
                nxt = self.resolve(target)
                if nxt is not None and nxt not in seen:
                    seen.add(nxt)
                    queue.append(nxt)
        return ends


def _moves(step: Step) -> list[tuple[Target, frozenset[str]]]:
    """Direct moves with what each saves; for a call, the shortcut to its goto."""
    if step.kind is StepKind.CHOICES:
        return [(c.target, frozenset(c.sets)) for c in step.choices]
    if step.kind is StepKind.INPUT and step.goto and step.input:
        return [(step.goto, frozenset({step.input.save}))]
    if step.kind is StepKind.BRANCH:
        return [(arm.target, frozenset()) for arm in step.branch]
    if step.kind in (StepKind.GOTO, StepKind.CALL) and step.goto:
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
            if flow_id not in flows and flow_id not in loaded.unreadable:
                at = bot.menu_positions[index] if index < len(bot.menu_positions) else Position()
                report.error(
                    bot.file,
                    at,
                    f"menu.flows[{index}]: there is no flow '{flow_id}'"
                    f"{did_you_mean(flow_id, flows)}",
                )
    graph = _Graph(flows, frozenset(_all_saved_names(loaded)))
    for node, callee in graph.calls.items():
        if not graph.ends_of.get(callee) and not flows[callee].broken:
            ls = flows[node[0]].steps[node[1]]
            report.error(
                flows[node[0]].flow.file,
                ls.call_position or ls.step.position,
                f"step '{node[1]}': flow '{callee}' never reaches an `end: true`, "
                "so this call would never come back",
            )
    entries = _entries(loaded)
    reachable = _reach(graph, entries + _mentioned(loaded, graph))
    _check_unreachable(loaded, reachable)
    _check_ways_out(loaded, graph, reachable)
    _check_data_flow(loaded, graph, entries, reachable)
    _check_match_collisions(loaded)
    _check_documents(loaded)


def _entries(loaded: LoadedFolder) -> list[Node]:
    """Where conversations begin: every flow's start (menu, routing, /restart)."""
    result = []
    for flow_id, lf in loaded.flows.items():
        if _startable(loaded, flow_id) and lf.flow.start in lf.steps:
            result.append((flow_id, lf.flow.start))
    return result


def _startable(loaded: LoadedFolder, flow_id: str) -> bool:
    """A flow a person can start directly (not only through a call or a jump)."""
    return startable(loaded.flows[flow_id].flow, loaded.bot)


def _mentioned(loaded: LoadedFolder, graph: _Graph) -> list[Node]:
    """Steps named by steps that failed to load: reachable as far as we can tell."""
    result: list[Node] = []
    for flow_id, lf in loaded.flows.items():
        for raw in lf.mentions:
            if raw.endswith("."):  # a call: the called flow's start
                callee = graph.flow_named(raw[:-1])
                start = graph.start_of(callee) if callee is not None else None
                if start is not None:
                    result.append(start)
                continue
            node = graph.resolve(_resolve(raw, flow_id))
            if node is not None:
                result.append(node)
    return result


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
            if (
                step.call is not None
                and step.call not in flows
                and step.call not in loaded.unreadable
            ):
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
        if target.flow in loaded.unreadable:
            return  # the file that may define it could not be read; its error comes first
        report.error(
            lf.flow.file,
            at,
            f"step '{name}': goto '{raw}': there is no flow '{target.flow}'"
            f"{did_you_mean(target.flow, loaded.flows)}",
        )
        return
    if target.step in other.steps or other.opaque:
        return
    if other.broken and target.step in _raw_step_names(other):
        return  # the step exists but could not be loaded; its own error says why
    where = "" if other is lf else f" in flow '{target.flow}'"
    report.error(
        lf.flow.file,
        at,
        f"step '{name}': goto '{raw}': there is no step '{target.step}'{where}"
        f"{did_you_mean(target.step, other.declared or other.steps)}",
    )


def _raw_step_names(lf: LoadedFlow) -> set[str]:
    # A broken flow still knows which names its file declared.
    return set(lf.declared) | set(lf.steps)


def _check_unreachable(loaded: LoadedFolder, reachable: set[Node]) -> None:
    report = loaded.report
    entered = {node[0] for node in reachable}
    for flow_id, lf in loaded.flows.items():
        if lf.broken:
            continue
        if flow_id not in entered:
            if loaded.bot is None:
                continue  # without bot.yaml there is no menu to tell
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
    # Steps whose onward moves lead into a broken flow or nowhere known are given the
    # benefit of the doubt: their own errors come first.
    for node in graph.succ:
        step = graph.step(node)
        flows = [t.flow for t, _ in _moves(step)]
        if step.kind is StepKind.CALL:
            flows.append(graph.calls.get(node, ""))
        if any(not graph.has(t) for t, _ in _moves(step)) or any(
            flow not in graph.flows or graph.flows[flow].broken for flow in flows
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
    stuck = reachable - can_finish
    entries = set(_entries(loaded))
    for node in sorted(stuck):
        lf = loaded.flows[node[0]]
        if lf.broken:
            continue
        # Report a trap once: where a conversation walks into it from outside (or starts).
        if node not in entries and all(prev in stuck for prev in rev.get(node, [])):
            continue
        trapped = sorted(_reach(graph, [node]) & stuck)
        names = ", ".join(f"'{n[1]}'" if n[0] == node[0] else f"'{n[0]}.{n[1]}'" for n in trapped)
        loaded.report.error(
            lf.flow.file,
            lf.steps[node[1]].step.position,
            f"step '{node[1]}' leads into a loop that can never reach an `end: true` or a "
            f"handover (steps {names}); give it a way out",
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
    # Back from a call, the caller's own answers are still there: an edge from an end of
    # the callee into a call's goto also carries what the caller had saved.
    callers_of: dict[tuple[Node, Node], list[Node]] = {}
    for back, calls in graph.returns.items():
        for call in calls:
            for end in graph.ends_of[graph.calls[call]]:
                callers_of.setdefault((end, back), []).append(call)
    order = _forward_order(graph, entries, reachable)
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
                callers = callers_of.get((prev, node))
                if callers:
                    known = [saved.get(c) for c in callers]
                    caller_saved = [k for k in known if k is not None]
                    if caller_saved:
                        contribution |= frozenset.intersection(*caller_saved)
                value = contribution if value is None else value & contribution
            if value is not None and value != saved.get(node):
                saved[node] = value
                changed = True
    report = loaded.report
    for node in order:
        have = saved.get(node)
        if have is None:
            continue  # reached only through steps that failed to load: nothing to say
        lf = loaded.flows[node[0]]
        ls = lf.steps[node[1]]
        for use in ls.text_uses:
            for var in use.variables:
                _report_var(report, lf, ls, var, have, all_saved, use.position, incoming, saved)
        for condition, at in ls.condition_uses:
            for var in sorted(condition.variables - have):
                var_at = Position(at.line, at.column + _variable_offsets(condition).get(var, 0))
                _report_var(report, lf, ls, var, have, all_saved, var_at, incoming, saved)
        # A template's placeholders obey the same rule as {var}; a name saved nowhere at
        # all is already reported by _check_documents.
        doc_at = ls.document_position or ls.step.position
        for var in document_uses(ls.step, loaded.folder):
            if var in all_saved:
                _report_var(report, lf, ls, var, have, all_saved, doc_at, incoming, saved)


def _forward_order(graph: _Graph, entries: list[Node], reachable: set[Node]) -> list[Node]:
    """Reachable nodes in breadth-first order from the entries, so that the fixed point of
    the data flow is found in few passes; nodes reached otherwise come last."""
    order: list[Node] = []
    seen: set[Node] = set()
    queue = deque(sorted(n for n in entries if n in reachable))
    seen.update(queue)
    while queue:
        node = queue.popleft()
        order.append(node)
        for nxt, _ in graph.succ.get(node, []):
            if nxt not in seen and nxt in reachable:
                seen.add(nxt)
                queue.append(nxt)
    order.extend(sorted(reachable - seen))
    return order


def _variable_offsets(expression: Expression) -> dict[str, int]:
    """The offset of the first use of each variable in the condition's source."""
    offsets: dict[str, int] = {}
    stack: list[object] = [expression.tree]
    while stack:
        node = stack.pop()
        if isinstance(node, Variable):
            if node.name not in offsets or node.offset < offsets[node.name]:
                offsets[node.name] = node.offset
        elif is_dataclass(node):
            for f in fields(node):
                value = getattr(node, f.name)
                if isinstance(value, tuple):
                    stack.extend(value)
                elif is_dataclass(value):
                    stack.append(value)
    return offsets


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
    culprit = " (for example when the flow starts here)"
    for prev, gen in incoming.get((lf.flow.id, name), []):
        before = saved.get(prev)
        if before is not None and var not in before | gen:
            where = prev[1] if prev[0] == lf.flow.id else f"{prev[0]}.{prev[1]}"
            culprit = f" (for example when coming from step '{where}')"
            break
    report.error(
        lf.flow.file,
        at,
        f"step '{name}': '{var}' may not be saved yet: a path reaches this step without "
        f"saving it{culprit}",
    )


def _all_saved_names(loaded: LoadedFolder) -> set[str]:
    names: set[str] = set()
    for lf in loaded.flows.values():
        names.update(lf.saves)
        for ls in lf.steps.values():
            step = ls.step
            if step.input is not None:
                names.add(step.input.save)
            for choice in step.choices:
                names.update(choice.sets)
    return names


def _check_documents(loaded: LoadedFolder) -> None:
    """Each `document` template exists (for every language when its path has `{lang}`),
    opens as a .docx, has valid Jinja, and reads only helpers and answers that some input
    or choice saves. Whether they are saved on *every* path is `_check_data_flow`'s job."""
    languages = loaded.bot.languages if loaded.bot is not None else ()
    all_saved = _all_saved_names(loaded)
    problems_of: dict[str, list[str]] = {}
    for lf in loaded.flows.values():
        for name, ls in lf.steps.items():
            document = ls.step.document
            if document is None:
                continue
            template = document.template
            if template not in problems_of:
                problems_of[template] = _document_problems(
                    Path(loaded.folder), template, languages, all_saved
                )
            for problem in problems_of[template]:
                loaded.report.error(
                    lf.flow.file,
                    ls.document_position or ls.step.position,
                    f"step '{name}': document template '{template}'{problem}",
                )


def _document_problems(
    folder: Path, template: str, languages: tuple[str, ...], all_saved: set[str]
) -> list[str]:
    """What is wrong with one template path, each as text to follow "template 'PATH'"."""
    try:
        files = template_files(folder, template, languages or None)
    except DocumentError as err:
        return [f": {err}"]
    if not files:
        return [": no file matches it"]
    problems: list[str] = []
    variables: set[str] = set()
    for language, path in files.items():
        which = f" ({language})" if language != "*" else ""
        if not path.is_file():
            shown = folder / template.replace(LANG, language)
            ours = {p.name for p in files.values()}  # not the other languages' files
            siblings = [p.name for p in path.parent.glob("*.docx") if p.name not in ours]
            problems.append(
                f"{which} does not exist (looked for {shown}){did_you_mean(path.name, siblings)}"
            )
            continue
        found = check_template(path)
        problems.extend(f"{which}: {problem}" for problem in found)
        if not found:
            variables |= template_variables(path)
    for var in sorted(variables - HELPERS - all_saved):
        hint = did_you_mean(var, all_saved | HELPERS)
        problems.append(f" uses '{var}', which no input or choice saves{hint}")
    return problems


def _check_match_collisions(loaded: LoadedFolder) -> None:
    """Warn when two flows claim the same `match` phrase: typed text would be a coin toss.
    Phrases are compared the way the router reads them (stemmed, stop words dropped)."""
    from engine.routing import stems  # the router's own reading of a phrase

    owner: dict[tuple[str, frozenset[str]], tuple[str, str]] = {}
    for flow_id in sorted(loaded.flows):
        lf = loaded.flows[flow_id]
        for language, phrases in lf.flow.match.items():
            for phrase in phrases:
                key = (language, frozenset(stems(phrase, language)))
                if not key[1]:
                    continue
                first = owner.setdefault(key, (flow_id, phrase))
                if first[0] != flow_id:
                    loaded.report.warning(
                        lf.flow.file,
                        lf.match_position or lf.flow.position,
                        f"match ({language}): '{phrase}' reads the same as '{first[1]}' of "
                        f"flow '{first[0]}'; typed text with it cannot tell the two apart",
                    )
