"""ONNX exchange: a :class:`bptt.model.Sequential` to and from an ONNX graph.

:func:`export_onnx` writes the whole network — the fitted standardizer included — as one ONNX graph
built from standard operators, so any ONNX runtime computes ``model.decision_function(x)``:

============================  ==============================================================
bptt                          ONNX (opset 17, float32)
============================  ==============================================================
``model.standardizer``        ``Cast(double) → Sub(mean) → Div(std) → Cast(float)``
VarTransform N, D (TMVA)      ``Cast(double) → Reshape(B, T·F) → MatMul(A) → Add(c) → Reshape → Cast``;
                              G has no ONNX form: refused (:func:`_export_var_transform`)
LSTM / GRU / RNN              ``Transpose(1,0,2) → LSTM|GRU|RNN (layout=0) → Squeeze → …``
``return_sequences=True``     ``Y (T, 1, B, H) → Squeeze(axis 1) → Transpose(1,0,2)``
``return_sequences=False``    ``Y_h (1, B, H) → Squeeze(axis 0)``
``bidirectional=True``        one node, ``direction="bidirectional"``; ``Y (T, 2, B, H) →
                              Transpose(2,0,1,3) → Reshape(0,0,-1)``, or ``Y_h (2, B, H) →
                              Transpose(1,0,2) → Reshape(0,-1)``
``lengths=`` (``lengths=True``) graph input ``"lengths"`` (int32, ``(batch,)``) → the
                              recurrent nodes' ``sequence_lens``
Dense                         ``MatMul(W) → Add(b) [→ Tanh|Relu|Sigmoid|Softmax(axis=-1)]``
Flatten / Reshape             ``Flatten(axis=1)`` / ``Reshape([0, *shape])``
Dropout                       nothing (the identity at inference)
binary output ``(B, 1)``      ``Squeeze(axis 1)`` → ``(B,)`` (as ``decision_function`` for ``bce``)
============================  ==============================================================

The input is ``"x"`` of shape ``("batch", "time", F)`` (both leading dimensions symbolic; after a
Flatten the sequence length is in practice fixed by the following Dense layer), the output ``"y"``;
with ``lengths=True`` also ``"lengths"``, int32 ``("batch",)``, each sequence's real steps (bptt's
``lengths=``, ONNX's ``sequence_lens``: outputs 0 past them, the last output at the last real step).

How parameters map onto ONNX's layout (gate orders, biases, the two directions of a bidirectional
layer stacked on the first axis) is in :mod:`bptt.io.onnx_recurrent`.

onnxruntime (≤ 1.31 at least) implements the recurrent operators only for ``layout=0``
(time-major), hence the Transpose nodes; and it rejects the newest ONNX IR versions, so the model
is stamped with the lowest IR version that the chosen opset needs.

Stateful layers are exported with their *zero* initial state: the ONNX graph computes what the
model computes after :meth:`~bptt.model.Sequential.reset_states`, for every batch independently;
the carried state of a stateful layer is not part of the graph.

:func:`read_onnx` (and :func:`bptt.model.import_onnx`, which builds the network from what it
reads) takes graphs of this shape back (also ``Gemm`` for dense layers, ``MatMul``
without bias, float32 standardisation constants, ``Identity`` nodes, a bidirectional node's ``Y``
made time-major by ``Transpose(0,2,1,3) → Reshape(0,0,-1)`` as ``torch.onnx`` writes it, and an
int32 ``(batch,)`` graph input given to recurrent nodes as ``sequence_lens``) and raises
``ValueError`` naming the first node it cannot translate.

Example::

    >>> import os, tempfile
    >>> import numpy as np
    >>> from bptt.model import Sequential
    >>> from bptt.io.onnx import export_onnx
    >>> from bptt.model import import_onnx
    >>> model = Sequential.from_tmva("LSTM|4|3|5|0|1,RESHAPE|FLAT,DENSE|8|TANH,LINEAR", "5|3", seed=0)
    >>> path = export_onnx(model, os.path.join(tempfile.mkdtemp(), "model.onnx"))
    >>> import onnxruntime as ort
    >>> x = np.random.default_rng(0).normal(size=(7, 5, 3)).astype(np.float32)
    >>> y = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    >>> y.shape, bool(np.allclose(y, model.decision_function(x), rtol=1e-5, atol=1e-6))
    ((7,), True)
    >>> back = import_onnx(path)
    >>> [type(layer).__name__ for layer in back.layers]
    ['LSTM', 'Flatten', 'Dense', 'Dense']
    >>> bool(np.array_equal(back.decision_function(x), model.decision_function(x)))
    True
"""

from __future__ import annotations

import os

import numpy as np

from .onnx_recurrent import export_recurrent, follow_outputs, import_recurrent

__all__ = ["export_onnx", "read_onnx"]

_DENSE_ACTIVATIONS = {"tanh": "Tanh", "relu": "Relu", "sigmoid": "Sigmoid", "softmax": "Softmax"}
_LOSS_KEY = "bptt.loss"


def _onnx_modules(fn: str):
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(f"{fn}: needs the 'onnx' package; install it with  pip install onnx") from None
    return onnx, helper, numpy_helper


# ───────────────────────────────────────────────────────────────────────────── export


class _GraphBuilder:
    """Collects nodes and float32 initializers with unique names along one chain of tensors."""

    def __init__(self, helper, numpy_helper):
        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.initializers = [], []
        self._count = 0

    def name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, stem: str, value, dtype=np.float32) -> str:
        name = self.name(stem)
        self.initializers.append(self.numpy_helper.from_array(np.ascontiguousarray(value, dtype=dtype), name))
        return name

    def node(self, op: str, inputs, stem: str | None = None, n_outputs: int = 1, **attrs) -> list[str]:
        outputs = [self.name(stem or op.lower()) for _ in range(n_outputs)]
        self.nodes.append(self.helper.make_node(op, list(inputs), outputs, name=self.name(op), **attrs))
        return outputs


def _export_var_transform(g, t, x: str, TensorProto, fn: str) -> str:
    """TMVA's VarTransform as ``Cast(double) → Reshape(batch, T·F) → MatMul(A) → Add(c) →
    Reshape(batch, T, F) → Cast(float)``: a chain of N and D steps is the affine map
    ``x A + c`` on the flattened event (:meth:`bptt.transforms.VarTransform.affine`). G (TMVA's
    Gaussianisation, a per-variable interpolated CDF) has no standard-operator form: refused."""
    affine = t.affine() if t.fitted else None
    if not t.fitted:
        raise ValueError(f"{fn}: the model's VarTransform={t.spec} is not fitted; train the model first")
    if affine is None:
        raise ValueError(
            f"{fn}: VarTransform={t.spec}: G (Gaussianisation) has no ONNX form in bptt; export a model trained "
            f"with N and/or D only, or apply the transformation before the ONNX model"
        )
    A, c = affine
    (x,) = g.node("Cast", [x], "x_double", to=TensorProto.DOUBLE)
    if len(t.shape_) == 2:
        (x,) = g.node("Reshape", [x, g.const("flat_shape", [0, -1], np.int64)], "flat_events")
    (x,) = g.node("MatMul", [x, g.const("var_transform_A", A, np.float64)], "var_transform_matmul")
    (x,) = g.node("Add", [x, g.const("var_transform_c", c, np.float64)], "var_transformed")
    if len(t.shape_) == 2:
        (x,) = g.node("Reshape", [x, g.const("event_shape", [0, *t.shape_], np.int64)], "events")
    (x,) = g.node("Cast", [x], "x_float", to=TensorProto.FLOAT)
    return x


def export_onnx(model, path, *, opset: int = 17, lengths: bool = False) -> str:
    """Write ``model`` (a :class:`bptt.model.Sequential`) as an ONNX file; return ``path``.

    The graph computes ``model.decision_function(x)`` for ``x`` of shape ``(batch, time, F)``
    (float32; input ``"x"``, output ``"y"``), standardisation included; see the module docstring
    for the node-by-node mapping. Stateful layers are exported with zero initial states. The file
    is written atomically (:func:`bptt._files.atomic_write`) after ``onnx.checker.check_model``
    has accepted the graph.

    Args:
        model: the network. Its parameters are written as float32 whatever the model's dtype.
        path: the ``.onnx`` file to create or replace; its directory must exist.
        opset: the ONNX opset of the default domain, at least 14 (Squeeze with axes as an input,
            LSTM/GRU/RNN with ``layout``). Default 17.
        lengths: True adds the graph input ``"lengths"`` (int32, shape ``(batch,)``, ``1 <=
            lengths[b] <= time``) given as ``sequence_lens`` to the recurrent nodes that
            :meth:`~bptt.model.Sequential.forward` gives ``lengths=`` to (each one up to the first
            that returns no sequences): the graph computes the network with ``lengths=``.

    Raises:
        ValueError: ``model`` is not a Sequential, ``opset`` is below 14, a layer has no ONNX
            translation, or ``lengths=True`` for a network that cannot take lengths (no recurrent
            layer, or a Flatten/Reshape before the first). FileNotFoundError: the directory of ``path`` does not exist (an existing
            file at ``path`` is then left untouched).

    Example::

        >>> import os, tempfile, onnx
        >>> from bptt.model import Sequential
        >>> model = Sequential.from_tmva("GRU|4|3|5|0|0,DENSE|2|SIGMOID", "5|3", seed=0)
        >>> path = export_onnx(model, os.path.join(tempfile.mkdtemp(), "gru.onnx"))
        >>> [node.op_type for node in onnx.load(path).graph.node]
        ['Transpose', 'GRU', 'Squeeze', 'MatMul', 'Add', 'Sigmoid']
    """
    fn = "export_onnx"
    from ..layers import GRU, LSTM, RNN, Dense, Flatten, Reshape
    from ..layers.dropout import Dropout

    if not all(hasattr(model, a) for a in ("layers", "loss", "standardizer", "decision_function")):
        raise ValueError(f"{fn}: model must be a bptt.model.Sequential; got {type(model).__name__}")
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or opset < 14:
        raise ValueError(f"{fn}: opset must be an integer >= 14 (recurrent operators with 'layout'); got {opset!r}")
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"{fn}: path must be a str or os.PathLike; got {type(path).__name__}")
    if not isinstance(lengths, (bool, np.bool_)):
        raise ValueError(f"{fn}: lengths must be True (a graph input 'lengths' for the sequences' real steps) or "
                         f"False; got {lengths!r}")
    if lengths:
        first = next((layer for layer in model.layers if isinstance(layer, (LSTM, GRU, RNN, Flatten, Reshape))), None)
        if not isinstance(first, (LSTM, GRU, RNN)):
            why = "has no recurrent layer" if first is None else f"has a {type(first).__name__} before its first recurrent layer"
            raise ValueError(f"{fn}: lengths=True, but the network {why}, so it cannot take lengths; pass lengths=False")
    onnx, helper, numpy_helper = _onnx_modules(fn)
    from onnx import TensorProto

    g = _GraphBuilder(helper, numpy_helper)
    n_features = next((layer.input_size for layer in model.layers if isinstance(layer, (LSTM, GRU, RNN))), None)
    std = model.standardizer
    if std is not None and getattr(std, "mean_", None) is not None:
        n_features = len(std.mean_)
    if n_features is None:  # no recurrent layer: the first Dense (if nothing reshapes before it) says
        first = next((layer for layer in model.layers if not isinstance(layer, Dropout)), None)
        n_features = first.params["W"].shape[0] if isinstance(first, Dense) else "features"
    x = "x"
    if std is not None and hasattr(std, "affine"):  # TMVA's VarTransform: N and D are one affine map
        x = _export_var_transform(g, std, x, TensorProto, fn)
        n_features = std.shape_[-1]
        std = None
    if std is not None and getattr(std, "mean_", None) is not None:
        # (x − mean) / std in float64, as Standardizer.transform computes it, then back to float32.
        (x,) = g.node("Cast", [x], "x_double", to=TensorProto.DOUBLE)
        (x,) = g.node("Sub", [x, g.const("mean", std.mean_, np.float64)], "centred")
        (x,) = g.node("Div", [x, g.const("std", std.std_, np.float64)], "standardized")
        (x,) = g.node("Cast", [x], "x_float", to=TensorProto.FLOAT)
    out_rank = 3
    last_width = n_features
    seq_lens = "lengths" if lengths else None  # given to the recurrent layers as Sequential.forward gives lengths
    for k, layer in enumerate(model.layers):
        if isinstance(layer, (LSTM, GRU, RNN)):
            x = export_recurrent(g, layer, x, type(layer).__name__, seq_lens)
            out_rank, last_width = (3 if layer.return_sequences else 2), layer.output_size
            if not layer.return_sequences:
                seq_lens = None
        elif isinstance(layer, Dense):
            (x,) = g.node("MatMul", [x, g.const("dense_W", layer.params["W"])], "matmul")
            (x,) = g.node("Add", [x, g.const("dense_b", layer.params["b"])], "dense")
            if layer.activation == "softmax":
                (x,) = g.node("Softmax", [x], "softmax", axis=-1)
            elif layer.activation != "identity":
                (x,) = g.node(_DENSE_ACTIVATIONS[layer.activation], [x], layer.activation)
            last_width = layer.params["W"].shape[1]
        elif isinstance(layer, Flatten):
            (x,) = g.node("Flatten", [x], "flat", axis=1)
            out_rank, last_width = 2, None
        elif isinstance(layer, Reshape):
            (x,) = g.node("Reshape", [x, g.const("shape", (0,) + layer.shape, np.int64)], "reshaped")
            out_rank, last_width = 1 + len(layer.shape), (layer.shape[-1] if layer.shape[-1] != -1 else None)
        elif isinstance(layer, Dropout):
            continue  # the identity at inference
        else:
            raise ValueError(
                f"{fn}: layer {k} is a {type(layer).__name__}, which has no ONNX translation; expected "
                f"LSTM, GRU, RNN, Dense, Flatten, Reshape or Dropout"
            )
    out_shape: list = ["batch"] + [None] * (out_rank - 1)
    if model.loss.name == "bce" and out_rank == 2 and last_width == 1:
        (x,) = g.node("Squeeze", [x, g.const("axes", [1], np.int64)], "squeeze")  # as decision_function
        out_shape = ["batch"]
    else:
        reshaped = any(isinstance(layer, (Flatten, Reshape)) for layer in model.layers)
        if out_rank == 3 and last_width is not None and not reshaped:
            out_shape[1] = "time"
        if last_width is not None:
            out_shape[-1] = int(last_width)
    if x == "x":  # nothing but Dropout layers
        (x,) = g.node("Identity", [x], "y")
    # the last node's output becomes the graph output "y"
    last = g.nodes[-1]
    last.output[list(last.output).index(x)] = "y"
    graph = helper.make_graph(
        g.nodes,
        "bptt_sequential",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "time", n_features])]
        + ([helper.make_tensor_value_info("lengths", TensorProto.INT32, ["batch"])] if lengths else []),
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        g.initializers,
    )
    proto = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", int(opset))], producer_name="bptt",
        doc_string="bptt Sequential network: y = model.decision_function(x)",
    )
    # onnxruntime refuses IR versions newer than it knows; the opset fixes the IR version it needs.
    proto.ir_version = helper.find_min_ir_version_for(list(proto.opset_import))
    helper.set_model_props(proto, {_LOSS_KEY: model.loss.name})
    onnx.checker.check_model(proto)
    from .._files import atomic_write

    data = proto.SerializeToString()
    return atomic_write(path, lambda f: f.write(data))


# ───────────────────────────────────────────────────────────────────────────── import


class _Reader:
    """Walks the single chain of nodes from input ``x`` to the graph output."""

    def __init__(self, graph, numpy_helper, path: str, fn: str):
        self.fn, self.path = fn, path
        self.numpy_helper = numpy_helper
        self.consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        self.nodes = []
        for node in graph.node:
            if node.op_type == "Constant" and len(node.output) == 1:
                attr = {a.name: a for a in node.attribute}
                if "value" in attr:
                    self.consts[node.output[0]] = numpy_helper.to_array(attr["value"].t)
                    continue
            self.nodes.append(node)

    def error(self, node, why: str) -> ValueError:
        where = f"node {node.name!r} ({node.op_type})" if node is not None else "the graph"
        return ValueError(f"{self.fn}: {self.path!r}: unsupported {where}: {why}")

    def const(self, node, name: str, what: str) -> np.ndarray:
        if name not in self.consts:
            raise self.error(
                node, f"its {what} must be a constant (an initializer or Constant node); got tensor {name!r}"
            )
        return self.consts[name]

    @staticmethod
    def attrs(node) -> dict:
        from onnx import helper

        return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _lengths_input(given: list, consumers: dict, int32: int, fn: str, path: str) -> str | None:
    """The name of the graph input that recurrent nodes take as ``sequence_lens`` (int32, given
    to nothing else), or None; another input used as ``sequence_lens`` is refused."""
    found = None
    for i in given:
        users = consumers.get(i.name, [])
        as_lens = [n for n in users if n.op_type in ("LSTM", "GRU", "RNN") and len(n.input) > 4 and n.input[4] == i.name]
        if not as_lens:
            continue
        elem = i.type.tensor_type.elem_type
        if elem != int32 or len(as_lens) != len(users) or any(i.name in list(n.input)[:4] for n in as_lens):
            raise ValueError(f"{fn}: {path!r}: graph input {i.name!r} is a recurrent node's sequence_lens, so it must be "
                             f"int32 (ONNX's type for it) and feed nothing else; got element type {elem} and "
                             f"{len(users) - len(as_lens)} other use(s)")
        found = i.name
    return found


def read_onnx(path, fn: str = "read_onnx"):
    """Read an ONNX file written by :func:`export_onnx` (or shaped like one) as the parts of a
    network: ``(layers, loss, standardizer)``; :func:`bptt.model.import_onnx` builds the
    ``Sequential`` (this module never imports the network, only the layers it is made of).

    The graph must be one chain from its single input to its single output, made of: an optional
    standardisation prefix (``Cast``, ``Sub`` by a constant mean, ``Div`` by a constant std);
    ``Transpose(perm=[1, 0, 2])`` around forward or bidirectional ``LSTM`` / ``GRU`` / ``RNN``
    nodes with ``layout=0``, default activations (RNN: Tanh, Relu, Sigmoid or Affine(1, 0)) and no
    initial states, followed by ``Squeeze`` of ``Y`` (axis 1, every step) or ``Y_h`` (axis 0, last
    step) — for a bidirectional node the ``Transpose → Reshape`` pairs of
    :mod:`bptt.io.onnx_recurrent` —; ``MatMul`` (+ ``Add``)
    or ``Gemm`` with constant weights, optionally followed by ``Tanh``/``Relu``/``Sigmoid``/``Softmax``
    (last axis); ``Flatten(axis=1)``; ``Reshape`` to ``[0, …]``; ``Identity``; and a final
    ``Squeeze(axis 1)`` of a ``(B, 1)`` output (the binary-classifier logit). The model's loss is read
    from the ``bptt.loss`` metadata that :func:`export_onnx` writes (else ``"bce"`` when the output is
    squeezed, ``"mse"`` otherwise). Layers are float32. A second graph input is allowed: int32
    ``(batch,)`` lengths given as ``sequence_lens`` to every recurrent node up to the first that
    returns no sequences (what ``export_onnx(..., lengths=True)`` writes, and how
    :meth:`bptt.model.Sequential.forward` passes ``lengths=``); the network then takes them as
    ``lengths=``.

    Raises:
        ValueError: the path is not an existing file, not an ONNX model, or holds a node (named in
            the message) that has no bptt translation.

    Example: see the module docstring.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"{fn}: path must be a str or os.PathLike; got {type(path).__name__}")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"{fn}: {path!r} does not exist or is not a file; pass the path of an .onnx file")
    onnx, helper, numpy_helper = _onnx_modules(fn)
    try:
        proto = onnx.load(path)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ValueError(f"{fn}: {path!r} is not a readable ONNX model ({type(exc).__name__}: {exc})") from None
    if not proto.HasField("graph") or not proto.graph.node:
        raise ValueError(f"{fn}: {path!r} holds no ONNX graph (an empty or non-ONNX file?)")
    from ..data.arrays import Standardizer
    from ..layers import Dense, Flatten, Reshape

    graph = proto.graph
    r = _Reader(graph, numpy_helper, path, fn)
    consumers: dict[str, list] = {}
    for node in r.nodes:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    given = [i for i in graph.input if i.name not in r.consts]
    lengths_name = _lengths_input(given, consumers, onnx.TensorProto.INT32, fn, path)
    inputs = [i.name for i in given if i.name != lengths_name]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise ValueError(f"{fn}: {path!r}: the graph must have one input and one output (and may have an int32 "
                         f"(batch,) input given to recurrent nodes as sequence_lens); got inputs "
                         f"{[i.name for i in given]}, outputs {[o.name for o in graph.output]}")
    output = graph.output[0].name

    layers: list = []
    mean = std = None
    squeezed_output = False
    current = {inputs[0]}  # the tensor names that hold the chain's current value
    state = "batch"  # "batch": batch-major; "time": (T, B, F); "rnn": outputs of a recurrent node
    pending = None  # (layer, Y, Y_h, stage): the recurrent layer whose output is not complete yet
    lengths_open = lengths_name is not None  # the recurrent nodes must take sequence_lens (the time axis lasts)
    visited = 0
    while output not in current:
        nexts = {id(n): n for name in current for n in consumers.get(name, [])}
        if len(nexts) != 1:
            raise ValueError(f"{fn}: {path!r}: the graph must be one chain of nodes; tensor(s) {sorted(current)} "
                             f"feed {len(nexts)} nodes")
        node = next(iter(nexts.values()))
        visited += 1
        op, attrs = node.op_type, r.attrs(node)
        data_inputs = [n for n in node.input if n in current]
        if len(data_inputs) != 1 or node.input[0] not in current:
            raise r.error(node, "its first input must be the chain's current tensor, and the only one")
        outs = [o for o in node.output if o]
        new_state = state
        if pending is not None:  # the nodes after a recurrent node decide return_sequences
            done, pending = follow_outputs(r, node, op, attrs, pending)
            if pending is None:
                new_state = done
                layers.append(rec_layer)
                if not rec_layer.return_sequences:
                    lengths_open = False
        elif op in ("LSTM", "GRU", "RNN"):
            if state != "time":
                raise r.error(node, "its input must be time-major (T, B, F): put Transpose(perm=[1, 0, 2]) "
                                    "before it (layout=0)")
            rec_layer, uses_lengths = import_recurrent(r, node, attrs, op, lengths_name)
            if lengths_name is not None and uses_lengths != lengths_open:
                raise r.error(node, f"the lengths input {lengths_name!r} must be the sequence_lens of every recurrent "
                                    "node up to the first that returns no sequences, and of no later one (bptt gives "
                                    "lengths= to its recurrent layers so)")
            y = node.output[0] if len(node.output) > 0 else ""
            y_h = node.output[1] if len(node.output) > 1 else ""
            pending, new_state = (rec_layer, y, y_h, None), "rnn"
        elif op == "Transpose":
            if list(attrs.get("perm", [])) != [1, 0, 2] or state not in ("batch", "time"):
                raise r.error(node, f"only Transpose(perm=[1, 0, 2]) around recurrent nodes is supported; "
                                    f"got perm {list(attrs.get('perm', []))}")
            new_state = "time" if state == "batch" else "batch"
        elif state != "batch":
            raise r.error(node, "this node acts on a time-major tensor; only recurrent nodes may, "
                                "Transpose back with perm=[1, 0, 2] first")
        elif op in ("Identity", "Dropout"):
            pass
        elif op == "Cast":
            if layers or attrs.get("to") not in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE):
                raise r.error(node, "Cast is supported only to float or double, in the standardisation prefix")
        elif op in ("Sub", "Div") and not layers and node.input[0] in current:
            c = np.asarray(r.const(node, node.input[1], "second input"), np.float64)
            if c.ndim != 1:
                raise r.error(node, f"the standardisation constant must be a vector (F,); got shape {c.shape}")
            if op == "Sub" and mean is None and std is None:
                mean = c
            elif op == "Div" and std is None:
                std = c
            else:
                raise r.error(node, "the standardisation prefix must be at most one Sub (mean) then one Div (std)")
        elif op == "MatMul":
            W = r.const(node, node.input[1], "weight matrix")
            if W.ndim != 2:
                raise r.error(node, f"the weight matrix must be 2-D (in, out); got shape {W.shape}")
            layer = Dense(W.shape[0], W.shape[1], dtype=np.float32)
            layer.params["W"][...] = W
            layers.append(layer)
        elif op == "Gemm":
            if attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
                raise r.error(node, "only Gemm with transA=0, alpha=1, beta=1 is supported")
            W = r.const(node, node.input[1], "weight matrix")
            W = W.T if attrs.get("transB", 0) else W
            layer = Dense(W.shape[0], W.shape[1], dtype=np.float32)
            layer.params["W"][...] = W
            if len(node.input) > 2 and node.input[2]:
                layer.params["b"][...] = np.broadcast_to(r.const(node, node.input[2], "bias"), (W.shape[1],))
            layers.append(layer)
        elif op == "Add":
            last = layers[-1] if layers else None
            b = r.const(node, node.input[1], "bias")
            n_out = last.params["b"].size if isinstance(last, Dense) else -1
            if not isinstance(last, Dense) or last.activation != "identity" or b.shape not in ((n_out,), (1, n_out)):
                raise r.error(node, "Add is supported only as the bias (out,) right after a MatMul")
            last.params["b"][...] += b.reshape(-1)
        elif op in ("Tanh", "Relu", "Sigmoid", "Softmax"):
            last = layers[-1] if layers else None
            if not isinstance(last, Dense) or last.activation != "identity":
                raise r.error(node, f"{op} is supported only as the activation right after a dense layer")
            if op == "Softmax" and attrs.get("axis", -1) != -1:
                raise r.error(node, f"Softmax must act on the last axis (axis=-1); got axis={attrs.get('axis')}")
            last.activation = op.lower()
        elif op in ("Flatten", "Reshape") and lengths_open and not layers:
            raise r.error(node, f"the graph takes lengths ({lengths_name!r}) but reshapes its input before the first "
                                "recurrent node, so they count no time steps")
        elif op == "Flatten":
            if attrs.get("axis", 1) != 1:
                raise r.error(node, f"only Flatten(axis=1) is supported; got axis={attrs.get('axis')}")
            layers.append(Flatten(dtype=np.float32))
        elif op == "Reshape":
            shape = [int(s) for s in r.const(node, node.input[1], "shape")]
            if len(shape) < 2 or shape[0] != 0 or attrs.get("allowzero", 0):
                raise r.error(node, f"only Reshape to [0, ...] (keep the batch axis) is supported; got {shape}")
            layers.append(Reshape(shape[1:], dtype=np.float32))
        elif op == "Squeeze" and output in outs:
            axes = r.const(node, node.input[1], "axes").tolist() if len(node.input) > 1 else attrs.get("axes")
            if list(axes or []) != [1]:
                raise r.error(node, f"only a final Squeeze(axes=[1]) of a (B, 1) output is supported; got axes {axes}")
            squeezed_output = True
        else:
            raise r.error(node, "no bptt layer corresponds to this operator")
        state, current = new_state, set(outs)
    if pending is not None:
        raise ValueError(f"{fn}: {path!r}: the graph ends with a recurrent node; squeeze Y or Y_h to a bptt output")
    if state != "batch":
        raise ValueError(f"{fn}: {path!r}: the graph output is time-major; it must end batch-major")
    if not layers:
        raise ValueError(f"{fn}: {path!r}: the graph holds no layer bptt can rebuild")
    props = {p.key: p.value for p in proto.metadata_props}
    loss = props.get(_LOSS_KEY, "bce" if squeezed_output else "mse")
    standardizer = None
    if mean is not None or std is not None:
        n = len(mean if mean is not None else std)
        standardizer = Standardizer()
        standardizer.mean_ = mean if mean is not None else np.zeros(n)
        standardizer.std_ = std if std is not None else np.ones(n)
    return layers, loss, standardizer
