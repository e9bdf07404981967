"""bptt.trace: the gradient-flow view against the backward dict, finite differences and the worked example."""

import numpy as np
import pytest

from bptt import example
from bptt import functional as Fn
from bptt.layers import GRU, LSTM, RNN
from bptt.plots import plot_gradient_flow
from bptt.trace import GATE_NAMES, GradientFlow, format_table, gradient_flow, layer_flow

PNG = b"\x89PNG\r\n\x1a\n"
B, T, I, H = 2, 4, 3, 3

CASES = [
    ("lstm", {}),
    ("gru", {"reset_after": True}),
    ("gru", {"reset_after": False}),
    ("rnn", {"activation": "tanh"}),
]


def make_args(cell, seed=0, with_initial=True):
    rng = np.random.default_rng(seed)
    G = len(GATE_NAMES[cell])
    args = {
        "x": rng.normal(size=(B, T, I)),
        "W": rng.normal(size=(I, G * H)) * 0.6,
        "U": rng.normal(size=(H, G * H)) * 0.6,
        "b": rng.normal(size=G * H) * 0.1,
    }
    if cell == "gru":
        args["b_u"] = rng.normal(size=G * H) * 0.1
    if with_initial:
        args["h0"] = rng.normal(size=(B, H)) * 0.5
        if cell == "lstm":
            args["c0"] = rng.normal(size=(B, H)) * 0.5
    return args


def upstream(cell, seed=1):
    rng = np.random.default_rng(seed)
    dh = rng.normal(size=(B, T, H))
    dh_last = rng.normal(size=(B, H))
    dc_last = rng.normal(size=(B, H)) if cell == "lstm" else None
    return dh, dh_last, dc_last


def run(cell, options, backend=None):
    dh, dh_last, dc_last = upstream(cell)
    extra = {"backend": backend} if backend else {}
    return gradient_flow(cell, make_args(cell), dh, dh_last=dh_last, dc_last=dc_last, **options, **extra)


@pytest.mark.parametrize("backend", ["fast", "reference"])
@pytest.mark.parametrize("cell, options", CASES)
def test_trace_equals_backward_dict(cell, options, backend):
    args = make_args(cell)
    dh, dh_last, dc_last = upstream(cell)
    flow = run(cell, options, backend)
    h, cache = getattr(Fn, f"{cell}_forward")(**args, **options, backend=backend)
    finals = {"dh_last": dh_last} | ({"dc_last": dc_last} if cell == "lstm" else {})
    grads = getattr(Fn, f"{cell}_backward")(dh, cache, **finals)
    np.testing.assert_array_equal(flow.dz, grads["dz"])
    np.testing.assert_array_equal(flow.gates, cache.gates)
    np.testing.assert_array_equal(flow.h, h)
    if cell == "lstm":
        np.testing.assert_array_equal(flow.dc, grads["dc"])
        np.testing.assert_array_equal(flow.c, cache.c)
    else:
        assert flow.dc is None and flow.c is None and flow.dc_norms is None
    assert flow.gate_names == GATE_NAMES[cell]
    assert flow.dz.shape == (B, T, len(GATE_NAMES[cell]) * H) and flow.dh.shape == (B, T, H)
    # the last step's total gradient is the loss's own plus dh_last
    np.testing.assert_allclose(flow.dh[:, -1], dh[:, -1] + dh_last, rtol=1e-12)


@pytest.mark.parametrize("cell, options", CASES)
def test_norm_tables_are_the_norms_of_the_blocks(cell, options):
    flow = run(cell, options)
    G = len(flow.gate_names)
    assert flow.gate_norms.shape == (T, G) and flow.dh_norms.shape == (T,)
    for t in range(T):
        for k, g in enumerate(flow.gate_names):
            block = flow.dz[:, t, k * H : (k + 1) * H]
            assert flow.gate_norms[t, k] == pytest.approx(np.linalg.norm(block), rel=1e-12)
            np.testing.assert_array_equal(flow.gate_block(flow.dz, g)[:, t], block)
        assert flow.dh_norms[t] == pytest.approx(np.linalg.norm(flow.dh[:, t]), rel=1e-12)
        if cell == "lstm":
            assert flow.dc_norms[t] == pytest.approx(np.linalg.norm(flow.dc[:, t]), rel=1e-12)


def perturbed_loss(cell, options, args, t, p):
    """The linear loss Σ_s ⟨dh_s, h_s⟩ + ⟨dh_last, h_T⟩ (+ ⟨dc_last, c_T⟩) with ``p`` added to h_t.

    Steps 0 … t run first; the loss sees h_t + p at step t, and steps t+1 … T-1 start from h_t + p
    (and the unperturbed c_t). Its gradient with respect to p is the total dL/dh_t.
    """
    dh, dh_last, dc_last = upstream(cell)
    fwd = getattr(Fn, f"{cell}_forward")
    head = {**args, "x": args["x"][:, : t + 1]}
    h_head, cache = fwd(**head, **options)
    h_head = h_head.copy()
    h_head[:, t] += p
    loss = np.sum(dh[:, : t + 1] * h_head)
    c_t = cache.c[:, t] if cell == "lstm" else None
    if t == T - 1:
        h_T, c_T = h_head[:, -1], c_t
    else:
        tail = {**args, "x": args["x"][:, t + 1 :], "h0": h_head[:, t]}
        if cell == "lstm":
            tail["c0"] = c_t
        h_tail, tail_cache = fwd(**tail, **options)
        loss += np.sum(dh[:, t + 1 :] * h_tail)
        h_T, c_T = h_tail[:, -1], (tail_cache.c[:, -1] if cell == "lstm" else None)
    loss += np.sum(dh_last * h_T)
    if cell == "lstm":
        loss += np.sum(dc_last * c_T)
    return float(loss)


@pytest.mark.parametrize("cell, options", CASES)
def test_total_dh_equals_finite_differences(cell, options):
    args = make_args(cell)
    flow = run(cell, options)
    eps = 1e-6
    for t in range(T):
        num = np.empty((B, H))
        for idx in np.ndindex(B, H):
            p = np.zeros((B, H))
            p[idx] = eps
            num[idx] = (perturbed_loss(cell, options, args, t, p) - perturbed_loss(cell, options, args, t, -p)) / (2 * eps)
        np.testing.assert_allclose(flow.dh[:, t], num, rtol=1e-6, atol=1e-8, err_msg=f"{cell} {options} t={t}")


@pytest.mark.parametrize("cell, options", CASES)
def test_what_flows_back_from_step_0_is_dh0(cell, options):
    """The recursion that builds dh, applied once more through step 0, gives the backward dict's dh0."""
    from bptt.trace import _to_previous_state

    args = make_args(cell)
    flow = run(cell, options)
    _, cache = getattr(Fn, f"{cell}_forward")(**args, **options)
    back = _to_previous_state(cell, cache, args["U"], flow.gates[:, 0], flow.dz[:, 0], flow.dh[:, 0])
    np.testing.assert_allclose(back, flow.grads["dh0"], rtol=1e-10, atol=1e-12)


def test_worked_example_table():
    ex = example.load()
    result = example.run(ex)
    args = {k: np.array(ex[k], float) for k in ("x", "W", "U", "b")}
    flow = gradient_flow("lstm", args, dh=result["h"] - result["y"])
    text = format_table(flow)
    # the published forward values (to their printed precision; the last digit of c and h rounds
    # differently in the publication, see bptt.example)
    for step in ex["forward"]:
        for key in ("i", "f", "g", "o"):
            assert f"{step[key]:.5f}" in text
    assert "0.53631" in text and "0.78573" in text and "1.51763" in text
    # the deltas of the worked example's report (checked there by central differences)
    np.testing.assert_allclose(flow.dh, result["dh_total"], rtol=1e-12)
    for t in range(2):
        for value in list(result["grads"]["dz"][0, t]) + [result["grads"]["dc"][0, t, 0], result["dh_total"][0, t, 0]]:
            assert f"{value:9.5f}" in text
    assert "-0.47802" in text and "-0.07111" in text and "-0.05538" in text
    header = text.splitlines()[3].split()
    assert header == ["t", "i", "f", "g", "o", "c", "h"]


def test_table_units_and_norms_layout():
    flow = run("gru", {"reset_after": True})
    text = format_table(flow, batch=1)
    assert "r[0]" in text and "n[2]" in text and "dz_z[1]" in text and "dh[2]" in text
    assert f"{flow.dz[1, 0, 0]:9.5f}" in text
    big = gradient_flow("lstm", {"x": np.ones((2, 3, 1)), "W": np.full((1, 20), 0.1), "U": np.full((5, 20), 0.1),
                                 "b": np.zeros(20)}, dh_last=np.ones((2, 5)))
    text = format_table(big)
    assert "H > 4" in text and "|dz_i|" in text and "i[0]" not in text
    assert f"{big.dh_norms[0]:9.5f}" in text
    with pytest.raises(ValueError, match=r"format_table: batch must be an integer index in \[0, 2\) \(the batch size\); got 2"):
        format_table(big, batch=2)


@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("layer_type", [LSTM, GRU, RNN])
def test_layer_flow_matches_layer_backward(layer_type, return_sequences):
    layer = layer_type(I, H, return_sequences=return_sequences, dtype=np.float64, seed=3)
    x = np.random.default_rng(4).normal(size=(B, T, I))
    y = layer.forward(x)
    dy = np.random.default_rng(5).normal(size=y.shape)
    flow = layer_flow(layer, x, dy)  # before layer.backward: layer_flow leaves the layer alone
    dx = layer.backward(dy)
    assert isinstance(flow, GradientFlow) and flow.cell == layer_type.__name__.lower()
    np.testing.assert_allclose(flow.grads["dx"], dx, rtol=1e-12)
    np.testing.assert_allclose(flow.grads["dW"], layer.grads["W"], rtol=1e-12)
    np.testing.assert_allclose(flow.h[:, -1], y[:, -1] if return_sequences else y, rtol=1e-12)
    last = dy[:, -1] if return_sequences else dy
    np.testing.assert_allclose(flow.dh[:, -1], last, rtol=1e-12)


def test_bad_arguments():
    args = make_args("lstm")
    with pytest.raises(ValueError, match=r"gradient_flow: cell must be one of 'lstm', 'gru', 'rnn'; got 'cnn'"):
        gradient_flow("cnn", args)
    with pytest.raises(ValueError, match=r"gradient_flow: forward_args must have the keys .*missing \['b_u'\]"):
        gradient_flow("gru", make_args("rnn"))
    with pytest.raises(ValueError, match=r"options for cell='lstm' must be among \('backend',\); got \['reset_after'\]"):
        gradient_flow("lstm", args, reset_after=False)
    with pytest.raises(ValueError, match="dc_last is only for cell='lstm'"):
        gradient_flow("rnn", make_args("rnn"), dc_last=np.zeros((B, H)))
    with pytest.raises(ValueError, match=r"lstm_backward: dh"):
        gradient_flow("lstm", args, dh=np.zeros((B, T, H + 1)))
    with pytest.raises(ValueError, match="layer_flow: layer must be a bptt LSTM, GRU or RNN layer; got str"):
        layer_flow("lstm", args["x"], np.zeros((B, H)))


@pytest.mark.parametrize("cell, options", [("lstm", {}), ("rnn", {})])
def test_plot_gradient_flow_writes_png(tmp_path, cell, options):
    flow = run(cell, options)
    path = plot_gradient_flow(flow, tmp_path / "flow.png")
    with open(path, "rb") as f:
        assert f.read(8) == PNG
    with pytest.raises(ValueError, match="plot_gradient_flow: path must name a .png file"):
        plot_gradient_flow(flow, tmp_path / "flow.pdf")
    with pytest.raises(ValueError, match="plot_gradient_flow: flow must be a bptt.trace.GradientFlow"):
        plot_gradient_flow({"dz": flow.dz}, tmp_path / "x.png")


def test_model_flow_matches_the_network_backward():
    """model_flow traces the first recurrent layer with the gradient the network's loss sends it:
    its parameter gradients equal those of a full backward pass through the model."""
    from bptt.model import Sequential
    from bptt.trace import model_flow

    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 6, 3))
    y = rng.integers(0, 2, 12).astype(np.float64)
    model = Sequential.from_tmva("LSTM|5|3|6|0|1,RESHAPE|FLAT,DENSE|8|TANH,LINEAR", "6|3", seed=2, dtype=np.float64)
    flow = model_flow(model, X, y)
    out = model.forward(X, training=True)
    _, dout = model.loss.value_and_grad(out, y.reshape(out.shape))
    model.backward(dout)
    lstm = model.layers[0]
    for k in ("W", "U", "b"):
        np.testing.assert_allclose(flow.grads["d" + k], lstm.grads[k], rtol=1e-12, atol=1e-15)
    assert flow.gate_norms.shape == (6, 4) and flow.dc_norms.shape == (6,)
    with pytest.raises(ValueError, match=r"model_flow: the model has no recurrent layer to trace"):
        model_flow(Sequential.from_tmva("DENSE|4|TANH,LINEAR", "1|3"), X[:, 0], y)
