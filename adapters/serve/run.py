"""Start the configured channels around one engine, store and hub; stop on a signal."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import signal
from pathlib import Path

from adapters.serve.channel import Channel
from adapters.serve.config import CHANNELS, ConfigError, ServeConfig
from adapters.serve.hub import Hub
from engine.loader import load_folder
from engine.runtime import Engine
from engine.stores import SQLiteStore

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


async def serve(config: ServeConfig, base: Path) -> int:
    # Channels first: a missing token or password is reported before the flows load.
    channels = build_channels(config, base)
    flows_dir = (base / config.flows).resolve()
    flows, report = load_folder(flows_dir)
    if flows is None:
        for diagnostic in report.sorted():
            log.error("%s", diagnostic)
        raise ConfigError(f"{flows_dir}: the flows have errors; run `hotline check {flows_dir}`")
    for channel in channels.values():
        channel.bind(flows)
    store = SQLiteStore(base / config.store.sqlite, synchronous=config.store.synchronous)
    hub = Hub(Engine(flows), store, channels)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    started: list[Channel] = []
    try:
        for channel in channels.values():
            await channel.start(hub.deliver)
            started.append(channel)
            log.info("channel %s started", channel.name)
        await stop.wait()
    finally:
        for channel in reversed(started):
            await channel.stop()
        store.close()
        log.info("stopped after %d events", hub.handled)
    return 0
