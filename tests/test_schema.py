"""The shipped JSON Schemas: valid Draft 2020-12, true to the flows we ship, strict with the
rest, and in step with the loader (input types, engine texts, the fast yes/no check)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from engine import loader, schemacheck
from engine.model import InputType
from engine.schemacheck import quick_valid
from engine.texts import TEXT_KEYS

REPO = Path(__file__).resolve().parent.parent
SCHEMAS = REPO / "engine" / "schema"
FLOW_FILES = sorted(p for p in (REPO / "flows").glob("*.yaml") if p.name != "bot.yaml")


def schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))


def validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema(name))


@pytest.mark.parametrize("name", ["flow", "bot"])
def test_schema_is_valid_draft_2020_12(name):
    document = schema(name)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(document)
    assert jsonschema.validators.validator_for(document) is jsonschema.Draft202012Validator


@pytest.mark.parametrize("name", ["flow", "bot"])
def test_the_loader_uses_the_shipped_file(name):
    assert schemacheck.schema(name) == schema(name)


def test_there_are_flow_files_to_check():
    assert len(FLOW_FILES) >= 5


@pytest.mark.parametrize("path", FLOW_FILES, ids=lambda p: p.name)
def test_every_shipped_flow_is_valid(path):
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    errors = [e.message for e in validator("flow").iter_errors(document)]
    assert errors == []


def test_shipped_bot_yaml_is_valid():
    document = yaml.safe_load((REPO / "flows" / "bot.yaml").read_text(encoding="utf-8"))
    assert [e.message for e in validator("bot").iter_errors(document)] == []


FLOW = {
    "flow": "main",
    "title": {"ru": "Тема", "en": "Topic"},
    "steps": {
        "ask": {
            "say": "Name?",
            "input": {"save": "name", "type": "text", "min_length": 2},
            "goto": "pick",
        },
        "pick": {
            "choices": [
                {"label": "A", "goto": "check", "set": {"kind": "a"}},
                {"label": "B", "goto": "other.start"},
            ]
        },
        "check": {"branch": [{"when": "len(name) > 3", "goto": "done"}, {"goto": "done"}]},
        "done": {"say": "Bye", "end": True, "document": {"template": "t.docx", "name": "t"}},
        "human": {"handover": {"queue": "lawyers", "say": "Wait"}},
        "sub": {"call": "contacts", "goto": "done"},
    },
}


def test_a_full_flow_is_valid():
    assert [e.message for e in validator("flow").iter_errors(FLOW)] == []


def _broken(path: list[Any], value: Any, delete: bool = False) -> dict[str, Any]:
    document = copy.deepcopy(FLOW)
    node: Any = document
    for part in path[:-1]:
        node = node[part]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return document


BROKEN_FLOWS = {
    "unknown top-level key": (_broken(["titel"], "x"), "additionalProperties"),
    "missing title": (_broken(["title"], None, delete=True), "required"),
    "bad flow id": (_broken(["flow"], "Main"), "pattern"),
    "empty steps": (_broken(["steps"], {}), "minProperties"),
    "bad step name": (_broken(["steps", "Ask"], {"end": True}), "pattern"),
    "unknown step key": (_broken(["steps", "done", "sya"], "x"), "additionalProperties"),
    "boolean text": (_broken(["steps", "done", "say"], True), "oneOf"),
    "bad language": (_broken(["title"], {"RU": "x"}), "oneOf"),
    "end false": (_broken(["steps", "done", "end"], False), "const"),
    "unknown input type": (_broken(["steps", "ask", "input", "type"], "integr"), "enum"),
    "input without save": (_broken(["steps", "ask", "input", "save"], None, True), "required"),
    "choice without goto": (
        _broken(["steps", "pick", "choices", 0, "goto"], None, True),
        "required",
    ),
    "bad target": (_broken(["steps", "ask", "goto"], "a.b.c"), "pattern"),
    "empty choices": (_broken(["steps", "pick", "choices"], []), "minItems"),
    "empty when": (_broken(["steps", "check", "branch", 0, "when"], ""), "minLength"),
    "handover without queue": (_broken(["steps", "human", "handover"], {"say": "x"}), "required"),
    "list set value": (_broken(["steps", "pick", "choices", 0, "set", "kind"], [1]), "type"),
    "document without name": (
        _broken(["steps", "done", "document"], {"template": "t.docx"}),
        "required",
    ),
    "negative min_length": (_broken(["steps", "ask", "input", "min_length"], -1), "minimum"),
    "boolean min_length": (_broken(["steps", "ask", "input", "min_length"], True), "type"),
}


@pytest.mark.parametrize(("document", "keyword"), BROKEN_FLOWS.values(), ids=BROKEN_FLOWS.keys())
def test_broken_flows_are_rejected(document, keyword):
    errors = list(validator("flow").iter_errors(document))
    assert errors, "the schema accepted a broken flow"
    assert keyword in {e.validator for e in errors}


BOT = {
    "languages": ["ru", "en"],
    "menu": {"say": {"ru": "Привет", "en": "Hello"}, "flows": ["main"]},
    "texts": {"not_understood": "?"},
    "handover": {"lawyers": "Lawyers"},
    "retention_days": 30,
}

BROKEN_BOTS = {
    "no languages": ({k: v for k, v in BOT.items() if k != "languages"}, "required"),
    "empty languages": ({**BOT, "languages": []}, "minItems"),
    "repeated language": ({**BOT, "languages": ["ru", "ru"]}, "uniqueItems"),
    "unknown text": ({**BOT, "texts": {"not_understod": "?"}}, "enum"),
    "bad queue id": ({**BOT, "handover": {"Lawyers": "x"}}, "pattern"),
    "retention zero": ({**BOT, "retention_days": 0}, "minimum"),
    "menu without flows": ({**BOT, "menu": {"say": "Hi"}}, "required"),
    "unknown key": ({**BOT, "langauges": ["ru"]}, "additionalProperties"),
}


def test_a_full_bot_yaml_is_valid():
    assert [e.message for e in validator("bot").iter_errors(BOT)] == []


@pytest.mark.parametrize(("document", "keyword"), BROKEN_BOTS.values(), ids=BROKEN_BOTS.keys())
def test_broken_bot_yaml_is_rejected(document, keyword):
    errors = list(validator("bot").iter_errors(document))
    assert keyword in {e.validator for e in errors}


# ------------------------------------------------------------------- in step with the code


def test_input_types_match_the_model():
    types = schema("flow")["$defs"]["input"]["properties"]["type"]["enum"]
    assert sorted(types) == sorted(t.value for t in InputType)


def test_engine_texts_match_the_defaults():
    keys = schema("bot")["properties"]["texts"]["propertyNames"]["enum"]
    assert sorted(keys) == sorted(TEXT_KEYS)


def test_step_keys_cover_every_way_on():
    step = schema("flow")["$defs"]["step"]["properties"]
    assert set(loader._WAYS) <= set(step)


@pytest.mark.parametrize(
    ("name", "document"),
    [("flow", FLOW), ("bot", BOT)]
    + [("flow", d) for d, _ in BROKEN_FLOWS.values()]
    + [("bot", d) for d, _ in BROKEN_BOTS.values()]
    + [("flow", yaml.safe_load(p.read_text(encoding="utf-8"))) for p in FLOW_FILES],
)
def test_fast_check_agrees_with_jsonschema(name, document):
    # The loader answers "valid?" with fastjsonschema and asks jsonschema only to explain
    # a refusal; the two must never disagree.
    assert quick_valid(name, document) == validator(name).is_valid(document)


@pytest.mark.parametrize(
    "value",
    [True, 1, 1.0, None, "x", [], {}, [1, "1"], [True, 1], {"a": []}],
)
def test_fast_check_agrees_on_odd_values(value):
    for name in ("flow", "bot"):
        for document in (
            value,
            {**FLOW, "title": value},
            _broken(["steps", "pick", "choices", 0, "set", "kind"], value),
            _broken(["steps", "ask", "input", "max_length"], value),
            {**BOT, "languages": value},
            {**BOT, "retention_days": value},
        ):
            assert quick_valid(name, document) == validator(name).is_valid(document), (
                name,
                document,
            )
