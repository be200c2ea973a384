"""Telegram updates to engine events, and engine texts and buttons to Bot API values.

Pure functions, no I/O, so the rules read (and test) on their own:

- `read_update(update)` says what an update means for the bot (`Work`): an event for the
  engine, the callback query to answer, the keyboard to take off the pressed message, or
  nothing at all. The bot converses only in private chats:
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
- `keyboard(buttons)` is an inline keyboard with one button a row.
- `command_descriptions(language)` are the texts setMyCommands registers.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatType

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


def address(chat_id: int) -> Address:
    return Address(CHANNEL, str(chat_id))


def read_update(
    update: Update, bot_username: str | None = None, operator_chats: Collection[int] = ()
) -> Work:
    """What `update` asks of the bot (see the module docstring)."""
    if update.callback_query is not None:
        return _read_press(update)
    message = update.message
    if message is None:
        return NOTHING  # edited messages, channel posts, business messages...
    chat = message.chat
    sender = message.from_user
    if chat is not None and chat.id in operator_chats:
        attached = attachment(message) if message.text is None else None
        if sender is None or sender.is_bot or (message.text is None and attached is None):
            return NOTHING
        reply = message.reply_to_message
        name = f"@{sender.username}" if sender.username else sender.first_name
        text = strip_mention(message.text, bot_username) if message.text is not None else ""
        return Work(
            chat.id,
            operator=OperatorMessage(
                address(chat.id),
                str(reply.message_id) if reply is not None else None,
                name,
                text or message.caption or "",
                attached,
            ),
        )
    if chat is None or chat.type != ChatType.PRIVATE or sender is None or sender.is_bot:
        return NOTHING
    hint = sender.language_code
    if message.text is not None:
        text = strip_mention(message.text, bot_username)
        return Work(chat.id, Inbound.typed(address(chat.id), text, hint))
    attached = attachment(message)
    if attached is not None:
        return Work(chat.id, Inbound.file(address(chat.id), attached, message.caption or "", hint))
    if any(getattr(message, kind, None) for kind in UNSUPPORTED_CONTENT):
        return Work(chat.id, Inbound(InboundKind.UNSUPPORTED, address(chat.id), language_hint=hint))
    return NOTHING  # a service message (pinned, payment, chat background...)


def attachment(message: Message) -> Attachment | None:
    """The file a message carries, by reference (its file_id), with the name and type the
    sender's client gave, or a plain one for a photo or a voice message."""
    if message.document is not None:
        d = message.document
        return Attachment(d.file_id, d.file_name or "document", _mime(d.mime_type), _size(d))
    if message.photo:
        # Telegram sends each photo in several sizes: the largest is the one to read.
        p = max(message.photo, key=lambda size: (size.width * size.height, size.file_size or 0))
        return Attachment(p.file_id, "photo.jpg", "image/jpeg", _size(p))
    if message.video is not None:
        v = message.video
        return Attachment(
            v.file_id, v.file_name or "video.mp4", _mime(v.mime_type, "video/mp4"), _size(v)
        )
    if message.audio is not None:
        a = message.audio
        return Attachment(
            a.file_id, a.file_name or "audio.mp3", _mime(a.mime_type, "audio/mpeg"), _size(a)
        )
    if message.voice is not None:
        o = message.voice
        return Attachment(o.file_id, "voice.ogg", _mime(o.mime_type, "audio/ogg"), _size(o))
    return None


def _mime(value: str | None, default: str = "application/octet-stream") -> str:
    return value or default


def _size(file: object) -> int:
    size = getattr(file, "file_size", None)
    return size if isinstance(size, int) else 0


def _read_press(update: Update) -> Work:
    query = update.callback_query
    assert query is not None
    message = query.message
    chat = message.chat if message is not None else None
    if chat is None or chat.type != ChatType.PRIVATE or query.data is None:
        return Work(None, callback_query_id=query.id)  # inline or group message: just answer
    markup = getattr(message, "reply_markup", None)
    shows_keyboard = markup is not None and any(markup.inline_keyboard)
    assert message is not None
    return Work(
        chat.id,
        Inbound.press(address(chat.id), query.data, query.from_user.language_code),
        callback_query_id=query.id,
        keyboard=(chat.id, message.message_id) if shows_keyboard else None,
    )


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


def keyboard(buttons: Sequence[Button]) -> InlineKeyboardMarkup | None:
    """One button a row; callback_data is the engine's short payload."""
    if not buttons:
        return None
    rows = []
    for button in buttons:
        if not 1 <= len(button.payload.encode()) <= MAX_CALLBACK_DATA:
            raise ValueError(
                f"button payload of {len(button.payload.encode())} bytes: Telegram's "
                f"callback_data holds 1 to {MAX_CALLBACK_DATA}"
            )
        rows.append([InlineKeyboardButton(button.label, callback_data=button.payload)])
    return InlineKeyboardMarkup(rows)


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
