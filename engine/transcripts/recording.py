"""Writing a conversation down as a transcript that replays green (`hotline chat --record`).

A `Recorder` is told what the person typed (or which button a typed number pressed) and
the actions the engine answered with; `to_yaml()` gives the transcript:
- every typed line as `user:`, a pressed button as `press: LABEL`;
- every text as `bot:` with its full text (a block scalar `|-` when it has several
  lines) and `buttons:` when it had buttons; a text that would read as a /regex/ is
  written as a regex that matches exactly it;
- a document as `document: NAME`, a hand-over as `handover: QUEUE`;
- `now:` the recording's date and time (the chat runs on that fixed clock while recording,
  so date branches replay the same), `language:` when one was chosen, `flows:` when the
  flows folder is not the default one.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from engine.conversation import Action, SendDocument, SendText, StartHandover


class FlowList(list[str]):
    """A list written on one line: `buttons: [Yes, No]`."""


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> Any:
        # `steps:` items indented under their key, as people write them.
        return super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


def _represent_flow_list(dumper: yaml.SafeDumper, data: FlowList) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(FlowList, _represent_flow_list)


class Recorder:
    """Collects a conversation's lines; `to_yaml()` / `write()` produce the transcript."""

    __slots__ = ("flows", "language", "now", "steps", "title")

    def __init__(
        self,
        now: dt.datetime,
        language: str | None = None,
        title: str | None = None,
        flows: str | None = None,
    ) -> None:
        self.now = now
        self.language = language
        self.title = title or f"Recorded chat {now:%Y-%m-%d %H:%M}"
        self.flows = flows  # relative to the transcript file, or None for the default
        self.steps: list[dict[str, Any]] = []

    def typed(self, text: str, pressed: str | None = None) -> None:
        """What the person sent: a typed line, or the label of the button it pressed."""
        if pressed is not None:
            self.steps.append({"press": pressed})
        else:
            self.steps.append({"user": text})

    def answered(self, actions: Iterable[Action]) -> None:
        for action in actions:
            if isinstance(action, SendText):
                step: dict[str, Any] = {"bot": _literal(action.text)}
                if action.buttons:
                    step["buttons"] = FlowList(b.label for b in action.buttons)
                self.steps.append(step)
            elif isinstance(action, SendDocument):
                self.steps.append({"document": action.file_name})
            elif isinstance(action, StartHandover):
                self.steps.append({"handover": action.queue})

    def document(self) -> dict[str, Any]:
        document: dict[str, Any] = {"transcript": self.title}
        if self.language is not None:
            document["language"] = self.language
        document["now"] = f"{self.now:%Y-%m-%dT%H:%M}"
        if self.flows is not None:
            document["flows"] = self.flows
        document["steps"] = self.steps
        return document

    def to_yaml(self) -> str:
        return yaml.dump(
            self.document(),
            Dumper=_Dumper,
            allow_unicode=True,
            sort_keys=False,
            default_flow_style=False,
            width=100_000,
        )

    def write(self, path: str | Path) -> None:
        Path(path).write_text(self.to_yaml(), encoding="utf-8")


def flows_relative_to(flows_dir: str | Path, transcript: str | Path) -> str | None:
    """The `flows:` to write for a transcript at `transcript`: None for ./flows, else the
    folder relative to the transcript's own folder."""
    flows = Path(flows_dir).resolve()
    if flows == Path("flows").resolve():
        return None
    return Path(os.path.relpath(flows, Path(transcript).resolve().parent)).as_posix()


def _literal(text: str) -> str:
    """A bot: value that matches `text`: itself, unless it would read as a /regex/."""
    if len(text) >= 2 and text.startswith("/") and text.endswith("/"):
        return f"/^{re.escape(text)}$/"
    return text
