"""Initialisers: shapes, dtypes, determinism, statistics, orthogonality, names; layer keywords.

Statistical tolerances are five standard errors of the estimate for the sample drawn (n values):
for a variance estimate s² of a distribution with kurtosis κ the standard error is
σ²·√((κ − 1)/n) (κ = 3 normal, 9/5 uniform); for a fraction p, √(p(1 − p)/n); for the mean, σ/√n.
At 5σ a correct implementation fails with probability < 1e-6 — and the draws are seeded anyway.
"""

from __future__ import annotations

import numpy as np
import pytest

from bptt import init
from bptt.layers import GRU, LSTM, RNN, Dense

N_IN, N_OUT = 200, 300  # n = 60 000 values per sample
N = N_IN * N_OUT
FRACTION_WITHIN_1_SIGMA = 0.6826894921370859  # P(|X| < σ) for a normal X

RANDOM = ["glorot_uniform", "glorot_normal", "xavier_uniform", "xavier_normal", "gaussian", "uniform", "orthogonal"]
ALL = RANDOM + ["zeros"]


def draw(name, shape=(N_IN, N_OUT), seed=0, dtype=np.float64, **kw):
    return init.get_initializer(name)(shape, np.random.default_rng(seed), dtype, **kw)


def assert_variance(a, variance, kurtosis):
    se = variance * np.sqrt((kurtosis - 1) / a.size)
    assert abs(a.var() - variance) < 5 * se, (a.var(), variance, se)
    assert abs(a.mean()) < 5 * np.sqrt(variance / a.size)


def assert_normal_shape(a, std):
    """A normal (not a uniform of the same variance, which has 57.7 % within 1σ)."""
    p = np.mean(np.abs(a) < std)
    assert abs(p - FRACTION_WITHIN_1_SIGMA) < 5 * np.sqrt(FRACTION_WITHIN_1_SIGMA * (1 - FRACTION_WITHIN_1_SIGMA) / a.size)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", ALL)
def test_shape_dtype_and_determinism(name, dtype):
    a = draw(name, (7, 12), seed=5, dtype=dtype)
    assert a.shape == (7, 12) and a.dtype == dtype
    np.testing.assert_array_equal(a, draw(name, (7, 12), seed=5, dtype=dtype))
    if name != "zeros":
        assert np.unique(a).size == a.size  # continuous draws, no repeats
        assert not np.array_equal(a, draw(name, (7, 12), seed=6, dtype=dtype))
    else:
        assert not a.any()


@pytest.mark.parametrize("name", ["glorot_uniform", "glorot_normal", "gaussian", "uniform", "zeros"])
def test_vector_shapes_for_biases(name):
    b = draw(name, (12,), dtype=np.float32)
    assert b.shape == (12,) and b.dtype == np.float32


def test_glorot_uniform_bounds_and_variance():
    limit = np.sqrt(6 / (N_IN + N_OUT))
    a = draw("glorot_uniform")
    assert np.abs(a).max() <= limit and np.abs(a).max() > 0.999 * limit  # fills the whole range
    assert_variance(a, limit**2 / 3, kurtosis=9 / 5)


def test_glorot_normal_variance_and_shape():
    std = np.sqrt(2 / (N_IN + N_OUT))
    a = draw("glorot_normal")
    assert_variance(a, std**2, kurtosis=3)
    assert_normal_shape(a, std)


def test_gaussian_default_is_tmvas_sqrt_2_over_fan_in():
    std = np.sqrt(2 / N_IN)
    a = draw("gaussian")
    assert_variance(a, std**2, kurtosis=3)
    assert_normal_shape(a, std)
    b = draw("gaussian", std=0.05)
    assert_variance(b, 0.05**2, kurtosis=3)


def test_uniform_default_is_tmvas_sqrt_2_over_fan_in():
    limit = np.sqrt(2 / N_IN)
    a = draw("uniform")
    assert np.abs(a).max() <= limit and np.abs(a).max() > 0.999 * limit
    assert_variance(a, limit**2 / 3, kurtosis=9 / 5)
    b = draw("uniform", limit=0.1)
    assert np.abs(b).max() <= 0.1
    assert_variance(b, 0.1**2 / 3, kurtosis=9 / 5)


@pytest.mark.parametrize("shape", [(6, 6), (10, 4), (4, 10)], ids=["square", "tall", "wide"])
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-13), (np.float32, 1e-6)], ids=["float64", "float32"])
def test_orthogonal(shape, dtype, tol):
    q = draw("orthogonal", shape, dtype=dtype).astype(np.float64)
    gram = q.T @ q if shape[0] >= shape[1] else q @ q.T
    np.testing.assert_allclose(gram, np.eye(min(shape)), atol=tol)


def test_recurrent_orthogonal_is_orthogonal_per_gate_block():
    H, G = 5, 4
    U = init.recurrent_orthogonal((H, G * H), np.random.default_rng(0), np.float64)
    for g in range(G):
        block = U[:, g * H : (g + 1) * H]
        np.testing.assert_allclose(block.T @ block, np.eye(H), atol=1e-13)
    assert not np.allclose(U[:, :H], U[:, H : 2 * H])


@pytest.mark.parametrize(
    "name,function",
    [
        ("XAVIER", init.tmva_xavier),  # TMVA's InitializeGlorotNormal: σ = √(6/(in+out)), cut at 2σ
        ("XAVIERUNIFORM", init.glorot_uniform),
        ("GAUSS", init.gaussian),
        ("UNIFORM", init.uniform),
        ("ZERO", init.zeros),
        ("xavier", init.tmva_xavier),
        ("IDENTITY", init.identity),
        ("XavierUniform", init.glorot_uniform),
        ("Gauss", init.gaussian),
        ("glorot_uniform", init.glorot_uniform),
        ("GLOROT_NORMAL", init.glorot_normal),
        ("xavier_uniform", init.glorot_uniform),
        ("Xavier_Normal", init.glorot_normal),
        ("gaussian", init.gaussian),
        ("uniform", init.uniform),
        ("zeros", init.zeros),
        ("Orthogonal", init.orthogonal),
    ],
)
def test_names_map_to_functions(name, function):
    assert init.get_initializer(name) is function


@pytest.mark.parametrize("bad", ["he_normal", "", None, 3])
def test_unknown_name_lists_the_valid_ones(bad):
    with pytest.raises(ValueError) as info:
        init.get_initializer(bad)
    message = str(info.value)
    assert message.startswith("get_initializer: name must be one of ") and f"got {bad!r}" in message
    for name in ALL + ["XAVIER", "XAVIERUNIFORM", "GAUSS", "UNIFORM", "ZERO"]:
        assert name in message


@pytest.mark.parametrize("kw", [{"std": 0.0}, {"std": -1.0}, {"std": float("nan")}], ids=["zero", "negative", "nan"])
def test_gaussian_rejects_bad_std(kw):
    with pytest.raises(ValueError, match="gaussian: std must be a positive finite number"):
        draw("gaussian", **kw)


def test_uniform_rejects_bad_limit():
    with pytest.raises(ValueError, match="uniform: limit must be a positive finite number; got -0.5"):
        draw("uniform", limit=-0.5)


# --- layer keywords -----------------------------------------------------------------------


@pytest.mark.parametrize("cls,gates,biases", [(LSTM, 4, ("b",)), (GRU, 3, ("b", "b_u")), (RNN, 1, ("b",))], ids=["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_recurrent_defaults_reproduce_the_original_weights(cls, gates, biases, dtype):
    """Defaults draw exactly as before the keywords existed: Glorot W, then per-gate orthogonal U."""
    I, H, seed = 5, 7, 11
    layer = cls(I, H, seed=seed, dtype=dtype)
    rng = np.random.default_rng(seed)
    np.testing.assert_array_equal(layer.params["W"], init.glorot_uniform((I, gates * H), rng, dtype))
    np.testing.assert_array_equal(layer.params["U"], init.recurrent_orthogonal((H, gates * H), rng, dtype))
    for b in biases:
        np.testing.assert_array_equal(layer.params[b], np.zeros(gates * H, dtype))
    assert (layer.kernel_initializer, layer.recurrent_initializer, layer.bias_initializer) == ("glorot_uniform", "orthogonal", "zeros")


def test_dense_defaults_reproduce_the_original_weights():
    layer = Dense(6, 9, seed=4)
    np.testing.assert_array_equal(layer.params["W"], init.glorot_uniform((6, 9), np.random.default_rng(4), np.float32))
    np.testing.assert_array_equal(layer.params["b"], np.zeros(9, np.float32))
    assert (layer.kernel_initializer, layer.bias_initializer) == ("glorot_uniform", "zeros")


def test_recurrent_initializer_keywords_are_used_and_kept():
    H, I, seed = 6, 4, 2
    layer = GRU(I, H, seed=seed, dtype=np.float64, kernel_initializer="GAUSS", recurrent_initializer="xavier_uniform",
                bias_initializer="uniform")
    rng = np.random.default_rng(seed)
    np.testing.assert_array_equal(layer.params["W"], init.gaussian((I, 3 * H), rng, np.float64))
    np.testing.assert_array_equal(layer.params["U"], init.glorot_uniform((H, 3 * H), rng, np.float64))
    np.testing.assert_array_equal(layer.params["b"], init.uniform((3 * H,), rng, np.float64))
    np.testing.assert_array_equal(layer.params["b_u"], init.uniform((3 * H,), rng, np.float64))
    assert (layer.kernel_initializer, layer.recurrent_initializer, layer.bias_initializer) == ("GAUSS", "xavier_uniform", "uniform")
    # A Glorot-uniform U is not orthogonal (the default per-gate orthogonal U is).
    block = layer.params["U"][:, :H]
    assert not np.allclose(block.T @ block, np.eye(H), atol=1e-3)
    default_block = GRU(I, H, seed=seed, dtype=np.float64).params["U"][:, :H]
    np.testing.assert_allclose(default_block.T @ default_block, np.eye(H), atol=1e-13)


def test_dense_initializer_keywords():
    layer = Dense(50, 40, seed=0, dtype=np.float64, kernel_initializer="zero", bias_initializer="gaussian")
    assert not layer.params["W"].any() and layer.params["b"].std() > 0
    assert layer.kernel_initializer == "zero"


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: LSTM(3, 4, kernel_initializer="he"), r"LSTM: kernel_initializer must be one of .*; got 'he'"),
        (lambda: GRU(3, 4, recurrent_initializer="ones"), r"GRU: recurrent_initializer must be one of .*; got 'ones'"),
        (lambda: RNN(3, 4, bias_initializer=None), r"RNN: bias_initializer must be one of .*; got None"),
        (lambda: Dense(3, 4, kernel_initializer="normal"), r"Dense: kernel_initializer must be one of .*; got 'normal'"),
    ],
)
def test_layer_initializer_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()
