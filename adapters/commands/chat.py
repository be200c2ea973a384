"""`hotline chat [FLOWS_DIR] [--lang ru] [--record FILE]`: the flows in the terminal."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("chat", help="talk to the flows in the terminal")
    parser.add_argument("flows_dir", nargs="?", default="flows", metavar="FLOWS_DIR")
    parser.add_argument("--lang", default=None, help="your language, e.g. ru or en")
    parser.add_argument("--record", default=None, metavar="FILE", help="write a transcript")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from adapters.console.chat import run_chat

    return run_chat(Path(args.flows_dir), language=args.lang, record=args.record)
