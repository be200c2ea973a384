"""The serving hub: one event at a time per conversation, actions routed to their channel."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from adapters.serve.channel import Channel, Deliver
from adapters.serve.hub import Hub
from engine.conversation import Action, Address, Inbound, SendDocument, SendText
from engine.documents import DocumentError
from engine.loader import load_folder
from engine.runtime import Engine
from engine.stores import MemoryStore

FLOWS = Path(__file__).parent / "data" / "semantics"


class RecordingChannel(Channel):
    """A channel whose 'network' is a list: what a person on it would have received."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[Action] = []

    async def start(self, deliver: Deliver) -> None:
        self.deliver = deliver

    async def perform(self, action: Action, *, idempotency_key: str | None = None) -> None:
        await asyncio.sleep(0)  # let other conversations interleave, as real sends do
        self.sent.append(action)

    async def stop(self) -> None:
        pass


def make_hub() -> tuple[Hub, RecordingChannel]:
    flows, report = load_folder(FLOWS)
    assert flows is not None, report.errors
    channel = RecordingChannel("test")
    engine = Engine(flows, clock=lambda: dt.datetime(2026, 11, 25))
    return Hub(engine, MemoryStore(), {"test": channel}), channel


def test_each_conversation_is_handled_in_order_while_others_run_at_once() -> None:
    hub, channel = make_hub()
    people = [Address("test", str(n)) for n in range(20)]

    async def talk() -> None:
        events = []
        for person in people:
            events += [Inbound.typed(person, "/start"), Inbound.typed(person, "summons")]
        # All at once, as a burst arrives; each person's second message must see the first.
        await asyncio.gather(*(hub.deliver(e) for e in events))

    asyncio.run(talk())
    for person in people:
        texts = [a.text for a in channel.sent if isinstance(a, SendText) and a.to == person]
        assert texts == ["Menu", "Which kind?"]
    assert hub.handled == 40 and not hub._locks  # no lock left behind


def test_a_document_that_cannot_be_made_is_replaced_by_its_fallback_text() -> None:
    hub, channel = make_hub()
    person = Address("test", "1")

    def broken() -> bytes:
        raise DocumentError("template missing", "render")

    asyncio.run(hub.perform(SendDocument(person, "x.docx", broken, fallback_text="Sorry")))
    assert channel.sent == [SendText(person, "Sorry")]


def test_an_action_for_a_channel_nobody_serves_is_dropped_not_raised() -> None:
    hub, channel = make_hub()
    asyncio.run(hub.perform(SendText(Address("matrix", "!room"), "hello")))
    assert channel.sent == []
