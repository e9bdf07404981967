"""scikit-learn estimators around a bptt recurrent network: :class:`RecurrentClassifier`, :class:`RecurrentRegressor`.

Both build the network of the TMVA tutorial, ``cell|H|F|T|0|1,RESHAPE|FLAT,DENSE|dense_units|TANH,<output>``,
from their hyperparameters when :meth:`fit` is called, and train it with :func:`bptt.train.fit`:

    h_t = cell(x_t, h_{t-1})  for t = 1 … T        (LSTM, GRU or simple RNN, H units)
    a   = tanh(flatten(h_1 … h_T) W_1 + b_1)        (dense_units units; only h_T when return_sequences=False)
    out = a W_2 + b_2                              (the logits or the regression outputs)

The output and the loss depend on the estimator:

* classifier, 2 classes: 1 output, the logit of ``classes_[1]``; loss ``bce``, σ(out) = P(classes_[1]);
* classifier, C > 2 classes: C outputs (logits); loss ``softmax_ce``, softmax(out) = P(classes_);
* regressor, ``y`` of shape (n,) or (n, k): 1 or k outputs; loss ``mse``.

Inputs ``X`` may be

* sequences ``(n, T, F)``;
* flat rows ``(n, T·F)`` with ``sequence_shape=(T, F)``: each row is the T steps one after another
  (row-major, as ``X3.reshape(n, -1)``), the layout of a TMVA input tree with ``InputLayout=T|F``;
* flat rows ``(n, F)`` without ``sequence_shape``: sequences of one step (T = 1), so the estimators
  work in any scikit-learn tool that hands them a 2-D matrix.

``n_features_in_`` is T·F, the width of the flat layout, in every case.

Sequences of different lengths: pad them to T steps (zeros after each one's last step,
:func:`bptt.data.ragged.pad_ragged`) and give ``lengths=`` (``(n,)`` integers, ``1 <= lengths[i] <= T``,
the real steps of each sequence) to :meth:`fit` and to every prediction (``predict``,
``predict_proba``, ``decision_function``, ``score``): the recurrent layer reads each sequence's real
steps only (PyTorch's packed-sequence semantics, :mod:`bptt.sequences`); with
``return_sequences=True`` the dense layer sees zeros in place of the padded steps' states. The
input standardisation is fitted on the real steps. (scikit-learn's tools pass ``lengths`` on to
``fit`` as a fit parameter; predictions with lengths are called directly.) Or give the sequences
as they come, without ``lengths``: a list of ``(len_i, F)`` arrays or an awkward array of lists
(what uproot reads from jagged branches) is padded by :func:`bptt.data.ragged.pad_ragged` (to the
longest sequence in ``fit``; to fit's T in the predictions, longer sequences truncated with a
warning) and its lengths used as above.

Example::

    >>> import numpy as np
    >>> from bptt.sklearn import RecurrentClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 6, 2)).astype(np.float32)
    >>> y = np.where(X[:, :, 0].sum(axis=1) > 0, "up", "down")
    >>> clf = RecurrentClassifier(cell="gru", hidden_size=4, dense_units=8, epochs=30, batch_size=20,
    ...                           learning_rate=0.01).fit(X, y)
    >>> clf.classes_.tolist(), clf.predict_proba(X[:3]).shape
    (['down', 'up'], (3, 2))
    >>> bool(clf.score(X, y) > 0.9)
    True
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight,
    check_array,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from . import sequences
from .data.arrays import Standardizer
from .layers import GRU, LSTM, RNN, Dense, Flatten
from .model import Sequential

__all__ = ["RecurrentClassifier", "RecurrentRegressor"]

_CELLS = {"lstm": LSTM, "gru": GRU, "rnn": RNN}
_FLOATS = [np.float64, np.float32]


def _positive_int(fn: str, name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{fn}: {name} must be a positive integer; got {value!r}")
    return int(value)


def _is_ragged(X) -> bool:
    """Sequences as they come: an awkward array, or a list of ``(len_i, F)`` arrays."""
    if type(X).__module__.split(".")[0] == "awkward":
        return True
    return isinstance(X, (list, tuple)) and len(X) > 0 and all(np.ndim(s) == 2 for s in X)


def _ragged(fn: str, X, lengths, max_length=None):
    """``(X, lengths)``: ragged sequences padded (:func:`bptt.data.ragged.pad_ragged`) with their
    lengths; any other ``X`` as it is, with the ``lengths`` given."""
    if not _is_ragged(X):
        return X, lengths
    if lengths is not None:
        raise ValueError(f"{fn}: lengths are for sequences padded to (n, T, F); ragged sequences (a list of "
                         f"(len_i, F) arrays or an awkward array) carry their own: pass lengths=None")
    from .data.ragged import pad_ragged

    return pad_ragged(X, max_length=max_length, dtype=np.float64)


def _input_ndim(X) -> int:
    ndim = getattr(X, "ndim", None)
    if ndim is None:
        try:
            ndim = np.asarray(X).ndim
        except (TypeError, ValueError):  # e.g. a ragged nested list: check_array gives its own message
            ndim = 2
    return int(ndim)


class _RecurrentEstimator(BaseEstimator):
    """Shared hyperparameters, input handling, network building and training."""

    def __init__(
        self,
        cell="lstm",
        hidden_size=10,
        return_sequences=True,
        dense_units=64,
        epochs=20,
        batch_size=100,
        learning_rate=1e-3,
        optimizer="adam",
        early_stopping=5,
        validation_split=0.2,
        sequence_shape=None,
        standardize=True,
        random_state=0,
        verbose=False,
    ):
        self.cell = cell
        self.hidden_size = hidden_size
        self.return_sequences = return_sequences
        self.dense_units = dense_units
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.early_stopping = early_stopping
        self.validation_split = validation_split
        self.sequence_shape = sequence_shape
        self.standardize = standardize
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags

    # ── hyperparameters

    def _check_params(self, fn: str) -> None:
        """Validate the hyperparameters at fit time (scikit-learn keeps ``__init__`` free of checks)."""
        if self.cell not in _CELLS:
            raise ValueError(f"{fn}: cell must be one of {sorted(_CELLS)}; got {self.cell!r}")
        _positive_int(fn, "hidden_size", self.hidden_size)
        _positive_int(fn, "dense_units", self.dense_units)
        _positive_int(fn, "epochs", self.epochs)
        _positive_int(fn, "batch_size", self.batch_size)
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not lr > 0:
            raise ValueError(f"{fn}: learning_rate must be a positive number; got {lr!r}")
        if self.early_stopping is not None:
            _positive_int(fn, "early_stopping", self.early_stopping)
        vs = self.validation_split
        if isinstance(vs, bool) or not isinstance(vs, numbers.Real) or not 0 <= vs < 1:
            raise ValueError(f"{fn}: validation_split must be a number in [0, 1); got {vs!r}")

    # ── inputs

    def _sequences(self, fn: str, X, y=None, *, reset: bool, **y_params):
        """Validate ``X`` (and ``y``) and return ``X`` as ``(n, T, F)`` (plus ``y`` when given).

        With ``reset`` the sequence shape is learnt (``sequence_shape_``, ``n_features_in_``);
        otherwise ``X`` must match it.
        """
        if _input_ndim(X) == 3:
            X = check_array(X, allow_nd=True, dtype=_FLOATS)
            if y is not None:
                y = self._check_y(y, **y_params)
                check_consistent_length(X, y)
            n, T, F = X.shape
            if reset:
                self.sequence_shape_ = (T, F)
                self.n_features_in_ = T * F
                if hasattr(self, "feature_names_in_"):
                    del self.feature_names_in_
            elif (T, F) != tuple(self.sequence_shape_):
                raise ValueError(
                    f"{fn}: X must have shape (n, {self.sequence_shape_[0]}, {self.sequence_shape_[1]}) "
                    f"(T, F as in fit); got {X.shape}"
                )
        else:
            if y is None:
                X = validate_data(self, X, reset=reset, dtype=_FLOATS)
            else:
                X, y = validate_data(self, X, y, reset=reset, dtype=_FLOATS, **y_params)
            if reset:
                self.sequence_shape_ = self._flat_shape(fn, X.shape[1])
            X = X.reshape((X.shape[0],) + tuple(self.sequence_shape_))
        return X if y is None else (X, y)

    def _check_y(self, y, multi_output=False, y_numeric=False):
        if multi_output:
            y = check_array(y, ensure_2d=False, dtype=np.float64 if y_numeric else None)
        else:
            y = column_or_1d(y, warn=True)
            if y_numeric and y.dtype.kind not in "fc":
                y = y.astype(np.float64)
        return y

    def _flat_shape(self, fn: str, width: int) -> tuple[int, int]:
        """``(T, F)`` for flat rows of ``width`` features: ``sequence_shape``, or ``(1, width)``."""
        if self.sequence_shape is None:
            return (1, width)
        shape = self.sequence_shape
        ok = (
            isinstance(shape, (tuple, list))
            and len(shape) == 2
            and all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1 for s in shape)
        )
        if not ok:
            raise ValueError(f"{fn}: sequence_shape must be None or a tuple (T, F) of positive integers; got {shape!r}")
        T, F = int(shape[0]), int(shape[1])
        if T * F != width:
            raise ValueError(
                f"{fn}: sequence_shape={shape!r} needs flat rows of T·F = {T * F} features; got X with {width} features"
            )
        return (T, F)

    # ── the network

    def _build(self, T: int, F: int, n_out: int, loss: str, seed: int) -> Sequential:
        """``cell|H|F|T|0|1,RESHAPE|FLAT,DENSE|dense_units|TANH,DENSE|n_out|LINEAR``."""
        rng = np.random.default_rng(seed)
        H, D = int(self.hidden_size), int(self.dense_units)
        seeds = [int(s) for s in rng.integers(2**31, size=3)]
        rec = _CELLS[self.cell](F, H, return_sequences=bool(self.return_sequences), seed=seeds[0])
        width = T * H if self.return_sequences else H
        layers = [rec, Flatten(), Dense(width, D, activation="tanh", seed=seeds[1]), Dense(D, n_out, seed=seeds[2])]
        return Sequential(layers, loss=loss)

    def _seed(self) -> int:
        return int(check_random_state(self.random_state).randint(2**31 - 1))

    def _fit_options(self, seed: int) -> dict:
        return {
            "epochs": int(self.epochs), "batch_size": int(self.batch_size), "optimizer": self.optimizer,
            "learning_rate": float(self.learning_rate), "early_stopping": self.early_stopping, "seed": seed,
            "verbose": bool(self.verbose),
        }

    def _finish(self, model, history):
        # Training ran in float32; predictions use the trained weights in float64, so that they do
        # not depend (in the last bits) on how the samples are grouped into batches.
        for layer in model.layers:
            layer.astype(np.float64)
        self.model_ = model
        self.history_ = history
        self.n_iter_ = len(history.epoch)
        return self

    @staticmethod
    def _sample_weight(sample_weight, X3):
        """scikit-learn's ``sample_weight`` (None, a number or ``(n,)``; any sign; not all zero) as
        float64 ``(n,)``, and the events it keeps: those of non-zero weight (a weight of 0 is the
        event left out, exactly, as fit does)."""
        w = _check_sample_weight(sample_weight, X3, dtype=np.float64)
        return w, w != 0

    def _validation_split(self, y, stratify: bool) -> float:
        """``validation_split``, or 0 when a split would leave the validation or training part empty."""
        vs = float(self.validation_split)
        if vs == 0:
            return 0.0
        if stratify:
            counts = np.unique(y, return_counts=True)[1]
            n_val = int(sum(round(vs * c) for c in counts))
        else:
            n_val = int(round(vs * len(y)))
        return vs if 1 <= n_val <= len(y) - 1 else 0.0

    def _outputs(self, fn: str, X, lengths=None) -> np.ndarray:
        check_is_fitted(self, "model_")
        X, lengths = _ragged(fn, X, lengths, max_length=self.sequence_shape_[0])
        X3 = self._sequences(fn, X, reset=False)
        X3, L = self._lengths(fn, X3, lengths)
        return np.asarray(self.model_.decision_function(self._network_input(X3), lengths=L), np.float64)

    @staticmethod
    def _lengths(fn: str, X3, lengths):
        """``(X3, lengths)``: the lengths checked against the sequences, padded steps set to 0."""
        return sequences.inputs(fn, X3, lengths)

    def _network_input(self, X3):
        return X3


class RecurrentClassifier(ClassifierMixin, _RecurrentEstimator):
    """A recurrent network classifier (LSTM, GRU or simple RNN) with the scikit-learn API.

    Parameters:
        cell: ``"lstm"`` (default), ``"gru"`` or ``"rnn"``.
        hidden_size: H, the recurrent layer's units (10).
        return_sequences: feed every step's h_t to the dense layer (True, TMVA's tutorial) or only h_T.
        dense_units: units of the tanh dense layer (64).
        epochs (20), batch_size (100), learning_rate (1e-3), optimizer (``"adam"``),
        early_stopping (5 epochs, None to train all), validation_split (0.2; 0 when the data are too
        few to hold out a part), standardize (True): passed to :func:`bptt.train.fit`.
        sequence_shape: ``(T, F)`` to read flat ``(n, T·F)`` rows as sequences; None reads them as
            one-step sequences. ``(n, T, F)`` arrays need nothing.
        random_state: int, RandomState or None; seeds the weights, the validation split and the batch order.
        verbose: progress output of the training loop.

    Attributes:
        classes_: the labels seen in fit, sorted.  n_features_in_: T·F.  sequence_shape_: ``(T, F)``.
        model_: the trained :class:`bptt.model.Sequential` (trained in float32, then converted to
            float64 so predictions do not depend on how samples are batched).
        history_: its :class:`bptt.train.History`.
        n_iter_: epochs run.
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        return tags

    def fit(self, X, y, sample_weight=None, lengths=None):
        """Train on ``X`` ``(n, T, F)`` / ``(n, T·F)`` and labels ``y`` ``(n,)``; return self.

        ``sample_weight``: event weights ``(n,)`` (or one number for all), as in scikit-learn; the
        loss minimised is the weighted mean (:func:`bptt.train.fit`), weight 0 leaves an event out.
        ``lengths``: ``(n,)`` real steps of each sequence (module docstring), None: all T.
        """
        fn = "RecurrentClassifier.fit"
        self._check_params(fn)
        if y is None:
            raise ValueError(f"{fn}: this estimator requires y to be passed, but the target y is None")
        X, lengths = _ragged(fn, X, lengths)
        X3, y = self._sequences(fn, X, y, reset=True)
        X3, L = self._lengths(fn, X3, lengths)
        check_classification_targets(y)
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        C = len(self.classes_)
        if C < 2:
            raise ValueError(
                f"{fn}: y must hold at least 2 classes to train a classifier; got 1 class: {self.classes_[0]!r}"
            )
        loss, n_out, target = ("bce", 1, y_enc.astype(np.float32)) if C == 2 else ("softmax_ce", C, y_enc.astype(np.int64))
        w, kept = self._sample_weight(sample_weight, X3)
        seed = self._seed()
        model = self._build(X3.shape[1], X3.shape[2], n_out, loss, seed)
        history = model.fit(
            X3, target, validation_split=self._validation_split(y_enc[kept], stratify=True),
            standardize=bool(self.standardize), sample_weight=None if sample_weight is None else w, lengths=L,
            **self._fit_options(seed),
        )
        return self._finish(model, history)

    def decision_function(self, X, lengths=None):
        """Logits: ``(n,)`` for two classes (positive means ``classes_[1]``), else ``(n, n_classes)``."""
        return self._outputs("RecurrentClassifier.decision_function", X, lengths)

    def predict_proba(self, X, lengths=None):
        """Class probabilities ``(n, n_classes)`` in the order of ``classes_``; rows sum to 1."""
        out = self.decision_function(X, lengths)
        if out.ndim == 1:
            p1 = 1.0 / (1.0 + np.exp(-np.clip(out, -500, 500)))
            return np.column_stack([1.0 - p1, p1])
        e = np.exp(out - out.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X, lengths=None):
        """``log(predict_proba(X))``."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X, lengths))

    def predict(self, X, lengths=None):
        """The most probable label of each sequence, from ``classes_``."""
        out = self.decision_function(X, lengths)
        idx = (out > 0).astype(np.intp) if out.ndim == 1 else np.argmax(out, axis=1)
        return self.classes_[idx]

    def score(self, X, y, sample_weight=None, lengths=None):
        """The accuracy of :meth:`predict` (weighted by ``sample_weight``), as scikit-learn's."""
        from sklearn.metrics import accuracy_score

        return accuracy_score(y, self.predict(X, lengths), sample_weight=sample_weight)


class RecurrentRegressor(RegressorMixin, _RecurrentEstimator):
    """A recurrent network regressor (mean squared error) with the scikit-learn API.

    ``y`` may be ``(n,)`` (``predict`` returns ``(n,)``) or ``(n, k)`` (``predict`` returns
    ``(n, k)``). Parameters and attributes as :class:`RecurrentClassifier` (no ``classes_``), except:

    * ``standardize=True`` also standardises each target, ``y' = (y − y_mean_) / y_scale_``: the
      network fits y' and :meth:`predict` returns ``out · y_scale_ + y_mean_``;
    * the inputs are standardised by ``standardizer_`` (a :class:`bptt.data.arrays.Standardizer`,
      or None) before they reach ``model_``, so use :meth:`predict` rather than ``model_`` directly.

    ``n_outputs_`` is k (1 for a 1-D ``y``).

    Example::

        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(300, 5, 1))
        >>> y = 3.0 * X[:, :, 0].mean(axis=1) + 10.0
        >>> reg = RecurrentRegressor(cell="rnn", hidden_size=4, dense_units=8, epochs=40, batch_size=20,
        ...                          learning_rate=0.01).fit(X, y)
        >>> bool(reg.score(X, y) > 0.9), reg.predict(X[:2]).shape
        (True, (2,))
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

    def fit(self, X, y, sample_weight=None, lengths=None):
        """Train on ``X`` ``(n, T, F)`` / ``(n, T·F)`` and targets ``y`` ``(n,)`` or ``(n, k)``; return self.

        ``sample_weight``: event weights ``(n,)`` (or one number for all), as in scikit-learn: the
        weighted mean squared error is minimised; weight 0 leaves an event out (of the target and
        input scaling too). ``lengths``: ``(n,)`` real steps of each sequence (module docstring).
        """
        fn = "RecurrentRegressor.fit"
        self._check_params(fn)
        if y is None:
            raise ValueError(f"{fn}: this estimator requires y to be passed, but the target y is None")
        X, lengths = _ragged(fn, X, lengths)
        X3, y = self._sequences(fn, X, y, reset=True, multi_output=True, y_numeric=True)
        X3, L = self._lengths(fn, X3, lengths)
        if y.ndim > 2:
            raise ValueError(f"{fn}: y must have shape (n,) or (n, k); got {y.shape}")
        self._y_1d = y.ndim == 1
        self.n_outputs_ = 1 if y.ndim == 1 else y.shape[1]
        w, kept = self._sample_weight(sample_weight, X3)
        X3, y, w, L = X3[kept], y[kept], w[kept], None if L is None else L[kept]
        Y = np.asarray(y, np.float64).reshape(len(y), self.n_outputs_)
        # standardize also scales the targets (the network then fits outputs of order 1); predict
        # maps back.
        self.y_mean_ = Y.mean(axis=0) if self.standardize else np.zeros(self.n_outputs_)
        scale = Y.std(axis=0) if self.standardize else np.ones(self.n_outputs_)
        self.y_scale_ = np.where(scale > 0, scale, 1.0)
        Y = ((Y - self.y_mean_) / self.y_scale_).astype(np.float32)
        # the inputs are standardised here (on the real steps) and the events split here
        real = X3 if L is None else X3[sequences.step_mask(L, X3.shape[1])]
        self.standardizer_ = Standardizer().fit(real) if self.standardize else None
        Z = self._network_input(X3)
        seed = self._seed()
        n_val = int(round(self._validation_split(Y[:, 0], stratify=False) * len(Z)))
        order = np.random.default_rng(seed).permutation(len(Z))
        val, train = order[:n_val], order[n_val:]
        model = self._build(X3.shape[1], X3.shape[2], self.n_outputs_, "mse", seed)
        weighted = sample_weight is not None
        part = (lambda idx: None) if L is None else (lambda idx: L[idx])  # noqa: E731
        history = model.fit(
            Z[train], Y[train], validation_data=((Z[val], Y[val], w[val]) if weighted else (Z[val], Y[val])) if n_val else None,
            validation_split=0.0, standardize=False, sample_weight=w[train] if weighted else None, lengths=part(train),
            validation_lengths=part(val) if n_val else None, **self._fit_options(seed),
        )
        return self._finish(model, history)

    def _network_input(self, X3):
        return self.standardizer_.transform(X3) if self.standardizer_ is not None else X3

    def predict(self, X, lengths=None):
        """Predictions ``(n,)`` for a 1-D training ``y``, else ``(n, k)``."""
        out = self._outputs("RecurrentRegressor.predict", X, lengths) * self.y_scale_ + self.y_mean_
        return out[:, 0] if self._y_1d else out

    def score(self, X, y, sample_weight=None, lengths=None):
        """R² of :meth:`predict` (weighted by ``sample_weight``), as scikit-learn's."""
        from sklearn.metrics import r2_score

        return r2_score(y, self.predict(X, lengths), sample_weight=sample_weight)
