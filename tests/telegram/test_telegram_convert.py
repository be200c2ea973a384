"""The pure parts: reading updates, splitting texts, keyboards, the config and the token."""

from __future__ import annotations

from typing import Any

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update

from adapters.serve.channel import OperatorMessage
from adapters.serve.config import ConfigError
from adapters.telegram import build_channel
from adapters.telegram.config import parse_config
from adapters.telegram.convert import (
    MAX_TEXT,
    NOTHING,
    MalformedUpdate,
    Work,
    keyboard,
    read_update,
    split_text,
    strip_mention,
    utf16_length,
)
from adapters.telegram.logging import TokenRedactor
from engine.conversation import Address, Attachment, Button, InboundKind

OCTETS = "application/octet-stream"

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1"


def _update(**body: Any) -> dict[str, Any]:
    """A raw update, as getUpdates or the webhook delivers it."""
    return {"update_id": 1, **body}


def _message(text: str | None = "hi", chat_type: str = "private", **extra: Any) -> dict[str, Any]:
    chat: dict[str, Any] = {"id": 5, "type": chat_type}
    message: dict[str, Any] = {
        "message_id": 1,
        "date": 1,
        "chat": chat,
        "from": {"id": 5, "is_bot": False, "first_name": "A", "language_code": "ru"},
        **extra,
    }
    if text is not None:
        message["text"] = text
    return message


def _query(**changes: Any) -> dict[str, Any]:
    """A press on a private message that shows a keyboard."""
    markup = {"inline_keyboard": [[{"text": "A", "callback_data": "2.0"}]]}
    query = {
        "id": "77",
        "from": {"id": 5, "is_bot": False, "first_name": "A", "language_code": "en"},
        "chat_instance": "1",
        "data": "2.0",
        "message": {**_message("Pick"), "reply_markup": markup},
    }
    query.update(changes)
    return query


def test_reading_messages() -> None:
    work = read_update(_update(message=_message("/start@Hotline_Bot now")), "hotline_bot")
    assert work.chat == 5 and work.event is not None
    assert work.event.kind is InboundKind.TEXT and work.event.text == "/start now"
    assert work.event.language_hint == "ru" and work.event.address.chat == "5"
    # Telegram's update id: the same update delivered again is recognised by it.
    assert work.event.event_id == "tg:1"
    photo = [{"file_id": "x", "file_unique_id": "y", "width": 1, "height": 1}]
    work = read_update(_update(message=_message(None, photo=photo, caption="secret")))
    # A photo is a file, by reference, for the lawyer during a hand-over; outside one the
    # engine answers it politely and keeps nothing of it (tests/test_handover_desk.py).
    assert work.event is not None and work.event.kind is InboundKind.FILE
    assert work.event.attachment is not None and work.event.attachment.ref == "x"
    assert work.event.text == "secret" and work.event.event_id == "tg:1"
    assert read_update(_update(message=_message(chat_type="group"))).event is None
    assert read_update(_update(message=_message(chat_type="supergroup"))).event is None
    assert read_update(_update(edited_message=_message())).event is None
    assert read_update(_update(channel_post=_message(chat_type="channel"))).event is None
    service = _message(
        None, pinned_message={"message_id": 1, "date": 0, "chat": {"id": 5, "type": "private"}}
    )
    assert read_update(_update(message=service)).chat is None
    bot = _message()
    bot["from"] = {"id": 6, "is_bot": True, "first_name": "B"}
    assert read_update(_update(message=bot)) == NOTHING
    del bot["from"]  # a message on behalf of a chat: no person to answer
    assert read_update(_update(message=bot)) == NOTHING


def test_reading_every_kind_of_content() -> None:
    sticker = {"file_id": "s", "file_unique_id": "s", "type": "regular", "width": 1, "height": 1}
    for content in ({"sticker": sticker}, {"location": {"latitude": 1.0, "longitude": 2.0}}):
        work = read_update(_update(message=_message(None, **content)))
        assert work.chat == 5 and work.event is not None
        assert work.event.kind is InboundKind.UNSUPPORTED and work.event.language_hint == "ru"
        assert work.event.text == "" and work.event.attachment is None  # nothing of it kept
    files = {
        "document": ({"file_id": "d", "file_unique_id": "u"}, ("document", OCTETS, 0)),
        "video": (
            {"file_id": "d", "file_unique_id": "u", "width": 1, "height": 1, "duration": 1},
            ("video.mp4", "video/mp4", 0),
        ),
        "audio": (
            {"file_id": "d", "file_unique_id": "u", "duration": 1, "file_name": "talk.m4a"},
            ("talk.m4a", "audio/mpeg", 0),
        ),
        "voice": (
            {"file_id": "d", "file_unique_id": "u", "duration": 1, "mime_type": "audio/opus"},
            ("voice.ogg", "audio/opus", 0),
        ),
    }
    for kind, (file, (name, mime_type, size)) in files.items():
        work = read_update(_update(message=_message(None, **{kind: file})))
        assert work.event is not None and work.event.kind is InboundKind.FILE, kind
        assert work.event.attachment == Attachment("d", name, mime_type, size), kind
        assert work.event.text == ""  # no caption
    photo = [
        {"file_id": "small", "file_unique_id": "s", "width": 90, "height": 60, "file_size": 9},
        {"file_id": "big", "file_unique_id": "b", "width": 800, "height": 600, "file_size": 99},
        {"file_id": "mid", "file_unique_id": "m", "width": 320, "height": 240},
    ]
    work = read_update(_update(message=_message(None, photo=photo)))
    assert work.event is not None
    assert work.event.attachment == Attachment("big", "photo.jpg", "image/jpeg", 99)
    # A size that is not a whole number is only a hint gone wrong: the file still counts.
    photo[1]["file_size"] = "99"
    work = read_update(_update(message=_message(None, photo=photo)))
    assert work.event is not None and work.event.attachment is not None
    assert work.event.attachment.size == 0


def test_reading_the_operators_groups() -> None:
    group = {"id": -100123, "type": "supergroup", "title": "Lawyers"}
    anna = {"id": 7, "is_bot": False, "first_name": "Anna", "username": "anna_l"}
    message = _message("/take@hotline_bot A7K2", chat=group, **{"from": anna})
    message["reply_to_message"] = {"message_id": 41, "date": 0, "chat": group}
    work = read_update(_update(message=message), "hotline_bot", {-100123})
    assert work.chat == -100123 and work.event is None
    assert work.operator == OperatorMessage(
        Address("telegram", "-100123"), "41", "@anna_l", "/take A7K2"
    )
    # Without a username the first name; not a reply: no thread; a file with its caption.
    message["from"] = {"id": 7, "is_bot": False, "first_name": "Anna"}
    del message["reply_to_message"], message["text"]
    message.update(document={"file_id": "D", "file_unique_id": "u"}, caption="the order")
    work = read_update(_update(message=message), "hotline_bot", {-100123})
    assert work.operator == OperatorMessage(
        Address("telegram", "-100123"),
        None,
        "Anna",
        "the order",
        Attachment("D", "document", OCTETS, 0),
    )
    # A sticker, a bot (this one included), a service message: nothing for the desk.
    del message["document"]
    message["sticker"] = {"file_id": "s", "file_unique_id": "s"}
    assert read_update(_update(message=message), "hotline_bot", {-100123}) == NOTHING
    message.update(text="hi", **{"from": {"id": 9, "is_bot": True, "first_name": "Bot"}})
    assert read_update(_update(message=message), "hotline_bot", {-100123}) == NOTHING
    # The same group, not given as the operators': ignored like any group.
    message["from"] = anna
    assert read_update(_update(message=message), "hotline_bot", {-100999}) == NOTHING


def test_reading_presses() -> None:
    query = _query()
    work = read_update(_update(callback_query=query))
    assert work.event is not None and work.event.kind is InboundKind.PRESS
    assert work.event.payload == "2.0" and work.callback_query_id == "77"
    assert work.event.language_hint == "en" and work.event.event_id == "tg:1"
    assert work.keyboard == (5, 1) and work.chat == 5
    del query["message"]["reply_markup"]  # a stale press on a message already cleared
    work = read_update(_update(callback_query=query))
    assert work.keyboard is None and work.callback_query_id == "77" and work.event is not None
    query["message"]["reply_markup"] = {"inline_keyboard": []}
    assert read_update(_update(callback_query=query)).keyboard is None
    # Too old to be shown to the bot: the message comes without its content (date 0).
    query["message"] = {"chat": {"id": 5, "type": "private"}, "message_id": 1, "date": 0}
    work = read_update(_update(callback_query=query))
    assert work.event is not None and work.keyboard is None
    query["message"] = _message("Pick", chat_type="group")
    work = read_update(_update(callback_query=query))
    assert work.event is None and work.callback_query_id == "77"  # answered, nothing else
    for inline_or_game in (_query(message=None, inline_message_id="i"), _query(data=None)):
        work = read_update(_update(callback_query=inline_or_game))
        assert work == Work(None, callback_query_id="77")


def test_a_ptb_update_is_read_like_its_json() -> None:
    """A caller holding PTB objects may pass one: it is read through its to_dict()."""
    raw = _update(callback_query=_query())
    assert read_update(Update.de_json(raw, Bot(TOKEN))) == read_update(raw)
    raw = _update(message=_message("/start@hotline_bot"))
    assert read_update(Update.de_json(raw, Bot(TOKEN)), "hotline_bot") == read_update(
        raw, "hotline_bot"
    )


def _malformed() -> list[tuple[str, Any]]:
    """(what, update): shapes Telegram does not send, each a field the rules read."""
    cases: list[tuple[str, Any]] = [
        ("not an object", ["update_id", 1]),
        ("no update_id", {"message": _message()}),
        ("update_id a string", {"update_id": "1", "message": _message()}),
        ("update_id a bool", {"update_id": True, "message": _message()}),
        ("message a string", _update(message="hi")),
        ("callback_query a list", _update(callback_query=[])),
    ]

    def message(what: str, change: Any) -> None:
        body = _message()
        change(body)
        cases.append((what, _update(message=body)))

    message("no chat", lambda m: m.pop("chat"))
    message("chat a string", lambda m: m.update(chat="oops"))
    message("chat id a string", lambda m: m["chat"].update(id="5"))
    message("chat id a float", lambda m: m["chat"].update(id=5.0))
    message("no chat type", lambda m: m["chat"].pop("type"))
    message("from a list", lambda m: m.update({"from": [5]}))
    message("is_bot missing", lambda m: m["from"].pop("is_bot"))
    message("is_bot a string", lambda m: m["from"].update(is_bot="false"))
    message("text a number", lambda m: m.update(text=5))
    message("text an object", lambda m: m.update(text={"x": 1}))
    message("language_code a number", lambda m: m["from"].update(language_code=7))
    for change in (
        {"document": "D"},
        {"document": {"file_unique_id": "u"}},  # no file_id
        {"document": {"file_id": 1}},
        {"document": {"file_id": "D", "file_name": ["a"]}},
        {"video": {"file_id": "D", "mime_type": 4}},
        {"photo": "P"},
        {"photo": [{"file_id": "P", "width": "1", "height": 1}]},
        {"photo": [{"file_id": "P", "width": 1}]},
        {"photo": ["P"]},
        {"voice": [1]},
        {"caption": 5, "document": {"file_id": "D"}},
    ):
        message(f"file {change}", lambda m, c=change: (m.pop("text"), m.update(c)))

    def press(what: str, change: Any) -> None:
        body = _query()
        change(body)
        cases.append((what, _update(callback_query=body)))

    press("no query id", lambda q: q.pop("id"))
    press("query id a number", lambda q: q.update(id=77))
    press("no from", lambda q: q.pop("from"))
    press("data a number", lambda q: q.update(data=2))
    press("message a string", lambda q: q.update(message="m"))
    press("pressed message without a chat", lambda q: q["message"].pop("chat"))
    press("pressed message without an id", lambda q: q["message"].pop("message_id"))
    press("reply_markup a list", lambda q: q["message"].update(reply_markup=[]))
    press(
        "keyboard rows not lists",
        lambda q: q["message"]["reply_markup"].update(inline_keyboard=[{"text": "A"}]),
    )
    press("keyboard missing", lambda q: q["message"].update(reply_markup={}))
    return cases


@pytest.mark.parametrize(("what", "update"), _malformed(), ids=[what for what, _ in _malformed()])
def test_a_malformed_update_raises_naming_the_field_not_the_value(what: str, update: Any) -> None:
    with pytest.raises(MalformedUpdate) as err:
        read_update(update, "hotline_bot")
    assert str(err.value).isidentifier(), what  # a field's name: never what was sent


def test_operator_groups_check_what_they_read() -> None:
    group = {"id": -100123, "type": "supergroup"}
    for change in (
        {"reply_to_message": {"message_id": "41"}},
        {"reply_to_message": 41},
        {"from": {"id": 7, "is_bot": False}},  # neither username nor first_name
        {"from": {"id": 7, "is_bot": False, "first_name": 1}},
    ):
        message = {**_message("/cases"), "chat": group, **change}
        with pytest.raises(MalformedUpdate):
            read_update(_update(message=message), "hotline_bot", {-100123})


def test_strip_mention_only_removes_this_bot() -> None:
    assert strip_mention("/help@hotline_bot", "hotline_bot") == "/help"
    assert strip_mention("/help@other_bot", "hotline_bot") == "/help@other_bot"
    assert strip_mention("hello @hotline_bot", "hotline_bot") == "hello @hotline_bot"


def test_split_text_prefers_paragraphs_then_lines_then_spaces() -> None:
    assert split_text("short") == ["short"]
    para = "p" * 3000
    assert split_text(f"{para}\n\n{para}") == [para, para]
    line = "l" * 3000
    assert split_text(f"{line}\n{line}") == [line, line]
    words = ("word " * 1000).strip()  # 4,999 characters, no line breaks
    parts = split_text(words)
    assert len(parts) == 2 and all(len(p) <= MAX_TEXT for p in parts)
    assert " ".join(parts) == words
    solid = "x" * 10000
    assert split_text(solid) == ["x" * 4096, "x" * 4096, "x" * 1808]
    emoji = "😀" * 3000  # two UTF-16 units each
    parts = split_text(emoji)
    assert all(utf16_length(p) <= MAX_TEXT for p in parts) and "".join(parts) == emoji


def test_keyboard_one_button_a_row_and_callback_data_limit() -> None:
    markup = keyboard((Button("Yes", "1.0"), Button("No", "1.1")))
    assert markup == {
        "inline_keyboard": [
            [{"text": "Yes", "callback_data": "1.0"}],
            [{"text": "No", "callback_data": "1.1"}],
        ]
    }
    # What PTB's own objects would have sent: the Bot API sees no difference.
    rows = [
        [InlineKeyboardButton("Yes", callback_data="1.0")],
        [InlineKeyboardButton("No", callback_data="1.1")],
    ]
    assert markup == InlineKeyboardMarkup(rows).to_dict()
    assert keyboard(()) is None
    with pytest.raises(ValueError, match="64"):
        keyboard((Button("Too long", "x" * 65),))


def test_the_token_is_required_and_checked_without_being_shown() -> None:
    with pytest.raises(ConfigError, match=r"TELEGRAM_BOT_TOKEN is not set.*@BotFather"):
        build_channel({}, {}, base=None)  # type: ignore[arg-type]
    bad = "123456:short"
    with pytest.raises(ConfigError, match="does not look like a bot token") as err:
        build_channel({}, {"TELEGRAM_BOT_TOKEN": bad}, base=None)  # type: ignore[arg-type]
    assert bad not in str(err.value)
    with pytest.raises(ConfigError, match="spaces or quotes"):
        build_channel({}, {"TELEGRAM_BOT_TOKEN": f'"{TOKEN}"'}, base=None)  # type: ignore[arg-type]
    channel = build_channel({}, {"TELEGRAM_BOT_TOKEN": TOKEN}, base=None)  # type: ignore[arg-type]
    assert channel.config.mode == "polling"


def test_config_errors_and_api_url() -> None:
    with pytest.raises(ConfigError, match=r"telegram\.mode"):
        parse_config({"mode": "carrier-pigeon"})
    with pytest.raises(ConfigError, match=r"telegram\.pol_timeout: Extra inputs"):
        parse_config({"pol_timeout": 3})
    with pytest.raises(ConfigError, match="https"):
        parse_config({"mode": "webhook", "webhook": {"url": "http://bot.example.org/x"}})
    with pytest.raises(ConfigError, match="needs a `webhook:` section"):
        parse_config({"mode": "webhook"})
    config = parse_config({"api_url": "http://127.0.0.1:8081/"})
    assert config.base_url == "http://127.0.0.1:8081/bot"
    assert config.base_file_url == "http://127.0.0.1:8081/file/bot"
    assert parse_config({}).base_url == "https://api.telegram.org/bot"


def test_the_redactor_covers_messages_arguments_and_tracebacks() -> None:
    import logging

    redactor = TokenRedactor(TOKEN)
    record = logging.LogRecord(
        "httpx", logging.INFO, "x", 1, "POST %s", (f"https://h/bot{TOKEN}/getMe",), None
    )
    redactor.filter(record)
    assert record.getMessage() == "POST https://h/bot<redacted>/getMe"
    secret = TOKEN.split(":")[1]
    try:
        raise RuntimeError(f"failed: /bot123456789%3A{secret}/x")
    except RuntimeError:
        import sys

        record = logging.LogRecord("t", logging.ERROR, "x", 1, "oops", None, sys.exc_info())
    redactor.filter(record)
    assert record.exc_text is not None and secret not in record.exc_text
