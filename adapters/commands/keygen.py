"""`hotline keygen`: print a new random key for HOTLINE_KEYS or HOTLINE_KEY_SECRET."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "keygen",
        help="print a new key for HOTLINE_KEYS or HOTLINE_KEY_SECRET",
        description="Print a new random 32-byte key, base64-encoded. Keep it in a secrets "
        "manager: without it the session store cannot be read.",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.privacy import new_key

    print(new_key())
    return 0
