"""TMVA's variable, weight and cut expressions (ROOT's TTreeFormula syntax), evaluated safely over columns.

TMVA's DataLoader takes expressions wherever it takes a branch: ``AddVariable("abs(eta)")``,
``SetWeightExpression("w*xsec")``, ``PrepareTrainingAndTestTree("pt>20 && nJets>=2", …)``. This
module reads the same text with a small parser of its own (no ``eval``, no attribute access, no
names other than branches, the numbers and the functions listed below) and evaluates it with NumPy
over a dict of columns (NumPy arrays, or awkward arrays for ``std::vector`` branches).

Syntax (what TTreeFormula reads, with the same meanings, checked against ROOT 6.40):

- numbers ``3``, ``2.5``, ``.5``, ``1.E-7`` (ASCII digits only); branch names ``pt``, ``jet.pt``;
  an element of an array branch ``v[2]``;
- ``+ - * / %`` (``%`` on the values truncated to integers, as C on ``Long64_t``), ``^`` and ``**``
  (power, left to right: ``2^3^2`` is 64; ``-2^2`` is -4);
- comparisons ``== != < <= > >=`` and logic ``&& || !``, giving 1 or 0;
- functions ``abs fabs sqrt exp log log10 sin cos tan asin acos atan atan2 sinh cosh tanh asinh
  acosh atanh pow sq min max int floor ceil`` and ``TMath::Abs Sqrt Exp Log Log10 Log2 Sin Cos Tan
  ASin ACos ATan ATan2 SinH CosH TanH ASinH ACosH ATanH Power Sq Min Max Floor Ceil Nint Sign Hypot
  Pi E``; TTreeFormula's array reductions ``Sum$(v) Length$(v) Max$(v) Min$(v)``; the constant ``pi``.

Refused with the reason, where TTreeFormula's reading differs from C's and a user could mean
either: two comparisons in a row without parentheses (``a < b == c``, ``a < b < c``), ``%``
followed by ``*`` or ``/`` (``a % b * c``), the bitwise ``&`` and ``|`` (write ``&&``, ``||``);
and where TTreeFormula silently substitutes a number for an undefined result (``x/0`` gives 0,
``sqrt(-1)`` gives 1, ``log(0)`` gives 0): bptt gives an error naming the expression and the
first entry (``evaluate(..., check_finite=True)``), so that no NaN reaches a network unseen.

Example::

    >>> import numpy as np
    >>> from bptt.data.expressions import branches_of, evaluate
    >>> sorted(branches_of("TMath::Abs(eta) < 2.4 && pt > 20"))
    ['eta', 'pt']
    >>> evaluate("TMath::Abs(eta) < 2.4 && pt > 20", {"eta": np.array([0.5, -3.0, 1.0]),
    ...                                               "pt": np.array([25.0, 30.0, 10.0])}).tolist()
    [1.0, 0.0, 0.0]
    >>> evaluate("w * 2^3", {"w": np.array([1, -1])}).tolist()
    [8.0, -8.0]
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass

import numpy as np

__all__ = ["Expression", "ExpressionError", "branches_of", "evaluate", "parse", "MAX_LENGTH", "MAX_DEPTH"]

MAX_LENGTH = 10_000  # characters of one expression
MAX_DEPTH = 32  # nesting of parentheses, function calls and unary operators


class ExpressionError(ValueError):
    """A TTreeFormula expression that bptt cannot read or evaluate (a ``ValueError``).

    ``expression`` is the text, ``position`` the 0-based character offset of the problem (or None).
    """

    def __init__(self, message: str, expression: str = "", position: int | None = None):
        super().__init__(message)
        self.expression = expression
        self.position = position


# ───────────────────────────────────────────────────────────────────────────── tokens

_TOKEN = re.compile(
    r"""
    (?P<space>[ \t\r\n]+)
  | (?P<number>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:(?:::|\.)[A-Za-z_][A-Za-z0-9_]*)*\$?)
  | (?P<op>\*\*|&&|\|\||==|!=|<=|>=|[-+*/%^()<>!\[\],&|=])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Tok:
    kind: str  # number, name, op, end
    text: str
    pos: int


def _tokens(text: str) -> list[_Tok]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            ch = text[pos]
            hint = " (only ASCII letters, digits and TTreeFormula's operators are read)" if not ch.isascii() else ""
            raise ExpressionError(
                f"expression {text!r}: unexpected character {ch!r} at position {pos}{hint}", text, pos
            )
        kind = m.lastgroup
        if kind != "space":
            tok_text = m.group()
            if kind == "number" and m.end() < len(text) and (text[m.end()].isalpha() or text[m.end()] == "_"):
                raise ExpressionError(
                    f"expression {text!r}: number {tok_text!r} followed by {text[m.end()]!r} at position "
                    f"{m.end()}; write a plain number such as 1.5 or 2e-3 (no suffix)", text, m.end()
                )
            out.append(_Tok(kind, tok_text, pos))
        pos = m.end()
    out.append(_Tok("end", "", len(text)))
    return out


# ───────────────────────────────────────────────────────────────────────────── syntax tree
# Nodes are tuples: ("num", value) · ("col", name) · ("index", node, i) · ("neg"|"not", node)
# · ("bin", op, left, right) · ("chain", first, ((op, node), …)) for a run of left-associative
# operators of one level (a + b - c: evaluated left to right without recursion, so a long sum
# cannot exhaust Python's stack) · ("call", name, args)


def _c_sign(a, b):  # TMath::Sign(a, b): |a| with the sign of b, +|a| for b = -0.0 (b >= 0 in C)
    return np.copysign(np.abs(a), np.add(b, 0.0))


def _int(a):
    return np.trunc(a)


_ONE_ARG = {
    "abs": np.abs, "fabs": np.abs, "sqrt": np.sqrt, "exp": np.exp, "log": np.log, "log10": np.log10,
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan,
    "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh, "asinh": np.arcsinh, "acosh": np.arccosh,
    "atanh": np.arctanh, "sq": np.square, "int": _int, "floor": np.floor, "ceil": np.ceil,
    "TMath::Abs": np.abs, "TMath::Sqrt": np.sqrt, "TMath::Exp": np.exp, "TMath::Log": np.log,
    "TMath::Log10": np.log10, "TMath::Log2": np.log2, "TMath::Sin": np.sin, "TMath::Cos": np.cos,
    "TMath::Tan": np.tan, "TMath::ASin": np.arcsin, "TMath::ACos": np.arccos, "TMath::ATan": np.arctan,
    "TMath::SinH": np.sinh, "TMath::CosH": np.cosh, "TMath::TanH": np.tanh, "TMath::ASinH": np.arcsinh,
    "TMath::ACosH": np.arccosh, "TMath::ATanH": np.arctanh, "TMath::Sq": np.square,
    "TMath::Floor": np.floor, "TMath::Ceil": np.ceil, "TMath::Nint": np.rint,
}
_TWO_ARGS = {
    "atan2": np.arctan2, "pow": np.power, "min": np.minimum, "max": np.maximum,
    "TMath::ATan2": np.arctan2, "TMath::Power": np.power, "TMath::Min": np.minimum, "TMath::Max": np.maximum,
    "TMath::Sign": _c_sign, "TMath::Hypot": np.hypot,
}
_CONSTANTS = {"TMath::Pi": math.pi, "TMath::E": math.e}  # called with ()
_NAMED_CONSTANTS = {"pi": math.pi}
_REDUCTIONS = ("Sum$", "Length$", "Max$", "Min$")
_COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.toks = _tokens(text)
        self.i = 0
        self.depth = 0

    # helpers
    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def fail(self, problem: str, pos: int) -> ExpressionError:
        return ExpressionError(f"expression {self.text!r}: {problem} at position {pos}", self.text, pos)

    def expect(self, op: str) -> _Tok:
        t = self.peek()
        if t.kind != "op" or t.text != op:
            got = f"{t.text!r}" if t.kind != "end" else "the end"
            raise self.fail(f"expected {op!r}, found {got}", t.pos)
        return self.take()

    def deeper(self, pos: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(f"nesting deeper than {MAX_DEPTH} levels", pos)

    # grammar, lowest precedence first
    def parse(self):
        if not self.text.strip():
            raise ExpressionError(f"expression {self.text!r} is empty; give a branch name or a formula", self.text, 0)
        node = self.or_()
        t = self.peek()
        if t.kind == "op" and t.text in ("&", "|", "="):
            hint = {"&": "'&&' for 'and'", "|": "'||' for 'or'", "=": "'==' to compare"}[t.text]
            raise self.fail(f"{t.text!r} is not supported; write {hint}", t.pos)
        if t.kind != "end":
            raise self.fail(f"unexpected {t.text!r} after a complete expression", t.pos)
        return node

    def or_(self):
        first, rest = self.and_(), []
        while self.peek().text == "||" and self.peek().kind == "op":
            self.take()
            rest.append(("||", self.and_()))
        return ("chain", first, tuple(rest)) if rest else first

    def and_(self):
        first, rest = self.compare(), []
        while self.peek().text == "&&" and self.peek().kind == "op":
            self.take()
            rest.append(("&&", self.compare()))
        return ("chain", first, tuple(rest)) if rest else first

    def compare(self):
        node = self.additive()
        t = self.peek()
        if t.kind == "op" and t.text in _COMPARISONS:
            self.take()
            node = ("bin", t.text, node, self.additive())
            t2 = self.peek()
            if t2.kind == "op" and t2.text in _COMPARISONS:
                raise self.fail(
                    f"{t.text!r} followed by {t2.text!r} without parentheses (TTreeFormula and C group "
                    f"these differently); write (a {t.text} b) {t2.text} c or a {t.text} (b {t2.text} c)",
                    t2.pos,
                )
        return node

    def additive(self):
        first, rest = self.multiplicative(), []
        while self.peek().kind == "op" and self.peek().text in ("+", "-"):
            op = self.take().text
            rest.append((op, self.multiplicative()))
        return ("chain", first, tuple(rest)) if rest else first

    def multiplicative(self):
        first, rest = self.unary(), []
        last_mod = None
        while self.peek().kind == "op" and self.peek().text in ("*", "/", "%"):
            t = self.take()
            if last_mod is not None:
                raise self.fail(
                    f"{t.text!r} after '%' without parentheses (TTreeFormula reads a % b * c as a % (b * c), "
                    f"C as (a % b) * c); add parentheses", t.pos,
                )
            if t.text == "%":
                last_mod = t.pos
            rest.append((t.text, self.unary()))
        return ("chain", first, tuple(rest)) if rest else first

    def unary(self):
        t = self.peek()
        if t.kind == "op" and t.text in ("-", "+", "!"):
            self.take()
            self.deeper(t.pos)
            operand = self.unary()
            self.depth -= 1
            return operand if t.text == "+" else ("neg" if t.text == "-" else "not", operand)
        return self.power()

    def power(self):
        first, rest = self.postfix(), []
        while self.peek().kind == "op" and self.peek().text in ("^", "**"):
            self.take()
            rest.append(("^", self.power_operand()))
        return ("chain", first, tuple(rest)) if rest else first

    def power_operand(self):
        t = self.peek()
        if t.kind == "op" and t.text in ("-", "+", "!"):
            self.take()
            self.deeper(t.pos)
            operand = self.power_operand()
            self.depth -= 1
            return operand if t.text == "+" else ("neg" if t.text == "-" else "not", operand)
        return self.postfix()

    def postfix(self):
        node = self.primary()
        while self.peek().kind == "op" and self.peek().text == "[":
            t = self.take()
            idx = self.peek()
            if idx.kind != "number" or not idx.text.isdigit():
                raise self.fail("an array index must be a whole number such as v[0]", idx.pos)
            self.take()
            self.expect("]")
            if node[0] != "col":
                raise self.fail("only a branch can be indexed (write v[2], not (expression)[2])", t.pos)
            node = ("index", node, int(idx.text))
        return node

    def primary(self):
        t = self.take()
        if t.kind == "number":
            return ("num", float(t.text))
        if t.kind == "op" and t.text == "(":
            self.deeper(t.pos)
            node = self.or_()
            self.depth -= 1
            self.expect(")")
            return node
        if t.kind == "name":
            if self.peek().kind == "op" and self.peek().text == "(":
                return self.call(t)
            if t.text in _NAMED_CONSTANTS:
                return ("num", _NAMED_CONSTANTS[t.text])
            if t.text.endswith("$"):
                raise self.fail(f"{t.text} is not supported (bptt reads branches, Sum$, Length$, Max$, Min$)", t.pos)
            if t.text.startswith("TMath::"):
                raise self.fail(f"{t.text} needs parentheses: {t.text}(...)", t.pos)
            return ("col", t.text)
        got = repr(t.text) if t.kind != "end" else "the end"
        raise self.fail(f"expected a number, a branch name, a function or '(', found {got}", t.pos)

    def call(self, name: _Tok):
        open_ = self.expect("(")
        self.deeper(open_.pos)
        args = []
        if not (self.peek().kind == "op" and self.peek().text == ")"):
            args.append(self.or_())
            while self.peek().kind == "op" and self.peek().text == ",":
                self.take()
                args.append(self.or_())
        self.expect(")")
        self.depth -= 1
        fname = name.text
        if fname in _CONSTANTS:
            want = 0
        elif fname in _ONE_ARG or fname in _REDUCTIONS:
            want = 1
        elif fname in _TWO_ARGS:
            want = 2
        else:
            known = sorted(_ONE_ARG) + sorted(_TWO_ARGS) + sorted(_CONSTANTS) + list(_REDUCTIONS)
            raise self.fail(f"unknown function {fname!r}; bptt knows: {', '.join(known)}", name.pos)
        if len(args) != want:
            raise self.fail(f"{fname} takes {want} argument{'s' if want != 1 else ''}; got {len(args)}", name.pos)
        if fname in _CONSTANTS:
            return ("num", _CONSTANTS[fname])
        return ("call", fname, tuple(args))


# ───────────────────────────────────────────────────────────────────────────── evaluation


def _is_ak(x) -> bool:
    return type(x).__module__.startswith("awkward")


def _as_float(x):
    if isinstance(x, (bool, int, float, np.bool_, np.number)):
        return float(x)
    if _is_ak(x):
        import awkward as ak

        return ak.values_astype(x, np.float64)
    return np.asarray(x, dtype=np.float64)


def _truth(x):
    return np.not_equal(x, 0.0)


class Expression:
    """A parsed TTreeFormula expression: ``text``, ``branches`` (the names it reads) and :meth:`evaluate`."""

    def __init__(self, text: str):
        if not isinstance(text, str):
            raise ExpressionError(f"an expression must be a string; got {type(text).__name__} {text!r}")
        if len(text) > MAX_LENGTH:
            raise ExpressionError(
                f"expression of {len(text)} characters is longer than bptt's limit of {MAX_LENGTH}; "
                f"split it or define a branch", text[:40] + "…", None,
            )
        self.text = text
        self.tree = _Parser(text).parse()
        self.branches = frozenset(_names(self.tree))

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    @property
    def is_branch(self) -> bool:
        """True when the expression is one branch name, read as it is."""
        return self.tree[0] == "col"

    def evaluate(self, columns, n: int | None = None, *, check_finite: bool = True, first_entry: int = 0):
        """The values for every entry, float64: a NumPy array ``(n,)`` (``(n, k)`` for a fixed-size
        array branch used whole), or an awkward array for a variable-length branch used whole.

        Args:
            columns: ``{branch name: array}``, each with one row per entry (NumPy or awkward).
            n: the number of entries, needed only when the expression reads no branch and
                ``columns`` is empty.
            check_finite: raise naming the first entry whose value is NaN or infinite.
            first_entry: the entry number of ``columns``' first row, for the messages.
        """
        missing = sorted(self.branches - set(columns))
        if missing:
            raise ExpressionError(
                f"expression {self.text!r} reads {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
                f"not among the columns given ({', '.join(sorted(columns)) or 'none'})", self.text,
            )
        lengths = {len(columns[b]) for b in (self.branches or columns)}
        if n is not None:
            lengths.add(int(n))
        if len(lengths) > 1:
            raise ExpressionError(f"expression {self.text!r}: its columns have different lengths {sorted(lengths)}", self.text)
        with np.errstate(all="ignore"):
            value = _eval(self.tree, columns, self.text)
        value = _as_float(value)
        if isinstance(value, float):
            if not lengths:
                return np.asarray(value)
            value = np.full(lengths.pop(), value)
        if check_finite:
            _check_finite(self.text, value, first_entry)
        return value


def _names(node) -> set[str]:
    kind = node[0]
    if kind == "col":
        return {node[1]}
    if kind == "num":
        return set()
    if kind == "index" or kind in ("neg", "not"):
        return _names(node[1])
    if kind == "bin":
        return _names(node[2]) | _names(node[3])
    if kind == "chain":
        return _names(node[1]).union(*(_names(operand) for _, operand in node[2]))
    return set().union(*(_names(a) for a in node[2]))  # call


def _eval(node, columns, text):
    kind = node[0]
    if kind == "num":
        return node[1]
    if kind == "col":
        return _as_float(columns[node[1]])
    if kind == "index":
        return _index(_eval(node[1], columns, text), node[1][1], node[2], text)
    if kind == "neg":
        return np.negative(_as_float(_eval(node[1], columns, text)))
    if kind == "not":
        return _as_float(np.logical_not(_truth(_eval(node[1], columns, text))))
    if kind == "bin":
        a, b = _eval(node[2], columns, text), _eval(node[3], columns, text)
        return _binary(node[1], a, b)
    if kind == "chain":
        value = _eval(node[1], columns, text)
        for op, operand in node[2]:
            value = _binary(op, value, _eval(operand, columns, text))
        return value
    name, args = node[1], node[2]
    if name in _REDUCTIONS:
        return _reduce(name, _eval(args[0], columns, text))
    values = [_eval(a, columns, text) for a in args]
    fn = _ONE_ARG.get(name) or _TWO_ARGS[name]
    return _as_float(fn(*values))


def _binary(op, a, b):
    if op == "+":
        return np.add(a, b)
    if op == "-":
        return np.subtract(a, b)
    if op == "*":
        return np.multiply(a, b)
    if op == "/":
        return np.true_divide(a, b)
    if op == "%":
        return np.fmod(np.trunc(a), np.trunc(b))  # C's % on the values as Long64_t
    if op == "^":
        return np.power(a, b)
    if op == "&&":
        return _as_float(np.logical_and(_truth(a), _truth(b)))
    if op == "||":
        return _as_float(np.logical_or(_truth(a), _truth(b)))
    compare = {"==": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal,
               ">": np.greater, ">=": np.greater_equal}[op]
    return _as_float(compare(a, b))


def _index(values, name, i, text):
    if isinstance(values, float) or getattr(values, "ndim", 1) < 2:
        if i == 0:  # TTreeFormula reads x[0] of a one-number branch as x
            return values
        raise ExpressionError(
            f"expression {text!r}: {name}[{i}] indexes {name}, which holds one number per entry (TTreeFormula would "
            f"ignore the index); write {name} or {name}[0]", text,
        )
    if _is_ak(values):
        import awkward as ak

        counts = np.asarray(ak.num(values, axis=1))
        short = np.flatnonzero(counts <= i)
        if short.size:
            raise ExpressionError(
                f"expression {text!r}: {name}[{i}] does not exist in entry {int(short[0])} ({name} has "
                f"{int(counts[short[0]])} values there); add a cut such as Length$({name}) > {i}", text,
            )
        return ak.to_numpy(values[:, i])
    if values.shape[1] <= i:
        raise ExpressionError(f"expression {text!r}: {name}[{i}] is out of range; {name} has {values.shape[1]} values per entry", text)
    return values[:, i]


def _reduce(name, values):
    if isinstance(values, float) or getattr(values, "ndim", 1) < 2:
        values = values if isinstance(values, float) else np.asarray(values)
        if name == "Length$":
            return 1.0 if isinstance(values, float) else np.ones(len(values))
        return values
    if _is_ak(values):
        import awkward as ak

        if name == "Sum$":
            return ak.to_numpy(ak.sum(values, axis=1))
        if name == "Length$":
            return ak.to_numpy(ak.num(values, axis=1)).astype(np.float64)
        red = ak.max if name == "Max$" else ak.min
        return ak.to_numpy(ak.fill_none(red(values, axis=1), 0.0))  # TTreeFormula: 0 for an empty list
    if name == "Sum$":
        return values.sum(axis=1)
    if name == "Length$":
        return np.full(len(values), float(values.shape[1]))
    if values.shape[1] == 0:
        return np.zeros(len(values))
    return values.max(axis=1) if name == "Max$" else values.min(axis=1)


def _check_finite(text, value, first_entry):
    if _is_ak(value):
        import awkward as ak

        bad_rows = ~np.asarray(ak.all(np.isfinite(value), axis=1))
    else:
        bad = ~np.isfinite(value)
        bad_rows = bad if bad.ndim == 1 else bad.reshape(len(bad), -1).any(axis=1)
    if bad_rows.any():
        k = int(np.argmax(bad_rows))
        raise ExpressionError(
            f"expression {text!r} is not a finite number at entry {first_entry + k} (division by zero, or sqrt/log "
            f"of a value outside their domain; TTreeFormula would silently substitute 0 or another number); "
            f"add a cut that removes such entries or change the expression", text,
        )


# ───────────────────────────────────────────────────────────────────────────── functions


@functools.lru_cache(maxsize=256)
def parse(text: str) -> Expression:
    """The parsed expression (cached): raises :class:`ExpressionError` naming the position of a problem."""
    return Expression(text)


def branches_of(expr: str | Expression) -> set[str]:
    """The branch names that ``expr`` reads (the columns :func:`evaluate` needs)."""
    e = expr if isinstance(expr, Expression) else parse(expr)
    return set(e.branches)


def evaluate(expr: str | Expression, columns, n: int | None = None, *, check_finite: bool = True, first_entry: int = 0):
    """Evaluate ``expr`` over ``columns`` (``{branch: array}``); see :meth:`Expression.evaluate`."""
    e = expr if isinstance(expr, Expression) else parse(expr)
    return e.evaluate(columns, n, check_finite=check_finite, first_entry=first_entry)
