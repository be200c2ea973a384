"""The Telegram Bot API as data: which methods exist, their fields, and the types of values.

`ApiSpec.load()` reads `data/telegram-bot-api.json` (Bot API 10.1, scraped from the official
documentation by the telegram-bot-api-spec project, MIT: see `data/LICENSE`). The local Bot
API server checks every request with `ApiSpec.check_call`, as a strict server would:

- an unknown method, a missing required field or an unknown field is an `ApiError`;
- values are decoded the way Telegram decodes them: a form field is a string, an Integer
  field must hold an integer, a Boolean `true`/`false`, and every other non-string value
  (arrays, objects such as an InlineKeyboardMarkup) is JSON text; a JSON body carries the
  values themselves;
- objects are checked recursively against the spec's types: required fields present, no
  unknown field, scalar types right; an abstract type (BotCommandScope, InputMedia...) must
  match one of its subtypes;
- an InputFile is a multipart part (or `attach://name` naming one).

`check_object(value, "Update")` checks an object the server itself builds (the updates and
messages it hands out), so the simulation stays within the documented shapes too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

SPEC_FILE = Path(__file__).with_name("data") / "telegram-bot-api.json"
_INTEGER = re.compile(r"^-?\d+$")
_FLOAT = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")
_SCALARS = frozenset({"String", "Integer", "Float", "Boolean", "True", "InputFile"})


class ApiError(Exception):
    """A request the Bot API would refuse: `description` as Telegram words it, and the code."""

    def __init__(self, description: str, code: int = 400, path: str = "") -> None:
        super().__init__(description)
        self.description = description
        self.code = code
        self.path = path  # where in the request: deeper paths explain a union's failure best


def _bad(path: str, what: str) -> ApiError:
    return ApiError(f"Bad Request: {path}: {what}", path=path)


def _deepest(errors: list[ApiError]) -> ApiError:
    """Of the reasons each alternative of a union failed, the one that got furthest."""
    return max(errors, key=lambda err: len(err.path))


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    types: tuple[str, ...]
    required: bool


@dataclass(frozen=True, slots=True)
class MethodSpec:
    name: str
    fields: Mapping[str, FieldSpec]


@dataclass(frozen=True, slots=True)
class TypeSpec:
    name: str
    fields: Mapping[str, FieldSpec]
    subtypes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Upload:
    """A file part of a multipart request: its name and bytes."""

    filename: str
    data: bytes
    content_type: str = "application/octet-stream"


class ApiSpec:
    """Methods and types of one Bot API version; immutable once loaded."""

    __slots__ = ("_by_lower", "methods", "types", "version")

    def __init__(
        self, version: str, methods: Mapping[str, MethodSpec], types: Mapping[str, TypeSpec]
    ) -> None:
        self.version = version
        self.methods = dict(methods)
        self.types = dict(types)
        # Telegram matches method names case-insensitively (sendmessage works too).
        self._by_lower = {name.lower(): spec for name, spec in self.methods.items()}

    @staticmethod
    @cache
    def load(path: Path = SPEC_FILE) -> ApiSpec:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))

        def fields(entries: list[dict[str, Any]]) -> dict[str, FieldSpec]:
            return {
                f["name"]: FieldSpec(f["name"], tuple(f["types"]), bool(f["required"]))
                for f in entries
            }

        methods = {
            name: MethodSpec(name, fields(m.get("fields", [])))
            for name, m in raw["methods"].items()
        }
        types = {
            name: TypeSpec(name, fields(t.get("fields", [])), tuple(t.get("subtypes", ())))
            for name, t in raw["types"].items()
        }
        return ApiSpec(raw.get("version", "?"), methods, types)

    # ------------------------------------------------------------------ requests

    def method(self, name: str) -> MethodSpec:
        spec = self._by_lower.get(name.lower())
        if spec is None:
            raise ApiError(f"Bad Request: unknown method '{name}'")
        return spec

    def check_call(
        self,
        method: str,
        params: Mapping[str, Any],
        uploads: Mapping[str, Upload] | None = None,
        *,
        form: bool = True,
    ) -> tuple[str, dict[str, Any]]:
        """(the method's documented name, its decoded parameters) or an ApiError.

        `form`: the values are form fields (strings, JSON text for non-strings) rather than
        the values of a JSON body. `uploads`: the multipart file parts by field name."""
        spec = self.method(method)
        uploads = uploads or {}
        attached = _attached(params)
        for name in sorted(set(params) | set(uploads)):
            if name not in spec.fields and not (name in uploads and name in attached):
                raise ApiError(f"Bad Request: unknown field '{name}' in {spec.name}")
        decoded: dict[str, Any] = {}
        for name, field_spec in spec.fields.items():
            if name in uploads:
                if "InputFile" not in field_spec.types:
                    raise ApiError(f"Bad Request: field '{name}' can't be a file upload")
                decoded[name] = uploads[name]
                continue
            if name not in params:
                if field_spec.required:
                    raise ApiError(f"Bad Request: field '{name}' is required in {spec.name}")
                continue
            decoded[name] = self._decode_field(field_spec, params[name], uploads, form, name)
        return spec.name, decoded

    def _decode_field(
        self, spec: FieldSpec, value: Any, uploads: Mapping[str, Upload], form: bool, path: str
    ) -> Any:
        errors: list[ApiError] = []
        for type_name in spec.types:
            try:
                return self._decode(type_name, value, uploads, form, path)
            except ApiError as err:
                errors.append(err)
        raise _deepest(errors)

    def _decode(
        self, type_name: str, value: Any, uploads: Mapping[str, Upload], form: bool, path: str
    ) -> Any:
        if type_name == "InputFile":
            if isinstance(value, str) and value.startswith("attach://"):
                part = uploads.get(value.removeprefix("attach://"))
                if part is None:
                    raise _bad(path, f"no file part named in {value!r}")
                return part
            raise _bad(path, "expected a file upload")
        if form and isinstance(value, str):
            value = _from_form(type_name, value, path)
        return self.check_value(value, type_name, path)

    # ------------------------------------------------------------------ values

    def check_value(self, value: Any, type_name: str, path: str = "value") -> Any:
        """`value` if it is a valid `type_name` (e.g. "Array of BotCommand"), else ApiError."""
        if type_name.startswith("Array of "):
            inner = type_name.removeprefix("Array of ")
            if not isinstance(value, list):
                raise _bad(path, "expected an Array")
            return [self.check_value(v, inner, f"{path}[{i}]") for i, v in enumerate(value)]
        if type_name in _SCALARS:
            _check_scalar(value, type_name, path)
            return value
        self.check_object(value, type_name, path)
        return value

    def check_object(self, value: Any, type_name: str, path: str = "value") -> None:
        spec = self.types.get(type_name)
        if spec is None:
            raise _bad(path, f"the spec has no type {type_name}")
        if not isinstance(value, dict):
            raise _bad(path, f"expected an object {type_name}")
        if spec.subtypes:
            problems: list[ApiError] = []
            for sub in spec.subtypes:
                try:
                    self.check_object(value, sub, path)
                    return
                except ApiError as err:
                    problems.append(err)
            reason = _deepest(problems).description.removeprefix("Bad Request: ")
            raise _bad(path, f"matches no kind of {type_name} ({reason})")
        for name in value:
            if name not in spec.fields:
                raise _bad(path, f"unknown field '{name}' in {type_name}")
        for name, field_spec in spec.fields.items():
            if name not in value:
                if field_spec.required:
                    raise _bad(path, f"field '{name}' of {type_name} is required")
                continue
            errors: list[ApiError] = []
            for option in field_spec.types:
                try:
                    self.check_value(value[name], option, f"{path}.{name}")
                    break
                except ApiError as err:
                    errors.append(err)
            else:
                raise _deepest(errors)


def _from_form(type_name: str, text: str, path: str) -> Any:
    """A form field's string as the value Telegram reads from it for `type_name`."""
    if type_name == "String":
        return text
    if type_name == "Integer":
        if not _INTEGER.match(text.strip()):
            raise _bad(path, "expected an Integer")
        return int(text)
    if type_name == "Float":
        if not _FLOAT.match(text.strip()):
            raise _bad(path, "expected a Float")
        return float(text)
    if type_name in ("Boolean", "True"):
        lowered = text.strip().lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0") and type_name == "Boolean":
            return False
        raise _bad(path, "expected a Boolean")
    try:
        return json.loads(text)
    except ValueError as err:
        raise _bad(path, f"can't parse JSON ({type_name} expected)") from err


def _check_scalar(value: Any, type_name: str, path: str) -> None:
    ok = {
        "String": isinstance(value, str),
        "Integer": isinstance(value, int) and not isinstance(value, bool),
        "Float": isinstance(value, int | float) and not isinstance(value, bool),
        "Boolean": isinstance(value, bool),
        "True": value is True,
        "InputFile": isinstance(value, str),  # inside objects: attach://name or a file id/URL
    }[type_name]
    if not ok:
        raise _bad(path, f"expected {type_name}")


def _attached(params: Mapping[str, Any]) -> set[str]:
    """Part names that some string parameter refers to as attach://NAME."""
    names = set()
    for value in params.values():
        if isinstance(value, str) and "attach://" in value:
            names.update(re.findall(r"attach://([\w-]+)", value))
    return names
