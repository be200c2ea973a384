"""cProfile of one benchmark part: `python -m bench.profile steps|sqlite|load [--top N]`.

`steps` and `sqlite` profile one replay of the conversation mix (MemoryStore, SQLiteStore);
`load` profiles load_folder on the generated 2,000-step folder. Prints the top functions
by own time and by cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
from pathlib import Path

from bench.driver import SkipDocuments, build_work, make_engine, replay
from bench.genflows import generate
from bench.run import FLOWS, plan_mix
from engine.loader import load_folder
from engine.privacy import Sealer
from engine.stores import MemoryStore, SQLiteStore


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("part", choices=("steps", "sqlite", "load"))
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--flows", default=str(FLOWS))
    parser.add_argument(
        "--no-documents", action="store_true", help="do not render documents (engine only)"
    )
    args = parser.parse_args(argv)
    profiler = cProfile.Profile()
    with tempfile.TemporaryDirectory(prefix="hotline-profile-") as tmp:
        if args.part == "load":
            generate(tmp)
            load_folder(tmp)  # warm: imports, compiled schema
            profiler.runcall(load_folder, tmp)
        else:
            flows, _ = load_folder(args.flows)
            assert flows is not None
            engine = make_engine(flows, SkipDocuments() if args.no_documents else None)
            plans, _ = plan_mix(make_engine(flows, SkipDocuments()))
            work = build_work(plans, args.users)
            replay(engine, MemoryStore(), work)  # warm-up
            db = Path(tmp) / "profile.db"
            store = (
                MemoryStore()
                if args.part == "steps"
                else SQLiteStore(db, sealer=Sealer([os.urandom(32)]))
            )
            profiler.runcall(replay, engine, store, work)
            store.close()
            print(f"{len(work):,} steps")
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(args.top)
    stats.sort_stats("cumulative").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
