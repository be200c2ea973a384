"""Replaying a transcript against the engine, in process, as the console channel would.

`Replayer(flows)` builds one traced `Engine` for a flow set and replays any number of
transcripts on it, each in a fresh session on its own in-memory store. The flow set and the
engine are immutable, so one replayer serves a whole folder of transcripts; the only
per-transcript state of the engine is its clock, which `now:` sets (replays run one at a
time: a Replayer is not for several threads at once).

The matching rules (SPEC "Transcript format"):
- every bot message (a text or a document) must be matched, in order, by a `bot:` or
  `document:` line; a `user:` or `press:` line while some are still unmatched fails ("the
  bot also said"), so does a `bot:` line when none is left, and so does any unmatched
  message at the end of the transcript;
- `bot: TEXT` is a substring of the message's text, `bot: /RE/` a `re.search`; `buttons:`
  are the message's labels, exactly and in order (`buttons: []`: a message without buttons);
- `press: LABEL` presses the button with exactly that label among the buttons of the
  latest bot message that had buttons;
- `document: NAME` is a document with that file name; `contains:` checks its text with
  `engine.documents.document_text` (a failure when that is not available);
- `handover: QUEUE` needs a hand-over to QUEUE since the previous `handover:` line; it
  consumes no message of its own, except the notices (queue position, opening hours) that
  follow the hand-over itself, which no transcript should have to pin.
Hand-overs a transcript does not mention are not a failure: the bot's own words about the
hand-over are messages, and those must be matched.
"""

from __future__ import annotations

import datetime as dt
import difflib
import importlib
import importlib.util
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

from engine.conversation import (
    Address,
    Button,
    Inbound,
    SendDocument,
    SendText,
    StartHandover,
)
from engine.diagnostics import Report
from engine.model import FlowSet
from engine.privacy import SessionKeys
from engine.runtime import Engine
from engine.stores import MemoryStore, SessionStore
from engine.transcripts.loading import Line, LineKind, Transcript

ADDRESS = Address("console", "transcript")
_MAX_SHOWN_LINES = 40


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a transcript failed, where, and what the bot actually sent there."""

    file: str
    line: int
    expected: str  # "expected a bot message containing ..."
    heading: str = ""  # "the bot sent:", "the bot also said:", ...
    sent: tuple[str, ...] = ()  # what the bot sent there, one display line each
    diff: tuple[str, ...] = ()  # difflib lines, expected (-) against sent (+)

    def __str__(self) -> str:
        lines = [f"FAIL {self.file}:{self.line}: {self.expected}"]
        if self.heading:
            lines.append(f"  {self.heading}")
        lines.extend(f"    {text}" for text in self.sent)
        if self.diff:
            lines.append("  diff (- expected, + sent):")
            lines.extend(f"    {text}" for text in self.diff)
        return "\n".join(lines)


@dataclass(slots=True)
class Run:
    """One transcript's replay. `visited` and `moves` feed `compute_coverage`."""

    file: str
    title: str
    failure: Failure | None = None
    problems: tuple[str, ...] = ()  # the transcript could not be read: its diagnostics
    skipped: str | None = None  # why it was not replayed here (another channel)
    visited: set[tuple[str, str]] = field(default_factory=set)
    moves: set[tuple[str, str, int]] = field(default_factory=set)
    lines: int = 0  # transcript lines replayed
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.failure is None and not self.problems and self.skipped is None

    @property
    def failed(self) -> bool:
        return self.failure is not None or bool(self.problems)

    @staticmethod
    def malformed(file: str, report: Report) -> Run:
        return Run(file, "", problems=tuple(str(d) for d in report.sorted()))

    def message(self) -> str:
        """The failure as printed by `hotline replay` (empty when it passed)."""
        if self.problems:
            return "\n".join([f"FAIL {self.file}: the transcript has errors", *self.problems])
        return str(self.failure) if self.failure is not None else ""


# --------------------------------------------------------------------------- replaying


class Replayer:
    """Replays transcripts on one flow set; the traced Engine is built once and shared."""

    __slots__ = ("_now", "engine", "flows")

    def __init__(self, flows: FlowSet, keys: SessionKeys | None = None) -> None:
        self.flows = flows
        self._now: dt.datetime | None = None
        self.engine = Engine(flows, clock=self._clock, trace=True, keys=keys)

    def _clock(self) -> dt.datetime:
        return self._now if self._now is not None else dt.datetime.now()

    def replay(self, transcript: Transcript, store: SessionStore | None = None) -> Run:
        """Replay one transcript on a fresh in-memory store, or on `store` (whose session
        for the transcript's person is dropped first: each transcript is a new person)."""
        started = time.perf_counter()
        self._now = transcript.now
        replay = _Replay(self.engine, transcript, store)
        try:
            failure = replay.run()
        finally:
            self._now = None
        return Run(
            transcript.file,
            transcript.title,
            failure=failure,
            visited=replay.visited,
            moves=replay.moves,
            lines=replay.done,
            seconds=time.perf_counter() - started,
        )


@dataclass(frozen=True, slots=True)
class _Sent:
    message: SendText | SendDocument
    after_handover: bool  # sent after a hand-over in the same turn: a notice about the queue


class _Replay:
    """One transcript against the engine: feeds its input lines, matches its output lines."""

    __slots__ = (
        "buttons",
        "done",
        "engine",
        "handovers",
        "last_input",
        "moves",
        "pending",
        "store",
        "transcript",
        "visited",
    )

    def __init__(
        self, engine: Engine, transcript: Transcript, store: SessionStore | None = None
    ) -> None:
        self.engine = engine
        self.transcript = transcript
        self.store: SessionStore = MemoryStore() if store is None else store
        self.store.delete(engine.key(ADDRESS))
        self.pending: deque[_Sent] = deque()
        self.buttons: tuple[Button, ...] = ()  # of the latest message that had buttons
        self.handovers: list[str] = []  # queues handed over to since the last handover line
        self.last_input: Line | None = None
        self.visited: set[tuple[str, str]] = set()
        self.moves: set[tuple[str, str, int]] = set()
        self.done = 0

    def run(self) -> Failure | None:
        handlers: dict[LineKind, Callable[[Line], Failure | None]] = {
            LineKind.USER: self.user,
            LineKind.PRESS: self.press,
            LineKind.BOT: self.bot,
            LineKind.DOCUMENT: self.document,
            LineKind.HANDOVER: self.handover,
        }
        for line in self.transcript.lines:
            failure = handlers[line.kind](line)
            if failure is not None:
                return failure
            self.done += 1
        if self.pending:
            last = self.transcript.lines[-1]
            return self.fail(
                last,
                "expected the end of the conversation after this line",
                "the bot also said:",
                self.shown_pending(),
            )
        return None

    # ------------------------------------------------------------------ feeding the engine

    def feed(self, event: Inbound) -> None:
        key = self.engine.key(ADDRESS)
        outcome = self.engine.handle(self.store.load(key), event)
        if outcome.session is None:
            self.store.delete(key)
        else:
            self.store.save(outcome.session)
        self.visited.update(outcome.visited)
        self.moves.update(outcome.moves)
        after_handover = False
        for action in outcome.actions:
            if isinstance(action, SendText):
                self.pending.append(_Sent(action, after_handover))
                if action.buttons:
                    self.buttons = action.buttons
            elif isinstance(action, SendDocument):
                self.pending.append(_Sent(action, after_handover))
            elif isinstance(action, StartHandover):
                self.handovers.append(action.queue)
                after_handover = True

    def fail(
        self,
        line: Line,
        expected: str,
        heading: str = "",
        sent: list[str] | tuple[str, ...] = (),
        diff: list[str] | tuple[str, ...] = (),
    ) -> Failure:
        return Failure(
            self.transcript.file, line.position.line, expected, heading, tuple(sent), tuple(diff)
        )

    def shown_pending(self) -> list[str]:
        shown: list[str] = []
        for sent in self.pending:
            shown.extend(show_message(sent.message))
        return _cap(shown)

    def still_talking(self, line: Line) -> Failure | None:
        if not self.pending:
            return None
        return self.fail(
            line,
            f'expected no more bot messages before "{line}"',
            "the bot also said:",
            self.shown_pending(),
        )

    # ------------------------------------------------------------------ input lines

    def user(self, line: Line) -> Failure | None:
        failure = self.still_talking(line)
        if failure is None:
            self.last_input = line
            self.feed(Inbound.typed(ADDRESS, line.text, self.transcript.language))
        return failure

    def press(self, line: Line) -> Failure | None:
        failure = self.still_talking(line)
        if failure is not None:
            return failure
        button = next((b for b in self.buttons if b.label == line.text), None)
        if button is None:
            labels = [b.label for b in self.buttons]
            close = difflib.get_close_matches(line.text, labels, n=1, cutoff=0.5)
            return self.fail(
                line,
                f'expected a button "{line.text}" to press',
                "the buttons there are:" if labels else "the bot has shown no buttons yet",
                [_buttons(labels)] if labels else [],
                _line_diff(line.text, close[0]) if close else [],
            )
        self.last_input = line
        self.feed(Inbound.press(ADDRESS, button.payload, self.transcript.language))
        return None

    # ------------------------------------------------------------------ output lines

    def nothing_more(self, line: Line) -> Failure:
        after = self.last_input
        heading = (
            f'the bot sent nothing more after line {after.position.line} ("{after}")'
            if after is not None
            else "the bot has sent nothing: a transcript starts with a user: line"
        )
        return self.fail(line, f"expected {line.describe()}", heading)

    def bot(self, line: Line) -> Failure | None:
        if not self.pending:
            return self.nothing_more(line)
        message = self.pending[0].message
        if not isinstance(message, SendText):
            return self.fail(
                line, f"expected {line.describe()}", "the bot sent:", show_message(message)
            )
        if line.pattern is not None:
            matched = line.pattern.search(message.text) is not None
        else:
            matched = line.text in message.text
        labels = [b.label for b in message.buttons]
        if not matched:
            diff = [] if line.pattern is not None else _text_diff(line.text, message.text)
            return self.fail(
                line, f"expected {line.describe()}", "the bot sent:", show_message(message), diff
            )
        if line.buttons is not None and list(line.buttons) != labels:
            diff = [d.rstrip("\n") for d in difflib.ndiff(list(line.buttons), labels)]
            return self.fail(
                line, f"expected {line.describe()}", "the bot sent:", show_message(message), diff
            )
        self.pending.popleft()
        return None

    def document(self, line: Line) -> Failure | None:
        if not self.pending:
            return self.nothing_more(line)
        message = self.pending[0].message
        if not isinstance(message, SendDocument):
            return self.fail(
                line, f"expected {line.describe()}", "the bot sent:", show_message(message)
            )
        if message.file_name != line.text:
            return self.fail(
                line,
                f"expected {line.describe()}",
                "the bot sent:",
                show_message(message),
                _line_diff(line.text, message.file_name),
            )
        if line.contains:
            extract = document_text_function()
            if extract is None:
                return self.fail(
                    line,
                    f'cannot check contains: of the document "{line.text}": document text '
                    "extraction not available (engine.documents.document_text is missing)",
                )
            try:
                text = extract(message.data)
            except ValueError as err:
                return self.fail(
                    line, f'the document "{line.text}" is not a readable .docx ({err})'
                )
            for needle in line.contains:
                if needle not in text:
                    return self.fail(
                        line,
                        f'expected the document "{line.text}" to contain "{needle}"',
                        "the document's text:",
                        _cap(text.splitlines()),
                        _text_diff(needle, text),
                    )
        self.pending.popleft()
        return None

    def handover(self, line: Line) -> Failure | None:
        if line.text not in self.handovers:
            return self.fail(
                line,
                f"expected {line.describe()} since the previous handover: line",
                "the bot handed over to: " + ", ".join(self.handovers)
                if self.handovers
                else "there was no hand-over",
            )
        self.handovers.clear()
        # The bot's notices about the queue (position, hours) follow the hand-over itself.
        while self.pending and self.pending[0].after_handover:
            self.pending.popleft()
        return None


# --------------------------------------------------------------------------- display


def show_message(message: SendText | SendDocument) -> list[str]:
    """A bot message as the failure output shows it: its text, then its buttons."""
    if isinstance(message, SendDocument):
        return [f"[document] {message.file_name}"]
    lines = message.text.splitlines() or ["(a message without text)"]
    if message.buttons:
        lines.append(_buttons([b.label for b in message.buttons]))
    return lines


def _buttons(labels: list[str]) -> str:
    return " ".join(f"[{label}]" for label in labels)


def _cap(lines: list[str]) -> list[str]:
    if len(lines) <= _MAX_SHOWN_LINES:
        return lines
    return [*lines[:_MAX_SHOWN_LINES], f"... ({len(lines) - _MAX_SHOWN_LINES} more lines)"]


def _line_diff(expected: str, actual: str) -> list[str]:
    return [d.rstrip("\n") for d in difflib.ndiff([expected], [actual])]


def _text_diff(expected: str, actual: str) -> list[str]:
    """Expected text against what the bot sent: line by line for a multi-line expectation,
    else against the stretch of the message that resembles it most."""
    expected_lines = expected.splitlines()
    actual_lines = actual.splitlines() or [""]
    if len(expected_lines) > 1:
        diff = difflib.unified_diff(expected_lines, actual_lines, lineterm="", n=1)
        return _cap([d if d.startswith("@@") else f"{d[:1]} {d[1:]}" for d in list(diff)[2:]])
    return _line_diff(expected, _closest_stretch(expected, actual_lines))


def _closest_stretch(expected: str, lines: list[str]) -> str:
    """The part of `lines` most like `expected`: a window of its length, widened to words."""
    width = max(len(expected), 1)
    best, best_ratio = lines[0], -1.0
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(expected)
    for text in lines:
        if len(text) <= width or len(text) > 4000:
            starts = [0]
        else:
            starts = list(range(0, len(text) - width + 1))
        for start in starts:
            window = text[start : start + width]
            matcher.set_seq1(window)
            if matcher.real_quick_ratio() <= best_ratio or matcher.quick_ratio() <= best_ratio:
                continue
            ratio = matcher.ratio()
            if ratio > best_ratio:
                best, best_ratio = _widen(text, start, start + width), ratio
    return best


def _widen(text: str, start: int, end: int) -> str:
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    while end < len(text) and not text[end].isspace():
        end += 1
    return text[start:end].strip()


@cache
def document_text_function() -> Callable[[bytes], str] | None:
    """`engine.documents.document_text` when the documents feature is installed."""
    if importlib.util.find_spec("engine.documents") is None:
        return None
    module = importlib.import_module("engine.documents")
    return getattr(module, "document_text", None)
