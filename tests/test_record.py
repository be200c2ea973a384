"""`hotline chat --record FILE`: a console chat written down replays green."""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from adapters.console.chat import ConsoleChat
from engine.conversation import Address, Button, SendDocument, SendText
from engine.loader import load_folder
from engine.runtime import Engine
from engine.transcripts import Recorder, Replayer, load_transcript, parse_transcript

ROOT = Path(__file__).resolve().parent.parent
FLOWS = ROOT / "tests" / "data" / "replay"
TO = Address("console", "you")


def hotline(
    *args: str, lines: Sequence[str] = (), cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "adapters.cli", *args],
        input="".join(line + "\n" for line in lines),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def test_a_recorded_chat_replays_green(tmp_path: Path) -> None:
    record = tmp_path / "recorded.yaml"
    typed = [
        "1",  # the menu's first button: I got a summons
        "what?",  # matches no choice: the invalid text and the question again
        "2",  # Mobilisation
        "Ivan",  # too short: refused
        "Ivan Petrov",
        "01.02.2004",
        "/back",
        "01.02.2004",
        "+7 900 123-45-67",
        "/language en",
        "/start",
        "2",  # Talk to a lawyer: a hand-over
        "hello?",  # relayed to the lawyers
        "/cancel",
    ]
    result = hotline("chat", str(FLOWS), "--lang", "en", "--record", str(record), lines=typed)
    assert result.returncode == 0, result.stderr
    assert f"lines to {record}" in result.stderr

    document = yaml.safe_load(record.read_text(encoding="utf-8"))
    assert document["language"] == "en"
    assert dt.datetime.fromisoformat(document["now"]).date() == dt.date.today()
    steps = document["steps"]
    assert steps[:3] == [
        {"user": "/start"},
        {"bot": "Hello! Pick a topic.", "buttons": ["I got a summons", "Talk to a lawyer"]},
        {"press": "I got a summons"},
    ]
    assert {"user": "what?"} in steps and {"press": "Mobilisation"} in steps
    assert {"handover": "lawyers"} in steps and {"user": "hello?"} in steps

    replay = hotline("replay", str(record), "--coverage")
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert replay.stdout.splitlines()[-1] == "1 passed, 0 failed"


def test_a_recorded_date_branch_replays_on_the_recording_clock(tmp_path: Path) -> None:
    record = tmp_path / "older.yaml"
    typed = ["повестка", "Призыв", "Иванов Иван", "01.02.1990"]
    result = hotline("chat", str(FLOWS), "--lang", "ru", "--record", str(record), lines=typed)
    assert result.returncode == 0, result.stderr
    text = record.read_text(encoding="utf-8")
    # A multi-line message is a block scalar, written as it reads.
    assert (
        "  - bot: |-\n      Вам 30 лет или больше.\n      Призыв вас больше не касается.\n" in text
    )
    transcript, report = load_transcript(record)
    assert transcript is not None, [str(d) for d in report.diagnostics]
    flows, _ = load_folder(FLOWS)
    assert flows is not None
    run = Replayer(flows).replay(transcript)
    assert run.passed, run.message()


def test_recording_into_a_missing_folder_is_refused_before_the_chat(tmp_path: Path) -> None:
    result = hotline("chat", str(FLOWS), "--record", str(tmp_path / "no" / "t.yaml"))
    assert result.returncode == 2 and "no such folder" in result.stderr


def test_the_default_flows_folder_is_not_written_and_another_one_is_relative(
    tmp_path: Path,
) -> None:
    record = tmp_path / "t.yaml"
    assert hotline("chat", "--record", str(record), cwd=ROOT).returncode == 0
    assert "flows" not in yaml.safe_load(record.read_text(encoding="utf-8"))
    assert "language" not in yaml.safe_load(record.read_text(encoding="utf-8"))
    assert hotline("chat", str(FLOWS), "--record", str(record)).returncode == 0
    flows = yaml.safe_load(record.read_text(encoding="utf-8"))["flows"]
    assert (tmp_path / flows).resolve() == FLOWS


def test_console_chat_records_a_typed_number_as_the_label_it_pressed() -> None:
    flows, _ = load_folder(FLOWS)
    assert flows is not None
    recorder = Recorder(dt.datetime(2026, 3, 1, 10, 0), "en", title="Pressing by number")
    chat = ConsoleChat(Engine(flows), io.StringIO(), "en", recorder)
    for line in ["/start", "1", " 7 ", "Conscription"]:
        chat.send(line)
    assert recorder.steps[2] == {"press": "I got a summons"}
    assert recorder.steps[4] == {"user": "7"}  # no button 7: typed text
    assert recorder.steps[-2] == {"user": "Conscription"}
    text = recorder.to_yaml()
    assert text.startswith(
        "transcript: Pressing by number\nlanguage: en\nnow: 2026-03-01T10:00\nsteps:\n"
    )
    assert "    buttons: [Conscription, Mobilisation, Talk to a lawyer]\n" in text
    assert "  - user: '7'\n" in text


def test_texts_that_would_read_as_a_regex_and_documents_are_written_safely() -> None:
    recorder = Recorder(dt.datetime(2026, 3, 1, 10, 0))
    recorder.typed("/start")
    recorder.answered(
        [
            SendText(TO, "/a.b/", (Button("x: y", "1.0"),)),
            SendText(TO, ""),
            SendDocument(TO, "Заявление.docx", b""),
        ]
    )
    transcript, report = parse_transcript(recorder.to_yaml(), "r.yaml", Path("."))
    assert transcript is not None, [str(d) for d in report.diagnostics]
    bot, empty, document = transcript.lines[1:]
    assert bot.pattern is not None and bot.pattern.search("/a.b/")
    assert not bot.pattern.search("/axb/") and bot.buttons == ("x: y",)
    assert empty.text == "" and document.text == "Заявление.docx"
    assert transcript.language is None and transcript.now == dt.datetime(2026, 3, 1, 10, 0)
