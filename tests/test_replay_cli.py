"""`hotline replay` as testers and CI use it: output, exit codes, coverage, JUnit."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from adapters.cli import main

ROOT = Path(__file__).resolve().parent.parent
FLOWS = ROOT / "tests" / "data" / "replay"

GREEN = """\
transcript: Mobilised man leaves his phone
language: en
now: 2026-03-01
steps:
  - user: /start
  - bot: Hello! Pick a topic.
    buttons: [I got a summons, Talk to a lawyer]
  - press: I got a summons
  - bot: What kind of summons?
  - press: Mobilisation
  - bot: Your full name?
  - user: Ivan Petrov
  - bot: date of birth
  - user: 01.02.2004
  - bot: Your phone?
  - user: +79001234567
  - bot: Thank you, Ivan Petrov (mobilisation)
"""

RED = """\
transcript: Expects the wrong question
language: en
steps:
  - user: /start
  - bot: Hello
  - press: I got a summons
  - bot: Which summons
"""

OLDER = """\
transcript: Conscript over 30, in Russian
language: ru
now: 2026-03-01
steps:
  - user: повестка
  - bot: Какую повестку
  - user: Призыв
  - bot: Ваше ФИО?
  - user: Иванов Иван
  - bot: дата рождения
  - user: 01.02.1990
  - bot: |-
      Вам 30 лет или больше.
      Призыв вас больше не касается.
  - user: /lawyer
  - bot: Передаём юристу.
  - bot: Юрист ответит здесь.
  - handover: lawyers
"""

THE_REST = """\
transcript: The lawyer button of the summons question
language: en
steps:
  - user: summons
  - bot: What kind
  - press: Talk to a lawyer
  - bot: Passing
  - bot: A lawyer will answer
  - handover: lawyers
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def hotline(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["replay", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_green_transcripts_pass_and_the_last_line_counts_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "a.yaml", GREEN)
    write(tmp_path, "deeper/b.yaml", OLDER)
    write(tmp_path, "notes.txt", "not a transcript")
    code, out, _ = hotline(capsys, str(tmp_path), "--flows", str(FLOWS))
    assert code == 0, out
    assert out.splitlines()[-1] == "2 passed, 0 failed"


def test_a_failure_prints_file_line_expected_and_sent_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    green = write(tmp_path, "a.yaml", GREEN)
    red = write(tmp_path, "b.yaml", RED)
    code, out, _ = hotline(capsys, str(green), str(red), "--flows", str(FLOWS))
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == f'FAIL {red}:7: expected a bot message containing "Which summons"'
    assert lines[1:4] == [
        "  the bot sent:",
        "    What kind of summons?",
        "    [Conscription] [Mobilisation] [Talk to a lawyer]",
    ]
    assert "    - Which summons" in lines
    assert lines[-1] == "1 passed, 1 failed"


def test_a_malformed_transcript_fails_with_its_diagnostics_and_the_rest_still_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "a.yaml", GREEN)
    bad = write(tmp_path, "b.yaml", "transcript: t\nsteps:\n  - usr: hi\n")
    code, out, _ = hotline(capsys, str(tmp_path), "--flows", str(FLOWS))
    assert code == 1
    assert f"FAIL {bad}: the transcript has errors" in out
    assert f"{bad}:3:5: error: unknown key 'usr' in a step; did you mean 'user'?" in out
    assert out.splitlines()[-1] == "1 passed, 1 failed"


def test_a_flows_folder_with_errors_is_reported_and_nothing_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flows = tmp_path / "flows"
    write(flows, "bot.yaml", "languages: [en]\nmenu: {say: Hi, flows: [a]}\n")
    write(flows, "a.yaml", "flow: a\ntitle: A\nsteps:\n  s:\n    say: Hi\n    goto: nope\n")
    write(tmp_path, "t/a.yaml", GREEN)
    code, out, err = hotline(capsys, str(tmp_path / "t"), "--flows", str(flows))
    assert code == 1 and out == ""
    assert f"{flows / 'a.yaml'}:6:" in err and "nope" in err
    assert f"{flows}: fix these errors first" in err


def test_flows_key_is_relative_to_the_transcript_and_beats_the_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    relative = os.path.relpath(FLOWS, tmp_path / "sub")
    write(tmp_path, "sub/a.yaml", GREEN.replace("now:", f"flows: {relative}\nnow:"))
    code, out, _ = hotline(capsys, str(tmp_path), "--flows", str(tmp_path / "missing"))
    assert code == 0, out
    assert out.splitlines()[-1] == "1 passed, 0 failed"


def test_a_transcript_for_another_channel_is_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "a.yaml", GREEN)
    other = write(tmp_path, "b.yaml", RED.replace("language: en", "channel: telegram"))
    code, out, _ = hotline(capsys, str(tmp_path), "--flows", str(FLOWS))
    assert code == 0, out
    assert f"skip {other}: only for the telegram channel" in out
    assert out.splitlines()[-1] == "1 passed, 0 failed"


def test_missing_paths_and_empty_folders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = hotline(capsys, str(tmp_path / "nowhere"))
    assert code == 2 and "nowhere: no such file or folder" in err
    code, out, err = hotline(capsys, str(tmp_path), "--flows", str(FLOWS))
    assert code == 1 and "no transcripts" in err
    assert out.splitlines()[-1] == "0 passed, 0 failed"


def test_coverage_lists_what_no_transcript_reached(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "a.yaml", GREEN)
    code, out, _ = hotline(capsys, str(tmp_path), "--flows", str(FLOWS), "--coverage")
    assert code == 0
    lines = out.splitlines()
    intake = next(line for line in lines if line.startswith("  intake"))
    assert intake == "  intake   steps 6/7 (85.7%)  edges 2/5 (40%)"
    shown = str(FLOWS / "intake.yaml") if not FLOWS.is_relative_to(Path.cwd()) else None
    file = shown or str(FLOWS.relative_to(Path.cwd()) / "intake.yaml")
    assert (
        f'    {file}:10: choice "Conscription" of step kind (to intake.name) never taken' in lines
    )
    assert f"    {file}:32: step too_old never reached" in lines
    assert "  coverage: steps 8/10 (80%), edges 2/5 (40%), lowest 40%" in lines
    assert lines[-1] == "1 passed, 0 failed"


def test_min_coverage_fails_below_and_passes_at_the_threshold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "a.yaml", GREEN)
    code, out, _ = hotline(capsys, str(tmp_path), "--flows", str(FLOWS), "--min-coverage", "50")
    assert code == 1  # edges 40% is the lower of the two
    assert "is below --min-coverage 50%: steps 80.0%, edges 40.0%" in out
    assert out.splitlines()[-1] == "1 passed, 0 failed"
    write(tmp_path, "b.yaml", OLDER)
    write(tmp_path, "c.yaml", THE_REST)
    code, out, _ = hotline(
        capsys, str(tmp_path), "--flows", str(FLOWS), "--coverage", "--min-coverage", "100"
    )
    assert code == 0, out
    assert "  coverage: steps 10/10 (100%), edges 5/5 (100%), lowest 100%" in out
    assert "never" not in out


def test_junit_has_one_testcase_per_transcript(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "t"
    write(folder, "a.yaml", GREEN)
    write(folder, "b.yaml", RED)
    write(folder, "c.yaml", "transcript: t\nsteps: []\n")
    write(folder, "d.yaml", GREEN.replace("language: en", "channel: matrix"))
    report = tmp_path / "junit.xml"
    code, out, _ = hotline(capsys, str(folder), "--flows", str(FLOWS), "--junit", str(report))
    assert code == 1
    assert out.splitlines()[-1] == "1 passed, 2 failed"
    root = ET.parse(report).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == (
        "4",
        "1",
        "1",
        "1",
    )
    cases = root.findall("./testsuite/testcase")
    assert [c.get("name") for c in cases] == [
        "Mobilised man leaves his phone",
        "Expects the wrong question",
        str(folder / "c.yaml"),
        "Mobilised man leaves his phone",
    ]
    failure = cases[1].find("failure")
    assert failure is not None
    assert failure.get("message") == 'expected a bot message containing "Which summons"'
    assert failure.text is not None and "What kind of summons?" in failure.text
    error = cases[2].find("error")
    assert error is not None and error.text is not None and "no steps" in error.text
    assert cases[3].find("skipped") is not None
    assert cases[0].find("failure") is None and cases[0].get("file") == str(folder / "a.yaml")


def test_the_command_in_a_subprocess(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GREEN)
    write(tmp_path, "b.yaml", RED)
    result = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "replay", str(tmp_path), "--flows", str(FLOWS)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines()[-1] == "1 passed, 1 failed"
    help_text = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "replay", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    ).stdout
    assert "the lower of the two" in " ".join(help_text.split())


def test_the_bundled_transcripts_cover_every_step_and_edge_of_flows(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # What CI runs: `hotline replay tests/transcripts --coverage --min-coverage 100`. When a
    # flow changes on purpose, record the transcripts again: tests/transcripts/record.py.
    monkeypatch.chdir(ROOT)
    code, out, _ = hotline(capsys, "tests/transcripts", "--coverage", "--min-coverage", "100")
    assert code == 0, out
    assert "never" not in out
    assert out.splitlines()[-1].endswith(" passed, 0 failed")
