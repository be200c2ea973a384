"""Problems found in authored files, each pointing at FILE:LINE:COL.

The loader and the checker never stop at the first problem: they collect every
`Diagnostic` of a run into a `Report`, so a lawyer fixes a whole folder in one pass.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import NamedTuple


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class Position(NamedTuple):
    """A 1-based line and column in a file (what editors show).

    A named tuple rather than a dataclass: the YAML reader makes one for every key and
    value of a folder, and a tuple is several times cheaper to build."""

    line: int = 1
    column: int = 1


@dataclass(frozen=True, slots=True)
class Diagnostic:
    file: str
    position: Position
    severity: Severity
    message: str

    def __str__(self) -> str:
        return (
            f"{self.file}:{self.position.line}:{self.position.column}: "
            f"{self.severity.value}: {self.message}"
        )


@dataclass(slots=True)
class Report:
    """Every diagnostic of one load-and-check run, in file and line order when printed."""

    diagnostics: list[Diagnostic] = field(default_factory=list)

    def error(self, file: str | Path, position: Position, message: str) -> None:
        self.diagnostics.append(Diagnostic(str(file), position, Severity.ERROR, message))

    def warning(self, file: str | Path, position: Position, message: str) -> None:
        self.diagnostics.append(Diagnostic(str(file), position, Severity.WARNING, message))

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors

    def sorted(self) -> list[Diagnostic]:
        return sorted(self.diagnostics, key=lambda d: (d.file, d.position, d.severity.value))


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """'; did you mean 'x'?' when a candidate is close to `word`, else ''."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""
