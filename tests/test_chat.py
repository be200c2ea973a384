"""`hotline chat` as a user meets it: a subprocess fed on stdin, in a pipe."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def chat(lines: list[str], *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "adapters.cli", "chat", *args],
        input="".join(line + "\n" for line in lines),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def test_chat_with_the_bundled_flows_in_russian() -> None:
    result = chat(
        [
            "2",  # menu: alternative service
            "/language",
            "1",
            "/help",
        ],
        "flows",
        "--lang",
        "ru",
    )
    assert result.returncode == 0, result.stderr
    assert "bot> Здравствуйте" in result.stdout
    assert "  2. Хочу на альтернативную службу (АГС)" in result.stdout
    assert "bot> Язык: русский." in result.stdout
    assert "/forget" in result.stdout


def test_chat_in_english_walks_a_whole_flow_to_the_end(tmp_path: Path) -> None:
    flows = ROOT / "tests" / "data" / "semantics"
    result = chat(
        ["1", "2", "Ivan Petrov", "01.02.2004", "+79001234567", "3", "Red", "/start"],
        str(flows),
        "--lang",
        "en",
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for expected in [
        "bot> Menu",
        "  1. Intake",
        "bot> Which kind?",
        "bot> Ivan Petrov, date of birth?",
        "bot> Phone?",
        "bot> Done Ivan Petrov, mobilisation, +79001234567.",
        "bot> Bye.",
    ]:
        assert expected in out
    assert out.index("Phone?") < out.index("Done Ivan Petrov")


def test_chat_ends_cleanly_on_end_of_input_and_refuses_a_broken_folder(tmp_path: Path) -> None:
    (tmp_path / "bot.yaml").write_text("languages: [en]\nmenu: {say: Hi, flows: [x]}\n")
    (tmp_path / "y.yaml").write_text("flow: y\ntitle: Y\nsteps:\n  a: {say: Hi, end: true}\n")
    result = chat([], str(tmp_path))
    assert result.returncode == 1
    assert "bot.yaml" in result.stderr and "there is no flow 'x'" in result.stderr


def test_chat_rejects_a_language_the_bot_does_not_speak() -> None:
    result = chat([], "flows", "--lang", "de")
    assert result.returncode == 2 and "ru, en" in result.stderr
