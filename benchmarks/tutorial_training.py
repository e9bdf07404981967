"""Training time of the TMVA tutorial network: bptt against the same network in PyTorch.

    python benchmarks/tutorial_training.py [--cell LSTM] [--events 2000] [--epochs 20] [--repeats 3]

Both train ``<cell>|10|30|10|0|1, RESHAPE|FLAT, DENSE|64|TANH, LINEAR`` with Adam (lr 1e-3),
batch 100, a fixed number of epochs (no early stopping, so both do the same work), on the same
standardised arrays, in one process, alternating bptt and PyTorch runs; the figure is the median
wall time of each and the ratio torch / bptt (above 1: bptt is faster). Test ROC AUC of both is
printed as a sanity check that both trained. PyTorch is needed (``pip install torch==2.13.0``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cell", default="LSTM", choices=["LSTM", "GRU", "RNN"])
    parser.add_argument("--events", type=int, default=2000, help="events per class (default 2000)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3, help="training runs of each (default 3)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    try:
        import torch
    except ImportError:
        print("this benchmark needs PyTorch: pip install torch==2.13.0", file=sys.stderr)
        return 2
    from bptt.data.arrays import Standardizer, train_test_split
    from bptt.data.toy import make_tutorial_data
    from bptt.metrics import roc_auc
    from bptt.model import Sequential

    signal, background = make_tutorial_data(args.events, seed=args.seed)
    X = np.concatenate([signal, background])
    y = np.r_[np.ones(len(signal)), np.zeros(len(background))].astype(np.float32)
    X_train, X_test, y_train, y_test = train_test_split(X, y, 0.2, seed=args.seed)
    scaler = Standardizer().fit(X_train)
    Xs, Xt = scaler.transform(X_train).astype(np.float32), scaler.transform(X_test).astype(np.float32)
    layout = f"{args.cell}|10|30|10|0|1,RESHAPE|FLAT,DENSE|64|TANH,LINEAR"

    def run_bptt(seed):
        model = Sequential.from_tmva(layout, "10|30", seed=seed)
        t0 = time.perf_counter()
        model.fit(Xs, y_train, epochs=args.epochs, batch_size=100, learning_rate=1e-3, early_stopping=None,
                  validation_split=0.0, standardize=False, seed=seed, verbose=False)
        seconds = time.perf_counter() - t0
        return seconds, roc_auc(y_test, model.predict_proba(Xt))

    rnn = {"LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU, "RNN": torch.nn.RNN}[args.cell]

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = rnn(30, 10, batch_first=True)
            self.dense = torch.nn.Linear(100, 64)
            self.out = torch.nn.Linear(64, 1)

        def forward(self, x):
            h, _ = self.rnn(x)
            return self.out(torch.tanh(self.dense(h.reshape(len(x), -1))))[:, 0]

    A, Y, T = torch.from_numpy(Xs), torch.from_numpy(y_train), torch.from_numpy(Xt)

    def run_torch(seed):
        torch.manual_seed(seed)
        net = Net()
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        gen = torch.Generator().manual_seed(seed)
        t0 = time.perf_counter()
        for _ in range(args.epochs):
            perm = torch.randperm(len(A), generator=gen)
            for i in range(0, len(A), 100):
                idx = perm[i : i + 100]
                opt.zero_grad(set_to_none=True)
                loss_fn(net(A[idx]), Y[idx]).backward()
                opt.step()
        seconds = time.perf_counter() - t0
        with torch.no_grad():
            return seconds, roc_auc(y_test, torch.sigmoid(net(T)).numpy())

    run_bptt(args.seed)  # warm-up: compiled kernels loaded, caches filled
    times = {"bptt": [], "torch": []}
    aucs = {"bptt": [], "torch": []}
    for r in range(args.repeats):
        for name, fn in (("bptt", run_bptt), ("torch", run_torch)):
            s, auc = fn(args.seed + r)
            times[name].append(s)
            aucs[name].append(auc)
            print(f"  run {r + 1} {name:<5} {s:7.2f} s  test ROC AUC {auc:.4f}", file=sys.stderr)
    tb, tt = statistics.median(times["bptt"]), statistics.median(times["torch"])
    print(f"{args.cell} tutorial network, {len(Xs)} training events, {args.epochs} epochs, batch 100, Adam 1e-3")
    print(f"  bptt   {tb:7.2f} s   (median of {args.repeats})   test ROC AUC {statistics.median(aucs['bptt']):.4f}")
    print(f"  torch  {tt:7.2f} s   (median of {args.repeats})   test ROC AUC {statistics.median(aucs['torch']):.4f}")
    print(f"  torch / bptt = {tt / tb:.2f}   (above 1: bptt is faster)")
    print(f"  threads: torch {torch.get_num_threads()}; bptt: NumPy BLAS, single-threaded for this size")
    return 0


if __name__ == "__main__":
    sys.exit(main())
