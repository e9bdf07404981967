"""Write tests/fixtures/apply_vectors.root with real ROOT (the ``root`` package from the package index):
the file ``bptt apply`` and ``bptt.Reader`` are tested on, with the branch types TMVA users have.

Run with a Python that has ROOT (``pip install root``)::

    /tmp/rootvenv/bin/python tools/make_apply_fixtures.py

Tree ``Events`` (60 entries): ``vars_time0`` … ``vars_time2`` as ``std::vector<float>`` of 4 values
each (TMVA_RNN_Classification.C's branch type), ``fixed`` a ``Float_t[3]`` array, scalars
``eventNumber`` (``Long64_t``), ``weight`` (``Float_t``), ``pt`` and ``eta`` (``Double_t``), and
``ntracks`` (``Int_t``). Tree ``Short`` (5 entries): the same ``vars_time`` branches, with 3 values
instead of 4 in ``vars_time1`` of entry 3 (a file that does not fit the model). The values are
drawn from ``TRandom3(19)``; the tests read them back with uproot as their oracle.
"""

from __future__ import annotations

import os
import sys

import ROOT

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "apply_vectors.root")

ROOT.gInterpreter.Declare(
    r"""
void bptt_make_apply_fixture(const char *path) {
   TFile f(path, "RECREATE");
   TRandom3 rng(19);
   const int ntime = 3, ndim = 4;
   for (int which = 0; which < 2; ++which) {
      const char *name = which == 0 ? "Events" : "Short";
      const int n = which == 0 ? 60 : 5;
      TTree t(name, name);
      std::vector<std::vector<float>> vars(ntime, std::vector<float>(ndim));
      for (int j = 0; j < ntime; ++j)
         t.Branch(TString::Format("vars_time%d", j), "std::vector<float>", &vars[j]);
      Float_t fixed[3];
      Long64_t eventNumber;
      Float_t weight;
      Double_t pt, eta;
      Int_t ntracks;
      if (which == 0) {
         t.Branch("fixed", fixed, "fixed[3]/F");
         t.Branch("eventNumber", &eventNumber, "eventNumber/L");
         t.Branch("weight", &weight, "weight/F");
         t.Branch("pt", &pt, "pt/D");
         t.Branch("eta", &eta, "eta/D");
         t.Branch("ntracks", &ntracks, "ntracks/I");
      }
      for (int i = 0; i < n; ++i) {
         for (int j = 0; j < ntime; ++j) {
            vars[j].assign(ndim, 0.f);
            for (int k = 0; k < ndim; ++k) vars[j][k] = rng.Gaus(0.3 * j, 1.);
         }
         if (which == 1 && i == 3) vars[1].resize(3);
         for (int k = 0; k < 3; ++k) fixed[k] = rng.Uniform(-1, 1);
         eventNumber = 1000 + 7 * i;
         weight = rng.Uniform(0.5, 1.5);
         pt = rng.Exp(30.);
         eta = rng.Uniform(-2.5, 2.5);
         ntracks = rng.Poisson(4.);
         t.Fill();
      }
      t.Write();
   }
   f.Close();
}
"""
)


def main() -> int:
    ROOT.bptt_make_apply_fixture(OUT)
    print(f"wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
