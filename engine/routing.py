"""Which flow a typed question belongs to.

`Router` is the seam; `PhraseRouter` is the plain matcher that ships with the foundation:
a flow wins when the normalised text contains one of its `match` phrases in the user's
language (the longest phrase wins), or when every word of a phrase appears in the text.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from engine.inputs import normalise_label
from engine.model import FlowSet


@dataclass(frozen=True, slots=True)
class Route:
    flow: str | None  # None: not understood
    score: float
    candidates: tuple[str, ...] = ()  # "did you mean" suggestions, best first


class Router(ABC):
    """Maps typed text to a flow id; built once per loaded FlowSet."""

    @abstractmethod
    def route(self, text: str, language: str) -> Route:
        """The best flow for `text` written in `language`, or Route(None, score)."""


def _words(text: str) -> list[str]:
    cleaned = "".join(ch if ch.isalnum() else " " for ch in text.casefold().replace("ё", "е"))
    return cleaned.split()


class PhraseRouter(Router):
    def __init__(self, flows: FlowSet) -> None:
        # language -> [(normalised phrase words, flow id)]
        self._phrases: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        for flow in flows.flows.values():
            for language, phrases in flow.match.items():
                bucket = self._phrases.setdefault(language, [])
                for phrase in phrases:
                    words = tuple(_words(phrase))
                    if words:
                        bucket.append((words, flow.id))

    def route(self, text: str, language: str) -> Route:
        words = _words(text)
        if not words:
            return Route(None, 0.0)
        joined = " " + " ".join(words) + " "
        present = set(words)
        best: tuple[float, str] | None = None
        for phrase_words, flow_id in self._phrases.get(language, []):
            phrase = " " + " ".join(phrase_words) + " "
            if phrase in joined:
                score = 1.0 + len(phrase_words)
            elif all(w in present for w in phrase_words):
                score = 0.5 + len(phrase_words)
            elif any(
                normalise_label(w).startswith(normalise_label(p))
                for p in phrase_words
                for w in words
                if len(p) >= 5
            ):
                score = 0.25
            else:
                continue
            if best is None or score > best[0]:
                best = (score, flow_id)
        if best is None:
            return Route(None, 0.0)
        return Route(best[1], best[0])
