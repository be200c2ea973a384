"""Safe YAML reading that keeps where every key and value came from.

We read PyYAML's event stream (libyaml's C parser when available) and build plain Python
values from it ourselves, in one streaming pass, so that:
- no tag ever constructs a Python object: only YAML's core tags are accepted, any other
  (`!!python/object`, `!custom`) is an error;
- a duplicate key is an error instead of a silent overwrite;
- an alias (`*name`) is refused where it is written, so a hostile file ('billion laughs')
  cannot expand into millions of values;
- the number of values and the nesting depth are capped, and the cap stops the reading
  as soon as it is crossed, before the rest of a huge file is even parsed;
- every mapping and list remembers the position of each key and value, for FILE:LINE:COL.
"""

from __future__ import annotations

from typing import Any

import yaml

from engine.diagnostics import Position

try:  # libyaml's C parser when it is installed: several times faster on large folders.
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

MAX_NODES = 200_000
MAX_DEPTH = 64
MAX_ALIAS_REPORTS = 5  # then one line for the rest: a hostile file gets a short report

_CORE = "tag:yaml.org,2002:"
_STR = _CORE + "str"
_INT = _CORE + "int"
_FLOAT = _CORE + "float"
_BOOL = _CORE + "bool"
_NULL = _CORE + "null"
_TIMESTAMP = _CORE + "timestamp"
_MERGE = _CORE + "merge"
_SEQ = _CORE + "seq"
_MAP = _CORE + "map"
_SCALAR_TAGS = frozenset({_STR, _INT, _FLOAT, _BOOL, _NULL, _TIMESTAMP})
_MAP_TAGS = frozenset({_MAP})
_SEQ_TAGS = frozenset({_SEQ})
_QUOTED = frozenset({"'", '"'})
# First characters of the plain scalars that YAML may read as something else than text
# (true, no, 12, -1.5, ~, 2024-01-01, <<); any other plain scalar is text for sure.
_PLAIN_FIRST = frozenset("".join(k for k in _Loader.yaml_implicit_resolvers if k))

# Hints for the parser errors lawyers meet most; matched against PyYAML's problem text.
_HINTS = (
    (
        "mapping values are not allowed",
        "a text that contains ': ' must be put in quotes",
    ),
    (
        "could not find expected ':'",
        "each line of a mapping is `key: value`; a text that goes on over several lines "
        "must be indented or put in quotes",
    ),
    ("found undefined alias", "aliases (*name) are not allowed in flow files"),
)


class YamlProblem(Exception):
    """A file that is not usable YAML, with the position of the problem."""

    def __init__(self, position: Position, message: str) -> None:
        super().__init__(message)
        self.position = position
        self.message = message


class Refused:
    """Stands for a value that was refused (an alias): already reported, check no further."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "REFUSED"


REFUSED = Refused()


class LocatedMap(dict[str, Any]):
    """A mapping from the file; `.position` of the map, and of each key and value."""

    __slots__ = (
        "comment_cuts",
        "key_positions",
        "plain_scalars",
        "position",
        "quoted",
        "value_positions",
    )

    def __init__(self, position: Position) -> None:
        super().__init__()
        self.position = position
        # Keys whose unquoted several-word value is followed by ` #` on the same line:
        # YAML took the rest of the line for a comment (`ru: See item #3` reads "See item").
        self.comment_cuts: dict[str, Position] = {}
        self.key_positions: dict[str, Position] = {}
        self.value_positions: dict[str, Position] = {}
        # Keys whose value was an unquoted scalar that YAML turned into a non-string
        # (yes -> True, 1.10 -> 1.1): the text as written, to explain the surprise.
        self.plain_scalars: dict[str, str] = {}
        # Keys whose value was written in quotes: its text starts one column further on.
        self.quoted: set[str] = set()

    def key_at(self, key: str) -> Position:
        return self.key_positions.get(key, self.position)

    def value_at(self, key: str) -> Position:
        return self.value_positions.get(key, self.position)

    def text_at(self, key: str) -> Position:
        """Where the text of a one-line scalar value starts (after an opening quote)."""
        at = self.value_at(key)
        return Position(at.line, at.column + 1) if key in self.quoted else at


class LocatedList(list[Any]):
    """A sequence from the file; `.position` of the list and of each item."""

    __slots__ = ("item_positions", "plain_scalars", "position")

    def __init__(self, position: Position) -> None:
        super().__init__()
        self.position = position
        self.item_positions: list[Position] = []
        self.plain_scalars: dict[int, str] = {}

    def item_at(self, index: int) -> Position:
        if 0 <= index < len(self.item_positions):
            return self.item_positions[index]
        return self.position


def _mark(mark: Any) -> Position:
    return Position(mark.line + 1, mark.column + 1)


def _tag_words(tag: str) -> str:
    return "!!" + tag[len(_CORE) :] if tag.startswith(_CORE) else tag


_NO_KEY: Any = object()  # a mapping waiting for its next key
_SKIP: Any = object()  # a mapping whose next value is dropped (bad or duplicate key)


class _Reader:
    """Builds Located values from the event stream; one instance per file."""

    __slots__ = ("problems", "resolver")

    def __init__(self, resolver: Any) -> None:
        self.resolver = resolver
        # Problems that leave the rest of the file readable: reported, and reading goes on.
        self.problems: list[YamlProblem] = []

    def problem(self, position: Position, message: str) -> None:
        self.problems.append(YamlProblem(position, message))

    def check_tag(self, event: Any, allowed: frozenset[str]) -> str | None:
        """The explicit tag of a node when it is a core one; reports any other."""
        tag = event.tag
        if tag is None or tag == "!":
            return None
        if tag in allowed:
            return tag
        self.problem(
            _mark(event.start_mark),
            f"YAML tags such as '{_tag_words(tag)}' are not allowed in flow files; "
            "write the plain value",
        )
        return None

    def scalar(self, event: Any) -> tuple[Any, bool]:
        """(value, surprising) of a scalar that is not obviously text; surprising when a
        plain scalar did not stay text."""
        tag = self.check_tag(event, _SCALAR_TAGS) if event.tag is not None else None
        value = event.value
        if event.style:  # quoted or block: text, whatever it looks like
            if tag is None or tag == _STR:
                return value, False
        elif tag is None:
            tag = self.resolver.resolve(yaml.ScalarNode, value, event.implicit)
        try:
            if tag == _NULL:
                result: Any = None
            elif tag == _BOOL:
                result = value.lower() in ("yes", "true", "on", "y")
            elif tag == _INT:
                result = _CONSTRUCTOR.construct_yaml_int(yaml.ScalarNode(tag, value))
            elif tag == _FLOAT:
                result = _CONSTRUCTOR.construct_yaml_float(yaml.ScalarNode(tag, value))
            elif tag == _TIMESTAMP:
                result = _CONSTRUCTOR.construct_yaml_timestamp(yaml.ScalarNode(tag, value))
            else:
                return value, False
        except (ValueError, TypeError, yaml.YAMLError):
            return value, False
        return result, not event.style

    def key(self, event: Any, value: Any, container: LocatedMap) -> Any:
        """The key an unusual event makes in `container`, or _SKIP when it is refused."""
        position = _mark(event.start_mark)
        if type(event) is not yaml.ScalarEvent:
            if value is not REFUSED:
                self.problem(position, "a key must be a word, not a list or a mapping")
            return _SKIP
        if not event.style and event.value == "<<" and event.tag in (None, _MERGE):
            self.problem(position, "merge keys (<<) are not allowed in flow files")
            return _SKIP
        if event.value not in container:
            return event.value
        first = container.key_positions[event.value]
        self.problem(
            position,
            f"duplicate key '{event.value}' (first at line {first.line}); "
            "each key may appear once in a mapping",
        )
        return _SKIP


_CONSTRUCTOR = yaml.SafeLoader("")


def _parse_error(err: yaml.MarkedYAMLError, text: str) -> YamlProblem:
    mark = err.problem_mark or err.context_mark
    position = _mark(mark) if mark else Position()
    problem = err.problem or "invalid YAML"
    message = f"invalid YAML: {problem}"
    start = err.context_mark
    if err.context and start is not None and mark is not None and _mark(start) != position:
        message += (
            f" ({err.context} that starts at line {start.line + 1}, column {start.column + 1})"
        )
    if mark is not None and 0 <= mark.index < len(text) and text[mark.index] == "\t":
        message += "; indent with spaces, not tabs"
    else:
        for needle, hint in _HINTS:
            if needle in problem:
                message += f"; {hint}"
                break
    return YamlProblem(position, message)


def load_yaml(text: str) -> tuple[Any, list[YamlProblem]]:
    """Parse one YAML document into Located maps and lists, with the problems that did not
    stop the reading (duplicate keys, aliases, tags). Raise YamlProblem if unusable.

    One flat loop over the events: it is the loader's hot path (tens of thousands of events
    in a large folder), so the common cases are written out inline."""
    loader = _Loader(text)
    reader = _Reader(loader)
    check_event, get_event = loader.check_event, loader.get_event
    scalar_event, alias_event = yaml.ScalarEvent, yaml.AliasEvent
    map_start, seq_start = yaml.MappingStartEvent, yaml.SequenceStartEvent
    map_end, seq_end = yaml.MappingEndEvent, yaml.SequenceEndEvent
    plain_first = _PLAIN_FIRST
    new_position = tuple.__new__  # Position(a, b) without a Python-level call
    # Open containers; for mappings, the key waiting for its value and where it was.
    containers: list[Any] = []
    keys: list[Any] = []
    key_at: list[Position] = []
    starts: list[Any] = []
    root: Any = None
    count = 0
    aliases = 0
    more_at = Position()
    documents = 0
    try:
        while check_event():
            event = get_event()
            kind = type(event)
            if kind is map_end or kind is seq_end:
                value = containers.pop()
                keys.pop()
                key_at.pop()
                event = starts.pop()
                surprising = False
            elif kind is scalar_event:
                count += 1
                value = event.value
                if event.tag is not None or not (
                    event.style or (value and value[0] not in plain_first)
                ):
                    value, surprising = reader.scalar(event)
                else:
                    surprising = False
            elif kind is map_start or kind is seq_start:
                count += 1
                if count > MAX_NODES or len(containers) >= MAX_DEPTH:
                    break
                mark = event.start_mark
                position = new_position(Position, (mark.line + 1, mark.column + 1))
                if event.tag is not None:
                    reader.check_tag(event, _MAP_TAGS if kind is map_start else _SEQ_TAGS)
                containers.append(
                    LocatedMap(position) if kind is map_start else LocatedList(position)
                )
                keys.append(_NO_KEY)
                key_at.append(position)
                starts.append(event)
                continue
            elif kind is alias_event:
                count += 1
                aliases += 1
                if aliases <= MAX_ALIAS_REPORTS:
                    reader.problem(
                        _mark(event.start_mark),
                        f"alias '*{event.anchor}' refused: aliases are not allowed in flow "
                        "files; write the value out",
                    )
                elif aliases == MAX_ALIAS_REPORTS + 1:
                    more_at = _mark(event.start_mark)
                value, surprising = REFUSED, False
            elif kind is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise YamlProblem(
                        _mark(event.start_mark),
                        "a second YAML document (---) in the file; keep one flow per file",
                    )
                continue
            else:
                continue
            if count > MAX_NODES:
                break
            # Attach `value` (made by `event`) to the innermost open container.
            if not containers:
                root = value
                continue
            container = containers[-1]
            mark = event.start_mark
            position = new_position(Position, (mark.line + 1, mark.column + 1))
            if type(container) is LocatedList:
                if surprising:
                    container.plain_scalars[len(container)] = event.value
                container.append(value)
                container.item_positions.append(position)
                continue
            key = keys[-1]
            if key is _NO_KEY:
                text_key = event.value if kind is scalar_event else None
                if text_key is not None and text_key not in container and text_key != "<<":
                    keys[-1] = text_key  # keys stay the text written: `yes:` is 'yes'
                else:
                    keys[-1] = reader.key(event, value, container)
                key_at[-1] = position
                continue
            keys[-1] = _NO_KEY
            if key is _SKIP:
                continue
            container[key] = value
            container.key_positions[key] = key_at[-1]
            container.value_positions[key] = position
            if surprising:
                container.plain_scalars[key] = event.value
            elif kind is scalar_event and event.style in _QUOTED:
                container.quoted.add(key)
            elif kind is scalar_event and " " in event.value:
                end = event.end_mark.index
                rest = text[end : text.find("\n", end) if "\n" in text[end:] else len(text)]
                if rest.lstrip(" \t").startswith("#"):
                    hash_at = event.end_mark.column + 1 + (len(rest) - len(rest.lstrip(" \t")))
                    container.comment_cuts[key] = Position(event.end_mark.line + 1, hash_at)
    except yaml.MarkedYAMLError as err:
        raise _parse_error(err, text) from None
    except yaml.YAMLError as err:
        raise YamlProblem(Position(), f"invalid YAML: {err}") from None
    finally:
        loader.dispose()
    if count > MAX_NODES:
        raise YamlProblem(
            _mark(event.start_mark),
            f"file too large: more than {MAX_NODES} values; split it into several flows",
        )
    if containers:
        raise YamlProblem(
            _mark(event.start_mark), f"nested too deeply (more than {MAX_DEPTH} levels)"
        )
    if aliases > MAX_ALIAS_REPORTS:
        reader.problem(
            more_at,
            f"{aliases - MAX_ALIAS_REPORTS} more aliases from here on, also refused; "
            "write each value out",
        )
    return root, reader.problems
