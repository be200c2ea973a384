"""Reading typed answers: each input type turns text into a value or refuses it.

Refusals are normal (people mistype); they are values, never exceptions, and they never
carry the answer itself anywhere but back into the conversation.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable

from engine.model import InputSpec, InputType

# Any answer is cut at this length before anything else looks at it: a 100 kB message must
# cost nothing and can never reach a document or the store.
MAX_ANSWER_CHARS = 4096

_DATE_FORMATS = (
    re.compile(r"^(?P<d>\d{1,2})\.(?P<m>\d{1,2})\.(?P<y>\d{4})$"),
    re.compile(r"^(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})$"),
    re.compile(r"^(?P<d>\d{1,2})/(?P<m>\d{1,2})/(?P<y>\d{4})$"),
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]{2,}$")
_PHONE_CHARS = re.compile(r"[\s\-().]")
_PHONE = re.compile(r"^\+?\d{7,15}$")
_CONTROL = {c for c in range(32) if chr(c) not in "\n\t"}
_CONTROL_TABLE = dict.fromkeys(_CONTROL)


class Refused:
    """A typed answer that does not fit the input; `reason` is for tests and logs."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"Refused({self.reason!r})"


def clean(text: str) -> str:
    """Strip control characters and surrounding space; normalise Unicode to NFC."""
    if len(text) > MAX_ANSWER_CHARS * 2:
        text = text[: MAX_ANSWER_CHARS * 2]
    if not text.isprintable():  # fast C check; most answers have nothing to strip
        text = text.translate(_CONTROL_TABLE)
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return text.strip()


def normalise_label(text: str) -> str:
    """For comparing typed text with a button: case, spaces and punctuation ignored."""
    kept = [ch for ch in text.casefold() if ch.isalnum()]
    return "".join(kept).replace("ё", "е")


def parse_date(text: str) -> dt.date | None:
    for pattern in _DATE_FORMATS:
        match = pattern.match(text)
        if match:
            try:
                return dt.date(int(match["y"]), int(match["m"]), int(match["d"]))
            except ValueError:
                return None  # 31.02.2004: a date that does not exist
    return None


def _text(spec: InputSpec, text: str) -> object:
    if spec.min_length is not None and len(text) < spec.min_length:
        return Refused("too short")
    if spec.max_length is not None and len(text) > spec.max_length:
        return Refused("too long")
    return text


def _integer(spec: InputSpec, text: str) -> object:
    candidate = text.replace(" ", "").replace("\u00a0", "")
    if not re.fullmatch(r"[-+]?\d{1,15}", candidate):
        return Refused("not a whole number")
    return _in_range(spec, int(candidate))


def _number(spec: InputSpec, text: str) -> object:
    candidate = text.replace(" ", "").replace("\u00a0", "").replace(",", ".")
    if not re.fullmatch(r"[-+]?(\d{1,15}(\.\d{0,10})?|\.\d{1,10})", candidate):
        return Refused("not a number")
    return _in_range(spec, float(candidate))


def _in_range(spec: InputSpec, value: float) -> object:
    if spec.minimum is not None and value < spec.minimum:
        return Refused("below minimum")
    if spec.maximum is not None and value > spec.maximum:
        return Refused("above maximum")
    return value


def _date(spec: InputSpec, text: str) -> object:
    value = parse_date(text)
    if value is None:
        return Refused("not a date")
    if not dt.date(1900, 1, 1) <= value <= dt.date(2200, 12, 31):
        return Refused("date out of range")
    return value


def _phone(spec: InputSpec, text: str) -> object:
    candidate = _PHONE_CHARS.sub("", text)
    if not _PHONE.match(candidate):
        return Refused("not a phone number")
    return candidate


def _email(spec: InputSpec, text: str) -> object:
    if len(text) > 254 or not _EMAIL.match(text):
        return Refused("not an e-mail address")
    return text


def _regex(spec: InputSpec, text: str) -> object:
    assert spec.pattern is not None
    if len(text) > 1000 or not re.fullmatch(spec.pattern, text):
        return Refused("does not match the pattern")
    return text


_READERS: dict[InputType, Callable[[InputSpec, str], object]] = {
    InputType.TEXT: _text,
    InputType.INTEGER: _integer,
    InputType.NUMBER: _number,
    InputType.DATE: _date,
    InputType.PHONE: _phone,
    InputType.EMAIL: _email,
    InputType.REGEX: _regex,
}


def read_answer(spec: InputSpec, text: str, options: list[str] | None = None) -> object:
    """The value to save, or a `Refused`. `options`: one_of labels in the user's language."""
    text = clean(text)
    if not text:
        return Refused("empty")
    if len(text) > MAX_ANSWER_CHARS:
        return Refused("too long")
    if spec.type is InputType.ONE_OF:
        return match_option(text, options or [])
    return _READERS[spec.type](spec, text)


def match_option(text: str, labels: list[str]) -> object:
    """Typed text -> a label by its number, by equal words, or by a unique close match."""
    stripped = text.strip().rstrip(".)")
    if stripped.isdigit() and 1 <= int(stripped) <= len(labels):
        return labels[int(stripped) - 1]
    wanted = normalise_label(text)
    if not wanted:
        return Refused("no option")
    for label in labels:
        if normalise_label(label) == wanted:
            return label
    # A typed answer that plainly resembles one label (a typo, a missing word) counts as it.
    from difflib import SequenceMatcher

    scored = sorted(
        (
            (SequenceMatcher(None, wanted, normalise_label(label)).ratio(), label)
            for label in labels
        ),
        reverse=True,
    )
    if scored and scored[0][0] >= 0.85 and (len(scored) == 1 or scored[1][0] < scored[0][0] - 0.1):
        return scored[0][1]
    return Refused("no option")
