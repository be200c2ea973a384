"""The hub's delivery guarantees: each event stepped once, each reply sent once and in
order, through crashes, failing networks and a database that goes away."""

from __future__ import annotations

import asyncio
import datetime as dt
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from adapters.serve.channel import Channel, Deliver, Undeliverable
from adapters.serve.hub import Hub
from engine.conversation import Action, Address, Inbound, SendText
from engine.loader import load_folder
from engine.privacy import Sealer
from engine.runtime import Engine
from engine.stores import SQLiteStore
from engine.stores.journal import Journal, StoreUnavailable

FLOWS = Path(__file__).parent / "data" / "semantics"
SEALER = Sealer([bytes(range(32))])
PERSON = Address("test", "1")


class Network(Channel):
    """Records what it sends; `failing` sends raise like a network that is down."""

    def __init__(self, failing: int = 0, refuse: str | None = None) -> None:
        self.name = "test"
        self.sent: list[str] = []
        self.keys: list[str | None] = []
        self.failing = failing
        self.refuse = refuse

    async def start(self, deliver: Deliver) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def perform(self, action: Action, *, idempotency_key: str | None = None) -> None:
        await asyncio.sleep(0)
        if self.failing:
            self.failing -= 1
            raise ConnectionError("the network is down")
        if isinstance(action, SendText):
            if action.text == self.refuse:
                raise Undeliverable("bad request")
            self.sent.append(action.text)
            self.keys.append(idempotency_key)


def engine() -> Engine:
    flows, report = load_folder(FLOWS)
    assert flows is not None, report.errors
    return Engine(flows, clock=lambda: dt.datetime(2026, 11, 25))


def said(text: str, update: int) -> Inbound:
    return Inbound(Inbound.typed(PERSON, text).kind, PERSON, text=text, event_id=f"tg:{update}")


def test_replies_committed_but_not_sent_before_a_crash_are_sent_once_at_restart(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.sqlite3"

    async def first_run() -> None:
        # The network is down: the step is committed, the replies wait in the outbox.
        hub = Hub(engine(), SQLiteStore(path, sealer=SEALER), {"test": Network(failing=99)})
        await hub.deliver(said("/start", 1))
        assert hub.handled == 1 and hub.unsent == 1
        hub.store.close()  # type: ignore[union-attr]  # the process dies here

    async def second_run() -> Network:
        network = Network()
        store = SQLiteStore(path, sealer=SEALER)
        hub = Hub(engine(), store, {"test": network})
        await hub.start()
        for _ in range(50):
            if network.sent:
                break
            await asyncio.sleep(0.01)
        # The channel delivers the unconfirmed update again: recognised, not stepped.
        await hub.deliver(said("/start", 1))
        await hub.deliver(said("summons", 2))
        await hub.stop()
        assert hub.handled == 1 and hub.duplicates == 1
        assert store.outbox_size() == 0
        store.close()
        return network

    asyncio.run(first_run())
    network = asyncio.run(second_run())
    assert network.sent == ["Menu", "Which kind?"]
    assert network.keys == ["tg:1/0", "tg:2/0"]  # stable keys: Matrix transaction ids


def test_a_failing_network_is_retried_and_the_replies_keep_their_order(tmp_path: Path) -> None:
    network = Network(failing=3)

    async def scenario() -> Hub:
        hub = Hub(engine(), SQLiteStore(tmp_path / "s.sqlite3", sealer=SEALER), {"test": network})
        await hub.start()
        await hub.deliver(said("/start", 1))
        await hub.deliver(said("summons", 2))  # queued behind the unsent "Menu"
        for _ in range(100):
            if len(network.sent) == 2:
                break
            await asyncio.sleep(0.05)
        await hub.stop()
        return hub

    hub = asyncio.run(scenario())
    assert network.sent == ["Menu", "Which kind?"]
    assert hub.unsent == 0 and hub.handled == 2


def test_a_reply_the_network_refuses_for_good_is_dropped_and_the_next_ones_leave() -> None:
    from engine.stores import MemoryStore

    network = Network(refuse="Menu")

    async def scenario() -> Hub:
        hub = Hub(engine(), MemoryStore(), {"test": network})
        await hub.deliver(said("/start", 1))
        await hub.deliver(said("summons", 2))
        return hub

    hub = asyncio.run(scenario())
    assert network.sent == ["Which kind?"] and hub.dropped == 1 and hub.unsent == 0


class FlakyJournal(Journal):
    """A journal whose database is away for the first `outages` attempts."""

    def __init__(self, inner: Journal, outages: int) -> None:
        self.inner = inner
        self.outages = outages

    @asynccontextmanager
    async def conversation(self, key: str) -> Any:
        if self.outages:
            self.outages -= 1
            raise StoreUnavailable("the database is restarting")
        async with self.inner.conversation(key) as conv:
            yield conv

    async def keys_with_pending(self) -> list[str]:
        return await self.inner.keys_with_pending()


def test_a_database_that_goes_away_holds_the_event_until_it_is_committed(
    tmp_path: Path, monkeypatch: Any
) -> None:
    import adapters.serve.hub as hub_module

    monkeypatch.setattr(hub_module, "BACKOFF_INITIAL", 0.01)
    network = Network()
    store = SQLiteStore(tmp_path / "s.sqlite3", sealer=SEALER)

    async def scenario() -> Hub:
        hub = Hub(engine(), FlakyJournal(store, outages=3), {"test": network})
        await hub.deliver(said("/start", 1))  # returns only once committed and sent
        return hub

    hub = asyncio.run(scenario())
    assert hub.handled == 1 and network.sent == ["Menu"]
    assert store.load(hub.engine.key(PERSON)) is not None


class ForgetfulJournal(Journal):
    """A journal whose database goes away once, just as a sent row is being dropped."""

    def __init__(self, inner: Journal) -> None:
        self.inner = inner
        self.cut = True

    @asynccontextmanager
    async def conversation(self, key: str) -> Any:
        outer = self

        async with self.inner.conversation(key) as conv:
            real_sent = conv.sent

            async def sent(item: Any) -> None:
                if outer.cut:
                    outer.cut = False
                    raise StoreUnavailable("the connection was terminated")
                await real_sent(item)

            conv.sent = sent  # type: ignore[method-assign]
            yield conv

    async def keys_with_pending(self) -> list[str]:
        return await self.inner.keys_with_pending()


def test_a_reply_sent_before_the_database_went_away_is_not_sent_again(
    tmp_path: Path, monkeypatch: Any
) -> None:
    import adapters.serve.hub as hub_module

    monkeypatch.setattr(hub_module, "BACKOFF_INITIAL", 0.01)
    network = Network()
    store = SQLiteStore(tmp_path / "s.sqlite3", sealer=SEALER)

    async def scenario() -> Hub:
        hub = Hub(engine(), ForgetfulJournal(store), {"test": network})
        await hub.deliver(said("/start", 1))
        return hub

    hub = asyncio.run(scenario())
    assert network.sent == ["Menu"]  # once, though its row outlived the first attempt
    assert store.outbox_size() == 0 and hub.handled == 1
