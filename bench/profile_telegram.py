"""cProfile of the Telegram path (bench/telegram_path.py): where an update's time goes.

    python -m bench.run --only profile          # writes bench/profiles/telegram-path.txt
    python -m bench.profile_telegram [--users 100] [--store sqlite|memory] [--out FILE]

One warm-up run, then one profiled run of `users` people through the script, the hotline
contender with the durable SQLite store (as `hotline serve` runs). Only the timed part of
the driver is profiled (handing updates over until they were handled), not the making of
the updates. The report has three tables:

1. own time by component: every function's own time is charged to the code it belongs to
   (PTB's object model, PTB's Bot methods and request layer, the rate limiter, our adapter,
   the hub, the engine, the store, asyncio, the stub that plays Telegram); C functions and
   the standard library (`sqlite3.execute`, `json.dumps`, `dataclasses.replace`...) are
   charged to the Python code that called them, so SQLite's own work shows up under the
   store and PTB's JSON encoding under PTB;
2. the largest inclusive costs among the path's landmarks (Update.de_json, the engine's
   handle, the store's load and commit, each Bot API call...), per update;
3. the top functions by own time.
cProfile adds a fixed cost to every Python call, so code made of many small calls (PTB's
`TelegramObject.__setattr__`, called ~570 times per update) weighs more here than in the
unprofiled run: compare shares, and read absolute figures from `python -m bench.run`.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime as dt
import os
import platform
import pstats
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench import telegram_path as tp

OUT = Path(__file__).resolve().parent / "profiles" / "telegram-path.txt"

# (path fragment, component), first match wins; the fragments are matched against the
# file name cProfile records for each function.
COMPONENTS: tuple[tuple[str, str], ...] = (
    ("/bench/", "stub: Telegram's side (bench/telegram_path.py)"),
    ("/telegram/ext/_aioratelimiter", "rate limiter (PTB AIORateLimiter + ours)"),
    ("/adapters/telegram/ratelimit", "rate limiter (PTB AIORateLimiter + ours)"),
    ("/aiolimiter/", "rate limiter (PTB AIORateLimiter + ours)"),
    ("/telegram/_bot.py", "PTB Bot methods (building each call)"),
    ("/telegram/ext/_extbot.py", "PTB Bot methods (building each call)"),
    ("/telegram/request/", "PTB request layer (parameters, JSON encoding)"),
    ("/telegram/ext/", "PTB ext (Application, handlers)"),
    ("/telegram/", "PTB objects (de_json, __init__, __setattr__, to_dict)"),
    ("/adapters/telegram/", "hotline Telegram adapter (channel, convert, queues)"),
    ("/adapters/serve/", "hotline hub (locks, journal calls, outbox)"),
    ("/engine/stores/", "session store (SQLite, sealing, journal)"),
    ("/engine/privacy", "session store (SQLite, sealing, journal)"),
    ("/cryptography/", "session store (SQLite, sealing, journal)"),
    ("/sqlite3/", "session store (SQLite, sealing, journal)"),
    ("/transitions/", "engine (runtime, transitions, routing)"),
    ("/engine/", "engine (runtime, transitions, routing)"),
    ("/asyncio/", "asyncio (tasks, futures, locks, the loop)"),
)
OTHER = "other"
# The event loop waiting in epoll (for a worker thread, the disk...): wall time, not work.
WAITING = "event loop idle (epoll: worker threads, I/O), not CPU"

# Landmarks for the inclusive table: (file fragment, function name, label).
LANDMARKS: tuple[tuple[str, str, str], ...] = (
    ("/adapters/telegram/channel.py", "submit", "TelegramChannel.submit (parse + queue)"),
    ("/telegram/_update.py", "de_json", "  Update.de_json (inbound update)"),
    ("/adapters/telegram/convert.py", "read_update", "  convert.read_update"),
    ("/adapters/serve/hub.py", "deliver", "Hub.deliver (engine, store, sends)"),
    ("/engine/runtime.py", "handle", "  Engine.handle"),
    ("/engine/stores/sqlite.py", "load", "  journal: load the session"),
    ("/engine/stores/sqlite.py", "seen", "  journal: event seen before?"),
    ("/engine/stores/sqlite.py", "commit", "  journal: commit (session, event id, outbox)"),
    ("/engine/stores/sqlite.py", "pending", "  journal: outbox read back"),
    ("/engine/stores/sqlite.py", "sent", "  journal: outbox row deleted once sent"),
    ("/adapters/telegram/channel.py", "perform", "  TelegramChannel.perform (sends)"),
    ("/telegram/_bot.py", "send_message", "    Bot.send_message"),
    ("/telegram/_bot.py", "send_document", "    Bot.send_document"),
    ("/telegram/_message.py", "de_json", "Message.de_json (every message, in and out)"),
    ("/telegram/_bot.py", "answer_callback_query", "Bot.answer_callback_query"),
    ("/telegram/_bot.py", "edit_message_reply_markup", "Bot.edit_message_reply_markup"),
    ("/telegram/_inline/inlinekeyboardmarkup.py", "to_dict", "InlineKeyboardMarkup.to_dict"),
    ("/adapters/telegram/convert.py", "keyboard", "convert.keyboard (PTB objects)"),
    ("/telegram/ext/_aioratelimiter.py", "process_request", "AIORateLimiter.process_request"),
    ("/adapters/telegram/ordering.py", "submit", "ChatQueues.submit"),
)

Func = tuple[str, int, str]


def component(filename: str) -> str:
    for fragment, name in COMPONENTS:
        if fragment in filename:
            return name
    return OTHER


def _helper(filename: str) -> bool:
    """C functions and the standard library but asyncio: their time is their callers'."""
    if filename == "~" or filename.startswith("<"):
        return True
    return (
        "/lib/python3" in filename
        and "site-packages" not in filename
        and ("/asyncio/" not in filename)
    )


def by_component(stats: pstats.Stats) -> dict[str, float]:
    """Own time per component. A helper's own time (a C function like `sqlite3.execute`,
    or stdlib code like `json.dumps`) is shared among its callers in proportion to the
    time each spent calling it, up the chain to the first caller that is not a helper."""
    raw: dict[Func, Any] = stats.stats  # type: ignore[attr-defined]
    owners: dict[Func, dict[str, float]] = {}

    def owner(func: Func, depth: int = 0) -> dict[str, float]:
        if func in owners:
            return owners[func]
        if func[0] == "~" and "select" in func[2] and "epoll" in func[2]:
            result = {WAITING: 1.0}
        elif not _helper(func[0]):
            result = {component(func[0]): 1.0}
        else:
            callers = raw[func][4] if func in raw else {}
            shares = {caller: value[2] for caller, value in callers.items() if caller != func}
            whole = sum(shares.values())
            if depth > 20 or not whole:
                result = {OTHER: 1.0}
            else:
                result = defaultdict(float)
                for caller, share in shares.items():
                    for name, part in owner(caller, depth + 1).items():
                        result[name] += part * share / whole
                result = dict(result)
        owners[func] = result
        return result

    totals: dict[str, float] = defaultdict(float)
    for func, (_cc, _nc, tottime, _ct, _callers) in raw.items():
        for name, part in owner(func).items():
            totals[name] += tottime * part
    return dict(totals)


def landmarks(stats: pstats.Stats) -> list[tuple[str, int, float]]:
    """(label, calls, inclusive seconds) of each landmark function found."""
    raw: dict[Func, Any] = stats.stats  # type: ignore[attr-defined]
    found = []
    for fragment, name, label in LANDMARKS:
        calls, cumulative = 0, 0.0
        for (filename, _line, function), (_cc, nc, _tt, ct, _callers) in raw.items():
            if function == name and fragment in filename:
                calls += nc
                cumulative += ct
        if calls:
            found.append((label, calls, cumulative))
    return found


async def _collect(users: int, store: str) -> tuple[pstats.Stats, int, float]:
    # cProfile's clock is wall time (perf_counter): process_time costs ~15x more per call
    # and would distort the small calls most. Profile on an idle machine.
    flows = tp.load_flows(tp.ROOT / "flows")
    profiler = cProfile.Profile()
    with tempfile.TemporaryDirectory(prefix="hotline-profile-telegram-") as tmp:
        folder = Path(tmp) if store == "sqlite" else None
        api = tp.BotApi()
        await tp.drive(tp.new_hotline("warm", api, flows, folder), api, tp.user_ids(users))
        api = tp.BotApi()
        contender = tp.new_hotline("profiled", api, flows, folder)
        run = await tp.drive(contender, api, tp.user_ids(users), profiler=profiler)
    return pstats.Stats(profiler), run.updates, run.seconds


def working(components: dict[str, float]) -> dict[str, float]:
    """The components that are work (the loop's idle waiting left out)."""
    return {name: value for name, value in components.items() if name != WAITING}


def report(stats: pstats.Stats, updates: int, seconds: float, store: str, top: int) -> str:
    components = by_component(stats)
    total = sum(working(components).values())
    lines = [
        "Telegram path under cProfile (python -m bench.profile_telegram)",
        f"{dt.date.today().isoformat()}, Python {platform.python_version()}, "
        f"store: {store}, {updates:,} updates ({len(tp.SCRIPT)} per person), "
        f"{seconds:.2f} s profiled, {total / updates * 1e6:,.0f} µs of work per update under "
        "cProfile, "
        f"load average {os.getloadavg()[0]:.1f}",
        "",
        "1. Own time by component (C and stdlib functions charged to their callers)",
        "",
        f"{'component':<58} {'µs/update':>10} {'share':>7}",
    ]
    for name, value in sorted(working(components).items(), key=lambda kv: -kv[1]):
        lines.append(f"{name:<58} {value / updates * 1e6:>10.1f} {value / total:>7.1%}")
    idle = components.get(WAITING, 0.0)
    lines.append(f"{WAITING:<58} {idle / updates * 1e6:>10.1f} {'-':>7}")
    lines += [
        "",
        "2. Inclusive time of the path's landmarks",
        "",
        f"{'function':<58} {'calls/update':>12} {'µs/update':>10} {'share':>7}",
    ]
    for label, calls, cumulative in landmarks(stats):
        lines.append(
            f"{label:<58} {calls / updates:>12.2f} {cumulative / updates * 1e6:>10.1f} "
            f"{cumulative / total:>7.1%}"
        )
    lines += ["", f"3. Top {top} functions by own time", ""]
    lines.append(f"{'µs/update':>10} {'calls/update':>12}  function")
    raw: dict[Func, Any] = stats.stats  # type: ignore[attr-defined]
    ranked = sorted(raw.items(), key=lambda kv: -kv[1][2])[:top]
    for (filename, line, function), (_cc, nc, tottime, _ct, _callers) in ranked:
        where = _short(filename)
        lines.append(
            f"{tottime / updates * 1e6:>10.1f} {nc / updates:>12.2f}  {where}:{line} {function}"
        )
    return "\n".join(lines) + "\n"


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/lib/python3", "/work/main/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename.rsplit("/", 3)[-1] if "/" in filename else filename


def collect(users: int, store: str) -> tuple[pstats.Stats, int, float]:
    """(stats, updates, profiled seconds) of one profiled run after a warm-up run."""
    return asyncio.run(_collect(users, store))


def run(users: int = 100, store: str = "sqlite", out: Path | None = OUT, top: int = 30) -> str:
    stats, updates, seconds = collect(users, store)
    text = report(stats, updates, seconds, store, top)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_telegram", description=__doc__)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--store", choices=("sqlite", "memory"), default="sqlite")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--out", default=str(OUT), help="where to write the report ('-': nowhere)")
    args = parser.parse_args(argv)
    out = None if args.out == "-" else Path(args.out)
    print(run(args.users, args.store, out, args.top), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
