"""Dense networks on (n, F) rows: fit's default standardisation works on rows (it asked for 3-D
arrays before), and a Layout width written as a formula of N builds from a string."""

import numpy as np

from bptt.layers import Dense
from bptt.model import Sequential


def test_fit_standardises_rows_per_feature():
    rng = np.random.default_rng(0)
    X = rng.normal([3.0, -1.0, 10.0, 0.5], [2.0, 0.1, 5.0, 1.0], size=(60, 4))
    y = (X[:, 0] > 3.0).astype(np.float64)
    model = Sequential([Dense(4, 1, dtype=np.float64, seed=1)])
    model.fit(X, y, epochs=1, verbose=False, validation_split=0.0)
    np.testing.assert_allclose(model.standardizer.mean_, X.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(model.standardizer.std_, X.std(axis=0), rtol=1e-12)
    # predictions read the rows through the same statistics
    Z = (X - X.mean(axis=0)) / X.std(axis=0)
    W, b = model.layers[0].params["W"], model.layers[0].params["b"]
    np.testing.assert_allclose(model.predict_proba(X), 1 / (1 + np.exp(-(Z @ W + b)[:, 0])), rtol=1e-10)


def test_layout_formula_of_n_from_a_string():
    model = Sequential.from_tmva("DENSE|N+1|TANH,DENSE|2*N|RELU,LINEAR", "1|1|7", seed=0)
    assert [layer.params["W"].shape for layer in model.layers] == [(7, 8), (8, 14), (14, 1)]
