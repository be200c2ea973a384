"""`hotline stats`: how many conversations began, ended and were handed over, per flow.

For the organisation's reports. It reads the daily counts the running bot writes into the
session store's database (the `counters` table, see `engine.stores.stats`): the same
counts as the Prometheus metrics, per UTC day. Counts only, so no keys are needed.

    hotline stats [--config FILE | --store PATH|URL [--schema NAME]] [--since DAY]
                  [--until DAY] [--by day|month|total] [--json]

A conversation is counted for the flow it began in: "completions" reached an end of it
(across gotos and called flows), "handovers" were passed to a lawyer from it ("-" is
/lawyer outside any flow). Queues list the hand-overs per queue.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

FLOW_EVENTS = {"start": "starts", "complete": "completions", "handover": "handovers"}
NO_FLOW = "-"  # engine.runtime.NO_FLOW: a hand-over begun outside any flow
NO_FLOW_TEXT = "(no flow)"


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "stats",
        help="starts, completions and hand-overs per flow, from the store",
        description="Print the counts the running bot keeps per UTC day in the session "
        "store's database: conversations begun, completed and handed over per flow, "
        "hand-overs per queue, updates, steps and errors. Counts only, no personal data.",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--config", default="hotline.yaml", metavar="FILE")
    where.add_argument(
        "--store", metavar="PATH|URL", help="the SQLite file or postgresql:// URL to read"
    )
    parser.add_argument("--schema", help="with --store URL: the PostgreSQL schema, if any")
    parser.add_argument("--since", type=_day, metavar="YYYY-MM-DD", help="first day (UTC)")
    parser.add_argument("--until", type=_day, metavar="YYYY-MM-DD", help="last day, included")
    parser.add_argument("--by", choices=("day", "month", "total"), default="total")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.set_defaults(func=run)


def _day(text: str) -> str:
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day: write YYYY-MM-DD") from None


@dataclass
class Period:
    """The counts of one day, month or the whole range."""

    name: str
    flows: dict[str, dict[str, int]] = field(default_factory=dict)
    queues: dict[str, int] = field(default_factory=dict)
    updates: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    steps: int = 0

    def add(self, name: str, n: int) -> None:
        event, _, label = name.partition(":")
        if event in FLOW_EVENTS:
            row = self.flows.setdefault(label, dict.fromkeys(FLOW_EVENTS.values(), 0))
            row[FLOW_EVENTS[event]] += n
        elif event == "queue":
            self.queues[label] = self.queues.get(label, 0) + n
        elif event == "update":
            self.updates[label] = self.updates.get(label, 0) + n
        elif event == "error":
            self.errors[label] = self.errors.get(label, 0) + n
        elif event == "step":
            self.steps += n
        # Anything else was written by a newer release: not ours to show.

    def as_json(self) -> dict[str, Any]:
        return {
            "period": self.name,
            "flows": dict(sorted(self.flows.items())),
            "queues": dict(sorted(self.queues.items())),
            "updates": dict(sorted(self.updates.items())),
            "steps": self.steps,
            "errors": dict(sorted(self.errors.items())),
        }


def periods(rows: Iterable[tuple[str, str, int]], by: str) -> list[Period]:
    """The rows (day, name, n) added up per day, month or in total, in time order."""
    found: dict[str, Period] = {}
    for day, name, n in rows:
        key = day if by == "day" else day[:7] if by == "month" else "total"
        period = found.get(key)
        if period is None:
            period = found[key] = Period(key)
        period.add(name, n)
    return [found[key] for key in sorted(found)]


def render(period: Period) -> list[str]:
    """One period as text tables: flows, then queues, then one line of totals."""
    lines = []
    names = {flow: NO_FLOW_TEXT if flow == NO_FLOW else flow for flow in period.flows}
    width = max([len("flow"), len("total"), *map(len, names.values())])
    heads = list(FLOW_EVENTS.values())
    lines.append(f"{'flow':<{width}}  " + "  ".join(f"{h:>11}" for h in heads))
    totals = dict.fromkeys(heads, 0)
    # Flows by id, then the hand-overs outside any flow.
    for flow, row in sorted(period.flows.items(), key=lambda item: (item[0] == NO_FLOW, item)):
        lines.append(f"{names[flow]:<{width}}  " + "  ".join(f"{row[h]:>11}" for h in heads))
        for h in heads:
            totals[h] += row[h]
    lines.append(f"{'total':<{width}}  " + "  ".join(f"{totals[h]:>11}" for h in heads))
    if period.queues:
        qwidth = max([len("queue"), *map(len, period.queues)])
        lines.append("")
        lines.append(f"{'queue':<{qwidth}}  {'handovers':>11}")
        for queue, n in sorted(period.queues.items()):
            lines.append(f"{queue:<{qwidth}}  {n:>11}")
    lines.append("")
    lines.append(
        f"updates {_total(period.updates)}, steps {period.steps}, errors {_total(period.errors)}"
    )
    return lines


def _total(counts: dict[str, int]) -> str:
    """'120 (matrix 20, telegram 100)', or '0'."""
    total = sum(counts.values())
    if not counts:
        return "0"
    return f"{total} (" + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + ")"


def _span(since: str | None, until: str | None) -> str:
    if since and until:
        return f"{since} to {until} (UTC days)"
    if since:
        return f"{since} and after (UTC days)"
    if until:
        return f"up to {until} (UTC days)"
    return "all days"


def run(args: argparse.Namespace) -> int:
    from adapters.serve.config import ConfigError, load_config
    from adapters.serve.metrics import stats_location
    from engine.stores.stats import StatsError, open_stats

    if args.since and args.until and args.since > args.until:
        print(f"--since {args.since} is after --until {args.until}", file=sys.stderr)
        return 2
    try:
        if args.store:
            where, schema = args.store, args.schema
        else:
            config, base = load_config(args.config)
            where, schema = stats_location(config, base)
        table = open_stats(where, schema=schema, create=False)
    except (ConfigError, StatsError) as err:
        print(err, file=sys.stderr)
        return 2
    try:
        rows = table.read(args.since, args.until)
    except StatsError as err:
        print(err, file=sys.stderr)
        return 2
    finally:
        table.close()
    found = periods(rows, args.by)
    span = _span(args.since, args.until)
    if args.json:
        report = {
            "store": table.where,
            "since": args.since,
            "until": args.until,
            "by": args.by,
            "periods": [p.as_json() for p in found],
        }
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return 0
    if not found:
        print(f"No counts in {table.where}, {span}.")
        return 0
    print(f"Counts in {table.where}, {span}")
    for period in found:
        print()
        if args.by != "total":
            print(f"== {period.name}")
        print("\n".join(render(period)))
    return 0
