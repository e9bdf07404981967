"""Networks, not single layers: a training step of small recurrent networks as users build them,
bptt's layers against the same network in PyTorch.

    python benchmarks/networks.py [--nets dense,stacked,bidense] [--cells lstm,gru,rnn]
                                  [--rows medium,long] [--rounds 3] [--repeats 30]

Networks (float32, ``return_sequences`` / ``batch_first``):

* ``dense``: recurrent(I → H) returning sequences, then Dense(H → 1) at every step (sequence
  labelling, per-step regression: issue 20, point 4);
* ``stacked``: two recurrent layers, I → H → H, the second's sequences as the output;
* ``bidense``: a bidirectional recurrent layer (I → 2H), then Dense(2H → 1) at every step.

A training step: the forward pass keeping what the backward needs, and the backward from a fixed
gradient of the outputs to every parameter's gradient and dx (bptt: each layer's ``forward(x,
training=True)``, then ``backward`` in reverse; PyTorch: the modules' forward, ``out.backward(dout)``
with ``x.requires_grad``). No optimizer step and no loss, in either. These are the calls
:func:`bptt.train.fit` makes per batch, outside ``fit``'s own choices (``fit`` holds BLAS to one
thread for batches below 60 MFLOP: not these rows).

Alternating processes, the default environment (benchmarks/alternating.py): each figure is the
median over ``--rounds`` fresh child processes of the median of ``--repeats`` steps. Printed: ms
per step and torch / bptt (above 1: bptt faster).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from alternating import report_median, run_child  # noqa: E402
from grid import ROWS  # noqa: E402

NETS = ("dense", "stacked", "bidense")
CELLS = ("lstm", "gru", "rnn")


def problem(net: str, row: str):
    r = ROWS[row]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((r.B, r.T, r.I)).astype(np.float32)
    width = 1 if net in ("dense", "bidense") else r.H
    dout = rng.standard_normal((r.B, r.T, width)).astype(np.float32)
    return x, dout


def bptt_step(net: str, cell: str, row: str):
    from bptt.layers import GRU, LSTM, RNN, Dense

    r = ROWS[row]
    x, dout = problem(net, row)
    Cell = {"lstm": LSTM, "gru": GRU, "rnn": RNN}[cell]
    if net == "dense":
        layers = [Cell(r.I, r.H, return_sequences=True, seed=0), Dense(r.H, 1, seed=1)]
    elif net == "stacked":
        layers = [Cell(r.I, r.H, return_sequences=True, seed=0), Cell(r.H, r.H, return_sequences=True, seed=1)]
    else:
        layers = [Cell(r.I, r.H, return_sequences=True, bidirectional=True, seed=0), Dense(2 * r.H, 1, seed=1)]

    def step():
        a = x
        for layer in layers:
            a = layer.forward(a, training=True)
        d = dout
        for layer in reversed(layers):
            d = layer.backward(d)
        return d

    return step


def torch_step(net: str, cell: str, row: str):
    import torch

    r = ROWS[row]
    x, dout = problem(net, row)
    Cell = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell]
    if net == "dense":
        mods = [Cell(r.I, r.H, batch_first=True), torch.nn.Linear(r.H, 1)]
    elif net == "stacked":
        mods = [Cell(r.I, r.H, batch_first=True), Cell(r.H, r.H, batch_first=True)]
    else:
        mods = [Cell(r.I, r.H, batch_first=True, bidirectional=True), torch.nn.Linear(2 * r.H, 1)]
    params = [p for m in mods for p in m.parameters()]
    xt = torch.from_numpy(x).requires_grad_(True)
    dt = torch.from_numpy(dout)

    def step():
        for p in params:
            p.grad = None
        xt.grad = None
        a = xt
        for m in mods:
            a = m(a)
            if isinstance(a, tuple):  # recurrent modules: (output, state)
                a = a[0]
        a.backward(dt)
        return xt.grad

    return step


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nets", default=",".join(NETS))
    ap.add_argument("--cells", default=",".join(CELLS))
    ap.add_argument("--rows", default="medium,long")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--child", nargs=5, metavar=("LIB", "NET", "CELL", "ROW", "REPEATS"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        lib, net, cell, row, repeats = args.child
        make = bptt_step if lib == "bptt" else torch_step
        report_median(make(net, cell, row), int(repeats))
        return 0
    for name, value, allowed in (("--nets", args.nets, NETS), ("--cells", args.cells, CELLS), ("--rows", args.rows, ROWS)):
        unknown = [v for v in value.split(",") if v not in allowed]
        if unknown:
            print(f"networks.py: {name} must be a comma-separated list of {', '.join(allowed)}; got {unknown}",
                  file=sys.stderr)
            return 2
    from machine import _cpu_model

    print(f"CPU: {_cpu_model()}, {os.cpu_count()} cores; numpy {np.__version__}; float32 training step; median of "
          f"{args.rounds} alternating processes x {args.repeats} repeats")
    print("| net | cell | row | bptt ms | torch ms | torch/bptt |")
    print("|---|---|---|---:|---:|---:|")
    for row in args.rows.split(","):
        for net in args.nets.split(","):
            for cell in args.cells.split(","):
                ms = {"bptt": [], "torch": []}
                for _ in range(args.rounds):
                    for lib in ms:
                        ms[lib].append(run_child(__file__, lib, net, cell, row, args.repeats))
                b, t = statistics.median(ms["bptt"]), statistics.median(ms["torch"])
                print(f"| {net} | {cell} | {row} | {b:.2f} | {t:.2f} | {t / b:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
