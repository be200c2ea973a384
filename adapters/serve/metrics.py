"""Counts of what the bot does: Prometheus metrics over HTTP, and daily rows for reports.

Counts only, never identifiers. Every label is a flow id, a queue id, a channel name or an
error kind; a label that does not look like one (a chat id, a Matrix user, some text
passed by mistake) is counted as `?`, so nothing about a person can reach a scrape or
the table even through a bug in a caller.

    hotline_updates_total{channel}        updates that reached the hub, per channel
    hotline_steps_total                   events the engine handled
    hotline_step_seconds                  engine + store time per event (histogram)
    hotline_errors_total{kind}            runaway, condition (engine); document, send,
                                          desk, engine (the hub's), ...
    hotline_flow_starts_total{flow}       conversations begun in the flow
    hotline_flow_completions_total{flow}  of those, reached an end (see engine.runtime)
    hotline_flow_handovers_total{flow}    of those, handed over ("-": /lawyer, no flow)
    hotline_handovers_total{queue}        hand-overs per queue
    hotline_sessions                      sessions in the store (only if given a counter)

The hub calls `update`, `observe` and `error`: each is a few dictionary and counter
increments, no I/O. The same counts are added up per UTC day in memory and written to the
`counters` table of the sessions' database (`engine.stores.stats`) every FLUSH_EVERY
seconds and at `stop()`, from a worker thread: the conversation path never waits on the
database. `hotline stats` reads that table.

Several workers: each process has its own registry and serves its own port (worker N:
port + N); Prometheus scrapes every one and `sum()` adds them up. prometheus_client's
multiprocess mode was not used: it shares one directory of mmap files between the
processes, so it works only on one machine (PostgreSQL is there for more than one),
needs that directory wiped at each start, and cannot call a function for a gauge. The
table is shared and its upserts add up, so `hotline stats` counts every worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder

from adapters.serve.config import ConfigError, ServeConfig
from engine.stores.stats import StatsError, StatsTable, open_stats

log = logging.getLogger(__name__)

FLUSH_EVERY = 10.0  # seconds between writes of the daily counts
# Engine + store time of one event: tens of microseconds for the engine, up to
# milliseconds for a store that syncs to disk or talks to PostgreSQL.
SECONDS_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
# What a flow id, queue id, channel name or error kind looks like; "-" is the engine's
# NO_FLOW. Anything else (digits, "@user:server", text) is never used as a label.
LABEL = re.compile(r"[a-z][a-z0-9_]{0,63}|-")
OTHER = "?"  # no flow, queue, channel or kind can be named so


def stats_location(config: ServeConfig, base: Path) -> tuple[str, str | None]:
    """Where the counts are kept: the session store's database, as (where, schema): the
    PostgreSQL URL and schema when the config has `store.url`, else the SQLite file
    (relative to the config's folder) and None."""
    if config.store.url:
        return config.store.url, config.store.schema_
    return str(base / config.store.sqlite), None


def day_of(epoch_day: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=epoch_day)).isoformat()


class Metrics:
    """One process's counters, its /metrics endpoint and its writer of daily counts."""

    def __init__(
        self,
        *,
        stats: StatsTable | None = None,
        listen: str = "127.0.0.1",
        port: int | None = None,
        sessions: Callable[[], int] | None = None,
        flush_every: float = FLUSH_EVERY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`stats`: the table to write daily counts to (None: none kept); `stop()` closes
        it. `port`: serve /metrics on listen:port (None: no endpoint; 0: any free port,
        see `address`). `sessions`: how many sessions are stored, called at each scrape
        from a worker thread (e.g. the store's `count`)."""
        self.stats = stats
        self.listen = listen
        self.port = port
        self.flush_every = flush_every
        self._clock = clock
        # Private, not prometheus_client's global REGISTRY: several hubs in one process
        # (tests) must not share or clash over counters.
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._updates = Counter("hotline_updates", "Updates received", ["channel"], registry=r)
        self._steps = Counter("hotline_steps", "Events handled by the engine", registry=r)
        self._seconds = Histogram(
            "hotline_step_seconds",
            "Engine and store time per event",
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        errors = Counter("hotline_errors", "Errors, by kind", ["kind"], registry=r)
        self._errors = errors
        # Outcome.counts' event -> its counter.
        self._by_event: dict[str, Counter] = {
            "start": Counter(
                "hotline_flow_starts", "Conversations begun, per flow", ["flow"], registry=r
            ),
            "complete": Counter(
                "hotline_flow_completions",
                "Conversations that reached an end, per flow they began in",
                ["flow"],
                registry=r,
            ),
            "handover": Counter(
                "hotline_flow_handovers",
                "Hand-overs, per flow the conversation began in",
                ["flow"],
                registry=r,
            ),
            "queue": Counter("hotline_handovers", "Hand-overs, per queue", ["queue"], registry=r),
            "error": errors,
        }
        if sessions is not None:
            count = sessions

            def stored() -> float:
                # A store closing at shutdown must not turn the whole scrape into an error.
                try:
                    return float(count())
                except Exception:
                    return float("nan")

            Gauge("hotline_sessions", "Sessions stored", registry=r).set_function(stored)
        # Children by (event, label), each label checked once: the hot path is then a
        # dictionary look-up and an increment.
        self._children: dict[tuple[str, str], tuple[Counter, str]] = {}
        self._warned: set[str] = set()
        # (UTC day since 1970, name) -> n, not yet written. A lock, not the event loop,
        # guards it: the hub may call from a worker thread.
        self._pending: dict[tuple[int, str], int] = {}
        self._lock = threading.Lock()
        self._flusher: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        self.address: tuple[str, int] | None = None  # where /metrics listens, once started

    @classmethod
    def from_config(
        cls,
        config: ServeConfig,
        base: Path,
        *,
        sessions: Callable[[], int] | None = None,
        worker: int = 0,
    ) -> Metrics:
        """What `hotline serve` runs: the daily counts in the session store's database,
        and /metrics if the config has `metrics:` (worker N on its port + N). Raises
        ConfigError naming the database if it cannot be opened."""
        section = config.metrics
        try:
            where, schema = stats_location(config, base)
            stats = open_stats(where, schema=schema)
        except StatsError as err:
            raise ConfigError(str(err)) from err
        if section is None:
            return cls(stats=stats, sessions=sessions)
        port = section.port + worker if section.port else 0
        return cls(stats=stats, listen=section.listen, port=port, sessions=sessions)

    # ------------------------------------------------------------------ the hub calls these

    def update(self, channel: str) -> None:
        """An update (message, press, close) from `channel` reached the hub."""
        self._count("update", channel)

    def observe(self, counts: Iterable[tuple[str, str]], seconds: float) -> None:
        """The engine handled one event in `seconds` (engine and store); `counts` is its
        `Outcome.counts`."""
        self._steps.inc()
        self._seconds.observe(seconds)
        day = int(self._clock() // 86400)
        if self.stats is not None:
            with self._lock:
                pending, key = self._pending, (day, "step")
                pending[key] = pending.get(key, 0) + 1
        for event, label in counts:
            self._count(event, label, day)

    def error(self, kind: str) -> None:
        """Something failed: `kind` is a word such as document, send, desk or engine."""
        self._count("error", kind)

    def _count(self, event: str, label: str, day: int | None = None) -> None:
        found = self._children.get((event, label))
        if found is None:
            found = self._child(event, label)
        child, name = found
        child.inc()
        if self.stats is None:
            return  # no table to write to (tests, replay): keep nothing for it
        if day is None:
            day = int(self._clock() // 86400)
        with self._lock:
            pending, key = self._pending, (day, name)
            pending[key] = pending.get(key, 0) + 1

    def _child(self, event: str, label: str) -> tuple[Counter, str]:
        clean = label if LABEL.fullmatch(label) else OTHER
        if clean == OTHER and event not in self._warned:
            # Say that it happened (once), never what the label was: it may be an identifier.
            self._warned.add(event)
            log.warning("a %s count had a label that is no id; counted as %r", event, OTHER)
        name = event
        if event == "update":
            counter = self._updates
        elif event in self._by_event:
            counter = self._by_event[event]
        else:
            log.warning("a count of an unknown kind; counted as an error of kind 'count'")
            counter, name, clean = self._errors, "error", "count"
        found = (counter.labels(clean), f"{name}:{clean}")
        if clean != OTHER:
            # Never keep a label that may be an identifier, not even as a cache key.
            self._children[(event, label)] = found
        return found

    # ------------------------------------------------------------------ daily counts

    def pending(self) -> dict[tuple[str, str], int]:
        """The counts not yet written, as (day 'YYYY-MM-DD', name) -> n."""
        with self._lock:
            return {(day_of(day), name): n for (day, name), n in self._pending.items()}

    def flush(self) -> int:
        """Write the pending counts to the table; how many rows. Blocking: call it in a
        worker thread. If the write fails the counts are kept for the next flush and the
        StatsError is raised."""
        if self.stats is None:
            return 0
        with self._lock:
            taken, self._pending = self._pending, {}
        if not taken:
            return 0
        try:
            self.stats.add({(day_of(day), name): n for (day, name), n in taken.items()})
        except BaseException:
            with self._lock:
                for key, n in taken.items():
                    self._pending[key] = self._pending.get(key, 0) + n
            raise
        return len(taken)

    async def _flush_every(self) -> None:
        while True:
            await asyncio.sleep(self.flush_every)
            try:
                await asyncio.to_thread(self.flush)
            except StatsError as err:
                log.warning("daily counts not written, kept for the next try: %s", err)
            except Exception:
                log.exception("daily counts not written, kept for the next try")

    # ------------------------------------------------------------------ start and stop

    async def start(self) -> None:
        """Serve /metrics (if a port was given) and start writing the daily counts.
        Raises ConfigError if the port cannot be listened on."""
        if self.port is not None:
            app = web.Application()
            app.router.add_get("/metrics", self._scrape)
            # No access log: a scrape every few seconds would drown the bot's own log.
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            try:
                await web.TCPSite(runner, self.listen, self.port).start()
            except OSError as err:
                await runner.cleanup()
                raise ConfigError(
                    f"metrics: cannot listen on {self.listen}:{self.port}: {err.strerror}"
                ) from err
            self._runner = runner
            host, port = runner.addresses[0][:2]
            self.address = (host, port)
            log.info("metrics on http://%s:%d/metrics", host, port)
        if self.stats is not None:
            self._flusher = asyncio.create_task(self._flush_every())

    async def stop(self) -> None:
        """Stop serving, write what is pending and close the table."""
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self.address = None
        if self.stats is not None:
            try:
                await asyncio.to_thread(self.flush)
            except Exception as err:
                lost = sum(self.pending().values())
                log.error("daily counts not written at shutdown; %d lost: %s", lost, err)
            await asyncio.to_thread(self.stats.close)
            self.stats = None

    async def _scrape(self, request: web.Request) -> web.Response:
        encode, content_type = choose_encoder(request.headers.get("Accept", ""))
        # In a thread: the sessions gauge may count rows in the database.
        body = await asyncio.to_thread(encode, self.registry)
        return web.Response(body=body, headers={"Content-Type": content_type})
