"""The loader: every problem of one file reported once, as FILE:LINE:COL and a sentence.

Each test writes a folder with one mistake and pins the whole report: which file, which
line and column, and the words of the message. Most assert that the report holds exactly
that one diagnostic, so that a cascade (one mistake, several errors) fails the test too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engine import yamlsafe
from engine.loader import MAX_FILE_BYTES, load_folder

REPO = Path(__file__).resolve().parent.parent

TWO_LANGUAGES = """\
languages: [ru, en]
menu:
  say: {ru: Привет, en: Hello}
  flows: [main]
"""


def only(found: list[Any]) -> Any:
    """The single diagnostic of a report (fails with the whole report otherwise)."""
    assert len(found) == 1, "\n".join(map(str, found))
    return found[0]


# ------------------------------------------------------------------------------- YAML level


def test_invalid_yaml_points_at_the_problem_and_where_it_began(check):
    p = only(
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    say: "unfinished
                    end: true
                """
            }
        )
    )
    assert (p.file, p.line, p.column, p.severity) == ("main.yaml", 7, 1, "error")
    assert "invalid YAML" in p.message
    assert "starts at line 5, column 10" in p.message


def test_colon_inside_unquoted_text_suggests_quotes(check):
    p = only(
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    say: Note: bring your passport
                    end: true
                """
            }
        )
    )
    assert (p.line, p.column) == (5, 14)
    assert "must be put in quotes" in p.message


def test_tab_indentation_is_explained(check):
    p = only(check({"main.yaml": "flow: main\ntitle: T\nsteps:\n\ta:\n    end: true\n"}))
    assert (p.line, p.column) == (4, 1)
    assert "spaces, not tabs" in p.message


def test_duplicate_key_points_at_the_second_one(check):
    p = only(
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    say: Hello
                    say: Hi
                    end: true
                """
            }
        )
    )
    assert (p.line, p.column) == (6, 5)
    assert "duplicate key 'say' (first at line 5)" in p.message


def test_duplicate_step_name_is_a_duplicate_key(check):
    p = only(
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    end: true
                  a:
                    end: true
                """
            }
        )
    )
    assert (p.line, p.column) == (6, 3)
    assert "duplicate key 'a'" in p.message


def test_alias_is_refused_where_it_is_written(check):
    p = only(
        check(
            {
                "main.yaml": """\
                flow: main
                title: &greeting Hello
                steps:
                  a:
                    say: *greeting
                    end: true
                """
            }
        )
    )
    assert (p.line, p.column) == (5, 10)
    assert "alias '*greeting' refused" in p.message


@pytest.mark.parametrize(
    ("value", "column", "shown"),
    [
        ("!!python/object/apply:os.system [echo, hi]", 8, "!!python/object/apply:os.system"),
        ("!!python/name:os.system Hello", 8, "!!python/name:os.system"),
        ("!secret Hello", 8, "!secret"),
        ("!!binary aGVsbG8=", 8, "!!binary"),
    ],
)
def test_yaml_tags_are_refused(check, value, column, shown):
    found = check(
        {
            "main.yaml": f"""\
            flow: main
            title: {value}
            steps:
              a:
                end: true
            """
        }
    )
    tag = [p for p in found if "tags such as" in p.message]
    assert len(tag) == 1, found
    assert (tag[0].line, tag[0].column) == (2, column)
    assert f"'{shown}'" in tag[0].message


def test_merge_key_is_refused(check):
    p = only(
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    <<: {end: true}
                    end: true
                """
            }
        )
    )
    assert (p.line, p.column) == (5, 5)
    assert "merge keys" in p.message


def test_not_utf8_points_at_the_bad_byte(check):
    text = "flow: main\ntitle: T\nsteps:\n  a:\n    say: Café\n    end: true\n"
    p = only(check({"main.yaml": text.encode("latin-1")}))
    assert (p.file, p.line, p.column) == ("main.yaml", 5, 13)
    assert "not UTF-8" in p.message


def test_utf8_byte_order_mark_is_fine(check):
    text = "flow: main\ntitle: Тема\nsteps:\n  a:\n    end: true\n"
    assert check({"main.yaml": "\ufeff".encode() + text.encode()}) == []


def test_empty_flow_file(check):
    p = only(check({"main.yaml": "# nothing yet\n"}))
    assert (p.file, p.line, p.column) == ("main.yaml", 1, 1)
    assert "empty" in p.message


def test_flow_file_that_is_not_a_mapping(check):
    p = only(check({"main.yaml": "- flow: main\n"}))
    assert (p.line, p.column) == (1, 1)
    assert "must be a mapping" in p.message


# ----------------------------------------------------------------------------- schema level


@pytest.mark.parametrize(
    ("yaml_text", "line", "column", "message"),
    [
        pytest.param(
            """\
            flow: main
            titel: T
            steps:
              a:
                end: true
            """,
            2,
            1,
            "unknown key 'titel' in the file; did you mean 'title'?",
            id="file",
        ),
        pytest.param(
            """\
            flow: main
            title: T
            steps:
              a:
                sya: Hello
                end: true
            """,
            5,
            5,
            "unknown key 'sya' in step 'a'; did you mean 'say'?",
            id="step",
        ),
        pytest.param(
            """\
            flow: main
            title: T
            steps:
              a:
                choices:
                  - label: Go
                    gotoo: b
              b:
                end: true
            """,
            7,
            9,
            "unknown key 'gotoo' in step 'a', choice 1; did you mean 'goto'?",
            id="choice",
        ),
        pytest.param(
            """\
            flow: main
            title: T
            steps:
              a:
                input: {save: name, type: text, min_lenght: 3}
                goto: b
              b:
                end: true
            """,
            5,
            37,
            "unknown key 'min_lenght' in step 'a', input; did you mean 'min_length'?",
            id="input",
        ),
        pytest.param(
            """\
            flow: main
            title: T
            steps:
              a:
                handover: {queue: lawyers, sya: Wait}
            """,
            5,
            32,
            "unknown key 'sya' in step 'a', handover; did you mean 'say'?",
            id="handover",
        ),
    ],
)
def test_unknown_key_with_did_you_mean(check, yaml_text, line, column, message):
    # One error only: the misspelt required key is not also reported as missing.
    p = only(check({"main.yaml": yaml_text}))
    assert (p.line, p.column, p.severity) == (line, column, "error")
    assert message in p.message


def test_unknown_key_far_from_any_lists_the_allowed_ones(check):
    p = only(
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    xyzzy: 1
                    end: true
                """
            }
        )
    )
    assert (p.line, p.column) == (5, 5)
    assert "unknown key 'xyzzy' in step 'a'; allowed here: say, choices" in p.message


@pytest.mark.parametrize(
    ("yaml_text", "line", "column", "message"),
    [
        pytest.param(
            """\
            flow: main
            steps:
              a:
                end: true
            """,
            1,
            1,
            "the file is missing the required key 'title'",
            id="title",
        ),
        pytest.param(
            """\
            flow: main
            title: T
            steps:
              a:
                choices:
                  - label: Go
              b:
                end: true
            """,
            6,
            9,
            "step 'a', choice 1 is missing the required key 'goto'",
            id="choice-goto",
        ),
        pytest.param(
            """\
            flow: main
            title: T
            steps:
              a:
                input:
                  type: text
                goto: b
              b:
                end: true
            """,
            6,
            7,
            "step 'a', input is missing the required key 'save'",
            id="input-save",
        ),
        pytest.param(
            """\
            flow: main
            title: T
            steps:
              a:
                handover: {say: Wait}
            """,
            5,
            15,
            "step 'a', handover is missing the required key 'queue'",
            id="handover-queue",
        ),
    ],
)
def test_missing_required_key(check, yaml_text, line, column, message):
    p = only(check({"main.yaml": yaml_text}))
    assert (p.line, p.column) == (line, column)
    assert message in p.message


def test_flow_file_without_steps_is_one_error_and_others_may_still_name_it(check):
    found = check(
        {
            "main.yaml": """\
            flow: main
            title: T
            steps:
              a:
                call: sub
                goto: b
              b:
                end: true
            """,
            "sub.yaml": """\
            flow: sub
            title: S
            step:
              start:
                end: true
            """,
        }
    )
    p = only(found)
    assert (p.file, p.line, p.column) == ("sub.yaml", 3, 1)
    assert "unknown key 'step' in the file; did you mean 'steps'?" in p.message


@pytest.mark.parametrize(
    ("line_text", "column", "message"),
    [
        (
            "title: yes",
            8,
            'title: YAML read `yes` as the boolean true, not as text; put it in quotes: "yes"',
        ),
        ("title: On", 8, "YAML read `On` as the boolean true"),
        ("title: 1.10", 8, "YAML read `1.10` as the number 1.1"),
        ("title: 2024-01-02", 8, "YAML read `2024-01-02` as a date"),
    ],
)
def test_plain_scalar_that_yaml_does_not_read_as_text(check, line_text, column, message):
    p = only(check({"main.yaml": f"flow: main\n{line_text}\nsteps:\n  a:\n    end: true\n"}))
    assert (p.line, p.column) == (2, column)
    assert message in p.message


def test_yes_no_on_as_values_of_a_step(check):
    found = check(
        {
            "main.yaml": """\
            flow: main
            title: T
            steps:
              a:
                say: no
                choices:
                  - label: on
                    goto: b
                  - label: "off"
                    goto: b
              b:
                end: true
            """
        }
    )
    assert [(p.line, p.column) for p in found] == [(5, 10), (7, 16)], found
    assert "step 'a', say: YAML read `no` as the boolean false; put it in quotes: \"no\"" in (
        found[0].message.replace(", not as text", "")
    )
    assert "step 'a', choice 1, label: YAML read `on` as the boolean true" in found[1].message


def test_yes_no_inside_a_language_map(check):
    found = check(
        {
            "bot.yaml": TWO_LANGUAGES,
            "main.yaml": """\
            flow: main
            title: {ru: Да, en: yes}
            steps:
              a:
                say:
                  ru: Нет
                  en: no
                end: true
            """,
        }
    )
    assert [(p.line, p.column) for p in found] == [(2, 21), (7, 11)], found
    assert (
        'title, en: YAML read `yes` as the boolean true, not as text; put it in quotes: "yes"'
        in (found[0].message)
    )
    assert "step 'a', say, en: YAML read `no` as the boolean false" in found[1].message


def test_bad_language_code_in_a_text_map(check):
    p = only(
        check(
            {
                "bot.yaml": TWO_LANGUAGES,
                "main.yaml": """\
                flow: main
                title: {ru: Тема, en: Topic}
                steps:
                  a:
                    say: {ru: Привет, EN: Hello}
                    end: true
                """,
            }
        )
    )
    # One error: not also "missing translation 'en'", nor "not a language code".
    assert (p.line, p.column) == (5, 23)
    assert "language 'EN' is not in bot.yaml languages (ru, en); did you mean 'en'?" in p.message


def test_unknown_input_type_with_did_you_mean(check):
    p = only(
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    input: {save: age, type: integr}
                    goto: b
                  b:
                    end: true
                """
            }
        )
    )
    assert (p.line, p.column) == (5, 30)
    assert "step 'a', input, type: unknown value 'integr'; did you mean 'integer'?" in p.message


def test_bad_step_name(check):
    found = check(
        {
            "main.yaml": """\
            flow: main
            title: T
            steps:
              a:
                goto: Ask-Name
              Ask-Name:
                end: true
            """
        }
    )
    assert [(p.line, p.column) for p in found] == [(5, 11), (6, 3)], found
    assert "is not a step or FLOW.STEP target" in found[0].message
    assert "'Ask-Name' in steps is not a step name: use lower-case" in found[1].message


def test_start_names_a_missing_step(check):
    p = only(
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                start: bgein
                steps:
                  begin:
                    end: true
                """
            }
        )
    )
    assert (p.line, p.column) == (3, 8)
    assert "start: there is no step 'bgein'; did you mean 'begin'?" in p.message


@pytest.mark.parametrize(
    ("step", "line", "column", "message"),
    [
        ("goto: {x: 1}", 5, 11, "step 'a', goto must be text, not a mapping"),
        ("call: [sub]\n    goto: b", 5, 11, "step 'a', call must be text, not a list"),
        ("handover: {queue: 7}", 5, 23, "step 'a', handover, queue: YAML read `7` as the number 7"),
        ("end: false", 5, 10, "step 'a', end must be true"),
        (
            "input: {save: [x], type: text}\n    goto: b",
            5,
            19,
            "step 'a', input, save must be text, not a list",
        ),
        (
            "choices:\n      - label: x\n        set: [a]\n        goto: b",
            7,
            14,
            "step 'a', choice 1, set must be a mapping, not a list",
        ),
        (
            "end: true\n    document: {template: 1, name: x}",
            6,
            26,
            "template: YAML read `1` as the number 1",
        ),
    ],
)
def test_values_of_the_wrong_kind_are_one_error_each(check, step, line, column, message):
    yaml_text = f"flow: main\ntitle: T\nsteps:\n  a:\n    {step}\n  b:\n    end: true\n"
    found = [p for p in check({"main.yaml": yaml_text}) if "can never be reached" not in p.message]
    p = only(found)
    assert (p.line, p.column) == (line, column)
    assert message in p.message


def test_empty_step(check):
    p = only(check({"main.yaml": "flow: main\ntitle: T\nsteps:\n  a:\n    goto: b\n  b:\n"}))
    assert (p.line, p.column) == (6, 5)
    assert "step 'b' is empty" in p.message


def test_extra_way_after_input_and_goto_is_the_one_pointed_at(check):
    p = only(
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    input: {save: x, type: text}
                    goto: b
                    end: true
                  b:
                    end: true
                """
            }
        )
    )
    assert (p.line, p.column) == (7, 5)
    assert "(input, goto, end)" in p.message


def test_language_listed_twice_in_bot_yaml(check):
    p = only(
        check(
            {
                "bot.yaml": "languages: [en, en]\nmenu: {say: Hi, flows: [main]}\n",
                "main.yaml": "flow: main\ntitle: T\nsteps:\n  a:\n    end: true\n",
            }
        )
    )
    assert (p.file, p.line, p.column) == ("bot.yaml", 1, 17)
    assert "languages: 'en' is listed twice" in p.message


# ------------------------------------------------------------------------------- languages


def test_missing_translation(check):
    p = only(
        check(
            {
                "bot.yaml": TWO_LANGUAGES,
                "main.yaml": """\
                flow: main
                title: {ru: Тема, en: Topic}
                steps:
                  a:
                    say: {ru: Привет}
                    end: true
                """,
            }
        )
    )
    assert (p.line, p.column, p.severity) == (5, 10, "error")
    assert "step 'a', say: missing translation 'en'" in p.message


def test_language_not_in_bot_yaml(check):
    p = only(
        check(
            {
                "bot.yaml": TWO_LANGUAGES,
                "main.yaml": """\
                flow: main
                title: {ru: Тема, en: Topic}
                steps:
                  a:
                    say: {ru: Привет, en: Hello, eng: Hello}
                    end: true
                """,
            }
        )
    )
    assert (p.line, p.column) == (5, 34)
    assert "language 'eng' is not in bot.yaml languages (ru, en); did you mean 'en'?" in p.message


def test_match_language_not_in_bot_yaml(check):
    p = only(
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                match:
                  en: [summons]
                  de: [Vorladung]
                steps:
                  a:
                    end: true
                """
            }
        )
    )
    assert (p.line, p.column) == (5, 3)
    assert "match: language 'de' is not in bot.yaml languages" in p.message


def test_one_text_for_every_language_is_a_warning(check):
    p = only(
        check(
            {
                "bot.yaml": TWO_LANGUAGES,
                "main.yaml": """\
                flow: main
                title: {ru: Тема, en: Topic}
                steps:
                  a:
                    say: Hello
                    end: true
                """,
            }
        )
    )
    assert (p.line, p.column, p.severity) == (5, 10, "warning")
    assert "one text for every language" in p.message


# ------------------------------------------------------------------------------- step shape


def test_step_with_no_way_on(check):
    p = only(
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    say: Hello
                """
            }
        )
    )
    assert (p.line, p.column) == (4, 3)
    assert "step 'a' has no way on" in p.message


def test_step_doing_two_things(check):
    p = only(
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    say: Hello
                    goto: b
                    end: true
                  b:
                    end: true
                """
            }
        )
    )
    assert (p.line, p.column) == (7, 5)
    assert "step 'a' does more than one thing (goto, end)" in p.message


def test_input_without_goto(check):
    # b is only reached from the broken step: it is not also reported as unreachable.
    p = only(
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    input: {save: name, type: text}
                  b:
                    say: "Hello {name}"
                    end: true
                """
            }
        )
    )
    assert (p.line, p.column) == (5, 5)
    assert "step 'a': an input needs a `goto`" in p.message


def test_call_without_goto(check):
    # The called flow is not also reported as "can never be started".
    p = only(
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    call: sub
                """,
                "sub.yaml": """\
                flow: sub
                title: S
                steps:
                  start:
                    end: true
                """,
            }
        )
    )
    assert (p.file, p.line, p.column) == ("main.yaml", 5, 5)
    assert "step 'a': a call needs a `goto`" in p.message


def test_branch_without_else(check):
    p = only(
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    input: {save: age, type: integer}
                    goto: b
                  b:
                    branch:
                      - when: age >= 18
                        goto: c
                  c:
                    end: true
                """
            }
        )
    )
    assert (p.line, p.column) == (8, 5)
    assert "step 'b': the branch has no else" in p.message


def test_branch_else_that_is_not_last(check):
    p = only(
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    input: {save: age, type: integer}
                    goto: b
                  b:
                    branch:
                      - goto: c
                      - when: age >= 18
                        goto: c
                  c:
                    end: true
                """
            }
        )
    )
    assert (p.line, p.column) == (9, 9)
    assert "branch item 1 has no `when`, so it is the else" in p.message


@pytest.mark.parametrize(
    ("when", "column"),
    [
        ("age >= >= 18", 22),  # plain: the second >= is 7 characters in
        ('"age >= >= 18"', 23),  # quoted: one more for the quote
    ],
)
def test_syntax_error_in_when_points_at_its_column(check, when, column):
    p = only(
        check(
            {
                "main.yaml": f"""\
                flow: main
                title: T
                steps:
                  a:
                    input: {{save: age, type: integer}}
                    goto: b
                  b:
                    branch:
                      - when: {when}
                        goto: c
                      - goto: c
                  c:
                    end: true
                """
            }
        )
    )
    assert (p.line, p.column) == (9, column)
    assert "step 'b': condition `age >= >= 18`:" in p.message


def test_when_that_is_not_text(check):
    p = only(
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    branch:
                      - when: 18
                        goto: b
                      - goto: b
                  b:
                    end: true
                """
            }
        )
    )
    assert (p.line, p.column) == (6, 15)
    assert "YAML read `18` as the number 18" in p.message


def test_bad_regex_pattern(check):
    p = only(
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    input: {save: code, type: regex, pattern: "[0-9"}
                    goto: b
                  b:
                    end: true
                """
            }
        )
    )
    assert (p.line, p.column) == (5, 48)
    assert "step 'a': pattern: bad regular expression: unterminated character set" in p.message


def test_regex_without_pattern(check):
    p = only(
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    input: {save: code, type: regex}
                    goto: b
                  b:
                    end: true
                """
            }
        )
    )
    assert (p.line, p.column) == (5, 31)
    assert "a regex input needs `pattern`" in p.message


def test_one_of_without_options(check):
    p = only(
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    input:
                      save: pick
                      type: one_of
                    goto: b
                  b:
                    end: true
                """
            }
        )
    )
    assert (p.line, p.column) == (7, 13)
    assert "step 'a': a one_of input needs `options`" in p.message


def test_one_of_with_empty_options(check):
    p = only(
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    input: {save: pick, type: one_of, options: []}
                    goto: b
                  b:
                    end: true
                """
            }
        )
    )
    assert (p.line, p.column) == (5, 48)
    assert "step 'a', input, options must not be empty" in p.message


def test_placeholder_that_is_not_a_name(check):
    p = only(
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    say: "Hello {full name}"
                    end: true
                """
            }
        )
    )
    assert (p.line, p.column) == (5, 10)
    assert "'{full name}' is not a saved answer's name" in p.message


# ------------------------------------------------------------------------------ folder level


def test_duplicate_flow_ids_across_two_files(check):
    step = "steps:\n  a:\n    end: true\n"
    p = only(
        check(
            {
                "main.yaml": "flow: main\ntitle: T\n" + step,
                "other.yaml": "flow: main\ntitle: T\n" + step,
            }
        )
    )
    assert (p.file, p.line, p.column) == ("other.yaml", 1, 7)
    assert "duplicate flow id 'main': " in p.message
    assert "main.yaml already defines it" in p.message


def test_flow_id_that_differs_from_the_file_name_is_a_warning(check):
    p = only(
        check(
            {
                "main.yaml": "flow: main\ntitle: T\nsteps:\n  a:\n    end: true\n",
                "extra.yaml": "flow: other\ntitle: T\nmatch: {en: [x]}\n"
                "steps:\n  a:\n    end: true\n",
            }
        )
    )
    assert (p.file, p.line, p.column, p.severity) == ("extra.yaml", 1, 7, "warning")
    assert "flow id 'other' differs from the file name 'extra.yaml'" in p.message


def test_bot_yaml_missing(check):
    # One error: without bot.yaml nobody knows the menu or the languages, so the flows are
    # neither "never started" nor "one text for every language".
    p = only(
        check(
            {
                "bot.yaml": None,
                "main.yaml": "flow: main\ntitle: T\nsteps:\n  a:\n    end: true\n",
            }
        )
    )
    assert (p.file, p.line, p.column) == ("bot.yaml", 1, 1)
    assert "bot.yaml is missing" in p.message


def test_bot_yaml_unknown_key_and_text_key(check):
    found = check(
        {
            "bot.yaml": """\
            languages: [en]
            menu:
              say: Hello
              flows: [main]
            text:
              not_understod: Sorry
            """,
            "main.yaml": "flow: main\ntitle: T\nsteps:\n  a:\n    end: true\n",
        }
    )
    p = only(found)
    assert (p.file, p.line, p.column) == ("bot.yaml", 5, 1)
    assert "unknown key 'text' in the file; did you mean 'texts'?" in p.message


def test_bot_yaml_unknown_engine_text(check):
    p = only(
        check(
            {
                "bot.yaml": "languages: [en]\nmenu: {say: Hi, flows: [main]}\n"
                "texts:\n  not_understod: Sorry\n",
                "main.yaml": "flow: main\ntitle: T\nsteps:\n  a:\n    end: true\n",
            }
        )
    )
    assert (p.file, p.line, p.column) == ("bot.yaml", 4, 3)
    assert "unknown key 'not_understod' in texts; did you mean 'not_understood'?" in p.message


def test_empty_folder(tmp_path):
    folder = tmp_path / "flows"
    folder.mkdir()
    flows, report = load_folder(folder)
    assert flows is None
    [d] = report.sorted()
    assert d.severity.value == "error"
    assert "no bot.yaml and no flow files" in d.message


def test_folder_with_bot_yaml_only(check):
    folder_error, menu_error = check({})
    assert folder_error.file == "flows"
    assert "the folder has no flow files" in folder_error.message
    assert (menu_error.file, menu_error.line, menu_error.column) == ("bot.yaml", 4, 11)
    assert "menu.flows[0]: there is no flow 'main'" in menu_error.message


def test_no_such_folder(tmp_path):
    flows, report = load_folder(tmp_path / "nowhere")
    assert flows is None
    assert "no such folder" in report.sorted()[0].message


def test_file_larger_than_the_limit_is_refused_unread(check):
    big = "flow: main\ntitle: T\n# " + "x" * MAX_FILE_BYTES + "\n"
    p = only(check({"main.yaml": big}))
    assert (p.file, p.line, p.column) == ("main.yaml", 1, 1)
    assert "file larger than" in p.message


def test_billion_laughs_is_refused_quickly_with_a_short_report(check):
    lines = ["flow: main", "title: T", 'l0: &l0 ["lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):
        lines.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 9) + "]")
    lines += ["steps:", "  a:", "    say: *l9", "    end: true"]
    found = check({"main.yaml": "\n".join(lines) + "\n"})
    aliases = [p for p in found if "alias" in p.message]
    # Five aliases named one by one, then one line for the other 77.
    assert len(aliases) == yamlsafe.MAX_ALIAS_REPORTS + 1
    assert (aliases[0].line, aliases[0].column) == (4, 10)
    assert "77 more aliases from here on" in aliases[-1].message
    # The anchors themselves are unknown keys of the file, one error each.
    assert all("unknown key" in p.message for p in found if p not in aliases)


def test_many_values_stop_the_reading_at_the_cap(check, monkeypatch):
    # The cap stops the parser as soon as it is crossed: the problem is reported near the
    # start of the list, so the rest of a huge file is never even parsed.
    monkeypatch.setattr(yamlsafe, "MAX_NODES", 1000)
    text = "flow: main\ntitle: T\nmatch:\n  en: [" + ", ".join(["a"] * 100_000) + "]\n"
    p = only(check({"main.yaml": text}))
    assert p.line == 4
    assert p.column < 3100
    assert "file too large: more than 1000 values" in p.message


def test_deep_nesting_is_refused(check):
    text = "flow: main\ntitle: " + "[" * 200 + "]" * 200 + "\n"
    p = only(check({"main.yaml": text}))
    assert p.line == 2
    assert "nested too deeply" in p.message


def test_every_problem_of_a_folder_in_one_run(check):
    found = check(
        {
            "main.yaml": """\
            flow: main
            title: T
            steps:
              a:
                sya: Hello
                choices:
                  - label: Next
                    goto: b
                  - label: Lawyer
                    goto: lawyer
              b:
                input: {save: age, type: integr}
                goto: c
              c:
                say: "You are {age}"
                end: true
              lawyer:
                handover: {queue: lawyer}
            """,
            "other.yaml": """\
            flow: other
            title: T
            match: {en: [other]}
            steps:
              start:
                say: Hi
                say: Hi again
                end: true
            """,
            "broken.yaml": "flow: broken\ntitle: 'oops\n",
        }
    )
    assert [(p.file, p.line) for p in found] == [
        ("broken.yaml", 3),
        ("main.yaml", 5),
        ("main.yaml", 12),
        ("main.yaml", 18),
        ("other.yaml", 7),
    ], "\n".join(map(str, found))
    assert all(p.severity == "error" for p in found)


def test_diagnostic_prints_as_file_line_column(flows):
    folder = flows(
        {"main.yaml": "flow: main\ntitle: T\nsteps:\n  a:\n    sya: Hi\n    end: true\n"}
    )
    _, report = load_folder(folder)
    [d] = report.sorted()
    assert str(d).endswith(
        "main.yaml:5:5: error: unknown key 'sya' in step 'a'; did you mean 'say'?"
    )


def test_fast_schema_check_agrees_with_jsonschema_on_shipped_flows():
    from engine.schemacheck import quick_valid

    for path in sorted((REPO / "flows").glob("*.yaml")):
        if path.name == "bot.yaml":
            continue
        document, _ = yamlsafe.load_yaml(path.read_text(encoding="utf-8"))
        assert quick_valid("flow", document), path


# ------------------------------------------------------------------------ the command line


def _hotline(*args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("hotline")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "adapters.cli"]
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=60, cwd=REPO, env=env
    )


def test_cli_check_of_a_broken_folder_exits_1_and_prints_file_line_col(flows):
    folder = flows(
        {
            "main.yaml": """\
            flow: main
            title: T
            steps:
              a:
                sya: Hello
                goto: nxt
              next:
                end: true
            """
        }
    )
    result = _hotline("check", str(folder))
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines == [
        f"{folder / 'main.yaml'}:5:5: error: unknown key 'sya' in step 'a'; did you mean 'say'?",
        f"{folder / 'main.yaml'}:6:11: error: step 'a': goto 'nxt': there is no step 'nxt'; "
        "did you mean 'next'?",
    ]
    assert "2 error(s)" in result.stderr


def test_cli_check_of_the_shipped_flows_exits_0():
    result = _hotline("check", "flows")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("ok: ")
