"""Start the configured channels around one engine, store and hub; stop on a signal.

The session store is encrypted: `serve` refuses to start without HOTLINE_KEYS and
HOTLINE_KEY_SECRET, or with keys that do not open the store (see `engine.privacy`). Idle
sessions are purged once at start and then every hour (`retention_days` in bot.yaml).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import signal
import time
from pathlib import Path

from adapters.serve.channel import Channel
from adapters.serve.config import CHANNELS, ConfigError, ServeConfig
from adapters.serve.handover import CaseStore, Desk, hours_from_config, rooms_from_config, watch
from adapters.serve.heap import give_back_memory
from adapters.serve.hub import Hub
from adapters.serve.logs import configure_logging
from adapters.serve.metrics import Metrics
from adapters.serve.reload import FlowReloader
from engine.loader import load_folder
from engine.privacy import PrivacyError, SessionKeys, keys_from_env
from engine.runtime import Engine
from engine.stores import SQLiteStore
from engine.stores.base import SessionStore
from engine.stores.postgres import PostgresStore
from engine.stores.sqlite import StoreError

PURGE_EVERY = 3600.0  # seconds

log = logging.getLogger("hotline.serve")


def build_channels(config: ServeConfig, base: Path) -> dict[str, Channel]:
    channels: dict[str, Channel] = {}
    for name in CHANNELS:
        section = getattr(config, name)
        if section is None:
            continue
        module = importlib.import_module(f"adapters.{name}")
        channels[name] = module.build_channel(section, os.environ, base)
    return channels


def open_store(config: ServeConfig, base: Path) -> tuple[SQLiteStore | PostgresStore, SessionKeys]:
    """The encrypted store (SQLite, or PostgreSQL when `store.url` is set) and the
    secrets, or a ConfigError saying what to set."""
    try:
        secrets = keys_from_env(os.environ)
        store: SQLiteStore | PostgresStore
        if config.store.url is not None:
            store = PostgresStore(
                config.store.url,
                sealer=secrets.sealer,
                identity=secrets.keys.fingerprint(),
                schema=config.store.schema_,
                pool_size=config.store.pool_size,
            )
        else:
            store = SQLiteStore(
                base / config.store.sqlite,
                sealer=secrets.sealer,
                identity=secrets.keys.fingerprint(),
                synchronous=config.store.synchronous,
            )
    except (PrivacyError, StoreError) as err:
        raise ConfigError(str(err)) from err
    return store, secrets.keys


def open_cases(
    config: ServeConfig, base: Path, store: SQLiteStore | PostgresStore, keys: SessionKeys
) -> CaseStore:
    """The hand-over cases, beside the sessions and sealed like them."""
    location = config.store.url or str(base / config.store.sqlite)
    return CaseStore(location, sealer=store.sealer, keys=keys, schema=config.store.schema_)


def purge(
    store: SessionStore,
    retention_days: int,
    now: float | None = None,
    cases: CaseStore | None = None,
) -> int:
    """Delete sessions idle longer than `retention_days`, and hand-over cases that ended
    before then; how many sessions."""
    now = time.time() if now is None else now
    before = now - retention_days * 86400
    if cases is not None:
        cases.purge(before)
    return store.purge_idle(before)


async def purge_every(
    store: SessionStore, retention_days: int, every: float, cases: CaseStore | None = None
) -> None:
    """The running bot's retention: purge now, then every `every` seconds, until cancelled."""
    while True:
        try:
            purged = await asyncio.to_thread(purge, store, retention_days, None, cases)
            log.info("retention: purged %d idle session(s)", purged)
        except Exception:
            log.exception("retention purge failed; retrying at the next round")
        await asyncio.sleep(every)


async def serve(config: ServeConfig, base: Path, worker: int = 0) -> int:
    """Run until SIGINT or SIGTERM. `worker`: this process's number among several sharing
    one PostgreSQL store (its metrics port is `metrics.port + worker`)."""
    undo_logging = configure_logging(config.log_format, os.environ)
    try:
        return await _serve(config, base, worker)
    finally:
        undo_logging()


async def _serve(config: ServeConfig, base: Path, worker: int) -> int:
    # The keys first: without them nothing else is worth starting.
    store, keys = open_store(config, base)
    try:
        # Channels next: a missing token or password is reported before the flows load.
        channels = build_channels(config, base)
    except BaseException:
        store.close()
        raise
    flows_dir = (base / config.flows).resolve()
    flows, report = load_folder(flows_dir)
    if flows is None:
        for diagnostic in report.sorted():
            log.error("%s", diagnostic)
        store.close()
        raise ConfigError(f"{flows_dir}: the flows have errors; run `hotline check {flows_dir}`")
    for channel in channels.values():
        channel.bind(flows)
    desk: Desk | None = None
    cases: CaseStore | None = None
    if config.handover:
        # The cases' own tables, in the sessions' database (file or PostgreSQL).
        cases = open_cases(config, base, store, keys)
        rooms = rooms_from_config({q: r.model_dump() for q, r in config.handover.items()})
        desk = Desk(rooms, cases, channels, hours=hours_from_config(config.handover))
        desk.bind(flows)
        watch(desk, channels.values())
    try:
        metrics = Metrics.from_config(config, base, sessions=store.count, worker=worker)
    except ConfigError:
        store.close()
        raise
    hub = Hub(Engine(flows, keys=keys), store, channels, desk, metrics=metrics)
    give_back_memory()  # what checking the templates left behind (~40 MB)
    # Not resolved: a deploy that swaps a symlinked flows folder is seen as a change.
    reloader = FlowReloader(
        (base / config.flows).absolute(), keys, hub, channels, watch=config.reload
    )
    await reloader.start()
    retention = asyncio.create_task(
        purge_every(store, flows.bot.retention_days, PURGE_EVERY, cases)
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    started: list[Channel] = []
    try:
        await metrics.start()
        for channel in channels.values():
            await channel.start(hub.deliver)
            started.append(channel)
            log.info("channel %s started", channel.name)
        # What a previous run committed but could not send leaves now.
        await hub.start()
        if desk is not None:
            await desk.start()  # tickets a previous run could not post
        await stop.wait()
    finally:
        if desk is not None:
            await desk.stop()
        await hub.stop()
        await reloader.stop()
        retention.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await retention
        for channel in reversed(started):
            await channel.stop()
        await metrics.stop()  # writes the last counts
        await store.close_journal()
        store.close()
        if cases is not None:
            cases.close()
        log.info("stopped after %d events", hub.handled)
    return 0
