"""The Matrix channel: matrix-nio's AsyncClient driven by our own sync loop.

Receiving. The channel syncs itself instead of using nio's `sync_forever`, because the
sync token may only be stored once every event of that sync was handled (nio stores it
before its callbacks run). For each sync:
1. invitations: a direct chat from a user of an allowed homeserver is joined, any other
   invitation declined;
2. the timeline of each joined room, rooms concurrently, each room's events in order:
   events from before the bot's join (they precede its own join event in the timeline) and
   the whole timeline of the very first sync of a fresh store are skipped; the bot's own
   events and events already handled (ids persisted) are skipped; the rest become
   `Inbound` events for the hub (see `convert.classify`); "2", "2." or a 2️⃣ reaction to
   the bot's latest question press its second button;
3. a room the bot is alone in is left;
4. then, and only then, the sync token is stored.
Nothing of an event is logged but its id; counts are kept in `stats`.

Sending. Every send of an action triggered by an inbound event has a transaction id
derived from (that event's id, the action's index), so a send retried, or repeated after a
restart, is one message. Sends to a room go through that room's queue, in order; a 429
(`M_LIMIT_EXCEEDED`) pauses every send for `retry_after_ms` (or an exponential back-off)
and retries the same transaction. Documents are uploaded (encrypted in an encrypted
room) within the server's advertised upload limit.

Operators' rooms (hand-over to lawyers): joined at start, their messages and files handed
to the desk (`watch_rooms`), never to the engine; `post_to_room`, `post_file_to_room` and
`edit_in_room` write there, encrypted when the room is. Files pass by reference:
`fetch_file` downloads one (and decrypts it if it came encrypted).

Encryption. With `matrix-nio[e2e]` installed and MATRIX_STORE_KEY set, the bot reads and
writes encrypted rooms; nio's key store (in `store_dir/e2e`) is encrypted with that key.
Without them, the bot says so in the log at start, and in an encrypted room sends one plain
notice that it cannot read encrypted messages, ignoring what it cannot decrypt.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import hashlib
import io
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from nio import (
    AsyncClient,
    AsyncClientConfig,
    BadEvent,
    ContentRepositoryConfigResponse,
    DownloadResponse,
    ErrorResponse,
    InviteMemberEvent,
    JoinResponse,
    LocalProtocolError,
    LoginResponse,
    MegolmEvent,
    RoomMemberEvent,
    RoomSendResponse,
    SendRetryError,
    SyncResponse,
    UnknownBadEvent,
    UploadResponse,
    WhoamiResponse,
)
from nio.crypto import ENCRYPTION_ENABLED
from nio.crypto.attachments import decrypt_attachment

from adapters.matrix import convert
from adapters.matrix.config import MatrixConfig, Secrets
from adapters.matrix.state import ChannelState, LatestButtons, Login
from adapters.serve.channel import (
    Channel,
    Deliver,
    FileTooLarge,
    OperatorHandler,
    OperatorMessage,
    Undeliverable,
)
from adapters.serve.config import ConfigError
from engine.conversation import (
    Action,
    Address,
    CancelHandover,
    ForgetUser,
    Inbound,
    InboundKind,
    RelayToOperator,
    SendDocument,
    SendText,
    StartHandover,
)

log = logging.getLogger("hotline.matrix")
log.addHandler(logging.NullHandler())

CHANNEL = "matrix"
MAX_BACKOFF = 60.0
STOP_GRACE_SECONDS = 30.0
UPLOAD_LIMIT_TTL = 3600.0
PENDING_DECRYPTION_SECONDS = 600.0
PENDING_DECRYPTION_MAX = 500
# What the bot syncs: the rooms' timelines (enough to answer a backlog) and state; no
# presence, no typing, no receipts.
SYNC_FILTER: dict[str, Any] = {
    "presence": {"types": []},
    "room": {
        "timeline": {"limit": 200},
        "ephemeral": {"types": []},
        "state": {"lazy_load_members": False},
    },
}
INITIAL_SYNC_FILTER: dict[str, Any] = {
    "presence": {"types": []},
    "room": {"timeline": {"limit": 1}, "ephemeral": {"types": []}},
}


class Observer(Protocol):
    """Watches the channel work (the replay driver and tests); never sees message text
    that the channel did not send itself."""

    def performed(self, origin: str | None, action: Action, event_id: str | None) -> None:
        """`action` was carried out because of inbound event `origin` (None: not caused by a
        Matrix event); `event_id` is the message it sent, if any."""

    def handled(self, event_id: str) -> None:
        """Inbound event `event_id` was handled: everything it caused was performed."""


class MatrixError(Exception):
    """The homeserver refused something the channel cannot do without (login, a send)."""


def transaction_id(event_id: str, index: int) -> str:
    """The transaction id of the `index`-th send caused by inbound event `event_id`."""
    digest = hashlib.sha256(f"{event_id}\x00{index}".encode()).hexdigest()
    return f"hotline.{digest[:32]}"


@dataclass(slots=True)
class _Origin:
    """The inbound event whose handling is running in this task: names the transactions."""

    event_id: str
    sent: int = 0

    def next_transaction(self) -> str:
        index, self.sent = self.sent, self.sent + 1
        return transaction_id(self.event_id, index)


_origin: contextvars.ContextVar[_Origin | None] = contextvars.ContextVar(
    "hotline_matrix_origin", default=None
)
# The idempotency key of the action being performed, when the hub's outbox gave one.
_action_key: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "hotline_matrix_action_key", default=None
)


@dataclass(slots=True)
class _Pending:
    """An encrypted event whose key had not arrived yet."""

    room_id: str
    event: MegolmEvent
    since: float = field(default_factory=time.monotonic)


class MatrixChannel(Channel):
    """`hotline serve`'s Matrix side. Build with `adapters.matrix.build_channel`."""

    name = CHANNEL

    def __init__(self, config: MatrixConfig, secrets: Secrets) -> None:
        self.config = config
        self._secrets = secrets
        self.encryption = self._decide_encryption()
        self.client: AsyncClient | None = None
        self.state: ChannelState | None = None
        self.user_id = config.user_id
        self.stats: Counter[str] = Counter()
        self._deliver: Deliver | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._processing = asyncio.Lock()
        self._syncs = 0
        self._synced = asyncio.Condition()
        self._room_queues: dict[str, asyncio.Lock] = {}
        self._queue_users: dict[str, int] = {}
        self._paused_until = 0.0
        self._upload_limit: tuple[float, int | None] | None = None
        self._pending: list[_Pending] = []
        self.observer: Observer | None = None
        self._operator_rooms: frozenset[str] = frozenset()
        self._operator_handler: OperatorHandler | None = None

    # ------------------------------------------------------------------ start / stop

    def _decide_encryption(self) -> bool:
        mode = self.config.encryption
        if mode == "off":
            log.info("matrix: end-to-end encryption is off (encryption: off)")
            return False
        if not ENCRYPTION_ENABLED:
            if mode == "on":
                raise ConfigError(
                    "matrix: encryption: on needs matrix-nio's e2e extra: "
                    'pip install "matrix-nio[e2e]"'
                )
            log.warning(
                "matrix: end-to-end encryption support is not installed "
                '(pip install "matrix-nio[e2e]"): the bot cannot read encrypted rooms and '
                "will tell people so there"
            )
            return False
        if not self._secrets.store_key:
            log.warning(
                "matrix: MATRIX_STORE_KEY is not set: end-to-end encryption is disabled "
                "(the key store must be encrypted with that key); the bot cannot read "
                "encrypted rooms and will tell people so there"
            )
            return False
        return True

    async def start(self, deliver: Deliver) -> None:
        redact_nio_logs()
        self._deliver = deliver
        self._stopping = False
        store_dir = self.config.store_dir
        self.state = ChannelState(store_dir, keep=self.config.seen_events)
        e2e_dir = store_dir / "e2e"
        e2e_dir.mkdir(parents=True, exist_ok=True)
        client_config = AsyncClientConfig(
            encryption_enabled=self.encryption,
            store_sync_tokens=False,
            pickle_key=self._secrets.store_key or "",
            max_limit_exceeded=0,  # 429s come back to us: one back-off for all rooms
            request_timeout=60,
        )
        self.client = AsyncClient(
            self.config.homeserver,
            self.config.user_id,
            store_path=str(e2e_dir),
            config=client_config,
        )
        try:
            try:
                await self._login()
            except Exception as err:
                if self.encryption and _is_pickle_error(err):
                    raise ConfigError(
                        f"matrix: MATRIX_STORE_KEY does not open the end-to-end key store in "
                        f"{e2e_dir}: set the key it was created with (or move that folder "
                        "away to start over as a new device)"
                    ) from None
                raise
            if self.encryption:
                await self._keys()
        except BaseException:
            await self.client.close()
            self.state.close()
            self.state = None
            raise
        log.info(
            "matrix: logged in; encryption %s; %d rooms known",
            "on" if self.encryption else "off",
            self.state.room_count(),
        )
        await self._join_operator_rooms()
        self._task = asyncio.create_task(self._sync_loop(), name="matrix-sync")

    async def stop(self) -> None:
        """Let the sync being handled finish (so nothing is half answered), then close."""
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            try:  # let the batch in progress finish, if any, within reason
                await asyncio.wait_for(self._processing.acquire(), STOP_GRACE_SECONDS)
                self._processing.release()
            except TimeoutError:
                log.warning("matrix: stopping in the middle of a sync's events")
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.client is not None:
            await self.client.close()
        if self.state is not None:
            self.state.close()
            self.state = None

    async def wait_synced(self, count: int = 1, timeout: float = 30.0) -> None:
        """Wait until `count` more syncs have been handled (tests and the replay driver)."""
        async with self._synced:
            target = self._syncs + count
            await asyncio.wait_for(self._synced.wait_for(lambda: self._syncs >= target), timeout)

    # ------------------------------------------------------------------ login

    async def _login(self) -> None:
        client, state, config = self._client(), self._state(), self.config
        stored = state.login()
        env_token = self._secrets.access_token
        if (
            stored is not None
            and stored.user_id == config.user_id
            and stored.homeserver == config.homeserver
            and env_token in (None, stored.access_token)
        ):
            if await self._restore(stored.device_id, stored.access_token):
                return
            log.warning("matrix: the stored access token was refused; logging in again")
            state.save_login(None)
        if env_token:
            client.access_token = env_token
            who = await client.whoami()
            if not isinstance(who, WhoamiResponse):
                raise ConfigError(f"matrix: MATRIX_ACCESS_TOKEN was refused ({_code(who)})")
            if who.user_id != config.user_id:
                raise ConfigError(
                    "matrix: MATRIX_ACCESS_TOKEN belongs to another user than user_id"
                )
            if not who.device_id:
                raise ConfigError("matrix: MATRIX_ACCESS_TOKEN has no device; use MATRIX_PASSWORD")
            client.restore_login(config.user_id, who.device_id, env_token)
            self._remember_login(who.device_id, env_token)
            return
        if not self._secrets.password:
            raise ConfigError(
                "matrix: set MATRIX_PASSWORD or MATRIX_ACCESS_TOKEN in the environment "
                f"(nothing usable is stored in {config.store_dir} yet)"
            )
        client.device_id = state.device_id() or ""  # the same device as last time, if any
        reply = await client.login(self._secrets.password, device_name=config.device_name)
        if not isinstance(reply, LoginResponse):
            raise ConfigError(f"matrix: login refused ({_code(reply)})")
        self._remember_login(reply.device_id, reply.access_token)

    async def _restore(self, device_id: str, token: str) -> bool:
        client = self._client()
        client.access_token = token
        who = await client.whoami()
        if isinstance(who, ErrorResponse) and who.status_code == "M_UNKNOWN_TOKEN":
            client.access_token = ""
            return False
        client.restore_login(self.config.user_id, device_id, token)
        return True

    def _remember_login(self, device_id: str, token: str) -> None:
        state = self._state()
        state.save_login(Login(self.config.homeserver, self.config.user_id, device_id, token))
        state.save_device_id(device_id)

    async def _keys(self) -> None:
        """End-to-end housekeeping, as nio's sync_forever does it after each sync."""
        client = self._client()
        try:
            if client.should_upload_keys:
                await client.keys_upload()
            if client.should_query_keys:
                await client.keys_query()
            if client.should_claim_keys:
                await client.keys_claim(client.get_users_for_key_claiming())
            await client.send_to_device_messages()
        except Exception as err:  # retried after the next sync
            log.warning("matrix: key housekeeping failed (%s)", type(err).__name__)

    # ------------------------------------------------------------------ the sync loop

    async def _sync_loop(self) -> None:
        client, state = self._client(), self._state()
        token = state.sync_token()
        first = True
        failures = 0
        while not self._stopping:
            initial = token is None
            try:
                reply = await client.sync(
                    timeout=0 if first else self.config.sync_timeout_ms,
                    since=token,
                    full_state=True if first else None,
                    sync_filter=INITIAL_SYNC_FILTER if initial else SYNC_FILTER,
                )
            except asyncio.CancelledError:
                raise
            except Exception as err:
                failures += 1
                await self._sync_backoff(failures, f"sync failed ({type(err).__name__})")
                continue
            if not isinstance(reply, SyncResponse):
                failures += 1
                if isinstance(reply, ErrorResponse) and reply.status_code == "M_LIMIT_EXCEEDED":
                    self.stats["rate_limited"] += 1
                    await asyncio.sleep((reply.retry_after_ms or 1000) / 1000)
                elif isinstance(reply, ErrorResponse) and reply.status_code == "M_UNKNOWN_TOKEN":
                    log.error("matrix: the homeserver no longer accepts the bot's access token")
                    self._state().save_login(None)
                    await self._sync_backoff(failures, "logged out")
                    with contextlib.suppress(Exception):
                        await self._login()
                else:
                    await self._sync_backoff(failures, f"sync refused ({_code(reply)})")
                continue
            failures = 0
            async with self._processing:
                if self.encryption:
                    await self._keys()
                try:
                    await self._handle_sync(reply, initial)
                except Exception as err:  # every event is guarded; this is a last resort
                    log.error("matrix: handling a sync failed (%s)", type(err).__name__)
                token = reply.next_batch
                state.save_sync_token(token)
                first = False
            async with self._synced:
                self._syncs += 1
                self._synced.notify_all()

    async def _sync_backoff(self, failures: int, why: str) -> None:
        delay = min(2.0 ** min(failures - 1, 10), MAX_BACKOFF)
        log.warning("matrix: %s; retrying in %.0f s", why, delay)
        await asyncio.sleep(delay)

    async def _handle_sync(self, reply: SyncResponse, initial: bool) -> None:
        for room_id, info in reply.rooms.invite.items():
            await self._guarded(self._on_invite(room_id, info.invite_state), "an invitation")
        for room_id in reply.rooms.leave:
            self._state().forget_room(room_id)
        rooms = [
            self._guarded(
                self._on_room(room_id, info.timeline.events, initial, info.timeline.limited),
                "a room",
            )
            for room_id, info in reply.rooms.join.items()
        ]
        await asyncio.gather(*rooms)
        if self.encryption and self._pending:
            await self._guarded(self._retry_pending(), "delayed decryption")

    async def _guarded(self, work: Any, what: str) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception as err:
            self.stats["errors"] += 1
            log.error("matrix: handling %s failed (%s)", what, type(err).__name__)

    # ------------------------------------------------------------------ invitations

    async def _on_invite(self, room_id: str, invite_state: list[Any]) -> None:
        client = self._client()
        inviter, direct = None, False
        for event in invite_state:
            if (
                isinstance(event, InviteMemberEvent)
                and event.state_key == self.user_id
                and event.membership == "invite"
            ):
                inviter = event.sender
                direct = bool(event.content.get("is_direct"))
        server = inviter.split(":", 1)[1].lower() if inviter and ":" in inviter else None
        # An operators' room (hand-over to lawyers) is a group room: accepted as well.
        direct = direct or room_id in self._operator_rooms
        if inviter is None or server not in self.config.allowed or not direct:
            self.stats["invites_declined"] += 1
            log.info(
                "matrix: declined an invitation (%s)",
                "not a direct chat" if server in self.config.allowed else "homeserver not allowed",
            )
            await self._retrying(lambda: client.room_leave(room_id))
            return
        # Joins have their own rate limit (Synapse: bursts of 10, then one each 10 s); an
        # invitation is not offered again by later syncs, so wait rather than give up.
        reply = await self._retrying(lambda: client.join(room_id))
        if isinstance(reply, JoinResponse):
            self.stats["invites_accepted"] += 1
            log.info("matrix: joined a direct chat")
        else:
            log.warning("matrix: could not join a direct chat (%s)", _code(reply))

    # ------------------------------------------------------------------ room timelines

    async def _on_room(
        self, room_id: str, events: list[Any], initial: bool, limited: bool = False
    ) -> None:
        if room_id in self._operator_rooms:
            room = self._client().rooms.get(room_id)
            if room is not None and room.encrypted and not self.encryption:
                if not self.stats["operator_room_unreadable"]:
                    # Room ids are not about a person: naming it tells the admin which one.
                    log.error(
                        "matrix: the operators' room %s is encrypted but the bot's encryption "
                        "is off: it can neither read nor post there (set MATRIX_STORE_KEY, "
                        'install "matrix-nio[e2e]")',
                        room_id,
                    )
                self.stats["operator_room_unreadable"] += 1
            if not initial:
                start, _ = self._after_join(events)
                for event in events[start:]:
                    await self._on_operator_event(room_id, event)
            return
        if initial:
            # A fresh store: everything already in the rooms is the past.
            self.stats["skipped_initial"] += len(events)
        else:
            start, joined = self._after_join(events)
            if limited and joined is None:
                # More arrived in the room since the last sync than one sync carries (a
                # long stop): the server left the older events out; they go unanswered.
                self.stats["timelines_cut"] += 1
                log.warning("matrix: a room had more new events than one sync carries")
            self.stats["before_join"] += start
            if joined is not None:
                await self._on_join(room_id, joined)
            for event in events[start:]:
                await self._on_event(room_id, event)
        await self._notice_if_unreadable(room_id)
        await self._leave_if_alone(room_id)

    def _after_join(self, events: list[Any]) -> tuple[int, RoomMemberEvent | None]:
        """Where the timeline continues after the bot's latest join in it (0: no join)."""
        start, joined = 0, None
        for index, event in enumerate(events):
            if (
                isinstance(event, RoomMemberEvent)
                and event.state_key == self.user_id
                and event.membership == "join"
                and event.prev_membership != "join"
            ):
                start, joined = index + 1, event
        return start, joined

    async def _on_join(self, room_id: str, event: RoomMemberEvent) -> None:
        """The bot's own join: greet once (a /start on the person's behalf)."""
        state = self._state()
        if not self.config.greet_on_join or state.seen(event.event_id):
            return
        room = self._client().rooms.get(room_id)
        if room is not None and room.encrypted and not self.encryption:
            self._handled(event.event_id)  # the notice about encryption says it all
            return
        await self._deliver_as(event.event_id, Inbound.typed(Address(CHANNEL, room_id), "/start"))
        self._handled(event.event_id)

    async def _on_event(self, room_id: str, event: Any) -> None:
        state = self._state()
        event_id = getattr(event, "event_id", None) or _source_id(event)
        if not event_id:
            self.stats["malformed"] += 1
            return
        if state.seen(event_id):
            self.stats["duplicates"] += 1
            return
        sender = getattr(event, "sender", None) or _source_field(event, "sender")
        if sender == self.user_id:
            self.stats["own"] += 1
            return
        if isinstance(event, RoomMemberEvent):
            return  # membership is looked at once the timeline is done
        if isinstance(event, MegolmEvent):
            await self._undecryptable(room_id, event)
            return
        if isinstance(event, BadEvent | UnknownBadEvent):
            self.stats["malformed"] += 1
            log.warning("matrix: skipped malformed event %s", event_id)
            self._handled(event_id)
            return
        try:
            incoming = convert.classify(event.source)
        except convert.MalformedEvent:
            self.stats["malformed"] += 1
            log.warning("matrix: skipped malformed event %s", event_id)
            self._handled(event_id)
            return
        inbound = self._inbound(room_id, incoming)
        if inbound is not None and inbound.kind is InboundKind.UNSUPPORTED:
            # A file: by reference, for the lawyer during a hand-over (else the engine
            # answers it like anything else it cannot read).
            found = convert.incoming_file(event.source)
            if found is not None:
                inbound = Inbound.file(inbound.address, found[0], found[1])
        if inbound is None:
            kind = incoming.kind if isinstance(incoming, convert.Ignored) else "stale_reaction"
            self.stats[f"ignored_{kind}"] += 1
        else:
            self.stats["unsupported" if inbound.kind is InboundKind.UNSUPPORTED else "events"] += 1
            await self._deliver_as(event_id, inbound)
        self._handled(event_id)

    def _handled(self, event_id: str) -> None:
        self._state().mark_seen(event_id)
        if self.observer is not None:
            self.observer.handled(event_id)

    def _inbound(self, room_id: str, incoming: convert.Incoming) -> Inbound | None:
        address = Address(CHANNEL, room_id)
        if isinstance(incoming, convert.Typed):
            latest = self._state().latest_buttons(room_id)
            number = convert.button_number(incoming.text, len(latest.buttons))
            if number is not None:
                return Inbound.press(address, latest.buttons[number - 1].payload)
            return Inbound.typed(address, incoming.text)
        if isinstance(incoming, convert.Reacted):
            latest = self._state().latest_buttons(room_id)
            if incoming.target == latest.event_id and incoming.number <= len(latest.buttons):
                return Inbound.press(address, latest.buttons[incoming.number - 1].payload)
            return None
        if isinstance(incoming, convert.Unsupported):
            return Inbound(InboundKind.UNSUPPORTED, address)
        return None

    async def _deliver_as(self, event_id: str, inbound: Inbound) -> None:
        """Hand one event to the hub; its sends take transaction ids from `event_id`."""
        assert self._deliver is not None
        token = _origin.set(_Origin(event_id))
        try:
            await self._deliver(dataclasses.replace(inbound, event_id=event_id))
        except Exception as err:
            self.stats["errors"] += 1
            log.error("matrix: handling event %s failed (%s)", event_id, type(err).__name__)
        finally:
            _origin.reset(token)

    # ------------------------------------------------------------------ encryption

    async def _undecryptable(self, room_id: str, event: MegolmEvent) -> None:
        if not self.encryption:
            self.stats["undecryptable"] += 1
            self._handled(event.event_id)
            await self._notice_if_unreadable(room_id)
            return
        # The key may still be on its way (it travels separately): retry after next syncs.
        self.stats["waiting_for_key"] += 1
        if len(self._pending) < PENDING_DECRYPTION_MAX:
            self._pending.append(_Pending(room_id, event))
        with contextlib.suppress(Exception):
            await self._client().request_room_key(event)

    async def _retry_pending(self) -> None:
        client, now = self._client(), time.monotonic()
        pending, self._pending = self._pending, []
        for item in pending:
            try:
                decrypted = client.decrypt_event(item.event)
            except Exception:
                decrypted = None
            if decrypted is not None and not isinstance(decrypted, BadEvent | UnknownBadEvent):
                if item.room_id in self._operator_rooms:
                    await self._on_operator_event(item.room_id, decrypted)
                else:
                    await self._on_event(item.room_id, decrypted)
            elif now - item.since < PENDING_DECRYPTION_SECONDS:
                self._pending.append(item)
            else:
                self.stats["undecryptable"] += 1
                log.warning("matrix: gave up decrypting event %s", item.event.event_id)
                self._handled(item.event.event_id)

    async def _notice_if_unreadable(self, room_id: str) -> None:
        """Once per room: tell people in an encrypted room that the bot cannot read it."""
        if self.encryption:
            return
        room = self._client().rooms.get(room_id)
        state = self._state()
        if room is None or not room.encrypted or state.encrypted_notice_sent(room_id):
            return
        state.save_encrypted_notice_sent(room_id)
        content = convert.text_content(self.config.encrypted_notice, (), self._msgtype)
        try:
            await self._send(room_id, content, transaction_id(f"encrypted:{room_id}", 0))
        except MatrixError as err:
            log.warning("matrix: could not send the encryption notice (%s)", err)
        self.stats["encryption_notices"] += 1

    # ------------------------------------------------------------------ membership

    async def _leave_if_alone(self, room_id: str) -> None:
        room = self._client().rooms.get(room_id)
        if room is None:
            return
        others = [u for u in room.users if u != self.user_id]
        if others:
            return
        self.stats["left_alone"] += 1
        log.info("matrix: left a room where nobody else is left")
        await self._retrying(lambda: self._client().room_leave(room_id))
        with contextlib.suppress(Exception):
            await self._client().room_forget(room_id)
        self._state().forget_room(room_id)
        self._client().rooms.pop(room_id, None)

    # ------------------------------------------------------------------ operators' rooms

    def watch_rooms(self, rooms: Collection[str], handler: OperatorHandler) -> None:
        """The operators' rooms (room ids): joined at start, invitations to them accepted
        (from allowed servers), what operators write there handed to `handler`; the bot
        never greets, answers as the engine, or leaves there."""
        self._operator_rooms = frozenset(rooms)
        self._operator_handler = handler

    async def _join_operator_rooms(self) -> None:
        client = self._client()
        for room_id in sorted(self._operator_rooms):
            reply = await self._retrying(lambda room_id=room_id: client.join(room_id))
            if isinstance(reply, JoinResponse):
                self.stats["operator_rooms_joined"] += 1
            else:  # not invited yet: the invitation is accepted when it comes
                log.warning("matrix: could not join an operators' room (%s)", _code(reply))

    async def _on_operator_event(self, room_id: str, event: Any) -> None:
        event_id = getattr(event, "event_id", None) or _source_id(event)
        state = self._state()
        if not event_id or state.seen(event_id):
            return
        sender = getattr(event, "sender", None) or _source_field(event, "sender")
        if sender == self.user_id or not isinstance(sender, str):
            return
        if isinstance(event, MegolmEvent):
            if not self.encryption:
                self.stats["undecryptable"] += 1
                self._handled(event_id)
                return
            # An encrypted operators' room: the key may still be on its way.
            self.stats["waiting_for_key"] += 1
            if len(self._pending) < PENDING_DECRYPTION_MAX:
                self._pending.append(_Pending(room_id, event))
            with contextlib.suppress(Exception):
                await self._client().request_room_key(event)
            return
        source = getattr(event, "source", None)
        message = self._operator_message(room_id, sender, source)
        if message is not None and self._operator_handler is not None:
            self.stats["operator_messages"] += 1
            try:
                await self._operator_handler(message)
            except Exception as err:
                # One failed answer must not hold up the room's other messages.
                self.stats["errors"] += 1
                log.error("matrix: an operators' message failed (%s)", type(err).__name__)
        self._handled(event_id)

    def _operator_message(self, room_id: str, sender: str, source: Any) -> OperatorMessage | None:
        if not isinstance(source, dict):
            return None
        room = Address(CHANNEL, room_id)
        written = convert.operator_message(source)
        if written is not None:
            return OperatorMessage(room, written[1], sender, written[0])
        sent = convert.operator_file(source)
        if sent is not None:
            attachment, caption, thread_id = sent
            return OperatorMessage(room, thread_id, sender, caption, attachment)
        return None

    async def post_to_room(self, room: str, text: str, thread_id: str | None = None) -> str:
        content = convert.room_post_content(text, thread_id, self._msgtype)
        return await self._send(room, content, None)

    async def edit_in_room(self, room: str, message_id: str, text: str) -> None:
        await self._send(room, convert.edit_content(text, message_id, self._msgtype), None)

    async def post_file_to_room(
        self,
        room: str,
        file_name: str,
        mime_type: str,
        data: bytes,
        thread_id: str | None = None,
    ) -> str:
        """Upload (encrypted in an encrypted room) and post as m.file in the thread."""
        limit = await self.upload_limit()
        if limit is not None and len(data) > limit:
            raise FileTooLarge(limit)
        document = SendDocument(Address(CHANNEL, room), file_name, data, mime_type)
        matrix_room = self._client().rooms.get(room)
        encrypt = bool(self.encryption and matrix_room is not None and matrix_room.encrypted)
        uri, keys = await self._upload(document, encrypt)
        if uri is None:
            raise FileTooLarge(limit)
        if encrypt:
            assert keys is not None
            content = convert.file_content(
                file_name, mime_type, len(data), encrypted_file={**keys, "url": uri}
            )
        else:
            content = convert.file_content(file_name, mime_type, len(data), url=uri)
        self.stats["room_files"] += 1
        return await self._send(room, convert.in_thread(content, thread_id), None)

    async def fetch_file(self, ref: str) -> bytes:
        """The bytes of a file someone sent (`convert.incoming_file`'s reference: an mxc://
        URL, or an encrypted file's info), decrypted when it travelled encrypted."""
        encrypted = json.loads(ref) if ref.startswith("{") else None
        url = encrypted["url"] if encrypted is not None else ref
        reply = await self._retrying(lambda: self._client().download(mxc=url))
        if not isinstance(reply, DownloadResponse):
            raise MatrixError(f"download refused ({_code(reply)})")
        data = bytes(reply.body)
        if encrypted is not None:
            data = decrypt_attachment(
                data, encrypted["key"]["k"], encrypted["hashes"]["sha256"], encrypted["iv"]
            )
        self.stats["files_fetched"] += 1
        return data

    # ------------------------------------------------------------------ actions

    async def perform(self, action: Action, *, idempotency_key: str | None = None) -> None:
        # The hub's outbox key names the transaction: a send repeated after a crash, or
        # retried after a failure, is one message on the homeserver.
        token = _action_key.set(idempotency_key)
        try:
            await self._perform(action)
        finally:
            _action_key.reset(token)

    async def _perform(self, action: Action) -> None:
        event_id: str | None = None
        if isinstance(action, SendText):
            event_id = await self._send_text(action)
        elif isinstance(action, SendDocument):
            event_id = await self._send_document(action)
        elif isinstance(action, ForgetUser):
            if self.state is not None:
                self.state.forget_room(action.user.chat)
        elif isinstance(action, StartHandover | RelayToOperator | CancelHandover):
            # The operators' rooms arrive with the hand-over work; the engine's own texts
            # already told the person what happens.
            self.stats[f"handover_{type(action).__name__}"] += 1
        else:
            raise TypeError(f"the Matrix channel cannot perform {type(action).__name__}")
        if self.observer is not None:
            origin = _origin.get()
            self.observer.performed(origin.event_id if origin else None, action, event_id)

    @property
    def _msgtype(self) -> str:
        return "m.notice" if self.config.msgtype == "notice" else "m.text"

    def _transaction(self) -> str | None:
        key = _action_key.get()
        if key is not None:
            return transaction_id(key, 0)
        origin = _origin.get()
        return origin.next_transaction() if origin is not None else None

    async def _send_text(self, action: SendText) -> str:
        room_id = action.to.chat
        labels = [b.label for b in action.buttons]
        content = convert.text_content(action.text, labels, self._msgtype)
        event_id = await self._send(room_id, content, self._transaction())
        if self.state is not None:
            latest = LatestButtons(event_id if action.buttons else None, action.buttons)
            self.state.save_latest_buttons(room_id, latest)
        return event_id

    async def _send_document(self, action: SendDocument) -> str:
        room_id = action.to.chat
        tx_id = self._transaction()
        limit = await self.upload_limit()
        if limit is not None and len(action.data) > limit:
            self.stats["documents_too_big"] += 1
            content = convert.text_content(self.config.too_big_notice, (), self._msgtype)
            return await self._send(room_id, content, tx_id)
        room = self._client().rooms.get(room_id)
        encrypt = bool(self.encryption and room is not None and room.encrypted)
        uri, keys = await self._upload(action, encrypt)
        if uri is None:
            self.stats["documents_too_big"] += 1
            content = convert.text_content(self.config.too_big_notice, (), self._msgtype)
        elif encrypt:
            assert keys is not None
            content = convert.file_content(
                action.file_name,
                action.mime_type,
                len(action.data),
                encrypted_file={**keys, "url": uri},
            )
        else:
            content = convert.file_content(
                action.file_name, action.mime_type, len(action.data), url=uri
            )
        event_id = await self._send(room_id, content, tx_id)
        self.stats["documents"] += 1
        return event_id

    async def _upload(
        self, action: SendDocument, encrypt: bool
    ) -> tuple[str | None, dict[str, Any] | None]:
        """The mxc:// uri (None: too large for the server) and, encrypted, the keys."""
        client = self._client()
        failures = 0
        while True:
            await self._wait_for_rate_limit()
            reply, keys = await client.upload(
                lambda *_: io.BytesIO(action.data),
                content_type=action.mime_type,
                filename=action.file_name,
                encrypt=encrypt,
                filesize=len(action.data),
            )
            if isinstance(reply, UploadResponse):
                return reply.content_uri, keys
            if _rate_limited(reply):
                failures += 1
                self._pause(reply, failures)
                continue
            if isinstance(reply, ErrorResponse) and reply.status_code == "M_TOO_LARGE":
                return None, None
            raise MatrixError(f"upload refused ({_code(reply)})")

    async def upload_limit(self) -> int | None:
        """The server's advertised upload limit in bytes (None: not advertised, or not
        known yet). Cached for an hour once the server has answered."""
        now = time.monotonic()
        if self._upload_limit is not None and now - self._upload_limit[0] < UPLOAD_LIMIT_TTL:
            return self._upload_limit[1]
        client = self._client()
        reply = await client.content_repository_config()  # the v1 authenticated endpoint
        if isinstance(reply, ContentRepositoryConfigResponse):
            self._upload_limit = (now, reply.upload_size)
            return reply.upload_size
        with contextlib.suppress(Exception):  # an older server: the legacy endpoint
            response = await client.send(
                "GET",
                "/_matrix/media/v3/config",
                headers={"Authorization": f"Bearer {client.access_token}"},
            )
            if response.status == 200:
                value = (await response.json()).get("m.upload.size")
                limit = value if isinstance(value, int) else None
                self._upload_limit = (now, limit)
                return limit
        return None  # unknown for now: an upload that is too large says so itself

    # ------------------------------------------------------------------ the send queue

    @contextlib.asynccontextmanager
    async def _room_queue(self, room_id: str) -> Any:
        """Sends to one room leave one at a time, in the order they were asked for."""
        lock = self._room_queues.get(room_id)
        if lock is None:
            lock = self._room_queues[room_id] = asyncio.Lock()
        self._queue_users[room_id] = self._queue_users.get(room_id, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._queue_users[room_id] -= 1
            if not self._queue_users[room_id]:
                del self._queue_users[room_id]
                del self._room_queues[room_id]

    async def _send(self, room_id: str, content: dict[str, Any], tx_id: str | None) -> str:
        """Send one m.room.message; its event id. Retries rate limits with the same
        transaction id, so the homeserver keeps one message whatever happens."""
        client = self._client()
        failures = 0
        async with self._room_queue(room_id):
            while True:
                await self._wait_for_rate_limit()
                try:
                    reply = await client.room_send(
                        room_id,
                        "m.room.message",
                        content,
                        tx_id=tx_id,
                        ignore_unverified_devices=True,
                    )
                except (LocalProtocolError, SendRetryError) as err:
                    # Their messages name the room: keep them out of the logs.
                    raise MatrixError(f"cannot send ({type(err).__name__})") from None
                if isinstance(reply, RoomSendResponse):
                    self.stats["sent"] += 1
                    return reply.event_id
                if _rate_limited(reply):
                    failures += 1
                    self._pause(reply, failures)
                    continue
                code = _code(reply)
                if code in _REFUSED_FOR_GOOD:
                    raise Undeliverable(f"matrix send refused ({code})")
                raise MatrixError(f"send refused ({code})")

    async def _retrying(self, call: Callable[[], Awaitable[Any]], attempts: int = 20) -> Any:
        """`call()` again while the server answers 429, pausing as it says."""
        for failures in range(1, attempts + 1):
            await self._wait_for_rate_limit()
            reply = await call()
            if not _rate_limited(reply):
                return reply
            self._pause(reply, failures)
        return reply

    def _pause(self, reply: Any, failures: int) -> None:
        """A 429: every send waits `retry_after_ms`, or 1, 2, 4 ... 60 s if not given."""
        self.stats["rate_limited"] += 1
        retry_ms = getattr(reply, "retry_after_ms", None)
        delay = retry_ms / 1000 if retry_ms else min(2.0 ** (failures - 1), MAX_BACKOFF)
        self._paused_until = max(self._paused_until, time.monotonic() + delay)
        log.info("matrix: rate limited; sends wait %.1f s", delay)

    async def _wait_for_rate_limit(self) -> None:
        while (delay := self._paused_until - time.monotonic()) > 0:
            await asyncio.sleep(delay)

    # ------------------------------------------------------------------ helpers

    def _client(self) -> AsyncClient:
        if self.client is None:
            raise RuntimeError("the Matrix channel is not started")
        return self.client

    def _state(self) -> ChannelState:
        if self.state is None:
            raise RuntimeError("the Matrix channel is not started")
        return self.state

    def rooms(self) -> Iterator[str]:
        """The rooms the bot is in (for tests and the replay driver)."""
        return iter(self._client().rooms)


class _RedactNio(logging.Filter):
    """Keeps that nio logged something, and where; drops what it said."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = "%s: details withheld (nio's messages may quote events and ids)"
        record.args = (record.funcName,)
        record.exc_info = record.exc_text = None
        return True


_REDACT_NIO = _RedactNio()


def redact_nio_logs() -> None:
    """nio logs whole sync responses (message bodies) at DEBUG, room ids at INFO, and the
    content of invalid events at WARNING and ERROR. Keep it at WARNING and withhold the
    text of whatever it still logs."""
    logging.getLogger("nio").setLevel(logging.WARNING)
    for name in list(logging.Logger.manager.loggerDict):
        if name == "nio" or name.startswith("nio."):
            logger = logging.getLogger(name)
            if _REDACT_NIO not in logger.filters:
                logger.addFilter(_REDACT_NIO)


def _is_pickle_error(err: BaseException) -> bool:
    """vodozemac's exception when a pickle does not decrypt with the key given."""
    return "Pickle" in type(err).__name__


def _rate_limited(reply: Any) -> bool:
    if not isinstance(reply, ErrorResponse):
        return False
    if reply.status_code == "M_LIMIT_EXCEEDED":
        return True
    transport = getattr(reply, "transport_response", None)
    return getattr(transport, "status", None) == 429


# Error codes after which sending the same event again cannot succeed.
_REFUSED_FOR_GOOD = frozenset(
    {"M_FORBIDDEN", "M_NOT_FOUND", "M_BAD_JSON", "M_NOT_JSON", "M_TOO_LARGE", "M_UNKNOWN_TOKEN"}
)


def _code(reply: Any) -> str:
    """An error's code for a log line or a message: never its free text."""
    return str(getattr(reply, "status_code", None) or type(reply).__name__)


def _source_id(event: Any) -> str | None:
    value = _source_field(event, "event_id")
    return value if isinstance(value, str) else None


def _source_field(event: Any, name: str) -> Any:
    source = getattr(event, "source", None)
    return source.get(name) if isinstance(source, dict) else None
