"""The toy generator of TMVA_RNN_Classification.C, npz files, standardisation, splitting, batching,
and the atomic-write helper.

The toy data are checked against expectations computed here, independently of the generator,
from the Gaussian CDF (``math.erf``): the expected content of histogram bin k at step j is
``1000 · P(bin k) / P([0, 10])`` under Gaussian(mean_j, sigma_j).
"""

from __future__ import annotations

import json
import math
import os
import stat

import numpy as np
import pytest

from bptt._files import atomic_path, atomic_write
from bptt.data import (
    Standardizer,
    iterate_batches,
    make_tutorial_data,
    read_npz,
    train_test_split,
    write_npz,
)

N, T, F = 2000, 10, 30


@pytest.fixture(scope="module")
def toy():
    return make_tutorial_data(n_events=N, n_steps=T, n_features=F, seed=0)


def expected_counts(kind: str, n_steps: int = T, n_features: int = F) -> np.ndarray:
    """``(T, F)`` expected bin contents for 'sig' (cos) or 'bkg' (sin), from math.erf only."""
    trig = math.cos if kind == "sig" else math.sin
    edges = [10.0 * k / n_features for k in range(n_features + 1)]
    out = np.empty((n_steps, n_features))
    for j in range(n_steps):
        mu = 5.0 + 0.2 * trig(math.pi * j / n_steps)
        sigma = 4.0 + 0.3 * trig(math.pi * j / n_steps)

        def cdf(x):
            return 0.5 * (1.0 + math.erf((x - mu) / (sigma * math.sqrt(2.0))))

        in_range = cdf(10.0) - cdf(0.0)
        out[j] = [1000.0 * (cdf(edges[k + 1]) - cdf(edges[k])) / in_range for k in range(n_features)]
    return out


# ───────────────────────────────────────────────────────────────────────────────── toy data


def test_toy_shapes_and_dtype(toy):
    sig, bkg = toy
    assert sig.shape == bkg.shape == (N, T, F)
    assert sig.dtype == bkg.dtype == np.float32
    assert np.isfinite(sig).all() and np.isfinite(bkg).all()


def test_toy_other_sizes():
    sig, bkg = make_tutorial_data(n_events=7, n_steps=3, n_features=5, seed=3)
    assert sig.shape == bkg.shape == (7, 3, 5)


def test_toy_is_deterministic_by_seed():
    a = make_tutorial_data(n_events=50, n_steps=4, n_features=6, seed=11)
    b = make_tutorial_data(n_events=50, n_steps=4, n_features=6, seed=11)
    c = make_tutorial_data(n_events=50, n_steps=4, n_features=6, seed=12)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    assert not np.array_equal(a[0], a[1])  # signal and background are different draws


@pytest.mark.parametrize("kind", ["sig", "bkg"])
def test_toy_bin_means_follow_the_generator_formula(toy, kind):
    X = toy[0] if kind == "sig" else toy[1]
    expected = expected_counts(kind)
    # per-feature standard error: multinomial variance of the bin plus the noise variance 10²
    se = np.sqrt((expected * (1 - expected / 1000.0) + 100.0) / N)
    z = (X.mean(axis=0) - expected) / se
    assert np.abs(z).max() < 5.0


@pytest.mark.parametrize("kind", ["sig", "bkg"])
def test_toy_noise_std_is_10(toy, kind):
    X = toy[0] if kind == "sig" else toy[1]
    expected = expected_counts(kind)
    multinomial_var = expected * (1 - expected / 1000.0)
    noise_var = X.astype(np.float64).var(axis=0) - multinomial_var
    assert abs(math.sqrt(noise_var.mean()) - 10.0) < 0.2


def test_toy_signal_and_background_differ_by_cos_and_sin(toy):
    sig, bkg = toy
    centers = (np.arange(F) + 0.5) * 10.0 / F

    def location(counts):  # mean position of the histogram at every step, (T,)
        return (counts * centers).sum(axis=-1) / counts.sum(axis=-1)

    loc_sig, loc_bkg = location(sig.mean(axis=0)), location(bkg.mean(axis=0))
    exp_sig, exp_bkg = location(expected_counts("sig")), location(expected_counts("bkg"))
    np.testing.assert_allclose(loc_sig, exp_sig, atol=0.025)
    np.testing.assert_allclose(loc_bkg, exp_bkg, atol=0.025)
    # the signal's histogram moves steadily down (cos), the background's up and back (sin)
    assert loc_sig[0] > loc_sig[T // 2] > loc_sig[-1]
    assert loc_bkg[T // 2] > loc_bkg[0] and loc_bkg[T // 2] > loc_bkg[-1]
    diff = loc_sig - loc_bkg
    pattern = np.array([math.cos(math.pi * j / T) - math.sin(math.pi * j / T) for j in range(T)])
    assert np.corrcoef(diff, pattern)[0, 1] > 0.95
    assert diff[0] > 0.05 and diff[-1] < -0.05


def test_toy_fills_every_feature(toy):
    for X in toy:
        means = X.mean(axis=0)
        assert (means > 10.0).all()  # even the edge bins hold ~20 of the 1000 entries
        assert (X.std(axis=0) > 5.0).all()
        # the last bin is filled like the first one (no bins left at zero)
        np.testing.assert_allclose(means[:, -1], means[:, 0], rtol=0.5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_events=0), "make_tutorial_data: n_events must be a positive integer"),
        (dict(n_steps=2.5), "make_tutorial_data: n_steps must be a positive integer .*got 2.5"),
        (dict(n_features=-1), "make_tutorial_data: n_features must be a positive integer"),
        (dict(seed=-3), "make_tutorial_data: seed must be a non-negative integer or None; got -3"),
    ],
)
def test_toy_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_tutorial_data(**kwargs)


# ──────────────────────────────────────────────────────────────────────────────── npz files


def small_xy(n=12, T=3, F=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, T, F)).astype(np.float32), (np.arange(n) % 2).astype(np.float32)


def test_npz_round_trip(tmp_path):
    X, y = small_xy()
    path = tmp_path / "d.npz"
    assert write_npz(path, X, y) == str(path)
    X2, y2 = read_npz(path)
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(y2, y)
    assert X2.dtype == np.float32 and y2.dtype == np.float32
    assert os.listdir(tmp_path) == ["d.npz"]


def test_read_npz_accepts_capital_X_and_integer_labels(tmp_path):
    X, _ = small_xy()
    np.savez(tmp_path / "d.npz", X=X.astype(np.float64), y=np.arange(12) % 2)
    X2, y2 = read_npz(tmp_path / "d.npz")
    assert X2.dtype == np.float64 and y2.dtype == np.float32
    np.testing.assert_array_equal(y2, np.arange(12) % 2)


def test_read_npz_errors(tmp_path):
    with pytest.raises(ValueError, match=r"read_npz: no such file: '.*missing\.npz'"):
        read_npz(tmp_path / "missing.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(ValueError, match=r"read_npz: '.*text\.npz' is not a NumPy \.npz file .*numpy\.savez"):
        read_npz(tmp_path / "text.npz")
    X, y = small_xy()
    np.savez(tmp_path / "noy.npz", x=X, labels=y)
    with pytest.raises(ValueError, match=r"it has no array named 'y' \(arrays present: 'x', 'labels'\)"):
        read_npz(tmp_path / "noy.npz")
    np.savez(tmp_path / "nox.npz", data=X, y=y)
    with pytest.raises(ValueError, match=r"no array named 'x' \(or 'X'\)"):
        read_npz(tmp_path / "nox.npz")
    np.savez(tmp_path / "2d.npz", x=X[:, 0, :], y=y)
    with pytest.raises(ValueError, match=r"X must be a 3-D array of shape \(n, T, F\); got shape \(12, 4\)"):
        read_npz(tmp_path / "2d.npz")
    np.savez(tmp_path / "short.npz", x=X, y=y[:5])
    with pytest.raises(ValueError, match=r"y must have one label per sequence of X, shape \(12,\); got shape \(5,\)"):
        read_npz(tmp_path / "short.npz")


def test_write_npz_is_atomic(tmp_path, monkeypatch):
    X, y = small_xy()
    path = tmp_path / "d.npz"
    path.write_bytes(b"old content")

    def broken(f, **arrays):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", broken)
    with pytest.raises(OSError, match="disk full"):
        write_npz(path, X, y)
    assert path.read_bytes() == b"old content"
    assert os.listdir(tmp_path) == ["d.npz"]


def test_write_npz_validates(tmp_path):
    X, y = small_xy()
    with pytest.raises(ValueError, match=r"write_npz: y must have one label per sequence"):
        write_npz(tmp_path / "d.npz", X, y[:-1])
    X[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"write_npz: X contains NaN at index \(0, 0, 0\)"):
        write_npz(tmp_path / "d.npz", X, y)
    assert not (tmp_path / "d.npz").exists()


# ─────────────────────────────────────────────────────────────────────────── standardisation


def test_standardizer_statistics_over_samples_and_time():
    rng = np.random.default_rng(1)
    X = (rng.normal(size=(40, 6, 3)) * [1.0, 5.0, 0.1] + [0.0, 10.0, -2.0]).astype(np.float32)
    s = Standardizer().fit(X)
    flat = X.astype(np.float64).reshape(-1, 3)
    np.testing.assert_allclose(s.mean_, flat.mean(axis=0))
    np.testing.assert_allclose(s.std_, flat.std(axis=0))
    Z = s.transform(X)
    assert Z.dtype == np.float32 and Z.shape == X.shape
    np.testing.assert_allclose(Z.reshape(-1, 3).mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(Z.reshape(-1, 3).std(axis=0), 1.0, atol=1e-5)
    np.testing.assert_allclose(s.inverse_transform(Z), X, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(Standardizer().fit_transform(X), Z)


def test_standardizer_constant_feature_gets_std_1():
    X = np.zeros((5, 2, 2))
    X[..., 1] = 7.0
    X[:, 0, 0] = 1.0
    s = Standardizer().fit(X)
    assert s.std_[1] == 1.0
    np.testing.assert_array_equal(s.transform(X)[..., 1], 0.0)


def test_standardizer_json_round_trip():
    X, _ = small_xy()
    s = Standardizer().fit(X)
    d = json.loads(json.dumps(s.to_dict()))
    assert set(d) == {"mean", "std"} and all(isinstance(v, float) for v in d["mean"] + d["std"])
    s2 = Standardizer.from_dict(d)
    np.testing.assert_array_equal(s2.transform(X), s.transform(X))


def test_standardizer_errors():
    X, _ = small_xy()
    with pytest.raises(ValueError, match=r"Standardizer.transform: this Standardizer is not fitted; call fit"):
        Standardizer().transform(X)
    s = Standardizer().fit(X)
    with pytest.raises(ValueError, match=r"Standardizer.transform: X must have 4 features .*got shape \(12, 3, 5\)"):
        s.transform(np.zeros((12, 3, 5), np.float32))
    with pytest.raises(ValueError, match=r"Standardizer.fit: X must be a 3-D array of shape \(n, T, F\) or \(n, F\); got shape \(12,\)"):
        Standardizer().fit(X[:, 0, 0])
    with pytest.raises(ValueError, match=r"Standardizer.from_dict: d must be a dict with exactly the keys 'mean' and 'std'"):
        Standardizer.from_dict({"mean": [0.0]})
    with pytest.raises(ValueError, match=r"'std' finite and positive"):
        Standardizer.from_dict({"mean": [0.0], "std": [0.0]})


# ────────────────────────────────────────────────────────────────────────────────── splitting


def labelled(n_pos=30, n_neg=70):
    n = n_pos + n_neg
    X = np.arange(n, dtype=np.float32).reshape(n, 1, 1) * np.ones((1, 2, 3), np.float32)  # X[i] ≡ i
    y = np.r_[np.ones(n_pos), np.zeros(n_neg)].astype(np.float32)
    return X, y


def test_split_sizes_stratification_and_coverage():
    X, y = labelled()
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_fraction=0.2, seed=0)
    assert X_tr.shape == (80, 2, 3) and X_te.shape == (20, 2, 3)
    assert y_te.sum() == 6 and y_tr.sum() == 24  # 30 % signal in both parts
    ids_tr, ids_te = X_tr[:, 0, 0].astype(int), X_te[:, 0, 0].astype(int)
    assert sorted(np.r_[ids_tr, ids_te].tolist()) == list(range(100))
    np.testing.assert_array_equal(y_tr, (ids_tr < 30).astype(np.float32))  # labels stay with their rows
    np.testing.assert_array_equal(y_te, (ids_te < 30).astype(np.float32))
    assert not (np.diff(ids_tr) > 0).all()  # shuffled


def test_split_is_deterministic_by_seed_and_unstratified_mode_works():
    X, y = labelled()
    a = train_test_split(X, y, seed=5)
    b = train_test_split(X, y, seed=5)
    c = train_test_split(X, y, seed=6)
    for u, w in zip(a, b):
        np.testing.assert_array_equal(u, w)
    assert not np.array_equal(a[1], c[1])
    X_tr, X_te, _, _ = train_test_split(X, y, test_fraction=0.25, seed=0, stratify=False)
    assert len(X_tr) == 75 and len(X_te) == 25


@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.1, "0.2"])
def test_split_rejects_bad_fraction(fraction):
    X, y = labelled()
    with pytest.raises(ValueError, match=r"train_test_split: test_fraction must be a number strictly between 0 and 1"):
        train_test_split(X, y, test_fraction=fraction)


def test_split_shape_errors():
    X, y = labelled()
    with pytest.raises(ValueError, match=r"train_test_split: y must have one label per sequence of X, shape \(100,\); got shape \(99,\)"):
        train_test_split(X, y[:-1])
    with pytest.raises(ValueError, match=r"train_test_split: y must be a 1-D array of shape \(n,\); got shape \(100, 1\)"):
        train_test_split(X, y[:, None])
    with pytest.raises(ValueError, match=r"train_test_split: X must be a 3-D array"):
        train_test_split(X[:, :, 0], y)
    with pytest.raises(ValueError, match=r"leaves an empty test part"):
        train_test_split(X[:2], y[:2], test_fraction=0.2)


# ─────────────────────────────────────────────────────────────────────────────────── batching


def test_batches_in_order_and_drop_last():
    batches = list(iterate_batches(10, 3))
    assert [b.tolist() for b in batches] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert [len(b) for b in iterate_batches(10, 3, drop_last=True)] == [3, 3, 3]
    assert list(iterate_batches(0, 4)) == []


def test_batches_shuffled_with_rng():
    a = np.concatenate(list(iterate_batches(100, 7, rng=np.random.default_rng(0))))
    b = np.concatenate(list(iterate_batches(100, 7, rng=np.random.default_rng(0))))
    assert sorted(a.tolist()) == list(range(100))
    np.testing.assert_array_equal(a, b)
    assert not (a == np.arange(100)).all()
    gen = np.random.default_rng(1)
    first = np.concatenate(list(iterate_batches(50, 10, rng=gen)))
    second = np.concatenate(list(iterate_batches(50, 10, rng=gen)))
    assert not np.array_equal(first, second)  # a fresh permutation every epoch


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True])
def test_batches_reject_bad_batch_size(batch_size):
    with pytest.raises(ValueError, match=r"iterate_batches: batch_size must be an integer >= 1"):
        iterate_batches(10, batch_size)  # raises at the call, before iteration


def test_batches_reject_bad_n():
    with pytest.raises(ValueError, match=r"iterate_batches: n must be a non-negative integer"):
        iterate_batches(-1, 2)


# ─────────────────────────────────────────────────────────────────────────────── atomic writes


def test_atomic_write_replaces_and_keeps_permissions(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")
    os.chmod(path, 0o640)
    atomic_write(path, lambda f: f.write(b"new"))
    assert path.read_bytes() == b"new"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert os.listdir(tmp_path) == ["f.bin"]


def test_atomic_write_failure_leaves_target_and_no_temp(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("keep me")

    def broken(f):
        f.write("partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, broken, mode="w")
    assert path.read_text() == "keep me"
    assert os.listdir(tmp_path) == ["f.txt"]


def test_atomic_write_new_file_and_missing_directory(tmp_path):
    atomic_write(tmp_path / "new.txt", lambda f: f.write("x"), mode="w")
    assert (tmp_path / "new.txt").read_text() == "x"
    with pytest.raises(FileNotFoundError, match=r"atomic_write: cannot write .*the directory .* does not exist"):
        atomic_write(tmp_path / "no" / "f.txt", lambda f: None)


def test_atomic_path_success_and_failure(tmp_path):
    path = tmp_path / "g.dat"
    with atomic_path(path, suffix=".dat") as tmp:
        assert os.path.dirname(tmp) == str(tmp_path) and tmp.endswith(".dat")
        with open(tmp, "wb") as f:
            f.write(b"one")
    assert path.read_bytes() == b"one"
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                f.write(b"two")
            raise RuntimeError
    assert path.read_bytes() == b"one"
    assert os.listdir(tmp_path) == ["g.dat"]
