"""The replay driver: the bot and a person on a homeserver, answers as neutral values; and
transcripts replayed over Matrix."""

from __future__ import annotations

from pathlib import Path

import pytest
from matrix_support import ROOT, account, run
from nio.crypto import ENCRYPTION_ENABLED

from adapters.matrix.replay import (
    Credentials,
    Document,
    HandedOver,
    MatrixReplayDriver,
    MatrixReplayer,
    Said,
)
from adapters.matrix.synapse_launcher import LocalSynapse
from engine.conversation import Address, SendDocument
from engine.loader import load_folder
from engine.model import FlowSet
from engine.transcripts import find_transcripts, load_transcript

pytestmark = pytest.mark.slow


def named(synapse: LocalSynapse) -> dict:
    """A homeserver named by flags, with existing accounts (here: the session's Synapse)."""
    bot, person = account(synapse, "bot"), account(synapse, "person")
    return {
        "homeserver": synapse.url,
        "bot": Credentials(bot.user_id, bot.password),
        "person": Credentials(person.user_id, person.password),
    }


def test_the_driver_returns_what_the_person_received(
    synapse: LocalSynapse, matrix_flows: FlowSet, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with MatrixReplayDriver(matrix_flows, workdir=tmp_path, **named(synapse)) as d:
            assert await d.send_text("/start") == [Said("Menu", ("Intake", "Talk to a lawyer"))]
            assert await d.press("Intake") == [
                Said("Which kind?", ("Conscription", "Mobilisation", "Lawyer"))
            ]
            assert await d.press("Lawyer") == [
                Said("Passing you on."),
                Said("A lawyer will answer."),
                HandedOver("lawyers"),
            ]
            await d.new_conversation()  # a new room is a new conversation
            assert await d.send_text("hello")  # not understood, then the menu
            channel = d.channel
            assert channel is not None
            room = d.person.room_id if d.person else None
            assert room is not None
            await channel.perform(SendDocument(Address("matrix", room), "x.docx", b"data"))
            (message,) = await d.person.messages(1)
            assert await d.person.download(message) == b"data"
            assert Document("x.docx", b"data").name == message.content["body"]

    run(scenario())


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_every_transcript_passes_over_matrix(synapse: LocalSynapse, encrypted: bool) -> None:
    """`hotline replay --channel matrix [--encrypted] tests/transcripts`, in process."""
    if encrypted and not ENCRYPTION_ENABLED:
        pytest.skip('matrix-nio[e2e] is not installed (pip install "matrix-nio[e2e]")')
    flows, report = load_folder(ROOT / "flows")
    assert flows is not None, report.sorted()
    files, _ = find_transcripts([ROOT / "tests" / "transcripts"])
    transcripts = [t for t in (load_transcript(f)[0] for f in files) if t is not None]
    transcripts = [t for t in transcripts if t.channel in (None, "matrix") and t.flows is None]
    assert len(transcripts) >= len(files) - 5
    with MatrixReplayer(flows, encrypted=encrypted, **named(synapse)) as replayer:
        runs = [replayer.replay(t) for t in transcripts]
    failures = [r.message() for r in runs if not r.passed]
    assert not failures, "\n\n".join(failures)
