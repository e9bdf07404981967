"""Ragged batches (issue 20, point 1): a training step of bptt.functional with ``lengths=`` against
PyTorch's packed sequences and against bptt on the padded batch.

    python benchmarks/ragged.py [--cells lstm,gru,rnn] [--rounds 5] [--repeats 30] [--rows ragged,tutorial]

Rows: ``ragged`` (BENCHMARKS.md: B = 256, T_max = 40, I = 16, H = 64, lengths ~ Poisson(12)
clipped to [1, 40]) and ``tutorial`` (TMVA_RNN_Classification's size, B = 100, T = 10, I = 30,
H = 10, lengths uniform in [1, 10]). float32, one fixed draw of the lengths (seed 0).

A training step is, as in benchmarks/cells.py: forward keeping the cache, backward to dx and
every parameter gradient (bptt spends its cache, ``keep_cache=False``; PyTorch
``out.backward(dout)``). PyTorch's step includes ``pack_padded_sequence(..., enforce_sorted=False)``
and ``pad_packed_sequence``, as bptt's includes packing its inputs into its packed layout
(bptt.functional._packed) and unpacking ``h`` and ``dx`` into the caller's ``(B, T, ·)``.

Alternating processes, the default environment: each measurement is a fresh child process that
imports one library only (no PyTorch OpenMP threads spinning beside bptt's, no variable set),
warms up, and reports the median of ``--repeats`` timed steps; the children run in turns
(bptt ragged, bptt padded, torch packed, torch padded) for ``--rounds`` rounds, and the figure
is the median over the rounds. Printed: milliseconds, torch packed / bptt ragged (above 1: bptt
faster), and bptt ragged / bptt padded against the fraction of real steps (the time should be
proportional to it: the ratio of the two, ``ragged/padded ÷ fraction``, near 1).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import alternating  # noqa: E402
from alternating import report_median, run_child  # noqa: E402

ROWS = {
    "ragged": dict(B=256, T=40, I=16, H=64, lengths="poisson12"),
    "tutorial": dict(B=100, T=10, I=30, H=10, lengths="uniform"),
}
GATES = {"lstm": 4, "gru": 3, "rnn": 1}
KINDS = ("bptt_ragged", "bptt_padded", "torch_packed", "torch_padded")


def problem(row: str, cell: str):
    r = ROWS[row]
    B, T, I, H = r["B"], r["T"], r["I"], r["H"]
    rng = np.random.default_rng(0)
    if r["lengths"] == "poisson12":
        lengths = np.clip(rng.poisson(12, B), 1, T)
    else:
        lengths = rng.integers(1, T + 1, B)
    G = GATES[cell]
    p = {
        "x": rng.standard_normal((B, T, I)),
        "W": rng.standard_normal((I, G * H)) / np.sqrt(I),
        "U": rng.standard_normal((H, G * H)) / np.sqrt(H),
        "b": 0.1 * rng.standard_normal(G * H),
        "b_u": 0.1 * rng.standard_normal(G * H),
        "dh": rng.standard_normal((B, T, H)),
    }
    p = {k: a.astype(np.float32) for k, a in p.items()}
    return p, lengths.astype(np.int64)


def bptt_step(cell: str, p, lengths):
    from bptt import functional as F

    fwd, bwd = getattr(F, f"{cell}_forward"), getattr(F, f"{cell}_backward")
    args = (p["x"], p["W"], p["U"], p["b"]) + ((p["b_u"],) if cell == "gru" else ())
    dh = p["dh"]

    def step():
        _, cache = fwd(*args, lengths=lengths)
        return bwd(dh, cache, keep_cache=False)

    return step


def torch_step(cell: str, p, lengths):
    return alternating.torch_step(cell, p["W"].shape[0], p["U"].shape[0], p["x"], p["dh"], lengths)


def child(kind: str, row: str, cell: str, repeats: int) -> None:
    """One measurement (benchmarks/alternating.py): the median of ``repeats`` timed steps."""
    p, lengths = problem(row, cell)
    ragged = kind.endswith(("ragged", "packed"))
    make = bptt_step if kind.startswith("bptt") else torch_step
    report_median(make(cell, p, lengths if ragged else None), repeats)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cells", default="lstm,gru,rnn")
    ap.add_argument("--rows", default="ragged,tutorial")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--child", nargs=4, metavar=("KIND", "ROW", "CELL", "REPEATS"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        kind, row, cell, repeats = args.child
        child(kind, row, cell, int(repeats))
        return 0
    import numpy
    from machine import _cpu_model

    kinds = [k for k in KINDS if not (args.no_torch and k.startswith("torch"))]
    print(f"CPU: {_cpu_model()}, {os.cpu_count()} cores; numpy {numpy.__version__}; float32 training step "
          f"(forward + backward); median of {args.rounds} alternating processes x {args.repeats} repeats")
    for row in args.rows.split(","):
        r = ROWS[row]
        for cell in args.cells.split(","):
            _, lengths = problem(row, cell)
            fraction = lengths.sum() / (r["B"] * r["T"])
            ms = {k: [] for k in kinds}
            for _ in range(args.rounds):
                for k in kinds:
                    ms[k].append(run_child(__file__, k, row, cell, args.repeats))
            med = {k: statistics.median(v) for k, v in ms.items()}
            line = (f"{row:8s} {cell:4s} B={r['B']} T={r['T']} I={r['I']} H={r['H']} real steps {fraction:.3f}: "
                    f"bptt ragged {med['bptt_ragged']:.3f} ms, padded {med['bptt_padded']:.3f} ms "
                    f"(ragged/padded {med['bptt_ragged'] / med['bptt_padded']:.3f}, "
                    f"÷ fraction {med['bptt_ragged'] / med['bptt_padded'] / fraction:.2f})")
            if "torch_packed" in med:
                line += (f"; torch packed {med['torch_packed']:.3f} ms, padded {med['torch_padded']:.3f} ms; "
                         f"torch packed / bptt ragged {med['torch_packed'] / med['bptt_ragged']:.2f}")
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
