"""``bptt apply --dask``: events per second at 1 and 2 workers, and the costs of the inference cost model.

Writes once, under ``--dir`` (default /tmp/bptt_scale_bench, never the repository), ``--files``
ROOT files of ``--events`` events each of the TMVA tutorial's shape (a tree ``Events`` with
``vars_time0`` … ``vars_time9`` of 30 floats, written by uproot in baskets of 25,000 entries from
:func:`bptt.data.toy.make_tutorial_data`), and trains the tutorial's LSTM with ``bptt train`` (one
epoch on 500 + 500 events: the speed does not depend on how well it learned). Then it measures

1. the cost model's terms, in this process on one core (``BPTT_LOOP_THREADS=1``): compute per
   event (the network on events in memory, in chunks of 10,000), reading per event (uproot reading
   and decompressing a partition's input branches, plus turning them into the input array), writing
   per event (a score file of a partition), the bytes per event on disk and decompressed, and the
   scheduler's cost per task (1,000 empty tasks on a LocalCluster of 2 workers);
2. the whole run: ``bptt apply FILES --out DIR`` in this process, and ``--dask`` on a LocalCluster of
   1 and of 2 single-threaded workers (started before the clock: the clusters' start and the first
   model load are reported apart), each ``--repeats`` times, alternating; the best is reported, with
   the machine's load average before each run. Every run's scores are compared with the first's.

    python benchmarks/scaling_dask.py [--files 4] [--events 250000] [--repeats 2] [--json out.json]

The figures go to docs/scaling.md with the CPU's name.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import time

os.environ.setdefault("BPTT_LOOP_THREADS", "1")  # one core per process, as each worker runs

import numpy as np  # noqa: E402

TUTORIAL_LSTM = (
    "!H:V:ErrorStrategy=CROSSENTROPY:VarTransform=None:WeightInitialization=XAVIERUNIFORM:"
    "ValidationSize=0.2:RandomSeed=1234:InputLayout=10|30:"
    "Layout=LSTM|10|30|10|0|1,RESHAPE|FLAT,DENSE|64|TANH,LINEAR:"
    "TrainingStrategy=LearningRate=1e-3,BatchSize=100,MaxEpochs=1,Optimizer=ADAM"
)
BRANCHES = [f"vars_time{j}" for j in range(10)]
PARTITION = 100_000
STEP = 10_000


def cpu_model() -> str:
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def write_events(path: str, n: int, seed: int, basket: int = 25_000) -> str:
    import uproot

    from bptt.data.toy import make_tutorial_data

    tmp = path + ".part"
    with uproot.recreate(tmp) as f:
        tree = f.mktree("Events", {b: np.dtype((np.float32, (30,))) for b in BRANCHES} | {"eventNumber": np.int64})
        for done in range(0, n, basket):
            m = min(basket, n - done)
            sig, bkg = make_tutorial_data((m + 1) // 2, seed=seed * 1_000_003 + done)
            X = np.concatenate([sig, bkg])[:m]
            tree.extend({b: X[:, j] for j, b in enumerate(BRANCHES)} | {"eventNumber": np.arange(done, done + m)})
    os.replace(tmp, path)
    return path


def train_model(directory: str) -> str:
    from bptt.data.toy import write_tutorial_root

    model = os.path.join(directory, "lstm.bptt")
    if not os.path.exists(model):
        data = write_tutorial_root(os.path.join(directory, "train_t10_d30.root"), n_events=500, seed=1)
        subprocess.run([sys.executable, "-m", "bptt", "train", data, "--options", TUTORIAL_LSTM, "--out", model,
                        "--quiet"], check=True, stdout=subprocess.DEVNULL)
    return model


def best(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def costs(model_path: str, data: str, out_dir: str) -> dict:
    """The cost model's terms, per event, on one core."""
    import uproot

    from bptt.apply import ScoreWriter, input_spec, open_tree, score, to_inputs
    from bptt.model import load_model

    model = load_model(model_path)
    tree = open_tree(data, "Events")
    spec = input_spec(model, tree)
    n = PARTITION

    def read():
        for chunk in tree.iterate(BRANCHES, step_size=STEP, entry_stop=n, library="ak"):
            read.X = to_inputs(chunk, spec, model.dtype)

    def read_only():
        for _ in tree.iterate(BRANCHES, step_size=STEP, entry_stop=n, library="np"):
            pass

    X = np.concatenate([to_inputs(c, spec, model.dtype) for c in tree.iterate(BRANCHES, step_size=STEP,
                                                                             entry_stop=n, library="ak")])
    score(model, X[:STEP])  # compile, warm

    def compute():
        for a in range(0, n, STEP):
            score(model, X[a:a + STEP])

    scores = np.random.default_rng(0).uniform(size=n).astype(np.float32)  # scores compress as real ones do
    target = os.path.join(out_dir, "cost-write.root")

    def write():
        with ScoreWriter(target, "Events") as w:
            for a in range(0, n, STEP):
                w.write({"score": scores[a:a + STEP]})

    f = uproot.open(data)["Events"]
    on_disk = sum(f[b].compressed_bytes for b in BRANCHES) / f.num_entries
    decompressed = sum(f[b].uncompressed_bytes for b in BRANCHES) / f.num_entries
    return {
        "compute_s_per_event": best(compute) / n, "read_s_per_event": best(read) / n,
        "read_only_s_per_event": best(read_only) / n, "write_s_per_event": best(write) / n,
        "bytes_per_event_on_disk": on_disk, "bytes_per_event_decompressed": decompressed,
        "output_bytes_per_event": os.path.getsize(target) / n,
    }


def scheduler_cost(tasks: int = 1000) -> dict:
    """Seconds per empty task, submitted at once to a LocalCluster of 2 workers (the scheduler's and
    the workers' bookkeeping, which a real partition pays once)."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        client.gather(client.map(int, range(100), pure=False))  # warm
        t0 = time.perf_counter()
        client.gather(client.map(int, range(tasks), pure=False))
        many = time.perf_counter() - t0
        t0 = time.perf_counter()
        for i in range(50):
            client.submit(int, i, pure=False).result()
        one = (time.perf_counter() - t0) / 50
    return {"s_per_task_throughput": many / tasks, "s_per_task_round_trip": one}


def read_scores(out_dir: str) -> dict:
    import uproot

    return {name: uproot.open(os.path.join(out_dir, name))["Events"]["lstm"].array(library="np")
            for name in sorted(os.listdir(out_dir)) if name.endswith(".root")}


def run_whole(model: str, files: list[str], out_dir: str, workers: int | None, client=None) -> dict:
    from bptt.model import load_model
    from bptt.scale.dask import apply_files_dask
    from bptt.scale.partitions import apply_files

    load = os.getloadavg()[0]
    opts = dict(score_name="lstm", step_size=STEP, entries_per_partition=PARTITION)
    t0 = time.perf_counter()
    if workers is None:
        s = apply_files(load_model(model), files, "Events", out_dir, **opts)
    else:
        s = apply_files_dask(model, files, "Events", out_dir, client=client, **opts)
    seconds = time.perf_counter() - t0
    return {"events": s["events"], "seconds": seconds, "events_per_second": s["events"] / seconds,
            "partitions": s["partitions"], "load_before": load}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--files", type=int, default=4)
    p.add_argument("--events", type=int, default=250_000, help="events per file (default 250000)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--dir", default="/tmp/bptt_scale_bench")
    p.add_argument("--json", default=None)
    p.add_argument("--predict", default=None, metavar="JSON",
                   help="print the cost model's prediction from an earlier run's JSON (no measurement)")
    args = p.parse_args(argv)
    if args.predict:
        with open(args.predict) as fh:
            report = json.load(fh)
        for storage in (1e9, 10e9):
            print(f"storage {storage / 1e9:.0f} GB/s, 1e9 events in partitions of {PARTITION:,}:")
            for row in predict(report, storage_bytes_per_s=storage):
                print(f"  N={row['workers']:>4}: {row['events_per_second']:>12,.0f} events/s  ({row['limit']:>9}; "
                      f"efficiency {row['efficiency']:.2f})")
        return 0
    from bptt.scale.dask import connect

    os.makedirs(args.dir, exist_ok=True)
    model = train_model(args.dir)
    files = []
    for i in range(args.files):
        path = os.path.join(args.dir, f"events{i}_{args.events}.root")
        if not os.path.exists(path):
            write_events(path, args.events, seed=i)
        files.append(path)
    out = os.path.join(args.dir, "out")
    os.makedirs(out, exist_ok=True)
    report = {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
              "files": args.files, "events_per_file": args.events, "partition_entries": PARTITION, "step_size": STEP}
    report["load_start"] = os.getloadavg()
    report["costs"] = costs(model, files[0], out)
    report["scheduler"] = scheduler_cost()
    print(json.dumps(report, indent=1), flush=True)
    from bptt.scale.dask import apply_files_dask

    warm = os.path.join(args.dir, "warm.root")
    if not os.path.exists(warm):
        write_events(warm, 4000, seed=99)
    clusters, warm_up = {}, {}
    for n in (1, 2):
        t0 = time.perf_counter()
        client, cluster = connect(workers=n, threads_per_worker=1)
        started = time.perf_counter() - t0
        t0 = time.perf_counter()  # the model's first load and the kernels' first call on each worker
        apply_files_dask(model, [warm], "Events", os.path.join(out, f"warm{n}"), client=client,
                         entries_per_partition=1000, score_name="lstm")
        warm_up[n] = time.perf_counter() - t0
        clusters[n] = (client, cluster, started)
    runs = {"process": [], "dask1": [], "dask2": []}
    reference = None
    for r in range(args.repeats):
        for label, workers in (("process", None), ("dask1", 1), ("dask2", 2)):
            d = os.path.join(out, f"{label}-{r}")
            client = clusters[workers][0] if workers else None
            res = run_whole(model, files, d, workers, client)
            scores = read_scores(d)
            if reference is None:
                reference = scores
            res["identical_scores"] = scores.keys() == reference.keys() and all(
                np.array_equal(scores[k], reference[k]) for k in reference)
            runs[label].append(res)
            print(label, r, json.dumps(res), flush=True)
            for name in os.listdir(d):
                os.unlink(os.path.join(d, name))
    for client, cluster, _ in clusters.values():
        client.close()
        cluster.close()
    report["cluster_start_seconds"] = {n: c[2] for n, c in clusters.items()}
    report["warm_up_seconds"] = warm_up
    report["runs"] = runs
    report["load_end"] = os.getloadavg()
    print(json.dumps({k: max(r["events_per_second"] for r in v) for k, v in runs.items()}))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=1)
    return 0



# ── the cost model (docs/scaling.md): throughput at N workers from the measured terms


def predict(report: dict, workers=(1, 2, 8, 16, 32, 64, 128, 256), events: float = 1e9, partition: int = PARTITION,
            storage_bytes_per_s: float = 1e9) -> list[dict]:
    """Events per second at N single-core workers, as the minimum of three bounds:

    - workers: N · P / (P · t_event + t_task) · K / (N · ⌈K / N⌉), with t_event the measured
      compute + read + write time per event on one core, t_task the measured round trip of one
      task, P events per partition and K = events / P partitions (the last round's idle workers);
    - scheduler: P / s_task, with s_task the scheduler's measured time per task when many are queued;
    - storage: storage_bytes_per_s / (bytes per event on disk), the shared storage's bandwidth.
    """
    c = report["costs"]
    t_event = c["compute_s_per_event"] + c["read_s_per_event"] + c["write_s_per_event"]
    t_task = report["scheduler"]["s_per_task_round_trip"]
    K = int(-(-events // partition))
    rows = []
    for n in workers:
        rounds = -(-K // n)
        by_workers = n * partition / (partition * t_event + t_task) * K / (n * rounds)
        by_scheduler = partition / report["scheduler"]["s_per_task_throughput"]
        by_storage = storage_bytes_per_s / c["bytes_per_event_on_disk"]
        best = min(by_workers, by_scheduler, by_storage)
        limit = {by_workers: "workers", by_scheduler: "scheduler", by_storage: "storage"}[best]
        rows.append({"workers": n, "events_per_second": best, "limit": limit, "by_workers": by_workers,
                     "by_scheduler": by_scheduler, "by_storage": by_storage, "efficiency": best / (n / t_event)})
    return rows


if __name__ == "__main__":
    sys.exit(main())
