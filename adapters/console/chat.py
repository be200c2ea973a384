"""`hotline chat`: the flows in a terminal, or in a pipe for scripts.

Buttons are printed numbered; the person types a number (a press) or words (which the
engine matches against the labels, or routes). Ctrl-D or Ctrl-C ends the chat.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import TextIO

from engine.conversation import (
    Action,
    Address,
    Button,
    CancelHandover,
    ForgetUser,
    Inbound,
    RelayToOperator,
    SendDocument,
    SendText,
    StartHandover,
)
from engine.documents import DocumentError
from engine.loader import load_folder
from engine.runtime import Engine
from engine.stores import MemoryStore
from engine.transcripts.recording import Recorder, flows_relative_to

ADDRESS = Address("console", "you")


class ConsoleChat:
    """One person at a terminal. Remembers the last buttons so a typed number presses one."""

    def __init__(
        self,
        engine: Engine,
        out: TextIO,
        language: str | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self.engine = engine
        self.out = out
        self.language = language
        self.store = MemoryStore()
        self.buttons: tuple[Button, ...] = ()
        self.recorder = recorder  # `--record`: writes the chat down as a transcript
        self.documents_dir = Path("documents")

    def send(self, line: str) -> list[Action]:
        """Feed one typed line; print and return what the bot did."""
        stripped = line.strip()
        event = Inbound.typed(ADDRESS, line, self.language)
        if self.recorder is not None:
            self.recorder.typed(stripped, self.pressed_label(line))
        if stripped.isdigit() and self.buttons and 1 <= int(stripped) <= len(self.buttons):
            event = Inbound.press(ADDRESS, self.buttons[int(stripped) - 1].payload, self.language)
        key = self.engine.key(ADDRESS)
        outcome = self.engine.handle(self.store.load(key), event)
        if outcome.session is None:
            self.store.delete(key)
        else:
            self.store.save(outcome.session)
        if self.recorder is not None:
            self.recorder.answered(outcome.actions)
        for action in outcome.actions:
            self.show(action)
        return outcome.actions

    def pressed_label(self, line: str) -> str | None:
        """The label a typed number presses, if it is one (for recording)."""
        stripped = line.strip()
        if stripped.isdigit() and self.buttons and 1 <= int(stripped) <= len(self.buttons):
            return self.buttons[int(stripped) - 1].label
        return None

    def show(self, action: Action) -> None:
        write = self.out.write
        if isinstance(action, SendText):
            write(f"bot> {action.text}\n")
            for number, button in enumerate(action.buttons, 1):
                write(f"  {number}. {button.label}\n")
            # Numbers press the buttons of the latest message only: a question without
            # buttons (type your phone) must take "3" as an answer, not as an old button.
            self.buttons = action.buttons
        elif isinstance(action, SendDocument):
            try:
                data = action.data
            except DocumentError:
                write(f"bot> {action.fallback_text}\n")
                return
            self.documents_dir.mkdir(exist_ok=True)
            path = self.documents_dir / action.file_name
            path.write_bytes(data)
            write(f"bot> [document] {action.file_name} saved to {path}\n")
        elif isinstance(action, StartHandover):
            write(
                f"  [handed over to the '{action.queue}' queue: in `hotline serve` a lawyer "
                "answers here; /cancel returns to the bot]\n"
            )
        elif isinstance(action, RelayToOperator):
            write("  [passed to the lawyers' queue]\n")
        elif isinstance(action, CancelHandover):
            write("  [left the lawyers' queue]\n")
        elif isinstance(action, ForgetUser):
            self.buttons = ()
        self.out.flush()


def run_chat(flows_dir: Path, language: str | None = None, record: str | None = None) -> int:
    flows, report = load_folder(flows_dir)
    if flows is None:
        for diagnostic in report.sorted():
            print(diagnostic, file=sys.stderr)
        print(f"{flows_dir}: fix these errors first (`hotline check {flows_dir}`)", file=sys.stderr)
        return 1
    if language is not None and language not in flows.bot.languages:
        print(
            f"--lang {language}: this bot speaks {', '.join(flows.bot.languages)}",
            file=sys.stderr,
        )
        return 2
    recorder = None
    clock = None
    if record is not None:
        if not Path(record).resolve().parent.is_dir():
            print(f"--record {record}: no such folder", file=sys.stderr)
            return 2
        # The recording's clock stands still, so date branches replay exactly as recorded.
        started = dt.datetime.now().replace(second=0, microsecond=0)
        recorder = Recorder(started, language, flows=flows_relative_to(flows_dir, record))
        clock = lambda: started  # noqa: E731
    chat = ConsoleChat(Engine(flows, clock=clock), sys.stdout, language, recorder)
    interactive = sys.stdin.isatty()
    if interactive:
        print("hotline chat: type a number to press a button, /help for commands, Ctrl-D to quit")
    try:
        chat.send("/start")
        _chat_loop(chat, interactive)
    finally:
        if recorder is not None and record is not None:
            recorder.write(record)
            print(f"recorded {len(recorder.steps)} lines to {record}", file=sys.stderr)
    return 0


def _chat_loop(chat: ConsoleChat, interactive: bool) -> None:
    try:
        while True:
            if interactive:
                print("you> ", end="", flush=True)
            line = sys.stdin.readline()
            if not line:
                break
            if not line.strip():
                continue
            if not interactive:
                print(f"you> {line.rstrip()}")
            chat.send(line.rstrip("\n"))
    except KeyboardInterrupt:
        print()
