"""`hotline serve` with a telegram section, as the organisation runs it: a subprocess."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from tg_helpers import ROOT, run, serve_process

from adapters.telegram.localserver import LocalBotApiServer
from engine.privacy import new_key


def _config(folder: Path, api_url: str) -> Path:
    path = folder / "hotline.yaml"
    path.write_text(
        f"flows: {ROOT / 'flows'}\n"
        f"store: {{sqlite: {folder / 'sessions.sqlite3'}}}\n"
        "telegram:\n"
        f"  api_url: {api_url}\n"
        "  poll_timeout: 5\n",
        encoding="utf-8",
    )
    return path


def test_serve_answers_on_telegram_and_stops_cleanly(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with LocalBotApiServer() as server:
            process = await serve_process(
                _config(tmp_path, server.api_url),
                {
                    "TELEGRAM_BOT_TOKEN": server.token,
                    "HOTLINE_KEYS": new_key(),
                    "HOTLINE_KEY_SECRET": new_key(),
                },
            )
            try:
                update = server.send_text(99, "/start", language_code="ru")
                await server.wait_confirmed(update, timeout=30)
                [menu] = server.received(99)
                assert (menu.text or "").startswith("Здравствуйте!")
                second = server.send_text(99, "/help", language_code="ru")
                await server.wait_confirmed(second, timeout=10)
                assert (server.received(99)[1].text or "").startswith("Команды")
            finally:
                process.send_signal(signal.SIGTERM)
                _out, err = await asyncio.wait_for(process.communicate(), 20)
            assert process.returncode == 0, err.decode()
            # Handled before the stop, so acknowledged on the way out: not sent again.
            assert server.is_confirmed(second)
            assert server.token not in err.decode()

    run(scenario(), limit=60)
