"""ONNX export and import of bidirectional layers and of ``lengths`` (``sequence_lens``), issue 20.

The references are not bptt: onnxruntime runs the exported float32 graphs (its LSTM/GRU/RNN kernels
implement ``direction="bidirectional"`` and ``sequence_lens``) and must give bptt's
``model.forward(x, lengths=...)`` to 1e-5 (normwise relative, float32); onnxruntime 1.32 has no
float64 kernels for these operators ("LSTM operator does not support double yet"), so the float64
check (≤ 1e-10) runs the same graph, cast to double, in onnx's own reference evaluator
(``onnx.reference``), which ignores ``sequence_lens`` (it returned outputs 0.2 away with
lengths): without lengths there. Graphs written by hand in the layout ``torch.onnx`` uses (a
time-major bidirectional ``Y``, a lengths input of another name) are read back.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from bptt.io.onnx import export_onnx
from bptt.layers import GRU, LSTM, RNN, Dense, Flatten
from bptt.model import Sequential, import_onnx

F, T = 3, 7
LENGTHS = np.array([7, 1, 3, 5, 2, 7])


def assert_close(actual, expected, rtol=1e-5, atol=1e-6):
    """``‖a − e‖ ≤ rtol · ‖e‖ + atol · √n`` (as tests/io/test_onnx.py's)."""
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    diff = np.linalg.norm(actual.astype(np.float64) - expected.astype(np.float64))
    assert diff <= rtol * np.linalg.norm(expected.astype(np.float64)) + atol * np.sqrt(expected.size), diff


def network(cls, top_sequences, dtype=np.float32, **kw):
    layers = [cls(F, 4, bidirectional=True, return_sequences=True, seed=0, dtype=dtype, bias_initializer="glorot_uniform", **kw),
              cls(8, 3, bidirectional=True, return_sequences=top_sequences, seed=1, dtype=dtype,
                  bias_initializer="glorot_uniform", **kw),
              Dense(6, 2, activation="tanh", seed=2, dtype=dtype)]
    return Sequential(layers, loss="mse")


CASES = [(LSTM, {}), (GRU, {}), (GRU, {"reset_after": False}), (RNN, {}), (RNN, {"activation": "relu"}),
         (RNN, {"activation": "identity"})]
IDS = ["lstm", "gru", "gru_reset_before", "rnn_tanh", "rnn_relu", "rnn_identity"]


@pytest.mark.parametrize("top_sequences", [True, False])
@pytest.mark.parametrize("cls,kw", CASES, ids=IDS)
def test_bidirectional_stack_with_lengths_in_onnxruntime(tmp_path, cls, kw, top_sequences):
    model = network(cls, top_sequences, **kw)
    path = export_onnx(model, tmp_path / "bi.onnx", lengths=True)
    proto = onnx.load(path)
    onnx.checker.check_model(proto, full_check=True)
    assert [i.name for i in proto.graph.input] == ["x", "lengths"]
    lens = proto.graph.input[1].type.tensor_type
    assert lens.elem_type == TensorProto.INT32 and [d.dim_param for d in lens.shape.dim] == ["batch"]
    recurrent = [n for n in proto.graph.node if n.op_type in ("LSTM", "GRU", "RNN")]
    assert [helper.get_attribute_value(a) for n in recurrent for a in n.attribute if a.name == "direction"] == \
        [b"bidirectional"] * 2
    assert [n.input[4] for n in recurrent] == ["lengths", "lengths"]
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    for B, L in ((6, LENGTHS), (1, np.array([4])), (3, np.array([T, T, T]))):  # the batch dimension is free
        x = rng.normal(size=(B, T, F)).astype(np.float32)
        y = session.run(["y"], {"x": x, "lengths": L.astype(np.int32)})[0]
        assert_close(y, model.forward(x, lengths=L))
    x = rng.normal(size=(6, T, F)).astype(np.float32)
    with_lengths = session.run(["y"], {"x": x, "lengths": LENGTHS.astype(np.int32)})[0]
    assert not np.allclose(with_lengths, model.forward(x), atol=1e-3)  # the lengths matter

    back = import_onnx(path)  # the same network, taking lengths= as the graph does
    assert [getattr(layer, "bidirectional", None) for layer in back.layers] == [True, True, None]
    for a, b in zip(back.layers, model.layers):
        assert a.params.keys() == b.params.keys()
        for k in a.params:
            np.testing.assert_array_equal(a.params[k], b.params[k])
    assert back.layers[1].return_sequences is top_sequences
    np.testing.assert_array_equal(back.forward(x, lengths=LENGTHS), model.forward(x, lengths=LENGTHS))


@pytest.mark.parametrize("top_sequences", [True, False])
@pytest.mark.parametrize("cls,kw", CASES, ids=IDS)
def test_bidirectional_without_lengths_in_onnxruntime(tmp_path, cls, kw, top_sequences):
    model = network(cls, top_sequences, **kw)
    path = export_onnx(model, tmp_path / "bi.onnx")
    assert [i.name for i in onnx.load(path).graph.input] == ["x"]
    x = np.random.default_rng(2).normal(size=(5, T, F)).astype(np.float32)
    y = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(["y"], {"x": x})[0]
    assert_close(y, model.forward(x))


def _as_float64(path, out):
    """The graph with every float32 initializer, input and output made float64."""
    proto = onnx.load(path)
    g = proto.graph
    for i, t in enumerate(g.initializer):
        a = numpy_helper.to_array(t)
        if a.dtype == np.float32:
            g.initializer[i].CopyFrom(numpy_helper.from_array(a.astype(np.float64), t.name))
    for v in list(g.input) + list(g.output):
        if v.type.tensor_type.elem_type == TensorProto.FLOAT:
            v.type.tensor_type.elem_type = TensorProto.DOUBLE
    onnx.save(proto, out)
    return str(out)


@pytest.mark.parametrize("cls,kw", [c for c, i in zip(CASES, IDS) if i != "rnn_relu"],
                         ids=[i for i in IDS if i != "rnn_relu"])  # onnx.reference's RNN knows Tanh and Affine only
def test_float64_in_onnx_reference_evaluator(tmp_path, cls, kw):
    model = network(cls, False, dtype=np.float64, **kw)
    for layer in model.layers:  # values the float32 file holds exactly
        for a in layer.params.values():
            a[...] = a.astype(np.float32)
    path = _as_float64(export_onnx(model, tmp_path / "bi.onnx"), tmp_path / "bi64.onnx")
    x = np.random.default_rng(3).normal(size=(4, T, F))
    y = ReferenceEvaluator(path).run(["y"], {"x": x})[0]
    assert y.dtype == np.float64
    want = model.forward(x)
    assert np.max(np.abs(y - want)) <= 1e-10 * max(1.0, np.max(np.abs(want)))


def test_unidirectional_with_lengths_and_what_export_refuses(tmp_path):
    model = Sequential([GRU(F, 4, return_sequences=True, seed=0), LSTM(4, 2, seed=1), Dense(2, 1, seed=2)])
    path = export_onnx(model, tmp_path / "uni.onnx", lengths=True)
    x = np.random.default_rng(4).normal(size=(6, T, F)).astype(np.float32)
    y = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(
        ["y"], {"x": x, "lengths": LENGTHS.astype(np.int32)})[0]
    assert_close(y, model.forward(x, lengths=LENGTHS)[:, 0])
    np.testing.assert_array_equal(import_onnx(path).forward(x, lengths=LENGTHS), model.forward(x, lengths=LENGTHS))

    with pytest.raises(ValueError, match=r"export_onnx: lengths=True, but the network has no recurrent layer"):
        export_onnx(Sequential([Dense(F, 1)]), tmp_path / "d.onnx", lengths=True)
    with pytest.raises(ValueError, match=r"export_onnx: lengths=True, but the network has a Flatten before its first"):
        export_onnx(Sequential([Flatten(), Dense(T * F, 1)]), tmp_path / "f.onnx", lengths=True)
    with pytest.raises(ValueError, match=r"export_onnx: lengths must be True .* or False; got 'yes'"):
        export_onnx(model, tmp_path / "x.onnx", lengths="yes")


# ─────────────────────────────────────────────── graphs written by hand


def _lstm_arrays(rng, D, H, I):
    return {"W": rng.normal(size=(D, 4 * H, I)).astype(np.float32),
            "R": rng.normal(size=(D, 4 * H, H)).astype(np.float32) * 0.5,
            "B": rng.normal(size=(D, 8 * H)).astype(np.float32) * 0.1}


def _model(nodes, inits, inputs, out_shape):
    graph = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
                              [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


X_IN = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "time", F])


def test_time_major_bidirectional_stack_as_torch_onnx_writes_it(tmp_path):
    """Y → Transpose(0, 2, 1, 3) → Reshape(0, 0, -1) stays time-major into the next LSTM; the lengths
    input is called seq_lens; the last node's Y_h → Transpose(1, 0, 2) → Reshape(0, -1)."""
    rng = np.random.default_rng(5)
    H1, H2 = 3, 2
    a1, a2 = _lstm_arrays(rng, 2, H1, F), _lstm_arrays(rng, 2, H2, 2 * H1)
    inits = {**{k + "1": v for k, v in a1.items()}, **{k + "2": v for k, v in a2.items()},
             "s3": np.array([0, 0, -1]), "s2": np.array([0, -1])}
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0, 2]),
             helper.make_node("LSTM", ["t", "W1", "R1", "B1", "seq_lens"], ["Y1", ""], hidden_size=H1,
                              direction="bidirectional"),
             helper.make_node("Transpose", ["Y1"], ["Y1t"], perm=[0, 2, 1, 3]),
             helper.make_node("Reshape", ["Y1t", "s3"], ["Y1c"]),
             helper.make_node("LSTM", ["Y1c", "W2", "R2", "B2", "seq_lens"], ["", "Yh2"], hidden_size=H2,
                              direction="bidirectional"),
             helper.make_node("Transpose", ["Yh2"], ["Yh2t"], perm=[1, 0, 2]),
             helper.make_node("Reshape", ["Yh2t", "s2"], ["y"])]
    lens = helper.make_tensor_value_info("seq_lens", TensorProto.INT32, ["batch"])
    path = str(tmp_path / "torch_style.onnx")
    onnx.save(_model(nodes, inits, [X_IN, lens], ["batch", 2 * H2]), path)
    onnx.checker.check_model(onnx.load(path), full_check=True)
    model = import_onnx(path)
    assert [(type(x).__name__, x.bidirectional, x.return_sequences) for x in model.layers] == \
        [("LSTM", True, True), ("LSTM", True, False)]
    x = rng.normal(size=(6, T, F)).astype(np.float32)
    y = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(
        ["y"], {"x": x, "seq_lens": LENGTHS.astype(np.int32)})[0]
    assert_close(model.forward(x, lengths=LENGTHS), y)


def _one_lstm(tmp_path, lens_type=TensorProto.INT32, second_lens=True, first_lens=True, const_lens=False):
    rng = np.random.default_rng(6)
    a1, a2 = _lstm_arrays(rng, 1, 2, F), _lstm_arrays(rng, 1, 2, 2)
    inits = {**{k + "1": v for k, v in a1.items()}, **{k + "2": v for k, v in a2.items()},
             "ax1": np.array([1]), "ax0": np.array([0])}
    if const_lens:
        inits["L"] = np.array([1, 2], np.int32)
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0, 2]),
             helper.make_node("LSTM", ["t", "W1", "R1", "B1"] + (["L"] if first_lens else []), ["Y1", ""],
                              hidden_size=2, name="first"),
             helper.make_node("Squeeze", ["Y1", "ax1"], ["s1"]),
             helper.make_node("LSTM", ["s1", "W2", "R2", "B2"] + (["L"] if second_lens else []), ["", "Yh"],
                              hidden_size=2, name="second"),
             helper.make_node("Squeeze", ["Yh", "ax0"], ["y"])]
    inputs = [X_IN] + ([] if const_lens else [helper.make_tensor_value_info("L", lens_type, ["batch"])])
    path = str(tmp_path / "l.onnx")
    onnx.save(_model(nodes, inits, inputs, ["batch", 2]), path)
    return path


def test_import_lengths_input_rules(tmp_path):
    model = import_onnx(_one_lstm(tmp_path))
    assert [type(x).__name__ for x in model.layers] == ["LSTM", "LSTM"]
    with pytest.raises(ValueError, match=r"graph input 'L' is a recurrent node's sequence_lens, so it must be int32"):
        import_onnx(_one_lstm(tmp_path, lens_type=TensorProto.INT64))
    with pytest.raises(ValueError, match=r"unsupported node 'second' \(LSTM\): the lengths input 'L' must be the "
                                         r"sequence_lens of every recurrent node up to the first that returns no sequences"):
        import_onnx(_one_lstm(tmp_path, second_lens=False))
    with pytest.raises(ValueError, match=r"unsupported node 'first' \(LSTM\): the lengths input 'L' must be"):
        import_onnx(_one_lstm(tmp_path, first_lens=False))
    with pytest.raises(ValueError, match=r"unsupported node 'first' \(LSTM\): its sequence_lens 'L' must be the graph's "
                                         r"int32 \(batch,\) lengths input"):
        import_onnx(_one_lstm(tmp_path, const_lens=True))
