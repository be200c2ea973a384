"""`hotline graph FLOWS_DIR|FILE [-o out.md|.mmd|.dot|.svg] [--lang ru] [--coverage-from DIR]`.

A picture of the flows for the lawyers who write them (see `engine/graph.py` for what each
shape and arrow means). A folder draws every flow, each in its own frame; one flow file draws
that flow, with a stub for each flow it jumps to or calls.

The output format follows the extension of `-o`: `.md` a Markdown page with a Mermaid block
per flow (GitHub and GitLab draw it), `.mmd` Mermaid, `.dot` Graphviz, `.svg` Graphviz run
through `dot -Tsvg`; without `-o` the Mermaid text goes to stdout.

A folder with errors is still drawn from what could be read (a picture of a broken folder
shows a lawyer where it breaks: unreachable steps in red, targets that do not exist as red
"missing" boxes), but the errors are printed with the files to fix and the exit code is 1.
`--coverage-from DIR` replays the transcripts in DIR in process (as `hotline replay
--coverage` does) and colours what none of them reached: steps orange, choices and branch
arms red.

Exit codes: 0 drawn; 1 the folder has errors (or nothing could be read); 2 a problem with
the command itself (unknown extension or language, Graphviz missing, no transcripts).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from engine import graph
from engine.checker import check
from engine.diagnostics import Report
from engine.loader import BOT_FILE, read_folder
from engine.model import FlowSet

FORMATS = (".md", ".mmd", ".dot", ".svg")
NO_DOT = (
    "Graphviz 'dot' is not installed: apt-get install graphviz (Debian/Ubuntu) or "
    "brew install graphviz; or use -o out.md"
)


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "graph",
        help="draw the flows (Mermaid, Markdown, Graphviz DOT or SVG)",
        description="Draw every flow of a folder, or one flow file, as a decision tree.",
        epilog="A folder with errors is still drawn from what could be read (unreachable "
        "steps and missing targets in red); the errors are listed and the exit code is 1.",
    )
    parser.add_argument(
        "path",
        nargs="?",
        default="flows",
        metavar="FLOWS_DIR|FILE",
        help="a flows folder (every flow) or one flow file in it (default: flows)",
    )
    parser.add_argument(
        "-o",
        "--output",
        default=None,
        metavar="OUT",
        help="write here; the format follows the extension: "
        ".md (Markdown with Mermaid), .mmd (Mermaid), .dot (Graphviz), .svg (needs Graphviz). "
        "Default: Mermaid on stdout",
    )
    parser.add_argument(
        "--lang", default=None, help="language of the labels (default: the bot's first)"
    )
    parser.add_argument(
        "--coverage-from",
        default=None,
        metavar="DIR",
        help="colour the steps and moves that the transcripts in DIR never reach",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    output = Path(args.output) if args.output else None
    suffix = output.suffix.lower() if output else ""
    if output is not None and suffix not in FORMATS:
        print(
            f"hotline graph: cannot tell the format of '{output}': "
            "end it with .md, .mmd, .dot or .svg",
            file=sys.stderr,
        )
        return 2
    if suffix == ".svg" and shutil.which("dot") is None:
        print(NO_DOT, file=sys.stderr)
        return 2

    path = Path(args.path)
    if not path.exists():
        print(f"hotline graph: {path}: no such file or folder", file=sys.stderr)
        return 2
    if path.is_file():
        if path.name == BOT_FILE:
            folder, only_file = path.parent, None  # bot.yaml: the whole folder
        else:
            folder, only_file = path.parent, path
    else:
        folder, only_file = path, None

    loaded = read_folder(folder)
    check(loaded)
    report = loaded.report
    for diagnostic in report.sorted():
        print(diagnostic, file=sys.stderr)
    if loaded.bot is None or not loaded.flows:
        print(
            f"hotline graph: nothing to draw: fix {_files_to_fix(report) or folder} first",
            file=sys.stderr,
        )
        return 1
    flows = loaded.flow_set()

    flow_ids: list[str] | None = None
    if only_file is not None:
        flow_id = _flow_of_file(flows, only_file)
        if flow_id is None:
            print(
                f"hotline graph: {only_file} holds no flow that could be read"
                + (f": fix {_files_to_fix(report)}" if not report.ok else ""),
                file=sys.stderr,
            )
            return 1
        flow_ids = [flow_id]

    language = args.lang
    if language is not None and language not in flows.bot.languages:
        print(
            f"hotline graph: the bot has no language '{language}' "
            f"(bot.yaml languages: {', '.join(flows.bot.languages)})",
            file=sys.stderr,
        )
        return 2

    unreached_steps = unreached_edges = None
    if args.coverage_from is not None:
        if not report.ok:
            print(
                "hotline graph: --coverage-from replays the transcripts, which needs a folder "
                f"without errors: fix {_files_to_fix(report)} first",
                file=sys.stderr,
            )
            return 1
        coverage = _coverage(flows, folder, Path(args.coverage_from))
        if isinstance(coverage, str):
            print(f"hotline graph: {coverage}", file=sys.stderr)
            return 2
        unreached_steps, unreached_edges = coverage

    options = {
        "language": language,
        "unreached_steps": unreached_steps,
        "unreached_edges": unreached_edges,
    }
    if output is None:
        sys.stdout.write(graph.render_mermaid(flows, flow_ids, **options))
    else:
        if suffix == ".md":
            content: bytes | str = graph.render_markdown(flows, flow_ids, **options)
        elif suffix == ".mmd":
            content = graph.render_mermaid(flows, flow_ids, **options)
        elif suffix == ".dot":
            content = graph.render_dot(flows, flow_ids, **options)
        else:
            svg = _svg(graph.render_dot(flows, flow_ids, **options))
            if isinstance(svg, str):
                print(f"hotline graph: {svg}", file=sys.stderr)
                return 2
            content = svg
        try:
            if isinstance(content, str):
                output.write_text(content, encoding="utf-8")
            else:
                output.write_bytes(content)
        except OSError as err:
            print(f"hotline graph: cannot write {output}: {err.strerror}", file=sys.stderr)
            return 2
    if output is not None:
        print(f"wrote {output}", file=sys.stderr)

    if not report.ok:
        print(
            f"{len(report.errors)} error(s): fix {_files_to_fix(report)}; the picture shows "
            "what could be read (unreachable steps and missing targets in red)",
            file=sys.stderr,
        )
        return 1
    return 0


def _files_to_fix(report: Report) -> str:
    files = sorted({d.file for d in report.errors})
    return ", ".join(files)


def _flow_of_file(flows: FlowSet, file: Path) -> str | None:
    wanted = file.resolve()
    for flow_id, flow in flows.flows.items():
        if Path(flow.file).resolve() == wanted:
            return flow_id
    return None


def _svg(dot_text: str) -> bytes | str:
    """SVG bytes from `dot -Tsvg`, or a message saying why not."""
    executable = shutil.which("dot")
    if executable is None:
        return NO_DOT
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell; the DOT goes on stdin
            [executable, "-Tsvg"],
            input=dot_text.encode("utf-8"),
            capture_output=True,
            timeout=300,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"Graphviz 'dot' failed: {err}"
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip()
        return f"Graphviz 'dot' failed (exit {done.returncode}): {message}"
    return done.stdout


def _coverage(
    flows: FlowSet, folder: Path, directory: Path
) -> tuple[set[graph.StepRef], set[graph.MoveRef]] | str:
    """(unreached steps, unreached choices and arms) after replaying the transcripts in
    `directory` in process, as `hotline replay --coverage` does; or a message saying why not.

    Transcripts for another channel or with a `flows:` key naming another folder are left
    out; a transcript that fails still counts for what it reached before it failed.
    """
    from engine.transcripts import Replayer, compute_coverage, find_transcripts, load_transcript

    if not directory.is_dir():
        return f"--coverage-from: no such folder of transcripts: {directory}"
    files, _ = find_transcripts([directory])
    replayer = Replayer(flows)
    runs = []
    unreadable = failed = 0
    for path in files:
        transcript, _report = load_transcript(path)
        if transcript is None:
            unreadable += 1
            continue
        if transcript.channel not in (None, "console"):
            continue
        if transcript.flows is not None and transcript.flows.resolve() != folder.resolve():
            continue
        run = replayer.replay(transcript)
        failed += run.failed
        runs.append(run)
    if not runs:
        return f"--coverage-from: no transcript of these flows (*.yaml) under {directory}"
    note = f"coverage from {len(runs)} transcript(s) in {directory}"
    if failed or unreadable:
        note += (
            f"; {failed} failed (counted up to where they broke), {unreadable} unreadable: "
            f"run `hotline replay {directory}` for details"
        )
    print(note, file=sys.stderr)
    coverage = compute_coverage(flows, runs)
    return (
        {(u.flow, u.step) for u in coverage.unreached_steps},
        {(u.flow, u.step, u.index) for u in coverage.unreached_edges},
    )
