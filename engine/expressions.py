"""The safe condition language of `when:` in flows.

Lawyers write conditions such as ``age(birth_date) >= 18 and kind in ['a', 'b']``. They are
tokenized and parsed here by a small precedence-climbing (Pratt) parser into a tree of frozen
nodes, checked once when a flow is loaded, and compiled into nested Python closures, so that
evaluating a condition per message is a single call. Python's eval/exec/compile are never
used: a condition can only read the saved answers it names and call the functions below.

Grammar, lowest precedence first::

    expression := or
    or         := and ('or' and)*
    and        := not ('and' not)*
    not        := 'not' not | comparison
    comparison := sum [('==' | '!=' | '<' | '<=' | '>' | '>=' | 'in' | 'not' 'in') sum]
    sum        := product (('+' | '-') product)*
    product    := unary (('*' | '/' | '//' | '%') unary)*
    unary      := '-' unary | primary
    primary    := NUMBER | STRING | 'true' | 'false' | 'null'
                | NAME                                  a saved answer
                | NAME '(' [expression (',' expression)*] ')'   a function of FUNCTIONS
                | '(' expression ')'
                | '[' [expression (',' expression)* [',']] ']'

- NUMBER is ``12`` or ``1.5`` (no leading zeros, so an unquoted date such as 2004-02-01 is
  an error rather than the number 2001); STRING is '...' or "..." with the escapes \\' \\"
  and \\\\; True/False and none/None are accepted too; NAME is [a-zA-Z_][a-zA-Z0-9_]*.
- Comparisons do not chain: ``a < b < c`` is an error (write ``a < b and b < c``).
- ``not`` cannot stand directly after a comparison or ``-`` (``a == not b``): Python
  rejects that too.
- ``and``/``or`` short-circuit and return an operand, as in Python.
- ``/`` is true division, ``//`` floor division. ``+`` also joins two texts or two lists;
  ``*``, ``/``, ``//``, ``%`` and unary ``-`` take numbers only (so neither a huge
  ``'a' * 1000000000`` nor Python's ``'%s' % x`` formatting can happen).
- Functions (FUNCTIONS): age(date) whole years, today(), len(text or list),
  days_until(date) (negative when past), date(text), year/month/day(date), lower(text),
  int(x) (truncates; reads text), number(x) (reads text, also '1,5' and '1 000').
- Dates: date - date is whole days (int); date + int and date - int shift by days; dates
  compare with each other. The date functions also accept text in YYYY-MM-DD or DD.MM.YYYY.

Runtime values are str, int, float, bool, None, datetime.date and list.

Static checks (ExpressionError, with the 0-based offset of the problem): syntax, unknown
functions (with a did-you-mean), argument counts, a source longer than MAX_LENGTH and nesting
deeper than MAX_DEPTH, and constant sub-expressions that cannot be evaluated (``1 / 0``,
``date('2024-13-01')``, ``'a' < 3``), which are folded at load time.

Runtime failures (a missing answer, a type mismatch) raise EvaluationError. Their messages
name types, never values: a value is somebody's answer and must not end up in a log.
"""

from __future__ import annotations

import difflib
import math
import operator
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import NamedTuple, TypeAlias

__all__ = [
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "Binary",
    "BoolOp",
    "Call",
    "Compare",
    "EvaluationError",
    "Expression",
    "ExpressionError",
    "Function",
    "ListLiteral",
    "Literal",
    "Node",
    "Unary",
    "Variable",
    "parse_expression",
]

MAX_LENGTH = 1000  # characters; a condition is one line of a flow, not a program
MAX_DEPTH = 50  # nesting levels; keeps parsing and evaluation far from Python's stack limit

Evaluator: TypeAlias = Callable[[Mapping[str, object], date], object]


# --------------------------------------------------------------------------------- errors


class ExpressionError(ValueError):
    """A syntax or static error in an authored expression."""

    message: str  # human message, e.g. "unknown function 'agee'; did you mean 'age'?"
    offset: int  # 0-based character offset in the source where the problem is
    source: str  # the expression's text ("" when not known)

    def __init__(self, message: str, offset: int, source: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.source = source

    def __reduce__(self) -> tuple[type[ExpressionError], tuple[str, int, str]]:
        # The default reduction would call __init__ with the message only.
        return type(self), (self.message, self.offset, self.source)


class EvaluationError(ValueError):
    """A runtime failure (type mismatch, division by zero, missing variable)."""


_TOO_DEEP = (
    f"expression is nested too deeply (the limit is {MAX_DEPTH} levels of brackets and operators)"
)


# ---------------------------------------------------------------------------------- nodes


@dataclass(frozen=True, slots=True)
class Literal:
    value: object  # str, int, float, bool or None
    offset: int


@dataclass(frozen=True, slots=True)
class Variable:
    name: str
    offset: int


@dataclass(frozen=True, slots=True)
class ListLiteral:
    items: tuple[Node, ...]
    offset: int  # of '['


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # '-' or 'not'
    operand: Node
    offset: int


@dataclass(frozen=True, slots=True)
class Binary:
    op: str  # '+', '-', '*', '/', '//', '%'
    left: Node
    right: Node
    offset: int  # of the operator


@dataclass(frozen=True, slots=True)
class Compare:
    op: str  # '==', '!=', '<', '<=', '>', '>=', 'in', 'not in'
    left: Node
    right: Node
    offset: int  # of the operator


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: str  # 'and' or 'or'
    operands: tuple[Node, ...]  # n-ary, so a long chain of `or` is not a deep tree
    offset: int  # of the first operator


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    args: tuple[Node, ...]
    offset: int  # of the function name


Node: TypeAlias = Literal | Variable | ListLiteral | Unary | Binary | Compare | BoolOp | Call


# ------------------------------------------------------------------------- value helpers

_NUMBERS = frozenset({int, float})  # exact types: bool is an int subclass but not a number here
_KINDS: dict[type, str] = {
    str: "text",
    int: "integer",
    float: "decimal number",
    bool: "boolean",
    type(None): "null",
    date: "date",
    datetime: "date and time",
    list: "list",
    tuple: "list",
}


def _kind(value: object) -> str:
    """The type of a value in words; never the value itself (it may be personal data)."""
    return _KINDS.get(type(value), type(value).__name__)


def _day(value: date) -> date:
    # datetime is a date subclass that refuses arithmetic with plain dates
    return value.date() if isinstance(value, datetime) else value


_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})")
_DOTTED_DATE = re.compile(r"([0-9]{1,2})\.([0-9]{1,2})\.([0-9]{4})")


def _parse_date(text: str) -> date | None:
    text = text.strip()
    if match := _ISO_DATE.fullmatch(text):
        year, month, day = match.groups()
    elif match := _DOTTED_DATE.fullmatch(text):
        day, month, year = match.groups()
    else:
        return None
    try:
        return date(int(year), int(month), int(day))
    except ValueError:
        return None


def _as_date(function: str, value: object) -> date:
    if type(value) is date:  # the common case first
        return value
    if isinstance(value, date):
        return _day(value)
    if type(value) is str:
        parsed = _parse_date(value)
        if parsed is None:
            raise EvaluationError(
                f"{function}() cannot read the text as a date; write YYYY-MM-DD or DD.MM.YYYY"
            )
        return parsed
    raise EvaluationError(f"{function}() expects a date, got {_kind(value)}")


_NUMBER_TEXT = re.compile(r"[+-]?[0-9]{1,300}(?:[.,][0-9]{1,300})?")
_DIGIT_GROUPING = str.maketrans("", "", " \u00a0\u202f\u2009")  # "1 000" as people type it


def _parse_number(text: str) -> int | float | None:
    """A number typed by a person: '42', '-3', '1.5' or '1,5' (decimal comma), '1 000'."""
    cleaned = text.strip().translate(_DIGIT_GROUPING)
    if not _NUMBER_TEXT.fullmatch(cleaned):
        return None
    if "." in cleaned or "," in cleaned:
        return float(cleaned.replace(",", "."))
    return int(cleaned)


def _shift(day: date, days: int) -> date:
    try:
        return _day(day) + timedelta(days=days)
    except OverflowError:
        raise EvaluationError("the date is out of range") from None


# ------------------------------------------------------------------------------ functions


class Function(NamedTuple):
    """A registry entry; `implementation(today, *args)` gets today's date first."""

    min_args: int
    max_args: int
    implementation: Callable[..., object]


def _fn_age(today: date, value: object) -> int:
    born = _as_date("age", value)
    # A birthday counts once its (month, day) is reached, so somebody born on 29 February
    # gets a year older on 1 March in common years.
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _fn_today(today: date) -> date:
    return today


def _fn_len(today: date, value: object) -> int:
    if type(value) in (str, list, tuple):
        return len(value)  # type: ignore[arg-type]
    raise EvaluationError(f"len() expects text or a list, got {_kind(value)}")


def _fn_days_until(today: date, value: object) -> int:
    return (_as_date("days_until", value) - today).days


def _fn_date(today: date, value: object) -> date:
    if isinstance(value, date):
        return _day(value)
    if type(value) is not str:
        raise EvaluationError(f"date() expects text, got {_kind(value)}")
    return _as_date("date", value)


def _fn_year(today: date, value: object) -> int:
    return _as_date("year", value).year


def _fn_month(today: date, value: object) -> int:
    return _as_date("month", value).month


def _fn_day(today: date, value: object) -> int:
    return _as_date("day", value).day


def _fn_lower(today: date, value: object) -> str:
    if type(value) is str:
        return value.lower()
    raise EvaluationError(f"lower() expects text, got {_kind(value)}")


def _to_number(function: str, value: object) -> int | float:
    if type(value) in _NUMBERS:
        return value  # type: ignore[return-value]
    if type(value) is str:
        number = _parse_number(value)
        if number is None:
            raise EvaluationError(f"{function}() cannot read the text as a number")
        return number
    raise EvaluationError(f"{function}() expects a number or text, got {_kind(value)}")


def _fn_int(today: date, value: object) -> int:
    number = _to_number("int", value)
    if type(number) is float and not math.isfinite(number):
        raise EvaluationError("int() cannot convert an infinite or undefined number")
    return int(number)  # towards zero, as Python's int()


def _fn_number(today: date, value: object) -> int | float:
    return _to_number("number", value)


FUNCTIONS: Mapping[str, Function] = MappingProxyType(
    {
        "age": Function(1, 1, _fn_age),
        "today": Function(0, 0, _fn_today),
        "len": Function(1, 1, _fn_len),
        "days_until": Function(1, 1, _fn_days_until),
        "date": Function(1, 1, _fn_date),
        "year": Function(1, 1, _fn_year),
        "month": Function(1, 1, _fn_month),
        "day": Function(1, 1, _fn_day),
        "lower": Function(1, 1, _fn_lower),
        "int": Function(1, 1, _fn_int),
        "number": Function(1, 1, _fn_number),
    }
)

# Calls whose result depends on the day of evaluation, so they are never folded at load time.
_USES_TODAY = frozenset({"age", "today", "days_until"})


# ------------------------------------------------------------------------------- operators


def _operand_error(op: str, left: object, right: object) -> EvaluationError:
    return EvaluationError(f"cannot use '{op}' on {_kind(left)} and {_kind(right)}")


def _add(left: object, right: object) -> object:
    lt, rt = type(left), type(right)
    if lt in _NUMBERS and rt in _NUMBERS:
        return left + right  # type: ignore[operator]
    if lt is rt and (lt is str or lt is list):
        return left + right  # type: ignore[operator]
    if rt is int and isinstance(left, date):
        return _shift(left, right)  # type: ignore[arg-type]
    if lt is int and isinstance(right, date):
        return _shift(right, left)  # type: ignore[arg-type]
    raise _operand_error("+", left, right)


def _subtract(left: object, right: object) -> object:
    lt, rt = type(left), type(right)
    if lt in _NUMBERS and rt in _NUMBERS:
        return left - right  # type: ignore[operator]
    if isinstance(left, date):
        if isinstance(right, date):
            return (_day(left) - _day(right)).days
        if rt is int:
            return _shift(left, -right)  # type: ignore[operator]
    raise _operand_error("-", left, right)


def _numeric(
    op: str, function: Callable[[object, object], object], divides: bool
) -> Callable[[object, object], object]:
    def apply(left: object, right: object) -> object:
        if type(left) not in _NUMBERS or type(right) not in _NUMBERS:
            raise _operand_error(op, left, right)
        if divides and right == 0:
            raise EvaluationError("division by zero")
        return function(left, right)

    return apply


_ARITHMETIC: dict[str, Callable[[object, object], object]] = {
    "+": _add,
    "-": _subtract,
    "*": _numeric("*", operator.mul, divides=False),
    "/": _numeric("/", operator.truediv, divides=True),
    "//": _numeric("//", operator.floordiv, divides=True),
    "%": _numeric("%", operator.mod, divides=True),
}

_ORDERINGS: dict[str, Callable[[object, object], object]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _negate(value: object) -> object:
    if type(value) in _NUMBERS:
        return -value  # type: ignore[operator]
    raise EvaluationError(f"cannot use '-' on {_kind(value)}")


def _contains(op: str, item: object, container: object) -> bool:
    if type(container) is list or type(container) is tuple:
        return item in container  # type: ignore[operator]
    if type(container) is str:
        if type(item) is str:
            return item in container
        raise EvaluationError(
            f"'{op}' with text on the right needs text on the left, got {_kind(item)}"
        )
    raise EvaluationError(f"'{op}' needs a list or text on the right, got {_kind(container)}")


# ------------------------------------------------------------------------------ tokenizer


class _Token(NamedTuple):
    kind: str  # "literal", "name", "op" (symbols and and/or/not/in) or "end"
    text: str  # as written
    value: object  # of a literal
    offset: int


_IDENT_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_IDENT_CHARS = _IDENT_START | frozenset("0123456789")
_DIGITS = frozenset("0123456789")
_SYMBOLS = (
    "//",
    "==",
    "!=",
    "<=",
    ">=",
    "<",
    ">",
    "+",
    "-",
    "*",
    "/",
    "%",
    "(",
    ")",
    "[",
    "]",
    ",",
)
_WORD_OPERATORS = frozenset({"and", "or", "not", "in"})
_CONSTANTS: dict[str, object] = {
    "true": True,
    "True": True,
    "false": False,
    "False": False,
    "null": None,
    "none": None,
    "None": None,
}
# Characters people reach for from other languages or word processors, and what to write.
_CHARACTER_HINTS = {
    "=": "unexpected '='; use '==' to compare",
    "!": "unexpected '!'; use 'not', or '!=' to compare",
    "&": "unexpected '&'; use 'and'",
    "|": "unexpected '|'; use 'or'",
    ".": "unexpected '.'; a '.' may only appear inside a number such as 1.5",
}
_CURLY_QUOTES = frozenset("\u201c\u201d\u201e\u2018\u2019\u201a\u00ab\u00bb")


def _tokens(source: str) -> Iterator[_Token]:
    """Yield tokens lazily, so a syntax error earlier in the text is reported first."""
    i, n = 0, len(source)
    while i < n:
        char = source[i]
        if char.isspace():
            i += 1
        elif char in _IDENT_START:
            end = i + 1
            while end < n and source[end] in _IDENT_CHARS:
                end += 1
            word = source[i:end]
            if word in _WORD_OPERATORS:
                yield _Token("op", word, None, i)
            elif word in _CONSTANTS:
                yield _Token("literal", word, _CONSTANTS[word], i)
            else:
                yield _Token("name", word, None, i)
            i = end
        elif char in _DIGITS:
            token = _number(source, i)
            yield token
            i += len(token.text)
        elif char == "'" or char == '"':
            token = _string(source, i)
            yield token
            i += len(token.text)
        else:
            for symbol in _SYMBOLS:
                if source.startswith(symbol, i):
                    yield _Token("op", symbol, None, i)
                    i += len(symbol)
                    break
            else:
                if char in _CURLY_QUOTES:
                    message = f"unexpected character '{char}'; use straight quotes ' or \""
                else:
                    message = _CHARACTER_HINTS.get(char, f"unexpected character {char!r}")
                raise ExpressionError(message, i)
    yield _Token("end", "", None, n)


def _number(source: str, start: int) -> _Token:
    n = len(source)
    end = start
    while end < n and source[end] in _DIGITS:
        end += 1
    decimal = False
    if end < n and source[end] == ".":
        if end + 1 < n and source[end + 1] in _DIGITS:
            decimal = True
            end += 1
            while end < n and source[end] in _DIGITS:
                end += 1
            if end < n and source[end] == ".":
                raise ExpressionError(
                    "unexpected '.' after a number; write a date in quotes, "
                    "e.g. date('01.02.2004')",
                    end,
                )
        else:
            raise ExpressionError("expected a digit after '.' in a number", end + 1)
    if end < n and source[end] in _IDENT_CHARS:
        raise ExpressionError(f"invalid number {source[start : end + 1]!r}", start)
    text = source[start:end]
    if not decimal and len(text) > 1 and text[0] == "0":
        # 2004-02-01 would silently be 2001; Python rejects leading zeros as well.
        raise ExpressionError(
            "a number cannot start with 0; write a date in quotes, e.g. date('2004-02-01')",
            start,
        )
    return _Token("literal", text, float(text) if decimal else int(text), start)


def _string(source: str, start: int) -> _Token:
    quote = source[start]
    parts: list[str] = []
    i, n = start + 1, len(source)
    while True:
        if i >= n:
            raise ExpressionError("unterminated string: the closing quote is missing", start)
        char = source[i]
        if char == quote:
            return _Token("literal", source[start : i + 1], "".join(parts), start)
        if char == "\\":
            if i + 1 >= n:
                raise ExpressionError("unterminated string: the closing quote is missing", start)
            escaped = source[i + 1]
            if escaped not in ("'", '"', "\\"):
                raise ExpressionError(
                    f"unknown escape '\\{escaped}' in a string; "
                    "only \\', \\\" and \\\\ are allowed",
                    i,
                )
            parts.append(escaped)
            i += 2
        else:
            parts.append(char)
            i += 1


# --------------------------------------------------------------------------------- parser

# Binding powers of the infix operators: higher binds tighter.
_OR_BP = 10
_AND_BP = 20
_NOT_BP = 30  # operand of prefix `not`: takes comparisons, stops at `and`/`or`
_COMPARE_BP = 40
_SUM_BP = 50
_PRODUCT_BP = 60
_UNARY_BP = 70  # operand of prefix `-`: a primary or another `-`
_INFIX_BP = {
    "or": _OR_BP,
    "and": _AND_BP,
    "==": _COMPARE_BP,
    "!=": _COMPARE_BP,
    "<": _COMPARE_BP,
    "<=": _COMPARE_BP,
    ">": _COMPARE_BP,
    ">=": _COMPARE_BP,
    "in": _COMPARE_BP,
    "+": _SUM_BP,
    "-": _SUM_BP,
    "*": _PRODUCT_BP,
    "/": _PRODUCT_BP,
    "//": _PRODUCT_BP,
    "%": _PRODUCT_BP,
}
_NAME_HINTS = {"is": "; use '==' or '!=' to compare"}


def _describe(token: _Token) -> str:
    if token.kind == "end":
        return "end of expression"
    text = token.text if len(token.text) <= 30 else token.text[:27] + "..."
    if token.kind == "literal" and token.text[0] in "'\"":
        return f"string {text}"
    if token.kind == "literal" and token.text[0] in _DIGITS:
        return f"number {text}"
    return f"'{text}'"


def _unknown_function(name: str) -> str:
    if name.lower() in FUNCTIONS:
        guesses = [name.lower()]
    else:
        guesses = difflib.get_close_matches(name, list(FUNCTIONS), n=1)
    if guesses:
        return f"unknown function '{name}'; did you mean '{guesses[0]}'?"
    return f"unknown function '{name}'; the functions are {', '.join(sorted(FUNCTIONS))}"


def _arity_message(name: str, spec: Function, got: int) -> str:
    if spec.max_args == 0:
        expected = "no arguments"
    elif spec.min_args == spec.max_args:
        expected = f"{spec.min_args} argument{'' if spec.min_args == 1 else 's'}"
    else:
        expected = f"{spec.min_args} to {spec.max_args} arguments"
    return f"{name}() takes {expected}, got {got}"


class _Parser:
    def __init__(self, source: str) -> None:
        self._stream = _tokens(source)
        self._buffer: list[_Token] = []
        self.variables: set[str] = set()
        self.functions: set[str] = set()

    # token access -------------------------------------------------------------------

    def _peek(self, ahead: int = 0) -> _Token:
        while len(self._buffer) <= ahead:
            if self._buffer and self._buffer[-1].kind == "end":
                return self._buffer[-1]
            self._buffer.append(next(self._stream))
        return self._buffer[ahead]

    def _advance(self) -> _Token:
        token = self._peek()
        if token.kind != "end":
            self._buffer.pop(0)
        return token

    def _at(self, symbol: str) -> bool:
        token = self._peek()
        return token.kind == "op" and token.text == symbol

    def _expect(self, symbol: str, expected: str) -> None:
        if not self._at(symbol):
            raise self._unexpected(expected, self._peek())
        self._advance()

    @staticmethod
    def _unexpected(expected: str, token: _Token) -> ExpressionError:
        hint = _NAME_HINTS.get(token.text, "") if token.kind == "name" else ""
        return ExpressionError(
            f"expected {expected} but found {_describe(token)}{hint}", token.offset
        )

    # grammar ------------------------------------------------------------------------

    def parse(self) -> Node:
        if self._peek().kind == "end":
            raise ExpressionError("empty expression", 0)
        node = self._expression(0, 1)
        if self._peek().kind != "end":
            raise self._unexpected("an operator or end of expression", self._peek())
        return node

    def _infix(self) -> tuple[str, int] | None:
        token = self._peek()
        if token.kind != "op":
            return None
        if token.text == "not":
            following = self._peek(1)
            if following.kind == "op" and following.text == "in":
                return "not in", _COMPARE_BP
            raise self._unexpected("'in' after 'not'", following)
        power = _INFIX_BP.get(token.text)
        return None if power is None else (token.text, power)

    def _expression(self, min_bp: int, depth: int) -> Node:
        """Precedence climbing: a prefix part, then every infix operator binding tighter."""
        if depth > MAX_DEPTH:
            raise ExpressionError(_TOO_DEEP, self._peek().offset)
        left = self._prefix(min_bp, depth)
        compared = False  # comparisons do not chain
        while (infix := self._infix()) is not None:
            op, power = infix
            if power <= min_bp:  # equal power stops too: left-associative
                break
            operator_token = self._advance()
            if op == "not in":
                self._advance()
            if power == _COMPARE_BP:
                if compared:
                    raise ExpressionError(
                        "comparisons cannot be chained; join them with 'and', e.g. a < b and b < c",
                        operator_token.offset,
                    )
                compared = True
            right = self._expression(power, depth + 1)
            left = self._combine(op, left, right, operator_token.offset)
        return left

    @staticmethod
    def _combine(op: str, left: Node, right: Node, offset: int) -> Node:
        if op in ("and", "or"):
            if isinstance(left, BoolOp) and left.op == op:
                return BoolOp(op, (*left.operands, right), left.offset)
            return BoolOp(op, (left, right), offset)
        if _INFIX_BP.get(op, _COMPARE_BP) == _COMPARE_BP:
            return Compare(op, left, right, offset)
        return Binary(op, left, right, offset)

    def _prefix(self, min_bp: int, depth: int) -> Node:
        token = self._advance()
        if token.kind == "literal":
            return Literal(token.value, token.offset)
        if token.kind == "name":
            if self._at("("):
                return self._call(token, depth)
            self.variables.add(token.text)
            return Variable(token.text, token.offset)
        if token.kind == "op":
            if token.text == "(":
                inner = self._expression(0, depth + 1)
                self._expect(")", "')'")
                return inner
            if token.text == "[":
                return self._list(token, depth)
            if token.text == "-":
                return Unary("-", self._expression(_UNARY_BP, depth + 1), token.offset)
            if token.text == "not":
                if min_bp > _NOT_BP:
                    raise ExpressionError(
                        "'not' cannot stand here without parentheses, e.g. a == (not b)",
                        token.offset,
                    )
                return Unary("not", self._expression(_NOT_BP, depth + 1), token.offset)
        raise self._unexpected("a value", token)

    def _call(self, name: _Token, depth: int) -> Node:
        spec = FUNCTIONS.get(name.text)
        if spec is None:
            raise ExpressionError(_unknown_function(name.text), name.offset)
        self._advance()  # '('
        args: list[Node] = []
        if not self._at(")"):
            while True:
                args.append(self._expression(0, depth + 1))
                if not self._at(","):
                    break
                self._advance()
        self._expect(")", "',' or ')'")
        if not spec.min_args <= len(args) <= spec.max_args:
            raise ExpressionError(_arity_message(name.text, spec, len(args)), name.offset)
        self.functions.add(name.text)
        return Call(name.text, tuple(args), name.offset)

    def _list(self, bracket: _Token, depth: int) -> Node:
        items: list[Node] = []
        while not self._at("]"):
            items.append(self._expression(0, depth + 1))
            if self._at(","):
                self._advance()  # a trailing comma is fine: lists are often one item a line
            elif not self._at("]"):
                raise self._unexpected("',' or ']'", self._peek())
        self._advance()
        return ListLiteral(tuple(items), bracket.offset)


# ------------------------------------------------------------------------------- compiler

_VARIES = object()  # "not a constant": None and False are legitimate constants
_NO_VALUES: Mapping[str, object] = MappingProxyType({})


def _guarded(run: Evaluator, values: Mapping[str, object], today: date) -> object:
    """Run a compiled expression, turning any stray Python error into an EvaluationError."""
    try:
        return run(values, today)
    except EvaluationError:
        raise
    except ZeroDivisionError:
        raise EvaluationError("division by zero") from None
    except OverflowError:
        raise EvaluationError("a number or date is out of range") from None
    except (ArithmeticError, TypeError, ValueError) as exc:
        # `from None` and no exc text: Python's messages may quote the values involved.
        raise EvaluationError(f"the expression failed ({type(exc).__name__})") from None


def _constant(value: object) -> Evaluator:
    if type(value) is list:
        items = tuple(value)
        return lambda values, today: list(items)  # a fresh list: callers may change it
    return lambda values, today: value


def _fold(run: Evaluator, offset: int) -> tuple[Evaluator, object]:
    """Evaluate a constant sub-expression once at load time; its failure is a static error."""
    try:
        value = _guarded(run, _NO_VALUES, date.min)
    except EvaluationError as exc:
        raise ExpressionError(str(exc), offset) from None
    return _constant(value), value


def _compile(node: Node, depth: int) -> tuple[Evaluator, object]:
    """Compile a tree into one closure; return it and its value if constant, else _VARIES."""
    if depth > MAX_DEPTH:  # long left-associative chains such as 1+1+1+... get here
        raise ExpressionError(_TOO_DEEP, node.offset)
    if isinstance(node, Literal):
        return _constant(node.value), node.value
    if isinstance(node, Variable):
        return _variable(node.name), _VARIES
    if isinstance(node, ListLiteral):
        items = [_compile(item, depth + 1) for item in node.items]
        if all(value is not _VARIES for _, value in items):
            constant = [value for _, value in items]
            return _constant(constant), constant
        return _list([run for run, _ in items]), _VARIES
    if isinstance(node, Unary):
        operand, value = _compile(node.operand, depth + 1)
        run = _not(operand) if node.op == "not" else _minus(operand)
        return _fold(run, node.offset) if value is not _VARIES else (run, _VARIES)
    if isinstance(node, Binary):
        left, left_value = _compile(node.left, depth + 1)
        right, right_value = _compile(node.right, depth + 1)
        run = _binary(_ARITHMETIC[node.op], left, right)
        if left_value is not _VARIES and right_value is not _VARIES:
            return _fold(run, node.offset)
        return run, _VARIES
    if isinstance(node, Compare):
        left, left_value = _compile(node.left, depth + 1)
        right, right_value = _compile(node.right, depth + 1)
        run = _compare(node.op, left, right, right_value)
        if left_value is not _VARIES and right_value is not _VARIES:
            return _fold(run, node.offset)
        return run, _VARIES
    if isinstance(node, BoolOp):
        operands = [_compile(operand, depth + 1) for operand in node.operands]
        run = _boolean(node.op, [operand for operand, _ in operands])
        if all(value is not _VARIES for _, value in operands):
            return _fold(run, node.offset)
        return run, _VARIES
    args = [_compile(arg, depth + 1) for arg in node.args]
    run = _call(FUNCTIONS[node.name].implementation, [arg for arg, _ in args])
    if node.name not in _USES_TODAY and all(value is not _VARIES for _, value in args):
        return _fold(run, node.offset)
    return run, _VARIES


# Closure builders. Each returns a function (values, today) -> value; the specialised
# shapes (constant right operand, one argument, two operands) avoid a call per evaluation.


def _variable(name: str) -> Evaluator:
    def variable(values: Mapping[str, object], today: date) -> object:
        try:
            return values[name]
        except KeyError:
            raise EvaluationError(f"variable '{name}' has no value") from None

    return variable


def _list(items: list[Evaluator]) -> Evaluator:
    def make_list(values: Mapping[str, object], today: date) -> object:
        return [item(values, today) for item in items]

    return make_list


def _not(operand: Evaluator) -> Evaluator:
    def negation(values: Mapping[str, object], today: date) -> object:
        return not operand(values, today)

    return negation


def _minus(operand: Evaluator) -> Evaluator:
    def minus(values: Mapping[str, object], today: date) -> object:
        return _negate(operand(values, today))

    return minus


def _binary(
    apply: Callable[[object, object], object], left: Evaluator, right: Evaluator
) -> Evaluator:
    def binary(values: Mapping[str, object], today: date) -> object:
        return apply(left(values, today), right(values, today))

    return binary


def _compare(op: str, left: Evaluator, right: Evaluator, right_value: object) -> Evaluator:
    constant = right_value is not _VARIES
    if op in ("==", "!="):
        equal = op == "=="
        if constant:

            def equals_constant(values: Mapping[str, object], today: date) -> object:
                return (left(values, today) == right_value) is equal

            return equals_constant

        def equals(values: Mapping[str, object], today: date) -> object:
            return (left(values, today) == right(values, today)) is equal

        return equals

    if op in ("in", "not in"):
        inside = op == "in"
        if constant and type(right_value) is list:
            choices = tuple(right_value)

            def in_constant_list(values: Mapping[str, object], today: date) -> object:
                return (left(values, today) in choices) is inside

            return in_constant_list

        def contains(values: Mapping[str, object], today: date) -> object:
            return _contains(op, left(values, today), right(values, today)) is inside

        return contains

    order = _ORDERINGS[op]
    if constant:

        def orders_constant(values: Mapping[str, object], today: date) -> object:
            value = left(values, today)
            try:
                return order(value, right_value)
            except TypeError:
                raise _comparison_error(op, value, right_value) from None

        return orders_constant

    def orders(values: Mapping[str, object], today: date) -> object:
        first, second = left(values, today), right(values, today)
        try:
            return order(first, second)
        except TypeError:
            raise _comparison_error(op, first, second) from None

    return orders


def _comparison_error(op: str, left: object, right: object) -> EvaluationError:
    return EvaluationError(f"cannot compare {_kind(left)} with {_kind(right)} using '{op}'")


def _boolean(op: str, operands: list[Evaluator]) -> Evaluator:
    if len(operands) == 2:
        first, second = operands
        if op == "and":

            def both(values: Mapping[str, object], today: date) -> object:
                return first(values, today) and second(values, today)

            return both

        def either(values: Mapping[str, object], today: date) -> object:
            return first(values, today) or second(values, today)

        return either

    *leading, last = operands
    stop_when = op == "or"  # `or` stops at the first truthy operand, `and` at the first falsy

    def chain(values: Mapping[str, object], today: date) -> object:
        for operand in leading:
            result = operand(values, today)
            if bool(result) is stop_when:
                return result
        return last(values, today)

    return chain


def _call(implementation: Callable[..., object], args: list[Evaluator]) -> Evaluator:
    if not args:

        def call0(values: Mapping[str, object], today: date) -> object:
            return implementation(today)

        return call0
    if len(args) == 1:
        (only,) = args

        def call1(values: Mapping[str, object], today: date) -> object:
            return implementation(today, only(values, today))

        return call1

    def call(values: Mapping[str, object], today: date) -> object:
        return implementation(today, *[arg(values, today) for arg in args])

    return call


# ----------------------------------------------------------------------------- public API


@dataclass(frozen=True, slots=True)
class Expression:
    """A parsed, checked and compiled condition; make one with parse_expression()."""

    source: str
    variables: frozenset[str]  # every variable name the expression reads
    functions: frozenset[str]  # every function name it calls
    tree: Node = field(repr=False, compare=False)
    _run: Evaluator = field(repr=False, compare=False)

    def evaluate(self, values: Mapping[str, object], today: date) -> object:
        """The value of the expression for these saved answers on this day."""
        return _guarded(self._run, values, today)

    def test(self, values: Mapping[str, object], today: date) -> bool:
        """evaluate() then truthiness; an EvaluationError is re-raised."""
        return bool(_guarded(self._run, values, today))

    def __reduce__(self) -> tuple[Callable[[str], Expression], tuple[str]]:
        # Closures do not pickle; the source is all that is needed to rebuild one.
        return parse_expression, (self.source,)


def parse_expression(source: str) -> Expression:
    """Parse and statically check; raises ExpressionError (first problem) with offset."""
    if not isinstance(source, str):
        raise ExpressionError(
            f"a condition must be text, got {_kind(source)}; put it in quotes", 0, str(source)
        )
    try:
        if len(source) > MAX_LENGTH:
            raise ExpressionError(
                f"expression is too long ({len(source)} characters; the limit is {MAX_LENGTH})",
                MAX_LENGTH,
            )
        parser = _Parser(source)
        tree = parser.parse()
        run, _ = _compile(tree, 1)
    except ExpressionError as exc:
        exc.source = source
        raise
    return Expression(source, frozenset(parser.variables), frozenset(parser.functions), tree, run)
