"""The published worked example (Gomez 2016), forward and backward.

The forward values are compared with the published numbers (to their printed precision, 1e-4).
The backward values are not copied from the publication: they are derived by central differences
(``bptt.gradcheck.numerical_gradient``) on an independent, step-by-step LSTM written below in plain
scalar Python, whose per-step pre-activations z_t and cell states c_t take additive offsets, so
that dL/dz_t and dL/dc_t can be differentiated numerically too.
"""

from __future__ import annotations

import hashlib
import json
import math
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from bptt import example
from bptt.gradcheck import numerical_gradient

#: SHA-256 of the published file, shared/numerical_example.json, as it was published: the
#: package's copy must be that file, byte for byte, whether or not shared/ is beside the checkout.
PUBLISHED_SHA256 = "6dfcac52400b86585f96fbaf470435239c8bf4d8ae9b6ffa22036cb4bd06b0d6"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "numerical_example.json"


def published() -> dict:
    return example.load()


def test_packaged_copy_is_the_published_example():
    """The copy shipped with the package (what example.load reads) is the published file: checked
    against its recorded hash, so the test needs nothing beside the checkout and never skips.
    Where shared/ is beside the checkout (the project's machines and CI), its file must have that
    hash too, so a change on either side is seen."""
    packaged = resources.files("bptt").joinpath("data/numerical_example.json").read_bytes()
    assert hashlib.sha256(packaged).hexdigest() == PUBLISHED_SHA256
    assert example.load() == json.loads(packaged)
    if SHARED.exists():
        assert hashlib.sha256(SHARED.read_bytes()).hexdigest() == PUBLISHED_SHA256


def scalar_lstm_loss(ex, W, U, b, z_offset, c_offset, x=None) -> float:
    """½ Σ_t (h_t − y_t)² for the one-unit LSTM, one scalar at a time, gate order i, f, g, o."""
    x = ex["x"][0] if x is None else x
    sig = lambda v: 1.0 / (1.0 + math.exp(-v))  # noqa: E731
    h = c = 0.0
    loss = 0.0
    for t, x_t in enumerate(x):
        z = [sum(x_t[k] * W[k][j] for k in range(len(x_t))) + h * U[0][j] + b[j] + z_offset[t][j] for j in range(4)]
        i, f, g, o = sig(z[0]), sig(z[1]), math.tanh(z[2]), sig(z[3])
        c = f * c + i * g + c_offset[t]
        h = o * math.tanh(c)
        loss += 0.5 * (h - ex["y"][0][t][0]) ** 2
    return loss


@pytest.fixture(scope="module")
def result():
    return example.run(lr=0.1)


@pytest.fixture(scope="module")
def expected():
    """Every backward quantity by central differences on :func:`scalar_lstm_loss`."""
    ex = published()
    arrays = {
        "W": np.array(ex["W"], float),
        "U": np.array(ex["U"], float),
        "b": np.array(ex["b"], float),
        "x": np.array(ex["x"], float)[0],
        "dz": np.zeros((2, 4)),
        "dc": np.zeros((2, 1)),
    }

    def loss():
        a = arrays
        return scalar_lstm_loss(ex, a["W"], a["U"], a["b"], a["dz"], a["dc"][:, 0], x=a["x"])

    return {k: numerical_gradient(loss, a, eps=1e-6) for k, a in arrays.items()}


def test_reference_reproduces_published_forward():
    """The independent scalar LSTM gives the published loss: it is the model the publication used."""
    ex = published()
    h = [f["h"] for f in ex["forward"]]
    published_loss = sum(0.5 * (h[t] - ex["y"][0][t][0]) ** 2 for t in range(2))
    ours = scalar_lstm_loss(ex, ex["W"], ex["U"], ex["b"], np.zeros((2, 4)), np.zeros(2))
    assert ours == pytest.approx(published_loss, abs=1e-4)


def test_forward_matches_published(result):
    ex = published()
    H = 1
    for t, step in enumerate(ex["forward"]):
        for k, gate in enumerate("ifgo"):
            assert result["gates"][0, t, k * H] == pytest.approx(step[gate], abs=ex["tolerance"]), (t, gate)
        assert result["c"][0, t, 0] == pytest.approx(step["c"], abs=ex["tolerance"]), (t, "c")
        assert result["h"][0, t, 0] == pytest.approx(step["h"], abs=ex["tolerance"]), (t, "h")


def test_gate_deltas_per_step(result, expected):
    """dL/dz_t for the i, f, g, o gates and the total dL/dc_t at each step."""
    np.testing.assert_allclose(result["grads"]["dz"][0], expected["dz"], rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(result["grads"]["dc"][0], expected["dc"], rtol=1e-7, atol=1e-10)


def test_weight_and_input_gradients(result, expected):
    for name in ("W", "U", "b"):
        np.testing.assert_allclose(result["grads"]["d" + name], expected[name], rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(result["grads"]["dx"][0], expected["x"], rtol=1e-7, atol=1e-10)


def test_weights_after_one_sgd_step(result, expected):
    ex = published()
    for name in ("W", "U", "b"):
        np.testing.assert_allclose(
            result["updated"][name], np.array(ex[name]) - 0.1 * expected[name], rtol=1e-9, atol=1e-11
        )


def test_report_prints_every_stage(result):
    text = example.format_report(result, published=published())
    for needle in ("CellForward", "CellBackward", "dz_i", "dW", "dU", "db", "SGD step", "Finite-difference"):
        assert needle in text
    errors = example.check_example(result)
    assert errors.passed(1e-6)
