"""The metrics: what the hub reports is scraped over HTTP and written as daily counts.

Driven through the API the hub calls (`update`, `observe`, `error`, `start`, `stop`); the
endpoint is scraped for real and parsed with prometheus_client's own parser; the counts
land in a real SQLite file and a real PostgreSQL schema.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.serve.config import ConfigError, ServeConfig
from adapters.serve.metrics import OTHER, Metrics, stats_location
from engine.conversation import Address, Inbound, SendText, Session
from engine.loader import load_folder
from engine.privacy import Sealer
from engine.runtime import NO_FLOW, Engine
from engine.stores import SQLiteStore
from engine.stores.stats import Counts, Row, StatsError, StatsTable, open_stats
from tests.pg import fresh_schema_url, schema_of

FLOWS = Path(__file__).parent / "data" / "semantics"
DAY = 20_417  # 2025-11-25 as days since 1970-01-01
NOON = DAY * 86400 + 12 * 3600


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from fresh_schema_url()


class Clock:
    def __init__(self, now: float = NOON) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def scrape(metrics: Metrics) -> str:
    assert metrics.address is not None
    host, port = metrics.address
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return response.read().decode("utf-8")


def values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) -> value, as Prometheus would read the scrape."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def scraped(metrics: Metrics) -> str:
    return await asyncio.to_thread(scrape, metrics)


def feed(metrics: Metrics) -> None:
    """What the hub reports for a few events."""
    metrics.update("telegram")
    metrics.update("telegram")
    metrics.update("matrix")
    metrics.observe((("start", "intake"),), 0.0003)
    metrics.observe((), 0.002)
    metrics.observe((("complete", "intake"),), 0.0004)
    metrics.observe((("start", "lawyer"), ("handover", "lawyer"), ("queue", "lawyers")), 0.001)
    metrics.observe((("handover", NO_FLOW), ("queue", "lawyers")), 0.001)
    metrics.observe((("error", "condition"),), 0.0001)
    metrics.error("document")


def test_the_endpoint_serves_every_count_with_only_ids_as_labels() -> None:
    async def main() -> str:
        metrics = Metrics(port=0, clock=Clock())
        await metrics.start()
        try:
            feed(metrics)
            return await scraped(metrics)
        finally:
            await metrics.stop()

    got = values(asyncio.run(main()))
    assert got[("hotline_updates_total", (("channel", "telegram"),))] == 2
    assert got[("hotline_updates_total", (("channel", "matrix"),))] == 1
    assert got[("hotline_steps_total", ())] == 6
    assert got[("hotline_step_seconds_count", ())] == 6
    assert got[("hotline_step_seconds_sum", ())] == pytest.approx(0.0048)
    assert got[("hotline_step_seconds_bucket", (("le", "0.0005"),))] == 3
    assert got[("hotline_flow_starts_total", (("flow", "intake"),))] == 1
    assert got[("hotline_flow_starts_total", (("flow", "lawyer"),))] == 1
    assert got[("hotline_flow_completions_total", (("flow", "intake"),))] == 1
    assert got[("hotline_flow_handovers_total", (("flow", "lawyer"),))] == 1
    assert got[("hotline_flow_handovers_total", (("flow", NO_FLOW),))] == 1
    assert got[("hotline_handovers_total", (("queue", "lawyers"),))] == 2
    assert got[("hotline_errors_total", (("kind", "condition"),))] == 1
    assert got[("hotline_errors_total", (("kind", "document"),))] == 1
    labels = {label for _, pairs in got for label, _ in pairs}
    assert labels <= {"channel", "flow", "queue", "kind", "le"}


def test_a_label_that_is_no_id_never_reaches_a_scrape_or_the_table(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "store.sqlite3"
    sqlite3.connect(path).close()

    async def main() -> str:
        metrics = Metrics(stats=open_stats(path), port=0, clock=Clock())
        await metrics.start()
        try:
            metrics.update("123456789")  # a Telegram chat id, passed by mistake
            metrics.update("987654321")
            metrics.observe((("start", "@ivan:example.org"),), 0.001)
            metrics.error("Ivan Petrov wrote this")
            return await scraped(metrics)
        finally:
            await metrics.stop()

    text = asyncio.run(main())
    got = values(text)
    assert got[("hotline_updates_total", (("channel", OTHER),))] == 2
    assert caplog.text.count("label that is no id") == 3  # once per kind of count
    assert got[("hotline_flow_starts_total", (("flow", OTHER),))] == 1
    assert got[("hotline_errors_total", (("kind", OTHER),))] == 1
    rows = open_stats(path, create=False).read()
    for secret in ("123456789", "987654321", "ivan", "Ivan", "Petrov"):
        assert secret not in text
        assert secret not in repr(rows)
        assert secret not in caplog.text


def test_each_metrics_object_has_its_own_registry() -> None:
    one, two = Metrics(), Metrics()
    one.update("telegram")
    assert one.registry.get_sample_value("hotline_updates_total", {"channel": "telegram"}) == 1
    assert two.registry.get_sample_value("hotline_updates_total", {"channel": "telegram"}) is None


def test_without_a_table_nothing_is_kept_for_one() -> None:
    metrics = Metrics(clock=Clock())
    feed(metrics)
    assert metrics.pending() == {}
    assert metrics.flush() == 0


def test_the_sessions_gauge_asks_the_store_at_each_scrape() -> None:
    stored = [3]

    async def main() -> tuple[str, str]:
        metrics = Metrics(port=0, sessions=lambda: stored[0])
        await metrics.start()
        try:
            first = await scraped(metrics)
            stored[0] = 5
            return first, await scraped(metrics)
        finally:
            await metrics.stop()

    first, second = asyncio.run(main())
    assert values(first)[("hotline_sessions", ())] == 3
    assert values(second)[("hotline_sessions", ())] == 5


def test_a_port_in_use_is_a_config_error() -> None:
    async def main() -> None:
        first = Metrics(port=0)
        await first.start()
        assert first.address is not None
        second = Metrics(listen="127.0.0.1", port=first.address[1])
        try:
            with pytest.raises(
                ConfigError, match=f"metrics: cannot listen on 127.0.0.1:{first.address[1]}"
            ):
                await second.start()
        finally:
            await second.stop()
            await first.stop()

    asyncio.run(main())


def test_a_failing_sessions_count_does_not_break_the_scrape() -> None:
    def broken() -> int:
        raise RuntimeError("store closed")

    metrics = Metrics(sessions=broken)
    value = metrics.registry.get_sample_value("hotline_sessions")
    assert value is not None and value != value  # NaN


def test_without_a_port_nothing_listens() -> None:
    async def main() -> None:
        metrics = Metrics()
        await metrics.start()
        assert metrics.address is None
        await metrics.stop()

    asyncio.run(main())


# --------------------------------------------------------------------------- daily counts


def sqlite_file(tmp_path: Path) -> Path:
    """A session store's file, as `hotline serve` makes it (WAL, sealed sessions)."""
    path = tmp_path / "hotline.sqlite3"
    SQLiteStore(path, sealer=Sealer([bytes(range(32))])).close()
    return path


def as_dict(rows: list[Row]) -> dict[tuple[str, str], int]:
    return {(day, name): n for day, name, n in rows}


EXPECTED = {
    ("2025-11-25", "update:telegram"): 2,
    ("2025-11-25", "update:matrix"): 1,
    ("2025-11-25", "step"): 6,
    ("2025-11-25", "start:intake"): 1,
    ("2025-11-25", "start:lawyer"): 1,
    ("2025-11-25", "complete:intake"): 1,
    ("2025-11-25", "handover:lawyer"): 1,
    ("2025-11-25", f"handover:{NO_FLOW}"): 1,
    ("2025-11-25", "queue:lawyers"): 2,
    ("2025-11-25", "error:condition"): 1,
    ("2025-11-25", "error:document"): 1,
}


def test_flush_adds_the_days_counts_to_the_sqlite_store(tmp_path: Path) -> None:
    path = sqlite_file(tmp_path)
    clock = Clock()
    metrics = Metrics(stats=open_stats(path), clock=clock)
    feed(metrics)
    assert metrics.flush() == len(EXPECTED)
    assert metrics.pending() == {}
    assert metrics.flush() == 0
    # The next day, and the same day again: rows are added to, never overwritten.
    clock.now += 86400
    metrics.observe((("start", "intake"),), 0.001)
    clock.now -= 86400
    metrics.observe((("start", "intake"),), 0.001)
    metrics.flush()
    assert metrics.stats is not None
    metrics.stats.close()
    rows = as_dict(open_stats(path, create=False).read())
    assert rows == {
        **EXPECTED,
        ("2025-11-25", "step"): 7,
        ("2025-11-25", "start:intake"): 2,
        ("2025-11-26", "step"): 1,
        ("2025-11-26", "start:intake"): 1,
    }
    # The sessions are still readable beside the counts.
    SQLiteStore(path, sealer=Sealer([bytes(range(32))])).close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_flush_adds_the_counts_of_two_workers_in_postgresql(pg_url: str) -> None:
    workers = [Metrics(stats=open_stats(pg_url), clock=Clock()) for _ in range(2)]
    for metrics in workers:
        feed(metrics)
        metrics.flush()
        assert metrics.stats is not None
        metrics.stats.close()
    reader = open_stats(pg_url, create=False)
    try:
        assert as_dict(reader.read()) == {key: 2 * n for key, n in EXPECTED.items()}
        assert as_dict(reader.read(since="2025-11-26")) == {}
        assert as_dict(reader.read(until="2025-11-25")) == as_dict(reader.read())
    finally:
        reader.close()


def test_a_postgresql_database_the_bot_never_wrote_to_reads_as_empty(pg_url: str) -> None:
    reader = open_stats(pg_url, create=False)
    try:
        assert reader.read() == []
    finally:
        reader.close()


class Failing(StatsTable):
    """A database that is down for the first `failures` writes."""

    where = "failing"

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.added: list[dict[tuple[str, str], int]] = []

    def add(self, counts: Counts) -> None:
        if self.failures:
            self.failures -= 1
            raise StatsError("failing: down")
        self.added.append(dict(counts))

    def read(self, since: str | None = None, until: str | None = None) -> list[Row]:
        return []

    def close(self) -> None:
        pass


def test_counts_that_could_not_be_written_are_kept_for_the_next_flush() -> None:
    table = Failing(failures=1)
    metrics = Metrics(stats=table, clock=Clock())
    metrics.observe((("start", "intake"),), 0.001)
    with pytest.raises(StatsError):
        metrics.flush()
    metrics.observe((("start", "intake"),), 0.001)
    metrics.flush()
    assert table.added == [{("2025-11-25", "step"): 2, ("2025-11-25", "start:intake"): 2}]


def test_no_count_is_lost_to_a_flush_running_meanwhile_in_another_thread(
    tmp_path: Path,
) -> None:
    path = sqlite_file(tmp_path)
    metrics = Metrics(stats=open_stats(path), clock=Clock())
    done = threading.Event()

    def flusher() -> None:
        while not done.is_set():
            metrics.flush()

    def hub() -> None:
        for _ in range(5000):
            metrics.observe((("start", "intake"),), 0.0001)

    writer = threading.Thread(target=flusher)
    writer.start()
    hubs = [threading.Thread(target=hub) for _ in range(3)]
    for thread in hubs:
        thread.start()
    for thread in hubs:
        thread.join()
    done.set()
    writer.join()
    metrics.flush()
    rows = as_dict(open_stats(path, create=False).read())
    assert rows == {("2025-11-25", "step"): 15000, ("2025-11-25", "start:intake"): 15000}


def test_the_running_flusher_writes_every_few_seconds_and_stop_writes_the_rest(
    tmp_path: Path,
) -> None:
    path = sqlite_file(tmp_path)

    async def main() -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
        metrics = Metrics(stats=open_stats(path), flush_every=0.05, clock=Clock())
        await metrics.start()
        metrics.observe((("start", "intake"),), 0.001)
        reader = open_stats(path, create=False)
        try:
            for _ in range(100):
                await asyncio.sleep(0.02)
                if reader.read():
                    break
            written = as_dict(reader.read())
            metrics.observe((("complete", "intake"),), 0.001)
            await metrics.stop()
            return written, as_dict(reader.read())
        finally:
            reader.close()

    written, final = asyncio.run(main())
    assert written == {("2025-11-25", "step"): 1, ("2025-11-25", "start:intake"): 1}
    assert final == {**written, ("2025-11-25", "step"): 2, ("2025-11-25", "complete:intake"): 1}


def test_stop_logs_the_counts_it_could_not_write(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        metrics = Metrics(stats=Failing(failures=5), flush_every=3600)
        await metrics.start()
        metrics.observe((("start", "intake"),), 0.001)
        await metrics.stop()

    asyncio.run(main())
    assert "2 lost" in caplog.text


# --------------------------------------------------------------------------- configuration


def test_from_config_keeps_the_counts_in_the_session_store_and_serves_if_asked(
    tmp_path: Path,
) -> None:
    path = sqlite_file(tmp_path)
    quiet = ServeConfig.model_validate({"store": {"sqlite": path.name}})
    assert stats_location(quiet, tmp_path) == (str(path), None)
    metrics = Metrics.from_config(quiet, tmp_path)
    assert metrics.port is None and metrics.stats is not None
    metrics.stats.close()
    loud = ServeConfig.model_validate(
        {"store": {"sqlite": path.name}, "metrics": {"listen": "127.0.0.1", "port": 9464}}
    )
    metrics = Metrics.from_config(loud, tmp_path, worker=2)
    assert (metrics.listen, metrics.port) == ("127.0.0.1", 9466)
    assert metrics.stats is not None
    metrics.stats.close()


def test_with_a_postgresql_store_the_counts_go_beside_its_sessions(pg_url: str) -> None:
    # The serve config's `store: {url, schema}`.
    schema = f"{schema_of(pg_url)}_sessions"
    config = ServeConfig.model_validate({"store": {"url": pg_url, "schema": schema}})
    assert stats_location(config, Path()) == (pg_url, schema)
    metrics = Metrics.from_config(config, Path(), worker=1)
    assert metrics.port is None and metrics.stats is not None
    assert metrics.stats.where.endswith(f"(schema {schema})")
    metrics.observe((("start", "intake"),), 0.001)
    metrics.flush()
    metrics.stats.close()
    reader = open_stats(pg_url, schema=schema, create=False)
    try:
        assert len(reader.read()) == 2
    finally:
        reader.close()
    # Not in the connection's own schema (the search_path of pg_url).
    elsewhere = open_stats(pg_url, create=False)
    try:
        assert elsewhere.read() == []
    finally:
        elsewhere.close()


def test_from_config_names_a_store_that_cannot_be_opened(tmp_path: Path) -> None:
    config = ServeConfig.model_validate({"store": {"sqlite": "missing/store.sqlite3"}})
    with pytest.raises(ConfigError, match=r"missing/store\.sqlite3: cannot open the store"):
        Metrics.from_config(config, tmp_path)


def test_a_metrics_section_with_unknown_keys_is_refused() -> None:
    with pytest.raises(ValueError, match="extra"):
        ServeConfig.model_validate({"metrics": {"port": 1, "user": "x"}})


# --------------------------------------------------------------------------- end to end


def test_a_conversation_counted_end_to_end_shows_no_identifiers(tmp_path: Path) -> None:
    """The engine's Outcome.counts through Metrics, as the hub wires them."""
    flows, report = load_folder(FLOWS)
    assert flows is not None, report.errors
    engine = Engine(flows, clock=lambda: dt.datetime(2025, 11, 25, 12))
    path = sqlite_file(tmp_path)
    person = Address("telegram", "987654321")
    said = ["/start", "I got a summons", "Conscription", "Ivanov Ivan", "01.02.2004"]

    async def main() -> str:
        metrics = Metrics(stats=open_stats(path), port=0, clock=Clock())
        await metrics.start()
        session: Session | None = None
        last: list = []
        try:
            for text in said:
                buttons = {
                    b.label: b.payload for a in last if isinstance(a, SendText) for b in a.buttons
                }
                event = (
                    Inbound.press(person, buttons[text], "en")
                    if text in buttons
                    else Inbound.typed(person, text, "en")
                )
                metrics.update(event.address.channel)
                outcome = engine.handle(session, event)
                session, last = outcome.session, outcome.actions
                metrics.observe(outcome.counts, 0.001)
            return await scraped(metrics)
        finally:
            await metrics.stop()

    text = asyncio.run(main())
    got = values(text)
    assert got[("hotline_flow_starts_total", (("flow", "intake"),))] == 1
    assert got[("hotline_updates_total", (("channel", "telegram"),))] == len(said)
    rows = open_stats(path, create=False).read()
    assert ("2025-11-25", "start:intake", 1) in rows
    for secret in ("987654321", "Ivanov", "01.02.2004", "summons"):
        assert secret not in text
        assert secret not in repr(rows)
