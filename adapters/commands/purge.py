"""`hotline purge [--config FILE]`: delete the sessions idle longer than `retention_days`.

The running bot does this every hour; this is for cron jobs and for right now. It opens the
store with the same keys as `hotline serve` (HOTLINE_KEYS, HOTLINE_KEY_SECRET) and prints
only how many sessions it deleted.
"""

from __future__ import annotations

import argparse
import sys


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "purge", help="delete sessions idle longer than retention_days (bot.yaml)"
    )
    parser.add_argument("--config", default="hotline.yaml", metavar="FILE")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from adapters.serve.config import ConfigError, load_config
    from adapters.serve.run import open_store, purge
    from engine.loader import load_folder

    try:
        config, base = load_config(args.config)
        flows_dir = (base / config.flows).resolve()
        flows, _ = load_folder(flows_dir)
        if flows is None:
            raise ConfigError(
                f"{flows_dir}: the flows have errors, so retention_days is unknown; "
                f"run `hotline check {flows_dir}`"
            )
        store, keys = open_store(config, base)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2
    cases = None
    if config.handover:
        from adapters.serve.run import open_cases

        cases = open_cases(config, base, store, keys)
    try:
        print(purge(store, flows.bot.retention_days, cases=cases))
    finally:
        store.close()
        if cases is not None:
            cases.close()
    return 0
