"""The lawyers' desk: tickets, relays, replies and operators' commands, channel-neutral.

A person talks on the "test" channel; the operators' room is on the "ops" channel; both are
in-memory, so what each side would have seen is a list.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from collections.abc import Callable, Collection, Coroutine
from pathlib import Path
from typing import Any

import pytest

from adapters.serve.channel import Channel, Deliver, OperatorHandler, OperatorMessage
from adapters.serve.config import ConfigError, load_config
from adapters.serve.handover import CaseStore, Desk, rooms_from_config, watch
from adapters.serve.hub import Hub
from engine.conversation import (
    Action,
    Address,
    HandoverContext,
    Inbound,
    SendText,
    StartHandover,
    Status,
)
from engine.loader import load_folder
from engine.runtime import Engine
from engine.stores import MemoryStore

FLOWS = Path(__file__).parent / "data" / "semantics"
PERSON = Address("test", "987654321")
ROOM = Address("ops", "!ops:example.org")


def run(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """An async test, run in its own event loop (the suite has no asyncio plugin)."""

    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return wrapper


class PersonChannel(Channel):
    def __init__(self) -> None:
        self.name = "test"
        self.sent: list[Action] = []

    async def start(self, deliver: Deliver) -> None:
        pass

    async def perform(self, action: Action, *, idempotency_key: str | None = None) -> None:
        self.sent.append(action)

    async def stop(self) -> None:
        pass

    def texts(self) -> list[str]:
        return [a.text for a in self.sent if isinstance(a, SendText)]


class RoomChannel(Channel):
    """An operators' room: posts are (message id, text, thread id); edits replace texts."""

    def __init__(self) -> None:
        self.name = "ops"
        self.posts: list[tuple[str, str, str | None]] = []
        self.edits: dict[str, str] = {}
        self.handler: OperatorHandler | None = None
        self.watched: set[str] = set()

    def watch_rooms(self, rooms: Collection[str], handler: OperatorHandler) -> None:
        self.watched, self.handler = set(rooms), handler

    async def start(self, deliver: Deliver) -> None:
        pass

    async def perform(self, action: Action, *, idempotency_key: str | None = None) -> None:
        raise AssertionError(f"nothing for the person goes to the room: {action!r}")

    async def stop(self) -> None:
        pass

    async def post_to_room(self, room: str, text: str, thread_id: str | None = None) -> str:
        assert room == ROOM.chat
        message_id = f"$m{len(self.posts)}"
        self.posts.append((message_id, text, thread_id))
        return message_id

    async def edit_in_room(self, room: str, message_id: str, text: str) -> None:
        self.edits[message_id] = text

    def in_thread(self, thread_id: str) -> list[str]:
        return [text for _, text, thread in self.posts if thread == thread_id]

    async def say(self, text: str, thread_id: str | None, sender: str = "@anna:example.org"):
        assert self.handler is not None
        await self.handler(OperatorMessage(ROOM, thread_id, sender, text))


class Setup:
    def __init__(self, db: str | Path = ":memory:", minutes: list[float] | None = None) -> None:
        flows, report = load_folder(FLOWS)
        assert flows is not None, report.errors
        self.person, self.room = PersonChannel(), RoomChannel()
        channels: dict[str, Channel] = {"test": self.person, "ops": self.room}
        self.now = [1_000_000.0]
        self.cases = CaseStore(db)
        self.desk = Desk({"lawyers": ROOM}, self.cases, channels, clock=lambda: self.now[0])
        watch(self.desk, channels.values())
        self.sessions = MemoryStore()
        engine = Engine(flows, clock=lambda: dt.datetime(2026, 11, 25))
        self.hub = Hub(engine, self.sessions, channels, self.desk)

    async def user(self, text: str) -> None:
        await self.hub.deliver(Inbound.typed(PERSON, text, "en"))

    async def handed_over(self) -> str:
        """The person starts a flow and presses its lawyer button: the ticket's id."""
        await self.user("summons")
        press = [a for a in self.person.sent if isinstance(a, SendText) and a.buttons][-1]
        posts = len(self.room.posts)
        await self.hub.deliver(Inbound.press(PERSON, press.buttons[2].payload, "en"))
        assert len(self.room.posts) == posts + 1
        return self.room.posts[-1][0]

    def status(self) -> Status:
        session = self.sessions.load(self.hub.engine.key(PERSON))
        assert session is not None
        return session.status


@run
async def test_the_ticket_shows_the_case_and_nothing_else_about_the_person() -> None:
    s = Setup()
    ticket = await s.handed_over()
    assert s.room.watched == {ROOM.chat}
    _, text, thread = s.room.posts[0]
    assert thread is None
    assert text.startswith("Case #") and "language en" in text and "queue lawyers" in text
    assert "Path: intake › lawyer" in text
    assert PERSON.chat not in text and "test" not in text
    assert s.status() is Status.HANDOVER
    case = s.cases.by_message(ROOM, ticket)
    assert case is not None and case.user == PERSON and len(case.number) == 5


@run
async def test_the_persons_messages_go_to_the_thread_and_replies_come_back_as_lawyer() -> None:
    s = Setup()
    ticket = await s.handed_over()
    await s.user("I got it yesterday")
    assert s.room.in_thread(ticket) == ["Person: I got it yesterday"]
    await s.room.say("Do not sign anything.", ticket)
    assert s.person.texts()[-1] == "Lawyer: Do not sign anything."
    assert "anna" not in " ".join(s.person.texts())
    # The first answer claims the case, for the other operators to see.
    assert any("taken by @anna:example.org" in t for t in s.room.in_thread(ticket))
    # Replying to one of the person's messages in the thread (Telegram) reaches them too.
    relay = next(mid for mid, text, _ in s.room.posts if text.startswith("Person:"))
    await s.room.say("And keep the envelope.", relay)
    assert s.person.texts()[-1] == "Lawyer: And keep the envelope."


@run
async def test_take_close_and_note() -> None:
    s = Setup()
    ticket = await s.handed_over()
    await s.room.say("!take", ticket, sender="@boris:example.org")
    assert s.room.in_thread(ticket)[-1].endswith("taken by @boris:example.org.")
    assert s.person.texts()[-1] == "A lawyer has taken your case and will answer here."
    sent_before = len(s.person.sent)
    await s.room.say("/note calls back tomorrow", ticket)
    assert len(s.person.sent) == sent_before  # a note is never sent
    await s.room.say("/close", ticket, sender="@boris:example.org")
    assert s.room.in_thread(ticket)[-1].endswith("closed by @boris:example.org.")
    assert s.status() is Status.IDLE  # the engine took the conversation back
    assert "Lawyer" not in " ".join(s.person.texts())
    # The person talks to the bot again, not to the room.
    posts = len(s.room.posts)
    await s.user("/start")
    assert len(s.room.posts) == posts and s.person.texts()[-1] == "Menu"
    await s.room.say("hello?", ticket)
    assert s.room.in_thread(ticket)[-1].endswith("is no longer open.")


@run
async def test_cases_lists_open_cases_with_waiting_times() -> None:
    s = Setup()
    await s.room.say("/cases", None)
    assert s.room.posts[-1][1] == "No open cases."
    ticket = await s.handed_over()
    number = s.cases.by_message(ROOM, ticket).number  # type: ignore[union-attr]
    s.now[0] += 12 * 60
    await s.room.say("!cases", None)
    listing = s.room.posts[-1][1]
    assert number in listing and "12 min" in listing and "not taken" in listing
    assert PERSON.chat not in listing


@run
async def test_commands_outside_a_thread_and_chatter_are_not_sent() -> None:
    s = Setup()
    await s.handed_over()
    sent = len(s.person.sent)
    await s.room.say("good morning all", None)
    await s.room.say("/take", None)
    assert len(s.person.sent) == sent
    assert "reply to the ticket" in s.room.posts[-1][1]


@run
async def test_cancel_tells_the_room_the_person_left() -> None:
    s = Setup()
    ticket = await s.handed_over()
    await s.user("/cancel")
    assert s.room.in_thread(ticket)[-1].endswith("the person left the queue.")
    assert s.status() is not Status.HANDOVER
    assert s.cases.open_cases() == []


@run
async def test_forget_deletes_the_case_and_marks_the_ticket() -> None:
    s = Setup()
    ticket = await s.handed_over()
    await s.user("/forget")
    assert s.cases.count() == 0 and s.cases.by_message(ROOM, ticket) is None
    assert "deleted at the person's request" in s.room.edits[ticket]


@run
async def test_purge_drops_old_cases_that_are_over_and_keeps_open_ones() -> None:
    s = Setup()
    first = await s.handed_over()
    await s.user("/cancel")
    await s.handed_over()
    assert s.cases.purge(before=s.now[0] + 1) == 1
    assert s.cases.by_message(ROOM, first) is None and len(s.cases.open_cases()) == 1


@run
async def test_a_restart_keeps_open_cases(tmp_path: Path) -> None:
    db = tmp_path / "hotline.sqlite3"
    s = Setup(db)
    ticket = await s.handed_over()
    s.cases.close()
    again = Setup(db)
    again.sessions = s.sessions
    again.hub.store = s.sessions
    case = again.cases.by_message(ROOM, ticket)
    assert case is not None and case.state == "open"
    assert case.path == ("intake", "lawyer")
    await again.room.say("We are back.", ticket)
    assert again.person.texts() == [
        "A lawyer has taken your case and will answer here.",
        "Lawyer: We are back.",
    ]


@run
async def test_a_case_keeps_the_chat_id_and_answers_sealed_and_its_key_pseudonymous(
    tmp_path: Path,
) -> None:
    import os

    from engine.privacy import Sealer, SessionKeys

    db = tmp_path / "cases.sqlite3"
    s = Setup()
    sealer, keys = Sealer([os.urandom(32)]), SessionKeys(b"k" * 32)
    s.desk.store = s.cases = CaseStore(db, sealer=sealer, keys=keys)
    await s.desk.perform(
        StartHandover(PERSON, "lawyers", HandoverContext("ru", ("intake",), (("a", "секрет"),)))
    )
    (case,) = s.cases.open_cases()
    assert case.answers == (("a", "секрет"),) and case.user == PERSON
    assert s.cases.of_user(PERSON) == [case]
    assert "Answers:\n  a: секрет" in s.room.posts[0][1]
    s.cases.close()
    raw = db.read_bytes() + b"".join(
        p.read_bytes() for p in tmp_path.glob("cases.sqlite3-*") if p.is_file()
    )
    assert "секрет".encode() not in raw and PERSON.chat.encode() not in raw


def test_the_handover_config(tmp_path: Path) -> None:
    path = tmp_path / "serve.yaml"
    path.write_text(
        "telegram: {}\nmatrix: {homeserver: http://x, user_id: '@b:x'}\n"
        "handover:\n  lawyers: {channel: matrix, room: '!abc:x'}\n"
        "  urgent: {channel: telegram, chat: -100123}\n"
    )
    config, _ = load_config(path)
    rooms = rooms_from_config({q: r.model_dump() for q, r in config.handover.items()})
    assert rooms == {
        "lawyers": Address("matrix", "!abc:x"),
        "urgent": Address("telegram", "-100123"),
    }
    path.write_text("telegram: {}\nhandover:\n  lawyers: {channel: matrix, room: '!abc:x'}\n")
    with pytest.raises(ConfigError, match="add a `matrix:` section"):
        load_config(path)
    path.write_text("telegram: {}\nhandover:\n  lawyers: {channel: telegram, chat: 5}\n")
    with pytest.raises(ConfigError, match="negative"):
        load_config(path)


# --------------------------------------------------------------------------- adapters' parts


def test_matrix_reads_an_operators_thread_reply_and_posts_into_threads() -> None:
    from adapters.matrix import convert

    def event(content: dict[str, Any]) -> dict[str, Any]:
        return {"type": "m.room.message", "sender": "@anna:x", "content": content}

    thread = {"rel_type": "m.thread", "event_id": "$ticket", "is_falling_back": True}
    assert convert.operator_message(
        event({"msgtype": "m.text", "body": " !take ", "m.relates_to": thread})
    ) == ("!take", "$ticket")
    reply = {"m.in_reply_to": {"event_id": "$relay"}}
    body = "> <@bot:x> Person: hello\n\nHi there"
    assert convert.operator_message(
        event({"msgtype": "m.text", "body": body, "m.relates_to": reply})
    ) == ("Hi there", "$relay")
    assert convert.operator_message(event({"msgtype": "m.text", "body": "/cases"})) == (
        "/cases",
        None,
    )
    edit = {"rel_type": "m.replace", "event_id": "$x"}
    assert (
        convert.operator_message(event({"msgtype": "m.text", "body": "x", "m.relates_to": edit}))
        is None
    )
    assert convert.operator_message(event({"msgtype": "m.notice", "body": "x"})) is None
    posted = convert.room_post_content("Person: hi", "$ticket")
    assert posted["m.relates_to"]["rel_type"] == "m.thread"
    assert posted["m.relates_to"]["event_id"] == "$ticket"
    assert "m.relates_to" not in convert.room_post_content("Case #A7K2", None)
    edited = convert.edit_content("deleted", "$ticket")
    assert edited["m.new_content"]["body"] == "deleted"
    assert edited["m.relates_to"] == {"rel_type": "m.replace", "event_id": "$ticket"}


def test_telegram_lets_only_the_operators_group_through_to_the_desk() -> None:
    from telegram import Update

    from adapters.telegram.convert import read_update

    def update(chat_id: int, text: str, reply_to: int | None = None) -> Update:
        message: dict[str, Any] = {
            "message_id": 9,
            "date": 0,
            "chat": {"id": chat_id, "type": "supergroup", "title": "Lawyers"},
            "from": {"id": 7, "is_bot": False, "first_name": "Anna", "username": "anna_l"},
            "text": text,
        }
        if reply_to is not None:
            message["reply_to_message"] = {
                "message_id": reply_to,
                "date": 0,
                "chat": message["chat"],
            }
        return Update.de_json({"update_id": 1, "message": message}, None)

    work = read_update(update(-100123, "/take@hotline_bot", 41), "hotline_bot", {-100123})
    assert work.event is None and work.operator == OperatorMessage(
        Address("telegram", "-100123"), "41", "@anna_l", "/take"
    )
    other = read_update(update(-100999, "hello"), "hotline_bot", {-100123})
    assert other.event is None and other.operator is None
