"""The channel seam: what every adapter (Telegram, Matrix, ...) provides to the hub.

An adapter turns its updates into `engine.conversation.Inbound` events and hands them to the
hub; the hub hands back the actions addressed to that channel. Nothing else crosses.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable

from engine.conversation import Action, Inbound
from engine.model import FlowSet

# The hub's entry point, as an adapter sees it: run one event, return when its actions
# were delivered (so a polling adapter can acknowledge the update only then).
Deliver = Callable[[Inbound], Awaitable[None]]


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
    async def perform(self, action: Action) -> None:
        """Carry out one action addressed to this channel (send a text, a document...).
        Retries and rate limits are the adapter's business; raise only when it gave up."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop receiving, finish what is in flight, close connections."""
