"""The kernel benchmark's options: parsing, defaults, and the hand-over to the child process."""

from __future__ import annotations

import argparse
import math
import os
from typing import Callable

from grid import CELLS, MEMORY_ROW, MODES, QUICK_ROWS, ROWS
from timing import BUSY_CORES, SPREAD_MAX

__all__ = ["build_parser", "canonical_argv"]

DEFAULT_REPEATS = 20  # the protocol's minimum
QUICK_REPEATS = 10
DEFAULT_RETRIES = 2
DEFAULT_BUDGET = 0.5  # seconds per measurement the repeats are extended to (slower side)
QUICK_BUDGET = 0.02
#: OpenBLAS's idle-thread spin time is 2**value cycles (default 28, about 0.1 s; minimum 4).
SPIN_ENV = "OPENBLAS_THREAD_TIMEOUT"
SHORT_SPIN = 4


def _names(kind: str, choices) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        items = [s.strip() for s in text.split(",") if s.strip()]
        if not items:
            raise argparse.ArgumentTypeError(f"empty {kind} list (choose from {', '.join(choices)})")
        for s in items:
            if s not in choices:
                raise argparse.ArgumentTypeError(f"unknown {kind} {s!r} (choose from {', '.join(choices)})")
        return list(dict.fromkeys(items))

    return parse


def _int_at_least(minimum: int, what: str):
    """An argparse type: an integer >= ``minimum``, else an error saying ``must be a {what}``."""

    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            n = minimum - 1
        if n < minimum:
            raise argparse.ArgumentTypeError(f"must be a {what}; got {text!r}")
        return n

    return parse


_positive_int = _int_at_least(1, "positive integer")
_non_negative_int = _int_at_least(0, "non-negative integer")


def _budget(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = -1.0
    if not (v >= 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"must be a non-negative number of seconds; got {text!r}")
    return v


def _json_path(text: str) -> str:
    parent = os.path.dirname(os.path.abspath(text))
    if not os.path.isdir(parent):
        raise argparse.ArgumentTypeError(f"directory {parent!r} does not exist")
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text!r} is a directory")
    return text


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog or "python benchmarks/run.py",
        description="Time bptt.functional against PyTorch on the kernel grid of BENCHMARKS.md: "
        "inference and training step per cell and row, interleaved, median of the repeats; "
        "ratio torch/bptt (above 1: bptt faster) and the GEMM floor.",
    )
    parser.add_argument("--cells", type=_names("cell", tuple(CELLS)), default=None, metavar="LIST",
                        help=f"comma-separated cells (default: {','.join(CELLS)})")
    parser.add_argument("--rows", type=_names("row", tuple(ROWS)), default=None, metavar="LIST",
                        help=f"comma-separated grid rows (default: all: {','.join(ROWS)})")
    parser.add_argument("--modes", type=_names("mode", MODES), default=None, metavar="LIST",
                        help=f"comma-separated modes (default: {','.join(MODES)})")
    parser.add_argument("--repeats", type=_positive_int, default=None, metavar="N",
                        help=f"minimum timed repeats per measurement (default {DEFAULT_REPEATS}; "
                        f"{QUICK_REPEATS} with --quick); fast rows get more, see --budget")
    parser.add_argument("--budget", type=_budget, default=None, metavar="SECONDS",
                        help=f"extend the repeats of fast rows until the slower side has run about this long "
                        f"(default {DEFAULT_BUDGET}; {QUICK_BUDGET} with --quick; 0: exactly --repeats)")
    parser.add_argument("--json", type=_json_path, default=None, metavar="FILE",
                        help="also write machine info and all results as JSON to FILE (atomically)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test: rows {','.join(QUICK_ROWS)}, {QUICK_REPEATS} repeats, short budget")
    parser.add_argument("--memory", action=argparse.BooleanOptionalAction, default=None,
                        help=f"measure the RSS growth of a training step of the '{MEMORY_ROW}' row, bptt vs "
                        f"torch, each in a fresh subprocess (default: on when the '{MEMORY_ROW}' row is selected)")
    parser.add_argument("--no-torch", action="store_true", help="measure bptt alone, even if PyTorch is installed")
    parser.add_argument("--retries", type=_non_negative_int, default=None, metavar="N",
                        help=f"measure again (up to N times, default {DEFAULT_RETRIES}; 0 with --quick) when other processes used more than "
                        f"{BUSY_CORES:g} cores meanwhile or the repeats spread more than p75/p25 {SPREAD_MAX:g}; "
                        "the steadiest attempt is kept")
    parser.add_argument("--blas-spin", choices=("short", "default"), default="short",
                        help=f"'short' (default): run the timings in a child process with {SPIN_ENV}={SHORT_SPIN} "
                        "so that NumPy's idle OpenBLAS threads stop spinning at once instead of holding a core "
                        "while PyTorch runs (thread counts unchanged; not applied when the variable is already "
                        "set or PyTorch is not compared); 'default': OpenBLAS's own setting")
    return parser


def canonical_argv(args: argparse.Namespace) -> list[str]:
    """Options equivalent to the parsed ``args`` (to hand them on to a child process)."""
    out: list[str] = []
    for name in ("cells", "rows", "modes"):
        if getattr(args, name):
            out += [f"--{name}", ",".join(getattr(args, name))]
    if args.repeats is not None:
        out += ["--repeats", str(args.repeats)]
    if args.budget is not None:
        out += ["--budget", repr(args.budget)]
    if args.json is not None:
        out += ["--json", os.path.abspath(args.json)]
    if args.quick:
        out.append("--quick")
    if args.memory is not None:
        out.append("--memory" if args.memory else "--no-memory")
    if args.no_torch:
        out.append("--no-torch")
    if args.retries is not None:
        out += ["--retries", str(args.retries)]
    return out + ["--blas-spin", args.blas_spin]
