"""Long polling end to end: local Bot API server <-HTTP-> PTB <- adapter -> hub -> engine."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from tg_helpers import make_config, run, running_bot

from adapters.serve.config import ConfigError
from adapters.telegram.channel import TelegramChannel
from adapters.telegram.localserver import LocalBotApiServer
from engine.conversation import Inbound, InboundKind
from engine.runtime import Engine

USER = 4242


def test_start_shows_the_menu_as_an_inline_keyboard(engine: Engine) -> None:
    async def scenario() -> None:
        async with running_bot(engine) as bot:
            texts = await bot.say(USER, "/start", language="en")
            assert len(texts) == 1 and texts[0].startswith("Hello! This is a legal-aid bot")
            menu = bot.server.received(USER)[-1]
            assert menu.labels[0] == "I received a summons"
            assert len(menu.labels) == len(engine.flows.bot.menu.flows)
            # One button a row; callback_data is the engine's short payload.
            rows = menu.reply_markup["inline_keyboard"]
            assert all(len(row) == 1 for row in rows)
            assert all(len(row[0]["callback_data"].encode()) <= 64 for row in rows)

    run(scenario())


def test_a_press_answers_the_query_removes_the_keyboard_and_asks_the_next_question(
    engine: Engine,
) -> None:
    async def scenario() -> None:
        async with running_bot(engine) as bot:
            await bot.say(USER, "/start", language="ru")
            menu = bot.server.received(USER)[-1]
            texts = await bot.press(USER, "Мне пришла повестка", language="ru")
            assert len(texts) == 1 and "Какая у вас повестка?" in texts[0]
            question = bot.server.received(USER)[-1]
            assert question.labels[0] == "На срочную службу (призыв)"
            assert menu.reply_markup is None  # the pressed keyboard is gone
            assert bot.server.unanswered_callbacks() == []
            [answer] = bot.server.calls_of("answerCallbackQuery")
            assert answer.status == 200

    run(scenario())


def test_a_typed_answer_and_a_stale_press(engine: Engine) -> None:
    async def scenario() -> None:
        async with running_bot(engine) as bot:
            await bot.say(USER, "/start", language="en")
            menu = bot.server.received(USER)[-1]
            # A typed label counts as the press.
            texts = await bot.say(USER, "I received a summons")
            assert "What kind of summons is it?" in texts[-1]
            # Pressing the old menu's button: politely told, shown the current question.
            update = bot.server.press(
                USER, data=menu.sent_buttons[1][1], message_id=menu.message_id
            )
            await bot.server.wait_confirmed(update)
            stale = [m.text for m in bot.server.received(USER)[-2:]]
            assert stale[0] == "That question has moved on. Here is the current one:"
            assert "What kind of summons is it?" in (stale[1] or "")
            assert bot.server.unanswered_callbacks() == []

    run(scenario())


def test_the_offset_moves_past_an_update_only_after_it_was_handled() -> None:
    release = asyncio.Event()
    two_started = asyncio.Event()
    started: list[Inbound] = []

    async def slow(event: Inbound) -> None:
        started.append(event)
        if len(started) == 2:
            two_started.set()
        if event.text == "first":
            await release.wait()

    async def scenario() -> None:
        async with running_bot(deliver=slow) as bot:
            first = bot.server.send_text(1, "first")
            second = bot.server.send_text(2, "other chat")
            third = bot.server.send_text(1, "after first")
            await two_started.wait()
            # Another chat goes on; the first chat waits its turn; nothing is confirmed.
            assert [e.text for e in started] == ["first", "other chat"]
            assert not bot.server.is_confirmed(first) and not bot.server.is_confirmed(second)
            release.set()
            await bot.server.wait_confirmed(third)
            assert [e.text for e in started] == ["first", "other chat", "after first"]

    run(scenario())


def test_under_a_backlog_updates_in_flight_are_seldom_fetched_again() -> None:
    """Telegram answers getUpdates with every update not confirmed yet: asked after each
    finished update, it brought ~100 updates back for one or two new ones (3,700 read
    again here). The poller asks again only once the handlers run short of work (at most
    twice `concurrency`, 32, left to handle), so fewer come back than are new."""
    people = 400

    async def slow(event: Inbound) -> None:
        await asyncio.sleep(0.003)

    async def scenario() -> None:
        async with running_bot(deliver=slow) as bot:
            last = [bot.server.send_text(1000 + n, "hello") for n in range(people)][-1]
            await bot.server.wait_confirmed(last)
            poller = bot.channel._poller
            assert poller is not None
            assert poller.received - poller.repeated == people  # each dispatched once
            assert poller.repeated <= people
            assert poller.fetches <= 20  # some 60 new updates a call, not one or two

    run(scenario())


def test_an_update_arriving_while_a_slow_one_is_handled_does_not_wait_for_it() -> None:
    release = asyncio.Event()
    handled: list[str] = []

    async def slow_first(event: Inbound) -> None:
        if event.text == "slow":
            await release.wait()
        handled.append(event.text)

    async def scenario() -> None:
        async with running_bot(deliver=slow_first) as bot:
            slow = bot.server.send_text(1, "slow")
            while bot.channel._poller is None or bot.channel._poller.in_flight == 0:
                await asyncio.sleep(0.01)
            # Light traffic: another chat's update is fetched within `busy_interval`
            # (0.25 s), though no update finished meanwhile.
            quick = bot.server.send_text(2, "quick")
            started = asyncio.get_running_loop().time()
            while handled != ["quick"]:
                await asyncio.sleep(0.01)
            assert asyncio.get_running_loop().time() - started < 1.0
            assert not bot.server.is_confirmed(slow) and not bot.server.is_confirmed(quick)
            release.set()
            await bot.server.wait_confirmed(quick)

    run(scenario())


def test_a_stuck_update_holding_a_full_window_causes_no_busy_loop() -> None:
    release = asyncio.Event()

    async def stuck_first(event: Inbound) -> None:
        if event.text == "0":
            await release.wait()

    async def scenario() -> None:
        async with running_bot(deliver=stuck_first) as bot:
            last = [bot.server.send_text(1 + n % 3, str(n)) for n in range(150)][-1]
            await asyncio.sleep(0.6)  # a window of 100 updates stays unconfirmed meanwhile
            poller = bot.channel._poller
            assert poller is not None and poller.in_flight == 100
            # With 100 in flight no call can bring anything new: none is made (the first
            # may have brought one update, the second filled the window).
            assert poller.fetches <= 3
            release.set()
            await bot.server.wait_confirmed(last)

    run(scenario())


def test_a_malformed_update_is_skipped_and_the_later_ones_are_handled(
    engine: Engine, caplog: object
) -> None:
    async def scenario() -> None:
        async with running_bot(engine) as bot:
            before = bot.server.send_text(USER, "/start")
            bad = bot.server.inject({"message": {"message_id": 1, "date": "x", "chat": "oops"}})
            after = bot.server.send_text(USER, "/help")
            await bot.server.wait_confirmed(after)
            assert bot.server.is_confirmed(before) and bot.server.is_confirmed(bad)
            texts = [m.text or "" for m in bot.server.received(USER)]
            assert texts[0].startswith("Hello!") and texts[1].startswith("Commands:")
            assert bot.channel.skipped == 1
            # Polled a handful of times, not hundreds (PTB's Updater spins on such a batch).
            assert bot.channel._poller is not None and bot.channel._poller.fetches < 20

    run(scenario())
    assert "skipping update 2: it could not be read (MalformedUpdate)" in caplog.text  # type: ignore[attr-defined]


def test_what_is_not_text_gets_a_polite_answer_and_nothing_of_it_is_stored(
    engine: Engine,
) -> None:
    async def scenario() -> None:
        async with running_bot(engine) as bot:
            server = bot.server
            await server.wait_confirmed(server.send_photo(USER, caption="Паспорт 4510 123456"))
            await server.wait_confirmed(server.send_sticker(USER))
            await server.wait_confirmed(server.send_voice(USER))
            await server.wait_confirmed(server.send_location(USER))
            await server.wait_confirmed(server.send_user_document(USER, "passport.pdf"))
            texts = [m.text for m in server.received(USER)]
            assert texts == ["I can only read text and buttons."] * 5
            stored = json.dumps([s.to_record() for s in bot.store._sessions.values()])
            assert "4510" not in stored and "passport" not in stored and "55.75" not in stored

    run(scenario())


def test_groups_edited_messages_and_channel_posts_are_ignored(engine: Engine) -> None:
    async def scenario() -> None:
        async with running_bot(engine) as bot:
            server = bot.server
            group = -100123
            last = [
                server.send_text(USER, "/start", chat_id=group, chat_type="supergroup"),
                server.send_text(USER, "/start@hotline_local_bot", chat_id=-5, chat_type="group"),
                server.edit_text(USER, 1, "edited"),
                server.channel_post(-100999, "a post"),
            ][-1]
            marker = server.send_text(USER, "/help")
            await server.wait_confirmed(marker)
            assert server.is_confirmed(last)
            assert server.received(group) == [] and server.received(-5) == []
            assert [m.text[:9] for m in server.received(USER) if m.text] == ["Commands:"]
            assert list(bot.store._sessions) == [f"telegram:{USER}"]  # only the private chat

    run(scenario())


def test_a_command_addressed_to_the_bot_by_name(engine: Engine) -> None:
    async def scenario() -> None:
        async with running_bot(engine) as bot:
            texts = await bot.say(USER, "/help@hotline_local_bot")
            assert texts[0].startswith("Commands:")

    run(scenario())


def test_the_language_comes_from_language_code(engine: Engine) -> None:
    async def scenario() -> None:
        async with running_bot(engine) as bot:
            assert (await bot.say(1, "/start", language="ru"))[0].startswith("Здравствуйте")
            assert (await bot.say(2, "/start", language="en-GB"))[0].startswith("Hello")
            assert (await bot.say(3, "/start", language=None))[0].startswith("Здравствуйте")

    run(scenario())


def test_the_command_menu_is_registered_in_every_bot_language(engine: Engine) -> None:
    async def scenario() -> None:
        async with running_bot(engine) as bot:
            commands = bot.server.commands
            names = [c["command"] for c in commands[("default", "ru")]]
            assert names == ["start", "back", "restart", "language", "lawyer", "forget", "help"]
            assert commands[("default", "ru")][0]["description"] == "Главное меню"
            assert commands[("default", "en")][0]["description"] == "Main menu"
            # The default scope speaks the bot's first language.
            assert commands[("default", "")] == commands[("default", "ru")]
            assert all(c.status == 200 for c in bot.server.calls_of("setMyCommands"))

    run(scenario())


def test_many_chats_at_once_each_in_order(engine: Engine) -> None:
    users = range(100, 140)

    async def scenario() -> None:
        async with running_bot(engine) as bot:
            server = bot.server
            last = 0
            for user in users:
                server.send_text(user, "/start")
                last = server.send_text(user, "I received a summons")
            await server.wait_confirmed(last)
            for user in users:
                texts = [m.text or "" for m in server.received(user)]
                assert texts[0].startswith("Hello!")
                assert "What kind of summons is it?" in texts[1]

    run(scenario())


def test_perform_refuses_what_it_does_not_know() -> None:
    async def scenario() -> None:
        async with running_bot(deliver=_ignore) as bot:
            try:
                await bot.channel.perform(object())  # type: ignore[arg-type]
            except TypeError as err:
                assert "cannot perform object" in str(err)
            else:  # pragma: no cover
                raise AssertionError("TypeError expected")

    run(scenario())


async def _ignore(event: Inbound) -> None:
    assert event.kind in (InboundKind.TEXT, InboundKind.PRESS)


def test_a_rejected_token_or_an_unreachable_api_stops_the_start() -> None:
    async def scenario() -> None:
        async with LocalBotApiServer() as server:
            wrong = TelegramChannel(make_config(server), "42:" + "x" * 35)
            with pytest.raises(ConfigError, match="Telegram rejected TELEGRAM_BOT_TOKEN"):
                await wrong.start(_ignore)
            nowhere = make_config(server).model_copy(update={"api_url": "http://127.0.0.1:9"})
            unreachable = TelegramChannel(nowhere, server.token)
            with pytest.raises(ConfigError, match="cannot reach the Telegram Bot API"):
                await unreachable.start(_ignore)
        assert logging.getLogger("httpx").level == logging.NOTSET  # undone after a failed start

    run(scenario())
