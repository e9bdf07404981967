"""TMVA's VarTransform (bptt.transforms): N, D, G and their chains, against hand numbers and
NumPy/SciPy oracles (the formulas of TMVA's Variable*Transform.cxx written out here)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from scipy import linalg, special

from bptt.transforms import G_MAX_KNOTS, VarTransform, normal_quantile, parse_var_transform


def events(n=400, T=3, F=2, seed=0):
    rng = np.random.default_rng(seed)
    mix = np.array([[1.0, 0.6], [0.0, 0.8]])
    return (rng.normal(size=(n, T, F)) @ mix + np.array([2.0, -1.0])).astype(np.float64)


# ───────────────────────────────────────────────────────────────────────────── N


def test_normalize_maps_the_training_range_onto_minus_one_one():
    X = np.array([[[0.0, 10.0]], [[2.0, 30.0]], [[1.0, 20.0]], [[0.5, 10.0]]])
    t = VarTransform("N").fit(X)
    np.testing.assert_array_equal(t.transform(X)[:, 0], [[-1, -1], [1, 1], [0, 0], [-0.5, -1]])
    # outside the training range the same line: 2 (x - min) / (max - min) - 1
    np.testing.assert_allclose(t.transform(np.array([[[4.0, 0.0]]]))[0, 0], [3.0, -2.0])


def test_normalize_a_constant_variable_is_x_minus_min_not_nan():
    X = np.array([[[5.0, 1.0]], [[5.0, 3.0]]])
    Z = VarTransform("N").fit(X).transform(np.array([[[5.0, 1.0]], [[6.5, 3.0]]]))
    np.testing.assert_array_equal(Z[:, 0], [[0.0, -1.0], [1.5, 1.0]])


def test_normalize_acts_on_each_of_the_t_times_f_variables():
    # TMVA's AddVariablesArray: every (t, f) is its own variable with its own range
    X = np.zeros((2, 2, 1))
    X[:, 0, 0] = [0.0, 1.0]
    X[:, 1, 0] = [0.0, 100.0]
    Z = VarTransform("N").fit(X).transform(np.array([[[0.5], [50.0]]]))
    np.testing.assert_array_equal(Z, [[[0.0], [0.0]]])


def test_normalize_keeps_dtype_and_shape():
    X = events().astype(np.float32)
    Z = VarTransform("Norm").fit(X).transform(X)
    assert Z.dtype == np.float32 and Z.shape == X.shape
    assert Z.min() == -1.0 and Z.max() == 1.0


# ───────────────────────────────────────────────────────────────────────────── D


def decorrelation_oracle(Z, w):
    """TMVA's CalcCovarianceMatrices (weighted, divided by Σw) and GetSQRootMatrix (then inverted)."""
    cov = np.cov(Z.T, aweights=w, bias=True)
    return np.linalg.inv(linalg.sqrtm(cov).real)


def test_decorrelate_is_the_inverse_square_root_of_the_weighted_covariance():
    X = events()
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(X))
    t = VarTransform("D").fit(X, sample_weight=w)
    M = decorrelation_oracle(X.reshape(len(X), -1), w)
    probe = events(n=5, seed=9)
    np.testing.assert_allclose(t.transform(probe).reshape(5, -1), probe.reshape(5, -1) @ M.T, rtol=1e-9, atol=1e-12)
    # the weighted covariance of the decorrelated training events is the identity
    Zd = t.transform(X).reshape(len(X), -1)
    np.testing.assert_allclose(np.cov(Zd.T, aweights=w, bias=True), np.eye(6), atol=1e-10)


def test_decorrelate_does_not_subtract_the_mean():
    t = VarTransform("D").fit(events())
    np.testing.assert_array_equal(t.transform(np.zeros((1, 3, 2))), np.zeros((1, 3, 2)))


def test_decorrelate_refuses_a_constant_variable_by_its_index():
    X = events()
    X[:, 1, 0] = 3.0  # flattened variable 1·2 + 0 = 2
    with pytest.raises(ValueError, match=r"VarTransform=D: D needs an invertible covariance matrix .* variables \[2\]"):
        VarTransform("D").fit(X)


def test_decorrelate_above_tmvas_200_variables_warns_and_decorrelates():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 30, 10))
    from bptt.tmva._common import TMVAOptionWarning

    with pytest.warns(TMVAOptionWarning, match=r"D on 300 variables: TMVA skips decorrelation above 200"):
        t = VarTransform("D").fit(X)
    Z = t.transform(X).reshape(600, -1)
    np.testing.assert_allclose(np.cov(Z.T, bias=True), np.eye(300), atol=1e-8)


# ───────────────────────────────────────────────────────────────────────────── G


def test_gauss_of_distinct_training_values_is_the_normal_quantile_of_their_mid_ranks():
    rng = np.random.default_rng(3)
    n = 200
    X = rng.exponential(size=(n, 1, 2))
    Z = VarTransform("G").fit(X).transform(X)
    for j in range(2):
        ranks = np.argsort(np.argsort(X[:, 0, j]))
        np.testing.assert_allclose(Z[:, 0, j], special.ndtri((ranks + 0.5) / n), rtol=1e-12, atol=1e-12)


def test_gauss_uses_event_weights_and_clips_outside_the_range():
    X = np.array([[[0.0]], [[1.0]], [[2.0]]])
    w = np.array([1.0, 2.0, 1.0])
    t = VarTransform("G").fit(X, sample_weight=w)
    # mid-point weighted CDF: 0.5/4, (1 + 1)/4, (3 + 0.5)/4
    np.testing.assert_allclose(t.transform(X)[:, 0, 0], special.ndtri([0.125, 0.5, 0.875]), rtol=1e-12)
    # between knots the CDF is interpolated linearly; beyond them it is the end value
    np.testing.assert_allclose(t.transform(np.array([[[0.5]], [[-7.0]], [[9.0]]]))[:, 0, 0],
                               special.ndtri([0.3125, 0.125, 0.875]), rtol=1e-12)


def test_gauss_keeps_at_most_g_max_knots_per_variable():
    X = np.random.default_rng(0).normal(size=(5000, 1, 1))
    t = VarTransform("G").fit(X)
    knots = t.to_dict()["steps"][0]["x"][0]
    assert 0.9 * G_MAX_KNOTS <= len(knots) <= G_MAX_KNOTS + 2
    Z = t.transform(X)[:, 0, 0]
    assert abs(Z.mean()) < 0.01 and abs(Z.std() - 1) < 0.01


def test_normal_quantile_is_scipys():
    p = np.r_[1e-300, 1e-20, 1e-9, np.linspace(0.001, 0.999, 999), 1 - 1e-9]
    np.testing.assert_allclose(normal_quantile(p), special.ndtri(p), rtol=1e-13, atol=1e-14)
    with pytest.raises(ValueError):
        normal_quantile([0.0])


# ──────────────────────────────────────────────────────────────────── chains, classes


def test_a_chain_fits_each_step_on_the_output_of_the_one_before():
    X = events()
    flat = X.reshape(len(X), -1)
    lo, hi = flat.min(0), flat.max(0)
    N = 2 * (flat - lo) / (hi - lo) - 1
    M = decorrelation_oracle(N, np.ones(len(X)))
    Z = VarTransform("N,D").fit(X).transform(X).reshape(len(X), -1)
    np.testing.assert_allclose(Z, N @ M.T, rtol=1e-9, atol=1e-10)
    # the order matters: D then N is another map
    other = VarTransform("D+N").fit(X).transform(X).reshape(len(X), -1)
    assert not np.allclose(other, Z)
    assert other.min() == -1 and other.max() == 1


def test_a_class_suffix_fits_on_that_class_and_applies_to_all():
    X = np.array([[[0.0]], [[10.0]], [[4.0]], [[8.0]]])
    y = np.array([1, 0, 1, 1])
    Z = VarTransform("N_Signal").fit(X, y).transform(X)[:, 0, 0]
    np.testing.assert_allclose(Z, [-1.0, 1.5, 0.0, 1.0])  # signal range [0, 8]
    Zb = VarTransform("N_Background,N_AllClasses").fit(np.r_[X, X], np.r_[y, 1 - y])
    assert Zb.steps == [("N", 0), ("N", None)]
    with pytest.raises(ValueError, match="needs y"):
        VarTransform("G_Signal").fit(X)


@pytest.mark.parametrize(
    "text, message",
    [
        ("P", r"TMVA's PCA transformation \(P\) is not supported"),
        ("N,U", r"TMVA's Uniform transformation \(U\) is not supported"),
        ("N(var1,var2)", r"transforming a subset of the variables is not supported"),
        ("X", r"unknown transformation 'X'"),
        ("N_Muons", r"unknown class 'Muons'"),
        ("N,,D", r"empty transformation"),
    ],
)
def test_unsupported_transformations_are_named(text, message):
    with pytest.raises(ValueError, match=message):
        parse_var_transform(text)


def test_names_as_tmva_spells_them():
    assert parse_var_transform("Normalise+Deco,Gauss,Ident") == [("N", None), ("D", None), ("G", None), ("I", None)]
    assert parse_var_transform("None") == [] and parse_var_transform(" none ") == []


# ─────────────────────────────────────────────────────────────────────────── files


def test_json_round_trip_gives_the_same_transform():
    X = events()
    t = VarTransform("D,G,N").fit(X)
    back = VarTransform.from_dict(json.loads(json.dumps(t.to_dict())))
    np.testing.assert_array_equal(back.transform(X), t.transform(X))


def test_from_dict_refuses_a_record_that_does_not_fit():
    d = VarTransform("D").fit(events()).to_dict()
    d["steps"][0]["matrix"] = d["steps"][0]["matrix"][:-1]
    with pytest.raises(ValueError, match=r"step D needs 'matrix': 6×6 finite numbers"):
        VarTransform.from_dict(d)
    d = VarTransform("N").fit(events()).to_dict()
    d["spec"] = "D"
    with pytest.raises(ValueError, match="do not match VarTransform=D"):
        VarTransform.from_dict(d)


def test_transform_refuses_other_shapes_and_an_unfitted_transform():
    t = VarTransform("N")
    with pytest.raises(ValueError, match="not fitted"):
        t.transform(events())
    t.fit(events())
    with pytest.raises(ValueError, match=r"events of shape \(3, 2\) \(6 variables"):
        t.transform(np.zeros((4, 3, 3)))


def test_the_model_file_keeps_the_transform_and_old_files_still_load(tmp_path):
    from bptt.data.arrays import Standardizer
    from bptt.model import Sequential

    X = events().astype(np.float32)
    model = Sequential.from_tmva("GRU|4|2|3|0|0,LINEAR", "3|2", seed=0)
    model.input_transform = VarTransform("N,D").fit(X)
    assert model.standardizer is model.input_transform  # the older name, the same attribute
    back = Sequential.load(model.save(str(tmp_path / "m.bptt")))
    assert isinstance(back.input_transform, VarTransform) and back.input_transform.spec == "N,D"
    np.testing.assert_array_equal(back.decision_function(X), model.decision_function(X))
    # the inputs really go through it: without it the outputs differ
    bare = Sequential.from_tmva("GRU|4|2|3|0|0,LINEAR", "3|2", seed=0)
    assert not np.allclose(bare.decision_function(X), model.decision_function(X))
    # a configuration written before VarTransform (key "standardizer") still gives a Standardizer
    old = Sequential.from_tmva("GRU|4|2|3|0|0,LINEAR", "3|2", seed=0)
    old.standardizer = Standardizer().fit(X)
    cfg = old.config()
    assert "var_transform" not in cfg and cfg["standardizer"]["mean"] is not None
    assert isinstance(Sequential.from_config(cfg).input_transform, Standardizer)


def test_fit_with_standardize_replacing_a_var_transform_warns():
    from bptt.model import Sequential

    X = events().astype(np.float32)
    model = Sequential.from_tmva("GRU|4|2|3|0|0,LINEAR", "3|2", seed=0)
    model.input_transform = VarTransform("N").fit(X)
    with pytest.warns(UserWarning, match=r"VarTransform=N is replaced by a Standardizer"):
        model.fit(X, (X[:, 0, 0] > 2).astype(np.float32), epochs=1, verbose=False)


def test_onnx_export_holds_n_and_d_and_refuses_g(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from bptt.io.onnx import export_onnx
    from bptt.model import Sequential

    X = events(n=50).astype(np.float32)
    model = Sequential.from_tmva("LSTM|4|2|3|0|0,DENSE|3|TANH,LINEAR", "3|2", seed=0)
    model.input_transform = VarTransform("N,D").fit(X)
    path = export_onnx(model, str(tmp_path / "m.onnx"))
    y = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": X})[0]
    np.testing.assert_allclose(y, model.decision_function(X), rtol=1e-5, atol=1e-5)
    model.input_transform = VarTransform("N,G").fit(X)
    with warnings.catch_warnings():
        with pytest.raises(ValueError, match=r"VarTransform=N,G: G .* has no ONNX form"):
            export_onnx(model, str(tmp_path / "g.onnx"))
