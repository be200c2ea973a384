"""`hotline transcripts generate`: the fewest transcripts that cover the flows, replaying green."""

from __future__ import annotations

import datetime as dt
import io
import os
import subprocess
import sys
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import yaml

from adapters.cli import main
from engine.inputs import Refused, read_answer
from engine.loader import load_folder
from engine.model import FlowSet, InputSpec, InputType, StepKind
from engine.transcripts import load_transcript
from engine.transcripts.generate import (
    born_at_age,
    distinctive_texts,
    generate_transcripts,
    invalid_sample,
    regex_example,
    replay_generated,
    short_text,
)
from engine.transcripts.recording import flows_relative_to

ROOT = Path(__file__).resolve().parent.parent
SEMANTICS = ROOT / "tests" / "data" / "semantics"
FLOWS = ROOT / "flows"
NOW = dt.datetime(2026, 3, 1, 12, 0)
# Measured: 18 for flows/ in either language (the hand-written set has 29 per language).
MOST_FOR_FLOWS = 18


def hotline(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def load(folder: Path) -> FlowSet:
    flows, report = load_folder(folder)
    assert flows is not None, report.sorted()
    return flows


def steps_of(folder: Path) -> list[list[dict]]:
    return [
        yaml.safe_load(path.read_text(encoding="utf-8"))["steps"]
        for path in sorted(folder.glob("*.yaml"))
    ]


def invalid_texts(flows: FlowSet, language: str) -> dict[tuple[str, str], str]:
    """Per input step, the text its refused answers get."""
    texts = flows.bot.texts
    found = {}
    for flow in flows.flows.values():
        for step in flow.steps.values():
            if step.kind is not StepKind.INPUT or step.input is None:
                continue
            if step.invalid is not None:
                text = step.invalid
            elif step.input.type is InputType.ONE_OF:
                text = texts["invalid_choice"]
            else:
                text = texts["invalid_input"]
            found[(flow.id, step.name)] = text.get(language, flows.bot.default_language)
    return found


# --------------------------------------------------------------------------- the small fixture


def test_the_semantics_fixture_is_covered_by_three_green_transcripts(tmp_path: Path) -> None:
    out = tmp_path / "generated"
    code, stdout, stderr = hotline(
        "transcripts", "generate", str(SEMANTICS), "-o", str(out), "--now", "2026-03-01"
    )
    assert code == 0, stderr
    assert stdout.splitlines()[-1] == "3 transcripts, steps 13/13, edges 5/5"
    assert sorted(p.name for p in out.iterdir()) == [
        "intake_1.yaml",
        "intake_2.yaml",
        "intake_3.yaml",
    ]

    flows = load(SEMANTICS)
    runs, coverage = replay_generated(flows, sorted(out.glob("*.yaml")))
    assert [run.message() for run in runs if not run.passed] == []
    assert coverage.lowest_percent == 100.0

    # Each file is an ordinary transcript: title, language, now, flows, /start first.
    transcript, report = load_transcript(out / "intake_1.yaml")
    assert transcript is not None, report.sorted()
    assert transcript.language == "en"
    assert transcript.now == NOW
    assert transcript.flows == SEMANTICS
    assert transcript.lines[0].text == "/start"


def test_both_age_arms_come_from_birth_dates_around_the_threshold(tmp_path: Path) -> None:
    flows = load(SEMANTICS)
    generation = generate_transcripts(flows, now=NOW, language="en")
    typed = [
        step["user"]
        for transcript in generation.transcripts
        for step in yaml.safe_load(transcript.text)["steps"]
        if "user" in step
    ]
    ages = set()
    for text in typed:
        answer = read_answer(InputSpec("d", InputType.DATE), text)
        if isinstance(answer, dt.date):
            age = NOW.year - answer.year - ((NOW.month, NOW.day) < (answer.month, answer.day))
            ages.add(age)
    assert any(age >= 30 for age in ages) and any(age < 30 for age in ages)
    # The over-30 answer sits just at the threshold, relative to --now.
    assert "31.01.1996" in typed


def test_an_invalid_answer_comes_once_per_input_step(tmp_path: Path) -> None:
    flows = load(SEMANTICS)
    generation = generate_transcripts(flows, now=NOW, language="en")
    bots = [
        step["bot"]
        for transcript in generation.transcripts
        for step in yaml.safe_load(transcript.text)["steps"]
        if "bot" in step
    ]
    expected = invalid_texts(flows, "en")

    def pinned(text: str) -> int:
        return sum(1 for bot in bots if bot and bot in text)

    # A step with its own `invalid:` text: exactly once.
    assert pinned(expected[("intake", "name")]) == 1
    # The default text: once for each input step that uses it (birth date, phone, children).
    default = flows.bot.texts["invalid_input"].get("en", "en")
    assert sorted(place for place, text in expected.items() if text == default) == [
        ("contact", "count"),
        ("contact", "phone"),
        ("intake", "born"),
    ]
    assert pinned(default) == 3
    assert pinned(expected[("contact", "colour")]) == 1  # one_of: a typed non-option


def test_the_same_now_gives_the_same_files_whatever_the_hash_seed(tmp_path: Path) -> None:
    here, there = tmp_path / "here", tmp_path / "there"
    args = ["transcripts", "generate", str(SEMANTICS), "--now", "2026-03-01", "-o"]
    assert hotline(*args, str(here))[0] == 0
    seed = "1" if os.environ.get("PYTHONHASHSEED") != "1" else "2"
    result = subprocess.run(
        [sys.executable, "-m", "adapters.cli", *args, str(there)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": seed},
    )
    assert result.returncode == 0, result.stderr

    def files(folder: Path) -> dict[str, str]:
        return {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.iterdir())}

    assert files(here) == files(there)


def test_existing_files_are_not_overwritten_without_force(tmp_path: Path) -> None:
    out = tmp_path / "generated"
    args = ("transcripts", "generate", str(SEMANTICS), "-o", str(out), "--now", "2026-03-01")
    assert hotline(*args)[0] == 0
    edited = out / "intake_2.yaml"
    edited.write_text("# reviewed by hand\n", encoding="utf-8")

    code, _, stderr = hotline(*args)
    assert code == 2
    assert f"{edited} exists; not overwritten (--force to replace)" in stderr
    assert edited.read_text(encoding="utf-8") == "# reviewed by hand\n"

    code, _, stderr = hotline(*args, "--force")
    assert code == 0, stderr
    assert edited.read_text(encoding="utf-8").startswith("transcript: ")


def test_without_back_every_transcript_is_a_straight_conversation(tmp_path: Path) -> None:
    out = tmp_path / "generated"
    code, stdout, stderr = hotline(
        "transcripts", "generate", str(SEMANTICS), "-o", str(out), "--now", "2026-03-01",
        "--no-back",
    )  # fmt: skip
    assert code == 0, stderr
    assert stdout.splitlines()[-1].endswith("steps 13/13, edges 5/5")
    assert all(step.get("user") != "/back" for steps in steps_of(out) for step in steps)


def test_bad_arguments(tmp_path: Path) -> None:
    base = ("transcripts", "generate", str(SEMANTICS), "-o", str(tmp_path / "x"))
    code, _, stderr = hotline(*base, "--lang", "de")
    assert code == 2 and "--lang de: this bot speaks en, ru" in stderr
    code, _, stderr = hotline(*base, "--now", "yesterday")
    assert code == 2 and "--now yesterday" in stderr
    assert not (tmp_path / "x").exists()


# --------------------------------------------------------------------------- the real flows


def test_flows_are_covered_by_few_green_transcripts(tmp_path: Path) -> None:
    out = tmp_path / "generated"
    code, stdout, stderr = hotline(
        "transcripts", "generate", str(FLOWS), "-o", str(out), "--lang", "ru", "--now", "2026-03-01"
    )
    assert code == 0, stderr
    count = len(list(out.glob("*.yaml")))
    assert count <= MOST_FOR_FLOWS
    flows = load(FLOWS)
    steps = sum(len(flow.steps) for flow in flows.flows.values())
    summary = stdout.splitlines()[-1]
    assert summary.startswith(f"{count} transcripts, steps {steps}/{steps}, edges ")
    edges = summary.rpartition(" ")[2]
    assert edges.split("/")[0] == edges.split("/")[1]
    assert "no generated conversation reaches" not in stderr

    # Every input step's invalid text is pinned exactly once over the whole set.
    bots = [step["bot"] for steps_ in steps_of(out) for step in steps_ if "bot" in step]
    for place, text in invalid_texts(flows, "ru").items():
        assert sum(1 for bot in bots if bot and bot in text) == 1, place
    # Documents show a typed answer; hand-overs are written down.
    documents = [s for steps_ in steps_of(out) for s in steps_ if "document" in s]
    assert documents and all(s.get("contains") == ["Иванов Иван Иванович"] for s in documents)
    assert any("handover" in s for steps_ in steps_of(out) for s in steps_)

    # The same --now again: the same files.
    again = generate_transcripts(
        flows, now=NOW, language="ru", flows_ref=flows_relative_to(FLOWS, out / "x.yaml")
    )
    assert {t.name: t.text for t in again.transcripts} == {
        p.name: p.read_text(encoding="utf-8") for p in out.glob("*.yaml")
    }


# --------------------------------------------------------------------------- regex inputs


REGEX_FLOW = """\
flow: main
title: Main
steps:
  ask:
    say: Your passport number?
    input: {save: passport, type: regex, pattern: '[A-Z]{2}[0-9]{6}'}
    goto: code
  code:
    say: The code from the letter?
    input: {save: code, type: regex, pattern: '(?=[a-z]*q)(ab)\\1'}
    goto: done
  done:
    say: Thanks.
    end: true
"""


def test_a_regex_nothing_matches_leaves_a_todo(
    tmp_path: Path, flows: Callable[[dict[str, str | bytes | None]], Path]
) -> None:
    folder = flows({"main.yaml": REGEX_FLOW})
    out = tmp_path / "generated"
    code, stdout, stderr = hotline(
        "transcripts", "generate", str(folder), "-o", str(out), "--now", "2026-03-01"
    )
    assert code == 0, stderr  # what was generated replays green
    assert "TODO main.code: no sample answer matches" in stderr
    assert "main.yaml:12: step done never reached" in stderr
    assert stdout.splitlines()[-1] == "1 transcripts, steps 2/3, edges 0/0"
    text = (out / "main_1.yaml").read_text(encoding="utf-8")
    assert "- user: AB123456" in text
    assert text.endswith("  # TODO: an answer matching /(?=[a-z]*q)(ab)\\1/\n  # - user: ANSWER\n")


# --------------------------------------------------------------------------- the pieces


def test_regex_examples() -> None:
    assert regex_example(r"[A-Z]{2}\d{6}") == "AB123456"
    assert regex_example(r"[QZ]{3}-\d\d") == "QQQ-55"
    assert regex_example(r"(foo|bar)\s?\w{2,}") == "fooaa"
    assert regex_example(r"(ab)\1") is None
    assert regex_example("(") is None


def test_invalid_samples_are_refused() -> None:
    cases = [
        InputSpec("full_name", InputType.TEXT, min_length=5),
        InputSpec("n", InputType.INTEGER, minimum=0, maximum=20),
        InputSpec("d", InputType.DATE),
        InputSpec("p", InputType.PHONE),
        InputSpec("e", InputType.EMAIL),
        InputSpec("r", InputType.REGEX, pattern=r"\d+"),
    ]
    for spec in cases:
        for language in ("ru", "en"):
            text = invalid_sample(spec, language, [])
            assert text is not None and isinstance(read_answer(spec, text), Refused), spec
    assert invalid_sample(InputSpec("full_name", InputType.TEXT, min_length=5), "ru", []) == "Иван"
    assert invalid_sample(InputSpec("t", InputType.TEXT), "en", []) is None  # nothing fails


def test_birth_dates_for_an_age() -> None:
    today = dt.date(2026, 3, 1)
    for age in (0, 17, 18, 30, 31):
        born = born_at_age(today, age)
        assert today.year - born.year - ((today.month, today.day) < (born.month, born.day)) == age
    leap = dt.date(2024, 2, 29)
    assert born_at_age(leap, 1) == dt.date(2023, 1, 29)


@pytest.mark.parametrize(
    ("text", "short"),
    [
        ("Menu", "Menu"),
        ("Hello! Pick a topic.\nMore here.", "Hello!"),
        ("Your date of birth (DD.MM.YYYY)?", "Your date of birth (DD.MM.YYYY)?"),
        (
            "A very long first sentence that goes on and on well beyond sixty characters, "
            "without stopping.",
            "A very long first sentence that goes on and on well beyond",
        ),
        ("/start/", "/start"),
        ("", ""),
    ],
)
def test_short_texts(text: str, short: str) -> None:
    assert short_text(text) == short
    assert short in text


def test_messages_that_start_alike_are_told_apart() -> None:
    spring = "Ivan, thank you! Your application is ready.\nDeadline: for the spring call-up."
    autumn = "Ivan, thank you! Your application is ready.\nDeadline: for the autumn call-up."
    pins = distinctive_texts([spring, autumn, "Bye."])
    assert pins == {
        spring: "Deadline: for the spring call-up.",
        autumn: "Deadline: for the autumn call-up.",
        "Bye.": "Bye.",
    }
