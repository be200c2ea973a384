"""Memory per session: N people mid-conversation, held in a MemoryStore.

Run in a fresh interpreter (`python -m bench.memory --sessions N --method M`, as
`bench.run` does) so that nothing else lives in the heap. Each simulated person is driven
through the engine (store.load + engine.handle + store.save, as in production) along a plan
of the traffic mix, cut mid-form: the session waits for an answer, with three answers saved
(a name, a date, an address...) and a /back history. The engine, the flows and a warm-up of
1,000 throwaway sessions exist before the baseline, so the delta is what the sessions
themselves cost, the store's dict included.

Methods:
- `tracemalloc`: bytes still allocated after the N sessions are made (exact, Python heap);
- `rss`: growth of the resident set (what the OS sees, allocator overhead included).
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

from bench.driver import (
    Plan,
    SkipDocuments,
    default_scenarios,
    make_engine,
    plan_conversation,
    user_events,
)
from engine.conversation import Status
from engine.loader import load_folder
from engine.runtime import Engine
from engine.stores import MemoryStore

WARM_UP_SESSIONS = 1_000
MIN_ANSWERS = 3


def rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def mid_flow_plans(engine: Engine, answers: int = MIN_ANSWERS) -> list[tuple[Plan, int]]:
    """(plan, events to send) per conversation of the mix that fills in a form: cut at its
    first question with `answers` answers saved. Typed questions and invalid answers are
    left out: they change how a session got there, not what it holds, and would only make
    building 100,000 sessions slower. Without any form in the flows, every plan is cut at
    its midpoint instead."""
    planner = make_engine(engine.flows, SkipDocuments())  # the same plans, made faster
    plans = []
    for scenario in default_scenarios(engine.flows):
        if scenario.entry == "question":
            continue
        plans.append(plan_conversation(planner, replace(scenario, invalid=0)))
    forms = [(plan, plan.cut_with_answers(answers)) for plan in plans]
    result = [(plan, cut) for plan, cut in forms if cut is not None]
    return result or [(plan, plan.midpoint()) for plan in plans]


def drive(engine: Engine, store: MemoryStore, plans: list[tuple[Plan, int]], users: range) -> int:
    """Bring each user of `users` mid-flow; the number of events handled."""
    handle, load, save = engine.handle, store.load, store.save
    events = 0
    for user in users:
        plan, cut = plans[user % len(plans)]
        for event in user_events(plan, user, cut):
            key = f"{event.address.channel}:{event.address.chat}"
            session = handle(load(key), event).session
            assert session is not None
            save(session)
            events += 1
    return events


def measure(sessions: int, method: str, flows_dir: str) -> dict[str, object]:
    """In this (fresh) interpreter: load the flows, build the engine, measure."""
    flows, report = load_folder(flows_dir)
    if flows is None:
        raise SystemExit(f"{flows_dir}: the flows do not load: {report.errors[:3]}")
    return measure_with(make_engine(flows), sessions, method)


def measure_with(engine: Engine, sessions: int, method: str) -> dict[str, object]:
    """Bytes per session for `sessions` people mid-form, by `method` ('rss' is only
    meaningful in a fresh interpreter; `tracemalloc` counts only what is allocated after
    it starts, so it also works inside a process that has done other things)."""
    plans = mid_flow_plans(engine)
    warm_up = min(WARM_UP_SESSIONS, sessions)
    drive(engine, MemoryStore(), plans, range(10**8, 10**8 + warm_up))
    store = MemoryStore()
    gc.collect()
    if method == "tracemalloc":
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
    else:
        before = rss_bytes()
    cpu_started = time.process_time()
    started = time.perf_counter()
    events = drive(engine, store, plans, range(sessions))
    elapsed = time.perf_counter() - started
    elapsed_cpu = time.process_time() - cpu_started
    gc.collect()
    after = tracemalloc.get_traced_memory()[0] if method == "tracemalloc" else rss_bytes()
    if method == "tracemalloc":
        tracemalloc.stop()
    # What the sessions hold, and that each one is where its plan says.
    answers = history = 0
    for user in range(sessions):
        plan, cut = plans[user % len(plans)]
        session = store.load(f"bench:u{user}")
        assert session is not None and session.status is Status.ASKING
        assert (session.status.value, session.flow, session.step) == plan.states[cut - 1]
        answers += len(session.answers)
        history += len(session.history)
    return {
        "sessions": sessions,
        "method": method,
        "bytes": after - before,
        "bytes_per_session": (after - before) / sessions,
        "events": events,
        "build_seconds": round(elapsed, 3),
        "build_cpu_seconds": round(elapsed_cpu, 3),
        "avg_answers": round(answers / sessions, 2),
        "avg_history": round(history / sessions, 2),
        "pid": os.getpid(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--method", choices=("tracemalloc", "rss"), default="tracemalloc")
    parser.add_argument("--flows", default=str(Path(__file__).resolve().parents[1] / "flows"))
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.sessions, args.method, args.flows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
