"""`hotline serve` with a `matrix:` section, as an operator runs it: a subprocess, secrets in
the environment, stopped by SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from matrix_support import FLOWS, account, person, run, serve_config

from adapters.matrix.synapse_launcher import LocalSynapse

pytestmark = pytest.mark.slow


def test_hotline_serve_answers_on_matrix_and_stops_cleanly(
    synapse: LocalSynapse, tmp_path: Path
) -> None:
    bot = account(synapse, "bot")
    config, env = serve_config(synapse, bot, tmp_path, FLOWS, sync_timeout_ms=1000)
    server = subprocess.Popen(
        [sys.executable, "-m", "adapters.cli", "serve", "--config", str(config)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        async def scenario() -> None:
            async with person(synapse, store_dir=tmp_path / "alice") as alice:
                await alice.open_dm(bot.user_id, encrypted=True)
                (menu,) = await alice.messages(1, timeout=60)
                assert menu.buttons == ("Intake", "Talk to a lawyer")
                await alice.say("1")
                (kind,) = await alice.messages(1)
                assert kind.text == "Which kind?"

        run(scenario())
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=60)
    assert server.returncode == 0, err
    assert (tmp_path / "matrix-store" / "channel.sqlite3").exists()
    assert bot.password not in out + err
