"""Read a flows folder into a frozen `FlowSet`, reporting every problem with FILE:LINE:COL.

Three layers, each collecting problems rather than stopping at the first:
1. `engine.yamlsafe`: safe YAML with positions (duplicate keys, aliases, bad syntax);
2. the JSON Schema shipped in `engine/schema/` (the same file editors use), whose errors are
   rewritten here into sentences a lawyer can act on;
3. the meaning of each file (step kinds, targets, texts, expressions, inputs), then
   `engine.checker` for the rules that need the whole folder (reachability, data flow).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

import jsonschema

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
from engine.texts import DEFAULT_TEXTS, TEXT_KEYS
from engine.yamlsafe import REFUSED, LocatedList, LocatedMap, YamlProblem, load_yaml

BOT_FILE = "bot.yaml"
MAX_FILE_BYTES = 2_000_000
DEFAULT_MAX_TEXT_ANSWER = 2000
PLACEHOLDER = re.compile(r"(?<!\{)\{([^{}]*)\}(?!\})")
NAME = re.compile(r"^[a-z_][a-z0-9_]*$")

# The ways on a step can take; a step does exactly one (SPEC "Flow format").
_WAYS = ("choices", "input", "branch", "goto", "call", "handover", "end")


@cache
def schema(name: str) -> dict[str, Any]:
    """The shipped JSON Schema `flow` or `bot`."""
    text = resources.files("engine").joinpath("schema", f"{name}.schema.json").read_text("utf-8")
    return json.loads(text)


@cache
def _validator(name: str) -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(schema(name))
    return cls(schema(name))


# --------------------------------------------------------------------------- fast schema check
#
# jsonschema explains a violation well but walks a valid document slowly (a folder of 2,000
# steps took about a second). Almost every document a loader sees is valid, so the schema is
# also compiled once into plain Python predicates that only answer "valid or not"; jsonschema
# runs only on a document they refuse, to describe what is wrong. The predicates cover the
# keywords our schemas use and are never more lenient than jsonschema: when in doubt they say
# "not valid" and jsonschema decides (tests/test_schema.py compares the two).

Predicate = Callable[[Any], bool]
_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$defs", "$comment", "title", "description", "default", "examples"}
)


class _Unsupported(Exception):
    """The schema uses a keyword the predicates do not know: use jsonschema alone."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_TYPES: dict[str, Predicate] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "number": _is_number,
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, float) and v.is_integer())
    ),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def _same(a: Any, b: Any) -> bool:
    """JSON equality for scalars (true is not 1); anything else counts as different."""
    if isinstance(a, str) or isinstance(b, str) or a is None or b is None:
        return type(a) is type(b) and a == b
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return _is_number(a) and _is_number(b) and a == b


def _compile(node: Any, root: dict[str, Any], refs: dict[str, Predicate]) -> Predicate:
    if node is True:
        return lambda v: True
    if node is False:
        return lambda v: False
    if not isinstance(node, dict):
        raise _Unsupported(repr(node))
    checks: list[Predicate] = []
    for keyword, arg in node.items():
        if keyword in _ANNOTATIONS or keyword in ("properties", "additionalProperties"):
            continue
        checks.append(_keyword(keyword, arg, node, root, refs))
    if "properties" in node or "additionalProperties" in node:
        checks.append(_properties(node, root, refs))
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda v: first(v) and second(v)
    return lambda v: all(check(v) for check in checks)


def _keyword(
    keyword: str, arg: Any, node: dict[str, Any], root: dict[str, Any], refs: dict[str, Predicate]
) -> Predicate:
    if keyword == "$ref":
        return _ref(arg, root, refs)
    if keyword == "type":
        tests = [_TYPES[t] for t in (arg if isinstance(arg, list) else [arg])]
        if len(tests) == 1:
            return tests[0]
        return lambda v: any(test(v) for test in tests)
    if keyword == "required":
        names = tuple(arg)
        return lambda v: not isinstance(v, dict) or all(n in v for n in names)
    if keyword == "enum":
        if all(isinstance(e, str) for e in arg):
            allowed = frozenset(arg)
            return lambda v: isinstance(v, str) and v in allowed
        return lambda v: any(_same(v, e) for e in arg)
    if keyword == "const":
        return lambda v: _same(v, arg)
    if keyword == "pattern":
        search = re.compile(arg).search
        return lambda v: not isinstance(v, str) or search(v) is not None
    if keyword == "minLength":
        return lambda v: not isinstance(v, str) or len(v) >= arg
    if keyword == "minimum":
        return lambda v: not _is_number(v) or v >= arg
    if keyword == "maximum":
        return lambda v: not _is_number(v) or v <= arg
    if keyword == "minItems":
        return lambda v: not isinstance(v, list) or len(v) >= arg
    if keyword == "minProperties":
        return lambda v: not isinstance(v, dict) or len(v) >= arg
    if keyword == "uniqueItems":
        return (lambda v: not isinstance(v, list) or _unique(v)) if arg else (lambda v: True)
    if keyword == "items":
        item = _compile(arg, root, refs)
        return lambda v: not isinstance(v, list) or all(item(i) for i in v)
    if keyword == "propertyNames":
        name = _compile(arg, root, refs)
        return lambda v: not isinstance(v, dict) or all(name(k) for k in v)
    if keyword == "oneOf":
        options = [_compile(o, root, refs) for o in arg]
        return lambda v: sum(1 for option in options if option(v)) == 1
    raise _Unsupported(keyword)


def _unique(items: list[Any]) -> bool:
    try:
        keys = [(type(i), i) for i in items]
        return len(set(keys)) == len(keys)
    except TypeError:  # lists or mappings inside: let jsonschema decide
        return False


def _properties(
    node: dict[str, Any], root: dict[str, Any], refs: dict[str, Predicate]
) -> Predicate:
    known = {key: _compile(sub, root, refs) for key, sub in node.get("properties", {}).items()}
    extra_schema = node.get("additionalProperties", True)
    extra = _compile(extra_schema, root, refs)
    if extra_schema is True:

        def check(v: Any) -> bool:
            if not isinstance(v, dict):
                return True
            return all(test(v[key]) for key, test in known.items() if key in v)

        return check

    def check_all(v: Any) -> bool:
        if not isinstance(v, dict):
            return True
        for key, value in v.items():
            test = known.get(key, extra)
            if not test(value):
                return False
        return True

    return check_all


def _ref(ref: str, root: dict[str, Any], refs: dict[str, Predicate]) -> Predicate:
    if not ref.startswith("#/"):
        raise _Unsupported(ref)
    if ref not in refs:
        refs[ref] = lambda v: False  # a placeholder while a recursive reference compiles
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        compiled = _compile(target, root, refs)
        refs[ref] = compiled
    return lambda v: refs[ref](v)


@cache
def schema_predicate(name: str) -> Predicate | None:
    """A fast yes/no check of the shipped schema `name`, or None when it cannot be built."""
    try:
        return _compile(schema(name), schema(name), {})
    except (_Unsupported, KeyError, TypeError, re.error):
        return None


# --------------------------------------------------------------------------- schema errors


def _walk(document: Any, path: list[Any]) -> tuple[Any, Any, Any]:
    """(parent container, key in it, value) for a jsonschema error path."""
    parent: Any = None
    key: Any = None
    node = document
    for part in path:
        parent, key = node, part
        node = node[part]
    return parent, key, node


def _value_position(parent: Any, key: Any, fallback: Position) -> Position:
    if isinstance(parent, LocatedMap):
        return parent.value_at(key)
    if isinstance(parent, LocatedList):
        return parent.item_at(key)
    return fallback


def _plain_text(parent: Any, key: Any) -> str | None:
    if isinstance(parent, LocatedMap | LocatedList):
        return parent.plain_scalars.get(key)
    return None


def _describe_schema_error(
    error: jsonschema.ValidationError, document: LocatedMap
) -> Iterator[tuple[Position, str]]:
    path = list(error.absolute_path)
    parent, key, value = _walk(document, path)
    if value is REFUSED or _holds_refused(value):
        return  # an alias, already reported where it is written
    where = describe_path(path)
    position = _value_position(parent, key, document.position)
    validator = error.validator
    if validator == "additionalProperties" and isinstance(value, LocatedMap):
        known = list(error.schema.get("properties", {}))
        for extra in value:
            if extra not in known:
                hint = did_you_mean(extra, known) or f"; allowed here: {', '.join(known)}"
                yield value.key_at(extra), f"unknown key '{extra}' in {where}{hint}"
        return
    if validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        known = error.schema.get("properties", {})
        extras = [k for k in value if k not in known] if isinstance(value, dict) else []
        if did_you_mean(missing, extras):
            return  # a misspelt key: its 'unknown key' error says it all
        yield position, f"{where} is missing the required key '{missing}'"
        return
    if validator == "propertyNames":
        bad = error.instance if isinstance(error.instance, str) else None
        for name in value if isinstance(value, dict) else []:
            if bad is not None and name != bad:
                continue
            at = value.key_at(name) if isinstance(value, LocatedMap) else position
            if "enum" in error.schema.get("propertyNames", {}):
                allowed = error.schema["propertyNames"]["enum"]
                hint = did_you_mean(name, allowed)
                yield at, f"unknown key '{name}' in {where}{hint}"
            else:
                yield at, f"'{name}' in {where} is not a valid name: " + _NAME_RULE
        return
    written = _plain_text(parent, key)
    if written is not None and not isinstance(value, str):
        yield (
            position,
            f"{where}: YAML read `{written}` as {_yaml_kind(value)}, not as text; "
            f'put it in quotes: "{written}"',
        )
        return
    if validator == "oneOf" and _is_text_schema(error.schema):
        if isinstance(value, LocatedMap) and value:
            yield from _describe_text_map(value, where)
            return
        if isinstance(value, dict):
            yield position, f"{where} must not be empty"
            return
        yield position, f"{where} must be a text: a string or a map language -> string"
        return
    if validator == "enum":
        allowed = [str(a) for a in error.validator_value]
        hint = did_you_mean(str(value), allowed) or f"; one of: {', '.join(allowed)}"
        yield position, f"{where}: unknown value '{value}'{hint}"
        return
    if validator == "pattern":
        if error.validator_value.startswith("^[a-z][a-z0-9_]*(\\."):
            yield position, f"{where}: '{value}' is not a step or FLOW.STEP target"
        elif error.validator_value.startswith("^[a-z]{2,3}"):
            yield position, f"{where}: '{value}' is not a language code such as ru or en"
        else:
            yield position, f"{where}: '{value}' is not a valid name: " + _NAME_RULE
        return
    if validator == "type":
        expected = error.validator_value
        yield position, f"{where} must be {_type_words(expected)}, not {_yaml_kind(value)}"
        return
    if validator == "const":
        yield position, f"{where} must be {json.dumps(error.validator_value)}"
        return
    if validator in ("minItems", "minProperties"):
        yield position, f"{where} must not be empty"
        return
    yield position, f"{where}: {error.message}"


def _holds_refused(value: Any) -> bool:
    """A text map or list with a refused alias inside: its problem is already reported."""
    if isinstance(value, dict):
        return any(v is REFUSED for v in value.values())
    if isinstance(value, list):
        return any(v is REFUSED for v in value)
    return False


def _describe_text_map(value: LocatedMap, where: str) -> Iterator[tuple[Position, str]]:
    """What is wrong with a map language -> string, each problem where it is written."""
    found = False
    for language, text in value.items():
        if not _LANGUAGE.match(language):
            found = True
            yield (
                value.key_at(language),
                f"{where}: '{language}' is not a language code such as ru or en",
            )
        elif not isinstance(text, str):
            found = True
            written = value.plain_scalars.get(language)
            if written is not None:
                yield (
                    value.value_at(language),
                    f"{where}, {language}: YAML read `{written}` as {_yaml_kind(text)}, "
                    f'not as text; put it in quotes: "{written}"',
                )
            else:
                yield (
                    value.value_at(language),
                    f"{where}, {language} must be text, not {_yaml_kind(text)}",
                )
    if not found:
        yield value.position, f"{where} must be a text: a string or a map language -> string"


_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$")


def describe_path(path: list[Any]) -> str:
    """['steps', 'ask', 'choices', 0, 'label'] -> "step 'ask', choice 1, label"."""
    if not path:
        return "the file"
    words: list[str] = []
    items = list(path)
    while items:
        part = items.pop(0)
        if part == "steps" and items:
            words.append(f"step '{items.pop(0)}'")
        elif part in ("choices", "branch", "options") and items and isinstance(items[0], int):
            noun = {"choices": "choice", "branch": "branch item", "options": "option"}[part]
            words.append(f"{noun} {items.pop(0) + 1}")
        elif isinstance(part, int):
            words.append(f"item {part + 1}")
        else:
            words.append(str(part))
    return ", ".join(words)


_NAME_RULE = "use lower-case latin letters, digits and _, starting with a letter"


def _is_text_schema(sub: dict[str, Any]) -> bool:
    options = sub.get("oneOf", [])
    return bool(options) and options[0] == {"type": "string"}


def _yaml_kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "text"
    return f"a {type(value).__name__}"


def _type_words(expected: Any) -> str:
    words = {
        "object": "a mapping",
        "array": "a list",
        "string": "text",
        "integer": "a whole number",
        "number": "a number",
        "boolean": "true or false",
        "null": "empty",
    }
    if isinstance(expected, list):
        return " or ".join(words.get(e, e) for e in expected)
    return words.get(expected, str(expected))


def validate_with_schema(
    name: str, document: Any, file: str, report: Report, root: Position
) -> bool:
    """Report every schema violation of `document`; True when there was none."""
    if not isinstance(document, LocatedMap):
        report.error(file, root, f"{Path(file).name} must be a mapping of keys to values")
        return False
    quick = schema_predicate(name)
    if quick is not None and quick(document):
        return True
    ok = True
    errors = sorted(_validator(name).iter_errors(document), key=lambda e: list(e.absolute_path))
    for error in errors:
        ok = False
        for position, message in _describe_schema_error(error, document):
            report.error(file, position, message)
    return ok


# --------------------------------------------------------------------------- texts


@dataclass(slots=True)
class _TextUse:
    """A text with `{var}` placeholders, recorded for the data-flow check."""

    variables: tuple[str, ...]
    position: Position


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
        for language, value in raw.items():
            at = raw.key_at(language) if isinstance(raw, LocatedMap) else position
            if not isinstance(value, str):
                continue  # the schema check has reported it
            if self.languages and language not in self.languages:
                hint = did_you_mean(language, self.languages)
                self.report.error(
                    self.file,
                    at,
                    f"{what}: language '{language}' is not in bot.yaml languages "
                    f"({', '.join(self.languages)}){hint}",
                )
                continue
            texts[language] = value
            value_at = raw.value_at(language) if isinstance(raw, LocatedMap) else position
            self._placeholders(value, value_at, what, uses)
        missing = [language for language in self.languages if language not in raw]
        if missing:
            self.report.error(
                self.file,
                position,
                f"{what}: missing translation {', '.join(repr(m) for m in missing)}",
            )
        return Text(MappingProxyType(texts))

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
        save=raw["save"],
        type=kind,
        min_length=raw.get("min_length"),
        max_length=max_length,
        minimum=raw.get("min"),
        maximum=raw.get("max"),
        options=options,
        pattern=pattern,
    )


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
    ctx.report.error(
        ctx.file,
        raw.key_at(ways[1]),
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

    def target(raw_target: str, at: Position) -> Target:
        loaded.raw_targets.append(raw_target)
        loaded.target_positions.append(at)
        return _target(raw_target, flow_id)

    choices: list[Choice] = []
    for index, item in enumerate(raw.get("choices", [])):
        at = raw["choices"].item_at(index)
        label = ctx.text(item["label"], item.value_at("label"), f"{where} choice {index + 1}", uses)
        sets = MappingProxyType(dict(item.get("set", {})))
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
        handover = Handover(spec["queue"], handover_say)
        loaded.queue_position = spec.value_at("queue")
    document = None
    if "document" in raw:
        spec = raw["document"]
        name_text = ctx.text(spec["name"], spec.value_at("name"), f"{where}, document name", uses)
        document = DocumentSpec(spec["template"], name_text)
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
        call=raw.get("call"),
        handover=handover,
        document=document,
    )
    return loaded


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
                report.error(
                    display,
                    raw_match.key_at(language),
                    f"match: language '{language}' is not in bot.yaml languages"
                    f"{did_you_mean(language, languages)}",
                )
            if isinstance(phrases, list):
                match[language] = tuple(p for p in phrases if isinstance(p, str))
    steps: dict[str, LoadedStep] = {}
    mentions: list[str] = []
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
            continue
        steps[name] = loaded
    start = document.get("start") if isinstance(document.get("start"), str) else None
    if start is None:
        start = next(iter(raw_steps), "")
    elif start not in raw_steps:
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
    return LoadedFlow(flow, steps, match_at, broken, frozenset(raw_steps), mentions=tuple(mentions))


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
    return _bot_settings(document, display, languages, report), languages


def _bot_settings(
    document: LocatedMap, display: str, languages: tuple[str, ...], report: Report
) -> BotConfig | None:
    ctx = FileContext(display, languages, report)
    uses: list[_TextUse] = []
    menu_raw = document.get("menu")
    if not isinstance(menu_raw, LocatedMap) or not _is_text(menu_raw.get("say")):
        return None
    menu = Menu(
        say=ctx.text(menu_raw["say"], menu_raw.value_at("say"), "menu.say", uses),
        flows=tuple(f for f in menu_raw.get("flows", []) if isinstance(f, str)),
    )
    texts: dict[str, Text] = {
        key: Text(MappingProxyType(value)) for key, value in DEFAULT_TEXTS.items()
    }
    raw_texts = document.get("texts")
    if isinstance(raw_texts, LocatedMap):
        for key, value in raw_texts.items():
            if key in TEXT_KEYS and _is_text(value):
                texts[key] = ctx.text(value, raw_texts.value_at(key), f"texts.{key}", uses)
    queues: dict[str, Text] = {}
    raw_queues = document.get("handover")
    if isinstance(raw_queues, LocatedMap):
        for queue, value in raw_queues.items():
            if _is_text(value):
                queues[queue] = ctx.text(value, raw_queues.value_at(queue), f"handover.{queue}", [])
    for use in uses:
        report.error(display, use.position, "bot.yaml texts cannot use {answers}")
    retention = document.get("retention_days", 30)
    raw_menu_flows = menu_raw.get("flows")
    menu_positions = (
        tuple(raw_menu_flows.item_positions) if isinstance(raw_menu_flows, LocatedList) else ()
    )
    return BotConfig(
        menu_positions=menu_positions,
        languages=languages,
        menu=menu,
        texts=MappingProxyType(texts),
        queues=MappingProxyType(queues),
        retention_days=retention if isinstance(retention, int) else 30,
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
