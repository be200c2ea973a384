"""Telegram updates to engine events, and engine texts and buttons to Bot API values.

Pure functions, no I/O, so the rules read (and test) on their own:

- `read_update(update)` says what an update (the raw JSON object, as getUpdates or the
  webhook delivers it) means for the bot (`Work`): an event for the engine (its event_id
  "tg:<update_id>"), the callback query to answer, the keyboard to take off the pressed
  message, or nothing at all. It reads the dozen fields the rules below need straight from
  the dict, their types checked (3 µs; parsing the whole update into python-telegram-bot
  objects first, `Update.de_json`, cost 64-111 µs: bench/README.md). An update missing a
  field the rules need, or with one of the wrong type, is `MalformedUpdate`. The bot
  converses only in private chats:
  * a text message -> `Inbound.typed` (commands are text; "/start@this_bot" loses the
    "@this_bot"); the user's `language_code` becomes the `language_hint`;
  * a button press -> `Inbound.press` with the button's callback_data; the query is always
    answered and the keyboard removed, stale or not;
  * a document, photo, video, audio file or voice message -> `Inbound.file` with an
    `Attachment` (its file_id as the reference, never the bytes) and the caption: during a
    hand-over the desk passes it on to the lawyer, otherwise the engine answers politely;
  * a sticker, location, poll... -> `InboundKind.UNSUPPORTED` (answered politely); its
    content is not kept;
  * a text or a file in one of the operators' groups (`operator_chats`, hand-over to
    lawyers) -> `Work.operator`, an `OperatorMessage` for the desk, never the engine: its
    thread is the message it replies to, its sender the operator's @username (or first
    name);
  * edited messages, channel posts, other group and supergroup chats, messages from bots
    and service messages -> ignored (nothing stored, nothing logged, no answer).
- `split_text(text)` cuts a text longer than Telegram's 4,096 characters (UTF-16 code
  units) at paragraph boundaries, then lines, then spaces, then anywhere.
- `keyboard(buttons)` is an inline keyboard (its JSON) with one button a row.
- `command_descriptions(language)` are the texts setMyCommands registers.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from telegram import TelegramObject, Update

from adapters.serve.channel import OperatorMessage
from engine.conversation import Address, Attachment, Button, Inbound, InboundKind

CHANNEL = "telegram"
MAX_TEXT = 4096
MAX_CALLBACK_DATA = 64
# Message contents a person sends that the bot cannot read: answered politely.
UNSUPPORTED_CONTENT = (
    "photo",
    "video",
    "voice",
    "audio",
    "animation",
    "sticker",
    "document",
    "video_note",
    "location",
    "venue",
    "contact",
    "poll",
    "dice",
    "game",
    "story",
    "paid_media",
    "checklist",
)
PRIVATE = "private"  # the chat type of a person's chat with the bot
# The update kinds the bot asks Telegram for (getUpdates and setWebhook).
ALLOWED_UPDATES = ("message", "callback_query")

COMMANDS = ("start", "back", "restart", "language", "lawyer", "forget", "help")
_DESCRIPTIONS: dict[str, dict[str, str]] = {
    "en": {
        "start": "Main menu",
        "back": "Previous step",
        "restart": "Start the topic again",
        "language": "Change the language",
        "lawyer": "Talk to a lawyer",
        "forget": "Delete everything the bot keeps about me",
        "help": "What the bot can do",
    },
    "ru": {
        "start": "Главное меню",
        "back": "На шаг назад",
        "restart": "Начать тему заново",
        "language": "Сменить язык",
        "lawyer": "Связаться с юристом",
        "forget": "Удалить всё, что бот обо мне хранит",
        "help": "Что умеет бот",
    },
    "uk": {
        "start": "Головне меню",
        "back": "Крок назад",
        "restart": "Почати тему знову",
        "language": "Змінити мову",
        "lawyer": "Зв'язатися з юристом",
        "forget": "Видалити все, що бот про мене зберігає",
        "help": "Що вміє бот",
    },
}


@dataclass(frozen=True, slots=True)
class Work:
    """What to do for one update. `chat`: the chat it belongs to (one at a time per chat);
    `event`: for the engine, if any; `callback_query_id`: answer it; `keyboard`:
    (chat id, message id) of the message whose inline keyboard was pressed; `operator`:
    for the hand-over desk (a message in an operators' group)."""

    chat: int | None
    event: Inbound | None = None
    callback_query_id: str | None = None
    keyboard: tuple[int, int] | None = None
    operator: OperatorMessage | None = None


NOTHING = Work(None)


class MalformedUpdate(ValueError):
    """An update without the shape the Bot API documents: a field the rules read is missing
    or of the wrong type. The message names the field, never a value (it may be anything a
    person wrote)."""


def address(chat_id: int) -> Address:
    return Address(CHANNEL, str(chat_id))


def read_update(
    update: Mapping[str, Any] | Update,
    bot_username: str | None = None,
    operator_chats: Collection[int] = (),
) -> Work:
    """What `update` asks of the bot (see the module docstring). `update` is the raw JSON
    object Telegram sent: only the fields the rules need are read, with their types checked
    (it is outside input); one the rules need that is missing or of the wrong type raises
    `MalformedUpdate`. A PTB `Update` is read through its `to_dict()`."""
    if isinstance(update, TelegramObject):
        update = update.to_dict()
    if not isinstance(update, Mapping):
        raise MalformedUpdate("update")
    update_id = update.get("update_id")
    if type(update_id) is not int:  # not bool either (a subclass of int)
        raise MalformedUpdate("update_id")
    # Telegram's update id identifies the update when it is delivered again.
    event_id = f"tg:{update_id}"
    query = update.get("callback_query")
    if query is not None:
        return _read_press(_as_object(query, "callback_query"), event_id)
    message = update.get("message")
    if message is None:
        return NOTHING  # edited messages, channel posts, business messages...
    message = _as_object(message, "message")
    chat = _need_object(message, "chat")
    chat_id = _int(chat, "id")
    sender = _object(message, "from")
    text = _str(message, "text")
    if chat_id in operator_chats:
        return _read_operator(message, chat_id, sender, text, bot_username)
    if _need_str(chat, "type") != PRIVATE or sender is None or _is_bot(sender):
        return NOTHING
    hint = _str(sender, "language_code")
    to = address(chat_id)
    if text is not None:
        text = strip_mention(text, bot_username)
        return Work(
            chat_id,
            Inbound(InboundKind.TEXT, to, text=text, language_hint=hint, event_id=event_id),
        )
    attached = attachment(message)
    if attached is not None:
        caption = _str(message, "caption") or ""
        return Work(
            chat_id,
            Inbound(
                InboundKind.FILE,
                to,
                text=caption,
                language_hint=hint,
                event_id=event_id,
                attachment=attached,
            ),
        )
    if any(message.get(kind) for kind in UNSUPPORTED_CONTENT):
        return Work(
            chat_id, Inbound(InboundKind.UNSUPPORTED, to, language_hint=hint, event_id=event_id)
        )
    return NOTHING  # a service message (pinned, payment, chat background...)


def _read_operator(
    message: Mapping[str, Any],
    chat_id: int,
    sender: Mapping[str, Any] | None,
    text: str | None,
    bot_username: str | None,
) -> Work:
    """A message in an operators' group: for the desk, never the engine."""
    attached = attachment(message) if text is None else None
    if sender is None or _is_bot(sender) or (text is None and attached is None):
        return NOTHING
    reply = _object(message, "reply_to_message")
    thread = str(_int(reply, "message_id")) if reply is not None else None
    username = _str(sender, "username")
    name = f"@{username}" if username else _need_str(sender, "first_name")
    said = strip_mention(text, bot_username) if text is not None else ""
    return Work(
        chat_id,
        operator=OperatorMessage(
            address(chat_id), thread, name, said or _str(message, "caption") or "", attached
        ),
    )


def _read_press(query: Mapping[str, Any], event_id: str) -> Work:
    query_id = _need_str(query, "id")
    sender = _need_object(query, "from")
    message = _object(query, "message")  # absent for a button of an inline message
    chat = _need_object(message, "chat") if message is not None else None
    data = _str(query, "data")  # absent for a game's button
    if chat is None or _need_str(chat, "type") != PRIVATE or data is None:
        return Work(None, callback_query_id=query_id)  # inline or group message: just answer
    assert message is not None
    chat_id = _int(chat, "id")
    hint = _str(sender, "language_code")
    # An inaccessible message (too old, date 0) comes without its keyboard: nothing to take
    # off; nor is there on a message whose keyboard was removed already (a stale press).
    markup = _object(message, "reply_markup")
    shows_keyboard = markup is not None and _has_buttons(markup)
    return Work(
        chat_id,
        Inbound(
            InboundKind.PRESS, address(chat_id), payload=data, language_hint=hint, event_id=event_id
        ),
        callback_query_id=query_id,
        keyboard=(chat_id, _int(message, "message_id")) if shows_keyboard else None,
    )


def attachment(message: Mapping[str, Any]) -> Attachment | None:
    """The file a message (raw JSON) carries, by reference (its file_id), with the name and
    type the sender's client gave, or a plain one for a photo or a voice message."""
    document = _object(message, "document")
    if document is not None:
        return _file(document, "document", "application/octet-stream", keep_name=True)
    photo = message.get("photo")
    if photo:
        if not isinstance(photo, list) or not all(isinstance(size, dict) for size in photo):
            raise MalformedUpdate("photo")
        # Telegram sends each photo in several sizes: the largest is the one to read.
        largest = max(photo, key=_photo_area)
        return _file(largest, "photo.jpg", "image/jpeg", keep_name=False, keep_type=False)
    video = _object(message, "video")
    if video is not None:
        return _file(video, "video.mp4", "video/mp4", keep_name=True)
    audio = _object(message, "audio")
    if audio is not None:
        return _file(audio, "audio.mp3", "audio/mpeg", keep_name=True)
    voice = _object(message, "voice")
    if voice is not None:
        return _file(voice, "voice.ogg", "audio/ogg", keep_name=False)
    return None


def _file(
    file: Mapping[str, Any],
    name: str,
    mime_type: str,
    *,
    keep_name: bool,
    keep_type: bool = True,
) -> Attachment:
    return Attachment(
        _need_str(file, "file_id"),
        (_str(file, "file_name") or name) if keep_name else name,
        (_str(file, "mime_type") or mime_type) if keep_type else mime_type,
        _size(file),
    )


def _photo_area(size: Mapping[str, Any]) -> tuple[int, int]:
    return _int(size, "width") * _int(size, "height"), _size(size)


def _size(file: Mapping[str, Any]) -> int:
    """The size the client reported; 0 (unknown) when it is not a whole number: it is only
    a hint, so a strange one does not cost the person their file."""
    size = file.get("file_size")
    return size if type(size) is int else 0


def _has_buttons(markup: Mapping[str, Any]) -> bool:
    rows = markup.get("inline_keyboard")
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise MalformedUpdate("inline_keyboard")
    return any(rows)


# The typed reading of a JSON object's fields. Telegram's JSON is outside input: a field the
# rules read that has the wrong type, or a `_need_...` one that is missing, is
# MalformedUpdate, which names the field, never its value.


def _as_object(value: object, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedUpdate(key)
    return value


def _object(parent: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    value = parent.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise MalformedUpdate(key)
    return value


def _need_object(parent: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = parent.get(key)
    if not isinstance(value, dict):
        raise MalformedUpdate(key)
    return value


def _str(parent: Mapping[str, Any], key: str) -> str | None:
    value = parent.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise MalformedUpdate(key)
    return value


def _need_str(parent: Mapping[str, Any], key: str) -> str:
    value = parent.get(key)
    if not isinstance(value, str):
        raise MalformedUpdate(key)
    return value


def _int(parent: Mapping[str, Any], key: str) -> int:
    """A required integer field (ids)."""
    value = parent.get(key)
    if type(value) is not int:  # not bool either (a subclass of int)
        raise MalformedUpdate(key)
    return value


def _is_bot(user: Mapping[str, Any]) -> bool:
    value = user.get("is_bot")
    if type(value) is not bool:
        raise MalformedUpdate("is_bot")
    return value


def strip_mention(text: str, bot_username: str | None) -> str:
    """'/start@this_bot now' -> '/start now' (only for this bot's own name)."""
    if not text.startswith("/") or not bot_username:
        return text
    head, space, rest = text.partition(" ")
    command, at, name = head.partition("@")
    if at and name.lower() == bot_username.lower():
        return command + space + rest
    return text


# --------------------------------------------------------------------------- outbound


def keyboard(buttons: Sequence[Button]) -> dict[str, Any] | None:
    """The reply_markup of an inline keyboard, one button a row; callback_data is the
    engine's short payload. Plain JSON rather than PTB's `InlineKeyboardMarkup`: the channel
    sends raw (`do_api_request`), and building the objects to turn them back into this very
    dict cost ~15 µs a message for nothing."""
    if not buttons:
        return None
    rows = []
    for button in buttons:
        if not 1 <= len(button.payload.encode()) <= MAX_CALLBACK_DATA:
            raise ValueError(
                f"button payload of {len(button.payload.encode())} bytes: Telegram's "
                f"callback_data holds 1 to {MAX_CALLBACK_DATA}"
            )
        rows.append([{"text": button.label, "callback_data": button.payload}])
    return {"inline_keyboard": rows}


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """`text` in parts of at most `limit` UTF-16 units: cut at paragraphs (blank lines),
    then at line ends, then at spaces, then anywhere. Blank parts are dropped."""
    if utf16_length(text) <= limit:
        return [text]
    return [part for part in _split(text, limit, ("\n\n", "\n", " ")) if part.strip()]


def _split(text: str, limit: int, separators: tuple[str, ...]) -> list[str]:
    if utf16_length(text) <= limit:
        return [text]
    if not separators:
        return _hard_split(text, limit)
    separator, finer = separators[0], separators[1:]
    parts: list[str] = []
    current: str | None = None
    for piece in text.split(separator):
        if utf16_length(piece) > limit:
            if current is not None:
                parts.append(current)
                current = None
            parts.extend(_split(piece, limit, finer))
            continue
        joined = piece if current is None else current + separator + piece
        if utf16_length(joined) <= limit:
            current = joined
        else:
            if current is not None:
                parts.append(current)
            current = piece
    if current is not None:
        parts.append(current)
    return parts


def _hard_split(text: str, limit: int) -> list[str]:
    parts: list[str] = []
    start = used = 0
    for index, char in enumerate(text):
        size = 2 if ord(char) > 0xFFFF else 1
        if used + size > limit:
            parts.append(text[start:index])
            start, used = index, 0
        used += size
    parts.append(text[start:])
    return parts


def command_descriptions(language: str) -> list[tuple[str, str]]:
    """(command, description) for setMyCommands, in `language` (English when unknown)."""
    texts = _DESCRIPTIONS.get(language, _DESCRIPTIONS["en"])
    return [(name, texts[name]) for name in COMMANDS]
