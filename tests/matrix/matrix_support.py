"""Helpers of the Matrix tests: the bot as `hotline serve` runs it, and people."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from adapters.matrix.channel import MatrixChannel
from adapters.matrix.config import MatrixConfig, Secrets
from adapters.matrix.replay import MatrixPerson
from adapters.matrix.synapse_launcher import Account, LocalSynapse
from adapters.serve.hub import Hub
from engine.model import FlowSet
from engine.privacy import new_key
from engine.runtime import Engine
from engine.stores import MemoryStore

ROOT = Path(__file__).resolve().parents[2]
KEY = "test-store-key-0123456789"
FLOWS = ROOT / "tests" / "data" / "semantics"  # English first: menu "Menu", flow "intake"


def account(synapse: LocalSynapse, name: str, exempt: bool = True) -> Account:
    return synapse.register(f"{name}-{secrets.token_hex(3)}", exempt=exempt)


class Bot:
    """The bot as `hotline serve` runs it: engine, store, hub and a MatrixChannel. It can be
    stopped and started again on the same store_dir, as a restart would."""

    def __init__(
        self,
        synapse: LocalSynapse,
        flows: FlowSet,
        store_dir: Path,
        account: Account,
        **config: Any,
    ) -> None:
        self.synapse = synapse
        self.account = account
        self.section: dict[str, Any] = {
            "homeserver": synapse.url,
            "user_id": account.user_id,
            "store_dir": str(store_dir),
            "sync_timeout_ms": 500,
            "encryption": "off",
            **config,
        }
        self.secrets = Secrets(password=account.password, store_key=KEY)
        self.store = MemoryStore()
        self.engine = Engine(flows)
        self.channel: MatrixChannel | None = None

    @property
    def user_id(self) -> str:
        return self.account.user_id

    async def start(self) -> MatrixChannel:
        self.channel = MatrixChannel(MatrixConfig.model_validate(self.section), self.secrets)
        hub = Hub(self.engine, self.store, {"matrix": self.channel})
        await self.channel.start(hub.deliver)
        return self.channel

    async def stop(self) -> None:
        if self.channel is not None:
            await self.channel.stop()

    async def settle(self, syncs: int = 2) -> None:
        """Let the bot go through `syncs` more syncs (whatever was pending is handled)."""
        assert self.channel is not None
        await self.channel.wait_synced(syncs)


@contextlib.asynccontextmanager
async def running(bot: Bot) -> AsyncIterator[MatrixChannel]:
    channel = await bot.start()
    try:
        yield channel
    finally:
        await bot.stop()


@contextlib.asynccontextmanager
async def person(
    synapse: LocalSynapse, name: str = "person", store_dir: Path | None = None
) -> AsyncIterator[MatrixPerson]:
    someone = MatrixPerson(
        synapse.url, account(synapse, name), store_dir=store_dir, store_key="person-key"
    )
    await someone.start()
    try:
        yield someone
    finally:
        await someone.close()


def run(coro: Any) -> Any:
    """Tests are plain functions running one coroutine: no asyncio plugin needed."""
    return asyncio.run(asyncio.wait_for(coro, timeout=120))


def serve_config(
    synapse: LocalSynapse, bot: Account, folder: Path, flows: Path, sync_timeout_ms: int
) -> tuple[Path, dict[str, str]]:
    """A `hotline serve` config for `bot` on `synapse` (written in `folder`, SQLite store and
    Matrix store_dir relative to it) and the environment to run it with: fresh keys."""
    config = folder / "hotline.yaml"
    config.write_text(
        f"flows: {flows}\n"
        "store: {sqlite: sessions.sqlite3}\n"
        "matrix:\n"
        f"  homeserver: {synapse.url}\n"
        f'  user_id: "{bot.user_id}"\n'
        "  store_dir: matrix-store\n"
        f"  sync_timeout_ms: {sync_timeout_ms}\n",
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "MATRIX_PASSWORD": bot.password,
        "MATRIX_STORE_KEY": "k" * 32,
        "HOTLINE_KEYS": new_key(),
        "HOTLINE_KEY_SECRET": new_key(),
    }
    env.pop("MATRIX_ACCESS_TOKEN", None)
    return config, env
