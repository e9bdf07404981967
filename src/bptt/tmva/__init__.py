"""TMVA option strings, parsed verbatim into Python objects, and what bptt builds from them.

ROOT TMVA books a deep-learning method (``MethodDL``) with one colon-separated option string::

    !H:V:ErrorStrategy=CROSSENTROPY:VarTransform=None:WeightInitialization=XAVIERUNIFORM:
    ValidationSize=0.2:RandomSeed=1234:InputLayout=10|30:
    Layout=LSTM|10|30|10|0|1,RESHAPE|FLAT,DENSE|64|TANH,LINEAR:
    TrainingStrategy=LearningRate=1e-3,Momentum=0.0,...,Optimizer=ADAM,DropConfig=0.0+0.+0.+0.:
    Architecture=CPU

This module reads such strings (the ``Layout``, ``InputLayout`` and ``TrainingStrategy`` values on
their own, or the whole booking string) into :class:`LayerSpec` and :class:`TrainingStrategy`
objects, so that TMVA users can reuse the strings they already have.

Layout tokens (comma-separated; fields of a token are ``|``-separated, field 1 being the type):

- ``RNN|stateSize|inputSize|timeSteps[|rememberState|returnSequence]`` and the same for ``LSTM``
  and ``GRU``; the two flags are 0 or 1 (default 0). ``GRU`` takes an optional 7th field
  ``resetGateAfter`` (default 0, TMVA's CPU form ``n = tanh(x W_n + (r ⊙ h) U_n + …)``; 1 is the
  PyTorch/cuDNN form). TMVA's simple RNN uses tanh.
- ``DENSE|width|ACTIVATION`` or ``DENSE|ACTIVATION|width`` (TMVA reads both orders), ACTIVATION one
  of TANH (the default, as in TMVA), RELU, SIGMOID, LINEAR (= identity) or bptt's IDENTITY; TMVA's
  SOFTSIGN, GAUSS, SYMMRELU and FTANH are refused by name. The width is a number or, as in TMVA, a
  formula of N, the number of input variables (InputLayout's depth × height × width): ``N+10``,
  ``2*N``, ``(N+100)*2``, evaluated in floating point and truncated to an int; a width of 0, or
  none, is the output layer's (1 for a binary classifier).
- ``RESHAPE|FLAT`` (flatten each sequence to a vector) or ``RESHAPE|depth|height|width``.
- A token without a layer type is a dense layer, as in TMVA (a legacy of its older DNN interface):
  ``ACTIVATION|width``, ``width|ACTIVATION`` or ``ACTIVATION``. So a bare ``LINEAR`` at the end is the
  network's output layer: 1 unit, identity activation, for binary classification (the sigmoid of
  TMVA's cross-entropy loss is applied by the loss, not by the layer).

``InputLayout`` is TMVA's depth|height|width: ``W`` is ``1|1|W`` (W input variables), ``T|W`` is
``T|1|W`` (T time steps of W features); an event is depth steps of height × width values.

Every error is a :class:`TMVAOptionError` (a ``ValueError``) that quotes the offending token, gives
its 1-based position and says what was expected.

Example::

    >>> from bptt.tmva import parse_input_layout, parse_layout, parse_training_strategy
    >>> parse_input_layout("10|30")
    (10, 30)
    >>> [(l.kind, l.params) for l in parse_layout("LSTM|10|30|10|0|1,RESHAPE|FLAT,DENSE|64|TANH,LINEAR")][2:]
    [('dense', {'units': 64, 'activation': 'tanh'}), ('dense', {'units': 1, 'activation': 'identity'})]
    >>> s = parse_training_strategy("LearningRate=1e-3,BatchSize=100,Optimizer=ADAM,MaxEpochs=20")
    >>> s.learning_rate, s.batch_size, s.optimizer, s.max_epochs
    (0.001, 100, 'adam', 20)
"""

from ._common import TMVAOptionError, TMVAOptionWarning
from .layout import (
    LayerSpec,
    check_layout,
    input_shape,
    parse_batch_layout,
    parse_input_layout,
    parse_layout,
)
from .options import TrainingStrategy, parse_options, parse_training_strategy

__all__ = [
    "TMVAOptionError",
    "TMVAOptionWarning",
    "LayerSpec",
    "input_shape",
    "parse_batch_layout",
    "TrainingStrategy",
    "parse_input_layout",
    "parse_layout",
    "parse_training_strategy",
    "parse_options",
    "check_layout",
]
