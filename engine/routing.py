"""Which flow a typed question belongs to.

People type "мне пришла повестка что делать" or "how do i refuse service" with typos and no
punctuation. `TextRouter` ranks the flows for such a text:
- words are case-folded, `ё` read as `е`, stop words dropped, and stemmed with the Snowball
  stemmer of the language (snowballstemmer), so "повестку" and "повестка" meet;
- every flow is a document of three weighted fields: its `match` phrases (strong evidence),
  its title, and the texts of its steps (weak evidence); they are ranked with BM25;
- a word the flows never use is matched to the closest word they do use (rapidfuzz), so
  "повеска" still finds "повестка";
- a `match` phrase whose every word is in the text adds a bonus.
The best score decides: at or above `CONFIDENT` the flow starts; between `UNSURE` and it the
person is asked "did you mean" with up to three flows; below, the engine says it did not
understand. Greetings and off-topic text share no words with legal flows and score 0.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import snowballstemmer
from rapidfuzz import fuzz, process

from engine.model import FlowSet, Step, Text

CONFIDENT = 4.0
UNSURE = 1.5
MATCH_WEIGHT = 3.0
TITLE_WEIGHT = 1.5
TEXT_WEIGHT = 0.3
PHRASE_BONUS = 2.5
EXACT_BONUS = 1.5  # the text is nothing but one of the flow's phrases
FUZZY_CUTOFF = 80.0
BM25_K1 = 1.2
BM25_B = 0.5

_STEMMERS = {"ru": "russian", "en": "english", "uk": "russian", "de": "german", "fr": "french"}

# Words that say nothing about the topic. Short on purpose: a word a lawyer puts in a
# `match` phrase is never dropped from that phrase's own side (see _Index.add).
STOP_WORDS = {
    "ru": set(
        "и в во не что он на я с со как а то все она так его но да ты к у же вы за бы по только "
        "ее мне было вот от меня еще нет о из ему теперь когда даже ну вдруг ли если уже или ни "
        "быть был него до вас нибудь опять уж вам ведь там потом себя ничего ей может они тут "
        "где есть надо ней для мы тебя их чем была сам чтоб без будто чего раз тоже себе под "
        "будет ж тогда кто этот того потому этого какой совсем ним здесь этом один почти мой "
        "тем чтобы нее сейчас были куда зачем всех никогда можно при наконец два об другой хоть "
        "после над больше тот через эти нас про всего них какая много разве три эту моя "
        "впрочем хорошо свою этой перед иногда лучше чуть том нельзя такой им более всегда "
        "конечно всю между это делать пожалуйста подскажите здравствуйте добрый день вечер "
        "утро спасибо привет помогите скажите очень просто сегодня завтра вчера какие какое "
        "хочу хотел хотела хотим нужен нужна нужно помощь помощи".split()
    ),
    "en": set(
        "a an the and or but if of at by for with about against between into through during "
        "before after above below to from up down in out on off over under again further then "
        "once here there when where why how all any both each few more most other some such no "
        "nor not only own same so than too very s t can will just don should now i me my myself "
        "we our ours you your he him his she her it its they them their what which who whom "
        "this that these those am is are was were be been being have has had having do does did "
        "doing would could hello hi hey thanks thank please help what's whats im i'm get got "
        "today tomorrow yesterday".split()
    ),
}


@dataclass(frozen=True, slots=True)
class Route:
    flow: str | None  # None: not confident enough to start a flow
    score: float
    candidates: tuple[str, ...] = ()  # "did you mean" suggestions, best first


class Router(ABC):
    """Maps typed text to a flow id; built once per loaded FlowSet."""

    @abstractmethod
    def route(self, text: str, language: str) -> Route:
        """The flow for `text` written in `language`, or Route(None, score, candidates)."""


# British and American spellings meet: mobilisation/mobilization, organised/organized.
_ISE = re.compile(r"(?<=\w{3})is(e|ed|es|ing|ation|ations)\b")


def written_in(text: str, languages: tuple[str, ...]) -> str | None:
    """The language `text` is evidently written in, when it shows: Cyrillic is Russian."""
    if "ru" in languages and any("\u0400" <= ch <= "\u04ff" for ch in text):
        return "ru"
    return None


def words(text: str) -> list[str]:
    folded = _ISE.sub(r"iz\1", text.casefold().replace("ё", "е"))
    cleaned = "".join(ch if ch.isalnum() else " " for ch in folded)
    return cleaned.split()


@lru_cache(maxsize=16)
def _stemmer(language: str) -> snowballstemmer.Stemmer | None:
    name = _STEMMERS.get(language)
    return snowballstemmer.stemmer(name) if name else None


def stems(text: str, language: str, keep_stop_words: bool = False) -> list[str]:
    stop = set() if keep_stop_words else STOP_WORDS.get(language, set())
    kept = [w for w in words(text) if w not in stop]
    stemmer = _stemmer(language)
    return stemmer.stemWords(kept) if stemmer else kept


class _Index:
    """BM25 over the flows of one language, with weighted fields."""

    def __init__(self, language: str) -> None:
        self.language = language
        self.docs: dict[str, Counter[str]] = {}
        self.phrases: dict[str, list[frozenset[str]]] = {}

    def add(self, flow_id: str, field_texts: Iterable[tuple[float, str]]) -> None:
        tf = self.docs.setdefault(flow_id, Counter())
        for weight, text in field_texts:
            for stem in stems(text, self.language):
                tf[stem] += weight

    def add_phrase(self, flow_id: str, phrase: str) -> None:
        phrase_stems = frozenset(stems(phrase, self.language)) or frozenset(
            stems(phrase, self.language, keep_stop_words=True)
        )
        if phrase_stems:
            self.phrases.setdefault(flow_id, []).append(phrase_stems)
            tf = self.docs.setdefault(flow_id, Counter())
            for stem in phrase_stems:
                tf[stem] += MATCH_WEIGHT

    def freeze(self) -> None:
        count = len(self.docs) or 1
        lengths = {fid: sum(tf.values()) for fid, tf in self.docs.items()}
        self.average = (sum(lengths.values()) / count) or 1.0
        self.lengths = lengths
        df: Counter[str] = Counter()
        for tf in self.docs.values():
            df.update(tf.keys())
        self.idf = {term: math.log(1 + (count - n + 0.5) / (n + 0.5)) for term, n in df.items()}
        self.vocabulary = list(self.idf)

    def known(self, stem: str) -> str | None:
        """The flows' own word for `stem`: itself, or the closest one when it is a typo."""
        if stem in self.idf:
            return stem
        if len(stem) < 4:
            return None
        found = process.extractOne(
            stem, self.vocabulary, scorer=fuzz.ratio, score_cutoff=FUZZY_CUTOFF
        )
        return found[0] if found else None

    def scores(self, text: str) -> dict[str, float]:
        query = [k for k in (self.known(s) for s in stems(text, self.language)) if k]
        if not query:
            return {}
        present = set(query)
        result: dict[str, float] = {}
        for flow_id, tf in self.docs.items():
            norm = BM25_K1 * (1 - BM25_B + BM25_B * self.lengths[flow_id] / self.average)
            score = 0.0
            for term in present:
                freq = tf.get(term)
                if freq:
                    score += self.idf[term] * freq * (BM25_K1 + 1) / (freq + norm)
            # A lawyer's own phrase, whole in the text, is the strongest evidence; the
            # best such phrase counts, whatever order the phrases are listed in.
            score += max(
                (
                    PHRASE_BONUS + len(phrase) + (EXACT_BONUS if phrase == present else 0)
                    for phrase in self.phrases.get(flow_id, ())
                    if phrase <= present
                ),
                default=0.0,
            )
            if score > 0:
                result[flow_id] = score
        return result


def _step_texts(step: Step) -> list[Text]:
    texts = [t for t in (step.say, step.invalid) if t is not None]
    texts.extend(choice.label for choice in step.choices)
    return texts


class TextRouter(Router):
    def __init__(self, flows: FlowSet, routable: Iterable[str] | None = None) -> None:
        """`routable`: the flows typed text may start (default: menu flows and flows with
        `match` phrases); sub-flows reached only by `call` are never started directly."""
        menu = set(flows.bot.menu.flows)
        chosen = (
            set(routable)
            if routable is not None
            else {
                fid for fid, flow in flows.flows.items() if fid in menu or any(flow.match.values())
            }
        )
        self._indexes: dict[str, _Index] = {}
        for language in flows.bot.languages:
            index = _Index(language)
            for fid in sorted(chosen):
                flow = flows.flows[fid]
                fields: list[tuple[float, str]] = [
                    (TITLE_WEIGHT, flow.title.get(language, language))
                ]
                for step in flow.steps.values():
                    fields.extend(
                        (TEXT_WEIGHT, text.get(language, language)) for text in _step_texts(step)
                    )
                index.add(fid, fields)
                for phrase in flow.match.get(language, ()):
                    index.add_phrase(fid, phrase)
            index.freeze()
            self._indexes[language] = index
        self.default_language = flows.bot.default_language

    def scores(self, text: str, language: str) -> dict[str, float]:
        index = self._indexes.get(language) or self._indexes[self.default_language]
        return index.scores(text)

    def route(self, text: str, language: str) -> Route:
        ranked = sorted(self.scores(text, language).items(), key=lambda kv: (-kv[1], kv[0]))
        if not ranked:
            return Route(None, 0.0)
        best_flow, best = ranked[0]
        if best >= CONFIDENT and (len(ranked) == 1 or best - ranked[1][1] >= 1.0):
            return Route(best_flow, best)
        if best >= UNSURE:
            candidates = tuple(fid for fid, score in ranked[:3] if score >= UNSURE)
            return Route(None, best, candidates)
        return Route(None, best)
