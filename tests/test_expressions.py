"""The `when:` condition language: parsing, static checks, evaluation and limits."""

from __future__ import annotations

import ast
import copy
import pickle
import time
from datetime import date, datetime
from pathlib import Path

import pytest

from engine import expressions
from engine.expressions import (
    FUNCTIONS,
    MAX_DEPTH,
    MAX_LENGTH,
    Binary,
    BoolOp,
    Call,
    Compare,
    EvaluationError,
    Expression,
    ExpressionError,
    ListLiteral,
    Literal,
    Unary,
    Variable,
    parse_expression,
)

TODAY = date(2024, 6, 15)


def run(source: str, today: date = TODAY, **values: object) -> object:
    return parse_expression(source).evaluate(values, today)


def static_error(source: str) -> ExpressionError:
    with pytest.raises(ExpressionError) as caught:
        parse_expression(source)
    return caught.value


def runtime_error(source: str, **values: object) -> str:
    with pytest.raises(EvaluationError) as caught:
        run(source, **values)
    return str(caught.value)


# ------------------------------------------------------------------------------ literals


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("0", 0),
        ("42", 42),
        ("1.5", 1.5),
        ("0.25", 0.25),
        ("'text'", "text"),
        ('"text"', "text"),
        ("''", ""),
        (r"'it\'s'", "it's"),
        (r'"say \"hi\""', 'say "hi"'),
        (r"'back\\slash'", "back\\slash"),
        ("'a \"quoted\" word'", 'a "quoted" word'),
        ("'Привет'", "Привет"),
        ("true", True),
        ("True", True),
        ("false", False),
        ("False", False),
        ("null", None),
        ("none", None),
        ("None", None),
        ("[]", []),
        ("[1, 'a', true, null]", [1, "a", True, None]),
        ("[1, 2,]", [1, 2]),
        ("[[1], []]", [[1], []]),
    ],
)
def test_literals(source: str, expected: object) -> None:
    result = run(source)
    assert result == expected
    assert type(result) is type(expected)


def test_list_literal_with_variables() -> None:
    assert run("[x, x + 1, 'a']", x=1) == [1, 2, "a"]


def test_constant_list_is_fresh_each_time() -> None:
    expression = parse_expression("[1, 2]")
    first = expression.evaluate({}, TODAY)
    assert isinstance(first, list)
    first.append(3)
    assert expression.evaluate({}, TODAY) == [1, 2]


def test_whitespace_including_newlines_and_non_breaking_spaces() -> None:
    assert run("  x\n  >=\t18\u00a0", x=20) is True


# ---------------------------------------------------------------------------- precedence


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("10 - 3 - 2", 5),  # left-associative
        ("10 - (3 - 2)", 9),
        ("100 / 10 / 2", 5.0),
        ("2 * 3 % 4", 2),  # (2 * 3) % 4
        ("2 + 3 % 4", 5),
        ("-2 * 3", -6),
        ("-(2 + 3)", -5),
        ("- -3", 3),
        ("--3", 3),
        ("2 - -3", 5),
        ("1 + 2 < 4", True),
        ("1 + 2 == 3", True),
        ("not 1 == 2", True),  # not (1 == 2)
        ("not true and false", False),  # (not true) and false
        ("not false or false", True),
        ("true or true and false", True),  # true or (true and false)
        ("(true or true) and false", False),
        ("false and true or true", True),  # (false and true) or true
        ("not not true", True),
        ("1 in [1] and 2 not in [1]", True),
        ("7 // 2 * 2", 6),
    ],
)
def test_precedence_and_associativity(source: str, expected: object) -> None:
    assert run(source) == expected


def test_tree_shapes() -> None:
    assert parse_expression("a - b - c").tree == Binary(
        "-", Binary("-", Variable("a", 0), Variable("b", 4), 2), Variable("c", 8), 6
    )
    assert parse_expression("a + b * c").tree == Binary(
        "+", Variable("a", 0), Binary("*", Variable("b", 4), Variable("c", 8), 6), 2
    )
    assert parse_expression("not a == 1").tree == Unary(
        "not", Compare("==", Variable("a", 4), Literal(1, 9), 6), 0
    )
    assert parse_expression("-a * b").tree == Binary(
        "*", Unary("-", Variable("a", 1), 0), Variable("b", 5), 3
    )
    # and/or chains are one n-ary node, `and` binding tighter than `or`
    assert parse_expression("a or b and c or d").tree == BoolOp(
        "or",
        (
            Variable("a", 0),
            BoolOp("and", (Variable("b", 5), Variable("c", 11)), 7),
            Variable("d", 16),
        ),
        2,
    )
    assert parse_expression("x not in [1]").tree == Compare(
        "not in", Variable("x", 0), ListLiteral((Literal(1, 10),), 9), 2
    )
    assert parse_expression("age(d)").tree == Call("age", (Variable("d", 4),), 0)


def test_parenthesised_comparisons_may_be_combined() -> None:
    assert run("(1 < 2) == true") is True


# ----------------------------------------------------------------------------- operators


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("x == 3", True),
        ("x == 4", False),
        ("x != 4", True),
        ("x != 3", False),
        ("x < 4", True),
        ("x < 3", False),
        ("x <= 3", True),
        ("x > 2", True),
        ("x > 3", False),
        ("x >= 3", True),
        ("x >= 3.5", False),
        ("x + 2", 5),
        ("x - 5", -2),
        ("x * 2", 6),
        ("x * 0.5", 1.5),
        ("x / 2", 1.5),
        ("x / 3", 1.0),
        ("x // 2", 1),
        ("-x // 2", -2),  # floor, as in Python
        ("x % 2", 1),
        ("-x", -3),
        ("x == 3.0", True),
        ("x == '3'", False),
        ("x == null", False),
    ],
)
def test_operators_on_numbers(source: str, expected: object) -> None:
    result = run(source, x=3)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("s == 'abc'", True),
        ("s != 'abc'", False),
        ("s < 'abd'", True),
        ("s >= 'abc'", True),
        ("s + 'def'", "abcdef"),
        ("[1] + [2, 3]", [1, 2, 3]),
        ("l + [3]", [1, 2, 3]),
        ("l == [1, 2]", True),
        ("nothing == null", True),
        ("nothing != null", False),
        ("flag == true", True),
        ("not flag", False),
    ],
)
def test_operators_on_other_values(source: str, expected: object) -> None:
    assert run(source, s="abc", l=[1, 2], nothing=None, flag=True) == expected


def test_and_or_return_operands_and_short_circuit() -> None:
    # `missing` has no value: evaluating it would raise, so these prove the short-circuit
    assert run("false and missing") is False
    assert run("true or missing") is True
    assert run("0 and missing") == 0
    assert run("name or 'anonymous'", name="") == "anonymous"
    assert run("name or 'anonymous'", name="Ann") == "Ann"
    assert run("a and b", a=1, b="x") == "x"
    assert run("a or b or c or missing", a=0, b="", c=5) == 5
    assert run("a and b and c and d", a=1, b=2, c=0) == 0
    assert run("a or b or c", a=0, b="", c=None) is None
    assert run("a and b and c", a=1, b=2, c=3) == 3


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("kind in ['a', 'b']", True),
        ("kind in ['x', 'y']", False),
        ("kind not in ['x', 'y']", True),
        ("kind not in ['a', 'b']", False),
        ("kind in choices", True),
        ("'z' in choices", False),
        ("'z' not in choices", True),
        ("kind in [other, 'q']", True),
        ("kind in []", False),
        ("1 in [1.0, 2]", True),
        ("'ell' in word", True),
        ("'ELL' in word", False),
        ("'ELL' in lower('HELLO')", False),
        ("lower('ELL') in lower('HELLO')", True),
        ("'' in word", True),
        ("'xyz' not in word", True),
        ("'ell' not in word", False),
        ("kind in 'abc'", True),
        ("not kind in ['a']", False),
    ],
)
def test_in_and_not_in(source: str, expected: bool) -> None:
    assert run(source, kind="a", choices=["a", "b"], other="a", word="hello") is expected


# ----------------------------------------------------------------------------- functions


def test_function_registry() -> None:
    assert set(FUNCTIONS) == {
        "age",
        "today",
        "len",
        "days_until",
        "date",
        "year",
        "month",
        "day",
        "lower",
        "int",
        "number",
    }
    minimum, maximum, implementation = FUNCTIONS["age"]
    assert (minimum, maximum) == (1, 1)
    assert implementation(date(2024, 1, 1), date(2000, 1, 1)) == 24
    assert FUNCTIONS["today"].max_args == 0
    with pytest.raises(TypeError):
        FUNCTIONS["evil"] = FUNCTIONS["age"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("today()", TODAY),
        ("len('hello')", 5),
        ("len('')", 0),
        ("len([1, 2, 3])", 3),
        ("len(l)", 2),
        ("days_until(date('2024-06-20'))", 5),
        ("days_until(date('2024-06-15'))", 0),
        ("days_until(date('2024-06-01'))", -14),
        ("days_until('20.06.2024')", 5),
        ("date('2024-02-29')", date(2024, 2, 29)),
        ("date('29.02.2024')", date(2024, 2, 29)),
        ("date('1.2.2004')", date(2004, 2, 1)),
        ("date(' 2004-2-1 ')", date(2004, 2, 1)),
        ("date(d)", date(2004, 2, 1)),
        ("year(d)", 2004),
        ("month(d)", 2),
        ("day(d)", 1),
        ("year('15.03.1999')", 1999),
        ("month(today())", 6),
        ("lower('АбВ Def')", "абв def"),
        ("int(42)", 42),
        ("int(2.9)", 2),
        ("int(-2.9)", -2),
        ("int('17')", 17),
        ("int(' -17 ')", -17),
        ("int('3,7')", 3),
        ("number(2)", 2),
        ("number(2.5)", 2.5),
        ("number('2.5')", 2.5),
        ("number('2,5')", 2.5),
        ("number('1 000')", 1000),
        ("number('+7')", 7),
    ],
)
def test_functions(source: str, expected: object) -> None:
    result = run(source, l=["a", "b"], d=date(2004, 2, 1))
    assert result == expected
    assert type(result) is type(expected)


def test_date_functions_accept_datetimes() -> None:
    assert run("date(d)", d=datetime(2004, 2, 1, 10, 30)) == date(2004, 2, 1)
    assert run("age(d)", d=datetime(2004, 2, 1, 10, 30)) == 20
    assert run("d - date('2004-01-01')", d=datetime(2004, 2, 1, 10, 30)) == 31


# ------------------------------------------------------------------------------- dates


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("date('2024-03-01') - date('2024-02-01')", 29),  # leap year
        ("date('2023-03-01') - date('2023-02-01')", 28),
        ("date('2024-01-01') - date('2024-01-02')", -1),
        ("date('2024-02-28') + 1", date(2024, 2, 29)),
        ("1 + date('2024-02-28')", date(2024, 2, 29)),
        ("date('2024-03-01') - 1", date(2024, 2, 29)),
        ("date('2024-12-31') + 1", date(2025, 1, 1)),
        ("date('2024-01-10') + -10", date(2023, 12, 31)),
        ("today() + 30", date(2024, 7, 15)),
        ("today() - d", 7440),
        ("d + 7 - d", 7),
        ("date('2024-01-01') < date('2024-01-02')", True),
        ("date('2024-01-01') == date('01.01.2024')", True),
        ("d >= date('2004-02-01')", True),
        ("d > today()", False),
        ("d in [date('2004-02-01')]", True),
    ],
)
def test_date_arithmetic_and_comparison(source: str, expected: object) -> None:
    result = run(source, d=date(2004, 2, 1))
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("born", "today", "expected"),
    [
        (date(2000, 6, 15), date(2024, 6, 14), 23),  # the day before the birthday
        (date(2000, 6, 15), date(2024, 6, 15), 24),  # on the birthday
        (date(2000, 6, 15), date(2024, 6, 16), 24),
        (date(2000, 12, 31), date(2024, 1, 1), 23),
        (date(2000, 1, 1), date(2023, 12, 31), 23),
        (date(2024, 6, 15), date(2024, 6, 15), 0),  # born today
        # 29 February: a year older on 1 March in common years, on 29 February in leap years
        (date(2004, 2, 29), date(2005, 2, 28), 0),
        (date(2004, 2, 29), date(2005, 3, 1), 1),
        (date(2004, 2, 29), date(2008, 2, 28), 3),
        (date(2004, 2, 29), date(2008, 2, 29), 4),
        (date(2004, 2, 29), date(2022, 2, 28), 17),
        (date(2004, 2, 29), date(2022, 3, 1), 18),
        # somebody born on 1 March is not affected by the leap day
        (date(2004, 3, 1), date(2005, 2, 28), 0),
        (date(2004, 3, 1), date(2005, 3, 1), 1),
    ],
)
def test_age(born: date, today: date, expected: int) -> None:
    assert run("age(birth_date)", today, birth_date=born) == expected


def test_age_of_text_dates_and_the_adulthood_check() -> None:
    adult = parse_expression("age(birth_date) >= 18")
    assert adult.test({"birth_date": "15.06.2006"}, TODAY) is True
    assert adult.test({"birth_date": "2006-06-16"}, TODAY) is False


# --------------------------------------------------------------------------- static errors


@pytest.mark.parametrize(
    ("source", "offset", "message"),
    [
        ("", 0, "empty expression"),
        ("   ", 0, "empty expression"),
        ("(a + b", 6, "expected ')' but found end of expression"),
        ("(a b)", 3, "expected ')' but found 'b'"),
        ("age(x", 5, "expected ',' or ')' but found end of expression"),
        ("age(x y)", 6, "expected ',' or ')' but found 'y'"),
        ("age(x,)", 6, "expected a value but found ')'"),
        ("[1, 2", 5, "expected ',' or ']' but found end of expression"),
        ("[1 2]", 3, "expected ',' or ']' but found number 2"),
        ("[,]", 1, "expected a value but found ','"),
        ("a +", 3, "expected a value but found end of expression"),
        ("a + * b", 4, "expected a value but found '*'"),
        ("a ==", 4, "expected a value but found end of expression"),
        ("a and and b", 6, "expected a value but found 'and'"),
        ("a 18", 2, "expected an operator or end of expression but found number 18"),
        ("a 'x'", 2, "expected an operator or end of expression but found string 'x'"),
        ("a b", 2, "expected an operator or end of expression but found 'b'"),
        ("a)", 1, "expected an operator or end of expression but found ')'"),
        ("x[0]", 1, "expected an operator or end of expression but found '['"),
        (
            "a is None",
            2,
            "expected an operator or end of expression but found 'is'; use '==' or '!=' to compare",
        ),
        ("a not b", 6, "expected 'in' after 'not' but found 'b'"),
        ("a not", 5, "expected 'in' after 'not' but found end of expression"),
        ("in x", 0, "expected a value but found 'in'"),
        ("+1", 0, "expected a value but found '+'"),
        ("true(1)", 4, "expected an operator or end of expression but found '('"),
        (
            "a < b < c",
            6,
            "comparisons cannot be chained; join them with 'and', e.g. a < b and b < c",
        ),
        ("a == b != c", 7, "comparisons cannot be chained"),
        ("a in b in c", 7, "comparisons cannot be chained"),
        ("a < b + 1 < c", 10, "comparisons cannot be chained"),
        ("a == not b", 5, "'not' cannot stand here without parentheses, e.g. a == (not b)"),
        ("1 + not b", 4, "'not' cannot stand here without parentheses"),
        ("-not b", 1, "'not' cannot stand here without parentheses"),
        # the tokenizer
        ("x = 1", 2, "unexpected '='; use '==' to compare"),
        ("!x", 0, "unexpected '!'; use 'not', or '!=' to compare"),
        ("a && b", 2, "unexpected '&'; use 'and'"),
        ("a || b", 2, "unexpected '|'; use 'or'"),
        ("a ; b", 2, "unexpected character ';'"),
        ("{}", 0, "unexpected character '{'"),
        ("a ** 2", 3, "expected a value but found '*'"),
        ("x.y", 1, "unexpected '.'; a '.' may only appear inside a number such as 1.5"),
        (".5", 0, "unexpected '.'"),
        ("1.", 2, "expected a digit after '.' in a number"),
        ("1.x", 2, "expected a digit after '.' in a number"),
        ("12abc", 0, "invalid number '12a'"),
        ("007", 0, "a number cannot start with 0; write a date in quotes, e.g. date('2004-02-01')"),
        ("d < 2004-02-01", 9, "a number cannot start with 0"),
        ("d < 01.02.2004", 9, "unexpected '.' after a number; write a date in quotes"),
        ("'abc", 0, "unterminated string: the closing quote is missing"),
        ("x == \"abc'", 5, "unterminated string"),
        ("'abc\\", 0, "unterminated string"),
        ("'a\\nb'", 2, "unknown escape '\\n' in a string; only \\', \\\" and \\\\ are allowed"),
        ("\u201cyes\u201d", 0, "unexpected character '\u201c'; use straight quotes ' or \""),
        ("ж == 1", 0, "unexpected character 'ж'"),
        # functions
        ("agee(birth_date) >= 18", 0, "unknown function 'agee'; did you mean 'age'?"),
        ("x and lenght(y)", 6, "unknown function 'lenght'; did you mean 'len'?"),
        ("Age(x)", 0, "unknown function 'Age'; did you mean 'age'?"),
        ("daysuntil(x)", 0, "unknown function 'daysuntil'; did you mean 'days_until'?"),
        ("frobnicate(x)", 0, "unknown function 'frobnicate'; the functions are age, date, day"),
        ("age(x, y)", 0, "age() takes 1 argument, got 2"),
        ("1 + age()", 4, "age() takes 1 argument, got 0"),
        ("today(x)", 0, "today() takes no arguments, got 1"),
        ("lower(a, b, c)", 0, "lower() takes 1 argument, got 3"),
        # constant sub-expressions are evaluated at load time
        ("1 / 0", 2, "division by zero"),
        ("x and 1 // 0", 8, "division by zero"),
        ("5 % 0", 2, "division by zero"),
        ("'a' < 3", 4, "cannot compare text with integer using '<'"),
        ("'a' * 3", 4, "cannot use '*' on text and integer"),
        ("date('2024-13-01')", 0, "date() cannot read the text as a date"),
        ("x > date('31.02.2024')", 4, "date() cannot read the text as a date"),
        ("date(5)", 0, "date() expects text, got integer"),
        ("len(5)", 0, "len() expects text or a list, got integer"),
        ("int('abc')", 0, "int() cannot read the text as a number"),
        ("-'a'", 0, "cannot use '-' on text"),
        ("1 in 'abc'", 2, "'in' with text on the right needs text on the left, got integer"),
        ("1 not in 5", 2, "'not in' needs a list or text on the right, got integer"),
    ],
)
def test_static_errors(source: str, offset: int, message: str) -> None:
    error = static_error(source)
    assert error.message.startswith(message)
    assert str(error) == error.message
    assert error.offset == offset
    assert error.source == source


def test_first_problem_is_reported() -> None:
    # the syntax error at offset 2 comes before the bad character at offset 6
    assert static_error("a b + c . d").offset == 2
    assert static_error("agee(x) + lenn(y)").message.startswith("unknown function 'agee'")


def test_non_text_condition() -> None:
    error = static_error(True)  # type: ignore[arg-type]  # YAML `when: true`
    assert error.message == "a condition must be text, got boolean; put it in quotes"
    assert error.offset == 0


def test_expression_error_is_a_value_error_and_pickles() -> None:
    error = static_error("agee(x)")
    assert isinstance(error, ValueError)
    copied = pickle.loads(pickle.dumps(error))
    assert (copied.message, copied.offset, copied.source) == (
        "unknown function 'agee'; did you mean 'age'?",
        0,
        "agee(x)",
    )


# ------------------------------------------------------------------------------ security


@pytest.mark.parametrize(
    ("source", "offset"),
    [
        ("__import__('os')", 0),
        ("__import__('os').system('ls')", 0),
        ("x.__class__", 1),
        ("x.__class__.__mro__", 1),
        ("().__class__", 1),
        ("[].__class__", 2),
        ("''.join(x)", 2),
        ("lower.__globals__", 5),
        ("eval('1')", 0),
        ("exec('1')", 0),
        ("open('/etc/passwd')", 0),
        ("getattr(x, 'y')", 0),
        ("lambda: 1", 6),
        ("x if y else z", 2),
        ("[c for c in x]", 3),
        ("f'{x}'", 1),
    ],
)
def test_python_escapes_are_rejected(source: str, offset: int) -> None:
    assert static_error(source).offset == offset


def test_dunder_names_are_only_answers() -> None:
    # A name is looked up in the saved answers and nowhere else.
    assert run("__builtins__ == 1", __builtins__=1) is True
    assert "variable '__class__' has no value" in runtime_error("__class__")


def test_module_never_uses_python_evaluation() -> None:
    tree = ast.parse(Path(expressions.__file__).read_text(encoding="utf-8"))
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    attributes = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    assert not names & {"eval", "exec", "compile", "__import__", "getattr", "ast"}
    assert not attributes & {"literal_eval", "eval", "exec"}


# ----------------------------------------------------------------------------- limits


def test_length_limit() -> None:
    longest = "x" * MAX_LENGTH
    assert parse_expression(longest).variables == {longest}
    error = static_error("x" * (MAX_LENGTH + 1))
    assert (
        error.message == f"expression is too long ({MAX_LENGTH + 1} characters; the limit is 1000)"
    )
    assert error.offset == MAX_LENGTH


@pytest.mark.parametrize(
    ("opening", "closing"),
    [("(", ")"), ("[", "]"), ("len(", ")"), ("-", ""), ("not ", ""), ("-(", ")")],
)
def test_nesting_limit(opening: str, closing: str) -> None:
    parse_expression(opening * 20 + "x" + closing * 20)
    error = static_error(opening * 150 + "x" + closing * 150)  # would blow a naive stack
    assert error.message.startswith(f"expression is nested too deeply (the limit is {MAX_DEPTH}")
    assert 0 < error.offset < 150 * len(opening)


def test_long_operator_chains() -> None:
    # and/or are n-ary, so a long list of alternatives is fine...
    many = " or ".join(f"k == 'k{i}'" for i in range(60))
    assert len(many) < MAX_LENGTH
    assert parse_expression(many).test({"k": "k59"}, TODAY) is True
    assert parse_expression(many.replace(" or ", " and ")).test({"k": "k0"}, TODAY) is False
    # ...while a left-deep arithmetic chain counts as nesting
    assert run(" + ".join(["x"] * 40), x=1) == 40
    assert static_error(" + ".join(["x"] * 200)).message.startswith(
        "expression is nested too deeply"
    )


def test_the_worst_case_inside_the_limits_is_quick() -> None:
    started = time.perf_counter()
    for source in ("(" * 500 + ")" * 500, "-" * 999 + "1", "1+" * 499 + "1", "[" * 500 + "]" * 500):
        with pytest.raises(ExpressionError):
            parse_expression(source)
    assert time.perf_counter() - started < 1.0


def test_big_numbers_stay_bounded() -> None:
    assert run("99999999999999999999 * 99999999999999999999") == (10**20 - 1) ** 2
    assert "out of range" in static_error("9" * 400 + " / 3").message
    assert "out of range" in static_error("date('2024-01-01') + 99999999999").message
    assert "out of range" in runtime_error("d - 999999", d=date(2024, 1, 1))


# -------------------------------------------------------------------- evaluation errors


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("missing > 1", "variable 'missing' has no value"),
        ("x and missing", "variable 'missing' has no value"),
        ("name < 3", "cannot compare text with integer using '<'"),
        ("3 >= name", "cannot compare integer with text using '>='"),
        ("d < 3", "cannot compare date with integer using '<'"),
        ("nothing < 1", "cannot compare null with integer using '<'"),
        ("name + 1", "cannot use '+' on text and integer"),
        ("d + name", "cannot use '+' on date and text"),
        ("d + 1.5", "cannot use '+' on date and decimal number"),
        ("d + flag", "cannot use '+' on date and boolean"),
        ("1 - d", "cannot use '-' on integer and date"),
        ("name - 'a'", "cannot use '-' on text and text"),
        ("x * name", "cannot use '*' on integer and text"),
        ("l * 3", "cannot use '*' on list and integer"),
        ("x / zero", "division by zero"),
        ("x // zero", "division by zero"),
        ("x % zero", "division by zero"),
        ("x / 0.0", "division by zero"),
        ("flag + 1", "cannot use '+' on boolean and integer"),
        ("-name", "cannot use '-' on text"),
        ("x in 5", "'in' needs a list or text on the right, got integer"),
        ("x in name", "'in' with text on the right needs text on the left, got integer"),
        ("x not in nothing", "'not in' needs a list or text on the right, got null"),
        ("age(name)", "age() cannot read the text as a date; write YYYY-MM-DD or DD.MM.YYYY"),
        ("age('abc')", "age() cannot read the text as a date"),
        ("age(x)", "age() expects a date, got integer"),
        ("age(nothing)", "age() expects a date, got null"),
        ("days_until(l)", "days_until() expects a date, got list"),
        ("year(flag)", "year() expects a date, got boolean"),
        ("month(name)", "month() cannot read the text as a date"),
        ("day(decimal)", "day() expects a date, got decimal number"),
        ("date(x)", "date() expects text, got integer"),
        ("date(name)", "date() cannot read the text as a date"),
        ("len(x)", "len() expects text or a list, got integer"),
        ("len(nothing)", "len() expects text or a list, got null"),
        ("lower(x)", "lower() expects text, got integer"),
        ("int(name)", "int() cannot read the text as a number"),
        ("int(d)", "int() expects a number or text, got date"),
        ("int(flag)", "int() expects a number or text, got boolean"),
        ("number(name)", "number() cannot read the text as a number"),
        ("number(exponent)", "number() cannot read the text as a number"),
        ("number(nothing)", "number() expects a number or text, got null"),
    ],
)
def test_evaluation_errors(source: str, message: str) -> None:
    values = {"x": 1, "zero": 0, "name": "Ivanov", "d": date(2024, 1, 1), "flag": True}
    values |= {"nothing": None, "l": [1], "decimal": 1.5, "exponent": "1e5"}
    assert runtime_error(source, **values).startswith(message)


def test_string_formatting_is_unreachable() -> None:
    # '%' takes numbers only, so Python's printf-style formatting cannot be reached
    assert runtime_error("'%s' % x", x=1) == "cannot use '%' on text and integer"


def test_int_of_infinity() -> None:
    # there are no exponents in the language: an infinity can only come from an answer
    message = "int() cannot convert an infinite or undefined number"
    assert runtime_error("int(big)", big=float("inf")) == message
    assert runtime_error("int(big)", big=float("nan")) == message


def test_evaluation_errors_never_quote_answers() -> None:
    # Answers are personal data and error messages end up in logs.
    for source in ("name < 3", "age(name)", "int(name)", "name - 1", "date(name)"):
        assert "Ivanov" not in runtime_error(source, name="Ivanov Ivan")


def test_int_and_date_arithmetic_is_symmetric() -> None:
    assert run("x + d", x=1, d=date(2024, 1, 1)) == date(2024, 1, 2)


def test_test_is_truthiness_and_reraises() -> None:
    expression = parse_expression("answer")
    assert expression.test({"answer": "yes"}, TODAY) is True
    assert expression.test({"answer": ""}, TODAY) is False
    assert expression.test({"answer": []}, TODAY) is False
    assert expression.test({"answer": None}, TODAY) is False
    assert expression.test({"answer": 0}, TODAY) is False
    with pytest.raises(EvaluationError, match="variable 'answer' has no value"):
        expression.test({}, TODAY)


def test_evaluation_error_is_a_value_error() -> None:
    assert issubclass(EvaluationError, ValueError)
    assert not issubclass(EvaluationError, ExpressionError)


# ------------------------------------------------------------------------ the Expression


def test_variables_and_functions_are_collected() -> None:
    expression = parse_expression(
        "age(birth_date) >= 18 and (kind in [a, b] or days_until(date(deadline)) < 0)"
    )
    assert expression.variables == {"birth_date", "kind", "a", "b", "deadline"}
    assert expression.functions == {"age", "days_until", "date"}
    assert parse_expression("today() > date('2024-01-01')").variables == frozenset()
    assert parse_expression("1 + 1").functions == frozenset()
    # a short-circuited branch still counts: the checker must see every name
    assert parse_expression("false and x").variables == {"x"}


def test_a_variable_may_share_a_name_with_a_function() -> None:
    expression = parse_expression("age > 18 and age(born) > 18")
    assert expression.variables == {"age", "born"}
    assert expression.test({"age": 30, "born": date(2000, 1, 1)}, TODAY) is True


def test_expression_value_semantics() -> None:
    first, second = parse_expression("x > 1"), parse_expression("x > 1")
    assert first == second
    assert hash(first) == hash(second)
    assert first != parse_expression("x > 2")
    assert repr(first) == (
        "Expression(source='x > 1', variables=frozenset({'x'}), functions=frozenset())"
    )
    with pytest.raises(AttributeError):
        first.source = "y"  # type: ignore[misc]
    for copied in (pickle.loads(pickle.dumps(first)), copy.deepcopy(first), copy.copy(first)):
        assert copied == first
        assert copied.test({"x": 2}, TODAY) is True
    assert isinstance(first, Expression)


def test_today_is_a_parameter() -> None:
    expression = parse_expression("days_until(deadline) <= 3")
    deadline = {"deadline": date(2024, 6, 20)}
    assert expression.test(deadline, date(2024, 6, 16)) is False
    assert expression.test(deadline, date(2024, 6, 17)) is True
    assert parse_expression("today()").evaluate({}, date(2030, 1, 1)) == date(2030, 1, 1)


def test_evaluation_is_fast() -> None:
    expression = parse_expression("age(birth_date) >= 18 and kind in ['a', 'b']")
    values = {"birth_date": date(2000, 1, 1), "kind": "b"}
    rounds = 20_000
    best = float("inf")
    for _ in range(3):  # the best of three absorbs a busy machine
        started = time.perf_counter()
        for _ in range(rounds):
            expression.test(values, TODAY)
        best = min(best, (time.perf_counter() - started) / rounds)
    assert best < 5e-6  # typically about 1 microsecond
