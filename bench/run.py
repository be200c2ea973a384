"""hotline benchmarks: `python -m bench.run [--quick] [--json FILE]` from the repository root.

Figures (bench/README.md explains each):
1. steps/s through whole conversations of the example flows, MemoryStore and SQLiteStore
   (a step = store.load + engine.handle + store.save of one inbound event);
2. bytes per session with 10,000 and 100,000 sessions alive in a MemoryStore;
3. seconds to load and check a generated folder of 2,000 steps;
4.-5. updates/s through the Telegram and Matrix adapters with the network stubbed, beside
   PTB and nio baselines on the same updates (bench/telegram_path.py, bench/matrix_path.py);
6. a cProfile of the Telegram path (bench/profile_telegram.py, bench/profiles/).
`info` rows without a target split the costs (the engine without documents, one document,
SQLite with fsync, Engine() on the big folder). Prints a table (value, target, PASS/FAIL)
and a JSON document with the environment.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import memory
from bench.driver import (
    CHANNEL,
    Plan,
    PlanError,
    RecordingRenderer,
    Scenario,
    SkipDocuments,
    build_work,
    default_scenarios,
    make_engine,
    plan_conversation,
    replay,
    replay_checked,
    user_key,
    verify,
)
from bench.genflows import folder_bytes, generate
from engine.conversation import Inbound
from engine.documents import DocxRenderer
from engine.loader import load_folder
from engine.model import FlowSet
from engine.privacy import Sealer
from engine.runtime import Engine
from engine.stores import MemoryStore, SQLiteStore
from engine.stores.base import SessionStore

ROOT = Path(__file__).resolve().parents[1]
# Records are sealed as in production (AES-GCM); a throwaway key per run.
BENCH_SEALER = Sealer([os.urandom(32)])
FLOWS = ROOT / "flows"

TARGET_STEPS_MEMORY = 20_000
TARGET_STEPS_SQLITE = 5_000
TARGET_BYTES_PER_SESSION = 2048
TARGET_LOAD_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Settings:
    rep_seconds: float  # each timed repetition replays about this long (users are sized to it)
    max_users: int  # ...but never more simulated users than this
    background: int  # sessions of other people put in every store before timing
    reps_memory: int
    kind_mixes: int  # whole mixes replayed, one timer per event, for the per-kind costs
    reps_sqlite: int
    reps_document: int
    sqlite_full: bool  # also the informational synchronous=FULL run
    memory_sizes: tuple[tuple[int, str], ...]  # (sessions, method), each in a fresh interpreter
    memory_in_process: int  # or else: tracemalloc of this many sessions in this process
    gen_flows: int
    gen_steps: int
    reps_load: int
    cold_load: bool  # also time a fresh interpreter's import + load (informational)
    engine_build: bool  # also time Engine() on the generated folder and drive one flow


FULL = Settings(
    rep_seconds=0.8,
    max_users=2_000,
    background=2_000,
    reps_memory=5,
    kind_mixes=3,
    reps_sqlite=3,
    reps_document=5,
    sqlite_full=True,
    memory_sizes=((100_000, "rss"), (10_000, "tracemalloc")),
    memory_in_process=0,
    gen_flows=20,
    gen_steps=100,
    reps_load=5,
    cold_load=True,
    engine_build=True,
)
QUICK = Settings(
    rep_seconds=0.25,
    max_users=300,
    background=300,
    reps_memory=2,
    kind_mixes=1,
    reps_sqlite=2,
    reps_document=2,
    sqlite_full=False,
    memory_sizes=(),
    memory_in_process=1_000,
    gen_flows=20,
    gen_steps=100,
    reps_load=2,
    cold_load=False,
    engine_build=False,
)


@dataclass(slots=True)
class Result:
    id: str
    name: str
    value: float
    unit: str
    target: float | None = None
    comparison: str = ">="  # how value must compare with target: ">=", "<=" or "<"
    details: dict[str, Any] = field(default_factory=dict)
    # The same figure from CPU time (time.process_time) instead of wall-clock time: what an
    # idle machine would show when other processes share the CPUs. Informational.
    cpu_value: float | None = None

    @property
    def passed(self) -> bool | None:
        if self.target is None:
            return None
        if self.comparison == ">=":
            return self.value >= self.target
        if self.comparison == "<=":
            return self.value <= self.target
        return self.value < self.target

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: "info"}[self.passed]

    def target_text(self) -> str:
        if self.target is None:
            return "-"
        return f"{self.comparison} {_number(self.target, self.unit)}"

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "value": round(self.value, 4),
            "unit": self.unit,
            "cpu_time_value": None if self.cpu_value is None else round(self.cpu_value, 4),
            "target": self.target,
            "comparison": None if self.target is None else self.comparison,
            "pass": self.passed,
            "details": self.details,
        }


def _number(value: float, unit: str) -> str:
    if unit == "updates/s":  # the cost of one update beside the rate: both are asked for
        return f"{value:,.0f} updates/s ({1e6 / value:,.0f} µs)" if value else "0 updates/s"
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "s":
        return f"{value:.3f} s"
    if unit == "B":
        return f"{value:,.0f} B"
    if unit == "ms":
        return f"{value:,.1f} ms"
    return f"{value:,.0f} {unit}"


_STARTED = time.perf_counter()


def log(message: str) -> None:
    """Progress on stderr, with the seconds since the start."""
    print(f"[{time.perf_counter() - _STARTED:5.1f}s] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- environment


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(quick: bool) -> dict[str, Any]:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "cpu": cpu_model(),
        "cpus_available": cores,
        "platform": platform.platform(),
        "sqlite": __import__("sqlite3").sqlite_version,
        "quick": quick,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


# --------------------------------------------------------------------------- 1. steps/s


def plan_mix(engine: Engine) -> tuple[list[Plan], list[str]]:
    """Plans of the default traffic mix; scenarios the planner cannot drive are reported."""
    plans: list[Plan] = []
    skipped: list[str] = []
    for scenario in default_scenarios(engine.flows):
        try:
            plans.append(plan_conversation(engine, scenario))
        except PlanError as err:
            if scenario.entry != "question":
                raise
            skipped.append(str(err))  # the router did not lead there: not a bench failure
    if not plans:
        raise PlanError("no conversation could be planned")
    return plans, skipped


def mix_summary(plans: list[Plan], users: int) -> dict[str, Any]:
    kinds: Counter[str] = Counter()
    for u in range(users):
        kinds.update(plans[u % len(plans)].categories)
    total = sum(kinds.values())
    return {
        "conversations": [
            {
                "scenario": p.scenario.name,
                "events": len(p.events),
                "invalid_answers": p.invalid_answers,
                "backs": p.backs,
                "steps_visited": len(p.steps_visited),
            }
            for p in plans
        ],
        "event_kinds": {k: round(v / total, 3) for k, v in kinds.most_common()},
        "events_per_conversation": round(total / users, 1),
    }


def per_kind_costs(
    engine: Engine, plans: list[Plan], users: int, store: SessionStore
) -> dict[str, float]:
    """Microseconds per event by kind (load + handle + save), one pass, timer per event."""
    categories: list[str] = []
    per_user = [plans[u % len(plans)].categories for u in range(users)]
    longest = max(len(c) for c in per_user)
    for round_ in range(longest):
        for cats in per_user:
            if round_ < len(cats):
                categories.append(cats[round_])
    work = build_work(plans, users)
    totals: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    clock = time.perf_counter
    load, save, handle = store.load, store.save, engine.handle
    for (key, event), kind in zip(work, categories, strict=True):
        started = clock()
        session = handle(load(key), event).session
        if session is not None:
            save(session)
        totals[kind] += clock() - started
        counts[kind] += 1
    return {k: round(totals[k] / counts[k] * 1e6, 1) for k in sorted(counts)}


def timed_replays(
    engine: Engine,
    work: list[tuple[str, Inbound]],
    new_store: Callable[[int], SessionStore],
    reps: int,
) -> tuple[list[float], list[float]]:
    """Wall-clock seconds (perf_counter) of each repetition, and its CPU seconds: on a
    shared machine, wall much above CPU means other processes took the core."""
    times, cpu = [], []
    for rep in range(reps):
        store = new_store(rep)
        gc.collect()
        cpu_started = time.process_time()
        started = time.perf_counter()
        replay(engine, store, work)
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
        store.close()
    return times, cpu


def measure(
    engine: Engine,
    plans: list[Plan],
    new_store: Callable[[int], SessionStore],
    settings: Settings,
    reps: int,
) -> tuple[float, dict[str, Any]]:
    """Best-of-`reps` steps/s of the mix replayed through fresh stores, and the details.

    A first, checked replay with one user per conversation of the mix warms up and proves
    the replay faithful (every user hears what the planner heard, and ends where it did); its
    speed sizes the timed repetitions to `settings.rep_seconds` each, in whole mixes. Every
    store first receives `settings.background` sessions of other people (untimed), so that
    a slow mix does not run against an almost empty table."""
    mix = len(plans)
    calibration = build_work(plans, mix, first_user=10**6)
    store = new_store(-1)
    started = time.perf_counter()
    counts = replay_checked(engine, store, calibration)
    rate = len(calibration) / (time.perf_counter() - started)
    for u, plan in enumerate(plans):
        if counts[user_key(10**6 + u)] != plan.action_counts:
            raise AssertionError(f"{plan.scenario.name}: the replay heard something else")
    verify(store, plans, mix, first_user=10**6)
    finished = [store.load(user_key(10**6 + u)) for u in range(mix)]
    store.close()
    background = []
    for i in range(settings.background):
        session = finished[i % mix]
        if session is not None:
            clone = session.copy()
            clone.key = f"{CHANNEL}:other{i}"
            background.append(clone)

    def filled(rep: int) -> SessionStore:
        fresh = new_store(rep)
        for session in background:
            fresh.save(session)
        return fresh

    per_user = len(calibration) / mix
    users = int(rate * settings.rep_seconds / per_user) // mix * mix
    users = max(mix, min(users, settings.max_users // mix * mix))
    work = build_work(plans, users)
    store = filled(-2)
    replay(engine, store, work)  # the same users once more: warm, and checked at the end
    verify(store, plans, users)
    store.close()
    times, cpu = timed_replays(engine, work, filled, reps)
    best = min(times)
    return len(work) / best, {
        "users": users,
        "other_sessions_in_store": len(background),
        "steps_per_rep": len(work),
        "reps": len(times),
        "seconds": [round(t, 4) for t in times],
        "cpu_seconds": [round(t, 4) for t in cpu],
        "median_steps_per_s": round(len(work) / statistics.median(times)),
        # The same by CPU time: what the figure would be on an idle machine.
        "cpu_steps_per_s": round(len(work) / min(cpu)),
        "us_per_step": round(best / len(work) * 1e6, 2),
    }


@functools.cache
def example_flows(flows_dir: Path) -> FlowSet:
    flows, report = load_folder(flows_dir)
    if flows is None:
        raise SystemExit(f"{flows_dir} does not load: " + "; ".join(map(str, report.errors[:5])))
    return flows


def bench_steps(settings: Settings, flows_dir: Path) -> list[Result]:
    flows = example_flows(flows_dir)
    log(f"  {flows_dir} loaded")
    recorder = RecordingRenderer(DocxRenderer(flows.folder))
    plans, skipped = plan_mix(make_engine(flows, recorder))
    log(f"  {len(plans)} conversations planned")
    engine = make_engine(flows)  # as production builds it: documents rendered
    kind_users = settings.kind_mixes * len(plans)
    results = []

    rate, details = measure(engine, plans, lambda _: MemoryStore(), settings, settings.reps_memory)
    details["us_per_step_by_kind"] = per_kind_costs(engine, plans, kind_users, MemoryStore())
    details["skipped_scenarios"] = skipped
    details.update(mix_summary(plans, details["users"]))
    results.append(
        Result(
            "steps_memory",
            "steps/s, whole conversations, MemoryStore",
            rate,
            "steps/s",
            TARGET_STEPS_MEMORY,
            details=details,
            cpu_value=details["cpu_steps_per_s"],
        )
    )
    log(f"  MemoryStore: {rate:,.0f} steps/s")

    # The same without rendering documents: the engine's own cost (informational).
    bare = make_engine(flows, SkipDocuments())
    rate, details = measure(bare, plans, lambda _: MemoryStore(), settings, settings.reps_memory)
    details["us_per_step_by_kind"] = per_kind_costs(bare, plans, kind_users, MemoryStore())
    results.append(
        Result(
            "steps_memory_no_documents",
            "steps/s, same, documents not rendered (engine only)",
            rate,
            "steps/s",
            details=details,
            cpu_value=details["cpu_steps_per_s"],
        )
    )
    log(f"  MemoryStore, documents not rendered: {rate:,.0f} steps/s")

    # One document, as the conversations above fill it in.
    if recorder.calls:
        renderer = DocxRenderer(flows.folder)
        per_template, cpu_template = {}, {}
        for (template, language), args in sorted(recorder.calls.items()):
            renderer.render(*args)
            timings = [
                _timed(lambda args=args: renderer.render(*args))
                for _ in range(settings.reps_document)
            ]
            per_template[f"{template} [{language}]"] = round(min(timings)[0] * 1000, 2)
            cpu_template[f"{template} [{language}]"] = round(min(t[1] for t in timings) * 1000, 2)
        results.append(
            Result(
                "document_render",
                "document (.docx) rendering, slowest template",
                max(per_template.values()),
                "ms",
                details={
                    "ms_by_template": per_template,
                    "cpu_ms_by_template": cpu_template,
                    "best_of": settings.reps_document,
                },
                cpu_value=max(cpu_template.values()),
            )
        )
        log(f"  one document: {per_template}")

    # SQLite, durable: WAL, one transaction per saved step, a fresh file per repetition.
    with tempfile.TemporaryDirectory(prefix="hotline-bench-") as tmp:
        runs = [
            ("normal", "NORMAL", engine, settings.reps_sqlite, TARGET_STEPS_SQLITE, ""),
            ("normal_no_documents", "NORMAL", bare, settings.reps_sqlite, None, ", no documents"),
        ]
        if settings.sqlite_full:
            runs.append(("full", "FULL", engine, 1, None, ""))
        for name, sync, which, reps, target, note in runs:

            def new_store(rep: int, sync: str = sync, name: str = name) -> SQLiteStore:
                return SQLiteStore(
                    Path(tmp) / f"{name}{rep}.db", sealer=BENCH_SEALER, synchronous=sync
                )

            rate, details = measure(which, plans, new_store, settings, reps)
            details.update(
                {
                    "journal": "wal",
                    "synchronous": sync,
                    "transactions": "one per saved step (autocommit)",
                    "file": "temporary file on " + _filesystem(tmp),
                    "documents_rendered": which is engine,
                }
            )
            results.append(
                Result(
                    f"steps_sqlite_{name}",
                    f"steps/s, whole conversations, SQLiteStore (synchronous={sync}){note}",
                    rate,
                    "steps/s",
                    target,
                    details=details,
                    cpu_value=details["cpu_steps_per_s"],
                )
            )
            log(f"  SQLiteStore {sync}{note}: {rate:,.0f} steps/s")
    return results


def _timed(call: Callable[[], object]) -> tuple[float, float]:
    """(wall, CPU) seconds of one call."""
    cpu_started = time.process_time()
    started = time.perf_counter()
    call()
    return time.perf_counter() - started, time.process_time() - cpu_started


def _filesystem(path: str) -> str:
    try:
        best = ""
        kind = "?"
        with open("/proc/mounts", encoding="utf-8") as mounts:
            for line in mounts:
                parts = line.split()
                if path.startswith(parts[1]) and len(parts[1]) >= len(best):
                    best, kind = parts[1], parts[2]
        return f"{best} ({kind})"
    except OSError:
        return "?"


# --------------------------------------------------------------------------- 2. memory


def bench_memory(settings: Settings, flows_dir: Path) -> list[Result]:
    """Each size in a fresh interpreter, two at a time (their speed does not matter); the
    quick run uses tracemalloc in this process instead."""
    if settings.memory_in_process:
        flows = example_flows(flows_dir)
        sessions = settings.memory_in_process
        data = memory.measure_with(make_engine(flows), sessions, "tracemalloc")
        log(f"  {sessions:,} sessions (tracemalloc): {data['bytes_per_session']:,.0f} B each")
        return [_memory_result(data)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    pending = list(settings.memory_sizes)
    running: list[tuple[tuple[int, str], subprocess.Popen[str]]] = []
    outputs: dict[tuple[int, str], dict[str, Any]] = {}
    try:
        while pending or running:
            while pending and len(running) < 2:
                size = pending.pop(0)
                command = [sys.executable, "-m", "bench.memory", "--sessions", str(size[0])]
                command += ["--method", size[1], "--flows", str(flows_dir)]
                process = subprocess.Popen(
                    command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
                )
                running.append((size, process))
            size, process = running.pop(0)
            out, _ = process.communicate()
            if process.returncode != 0:
                raise SystemExit(f"bench.memory {size} failed (exit {process.returncode})")
            outputs[size] = json.loads(out.strip().splitlines()[-1])
            each = outputs[size]["bytes_per_session"]
            log(f"  {size[0]:,} sessions ({size[1]}): {each:,.0f} B each")
    finally:
        for _, process in running:  # only on failure: stop the other measurements we began
            process.kill()
            process.wait()
    return [_memory_result(outputs[size]) for size in settings.memory_sizes]


def _memory_result(data: dict[str, Any]) -> Result:
    sessions, method = data["sessions"], data["method"]
    return Result(
        f"memory_{sessions}_{method}",
        f"memory per session, {sessions:,} sessions alive ({method})",
        data["bytes_per_session"],
        "B",
        TARGET_BYTES_PER_SESSION,
        "<=",
        details={k: v for k, v in data.items() if k != "pid"},
    )


# --------------------------------------------------------------------------- 3. load


def bench_load(settings: Settings) -> list[Result]:
    results = []
    with tempfile.TemporaryDirectory(prefix="hotline-bench-flows-") as tmp:
        total = generate(tmp, settings.gen_flows, settings.gen_steps)
        started = time.perf_counter()
        flows, report = load_folder(tmp)
        first = time.perf_counter() - started
        assert flows is not None and report.ok, [str(d) for d in report.errors[:10]]
        times, cpu = [], []
        for _ in range(settings.reps_load):
            gc.collect()
            cpu_started = time.process_time()
            started = time.perf_counter()
            flows, report = load_folder(tmp)
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
            assert flows is not None and not report.errors
        details = {
            "flows": settings.gen_flows,
            "steps": total,
            "yaml_bytes": folder_bytes(tmp),
            "errors": len(report.errors),
            "warnings": len(report.warnings),
            "reps": len(times),
            "seconds": [round(t, 4) for t in times],
            "cpu_seconds": [round(t, 4) for t in cpu],
            "first_call_seconds": round(first, 4),
            "fresh_interpreter_seconds": _cold_load(tmp) if settings.cold_load else None,
        }
        best = min(times)
        log(f"  load: {best:.3f} s for {total:,} steps")
        results.append(
            Result(
                "load_check_2000",
                f"load + check a generated folder of {total:,} steps",
                best,
                "s",
                TARGET_LOAD_SECONDS,
                "<",
                details=details,
                cpu_value=min(cpu),
            )
        )
        if settings.engine_build:
            # What a bot does next with a loaded folder: build the engine (state machines,
            # the router's index); then the flows must run: one person to the end of one.
            cpu_started = time.process_time()
            started = time.perf_counter()
            engine = make_engine(flows)
            build = time.perf_counter() - started
            build_cpu = time.process_time() - cpu_started
            plan = plan_conversation(engine, Scenario("gen_01", seed=3), max_events=5000)
            log(f"  engine build: {build:.3f} s")
            results.append(
                Result(
                    "engine_build_2000",
                    f"Engine(...) for the same {total:,} steps (machines, router index)",
                    build,
                    "s",
                    details={"driven_conversation_events": len(plan.events), "reps": 1},
                    cpu_value=build_cpu,
                )
            )
    return results


def bench_routing(settings: Settings) -> list[Result]:
    from bench import routing

    rounds = 10 if settings is QUICK else 50
    figures = routing.measure(flows=50, steps=10, rounds=rounds)
    log(f"  routing: p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms")
    return [
        Result(
            "routing_p99_ms",
            f"route one typed question, {figures['flows']} flows loaded (p99)",
            figures["p99_ms"],
            "ms",
            routing.TARGET_P99_MS,
            "<",
            details=figures,
        )
    ]


def bench_replay(settings: Settings) -> list[Result]:
    from bench import replay

    figures = replay.measure(rounds=1 if settings is QUICK else 3)
    log(f"  replay: {figures['per_second']:,.0f} transcripts/s")
    return [
        Result(
            "replay_per_second",
            f"replay the bundled transcripts (~{figures['lines_per_transcript']:.0f} lines each)",
            figures["per_second"],
            "transcripts/s",
            replay.TARGET_PER_SECOND,
            ">=",
            details=figures,
        )
    ]


# Telegram and Matrix paths (bench/telegram_path.py, bench/matrix_path.py): people per run,
# runs per contender (the best counts), by FULL / QUICK.
PATH_USERS = {True: 10, False: 120}
PATH_REPS = {True: 1, False: 5}
MATRIX_USERS = {True: 10, False: 100}
MATRIX_REPS = {True: 1, False: 3}


def _path_row(id_: str, name: str, figures: dict[str, Any]) -> Result:
    return Result(
        id_,
        name,
        figures["updates_per_s"],
        "updates/s",
        details=figures,
        cpu_value=figures["cpu_updates_per_s"],
    )


def bench_telegram(settings: Settings, flows_dir: Path) -> list[Result]:
    from bench import telegram_path as tp

    quick = settings is QUICK
    data = tp.measure(flows_dir, PATH_USERS[quick], PATH_REPS[quick], log)
    figures = data["contenders"]
    common = {k: v for k, v in data.items() if k not in ("contenders", "ratios")}
    rows = [
        _path_row("telegram_ptb_echo", "Telegram path: bare PTB echo bot", figures[tp.ECHO]),
        _path_row(
            "telegram_ptb_conversation_handler",
            "Telegram path: hand-written PTB ConversationHandler, same flow",
            figures[tp.CONVERSATION],
        ),
        _path_row(
            "telegram_hotline_memory",
            "Telegram path: hotline (channel, hub, engine), MemoryStore",
            figures[tp.HOTLINE_MEMORY],
        ),
        _path_row(
            "telegram_hotline_sqlite",
            "Telegram path: hotline (channel, hub, engine), SQLiteStore",
            figures[tp.HOTLINE_SQLITE],
        ),
    ]
    for row in rows:
        row.details = {**common, **row.details}
    for id_, name, key in (
        (
            "telegram_ratio_sqlite_vs_echo",
            "cost per update: hotline SQLite / PTB echo",
            "sqlite_vs_echo",
        ),
        (
            "telegram_ratio_memory_vs_conversation_handler",
            "cost per update: hotline memory / PTB ConversationHandler",
            "memory_vs_conversation_handler",
        ),
    ):
        ratio = data["ratios"][key]
        rows.append(
            Result(
                id_,
                name,
                ratio["ratio"],
                "x",
                ratio["target"],
                "<=",
                details=ratio,
                cpu_value=ratio["cpu_ratio"],
            )
        )
    log(
        "  Telegram: "
        + ", ".join(f"{r.id.removeprefix('telegram_')} {_number(r.value, r.unit)}" for r in rows)
    )
    return rows


def bench_matrix(settings: Settings, flows_dir: Path) -> list[Result]:
    from bench import matrix_path as mp

    quick = settings is QUICK
    data = mp.measure(flows_dir, MATRIX_USERS[quick], MATRIX_REPS[quick], log)
    figures = data["contenders"]
    rows = [
        _path_row("matrix_nio_echo", "Matrix path: bare nio echo callback", figures[mp.ECHO]),
        _path_row(
            "matrix_hotline_memory",
            "Matrix path: hotline (channel, hub, engine), MemoryStore",
            figures[mp.HOTLINE_MEMORY],
        ),
        _path_row(
            "matrix_hotline_sqlite",
            "Matrix path: hotline (channel, hub, engine), SQLiteStore",
            figures[mp.HOTLINE_SQLITE],
        ),
    ]
    for store, key in (("memory", mp.HOTLINE_MEMORY), ("SQLite", mp.HOTLINE_SQLITE)):
        ratio = data["ratios_to_echo"][key]
        rows.append(
            Result(
                f"matrix_ratio_{store.lower()}_vs_echo",
                f"cost per update: Matrix hotline {store} / nio echo",
                ratio["ratio"],
                "x",
                details=ratio,
                cpu_value=ratio["cpu_ratio"],
            )
        )
    log(
        "  Matrix: "
        + ", ".join(f"{r.id.removeprefix('matrix_')} {_number(r.value, r.unit)}" for r in rows)
    )
    return rows


def bench_profile(settings: Settings) -> list[Result]:
    """cProfile of the Telegram path; the full run rewrites bench/profiles/telegram-path.txt."""
    from bench import profile_telegram

    quick = settings is QUICK
    out = None if quick else profile_telegram.OUT
    users = PATH_USERS[quick] if quick else 100
    stats, updates, seconds = profile_telegram.collect(users, "sqlite")
    text = profile_telegram.report(stats, updates, seconds, "sqlite", 30)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    components = profile_telegram.working(profile_telegram.by_component(stats))
    total = sum(components.values())
    largest = sorted(components.items(), key=lambda kv: -kv[1])[:3]
    log("  largest costs: " + "; ".join(f"{n} {v / total:.0%}" for n, v in largest))
    return [
        Result(
            "profile_telegram_us_per_update",
            "Telegram path, SQLite, under cProfile (profile in bench/profiles)",
            total / updates * 1e6,
            "µs",
            details={
                "file": None if out is None else str(out.relative_to(ROOT)),
                "updates": updates,
                "largest_costs": {n: round(v / total, 3) for n, v in largest},
                "us_per_update_by_component": {
                    n: round(v / updates * 1e6, 1)
                    for n, v in sorted(components.items(), key=lambda kv: -kv[1])
                },
            },
        )
    ]


def _cold_load(folder: str) -> float | None:
    """Wall time of a fresh interpreter importing the engine and loading `folder`, as
    `hotline check` would (informational)."""
    code = (
        "import time; t = time.perf_counter(); from engine.loader import load_folder; "
        f"f, r = load_folder({folder!r}); print(time.perf_counter() - t, r.ok)"
    )
    try:
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
        ).stdout.split()
    except (subprocess.SubprocessError, OSError):
        return None
    return round(float(out[0]), 4) if out and out[-1] == "True" else None


# --------------------------------------------------------------------------- output


def _cpu_text(r: Result) -> str:
    return "-" if r.cpu_value is None else _number(r.cpu_value, r.unit)


def table(results: list[Result]) -> str:
    rows = [("figure", "measured", "by CPU time", "target", "result")]
    for r in results:
        rows.append((r.name, _number(r.value, r.unit), _cpu_text(r), r.target_text(), r.verdict))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        lines.append(
            "  ".join(
                cell.ljust(widths[i]) if i in (0, 4) else cell.rjust(widths[i])
                for i, cell in enumerate(row)
            ).rstrip()
        )
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(results: list[Result], env: dict[str, Any]) -> str:
    lines = [
        "| Figure | Measured | By CPU time | Target | Result |",
        "|---|---:|---:|---:|---|",
    ]
    for r in results:
        value = _number(r.value, r.unit)
        lines.append(f"| {r.name} | {value} | {_cpu_text(r)} | {r.target_text()} | {r.verdict} |")
    lines.append("")
    load = env.get("load_average") or [0.0]
    lines.append(
        f"Python {env['python']}, {env['cpu']} ({env['cpus_available']} CPUs available), "
        f"SQLite {env['sqlite']}, {env['date'][:10]}, load average {load[0]:.1f} at the start."
    )
    return "\n".join(lines)


def print_report(
    benchmark: str, rows: list[dict[str, Any]], quick: bool, json_path: str | None
) -> None:
    """What a bench module run on its own prints: the table, then the JSON document (also
    written to `json_path`, first, so that a closed pipe on stdout does not lose it)."""
    results = [Result(**row) for row in rows]
    print(table(results))
    print()
    document = {
        "benchmark": benchmark,
        "environment": environment(quick),
        "results": [r.as_json() for r in results],
    }
    text = json.dumps(document, indent=2, ensure_ascii=False)
    if json_path:
        Path(json_path).write_text(text + "\n", encoding="utf-8")
    print(text)


def bench_burst(settings: Settings) -> list[Result]:
    """2,000 people x 10 messages over real HTTP through the local Bot API server."""
    from bench import burst

    return [Result(**row) for row in burst.run(settings is QUICK)]


def bench_serving_memory(settings: Settings) -> list[Result]:
    """RSS of a serving process with 100,000 stored conversations and 1,000 active."""
    from bench import serving_memory

    return [Result(**row) for row in serving_memory.run(settings is QUICK)]


PARTS = (
    "steps",
    "memory",
    "load",
    "routing",
    "replay",
    "telegram",
    "matrix",
    "profile",
    "burst",
    "serving-memory",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a fast smoke run (< 15 s)")
    parser.add_argument("--json", metavar="FILE", help="also write the JSON document here")
    parser.add_argument("--flows", default=str(FLOWS), help="flows for the conversations")
    parser.add_argument(
        "--only",
        action="append",
        choices=PARTS,
        help="run only these parts (repeatable)",
    )
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    parts = args.only or list(PARTS)
    flows_dir = Path(args.flows)
    env = environment(args.quick)
    started = time.perf_counter()
    cpu_started = time.process_time()
    results: list[Result] = []
    durations: dict[str, float] = {}
    for part, title, run in (
        ("steps", "steps per second", lambda: bench_steps(settings, flows_dir)),
        ("memory", "memory per session", lambda: bench_memory(settings, flows_dir)),
        ("load", "load and check", lambda: bench_load(settings)),
        ("routing", "routing a typed question", lambda: bench_routing(settings)),
        ("replay", "replaying transcripts", lambda: bench_replay(settings)),
        ("telegram", "Telegram path (stub network)", lambda: bench_telegram(settings, flows_dir)),
        ("matrix", "Matrix path (stub transport)", lambda: bench_matrix(settings, flows_dir)),
        ("profile", "profile of the Telegram path", lambda: bench_profile(settings)),
        ("burst", "burst over real HTTP", lambda: bench_burst(settings)),
        ("serving-memory", "memory of a serving process", lambda: bench_serving_memory(settings)),
    ):
        if part in parts:
            log(f"{title}...")
            part_started = time.perf_counter()
            results += run()
            durations[part] = round(time.perf_counter() - part_started, 1)
    env["seconds_by_part"] = durations
    env["total_seconds"] = round(time.perf_counter() - started, 1)
    env["cpu_seconds_this_process"] = round(time.process_time() - cpu_started, 1)
    env["load_average_after"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    document = {
        "benchmark": "hotline",
        "environment": env,
        "results": [r.as_json() for r in results],
    }
    print(table(results))
    print()
    if args.markdown:
        print(markdown(results, env))
        print()
    text = json.dumps(document, indent=2, ensure_ascii=False)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    failed = [r for r in results if r.passed is False]
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
