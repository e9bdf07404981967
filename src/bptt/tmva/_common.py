"""What the TMVA option parsers share: the error and warning types, the size limits, the small
parsers of numbers and keys, and the evaluator of TMVA's dense-layer width formulas."""

from __future__ import annotations

import ast
import math
import re
import sys
import warnings


class TMVAOptionError(ValueError):
    """A TMVA option string that cannot be parsed; the message quotes the token and its position."""

    __module__ = "bptt.tmva"  # its public name, as tracebacks show it


class TMVAOptionWarning(UserWarning):
    """A TMVA option that bptt reads as TMVA does but that TMVA itself ignores or half-reads (an
    ``ADAM_beta1`` in an SGD phase, ``MaxEpochs=20DropConfig=…`` with a ',' missing): said, never
    silent."""

    __module__ = "bptt.tmva"


def warn(message: str) -> None:
    """Issue a :class:`TMVAOptionWarning` attributed to the first caller outside ``bptt.tmva`` (the
    user's line that parsed the string, however deep the parser)."""
    frame, level = sys._getframe(1), 2
    while frame is not None and frame.f_globals.get("__name__", "").startswith("bptt.tmva"):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, TMVAOptionWarning, stacklevel=level)


# ── size limits: the largest network a booking string may describe (bptt.tmva.options' docstring)

#: Units of one layer: a recurrent state size or input size, a dense width.
MAX_UNITS = 65_536
#: Values per event, InputLayout's time steps × features (depth × height × width).
MAX_INPUTS = 2**20
#: Layers in one Layout.
MAX_LAYERS = 1_024
#: Trainable parameters of the whole network (64 MiB in float32, 128 MiB in float64).
MAX_PARAMETERS = 2**24
#: Characters of one dense-width formula such as ``(N+100)*2``.
MAX_FORMULA_LENGTH = 200

#: The numbers TMVA's C++ reads (ASCII digits, as ``std::stoi``/``atof`` take them): Python's own
#: ``int``/``float`` would also take other scripts' digits ("٣") and underscores ("1_000").
_INT = re.compile(r"\+?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
#: An integer with more digits than this is beyond every limit: its value is not computed
#: (Python refuses ``int()`` of more than 4300 digits; a limit check needs no exact value).
_HUGE_DIGITS = 18
HUGE = 10**_HUGE_DIGITS


def _int(text: str) -> int | None:
    """``text`` as a non-negative integer (ASCII digits, optional '+'), or None; a number of more
    than 18 digits is :data:`HUGE`, above every limit."""
    if not _INT.fullmatch(text):
        return None
    digits = text.lstrip("+").lstrip("0")
    return HUGE if len(digits) > _HUGE_DIGITS else int(digits or "0")


def _positive_int(text: str) -> int | None:
    """``text`` as an integer >= 1, or None."""
    n = _int(text)
    return n if n is not None and n >= 1 else None


def _float(text: str) -> float | None:
    """``text`` as a finite float, or None."""
    if not _FLOAT.fullmatch(text.strip()):
        return None
    x = float(text)
    return x if math.isfinite(x) else None


def _strip_prefix(text: str, key: str, fn: str) -> str:
    """Remove surrounding whitespace and an optional ``Key=`` prefix (case-insensitive)."""
    if not isinstance(text, str):
        raise TMVAOptionError(f"{fn}: expected a string; got {type(text).__name__} {text!r}")
    text = text.strip()
    m = re.match(rf"{key}\s*=\s*", text, flags=re.IGNORECASE)
    return text[m.end():] if m else text


# ── dense widths: TMVA evaluates them with TFormula after replacing N and n by the number of inputs

#: What a width formula may hold: ASCII digits, '.', exponents, + - * / ( ), spaces and N or n.
_FORMULA_CHARS = re.compile(r"[0-9.eE+\-*/() Nn]+")
_FORMULA_NUMBER = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_BINARY = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
           ast.Div: lambda a, b: a / b}
_UNARY = {ast.UAdd: lambda a: a, ast.USub: lambda a: -a}


def looks_like_width(text: str) -> bool:
    """Whether ``text`` is written with a width formula's characters only (and holds a digit or N)."""
    return bool(_FORMULA_CHARS.fullmatch(text)) and any(c.isdigit() or c in "Nn" for c in text)


def _evaluate(node, n_inputs: float) -> float:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, n_inputs)
    if isinstance(node, ast.Constant) and type(node.value) is float:
        return node.value
    if isinstance(node, ast.Name) and node.id in ("N", "n"):
        return n_inputs
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _BINARY[type(node.op)](_evaluate(node.left, n_inputs), _evaluate(node.right, n_inputs))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand, n_inputs))
    raise ValueError("only numbers, N, + - * / and parentheses")


def evaluate_width(text: str, n_inputs: int | None) -> float:
    """The value of a dense-width formula (``64``, ``N+10``, ``(N+100)*2``, ``2*N/3``) with N (or n)
    the number of input variables, as TMVA's TFormula computes it (in double precision, ``/``
    dividing exactly); the caller truncates it to an int as TMVA's C++ does. Raises ValueError
    with the reason; never runs ``eval``: the formula is parsed by :mod:`ast` and only numbers,
    N, the four operations and parentheses are evaluated.

    >>> evaluate_width("(N+100)*2", 7), evaluate_width("2*N/3", 7), evaluate_width("064", None)
    (214.0, 4.666666666666667, 64.0)
    """
    if len(text) > MAX_FORMULA_LENGTH:
        raise ValueError(f"longer than {MAX_FORMULA_LENGTH} characters")
    if not _FORMULA_CHARS.fullmatch(text):
        raise ValueError("only numbers, N, + - * / and parentheses")
    # Each number becomes a Python float literal: TFormula reads "064" as 64, Python's parser
    # refuses leading zeros; a number too large for a double is refused here.
    numbers = []

    def _literal(m: re.Match) -> str:
        x = float(m.group())
        if not math.isfinite(x):
            raise ValueError(f"the number {m.group()[:20]!r} is too large")
        numbers.append(x)
        return repr(x)

    source = _FORMULA_NUMBER.sub(_literal, text)
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        raise ValueError("not a formula: write e.g. 64, N+10 or (N+100)*2") from None
    allowed = (ast.Expression, ast.Constant, ast.Name, ast.Load, ast.BinOp, ast.UnaryOp, *_BINARY, *_UNARY)
    if not all(isinstance(node, allowed) and getattr(node, "id", "N") in ("N", "n") for node in ast.walk(tree)):
        raise ValueError("only numbers, N, + - * / and parentheses")
    if n_inputs is None and any(isinstance(node, ast.Name) for node in ast.walk(tree)):
        raise LookupError("N")
    try:
        value = _evaluate(tree, float(n_inputs) if n_inputs is not None else math.nan)
    except ZeroDivisionError:
        raise ValueError("it divides by zero") from None
    except RecursionError:
        raise ValueError("too deeply nested") from None
    if not math.isfinite(value):
        raise ValueError("its value is not a finite number")
    return value
