"""The serving journal: a step's session, event id and actions in one transaction; the
outbox in order; the same contract in memory, in SQLite and in PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import orjson
import psycopg
import pytest

from engine.conversation import (
    Address,
    Attachment,
    Button,
    ForgetUser,
    HandoverContext,
    RelayToOperator,
    SendDocument,
    SendText,
    Session,
    StartHandover,
    Status,
)
from engine.privacy import Sealer
from engine.stores import MemoryStore, SQLiteStore
from engine.stores.journal import (
    Journal,
    StoreUnavailable,
    VolatileJournal,
    action_from_record,
    action_record,
)
from engine.stores.postgres import PostgresStore
from tests.pg import PG_URL, fresh_schema

SEALER = Sealer([bytes(range(32))])
PERSON = Address("telegram", "42")
SECRET = "Петров Секретный"


def session(key: str = "k1", step: str = "name") -> Session:
    return Session(
        key=key, language="ru", status=Status.ASKING, flow="f", step=step, answers={"n": SECRET}
    )


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def journal(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Journal]:
    if request.param == "postgres":
        with fresh_schema() as schema:
            store = PostgresStore(PG_URL, sealer=SEALER, schema=schema, pool_size=4)
            yield store
            store.close()
        return
    if request.param == "sqlite":
        made = SQLiteStore(tmp_path / "s.sqlite3", sealer=SEALER)
        yield made
        made.close()
        return
    yield VolatileJournal(MemoryStore())


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


async def step(journal: Journal, key: str, sess: Session | None, event: str, *actions) -> None:  # type: ignore[no-untyped-def]
    async with journal.conversation(key) as conv:
        await conv.commit(sess, event, list(actions))


async def pending(journal: Journal, key: str):  # type: ignore[no-untyped-def]
    async with journal.conversation(key) as conv:
        return await conv.pending()


def test_a_step_is_stored_with_its_event_and_its_actions_in_order(journal: Journal) -> None:
    async def scenario() -> None:
        first = SendText(PERSON, "one", (Button("Yes", "1.0"),))
        second = SendText(PERSON, "two")
        await step(journal, "k1", session(), "tg:7", first, second)
        async with journal.conversation("k1") as conv:
            assert await conv.seen("tg:7") and not await conv.seen("tg:8")
            assert not await conv.seen("")
            assert await conv.load() == session()
            items = await conv.pending()
            assert [i.action for i in items] == [first, second]
            assert [i.key for i in items] == ["tg:7/0", "tg:7/1"]
            await conv.sent(items[0])
        assert [i.action for i in await pending(journal, "k1")] == [second]
        assert await journal.keys_with_pending() == ["k1"]
        await step(journal, "k1", session(step="next"), "tg:8")
        items = await pending(journal, "k1")
        assert [i.action for i in items] == [second]  # the older reply still waits, first
        async with journal.conversation("k1") as conv:
            await conv.sent(items[0])
        assert await journal.keys_with_pending() == []

    run(scenario())


def test_a_forget_drops_the_session_and_the_replies_queued_before(journal: Journal) -> None:
    async def scenario() -> None:
        await step(journal, "k1", session(), "e1", SendText(PERSON, "unsent"))
        confirm = SendText(PERSON, "Deleted")
        await step(journal, "k1", None, "e2", confirm, ForgetUser(PERSON))
        async with journal.conversation("k1") as conv:
            assert await conv.load() is None
            assert [i.action for i in await conv.pending()] == [confirm, ForgetUser(PERSON)]

    run(scenario())


def test_documents_and_hand_overs_survive_the_outbox(journal: Journal) -> None:
    document = SendDocument(PERSON, "заявление.docx", b"PK\x03\x04 bytes", fallback_text="Sorry")
    handover = StartHandover(
        PERSON, "lawyers", HandoverContext("ru", ("summons",), (("name", SECRET),))
    )

    async def scenario() -> list:  # type: ignore[type-arg]
        await step(journal, "k1", session(), "e1", document, handover)
        return [i.action for i in await pending(journal, "k1")]

    got = run(scenario())
    assert got == [document, handover]
    assert got[0].fallback_text == "Sorry"


def test_action_records_are_plain_json_and_round_trip() -> None:
    from engine.stores.journal import _encode

    action = SendText(PERSON, "hi", (Button("A", "1.0"), Button("B", "1.1")))
    record = action_record(action)
    assert record["$t"] == "SendText" and action_from_record(record) == action
    assert record == _encode(action)  # the texts' shortcut writes what the generic form does
    with pytest.raises(ValueError, match="unknown type"):
        action_from_record({"$t": "os.system"})
    # A file relayed to the lawyers travels by reference, through the outbox too.
    relay = RelayToOperator(PERSON, "lawyers", "", Attachment("file-id", "повестка.pdf", "x/y", 9))
    assert action_from_record(orjson.loads(orjson.dumps(action_record(relay)))) == relay


def test_nothing_readable_is_stored(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite3", sealer=SEALER)
    run(step(store, "k1", session(), "e1", SendText(PERSON, f"Hello {SECRET}")))
    store.close()
    raw = b""
    for path in tmp_path.iterdir():
        raw += path.read_bytes()
    assert SECRET.encode() not in raw and b"Hello" not in raw
    with sqlite3.connect(tmp_path / "s.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM outbox").fetchone()[0] == 1


def test_postgres_rows_are_sealed_too() -> None:
    with fresh_schema() as schema:
        store = PostgresStore(PG_URL, sealer=SEALER, schema=schema)
        try:
            run(step(store, "k1", session(), "e1", SendText(PERSON, f"Hello {SECRET}")))
            with psycopg.connect(PG_URL, options=f"-c search_path={schema}") as conn:
                for table in ("sessions", "outbox"):
                    for row in conn.execute(f"SELECT * FROM {table}"):
                        assert SECRET not in repr(row) and "Hello" not in repr(row)
        finally:
            store.close()


def test_postgres_holds_one_conversation_at_a_time_across_connections() -> None:
    """Two stores (as two worker processes would have) on one database: the second
    waits for the first to let go of the same conversation, not of another one."""
    with fresh_schema() as schema:
        a = PostgresStore(PG_URL, sealer=SEALER, schema=schema)
        b = PostgresStore(PG_URL, sealer=SEALER, schema=schema)
        order: list[str] = []

        async def hold(store: PostgresStore, key: str, name: str, seconds: float) -> None:
            async with store.conversation(key):
                order.append(f"{name} in")
                await asyncio.sleep(seconds)
                order.append(f"{name} out")

        async def scenario() -> None:
            first = asyncio.create_task(hold(a, "same", "a", 0.3))
            await asyncio.sleep(0.1)
            await asyncio.gather(hold(b, "same", "b", 0), hold(b, "other", "c", 0))
            await first

        try:
            run(scenario())
        finally:
            for store in (a, b):
                store.close()
        assert order.index("c in") < order.index("a out")  # another key: not blocked
        assert order.index("b in") > order.index("a out")  # the same key: waited


def test_postgres_that_goes_away_raises_store_unavailable_then_recovers() -> None:
    with fresh_schema() as schema:
        store = PostgresStore(PG_URL, sealer=SEALER, schema=schema, pool_size=1)

        async def scenario() -> None:
            await step(store, "k1", session(), "e1")
            # The server ends the pooled connection, as a restart of PostgreSQL would.
            with psycopg.connect(PG_URL, autocommit=True) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE pid <> pg_backend_pid() AND query LIKE '%%pg_advisory%%'"
                )
            with pytest.raises(StoreUnavailable):
                for _ in range(3):
                    await step(store, "k1", session(step="after"), "e2")
            await step(store, "k1", session(step="after"), "e2")  # a new connection
            async with store.conversation("k1") as conv:
                assert (await conv.load()).step == "after"  # type: ignore[union-attr]

        try:
            run(scenario())
        finally:
            store.close()


def test_a_postgres_store_that_cannot_be_reached_says_where() -> None:
    from engine.stores.sqlite import StoreError

    with pytest.raises(StoreError, match=r"127\.0\.0\.1:1/test.*check store\.url"):
        PostgresStore("postgresql://postgres:pw@127.0.0.1:1/test", sealer=SEALER)


def test_a_commit_hands_back_its_replies_unless_older_ones_wait(journal: Journal) -> None:
    async def scenario() -> None:
        first = SendText(PERSON, "one")
        async with journal.conversation("k1") as conv:
            queued = await conv.commit(session(), "e1", [first])
            assert queued is not None and [i.action for i in queued] == [first]
            assert queued == await conv.pending()  # the same ids and keys as stored
            # "one" is not sent yet: the next step's replies must wait behind it.
            assert await conv.commit(session(), "e2", [SendText(PERSON, "two")]) is None

    run(scenario())


def test_an_outbox_of_schema_3_is_carried_over(tmp_path: Path) -> None:
    from engine.stores.journal import seal_action

    path = tmp_path / "s.sqlite3"
    SQLiteStore(path, sealer=SEALER).close()
    reply = SendText(PERSON, "left by the previous release")
    with sqlite3.connect(path) as db:  # the layout of schema 3, with one unsent reply
        db.executescript(
            "DROP TABLE outbox; CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "key TEXT NOT NULL, idem TEXT NOT NULL, record BLOB NOT NULL); "
            "CREATE INDEX outbox_by_key ON outbox(key, id); PRAGMA user_version=3;"
        )
        db.execute(
            "INSERT INTO outbox(id, key, idem, record) VALUES (7, 'k1', 'tg:1/0', ?)",
            (seal_action(SEALER, "k1", reply),),
        )
    store = SQLiteStore(path, sealer=SEALER)
    try:
        items = run(pending(store, "k1"))
        assert [(i.id, i.key, i.action) for i in items] == [(7, "tg:1/0", reply)]
        run(step(store, "k1", session(), "tg:2", SendText(PERSON, "new")))
        assert [i.action.text for i in run(pending(store, "k1"))] == [  # type: ignore[union-attr]
            "left by the previous release",
            "new",
        ]
    finally:
        store.close()
