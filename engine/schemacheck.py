"""The JSON Schema layer of loading: is a file's shape right, and if not, say why in words.

The schemas in `engine/schema/` are the ones editors use. A document is checked quickly with
fastjsonschema; only a refused one goes through jsonschema, whose errors are rewritten here
into sentences a lawyer can act on, each at the FILE:LINE:COL of the offending key or value.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.diagnostics import Position, Report, did_you_mean
from engine.yamlsafe import REFUSED, LocatedList, LocatedMap

if TYPE_CHECKING:  # jsonschema is imported on first use: a valid folder never needs it
    import jsonschema


@cache
def schema(name: str) -> dict[str, Any]:
    """The shipped JSON Schema `flow` or `bot`."""
    text = resources.files("engine").joinpath("schema", f"{name}.schema.json").read_text("utf-8")
    return json.loads(text)


@cache
def _validator(name: str) -> jsonschema.protocols.Validator:
    import jsonschema  # slow to import, and only needed to explain errors

    cls = jsonschema.validators.validator_for(schema(name))
    return cls(schema(name))


# --------------------------------------------------------------------------- fast schema check
# jsonschema explains a violation well but walks a valid document slowly (a folder of 2,000
# steps took about a second). Almost every document a loader sees is valid, so a
# fastjsonschema validator (the schema compiled to Python once) answers "valid or not", and
# jsonschema runs only on a document it refuses, to describe what is wrong.


@cache
def _quick_validator(name: str) -> Callable[[Any], Any]:
    import fastjsonschema

    # fastjsonschema knows drafts up to 7; our schemas use nothing newer than draft 7 has.
    # It rewrites `$ref`s in place, so it gets a copy of its own.
    draft7 = {**copy.deepcopy(schema(name)), "$schema": "http://json-schema.org/draft-07/schema#"}
    return fastjsonschema.compile(draft7)


def quick_valid(name: str, document: Any) -> bool:
    """True when `document` is valid under the shipped schema `name`."""
    import fastjsonschema

    try:
        _quick_validator(name)(document)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


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
    if isinstance(value, dict) and isinstance(error.instance, str) and error.instance in value:
        # A key refused by `propertyNames`: jsonschema reports it at the mapping's path.
        yield from _describe_property_name(error, value, where, path)
        return
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
    written = _plain_text(parent, key)
    if written is not None and not isinstance(value, str) and _expects_text(error):
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
        if value is None and expected == "object":
            yield position, f"{where} is empty: write its keys under it, indented"
            return
        yield position, f"{where} must be {_type_words(expected)}, not {_yaml_kind(value)}"
        return
    if validator == "uniqueItems" and isinstance(value, list):
        seen: set[Any] = set()
        for index, item in enumerate(value):
            if item in seen:
                at = value.item_at(index) if isinstance(value, LocatedList) else position
                yield at, f"{where}: '{item}' is listed twice"
                return
            seen.add(item)
    if validator == "const":
        yield position, f"{where} must be {json.dumps(error.validator_value)}"
        return
    if validator in ("minItems", "minProperties"):
        yield position, f"{where} must not be empty"
        return
    yield position, f"{where}: {error.message}"


def _describe_property_name(
    error: jsonschema.ValidationError, value: dict[str, Any], where: str, path: list[Any]
) -> Iterator[tuple[Position, str]]:
    name = error.instance
    at = value.key_at(name) if isinstance(value, LocatedMap) else Position()
    if error.validator == "enum":
        allowed = [str(a) for a in error.validator_value]
        hint = did_you_mean(name, allowed) or f"; allowed here: {', '.join(allowed)}"
        yield at, f"unknown key '{name}' in {where}{hint}"
    elif error.validator == "pattern" and error.validator_value.startswith("^[a-z]{2,3}"):
        if path == ["match"]:
            return  # reported when the flow is read, against the languages of bot.yaml
        yield at, f"'{name}' in {where} is not a language code such as ru or en"
    else:
        what = "a step name" if path == ["steps"] else "a name"
        yield at, f"'{name}' in {where} is not {what}: {_NAME_RULE}"


def _expects_text(error: jsonschema.ValidationError) -> bool:
    """True when the schema wanted a string where YAML made something else of a plain
    scalar (`yes`, `1.10`, `2024-01-02`): then quoting it is the fix."""
    rule = error.validator_value
    if error.validator == "type":
        return rule == "string" or (isinstance(rule, list) and "string" in rule)
    if error.validator == "oneOf":
        return _is_text_schema(error.schema)
    if error.validator == "enum":
        return all(isinstance(option, str) for option in rule)
    return error.validator == "const" and isinstance(rule, str)


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
        if not LANGUAGE_CODE.match(language):
            # Reported when the text is read, against the languages of bot.yaml.
            found = True
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


LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$")


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
    if quick_valid(name, document):
        return True
    ok = True
    errors = sorted(_validator(name).iter_errors(document), key=lambda e: list(e.absolute_path))
    for error in errors:
        ok = False
        for position, message in _describe_schema_error(error, document):
            report.error(file, position, message)
    return ok
