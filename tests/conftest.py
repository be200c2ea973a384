"""Shared fixtures: a flows folder written from strings, and what `hotline check` says of it."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest

from engine.loader import load_folder

# A one-language bot, so that plain strings are complete texts. Tests that need several
# languages pass their own bot.yaml.
BOT = """\
languages: [en]
menu:
  say: Hello
  flows: [main]
handover:
  lawyers: Lawyers
"""


class Found(NamedTuple):
    """One diagnostic, with the file reduced to its name."""

    file: str
    line: int
    column: int
    severity: str
    message: str


def write_flows(folder: Path, files: dict[str, str | bytes | None]) -> Path:
    """Write `files` (name -> YAML, dedented) into `folder`; bot.yaml defaults to BOT, and
    `"bot.yaml": None` leaves it out."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"bot.yaml": BOT, **files}
    for name, content in files.items():
        if content is None:
            continue
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content), encoding="utf-8")
    return folder


def found(folder: Path) -> list[Found]:
    """Every diagnostic of loading and checking `folder`, in file and line order."""
    _, report = load_folder(folder)
    return [
        Found(Path(d.file).name, d.position.line, d.position.column, d.severity.value, d.message)
        for d in report.sorted()
    ]


@pytest.fixture
def flows(tmp_path: Path) -> Callable[[dict[str, str | bytes | None]], Path]:
    """flows({"main.yaml": "..."}) -> a folder with those files (and the default bot.yaml)."""
    return lambda files: write_flows(tmp_path / "flows", files)


@pytest.fixture
def check(tmp_path: Path) -> Callable[[dict[str, str | bytes | None]], list[Found]]:
    """check({"main.yaml": "..."}) -> the diagnostics of that folder."""
    return lambda files: found(write_flows(tmp_path / "flows", files))
