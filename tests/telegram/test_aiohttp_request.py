"""`AiohttpRequest`, python-telegram-bot's network layer on aiohttp, over real HTTP against
the strict local Bot API server: texts and documents go out as Telegram expects them, and
timeouts and dead servers become the errors PTB and the rate limiter retry on."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile
from telegram.error import BadRequest, InvalidToken, NetworkError, TimedOut
from telegram.ext import ExtBot
from telegram.request import HTTPXRequest
from tg_helpers import make_config, run, running_bot

from adapters.telegram.aiohttp_request import AiohttpRequest
from adapters.telegram.config import RateLimitConfig
from adapters.telegram.localserver import LocalBotApiServer, random_token
from adapters.telegram.ratelimit import HotlineRateLimiter

USER = 4242


def _bot(api_url: str, token: str, request: AiohttpRequest, **kwargs: object) -> Bot:
    return Bot(
        token,
        base_url=f"{api_url}/bot",
        base_file_url=f"{api_url}/file/bot",
        request=request,
        get_updates_request=AiohttpRequest(connection_pool_size=1),
        **kwargs,  # type: ignore[arg-type]
    )


@contextlib.asynccontextmanager
async def silent_server(delay: float = 30.0) -> AsyncIterator[str]:
    """An HTTP server that accepts every request and answers only after `delay` seconds:
    the URL of its API root."""
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(release.wait(), delay)
        return web.json_response({"ok": True, "result": True})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hang)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        release.set()
        await runner.cleanup()


def test_sends_a_text_with_a_keyboard_and_reads_the_answer() -> None:
    async def scenario() -> None:
        async with LocalBotApiServer() as server:
            server.send_text(USER, "hi")
            async with _bot(server.api_url, server.token, AiohttpRequest()) as bot:
                assert bot.username == server.username  # getMe, at initialize
                markup = InlineKeyboardMarkup([[InlineKeyboardButton("Да", callback_data="1.0")]])
                sent = await bot.send_message(USER, "Привет, «мир» & co", reply_markup=markup)
            [message] = server.received(USER)
            assert message.text == "Привет, «мир» & co"
            assert message.buttons == [("Да", "1.0")]
            assert sent.message_id == message.message_id and sent.text == message.text
            # The strict server accepted every call: no parameter was mis-encoded.
            assert [c.status for c in server.calls] == [200, 200]

    run(scenario())


def test_sends_a_document_as_multipart_and_downloads_it_back() -> None:
    data = b"PK\x03\x04" + bytes(range(256)) * 64  # binary, 16 KiB

    async def scenario() -> None:
        async with LocalBotApiServer() as server:
            server.send_text(USER, "hi")
            async with _bot(server.api_url, server.token, AiohttpRequest()) as bot:
                document = InputFile(data, filename="Заявление об АГС.docx")
                sent = await bot.send_document(USER, document, caption="Ваше заявление")
                assert sent.document is not None
                file = await bot.get_file(sent.document.file_id)
                downloaded = await file.download_as_bytearray()  # a GET through retrieve()
            [message] = server.received(USER)
            assert message.document is not None
            # UTF-8 between quotes, as httpx sends it; not percent-encoded.
            assert message.document.filename == "Заявление об АГС.docx"
            assert message.document.data == data
            assert message.document.content_type.endswith("wordprocessingml.document")
            assert message.caption == "Ваше заявление"
            assert bytes(downloaded) == data

    run(scenario())


def test_the_same_calls_as_httpx_are_accepted_by_the_strict_server() -> None:
    """aiohttp sends a JSON body, httpx a form: the strict server decodes the same values
    (typed JSON is checked strictly; form strings are read by the spec's types)."""

    async def scenario() -> None:
        async with LocalBotApiServer() as server:
            server.send_text(USER, "hi")
            for request in (AiohttpRequest(), HTTPXRequest()):
                async with Bot(
                    server.token, base_url=f"{server.api_url}/bot", request=request
                ) as bot:
                    await bot.send_message(USER, "x", disable_notification=True)
            first, second = server.calls_of("sendMessage")
            assert first.params == second.params
            assert first.params["disable_notification"] is True

    run(scenario())


def test_an_unanswered_request_times_out_as_timed_out() -> None:
    async def scenario() -> None:
        async with silent_server() as url:
            request = AiohttpRequest(read_timeout=0.3)
            await request.initialize()
            try:
                started = time.monotonic()
                with pytest.raises(TimedOut) as caught:
                    await request.post(f"{url}/bot{random_token()}/getMe")
                assert 0.25 <= time.monotonic() - started < 3
                # PTB's per-call timeout wins over the default.
                started = time.monotonic()
                with pytest.raises(TimedOut):
                    await request.post(f"{url}/botX/getMe", read_timeout=0.1)
                assert time.monotonic() - started < 0.3 + 0.5
            finally:
                await request.shutdown()
            assert isinstance(caught.value, NetworkError)  # what the rate limiter retries

    run(scenario())


def test_waiting_for_a_free_connection_times_out_too() -> None:
    async def scenario() -> None:
        async with silent_server() as url:
            request = AiohttpRequest(
                connection_pool_size=1, read_timeout=5, connect_timeout=0.1, pool_timeout=0.1
            )
            await request.initialize()
            try:
                busy = asyncio.ensure_future(request.post(f"{url}/botX/getMe"))
                await asyncio.sleep(0.1)  # the only connection is taken
                started = time.monotonic()
                with pytest.raises(TimedOut):
                    await request.post(f"{url}/botX/getMe")
                assert time.monotonic() - started < 2
                busy.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await busy
            finally:
                await request.shutdown()

    run(scenario())


def test_a_server_that_went_away_is_a_network_error_without_the_token() -> None:
    async def scenario() -> None:
        server = LocalBotApiServer()
        await server.start()
        request = AiohttpRequest(connect_timeout=1)
        bot = _bot(server.api_url, server.token, request)
        await bot.initialize()
        server.send_text(USER, "hi")
        await bot.send_message(USER, "before")
        await server.stop()  # the kept-alive connection and the port are gone
        try:
            with pytest.raises(NetworkError) as caught:
                await bot.send_message(USER, "after")
            assert not isinstance(caught.value, BadRequest | InvalidToken)
            assert server.token not in str(caught.value)
            assert server.token.split(":")[1] not in repr(caught.value)
            assert caught.value.__cause__ is None  # aiohttp's text may hold the URL
        finally:
            await bot.shutdown()

    run(scenario())


def test_a_dropped_connection_is_retried_by_the_rate_limiter() -> None:
    async def scenario() -> None:
        async with LocalBotApiServer() as server:
            server.send_text(USER, "hi")
            limiter = HotlineRateLimiter(
                RateLimitConfig(
                    overall_per_second=0,
                    per_chat_per_second=0,
                    group_per_minute=0,
                    network_retries=3,
                    backoff_initial=0.01,
                    backoff_max=0.05,
                )
            )
            bot = ExtBot(
                server.token,
                base_url=f"{server.api_url}/bot",
                request=AiohttpRequest(),
                rate_limiter=limiter,
            )
            async with bot:
                server.drop_next(2, methods=["sendMessage"])
                await bot.send_message(USER, "third time lucky")
            assert [m.text for m in server.received(USER)] == ["third time lucky"]
            assert [c.status for c in server.calls_of("sendMessage")] == [0, 0, 200]

    run(scenario())


def test_requests_need_initialize_and_shutdown_can_be_repeated() -> None:
    async def scenario() -> None:
        async with LocalBotApiServer() as server:
            request = AiohttpRequest()
            url = f"{server.api_url}/bot{server.token}/getMe"
            # PTB wraps the RuntimeError, as it does HTTPXRequest's.
            with pytest.raises(NetworkError, match="not initialized"):
                await request.post(url)
            await request.initialize()
            await request.initialize()  # idempotent: the same session
            assert (await request.post(url))["username"] == server.username  # type: ignore[index]
            await request.shutdown()
            await request.shutdown()
            with pytest.raises(NetworkError, match="not initialized"):
                await request.post(url)
            async with request:  # and again, as PTB does on a restart
                assert await request.post(url)

    run(scenario())


def test_a_proxy_from_the_environment_is_read_once_per_origin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://user:pw@proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    request = AiohttpRequest()
    proxy, auth = request._proxy_for("https://api.telegram.org/botX/getMe")
    assert str(proxy).startswith("http://") and "proxy.invalid:3128" in str(proxy)
    assert auth is not None and auth.login == "user"
    assert request._proxy_for("http://127.0.0.1:8081/botX/getMe") == (None, None)
    monkeypatch.delenv("HTTPS_PROXY")
    # Read once: a later change of the environment needs a restart, as httpx's does.
    assert request._proxy_for("https://api.telegram.org/botY/sendMessage")[0] == proxy


def test_the_channel_uses_aiohttp_by_default_and_httpx_on_request() -> None:
    async def scenario() -> None:
        async with LocalBotApiServer() as server:
            assert make_config(server).http_client == "aiohttp"
            async with running_bot(deliver=_nobody, server=server) as bot:
                assert isinstance(bot.channel.bot.request, AiohttpRequest)
                assert bot.channel.bot.request.connection_pool_size == 32
            async with running_bot(deliver=_nobody, server=server, http_client="httpx") as bot:
                assert isinstance(bot.channel.bot.request, HTTPXRequest)

    run(scenario())


async def _nobody(event: object) -> None:
    raise AssertionError("no update expected")
