"""Updates per second through `hotline serve` on Telegram, over real HTTP on loopback.

    .venv/bin/python tests/telegram/measure_throughput.py [--users 300] [--rounds 2]

Starts the local Bot API server in this process and `hotline serve` (long polling, SQLite
store, the example flows, no flood limits as for a self-hosted server) as a subprocess;
then `users` people each send `/start`, press the first menu button and type /help, for
`rounds` rounds, all at once. Prints updates per second (wall time until the last update
was acknowledged) and the CPU seconds the serve process spent per update, read from
/proc (so the server's own cost is not counted). Not a test: pytest does not collect it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from adapters.telegram.localserver import LocalBotApiServer  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def main(users: int, rounds: int, extra: str) -> None:
    async with LocalBotApiServer(check_updates=False) as server:
        folder = Path(tempfile.mkdtemp())
        config = folder / "hotline.yaml"
        config.write_text(
            f"flows: {ROOT / 'flows'}\nstore: {{sqlite: {folder / 's.sqlite3'}}}\n"
            f"telegram:\n  api_url: {server.api_url}\n"
            "  rate_limit: {overall_per_second: 0, per_chat_per_second: 0, group_per_minute: 0}\n"
            + "".join(f"  {setting}\n" for setting in extra.split(",") if setting),
            encoding="utf-8",
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "adapters.cli",
            "serve",
            "--config",
            str(config),
            cwd=ROOT,
            env={**os.environ, "TELEGRAM_BOT_TOKEN": server.token},
        )
        try:
            warm = server.send_text(1, "/start")
            await server.wait_confirmed(warm, timeout=60)
            total = 0
            started, cpu_before = time.perf_counter(), cpu_seconds(process.pid)
            for _ in range(rounds):
                last = [server.send_text(10_000 + u, "/start") for u in range(users)]
                await server.wait_confirmed(last[-1], timeout=300)
                await server.wait_all_confirmed(timeout=300)
                last = [server.press(10_000 + u, "I received a summons") for u in range(users)]
                await server.wait_all_confirmed(timeout=300)
                last = [server.send_text(10_000 + u, "/help") for u in range(users)]
                await server.wait_all_confirmed(timeout=300)
                total += 3 * users
            wall = time.perf_counter() - started
            cpu = cpu_seconds(process.pid) - cpu_before
        finally:
            process.send_signal(signal.SIGTERM)
            await process.wait()
    print(
        f"{total} updates in {wall:.2f}s: {total / wall:.0f} updates/s; "
        f"serve process CPU {cpu / total * 1000:.2f} ms per update "
        f"({total / cpu:.0f} updates per CPU second)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--set", default="", help="more telegram settings, e.g. 'concurrency: 8,poll_timeout: 5'"
    )
    options = parser.parse_args()
    asyncio.run(main(options.users, options.rounds, options.set))
