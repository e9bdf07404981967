"""Tests written against data/expressions.py's surviving mutants: the reductions on every kind of
column, the finiteness check on arrays, the exact messages with the expression and the position,
and the nesting counter (it must return to 0 after each nested part)."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from bptt.data.expressions import MAX_DEPTH, Expression, ExpressionError, evaluate

COLS = {
    "a": np.array([2.5, -1.5]),
    "arr": np.array([[4.0, 5.0, 6.0], [1.0, -2.0, 0.5]]),
    "v": ak.Array([[1.0, 2.0, 3.0], []]),
    "e": np.zeros((2, 0)),
}


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Sum$(arr)", [15.0, -0.5]), ("Length$(arr)", [3.0, 3.0]), ("Max$(arr)", [6.0, 1.0]), ("Min$(arr)", [4.0, -2.0]),
        ("Sum$(v)", [6.0, 0.0]), ("Length$(v)", [3.0, 0.0]), ("Max$(v)", [3.0, 0.0]), ("Min$(v)", [1.0, 0.0]),
        ("Max$(e)", [0.0, 0.0]), ("Min$(e)", [0.0, 0.0]), ("Length$(e)", [0.0, 0.0]),
        ("Sum$(a)", [2.5, -1.5]), ("Max$(a)", [2.5, -1.5]), ("Length$(a)", [1.0, 1.0]), ("Length$(3)", [1.0, 1.0]),
        ("Sum$(arr>4.5)", [2.0, 0.0]), ("Min$(v+1)", [2.0, 0.0]),
        ("a<=2.5", [1.0, 1.0]), ("a>=2.5", [1.0, 0.0]), ("a<-1.5", [0.0, 0.0]), ("a>-1.5", [1.0, 0.0]),
        ("0||0", [0.0, 0.0]), ("a>5||a<0", [0.0, 1.0]), ("a<0||a>5", [0.0, 1.0]), ("1&&a>0", [1.0, 0.0]),
        ("a>0&&1", [1.0, 0.0]), ("!(a>0)", [0.0, 1.0]), ("-(a)", [-2.5, 1.5]), ("+a", [2.5, -1.5]),
        ("2^+a", [2 ** 2.5, 2 ** -1.5]), ("2^!a", [1.0, 1.0]), ("2^!0", [2.0, 2.0]), ("TMath::Sign(2,-0.0)", [2.0, 2.0]),
        ("TMath::Sign(2,a)", [2.0, -2.0]), ("arr[0]+arr[2]", [10.0, 1.5]),
    ],
)
def test_values(text, expected):
    assert evaluate(text, COLS).tolist() == pytest.approx(expected)


def test_reductions_of_a_constant_without_columns():
    assert evaluate("Length$(2)", {}, n=2).tolist() == [1.0, 1.0]
    assert evaluate("Sum$(2)", {}, n=1).tolist() == [2.0]


def test_ints_in_awkward_become_doubles():
    out = evaluate("w/2", {"w": ak.Array([[1, 3], [5]])})
    assert out.tolist() == [[0.5, 1.5], [2.5]]


def test_finiteness_of_arrays_names_the_first_bad_entry():
    with pytest.raises(ExpressionError, match="at entry 1 "):
        evaluate("1/arr", {"arr": np.array([[1.0, 2.0], [3.0, 0.0]])})
    with pytest.raises(ExpressionError, match="at entry 1 "):
        evaluate("1/v", {"v": ak.Array([[1.0, 2.0], [3.0, 0.0], [1.0]])})
    with pytest.raises(ExpressionError, match="at entry 0 "):
        evaluate("1/v", {"v": ak.Array([[0.0], [3.0]])})
    assert evaluate("1/v", {"v": ak.Array([[1.0, 2.0], [4.0]])}).tolist() == [[1.0, 0.5], [0.25]]


@pytest.mark.parametrize(
    "text,message,position",
    [
        ("a + é", "expression 'a + é': unexpected character 'é' at position 4 (only ASCII letters, digits and "
                  "TTreeFormula's operators are read)", 4),
        ("a # b", "expression 'a # b': unexpected character '#' at position 2", 2),
        ("2_0", "expression '2_0': number '2' followed by '_' at position 1; write a plain number such as 1.5 or 2e-3 "
                "(no suffix)", 1),
        ("", "expression '' is empty; give a branch name or a formula", 0),
        ("a & b", "expression 'a & b': '&' is not supported; write '&&' for 'and' at position 2", 2),
        ("a | b", "expression 'a | b': '|' is not supported; write '||' for 'or' at position 2", 2),
        ("a = b", "expression 'a = b': '=' is not supported; write '==' to compare at position 2", 2),
        ("(a b", "expression '(a b': expected ')', found 'b' at position 3", 3),
        ("(a", "expression '(a': expected ')', found the end at position 2", 2),
        ("a %b / c", "expression 'a %b / c': '/' after '%' without parentheses (TTreeFormula reads a % b * c as a % "
                     "(b * c), C as (a % b) * c); add parentheses at position 5", 5),
        ("v[-1]", "expression 'v[-1]': an array index must be a whole number such as v[0] at position 2", 2),
        ("v[1.5]", "expression 'v[1.5]': an array index must be a whole number such as v[0] at position 2", 2),
        ("(a+1)[1]", "expression '(a+1)[1]': only a branch can be indexed (write v[2], not (expression)[2]) at position 5", 5),
        ("a+Alt$", "expression 'a+Alt$': Alt$ is not supported (bptt reads branches, Sum$, Length$, Max$, Min$) at position 2", 2),
        ("1+TMath::E", "expression '1+TMath::E': TMath::E needs parentheses: TMath::E(...) at position 2", 2),
        ("a*)", "expression 'a*)': expected a number, a branch name, a function or '(', found ')' at position 2", 2),
        ("1+", "expression '1+': expected a number, a branch name, a function or '(', found the end at position 2", 2),
        ("1+sqrt(1,2)", "expression '1+sqrt(1,2)': sqrt takes 1 argument; got 2 at position 2", 2),
        ("1+atan2(1)", "expression '1+atan2(1)': atan2 takes 2 arguments; got 1 at position 2", 2),
        ("1+TMath::Pi(1)", "expression '1+TMath::Pi(1)': TMath::Pi takes 0 arguments; got 1 at position 2", 2),
    ],
)
def test_exact_messages_and_positions(text, message, position):
    with pytest.raises(ExpressionError) as info:
        Expression(text)
    assert str(info.value) == message
    assert info.value.position == position and info.value.expression == text


def test_unknown_function_lists_the_known_ones():
    with pytest.raises(ExpressionError) as info:
        Expression("a+foo(a)")
    msg = str(info.value)
    assert msg.startswith("expression 'a+foo(a)': unknown function 'foo'; bptt knows: TMath::ACos, TMath::ACosH, ")
    assert msg.endswith(", Sum$, Length$, Max$, Min$ at position 2") and info.value.position == 2


def test_evaluation_messages_carry_the_expression():
    cases = [
        ("pt + eta", {"x": np.zeros(1)}, "expression 'pt + eta' reads eta, pt, which are not among the columns given (x)"),
        ("pt", {}, "expression 'pt' reads pt, which is not among the columns given (none)"),
        ("x + y", {"x": np.zeros(2), "y": np.zeros(3)}, "expression 'x + y': its columns have different lengths [2, 3]"),
        ("1 + v[1]", {"v": ak.Array([[1.0, 2.0], [3.0]])},
         "expression '1 + v[1]': v[1] does not exist in entry 1 (v has 1 values there); add a cut such as Length$(v) > 1"),
        ("1 + arr[3]", {"arr": np.zeros((1, 3))}, "expression '1 + arr[3]': arr[3] is out of range; arr has 3 values per entry"),
        ("1 + a[2]", {"a": np.zeros(1)},
         "expression '1 + a[2]': a[2] indexes a, which holds one number per entry (TTreeFormula would ignore the index); "
         "write a or a[0]"),
        ("-sqrt(x)", {"x": np.array([1.0, -1.0])},
         "expression '-sqrt(x)' is not a finite number at entry 1 (division by zero, or sqrt/log of a value outside "
         "their domain; TTreeFormula would silently substitute 0 or another number); add a cut that removes such "
         "entries or change the expression"),
    ]
    for text, columns, message in cases:
        with pytest.raises(ExpressionError) as info:
            evaluate(text, columns)
        assert str(info.value) == message
        assert info.value.expression == text


def test_too_long_names_the_limit():
    text = "a+" * 5001 + "a"
    with pytest.raises(ExpressionError) as info:
        Expression(text)
    assert str(info.value) == (f"expression of {len(text)} characters is longer than bptt's limit of 10000; split it "
                               f"or define a branch")
    assert info.value.expression == text[:40] + "…" and info.value.position is None
    assert Expression("a" * 10_000).branches == {"a" * 10_000}  # exactly the limit is read


@pytest.mark.parametrize(
    "make",
    [
        lambda k: "(" * k + "a" + ")" * k,
        lambda k: "-" * k + "a",
        lambda k: "!" * k + "a",
        lambda k: "abs(" * k + "a" + ")" * k,
        lambda k: "2^" + "-" * k + "a",
    ],
)
def test_nesting_limit_is_exact_for_every_kind(make):
    Expression(make(MAX_DEPTH - 1) if make(1).startswith("2^") else make(MAX_DEPTH))
    with pytest.raises(ExpressionError, match=f"nesting deeper than {MAX_DEPTH} levels at position"):
        Expression(make(MAX_DEPTH + 1))


@pytest.mark.parametrize("term", ["(a)", "-a", "!a", "abs(a)", "2^-a", "+a", "2^+a", "2^!a"])
def test_siblings_do_not_add_up_to_a_nesting(term):
    text = "+".join([term] * (3 * MAX_DEPTH))
    e = Expression(text)
    assert e.branches == {"a"}
    np.testing.assert_allclose(evaluate(text, {"a": np.array([0.5])}), 3 * MAX_DEPTH * evaluate(term, {"a": np.array([0.5])}))


def test_depth_error_position():
    with pytest.raises(ExpressionError) as info:
        Expression("(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1))
    assert info.value.position == MAX_DEPTH
    with pytest.raises(ExpressionError) as info:
        Expression("-" * (MAX_DEPTH + 1) + "a")
    assert info.value.position == MAX_DEPTH
    with pytest.raises(ExpressionError) as info:
        Expression("abs(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1))
    assert info.value.position == 4 * MAX_DEPTH + 3


def test_repr_and_scalar_result():
    assert repr(Expression("a+1")) == "Expression('a+1')"
    out = evaluate("1.5", {})
    assert out.shape == () and float(out) == 1.5
