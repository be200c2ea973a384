"""Read a flows folder into a frozen `FlowSet`, reporting every problem with FILE:LINE:COL.

Three layers, each collecting problems rather than stopping at the first:
1. `engine.yamlsafe`: safe YAML with positions (duplicate keys, aliases, bad syntax);
2. the JSON Schema shipped in `engine/schema/` (the same file editors use), whose errors are
   rewritten here into sentences a lawyer can act on;
3. the meaning of each file (step kinds, targets, texts, expressions, inputs), then
   `engine.checker` for the rules that need the whole folder (reachability, data flow).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from engine.diagnostics import Position, Report, did_you_mean
from engine.expressions import FUNCTIONS, Expression, ExpressionError, parse_expression
from engine.model import (
    BotConfig,
    BranchArm,
    Choice,
    DocumentSpec,
    Flow,
    FlowSet,
    Handover,
    InputSpec,
    InputType,
    Menu,
    Step,
    StepKind,
    Target,
    Text,
)
from engine.schemacheck import LANGUAGE_CODE, validate_with_schema
from engine.texts import DEFAULT_TEXTS, TEXT_KEYS, TEXT_PLACEHOLDERS
from engine.yamlsafe import LocatedMap, YamlProblem, load_yaml

BOT_FILE = "bot.yaml"
MAX_FILE_BYTES = 2_000_000
DEFAULT_MAX_TEXT_ANSWER = 2000
PLACEHOLDER = re.compile(r"(?<!\{)\{([^{}]*)\}(?!\})")
NAME = re.compile(r"^[a-z_][a-z0-9_]*$")

# The ways on a step can take; a step does exactly one (SPEC "Flow format").
_WAYS = ("choices", "input", "branch", "goto", "call", "handover", "end")


# --------------------------------------------------------------------------- texts


@dataclass(slots=True)
class _TextUse:
    """A text with `{var}` placeholders, recorded for the data-flow check."""

    variables: tuple[str, ...]
    position: Position


def _closest_language(code: str, languages: tuple[str, ...]) -> str | None:
    """The bot language a wrong language key most likely meant ('EN' -> 'en')."""
    if code.lower() in languages:
        return code.lower()
    close = difflib.get_close_matches(code.lower(), list(languages), n=1, cutoff=0.6)
    return close[0] if close else None


@dataclass(slots=True)
class FileContext:
    """What the loader knows while it reads one file."""

    file: str
    languages: tuple[str, ...]  # empty when bot.yaml could not tell: then no language checks
    report: Report

    def text(self, raw: Any, position: Position, what: str, uses: list[_TextUse]) -> Text:
        if isinstance(raw, str):
            if len(self.languages) > 1 and raw.strip():
                self.report.warning(
                    self.file,
                    position,
                    f"{what} is one text for every language; give "
                    + ", ".join(self.languages)
                    + " translations as a map",
                )
            self._placeholders(raw, position, what, uses)
            return Text.plain(raw)
        texts: dict[str, str] = {}
        meant: set[str] = set()  # languages that a misspelt key stands for
        for language, value in raw.items():
            at = raw.key_at(language) if isinstance(raw, LocatedMap) else position
            if value is None and not LANGUAGE_CODE.match(language):
                # {ru: Спасибо, записали} reads as ru: "Спасибо" plus a key "записали":
                # a comma inside an inline map silently cuts the text.
                self.report.error(
                    self.file,
                    at,
                    f"{what}: '{language}' is not a language: a comma inside {{ru: ..., en: "
                    "...} cut the text there; put the text in quotes or write one language "
                    "per line",
                )
                continue
            if not isinstance(value, str):
                continue  # the schema check has reported it
            if self.languages and language not in self.languages:
                guess = _closest_language(language, self.languages)
                hint = f"; did you mean '{guess}'?" if guess else ""
                if guess:
                    meant.add(guess)
                self.report.error(
                    self.file,
                    at,
                    f"{what}: language '{language}' is not in bot.yaml languages "
                    f"({', '.join(self.languages)}){hint}",
                )
                continue
            if not self.languages and not LANGUAGE_CODE.match(language):
                self.report.error(
                    self.file, at, f"{what}: '{language}' is not a language code such as ru or en"
                )
                continue
            texts[language] = value
            value_at = raw.value_at(language) if isinstance(raw, LocatedMap) else position
            if isinstance(raw, LocatedMap) and language in raw.comment_cuts:
                self.comment_cut(raw.comment_cuts[language], what, value)
            self._placeholders(value, value_at, what, uses)
        missing = [lang for lang in self.languages if lang not in raw and lang not in meant]
        if missing:
            self.report.error(
                self.file,
                position,
                f"{what}: missing translation {', '.join(repr(m) for m in missing)}",
            )
        return Text(MappingProxyType(texts))

    def comment_cut(self, at: Position, what: str, value: str) -> None:
        self.report.warning(
            self.file,
            at,
            f"{what}: the text stops at '{value[-20:]}': YAML reads ' #' as the start of a "
            "comment, so the rest of the line is not shown; put the text in quotes if the # "
            "belongs to it",
        )

    def _placeholders(
        self, value: str, position: Position, what: str, uses: list[_TextUse]
    ) -> None:
        names: list[str] = []
        for match in PLACEHOLDER.finditer(value):
            name = match.group(1).strip()
            if not NAME.match(name):
                self.report.error(
                    self.file,
                    position,
                    f"{what}: '{{{match.group(1)}}}' is not a saved answer's name; "
                    "write {name}, or {{ and }} for literal braces",
                )
                continue
            names.append(name)
        if names:
            uses.append(_TextUse(tuple(names), position))


# --------------------------------------------------------------------------- flows


@dataclass(slots=True)
class LoadedStep:
    """A step plus what the checker needs that the runtime does not."""

    step: Step
    text_uses: list[_TextUse] = field(default_factory=list)
    condition_uses: list[tuple[Expression, Position]] = field(default_factory=list)
    target_positions: list[Position] = field(default_factory=list)
    raw_targets: list[str] = field(default_factory=list)
    call_position: Position | None = None
    queue_position: Position | None = None
    document_position: Position | None = None


@dataclass(slots=True)
class LoadedFlow:
    flow: Flow
    steps: dict[str, LoadedStep]
    match_position: Position | None = None
    broken: bool = False  # a structural error made part of it unusable
    declared: frozenset[str] = frozenset()  # every step name the file declares
    # `steps:` itself could not be read: any step name may exist, so no target into this
    # flow is reported as missing.
    opaque: bool = False
    # Targets (`goto` values, and `call` flows as "FLOW.") written in steps that failed to
    # load: they still count as ways into those steps and flows, so that one broken step
    # does not also make its targets "unreachable" or "never started".
    mentions: tuple[str, ...] = ()
    # Names that steps which failed to load would save: not "never saved" anywhere.
    saves: tuple[str, ...] = ()


def _target(raw: str, flow: str) -> Target:
    if "." in raw:
        other, step = raw.split(".", 1)
        return Target(other, step)
    return Target(flow, raw)


def _input_spec(raw: LocatedMap, ctx: FileContext, where: str, uses: list[_TextUse]) -> InputSpec:
    try:
        kind = InputType(raw["type"])
    except ValueError:
        kind = InputType.TEXT  # the schema check has reported it; read the rest anyway
    options = tuple(
        ctx.text(option, raw["options"].item_at(i), f"{where}, input option {i + 1}", uses)
        for i, option in enumerate(raw.get("options", []))
    )
    pattern = raw.get("pattern")
    if kind is InputType.ONE_OF and not options and "options" not in raw:
        ctx.report.error(
            ctx.file,
            raw.value_at("type"),
            f"{where}: a one_of input needs `options`: the answers to pick from",
        )
    if kind is InputType.REGEX:
        if pattern is None:
            ctx.report.error(
                ctx.file,
                raw.value_at("type"),
                f"{where}: a regex input needs `pattern`: the regular expression to match",
            )
        else:
            try:
                re.compile(pattern)
            except re.error as err:
                at = raw.text_at("pattern")
                if err.pos is not None and err.lineno == 1:
                    at = Position(at.line, at.column + err.pos)
                ctx.report.error(
                    ctx.file, at, f"{where}: pattern: bad regular expression: {err.msg}"
                )
    numeric = kind in (InputType.INTEGER, InputType.NUMBER)
    for key in ("min", "max"):
        if key in raw and not numeric:
            ctx.report.warning(
                ctx.file, raw.key_at(key), f"{where}: `{key}` only applies to integer and number"
            )
    for key in ("min_length", "max_length"):
        if key in raw and kind is not InputType.TEXT:
            ctx.report.warning(
                ctx.file, raw.key_at(key), f"{where}: `{key}` only applies to text inputs"
            )
    if options and kind is not InputType.ONE_OF:
        ctx.report.warning(ctx.file, raw.key_at("options"), f"{where}: `options` needs one_of")
    max_length = raw.get("max_length")
    if kind is InputType.TEXT and max_length is None:
        max_length = DEFAULT_MAX_TEXT_ANSWER
    return InputSpec(
        save=_word(raw["save"]),
        type=kind,
        min_length=raw.get("min_length"),
        max_length=max_length,
        minimum=raw.get("min"),
        maximum=raw.get("max"),
        options=options,
        pattern=pattern,
    )


def _word(value: Any) -> str:
    """A value the model needs as text (a target, a name, a path); anything else means the
    schema check has reported the step, which is then left out of the model."""
    if not isinstance(value, str):
        raise TypeError("the schema check has reported it")
    return value


def _step_kind(
    raw: LocatedMap, ctx: FileContext, where: str, position: Position
) -> StepKind | None:
    ways = [way for way in _WAYS if way in raw]
    if raw.get("end") is True:
        ways = [w for w in ways if w != "end"] + ["end"]
    has = set(ways)
    if "input" in has and "goto" in has and len(has) == 2:
        return StepKind.INPUT
    if "call" in has and "goto" in has and len(has) == 2:
        return StepKind.CALL
    if len(has) == 1:
        (only,) = has
        if only == "input":
            ctx.report.error(
                ctx.file, raw.key_at("input"), f"{where}: an input needs a `goto`: where to go next"
            )
            return None
        if only == "call":
            ctx.report.error(
                ctx.file,
                raw.key_at("call"),
                f"{where}: a call needs a `goto`: where to continue when the called flow ends",
            )
            return None
        return StepKind(only)
    if not has:
        ctx.report.error(
            ctx.file,
            position,
            f"{where} has no way on: add choices, input + goto, branch, goto, call + goto, "
            "handover or end: true",
        )
        return None
    # Point at the first way too many: after `input` or `call`, their `goto` belongs.
    partner = "goto" if ways[0] in ("input", "call") else None
    extra = next(way for way in ways[1:] if way != partner)
    ctx.report.error(
        ctx.file,
        raw.key_at(extra),
        f"{where} does more than one thing ({', '.join(ways)}); a step does exactly one of: "
        "choices, input + goto, branch, goto, call + goto, handover, end",
    )
    return None


def _load_step(
    flow_id: str, name: str, raw: LocatedMap, position: Position, ctx: FileContext
) -> LoadedStep | None:
    where = f"step '{name}'"
    kind = _step_kind(raw, ctx, where, position)
    if kind is None:
        return None
    uses: list[_TextUse] = []
    loaded = LoadedStep(step=None)  # type: ignore[arg-type]  # filled in below
    say = ctx.text(raw["say"], raw.value_at("say"), f"{where}, say", uses) if "say" in raw else None
    invalid = None
    if "invalid" in raw:
        invalid = ctx.text(raw["invalid"], raw.value_at("invalid"), f"{where}, invalid", uses)
        if kind not in (StepKind.INPUT, StepKind.CHOICES):
            ctx.report.warning(
                ctx.file, raw.key_at("invalid"), f"{where}: `invalid` is only used by questions"
            )

    def target(raw_target: Any, at: Position) -> Target:
        raw_target = _word(raw_target)
        loaded.raw_targets.append(raw_target)
        loaded.target_positions.append(at)
        return _target(raw_target, flow_id)

    choices: list[Choice] = []
    for index, item in enumerate(raw.get("choices", [])):
        at = raw["choices"].item_at(index)
        label = ctx.text(item["label"], item.value_at("label"), f"{where} choice {index + 1}", uses)
        raw_sets = item.get("set", {})
        if not isinstance(raw_sets, dict):
            raise TypeError("the schema check has reported it")
        sets = MappingProxyType(dict(raw_sets))
        choices.append(Choice(label, target(item["goto"], item.value_at("goto")), sets, at))
    arms: list[BranchArm] = []
    branch = raw.get("branch", [])
    for index, item in enumerate(branch):
        at = branch.item_at(index)
        condition = None
        if "when" in item:
            when_at = item.text_at("when")
            if not isinstance(item["when"], str):
                raise TypeError("the schema check has reported it")
            try:
                condition = parse_expression(item["when"])
            except ExpressionError as err:
                ctx.report.error(
                    ctx.file,
                    Position(when_at.line, when_at.column + err.offset),
                    f"{where}: condition `{item['when']}`: {err.message}",
                )
            else:
                loaded.condition_uses.append((condition, when_at))
        elif index != len(branch) - 1:
            ctx.report.error(
                ctx.file,
                at,
                f"{where}: branch item {index + 1} has no `when`, so it is the else and the "
                "items after it are never tried; move it to the end",
            )
        arms.append(BranchArm(condition, target(item["goto"], item.value_at("goto")), at))
    if branch and all("when" in item for item in branch):
        ctx.report.error(
            ctx.file,
            raw.key_at("branch"),
            f"{where}: the branch has no else; end it with an item that has only `goto`, "
            "for when no condition holds",
        )
    input_spec = None
    if "input" in raw:
        input_spec = _input_spec(raw["input"], ctx, where, uses)
    goto = target(raw["goto"], raw.value_at("goto")) if "goto" in raw else None
    handover = None
    if "handover" in raw:
        spec = raw["handover"]
        handover_say = None
        if "say" in spec:
            handover_say = ctx.text(spec["say"], spec.value_at("say"), f"{where}, handover", uses)
        handover = Handover(_word(spec["queue"]), handover_say)
        loaded.queue_position = spec.value_at("queue")
    document = None
    if "document" in raw:
        spec = raw["document"]
        name_text = ctx.text(spec["name"], spec.value_at("name"), f"{where}, document name", uses)
        document = DocumentSpec(_word(spec["template"]), name_text)
        loaded.document_position = spec.value_at("template")
    if "call" in raw:
        loaded.call_position = raw.value_at("call")
    loaded.text_uses = uses
    loaded.step = Step(
        flow=flow_id,
        name=name,
        kind=kind,
        position=position,
        say=say,
        choices=tuple(choices),
        input=input_spec,
        invalid=invalid,
        branch=tuple(arms),
        goto=goto,
        call=_word(raw["call"]) if "call" in raw else None,
        handover=handover,
        document=document,
    )
    return loaded


def _saves(raw: LocatedMap) -> list[str]:
    """Best-effort names a step that failed to load would save (see LoadedFlow.saves)."""
    found: list[str] = []
    spec = raw.get("input")
    if isinstance(spec, dict) and isinstance(spec.get("save"), str):
        found.append(spec["save"])
    items = raw.get("choices")
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get("set"), dict):
            found.extend(name for name in item["set"] if isinstance(name, str))
    return found


def _mentions(raw: LocatedMap) -> list[str]:
    """Best-effort targets of a step that failed to load (see LoadedFlow.mentions)."""
    found: list[str] = []
    if isinstance(raw.get("goto"), str):
        found.append(raw["goto"])
    if isinstance(raw.get("call"), str):
        found.append(raw["call"] + ".")
    for key in ("choices", "branch"):
        items = raw.get(key)
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and isinstance(item.get("goto"), str):
                found.append(item["goto"])
    return found


def load_flow_file(
    path: Path, display: str, languages: tuple[str, ...], report: Report
) -> LoadedFlow | None:
    """One flow file -> LoadedFlow, or None when it is not even a flow."""
    document = _read(path, display, report)
    if document is None:
        return None
    structurally_ok = validate_with_schema("flow", document, display, report, Position())
    if not isinstance(document, LocatedMap) or not isinstance(document.get("flow"), str):
        return None
    ctx = FileContext(display, languages, report)
    flow_id = document["flow"]
    raw_steps = document.get("steps")
    if not isinstance(raw_steps, LocatedMap):
        # Known by its id, so that other flows' references to it are not errors too.
        flow = Flow(
            id=flow_id,
            file=display,
            title=Text.plain(flow_id),
            match=MappingProxyType({}),
            start="",
            steps=MappingProxyType({}),
            position=document.value_at("flow"),
        )
        return LoadedFlow(flow, {}, None, broken=True, opaque=True)
    uses: list[_TextUse] = []
    title = (
        ctx.text(document["title"], document.value_at("title"), "title", uses)
        if _is_text(document.get("title"))
        else Text.plain(flow_id)
    )
    if uses:
        report.error(display, document.value_at("title"), "title: a title cannot use {answers}")
    match: dict[str, tuple[str, ...]] = {}
    raw_match = document.get("match")
    if isinstance(raw_match, LocatedMap):
        for language, phrases in raw_match.items():
            if languages and language not in languages:
                guess = _closest_language(language, languages)
                report.error(
                    display,
                    raw_match.key_at(language),
                    f"match: language '{language}' is not in bot.yaml languages "
                    f"({', '.join(languages)})" + (f"; did you mean '{guess}'?" if guess else ""),
                )
            elif not languages and not LANGUAGE_CODE.match(language):
                report.error(
                    display,
                    raw_match.key_at(language),
                    f"match: '{language}' is not a language code such as ru or en",
                )
            if isinstance(phrases, list):
                match[language] = tuple(p for p in phrases if isinstance(p, str))
    steps: dict[str, LoadedStep] = {}
    mentions: list[str] = []
    saves: list[str] = []
    broken = not structurally_ok
    for name, raw_step in raw_steps.items():
        if not isinstance(raw_step, LocatedMap) or not NAME.match(name):
            broken = True
            continue
        try:
            loaded = _load_step(flow_id, name, raw_step, raw_steps.key_at(name), ctx)
        except (KeyError, TypeError, ValueError, AttributeError):
            # The schema already reported what is wrong with this step's shape.
            loaded = None
        if loaded is None:
            broken = True
            mentions.extend(_mentions(raw_step))
            saves.extend(_saves(raw_step))
            continue
        steps[name] = loaded
    start = document.get("start") if isinstance(document.get("start"), str) else None
    if start is None:
        start = next(iter(raw_steps), "")
    elif start not in raw_steps and NAME.match(start):  # else the schema said it
        report.error(
            display,
            document.value_at("start"),
            f"start: there is no step '{start}'{did_you_mean(start, raw_steps)}",
        )
        broken = True
    flow = Flow(
        id=flow_id,
        file=display,
        title=title,
        match=MappingProxyType(match),
        start=start,
        steps=MappingProxyType({name: loaded.step for name, loaded in steps.items()}),
        position=document.value_at("flow"),
    )
    match_at = document.key_at("match") if "match" in document else None
    return LoadedFlow(
        flow,
        steps,
        match_at,
        broken,
        frozenset(raw_steps),
        mentions=tuple(mentions),
        saves=tuple(saves),
    )


def _is_text(value: Any) -> bool:
    return isinstance(value, str) or (
        isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
    )


def _read(path: Path, display: str, report: Report) -> Any:
    try:
        data = path.read_bytes()
    except OSError as err:
        report.error(display, Position(), f"cannot read the file: {err.strerror}")
        return None
    if len(data) > MAX_FILE_BYTES:
        report.error(display, Position(), f"file larger than {MAX_FILE_BYTES} bytes; split it")
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        line_start = data.rfind(b"\n", 0, err.start) + 1
        column = len(data[line_start : err.start].decode("utf-8", "replace")) + 1
        report.error(
            display,
            Position(line, column),
            f"not UTF-8 text (byte {err.start} is 0x{data[err.start]:02x}); save the file as UTF-8",
        )
        return None
    try:
        document, problems = load_yaml(text)
    except YamlProblem as problem:
        report.error(display, problem.position, problem.message)
        return None
    for problem in problems:
        report.error(display, problem.position, problem.message)
    if document is None and not problems:
        report.error(display, Position(), "the file is empty")
    return document


# --------------------------------------------------------------------------- bot.yaml


def load_bot(path: Path, display: str, report: Report) -> tuple[BotConfig | None, tuple[str, ...]]:
    """bot.yaml -> (settings or None when broken, its languages or () when unknown)."""
    if not path.exists():
        report.error(
            display,
            Position(),
            "bot.yaml is missing; it sets the languages and the menu (see the authoring guide)",
        )
        return None, ()
    document = _read(path, display, report)
    if document is None:
        return None, ()
    validate_with_schema("bot", document, display, report, Position())
    if not isinstance(document, LocatedMap):
        return None, ()
    raw_languages = document.get("languages")
    languages = tuple(
        lang for lang in (raw_languages if isinstance(raw_languages, list) else []) if lang
    )
    if not languages or not all(isinstance(lang, str) for lang in languages):
        return None, ()
    languages = tuple(dict.fromkeys(languages))  # a repeated one is reported by the schema
    return _bot_settings(document, display, languages, report), languages


def _bot_settings(
    document: LocatedMap, display: str, languages: tuple[str, ...], report: Report
) -> BotConfig | None:
    ctx = FileContext(display, languages, report)
    uses: list[_TextUse] = []
    menu_raw = document.get("menu")
    if not isinstance(menu_raw, LocatedMap) or not _is_text(menu_raw.get("say")):
        return None
    raw_menu_flows = menu_raw.get("flows")
    menu_flows = [
        (flow, raw_menu_flows.item_at(index))
        for index, flow in enumerate(raw_menu_flows if isinstance(raw_menu_flows, list) else [])
        if isinstance(flow, str)
    ]
    menu = Menu(
        say=ctx.text(menu_raw["say"], menu_raw.value_at("say"), "menu.say", uses),
        flows=tuple(flow for flow, _ in menu_flows),
    )
    texts: dict[str, Text] = {
        key: Text(MappingProxyType(value)) for key, value in DEFAULT_TEXTS.items()
    }
    raw_texts = document.get("texts")
    if isinstance(raw_texts, LocatedMap):
        for key, value in raw_texts.items():
            if key in TEXT_KEYS and _is_text(value):
                own: list[_TextUse] = []
                texts[key] = ctx.text(value, raw_texts.value_at(key), f"texts.{key}", own)
                # The desk's texts have placeholders of their own ({position}...); only those.
                allowed = TEXT_PLACEHOLDERS.get(key, frozenset())
                for use in own:
                    wrong = [name for name in use.variables if name not in allowed]
                    if wrong and allowed:
                        names = ", ".join("{" + n + "}" for n in sorted(allowed))
                        report.error(
                            display,
                            use.position,
                            f"texts.{key}: {{{wrong[0]}}} is not known here; it can use {names}",
                        )
                    elif wrong:
                        uses.append(use)
    queues: dict[str, Text] = {}
    raw_queues = document.get("handover")
    if isinstance(raw_queues, LocatedMap):
        for queue, value in raw_queues.items():
            if _is_text(value):
                queues[queue] = ctx.text(value, raw_queues.value_at(queue), f"handover.{queue}", [])
    for use in uses:
        report.error(display, use.position, "bot.yaml texts cannot use {answers}")
    retention = document.get("retention_days", 30)
    return BotConfig(
        menu_positions=tuple(at for _, at in menu_flows),
        languages=languages,
        menu=menu,
        texts=MappingProxyType(texts),
        queues=MappingProxyType(queues),
        retention_days=retention if type(retention) is int else 30,
        file=display,
    )


# --------------------------------------------------------------------------- folder


@dataclass(slots=True)
class LoadedFolder:
    """Everything read from a folder, before and after checking."""

    folder: Path
    bot: BotConfig | None
    flows: dict[str, LoadedFlow]
    report: Report
    # Flow ids that files which could not be read may define (their file names): a
    # reference to one of them is not reported, the file's own error comes first.
    unreadable: frozenset[str] = frozenset()

    def flow_set(self) -> FlowSet:
        assert self.bot is not None
        return FlowSet(
            folder=str(self.folder),
            bot=self.bot,
            flows=MappingProxyType({fid: lf.flow for fid, lf in self.flows.items()}),
        )


def flow_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.yaml") if p.name != BOT_FILE) + sorted(
        p for p in folder.glob("*.yml") if p.name != "bot.yml"
    )


def read_folder(folder: str | Path) -> LoadedFolder:
    """Read bot.yaml and every flow file; file-level problems go into the report."""
    folder = Path(folder)
    report = Report()
    display_root = folder

    def display(path: Path) -> str:
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)

    if not folder.is_dir():
        report.error(str(folder), Position(), "no such folder of flows")
        return LoadedFolder(folder, None, {}, report)
    paths = flow_files(display_root)
    if not paths and not (folder / BOT_FILE).exists():
        report.error(
            display(folder),
            Position(),
            "no bot.yaml and no flow files (*.yaml) here: is this the flows folder?",
        )
        return LoadedFolder(folder, None, {}, report)
    bot, languages = load_bot(folder / BOT_FILE, display(folder / BOT_FILE), report)
    flows: dict[str, LoadedFlow] = {}
    unreadable: set[str] = set()
    for path in paths:
        loaded = load_flow_file(path, display(path), languages, report)
        if loaded is None:
            unreadable.add(path.stem)
            continue
        fid = loaded.flow.id
        if fid in flows:
            report.error(
                loaded.flow.file,
                loaded.flow.position,
                f"duplicate flow id '{fid}': {flows[fid].flow.file} already defines it; "
                "each flow needs its own id",
            )
            continue
        if path.stem != fid:
            report.warning(
                loaded.flow.file,
                loaded.flow.position,
                f"flow id '{fid}' differs from the file name '{path.name}'; "
                f"name the file {fid}.yaml so it is easy to find",
            )
        flows[fid] = loaded
    if not paths:
        report.error(display(folder), Position(), "the folder has no flow files (*.yaml)")
    return LoadedFolder(folder, bot, flows, report, frozenset(unreadable - set(flows)))


def load_folder(folder: str | Path) -> tuple[FlowSet | None, Report]:
    """Read and check a folder. The FlowSet is None whenever there is any error."""
    from engine.checker import check  # the checker needs the loader's types

    loaded = read_folder(folder)
    check(loaded)
    if not loaded.report.ok or loaded.bot is None:
        return None, loaded.report
    return loaded.flow_set(), loaded.report


__all__ = ["FUNCTIONS", "LoadedFlow", "LoadedFolder", "LoadedStep", "load_folder", "read_folder"]
