"""`hotline route [--flows DIR] [--lang ru|en] TEXT` and `hotline route --eval FILE`."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import yaml

from engine.loader import load_folder
from engine.routing import TextRouter, written_in


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("route", help="which flow a typed question goes to")
    parser.add_argument("text", nargs="?", help="the typed question")
    parser.add_argument("--flows", default="flows", metavar="DIR")
    parser.add_argument("--lang", default=None, help="the writer's language (default: guessed)")
    parser.add_argument(
        "--eval", default=None, metavar="FILE", help="a YAML list of {lang, text, flow} to score"
    )
    parser.set_defaults(func=run)


def guess_language(text: str, languages: tuple[str, ...]) -> str:
    return written_in(text, languages) or ("en" if "en" in languages else languages[0])


def run(args: argparse.Namespace) -> int:
    flows, report = load_folder(args.flows)
    if flows is None:
        for diagnostic in report.sorted():
            print(diagnostic, file=sys.stderr)
        return 1
    router = TextRouter(flows)
    if args.eval:
        return evaluate(router, Path(args.eval), flows.bot.languages)
    if not args.text:
        print("hotline route: give a TEXT or --eval FILE", file=sys.stderr)
        return 2
    language = args.lang or guess_language(args.text, flows.bot.languages)
    route = router.route(args.text, language)
    if route.flow:
        print(f"{route.flow} {route.score:.2f}")
    elif route.candidates:
        print(f"none {route.score:.2f} (did you mean: {', '.join(route.candidates)})")
    else:
        print(f"none {route.score:.2f}")
    return 0


def evaluate(router: TextRouter, path: Path, languages: tuple[str, ...]) -> int:
    try:
        cases = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        print(f"{path}: cannot read: {err}", file=sys.stderr)
        return 2
    if not isinstance(cases, list):
        print(f"{path}: expected a list of {{lang, text, flow}}", file=sys.stderr)
        return 2
    right = 0
    true_pos: Counter[str] = Counter()
    predicted: Counter[str] = Counter()
    actual: Counter[str] = Counter()
    misses: list[str] = []
    for number, case in enumerate(cases, 1):
        if not isinstance(case, dict) or not {"text", "flow"} <= set(case):
            print(f"{path}: item {number}: needs text and flow", file=sys.stderr)
            return 2
        language = case.get("lang") or guess_language(case["text"], languages)
        route = router.route(case["text"], language)
        got = route.flow or "none"
        want = case["flow"]
        predicted[got] += 1
        actual[want] += 1
        if got == want:
            right += 1
            true_pos[want] += 1
        else:
            extra = f" (did you mean: {', '.join(route.candidates)})" if route.candidates else ""
            misses.append(f"  [{language}] {case['text']!r}: want {want}, got {got}{extra}")
    total = len(cases) or 1
    print(f"accuracy: {right}/{len(cases)} = {100 * right / total:.1f}%")
    print(f"{'flow':<20} {'precision':>9} {'recall':>7} {'n':>4}")
    for flow in sorted(set(actual) | set(predicted)):
        precision = true_pos[flow] / predicted[flow] if predicted[flow] else 0.0
        recall = true_pos[flow] / actual[flow] if actual[flow] else 0.0
        print(f"{flow:<20} {precision:>9.2f} {recall:>7.2f} {actual[flow]:>4}")
    if misses:
        print("misses:")
        print("\n".join(misses))
    return 0
