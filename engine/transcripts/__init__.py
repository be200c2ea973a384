"""Transcripts: one conversation per file, replayed to prove what the flows say.

- `engine.transcripts.loading`: read a transcript file into a frozen `Transcript`,
  reporting every problem as FILE:LINE:COL (`load_transcript`, `find_transcripts`);
- `engine.transcripts.matching`: `Replayer(flows).replay(transcript) -> Run`, in process
  on a traced `Engine` shared by every transcript of a flow set; a failed `Run` carries a
  `Failure` that prints as `FAIL FILE:LINE: expected ...` with what the bot sent there;
- `engine.transcripts.coverage`: `compute_coverage(flows, runs) -> Coverage`, the steps
  and edges (choices, branch arms) that no run reached; its docstring documents the API
  that `hotline graph --coverage-from` and others use;
- `engine.transcripts.recording`: `Recorder`, which writes a conversation down as a
  transcript (`hotline chat --record`).
"""

from engine.transcripts.coverage import (
    Coverage,
    FlowCoverage,
    UnreachedEdge,
    UnreachedStep,
    compute_coverage,
)
from engine.transcripts.loading import (
    Line,
    LineKind,
    Transcript,
    find_transcripts,
    load_transcript,
    parse_transcript,
)
from engine.transcripts.matching import Failure, Replayer, Run
from engine.transcripts.recording import Recorder

__all__ = [
    "Coverage",
    "Failure",
    "FlowCoverage",
    "Line",
    "LineKind",
    "Recorder",
    "Replayer",
    "Run",
    "Transcript",
    "UnreachedEdge",
    "UnreachedStep",
    "compute_coverage",
    "find_transcripts",
    "load_transcript",
    "parse_transcript",
]
