"""The lawyers' desk: hand-over cases between a person's channel and an operators' room.

Channel-neutral. The hub routes the engine's hand-over actions here; channels hand the
messages written in an operators' room here as `OperatorMessage`s and post into rooms with
`Channel.post_to_room` / `post_file_to_room` (see adapters/serve/channel.py). A Telegram
user can so be served from a Matrix room and the other way round, without either adapter
knowing the other.

- StartHandover -> one ticket message in the queue's room: case number, language, flow path
  and the answers given; nothing else about the person (never their chat id or name). The
  person is told their request is registered and their place in the queue, and, outside
  the queue's opening hours, when to expect an answer.
- RelayToOperator -> the person's message in the ticket's thread (a Matrix thread, a
  Telegram reply to the ticket); a file they sent is fetched from their channel and posted
  there too. Written outside opening hours, it gets the opening-hours notice once per
  closed period.
- An operator's message in the thread -> the person, as "Lawyer: <text>" (operators' names
  are never shown to the person; operators see each other's); a file sent in the thread ->
  the person, as a document from the lawyer.
- CancelHandover -> "the person left the queue" in the thread.
- ForgetUser -> the person's cases deleted from the store, their tickets edited to
  "deleted at the person's request".
- Operators' commands (`/` or `!`): /take and /close and /note in a ticket's thread, /cases
  anywhere in the room. /close delivers an `InboundKind.CLOSE` for the person through the
  hub, so the engine takes the conversation back. A case taken (by /take or a first answer)
  tells its person "a lawyer has taken your case", and the people behind it in the queue
  hear their new place when it reaches 1, 2, 3, 5, 10, 20, 50 or 100.

Nothing is lost when a room cannot be reached: the case is stored first, the person told
it is registered, and the ticket and whatever the person sends meanwhile are posted by a
background task retrying with back-off (`start` also resumes what a previous run left).

Cases live in the `CaseStore` (adapters/serve/cases.py: SQLite or PostgreSQL), so a restart
keeps them. Nothing about a case is logged beyond counts; an error names the queue and its
room, never the person, a file's name or its content.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import PurePath
from types import MappingProxyType

from adapters.serve.cases import Case, CaseNumberTaken, CaseStore, Pending
from adapters.serve.channel import Channel, FileTooLarge, OperatorHandler, OperatorMessage
from adapters.serve.hours import OpeningHours
from engine.conversation import (
    Action,
    Address,
    Attachment,
    CancelHandover,
    ForgetUser,
    HandoverContext,
    Inbound,
    InboundKind,
    RelayToOperator,
    SendDocument,
    SendText,
    StartHandover,
)
from engine.documents import safe_file_name
from engine.model import FlowSet, Text
from engine.texts import DEFAULT_TEXTS

log = logging.getLogger(__name__)

CASE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud without doubt
LAWYER_PREFIX = "Lawyer: "  # the English default of the `handover_lawyer` text
PERSON_PREFIX = "Person: "
PERSON_FILE = "Person sent a file:"
OPERATOR_COMMANDS = ("take", "close", "note", "cases", "help")
# A person hears their new place in the queue only at these: informative, never chatty.
POSITION_MILESTONES = frozenset({1, 2, 3, 5, 10, 20, 50, 100})
RETRY_FIRST = 2.0  # seconds before posting to an unreachable room again; doubles each time
RETRY_MAX = 300.0
POST_LEASE = 120.0  # seconds one worker may take to post a case's pending messages
FETCH_ATTEMPTS = 5  # tries to fetch a person's file before the thread is told it is lost
FALLBACK_LANGUAGE = "en"
__all__ = [
    "Case",
    "CaseNumberTaken",
    "CaseStore",
    "Desk",
    "OperatorHandler",
    "OperatorMessage",
    "hours_from_config",
    "rooms_from_config",
    "ticket_text",
    "watch",
]

OPERATOR_HELP = (
    "Reply in a ticket's thread to answer the person (they see it as from 'Lawyer'); send a "
    "file there to pass it to them. Commands: /take (claim the case), /close (end it; the "
    "person returns to the bot), /note TEXT (internal, never sent), /cases (open cases). "
    "On Matrix write !take etc."
)

Deliver = Callable[[Inbound], Awaitable[None]]
Send = Callable[[Action], Awaitable[None]]


class _Unpostable(Exception):
    """The room's channel cannot take a file at all (it has no file support)."""


class _FetchFailed(Exception):
    """The person's channel did not hand out a file (for now, or, after
    FETCH_ATTEMPTS tries, for good: a file must not hold up what the person sends next)."""


class Desk:
    """Owns the open cases; see the module docstring.

    `rooms`: queue -> the operators' room (an Address: channel and room/chat id);
    `channels`: channel name -> Channel (each must implement post_to_room for its rooms);
    `hours`: queue -> its opening hours (a queue without is always open); `clock`: "now"
    as time.time() gives it (tests freeze it); `retry`: the first and the longest wait
    between attempts to post to a room that cannot be reached.
    `connect(deliver, send)` is called by the hub: `deliver` runs an inbound event through
    the engine (for /close), `send` performs an action for the person (the replies).
    `bind(flows)` gives the bot's texts (bot.yaml overrides); `start()` resumes posting what
    an earlier run left unposted, and checks for it now and then (other workers' too)."""

    def __init__(
        self,
        rooms: Mapping[str, Address],
        store: CaseStore,
        channels: Mapping[str, Channel],
        clock: Callable[[], float] = time.time,
        *,
        hours: Mapping[str, OpeningHours] | None = None,
        retry: tuple[float, float] = (RETRY_FIRST, RETRY_MAX),
    ) -> None:
        for queue, room in rooms.items():
            if room.channel not in channels:
                raise ValueError(
                    f"handover.{queue}: its room is on {room.channel}, which is not configured"
                )
        for queue in hours or {}:
            if queue not in rooms:
                raise ValueError(f"handover.{queue}: opening hours for a queue without a room")
        self.rooms = dict(rooms)
        self.store = store
        self.channels = channels
        self.clock = clock
        self.hours = dict(hours or {})
        self.retry = retry
        self._deliver: Deliver | None = None
        self._send: Send | None = None
        self._texts: Mapping[str, Text] = MappingProxyType(
            {key: Text(MappingProxyType(value)) for key, value in DEFAULT_TEXTS.items()}
        )
        self._default_language = FALLBACK_LANGUAGE
        self._posters: dict[str, asyncio.Task[None]] = {}
        self._fetch_failures: dict[tuple[str, int], int] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self.stats: dict[str, int] = {}

    def connect(self, deliver: Deliver, send: Send) -> None:
        self._deliver, self._send = deliver, send

    def bind(self, flows: FlowSet) -> None:
        """The loaded flows' texts (engine/texts.py defaults with bot.yaml's overrides):
        what the desk tells people, in their language. Call again after a reload."""
        self._texts = flows.bot.texts
        self._default_language = flows.bot.default_language

    async def start(self) -> None:
        """Post what is still unposted (a previous run's, another worker's that stopped),
        now and every `retry[1]` seconds."""
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep(), name="desk-sweeper")

    async def stop(self) -> None:
        tasks = [*self._posters.values(), *([self._sweeper] if self._sweeper else [])]
        self._sweeper = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._posters.clear()

    def rooms_of(self, channel: str) -> set[str]:
        """The room ids on `channel` that operators work in (the channel watches them)."""
        return {room.chat for room in self.rooms.values() if room.channel == channel}

    def serves(self, action: Action) -> bool:
        """Whether this action is the desk's (a queue it has a room for, or a forget)."""
        if isinstance(action, ForgetUser):
            return True
        if isinstance(action, StartHandover | RelayToOperator | CancelHandover):
            return action.queue in self.rooms
        return False

    def _count(self, what: str) -> None:
        self.stats[what] = self.stats.get(what, 0) + 1

    # ------------------------------------------------------------------ the person's side

    async def perform(self, action: Action) -> None:
        if isinstance(action, StartHandover):
            await self._open(action.user, action.queue, action.context)
        elif isinstance(action, RelayToOperator):
            await self._relay(action)
        elif isinstance(action, CancelHandover):
            await self._cancel(action)
        elif isinstance(action, ForgetUser):
            await self._forget(action.user)
        else:
            raise TypeError(f"the desk cannot perform {type(action).__name__}")

    def _open_case(self, user: Address) -> Case | None:
        for case in self.store.of_user(user):
            if case.state == "open":
                return case
        return None

    async def _open(self, user: Address, queue: str, context: HandoverContext) -> None:
        old = self._open_case(user)
        if old is not None:  # a second hand-over while one is open: the old one ends
            self.store.update(old, state="left", drop_answers=True)
            self.store.drop_pending(old.number)
        case = self._create(user, queue, context)
        # The person first: the case is stored, so their request is registered whether or
        # not the room can be reached right now.
        position = self.store.position(case)
        lines = [self._say(case, "handover_position", position=str(position))]
        told_opening = self._off_hours_notice(case, lines)
        self.store.update(case, told_position=position, told_opening=told_opening)
        await self._tell(case, "\n\n".join(lines))
        self._count("opened")
        try:
            self.store.set_ticket(case, await self._post(case.room, ticket_text(case), None))
        except Exception as err:
            self._unreachable(case, err)
            self._post_later(case.number)
        if old is not None and old.taken_by is None:
            await self._announce_positions(old.queue)

    def _create(self, user: Address, queue: str, context: HandoverContext) -> Case:
        """A new case with a number no other case has (the database decides, so several
        workers never hand out the same one)."""
        while True:
            case = Case(
                number=self._new_number(),
                user=user,
                queue=queue,
                language=context.language,
                path=context.path,
                answers=context.answers,
                room=self.rooms[queue],
                opened=self.clock(),
            )
            try:
                self.store.create(case)
                return case
            except CaseNumberTaken:
                continue

    async def _relay(self, action: RelayToOperator) -> None:
        case = self._open_case(action.user)
        if case is None:
            self._count("relay_without_case")
            return
        lines: list[str] = []
        told_opening = self._off_hours_notice(case, lines)
        if lines:
            self.store.update(case, told_opening=told_opening)
            await self._tell(case, "\n\n".join(lines))
        attachment = action.attachment
        if attachment is not None:
            limit = await self._file_limit(self.channels[case.user.channel], case.room)
            if limit is not None and attachment.size > limit:
                await self._file_refused(case, limit)
                return
        if (
            case.ticket is None
            or case.number in self._posters
            or self.store.has_pending(case.number)
        ):
            # Behind messages not posted yet: in order, after them.
            self.store.add_pending(case.number, action.text, attachment)
            self._post_later(case.number)
            return
        try:
            await self._post_from_person(case, action.text, attachment)
        except FileTooLarge as err:
            await self._file_refused(case, err.limit)
        except _Unpostable:
            await self._file_unpostable(case)
        except _FetchFailed:
            self.store.add_pending(case.number, action.text, attachment)
            self._post_later(case.number)
        except Exception as err:
            self._unreachable(case, err)
            self.store.add_pending(case.number, action.text, attachment)
            self._post_later(case.number)
        else:
            self._count("relayed")

    async def _post_from_person(self, case: Case, text: str, attachment: Attachment | None) -> None:
        """One of the person's messages in the ticket's thread (a file: fetched from their
        channel, posted after a line that says it is theirs)."""
        assert case.ticket is not None
        if attachment is None:
            self.store.add_message(
                case, await self._post(case.room, PERSON_PREFIX + text, case.ticket)
            )
            return
        source = self.channels[case.user.channel]
        try:
            data = await source.fetch_file(attachment.ref)
        except NotImplementedError:
            raise _Unpostable from None
        except FileTooLarge:
            raise
        except Exception as err:
            log.warning(
                "handover queue %s: a file from a person on %s could not be fetched (%s)",
                case.queue,
                case.user.channel,
                type(err).__name__,
            )
            raise _FetchFailed from None
        room = self.channels[case.room.channel]
        limit = await self._file_limit(source, case.room)
        if limit is not None and len(data) > limit:
            raise FileTooLarge(limit)
        intro = PERSON_PREFIX + text if text else PERSON_FILE
        self.store.add_message(case, await self._post(case.room, intro, case.ticket))
        try:
            message_id = await room.post_file_to_room(
                case.room.chat,
                _file_name(attachment.file_name),
                attachment.mime_type or "application/octet-stream",
                data,
                case.ticket,
            )
        except NotImplementedError:
            raise _Unpostable from None
        self.store.add_message(case, message_id)
        self._count("files_from_person")

    async def _file_refused(self, case: Case, limit: int | None) -> None:
        """A file too large to pass on: the person is asked for a smaller one, and the
        thread says one did not arrive."""
        shown = _size(limit) if limit else "?"
        await self._tell(case, self._say(case, "handover_file_too_large", limit=shown))
        self._count("files_too_large")
        if case.ticket is not None:
            with contextlib.suppress(Exception):
                await self._post(
                    case.room,
                    f"{case.number}: the person sent a file over {shown}; "
                    "it could not be passed on, they were asked for a smaller one.",
                    case.ticket,
                )

    async def _file_unpostable(self, case: Case) -> None:
        self._count("files_unpostable")
        if case.ticket is not None:
            with contextlib.suppress(Exception):
                await self._post(
                    case.room,
                    f"{case.number}: the person sent a file, which cannot be passed on here.",
                    case.ticket,
                )

    async def _cancel(self, action: CancelHandover) -> None:
        case = self._open_case(action.user)
        if case is None:
            return
        # The answers are no longer needed once the case is over.
        self.store.update(case, state="left", drop_answers=True)
        self.store.drop_pending(case.number)
        if case.ticket is not None:
            try:
                await self._post(
                    case.room, f"{case.number}: the person left the queue.", case.ticket
                )
            except Exception as err:
                self._unreachable(case, err)
        self._count("left")
        if case.taken_by is None:
            await self._announce_positions(case.queue)

    async def _forget(self, user: Address) -> None:
        queues: set[str] = set()
        for case in self.store.of_user(user):
            if case.state == "open" and case.taken_by is None:
                queues.add(case.queue)
            self.store.forget(case)  # emptied at once; kept only until the ticket says so
            self._count("forgotten")
            if case.ticket is None:
                self.store.delete(case.number)
                continue
            try:
                await self._mark_forgotten(case)
            except Exception as err:
                self._unreachable(case, err)
                self._post_later(case.number)
        for queue in sorted(queues):
            await self._announce_positions(queue)

    async def _mark_forgotten(self, case: Case) -> None:
        assert case.ticket is not None
        text = f"Case {case.number}: deleted at the person's request."
        try:
            await self._edit(case.room, case.ticket, text)
        except NotImplementedError:
            await self._post(case.room, text, case.ticket)
        self.store.delete(case.number)

    # ------------------------------------------------------------------ the operators' side

    async def on_operator(self, message: OperatorMessage) -> None:
        """An operator wrote in an operators' room (channels call this)."""
        if message.room not in self.rooms.values():
            return
        text = message.text.strip()
        command = _operator_command(text) if message.attachment is None else None
        if command == "cases":
            await self._post(message.room, self.cases_text(message.room), message.thread_id)
            return
        if command == "help":
            await self._post(message.room, OPERATOR_HELP, message.thread_id)
            return
        case = (
            self.store.by_message(message.room, message.thread_id)
            if message.thread_id is not None
            else None
        )
        if case is None or case.state == "forgotten":
            if command in ("take", "close", "note"):
                await self._post(
                    message.room,
                    f"/{command} works in a ticket's thread: reply to the ticket.",
                    message.thread_id,
                )
            return  # operators talking among themselves
        assert case.ticket is not None
        if case.state != "open":
            if command != "note":
                await self._post(case.room, f"{case.number} is no longer open.", case.ticket)
            return
        if command == "note":
            self._count("notes")  # stays in the room; never sent, never stored
        elif command == "take":
            await self._take(case, message.sender)
        elif command == "close":
            await self._close(case, message.sender)
        elif message.attachment is not None:
            await self._file_to_person(case, message)
        elif text:
            await self._answer(case, message.sender, text)

    async def _take(self, case: Case, operator: str) -> None:
        assert case.ticket is not None
        first = case.taken_by is None
        self.store.update(case, taken_by=operator)
        await self._post(case.room, f"{case.number} taken by {operator}.", case.ticket)
        self._count("taken")
        if first:
            await self._tell(case, self._say(case, "handover_taken"))
            await self._announce_positions(case.queue)

    async def _close(self, case: Case, operator: str) -> None:
        assert case.ticket is not None and self._deliver is not None
        self.store.update(case, state="closed", drop_answers=True)
        self.store.drop_pending(case.number)
        await self._post(case.room, f"{case.number} closed by {operator}.", case.ticket)
        # The engine tells the person and takes the conversation back.
        await self._deliver(Inbound(InboundKind.CLOSE, case.user))
        self._count("closed")
        if case.taken_by is None:
            await self._announce_positions(case.queue)

    async def _answer(self, case: Case, operator: str, text: str) -> None:
        assert self._send is not None and case.ticket is not None
        if case.taken_by is None:
            await self._take(case, operator)
        self._answered_now(case)
        await self._send(SendText(case.user, self._say(case, "handover_lawyer", text=text)))
        self._count("answered")

    async def _file_to_person(self, case: Case, message: OperatorMessage) -> None:
        """A file an operator sent in the thread -> the person, as the lawyer's."""
        assert self._send is not None and case.ticket is not None
        attachment = message.attachment
        assert attachment is not None
        if case.taken_by is None:
            await self._take(case, message.sender)
        source = self.channels[message.room.channel]
        target = self.channels[case.user.channel]
        limit = _smallest(source.download_limit, await target.upload_limit())
        try:
            if limit is not None and attachment.size > limit:
                raise FileTooLarge(limit)
            data = await source.fetch_file(attachment.ref)
            if limit is not None and len(data) > limit:
                raise FileTooLarge(limit)
        except FileTooLarge as err:
            self._count("files_too_large")
            shown = _size(err.limit) if err.limit else "the limit"
            await self._post(
                case.room,
                f"{case.number}: the file was not sent: it is over {shown}, the most that "
                "can be passed on to the person. Send a smaller one, or split it.",
                case.ticket,
            )
            return
        except Exception as err:
            log.warning(
                "handover queue %s: a file from its room %s could not be fetched (%s)",
                case.queue,
                case.room.chat,
                type(err).__name__,
            )
            await self._post(
                case.room,
                f"{case.number}: the file could not be fetched; please send it again.",
                case.ticket,
            )
            return
        self._answered_now(case)
        caption = message.text.strip()
        intro = (
            self._say(case, "handover_lawyer", text=caption)
            if caption
            else self._say(case, "handover_lawyer_file")
        )
        await self._send(SendText(case.user, intro))
        document = SendDocument(
            case.user,
            _file_name(attachment.file_name),
            data,
            attachment.mime_type or "application/octet-stream",
            fallback_text=self._say(case, "error"),
        )
        await self._send(document)
        self._count("files_to_person")

    def cases_text(self, room: Address) -> str:
        now = self.clock()
        lines = []
        for case in self.store.open_cases():
            if case.room != room:
                continue
            waited = max(0, int((now - case.opened) // 60))
            who = f"taken by {case.taken_by}" if case.taken_by else "not taken"
            lines.append(f"{case.number} · {case.queue} · {case.language} · {waited} min · {who}")
        return "Open cases:\n" + "\n".join(lines) if lines else "No open cases."

    # ------------------------------------------------------------------ queue and hours

    async def _announce_positions(self, queue: str) -> None:
        """Cases ahead were taken or ended: the people behind hear their new place, when
        it is one of POSITION_MILESTONES and better than what they were last told."""
        for position, (number, told) in enumerate(self.store.waiting(queue), 1):
            if position not in POSITION_MILESTONES or (told and position >= told):
                continue
            case = self.store.get(number)
            if case is None:
                continue
            self.store.update(case, told_position=position)
            await self._tell(case, self._say(case, "handover_moved_up", position=str(position)))
            self._count("positions_told")

    def _off_hours_notice(self, case: Case, lines: list[str]) -> float:
        """Outside the queue's hours, add when to expect an answer to `lines`, once per
        closed period; the opening time told (or the one told before)."""
        hours = self.hours.get(case.queue)
        now = self.clock()
        if hours is None or hours.is_open(now):
            return case.told_opening
        opening = hours.next_opening(now)
        if abs(opening.timestamp() - case.told_opening) < 1:
            return case.told_opening  # already told about this closed period
        full = self._words(case, "handover_weekdays")
        short = self._words(case, "handover_weekdays_short")
        lines.append(
            self._say(
                case,
                "handover_off_hours",
                hours=hours.describe(short),
                zone=hours.zone_name(case.language),
                next=f"{full[opening.weekday()]} {opening:%d.%m} {opening:%H:%M}",
            )
        )
        self._count("off_hours_told")
        return opening.timestamp()

    def _answered_now(self, case: Case) -> None:
        """A lawyer answers outside the hours: the person, talking with them, is not told
        that lawyers answer only later."""
        hours = self.hours.get(case.queue)
        now = self.clock()
        if hours is not None and not hours.is_open(now):
            opening = hours.next_opening(now).timestamp()
            if abs(opening - case.told_opening) >= 1:
                self.store.update(case, told_opening=opening)

    # ------------------------------------------------------------------ posting later

    def _unreachable(self, case: Case, err: BaseException, delay: float | None = None) -> None:
        # The queue and its room, never the person; the kind of error, never its text.
        later = f"; retrying in {delay:.0f} s" if delay is not None else "; retrying"
        log.warning(
            "handover queue %s: its room %s on %s cannot be reached (%s)%s",
            case.queue,
            case.room.chat,
            case.room.channel,
            type(err).__name__,
            later,
        )
        self._count("room_unreachable")

    def _post_later(self, number: str, first_delay: float | None = None) -> None:
        """Post the case's ticket and pending messages in the background, retrying with
        back-off until the room takes them (one task a case in this process)."""
        task = self._posters.get(number)
        if task is not None and not task.done():
            return
        wait = self.retry[0] if first_delay is None else first_delay
        self._posters[number] = asyncio.create_task(
            self._keep_posting(number, wait), name="desk-poster"
        )

    async def _keep_posting(self, number: str, delay: float) -> None:
        try:
            while True:
                await asyncio.sleep(delay)
                delay = min(max(delay, self.retry[0]) * 2, self.retry[1])
                case = self.store.get(number)
                if case is None:
                    return
                if case.state not in ("open", "forgotten"):
                    self.store.drop_pending(number)
                    return
                now = self.clock()
                if not self.store.claim(number, now, POST_LEASE):
                    continue  # another worker is posting it; look again later
                try:
                    await self._catch_up(case)
                except _FetchFailed:
                    continue  # logged where it failed; tried again, a few times
                except Exception as err:
                    self._unreachable(case, err, delay)
                    continue
                finally:
                    with contextlib.suppress(Exception):
                        self.store.release(number)
                self._count("posted_late")
                return
        finally:
            if self._posters.get(number) is asyncio.current_task():
                del self._posters[number]

    async def _catch_up(self, case: Case) -> None:
        """Post what the room lacks of `case`, in order; raises if the room is unreachable
        (what was posted stays posted)."""
        if case.state == "forgotten":
            if case.ticket is None:
                self.store.delete(case.number)
            else:
                await self._mark_forgotten(case)
            return
        if case.ticket is None:
            self.store.set_ticket(case, await self._post(case.room, ticket_text(case), None))
        while items := self.store.pending(case.number):
            for item in items:
                await self._post_pending(case, item)
                self.store.drop_pending(case.number, item.seq)

    async def _post_pending(self, case: Case, item: Pending) -> None:
        try:
            await self._post_from_person(case, item.text, item.attachment)
        except FileTooLarge as err:
            await self._file_refused(case, err.limit)
        except _Unpostable:
            await self._file_unpostable(case)
        except _FetchFailed:
            key = (case.number, item.seq)
            failures = self._fetch_failures[key] = self._fetch_failures.get(key, 0) + 1
            if failures < FETCH_ATTEMPTS:
                raise
            del self._fetch_failures[key]
            self._count("files_lost")
            await self._post(
                case.room,
                f"{case.number}: the person sent a file that could not be fetched from "
                f"{case.user.channel}; ask them to send it again.",
                case.ticket,
            )
        else:
            self._fetch_failures.pop((case.number, item.seq), None)
            self._count("relayed")

    async def _sweep(self) -> None:
        while True:
            try:
                for number in self.store.unposted():
                    self._post_later(number, first_delay=0.0)
            except Exception as err:
                log.warning("the desk could not look for unposted cases (%s)", type(err).__name__)
            await asyncio.sleep(self.retry[1])

    # ------------------------------------------------------------------ helpers

    def _new_number(self) -> str:
        return "#" + "".join(secrets.choice(CASE_ALPHABET) for _ in range(4))

    async def _post(self, room: Address, text: str, thread_id: str | None) -> str:
        return await self.channels[room.channel].post_to_room(room.chat, text, thread_id)

    async def _edit(self, room: Address, message_id: str, text: str) -> None:
        await self.channels[room.channel].edit_in_room(room.chat, message_id, text)

    async def _file_limit(self, source: Channel, room: Address) -> int | None:
        """The largest file that can go from `source` into `room`."""
        return _smallest(source.download_limit, await self.channels[room.channel].upload_limit())

    async def _tell(self, case: Case, text: str) -> None:
        if self._send is not None and text:
            await self._send(SendText(case.user, text))

    def _say(self, case: Case, key: str, **values: str) -> str:
        """The text `key` in the person's language, its {placeholders} filled in."""
        text = self._texts.get(key) or Text(MappingProxyType(DEFAULT_TEXTS[key]))
        raw = text.get(case.language, self._default_language)

        def fill(match: re.Match[str]) -> str:
            found = match.group(0)
            if found in ("{{", "}}"):
                return found[0]
            return values.get(match.group(1), found)

        return _PLACEHOLDER.sub(fill, raw)

    def _words(self, case: Case, key: str) -> list[str]:
        """Seven comma-separated day names, Monday first (English if a text is not)."""
        words = [w.strip() for w in self._say(case, key).split(",")]
        if len(words) == 7:
            return words
        return [w.strip() for w in DEFAULT_TEXTS[key][FALLBACK_LANGUAGE].split(",")]


_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([a-z_][a-z0-9_]*)\}")


def ticket_text(case: Case) -> str:
    """The ticket: case number, language, path, answers; nothing else about the person."""
    lines = [
        f"Case {case.number} · queue {case.queue} · language {case.language}",
        "Path: " + (" › ".join(case.path) if case.path else "(none: asked for a lawyer)"),
    ]
    if case.answers:
        lines.append("Answers:")
        lines.extend(f"  {name}: {value}" for name, value in case.answers)
    else:
        lines.append("Answers: none")
    lines.append(
        "Reply in this thread to answer (files too); /take to claim, /close to end, "
        "/note for notes."
    )
    return "\n".join(lines)


def _operator_command(text: str) -> str | None:
    """'take' for '/take', '!take' or '/take@hotline_bot'; None for anything else."""
    if not text or text[0] not in "/!":
        return None
    name = text[1:].split(" ", 1)[0].split("@", 1)[0].lower()
    return name if name in OPERATOR_COMMANDS else None


def _smallest(*limits: int | None) -> int | None:
    known = [limit for limit in limits if limit is not None]
    return min(known) if known else None


def _size(limit: int) -> str:
    """1048576 -> '1 MB', 20971520 -> '20 MB', 1572864 -> '1.5 MB', 2000 -> '2 KB'."""
    if limit < 1_048_576:
        return f"{max(1, round(limit / 1024))} KB"
    megabytes = f"{limit / 1_048_576:.1f}".removesuffix(".0")
    return f"{megabytes} MB"


def _file_name(name: str) -> str:
    """A sender's file name, made safe for every channel and file system (no folders)."""
    name = PurePath(name.replace("\\", "/")).name or "file"
    suffix = PurePath(name).suffix
    if not re.fullmatch(r"\.[A-Za-z0-9]{1,8}", suffix):
        suffix = ".bin"
    return safe_file_name(name, suffix)


def rooms_from_config(section: Mapping[str, Mapping[str, object]]) -> dict[str, Address]:
    """queue -> room Address from the validated `handover:` config (see config.py)."""
    rooms = {}
    for queue, room in section.items():
        channel = str(room["channel"])
        chat = room.get("room") if channel == "matrix" else room.get("chat")
        rooms[queue] = Address(channel, str(chat))
    return rooms


def hours_from_config(section: Mapping[str, object]) -> dict[str, OpeningHours]:
    """queue -> its opening hours, from the validated `handover:` config (RoomConfig
    values); queues without `hours:` are always open and left out."""
    found: dict[str, OpeningHours] = {}
    for queue, room in section.items():
        opening_hours = getattr(room, "opening_hours", None)
        hours = opening_hours() if callable(opening_hours) else None
        if isinstance(hours, OpeningHours):
            found[queue] = hours
    return found


def watch(desk: Desk, channels: Iterable[Channel]) -> None:
    """Tell each channel which of its rooms are operators' rooms, and where to send their
    messages (before the channels start)."""
    for channel in channels:
        rooms = desk.rooms_of(channel.name)
        if rooms:
            channel.watch_rooms(rooms, desk.on_operator)
