"""The burst and serving-memory benchmarks' machinery works, on a tiny scale: `hotline serve`
in a child process answers every simulated person correctly over real HTTP on loopback.

No timing is asserted here; `python -m bench.burst` and `python -m bench.serving_memory`
measure (see bench/README.md).
"""

from __future__ import annotations

import asyncio
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # bench/ is not an installed package; plain `pytest` works too
    sys.path.insert(0, str(ROOT))

from bench import burst, serving_memory  # noqa: E402
from bench.run import Result  # noqa: E402
from engine.conversation import InboundKind  # noqa: E402
from engine.model import FlowSet  # noqa: E402


@pytest.fixture(scope="module")
def flows() -> FlowSet:
    return burst.load_flows()


@pytest.mark.parametrize("mode", ["polling", "webhook"])
def test_a_tiny_burst_is_answered_correctly(flows: FlowSet, mode: str) -> None:
    result = asyncio.run(
        burst.burst(users=20, messages=3, mode=mode, client="aiohttp", flows=flows, limit=60)
    )
    assert result["messages"] == 60
    assert result["answered"] == 60  # every message got its whole answer, timed
    assert result["people_with_wrong_message_count"] == 0
    assert result["unexpected_messages"] == 0
    assert result["wrong_sessions"] == 0  # each stored session is where the plan ends
    assert result["bot_exit_code"] == 0 and result["bot_log_warnings"] == 0
    assert burst.correct(result)
    assert 0 < result["p50_ms"] <= result["p99_ms"] <= result["max_ms"]
    assert result["bot_cpu_seconds"] >= 0 and result["total_seconds"] > 0
    rows = burst.burst_rows(result)
    assert rows[0]["id"] == f"burst_{mode}_p99_ms" and math.isfinite(rows[0]["value"])
    assert rows[0]["target"] == burst.TARGET_P99_MS
    # The rows are what bench.run's table and JSON take.
    assert [Result(**row).as_json()["id"] for row in rows] == [row["id"] for row in rows]


def test_the_scripts_are_the_example_forms_with_their_answers_counted(flows: FlowSet) -> None:
    scripts = burst.make_scripts(flows, 10)
    assert len(scripts) >= 4
    for script in scripts:
        assert len(script.messages) == 10
        assert {m.kind for m in script.messages} <= {InboundKind.TEXT, InboundKind.PRESS}
        assert all(m.replies >= 1 for m in script.messages)  # each answer is a message
        assert script.final[0] == "asking"  # cut mid-form: nobody's conversation ended


def test_the_echo_bot_and_httpx_run_too(flows: FlowSet) -> None:
    echo = asyncio.run(burst.burst(users=5, messages=2, kind="echo", client="httpx", limit=60))
    assert echo["answered"] == 10 and echo["unexpected_messages"] == 0
    hotline = asyncio.run(burst.burst(users=5, messages=2, client="httpx", flows=flows, limit=60))
    assert burst.correct(hotline)


def test_serving_memory_measures_a_bot_with_stored_and_active_people(flows: FlowSet) -> None:
    scripts = serving_memory.mid_flow_scripts(flows)
    figures = asyncio.run(
        serving_memory.measure(stored=300, active=10, flows=flows, scripts=scripts, warm=5)
    )
    assert figures["stored_sessions"] == 300 + 1  # and the warm-up /start
    assert figures["wrong_sessions"] == 0 and figures["people_with_wrong_message_count"] == 0
    assert figures["rss_after_mb"] > 20 and figures["rss_peak_mb"] >= figures["rss_after_mb"]
    assert figures["bot_exit_code"] == 0
    rows = serving_memory.rows({"empty": figures, "stored": figures, "baseline": {}})
    assert [Result(**row).verdict for row in rows] == ["info", "info", "info"]
