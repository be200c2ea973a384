"""What the channel sends, checked by the strict local server: texts, keyboards, documents,
long texts, rate limits, failures, and the token kept out of the logs."""

from __future__ import annotations

import io
import logging

from tg_helpers import run, running_bot

from adapters.telegram.convert import MAX_TEXT, utf16_length
from engine.conversation import (
    Address,
    Button,
    ForgetUser,
    HandoverContext,
    Inbound,
    SendDocument,
    SendText,
    StartHandover,
)
from engine.runtime import Engine

USER = 777
TO = Address("telegram", str(USER))


async def _nobody(event: Inbound) -> None:
    raise AssertionError(f"no update expected, got {event.kind}")


def test_a_text_with_buttons_and_a_document_from_memory() -> None:
    async def scenario() -> None:
        async with running_bot(deliver=_nobody) as bot:
            bot.server.send_text(USER, "hi")  # the chat exists once the person wrote
            buttons = (Button("Yes", "3.0"), Button("No", "3.1"))
            await bot.channel.perform(SendText(TO, "Continue?", buttons))
            data = b"PK\x03\x04" + bytes(range(256)) * 40
            await bot.channel.perform(SendDocument(TO, "Заявление об АГС.docx", data))
            text, document = bot.server.received(USER)
            assert text.text == "Continue?" and text.buttons == [("Yes", "3.0"), ("No", "3.1")]
            assert document.document is not None
            assert document.document.filename == "Заявление об АГС.docx"
            assert document.document.data == data
            assert document.document.content_type.endswith("wordprocessingml.document")
            [call] = bot.server.calls_of("sendDocument")
            assert call.status == 200

    run(scenario())


def test_hand_over_actions_need_no_message() -> None:
    async def scenario() -> None:
        async with running_bot(deliver=_nobody) as bot:
            context = HandoverContext("en", ("lawyer",), ())
            await bot.channel.perform(StartHandover(TO, "lawyers", context))
            await bot.channel.perform(ForgetUser(TO))
            assert bot.server.received(USER) == []
            assert not any(c.method.startswith("send") for c in bot.server.calls)

    run(scenario())


def test_a_long_text_is_split_at_paragraphs_with_the_buttons_on_the_last_part() -> None:
    paragraphs = [f"Paragraph {i}. " + "word " * 300 for i in range(8)]  # ~1,500 chars each
    text = "\n\n".join(paragraphs)
    assert len(text) > 2 * MAX_TEXT

    async def scenario() -> None:
        async with running_bot(deliver=_nobody) as bot:
            bot.server.send_text(USER, "hi")
            await bot.channel.perform(SendText(TO, text, (Button("Next", "1.0"),)))
            parts = bot.server.received(USER)
            assert len(parts) == 4
            assert all(utf16_length(p.text or "") <= MAX_TEXT for p in parts)
            assert "\n\n".join(p.text or "" for p in parts) == text  # cut only between paragraphs
            assert [bool(p.buttons) for p in parts] == [False, False, False, True]

    run(scenario())


def test_a_429_is_honoured_before_the_next_attempt() -> None:
    async def scenario() -> None:
        async with running_bot(deliver=_nobody) as bot:
            bot.server.send_text(USER, "hi")
            bot.server.fail_next(1, retry_after=1, methods=["sendMessage"])
            await bot.channel.perform(SendText(TO, "after the flood wait"))
            refused, accepted = bot.server.calls_of("sendMessage")
            assert refused.status == 429 and accepted.status == 200
            assert accepted.at - refused.at >= 1.0  # retry_after, measured at the server
            assert [m.text for m in bot.server.received(USER)] == ["after the flood wait"]

    run(scenario())


def test_messages_to_one_chat_are_paced() -> None:
    """Per chat: a burst, then the configured rate (here 2 at once, then 10 a second)."""

    async def scenario() -> None:
        pace = {"per_chat_per_second": 10, "per_chat_burst": 2}
        async with running_bot(deliver=_nobody, rate_limit=pace) as bot:
            bot.server.send_text(USER, "hi")
            bot.server.send_text(USER + 1, "hi")
            for number in range(5):
                await bot.channel.perform(SendText(TO, f"message {number}"))
            await bot.channel.perform(SendText(Address("telegram", str(USER + 1)), "other"))
            sent = bot.server.calls_of("sendMessage")
            assert sent[1].at - sent[0].at < 0.08  # the burst
            assert sent[4].at - sent[0].at >= 0.25  # then about 0.1 s apart
            assert sent[5].at - sent[4].at < 0.08  # another chat does not wait

    run(scenario())


def test_dropped_connections_are_retried_and_the_message_arrives_once() -> None:
    async def scenario() -> None:
        async with running_bot(deliver=_nobody) as bot:
            bot.server.send_text(USER, "hi")
            bot.server.drop_next(2, methods=["sendMessage"])
            await bot.channel.perform(SendText(TO, "through a flaky network"))
            statuses = [c.status for c in bot.server.calls_of("sendMessage")]
            assert statuses == [0, 0, 200]  # two dropped, then delivered
            assert [m.text for m in bot.server.received(USER)] == ["through a flaky network"]

    run(scenario())


def test_polling_survives_a_server_that_drops_and_throttles_get_updates(engine: Engine) -> None:
    async def scenario() -> None:
        async with running_bot(engine) as bot:
            bot.server.drop_next(2, methods=["getUpdates"])
            texts = await bot.say(USER, "/start")
            assert texts[0].startswith("Hello!")
            bot.server.fail_next(1, retry_after=1, methods=["getUpdates"])
            texts = await bot.say(USER, "/help")
            assert texts[0].startswith("Commands:")

    run(scenario())


def test_the_token_never_reaches_the_logs(engine: Engine) -> None:
    """The adapter at DEBUG through a whole conversation with faults: no token, no text."""
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    token = ""
    try:

        async def scenario() -> str:
            # httpx: the client whose own request log line carries the token unless redacted.
            async with running_bot(engine, http_client="httpx") as bot:
                await bot.say(USER, "/start")
                await bot.press(USER, "I received a summons")
                bot.server.drop_next(1, methods=["sendMessage"])
                bot.server.drop_next(1, methods=["editMessageReplyMarkup"])
                await bot.press(USER, "For conscription")
                await bot.say(USER, "Ivan Secretname Petrov")
                bot.server.inject({"message": {"message_id": 1, "date": 1, "chat": "x"}})
                # Someone turns the HTTP client's logging back on: the filter still redacts.
                logging.getLogger("httpx").setLevel(logging.DEBUG)
                await bot.say(USER, "/help")
                return bot.server.token

        token = run(scenario())
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    logs = captured.getvalue()
    assert "bot<redacted>/sendMessage" in logs  # httpx's request line, redacted
    assert token not in logs
    assert token.split(":")[1] not in logs
    assert "Secretname" not in logs  # and nothing the person typed
    assert logging.getLogger("httpx").level == logging.NOTSET  # restored on stop
