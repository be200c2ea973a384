"""The `hotline` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from engine.loader import load_folder


def _check(args: argparse.Namespace) -> int:
    flows, report = load_folder(args.flows_dir)
    for diagnostic in report.sorted():
        print(diagnostic)
    errors, warnings = len(report.errors), len(report.warnings)
    if errors:
        print(f"{errors} error(s), {warnings} warning(s): fix the errors; the bot will not load "
              "this folder until then", file=sys.stderr)
        return 1
    assert flows is not None
    steps = sum(len(flow.steps) for flow in flows.flows.values())
    print(f"ok: {len(flows.flows)} flows, {steps} steps, {warnings} warning(s)", file=sys.stderr)
    return 0


def _chat(args: argparse.Namespace) -> int:
    from adapters.console.chat import run_chat

    return run_chat(Path(args.flows_dir), language=args.lang, record=args.record)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hotline",
        description="Conversational flows for the hotline: check, chat, replay, serve.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser("check", help="validate and lint a flows folder")
    check.add_argument("flows_dir", nargs="?", default="flows", metavar="FLOWS_DIR")
    check.set_defaults(func=_check)

    chat = commands.add_parser("chat", help="talk to the flows in the terminal")
    chat.add_argument("flows_dir", nargs="?", default="flows", metavar="FLOWS_DIR")
    chat.add_argument("--lang", default=None, help="your language, e.g. ru or en")
    chat.add_argument("--record", default=None, metavar="FILE", help="write a transcript")
    chat.set_defaults(func=_chat)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
