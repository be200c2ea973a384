"""What flows in and out of the engine: sessions, inbound events and outbound actions.

All plain values. A channel adapter turns its updates into `Inbound` events and carries
out the `Action`s the engine returns; the engine itself never performs I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# --------------------------------------------------------------------------- addresses


@dataclass(frozen=True, slots=True)
class Address:
    """Where a message goes: a channel ('telegram', 'matrix', 'console') and its chat id."""

    channel: str
    chat: str


# --------------------------------------------------------------------------- inbound


class InboundKind(StrEnum):
    TEXT = "text"  # something typed (commands are recognised by the engine)
    PRESS = "press"  # a button pressed; `payload` is the button's payload
    CLOSE = "close"  # an operator closed the person's hand-over
    UNSUPPORTED = "unsupported"  # a sticker, location, poll...: answered politely
    # A document or photo (`Inbound.attachment`): passed on to the lawyer during a hand-over,
    # otherwise answered like UNSUPPORTED. `text` is its caption, if any.
    FILE = "file"


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file, by reference: the channel it arrived on fetches the bytes only when the file
    is passed on (`Channel.fetch_file(ref)`), so events and stored actions stay small.

    `ref` is that channel's own handle (a Telegram file_id, a Matrix mxc:// URL or the
    encrypted file's info), `size` the size it reported (0: unknown). Like a message's text,
    none of it is ever logged."""

    ref: str
    file_name: str
    mime_type: str
    size: int = 0


@dataclass(frozen=True, slots=True)
class Inbound:
    kind: InboundKind
    address: Address
    text: str = ""
    payload: str = ""
    language_hint: str | None = None  # e.g. Telegram's language_code
    # The channel's id of the update ("tg:<update_id>", a Matrix event id): a stored step
    # remembers it, so the same update delivered again is not handled twice. "" = none.
    event_id: str = ""
    attachment: Attachment | None = None  # with InboundKind.FILE

    @staticmethod
    def typed(address: Address, text: str, language_hint: str | None = None) -> Inbound:
        return Inbound(InboundKind.TEXT, address, text=text, language_hint=language_hint)

    @staticmethod
    def press(address: Address, payload: str, language_hint: str | None = None) -> Inbound:
        return Inbound(InboundKind.PRESS, address, payload=payload, language_hint=language_hint)

    @staticmethod
    def file(
        address: Address,
        attachment: Attachment,
        caption: str = "",
        language_hint: str | None = None,
    ) -> Inbound:
        return Inbound(
            InboundKind.FILE,
            address,
            text=caption,
            language_hint=language_hint,
            attachment=attachment,
        )


# --------------------------------------------------------------------------- outbound


@dataclass(frozen=True, slots=True)
class Button:
    label: str
    payload: str  # short and opaque: "<turn>.<index>", fits Telegram's 64-byte callback_data


@dataclass(frozen=True, slots=True)
class SendText:
    to: Address
    text: str
    buttons: tuple[Button, ...] = ()


DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


class SendDocument:
    """A document for the person, as its own message.

    `data` may be given as bytes or as a function that makes them: filling a Word template
    costs tens of milliseconds of CPU, so the engine only prepares the document and the
    bytes are made on first use of `data` (the serving hub does that in a worker thread,
    off the conversation's path). `fallback_text` is what to send instead if making it
    fails, in the person's language."""

    __slots__ = ("_data", "_make", "fallback_text", "file_name", "mime_type", "to")

    def __init__(
        self,
        to: Address,
        file_name: str,
        data: bytes | Callable[[], bytes],
        mime_type: str = DOCX_MIME,
        fallback_text: str = "",
    ) -> None:
        self.to = to
        self.file_name = file_name
        self.mime_type = mime_type
        self.fallback_text = fallback_text
        if isinstance(data, bytes | bytearray):
            self._data: bytes | None = bytes(data)
            self._make: Callable[[], bytes] | None = None
        else:
            self._data, self._make = None, data

    @property
    def data(self) -> bytes:
        """The document's bytes, made now if they were not yet (may raise DocumentError)."""
        if self._data is None:
            assert self._make is not None
            self._data = self._make()
            self._make = None
        return self._data

    @property
    def ready(self) -> bool:
        return self._data is not None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SendDocument):
            return NotImplemented
        return (self.to, self.file_name, self.mime_type, self.data) == (
            other.to,
            other.file_name,
            other.mime_type,
            other.data,
        )

    __hash__ = None  # type: ignore[assignment]  # mutable cache inside

    def __repr__(self) -> str:
        size = f"{len(self._data)} bytes" if self._data is not None else "not made yet"
        return f"SendDocument(to={self.to!r}, file_name={self.file_name!r}, {size})"


@dataclass(frozen=True, slots=True)
class HandoverContext:
    """What the operators see about a case: the path taken and the answers, nothing else."""

    language: str
    path: tuple[str, ...]
    answers: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class StartHandover:
    """Open a case in `queue`; `serve` routes it to that queue's operators' room."""

    user: Address
    queue: str
    context: HandoverContext


@dataclass(frozen=True, slots=True)
class RelayToOperator:
    """A message the person wrote while their case is open; with `attachment`, a file they
    sent (`text` is then its caption, possibly empty)."""

    user: Address
    queue: str
    text: str
    attachment: Attachment | None = None


@dataclass(frozen=True, slots=True)
class CancelHandover:
    user: Address
    queue: str


@dataclass(frozen=True, slots=True)
class ForgetUser:
    """Delete everything stored about this person (the engine drops the session itself)."""

    user: Address


Action = SendText | SendDocument | StartHandover | RelayToOperator | CancelHandover | ForgetUser


# --------------------------------------------------------------------------- session


class Status(StrEnum):
    IDLE = "idle"  # nothing active: typed text is routed, buttons are stale
    MENU = "menu"  # the menu is on screen: its buttons start flows
    ASKING = "asking"  # a step waits for an answer
    HANDOVER = "handover"  # a human has the conversation


@dataclass(frozen=True, slots=True)
class Frame:
    """A question the person was at, for /back: the step and the call stack then."""

    flow: str
    step: str
    stack: tuple[tuple[str, str], ...]


@dataclass(slots=True)
class Session:
    """One person's conversation. Small on purpose: many thousands are kept at once."""

    key: str
    language: str
    status: Status = Status.IDLE
    flow: str | None = None
    step: str | None = None
    # Call steps waiting for the called flow to end, innermost last.
    stack: list[tuple[str, str]] = field(default_factory=list)
    answers: dict[str, Any] = field(default_factory=dict)
    history: list[Frame] = field(default_factory=list)
    turn: int = 0  # bumped whenever new buttons are shown; stale presses are detected by it
    queue: str | None = None
    path: list[str] = field(default_factory=list)  # flows entered, for the operators' ticket
    # While the menu is on screen: [] for the bot's menu, else the flows a "did you mean"
    # offered (LAWYER_OFFER for its lawyer button), which its buttons start in order.
    offers: list[str] = field(default_factory=list)
    updated: float = 0.0

    def copy(self) -> Session:
        return Session(
            key=self.key,
            language=self.language,
            status=self.status,
            flow=self.flow,
            step=self.step,
            stack=list(self.stack),
            answers=dict(self.answers),
            history=list(self.history),
            turn=self.turn,
            queue=self.queue,
            path=list(self.path),
            offers=list(self.offers),
            updated=self.updated,
        )

    # ------------------------------------------------------------------ serialisation
    # A compact JSON-able form for the stores; dates are tagged so they come back as dates.

    def to_record(self) -> dict[str, Any]:
        return {
            "v": 1,
            "l": self.language,
            "s": self.status.value,
            "f": self.flow,
            "p": self.step,
            "k": self.stack,
            "a": {k: _encode(v) for k, v in self.answers.items()},
            "h": [[f.flow, f.step, f.stack] for f in self.history],
            "t": self.turn,
            "q": self.queue,
            "w": self.path,
            "o": self.offers,
            "u": self.updated,
        }

    @staticmethod
    def from_record(key: str, record: dict[str, Any]) -> Session:
        return Session(
            key=key,
            language=record["l"],
            status=Status(record["s"]),
            flow=record["f"],
            step=record["p"],
            stack=[(a, b) for a, b in record["k"]],
            answers={k: _decode(v) for k, v in record["a"].items()},
            history=[Frame(f, s, tuple((a, b) for a, b in k)) for f, s, k in record["h"]],
            turn=record["t"],
            queue=record["q"],
            path=list(record["w"]),
            offers=list(record.get("o", ())),
            updated=record["u"],
        )


def _encode(value: Any) -> Any:
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and "$date" in value:
        return dt.date.fromisoformat(value["$date"])
    return value
