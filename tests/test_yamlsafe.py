"""Safe YAML with positions: what a flow file may and may not contain, and where things are."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml

from engine import yamlsafe
from engine.diagnostics import Position
from engine.yamlsafe import REFUSED, LocatedList, LocatedMap, YamlProblem, load_yaml

REPO = Path(__file__).resolve().parent.parent


def messages(problems: list[YamlProblem]) -> list[tuple[int, int, str]]:
    return [(p.position.line, p.position.column, p.message) for p in problems]


def test_positions_of_keys_values_and_items():
    data, problems = load_yaml("flow: main\nsteps:\n  ask:\n    say: 'Hi'\n    list: [a, b]\n")
    assert problems == []
    assert isinstance(data, LocatedMap)
    assert data.position == Position(1, 1)
    assert data.key_at("steps") == Position(2, 1)
    assert data.value_at("flow") == Position(1, 7)
    step = data["steps"]["ask"]
    assert step.key_at("say") == Position(4, 5)
    assert step.value_at("say") == Position(4, 10)
    assert step.text_at("say") == Position(4, 11)  # after the quote
    assert isinstance(step["list"], LocatedList)
    assert step["list"].item_at(1) == Position(5, 15)
    assert step["list"].item_at(9) == step["list"].position  # out of range: the list itself


def test_unknown_key_position_falls_back_to_the_mapping():
    data, _ = load_yaml("a: 1\n")
    assert data.key_at("zzz") == data.value_at("zzz") == Position(1, 1)


def test_values_are_those_of_safe_load():
    text = "a: yes\nb: [no, '1', 1.5, 2020-01-02, ~, 0x10, 1_000]\nc: 'q'\nd: |\n  x\n  y\n"
    data, problems = load_yaml(text)
    assert problems == []
    assert data == yaml.safe_load(text)
    assert data["b"][3] == date(2020, 1, 2)


@pytest.mark.parametrize("path", sorted((REPO / "flows").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_flows_read_as_safe_load_reads_them(path):
    text = path.read_text(encoding="utf-8")
    data, problems = load_yaml(text)
    assert problems == []
    assert data == yaml.safe_load(text)


def test_plain_scalars_that_did_not_stay_text_are_remembered():
    data, _ = load_yaml("a: yes\nb: 'yes'\nc: 1.10\nd: Hello\nlist: [on, 'off', x]\n")
    assert data.plain_scalars == {"a": "yes", "c": "1.10"}
    assert data["list"].plain_scalars == {0: "on"}


def test_keys_stay_the_text_that_was_written():
    data, problems = load_yaml("yes: 1\n1: 2\nnull: 3\n")
    assert problems == []
    assert list(data) == ["yes", "1", "null"]


def test_duplicate_key_keeps_the_first_and_is_reported():
    data, problems = load_yaml("a: 1\nb: 2\na: 3\n")
    assert data == {"a": 1, "b": 2}
    assert messages(problems) == [
        (3, 1, "duplicate key 'a' (first at line 1); each key may appear once in a mapping")
    ]


def test_alias_is_refused_where_it_is_written():
    data, problems = load_yaml("a: &x [1, 2]\nb: *x\n")
    assert data["a"] == [1, 2]
    assert data["b"] is REFUSED
    [(line, column, message)] = messages(problems)
    assert (line, column) == (2, 4)
    assert "alias '*x' refused" in message


def test_an_anchor_alone_is_harmless():
    data, problems = load_yaml("a: &x 1\n")
    assert (data, problems) == ({"a": 1}, [])


def test_billion_laughs_never_expands():
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 12):
        lines.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 9) + "]")
    data, problems = load_yaml("\n".join(lines))
    # 9**12 values if expanded; here each level is nine refusals.
    assert data["l11"] == [REFUSED] * 9
    aliases = 11 * 9
    assert len(problems) == yamlsafe.MAX_ALIAS_REPORTS + 1
    assert f"{aliases - yamlsafe.MAX_ALIAS_REPORTS} more aliases" in problems[-1].message


@pytest.mark.parametrize(
    ("text", "column", "tag"),
    [
        ("a: !!python/object/apply:os.system [echo]\n", 4, "!!python/object/apply:os.system"),
        ("a: !!python/object:object {}\n", 4, "!!python/object:object"),
        ("a: !custom text\n", 4, "!custom"),
        ("a: !<tag:example.com,2024:x> text\n", 4, "tag:example.com,2024:x"),
        ("a: !!set {x, y}\n", 4, "!!set"),
        ("a: !!omap [x: 1]\n", 4, "!!omap"),
    ],
)
def test_tags_other_than_core_ones_are_refused(text, column, tag):
    data, problems = load_yaml(text)
    [(line, col, message)] = messages(problems)
    assert (line, col) == (1, column)
    assert f"'{tag}' are not allowed" in message
    assert not any(type(v).__module__ not in ("builtins", "engine.yamlsafe") for v in data.values())


def test_a_python_tag_never_runs_anything(tmp_path):
    marker = tmp_path / "ran"
    load_yaml(f"a: !!python/object/apply:os.system ['touch {marker}']\n")
    assert not marker.exists()


def test_core_tags_are_fine():
    data, problems = load_yaml("a: !!str 12\nb: !!int '7'\nc: !!map {x: 1}\nd: !!seq [1]\n")
    assert problems == []
    assert data == {"a": "12", "b": 7, "c": {"x": 1}, "d": [1]}


def test_merge_key_is_refused():
    data, problems = load_yaml("a: {x: 1}\nb:\n  <<: {x: 1}\n  y: 2\n")
    assert data["b"] == {"y": 2}
    assert messages(problems) == [(3, 3, "merge keys (<<) are not allowed in flow files")]


def test_a_quoted_double_angle_key_is_just_a_key():
    data, problems = load_yaml("'<<': 1\n")
    assert (data, problems) == ({"<<": 1}, [])


def test_a_list_as_a_key_is_refused():
    data, problems = load_yaml("? [a, b]\n: 1\nc: 2\n")
    assert data == {"c": 2}
    assert messages(problems) == [(1, 3, "a key must be a word, not a list or a mapping")]


def test_second_document_is_refused():
    with pytest.raises(YamlProblem) as caught:
        load_yaml("a: 1\n---\nb: 2\n")
    assert caught.value.position == Position(2, 1)
    assert "second YAML document" in caught.value.message


def test_syntax_error_has_a_position_and_the_context():
    with pytest.raises(YamlProblem) as caught:
        load_yaml("a:\n  b: [1, 2\nc: 3\n")
    assert caught.value.position.line == 3
    assert "invalid YAML" in caught.value.message
    assert "flow sequence that starts at line 2, column 6" in caught.value.message


def test_the_node_cap_stops_the_reading_early(monkeypatch):
    monkeypatch.setattr(yamlsafe, "MAX_NODES", 50)
    with pytest.raises(YamlProblem) as caught:
        load_yaml("[" + ", ".join(["x"] * 200_000) + "]")
    assert caught.value.position.line == 1
    assert caught.value.position.column < 200  # stopped around the 50th value
    assert "more than 50 values" in caught.value.message


def test_a_file_just_under_the_cap_is_read(monkeypatch):
    monkeypatch.setattr(yamlsafe, "MAX_NODES", 50)
    data, problems = load_yaml("[" + ", ".join(["x"] * 49) + "]")
    assert (len(data), problems) == (49, [])


def test_nesting_is_capped():
    depth = yamlsafe.MAX_DEPTH + 1
    with pytest.raises(YamlProblem) as caught:
        load_yaml("[" * depth + "]" * depth)
    assert "nested too deeply" in caught.value.message
    data, _ = load_yaml("[" * (depth - 1) + "]" * (depth - 1))
    assert isinstance(data, list)


def test_empty_text_is_none():
    assert load_yaml("") == (None, [])
    assert load_yaml("# only a comment\n") == (None, [])


def test_a_scalar_document():
    assert load_yaml("hello\n") == ("hello", [])
