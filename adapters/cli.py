"""The `hotline` command line: each sub-command lives in `adapters/commands/`."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

# Sub-command modules, in the order `hotline --help` lists them.
COMMANDS = (
    "chat",
    "check",
    "replay",
    "route",
    "serve",
    "purge",
    "stats",
    "keygen",
    "graph",
    "transcripts",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hotline",
        description="Conversational flows for the hotline: check, chat, replay, serve.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"adapters.commands.{name}").register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Libraries log nothing by default; the command line shows warnings and worse on stderr.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
