"""Hand-over with the operators in a Telegram group, through the local Bot API server.

A person chats privately with the bot; the lawyers' queue is a supergroup. The ticket and
the person's messages (and files) appear there as replies; an operator's reply (or file)
reaches the person as the lawyer's; /close returns them to the bot; /forget edits the
ticket. Outside the opening hours the person is told when to expect an answer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
from pathlib import Path
from zoneinfo import ZoneInfo

from adapters.serve.handover import CaseStore, Desk, watch
from adapters.serve.hours import OpeningHours
from adapters.serve.hub import Hub
from adapters.telegram.channel import TelegramChannel
from adapters.telegram.localserver import ChatMessage, LocalBotApiServer
from engine.conversation import Address, Status
from engine.loader import load_folder
from engine.privacy import new_key
from engine.runtime import Engine
from engine.stores import MemoryStore
from tests.telegram.tg_helpers import make_config, run, serve_process

FLOWS = Path(__file__).parents[1] / "data" / "semantics"
PERSON, OPERATOR, GROUP = 5001, 7001, -100123


def test_a_case_is_served_from_a_telegram_group() -> None:
    flows, report = load_folder(FLOWS)
    assert flows is not None, report.errors

    async def scenario() -> None:
        async with LocalBotApiServer() as server:
            channel = TelegramChannel(make_config(server), server.token)
            channel.bind(flows)
            cases = CaseStore()
            desk = Desk({"lawyers": Address("telegram", str(GROUP))}, cases, {"telegram": channel})
            watch(desk, [channel])
            store = MemoryStore()
            engine = Engine(flows, clock=lambda: dt.datetime(2026, 11, 25))
            hub = Hub(engine, store, {"telegram": channel}, desk)
            await channel.start(hub.deliver)
            try:

                async def operator(text: str, reply_to: int | None = None) -> None:
                    update = server.send_text(
                        OPERATOR, text, chat_id=GROUP, chat_type="supergroup", reply_to=reply_to
                    )
                    await server.wait_confirmed(update)

                async def person(text: str) -> list[str]:
                    before = len(server.received(PERSON))
                    await server.wait_confirmed(server.send_text(PERSON, text))
                    return [m.text or "" for m in server.received(PERSON)[before:]]

                def group() -> list[ChatMessage]:
                    return [m for m in server.received(GROUP) if m.from_bot]

                await operator("/cases")  # the group exists once someone wrote there
                assert group()[-1].text == "No open cases."
                told = await person("/lawyer")
                assert "You are number 1 in the queue." in told[-1]
                ticket = group()[-1]
                assert ticket.text is not None and ticket.text.startswith("Case #")
                assert str(PERSON) not in ticket.text and "User" not in ticket.text
                await person("I was handed a summons")
                relay = group()[-1]
                assert relay.text == "Person: I was handed a summons"
                assert relay.reply_to == ticket.message_id
                before = len(server.received(PERSON))
                await operator("Do not sign anything.", reply_to=ticket.message_id)
                answers = [m.text for m in server.received(PERSON)[before:]]
                assert answers == [
                    "A lawyer has taken your case and will answer here.",
                    "Lawyer: Do not sign anything.",
                ]
                assert any("taken by User7001" in (m.text or "") for m in group())
                # Files both ways: the person's scan into the thread, the lawyer's draft back.
                scan = b"%PDF-1.4 the summons, scanned"
                await server.wait_confirmed(
                    server.send_user_document(PERSON, "summons.pdf", scan, caption="the paper")
                )
                intro, posted = group()[-2:]
                assert intro.text == "Person: the paper" and intro.reply_to == ticket.message_id
                assert posted.document is not None and posted.document.data == scan
                assert posted.document.filename == "summons.pdf"
                assert posted.reply_to == ticket.message_id
                draft = b"PK\x03\x04 an appeal"
                before = len(server.received(PERSON))
                update = server.send_user_document(
                    OPERATOR,
                    "appeal.docx",
                    draft,
                    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                    chat_id=GROUP,
                    chat_type="supergroup",
                    reply_to=ticket.message_id,
                )
                await server.wait_confirmed(update)
                got = server.received(PERSON)[before:]
                assert [m.text for m in got[:1]] == ["The lawyer sent you a file:"]
                assert got[1].document is not None and got[1].document.data == draft
                assert got[1].document.filename == "appeal.docx"
                # Over the 20 MB a bot may download: refused politely, nothing fetched.
                gets = len(server.calls_of("getFile"))
                big = server.send_user_document(PERSON, "video.pdf", b"x" * (20 * 2**20 + 1))
                before = len(server.received(PERSON))
                await server.wait_confirmed(big)
                assert "too large" in (server.received(PERSON)[before].text or "")
                assert len(server.calls_of("getFile")) == gets
                await operator("/note calls back", reply_to=relay.message_id)
                assert len(server.received(PERSON)) == before + 1
                await operator("/close", reply_to=ticket.message_id)
                assert store.load(engine.key(Address("telegram", str(PERSON)))).status is (
                    Status.IDLE
                )
                assert "Lawyer" not in (server.received(PERSON)[-1].text or "")
                # A second case, forgotten: the ticket is edited.
                await person("/lawyer")
                second = group()[-1]
                await person("/forget")
                assert "deleted at the person's request" in (second.text or "")
                # Every case of the person goes, the closed one too, and both tickets say so.
                assert cases.count() == 0
                assert "deleted at the person's request" in (ticket.text or "")
            finally:
                await channel.stop()

    run(scenario())


def test_off_hours_the_person_is_told_when_lawyers_answer() -> None:
    flows, report = load_folder(FLOWS)
    assert flows is not None, report.errors
    hours = OpeningHours.parse("Europe/Moscow", "mon-fri", "10:00", "19:00")
    saturday = dt.datetime(2026, 11, 28, 12, 0, tzinfo=ZoneInfo("Europe/Moscow")).timestamp()

    async def scenario() -> None:
        async with LocalBotApiServer() as server:
            channel = TelegramChannel(make_config(server), server.token)
            channel.bind(flows)
            room = Address("telegram", str(GROUP))
            desk = Desk(
                {"lawyers": room},
                CaseStore(),
                {"telegram": channel},
                clock=lambda: saturday,
                hours={"lawyers": hours},
            )
            desk.bind(flows)
            watch(desk, [channel])
            hub = Hub(Engine(flows), MemoryStore(), {"telegram": channel}, desk)
            await channel.start(hub.deliver)
            try:
                await server.wait_confirmed(
                    server.send_text(OPERATOR, "/cases", chat_id=GROUP, chat_type="supergroup")
                )
                await server.wait_confirmed(server.send_text(PERSON, "/lawyer", language_code="ru"))
                notice = server.received(PERSON)[-1].text or ""
                assert notice.startswith("Ваше обращение зарегистрировано. Ваш номер в очереди: 1.")
                assert "Юристы отвечают пн–пт 10:00–19:00 (Europe/Moscow)" in notice
                assert "понедельник 30.11 10:00" in notice
                # The ticket is in the group all the same, waiting for Monday.
                assert (server.received(GROUP)[-1].text or "").startswith("Case #")
            finally:
                await channel.stop()

    run(scenario())


def test_serve_routes_cases_to_the_group_and_keeps_them_over_a_restart(tmp_path: Path) -> None:
    """`hotline serve` as run in production, with a `handover:` section: the case survives
    a restart, and the logs say nothing about it."""
    config = tmp_path / "hotline.yaml"
    env = {"HOTLINE_KEYS": new_key(), "HOTLINE_KEY_SECRET": new_key()}

    async def scenario() -> None:
        async with LocalBotApiServer() as server:
            config.write_text(
                f"flows: {FLOWS}\n"
                f"store: {{sqlite: {tmp_path / 'hotline.sqlite3'}}}\n"
                f"telegram: {{api_url: {server.api_url}, poll_timeout: 5}}\n"
                f"handover:\n  lawyers: {{channel: telegram, chat: {GROUP}}}\n",
                encoding="utf-8",
            )
            env["TELEGRAM_BOT_TOKEN"] = server.token

            async def operator(text: str, reply_to: int | None = None) -> None:
                update = server.send_text(
                    OPERATOR, text, chat_id=GROUP, chat_type="supergroup", reply_to=reply_to
                )
                await server.wait_confirmed(update, timeout=30)

            async def stop(process: asyncio.subprocess.Process) -> str:
                process.send_signal(signal.SIGTERM)
                _out, err = await asyncio.wait_for(process.communicate(), 20)
                assert process.returncode == 0, err.decode()
                return err.decode()

            logs = ""
            process = await serve_process(config, env)
            try:
                await operator("/cases")
                await server.wait_confirmed(server.send_text(PERSON, "/lawyer"), timeout=30)
                ticket = [m for m in server.received(GROUP) if m.from_bot][-1]
                assert (ticket.text or "").startswith("Case #")
                number = (ticket.text or "").split()[1]
            finally:
                logs += await stop(process)
            process = await serve_process(config, env)
            try:
                before = len(server.received(PERSON))
                await operator("Still here after the restart.", reply_to=ticket.message_id)
                texts = [m.text for m in server.received(PERSON)[before:]]
                assert texts == [
                    "A lawyer has taken your case and will answer here.",
                    "Lawyer: Still here after the restart.",
                ]
            finally:
                logs += await stop(process)
            assert number not in logs and "restart" not in logs and str(PERSON) not in logs

    run(scenario(), limit=90)
