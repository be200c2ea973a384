"""The local Bot API server is strict: it refuses what Telegram's documentation refuses."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from tg_helpers import ROOT, run

from adapters.telegram.apispec import SPEC_FILE, ApiError, ApiSpec
from adapters.telegram.localserver import LocalBotApiServer

SHARED_SPEC = ROOT.parent / "shared" / "data" / "telegram-bot-api.json"


async def _call(
    server: LocalBotApiServer,
    method: str,
    *,
    form: dict[str, str] | None = None,
    body: Any = None,
    files: dict[str, tuple[str, bytes]] | None = None,
    token: str | None = None,
) -> tuple[int, dict[str, Any]]:
    url = f"{server.api_url}/bot{token or server.token}/{method}"
    async with aiohttp.ClientSession() as session:
        if files is not None:
            data = aiohttp.FormData()
            for name, value in (form or {}).items():
                data.add_field(name, value)
            for name, (filename, content) in files.items():
                data.add_field(name, content, filename=filename)
            request = session.post(url, data=data)
        elif body is not None:
            request = session.post(url, json=body)
        else:
            request = session.post(url, data=form or {})
        async with request as response:
            return response.status, await response.json()


def test_unknown_method_missing_field_unknown_field_and_wrong_types_are_400() -> None:
    async def scenario() -> None:
        async with LocalBotApiServer() as server:
            server.send_text(5, "hi")
            cases = [
                ("sendMesage", {"chat_id": "5", "text": "x"}, "unknown method 'sendMesage'"),
                ("sendMessage", {"chat_id": "5"}, "field 'text' is required"),
                ("sendMessage", {"chat_id": "5", "text": "x", "colour": "red"}, "unknown field"),
                (
                    "sendMessage",
                    {"chat_id": "5", "text": "x", "disable_notification": "maybe"},
                    "Boolean",
                ),
                ("sendMessage", {"chat_id": "5", "text": "x", "reply_markup": "{oops"}, "JSON"),
                (
                    "sendMessage",
                    {
                        "chat_id": "5",
                        "text": "x",
                        "reply_markup": '{"inline_keyboard": [[{"txt": "a"}]]}',
                    },
                    "unknown field 'txt' in InlineKeyboardButton",
                ),
                ("setMyCommands", {"commands": '[{"command": "start"}]'}, "'description'"),
                (
                    "setMyCommands",
                    {"commands": "[]", "scope": '{"type": "default", "x": 1}'},
                    "BotCommandScope",
                ),
            ]
            for method, form, why in cases:
                status, answer = await _call(server, method, form=form)
                assert status == 400, (method, form)
                assert answer["ok"] is False and answer["error_code"] == 400
                assert why in answer["description"], answer["description"]
            assert all(c.status == 400 for c in server.calls)

    run(scenario())


def test_the_same_rules_for_json_and_multipart_bodies() -> None:
    async def scenario() -> None:
        async with LocalBotApiServer() as server:
            server.send_text(5, "hi")
            status, answer = await _call(server, "sendMessage", body={"chat_id": 5, "text": "ok"})
            assert status == 200 and answer["result"]["text"] == "ok"
            status, answer = await _call(
                server, "sendMessage", body={"chat_id": "five", "text": "x"}
            )
            assert status == 400
            status, answer = await _call(server, "sendMessage", body={"chat_id": 5, "text": 5})
            assert status == 400 and "String" in answer["description"]
            status, _ = await _call(
                server, "sendDocument", form={"chat_id": "5"}, files={"document": ("a.txt", b"abc")}
            )
            assert status == 200
            status, answer = await _call(
                server, "sendDocument", form={"chat_id": "5"}, files={"photo": ("a.txt", b"abc")}
            )
            assert status == 400 and "unknown field 'photo'" in answer["description"]
            status, answer = await _call(server, "sendDocument", form={"chat_id": "5"})
            assert status == 400 and "field 'document' is required" in answer["description"]

    run(scenario())


def test_telegram_limits_and_a_wrong_token() -> None:
    async def scenario() -> None:
        async with LocalBotApiServer() as server:
            status, answer = await _call(server, "getMe", token="1:" + "x" * 35)
            assert status == 401 and answer["description"] == "Unauthorized"
            status, answer = await _call(server, "sendMessage", form={"chat_id": "9", "text": "x"})
            assert status == 400 and "chat not found" in answer["description"]
            server.send_text(9, "hi")
            long = {"chat_id": "9", "text": "x" * 4097}
            assert (await _call(server, "sendMessage", form=long))[0] == 400
            data = "d" * 65
            markup = json.dumps({"inline_keyboard": [[{"text": "a", "callback_data": data}]]})
            status, answer = await _call(
                server, "sendMessage", form={"chat_id": "9", "text": "x", "reply_markup": markup}
            )
            assert status == 400 and "BUTTON_DATA_INVALID" in answer["description"]
            status, answer = await _call(
                server, "answerCallbackQuery", form={"callback_query_id": "1"}
            )
            assert status == 400 and "query is too old" in answer["description"]

    run(scenario())


def test_get_updates_offsets_and_a_newer_poll_ending_an_older_one() -> None:
    async def scenario() -> None:
        async with LocalBotApiServer() as server:
            first = server.send_text(1, "a")
            second = server.send_text(1, "b")
            answer = (await _call(server, "getUpdates", form={"timeout": "0"}))[1]
            assert [u["update_id"] for u in answer["result"]] == [first, second]
            answer = (await _call(server, "getUpdates", form={"offset": str(second)}))[1]
            assert [u["update_id"] for u in answer["result"]] == [second]
            assert server.is_confirmed(first) and not server.is_confirmed(second)
            answer = (await _call(server, "getUpdates", form={"offset": str(second + 1)}))[1]
            assert answer["result"] == [] and server.is_confirmed(second)
            # Updates of kinds the bot did not ask for are never delivered.
            await _call(server, "getUpdates", form={"allowed_updates": '["callback_query"]'})
            server.send_text(1, "c")
            assert (await _call(server, "getUpdates", form={"timeout": "0"}))[1]["result"] == []
            # Two pollers: the newer one ends the older one's long poll with a 409.
            older = asyncio.create_task(_call(server, "getUpdates", form={"timeout": "30"}))
            while not server.long_polling:
                await asyncio.sleep(0.001)  # let the older poll reach the server
            status, answer = await _call(server, "getUpdates", form={"timeout": "0"})
            assert status == 200
            status, answer = await older
            assert status == 409 and "terminated by other getUpdates" in answer["description"]

    run(scenario())


def test_stopping_releases_a_hanging_long_poll() -> None:
    async def scenario() -> None:
        server = LocalBotApiServer()
        await server.start()
        poll = asyncio.create_task(_call(server, "getUpdates", form={"timeout": "30"}))
        while not server.long_polling:
            await asyncio.sleep(0.001)
        started = time.monotonic()
        await server.stop()
        status, answer = await poll
        assert status == 200 and answer["result"] == []
        assert time.monotonic() - started < 2

    run(scenario())


def test_the_spec_refuses_nothing_it_documents() -> None:
    spec = ApiSpec.load()
    name, args = spec.check_call(
        "sendmessage",
        {"chat_id": "-100123", "text": "hi", "reply_markup": '{"inline_keyboard": []}'},
    )
    assert name == "sendMessage" and args["chat_id"] == -100123
    assert args["reply_markup"] == {"inline_keyboard": []}
    name, args = spec.check_call("sendMessage", {"chat_id": "@channel", "text": "1"})
    assert args["chat_id"] == "@channel" and args["text"] == "1"
    with pytest.raises(ApiError):
        spec.check_call("getMe", {"x": "1"})


@pytest.mark.skipif(not SHARED_SPEC.exists(), reason="no ../shared/data next to the clone")
def test_the_packaged_spec_is_the_shared_one() -> None:
    assert Path(SPEC_FILE).read_bytes() == SHARED_SPEC.read_bytes()
    licence = SPEC_FILE.with_name("LICENSE").read_text(encoding="utf-8")
    assert licence.startswith("MIT License")
