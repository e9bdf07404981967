"""The kernel benchmark ``benchmarks/run.py`` (``make bench``): its structure, options and output,
never its timings."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import cells
import grid
import machine
import memory
import options
import run
import timing
from bptt.kernels.blas import AVX512_CORES, blas_kernels

QUICK = ["--quick", "--rows", "tmva-test", "--repeats", "3"]


def load(path) -> dict:
    with open(path) as fh:
        return json.load(fh)


def check_records(data: dict, with_torch: bool) -> None:
    res = data["results"]
    assert sorted((r["cell"], r["mode"]) for r in res) == sorted(
        (c, m) for c in grid.CELLS for m in grid.MODES
    )
    for r in res:
        assert r["row"] == "tmva-test" and (r["B"], r["T"], r["I"], r["H"]) == (64, 5, 5, 10)
        assert r["repeats"] >= 3 and r["warmup"] >= 3
        assert r["bptt_ms"] > 0 and r["floor_ms"] > 0 and r["floor_over_bptt"] > 0
        assert r["flops"] == grid.flops(r["cell"], r["row"], r["mode"])
        sides = ("bptt", "torch") if with_torch else ("bptt",)
        spread = max([1.0] + [r[f"{k}_p75_ms"] / r[f"{k}_p25_ms"] for k in sides])
        assert r["spread"] == pytest.approx(spread if r["repeats"] < timing.SPREAD_REPEATS else 1.0)
        if with_torch:
            assert r["torch_ms"] > 0
            assert r["torch_over_bptt"] == pytest.approx(r["torch_ms"] / r["bptt_ms"])
            if r["mode"] == "inference":  # same weights in both: same outputs
                assert r["max_rel_diff"] < 1e-4
        else:
            assert r["torch_ms"] is None and r["torch_over_bptt"] is None and r["max_rel_diff"] is None


def test_quick_run_writes_json_with_every_cell_and_mode(tmp_path, capsys):
    """With PyTorch, the test extra's peer (a missing install fails here, it is not skipped)."""
    out = tmp_path / "bench.json"
    assert run.main(QUICK + ["--json", str(out)]) == 0
    data = load(out)
    check_records(data, with_torch=True)
    m = data["machine"]
    for key in ("cpu_model", "cores", "numpy", "torch", "bptt", "threads", "gemm_gflops", "blas"):
        assert key in m, key
    assert set(m["blas"]) >= {"library", "core", "OPENBLAS_CORETYPE", "cpu_avx512", "narrower_than_cpu", "loop_gemm"}
    assert m["gemm_gflops"] > 0 and m["torch"] and m["numpy"] == np.__version__
    assert data["settings"]["repeats"] == 3 and data["settings"]["protocol"] is False
    assert data["memory"] == []  # the large row is not selected: no memory run by default
    if "OPENBLAS_THREAD_TIMEOUT" not in os.environ:  # --blas-spin short ran it in a child with it set
        assert data["settings"]["openblas_thread_timeout"] == str(options.SHORT_SPIN)
    assert [p.name for p in tmp_path.iterdir()] == ["bench.json"]  # no temp file left behind
    # The table: header plus one line per record, aligned columns.
    text = capsys.readouterr().out.splitlines()
    assert any(line.startswith("blas: ") for line in text)
    header = next(i for i, line in enumerate(text) if line.startswith("cell "))
    assert text[header].split() == ["cell", "row", "B", "T", "I", "H", "mode", "bptt", "ms", "torch", "ms",
                                     "torch/bptt", "floor/bptt"]
    table = text[header + 2 : header + 2 + len(data["results"])]
    assert len({len(line) for line in [text[header]] + table}) == 1
    assert all(line.split()[1] == "tmva-test" for line in table)


def test_no_torch_leaves_torch_fields_null(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert run.main(QUICK + ["--no-torch", "--json", str(out)]) == 0
    data = load(out)
    check_records(data, with_torch=False)
    assert data["machine"]["threads"]["torch"] is None
    lines = capsys.readouterr().out.splitlines()
    row = next(line for line in lines if line.startswith("lstm"))
    assert row.split()[-3:-1] == ["—", "—"]  # torch ms and torch/bptt


def test_flops_formula_by_hand():
    # medium: B=256, T=30, I=30, H=64; LSTM G=4: 2·256·30·(30+64)·4·64
    assert grid.flops("lstm", "medium", "inference") == 2 * 256 * 30 * 94 * 4 * 64 == 369_623_040
    assert grid.flops("lstm", "medium", "train") == 3 * 369_623_040
    assert grid.flops("gru", grid.ROWS["medium"], "inference") == 2 * 256 * 30 * 94 * 3 * 64
    assert grid.flops("rnn", "medium", "inference") == 2 * 256 * 30 * 94 * 1 * 64
    with pytest.raises(ValueError):
        grid.flops("lstm", "medium", "backward")


def test_grid_is_the_protocol_grid():
    assert {n: (r.B, r.T, r.I, r.H) for n, r in grid.ROWS.items()} == {
        "tmva-tutorial": (100, 10, 30, 10),
        "tmva-test": (64, 5, 5, 10),
        "small": (64, 30, 30, 10),
        "medium": (256, 30, 30, 64),
        "long": (64, 100, 32, 128),
        "wide": (128, 50, 64, 256),
        "large": (32, 200, 128, 512),
    }
    assert grid.CELLS == {"lstm": 4, "gru": 3, "rnn": 1}


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--cells", "foo"], "unknown cell 'foo'"),
        (["--cells", "lstm,foo"], "unknown cell 'foo'"),
        (["--rows", "huge"], "unknown row 'huge'"),
        (["--modes", "backward"], "unknown mode 'backward'"),
        (["--repeats", "0"], "positive integer"),
        (["--budget", "-1"], "non-negative"),
        (["--retries", "-1"], "non-negative integer"),
        (["--json", "/nonexistent-dir/x.json"], "does not exist"),
    ],
)
def test_bad_options_exit_2_with_one_message(argv, needle, capsys):
    with pytest.raises(SystemExit) as exc:
        run.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_memory_helper_returns_non_negative_mib():
    assert memory.measure_memory("lstm", "bptt", row="tmva-test") >= 0
    # PyTorch is in the test extra (pyproject.toml): measured, not skipped when missing
    assert memory.measure_memory("gru", "torch", row="tmva-test") >= 0


def test_bptt_inference_drops_the_cache_when_the_kernel_can(monkeypatch):
    """``keep_cache=False`` is passed exactly when ``<cell>_forward`` accepts it."""
    import bptt.functional as F

    seen = []
    original = F.rnn_forward

    def rnn_forward(x, W, U, b, h0=None, activation="tanh", keep_cache=True):
        seen.append(keep_cache)
        return original(x, W, U, b, h0=h0, activation=activation)

    p = cells.make_problem("rnn", "tmva-test")
    monkeypatch.setattr(F, "rnn_forward", rnn_forward)
    inference, train = cells.bptt_calls("rnn", p)
    inference()
    train()
    assert seen == [False, True]

    def plain(x, W, U, b, h0=None, activation="tanh"):
        seen.append("plain")
        return original(x, W, U, b, h0=h0, activation=activation)

    monkeypatch.setattr(F, "rnn_forward", plain)
    inference, _ = cells.bptt_calls("rnn", p)
    h = cells.first(inference())  # without the keyword: the plain call
    assert seen[-1] == "plain" and h.shape == (64, 5, 10)


def test_bptt_train_spends_the_cache_when_the_backward_can(monkeypatch):
    """The training step passes ``keep_cache=False`` exactly when ``<cell>_backward`` accepts it
    (like PyTorch's backward, which frees its saved tensors)."""
    import bptt.functional as F

    seen = []
    original = F.rnn_backward

    def rnn_backward(dh, cache, dh_last=None, keep_cache=True):
        seen.append(keep_cache)
        return original(dh, cache, dh_last=dh_last, keep_cache=keep_cache)

    def plain(dh, cache, dh_last=None):
        seen.append("plain")
        return original(dh, cache, dh_last=dh_last)

    p = cells.make_problem("rnn", "tmva-test")
    for fn in (rnn_backward, plain):
        monkeypatch.setattr(F, "rnn_backward", fn)
        _, train = cells.bptt_calls("rnn", p)
        assert train()["dW"].shape == p["W"].shape
    assert seen == [False, "plain"]


def test_spread_is_the_largest_p75_over_p25():
    steady, two_groups = [1.0] * 8, [1.0] * 4 + [2.0] * 4  # p25 1.0, p75 2.0
    assert timing._spread([steady]) == 1.0
    assert timing._spread([steady, two_groups]) == timing._spread([two_groups, steady]) == 2.0


class _Quiet:
    """A load meter that sees no other process (the tests control the load by hand)."""

    def __init__(self, loads=None):
        self.loads = loads

    def other_cores(self):
        return self.loads.pop(0) if self.loads else 0.0


@pytest.mark.parametrize("results,loads,retries,kept,attempts", [
    ([2.0, 1.1], [], 2, 1.1, 2),  # unsteady, then steady: measured again, the steady one kept
    ([1.1, 2.0], [], 2, 1.1, 1),  # steady at once: one attempt
    ([1.9, 1.5, 1.7], [], 2, 1.5, 3),  # never steady: every attempt, the least spread kept
    ([1.0, 1.6], [1.0, 0.0], 1, 1.6, 2),  # busy but steady ranks below quiet but unsteady
    ([1.7, 1.4, 1.9], [0.0, 0.2, 0.0], 2, 1.4, 3),  # among quiet ones the spread decides, not the load
])
def test_steadiest_retries_unsteady_and_busy_measurements(monkeypatch, results, loads, retries, kept, attempts):
    monkeypatch.setattr(timing, "RETRY_PAUSE", 0.0)
    meter = _Quiet(list(loads))
    monkeypatch.setattr(timing, "_LoadMeter", lambda: meter)
    pending = list(results)
    best, _, n = timing.steadiest(lambda: pending.pop(0), retries, spread=lambda r: r)
    assert (best, n) == (kept, attempts)


def test_measure_keeps_the_steadiest_attempt(monkeypatch):
    """A measurement whose repeats fell into two groups is taken again; the record is the steady
    attempt's, with its spread and the number of attempts."""
    monkeypatch.setattr(timing, "RETRY_PAUSE", 0.0)
    monkeypatch.setattr(timing, "_LoadMeter", lambda: _Quiet())
    two_groups, steady = [1e-3] * 4 + [2e-3] * 4, [1.5e-3] * 8
    attempts = [([two_groups], 2, 8), ([steady], 2, 8)]
    monkeypatch.setattr(timing, "_interleaved", lambda funcs, repeats, budget: attempts.pop(0))
    r = timing.measure("rnn", grid.ROWS["tmva-test"], "train", lambda: None, None, None, 8, 0.0, 1e9, retries=2)
    assert (r["attempts"], r["spread"], r["bptt_ms"]) == (2, 1.0, pytest.approx(1.5))
    many = [1e-3] * 60 + [2e-3] * 60  # as many repeats as short calls get: their jitter is not retried
    monkeypatch.setattr(timing, "_interleaved", lambda funcs, repeats, budget: ([many], 2, len(many)))
    r = timing.measure("rnn", grid.ROWS["tmva-test"], "train", lambda: None, None, None, 8, 0.0, 1e9, retries=2)
    assert (r["attempts"], r["spread"]) == (1, 1.0)


def test_importing_bench_does_not_import_torch():
    code = ("import sys, bptt, cells, grid, machine, memory, options, report, run, timing; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env=machine.child_env())
    assert proc.returncode == 0, proc.stderr


def test_options_survive_the_hand_over_to_the_child_process():
    parser = options.build_parser()
    argv = ["--cells", "gru,lstm", "--rows", "small", "--modes", "train", "--repeats", "7", "--budget", "0.25",
            "--json", "/tmp/x.json", "--quick", "--no-memory", "--no-torch", "--retries", "0", "--blas-spin", "default"]
    args = parser.parse_args(argv)
    assert parser.parse_args(options.canonical_argv(args)) == args
    args = parser.parse_args([])
    assert parser.parse_args(options.canonical_argv(args)) == args
    assert args.blas_spin == "short" and args.memory is None and args.cells is None


def _blas_in_child(coretype: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    if coretype is not None:
        env["OPENBLAS_CORETYPE"] = coretype
    code = "import json; from bptt.kernels.blas import blas_kernels; print(json.dumps(blas_kernels()))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, timeout=120)
    return json.loads(out.stdout)


@pytest.mark.skipif(blas_kernels()["library"] != "openblas", reason="NumPy's BLAS is not OpenBLAS")
def test_blas_report_names_the_kernels_and_a_forced_core_type():
    forced = _blas_in_child("Haswell")
    assert forced["core"] == "Haswell" and forced["OPENBLAS_CORETYPE"] == "Haswell"
    assert forced["narrower_than_cpu"] == forced["cpu_avx512"]  # Haswell kernels have no AVX-512
    warning = machine.blas_warning(forced)
    if forced["cpu_avx512"]:
        assert "OPENBLAS_CORETYPE=Haswell is set" in warning and "Haswell kernels" in warning
    else:
        assert warning is None
    free = _blas_in_child(None)
    assert free["OPENBLAS_CORETYPE"] is None and free["core"]
    if free["cpu_avx512"] and free["core"].lower() in AVX512_CORES:
        assert machine.blas_warning(free) is None


def test_blas_warning_only_for_narrower_kernels():
    base = {"library": "openblas", "core": "SkylakeX", "OPENBLAS_CORETYPE": None, "cpu_avx512": True,
            "narrower_than_cpu": False}
    assert machine.blas_warning(base) is None
    chosen = dict(base, core="Haswell", narrower_than_cpu=True)
    assert "OpenBLAS chose them" in machine.blas_warning(chosen)


def test_interleaved_runs_in_turns_that_settle_before_timing(monkeypatch):
    """Each function gets its own turns: untimed settling calls first (at least one), then timed
    calls; every function ends with at least the asked-for number of timed calls."""
    log: list[str] = []
    monkeypatch.setattr(timing, "SETTLE_S", 0.0)  # exactly one settling call per turn
    monkeypatch.setattr(timing, "TURN_S", 0.0)  # exactly MIN_TURN_CALLS timed calls per turn
    times, warmup, n = timing._interleaved([lambda: log.append("a"), lambda: log.append("b")], repeats=7, budget=0)
    assert n == 7 and warmup == timing.MIN_WARMUP
    assert [len(ts) for ts in times] == [9, 9]  # 3 turns of MIN_TURN_CALLS = 3
    timed = log[2 * warmup :]
    k = timing.MIN_TURN_CALLS + 1  # one settling call, then the timed ones
    assert timed == (["a"] * k + ["b"] * k) * 3


def test_interleaved_alone_has_no_settling_calls():
    calls = []
    times, warmup, n = timing._interleaved([lambda: calls.append(1)], repeats=5, budget=0)
    assert len(times[0]) == n == 5 and len(calls) == warmup + 5


def test_the_library_ships_no_benchmark():
    """The benchmark lives in benchmarks/ (``make bench``): ``bptt bench`` is argparse's unknown
    command, and there is no ``bptt.bench`` module."""
    proc = subprocess.run([sys.executable, "-m", "bptt", "bench"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "invalid choice: 'bench'" in proc.stderr and "Traceback" not in proc.stderr
    assert importlib.util.find_spec("bptt.bench") is None
