"""Safe YAML reading that keeps where every key and value came from.

PyYAML composes a node tree (with line and column marks) and we build plain Python values
from it ourselves, so that:
- no tag ever constructs a Python object (only the safe core schema is resolved);
- a duplicate key is an error instead of a silent overwrite;
- an alias (`*name`) is refused, so a hostile file cannot expand into millions of nodes;
- the number of nodes is capped;
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

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class YamlProblem(Exception):
    """A file that is not usable YAML, with the position of the problem."""

    def __init__(self, position: Position, message: str) -> None:
        super().__init__(message)
        self.position = position
        self.message = message


class Scalar:
    """Marker of what YAML made of a plain scalar, kept for 'quote this' hints."""

    __slots__ = ()


class LocatedMap(dict[str, Any]):
    """A mapping from the file; `.position` of the map, and of each key and value."""

    __slots__ = ("key_positions", "plain_scalars", "position", "value_positions")

    def __init__(self, position: Position) -> None:
        super().__init__()
        self.position = position
        self.key_positions: dict[str, Position] = {}
        self.value_positions: dict[str, Position] = {}
        # Keys whose value was an unquoted scalar that YAML turned into a non-string
        # (yes -> True, 1.10 -> 1.1): the text as written, to explain the surprise.
        self.plain_scalars: dict[str, str] = {}

    def key_at(self, key: str) -> Position:
        return self.key_positions.get(key, self.position)

    def value_at(self, key: str) -> Position:
        return self.value_positions.get(key, self.position)


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


def _position(node: yaml.Node) -> Position:
    mark = node.start_mark
    return Position(mark.line + 1, mark.column + 1)


class _Builder:
    __slots__ = ("count", "problems", "seen")

    def __init__(self) -> None:
        self.seen: set[int] = set()
        self.count = 0
        # Problems that leave the rest of the file readable: reported, and reading goes on.
        self.problems: list[YamlProblem] = []

    def build(self, node: yaml.Node) -> Any:
        # The composer hands back the very same node object for every alias of an anchor.
        if id(node) in self.seen:
            self.problems.append(
                YamlProblem(
                    _position(node),
                    "this value is reused through an alias (*name); aliases are not allowed "
                    "in flow files: write the value out",
                )
            )
            return None
        self.seen.add(id(node))
        self.count += 1
        if self.count > MAX_NODES:
            raise YamlProblem(_position(node), f"file too large: more than {MAX_NODES} nodes")
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)
        if isinstance(node, yaml.SequenceNode):
            items = LocatedList(_position(node))
            for index, child in enumerate(node.value):
                items.append(self.build(child))
                items.item_positions.append(_position(child))
                if _is_surprising(child):
                    items.plain_scalars[index] = child.value
            return items
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node)
        raise YamlProblem(_position(node), f"unsupported YAML node {type(node).__name__}")

    def mapping(self, node: yaml.MappingNode) -> LocatedMap:
        result = LocatedMap(_position(node))
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                self.problems.append(
                    YamlProblem(_position(key_node), "merge keys (<<) are not allowed")
                )
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.problems.append(YamlProblem(_position(key_node), "a key must be a word"))
                continue
            # Keys are names: `yes:` or `1:` stay the text that was written.
            key = key_node.value
            if key in result:
                first = result.key_positions[key]
                self.problems.append(
                    YamlProblem(
                        _position(key_node),
                        f"duplicate key '{key}' (first at line {first.line}); "
                        "each key may appear once in a mapping",
                    )
                )
                continue
            result[key] = self.build(value_node)
            result.key_positions[key] = _position(key_node)
            result.value_positions[key] = _position(value_node)
            if _is_surprising(value_node):
                result.plain_scalars[key] = value_node.value
        return result

    def scalar(self, node: yaml.ScalarNode) -> Any:
        tag = node.tag
        if tag == _STR or node.style in ("'", '"', "|", ">"):
            return node.value
        try:
            if tag == _NULL:
                return None
            if tag == _BOOL:
                return node.value.lower() in ("yes", "true", "on", "y")
            if tag == _INT:
                return yaml.SafeLoader.construct_yaml_int(_SAFE_CONSTRUCTOR, node)
            if tag == _FLOAT:
                return yaml.SafeLoader.construct_yaml_float(_SAFE_CONSTRUCTOR, node)
            if tag == _TIMESTAMP:
                return yaml.SafeLoader.construct_yaml_timestamp(_SAFE_CONSTRUCTOR, node)
        except (ValueError, yaml.YAMLError):
            return node.value
        if tag.startswith("!"):
            self.problems.append(
                YamlProblem(_position(node), f"YAML tags such as '{tag}' are not allowed")
            )
        return node.value


_SAFE_CONSTRUCTOR = yaml.SafeLoader("")


def _is_surprising(node: yaml.Node) -> bool:
    """An unquoted scalar that YAML resolved to something other than text."""
    return (
        isinstance(node, yaml.ScalarNode)
        and node.style in (None, "")
        and node.tag in (_BOOL, _NULL, _INT, _FLOAT, _TIMESTAMP)
    )


def load_yaml(text: str) -> tuple[Any, list[YamlProblem]]:
    """Parse one YAML document into Located maps and lists, with the problems that did not
    stop the reading (duplicate keys, aliases, tags). Raise YamlProblem if unusable."""
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        position = Position(mark.line + 1, mark.column + 1) if mark else Position()
        problem = err.problem or "invalid YAML"
        context = f" {err.context}" if err.context else ""
        raise YamlProblem(position, f"invalid YAML: {problem}{context}") from None
    except yaml.YAMLError as err:
        raise YamlProblem(Position(), f"invalid YAML: {err}") from None
    if root is None:
        return None, []
    builder = _Builder()
    return builder.build(root), builder.problems
