"""Reading transcript files (SPEC "Transcript format") with FILE:LINE:COL for every problem.

A transcript is read with the same care as a flow: `engine.yamlsafe` (no tags, no aliases,
no duplicate keys, positions everywhere), then every key and value is checked and every
problem is reported, not just the first. A transcript with any problem is not replayed.

    transcript: Conscript asks about ACS        # title (required)
    language: ru                                # the user's language as a channel reports it
    now: 2026-03-01T10:00                       # optional: the engine's clock for this replay
    channel: telegram                           # optional: replay only on that channel
    flows: ../../flows                          # optional: relative to this file
    steps:
      - user: /start                            # typed text (commands too)
      - bot: Здравствуйте                       # substring of the next message; /re/ searches
        buttons: [Мне пришла повестка, ...]     # optional: exact labels, in order
      - press: Мне пришла повестка              # press the button with that label
      - document: Заявление.docx                # the next message is this document...
        contains: [Иванов]                      # ...and its text contains these
      - handover: lawyers                       # a hand-over to that queue happened
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from engine.diagnostics import Position, Report, did_you_mean
from engine.yamlsafe import LocatedList, LocatedMap, YamlProblem, load_yaml

MAX_FILE_BYTES = 2_000_000
CHANNELS = ("console", "telegram", "matrix")
TOP_KEYS = ("transcript", "language", "now", "channel", "flows", "steps")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$")


class LineKind(StrEnum):
    USER = "user"  # typed text
    PRESS = "press"  # a button pressed by its label
    BOT = "bot"  # the next bot message
    DOCUMENT = "document"  # the next bot message is a document
    HANDOVER = "handover"  # a hand-over happened (consumes no message)


# Keys that may accompany a line of one kind.
_EXTRAS: dict[str, LineKind] = {"buttons": LineKind.BOT, "contains": LineKind.DOCUMENT}
_KIND_NAMES = frozenset(kind.value for kind in LineKind)
_STEP_KEYS = (*(kind.value for kind in LineKind), *_EXTRAS)


@dataclass(frozen=True, slots=True)
class Line:
    """One step of a transcript. `text` is the value after the key, as written."""

    kind: LineKind
    text: str
    position: Position
    pattern: re.Pattern[str] | None = None  # a bot line written as /regex/
    buttons: tuple[str, ...] | None = None  # bot: the exact labels in order; None: unchecked
    contains: tuple[str, ...] = ()  # document: texts the document must contain

    def __str__(self) -> str:
        return f"{self.kind.value}: {self.text}"

    def describe(self) -> str:
        """What this line expects, as the start of a failure message."""
        if self.kind is LineKind.BOT:
            text = self.text.replace("\n", "\\n")  # the headline stays one line
            what = (
                f"a bot message matching {text}"
                if self.pattern is not None
                else f'a bot message containing "{text}"'
            )
            if self.buttons is not None:
                what += " with " + (
                    "the buttons " + " ".join(f"[{b}]" for b in self.buttons)
                    if self.buttons
                    else "no buttons"
                )
            return what
        if self.kind is LineKind.DOCUMENT:
            return f'a document "{self.text}"'
        if self.kind is LineKind.HANDOVER:
            return f'a hand-over to the "{self.text}" queue'
        return str(self)


@dataclass(frozen=True, slots=True)
class Transcript:
    file: str  # as displayed in messages (the path it was found under)
    title: str
    language: str | None  # None: the channel reports no language
    lines: tuple[Line, ...]
    now: dt.datetime | None = None  # None: the real clock
    channel: str | None = None  # None: every channel
    flows: Path | None = None  # the flows folder, resolved against the file's folder


# --------------------------------------------------------------------------- finding files


def find_transcripts(paths: Iterable[str | Path]) -> tuple[list[Path], list[str]]:
    """Transcript files under `paths` (a file as it is, a folder's *.yaml recursively, sorted)
    and the paths that do not exist."""
    found: list[Path] = []
    missing: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*.yaml") if p.is_file()))
        elif path.is_file():
            found.append(path)
        else:
            missing.append(str(raw))
    return found, missing


# --------------------------------------------------------------------------- reading


def load_transcript(
    path: str | Path, display: str | None = None
) -> tuple[Transcript | None, Report]:
    """Read one transcript file. The Transcript is None whenever the report has an error."""
    path = Path(path)
    display = display if display is not None else str(path)
    report = Report()
    try:
        data = path.read_bytes()
    except OSError as err:
        report.error(display, Position(), f"cannot read the file: {err.strerror}")
        return None, report
    if len(data) > MAX_FILE_BYTES:
        report.error(display, Position(), f"file larger than {MAX_FILE_BYTES} bytes; split it")
        return None, report
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        report.error(display, Position(), f"not UTF-8 text (byte {err.start}); save it as UTF-8")
        return None, report
    return parse_transcript(text, display, path.parent, report)


def parse_transcript(
    text: str, display: str, base: Path, report: Report | None = None
) -> tuple[Transcript | None, Report]:
    """Read a transcript from text; `base` is the folder a relative `flows:` starts from."""
    report = report if report is not None else Report()
    try:
        document, problems = load_yaml(text)
    except YamlProblem as problem:
        report.error(display, problem.position, problem.message)
        return None, report
    for problem in problems:
        report.error(display, problem.position, problem.message)
    transcript = _Reader(display, base, report).transcript(document)
    return (transcript if report.ok else None), report


class _Reader:
    __slots__ = ("base", "file", "report")

    def __init__(self, file: str, base: Path, report: Report) -> None:
        self.file = file
        self.base = base
        self.report = report

    def error(self, position: Position, message: str) -> None:
        self.report.error(self.file, position, message)

    def transcript(self, document: Any) -> Transcript | None:
        if not isinstance(document, LocatedMap):
            where = document.position if isinstance(document, LocatedList) else Position()
            self.error(
                where,
                "a transcript is a mapping with the keys transcript:, language: and steps: "
                "(see SPEC, 'Transcript format')",
            )
            return None
        for key in document:
            if key not in TOP_KEYS:
                hint = did_you_mean(key, TOP_KEYS) or f"; allowed here: {', '.join(TOP_KEYS)}"
                self.error(document.key_at(key), f"unknown key '{key}'{hint}")
        title = self.title(document)
        language = self.language(document)
        now = self.now(document)
        channel = self.channel(document)
        flows = self.flows(document)
        lines = self.steps(document)
        if title is None or lines is None:
            return None
        return Transcript(self.file, title, language, lines, now, channel, flows)

    # ------------------------------------------------------------------ top-level keys

    def title(self, document: LocatedMap) -> str | None:
        if "transcript" not in document:
            self.error(
                document.position,
                "missing the required key 'transcript' (the transcript's title, e.g. "
                "'transcript: Conscript asks about ACS')",
            )
            return None
        title = _text(document, "transcript")
        if not title:
            self.error(document.value_at("transcript"), "transcript: write a title as text")
            return None
        return title

    def language(self, document: LocatedMap) -> str | None:
        if "language" not in document:
            return None
        language = _text(document, "language")
        if language is None or not _LANGUAGE.match(language):
            self.error(
                document.value_at("language"),
                "language: write a language code such as ru or en",
            )
            return None
        return language

    def now(self, document: LocatedMap) -> dt.datetime | None:
        if "now" not in document:
            return None
        value = document["now"]
        if isinstance(value, dt.datetime):
            return value
        if isinstance(value, dt.date):
            return dt.datetime.combine(value, dt.time(12, 0))
        if isinstance(value, str):
            try:
                parsed = dt.datetime.fromisoformat(value.strip())
            except ValueError:
                pass
            else:
                if len(value.strip()) == 10:  # a bare date: noon, far from midnight
                    parsed = parsed.replace(hour=12)
                return parsed
        self.error(
            document.value_at("now"),
            "now: write a date or a date and time, such as 2026-03-01 or 2026-03-01T10:00",
        )
        return None

    def channel(self, document: LocatedMap) -> str | None:
        if "channel" not in document:
            return None
        channel = _text(document, "channel")
        if channel not in CHANNELS:
            hint = did_you_mean(channel or "", CHANNELS)
            self.error(
                document.value_at("channel"),
                f"channel: must be one of {', '.join(CHANNELS)}{hint}",
            )
            return None
        return channel

    def flows(self, document: LocatedMap) -> Path | None:
        if "flows" not in document:
            return None
        folder = _text(document, "flows")
        if not folder:
            self.error(
                document.value_at("flows"),
                "flows: write the flows folder, relative to this transcript file",
            )
            return None
        return Path(os.path.normpath(self.base / folder))

    def steps(self, document: LocatedMap) -> tuple[Line, ...] | None:
        if "steps" not in document:
            self.error(document.position, "missing the required key 'steps' (the conversation)")
            return None
        raw = document["steps"]
        if not isinstance(raw, LocatedList):
            self.error(
                document.value_at("steps"),
                "steps: must be a list of lines such as '- user: /start' and '- bot: Hello'",
            )
            return None
        if not raw:
            self.error(document.value_at("steps"), "steps: the transcript has no steps")
            return None
        lines: list[Line] = []
        for index, item in enumerate(raw):
            line = self.line(item, raw.item_at(index))
            if line is not None:
                lines.append(line)
        return tuple(lines)

    # ------------------------------------------------------------------ one step

    def line(self, raw: Any, at: Position) -> Line | None:
        if not isinstance(raw, LocatedMap):
            self.error(
                at,
                "each step is one mapping such as '- user: /start', '- press: LABEL', "
                "'- bot: TEXT', '- document: NAME' or '- handover: QUEUE'",
            )
            return None
        broken = False
        for key in raw:
            if key not in _STEP_KEYS:
                hint = did_you_mean(key, _STEP_KEYS) or f"; allowed here: {', '.join(_STEP_KEYS)}"
                self.error(raw.key_at(key), f"unknown key '{key}' in a step{hint}")
                broken = True
        kinds = [LineKind(key) for key in raw if key in _KIND_NAMES]
        if not kinds:
            if not broken:
                self.error(
                    raw.position,
                    "this step has none of user:, press:, bot:, document:, handover:; "
                    "each step has exactly one",
                )
            return None
        if len(kinds) > 1:
            first, second = kinds[0].value, kinds[1].value
            self.error(
                raw.key_at(second),
                f"this step has both '{first}:' and '{second}:'; a step has exactly one: "
                "write each on its own '- ' line",
            )
            return None
        kind = kinds[0]
        for key, owner in _EXTRAS.items():
            if key in raw and owner is not kind:
                self.error(
                    raw.key_at(key),
                    f"'{key}:' belongs to a {owner.value}: line, not to a {kind.value}: line",
                )
                broken = True
        text = _text(raw, kind.value)
        if text is None or (not text and kind is not LineKind.BOT):
            self.error(raw.value_at(kind.value), f"{kind.value}: needs a text after it")
            return None
        if kind in (LineKind.USER, LineKind.PRESS, LineKind.HANDOVER):
            return None if broken else Line(kind, text, raw.position)
        if kind is LineKind.DOCUMENT:
            contains = self.texts(raw, "contains") if "contains" in raw else ()
            if broken or contains is None:
                return None
            return Line(kind, text, raw.position, contains=contains)
        pattern = self.pattern(raw, text)
        buttons = self.texts(raw, "buttons") if "buttons" in raw else None
        if broken or pattern is False or ("buttons" in raw and buttons is None):
            return None
        return Line(kind, text, raw.position, pattern=pattern or None, buttons=buttons)

    def pattern(self, raw: LocatedMap, text: str) -> re.Pattern[str] | bool | None:
        """The compiled /regex/ of a bot line; None: a plain text; False: a bad regex."""
        if not (len(text) >= 2 and text.startswith("/") and text.endswith("/")):
            return None
        source = text[1:-1]
        if not source:
            self.error(raw.value_at("bot"), "bot: // is an empty regular expression")
            return False
        try:
            return re.compile(source)
        except re.error as err:
            where = f" at character {err.pos + 1}" if err.pos is not None else ""
            self.error(
                raw.value_at("bot"),
                f"bot: {text} is not a valid regular expression: {err.msg}{where} "
                "(to match a text that starts and ends with '/', escape one: \\/)",
            )
            return False

    def texts(self, raw: LocatedMap, key: str) -> tuple[str, ...] | None:
        value = raw[key]
        example = "[Yes, No]" if key == "buttons" else "[Ivanov Ivan]"
        what = "button labels" if key == "buttons" else "texts"
        if not isinstance(value, LocatedList):
            self.error(raw.value_at(key), f"{key}: must be a list of {what}, e.g. {example}")
            return None
        items: list[str] = []
        ok = True
        for index, item in enumerate(value):
            text = _item_text(value, index)
            if text is None:
                kind = "a list" if isinstance(item, list) else "a mapping" if item else "empty"
                self.error(value.item_at(index), f"{key}: each item must be a text, not {kind}")
                ok = False
            else:
                items.append(text)
        return tuple(items) if ok else None


def _scalar_text(value: Any, written: str | None) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float | dt.date):
        # What YAML made of an unquoted `yes`, `2004` or `2026-03-01`: the text as written.
        return written if written is not None else str(value)
    return None


def _text(raw: LocatedMap, key: str) -> str | None:
    return _scalar_text(raw.get(key), raw.plain_scalars.get(key))


def _item_text(raw: LocatedList, index: int) -> str | None:
    return _scalar_text(raw[index], raw.plain_scalars.get(index))
