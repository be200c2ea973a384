"""Matrix events to what the bot understands, and actions to Matrix message contents.

Pure functions on plain dicts (an event's JSON as the homeserver sent it, or as nio
decrypted it): no network, no nio, so the unit tests need no homeserver.

Inbound, `classify(event)` says what an event is for the bot:
- `Typed(text)`: something the person wrote (m.text, m.emote); a reply's quoted fallback
  is cut off, and `!start` is read as `/start` (Matrix clients keep `/` for their own
  commands);
- `Reacted(target, number)`: a number reaction (1️⃣ .. 🔟) to one of the bot's messages;
- `Unsupported(kind)`: an image, file, audio, video, location, sticker, poll or call: the
  engine answers politely;
- `Ignored(kind)`: edits, redactions, notices (other bots), other reactions, state and
  anything unknown;
- `MalformedEvent` is raised for an event that does not have the shape its type needs.
`Typed.text` is the only part of an event that goes any further; `kind` values are for
counting, never content.

Outbound, `text_content` renders a `SendText`: the text, then the choices as a numbered
list, in a plain `body` and an HTML `formatted_body` (every text escaped), with the labels
also under `org.hotline.buttons` so that tools (the replay driver) need not parse the list
back. `file_content` renders an uploaded document as an `m.file`.

Files (hand-over to lawyers): `incoming_file(event)` is the `Attachment` of an m.file,
m.image, m.video or m.audio (its reference: the mxc:// URL, or for an encrypted file the
JSON of its `file` info with the keys to decrypt it) and its caption; the channel turns
it into `Inbound.file` instead of the polite "I can only read text".

Operators' rooms (hand-over to lawyers): `operator_message(event)` is what an operator
wrote and the thread it belongs to (a thread reply's root, or the event replied to);
`operator_file(event)` the same for a file; `room_post_content` posts in a room, as a
thread reply when given a thread root (`in_thread` adds that to any content);
`edit_content` replaces the text of one of the bot's messages (`m.replace`).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.conversation import Attachment
from engine.runtime import COMMANDS

BUTTONS_KEY = "org.hotline.buttons"
HTML_FORMAT = "org.matrix.custom.html"

# Keycap emoji as clients send them: digit, VS16, combining keycap; 🔟 for ten.
NUMBER_KEYS = (*(f"{d}\ufe0f\u20e3" for d in "123456789"), "\U0001f51f")
_VS16 = "\ufe0f"
_NUMBER_TEXT = re.compile(r"\s*(\d{1,3})\s*[.)]?\s*")

UNSUPPORTED_MSGTYPES = {
    "m.image": "image",
    "m.file": "file",
    "m.audio": "audio",
    "m.video": "video",
    "m.location": "location",
}
UNSUPPORTED_TYPES = {
    "m.sticker": "sticker",
    "m.call.invite": "call",
    "m.poll.start": "poll",
    "org.matrix.msc3381.poll.start": "poll",
}


class MalformedEvent(ValueError):
    """An event whose content does not have the shape its type requires."""


@dataclass(frozen=True, slots=True)
class Typed:
    text: str


@dataclass(frozen=True, slots=True)
class Reacted:
    target: str  # the event id reacted to
    number: int  # 1-based


@dataclass(frozen=True, slots=True)
class Unsupported:
    kind: str


@dataclass(frozen=True, slots=True)
class Ignored:
    kind: str


Incoming = Typed | Reacted | Unsupported | Ignored


# --------------------------------------------------------------------------- inbound


def classify(event: Mapping[str, Any]) -> Incoming:
    """What a (decrypted) room event means to the bot. Raises MalformedEvent."""
    kind = event.get("type")
    content = event.get("content")
    if not isinstance(kind, str) or not isinstance(content, Mapping):
        raise MalformedEvent("no type or content")
    if "state_key" in event:
        return Ignored("state")
    if kind == "m.room.message":
        return _message(content)
    if kind == "m.reaction":
        return _reaction(content)
    if kind in UNSUPPORTED_TYPES:
        return Unsupported(UNSUPPORTED_TYPES[kind])
    if kind == "m.room.redaction":
        return Ignored("redaction")
    if kind.startswith("m.call."):
        return Ignored("call")
    return Ignored("other")


def _message(content: Mapping[str, Any]) -> Incoming:
    if not content:
        return Ignored("redacted")  # a redacted message keeps an empty content
    relates = content.get("m.relates_to")
    if relates is not None and not isinstance(relates, Mapping):
        raise MalformedEvent("m.relates_to is not an object")
    if relates and relates.get("rel_type") == "m.replace":
        return Ignored("edit")
    msgtype = content.get("msgtype")
    if not isinstance(msgtype, str):
        raise MalformedEvent("no msgtype")
    if msgtype == "m.notice":
        return Ignored("notice")  # bots talk in notices; answering them loops
    if msgtype == "m.key.verification.request":
        return Ignored("verification")  # a client asking to verify the bot's device
    if msgtype in UNSUPPORTED_MSGTYPES:
        return Unsupported(UNSUPPORTED_MSGTYPES[msgtype])
    if msgtype not in ("m.text", "m.emote"):
        return Unsupported("other")
    body = content.get("body")
    if not isinstance(body, str):
        raise MalformedEvent("body is not a string")
    if relates and isinstance(relates.get("m.in_reply_to"), Mapping):
        body = strip_reply_fallback(body)
    text = command_text(body.strip())
    return Typed(text) if text else Ignored("empty")


def _reaction(content: Mapping[str, Any]) -> Incoming:
    relates = content.get("m.relates_to")
    if not isinstance(relates, Mapping) or relates.get("rel_type") != "m.annotation":
        return Ignored("reaction")
    target, key = relates.get("event_id"), relates.get("key")
    if not isinstance(target, str) or not isinstance(key, str):
        raise MalformedEvent("reaction without event_id or key")
    number = reaction_number(key)
    return Reacted(target, number) if number is not None else Ignored("reaction")


def reaction_number(key: str) -> int | None:
    """1 for 1️⃣ (with or without the variation selector) .. 10 for 🔟; else None."""
    key = key.replace(_VS16, "").strip()
    for index, known in enumerate(NUMBER_KEYS, 1):
        if key == known.replace(_VS16, ""):
            return index
    return None


def strip_reply_fallback(body: str) -> str:
    """Drop the `> <@someone> quoted` lines a client puts before a reply's own text."""
    lines = body.split("\n")
    if not lines or not lines[0].startswith("> "):
        return body
    index = 0
    while index < len(lines) and lines[index].startswith(">"):
        index += 1
    while index < len(lines) and not lines[index].strip():
        index += 1
    return "\n".join(lines[index:])


def command_text(text: str) -> str:
    """`!start` -> `/start` for the engine's commands; anything else unchanged."""
    if text.startswith("!"):
        word = text[1:].split(" ", 1)[0].lower()
        if word in COMMANDS:
            return "/" + text[1:]
    return text


def button_number(text: str, count: int) -> int | None:
    """The 1-based button a typed answer like "2", "2." or "2️⃣" picks among `count`."""
    match = _NUMBER_TEXT.fullmatch(text)
    number = int(match.group(1)) if match else reaction_number(text)
    if number is not None and 1 <= number <= count:
        return number
    return None


# --------------------------------------------------------------------------- outbound


def numbered(labels: Sequence[str]) -> str:
    return "\n".join(f"{i}. {label}" for i, label in enumerate(labels, 1))


def text_content(
    text: str, labels: Sequence[str] = (), msgtype: str = "m.notice"
) -> dict[str, Any]:
    """A `SendText` as m.room.message content: the choices as a numbered list."""
    if not labels:
        return {"msgtype": msgtype, "body": text}
    listing = numbered(labels)
    body = f"{text}\n\n{listing}" if text else listing
    items = "".join(f"<li>{html.escape(label)}</li>" for label in labels)
    lead = html.escape(text).replace("\n", "<br>")
    formatted = f"<p>{lead}</p><ol>{items}</ol>" if text else f"<ol>{items}</ol>"
    return {
        "msgtype": msgtype,
        "body": body,
        "format": HTML_FORMAT,
        "formatted_body": formatted,
        BUTTONS_KEY: list(labels),
    }


def split_body(content: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    """The text and the button labels of a message the bot sent (`text_content` reversed)."""
    body = content.get("body")
    body = body if isinstance(body, str) else ""
    labels = content.get(BUTTONS_KEY)
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        return body, ()
    listing = numbered(labels)
    if body == listing:
        return "", tuple(labels)
    if body.endswith("\n\n" + listing):
        return body[: -len(listing) - 2], tuple(labels)
    return body, tuple(labels)


def file_content(
    name: str,
    mime_type: str,
    size: int,
    url: str | None = None,
    encrypted_file: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An uploaded document as m.file content: `url` in a plain room, `file` (the
    decryption info with the url) in an encrypted one."""
    content: dict[str, Any] = {
        "msgtype": "m.file",
        "body": name,
        "filename": name,
        "info": {"mimetype": mime_type, "size": size},
    }
    if encrypted_file is not None:
        content["file"] = dict(encrypted_file)
    else:
        content["url"] = url
    return content


# --------------------------------------------------------------------------- operators' rooms


def operator_message(event: Mapping[str, Any]) -> tuple[str, str | None] | None:
    """(text, thread root or replied-to event id) of an operator's text message; None for
    anything else (edits, notices, files, state...). `!take` stays `!take`: the desk reads
    both `/` and `!`."""
    if event.get("type") != "m.room.message" or "state_key" in event:
        return None
    content = event.get("content")
    if not isinstance(content, Mapping) or content.get("msgtype") not in ("m.text", "m.emote"):
        return None
    body = content.get("body")
    relates = content.get("m.relates_to")
    if not isinstance(body, str):
        return None
    thread: str | None = None
    if isinstance(relates, Mapping):
        if relates.get("rel_type") == "m.replace":
            return None
        reply = relates.get("m.in_reply_to")
        if relates.get("rel_type") == "m.thread" and isinstance(relates.get("event_id"), str):
            thread = relates["event_id"]
        elif isinstance(reply, Mapping) and isinstance(reply.get("event_id"), str):
            thread = reply["event_id"]
            body = strip_reply_fallback(body)
    text = body.strip()
    return (text, thread) if text else None


def room_post_content(
    text: str, thread_id: str | None, msgtype: str = "m.notice"
) -> dict[str, Any]:
    """A plain message in an operators' room; in `thread_id`'s thread when given."""
    return in_thread({"msgtype": msgtype, "body": text}, thread_id)


def in_thread(content: dict[str, Any], thread_id: str | None) -> dict[str, Any]:
    """`content` as a reply in `thread_id`'s thread (with the reply fallback, so clients
    without threads show it as a reply); unchanged when `thread_id` is None."""
    if thread_id is not None:
        content["m.relates_to"] = {
            "rel_type": "m.thread",
            "event_id": thread_id,
            "is_falling_back": True,
            "m.in_reply_to": {"event_id": thread_id},
        }
    return content


FILE_MSGTYPES = {
    "m.file": "application/octet-stream",
    "m.image": "image/jpeg",
    "m.video": "video/mp4",
    "m.audio": "audio/ogg",
}


def incoming_file(event: Mapping[str, Any]) -> tuple[Attachment, str] | None:
    """(the file, its caption) of an m.file/m.image/m.video/m.audio message; None for
    anything else, or a file whose content does not say where it is."""
    if event.get("type") != "m.room.message" or "state_key" in event:
        return None
    content = event.get("content")
    if not isinstance(content, Mapping) or content.get("msgtype") not in FILE_MSGTYPES:
        return None
    relates = content.get("m.relates_to")
    if isinstance(relates, Mapping) and relates.get("rel_type") == "m.replace":
        return None
    encrypted = content.get("file")
    if isinstance(encrypted, Mapping) and isinstance(encrypted.get("url"), str):
        ref = json.dumps(dict(encrypted), separators=(",", ":"), sort_keys=True)
    elif isinstance(content.get("url"), str) and content["url"].startswith("mxc://"):
        ref = content["url"]
    else:
        return None
    body = content.get("body") if isinstance(content.get("body"), str) else ""
    filename = content.get("filename") if isinstance(content.get("filename"), str) else None
    # With a `filename`, `body` is a caption when it differs from it (as Element sends it).
    name = filename or body or "file"
    caption = body if filename and body and body != filename else ""
    info = content.get("info") if isinstance(content.get("info"), Mapping) else {}
    mime = info.get("mimetype")
    size = info.get("size")
    attachment = Attachment(
        ref,
        name,
        mime if isinstance(mime, str) and mime else FILE_MSGTYPES[content["msgtype"]],
        size if isinstance(size, int) and size >= 0 else 0,
    )
    return attachment, caption.strip()


def operator_file(event: Mapping[str, Any]) -> tuple[Attachment, str, str | None] | None:
    """(file, caption, thread root or replied-to event id) of a file an operator sent."""
    found = incoming_file(event)
    if found is None:
        return None
    relates = event["content"].get("m.relates_to")
    thread: str | None = None
    if isinstance(relates, Mapping):
        reply = relates.get("m.in_reply_to")
        if relates.get("rel_type") == "m.thread" and isinstance(relates.get("event_id"), str):
            thread = relates["event_id"]
        elif isinstance(reply, Mapping) and isinstance(reply.get("event_id"), str):
            thread = reply["event_id"]
    return found[0], found[1], thread


def edit_content(text: str, event_id: str, msgtype: str = "m.notice") -> dict[str, Any]:
    """Replace the text of the bot's event `event_id`."""
    return {
        "msgtype": msgtype,
        "body": f"* {text}",
        "m.new_content": {"msgtype": msgtype, "body": text},
        "m.relates_to": {"rel_type": "m.replace", "event_id": event_id},
    }
