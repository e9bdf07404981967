"""Stateful layers: each holds ``params`` and ``grads`` dicts and calls a functional primitive."""

from .base import Layer
from .dense import Dense
from .dropout import Dropout
from .recurrent import GRU, LSTM, RNN
from .shape import Flatten, Reshape

__all__ = ["Layer", "Dense", "LSTM", "GRU", "RNN", "Flatten", "Reshape", "Dropout"]
