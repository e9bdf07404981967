#!/usr/bin/env python3
"""Write the ROOT files of tests/fixtures/ with real ROOT, and what ROOT reads from them as JSON.

Run with a Python that has PyROOT (the ``root`` package of the package index runs ROOT's own C++:
TTree, ``std::vector<float>`` branches, TTreeFormula, the interpreter)::

    make fixtures                                   # makes build/rootvenv with `pip install root`, runs this
    build/rootvenv/bin/python tools/make_root_fixtures.py [--out tests/fixtures]

The files (small: under 1 MB together) are committed; the tests read them with bptt (uproot) and
compare with ``root_fixtures.json``, the values ROOT itself computed (TTreeFormula, entry counts, sums),
so the oracle is ROOT, never bptt:

- ``time_data_t10_d30.root``: ``MakeTimeData`` of ROOT's ``TMVA_RNN_Classification.C``, its code
  taken verbatim from the tutorial file and run by ROOT's interpreter (100 events per class,
  ntime=10, ndim=30): trees ``sgn`` and ``bkg``, ``std::vector<float>`` branches ``vars_time0…9``.
  The tutorial seeds with ``gRandom->SetSeed(0)``, so each run draws new values (and a new JSON).
- ``single_tree.root``: one tree ``events`` with a class branch ``label`` (1 signal, 0 background),
  scalars ``x`` (float), ``y`` (double), ``n`` (int), a weight ``w`` with some negative values, ``q``
  (NaN in a few background entries), a fixed array ``arr[3]`` (float), a ``std::vector<float>``
  ``seq`` of 4 values per entry and a ``std::vector<float>`` ``hits`` of varying length.
- ``multi_1.root`` and ``multi_2.root``: several trees per class across two files (``sig_a``,
  ``bkg_a`` in the first; ``sig_b``, ``bkg_b``, ``bkg_c`` in the second) with ``x``, ``y`` and a
  ``std::vector<float>`` ``v`` of 3 values.
- ``jagged_tracks.root`` (issue 20: ragged sequences): tree ``tracks``, one event per entry with a
  per-event class ``label`` (int), a weight ``w``, a scalar ``jet_pt`` and a per-event list of tracks
  of Poisson length (1 + Poisson(4), so at least one; several events have exactly one):
  ``std::vector<float>`` branches ``track_pt``, ``track_eta``, ``track_phi``, ``track_d0``, a per-step
  label ``track_label`` (``std::vector<int>``: 1 for a track from the displaced vertex) and
  ``track_bad`` (``std::vector<float>``, one value more than the tracks in a few entries: the
  mismatched-lengths error); tree ``tracks_c``: the same kind of events as a counter and C arrays
  (``Int_t ntrk; Float_t pt[ntrk]/F; Float_t eta[ntrk]/F; Float_t lab[ntrk]/F``), Poisson(3) lengths
  with some empty events. The JSON's ``jagged`` entry holds what ROOT read: per-event lengths
  (``Length$``), per-event sums (``Sum$``) of every branch, the labels and weights, and every value
  of a few events.

``--only jagged`` writes only ``jagged_tracks.root`` and replaces only the ``jagged`` entry of the
JSON (the other files keep their bytes: ``MakeTimeData`` draws new values on every run).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

ROOT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# TTreeFormula expressions evaluated by ROOT on single_tree.root, entry by entry
EXPRESSIONS = [
    "x", "y", "n", "w", "label", "abs(x)*2", "y/3+n", "seq[2]", "arr[1]-arr[0]", "Sum$(hits)", "Length$(hits)",
    "Max$(hits)", "Min$(seq)", "w*(x>0)", "label==1 && x>0", "TMath::Sqrt(n+1)", "pow(x,2)", "-x^2", "n%3",
    "!(n%2==0) || y<0", "TMath::Max(x,y)", "exp(-abs(y))", "log10(n+1)", "sin(x)*cos(y)", "2*x-3*y/(1+n)",
]
CUTS = ["label==1", "label==0", "label==1 && x>0", "label==0 && n%3!=0", "abs(y)<1"]


def _make_time_data(out: str, tutorials: str, n: int) -> dict:
    import ROOT

    src = open(os.path.join(tutorials, "TMVA_RNN_Classification.C"), encoding="utf-8").read()
    m = re.search(r"^void MakeTimeData\(.*?^\}\n", src, flags=re.S | re.M)
    if not m:
        sys.exit("MakeTimeData not found in TMVA_RNN_Classification.C")
    ROOT.gInterpreter.Declare('#include "TH1D.h"\n#include "TF1.h"\n#include "TFile.h"\n#include "TTree.h"\n'
                              '#include "TRandom.h"\n#include "TMath.h"\n#include "TCanvas.h"\n#include "TPad.h"\n')
    ROOT.gInterpreter.Declare(m.group(0))  # the tutorial's function, verbatim
    cwd = os.getcwd()
    os.chdir(out)
    try:
        ROOT.MakeTimeData(n, 10, 30)
    finally:
        os.chdir(cwd)
    path = os.path.join(out, "time_data_t10_d30.root")
    f = ROOT.TFile.Open(path)
    info = {"file": os.path.basename(path), "function": m.group(0), "trees": {}}
    for name in ("sgn", "bkg"):
        t = f.Get(name)
        steps = {}
        for j in range(10):
            branch = f"vars_time{j}"
            total, rows = 0.0, {}
            for i, ev in enumerate(t):
                vals = [float(v) for v in getattr(ev, branch)]
                total += sum(vals)
                if i in (0, 57, n - 1):
                    rows[str(i)] = vals
            steps[branch] = {"sum": total, "rows": rows}
        info["trees"][name] = {"entries": int(t.GetEntries()), "branches": steps,
                               "type": t.GetBranch("vars_time0").GetClassName()}
    f.Close()
    return info


_SINGLE = r"""
void bptt_single_tree(const char* path) {
   TFile f(path, "RECREATE");
   TTree t("events", "one tree, both classes");
   int label, n; float x, w, q; double y; float arr[3];
   std::vector<float> seq(4), hits;
   t.Branch("label", &label, "label/I"); t.Branch("n", &n, "n/I");
   t.Branch("x", &x, "x/F"); t.Branch("y", &y, "y/D"); t.Branch("w", &w, "w/F"); t.Branch("q", &q, "q/F");
   t.Branch("arr", arr, "arr[3]/F"); t.Branch("seq", &seq); t.Branch("hits", &hits);
   TRandom3 r(4242);
   for (int i = 0; i < 60; ++i) {
      label = (i % 3 == 0) ? 0 : 1;
      if (i >= 40) label = 0;
      n = i % 7;
      x = r.Gaus(label ? 0.5 : -0.5, 1.0);
      y = r.Uniform(-2, 2);
      w = (i % 11 == 4) ? -0.5f : float(0.5 + r.Uniform());
      q = (label == 0 && i % 10 == 5) ? std::numeric_limits<float>::quiet_NaN() : float(x * 2);
      for (int k = 0; k < 3; ++k) arr[k] = float(r.Gaus(k, 1));
      for (int k = 0; k < 4; ++k) seq[k] = float(r.Gaus(label, 1) + k);
      hits.resize(1 + i % 4);
      for (auto &h : hits) h = float(r.Exp(1.0));
      t.Fill();
   }
   t.Write();
   f.Close();
}

void bptt_multi(const char* path1, const char* path2) {
   const char* names[5] = {"sig_a", "bkg_a", "sig_b", "bkg_b", "bkg_c"};
   int sizes[5] = {30, 25, 20, 35, 15};
   TRandom3 r(777);
   for (int k = 0; k < 5; ++k) {
      TFile f(k < 2 ? path1 : path2, k == 0 || k == 2 ? "RECREATE" : "UPDATE");
      TTree t(names[k], names[k]);
      float x; double y; std::vector<float> v(3);
      t.Branch("x", &x, "x/F"); t.Branch("y", &y, "y/D"); t.Branch("v", &v);
      bool sig = names[k][0] == 's';
      for (int i = 0; i < sizes[k]; ++i) {
         x = r.Gaus(sig ? 1.0 : -1.0, 1.0); y = k + 0.01 * i;
         for (auto &e : v) e = float(r.Gaus(sig, 1));
         t.Fill();
      }
      t.Write();
      f.Close();
   }
}
"""


_JAGGED = r"""
void bptt_jagged_tracks(const char* path) {
   TFile f(path, "RECREATE");
   TTree t("tracks", "per-event track lists of Poisson length");
   int label; float w, jet_pt;
   std::vector<float> pt, eta, phi, d0, bad;
   std::vector<int> lab;
   t.Branch("label", &label, "label/I"); t.Branch("w", &w, "w/F"); t.Branch("jet_pt", &jet_pt, "jet_pt/F");
   t.Branch("track_pt", &pt); t.Branch("track_eta", &eta); t.Branch("track_phi", &phi);
   t.Branch("track_d0", &d0); t.Branch("track_label", &lab); t.Branch("track_bad", &bad);
   TRandom3 r(2020);
   for (int i = 0; i < 400; ++i) {
      label = i % 2;                                   // 1 signal (a displaced vertex), 0 background
      w = float(0.5 + r.Uniform());
      int n = 1 + r.Poisson(4.0);
      double axis = r.Uniform(-TMath::Pi(), TMath::Pi());
      pt.resize(n); eta.resize(n); phi.resize(n); d0.resize(n); lab.resize(n);
      jet_pt = 0;
      for (int k = 0; k < n; ++k) {
         bool displaced = label == 1 && r.Uniform() < 0.6;
         lab[k] = displaced ? 1 : 0;
         pt[k] = float(1.0 + r.Exp(displaced ? 4.0 : 2.5));
         eta[k] = float(r.Gaus(0.0, 1.2));
         phi[k] = float(axis + r.Gaus(0.0, displaced ? 0.15 : 0.6));
         d0[k] = float(displaced ? r.Gaus(0.0, 1.0) + (r.Uniform() < 0.5 ? 1.5 : -1.5) : r.Gaus(0.0, 0.4));
         jet_pt += pt[k];
      }
      bad = pt;
      if (i % 50 == 7) bad.push_back(0.5f);            // one value too many in entries 7, 57, 107, ...
      t.Fill();
   }
   t.Write();
   TTree c("tracks_c", "a counter and C arrays");
   int ntrk, clabel; float cpt[64], ceta[64], clab[64];
   c.Branch("ntrk", &ntrk, "ntrk/I"); c.Branch("label", &clabel, "label/I");
   c.Branch("pt", cpt, "pt[ntrk]/F"); c.Branch("eta", ceta, "eta[ntrk]/F"); c.Branch("lab", clab, "lab[ntrk]/F");
   for (int i = 0; i < 120; ++i) {
      clabel = i % 2;
      ntrk = (i % 17 == 5) ? 0 : r.Poisson(3.0);       // empty events at entries 5, 22, 39, ...
      if (ntrk > 64) ntrk = 64;
      for (int k = 0; k < ntrk; ++k) {
         cpt[k] = float(1.0 + r.Exp(clabel ? 4.0 : 2.5));
         ceta[k] = float(r.Gaus(0.0, 1.2));
         clab[k] = float(clabel && r.Uniform() < 0.5);
      }
      c.Fill();
   }
   c.Write();
   f.Close();
}
"""

JAGGED_EXPRESSIONS = {
    "tracks": ["Length$(track_pt)", "Length$(track_eta)", "Length$(track_label)", "Length$(track_bad)",
               "Sum$(track_pt)", "Sum$(track_eta)", "Sum$(track_phi)", "Sum$(track_d0)", "Sum$(track_label)",
               "label", "w", "jet_pt"],
    "tracks_c": ["ntrk", "Length$(pt)", "Sum$(pt)", "Sum$(eta)", "Sum$(lab)", "label"],
}
JAGGED_ROWS = {"tracks": [0, 1, 2, 7, 199, 399], "tracks_c": [0, 1, 4, 5, 119]}  # and the first one-track event


def _jagged(out: str) -> dict:
    """``jagged_tracks.root`` and what ROOT reads from it (TTreeFormula per entry, values of a few rows)."""
    import ROOT

    ROOT.gInterpreter.Declare('#include "TRandom3.h"\n#include "TMath.h"\n#include <vector>\n' + _JAGGED)
    path = os.path.join(out, "jagged_tracks.root")
    ROOT.bptt_jagged_tracks(path)
    f = ROOT.TFile.Open(path)
    info = {"file": "jagged_tracks.root", "trees": {}}
    for name, exprs in JAGGED_EXPRESSIONS.items():
        t = f.Get(name)
        branches = ([b for b in ("track_pt", "track_eta", "track_phi", "track_d0", "track_label", "track_bad")]
                    if name == "tracks" else ["pt", "eta", "lab"])
        values = {e: _evaluate(t, e) for e in exprs}
        counts = values["Length$(track_pt)" if name == "tracks" else "ntrk"]
        rows = {}
        for i in JAGGED_ROWS[name] + [counts.index(1.0)]:
            t.GetEntry(i)
            n = int(t.ntrk) if name == "tracks_c" else None  # a C array's buffer holds more than ntrk values
            rows[str(i)] = {b: [float(v) for v in getattr(t, b)][:n] for b in branches}
        types = {b: t.GetBranch(b).GetClassName() or t.GetLeaf(b).GetTypeName() for b in branches}
        info["trees"][name] = {"entries": int(t.GetEntries()), "values": values,
                               "rows": rows, "types": types}
    f.Close()
    return info


def _evaluate(tree, expression: str) -> list:
    import ROOT

    f = ROOT.TTreeFormula("f", expression, tree)
    out = []
    for i in range(tree.GetEntries()):
        tree.GetEntry(i)
        f.UpdateFormulaLeaves()
        f.GetNdata()
        out.append(float(f.EvalInstance()))
    return out


def _single_and_multi(out: str) -> dict:
    import ROOT

    ROOT.gInterpreter.Declare('#include "TRandom3.h"\n#include <limits>\n#include <vector>\n' + _SINGLE)
    single = os.path.join(out, "single_tree.root")
    multi = [os.path.join(out, "multi_1.root"), os.path.join(out, "multi_2.root")]
    ROOT.bptt_single_tree(single)
    ROOT.bptt_multi(*multi)
    f = ROOT.TFile.Open(single)
    t = f.Get("events")
    info = {"single": {"file": "single_tree.root", "tree": "events", "entries": int(t.GetEntries()),
                       "values": {e: _evaluate(t, e) for e in EXPRESSIONS},
                       "cut_entries": {c: int(t.GetEntries(c)) for c in CUTS},
                       "hits": [[float(h) for h in ev.hits] for ev in t],
                       "seq": [[float(s) for s in ev.seq] for ev in t],
                       "arr": [[float(a) for a in ev.arr] for ev in t],
                       "q_is_nan": [bool(v != v) for v in (float(ev.q) for ev in t)]}}
    f.Close()
    trees = {}
    for path, names in ((multi[0], ("sig_a", "bkg_a")), (multi[1], ("sig_b", "bkg_b", "bkg_c"))):
        g = ROOT.TFile.Open(path)
        for name in names:
            tr = g.Get(name)
            trees[name] = {"file": os.path.basename(path), "entries": int(tr.GetEntries()),
                           "x": [float(ev.x) for ev in tr], "y": [float(ev.y) for ev in tr],
                           "v": [[float(e) for e in ev.v] for ev in tr]}
        g.Close()
    info["multi"] = trees
    return info


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.path.join(ROOT_DIR, "tests", "fixtures"))
    parser.add_argument("--events", type=int, default=100, help="MakeTimeData events per class (default 100)")
    parser.add_argument("--only", choices=["jagged"], default=None,
                        help="write only jagged_tracks.root and replace only the JSON's 'jagged' entry")
    args = parser.parse_args(argv)
    import ROOT

    ROOT.gROOT.SetBatch(True)
    tutorials = os.path.join(os.path.dirname(ROOT.__file__), "tutorials", "machine_learning")
    os.makedirs(args.out, exist_ok=True)
    json_path = os.path.join(args.out, "root_fixtures.json")
    if args.only == "jagged":
        with open(json_path, encoding="utf-8") as fh:
            info = json.load(fh)
        if info.get("root_version") != str(ROOT.gROOT.GetVersion()):
            sys.exit(f"root_fixtures.json was written by ROOT {info.get('root_version')}, this is "
                     f"{ROOT.gROOT.GetVersion()}: run without --only to write every fixture with one version")
    else:
        info = {"root_version": str(ROOT.gROOT.GetVersion()),
                "time_data": _make_time_data(args.out, tutorials, args.events)}
        info.update(_single_and_multi(args.out))
    info["jagged"] = _jagged(args.out)
    with open(json_path, "w", encoding="utf-8") as fh:
        json.dump(info, fh, indent=1)
        fh.write("\n")
    print(f"wrote the fixtures and root_fixtures.json to {args.out} with ROOT {info['root_version']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
