"""`hotline stats`: the daily counts of the store, as tables or JSON, for reports."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.cli import main
from adapters.commands import stats as stats_command
from engine import runtime
from engine.privacy import Sealer
from engine.stores import SQLiteStore
from engine.stores.stats import open_stats
from tests.pg import fresh_schema_url, schema_of

COUNTS = {
    ("2026-10-31", "start:summons"): 4,
    ("2026-10-31", "complete:summons"): 3,
    ("2026-10-31", "update:telegram"): 40,
    ("2026-10-31", "step"): 39,
    ("2026-11-01", "start:summons"): 2,
    ("2026-11-01", "start:lawyer"): 5,
    ("2026-11-01", "handover:lawyer"): 5,
    ("2026-11-01", "handover:-"): 1,
    ("2026-11-01", "queue:lawyers"): 6,
    ("2026-11-01", "update:telegram"): 20,
    ("2026-11-01", "update:matrix"): 10,
    ("2026-11-01", "step"): 30,
    ("2026-11-01", "error:document"): 1,
    ("2026-11-02", "complete:summons"): 1,
    ("2026-11-02", "step"): 1,
    ("2026-11-02", "newer_release_count:x"): 7,
}


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A session store with counts in it, and a config naming it."""
    path = tmp_path / "hotline.sqlite3"
    SQLiteStore(path, sealer=Sealer([bytes(range(32))])).close()
    table = open_stats(path)
    table.add(COUNTS)
    table.close()
    (tmp_path / "hotline.yaml").write_text(
        "store: {sqlite: hotline.sqlite3}\ntelegram: {}\n", encoding="utf-8"
    )
    return path


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from fresh_schema_url()


def stats(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["stats", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_totals_per_flow_per_queue_and_overall(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = stats(capsys, "--config", str(store.parent / "hotline.yaml"))
    assert code == 0
    lines = [line.split() for line in out.splitlines()]
    assert out.splitlines()[0] == (f"Counts in {store}, all days")
    assert ["flow", "starts", "completions", "handovers"] in lines
    assert ["(no", "flow)", "0", "0", "1"] in lines
    assert ["lawyer", "5", "0", "5"] in lines
    assert ["summons", "6", "4", "0"] in lines
    assert ["total", "11", "4", "6"] in lines
    # Flows by id, then the hand-overs from outside any flow, then the total.
    table = lines[lines.index(["flow", "starts", "completions", "handovers"]) + 1 :]
    assert [row[0] for row in table[:4]] == ["lawyer", "summons", "(no", "total"]
    assert ["lawyers", "6"] in lines
    assert out.splitlines()[-1] == (
        "updates 70 (matrix 10, telegram 60), steps 70, errors 1 (document 1)"
    )


def test_by_day_within_a_range(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = stats(
        capsys,
        "--store",
        str(store),
        "--since",
        "2026-11-01",
        "--until",
        "2026-11-02",
        "--by",
        "day",
    )
    assert code == 0
    assert "== 2026-10-31" not in out
    first, second = out.split("== 2026-11-01")[1].split("== 2026-11-02")
    assert ["summons", "2", "0", "0"] in [line.split() for line in first.splitlines()]
    assert ["summons", "0", "1", "0"] in [line.split() for line in second.splitlines()]
    assert second.splitlines()[-1] == "updates 0, steps 1, errors 0"


def test_by_month_as_json(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = stats(capsys, "--store", str(store), "--by", "month", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["by"] == "month" and report["since"] is None
    october, november = report["periods"]
    assert october == {
        "period": "2026-10",
        "flows": {"summons": {"starts": 4, "completions": 3, "handovers": 0}},
        "queues": {},
        "updates": {"telegram": 40},
        "steps": 39,
        "errors": {},
    }
    assert november["period"] == "2026-11"
    assert november["flows"]["summons"] == {"starts": 2, "completions": 1, "handovers": 0}
    assert november["queues"] == {"lawyers": 6}
    assert november["steps"] == 31


def test_postgresql_by_url(pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    table = open_stats(pg_url)
    table.add(COUNTS)
    table.close()
    code, out, _ = stats(capsys, "--store", pg_url, "--until", "2026-10-31", "--json")
    assert code == 0
    (total,) = json.loads(out)["periods"]
    assert total["flows"] == {"summons": {"starts": 4, "completions": 3, "handovers": 0}}


def test_postgresql_in_a_schema(pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    schema = f"{schema_of(pg_url)}_sessions"
    table = open_stats(pg_url, schema=schema)
    table.add(COUNTS)
    table.close()
    code, out, _ = stats(capsys, "--store", pg_url, "--schema", schema)
    assert code == 0
    assert out.splitlines()[0].endswith(f"(schema {schema}), all days")
    assert ["total", "11", "4", "6"] in [line.split() for line in out.splitlines()]


def test_a_store_without_counts_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "hotline.sqlite3"
    SQLiteStore(path, sealer=Sealer([bytes(range(32))])).close()
    code, out, _ = stats(capsys, "--store", str(path), "--since", "2026-01-01")
    assert code == 0
    assert out == f"No counts in {path}, 2026-01-01 and after (UTC days).\n"


def test_a_store_that_cannot_be_opened_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere.sqlite3"
    code, out, err = stats(capsys, "--store", str(missing))
    assert code == 2 and out == ""
    assert err.startswith(f"{missing}: cannot open the store")
    assert not missing.exists()  # reading never creates a database


def test_a_postgresql_password_is_never_printed(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = stats(capsys, "--store", "postgresql://bot:s3cret@127.0.0.1:1/hotline")
    assert code == 2
    assert err.startswith("postgresql://bot:***@127.0.0.1:1/hotline: cannot open the store")
    assert "s3cret" not in err


def test_a_missing_config_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = stats(capsys, "--config", str(tmp_path / "none.yaml"))
    assert code == 2
    assert "none.yaml: cannot read the config" in err


def test_days_are_checked(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["stats", "--store", str(store), "--since", "01.11.2026"])
    assert exited.value.code == 2
    assert "is not a day: write YYYY-MM-DD" in capsys.readouterr().err
    code, _, err = stats(
        capsys, "--store", str(store), "--since", "2026-11-02", "--until", "2026-11-01"
    )
    assert code == 2
    assert "after --until" in err


def test_the_no_flow_label_is_the_engines() -> None:
    assert stats_command.NO_FLOW == runtime.NO_FLOW
