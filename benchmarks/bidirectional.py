"""Bidirectional layers (issue 20, point 2): a training step of a bptt ``LSTM/GRU/RNN(...,
bidirectional=True)`` layer against PyTorch's ``nn.LSTM/GRU/RNN(..., bidirectional=True)``.

    python benchmarks/bidirectional.py [--cells lstm,gru,rnn] [--rows tmva-tutorial,...,long]
                                       [--rounds 5] [--repeats 30] [--lengths] [--uni]

Rows: the kernel grid's (BENCHMARKS.md, benchmarks/grid.py) up to ``long`` by default; float32,
``return_sequences=True`` (output ``(B, T, 2H)``). A training step is the layer's forward keeping
the cache and the backward of a fixed ``dy`` to ``dx`` and every parameter gradient of both
directions (bptt: ``layer.forward(x, training=True)``, ``layer.backward(dy)``; PyTorch:
``out, _ = module(x)``, ``out.backward(dout)`` with ``x.requires_grad``). ``--lengths``: ragged
batches, lengths uniform in [1, T] (seed 0), bptt's ``lengths=`` against PyTorch's
``pack_padded_sequence(..., enforce_sorted=False)`` / ``pad_packed_sequence``. ``--uni``: also
the unidirectional layers of both libraries (what one direction costs).

Alternating processes, the default environment (BENCHMARKS.md): each measurement is a fresh child
process that imports one library only (no PyTorch OpenMP threads spinning beside bptt's, no
variable set, ``torch.set_num_threads`` left at its default), warms up for a second and reports
the median of ``--repeats`` timed steps; the children run in turns for ``--rounds`` rounds, and
the figure is the median over the rounds. Printed: milliseconds and torch / bptt (above 1: bptt
faster), with the CPU, the load average before and after each row (the measurement's own child
counts in it: about 1-2 on two cores) and the cores other processes used meanwhile (the machine's
busy time from /proc/stat minus the children's CPU time): a row with more than a quarter of a core
used by others was measured on a busy machine.
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
from grid import CELLS, ROWS  # noqa: E402
from timing import _LoadMeter  # noqa: E402

DEFAULT_ROWS = ("tmva-tutorial", "tmva-test", "small", "medium", "long")


def problem(row: str, cell: str, ragged: bool):
    r = ROWS[row]
    B, T, I, H = r.B, r.T, r.I, r.H
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    dy = rng.standard_normal((B, T, 2 * H)).astype(np.float32)
    lengths = rng.integers(1, T + 1, B).astype(np.int64) if ragged else None
    if lengths is not None:
        dy[np.arange(T)[None, :] >= lengths[:, None]] = 0  # padded steps' outputs are constants
    return x, dy, lengths


def bptt_step(cell: str, row: str, ragged: bool, bidirectional: bool):
    from bptt.layers import GRU, LSTM, RNN

    x, dy, lengths = problem(row, cell, ragged)
    r = ROWS[row]
    layer = {"lstm": LSTM, "gru": GRU, "rnn": RNN}[cell](r.I, r.H, return_sequences=True,
                                                         bidirectional=bidirectional, seed=0)
    dy = dy if bidirectional else np.ascontiguousarray(dy[..., : r.H])

    def step():
        layer.forward(x, training=True, lengths=lengths)
        return layer.backward(dy)

    return step


def torch_step(cell: str, row: str, ragged: bool, bidirectional: bool):
    x, dy, lengths = problem(row, cell, ragged)
    r = ROWS[row]
    dout = dy if bidirectional else np.ascontiguousarray(dy[..., : r.H])
    return alternating.torch_step(cell, r.I, r.H, x, dout, lengths, bidirectional)


def child(kind: str, row: str, cell: str, ragged: bool, repeats: int) -> None:
    """One measurement (benchmarks/alternating.py): the median of ``repeats`` timed steps."""
    lib, direction = kind.split("_")
    make = bptt_step if lib == "bptt" else torch_step
    report_median(make(cell, row, ragged, direction == "bi"), repeats)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cells", default="lstm,gru,rnn")
    ap.add_argument("--rows", default=",".join(DEFAULT_ROWS))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--lengths", action="store_true", help="ragged batches, lengths uniform in [1, T]")
    ap.add_argument("--uni", action="store_true", help="also the unidirectional layers")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--json", help="write the results to this file as well")
    ap.add_argument("--child", nargs=5, metavar=("KIND", "ROW", "CELL", "RAGGED", "REPEATS"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        kind, row, cell, ragged, repeats = args.child
        child(kind, row, cell, ragged == "1", int(repeats))
        return 0
    for name, allowed, given in (("--rows", ROWS, args.rows), ("--cells", CELLS, args.cells)):
        bad = [g for g in given.split(",") if g not in allowed]
        if bad:
            ap.error(f"{name}: unknown {bad}; expected among {sorted(allowed)}")
    kinds = ["bptt_bi"] + ([] if args.no_torch else ["torch_bi"])
    if args.uni:
        kinds += ["bptt_uni"] + ([] if args.no_torch else ["torch_uni"])
    from machine import _cpu_model, gemm_rate

    flags = set()
    try:
        with open("/proc/cpuinfo") as fh:
            flags = set(next(line for line in fh if line.startswith("flags")).split())
    except (OSError, StopIteration):
        pass
    isa = "/".join(f for f in ("avx2", "avx512f", "amx_tile") if f in flags) or "unknown ISA"
    try:
        from threadpoolctl import threadpool_info

        blas = ", ".join(f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')}, "
                         f"{i.get('num_threads')} threads)" for i in threadpool_info() if i.get("user_api") == "blas")
    except ImportError:
        blas = "unknown BLAS"
    print(f"CPU: {_cpu_model()} ({isa}), {os.cpu_count()} cores; NumPy's BLAS: {blas}; 1024^3 float32 GEMM "
          f"{gemm_rate() / 1e9:.0f} GFLOP/s", flush=True)
    print(f"numpy {np.__version__}; float32 training step "
          f"(forward + backward) of a bidirectional layer, return_sequences=True"
          f"{', ragged (lengths uniform in [1, T])' if args.lengths else ''}; "
          f"median of {args.rounds} alternating processes x {args.repeats} repeats", flush=True)
    results = []
    for row in args.rows.split(","):
        r = ROWS[row]
        for cell in args.cells.split(","):
            load0, meter = os.getloadavg()[0], _LoadMeter(children=True)
            ms = {k: [] for k in kinds}
            for _ in range(args.rounds):
                for k in kinds:
                    ms[k].append(run_child(__file__, k, row, cell, int(args.lengths), args.repeats))
            med = {k: statistics.median(v) for k, v in ms.items()}
            load1, others = os.getloadavg()[0], meter.other_cores()
            rec = {"row": row, "cell": cell, "B": r.B, "T": r.T, "I": r.I, "H": r.H, "ragged": args.lengths,
                   **{f"{k}_ms": v for k, v in med.items()}, "load": [load0, load1], "other_cores": others}
            line = f"{row:13s} {cell:4s} B={r.B:<3d} T={r.T:<3d} I={r.I:<2d} H={r.H:<3d} bptt {med['bptt_bi']:8.3f} ms"
            if "torch_bi" in med:
                rec["torch_over_bptt"] = med["torch_bi"] / med["bptt_bi"]
                line += f"  torch {med['torch_bi']:8.3f} ms  torch/bptt {rec['torch_over_bptt']:5.2f}"
            if "bptt_uni" in med:
                line += f"  | unidirectional: bptt {med['bptt_uni']:.3f} ms"
                if "torch_uni" in med:
                    line += f", torch {med['torch_uni']:.3f} ms ({med['torch_uni'] / med['bptt_uni']:.2f})"
            line += f"  [load {load0:.2f} -> {load1:.2f}, other processes {others if others is None else round(others, 2)} cores]"
            print(line, flush=True)
            results.append(rec)
    if args.json:
        from report import write_json_atomic

        write_json_atomic(args.json, {"cpu": _cpu_model(), "cores": os.cpu_count(), "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
