"""Memory of a serving process: `hotline serve` with 100,000 conversations stored and 1,000
of them active mid-flow.

    python -m bench.serving_memory            # 100,000 stored, 1,000 active
    python -m bench.serving_memory --quick    # 10,000 stored, 100 active
    python -m bench.serving_memory --stored 50000 --active 2000 --json out.json

The bot is `hotline serve` in a child process, exactly as deployed (Telegram, long polling,
the encrypted SQLite store, the example flows, the rate limiter of a self-hosted Bot API
server), talking over real HTTP to the local Bot API server in this process
(`bench.burst` has the details). Two runs, each with a fresh bot and store:

1. *empty store*: the bot starts on an empty store; then `active` people start a form at
   once and each answers until the session waits mid-form with three answers saved (a name,
   a date, an address...: the cut of `bench.memory`), every message sent as soon as the
   answer to the previous one arrived;
2. *stored*: the same, but the store already holds `stored - active` conversations of
   other people, mid-form too (sealed records made by the engine with the bot's keys,
   written before the bot starts), so that `stored` sessions exist at the end.

Measured in the bot process (/proc/PID/status): the resident set once started and idle
(`VmRSS`), after the active people are mid-flow and all answered, and the peak (`VmHWM`).
The cost of an active conversation is the growth from idle to after, per person; the
cost of the stored ones is the difference between the two runs' idle figures: sessions
live in the SQLite file, not in the process (SQLite's page cache is bounded: 2 MiB by
default), so it should be near nothing.

`run(quick)` returns the rows for `bench.run` (keyword arguments of `bench.run.Result`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.burst import (
    FIRST_USER,
    FLOWS,
    ROOT,
    START_TIMEOUT,
    BurstServer,
    Script,
    check_answers,
    check_sessions,
    child_env,
    drive,
    load_flows,
    script_of,
    start_serve,
    warm_up,
)
from bench.driver import PlanError, SkipDocuments, default_scenarios, plan_conversation
from engine.conversation import Address, Inbound, InboundKind, Session, Status
from engine.model import FlowSet
from engine.privacy import KEY_SIZE, Sealer, SessionKeys
from engine.runtime import Engine
from engine.stores import SQLiteStore

MIN_ANSWERS = 3  # as bench.memory: a session mid-form holds three answers
STORED_FIRST = 10_000_000  # chat ids of the stored (inactive) people start here
SETTLE_SECONDS = 0.5  # after the last answer, before reading the resident set
WARM_FIRST = 20_000_000  # chat ids of the warm-up people start here


def status_kib(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM, RssAnon... of a process, in KiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name.startswith(("Vm", "Rss")) and rest.strip().endswith("kB"):
            values[name] = int(rest.split()[0])
    return values


_BASELINE = """
import json, resource, sys
def mb():
    pages = int(open("/proc/self/statm").read().split()[1])
    return round(pages * resource.getpagesize() / 2**20, 1)
out = {"interpreter_mb": mb()}
import adapters.cli, adapters.serve.run, adapters.telegram.channel, engine.documents
out["imports_mb"] = mb()
from engine.loader import load_folder
from engine.runtime import Engine
flows, report = load_folder(sys.argv[1])
engine = Engine(flows)
out["flows_and_engine_mb"] = mb()
print(json.dumps(out))
"""


def baseline(flows_dir: Path = FLOWS) -> dict[str, float]:
    """Where a bot's resident set comes from before it serves anyone: a fresh interpreter,
    after importing what `hotline serve` imports, after loading the flows and building the
    engine (cumulative MB)."""
    out = subprocess.run(
        [sys.executable, "-c", _BASELINE, str(flows_dir)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env=child_env({}),
        timeout=120,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def mid_flow_scripts(flows: FlowSet) -> list[Script]:
    """Per form of the mix (entered from the menu, no invalid answers): the events up to
    its first question with three answers saved. Planned with the real clock, as the bot
    runs."""
    engine = Engine(flows, documents=SkipDocuments())
    scripts = []
    for scenario in default_scenarios(flows):
        if scenario.entry != "menu":
            continue
        try:
            plan = plan_conversation(engine, replace(scenario, invalid=0))
        except PlanError:
            continue
        cut = plan.cut_with_answers(MIN_ANSWERS)
        if cut is not None:
            scripts.append(script_of(engine, plan, cut))
    if not scripts:
        raise PlanError("no form of the flows reaches three answers")
    return scripts


def template_sessions(flows: FlowSet, keys: SessionKeys, scripts: list[Script]) -> list[Session]:
    """One mid-flow session per script, made by the engine as the bot would make it."""
    engine = Engine(flows, keys=keys, documents=SkipDocuments())
    sessions = []
    for index, script in enumerate(scripts):
        address = Address("telegram", str(STORED_FIRST - 1 - index))
        session = None
        for message in script.messages:
            if message.kind is InboundKind.PRESS:
                event = Inbound.press(address, message.value, script.language)
            else:
                event = Inbound.typed(address, message.value, script.language)
            session = engine.handle(session, event).session
        assert session is not None and session.status is Status.ASKING
        sessions.append(session)
    return sessions


def fill_store(
    path: Path, flows: FlowSet, keys: tuple[bytes, bytes], scripts: list[Script], count: int
) -> float:
    """`count` sessions of other people, mid-form, in a new store at `path`: copies of the
    engine's own sessions under each person's key (sealing each is the store's work, as in
    production). Returns the seconds it took."""
    started = time.perf_counter()
    session_keys = SessionKeys(keys[1])
    templates = template_sessions(flows, session_keys, scripts)
    store = SQLiteStore(path, sealer=Sealer([keys[0]]), identity=session_keys.fingerprint())
    try:
        for n in range(count):
            session = templates[n % len(templates)].copy()
            session.key = session_keys.key(Address("telegram", str(STORED_FIRST + n)))
            store.save(session)
    finally:
        store.close()
    return time.perf_counter() - started


async def measure(
    stored: int,
    active: int,
    flows: FlowSet,
    scripts: list[Script],
    client: str = "aiohttp",
    warm: int = 0,
) -> dict[str, Any]:
    """One bot: `stored - active - warm` sessions put in first; `warm` people brought
    mid-flow before the baseline (so that the allocator's pools, the connection pool and
    the caches are as they are in a bot that has been serving a while); then `active`
    people brought mid-flow."""
    keys = (os.urandom(KEY_SIZE), os.urandom(KEY_SIZE))
    people = [(FIRST_USER + n, scripts[n % len(scripts)]) for n in range(active)]
    warm_people = [(WARM_FIRST + n, scripts[n % len(scripts)]) for n in range(warm)]
    background = max(stored - active - warm, 0)
    with tempfile.TemporaryDirectory(prefix="hotline-servemem-") as tmp:
        folder = Path(tmp)
        store_path = folder / "sessions.sqlite3"
        fill_seconds = fill_store(store_path, flows, keys, scripts, background)
        async with BurstServer(check_updates=False) as server:
            bot = await start_serve(
                server,
                folder,
                mode="polling",
                client=client,
                store_path=store_path,
                keys=keys,
            )
            try:
                await warm_up(server, bot)
                if warm_people:
                    await drive(server, bot, warm_people, START_TIMEOUT * 5)
                await asyncio.sleep(SETTLE_SECONDS)
                idle = status_kib(bot.pid)
                figures, cpu = await drive(server, bot, people, START_TIMEOUT * 5)
                await asyncio.sleep(SETTLE_SECONDS)
                after = status_kib(bot.pid)
            finally:
                exit_code = await bot.stop()
            answers = check_answers(server, people)
        wrong = check_sessions(bot, people)
        store = SQLiteStore(
            store_path,
            sealer=Sealer([keys[0]]),
            identity=SessionKeys(keys[1]).fingerprint(),
        )
        try:
            sessions = store.count()
        finally:
            store.close()
        file_bytes = sum(
            p.stat().st_size for p in folder.iterdir() if p.name.startswith("sessions.sqlite3")
        )
    growth = (after["VmRSS"] - idle["VmRSS"]) * 1024
    return {
        "stored_sessions": sessions,
        "background_sessions": background,
        "warm_up_people": warm,
        "active": active,
        "http_client": client,
        "rss_idle_mb": round(idle["VmRSS"] / 1024, 1),
        "rss_after_mb": round(after["VmRSS"] / 1024, 1),
        "rss_peak_mb": round(after["VmHWM"] / 1024, 1),
        "rss_anon_after_mb": round(after.get("RssAnon", 0) / 1024, 1),
        "active_growth_bytes": growth,
        "bytes_per_active": round(growth / active) if active else None,
        "peak_growth_bytes_per_active": round((after["VmHWM"] - idle["VmRSS"]) * 1024 / active)
        if active
        else None,
        "messages": figures.sent,
        "messages_per_person": round(figures.sent / active, 1) if active else 0,
        "bot_cpu_seconds": round(cpu["bot"], 3),
        "store_file_mb": round(file_bytes / 2**20, 1),
        "fill_seconds": round(fill_seconds, 1),
        "wrong_sessions": wrong,
        "bot_exit_code": exit_code,
        **answers,
    }


async def _measure_both(stored: int, active: int, client: str) -> dict[str, dict[str, Any]]:
    flows = load_flows()
    scripts = mid_flow_scripts(flows)
    warm = max(active // 5, 20)
    _log(f"empty store, {active:,} active...")
    empty = await measure(active + warm, active, flows, scripts, client, warm)
    _log(f"  idle {empty['rss_idle_mb']} MB, after {empty['rss_after_mb']} MB")
    _log(f"{stored:,} stored, {active:,} active...")
    full = await measure(stored, active, flows, scripts, client, warm)
    _log(f"  idle {full['rss_idle_mb']} MB, after {full['rss_after_mb']} MB")
    return {"empty": empty, "stored": full, "baseline": baseline()}


def rows(figures: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The figures as rows; a run in which someone was answered wrongly fails its row."""
    empty, full = figures["empty"], figures["stored"]
    ok = all(
        f["wrong_sessions"] == 0
        and f["people_with_wrong_message_count"] == 0
        and f["unexpected_messages"] == 0
        for f in (empty, full)
    )
    stored, active = full["stored_sessions"], full["active"]
    details = {
        "stored_run": full,
        "empty_store_run": empty,
        "answered_correctly": ok,
        "before_serving_mb": figures["baseline"],
    }
    stored_effect = (full["rss_idle_mb"] - empty["rss_idle_mb"]) * 2**20
    result = [
        {
            "id": "serving_rss_mb",
            "name": (
                f"RSS of hotline serve, {stored:,} sessions stored, {active:,} active mid-flow"
            ),
            "value": full["rss_after_mb"],
            "unit": "MB",
            "target": None,
            "comparison": "<=",
            "details": details,
            "cpu_value": None,
        },
        {
            "id": "serving_bytes_per_active",
            "name": "memory per active conversation in hotline serve (RSS growth / active)",
            "value": full["bytes_per_active"],
            "unit": "B",
            "target": None,
            "comparison": "<=",
            "details": {
                "stored_run": full["bytes_per_active"],
                "empty_store_run": empty["bytes_per_active"],
                "peak_per_active": full["peak_growth_bytes_per_active"],
            },
            "cpu_value": None,
        },
        {
            "id": "serving_stored_effect_mb",
            "name": f"RSS cost of {full['background_sessions']:,} more stored sessions (idle)",
            "value": round(stored_effect / 2**20, 1),
            "unit": "MB",
            "target": None,
            "comparison": "<=",
            "details": {
                "rss_idle_mb_empty_store": empty["rss_idle_mb"],
                "rss_idle_mb_stored": full["rss_idle_mb"],
                "store_file_mb": full["store_file_mb"],
            },
            "cpu_value": None,
        },
    ]
    if not ok:
        # Memory of a bot that answered wrongly means nothing: the row fails.
        result[0]["name"] += " - WRONG ANSWERS"
        result[0]["target"] = 0.0
    return result


def _log(message: str) -> None:
    print(f"[serving-memory] {message}", file=sys.stderr, flush=True)


def run(quick: bool) -> list[dict[str, Any]]:
    """The rows for `bench.run` (each: keyword arguments of `bench.run.Result`)."""
    stored, active = (10_000, 100) if quick else (100_000, 1_000)
    return rows(asyncio.run(_measure_both(stored, active, "aiohttp")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serving_memory", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10,000 stored, 100 active")
    parser.add_argument("--stored", type=int)
    parser.add_argument("--active", type=int)
    parser.add_argument("--client", choices=("aiohttp", "httpx"), default="aiohttp")
    parser.add_argument("--json", metavar="FILE", help="also write the JSON document here")
    args = parser.parse_args(argv)
    stored = args.stored or (10_000 if args.quick else 100_000)
    active = args.active or (100 if args.quick else 1_000)
    result = rows(asyncio.run(_measure_both(stored, active, args.client)))
    from bench.run import print_report  # bench.run imports this module: not at the top

    print_report("hotline serving memory", result, args.quick, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
