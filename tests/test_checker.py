"""The checker: rules over the whole folder (targets, calls, reachability, loops, data flow).

As in test_loader.py, each test pins file, line, column and message, and most pin that the
mistake gives exactly one diagnostic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.loader import load_folder, read_folder
from engine.model import StepKind

SUB = """\
flow: sub
title: Contacts
steps:
  start:
    input: {save: phone, type: phone}
    goto: done
  done:
    end: true
"""


def only(found: list[Any]) -> Any:
    assert len(found) == 1, "\n".join(map(str, found))
    return found[0]


# ---------------------------------------------------------------------------------- targets


def test_missing_target_in_the_same_flow(check):
    # The step it meant is not also reported as unreachable.
    p = only(
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    choices:
                      - label: Finish
                        goto: fnish
                  finish:
                    end: true
                """
            }
        )
    )
    assert (p.file, p.line, p.column, p.severity) == ("main.yaml", 7, 15, "error")
    assert "step 'a': goto 'fnish': there is no step 'fnish'; did you mean 'finish'?" in p.message


def test_missing_step_in_another_flow(check):
    # ... and the other flow is not also reported as "can never be started".
    p = only(
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    goto: sub.strat
                """,
                "sub.yaml": SUB,
            }
        )
    )
    assert (p.line, p.column) == (5, 11)
    assert (
        "step 'a': goto 'sub.strat': there is no step 'strat' in flow 'sub'; did you mean 'start'?"
        in p.message
    )


def test_goto_into_an_unknown_flow(check):
    p = only(
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    goto: sbu.start
                """,
                "sub.yaml": SUB,
            }
        )
    )
    assert (p.line, p.column) == (5, 11)
    assert "step 'a': goto 'sbu.start': there is no flow 'sbu'; did you mean 'sub'?" in p.message


def test_missing_target_of_a_branch_arm(check):
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
                        goto: adult
                      - goto: chlid
                  adult:
                    end: true
                  child:
                    end: true
                """
            }
        )
    )
    assert (p.line, p.column) == (11, 15)
    assert "goto 'chlid': there is no step 'chlid'; did you mean 'child'?" in p.message


def test_goto_a_flow_jump_that_exists_is_fine(check):
    assert (
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    goto: sub.start
                """,
                "sub.yaml": SUB,
            }
        )
        == []
    )


def test_target_into_a_file_that_could_not_be_read_is_not_reported(check):
    p = only(
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    goto: sub.start
                """,
                "sub.yaml": "flow: sub\ntitle: 'oops\n",
            }
        )
    )
    assert p.file == "sub.yaml"
    assert "invalid YAML" in p.message


# -------------------------------------------------------------------------------------- calls


def test_call_of_an_unknown_flow(check):
    p = only(
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    call: sbu
                    goto: b
                  b:
                    end: true
                """,
                "sub.yaml": SUB,
            }
        )
    )
    assert (p.line, p.column) == (5, 11)
    assert "step 'a': call: there is no flow 'sbu'; did you mean 'sub'?" in p.message


def test_called_flow_that_never_ends(check):
    # The call's goto is not also reported as unreachable.
    p = only(
        check(
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
                steps:
                  start:
                    handover: {queue: lawyers}
                """,
            }
        )
    )
    assert (p.file, p.line, p.column) == ("main.yaml", 5, 11)
    assert "step 'a': flow 'sub' never reaches an `end: true`" in p.message


def test_unknown_queue(check):
    p = only(
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    handover: {queue: lawyer, say: Wait}
                """
            }
        )
    )
    assert (p.line, p.column) == (5, 23)
    assert "step 'a': queue 'lawyer' is not declared under `handover:` in bot.yaml" in p.message
    assert "did you mean 'lawyers'?" in p.message


def test_unknown_menu_flow(check):
    p = only(
        check(
            {
                "bot.yaml": "languages: [en]\nmenu:\n  say: Hi\n  flows: [main, sbu]\n",
                "main.yaml": "flow: main\ntitle: T\nsteps:\n  a:\n    call: sub\n    goto: b\n"
                "  b:\n    end: true\n",
                "sub.yaml": SUB,
            }
        )
    )
    assert (p.file, p.line, p.column) == ("bot.yaml", 4, 17)
    assert "menu.flows[1]: there is no flow 'sbu'; did you mean 'sub'?" in p.message


def test_menu_flow_whose_file_could_not_be_read_is_not_reported_twice(check):
    p = only(check({"main.yaml": "flow: main\ntitle: T\nsteps:\n  a: [\n"}))
    assert p.file == "main.yaml"


# ------------------------------------------------------------------------------ reachability


def test_unreachable_step(check):
    p = only(
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    end: true
                  forgotten:
                    say: Nobody comes here
                    end: true
                """
            }
        )
    )
    assert (p.line, p.column) == (6, 3)
    assert "step 'forgotten' can never be reached" in p.message


def test_flow_that_can_never_be_started_is_a_warning_not_an_error(flows):
    folder = flows(
        {
            "main.yaml": "flow: main\ntitle: T\nsteps:\n  a:\n    end: true\n",
            "orphan.yaml": "flow: orphan\ntitle: T\nsteps:\n  a:\n    end: true\n",
        }
    )
    flow_set, report = load_folder(folder)
    assert flow_set is not None  # a warning does not stop the bot from loading the folder
    [d] = report.sorted()
    assert (Path(d.file).name, d.position.line, d.position.column) == ("orphan.yaml", 1, 7)
    assert d.severity.value == "warning"
    assert "flow 'orphan' can never be started" in d.message


def test_flows_started_by_match_phrases_or_lawyer_are_startable(check):
    assert (
        check(
            {
                "main.yaml": "flow: main\ntitle: T\nsteps:\n  a:\n    end: true\n",
                "faq.yaml": "flow: faq\ntitle: F\nmatch: {en: [question]}\nsteps:\n  a:\n"
                "    end: true\n",
                "lawyer.yaml": "flow: lawyer\ntitle: L\nsteps:\n  a:\n"
                "    handover: {queue: lawyers}\n",
            }
        )
        == []
    )


# -------------------------------------------------------------------------------------- loops


def test_goto_cycle_with_no_way_out_is_one_error(check):
    p = only(
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    choices:
                      - label: Loop
                        goto: b
                      - label: Done
                        goto: done
                  b:
                    say: Round
                    goto: c
                  c:
                    say: and round
                    goto: b
                  done:
                    end: true
                """
            }
        )
    )
    assert (p.line, p.column) == (10, 3)
    assert "step 'b' leads into a loop that can never reach an `end: true` or a handover" in (
        p.message
    )
    assert "(steps 'b', 'c')" in p.message


def test_choices_cycle_with_no_exit_is_one_error(check):
    p = only(
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    say: Ping?
                    choices:
                      - label: Pong
                        goto: b
                  b:
                    say: Pong?
                    choices:
                      - label: Ping
                        goto: a
                      - label: Again
                        goto: b
                """
            }
        )
    )
    assert (p.line, p.column) == (4, 3)
    assert "step 'a' leads into a loop" in p.message


def test_loop_with_a_way_out_is_fine(check):
    assert (
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    say: Again?
                    choices:
                      - label: Again
                        goto: a
                      - label: Lawyer
                        goto: human
                  human:
                    handover: {queue: lawyers}
                """
            }
        )
        == []
    )


# ---------------------------------------------------------------------------------- data flow


def test_var_saved_on_only_one_branch_of_a_choice(check):
    p = only(
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    choices:
                      - label: Mobilisation
                        set: {kind: mobilisation}
                        goto: b
                      - label: Other
                        goto: b
                  b:
                    say: "Your summons: {kind}"
                    end: true
                """
            }
        )
    )
    assert (p.line, p.column) == (12, 10)
    assert "step 'b': 'kind' may not be saved yet: a path reaches this step without saving it" in (
        p.message
    )
    assert "when coming from step 'a'" in p.message


def test_var_saved_on_every_path_is_not_reported(check):
    assert (
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    choices:
                      - label: Mobilisation
                        set: {kind: mobilisation}
                        goto: b
                      - label: Other
                        goto: ask
                  ask:
                    input: {save: kind, type: text}
                    goto: b
                  b:
                    say: "Your summons: {kind}"
                    end: true
                """
            }
        )
        == []
    )


def test_var_saved_by_a_called_flow_before_it_returns_is_not_reported(check):
    assert (
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    call: sub
                    goto: b
                  b:
                    say: "We will call {phone}"
                    end: true
                """,
                "sub.yaml": SUB,
            }
        )
        == []
    )


def test_var_saved_by_a_called_flow_on_one_path_only(check):
    p = only(
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    call: sub
                    goto: b
                  b:
                    say: "We will call {phone}"
                    end: true
                """,
                "sub.yaml": """\
                flow: sub
                title: Contacts
                steps:
                  start:
                    choices:
                      - label: Leave a number
                        goto: phone
                      - label: "No"
                        goto: done
                  phone:
                    input: {save: phone, type: phone}
                    goto: done
                  done:
                    end: true
                """,
            }
        )
    )
    assert (p.file, p.line, p.column) == ("main.yaml", 8, 10)
    assert "'phone' may not be saved yet" in p.message
    assert "when coming from step 'sub.done'" in p.message


def test_var_saved_by_the_caller_used_in_the_callee_is_not_reported(check):
    assert (
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    input: {save: name, type: text}
                    goto: b
                  b:
                    call: greet
                    goto: c
                  c:
                    say: "Bye {name}"
                    end: true
                """,
                "greet.yaml": """\
                flow: greet
                title: G
                steps:
                  start:
                    say: "Hello {name}"
                    end: true
                """,
            }
        )
        == []
    )


def test_callee_using_a_var_that_one_caller_has_not_saved(check):
    p = only(
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    choices:
                      - label: Named
                        goto: ask
                      - label: Anonymous
                        goto: b
                  ask:
                    input: {save: name, type: text}
                    goto: b
                  b:
                    call: greet
                    goto: c
                  c:
                    end: true
                """,
                "greet.yaml": """\
                flow: greet
                title: G
                steps:
                  start:
                    say: "Hello {name}"
                    end: true
                """,
            }
        )
    )
    assert (p.file, p.line, p.column) == ("greet.yaml", 5, 10)
    assert "step 'start': 'name' may not be saved yet" in p.message
    assert "when coming from step 'main.b'" in p.message


def test_callee_in_the_menu_cannot_rely_on_its_callers(check):
    p = only(
        check(
            {
                "bot.yaml": "languages: [en]\nmenu: {say: Hi, flows: [main, greet]}\n",
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    input: {save: name, type: text}
                    goto: b
                  b:
                    call: greet
                    goto: c
                  c:
                    end: true
                """,
                "greet.yaml": """\
                flow: greet
                title: G
                steps:
                  start:
                    say: "Hello {name}"
                    end: true
                """,
            }
        )
    )
    assert (p.file, p.line) == ("greet.yaml", 5)
    assert "when the flow starts here" in p.message


def test_caller_answers_survive_the_call(check):
    # Saved before the call, used after it: the return keeps the caller's answers even
    # though the callee is also called from elsewhere without them.
    assert (
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    choices:
                      - label: One
                        goto: ask
                      - label: Two
                        goto: plain
                  ask:
                    input: {save: name, type: text}
                    goto: b
                  b:
                    call: sub
                    goto: c
                  c:
                    say: "Thanks {name}, we have {phone}"
                    end: true
                  plain:
                    call: sub
                    goto: d
                  d:
                    end: true
                """,
                "sub.yaml": SUB,
            }
        )
        == []
    )


def test_var_used_in_a_when_never_saved_with_did_you_mean(check):
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
                      - when: age >= 18 and agee < 30
                        goto: c
                      - goto: c
                  c:
                    end: true
                """
            }
        )
    )
    # The column of `agee` itself, inside the condition.
    assert (p.line, p.column) == (9, 29)
    assert "step 'b': 'agee' is never saved by any input or choice; did you mean 'age'?" in (
        p.message
    )


def test_when_variable_saved_on_one_path_only(check):
    p = only(
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    choices:
                      - label: Tell my age
                        goto: ask
                      - label: Skip
                        goto: b
                  ask:
                    input: {save: age, type: integer}
                    goto: b
                  b:
                    branch:
                      - when: "age >= 18"
                        goto: c
                      - goto: c
                  c:
                    end: true
                """
            }
        )
    )
    assert (p.line, p.column) == (15, 16)
    assert "step 'b': 'age' may not be saved yet" in p.message


def test_var_never_saved_in_a_text(check):
    p = only(
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    input: {save: full_name, type: text}
                    goto: b
                  b:
                    say: "Hello {fullname}"
                    end: true
                """
            }
        )
    )
    assert (p.line, p.column) == (8, 10)
    assert "'fullname' is never saved by any input or choice; did you mean 'full_name'?" in (
        p.message
    )


# ------------------------------------------------------------------------------- cascades


def test_broken_step_does_not_make_its_targets_unreachable(check):
    p = only(
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    say: Hi
                    goto: b
                    end: true
                  b:
                    end: true
                """,
            }
        )
    )
    assert (p.line, p.column) == (7, 5)
    assert "does more than one thing" in p.message


def test_broken_flow_does_not_leave_its_targets_in_other_flows_unreachable(check):
    p = only(
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    choices:
                      - label: x
                        goto: sub.start
                    goto: sub.start
                """,
                "sub.yaml": SUB,
            }
        )
    )
    assert p.file == "main.yaml"


def test_call_into_a_broken_flow_reports_only_the_broken_flow(check):
    p = only(
        check(
            {
                "main.yaml": """\
                flow: main
                title: T
                steps:
                  a:
                    call: sub
                    goto: b
                  b:
                    say: "We will call {phone}"
                    end: true
                """,
                "sub.yaml": SUB.replace("goto: done", "goto: done\n    end: true"),
            }
        )
    )
    # Its start step cannot be loaded, so the call never "comes back" either, but that,
    # and whether it saves `phone`, are for after the fix.
    assert (p.file, p.line, p.column) == ("sub.yaml", 7, 5)
    assert "step 'start' does more than one thing" in p.message


def test_read_folder_of_a_broken_folder_still_gives_a_model(flows):
    folder = flows(
        {
            "main.yaml": """\
            flow: main
            title: T
            steps:
              a:
                sya: Hi
                goto: b
              b:
                end: true
            """
        }
    )
    loaded = read_folder(folder)
    assert not loaded.report.ok
    flow = loaded.flow_set().flows["main"]
    assert flow.steps["b"].kind is StepKind.END


# ------------------------------------------------------------------------------------ scale


def _big_folder(folder: Path, flows: int, steps: int) -> None:
    """`flows` flows of `steps` steps each: choices, inputs, branches and texts using them."""
    folder.mkdir(parents=True)
    ids = [f"f{i}" for i in range(flows)]
    (folder / "bot.yaml").write_text(
        "languages: [ru, en]\nmenu:\n  say: {ru: Привет, en: Hello}\n"
        f"  flows: [{', '.join(ids)}]\nhandover:\n  lawyers: {{ru: Юристы, en: Lawyers}}\n",
        encoding="utf-8",
    )
    for flow in ids:
        lines = [f"flow: {flow}", f"title: {{ru: Тема {flow}, en: Topic {flow}}}", "steps:"]
        for s in range(steps):
            nxt = f"s{s + 1}" if s + 1 < steps else "done"
            lines.append(f"  s{s}:")
            kind = s % 4
            if kind == 0:
                lines += [
                    f"    say: {{ru: 'Вопрос {s}?', en: 'Question {s}?'}}",
                    "    choices:",
                    "      - label: {ru: Да, en: 'Yes'}",
                    f"        set: {{v{s}: a}}",
                    f"        goto: {nxt}",
                    "      - label: {ru: Юрист, en: Lawyer}",
                    "        goto: human",
                ]
            elif kind == 1:
                lines += [
                    f"    say: {{ru: 'Имя {s}?', en: 'Name {s}?'}}",
                    f"    input: {{save: a{s}, type: text, min_length: 2}}",
                    f"    goto: {nxt}",
                ]
            elif kind == 2:
                lines += [
                    "    branch:",
                    f"      - when: len(a{s - 1}) > 3 and v{s - 2} == 'a'",
                    f"        goto: {nxt}",
                    f"      - goto: {nxt}",
                ]
            else:
                lines += [
                    f"    say: {{ru: 'Спасибо, {{a{s - 2}}}', en: 'Thanks, {{a{s - 2}}}'}}",
                    f"    goto: {nxt}",
                ]
        lines += [
            "  human:",
            "    handover: {queue: lawyers}",
            "  done:",
            "    say: {ru: Всё, en: Done}",
            "    end: true",
        ]
        (folder / f"{flow}.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_a_large_generated_folder_loads_clean(tmp_path):
    # Correctness at scale: every path saves what it uses, so nothing is reported. How fast
    # a folder of 2,000 steps loads is measured outside the test suite.
    folder = tmp_path / "big"
    _big_folder(folder, flows=10, steps=60)
    flow_set, report = load_folder(folder)
    assert [str(d) for d in report.sorted()] == []
    assert flow_set is not None
    assert sum(len(flow.steps) for flow in flow_set.flows.values()) == 10 * 62


def test_two_flows_claiming_the_same_match_phrase_is_a_warning(check):
    problems = check(
        {
            "main.yaml": """\
            flow: main
            title: T
            match: {en: [summons, draft notice]}
            steps:
              a: {say: Hi, end: true}
            """,
            "other.yaml": """\
            flow: other
            title: O
            match: {en: [Summons!, army]}
            steps:
              a: {say: Hi, end: true}
            """,
        }
    )
    (p,) = [p for p in problems if "match" in p.message]
    assert (p.file, p.line, p.severity) == ("other.yaml", 3, "warning")
    assert "'Summons!' reads the same as 'summons' of flow 'main'" in p.message
