"""End-to-end encrypted rooms: read and answered with the e2e extra; explained without it."""

from __future__ import annotations

from pathlib import Path

import pytest
from matrix_support import KEY, Bot, account, person, run, running
from nio.crypto import ENCRYPTION_ENABLED

from adapters.matrix.config import DEFAULT_ENCRYPTED_NOTICE, Secrets
from adapters.matrix.state import ChannelState
from adapters.matrix.synapse_launcher import LocalSynapse
from adapters.serve.config import ConfigError
from engine.conversation import Address, SendDocument
from engine.model import FlowSet

pytestmark = pytest.mark.slow

needs_e2e = pytest.mark.skipif(
    not ENCRYPTION_ENABLED,
    reason='matrix-nio[e2e] is not installed (pip install "matrix-nio[e2e]")',
)


@needs_e2e
def test_an_encrypted_chat_is_read_and_answered_encrypted_across_a_restart(
    synapse: LocalSynapse, matrix_flows: FlowSet, tmp_path: Path
) -> None:
    async def scenario() -> None:
        bot = Bot(synapse, matrix_flows, tmp_path / "bot", account(synapse, "bot"), encryption="on")
        async with person(synapse, store_dir=tmp_path / "alice") as alice:
            async with running(bot) as channel:
                room = await alice.open_dm(bot.user_id, encrypted=True)
                (greeting,) = await alice.messages(1)
                assert greeting.text == "Menu"
                await alice.say("1")
                (kind,) = await alice.messages(1)
                assert (kind.text, kind.buttons) == (
                    "Which kind?",
                    ("Conscription", "Mobilisation", "Lawyer"),
                )
                data = b"an encrypted application"
                await channel.perform(SendDocument(Address("matrix", room), "a.docx", data))
                (document,) = await alice.messages(1)
                assert "url" not in document.content  # the file travels encrypted
                assert document.content["file"]["url"].startswith("mxc://")
                assert await alice.download(document) == data
                assert channel.client is not None
                device = channel.client.device_id
                before = {d.id for d in (await channel.client.devices()).devices}
            # Both sides' messages arrived encrypted: the server saw no text.
            await alice.say("2")
            async with running(bot) as channel:
                (name,) = await alice.messages(1)
                assert name.text == "Your name?"
                assert channel.client is not None and channel.client.device_id == device
                after = {d.id for d in (await channel.client.devices()).devices}
                assert after == before  # a restart is the same device: no pile of devices
        # The key store is nio's SQLite, encrypted with MATRIX_STORE_KEY; ours has no keys.
        assert list((tmp_path / "bot" / "e2e").glob("*.db"))
        ChannelState(tmp_path / "bot").close()

    run(scenario())


@needs_e2e
def test_without_encryption_the_bot_says_once_that_it_cannot_read_the_room(
    synapse: LocalSynapse, matrix_flows: FlowSet, tmp_path: Path
) -> None:
    async def scenario() -> None:
        bot = Bot(
            synapse, matrix_flows, tmp_path / "bot", account(synapse, "bot"), encryption="off"
        )
        async with running(bot) as channel, person(synapse, store_dir=tmp_path / "a") as alice:
            await alice.open_dm(bot.user_id, encrypted=True)
            (notice,) = await alice.messages(1)
            assert notice.text == DEFAULT_ENCRYPTED_NOTICE
            assert notice.msgtype == "m.notice"
            await alice.say("/start")
            await alice.say("1")
            await bot.settle(2)
            assert await alice.quiet(0.5) == []
            assert channel.stats["undecryptable"] == 2
            assert channel.stats["encryption_notices"] == 1

    run(scenario())


@needs_e2e
def test_the_key_store_opens_only_with_matrix_store_key(
    synapse: LocalSynapse, matrix_flows: FlowSet, tmp_path: Path
) -> None:
    async def scenario() -> None:
        bot = Bot(synapse, matrix_flows, tmp_path / "bot", account(synapse, "bot"), encryption="on")
        async with running(bot):
            pass
        for wrong in ("DEFAULT_KEY", "another key"):  # nio's default, and a mistake
            bot.secrets = Secrets(password=bot.account.password, store_key=wrong)
            with pytest.raises(ConfigError, match="MATRIX_STORE_KEY"):
                await bot.start()
        bot.secrets = Secrets(password=bot.account.password, store_key=KEY)
        async with running(bot) as channel:
            assert channel.encryption

    run(scenario())
