"""`hotline replay PATH... [--flows DIR] [--coverage] [--min-coverage N] [--junit FILE]`.

Replays transcripts in process (the console channel's engine, no network): each in a fresh
session on an in-memory store, on one traced Engine per flows folder. Prints a FAIL block
per failed transcript, the coverage when asked, and last, alone on its line,
`N passed, M failed`. Exit codes: 0 all passed (and coverage high enough), 1 a failure,
an unreadable transcript, a flows folder with errors, no transcripts or too little
coverage, 2 a PATH that does not exist.

A transcript with `channel: telegram` or `channel: matrix` is for that channel's replay
only: it is reported as skipped here and counts neither as passed nor as failed.

Coverage (`--coverage`, `--min-coverage`) is computed per flows folder with
`engine.transcripts.compute_coverage`; a transcript that fails still counts for what it
reached before it broke (the run fails anyway). `--min-coverage N` compares the lower of
the two percentages, steps reached and edges taken, with N.
"""

from __future__ import annotations

import argparse
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from engine.loader import load_folder
from engine.model import FlowSet
from engine.transcripts import (
    Coverage,
    Replayer,
    Run,
    Transcript,
    compute_coverage,
    find_transcripts,
    load_transcript,
)

IN_PROCESS_CHANNEL = "console"


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "replay",
        help="replay transcripts against the flows",
        description=(
            "Replay transcripts (tests/transcripts/*.yaml) against the flows, in process. "
            "Prints a FAIL block for each transcript that breaks, then 'N passed, M failed'; "
            "exit 1 on any failure."
        ),
    )
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="a transcript file, or a folder: every *.yaml under it, recursively",
    )
    parser.add_argument(
        "--flows",
        default=None,
        metavar="DIR",
        help="the flows folder of transcripts without a flows: key (default: ./flows)",
    )
    parser.add_argument(
        "--coverage",
        action="store_true",
        help="list, per flow, the steps and the edges (choices and branch arms) that no "
        "transcript reached, with FILE:LINE, and the percentages",
    )
    parser.add_argument(
        "--min-coverage",
        type=float,
        default=None,
        metavar="N",
        help="exit 1 when coverage is below N per cent; the lower of the two counts: steps "
        "reached and edges (choices and branch arms) taken, each must reach N",
    )
    parser.add_argument(
        "--junit", default=None, metavar="FILE", help="also write a JUnit XML report to FILE"
    )
    parser.add_argument(
        "--channel",
        choices=("console", "telegram", "matrix"),
        default=IN_PROCESS_CHANNEL,
        help="replay through that channel's adapter: telegram starts a local Bot API server; "
        "matrix starts a throwaway local Synapse (needs matrix-synapse) unless --homeserver "
        "names one (default: console, in process)",
    )
    matrix = parser.add_argument_group("--channel matrix")
    matrix.add_argument("--homeserver", metavar="URL", help="an existing homeserver")
    matrix.add_argument(
        "--matrix-bot", metavar="USER_ID", help="the bot's account (MATRIX_PASSWORD)"
    )
    matrix.add_argument(
        "--matrix-person", metavar="USER_ID", help="the person's account (MATRIX_REPLAY_PASSWORD)"
    )
    matrix.add_argument("--encrypted", action="store_true", help="in end-to-end encrypted rooms")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    files, missing = find_transcripts(args.paths)
    for path in missing:
        print(f"hotline replay: {path}: no such file or folder", file=sys.stderr)
    if missing:
        return 2
    started = time.perf_counter()
    default_flows = Path(args.flows) if args.flows else Path("flows")

    items: list[Transcript | Run] = []
    for path in files:
        transcript, report = load_transcript(path)
        items.append(transcript if transcript is not None else Run.malformed(str(path), report))

    folders: dict[Path, Path] = {}  # resolved -> as given, in order of first use
    for item in items:
        if isinstance(item, Transcript) and _replayed_here(item, args.channel):
            folder = item.flows or default_flows
            folders.setdefault(folder.resolve(), folder)
    flow_sets: dict[Path, FlowSet] = {}
    for resolved, folder in folders.items():
        flows, report = load_folder(folder)
        if flows is None:
            for diagnostic in report.sorted():
                print(diagnostic, file=sys.stderr)
            print(f"{folder}: fix these errors first (`hotline check {folder}`)", file=sys.stderr)
            return 1
        flow_sets[resolved] = flows

    if args.channel == "matrix":
        if args.coverage or args.min_coverage is not None:
            print(
                "hotline replay: --coverage is computed in process: drop --channel", file=sys.stderr
            )
            return 2
        from adapters.matrix.replay import MatrixReplayError, replayers_from_args

        try:
            replayers: dict = replayers_from_args(flow_sets, args)
        except MatrixReplayError as err:
            print(f"hotline replay: {err}", file=sys.stderr)
            return 2
    elif args.channel == "telegram":
        from adapters.telegram.replay import replayers_for

        replayers = replayers_for(flow_sets)
    else:
        replayers = {resolved: Replayer(flows) for resolved, flows in flow_sets.items()}
    runs_by_folder: dict[Path, list[Run]] = {resolved: [] for resolved in flow_sets}
    runs: list[Run] = []
    for item in items:
        if isinstance(item, Run):
            result = item
        elif not _replayed_here(item, args.channel):
            result = Run(item.file, item.title, skipped=f"only for the {item.channel} channel")
            print(f"skip {item.file}: {result.skipped}")
        else:
            resolved = (item.flows or default_flows).resolve()
            result = replayers[resolved].replay(item)
            runs_by_folder[resolved].append(result)
        if result.failed:
            print(result.message())
            print()
        runs.append(result)

    for replayer in replayers.values():
        if hasattr(replayer, "close"):  # a channel's replayer: its homeserver and bot
            replayer.close()

    status = 0
    if args.coverage or args.min_coverage is not None:
        for resolved, flows in flow_sets.items():
            coverage = compute_coverage(flows, runs_by_folder[resolved])
            if not _report_coverage(coverage, folders[resolved], args):
                status = 1

    if args.junit:
        write_junit(args.junit, runs, time.perf_counter() - started)

    passed = sum(1 for r in runs if r.passed)
    failed = sum(1 for r in runs if r.failed)
    if not runs:
        print(f"no transcripts (*.yaml) under {', '.join(args.paths)}", file=sys.stderr)
        status = 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else status


def _replayed_here(transcript: Transcript, channel: str = IN_PROCESS_CHANNEL) -> bool:
    return transcript.channel in (None, channel)


def _report_coverage(coverage: Coverage, folder: Path, args: argparse.Namespace) -> bool:
    """Print the coverage of one flows folder; False when it is below --min-coverage."""
    if args.coverage:
        print(f"coverage of {folder}:")
        for line in coverage.report():
            print(f"  {line}")
    else:
        print(f"coverage of {folder}: {coverage.report()[-1].removeprefix('coverage: ')}")
    minimum = args.min_coverage
    if minimum is not None and coverage.lowest_percent < minimum:
        print(
            f"coverage of {folder} is below --min-coverage {minimum:g}%: steps "
            f"{coverage.steps_percent:.1f}%, edges {coverage.edges_percent:.1f}%"
        )
        return False
    return True


def write_junit(path: str | Path, runs: list[Run], seconds: float) -> None:
    """One testcase per transcript; a failure carries the text `hotline replay` prints."""
    failures = sum(1 for r in runs if r.failure is not None)
    errors = sum(1 for r in runs if r.problems)
    skipped = sum(1 for r in runs if r.skipped is not None)
    counts = {
        "tests": str(len(runs)),
        "failures": str(failures),
        "errors": str(errors),
        "skipped": str(skipped),
        "time": f"{seconds:.3f}",
    }
    suites = ET.Element("testsuites", {"name": "hotline replay", **counts})
    suite = ET.SubElement(suites, "testsuite", {"name": "transcripts", **counts})
    for result in runs:
        parts = Path(result.file).with_suffix("").parts
        classname = ".".join(p for p in parts if p not in (Path(result.file).anchor, "..", "."))
        case = ET.SubElement(
            suite,
            "testcase",
            {
                "name": result.title or result.file,
                "classname": classname,
                "file": result.file,
                "time": f"{result.seconds:.4f}",
            },
        )
        if result.failure is not None:
            element = ET.SubElement(
                case,
                "failure",
                {"message": result.failure.expected, "type": "TranscriptMismatch"},
            )
            element.text = result.message()
        elif result.problems:
            element = ET.SubElement(
                case, "error", {"message": "the transcript has errors", "type": "BadTranscript"}
            )
            element.text = result.message()
        elif result.skipped is not None:
            ET.SubElement(case, "skipped", {"message": result.skipped})
    ET.indent(suites)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)
