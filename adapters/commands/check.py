"""`hotline check [FLOWS_DIR]`: validate and lint a flows folder."""

from __future__ import annotations

import argparse
import sys

from engine.loader import load_folder


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("check", help="validate and lint a flows folder")
    parser.add_argument("flows_dir", nargs="?", default="flows", metavar="FLOWS_DIR")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    flows, report = load_folder(args.flows_dir)
    for diagnostic in report.sorted():
        print(diagnostic)
    errors, warnings = len(report.errors), len(report.warnings)
    if errors:
        print(
            f"{errors} error(s), {warnings} warning(s): fix the errors; the bot will not load "
            "this folder until then",
            file=sys.stderr,
        )
        return 1
    assert flows is not None
    steps = sum(len(flow.steps) for flow in flows.flows.values())
    print(f"ok: {len(flows.flows)} flows, {steps} steps, {warnings} warning(s)", file=sys.stderr)
    return 0
