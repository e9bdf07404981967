"""Sequential networks of bptt layers: forward, backward, prediction, configuration.

Example (the TMVA tutorial's network, built from its own option strings)::

    >>> import numpy as np
    >>> from bptt.model import Sequential
    >>> model = Sequential.from_tmva("LSTM|10|30|10|0|1,RESHAPE|FLAT,DENSE|64|TANH,LINEAR", "10|30", seed=0)
    >>> [type(layer).__name__ for layer in model.layers]
    ['LSTM', 'Flatten', 'Dense', 'Dense']
    >>> model.predict_proba(np.zeros((5, 10, 30), np.float32)).shape
    (5,)
"""

from __future__ import annotations

import numpy as np

from . import _validation as v
from . import sequences
from .layers import GRU, LSTM, RNN, Dense, Flatten, Layer, Reshape
from .layers.dropout import Dropout
from .layers.recurrent import _Recurrent as _RecurrentBase
from .losses import Loss, make_loss, sigmoid_probability, softmax_probability

__all__ = ["Sequential", "import_onnx", "layer_config", "layer_from_config", "load_model"]

_RECURRENT = {"LSTM": LSTM, "GRU": GRU, "RNN": RNN}


def layer_config(layer: Layer) -> dict:
    """A JSON-serialisable description of ``layer`` from which :func:`layer_from_config` rebuilds it."""
    kind = type(layer).__name__
    if kind in _RECURRENT:
        cfg = {
            "type": kind,
            "input_size": layer.input_size,
            "hidden_size": layer.hidden_size,
            "return_sequences": layer.return_sequences,
            "stateful": layer.stateful,
        }
        if getattr(layer, "bidirectional", False):  # written only when True: other layers' records stay as they were
            cfg["bidirectional"] = True
        for key in ("reset_after", "activation", "kernel_initializer", "recurrent_initializer", "bias_initializer"):
            if hasattr(layer, key):
                cfg[key] = getattr(layer, key)
        return cfg
    if kind == "Dense":
        n_in, n_out = layer.params["W"].shape
        cfg = {"type": kind, "in_features": n_in, "out_features": n_out, "activation": layer.activation}
        if hasattr(layer, "kernel_initializer"):
            cfg["kernel_initializer"] = layer.kernel_initializer
        return cfg
    if kind == "Flatten":
        return {"type": kind}
    if kind == "Reshape":
        return {"type": kind, "shape": list(layer.shape)}
    if kind == "Dropout":
        return {"type": kind, "rate": layer.rate}
    raise ValueError(f"layer_config: unsupported layer type {kind}; expected one of LSTM, GRU, RNN, Dense, Flatten, Reshape, Dropout")


def layer_from_config(cfg: dict, *, dtype=np.float32, seed=None) -> Layer:
    """Build a layer from :func:`layer_config` output (parameters freshly initialised)."""
    cfg = dict(cfg)
    kind = cfg.pop("type", None)
    try:
        if kind in _RECURRENT:
            return _RECURRENT[kind](cfg.pop("input_size"), cfg.pop("hidden_size"), dtype=dtype, seed=seed, **cfg)
        if kind == "Dense":
            return Dense(cfg.pop("in_features"), cfg.pop("out_features"), dtype=dtype, seed=seed, **cfg)
        if kind == "Flatten":
            return Flatten(dtype=dtype)
        if kind == "Reshape":
            return Reshape(cfg["shape"], dtype=dtype)
        if kind == "Dropout":
            return Dropout(cfg["rate"], seed=seed)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"layer_from_config: bad configuration for a {kind} layer ({exc}); got {cfg}") from None
    raise ValueError(f"layer_from_config: unknown layer type {kind!r}")


def _check_flag(fn: str, name: str, value) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{fn}: {name} must be True or False; got {value!r}")


def _check_inputs(inputs):
    """A model file's ``inputs`` list, checked (names are strings, sizes positive integers; a ragged
    sequence's jagged branches have ``"jagged": true`` and maybe ``"max_length"``, checked further by
    :func:`bptt.apply.input_spec`)."""
    if inputs is None:
        return None
    ok = isinstance(inputs, list) and all(
        isinstance(d, dict) and {"name", "size"} <= set(d) <= {"name", "size", "jagged", "max_length"}
        and isinstance(d["name"], str) and d["name"]
        and isinstance(d["size"], int) and not isinstance(d["size"], bool) and d["size"] > 0
        and isinstance(d.get("jagged", False), bool)
        and (d.get("max_length") is None or type(d["max_length"]) is int and d["max_length"] > 0)
        for d in inputs
    )
    if not ok or not inputs:
        raise ValueError(
            f"Sequential.from_config: inputs must be a non-empty list of {{'name': str, 'size': int > 0}} (and "
            f"'jagged': bool, 'max_length': int > 0 for a ragged sequence's branches); got {inputs!r}"
        )
    return [dict(d) for d in inputs]


class Sequential:
    """A stack of layers trained end to end.

    Args:
        layers: the layers, input first.
        loss: ``"bce"`` (binary cross-entropy on logits; the default, as TMVA's CROSSENTROPY with
            a linear output), ``"softmax_ce"`` or ``"mse"``, or a :class:`bptt.losses.Loss`.

    Attributes:
        input_transform: the transformation every input goes through before the first layer,
            fitted on training data and saved with the model: a
            :class:`bptt.data.arrays.Standardizer` (what :meth:`fit` fits with ``standardize=True``,
            the Python default) or a :class:`bptt.transforms.VarTransform` (TMVA's ``VarTransform``,
            set by :mod:`bptt.tmva.network` from a booking string), or None.
        standardizer: the same object under its older name (reading and setting it is reading and
            setting ``input_transform``); replacing a VarTransform by a Standardizer warns.
        history: the :class:`bptt.train.History` of the last :meth:`fit`.
    """

    def __init__(self, layers, loss="bce"):
        self.layers: list[Layer] = list(layers)
        if not self.layers or not all(isinstance(layer, Layer) for layer in self.layers):
            raise ValueError(f"Sequential: layers must be a non-empty list of bptt layers; got {layers!r}")
        self.loss: Loss = make_loss(loss) if isinstance(loss, str) else loss
        self._input_transform = None
        #: The inputs the network reads from a file: ``[{"name": branch or expression, "size": n}, …]``
        #: in order, concatenated to one event's ``T·F`` values (see :class:`bptt.data.events.Events`);
        #: None when the model was not trained from named inputs. Saved with the model.
        self.inputs: list[dict] | None = None
        self.history = None

    @property
    def input_transform(self):
        return self._input_transform

    @input_transform.setter
    def input_transform(self, value):
        if value is not None and not (hasattr(value, "transform") and hasattr(value, "to_dict")):
            raise ValueError(
                f"Sequential.input_transform: expected a Standardizer, a VarTransform or None; got {type(value).__name__}"
            )
        from .data.arrays import Standardizer
        from .transforms import VarTransform

        if isinstance(self._input_transform, VarTransform) and isinstance(value, Standardizer):
            import warnings

            warnings.warn(
                f"Sequential: VarTransform={self._input_transform.spec} is replaced by a Standardizer "
                f"(fit(standardize=True)); pass standardize=False to keep TMVA's transformation",
                UserWarning, stacklevel=3,
            )
        self._input_transform = value

    standardizer = input_transform  # the older name of the same attribute

    # ── building

    @classmethod
    def from_tmva(cls, layout, input_layout, *, loss="bce", seed=0, dtype=np.float32, dropout=None,
                  weight_initialization=None):
        """Build the network a TMVA ``Layout`` / ``InputLayout`` pair describes (strings, or as
        :func:`bptt.tmva.parse_layout` / :func:`bptt.tmva.parse_input_layout` give them): the
        layers of :func:`bptt.tmva.layers.build_layers`.

        Recurrent tokens become LSTM/GRU/RNN layers (``rememberState`` → ``stateful``,
        ``returnSequence`` → ``return_sequences``), ``RESHAPE|FLAT`` → Flatten, ``DENSE|n|ACT`` →
        Dense, and a bare ``LINEAR`` → the output Dense layer with one unit. ``dropout``: TMVA's
        DropConfig, one dropout probability per layer, applied to that layer's input (TMVA's
        MethodDL turns each value p into a keep-probability 1 − p; 0 means no dropout).
        ``weight_initialization``: TMVA's ``WeightInitialization`` name (XAVIER, XAVIERUNIFORM,
        GAUSS, UNIFORM, IDENTITY, ZERO), applied as TMVA does (:mod:`bptt.tmva.layers`); None
        keeps bptt's layer defaults.
        """
        from .tmva.layers import build_layers

        return cls(build_layers(layout, input_layout, seed=seed, dtype=dtype, dropout=dropout,
                                weight_initialization=weight_initialization), loss=loss)

    # ── the network

    @property
    def dtype(self) -> np.dtype:
        for layer in self.layers:
            if layer.params:
                return layer.dtype
        return np.dtype(np.float32)

    def forward(self, x, training: bool = False, lengths=None):
        """Run the layers in turn. ``lengths`` ``(B,)`` (or None): the real steps of each sequence of
        ``x (B, T, F)`` (see :meth:`bptt.layers.LSTM.forward`), given to every recurrent layer while
        the time axis is the input's; the layers after a recurrent layer with
        ``return_sequences=False`` see one vector per sequence."""
        if lengths is not None:
            self._check_lengths_path("Sequential.forward")
        for layer in self.layers:
            if lengths is not None and isinstance(layer, _RecurrentBase):
                x = layer.forward(x, training=training, lengths=lengths)
                if not layer.return_sequences:
                    lengths = None
            else:
                x = layer.forward(x, training=training)
        return x

    def _check_lengths_path(self, fn: str) -> None:
        """Lengths count steps of the input's time axis: refused when a Flatten or Reshape comes
        before a recurrent layer (the axis lengths refer to is gone) or there is no recurrent layer."""
        for layer in self.layers:
            if isinstance(layer, _RecurrentBase):
                return
            if isinstance(layer, (Flatten, Reshape)):
                raise ValueError(
                    f"{fn}: lengths count the input's time steps, but a {type(layer).__name__} "
                    "layer comes before the first recurrent layer; drop lengths or put the recurrent layer first"
                )
        raise ValueError(f"{fn}: lengths were given but the network has no recurrent layer to use them; "
                         "pass lengths=None")

    def backward(self, dy):
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
        return dy

    def parameters(self) -> dict[str, np.ndarray]:
        """Every parameter array, named ``"<layer index>.<name>"`` (the arrays themselves)."""
        return {f"{i}.{k}": p for i, layer in enumerate(self.layers) for k, p in layer.params.items()}

    def gradients(self) -> dict[str, np.ndarray]:
        """The gradients of the last backward pass, named as :meth:`parameters`."""
        return {f"{i}.{k}": g for i, layer in enumerate(self.layers) for k, g in layer.grads.items()}

    def set_parameters(self, values: dict[str, np.ndarray]) -> None:
        """Copy ``values`` into the parameters (same names and shapes)."""
        params = self.parameters()
        missing, unknown = set(params) - set(values), set(values) - set(params)
        if missing or unknown:
            raise ValueError(
                f"Sequential.set_parameters: names must match the model's; missing {sorted(missing)}, "
                f"unknown {sorted(unknown)}"
            )
        for k, p in params.items():
            v.expect_shape("Sequential.set_parameters", k, np.asarray(values[k]), p.shape, "the parameter's shape")
            p[...] = values[k]

    def reset_states(self) -> None:
        for layer in self.layers:
            layer.reset_states()

    # ── prediction

    def _prepare(self, fn: str, X, lengths=None) -> tuple[np.ndarray, np.ndarray | None]:
        """``(X, lengths)``: the inputs checked (padded steps set to 0), transformed by the input
        transformation, in the network's dtype; the lengths checked against them."""
        X, L = sequences.inputs(fn, X, lengths)
        X = v.float_array(fn, "X", X, np.ndim(X) if np.ndim(X) >= 2 else 2, "(n, T, F)")
        if L is not None:
            self._check_lengths_path(fn)
        if self.standardizer is not None:
            X = self.standardizer.transform(X)
        return np.asarray(X, self.dtype), L

    def _outputs(self, fn: str, X, batch_size, reset_states, lengths) -> tuple[np.ndarray, np.ndarray | None]:
        """The network's outputs on ``X`` in batches (no cache), as they come, and the lengths."""
        self._check_batch_size(fn, batch_size)
        _check_flag(fn, "reset_states", reset_states)
        X, L = self._prepare(fn, X, lengths)
        if reset_states:
            self.reset_states()
        outs = [self.forward(X[i : i + batch_size], training=False, lengths=None if L is None else L[i : i + batch_size])
                for i in range(0, len(X), batch_size)]
        return np.concatenate(outs, axis=0), L

    def _per_step_padding(self, out: np.ndarray, L) -> np.ndarray:
        """Per-step outputs ``(n, T, ...)`` with 0 at the padded steps; one bce unit squeezed."""
        if out.ndim == 3:
            out = sequences.zero_padding(out, L)
        if self.loss.name == "bce" and out.ndim in (2, 3) and out.shape[-1] == 1:
            out = out[..., 0]
        return out

    def decision_function(self, X, batch_size: int = 4096, *, reset_states: bool = True, lengths=None) -> np.ndarray:
        """The network's raw outputs (logits for the cross-entropy losses), in batches, no cache:
        ``(n,)`` for one bce unit, else ``(n, K)``; for a network with per-step outputs ``(n, T)``
        (one bce unit) or ``(n, T, K)``.

        ``lengths`` ``(n,)`` (``1 <= lengths[b] <= T``, or None): sequence b's steps
        ``t >= lengths[b]`` are padding (:mod:`bptt.sequences`): their inputs are never read, the
        outputs per sequence are those after its last real step, and per-step outputs are 0 at the
        padded steps (so are the probabilities and labels of :meth:`predict_proba` and
        :meth:`predict`: select the real steps with the lengths).

        Stateful networks (TMVA ``rememberState``): the batches follow one another as in training,
        row k of a batch continuing row k of the batch before (after its last real step), so the
        outputs depend on ``batch_size`` (give the training's BatchSize for the training's meaning).
        The state starts from zeros (``reset_states=True``, the default: the same call gives the
        same outputs); with ``reset_states=False`` the first batch continues the state the network
        carries, e.g. from the previous call. Afterwards the network keeps the state after the last
        batch, as Keras leaves it (a following call with ``reset_states=False`` continues from there).
        """
        out, L = self._outputs("Sequential.decision_function", X, batch_size, reset_states, lengths)
        return self._per_step_padding(out, L)

    @staticmethod
    def _check_batch_size(fn: str, batch_size) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"{fn}: batch_size must be a positive integer (events per forward pass); got {batch_size!r}")

    def predict_proba(self, X, batch_size: int = 4096, *, reset_states: bool = True, lengths=None) -> np.ndarray:
        """Signal probability ``(n,)`` for ``bce``, class probabilities ``(n, C)`` for ``softmax_ce``;
        per-step outputs: ``(n, T)`` or ``(n, T, C)``, 0 at padded steps (``batch_size``,
        ``reset_states``, ``lengths``: see :meth:`decision_function`)."""
        if self.loss.name not in ("bce", "softmax_ce"):
            raise ValueError(f"Sequential.predict_proba: the loss {self.loss.name!r} gives no probabilities; use predict")
        out, L = self._outputs("Sequential.decision_function", X, batch_size, reset_states, lengths)
        p = sigmoid_probability(out) if self.loss.name == "bce" else softmax_probability(out)
        return self._per_step_padding(p, L)

    def predict(self, X, batch_size: int = 4096, *, reset_states: bool = True, lengths=None) -> np.ndarray:
        """Class labels (0/1 for ``bce``, argmax for ``softmax_ce``) or the outputs for ``mse``;
        per-step outputs: one per step, 0 at padded steps (``batch_size``, ``reset_states``,
        ``lengths``: see :meth:`decision_function`)."""
        if self.loss.name == "bce":
            return (self.predict_proba(X, batch_size, reset_states=reset_states, lengths=lengths) >= 0.5).astype(np.int64)
        if self.loss.name == "mse":
            return self.decision_function(X, batch_size, reset_states=reset_states, lengths=lengths)
        out, L = self._outputs("Sequential.decision_function", X, batch_size, reset_states, lengths)
        labels = np.argmax(out, axis=-1)
        return labels if labels.ndim != 2 or L is None else sequences.zero_padding(labels, L)

    def evaluate(self, X, y, batch_size: int = 4096, *, sample_weight=None, reset_states: bool = True,
                 lengths=None) -> dict[str, float]:
        """The loss and, for binary classification, ROC AUC and accuracy on ``(X, y)``; for ``softmax_ce``
        the loss and the accuracy, ``y`` being class indices ``(n,)`` or class probabilities ``(n, C)``
        (as the loss takes them; the accuracy then counts the most probable class as the label).

        ``sample_weight`` ``(n,)``: event weights (TMVA's), giving the weighted loss ``Σ w ℓ / Σ w``,
        the weighted ROC AUC and the weighted accuracy (:func:`bptt.metrics.roc_auc`,
        :func:`bptt.metrics.accuracy`). ``batch_size``, ``reset_states``, ``lengths``: see
        :meth:`decision_function` (by default the same call gives the same figures, for stateful
        networks too).

        Per-step outputs ``(n, T, K)`` take per-step targets ``y (n, T)`` or ``(n, T, K)`` (as
        :func:`bptt.train.fit`): every figure pools the real steps of all sequences, each step one
        prediction weighted by its sequence's event weight: the loss is the mean over the real
        steps (:mod:`bptt.sequences`), the ROC AUC and the accuracy those of all real steps taken
        together (sklearn's ``roc_auc_score`` on the real steps' labels and scores, with each
        step's ``sample_weight``). Padded steps count nowhere.
        """
        from . import metrics

        fn = "Sequential.evaluate"
        out, L = self._outputs("Sequential.decision_function", X, batch_size, reset_states, lengths)
        n = len(out)
        w = v.sample_weight(fn, sample_weight, n)
        target = sequences.targets(fn, self.loss.name, y, n, out.shape[1:], out.dtype, L)
        indices = self.loss.name == "softmax_ce" and target.ndim == out.ndim - 1
        target = target if indices else target.reshape(out.shape)
        rows, t, w_rows, _ = sequences.real_rows(out, target, L, w)
        result = {"loss": float(self.loss(rows, t, w_rows))}
        if self.loss.name == "bce":
            p = sigmoid_probability(rows).reshape(-1)
            labels = t.reshape(-1)
            w_el = None if w_rows is None else np.repeat(w_rows, p.size // len(w_rows))
            result["roc_auc"] = float(metrics.roc_auc(labels, p, sample_weight=w_el))
            result["accuracy"] = float(metrics.accuracy(labels, p, sample_weight=w_el))
        elif self.loss.name == "softmax_ce":
            labels = t if indices else np.argmax(t, axis=-1)
            correct = np.argmax(rows, axis=-1) == labels
            result["accuracy"] = float(np.mean(correct) if w_rows is None else np.sum(w_rows[correct]) / np.sum(w_rows))
        return result

    def fit(self, X, y, **options):
        """Train the network; see :func:`bptt.train.fit` for the options. Returns the History."""
        from .train import fit

        return fit(self, X, y, **options)

    # ── configuration and files

    def config(self) -> dict:
        """JSON-serialisable configuration: layers, loss, dtype and the fitted input transformation
        (``"standardizer"``: a Standardizer's record or None; ``"var_transform"``, present only
        when the model holds one: a VarTransform's record)."""
        from .transforms import VarTransform

        t = self.input_transform
        config = {
            "format": "bptt-model",
            "version": 1,
            "loss": self.loss.name,
            "dtype": self.dtype.name,
            "layers": [layer_config(layer) for layer in self.layers],
            "standardizer": None if t is None or isinstance(t, VarTransform) else t.to_dict(),
            "inputs": self.inputs,
        }
        if isinstance(t, VarTransform):
            config["var_transform"] = t.to_dict()
        return config

    @classmethod
    def from_config(cls, config: dict) -> "Sequential":
        """Rebuild the architecture (fresh parameters) from :meth:`config`."""
        if not isinstance(config, dict) or config.get("format") != "bptt-model":
            raise ValueError("Sequential.from_config: not a bptt model configuration (format != 'bptt-model')")
        dtype = np.dtype(config.get("dtype", "float32"))
        model = cls([layer_from_config(c, dtype=dtype) for c in config["layers"]], loss=config.get("loss", "bce"))
        from .transforms import input_transform_from_config

        model.input_transform = input_transform_from_config(config)
        model.inputs = _check_inputs(config.get("inputs"))
        return model

    def save(self, path) -> str:
        """Write the model file (JSON configuration + safetensors weights), atomically."""
        from .io.model_file import save_model

        return save_model(self, path)

    @classmethod
    def load(cls, path) -> "Sequential":
        """Read a model file written by :meth:`save` (no code is executed on load)."""
        return load_model(path)


def load_model(path) -> Sequential:
    """The network of a model file written by :meth:`Sequential.save` (or a checkpoint);
    predictions are identical to the saved model's."""
    from .io.model_file import read_model

    config, params = read_model(path, "load_model")
    model = Sequential.from_config(config)
    model.set_parameters(params)
    return model


def import_onnx(path) -> Sequential:
    """The network of an ONNX file written by :func:`bptt.io.export_onnx` (or shaped like one):
    what :func:`bptt.io.onnx.read_onnx` reads, built as a ``Sequential``. Bidirectional nodes
    become layers with ``bidirectional=True``; a graph that takes its sequences' lengths as an
    input (``sequence_lens``) gives a network that takes them as ``lengths=``."""
    from .io.onnx import read_onnx

    layers, loss, standardizer = read_onnx(path, "import_onnx")
    model = Sequential(layers, loss=loss)
    model.standardizer = standardizer
    return model
