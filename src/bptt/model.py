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
            self._check_lengths_path()
        for layer in self.layers:
            if lengths is not None and isinstance(layer, _RecurrentBase):
                x = layer.forward(x, training=training, lengths=lengths)
                if not layer.return_sequences:
                    lengths = None
            else:
                x = layer.forward(x, training=training)
        return x

    def _check_lengths_path(self) -> None:
        """Lengths count steps of the input's time axis: refused when a Flatten or Reshape comes
        before a recurrent layer (the axis lengths refer to is gone) or there is no recurrent layer."""
        for layer in self.layers:
            if isinstance(layer, _RecurrentBase):
                return
            if isinstance(layer, (Flatten, Reshape)):
                raise ValueError(
                    f"Sequential.forward: lengths count the input's time steps, but a {type(layer).__name__} "
                    "layer comes before the first recurrent layer; drop lengths or put the recurrent layer first"
                )
        raise ValueError("Sequential.forward: lengths were given but the network has no recurrent layer to use them; "
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

    def _prepare(self, fn: str, X) -> np.ndarray:
        X = v.float_array(fn, "X", X, np.ndim(X) if np.ndim(X) >= 2 else 2, "(n, T, F)")
        if self.standardizer is not None:
            X = self.standardizer.transform(X)
        return np.asarray(X, self.dtype)

    def decision_function(self, X, batch_size: int = 4096, *, reset_states: bool = True) -> np.ndarray:
        """The network's raw outputs (logits for the cross-entropy losses), in batches, no cache.

        Stateful networks (TMVA ``rememberState``): the batches follow one another as in training,
        row k of a batch continuing row k of the batch before, so the outputs depend on
        ``batch_size`` (give the training's BatchSize for the training's meaning). The state starts
        from zeros (``reset_states=True``, the default: the same call gives the same outputs); with
        ``reset_states=False`` the first batch continues the state the network carries, e.g. from
        the previous call. Afterwards the network keeps the state after the last batch, as Keras
        leaves it (a following call with ``reset_states=False`` continues from there).
        """
        fn = "Sequential.decision_function"
        self._check_batch_size(fn, batch_size)
        _check_flag(fn, "reset_states", reset_states)
        X = self._prepare(fn, X)
        if reset_states:
            self.reset_states()
        outs = [self.forward(X[i : i + batch_size], training=False) for i in range(0, len(X), batch_size)]
        out = np.concatenate(outs, axis=0)
        if self.loss.name == "bce" and out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        return out

    @staticmethod
    def _check_batch_size(fn: str, batch_size) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"{fn}: batch_size must be a positive integer (events per forward pass); got {batch_size!r}")

    def predict_proba(self, X, batch_size: int = 4096, *, reset_states: bool = True) -> np.ndarray:
        """Signal probability ``(n,)`` for ``bce``, class probabilities ``(n, C)`` for ``softmax_ce``
        (``batch_size``, ``reset_states``: see :meth:`decision_function`)."""
        if self.loss.name not in ("bce", "softmax_ce"):
            raise ValueError(f"Sequential.predict_proba: the loss {self.loss.name!r} gives no probabilities; use predict")
        out = self.decision_function(X, batch_size, reset_states=reset_states)
        return sigmoid_probability(out) if self.loss.name == "bce" else softmax_probability(out)

    def predict(self, X, batch_size: int = 4096, *, reset_states: bool = True) -> np.ndarray:
        """Class labels (0/1 for ``bce``, argmax for ``softmax_ce``) or the outputs for ``mse``
        (``batch_size``, ``reset_states``: see :meth:`decision_function`)."""
        if self.loss.name == "bce":
            return (self.predict_proba(X, batch_size, reset_states=reset_states) >= 0.5).astype(np.int64)
        out = self.decision_function(X, batch_size, reset_states=reset_states)
        return np.argmax(out, axis=-1) if self.loss.name == "softmax_ce" else out

    def evaluate(self, X, y, batch_size: int = 4096, *, sample_weight=None, reset_states: bool = True) -> dict[str, float]:
        """The loss and, for binary classification, ROC AUC and accuracy on ``(X, y)``; for ``softmax_ce``
        the loss and the accuracy, ``y`` being class indices ``(n,)`` or class probabilities ``(n, C)``
        (as the loss takes them; the accuracy then counts the most probable class as the label).

        ``sample_weight`` ``(n,)``: event weights (TMVA's), giving the weighted loss ``Σ w ℓ / Σ w``,
        the weighted ROC AUC and the weighted accuracy (:func:`bptt.metrics.roc_auc`,
        :func:`bptt.metrics.accuracy`). ``batch_size``, ``reset_states``: see :meth:`decision_function`
        (by default the same call gives the same figures, for stateful networks too).
        """
        from . import metrics

        fn = "Sequential.evaluate"
        out = self.decision_function(X, batch_size, reset_states=reset_states)
        w = v.sample_weight(fn, sample_weight, len(out))
        y = np.asarray(y)
        target = y if self.loss.name == "softmax_ce" else y.reshape(out.shape).astype(out.dtype)
        result = {"loss": float(self.loss(out, target, w))}
        if self.loss.name == "bce":
            p = sigmoid_probability(out)
            result["roc_auc"] = float(metrics.roc_auc(y, p, sample_weight=w))
            result["accuracy"] = float(metrics.accuracy(y, p, sample_weight=w))
        elif self.loss.name == "softmax_ce":
            labels = np.argmax(y, axis=1) if y.ndim == 2 else y
            correct = np.argmax(out, axis=-1) == labels
            result["accuracy"] = float(np.mean(correct) if w is None else np.sum(w[correct]) / np.sum(w))
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
    what :func:`bptt.io.onnx.read_onnx` reads, built as a ``Sequential``."""
    from .io.onnx import read_onnx

    layers, loss, standardizer = read_onnx(path, "import_onnx")
    model = Sequential(layers, loss=loss)
    model.standardizer = standardizer
    return model
