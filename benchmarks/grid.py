"""The kernel grid of BENCHMARKS.md: its rows, cells and modes, and the GEMM flops of one call."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CELLS", "DTYPE", "MEMORY_ROW", "MODES", "QUICK_ROWS", "ROWS", "Row", "as_row", "flops"]


@dataclass(frozen=True)
class Row:
    """One row of the kernel grid: batch ``B``, steps ``T``, input features ``I``, hidden ``H``."""

    name: str
    B: int
    T: int
    I: int  # noqa: E741
    H: int


#: Cell name → number of gate blocks G.
CELLS: dict[str, int] = {"lstm": 4, "gru": 3, "rnn": 1}
MODES: tuple[str, ...] = ("inference", "train")
ROWS: dict[str, Row] = {
    r.name: r
    for r in (
        Row("tmva-tutorial", 100, 10, 30, 10),
        Row("tmva-test", 64, 5, 5, 10),
        Row("small", 64, 30, 30, 10),
        Row("medium", 256, 30, 30, 64),
        Row("long", 64, 100, 32, 128),
        Row("wide", 128, 50, 64, 256),
        Row("large", 32, 200, 128, 512),
    )
}
QUICK_ROWS: tuple[str, ...] = ("tmva-tutorial", "tmva-test", "small", "medium")
#: The row whose training step the memory figure is taken on.
MEMORY_ROW = "large"
DTYPE = np.float32


def as_row(row: Row | str) -> Row:
    """``row`` itself, or the grid row of that name."""
    return row if isinstance(row, Row) else ROWS[row]


def flops(cell: str, row: Row | str, mode: str) -> int:
    """GEMM flops of one call: ``2·B·T·(I+H)·G·H`` for inference, three times that for a training step."""
    r = as_row(row)
    forward = 2 * r.B * r.T * (r.I + r.H) * CELLS[cell] * r.H
    if mode == "inference":
        return forward
    if mode == "train":
        return 3 * forward
    raise ValueError(f"flops: mode must be one of {', '.join(MODES)}; got {mode!r}")
