"""Documents as m.file within the upload limit; rate limits honoured, in order."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from matrix_support import Bot, account, person, run, running

from adapters.matrix.config import DEFAULT_TOO_BIG
from adapters.matrix.synapse_launcher import LocalSynapse
from engine.conversation import Address, SendDocument, SendText
from engine.model import FlowSet

pytestmark = pytest.mark.slow

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def test_documents_are_uploaded_and_sent_as_files_within_the_upload_limit(
    synapse: LocalSynapse, matrix_flows: FlowSet, tmp_path: Path
) -> None:
    async def scenario() -> None:
        bot = Bot(synapse, matrix_flows, tmp_path / "bot", account(synapse, "bot"))
        async with running(bot) as channel, person(synapse) as alice:
            room = await alice.open_dm(bot.user_id)
            await alice.messages(1)
            assert await channel.upload_limit() == 1024 * 1024  # max_upload_size: 1M
            data = b"PK\x03\x04 a filled application " * 1000
            to = Address("matrix", room)
            await channel.perform(SendDocument(to, "Заявление об АГС.docx", data, DOCX))
            (sent,) = await alice.messages(1)
            assert sent.msgtype == "m.file"
            assert sent.content["body"] == sent.content["filename"] == "Заявление об АГС.docx"
            assert sent.content["info"] == {"mimetype": DOCX, "size": len(data)}
            assert sent.content["url"].startswith("mxc://")
            assert await alice.download(sent) == data

            big = b"x" * (1024 * 1024 + 1)
            await channel.perform(SendDocument(to, "huge.docx", big, DOCX))
            (notice,) = await alice.messages(1)
            assert notice.msgtype == "m.notice"
            assert notice.text == DEFAULT_TOO_BIG
            assert channel.stats["documents_too_big"] == 1

    run(scenario())


def test_rate_limits_are_honoured_in_order_and_an_exempted_bot_meets_none(
    synapse: LocalSynapse, matrix_flows: FlowSet, tmp_path: Path
) -> None:
    """Synapse's default message limit (0.2 a second, bursts of 10) on a bot that nobody
    exempted: the sends wait as told and arrive complete and in order."""

    async def scenario() -> None:
        limited = Bot(
            synapse, matrix_flows, tmp_path / "limited", account(synapse, "bot", exempt=False)
        )
        exempt = Bot(synapse, matrix_flows, tmp_path / "exempt", account(synapse, "bot"))
        async with person(synapse) as alice:
            for bot, expect_limits in ((limited, True), (exempt, False)):
                async with running(bot) as channel:
                    room = await alice.open_dm(bot.user_id)
                    await alice.messages(1)  # the greeting: one message of the burst
                    to = Address("matrix", room)
                    texts = [f"message {i}" for i in range(11)]  # 12 with the greeting: 2 waits
                    await asyncio.gather(*(channel.perform(SendText(to, t)) for t in texts))
                    received = await alice.messages(len(texts), timeout=60)
                    assert [m.text for m in received] == texts
                    if expect_limits:
                        assert channel.stats["rate_limited"] >= 1
                    else:
                        assert channel.stats["rate_limited"] == 0

    run(scenario())
