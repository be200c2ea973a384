"""Session stores: the same contract for every implementation."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.conversation import Frame, Session, Status
from engine.privacy import Sealer
from engine.stores import MemoryStore, SessionStore, SQLiteStore
from engine.stores.postgres import PostgresStore
from engine.stores.sqlite import SCHEMA_VERSION, StoreError
from tests.pg import PG_URL, fresh_schema

SEALER = Sealer([bytes(range(32))])


def sample(key: str = "telegram:1", updated: float = 1000.0) -> Session:
    return Session(
        key=key,
        language="ru",
        status=Status.ASKING,
        flow="acs_application",
        step="birth_date",
        stack=[("summons", "contacts")],
        answers={"full_name": "Иванов Иван", "birth_date": dt.date(2004, 2, 1), "n": 2},
        history=[Frame("summons", "which", ()), Frame("acs_application", "name", ())],
        turn=7,
        path=["summons", "acs_application"],
        updated=updated,
    )


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SessionStore]:
    if request.param == "postgres":
        with fresh_schema() as schema:
            made: SessionStore = PostgresStore(PG_URL, sealer=SEALER, schema=schema)
            yield made
            made.close()
        return
    made = (
        MemoryStore()
        if request.param == "memory"
        else SQLiteStore(tmp_path / "sessions.sqlite3", sealer=SEALER)
    )
    yield made
    made.close()


def test_save_load_round_trip(store: SessionStore) -> None:
    assert store.load("telegram:1") is None
    store.save(sample())
    assert store.load("telegram:1") == sample()


def test_save_replaces_and_delete_forgets(store: SessionStore) -> None:
    store.save(sample())
    changed = sample()
    changed.step = "address"
    store.save(changed)
    loaded = store.load("telegram:1")
    assert loaded is not None and loaded.step == "address"
    assert store.count() == 1
    store.delete("telegram:1")
    store.delete("telegram:1")  # deleting twice is fine
    assert store.load("telegram:1") is None and store.count() == 0


def test_purge_idle_deletes_only_old_sessions(store: SessionStore) -> None:
    store.save(sample("a", updated=100.0))
    store.save(sample("b", updated=5000.0))
    assert store.purge_idle(older_than=1000.0) == 1
    assert store.load("a") is None and store.load("b") is not None


def test_sqlite_survives_reopening_and_records_its_schema(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    first = SQLiteStore(path, sealer=SEALER)
    first.save(sample())
    first.close()
    again = SQLiteStore(path, sealer=SEALER)
    assert again.load("telegram:1") == sample()
    again.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_sqlite_refuses_a_newer_schema_and_a_non_database(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer than this release"):
        SQLiteStore(path, sealer=SEALER)
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot open"):
        SQLiteStore(junk, sealer=SEALER)


def test_a_loaded_session_is_not_changed_by_the_engine(store: SessionStore) -> None:
    # The stores may hand out what they keep; the engine works on its own copy.
    from engine.conversation import Address, Inbound
    from engine.loader import load_folder
    from engine.runtime import Engine

    flows, _ = load_folder(Path(__file__).parent / "data" / "semantics")
    assert flows is not None
    engine = Engine(flows)
    address = Address("test", "1")
    first = engine.handle(None, Inbound.typed(address, "/start"))
    assert first.session is not None
    store.save(first.session)
    loaded = store.load(first.session.key)
    assert loaded is not None
    before = loaded.to_record()
    engine.handle(loaded, Inbound.typed(address, "/lawyer"))
    assert loaded.to_record() == before
