"""`hotline transcripts generate [FLOWS_DIR] -o DIR [--lang ru] [--now DATE] [--force]`.

Writes the fewest transcripts that together reach every step and every edge (choice,
branch arm) of the flows, with sample answers (and, once per input step, an answer that
fails first), so that a tester starts from full coverage and only reviews the wording
(`engine.transcripts.generate` says how). Files are named `<flow>_<n>.yaml` after the flow
each starts in; existing files are never overwritten without --force.

Then the written transcripts are replayed in process and the command prints, last,
`N transcripts, steps X/Y, edges A/B`. Whatever no transcript reaches is listed on stderr
with FILE:LINE, and so is a regex input no sample answer matches (its transcript stops
there with a TODO).

Exit codes: 0 written and replayed green; 1 the flows folder has errors, or a generated
transcript fails to replay (a bug in the generator: please report it); 2 bad arguments or
files that would be overwritten.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from engine.loader import load_folder
from engine.transcripts.generate import generate_transcripts, replay_generated
from engine.transcripts.recording import flows_relative_to


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "transcripts",
        help="work with transcripts (generate them from the flows)",
        description="Work with transcripts: `generate` writes a covering set from the flows.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    generate = actions.add_parser(
        "generate",
        help="write the fewest transcripts that reach every step and edge of the flows",
        description=(
            "Drive the flows through the engine and write the fewest transcripts that "
            "together reach every step and every choice and branch arm, with sample "
            "answers; then replay them and print the coverage. Review the wording, then "
            "keep them under tests/transcripts/."
        ),
    )
    generate.add_argument("flows_dir", nargs="?", default="flows", metavar="FLOWS_DIR")
    generate.add_argument(
        "-o", "--output", required=True, metavar="DIR", help="the folder to write them to"
    )
    generate.add_argument(
        "--lang", default=None, help="the person's language (default: the bot's first)"
    )
    generate.add_argument(
        "--now",
        default=None,
        metavar="DATE",
        help="the date (or date and time) the conversations happen on, e.g. 2026-03-01; "
        "written as `now:` and used for answers such as birth dates, so the same --now "
        "gives the same files (default: today)",
    )
    generate.add_argument(
        "--force", action="store_true", help="overwrite transcripts that already exist"
    )
    generate.add_argument(
        "--no-back",
        action="store_true",
        help="never use /back to return to a question (more, but straighter, transcripts)",
    )
    generate.set_defaults(func=run_generate)


def _parse_now(text: str | None) -> dt.datetime | None:
    if text is None:
        return dt.datetime.now().replace(hour=12, minute=0, second=0, microsecond=0)
    try:
        parsed = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if len(text.strip()) == 10:  # a bare date: noon, as a transcript's `now:` reads it
        parsed = parsed.replace(hour=12)
    return parsed.replace(second=0, microsecond=0, tzinfo=None)


def run_generate(args: argparse.Namespace) -> int:
    name = "hotline transcripts generate"
    now = _parse_now(args.now)
    if now is None:
        print(f"{name}: --now {args.now}: write a date such as 2026-03-01", file=sys.stderr)
        return 2
    flows, report = load_folder(args.flows_dir)
    if flows is None:
        for diagnostic in report.sorted():
            print(diagnostic, file=sys.stderr)
        print(
            f"{args.flows_dir}: fix these errors first (`hotline check {args.flows_dir}`)",
            file=sys.stderr,
        )
        return 1
    language = args.lang or flows.bot.default_language
    if language not in flows.bot.languages:
        print(
            f"{name}: --lang {language}: this bot speaks {', '.join(flows.bot.languages)}",
            file=sys.stderr,
        )
        return 2
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        print(f"{name}: -o {out}: not a folder", file=sys.stderr)
        return 2

    generation = generate_transcripts(
        flows,
        now=now,
        language=language,
        flows_ref=flows_relative_to(args.flows_dir, out / "x.yaml"),
        back=not args.no_back,
    )
    paths = [out / t.name for t in generation.transcripts]
    existing = [p for p in paths if p.exists()]
    if existing and not args.force:
        for path in existing:
            print(f"{name}: {path} exists; not overwritten (--force to replace)", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    for transcript, path in zip(generation.transcripts, paths, strict=True):
        path.write_text(transcript.text, encoding="utf-8")
        print(f"wrote {path}: {transcript.title}")
    for todo in generation.todos:
        print(f"{name}: TODO {todo}", file=sys.stderr)
    written = {p.resolve() for p in paths}
    flow_ids = tuple(flows.flows)
    stale = sorted(
        p
        for p in out.glob("*_*.yaml")
        if p.resolve() not in written and p.stem.rpartition("_")[0] in flow_ids
    )
    for path in stale:
        print(f"{name}: note: {path} was not written this time (left as it is)", file=sys.stderr)

    runs, coverage = replay_generated(flows, paths)
    failed = [run for run in runs if run.failed]
    for run in failed:
        print(run.message(), file=sys.stderr)
        print(file=sys.stderr)
    missing = [*coverage.unreached_steps, *coverage.unreached_edges]
    if missing:
        print(f"{name}: no generated conversation reaches these:", file=sys.stderr)
        for item in sorted(missing, key=lambda m: (m.file, m.position.line)):
            print(f"  {item}", file=sys.stderr)
    if failed:
        print(
            f"{name}: {len(failed)} generated transcript(s) fail to replay: a bug in the "
            "generator, please report it",
            file=sys.stderr,
        )
    print(
        f"{len(paths)} transcripts, steps {coverage.steps_reached}/{coverage.steps}, "
        f"edges {coverage.edges_reached}/{coverage.edges}"
    )
    return 1 if failed else 0
