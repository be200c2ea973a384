"""The pure parts: reading updates, splitting texts, keyboards, the config and the token."""

from __future__ import annotations

from typing import Any

import pytest
from telegram import Bot, Update

from adapters.serve.config import ConfigError
from adapters.telegram import build_channel
from adapters.telegram.config import parse_config
from adapters.telegram.convert import (
    MAX_TEXT,
    keyboard,
    read_update,
    split_text,
    strip_mention,
    utf16_length,
)
from adapters.telegram.logging import TokenRedactor
from engine.conversation import Button, InboundKind

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1"
BOT = Bot(TOKEN)


def _update(**body: Any) -> Update:
    return Update.de_json({"update_id": 1, **body}, BOT)


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


def test_reading_messages() -> None:
    work = read_update(_update(message=_message("/start@Hotline_Bot now")), "hotline_bot")
    assert work.chat == 5 and work.event is not None
    assert work.event.kind is InboundKind.TEXT and work.event.text == "/start now"
    assert work.event.language_hint == "ru" and work.event.address.chat == "5"
    photo = [{"file_id": "x", "file_unique_id": "y", "width": 1, "height": 1}]
    work = read_update(_update(message=_message(None, photo=photo, caption="secret")))
    # A photo is a file, by reference, for the lawyer during a hand-over; outside one the
    # engine answers it politely and keeps nothing of it (tests/test_handover_desk.py).
    assert work.event is not None and work.event.kind is InboundKind.FILE
    assert work.event.attachment is not None and work.event.attachment.ref == "x"
    assert read_update(_update(message=_message(chat_type="group"))).event is None
    assert read_update(_update(message=_message(chat_type="supergroup"))).event is None
    assert read_update(_update(edited_message=_message())).event is None
    assert read_update(_update(channel_post=_message(chat_type="channel"))).event is None
    service = _message(
        None, pinned_message={"message_id": 1, "date": 0, "chat": {"id": 5, "type": "private"}}
    )
    assert read_update(_update(message=service)).chat is None


def test_reading_presses() -> None:
    markup = {"inline_keyboard": [[{"text": "A", "callback_data": "2.0"}]]}
    query = {
        "id": "77",
        "from": {"id": 5, "is_bot": False, "first_name": "A", "language_code": "en"},
        "chat_instance": "1",
        "data": "2.0",
        "message": {**_message("Pick"), "reply_markup": markup},
    }
    work = read_update(_update(callback_query=query))
    assert work.event is not None and work.event.kind is InboundKind.PRESS
    assert work.event.payload == "2.0" and work.callback_query_id == "77"
    assert work.keyboard == (5, 1)
    del query["message"]["reply_markup"]  # a stale press on a message already cleared
    work = read_update(_update(callback_query=query))
    assert work.keyboard is None and work.callback_query_id == "77" and work.event is not None
    query["message"] = _message("Pick", chat_type="group")
    work = read_update(_update(callback_query=query))
    assert work.event is None and work.callback_query_id == "77"  # answered, nothing else


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
    assert markup is not None
    assert [[b.text for b in row] for row in markup.inline_keyboard] == [["Yes"], ["No"]]
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
