"""Webhook mode: setWebhook registers the secret; only requests carrying it are served."""

from __future__ import annotations

import json
import socket
from typing import Any

import aiohttp
from tg_helpers import run, running_bot

from adapters.telegram.localserver import LocalBotApiServer
from adapters.telegram.webhook import SECRET_HEADER
from engine.runtime import Engine

SECRET = "s3cret-Token_for-tests"
USER = 31337


def _webhook() -> dict[str, Any]:
    """Webhook settings on a free local port (plain HTTP: allowed with an api_url)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/hook"
    return {"mode": "webhook", "webhook": {"url": url, "listen": "127.0.0.1", "port": port}}


async def _post(url: str, body: bytes, secret: str | None) -> int:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers[SECRET_HEADER] = secret
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as r,
    ):
        return r.status


def test_updates_arrive_by_webhook_with_the_secret(engine: Engine) -> None:
    async def scenario() -> None:
        async with LocalBotApiServer() as server:
            config = _webhook()
            async with running_bot(engine, server=server, webhook_secret=SECRET, **config) as bot:
                hook = server.webhook
                assert hook is not None and hook.secret == SECRET
                assert hook.url == f"http://127.0.0.1:{bot.channel.webhook_port}/hook"
                texts = await bot.say(USER, "/start")
                assert texts[0].startswith("Hello!")
                texts = await bot.press(USER, "I received a summons")
                assert "What kind of summons is it?" in texts[0]
                assert server.unanswered_callbacks() == []
                assert server.webhook_failures == 0
                # getUpdates is refused while a webhook is set, as Telegram does.
                assert not server.calls_of("getUpdates")

    run(scenario())


def test_a_wrong_or_missing_secret_is_refused_and_bad_bodies_are_ignored(engine: Engine) -> None:
    async def scenario() -> None:
        async with LocalBotApiServer() as server:
            config = _webhook()
            async with running_bot(engine, server=server, webhook_secret=SECRET, **config) as bot:
                url = f"http://127.0.0.1:{bot.channel.webhook_port}/hook"
                await server.wait_confirmed(server.send_text(USER, "hi"))  # the chat exists
                answered = len(server.received(USER))
                update = {
                    "update_id": 99,
                    "message": {
                        "message_id": 5,
                        "date": 1,
                        "chat": {"id": USER, "type": "private"},
                        "from": {"id": USER, "is_bot": False, "first_name": "A"},
                        "text": "/start",
                    },
                }
                body = json.dumps(update).encode()
                assert await _post(url, body, "wrong") == 403
                assert await _post(url, body, None) == 403
                assert await _post(url, body, SECRET[:-1]) == 403
                assert len(server.received(USER)) == answered
                # Bodies we cannot use: 200 (else Telegram resends forever), nothing done.
                assert await _post(url, b"not json", SECRET) == 200
                assert await _post(url, b"[1, 2]", SECRET) == 200
                malformed = {"update_id": 100, "message": {"message_id": 1, "chat": "x"}}
                assert await _post(url, json.dumps(malformed).encode(), SECRET) == 200
                assert len(server.received(USER)) == answered and bot.channel.skipped == 1
                # The right secret: handled before the 200 comes back.
                assert await _post(url, body, SECRET) == 200
                assert (server.received(USER)[answered].text or "").startswith("Hello!")

    run(scenario())


def test_webhook_mode_needs_the_secret() -> None:
    from adapters.serve.config import ConfigError
    from adapters.telegram import build_channel

    section = {"mode": "webhook", "webhook": {"url": "https://bot.example.org/telegram"}}
    env = {"TELEGRAM_BOT_TOKEN": "123456:" + "A" * 35}
    try:
        build_channel(section, env, base=None)  # type: ignore[arg-type]
    except ConfigError as err:
        assert "TELEGRAM_WEBHOOK_SECRET is not set" in str(err)
    else:  # pragma: no cover
        raise AssertionError("ConfigError expected")
    channel = build_channel(section, {**env, "TELEGRAM_WEBHOOK_SECRET": SECRET}, base=None)  # type: ignore[arg-type]
    assert channel.config.webhook is not None
    assert channel.config.webhook.served_path == "/telegram"
