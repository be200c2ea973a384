"""Conversations and transcripts replayed through the Telegram adapter and the local server."""

from __future__ import annotations

from pathlib import Path

import pytest
from tg_helpers import ROOT, run

from adapters.telegram.replay import TelegramReplayDriver, telegram_replayer
from engine.model import FlowSet
from engine.runtime import Engine
from engine.transcripts import Transcript, find_transcripts, load_transcript

TRANSCRIPTS = ROOT / "tests" / "transcripts"
FLOWS = (ROOT / "flows").resolve()


def test_the_driver_returns_what_the_person_received(engine: Engine) -> None:
    async def scenario() -> None:
        async with TelegramReplayDriver(engine.flows, engine=engine) as driver:
            [menu] = await driver.send_text(1, "/start", language="en")
            assert menu.kind == "text" and menu.text.startswith("Hello!")
            assert menu.buttons[0] == "I received a summons"
            assert len(menu.callback_data) == len(menu.buttons)
            [question] = await driver.press(1, "I received a summons", language="en")
            assert "What kind of summons" in question.text
            got = await driver.send_text(1, "/lawyer", language="en")
            assert any(r.kind == "handover" for r in got) or got[0].kind == "text"
            # A press on the menu that has moved on: the polite answer, then the question.
            stale = await driver.press(1, "Talk to a lawyer", language="en")
            assert stale and stale[0].kind == "text"
            assert driver.server.unanswered_callbacks() == []

    run(scenario())


def test_a_hand_over_marker_comes_after_its_own_message(engine: Engine) -> None:
    async def scenario() -> None:
        async with TelegramReplayDriver(engine.flows, engine=engine) as driver:
            await driver.send_text(2, "/start", language="en")
            got = await driver.press(2, "Talk to a lawyer", language="en")
            while not any(r.kind == "handover" for r in got):
                buttons = next(r.buttons for r in reversed(got) if r.buttons)
                got = await driver.press(2, buttons[0], language="en")
            kinds = [r.kind for r in got]
            assert kinds.index("handover") > 0 and kinds[0] == "text"
            assert next(r.queue for r in got if r.kind == "handover") == "lawyers"

    run(scenario())


SAMPLE = """\
transcript: The menu and a first question, on Telegram
language: en
steps:
  - user: /start
  - bot: Hello!
  - press: I received a summons
  - bot: What kind of summons is it?
  - user: /help
  - bot: /Commands/
"""


def test_a_transcript_replays_through_telegram(example_flows: FlowSet, tmp_path: Path) -> None:
    path = tmp_path / "sample.yaml"
    path.write_text(SAMPLE, encoding="utf-8")
    transcript, report = load_transcript(path)
    assert transcript is not None, [str(d) for d in report.sorted()]
    with telegram_replayer(example_flows) as replayer:
        result = replayer.replay(transcript)
        broken = replayer.replay(
            load_transcript_text(tmp_path, SAMPLE.replace("/Commands/", "Nothing like this"))
        )
    assert result.passed, result.message()
    assert ("summons", "start") in result.visited  # coverage comes through too
    assert broken.failure is not None and broken.failure.line == 9


def load_transcript_text(folder: Path, text: str) -> Transcript:
    path = folder / "other.yaml"
    path.write_text(text, encoding="utf-8")
    transcript, report = load_transcript(path)
    assert transcript is not None, [str(d) for d in report.sorted()]
    return transcript


@pytest.mark.skipif(not TRANSCRIPTS.is_dir(), reason="no tests/transcripts yet")
def test_every_transcript_passes_over_the_telegram_adapter(example_flows: FlowSet) -> None:
    files, _ = find_transcripts([str(TRANSCRIPTS)])
    transcripts = []
    for path in files:
        transcript, _report = load_transcript(path)
        if (
            transcript is not None
            and transcript.channel in (None, "telegram")
            and (transcript.flows is None or transcript.flows.resolve() == FLOWS)
        ):
            transcripts.append(transcript)
    assert transcripts
    with telegram_replayer(example_flows) as replayer:
        failures = [r.message() for r in map(replayer.replay, transcripts) if not r.passed]
    assert failures == []


@pytest.mark.skipif(not TRANSCRIPTS.is_dir(), reason="no tests/transcripts yet")
def test_hotline_replay_channel_telegram(capsys: pytest.CaptureFixture[str]) -> None:
    from adapters.cli import main

    files = sorted(TRANSCRIPTS.glob("lawyer_*.yaml"))[:2]
    assert files
    status = main(["replay", "--channel", "telegram", "--flows", str(FLOWS), *map(str, files)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert out.strip().endswith(f"{len(files)} passed, 0 failed")
