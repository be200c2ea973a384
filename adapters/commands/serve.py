"""`hotline serve [--config FILE]`: the flows on Telegram and/or Matrix."""

from __future__ import annotations

import argparse
import asyncio
import sys


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("serve", help="run the bot on Telegram and/or Matrix")
    parser.add_argument("--config", default="hotline.yaml", metavar="FILE")
    parser.add_argument(
        "--worker",
        type=int,
        default=0,
        metavar="N",
        help="this worker's number when several share a PostgreSQL store (0, 1, ...): "
        "its metrics port is metrics.port + N",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from adapters.serve.config import ConfigError, load_config
    from adapters.serve.run import serve

    try:
        config, base = load_config(args.config)
        return asyncio.run(serve(config, base, args.worker))
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2
