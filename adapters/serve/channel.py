"""The channel seam: what every adapter (Telegram, Matrix, ...) provides to the hub.

An adapter turns its updates into `engine.conversation.Inbound` events and hands them to the
hub; the hub hands back the actions addressed to that channel. Nothing else crosses.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass

from engine.conversation import Action, Address, Attachment, Inbound
from engine.model import FlowSet

# The hub's entry point, as an adapter sees it: run one event, return when its actions
# were delivered (so a polling adapter can acknowledge the update only then).
Deliver = Callable[[Inbound], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class OperatorMessage:
    """Something an operator wrote in an operators' room (see adapters/serve/handover.py).

    `room`: the room's address (channel and room/chat id); `thread_id`: the message it
    belongs to (the Matrix thread root or replied-to event, the Telegram message replied to),
    or None; `sender`: how operators see each other (a Matrix id, a Telegram @name), never
    shown to the person; `text`: what was written (a file's caption, possibly empty, when
    `attachment` is the file the operator sent)."""

    room: Address
    thread_id: str | None
    sender: str
    text: str
    attachment: Attachment | None = None


OperatorHandler = Callable[[OperatorMessage], Awaitable[None]]


class FileTooLarge(Exception):
    """A file over what a channel can fetch or send (`limit` bytes, None: not known)."""

    def __init__(self, limit: int | None) -> None:
        super().__init__(f"the file is over the limit of {limit} bytes")
        self.limit = limit


class Undeliverable(Exception):
    """An action the network refused for good (a malformed request, a chat that no longer
    exists): retrying would not help. The message says what was refused, never content."""


class Channel(ABC):
    """One chat network. `name` is the `Address.channel` of its users and rooms."""

    name: str

    def bind(self, flows: FlowSet) -> None:  # noqa: B027 - optional hook
        """Called with the loaded flows before `start` (and again when they are reloaded),
        for what the channel shows of them: command menus in each bot language, say."""

    @abstractmethod
    async def start(self, deliver: Deliver) -> None:
        """Connect and begin receiving; call `deliver` for every inbound event.
        Return once receiving is running (do the receiving in background tasks)."""

    @abstractmethod
    async def perform(self, action: Action, *, idempotency_key: str | None = None) -> None:
        """Carry out one action addressed to this channel (send a text, a document...).

        `idempotency_key` is stable for this action across retries and restarts (the hub's
        outbox key): a network that can deduplicate (Matrix transaction ids) should use it.
        Retries and rate limits are the adapter's business. Raise `Undeliverable` when the
        action can never succeed (the hub drops it); any other exception when it gave up
        for now (the hub retries later, the conversation's later replies waiting behind)."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop receiving, finish what is in flight, close connections."""

    # ------------------------------------------------------------------ operators' rooms
    # Optional: a channel that hosts operators' rooms (hand-over to lawyers) overrides these.

    def watch_rooms(self, rooms: Collection[str], handler: OperatorHandler) -> None:
        """Called before `start` with this channel's operators' rooms (room/chat ids): join
        or accept them, and hand what is written there to `handler` instead of the engine."""
        raise NotImplementedError(f"the {self.name} channel cannot host operators' rooms")

    async def post_to_room(self, room: str, text: str, thread_id: str | None = None) -> str:
        """Post `text` in an operators' room, in the thread of message `thread_id` if given
        (Matrix: a thread reply; Telegram: a reply); return the new message's id."""
        raise NotImplementedError(f"the {self.name} channel cannot post to rooms")

    async def edit_in_room(self, room: str, message_id: str, text: str) -> None:
        """Replace the text of one of the bot's messages in an operators' room."""
        raise NotImplementedError(f"the {self.name} channel cannot edit room messages")

    # ------------------------------------------------------------------ files
    # Optional: files passed between a person and the operators' room during a hand-over.

    # The largest file `fetch_file` can get (bytes; None: no limit of the channel's own).
    download_limit: int | None = None

    async def fetch_file(self, ref: str) -> bytes:
        """The bytes of a file that arrived on this channel (`Attachment.ref`); raise
        `FileTooLarge` when the network will not hand it out, anything else when it failed
        for now (the desk retries)."""
        raise NotImplementedError(f"the {self.name} channel cannot fetch files")

    async def upload_limit(self) -> int | None:
        """The largest file this channel can send (to a person or a room), in bytes; None
        when it does not say."""
        return None

    async def post_file_to_room(
        self,
        room: str,
        file_name: str,
        mime_type: str,
        data: bytes,
        thread_id: str | None = None,
    ) -> str:
        """Post a file in an operators' room, in `thread_id`'s thread if given; the new
        message's id. Raise `FileTooLarge` over the channel's upload limit."""
        raise NotImplementedError(f"the {self.name} channel cannot post files to rooms")
