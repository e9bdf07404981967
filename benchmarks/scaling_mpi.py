"""MPI data-parallel training: time per epoch, weight equality, all-reduce time (docs/scaling.md, Part 2).

    python benchmarks/scaling_mpi.py OUT.json                       # one process, plain fit
    mpiexec -n 2 python benchmarks/scaling_mpi.py OUT.json          # 2 ranks (bptt.scale.mpi)
    python benchmarks/scaling_mpi.py --compare A.json B.json        # weight differences, speed-up
    python benchmarks/scaling_mpi.py --predict ONE.json TWO.json    # the cost model for N = 1…256

Two workloads: TMVA's RNN tutorial (2000 events per class, 10 steps × 30 features, its LSTM
network, batch 100, validation 20 %) and the `wide` row of BENCHMARKS.md (LSTM, batch 128, T 50,
I 64, H 256; 1,280 events: 10 steps per epoch). Each trains `--epochs` epochs (the first warms
Numba's kernels up); the figures are the later epochs' median seconds. Under MPI the script also
times MPI_Allreduce of each network's gradient size and of 8 bytes (latency), median of 30.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

WORKLOADS = {
    "tutorial": dict(layout="LSTM|10|30|10|0|1,RESHAPE|FLAT,DENSE|64|TANH,LINEAR", input_layout="10|30",
                     batch_size=100, validation_split=0.2),
    "wide": dict(layout="LSTM|256|64|50|0|0,LINEAR", input_layout="50|64", batch_size=128, validation_split=0.0),
}


def workload_data(name):
    if name == "tutorial":
        from bptt.data.toy import make_tutorial_data

        sig, bkg = make_tutorial_data(2000, 10, 30, seed=0)
        X = np.concatenate([sig, bkg]).astype(np.float32)
        y = np.concatenate([np.ones(len(sig)), np.zeros(len(bkg))])
    else:
        rng = np.random.default_rng(0)
        X = rng.normal(size=(1280, 50, 64)).astype(np.float32)
        y = (X[:, :, 0].mean(1) > 0).astype(float)
    return X, y


def allreduce_times(comm, sizes, repeats=100):
    """{float32 count: [median, min] seconds of MPI_Allreduce(SUM)} (the min: the cost when both
    ranks have a core; the median includes waiting for a rank the shared machine descheduled)."""
    from mpi4py import MPI

    out = {}
    for n in sizes:
        buf = np.ones(n, np.float32)
        times = []
        for _ in range(repeats + 3):
            comm.Barrier()
            t0 = time.perf_counter()
            comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
            times.append(time.perf_counter() - t0)
        out[str(n)] = [statistics.median(times[3:]), min(times[3:])]
    return out


def profile(repeats=30):
    """One process, one BLAS thread: forward + backward seconds of one rank's share of a batch
    (per-rank batch b), and the optimizer step (every rank takes it whole), the least of ``repeats``."""
    from bptt._threads import blas_threads
    from bptt.model import Sequential
    from bptt.optim import make_optimizer

    out = {}
    with blas_threads(1):
        for name, w in WORKLOADS.items():
            X, y = workload_data(name)
            model = Sequential.from_tmva(w["layout"], w["input_layout"], seed=0)
            B = w["batch_size"]
            shares = sorted({max(1, B // d) for d in (128, 64, 32, 16, 8, 4, 2, 1)})
            steps = {}
            for b in shares:
                times = []
                for _ in range(repeats + 2):
                    t0 = time.perf_counter()
                    out_ = model.forward(X[:b], training=True)
                    _, dout = model.loss.value_and_grad(out_, y[:b].astype(np.float32).reshape(out_.shape))
                    model.backward(dout)
                    times.append(time.perf_counter() - t0)
                steps[b] = min(times[2:])  # the least disturbed by the shared machine
            steps_fit = []  # fit's whole step (no validation), on 4 batches
            for _ in range(3):
                m = Sequential.from_tmva(w["layout"], w["input_layout"], seed=0)
                h = m.fit(X[: 4 * B], y[: 4 * B], epochs=2, batch_size=B, validation_split=0.0, early_stopping=None,
                          verbose=False)
                steps_fit.append(min(h.seconds) / 4)
            opt = make_optimizer("adam", lr=1e-3)
            params, grads = model.parameters(), model.gradients()
            times = []
            for _ in range(repeats + 2):
                t0 = time.perf_counter()
                opt.step(params, grads)
                times.append(time.perf_counter() - t0)
            out[name] = {"params": sum(p.size for p in params.values()), "batch_size": B,
                         "forward_backward_seconds": steps, "optimizer_seconds": min(times[2:]),
                         "fit_step_seconds": min(steps_fit)}
    return out


def run(out_path, epochs, shards, dtype="float32"):
    from bptt.model import Sequential
    from bptt.scale import mpi

    comm = mpi.world() if mpi.launched_by_mpiexec() else None
    rank, size = (0, 1) if comm is None else (comm.Get_rank(), comm.Get_size())
    record = {"ranks": size, "mpi": comm is not None, "shards": shards, "dtype": dtype, "cpu": _cpu(), "load": os.getloadavg(),
              "workloads": {}}
    for name, w in WORKLOADS.items():
        X, y = workload_data(name)
        X = X.astype(dtype)
        model = Sequential.from_tmva(w["layout"], w["input_layout"], seed=0, dtype=np.dtype(dtype))
        n_params = sum(p.size for p in model.parameters().values())
        options = dict(epochs=epochs, batch_size=w["batch_size"], validation_split=w["validation_split"],
                       learning_rate=1e-3, early_stopping=None, restore_best=False, verbose=False)
        if comm is None and shards is None:
            history = model.fit(X, y, **options)
            events = [len(X)]
        else:
            with mpi.data_parallel(comm, shards=shards) as dp:
                history = model.fit(X, y, **options)
            events = dp.events_per_rank
        steps = -(-int(len(X) * (1 - w["validation_split"]) + 0.5) // w["batch_size"])
        later = history.seconds[1:] or history.seconds
        record["workloads"][name] = {
            "params": n_params, "events": len(X), "steps_per_epoch": steps, "epoch_seconds": history.seconds,
            "median_epoch_seconds": statistics.median(later), "events_per_rank": events, "loss": history.loss,
            "weights": {k: p.tolist() for k, p in model.parameters().items()},
        }
        if comm is not None and size > 1:
            record["workloads"][name]["allreduce_seconds"] = allreduce_times(comm, [n_params])
    if comm is not None and size > 1:
        record["allreduce_latency_seconds"] = allreduce_times(comm, [2])["2"]
        record["allreduce_sizes_seconds"] = allreduce_times(comm, [2**k for k in range(10, 23, 2)])
    if comm is None and dtype == "float32":
        record["profile"] = profile()
    record["load_after"] = os.getloadavg()
    if rank == 0:
        with open(out_path, "w") as f:
            json.dump(record, f)
        for name, r in record["workloads"].items():
            print(f"{name}: {size} rank(s), median epoch {r['median_epoch_seconds']:.2f} s, epochs {r['epoch_seconds']}, "
                  f"events per rank {r['events_per_rank']}, load {record['load']}")


def _cpu():
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor()
    return {"model": model, "cores": len(os.sched_getaffinity(0))}


def compare(a_path, b_path):
    a, b = (json.load(open(p)) for p in (a_path, b_path))
    for name in a["workloads"]:
        wa, wb = a["workloads"][name], b["workloads"][name]
        rel = max(np.abs(np.array(wa["weights"][k]) - np.array(wb["weights"][k])).max() / np.abs(np.array(wb["weights"][k])).max()
                  for k in wa["weights"])
        speed = wb["median_epoch_seconds"] / wa["median_epoch_seconds"]
        print(f"{name}: {a['ranks']} vs {b['ranks']} rank(s): weights max relative difference {rel:.2e}; "
              f"epoch {wa['median_epoch_seconds']:.3f} s vs {wb['median_epoch_seconds']:.3f} s; speed-up {speed:.2f}, "
              f"efficiency {speed / (a['ranks'] / b['ranks']):.2f}")


def predict(one_path, two_path, n_values=(1, 2, 8, 16, 32, 64, 128, 256), latency=5e-6, bandwidth=10e9):
    """Seconds per step on N ranks: fb(B/N) (each rank's forward + backward of its share, a line
    o + b·c fitted to the measured shares) + what every rank does whole (the optimizer step, fit's
    per-step Python, the gradient's norm) + the all-reduce of
    the P float32 gradients, 2·log2(N)·latency + 2·(N−1)/N·4P / bandwidth (reduce-scatter and
    all-gather, MPICH's algorithm for large messages). ``latency`` and ``bandwidth`` between nodes
    are assumptions (an InfiniBand-class network); the 2-rank figures measured on this node are
    printed beside them."""
    one, two = (json.load(open(p)) for p in (one_path, two_path))
    sizes = {int(k): v for k, v in two["allreduce_sizes_seconds"].items()}
    big = max(sizes)
    print(f"measured on one node, 2 ranks: all-reduce of 8 bytes {two['allreduce_latency_seconds'][1] * 1e6:.0f} µs "
          f"(min; median {two['allreduce_latency_seconds'][0] * 1e6:.0f} µs); of {big * 4 / 1e6:.0f} MB "
          f"{sizes[big][1] * 1e3:.1f} ms (min) = {big * 4 / sizes[big][1] / 1e9:.2f} GB/s")
    print(f"model: latency {latency * 1e6:.0f} µs, bandwidth {bandwidth / 1e9:.0f} GB/s between nodes")
    rows = {}
    profiles = one["profile"]

    def fb_line(prof):  # forward + backward of a share of b events: o + b·c, least squares over the shares
        pts = sorted((int(b), t) for b, t in prof["forward_backward_seconds"].items())
        c, o = np.polyfit([b for b, _ in pts], [t for _, t in pts], 1)
        return max(o, 0.0), c

    # fit's own per-step work besides forward, backward and the optimizer (Python, the gradient's
    # norm and checks): measured on the smallest network, where it is not hidden by the compute
    small = min(profiles.values(), key=lambda prof: prof["params"])
    o_s, c_s = fb_line(small)
    python = max(small["fit_step_seconds"] - (o_s + c_s * small["batch_size"]) - small["optimizer_seconds"], 0.0)
    print(f"fit's per-step work besides the network and the optimizer: {python * 1e3:.2f} ms")
    for name, prof in profiles.items():
        B, P = prof["batch_size"], prof["params"]
        o, c = fb_line(prof)
        rest = python + 2 * prof["optimizer_seconds"]  # every rank's whole: the step, and one more pass over P
        t1 = o + c * B + rest
        print(f"\n{name}: P = {P:,} parameters, batch {B}; forward+backward of b events {o * 1e3:.2f} ms + b × "
              f"{c * 1e3:.3f} ms (one thread); optimizer {prof['optimizer_seconds'] * 1e3:.2f} ms; every rank's whole "
              f"{rest * 1e3:.2f} ms; one rank {t1 * 1e3:.2f} ms per step")
        print("| N | per-rank batch | compute ms | all-reduce ms | step ms | speed-up | efficiency |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        rows[name] = []
        for n in n_values:
            b = B / n
            compute = o + c * b + rest
            reduce = 0.0 if n == 1 else 2 * np.log2(n) * latency + 2 * (n - 1) / n * 4 * P / bandwidth
            step = compute + reduce
            rows[name].append((n, b, compute, reduce, step, t1 / step))
            print(f"| {n} | {b:.1f} | {compute * 1e3:.2f} | {reduce * 1e3:.3f} | {step * 1e3:.2f} | {t1 / step:.1f} | "
                  f"{t1 / step / n:.2f} |")
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", nargs="?")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--shards", type=int, default=None)
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--compare", nargs=2)
    p.add_argument("--latency", type=float, default=5e-6, help="--predict: seconds per message between nodes")
    p.add_argument("--bandwidth", type=float, default=10e9, help="--predict: bytes per second between nodes")
    p.add_argument("--predict", nargs=2, metavar=("ONE.json", "TWO.json"))
    args = p.parse_args(argv)
    if args.compare:
        compare(*args.compare)
        return 0
    if args.predict:
        predict(*args.predict, latency=args.latency, bandwidth=args.bandwidth)
        return 0
    run(args.out, args.epochs, args.shards, args.dtype)


if __name__ == "__main__":
    sys.exit(main())
