"""What the TMVA option parsers share: the error type and the small parsers of numbers and keys."""

from __future__ import annotations

import math
import re


class TMVAOptionError(ValueError):
    """A TMVA option string that cannot be parsed; the message quotes the token and its position."""

    __module__ = "bptt.tmva"  # its public name, as tracebacks show it


#: The numbers TMVA's C++ reads (ASCII digits, as ``std::stoi``/``atof`` take them): Python's own
#: ``int``/``float`` would also take other scripts' digits ("٣") and underscores ("1_000").
_INT = re.compile(r"\+?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def _positive_int(text: str) -> int | None:
    """``text`` as an integer >= 1, or None."""
    if _INT.fullmatch(text) and int(text) >= 1:
        return int(text)
    return None


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
