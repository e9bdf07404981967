#!/usr/bin/env python3
"""A per-event classifier of ragged sequences read from a ROOT file with jagged branches.

Each event holds a list of tracks of its own length (1 to a dozen): per track a transverse
momentum, eta, phi and an impact parameter, stored as jagged branches (``std::vector<float>``, or a
counter with C arrays ``float track_pt[ntrack]``). Signal events carry tracks from a displaced
vertex. An LSTM reads each event's tracks (``lengths=``: the padded steps are skipped, the final
state is taken after each event's last track) and a dense layer gives the signal probability.

    python examples/ragged_classifier.py                       # writes the events with uproot (a temporary file)
    python examples/ragged_classifier.py tests/fixtures/jagged_tracks.root --tree tracks
    python examples/ragged_classifier.py DATA.root --tree T --sequence a,b,c --class-branch isSignal --save m.bptt

The steps are bptt's public API: ``DataLoader.add_sequence`` (the jagged branches → ``X (n, T, F)``
padded with zeros and ``Events.lengths``), TMVA's split (``PrepareTrainingAndTestTree``),
``Sequential.fit(X, y, lengths=...)``, ``predict_proba(X, lengths=...)`` and the test ROC AUC.
With ``--save`` the model file records its jagged inputs, so that ``bptt apply MODEL DATA`` scores
another file in chunks.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

from bptt.data.loader import DataLoader
from bptt.layers import LSTM, Dense
from bptt.metrics import roc_auc
from bptt.model import Sequential

BRANCHES = "track_pt,track_eta,track_phi,track_d0"


def write_tracks(path: str, n_events: int, seed: int) -> str:
    """Events of 1 + Poisson(4) tracks, half signal (60 % of their tracks from a displaced vertex:
    harder, collimated, with a large impact parameter), written with uproot as a counter ``ntrack``
    and counted arrays ``track_pt[ntrack]``, … (what ROOT writes for ``Float_t track_pt[ntrack]/F``)."""
    import awkward as ak
    import uproot

    rng = np.random.default_rng(seed)
    label = (np.arange(n_events) % 2).astype(np.int32)
    counts = 1 + rng.poisson(4.0, n_events)
    owner = np.repeat(np.arange(n_events), counts)
    displaced = (label[owner] == 1) & (rng.uniform(size=len(owner)) < 0.6)
    axis = rng.uniform(-np.pi, np.pi, n_events)[owner]
    tracks = {
        "pt": 1.0 + rng.exponential(np.where(displaced, 4.0, 2.5)),
        "eta": rng.normal(0.0, 1.2, len(owner)),
        "phi": axis + rng.normal(0.0, np.where(displaced, 0.15, 0.6)),
        "d0": np.where(displaced, rng.normal(0.0, 1.0, len(owner)) + rng.choice([-1.5, 1.5], len(owner)),
                       rng.normal(0.0, 0.4, len(owner))),
    }
    jagged = ak.zip({k: ak.unflatten(v.astype(np.float32), counts) for k, v in tracks.items()})
    with uproot.recreate(path) as f:  # branches label, ntrack, track_pt[ntrack], track_eta[ntrack], …
        f.mktree("tracks", {"label": np.int32, "track": jagged.type.content},
                 field_name=lambda outer, inner: f"{outer}_{inner}", counter_name=lambda counted: f"n{counted}")
        f["tracks"].extend({"label": label, "track": jagged})
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", nargs="?", help="ROOT file (default: events written with uproot, see --write)")
    parser.add_argument("--write", default=None, metavar="FILE",
                        help="without DATA: keep the events written with uproot in FILE (default: a temporary file)")
    parser.add_argument("--tree", default="tracks", help="the tree (default tracks)")
    parser.add_argument("--sequence", default=BRANCHES, help=f"the jagged branches, one feature each (default {BRANCHES})")
    parser.add_argument("--class-branch", default="label", help="1 signal, 0 background (default label)")
    parser.add_argument("--max-length", type=int, default=None, help="pad to N tracks, keep the first N (default: longest)")
    parser.add_argument("--events", type=int, default=2000, help="events to write without DATA (default 2000)")
    parser.add_argument("--epochs", type=int, default=20, help="training epochs (default 20)")
    parser.add_argument("--hidden", type=int, default=16, help="LSTM units (default 16)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data written, the weights and the batches")
    parser.add_argument("--save", default=None, help="write the model file (for bptt apply) here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        if args.data is None:
            args.data = write_tracks(args.write or os.path.join(tmp, "ragged_tracks.root"), args.events, args.seed)
        return run(args)


def run(args) -> int:
    t0 = time.perf_counter()
    data = args.data
    branches = [b.strip() for b in args.sequence.split(",") if b.strip()]
    loader = DataLoader("ragged")
    loader.add_sequence(branches, max_length=args.max_length)
    loader.add_tree((data, args.tree), "Signal", 1.0, f"{args.class_branch}==1")
    loader.add_tree((data, args.tree), "Background", 1.0, f"{args.class_branch}==0")
    events = loader.prepare_training_and_test_tree("", "SplitMode=Random:SplitSeed=100:NormMode=None")
    X_train, y_train, _ = events.train()
    X_test, y_test, _ = events.test()
    print(f"{data}: {len(events.y)} events, {events.n_train} for training and {events.n_test} for testing; "
          f"{events.lengths.min()} to {events.lengths.max()} steps of {X_train.shape[2]} features "
          f"(mean {events.lengths.mean():.1f}), padded to T = {X_train.shape[1]}")

    model = Sequential([LSTM(len(branches), args.hidden, seed=args.seed), Dense(args.hidden, 1, seed=args.seed + 1)],
                       loss="bce")
    history = model.fit(X_train, y_train, lengths=events.train_lengths(), epochs=args.epochs, batch_size=32,
                        learning_rate=1e-2, early_stopping=None, seed=args.seed, verbose=False)
    scores = model.predict_proba(X_test, lengths=events.test_lengths()).reshape(-1)
    print(f"trained {len(history.loss)} epochs; final training loss {history.loss[-1]:.4f}")
    print(f"test ROC AUC: {roc_auc(y_test, scores):.3f} ({time.perf_counter() - t0:.1f} s)")
    if args.save:
        model.inputs = events.model_inputs()  # the jagged branches: bptt apply reads them by name
        print(f"wrote {model.save(args.save)}; score a file with: bptt apply {args.save} FILE.root --tree {args.tree}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
