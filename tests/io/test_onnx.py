"""ONNX export and import: onnxruntime agrees with decision_function; import_onnx round-trips."""

from __future__ import annotations

import doctest
import os
import subprocess
import sys

import numpy as np
import pytest

# onnx and onnxruntime are in the test extra (pyproject.toml): imported, so a missing install fails
# instead of skipping this file
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from bptt.data.arrays import Standardizer  # noqa: E402
from bptt.io import onnx as bptt_onnx  # noqa: E402
from bptt.io.onnx import export_onnx  # noqa: E402
from bptt.model import import_onnx  # noqa: E402
from bptt.layers import GRU, LSTM, RNN, Dense, Flatten, Reshape  # noqa: E402
from bptt.layers.dropout import Dropout  # noqa: E402
from bptt.model import Sequential  # noqa: E402

F = 3  # input features in the small networks


def fitted_standardizer(F, seed=0):
    """A standardizer fitted on shifted, scaled data, so that it changes the predictions."""
    rng = np.random.default_rng(seed)
    return Standardizer().fit(rng.normal(loc=rng.normal(size=F) * 3, scale=rng.uniform(0.5, 4, F), size=(50, 6, F)))


def run_ort(path, x):
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(["y"], {"x": x})[0]


#: The absolute floor per output value of :func:`assert_close`: the networks' values are O(1) (states
#: bounded by 1, weights of unit scale), so float32 rounding leaves ~1e-7 absolute in every output
#: whatever its size, and an output that is small (norm 0.02 of one network here) shows a relative
#: error of several 1e-6 with no error in the graph. 1e-6 is about 8 float32 ulps of 1.
ATOL = 1e-6


def assert_close(actual, expected, rtol=1e-5, atol=ATOL):
    """``‖a − e‖ ≤ rtol · ‖e‖ + atol · √n`` (float32, n values, same shape): normwise relative error
    below ``rtol``, with an absolute floor of ``atol`` per value for outputs of small norm."""
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    expected = expected.astype(np.float64)
    diff, norm = np.linalg.norm(actual.astype(np.float64) - expected), np.linalg.norm(expected)
    bound = rtol * norm + atol * np.sqrt(expected.size)
    assert diff <= bound, f"‖a − e‖ {diff:.3g} > {bound:.3g} (normwise relative error {diff / max(norm, 1e-300):.3g}, ‖e‖ {norm:.3g})"


def check_export(model, path, shapes, n_features=F):
    """Export, run the checker (with shape inference), compare onnxruntime with decision_function."""
    assert export_onnx(model, path) == str(path)
    proto = onnx.load(path)
    onnx.checker.check_model(proto, full_check=True)
    (inp,) = proto.graph.input
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert inp.name == "x" and dims == ["batch", "time", n_features]
    assert [o.name for o in proto.graph.output] == ["y"]
    rng = np.random.default_rng(123)
    for B, T in shapes:
        x = rng.normal(scale=2.0, size=(B, T, n_features)).astype(np.float32)
        y = run_ort(path, x)
        assert y.dtype == np.float32
        model.reset_states()  # stateful layers: the graph starts every batch from zero states
        assert_close(y, model.decision_function(x))
    return proto


# Shapes never used before export (models are built with no data at all), several batches and lengths.
SEQ_SHAPES = [(1, 1), (5, 7), (2, 13), (9, 4)]


def small_models():
    """(id, model) for every recurrent kind and option, each with a fitted standardizer."""
    cases = []
    for rs in (True, False):
        cases.append((f"lstm-rs{int(rs)}", [LSTM(F, 4, return_sequences=rs, seed=1)]))
        for ra in (True, False):
            gru = GRU(F, 4, reset_after=ra, return_sequences=rs, seed=2)
            cases.append((f"gru-reset_after{int(ra)}-rs{int(rs)}", [gru]))
        for act in ("tanh", "relu", "sigmoid", "identity"):
            cases.append((f"rnn-{act}-rs{int(rs)}", [RNN(F, 4, activation=act, return_sequences=rs, seed=3)]))
    cases += [
        ("stacked-lstm-gru-rnn", [LSTM(F, 5, return_sequences=True, seed=4),
                                  GRU(5, 4, return_sequences=True, reset_after=False, seed=5),
                                  RNN(4, 3, activation="relu", seed=6), Dense(3, 2, activation="softmax", seed=7)]),
        ("seq-dense-per-step", [GRU(F, 4, return_sequences=True, seed=8), Dropout(0.3, seed=0),
                                Dense(4, 3, activation="tanh", seed=9), Dense(3, 2, activation="sigmoid", seed=10)]),
        ("stateful", [LSTM(F, 4, stateful=True, seed=11), Dense(4, 1, activation="relu", seed=12)]),
    ]
    models = []
    for name, layers in cases:
        loss = "softmax_ce" if name.startswith("stacked") else "mse"
        model = Sequential(layers, loss=loss)
        model.standardizer = fitted_standardizer(F)
        # non-zero biases, so that bias placement (W-half versus R-half of ONNX's B) is tested
        rng = np.random.default_rng(len(models))
        for layer in model.layers:
            for k in ("b", "b_u"):
                if k in layer.params:
                    layer.params[k][...] = rng.normal(scale=0.5, size=layer.params[k].shape)
        models.append(pytest.param(model, id=name))
    return models


@pytest.mark.parametrize("model", small_models())
def test_recurrent_layers_match_onnxruntime(model, tmp_path):
    check_export(model, tmp_path / "m.onnx", SEQ_SHAPES)


TMVA = [
    "LSTM|10|30|10|0|1,RESHAPE|FLAT,DENSE|64|TANH,LINEAR",
    "GRU|10|30|10|0|1,RESHAPE|FLAT,DENSE|64|TANH,LINEAR",
    "RNN|10|30|10|0|1,RESHAPE|FLAT,DENSE|64|TANH,LINEAR",
]


@pytest.mark.parametrize("layout", TMVA, ids=["lstm", "gru", "rnn"])
def test_tmva_tutorial_network(layout, tmp_path):
    """The TMVA tutorial network: Flatten fixes T = 10, so only the batch size varies."""
    model = Sequential.from_tmva(layout, "10|30", seed=0)
    model.standardizer = fitted_standardizer(30, seed=1)
    proto = check_export(model, tmp_path / "tmva.onnx", [(1, 10), (17, 10), (64, 10)], n_features=30)
    assert [d.dim_param for d in proto.graph.output[0].type.tensor_type.shape.dim] == ["batch"]  # (B,) logits
    back = import_onnx(tmp_path / "tmva.onnx")
    x = np.random.default_rng(5).normal(size=(6, 10, 30)).astype(np.float32)
    np.testing.assert_array_equal(back.decision_function(x), model.decision_function(x))


@pytest.mark.parametrize("model", small_models())
def test_import_round_trip_is_exact(model, tmp_path):
    path = tmp_path / "m.onnx"
    export_onnx(model, path)
    back = import_onnx(path)
    kept = [layer for layer in model.layers if not isinstance(layer, Dropout)]
    assert [type(a).__name__ for a in back.layers] == [type(a).__name__ for a in kept]
    assert back.loss.name == model.loss.name
    for a, b in zip(back.layers, kept):
        for key in ("return_sequences", "reset_after", "activation", "hidden_size", "input_size"):
            assert getattr(a, key, None) == getattr(b, key, None), key
    np.testing.assert_array_equal(back.standardizer.mean_, model.standardizer.mean_)
    x = np.random.default_rng(9).normal(size=(4, 6, F)).astype(np.float32)
    model.reset_states()
    np.testing.assert_array_equal(back.decision_function(x), model.decision_function(x))
    # and the re-export of the imported model holds the same graph weights
    export_onnx(back, tmp_path / "again.onnx")
    first, second = onnx.load(path), onnx.load(tmp_path / "again.onnx")
    for t1, t2 in zip(first.graph.initializer, second.graph.initializer):
        np.testing.assert_array_equal(numpy_helper.to_array(t1), numpy_helper.to_array(t2))


def test_gate_order_and_bias_layout(tmp_path):
    """ONNX's W/R/B blocks are the bptt blocks reordered: LSTM [i,f,g,o] → iofc, GRU [r,z,n] → zrh."""
    H = 2
    lstm = LSTM(F, H, seed=0)
    lstm.params["b"][...] = np.repeat(np.arange(4.0), H)  # gate k has bias k
    gru = GRU(H, H, reset_after=False, return_sequences=False, seed=0)
    gru.params["b"][...] = np.repeat(np.arange(3.0), H)
    gru.params["b_u"][...] = np.repeat(10 + np.arange(3.0), H)
    lstm.return_sequences = True
    export_onnx(Sequential([lstm, gru], loss="mse"), tmp_path / "g.onnx")
    proto = onnx.load(tmp_path / "g.onnx")
    init = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    nodes = {n.op_type: n for n in proto.graph.node}
    B_lstm = init[nodes["LSTM"].input[3]][0]
    np.testing.assert_array_equal(B_lstm, np.r_[np.repeat([0.0, 3, 1, 2], H), np.zeros(4 * H)])
    np.testing.assert_array_equal(init[nodes["LSTM"].input[1]][0], lstm.params["W"][:, np.r_[0:2, 6:8, 2:4, 4:6]].T)
    B_gru = init[nodes["GRU"].input[3]][0]
    np.testing.assert_array_equal(B_gru, np.r_[np.repeat([1.0, 0, 2], H), np.repeat([11.0, 10, 12], H)])
    assert helper.get_attribute_value(next(a for a in nodes["GRU"].attribute if a.name == "linear_before_reset")) == 0
    assert all(helper.get_attribute_value(a) == 0 for n in nodes.values() for a in n.attribute if a.name == "layout")


def test_float64_model_and_stateful_documented_behaviour(tmp_path):
    """A float64 model exports float32; a stateful layer is exported with zero initial state."""
    layers = [LSTM(F, 4, stateful=True, seed=0, dtype=np.float64), Dense(4, 2, seed=1, dtype=np.float64)]
    model = Sequential(layers, loss="mse")
    x = np.random.default_rng(0).normal(size=(3, 5, F))
    model.decision_function(x)  # now the layer carries a state ...
    path = export_onnx(model, tmp_path / "s.onnx")
    y = run_ort(path, x.astype(np.float32))
    carried = model.decision_function(x, reset_states=False)
    model.reset_states()
    fresh = model.decision_function(x)
    assert_close(y, fresh)  # ... which the graph does not use
    assert not np.allclose(carried, fresh)


def test_reshape_and_model_without_standardizer(tmp_path):
    layers = [GRU(F, 4, return_sequences=True, seed=0), Reshape((-1, 2)), Flatten(), Dense(24, 1, seed=1)]
    model = Sequential(layers, loss="bce")
    proto = check_export(model, tmp_path / "r.onnx", [(1, 6), (8, 6)])
    assert "Sub" not in [n.op_type for n in proto.graph.node]
    back = import_onnx(tmp_path / "r.onnx")
    assert back.standardizer is None and back.layers[1].shape == (-1, 2)
    x = np.random.default_rng(1).normal(size=(5, 6, F)).astype(np.float32)
    np.testing.assert_array_equal(back.decision_function(x), model.decision_function(x))


def test_export_writes_atomically_and_validates(tmp_path):
    model = Sequential([RNN(F, 2, seed=0)], loss="mse")
    target = tmp_path / "keep.onnx"
    target.write_bytes(b"old")
    with pytest.raises(ValueError, match=r"export_onnx: opset must be an integer >= 14.*got 11"):
        export_onnx(model, target, opset=11)
    with pytest.raises(ValueError, match=r"export_onnx: model must be a bptt.model.Sequential; got LSTM"):
        export_onnx(LSTM(F, 2), target)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        export_onnx(model, tmp_path / "missing" / "m.onnx")
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["keep.onnx"]
    export_onnx(model, target, opset=14)
    assert onnx.load(target).opset_import[0].version == 14 and os.listdir(tmp_path) == ["keep.onnx"]


def test_import_bad_paths(tmp_path):
    with pytest.raises(ValueError, match=r"import_onnx: .*nope.onnx' does not exist"):
        import_onnx(tmp_path / "nope.onnx")
    with pytest.raises(ValueError, match="does not exist or is not a file"):
        import_onnx(tmp_path)
    with pytest.raises(ValueError, match="import_onnx: path must be a str or os.PathLike; got int"):
        import_onnx(3)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\xff\x00 this is not protobuf \x13\x37" * 5)
    with pytest.raises(ValueError, match="import_onnx: .*junk.onnx"):
        import_onnx(junk)


def _graph(nodes, inits, out_shape=("batch", 2)):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "time", F])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape))],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_import_rejects_unsupported_nodes(tmp_path):
    path = str(tmp_path / "u.onnx")
    W = np.ones((F, 2), np.float32)
    # an operator with no bptt layer
    onnx.save(_graph([helper.make_node("Flatten", ["x"], ["f"], axis=1),
                      helper.make_node("Abs", ["f"], ["y"], name="my_abs")], {}, ("batch", 9)), path)
    with pytest.raises(ValueError, match=r"import_onnx: .*unsupported node 'my_abs' \(Abs\)"):
        import_onnx(path)
    # a bidirectional LSTM whose two directions' final states are squeezed instead of put side by side
    # (bidirectional graphs that bptt reads: tests/io/test_onnx_bidirectional.py)
    G, H = 4, 2
    inits = {"W": np.zeros((2, G * H, F), np.float32), "R": np.zeros((2, G * H, H), np.float32)}
    onnx.save(_graph([helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0, 2]),
                      helper.make_node("LSTM", ["t", "W", "R"], ["Y", "Yh"], name="bi", hidden_size=H,
                                       direction="bidirectional"),
                      helper.make_node("Squeeze", ["Yh"], ["y"], name="sq")], inits), path)
    with pytest.raises(ValueError, match=r"unsupported node 'sq' \(Squeeze\): a bidirectional node's output must go to "
                                         r"Transpose"):
        import_onnx(path)
    # a reverse-only LSTM
    inits = {"W": np.zeros((1, G * H, F), np.float32), "R": np.zeros((1, G * H, H), np.float32)}
    onnx.save(_graph([helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0, 2]),
                      helper.make_node("LSTM", ["t", "W", "R"], ["Y", "Yh"], name="rev", hidden_size=H,
                                       direction="reverse"),
                      helper.make_node("Squeeze", ["Yh"], ["y"], name="sq")], inits), path)
    with pytest.raises(ValueError, match=r"unsupported node 'rev' \(LSTM\): attribute direction='reverse' is not supported"):
        import_onnx(path)
    # a recurrent node fed batch-major data (no Transpose)
    inits = {"W": np.zeros((1, G * H, F), np.float32), "R": np.zeros((1, G * H, H), np.float32), "ax": np.array([0])}
    onnx.save(_graph([helper.make_node("LSTM", ["x", "W", "R"], ["Y", "Yh"], name="lstm", hidden_size=H),
                      helper.make_node("Squeeze", ["Yh", "ax"], ["y"], name="sq")], inits), path)
    with pytest.raises(ValueError, match=r"unsupported node 'lstm' \(LSTM\): its input must be time-major"):
        import_onnx(path)
    # weights that are a graph input instead of a constant
    graph = _graph([helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")], {}, ("batch", "time", 2))
    graph.graph.input.append(helper.make_tensor_value_info("W", TensorProto.FLOAT, [F, 2]))
    onnx.save(graph, path)
    with pytest.raises(ValueError, match="one input and one output"):
        import_onnx(path)
    # an activation with no dense layer before it
    onnx.save(_graph([helper.make_node("Tanh", ["x"], ["y"], name="th")], {}, ("batch", "time", F)), path)
    with pytest.raises(ValueError, match=r"unsupported node 'th' \(Tanh\): Tanh is supported only as the activation"):
        import_onnx(path)
    # a branching graph
    onnx.save(_graph([helper.make_node("MatMul", ["x", "W"], ["a"], name="m1"),
                      helper.make_node("MatMul", ["x", "W"], ["b"], name="m2"),
                      helper.make_node("Add", ["a", "b"], ["y"], name="add")], {"W": W}, ("batch", "time", 2)), path)
    with pytest.raises(ValueError, match="one chain of nodes"):
        import_onnx(path)


def test_import_gemm_and_matmul_without_bias(tmp_path):
    """Hand-written graphs in the accepted family: float32 Sub/Div, Gemm (transB=1), MatMul without Add."""
    path = str(tmp_path / "gemm.onnx")
    rng = np.random.default_rng(0)
    W1, W2, c = (rng.normal(size=s).astype(np.float32) for s in ((F, 4), (2, 4), (2,)))
    mean, std = np.float32([1, -2, 3]), np.float32([2, 0.5, 4])
    onnx.save(_graph([helper.make_node("Sub", ["x", "mean"], ["xc"]),
                      helper.make_node("Div", ["xc", "std"], ["xs"]),
                      helper.make_node("MatMul", ["xs", "W1"], ["h"]),
                      helper.make_node("Relu", ["h"], ["r"]),
                      helper.make_node("Flatten", ["r"], ["f"], axis=1),
                      helper.make_node("Gemm", ["f", "W2", "c"], ["y"], transB=1)],
                     {"W1": W1, "W2": np.tile(W2, (1, 5)), "c": c, "mean": mean, "std": std}), path)
    model = import_onnx(path)
    assert [type(a).__name__ for a in model.layers] == ["Dense", "Flatten", "Dense"] and model.loss.name == "mse"
    np.testing.assert_array_equal(model.standardizer.std_, std)
    x = rng.normal(size=(3, 5, F)).astype(np.float32)
    assert_close(model.decision_function(x), run_ort(path, x))


def test_no_onnx_import_at_package_import():
    code = "import sys, bptt, bptt.model, bptt.io, bptt.io.onnx; print('onnx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_module_doctests():
    result = doctest.testmod(bptt_onnx)
    assert result.attempted >= 10 and result.failed == 0
