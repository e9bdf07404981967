"""``bptt apply`` on large files of the TMVA tutorial's shape: events per second and peak memory.

Writes (once, under ``--dir``, default /tmp/bptt_apply_bench) a tree ``Events`` of N events with
``vars_time0`` … ``vars_time9`` of 30 floats each (TMVA_RNN_Classification.C's layout) and an
``eventNumber``: with ``--root-python PY`` (a Python with the ``root`` package) real ROOT writes
them as ``std::vector<float>``, the tutorial's branch type, with ROOT's own clusters and baskets;
otherwise uproot writes the toy data of :func:`bptt.data.toy.make_tutorial_data` as ``float[30]``
in baskets of 25 000 entries (about ROOT's cluster for this tree). It trains the tutorial's LSTM
with ``bptt train`` (1 epoch on 500 + 500 events: the speed does not depend on what it learned),
then runs ``bptt apply`` in a fresh process per file and reports its events per second (wall
clock, and per CPU second) and peak resident memory (the process's own ``ru_maxrss``, what
``/usr/bin/time -v`` prints as "Maximum resident set size"). Memory bounded by the chunk means
the same peak for every N.

    python benchmarks/apply.py --events 100000,1000000 [--root-python /tmp/rootvenv/bin/python]

Figures, with the CPU, go to docs/apply.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

TUTORIAL_LSTM = (
    "!H:V:ErrorStrategy=CROSSENTROPY:VarTransform=None:WeightInitialization=XAVIERUNIFORM:"
    "ValidationSize=0.2:RandomSeed=1234:InputLayout=10|30:"
    "Layout=LSTM|10|30|10|0|1,RESHAPE|FLAT,DENSE|64|TANH,LINEAR:"
    "TrainingStrategy=LearningRate=1e-3,BatchSize=100,MaxEpochs=1,Optimizer=ADAM"
)

#: The child process: run ``bptt apply`` and print its own peak RSS (KiB) and CPU seconds as the
#: last stderr line.
_CHILD = (
    "import json, resource, sys; from bptt.cli import main; rc = main(sys.argv[1:]); "
    "r = resource.getrusage(resource.RUSAGE_SELF); "
    "print(json.dumps({'rc': rc, 'maxrss_kib': r.ru_maxrss, 'cpu_seconds': r.ru_utime + r.ru_stime}), "
    "file=sys.stderr); sys.exit(rc)"
)

#: ROOT's C++ for --root-python: the tutorial's branch types, Poisson counts plus noise as values.
_ROOT_WRITER = r'''
import sys, ROOT
ROOT.gInterpreter.Declare("""
void bptt_bench_write(Long64_t n, const char *path) {
   TFile f(path, "RECREATE");
   TTree t("Events", "Events");
   TRandom3 rng(7);
   std::vector<std::vector<float>> vars(10, std::vector<float>(30));
   for (int j = 0; j < 10; ++j) t.Branch(TString::Format("vars_time%d", j), &vars[j]);
   Long64_t eventNumber;
   t.Branch("eventNumber", &eventNumber, "eventNumber/L");
   for (Long64_t i = 0; i < n; ++i) {
      for (int j = 0; j < 10; ++j) for (int k = 0; k < 30; ++k) vars[j][k] = rng.Poisson(5 + j) + rng.Gaus(0, 0.1);
      eventNumber = i;
      t.Fill();
   }
   t.Write();
   f.Close();
}""")
ROOT.bptt_bench_write(int(sys.argv[1]), sys.argv[2])
'''


def write_events_root(path: str, n: int, root_python: str) -> str:
    """A tree ``Events`` of ``n`` events written by real ROOT (``std::vector<float>`` branches)."""
    tmp = path + ".part"
    subprocess.run([root_python, "-c", _ROOT_WRITER, str(n), tmp], check=True, stderr=subprocess.DEVNULL)
    os.replace(tmp, path)
    return path


def write_events(path: str, n: int, chunk: int = 25_000, seed: int = 0) -> str:
    """A tree ``Events`` of ``n`` tutorial events written by uproot, one basket per ``chunk`` entries
    (each chunk: signal, then background)."""
    import uproot

    from bptt.data.toy import make_tutorial_data

    names = [f"vars_time{j}" for j in range(10)]
    tmp = path + ".part"
    with uproot.recreate(tmp) as f:
        tree = f.mktree("Events", {b: np.dtype((np.float32, (30,))) for b in names} | {"eventNumber": np.int64})
        done = 0
        while done < n:
            m = min(chunk, n - done)
            sig, bkg = make_tutorial_data((m + 1) // 2, seed=seed + done)
            X = np.concatenate([sig, bkg])[:m]
            tree.extend({b: X[:, j] for j, b in enumerate(names)} | {"eventNumber": np.arange(done, done + m)})
            done += m
    os.replace(tmp, path)
    return path


def train_model(directory: str) -> str:
    from bptt.data.toy import write_tutorial_root

    data = write_tutorial_root(os.path.join(directory, "train_t10_d30.root"), n_events=500, seed=1)
    model = os.path.join(directory, "lstm.bptt")
    subprocess.run([sys.executable, "-m", "bptt", "train", data, "--options", TUTORIAL_LSTM, "--out", model,
                    "--quiet"], check=True, stdout=subprocess.DEVNULL)
    return model


def measure(model: str, data: str, out: str, step_size: int | None) -> dict:
    argv = ["apply", model, data, "--tree", "Events", "--out", out, "--quiet"]
    if step_size:
        argv += ["--step-size", str(step_size)]
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _CHILD, *argv], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"bptt apply failed ({proc.returncode}): {proc.stderr.strip()}")
    child = json.loads(proc.stderr.strip().splitlines()[-1])
    cpu = child["cpu_seconds"]
    line = proc.stdout.strip().splitlines()[-1]
    events = int(line.split()[1])
    apply_seconds = float(line.split(" in ")[1].split(" s ")[0])
    return {
        "events": events, "wall_seconds": round(wall, 2), "apply_seconds": apply_seconds,
        "events_per_second": round(events / apply_seconds) if apply_seconds else None,
        "cpu_seconds": round(cpu, 2), "events_per_cpu_second": round(events / cpu) if cpu else None,
        "peak_rss_mib": round(child["maxrss_kib"] / 1024, 1), "input_mib": round(os.path.getsize(data) / 2**20, 1),
        "output_mib": round(os.path.getsize(out) / 2**20, 1), "summary": line,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", default="100000,1000000", help="comma-separated file sizes (default 100000,1000000)")
    p.add_argument("--dir", default="/tmp/bptt_apply_bench", help="where the files go (default /tmp/bptt_apply_bench)")
    p.add_argument("--step-size", type=int, default=None, help="bptt apply's --step-size (default: its own)")
    p.add_argument("--model", default=None, help="a model file to use instead of training one")
    p.add_argument("--root-python", default=None,
                   help="a Python with the root package: real ROOT writes the files (std::vector<float>)")
    p.add_argument("--json", default=None, help="also write the results as JSON here")
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.events.split(",") if s.strip()]
    os.makedirs(args.dir, exist_ok=True)
    model = args.model or train_model(args.dir)
    results = []
    for n in sizes:
        data = os.path.join(args.dir, f"{'root' if args.root_python else 'uproot'}_{n}.root")
        if not os.path.exists(data):
            t0 = time.perf_counter()
            write_events_root(data, n, args.root_python) if args.root_python else write_events(data, n)
            print(f"wrote {data} ({os.path.getsize(data) / 2**20:.0f} MiB) in {time.perf_counter() - t0:.0f} s",
                  file=sys.stderr)
        r = measure(model, data, os.path.join(args.dir, f"scored_{n}.root"), args.step_size)
        results.append(r)
        print(f"{n:>9} events: {r['events_per_second']:>8,} events/s ({r['events_per_cpu_second']:,} per CPU second), "
              f"peak RSS {r['peak_rss_mib']:7.1f} MiB (input {r['input_mib']} MiB, wall {r['wall_seconds']} s)")
    from machine import _cpu_model

    report = {"cpu": _cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
              "load_average": os.getloadavg(), "writer": "root" if args.root_python else "uproot",
              "step_size": args.step_size, "model": model, "results": results}
    print(f"CPU: {report['cpu']} ({report['cores']} cores); load average {os.getloadavg()[0]:.1f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
