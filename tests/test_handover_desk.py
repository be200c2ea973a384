"""The lawyers' desk, continued: opening hours, queue positions, files both ways, a room
that cannot be reached, and the case store on PostgreSQL.

As in test_handover.py, people talk on the in-memory "test" channel and the operators'
room is the in-memory "ops" channel; "now" is the desk's clock, frozen and moved by hand.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import secrets
import textwrap
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from adapters.serve.cases import CaseNumberTaken
from adapters.serve.channel import Channel, FileTooLarge, OperatorMessage
from adapters.serve.config import ConfigError, load_config
from adapters.serve.handover import Case, CaseStore, Desk, hours_from_config, watch
from adapters.serve.hours import OpeningHours, describe_days, parse_days, parse_time
from adapters.serve.hub import Hub
from engine.conversation import (
    Address,
    Attachment,
    Inbound,
    SendDocument,
    SendText,
    Status,
)
from engine.loader import load_folder
from engine.runtime import Engine
from engine.stores import MemoryStore
from tests.test_handover import FLOWS, ROOM, PersonChannel, RoomChannel, run

MOSCOW = ZoneInfo("Europe/Moscow")
ALICE = Address("test", "1001")
BORIS = Address("test", "1002")
CARLA = Address("test", "1003")
PG_URL = os.environ.get("HOTLINE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def moscow(day: int, hour: int, minute: int = 0) -> float:
    """A time.time() in late November 2026, Moscow time (the 28th is a Saturday)."""
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=MOSCOW).timestamp()


WORKING_HOURS = OpeningHours.parse(
    "Europe/Moscow",
    "mon-fri",
    "10:00",
    "19:00",
    holidays=[dt.date(2026, 12, 31)],
    zone_names={"en": "Moscow time", "ru": "по московскому времени"},
)


# --------------------------------------------------------------------------- fakes


class People(PersonChannel):
    """People's channel, holding the files they sent (ref -> bytes)."""

    download_limit = 2_000

    def __init__(self) -> None:
        super().__init__()
        self.files: dict[str, bytes] = {}
        self.fetched: list[str] = []
        self.limit: int | None = 5_000

    async def fetch_file(self, ref: str) -> bytes:
        self.fetched.append(ref)
        return self.files[ref]

    async def upload_limit(self) -> int | None:
        return self.limit

    def to(self, who: Address) -> list[str]:
        return [a.text for a in self.sent if isinstance(a, SendText) and a.to == who]

    def documents(self, who: Address) -> list[SendDocument]:
        return [a for a in self.sent if isinstance(a, SendDocument) and a.to == who]


class Room(RoomChannel):
    """The operators' room: can be made unreachable; files posted are kept by message id."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.limit: int | None = None
        self.files: dict[str, bytes] = {}
        self.posted_files: dict[str, tuple[str, str, bytes]] = {}

    async def post_to_room(self, room: str, text: str, thread_id: str | None = None) -> str:
        if self.down:
            raise ConnectionError("the room is unreachable")
        return await super().post_to_room(room, text, thread_id)

    async def edit_in_room(self, room: str, message_id: str, text: str) -> None:
        if self.down:
            raise ConnectionError("the room is unreachable")
        await super().edit_in_room(room, message_id, text)

    async def post_file_to_room(
        self,
        room: str,
        file_name: str,
        mime_type: str,
        data: bytes,
        thread_id: str | None = None,
    ) -> str:
        if self.down:
            raise ConnectionError("the room is unreachable")
        if self.limit is not None and len(data) > self.limit:
            raise FileTooLarge(self.limit)
        message_id = await super().post_to_room(room, f"[file {file_name}]", thread_id)
        self.posted_files[message_id] = (file_name, mime_type, data)
        return message_id

    async def fetch_file(self, ref: str) -> bytes:
        return self.files[ref]

    async def upload_limit(self) -> int | None:
        return self.limit

    async def send_file(
        self, thread_id: str, name: str, data: bytes, caption: str = "", mime: str = "text/plain"
    ) -> None:
        ref = f"ref-{len(self.files)}"
        self.files[ref] = data
        assert self.handler is not None
        message = OperatorMessage(
            ROOM, thread_id, "@anna:example.org", caption, Attachment(ref, name, mime, len(data))
        )
        await self.handler(message)


class Desked:
    """Engine, hub and desk around the fakes; `now` is the desk's clock."""

    def __init__(
        self,
        hours: OpeningHours | None = None,
        store: CaseStore | None = None,
        flows_dir: Path = FLOWS,
    ) -> None:
        flows, report = load_folder(flows_dir)
        assert flows is not None, report.errors
        self.people, self.room = People(), Room()
        channels: dict[str, Channel] = {"test": self.people, "ops": self.room}
        self.now = [moscow(25, 12)]  # a Wednesday noon: open
        self.cases = store or CaseStore()
        self.desk = Desk(
            {"lawyers": ROOM},
            self.cases,
            channels,
            clock=lambda: self.now[0],
            hours={"lawyers": hours} if hours else None,
            retry=(0.01, 0.05),
        )
        self.desk.bind(flows)
        watch(self.desk, channels.values())
        self.sessions = MemoryStore()
        self.engine = Engine(flows, clock=lambda: dt.datetime(2026, 11, 25))
        self.hub = Hub(self.engine, self.sessions, channels, self.desk)

    async def say(self, who: Address, text: str, language: str = "en") -> list[str]:
        before = len(self.people.to(who))
        await self.hub.deliver(Inbound.typed(who, text, language))
        return self.people.to(who)[before:]

    async def send_file(
        self, who: Address, name: str, data: bytes, caption: str = "", language: str = "en"
    ) -> list[str]:
        ref = f"{who.chat}-{len(self.people.files)}"
        self.people.files[ref] = data
        attachment = Attachment(ref, name, "application/pdf", len(data))
        before = len(self.people.to(who))
        await self.hub.deliver(Inbound.file(who, attachment, caption, language))
        return self.people.to(who)[before:]

    async def hand_over(self, who: Address, language: str = "en") -> list[str]:
        """/lawyer: what the person was told; the clock moves on a minute."""
        told = await self.say(who, "/lawyer", language)
        self.now[0] += 60
        return told

    def ticket(self, who: Address) -> str:
        (case,) = [c for c in self.cases.of_user(who) if c.state == "open"]
        assert case.ticket is not None
        return case.ticket

    def case(self, who: Address) -> Case:
        (case,) = [c for c in self.cases.of_user(who) if c.state == "open"]
        return case

    def status(self, who: Address) -> Status:
        session = self.sessions.load(self.engine.key(who))
        assert session is not None
        return session.status


# --------------------------------------------------------------------------- opening hours


def test_opening_hours_answer_is_open_and_next_opening() -> None:
    hours = WORKING_HOURS
    assert hours.is_open(moscow(25, 12)) and hours.is_open(moscow(25, 10))
    assert not hours.is_open(moscow(25, 19)) and not hours.is_open(moscow(25, 9, 59))
    assert not hours.is_open(moscow(28, 12))  # Saturday
    monday = dt.datetime(2026, 11, 30, 10, 0, tzinfo=MOSCOW)
    assert hours.next_opening(moscow(28, 12)) == monday
    assert hours.next_opening(moscow(27, 19, 30)) == monday  # Friday evening
    assert hours.next_opening(moscow(25, 8)).day == 25  # before today's opening
    assert hours.next_opening(moscow(25, 12)).day == 26  # open now: the next one
    # A holiday is skipped, and the year turns.
    new_year = dt.datetime(2026, 12, 30, 20, 0, tzinfo=MOSCOW).timestamp()
    assert hours.next_opening(new_year).date() == dt.date(2027, 1, 1)
    # Summer time: the opening is 10:00 on the wall clock on both sides of the change.
    berlin = OpeningHours.parse("Europe/Berlin", "mon-sun", "10:00", "24:00")
    before = dt.datetime(2026, 3, 28, 23, 0, tzinfo=ZoneInfo("Europe/Berlin")).timestamp()
    opening = berlin.next_opening(before)
    assert (opening.day, opening.hour, opening.utcoffset()) == (29, 10, dt.timedelta(hours=2))
    assert berlin.is_open(before)  # until midnight


def test_opening_hours_are_read_and_refused_with_reasons() -> None:
    assert parse_days("mon-fri") == frozenset(range(5))
    assert parse_days("sat-mon") == frozenset({5, 6, 0})
    assert parse_days(["mon", "Wednesday"]) == frozenset({0, 2})
    assert parse_time("10:00") == 600 and parse_time(600) == 600 and parse_time("24:00") == 1440
    names = "Mon,Tue,Wed,Thu,Fri,Sat,Sun".split(",")
    assert describe_days(frozenset({0, 1, 2, 3, 4, 6}), names) == "Mon–Fri, Sun"
    assert describe_days(frozenset({0, 2}), names) == "Mon, Wed"
    assert WORKING_HOURS.describe(names) == "Mon–Fri 10:00–19:00"
    for bad, why in [
        (("Mars/Olympus", "mon", "10:00", "11:00"), "unknown time zone"),
        (("UTC", "mon", "19:00", "10:00"), "must be later"),
        (("UTC", "moon", "10:00", "11:00"), "is not a day"),
        (("UTC", "mon", "10h", "11:00"), "not a time of day"),
    ]:
        with pytest.raises(ValueError, match=why):
            OpeningHours.parse(*bad)


def test_the_config_takes_hours_per_queue(tmp_path: Path) -> None:
    path = tmp_path / "serve.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            matrix: {homeserver: http://x, user_id: '@b:x'}
            handover:
              lawyers:
                channel: matrix
                room: '!abc:x'
                hours:
                  timezone: Europe/Moscow
                  days: mon-fri
                  from: 10:00          # unquoted: YAML reads 600, taken all the same
                  to: "19:00"
                  holidays: [2026-12-31]
                  zone_name: {en: Moscow time, ru: МСК}
              urgent: {channel: matrix, room: '!def:x'}
            """
        )
    )
    config, _ = load_config(path)
    hours = hours_from_config(config.handover)
    assert list(hours) == ["lawyers"]
    assert (hours["lawyers"].opens, hours["lawyers"].closes) == (600, 1140)
    assert hours["lawyers"].holidays == frozenset({dt.date(2026, 12, 31)})
    assert hours["lawyers"].zone_name("ru") == "МСК"
    path.write_text(
        "matrix: {homeserver: http://x, user_id: '@b:x'}\nhandover:\n  lawyers:\n"
        "    {channel: matrix, room: '!abc:x', hours: {timezone: Moscow, from: '9', to: '1'}}\n"
    )
    with pytest.raises(ConfigError, match=r"handover\.lawyers\.hours: .*unknown time zone"):
        load_config(path)


@run
async def test_off_hours_the_person_is_told_when_to_expect_an_answer_once_per_closed_period() -> (
    None
):
    s = Desked(WORKING_HOURS)
    s.now[0] = moscow(28, 12)  # Saturday noon
    told = await s.hand_over(ALICE)
    notice = told[-1]
    assert notice.startswith("Your request is registered. You are number 1 in the queue.")
    assert (
        "Lawyers answer Mon–Fri 10:00–19:00 (Moscow time). The next answer can be expected "
        "from Monday 30.11 10:00. Your messages are kept and will be shown to the lawyer."
    ) in notice
    ticket = s.ticket(ALICE)
    assert s.room.in_thread(ticket) == []  # the ticket is posted at once all the same
    # Writing on Sunday: kept and posted; no second notice in the same closed period.
    s.now[0] = moscow(29, 15)
    assert await s.say(ALICE, "Are you there?") == []
    assert s.room.in_thread(ticket) == ["Person: Are you there?"]
    # Monday during the hours: nothing.
    s.now[0] = moscow(30, 11)
    assert await s.say(ALICE, "Good morning") == []
    # Monday evening is a new closed period: told again, with the next opening.
    s.now[0] = moscow(30, 20)
    (again,) = await s.say(ALICE, "Still waiting")
    assert "from Tuesday 01.12 10:00" in again and "registered" not in again


@run
async def test_off_hours_notice_in_the_persons_language_and_bot_yaml_overrides(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "flows"
    folder.mkdir()
    for name in ("intake.yaml", "lawyer.yaml", "contact.yaml"):
        (folder / name).write_text((FLOWS / name).read_text())
    bot = (FLOWS / "bot.yaml").read_text() + textwrap.dedent(
        """\
        texts:
          handover_position: {en: "Number {position}.", ru: "Вы {position}-й."}
        """
    )
    (folder / "bot.yaml").write_text(bot)
    s = Desked(WORKING_HOURS, flows_dir=folder)
    s.now[0] = moscow(28, 12)
    notice = (await s.hand_over(ALICE, "ru"))[-1]
    assert notice.startswith("Вы 1-й.")
    assert "Юристы отвечают пн–пт 10:00–19:00 (по московскому времени)" in notice
    assert "понедельник 30.11 10:00" in notice
    # A placeholder that the text does not have is a load error pointing at it.
    (folder / "bot.yaml").write_text(bot.replace('"Number {position}."', '"Number {full_name}."'))
    flows, report = load_folder(folder)
    assert flows is None
    assert any(
        "texts.handover_position: {full_name} is not known here; it can use {position}" in d.message
        for d in report.errors
    )


@run
async def test_a_lawyer_answering_off_hours_spares_the_person_the_notice() -> None:
    s = Desked(WORKING_HOURS)
    await s.hand_over(ALICE)  # Wednesday noon: open, no hours notice
    assert "Lawyers answer" not in " ".join(s.people.to(ALICE))
    s.now[0] = moscow(25, 21)  # a lawyer working late
    await s.room.say("Still here, tell me more.", s.ticket(ALICE))
    assert await s.say(ALICE, "Thank you!") == []


# --------------------------------------------------------------------------- positions


@run
async def test_positions_on_hand_over_and_as_cases_ahead_are_taken_or_closed() -> None:
    s = Desked()
    assert "You are number 1 in the queue." in (await s.hand_over(ALICE))[-1]
    assert "You are number 2 in the queue." in (await s.hand_over(BORIS))[-1]
    assert "You are number 3 in the queue." in (await s.hand_over(CARLA))[-1]
    alice = s.ticket(ALICE)
    await s.room.say("/take", alice)
    assert s.people.to(ALICE)[-1] == "A lawyer has taken your case and will answer here."
    assert s.people.to(BORIS)[-1] == "You are now number 1 in the queue."
    assert s.people.to(CARLA)[-1] == "You are now number 2 in the queue."
    # Closing a case already taken moves nobody: nothing said.
    sent = len(s.people.sent)
    await s.room.say("/close", alice)
    assert [a.to for a in s.people.sent[sent:]] == [ALICE]  # only "closed" to Alice
    # Boris leaves: Carla moves up; answering her takes her case (and tells her).
    await s.say(BORIS, "/cancel")
    assert s.people.to(CARLA)[-1] == "You are now number 1 in the queue."
    await s.room.say("Hello Carla.", s.ticket(CARLA))
    assert s.people.to(CARLA)[-2:] == [
        "A lawyer has taken your case and will answer here.",
        "Lawyer: Hello Carla.",
    ]


@run
async def test_far_back_in_the_queue_only_milestones_are_announced() -> None:
    s = Desked()
    people = [Address("test", str(2000 + i)) for i in range(8)]
    for who in people:
        await s.hand_over(who)
    last = people[-1]
    assert "number 8" in s.people.to(last)[-1]
    told = len(s.people.to(last))
    await s.room.say("/take", s.ticket(people[0]))  # 8 -> 7: no milestone
    assert len(s.people.to(last)) == told
    await s.room.say("/take", s.ticket(people[1]))  # 7 -> 6
    await s.room.say("/take", s.ticket(people[2]))  # 6 -> 5: a milestone
    assert s.people.to(last)[told:] == ["You are now number 5 in the queue."]


# --------------------------------------------------------------------------- files


@run
async def test_a_file_from_the_person_reaches_the_thread_only_during_a_hand_over() -> None:
    s = Desked()
    # Before the hand-over: the polite answer, and the file is never even fetched.
    told = await s.send_file(ALICE, "summons.pdf", b"%PDF summons", "my summons")
    assert told == ["I can only read text and buttons."]
    assert s.people.fetched == []
    await s.hand_over(ALICE)
    ticket = s.ticket(ALICE)
    assert await s.send_file(ALICE, "summons.pdf", b"%PDF summons", "my summons") == []
    assert s.room.in_thread(ticket) == ["Person: my summons", "[file summons.pdf]"]
    file_message = s.room.posts[-1][0]
    assert s.room.posted_files[file_message] == ("summons.pdf", "application/pdf", b"%PDF summons")
    await s.send_file(ALICE, "../../etc/passwd", b"x")
    assert s.room.in_thread(ticket)[-2:] == ["Person sent a file:", "[file passwd.bin]"]
    # A reply to the file in the thread reaches the person too.
    await s.room.say("Got it.", file_message)
    assert s.people.to(ALICE)[-1] == "Lawyer: Got it."
    # Nothing of the file is in the session.
    assert "summons" not in str(s.sessions.load(s.engine.key(ALICE)))


@run
async def test_a_file_too_large_to_pass_on_is_refused_politely() -> None:
    s = Desked()
    await s.hand_over(ALICE)
    ticket = s.ticket(ALICE)
    # Over what the person's channel can download (People.download_limit = 2,000 bytes).
    told = await s.send_file(ALICE, "scan.pdf", b"x" * 3_000)
    assert told == [
        "This file is too large to pass on to the lawyer (at most 2 KB). Please send a "
        "smaller file, or photos of the pages."
    ]
    assert s.people.fetched == []
    assert "over" in s.room.in_thread(ticket)[-1] and "smaller one" in s.room.in_thread(ticket)[-1]
    # Over the room's upload limit, found when posting.
    s.room.limit = 1_048_576 // 2
    s.people.download_limit = 10_000_000
    told = await s.send_file(ALICE, "scan.pdf", b"x" * (1_048_576 // 2 + 1))
    assert "(at most 512 KB)" in told[0]


@run
async def test_a_file_from_the_operator_reaches_the_person_as_the_lawyers() -> None:
    s = Desked()
    await s.hand_over(ALICE)
    ticket = s.ticket(ALICE)
    await s.room.send_file(ticket, "appeal.docx", b"PK appeal", mime="application/msword")
    assert s.people.to(ALICE)[-2:] == [
        "A lawyer has taken your case and will answer here.",
        "The lawyer sent you a file:",
    ]
    (document,) = s.people.documents(ALICE)
    assert (document.file_name, document.mime_type, document.data) == (
        "appeal.docx",
        "application/msword",
        b"PK appeal",
    )
    await s.room.send_file(ticket, "note.txt", b"hello", caption="Print and sign this.")
    assert s.people.to(ALICE)[-1] == "Lawyer: Print and sign this."
    assert "anna" not in " ".join(s.people.texts())
    # Too large for the person's channel: the operator is told, the person sees nothing.
    sent = len(s.people.sent)
    s.people.limit = 3
    await s.room.send_file(ticket, "big.pdf", b"too big")
    assert len(s.people.sent) == sent
    assert "the file was not sent" in s.room.in_thread(ticket)[-1]


# --------------------------------------------------------------------------- an unreachable room


@run
async def test_a_room_that_cannot_be_reached_loses_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    s = Desked()
    s.room.down = True
    told = await s.hand_over(ALICE)
    assert "Your request is registered" in told[-1]
    assert s.status(ALICE) is Status.HANDOVER
    case = s.case(ALICE)
    assert case.ticket is None
    await s.say(ALICE, "They took my passport")
    await s.send_file(ALICE, "passport.pdf", b"%PDF passport")
    assert s.room.posts == []
    await asyncio.sleep(0.15)  # a few retries, all failing
    assert s.room.posts == [] and len(s.cases.pending(case.number)) == 2
    s.room.down = False
    for _ in range(100):
        if s.desk.stats.get("posted_late"):
            break
        await asyncio.sleep(0.02)
    ticket = s.ticket(ALICE)
    assert s.room.posts[0][1].startswith(f"Case {case.number}")
    assert s.room.in_thread(ticket) == [
        "Person: They took my passport",
        "Person sent a file:",
        "[file passport.pdf]",
    ]
    assert s.cases.pending(case.number) == []
    # The log names the queue and the room, never the person or what they wrote.
    assert "handover queue lawyers: its room !ops:example.org on ops cannot be reached" in (
        caplog.text
    )
    assert "passport" not in caplog.text and ALICE.chat not in caplog.text
    assert case.number not in caplog.text
    await s.desk.stop()


@run
async def test_start_resumes_what_an_earlier_run_left_unposted(tmp_path: Path) -> None:
    db = tmp_path / "cases.sqlite3"
    s = Desked(store=CaseStore(db))
    s.room.down = True
    await s.hand_over(ALICE)
    await s.say(ALICE, "hello?")
    await s.desk.stop()  # the process stops before the room came back
    s.cases.close()
    again = Desked(store=CaseStore(db))
    await again.desk.start()
    for _ in range(100):
        if again.room.posts and again.cases.pending(again.case(ALICE).number) == []:
            break
        await asyncio.sleep(0.02)
    assert again.room.posts[0][1].startswith("Case #")
    assert again.room.in_thread(again.ticket(ALICE)) == ["Person: hello?"]
    await again.desk.stop()


@run
async def test_forget_during_a_case_drops_the_pending_messages_and_marks_the_ticket_later() -> None:
    s = Desked()
    await s.hand_over(ALICE)
    ticket = s.ticket(ALICE)
    s.room.down = True
    await s.say(ALICE, "my name is Ivan Secretov")
    number = s.case(ALICE).number
    assert s.cases.has_pending(number)
    told = await s.say(ALICE, "/forget")
    assert told == ["Everything the bot kept about you has been deleted. /start to begin again."]
    # Emptied at once: nothing about the person is left, only the ticket to mark.
    (tombstone,) = [s.cases.get(number)]
    assert tombstone is not None and tombstone.state == "forgotten"
    assert tombstone.user.chat == "" and tombstone.answers == () and not s.cases.pending(number)
    assert s.cases.of_user(ALICE) == []
    s.room.down = False
    for _ in range(100):
        if s.cases.count() == 0:
            break
        await asyncio.sleep(0.02)
    assert s.cases.count() == 0
    assert "deleted at the person's request" in s.room.edits[ticket]
    assert "Secretov" not in " ".join(text for _, text, _ in s.room.posts)
    await s.desk.stop()


@run
async def test_a_file_that_cannot_be_fetched_does_not_hold_up_the_rest() -> None:
    s = Desked()
    await s.hand_over(ALICE)
    ticket = s.ticket(ALICE)
    attachment = Attachment("gone", "scan.pdf", "application/pdf", 10)
    await s.hub.deliver(Inbound.file(ALICE, attachment))  # People has no file "gone"
    await s.say(ALICE, "did you get it?")
    assert s.room.in_thread(ticket) == []  # waiting behind the file, in order
    for _ in range(200):
        if s.room.in_thread(ticket)[-1:] == ["Person: did you get it?"]:
            break
        await asyncio.sleep(0.02)
    assert s.room.in_thread(ticket) == [
        f"{s.case(ALICE).number}: the person sent a file that could not be fetched from "
        "test; ask them to send it again.",
        "Person: did you get it?",
    ]
    await s.desk.stop()


@run
async def test_case_numbers_are_unique_even_when_the_draw_repeats() -> None:
    s = Desked()
    numbers = iter(["#AAAA", "#AAAA", "#AAAA", "#BBBB"])
    s.desk._new_number = lambda: next(numbers)  # type: ignore[method-assign]
    await s.hand_over(ALICE)
    await s.hand_over(BORIS)
    assert {s.case(ALICE).number, s.case(BORIS).number} == {"#AAAA", "#BBBB"}


def test_a_case_table_of_the_first_release_gets_the_new_columns(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "old.sqlite3"
    old = sqlite3.connect(db)
    old.executescript(
        """
        CREATE TABLE handover_cases (
            number TEXT PRIMARY KEY, user_channel TEXT NOT NULL, user_key TEXT NOT NULL,
            user_chat BLOB NOT NULL, queue TEXT NOT NULL, language TEXT NOT NULL,
            path TEXT NOT NULL, answers BLOB NOT NULL, room_channel TEXT NOT NULL,
            room TEXT NOT NULL, ticket TEXT, taken_by TEXT, opened REAL NOT NULL,
            state TEXT NOT NULL
        );
        INSERT INTO handover_cases VALUES ('#OLD1', 'test', 'test:1001', CAST('1001' AS BLOB),
            'lawyers', 'en', '[]', CAST('[]' AS BLOB), 'ops', '!ops:example.org', '$t', NULL,
            1.0, 'open');
        """
    )
    old.commit()
    old.close()
    store = CaseStore(db)
    (case,) = store.open_cases()
    assert (case.number, case.user, case.told_position) == ("#OLD1", ALICE, 0)
    assert store.waiting("lawyers") == [("#OLD1", 0)]
    store.close()


# --------------------------------------------------------------------------- PostgreSQL


@pytest.fixture
def pg_schema() -> Any:
    psycopg = pytest.importorskip("psycopg")
    try:
        connection = psycopg.connect(PG_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as err:
        pytest.skip(f"no PostgreSQL at {PG_URL} ({type(err).__name__})")
    schema = "hotline_cases_test_" + secrets.token_hex(4)
    try:
        yield schema
    finally:
        connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        connection.close()


def test_the_case_store_on_postgresql_is_shared_by_workers(pg_schema: str) -> None:
    from engine.privacy import Sealer, SessionKeys

    sealer, keys = Sealer([os.urandom(32)]), SessionKeys(b"k" * 32)
    one = CaseStore(PG_URL, sealer=sealer, keys=keys, schema=pg_schema)
    two = CaseStore(PG_URL, sealer=sealer, keys=keys, schema=pg_schema)  # another worker
    case = Case("#PG22", ALICE, "lawyers", "ru", ("intake",), (("a", "секрет"),), ROOM, opened=5.0)
    one.create(case)
    with pytest.raises(CaseNumberTaken):
        two.create(Case("#PG22", BORIS, "lawyers", "en", (), (), ROOM, opened=6.0))
    two.set_ticket(case, "$ticket")
    one.add_message(case, "$relay")
    found = two.by_message(ROOM, "$relay")
    assert found is not None and found.user == ALICE and found.answers == (("a", "секрет"),)
    assert sorted(found.messages) == ["$relay", "$ticket"]
    assert one.of_user(ALICE)[0].number == "#PG22" and one.of_user(BORIS) == []
    later = Case("#PG33", BORIS, "lawyers", "en", (), (), ROOM, opened=7.0)
    two.create(later)
    assert one.waiting("lawyers") == [("#PG22", 0), ("#PG33", 0)]
    assert one.position(later) == 2
    one.update(case, taken_by="@anna", told_position=1)
    assert two.position(later) == 1 and two.get("#PG22").taken_by == "@anna"  # type: ignore[union-attr]
    # Pending messages, in order, sealed; one worker at a time posts them.
    attachment = Attachment("file-id", "scan.pdf", "application/pdf", 12)
    one.add_pending("#PG33", "first", None)
    two.add_pending("#PG33", "", attachment)
    assert [(p.text, p.attachment) for p in one.pending("#PG33")] == [
        ("first", None),
        ("", attachment),
    ]
    assert one.claim("#PG33", now=100.0, lease=60.0)
    assert not two.claim("#PG33", now=120.0, lease=60.0)
    assert two.claim("#PG33", now=161.0, lease=60.0)  # the first one's lease ran out
    assert one.unposted() == ["#PG33"]  # no ticket yet, and pending messages
    one.update(case, state="closed", drop_answers=True)
    assert one.purge(before=6.0) == 1 and two.get("#PG22") is None
    two.forget(later)
    assert one.get("#PG33").state == "forgotten"  # type: ignore[union-attr]
    assert one.pending("#PG33") == [] and one.unposted() == ["#PG33"]
    one.delete("#PG33")
    assert two.count() == 0
    one.close()
    two.close()


@run
async def test_a_desk_runs_on_the_postgresql_case_store(pg_schema: str) -> None:
    s = Desked(store=CaseStore(PG_URL, schema=pg_schema))
    await s.hand_over(ALICE)
    await s.say(ALICE, "hello")
    await s.room.say("/close", s.ticket(ALICE))
    assert s.status(ALICE) is Status.IDLE
    await s.say(ALICE, "/forget")
    assert s.cases.count() == 0
    s.cases.close()


# --------------------------------------------------------------------------- adapters' parts


def test_telegram_reads_files_by_reference_for_people_and_operators() -> None:
    from telegram import Update

    from adapters.telegram.convert import read_update
    from engine.conversation import InboundKind

    def update(chat: dict[str, Any], **content: Any) -> Update:
        message = {
            "message_id": 9,
            "date": 0,
            "chat": chat,
            "from": {"id": 7, "is_bot": False, "first_name": "A", "username": "anna_l"},
            **content,
        }
        return Update.de_json({"update_id": 1, "message": message}, None)

    private = {"id": 7, "type": "private", "first_name": "A"}
    document = {
        "file_id": "DOC",
        "file_unique_id": "u",
        "file_name": "summons.pdf",
        "mime_type": "application/pdf",
        "file_size": 1234,
    }
    work = read_update(update(private, document=document, caption="mine"))
    assert work.event is not None and work.event.kind is InboundKind.FILE
    assert work.event.attachment == Attachment("DOC", "summons.pdf", "application/pdf", 1234)
    assert work.event.text == "mine"
    photo = [
        {"file_id": "SMALL", "file_unique_id": "s", "width": 90, "height": 60, "file_size": 900},
        {"file_id": "BIG", "file_unique_id": "b", "width": 1280, "height": 960, "file_size": 9e4},
    ]
    work = read_update(update(private, photo=photo))
    assert work.event is not None and work.event.attachment is not None
    assert work.event.attachment.ref == "BIG" and work.event.attachment.mime_type == "image/jpeg"
    group = {"id": -100123, "type": "supergroup", "title": "Lawyers"}
    reply = {"message_id": 41, "date": 0, "chat": group}
    work = read_update(update(group, document=document, reply_to_message=reply), "bot", {-100123})
    assert work.event is None and work.operator == OperatorMessage(
        Address("telegram", "-100123"),
        "41",
        "@anna_l",
        "",
        Attachment("DOC", "summons.pdf", "application/pdf", 1234),
    )


def test_matrix_reads_files_by_reference_plain_and_encrypted() -> None:
    import json

    from adapters.matrix import convert

    def event(content: dict[str, Any]) -> dict[str, Any]:
        return {"type": "m.room.message", "sender": "@p:x", "event_id": "$e", "content": content}

    plain = {
        "msgtype": "m.file",
        "body": "summons.pdf",
        "url": "mxc://x/abc",
        "info": {"mimetype": "application/pdf", "size": 10},
    }
    assert convert.incoming_file(event(plain)) == (
        Attachment("mxc://x/abc", "summons.pdf", "application/pdf", 10),
        "",
    )
    key = {"k": "KEY", "alg": "A256CTR", "kty": "oct", "key_ops": ["encrypt", "decrypt"]}
    file = {"url": "mxc://x/enc", "key": key, "iv": "IV", "hashes": {"sha256": "H"}, "v": "v2"}
    captioned = {
        "msgtype": "m.image",
        "body": "my summons",
        "filename": "IMG_1.jpg",
        "file": file,
        "info": {},
    }
    found = convert.incoming_file(event(captioned))
    assert found is not None
    attachment, caption = found
    assert json.loads(attachment.ref) == file and caption == "my summons"
    assert (attachment.file_name, attachment.mime_type) == ("IMG_1.jpg", "image/jpeg")
    assert convert.incoming_file(event({"msgtype": "m.text", "body": "hi"})) is None
    assert convert.incoming_file(event({"msgtype": "m.file", "body": "no url"})) is None
    thread = {"rel_type": "m.thread", "event_id": "$ticket", "is_falling_back": True}
    sent = convert.operator_file(event({**plain, "m.relates_to": thread}))
    assert sent is not None and sent[2] == "$ticket"
    posted = convert.in_thread(
        convert.file_content("a.pdf", "application/pdf", 3, url="mxc://x/y"), "$t"
    )
    assert posted["m.relates_to"]["event_id"] == "$t" and posted["msgtype"] == "m.file"
