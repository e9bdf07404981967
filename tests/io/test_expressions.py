"""bptt.data.expressions: TTreeFormula's syntax and meanings (the hand values below were printed by
ROOT 6.40's TTreeFormula on a tree with a=2.5, b=7 then a=-1.5, b=-7; tests/io/test_loader_root.py
compares with values ROOT wrote into the fixtures' JSON sidecar)."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from bptt.data.expressions import MAX_DEPTH, MAX_LENGTH, Expression, ExpressionError, branches_of, evaluate

COLS = {
    "a": np.array([2.5, -1.5], np.float32),
    "b": np.array([7, -7], np.int32),
    "v": ak.Array([[1.0, 2.0, 3.0], [7.0]]),
    "arr": np.array([[4, 5, 6], [4, 5, 6]], np.float32),
}

# (expression, ROOT's value at entry 0 and entry 1)
ROOT_VALUES = [
    ("2^3", [8, 8]), ("2**3", [8, 8]), ("2^3^2", [64, 64]), ("-2^2", [-4, -4]), ("-a^2", [-6.25, -2.25]),
    ("2^-a", [0.1767766952966369, 2.8284271247461903]), ("-2^-2", [-0.25, -0.25]), ("2*3^2", [18, 18]),
    ("b%3", [1, -1]), ("7.9%3", [1, 1]), ("-b%3", [-1, 1]), ("2*3%4", [2, 2]), ("8/2%3", [1, 1]),
    ("1+7%4", [4, 4]), ("7%4+1", [4, 4]), ("10-7%4", [7, 7]), ("b%2==1", [1, 0]), ("1==b%2", [1, 0]),
    ("b/2", [3.5, -3.5]), ("8/2/2", [2, 2]), ("8-2-2", [4, 4]), ("1+2*3", [7, 7]), ("-a*2", [-5, 3]),
    ("2*-3", [-6, -6]),
    ("!a>1", [0, 0]), ("!(a>1)", [0, 1]), ("!0+1", [2, 2]), ("!!a", [1, 1]), ("1-!a", [1, 1]), ("!1==0", [1, 1]),
    ("a>1&&b>1 || 1", [1, 1]), ("0&&0||1", [1, 1]), ("1||0&&0", [1, 1]), ("a!=b", [1, 1]), ("a==2.5", [1, 0]),
    ("abs(a)", [2.5, 1.5]), ("fabs(a)", [2.5, 1.5]), ("TMath::Abs(a)", [2.5, 1.5]), ("sq(a)", [6.25, 2.25]),
    ("TMath::Sq(a)", [6.25, 2.25]), ("min(a,b)", [2.5, -7]), ("TMath::Max(a,b)", [7, -1.5]),
    ("max(a,b)", [7, -1.5]), ("int(a)", [2, -1]), ("floor(a)", [2, -2]), ("TMath::Ceil(a)", [3, -1]),
    ("TMath::Nint(a)", [2, -2]), ("TMath::Sign(1,a)", [1, -1]), ("TMath::Hypot(3,4)", [5, 5]),
    ("pow(2,3)", [8, 8]), ("TMath::Power(2,3)", [8, 8]), ("log10(100)", [2, 2]), ("TMath::Log10(1000)", [3, 3]),
    ("atan2(1,1)", [0.7853981633974483] * 2), ("tanh(1)", [0.7615941559557649] * 2),
    ("exp(1)", [2.718281828459045] * 2), ("TMath::E()", [2.718281828459045] * 2),
    ("pi", [3.141592653589793] * 2), ("TMath::Pi()", [3.141592653589793] * 2),
    ("sin(a)", [0.5984721441039565, -0.9974949866040544]), ("TMath::Log(a) * (a > 0) + (a < 0)", None),
    ("1e3", [1000, 1000]), (".5", [0.5, 0.5]), ("1.E-7", [1e-7, 1e-7]),
    ("v[0]", [1, 7]), ("arr[2]", [6, 6]), ("Sum$(v)", [6, 7]), ("Length$(v)", [3, 1]), ("Max$(v)", [3, 7]),
    ("Min$(arr)", [4, 4]), ("Sum$(v>1)", [2, 1]),
]


@pytest.mark.parametrize("text,expected", [c for c in ROOT_VALUES if c[1] is not None])
def test_values_are_ttreeformulas(text, expected):
    assert evaluate(text, COLS).tolist() == pytest.approx(expected, rel=1e-6)


def test_array_branch_whole_keeps_its_shape():
    np.testing.assert_allclose(evaluate("arr * 2", COLS), [[8, 10, 12], [8, 10, 12]])
    out = evaluate("a + v", COLS)
    assert out.tolist() == [[3.5, 4.5, 5.5], [5.5]]


def test_branches_of():
    assert branches_of("TMath::Abs(eta) < 2.4 && jet.pt > 20 && v[2] > Sum$(w) + pi") == {"eta", "jet.pt", "v", "w"}
    assert branches_of("1.5") == set()
    assert branches_of(Expression("x*x")) == {"x"}
    assert Expression("x").is_branch and not Expression("x+1").is_branch


def test_scalar_expression_broadcasts_to_the_entries():
    assert evaluate("1", {"x": np.zeros(3)}).tolist() == [1.0, 1.0, 1.0]
    assert evaluate("2", {}, n=2).tolist() == [2.0, 2.0]


def test_integer_and_bool_columns_are_read_as_doubles():
    out = evaluate("i/2 + t", {"i": np.array([1, 3], np.int64), "t": np.array([True, False])})
    assert out.dtype == np.float64 and out.tolist() == [1.5, 1.5]


@pytest.mark.parametrize(
    "text,words",
    [
        ("1<2==1", ["'<' followed by '=='", "parentheses"]),
        ("3>2>1", ["'>' followed by '>'"]),
        ("7%4*2", ["'*' after '%'", "a % (b * c)"]),
        ("a & b", ["'&'", "'&&'"]),
        ("a | b", ["'|'", "'||'"]),
        ("a = 1", ["'=='"]),
        ("Entry$", ["Entry$ is not supported"]),
        ("foo(a)", ["unknown function 'foo'", "TMath::Abs"]),
        ("pow(1)", ["pow takes 2 arguments; got 1"]),
        ("TMath::Pi", ["needs parentheses"]),
        ("a +", ["found the end", "position 3"]),
        ("(a", ["expected ')'"]),
        ("a b", ["unexpected 'b'", "position 2"]),
        ("1.0f", ["'f'", "no suffix"]),
        ("vars_time٣", ["'٣'", "position 9", "ASCII"]),
        ("", ["empty"]),
        ("(a+1)[2]", ["only a branch can be indexed"]),
        ("v[x]", ["whole number"]),
        ("__import__('os')", ['unexpected character "\'"', "position 11"]),
        ("a.__class__", []),
    ],
)
def test_syntax_errors_name_the_problem_and_position(text, words):
    if text == "a.__class__":  # a dotted name is a branch name (jet.pt), never an attribute
        assert branches_of(text) == {"a.__class__"}
        with pytest.raises(ExpressionError, match="not among the columns"):
            evaluate(text, COLS)
        return
    with pytest.raises(ExpressionError) as info:
        Expression(text)
    msg = str(info.value)
    assert repr(text) in msg or text == ""
    for w in words:
        assert w in msg, (w, msg)
    assert isinstance(info.value, ValueError)


def test_error_position_attribute():
    with pytest.raises(ExpressionError) as info:
        Expression("a + * b")
    assert info.value.position == 4 and info.value.expression == "a + * b"


@pytest.mark.parametrize("text", ["a/0", "sqrt(-a)", "log(a-a)", "b%0", "1e400*a"])
def test_undefined_values_are_errors_not_silent(text):
    # TTreeFormula gives a/0 = 0, sqrt(-1) = 1, log(0) = 0: bptt refuses instead of substituting
    with pytest.raises(ExpressionError, match=r"not a finite number at entry (0|1)"):
        evaluate(text, COLS)


def test_non_finite_entry_number_counts_from_first_entry():
    with pytest.raises(ExpressionError, match="at entry 101"):
        evaluate("1/x", {"x": np.array([1.0, 0.0])}, first_entry=100)
    assert np.isinf(evaluate("1/x", {"x": np.array([1.0, 0.0])}, check_finite=False)[1])


def test_missing_and_mismatched_columns():
    with pytest.raises(ExpressionError, match=r"reads pt, which is not among the columns given \(a, arr, b, v\)"):
        evaluate("pt > 1", COLS)
    with pytest.raises(ExpressionError, match="different lengths"):
        evaluate("x + y", {"x": np.zeros(2), "y": np.zeros(3)})


def test_index_out_of_range():
    with pytest.raises(ExpressionError, match=r"v\[1\] does not exist in entry 1 \(v has 1 values there\)"):
        evaluate("v[1]", COLS)
    with pytest.raises(ExpressionError, match="out of range; arr has 3 values"):
        evaluate("arr[3]", COLS)
    with pytest.raises(ExpressionError, match="holds one number per entry"):
        evaluate("a[1]", COLS)
    assert evaluate("a[0]", COLS).tolist() == [2.5, -1.5]  # ROOT: a[0] of a scalar branch is a


def test_limits_on_length_and_depth():
    with pytest.raises(ExpressionError, match=f"limit of {MAX_LENGTH}"):
        Expression("a+" * MAX_LENGTH + "a")
    with pytest.raises(ExpressionError, match=f"deeper than {MAX_DEPTH}"):
        Expression("(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1))
    with pytest.raises(ExpressionError, match=f"deeper than {MAX_DEPTH}"):
        Expression("-" * (MAX_DEPTH + 1) + "a")
    assert Expression("(" * MAX_DEPTH + "a" + ")" * MAX_DEPTH).branches == {"a"}
    long_sum = "+".join(["a"] * 4000)  # a long sum is not a deep tree
    assert evaluate(long_sum, COLS).tolist() == pytest.approx([2.5 * 4000, -1.5 * 4000])


def test_not_a_string():
    with pytest.raises(ExpressionError, match="must be a string; got int"):
        Expression(3)
