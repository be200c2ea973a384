"""The benchmark's own machinery works: generated flows load, the driver reaches the end.

No timing is asserted here; `python -m bench.run` measures (see bench/README.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # bench/ is not an installed package; plain `pytest` works too
    sys.path.insert(0, str(ROOT))

from bench.driver import (  # noqa: E402
    Scenario,
    build_work,
    make_engine,
    plan_conversation,
    replay_checked,
    verify,
)
from bench.genflows import generate  # noqa: E402
from engine.loader import load_folder  # noqa: E402
from engine.model import StepKind  # noqa: E402
from engine.privacy import Sealer  # noqa: E402
from engine.stores import MemoryStore, SQLiteStore  # noqa: E402

ENDED = ("idle", None, None)


def test_generated_folder_loads_without_errors_and_runs(tmp_path: Path) -> None:
    assert generate(tmp_path, flows=4, steps=50) == 200
    flows, report = load_folder(tmp_path)
    assert report.errors == []
    assert flows is not None
    assert sum(len(f.steps) for f in flows.flows.values()) == 200
    kinds = {step.kind for f in flows.flows.values() for step in f.steps.values()}
    assert kinds == set(StepKind)  # choices, input, branch, goto, call, handover, end
    plan = plan_conversation(make_engine(flows), Scenario("gen_01", seed=3), max_events=2000)
    assert plan.final == ENDED


def test_driver_takes_one_user_through_acs_application_to_the_end(tmp_path: Path) -> None:
    flows, report = load_folder(ROOT / "flows")
    assert flows is not None, report.errors
    engine = make_engine(flows)
    plan = plan_conversation(engine, Scenario("acs_application", "ru", "menu", seed=1))
    assert plan.final == ENDED
    assert {"full_name", "birth_date", "address", "commissariat", "reasons"} <= plan.saved
    assert plan.invalid_answers >= 1 and plan.backs == 1
    # The last thing the bot said is the text of an `end: true` step.
    ends = {
        step.say.get("ru", "ru")
        for flow in flows.flows.values()
        for step in flow.steps.values()
        if step.kind is StepKind.END and step.say is not None
    }
    assert ends & set(plan.last_texts)
    # Replayed for a simulated user, through each store, it goes exactly the same way.
    work = build_work([plan], users=1)
    for store in (MemoryStore(), SQLiteStore(tmp_path / "sessions.db", sealer=Sealer([bytes(32)]))):
        counts = replay_checked(engine, store, work)
        assert counts == {"bench:u0": plan.action_counts}
        verify(store, [plan], users=1)
        store.close()


def test_routing_latency_measure_runs_on_a_generated_folder() -> None:
    from bench import routing

    figures = routing.measure(flows=5, steps=6, rounds=1)
    assert figures["flows"] == 5 and figures["messages"] > 10
    assert 0 < figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"]
