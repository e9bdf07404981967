"""A bidirectional layer's two directions at the same time (bptt.functional._plan rule 6,
``settings.parallel_directions``): where each direction runs, with how many BLAS threads, that the
results are those of one direction after the other, that an error in either direction reaches the
caller and leaves the worker usable, and the rule's conditions.

tests/core/test_bidirectional.py runs its PyTorch parity, float32 and finite-difference tests in
both modes; here the sizes are large enough that, one after the other, each direction's loops run
on two threads (their loop work is above ``settings.split_loop_work``), so the two modes run
different plans over the same arithmetic.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from bptt import _threads
from bptt.functional._backend import _kernel
from bptt.functional._plan import _directions_in_parallel, _loop_split, _loop_work
from bptt.layers import GRU, LSTM, RNN
from bptt.settings import override, settings

LAYERS = {"lstm": LSTM, "gru": GRU, "rnn": RNN}
B, T, I, H = 128, 32, 8, 64  # one direction's loop work is above split_loop_work for every cell


def problem(dtype, ragged):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((B, T, I)).astype(dtype)
    dy = rng.standard_normal((B, T, 2 * H)).astype(dtype)
    lengths = None
    if ragged:
        lengths = rng.integers(1, T + 1, B)
        lengths[0] = T
        dy[np.arange(T)[None, :] >= lengths[:, None]] = 0
    return x, dy, lengths


def step(cell, dtype, ragged, parallel, return_sequences=True):
    x, dy, lengths = problem(dtype, ragged)
    layer = LAYERS[cell](I, H, return_sequences=return_sequences, bidirectional=True, dtype=dtype, seed=4)
    with override(parallel_directions=parallel):
        y = layer.forward(x, lengths=lengths)
        dx = layer.backward(dy if return_sequences else dy[:, 0])
    return {"y": y, "dx": dx, **layer.grads, **layer.state_grads}


def test_the_sizes_split_each_direction_when_run_one_after_the_other():
    assert _loop_split(T, B, H, 1, np.float32) > 0  # the RNN's, the smallest loop work
    assert _loop_work(T, B, H, 1) >= settings.split_loop_work


@pytest.mark.parametrize("cell", LAYERS)
@pytest.mark.parametrize("ragged", [False, True], ids=["all_T", "lengths"])
@pytest.mark.parametrize("return_sequences", [True, False])
def test_at_once_equals_one_after_the_other_float64(cell, ragged, return_sequences):
    want = step(cell, np.float64, ragged, False, return_sequences)
    got = step(cell, np.float64, ragged, True, return_sequences)
    assert sorted(got) == sorted(want)
    for k in want:
        scale = max(np.abs(want[k]).max(), 1e-300)
        assert np.abs(got[k] - want[k]).max() / scale <= 1e-12, k


@pytest.mark.parametrize("cell", LAYERS)
@pytest.mark.parametrize("ragged", [False, True], ids=["all_T", "lengths"])
def test_at_once_float32_within_1e5_of_float64(cell, ragged):
    want = step(cell, np.float64, ragged, False)
    got = step(cell, np.float32, ragged, True)
    for k in want:
        assert got[k].dtype == np.float32, k
        scale = max(np.abs(want[k]).max(), 1e-300)
        assert np.abs(got[k] - want[k]).max() / scale <= 1e-5, k


def spy(layer, seen):
    """Record, per call of each direction's forward and backward, the thread it ran on and the
    BLAS thread count it saw."""
    forward, backward = layer._forward_fn, layer._backward_fn

    def forward_fn(x, initial, lengths, reverse=False, direction=""):
        seen.append(("forward" + direction, threading.current_thread().name, _threads.blas_max_threads()))
        return forward(x, initial, lengths, reverse=reverse, direction=direction)

    def backward_fn(dh, cache, dh_last):
        name = "backward_reverse" if cache is layer._cache[1] else "backward"
        seen.append((name, threading.current_thread().name, _threads.blas_max_threads()))
        return backward(dh, cache, dh_last)

    layer._forward_fn, layer._backward_fn = forward_fn, backward_fn


@pytest.mark.parametrize("ragged", [False, True], ids=["all_T", "lengths"])
def test_at_once_the_reverse_direction_runs_on_the_worker_with_one_blas_thread_each(ragged):
    if _threads.blas_max_threads() < 2:
        pytest.fail("this test needs NumPy's BLAS on two threads or more (the machine's default)")
    x, dy, lengths = problem(np.float32, ragged)
    layer = LSTM(I, H, return_sequences=True, bidirectional=True, seed=4)
    seen = []
    spy(layer, seen)
    main = threading.current_thread().name
    with override(parallel_directions=True):
        layer.forward(x, lengths=lengths)
        layer.backward(dy)
    assert sorted(seen) == sorted([("forward", main, 1), ("forward_reverse", "bptt-loop", 1),
                                   ("backward", main, 1), ("backward_reverse", "bptt-loop", 1)])
    seen.clear()
    n = _threads.blas_max_threads()
    with override(parallel_directions=False):
        layer.forward(x, lengths=lengths)
        layer.backward(dy)
    assert seen == [("forward", main, n), ("forward_reverse", main, n), ("backward_reverse", main, n),
                    ("backward", main, n)]


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("failing", ["", "_reverse"], ids=["forward_direction", "reverse_direction"])
def test_an_error_in_either_direction_reaches_the_caller_and_the_layer_runs_after_it(parallel, failing):
    x, dy, _ = problem(np.float32, False)
    layer = GRU(I, H, return_sequences=True, bidirectional=True, seed=4)
    forward, backward = layer._forward_fn, layer._backward_fn
    fail = {"forward": True, "backward": False}

    def forward_fn(x, initial, lengths, reverse=False, direction=""):
        if fail["forward"] and direction == failing:
            raise RuntimeError(f"planted in forward{direction}")
        return forward(x, initial, lengths, reverse=reverse, direction=direction)

    def backward_fn(dh, cache, dh_last):
        if fail["backward"] and (cache is layer._cache[1]) == (failing == "_reverse"):
            raise RuntimeError(f"planted in backward{failing}")
        return backward(dh, cache, dh_last)

    layer._forward_fn, layer._backward_fn = forward_fn, backward_fn
    with override(parallel_directions=parallel):
        with pytest.raises(RuntimeError, match=f"planted in forward{failing}$"):
            layer.forward(x)
        fail.update(forward=False, backward=True)
        layer.forward(x)
        with pytest.raises(RuntimeError, match=f"planted in backward{failing}$"):
            layer.backward(dy)
        fail["backward"] = False
        y = layer.forward(x)  # the worker is free again
        dx = layer.backward(dy)
    with override(parallel_directions=not parallel):  # the other mode's plans: float32 rounding apart
        np.testing.assert_allclose(layer.forward(x), y, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(layer.backward(dy), dx, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("key", ["h0", "c0_reverse"])
def test_a_wrong_initial_state_is_named_by_its_key(key):
    x, _, _ = problem(np.float32, False)
    layer = LSTM(I, H, bidirectional=True, seed=4)
    with pytest.raises(ValueError, match=rf"LSTM.forward: initial_state\['{key}'\] must have shape "
                                         r"\(B, hidden_size\) = \(128, 64\); got \(128, 65\)"):
        layer.forward(x, initial_state={key: np.zeros((B, H + 1), np.float32)})


def test_bad_lengths_are_refused_by_the_layer_in_both_modes():
    x, _, _ = problem(np.float32, False)
    layer = RNN(I, H, bidirectional=True, seed=4)
    for parallel in (False, True):
        with override(parallel_directions=parallel):
            with pytest.raises(ValueError, match=r"RNN.forward: lengths must be an integer array of shape \(B,\) = "
                                                 r"\(128,\) .*got lengths\[2\] = 33"):
                layer.forward(x, lengths=np.r_[3, 4, 33, np.full(B - 3, 2)])
            with pytest.raises(ValueError, match=r"lengths must be .*got shape \(3,\)"):
                layer.forward(x, lengths=[1, 2, 3])


@pytest.fixture
def narrow_cpu(monkeypatch):
    """The rule as on a CPU without AVX-512, whatever this one has."""
    monkeypatch.setattr(_kernel("microkernel"), "WIDE", False)


def test_the_rule(narrow_cpu, monkeypatch):
    G = 4
    work = _loop_work(T, B, H, G)
    with override(parallel_directions=None, split_loop_work=work):
        assert _directions_in_parallel(T, B, H, G) == (_threads.blas_max_threads() >= 2)
        with monkeypatch.context() as m:  # an AVX-512 CPU
            m.setattr(_kernel("microkernel"), "WIDE", True)
            assert not _directions_in_parallel(T, B, H, G)
        with _threads.blas_threads(1):  # the user's (or the machine's) one thread
            assert not _directions_in_parallel(T, B, H, G)
        with override(loop_threads=1):
            assert not _directions_in_parallel(T, B, H, G)
        with override(backend="reference"):
            assert not _directions_in_parallel(T, B, H, G)
        assert not _directions_in_parallel(T - 1, B, H, G)  # below the threshold
    with override(parallel_directions=True, loop_threads=1, backend="reference"):
        assert _directions_in_parallel(1, 1, 1, 1)
    with override(parallel_directions=False, split_loop_work=0):
        assert not _directions_in_parallel(T, B, H, G)


def test_the_rule_is_false_on_the_worker_itself(narrow_cpu):
    got = []
    with override(parallel_directions=None, split_loop_work=0):
        _threads.run_in_two_threads(lambda: got.append((threading.current_thread().name,
                                                        _directions_in_parallel(T, B, H, 4))), (), ())
    assert sorted(got) == sorted([(threading.current_thread().name, _threads.blas_max_threads() >= 2),
                                  ("bptt-loop", False)])


def test_each_half_plans_for_one_core_whatever_blas_is_set_to_meanwhile(monkeypatch):
    """Another thread of the user's may set NumPy's BLAS back to two threads while the halves run
    (its own block ending): each half still plans for one core."""
    from bptt.layers import recurrent

    x, dy, lengths = problem(np.float32, True)
    monkeypatch.setattr(recurrent, "blas_threads", lambda n: _threads._NO_CHANGE)  # BLAS left at its setting
    layer = LSTM(I, H, return_sequences=True, bidirectional=True, seed=4)
    seen = []
    spy(layer, seen)
    with override(parallel_directions=True):
        layer.forward(x, lengths=lengths)
        layer.backward(dy)
    assert sorted(s[2] for s in seen) == [1, 1, 1, 1]
    assert _threads.blas_max_threads() == _threads.numpy_blas_libraries()[0].get_num_threads() >= 1  # restored


def test_threads_of_the_user_running_bidirectional_layers_at_once(narrow_cpu):
    """As Dask's worker threads do: each thread's layers take bptt's worker in turn, none waits for
    itself, and every result is the one computed alone."""
    x, dy, lengths = problem(np.float32, True)
    layers = [cls(I, H, return_sequences=True, bidirectional=True, seed=4) for cls in (LSTM, GRU, RNN)]
    with override(parallel_directions=False):
        want = [(layer.forward(x, lengths=lengths), layer.backward(dy)) for layer in layers]
    twins = [[type(layer)(I, H, return_sequences=True, bidirectional=True, seed=4) for layer in layers] for _ in range(2)]
    got, errors = {}, []

    def user(k):
        try:
            for r in range(4):
                for i, layer in enumerate(twins[k]):
                    got[k, r, i] = (layer.forward(x, lengths=lengths), layer.backward(dy))
        except BaseException as e:  # reported below
            errors.append(e)

    with override(parallel_directions=None, split_loop_work=0):  # the rule, at once for these sizes
        assert _directions_in_parallel(T, B, H, 1) == (_threads.blas_max_threads() >= 2)
        users = [threading.Thread(target=user, args=(k,)) for k in range(2)]
        for t in users:
            t.start()
        for t in users:
            t.join(120)
    assert not any(t.is_alive() for t in users), "a thread waits for ever"
    assert not errors, errors
    assert len(got) == 2 * 4 * 3
    for (k, r, i), (y, dx) in got.items():
        np.testing.assert_allclose(y, want[i][0], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(dx, want[i][1], rtol=1e-4, atol=1e-5)
