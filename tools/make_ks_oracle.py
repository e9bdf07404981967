#!/usr/bin/env python3
"""Write tests/fixtures/ks_root.json: ROOT's own ``TH1::KolmogorovTest`` on fixed histograms, the
oracle of bptt's overtraining check (bptt.metrics.ks_test_binned, bptt.results).

Run with a Python that has the ``root`` package (PyROOT; TMVA itself is not needed):

    /tmp/rootvenv/bin/python tools/make_ks_oracle.py [--out tests/fixtures/ks_root.json]

Each case keeps its inputs (classifier outputs, classes, event weights, float32 values as TMVA's
``Float_t``), ROOT's bin contents and squared errors (bins 1..n), and ROOT's results:
``KolmogorovTest(h, "")`` (the probability) and ``KolmogorovTest(h, "M")`` (the largest distance).

- ``histograms``: two samples filled into the same 40 bins, unweighted and weighted.
- ``tmva``: test and training outputs of both classes, binned as TMVA's MethodBase::TestClassification
  does for its overtraining check: 40 bins (``fNbinsMVAoutput``) from the test sample's smallest to
  largest output, narrowed to the classes' weighted mean ± 10 RMS, the upper edge raised by 1e-5;
  histograms MVA_S / MVA_B (test) and MVA_TRAIN_S / MVA_TRAIN_B (training) with Sumw2, normalised
  as gTools().NormHist does; ``KolmogorovTest(test, train)`` per class, as GetKSTrainingVsTest
  (with the option "" here: TMVA's default "X" draws pseudo-experiments and is not reproducible).
"""

from __future__ import annotations

import argparse
import json
import math
import os

import numpy as np
import ROOT

NBINS = 40


def f32(a) -> list[float]:
    """float32 values written shortest (``float(str(np.float32(v)))`` casts back to the same float32)."""
    return [float(str(v)) for v in np.asarray(a, np.float32)]


def hist(name, values, weights, lo, hi, nbins=NBINS):
    h = ROOT.TH1D(name, name, nbins, lo, hi)
    h.Sumw2()
    for v, w in zip(values, weights):
        h.Fill(float(v), float(w))
    return h


def contents(h) -> tuple[list[float], list[float]]:
    n = h.GetNbinsX()
    return [h.GetBinContent(i) for i in range(1, n + 1)], [h.GetBinError(i) ** 2 for i in range(1, n + 1)]


def compare(h1, h2) -> dict:
    c1, e1 = contents(h1)
    c2, e2 = contents(h2)
    return {"counts1": c1, "sumw2_1": e1, "counts2": c2, "sumw2_2": e2,
            "probability": h1.KolmogorovTest(h2, ""), "distance": h1.KolmogorovTest(h2, "M")}


def histogram_cases(rng) -> list[dict]:
    cases = []
    for name, n1, n2, shift, weighted in (("unweighted", 300, 500, 0.0, False), ("unweighted_shifted", 200, 250, 0.4, False),
                                          ("weighted", 400, 300, 0.1, True), ("few_events", 12, 9, 0.0, False)):
        a = np.asarray(rng.normal(0.0, 1.0, n1), np.float32)
        b = np.asarray(rng.normal(shift, 1.0, n2), np.float32)
        wa = np.asarray(rng.uniform(0.2, 2.0, n1) if weighted else np.ones(n1), np.float32)
        wb = np.asarray(rng.uniform(0.2, 2.0, n2) if weighted else np.ones(n2), np.float32)
        h1, h2 = hist(f"{name}_1", a, wa, -4.0, 4.0), hist(f"{name}_2", b, wb, -4.0, 4.0)
        case = {"name": name, "low": -4.0, "high": 4.0, "nbins": NBINS,
                "values1": f32(a), "weights1": f32(wa), "values2": f32(b), "weights2": f32(wb)}
        case.update(compare(h1, h2))
        cases.append(case)
    return cases


def weighted_mean_rms(x, w) -> tuple[float, float]:
    mean = float(np.sum(w * x) / np.sum(w))
    return mean, math.sqrt(max(float(np.sum(w * x * x) / np.sum(w)) - mean * mean, 0.0))


def norm_hist(h) -> None:
    """gTools().NormHist: scale to unit area (it leaves the KS probability unchanged)."""
    w = h.GetSumOfWeights() * (h.GetXaxis().GetXmax() - h.GetXaxis().GetXmin()) / h.GetNbinsX()
    if w > 0:
        h.Scale(1.0 / w)


def tmva_case(rng, name, n_test, n_train, overtrained, weighted, outlier=False) -> dict:
    def sample(n, train):
        y = (rng.uniform(size=n) < 0.5).astype(np.int32)
        width = 0.12 if (train and overtrained) else 0.18
        centre = np.where(y == 1, 0.7, 0.3) + (np.where(y == 1, 0.08, -0.08) if (train and overtrained) else 0.0)
        s = np.clip(rng.normal(centre, width), 0.0, 1.0)
        w = rng.uniform(0.5, 1.5, n) if weighted else np.ones(n)
        return np.asarray(s, np.float32), y, np.asarray(w, np.float32)

    s_te, y_te, w_te = sample(n_test, False)
    s_tr, y_tr, w_tr = sample(n_train, True)
    if outlier:  # one far test output: the range is narrowed to mean ± 10 RMS
        s_te[0] = np.float32(40.0)
    x, w = s_te.astype(np.float64), w_te.astype(np.float64)
    sig = y_te == 1
    mean_s, rms_s = weighted_mean_rms(x[sig], w[sig])
    mean_b, rms_b = weighted_mean_rms(x[~sig], w[~sig])
    lo = max(min(mean_s - 10 * rms_s, mean_b - 10 * rms_b), float(x.min()))
    hi = min(max(mean_s + 10 * rms_s, mean_b + 10 * rms_b), float(x.max())) + 0.00001
    out = {"name": name, "low": lo, "high": hi, "nbins": NBINS,
           "test": {"scores": f32(s_te), "classes": [int(v) for v in y_te], "weights": f32(w_te)},
           "train": {"scores": f32(s_tr), "classes": [int(v) for v in y_tr], "weights": f32(w_tr)}}
    for label, cls in (("signal", 1), ("background", 0)):
        te, tr = y_te == cls, y_tr == cls
        h_te = hist(f"{name}_{label}_test", s_te[te], w_te[te], lo, hi)
        h_tr = hist(f"{name}_{label}_train", s_tr[tr], w_tr[tr], lo, hi)
        norm_hist(h_te)
        norm_hist(h_tr)
        out[label] = compare(h_te, h_tr)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join("tests", "fixtures", "ks_root.json"))
    args = parser.parse_args()
    ROOT.TH1.AddDirectory(False)
    rng = np.random.default_rng(20240619)
    data = {
        "made_by": "tools/make_ks_oracle.py",
        "root_version": ROOT.gROOT.GetVersion(),
        "histograms": histogram_cases(rng),
        "tmva": [
            tmva_case(rng, "similar", 300, 300, overtrained=False, weighted=False),
            tmva_case(rng, "overtrained_weighted", 250, 350, overtrained=True, weighted=True),
            tmva_case(rng, "outlier", 2000, 300, overtrained=False, weighted=True, outlier=True),
        ],
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, separators=(",", ":"))
        f.write("\n")
    os.replace(tmp, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
