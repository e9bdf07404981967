"""A network's inputs from the columns of a tree: the variables ``[(name, size), …]`` of
:attr:`bptt.data.events.Events.variables` and ``Sequential.inputs``, evaluated per event.

A variable of size 1 is a branch or a TTreeFormula expression giving one number per event
(``pt``, ``abs(eta)``, ``v[3]``; :mod:`bptt.data.expressions`); a variable of size ``n > 1`` is
the first ``n`` values of an array branch (``float[N]`` or ``std::vector<float>``), TMVA's
``AddVariablesArray(name, n)``. ``bptt apply`` and :class:`bptt.data.loader.DataLoader` both read
inputs with :func:`compute_inputs`, so a model scores a new file with the inputs it was trained on.

Example::

    >>> import numpy as np
    >>> from bptt.data.inputs import compute_inputs, input_branches
    >>> variables = [("x", 3), ("abs(eta)", 1)]
    >>> sorted(input_branches(variables))
    ['eta', 'x']
    >>> compute_inputs({"x": np.arange(6.0).reshape(2, 3), "eta": np.array([-1.5, 2.0])}, variables).tolist()
    [[0.0, 1.0, 2.0, 1.5], [3.0, 4.0, 5.0, 2.0]]
"""

from __future__ import annotations

import numpy as np

from .expressions import Expression, ExpressionError, parse

__all__ = ["input_branches", "compute_inputs", "check_variables"]

MAX_ARRAY_SIZE = 1_000_000  # values per event of one array variable


def _is_ak(x) -> bool:
    return type(x).__module__.startswith("awkward")


def _expression(name: str, size: int) -> Expression | None:
    """None for an array branch read whole (size > 1), else the expression giving one number."""
    return None if size > 1 else parse(name)


def check_variables(variables, where: str = "variables") -> list[tuple[str, int]]:
    """``variables`` as ``[(name, size), …]`` with sizes in 1…MAX_ARRAY_SIZE and readable names."""
    out = []
    for item in variables:
        try:
            name, size = item
        except (TypeError, ValueError):
            raise ValueError(f"{where}: each variable must be (name, size); got {item!r}") from None
        if not isinstance(name, str) or isinstance(size, bool) or not isinstance(size, (int, np.integer)):
            raise ValueError(f"{where}: each variable must be (name: str, size: int); got {item!r}")
        if not 1 <= int(size) <= MAX_ARRAY_SIZE:
            raise ValueError(f"{where}: variable {name!r} has size {size}; expected 1…{MAX_ARRAY_SIZE}")
        if int(size) > 1 and not parse(name).is_branch:
            raise ValueError(f"{where}: variable {name!r} of size {size} must be an array branch's name")
        _expression(name, int(size))
        out.append((name, int(size)))
    return out


def input_branches(variables) -> set[str]:
    """The branches that ``variables`` read: an array's branch, or those of a one-number expression."""
    out: set[str] = set()
    for name, size in check_variables(variables):
        expr = _expression(name, size)
        out |= {name} if expr is None else set(expr.branches)
    return out


def _entry(entries, first_entry: int, k: int) -> int:
    return int(entries[k]) if entries is not None else first_entry + k


def _array_values(name: str, size: int, column, entries, first_entry: int, where: str, exact: bool) -> np.ndarray:
    """The first ``size`` values of an array branch per entry, as float32 ``(n, size)``; ``exact``:
    every entry must hold exactly ``size`` values."""
    if _is_ak(column):
        import awkward as ak

        if column.ndim != 2:
            raise ValueError(f"{where}: AddVariablesArray({name!r}, {size}): branch {name} has type {column.type}; "
                             f"expected one list of numbers per event")
        counts = np.asarray(ak.num(column, axis=1))
        short = np.flatnonzero(counts != size if exact else counts < size)
        if short.size:
            k = int(short[0])
            raise ValueError(
                f"{where}: AddVariablesArray({name!r}, {size}) needs {size} values per event but entry "
                f"{_entry(entries, first_entry, k)} of {name} has {int(counts[k])}; "
                + ("every time step must have the same number of features in every entry" if exact else
                   "give the size the branch has in every entry")
            )
        return ak.to_numpy(column[:, :size]).astype(np.float32, copy=False)
    column = np.asarray(column)
    if column.ndim == 1:
        raise ValueError(f"{where}: AddVariablesArray({name!r}, {size}): branch {name} holds one number per event; "
                         f"use AddVariable({name!r})")
    column = column.reshape(len(column), -1)
    if column.shape[1] < size or (exact and column.shape[1] != size):
        raise ValueError(
            f"{where}: AddVariablesArray({name!r}, {size}) needs {size} values per event but branch {name} holds "
            f"{column.shape[1]}; give the size the branch has"
        )
    return column[:, :size].astype(np.float32, copy=False)


def compute_inputs(columns, variables, *, first_entry: int = 0, entries=None, where: str = "inputs",
                   exact: bool = False) -> np.ndarray:
    """One event's inputs per row: float32 ``(n, Σ sizes)``, the variables concatenated in order.

    Args:
        columns: ``{branch: array}`` as uproot reads them (NumPy, or awkward for ``std::vector``).
        variables: ``[(name, size), …]``.
        first_entry, entries: the entry number of row 0 (rows consecutive), or of every row
            (``entries``), for the messages.
        where: the source (file and tree) for the messages.
        exact: an array branch must hold exactly its size in every entry (not at least: TMVA's
            ``AddVariablesArray`` reads the first ``size`` values of a longer one).

    Raises:
        ValueError: a missing branch, an array shorter than its size, an expression giving several
            values per event, or a value that is NaN or infinite (naming the variable and the entry).
    """
    blocks = []
    for name, size in check_variables(variables, where):
        expr = _expression(name, size)
        if expr is None:
            if name not in columns:
                raise ValueError(f"{where}: no branch {name!r} (AddVariablesArray({name!r}, {size}))")
            values = _array_values(name, size, columns[name], entries, first_entry, where, exact)
        else:
            try:
                values = expr.evaluate(columns, check_finite=False, first_entry=first_entry)
            except ExpressionError as exc:
                raise ValueError(f"{where}: variable {name!r}: {exc}") from None
            if _is_ak(values) or getattr(values, "ndim", 1) != 1:
                raise ValueError(
                    f"{where}: variable {name!r} gives several values per event (an array branch); TMVA would make "
                    f"each value an event of its own; use AddVariablesArray({name!r}, <n>) or pick one, e.g. {name}[0]"
                )
            values = np.asarray(values, dtype=np.float32).reshape(-1, 1)
        bad = ~np.isfinite(values)
        if bad.any():
            k = int(np.argmax(bad.any(axis=1)))
            raise ValueError(
                f"{where}: variable {name!r} is {values[k][bad[k]][0]} in entry {_entry(entries, first_entry, k)}, an "
                f"event that passes the cuts (TMVA stops on a NaN or inf input too); add a cut that removes it"
            )
        blocks.append(values)
    if not blocks:
        raise ValueError(f"{where}: no input variables; add some with AddVariable or AddVariablesArray")
    return np.concatenate(blocks, axis=1) if len(blocks) > 1 else blocks[0]
