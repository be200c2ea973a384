"""Transcript replay speed: the bundled transcripts, replayed in process.

Issue target: >= 200 transcripts of 20 steps per second on one core (fast enough to run on
every save). Measured in CPU time, best of a few rounds, after one warm-up round; the
transcripts are read once (reading is not part of a replay).
"""

from __future__ import annotations

import time
from pathlib import Path

from engine.loader import load_folder
from engine.transcripts.loading import load_transcript
from engine.transcripts.matching import Replayer

ROOT = Path(__file__).resolve().parent.parent
TARGET_PER_SECOND = 200.0


def measure(rounds: int = 3) -> dict[str, float]:
    flows, report = load_folder(ROOT / "flows")
    assert flows is not None, [str(d) for d in report.errors[:5]]
    transcripts = []
    for path in sorted((ROOT / "tests" / "transcripts").glob("*.yaml")):
        transcript, _ = load_transcript(path)
        assert transcript is not None, path
        transcripts.append(transcript)
    replayer = Replayer(flows)
    for transcript in transcripts:  # warm-up, and every one must pass
        assert replayer.replay(transcript).passed, transcript.file
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for transcript in transcripts:
            replayer.replay(transcript)
        best = min(best, time.process_time() - started)
    lines = sum(len(t.lines) for t in transcripts)
    return {
        "transcripts": len(transcripts),
        "lines_per_transcript": round(lines / len(transcripts), 1),
        "per_second": round(len(transcripts) / best, 1),
    }
