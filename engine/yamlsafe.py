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

    __slots__ = ("key_positions", "plain_scalars", "position", "quoted", "value_positions")

    def __init__(self, position: Position) -> None:
        super().__init__()
        self.position = position
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


_NO_KEY = object()  # a mapping frame waiting for its next key
_SKIP = object()  # a mapping frame whose next value is dropped (bad or duplicate key)


class _Frame:
    """A mapping or list being built, and (for a mapping) the key whose value comes next."""

    __slots__ = ("container", "key", "key_position")

    def __init__(self, container: LocatedMap | LocatedList) -> None:
        self.container = container
        self.key: Any = _NO_KEY
        self.key_position = container.position


class _Builder:
    __slots__ = ("count", "problems", "resolver", "root", "stack")

    def __init__(self, resolver: Any) -> None:
        self.resolver = resolver
        self.root: Any = None
        self.stack: list[_Frame] = []
        self.count = 0
        # Problems that leave the rest of the file readable: reported, and reading goes on.
        self.problems: list[YamlProblem] = []

    def problem(self, mark: Any, message: str) -> None:
        self.problems.append(YamlProblem(_mark(mark), message))

    def tick(self, event: Any) -> None:
        self.count += 1
        if self.count > MAX_NODES:
            raise YamlProblem(
                _mark(event.start_mark),
                f"file too large: more than {MAX_NODES} values; split it into several flows",
            )

    def check_tag(self, event: Any, allowed: frozenset[str]) -> str | None:
        """The explicit tag of a node when it is a core one; reports any other."""
        tag = event.tag
        if tag is None or tag == "!":
            return None
        if tag in allowed:
            return tag
        self.problem(
            event.start_mark,
            f"YAML tags such as '{_tag_words(tag)}' are not allowed in flow files; "
            "write the plain value",
        )
        return None

    def scalar(self, event: Any) -> tuple[Any, bool]:
        """(value, surprising): surprising when a plain scalar did not stay text."""
        tag = self.check_tag(event, _SCALAR_TAGS)
        value = event.value
        if event.style:  # quoted or block: text, whatever it looks like
            if tag is None or tag == _STR:
                return value, False
        elif tag is None:
            tag = self.resolver.resolve(yaml.ScalarNode, value, event.implicit)
        if tag == _STR:
            return value, False
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

    def add(self, value: Any, event: Any, surprising: bool, text: str = "") -> None:
        """Attach a finished value to the container on top of the stack."""
        if not self.stack:
            self.root = value
            return
        frame = self.stack[-1]
        container = frame.container
        position = _mark(event.start_mark)
        if isinstance(container, LocatedList):
            if surprising:
                container.plain_scalars[len(container)] = text
            container.append(value)
            container.item_positions.append(position)
            return
        key = frame.key
        if key is _NO_KEY:
            self.key(frame, value, event)
            return
        frame.key = _NO_KEY
        if key is _SKIP:
            return
        container[key] = value
        container.key_positions[key] = frame.key_position
        container.value_positions[key] = position
        if surprising:
            container.plain_scalars[key] = text
        elif getattr(event, "style", None) in _QUOTED:
            container.quoted.add(key)

    def key(self, frame: _Frame, value: Any, event: Any) -> None:
        container = frame.container
        assert isinstance(container, LocatedMap)
        frame.key_position = position = _mark(event.start_mark)
        frame.key = _SKIP
        if not isinstance(event, yaml.ScalarEvent):
            if value is not REFUSED:
                self.problem(event.start_mark, "a key must be a word, not a list or a mapping")
            return
        if not event.style and event.value == "<<" and event.tag in (None, _MERGE):
            self.problem(event.start_mark, "merge keys (<<) are not allowed in flow files")
            return
        # Keys are names: `yes:` or `1:` stay the text that was written.
        key = event.value
        if key in container:
            first = container.key_positions[key]
            self.problems.append(
                YamlProblem(
                    position,
                    f"duplicate key '{key}' (first at line {first.line}); "
                    "each key may appear once in a mapping",
                )
            )
            return
        frame.key = key

    def open(self, container: LocatedMap | LocatedList, event: Any) -> None:
        if len(self.stack) >= MAX_DEPTH:
            raise YamlProblem(
                _mark(event.start_mark), f"nested too deeply (more than {MAX_DEPTH} levels)"
            )
        self.stack.append(_Frame(container))

    def close(self, event_start: Any) -> None:
        frame = self.stack.pop()
        self.add(frame.container, event_start, False)


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
    stop the reading (duplicate keys, aliases, tags). Raise YamlProblem if unusable."""
    loader = _Loader(text)
    builder = _Builder(loader)
    starts: list[Any] = []  # the start event of each open container, for its position
    documents = 0
    try:
        while loader.check_event():
            event = loader.get_event()
            kind = type(event)
            if kind is yaml.ScalarEvent:
                builder.tick(event)
                value, surprising = builder.scalar(event)
                builder.add(value, event, surprising, event.value)
            elif kind is yaml.MappingStartEvent:
                builder.tick(event)
                builder.check_tag(event, _MAP_TAGS)
                builder.open(LocatedMap(_mark(event.start_mark)), event)
                starts.append(event)
            elif kind is yaml.SequenceStartEvent:
                builder.tick(event)
                builder.check_tag(event, _SEQ_TAGS)
                builder.open(LocatedList(_mark(event.start_mark)), event)
                starts.append(event)
            elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                builder.close(starts.pop())
            elif kind is yaml.AliasEvent:
                builder.tick(event)
                builder.problem(
                    event.start_mark,
                    f"alias '*{event.anchor}' refused: aliases are not allowed in flow files; "
                    "write the value out",
                )
                builder.add(REFUSED, event, False)
            elif kind is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise YamlProblem(
                        _mark(event.start_mark),
                        "a second YAML document (---) in the file; keep one flow per file",
                    )
    except yaml.MarkedYAMLError as err:
        raise _parse_error(err, text) from None
    except yaml.YAMLError as err:
        raise YamlProblem(Position(), f"invalid YAML: {err}") from None
    finally:
        loader.dispose()
    return builder.root, builder.problems
