"""Arrays in the layout the fast path returns: ``h`` and ``dx`` are batch-major views of
feature-major ``(F, T, B)`` arrays, and a layer after a recurrent one receives them so (as ``x``
of the next layer, as ``dy`` of the one before). Every consumer must compute on them exactly as on
a C-contiguous copy: the functional calls (the padded path copies the rows as they are, the packed
path and the backward loops take a batch-major copy made by bptt.kernels.fast.from_feature_major),
Dense and the shape layers (handed a C-contiguous copy), and bidirectional layers (whose output is
such a view too, and whose reverse direction reads a time-reversed copy of one)."""

from __future__ import annotations

import numpy as np
import pytest

from bptt import functional as F
from bptt.functional import _arrays
from bptt.functional._arrays import _batch_major, _feature_major_view
from bptt.layers import GRU, LSTM, RNN, Dense, Dropout, Flatten
from bptt.settings import settings

CELLS = {
    "lstm": (F.lstm_forward, F.lstm_backward, 4),
    "gru": (F.gru_forward, F.gru_backward, 3),
    "rnn": (F.rnn_forward, F.rnn_backward, 1),
}
LENGTHS = [None, np.array([5, 1, 3, 5, 2, 4]), np.array([5] * 6)]
LID = ["padded", "ragged", "all-full"]


@pytest.fixture(autouse=True, params=["kernel", "numpy"])
def copies(request, monkeypatch):
    """Every test twice: views copied to batch-major by the compiled transposer (the sizes here are
    below its threshold), and by NumPy."""
    monkeypatch.setattr(settings, "batch_major_kernel_min_values", 0 if request.param == "kernel" else 10**12)
    return request.param


def fm_view(a: np.ndarray) -> np.ndarray:
    """The same values as the batch-major view of a C-contiguous feature-major array."""
    view = np.ascontiguousarray(a.transpose(2, 1, 0)).transpose(2, 1, 0)
    assert _feature_major_view(view) is not None and not view.flags.c_contiguous
    return view


def params(cell, I, H, rng, dtype):
    fwd, bwd, G = CELLS[cell]
    p = [rng.normal(size=(I, G * H)), rng.normal(size=(H, G * H)) / 2, rng.normal(size=G * H)]
    if cell == "gru":
        p.append(rng.normal(size=G * H))
    return [a.astype(dtype) for a in p]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_major_copies_views_and_returns_c_arrays_as_they_are(dtype):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 3, 18)).astype(dtype)
    assert _batch_major(a) is a
    out = _batch_major(fm_view(a))
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, a)
    sliced = a[:, ::-1, 2:]  # neither layout: NumPy's copy
    np.testing.assert_array_equal(_batch_major(sliced), sliced)
    assert _feature_major_view(a) is None and _feature_major_view(sliced) is None


def test_the_transposer_copies_views_from_its_threshold_on(monkeypatch):
    view = fm_view(np.random.default_rng(0).normal(size=(4, 3, 18)))
    calls = []
    real = _arrays._fast().from_feature_major

    class Fast:
        def from_feature_major(self, fm, out):
            calls.append(fm.shape)
            real(fm, out)

    monkeypatch.setattr(_arrays, "_fast", Fast)
    for threshold, used in ((view.size, True), (view.size + 1, False)):
        monkeypatch.setattr(settings, "batch_major_kernel_min_values", threshold)
        calls.clear()
        np.testing.assert_array_equal(_batch_major(view), view)
        assert calls == ([(18, 3, 4)] if used else [])


@pytest.mark.parametrize("lengths", LENGTHS, ids=LID)
@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_functional_calls_take_feature_major_views_exactly(cell, lengths, dtype):
    """x and dh as views give the same bits as C-contiguous ones, forward and backward, with and
    without lengths, in both directions."""
    fwd, bwd, _ = CELLS[cell]
    rng = np.random.default_rng(1)
    B, T, I, H = 6, 5, 20, 17  # I and H past one block of 16 features, with a remainder
    x = rng.normal(size=(B, T, I)).astype(dtype)
    dh = rng.normal(size=(B, T, H)).astype(dtype)
    p = params(cell, I, H, rng, dtype)
    for reverse in (False, True) if lengths is not None else (False,):
        h_c, cache_c = fwd(x, *p, lengths=lengths, reverse=reverse)
        h_v, cache_v = fwd(fm_view(x), *p, lengths=lengths, reverse=reverse)
        np.testing.assert_array_equal(h_v, h_c)
        g_c = bwd(dh, cache_c)
        g_v = bwd(fm_view(dh), cache_v)
        assert set(g_v) == set(g_c)
        for k in g_c:
            np.testing.assert_array_equal(g_v[k], g_c[k], err_msg=k)


@pytest.mark.parametrize("lengths", LENGTHS[:2], ids=LID[:2])
def test_nan_in_a_view_of_dh_is_reported(lengths):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(6, 5, 3))
    p = params("rnn", 3, 4, rng, np.float64)
    _, cache = F.rnn_forward(x, *p, lengths=lengths)
    dh = rng.normal(size=(6, 5, 4))
    dh[2, 0, 1] = np.nan  # step 0 is real in every sequence
    with pytest.raises(ValueError, match="dh"):
        F.rnn_backward(fm_view(dh), cache)


@pytest.mark.parametrize("cls", [LSTM, GRU, RNN])
def test_layers_after_a_recurrent_layer_compute_on_its_view(cls):
    """Dense (and Dropout, Flatten) after a recurrent layer returning sequences: outputs, dx and the
    parameter gradients equal those from a C-contiguous copy of the recurrent output, and what
    they hand on is C-contiguous."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(6, 5, 3))
    rec = cls(3, 18, return_sequences=True, dtype=np.float64, seed=0)
    h = rec.forward(x)
    assert _feature_major_view(h) is not None  # the fast path's layout, as the layers below receive it
    for layer in (Dense(18, 2, activation="tanh", dtype=np.float64, seed=1), Flatten()):
        y_v = layer.forward(h)
        dy = rng.normal(size=y_v.shape)
        dx_v = layer.backward(dy)
        grads_v = {k: g.copy() for k, g in layer.grads.items()}
        y_c = layer.forward(np.ascontiguousarray(h))
        dx_c = layer.backward(dy)
        np.testing.assert_array_equal(y_v, y_c)
        np.testing.assert_array_equal(dx_v, dx_c)
        for k in grads_v:
            np.testing.assert_array_equal(grads_v[k], layer.grads[k])
        assert y_v.flags.c_contiguous and dx_v.flags.c_contiguous
    drop = Dropout(0.5, seed=4)
    y = drop.forward(h)
    assert y.flags.c_contiguous
    np.testing.assert_array_equal(y != 0, drop.backward(np.ones_like(y)) != 0)


@pytest.mark.parametrize("lengths", LENGTHS, ids=LID)
@pytest.mark.parametrize("cls", [LSTM, GRU, RNN])
def test_stacked_bidirectional_layers_on_views_equal_c_arrays(cls, lengths):
    """Two bidirectional layers: the second reads the first's output (a view) and hands back dx (a
    view) to the first; each gives the same bits as on C-contiguous copies, and the output halves
    are the two directions' own outputs (forward first)."""
    rng = np.random.default_rng(6)
    x = rng.normal(size=(6, 5, 3))
    one = cls(3, 4, return_sequences=True, bidirectional=True, dtype=np.float64, seed=0)
    two = cls(8, 17, return_sequences=True, bidirectional=True, dtype=np.float64, seed=1)
    y1 = one.forward(x, lengths=lengths)
    assert _feature_major_view(y1) is not None
    y2 = two.forward(y1, lengths=lengths)
    dy = rng.normal(size=y2.shape)
    dx2 = two.backward(dy)
    grads2 = {k: g.copy() for k, g in two.grads.items()}
    assert _feature_major_view(dx2) is not None
    dx1 = one.backward(dx2)
    grads1 = {k: g.copy() for k, g in one.grads.items()}

    y1c = np.ascontiguousarray(y1)
    one.forward(x, lengths=lengths)
    np.testing.assert_array_equal(two.forward(y1c, lengths=lengths), y2)
    np.testing.assert_array_equal(two.backward(np.asfortranarray(dy)), dx2)  # dy as a view too
    np.testing.assert_array_equal(one.backward(np.ascontiguousarray(dx2)), dx1)
    for layer, grads in ((two, grads2), (one, grads1)):
        for k in grads:
            np.testing.assert_array_equal(layer.grads[k], grads[k], err_msg=k)

    fwd = {k: a for k, a in one.params.items() if not k.endswith("_reverse")}
    rev = {k[: -len("_reverse")]: a for k, a in one.params.items() if k.endswith("_reverse")}
    h_f = cls(3, 4, return_sequences=True, dtype=np.float64)
    h_f.params = fwd
    h_r = cls(3, 4, return_sequences=True, dtype=np.float64)
    h_r.params = rev
    np.testing.assert_array_equal(y1[..., :4], h_f.forward(x, lengths=lengths))
    reversed_lengths = lengths if lengths is not None else np.full(6, 5)
    F_fwd = {"lstm": F.lstm_forward, "gru": F.gru_forward, "rnn": F.rnn_forward}[cls.__name__.lower()]
    expected_r, _ = F_fwd(x, *[rev[k] for k in one.params if k in ("W", "U", "b", "b_u") and k in rev],
                          lengths=reversed_lengths, reverse=True)
    np.testing.assert_allclose(y1[..., 4:], expected_r, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("lengths", [None, np.arange(32) % 3 + 1], ids=["padded", "ragged"])
def test_lstm_inference_on_a_view_reads_it_exactly(lengths):
    """The LSTM's float32 inference over a batch whose per-step product runs on BLAS (or the
    micro-kernel) reads a time-major stacked array (functional._arrays._tm_stacked): a view as x
    gives the bits of a C-contiguous x there too."""
    from bptt.functional import _plan

    rng = np.random.default_rng(7)
    B, T, I, H = 32, 3, 20, 32
    x = rng.normal(size=(B, T, I)).astype(np.float32)
    p = params("lstm", I, H, rng, np.float32)
    plan = _plan._loop_plan(T, B, H, 4, np.float32)
    assert lengths is not None or _plan._time_major_inference(plan, I, H, 4)  # the path this test is for
    expected, _ = F.lstm_forward(x, *p, lengths=lengths, keep_cache=False)
    h, _ = F.lstm_forward(fm_view(x), *p, lengths=lengths, keep_cache=False)
    np.testing.assert_array_equal(h, expected)
