"""bptt.data.arrays where mutation testing found no test (docs/mutation.md, issue 17).

Pins what a user of the data helpers can observe and the older tests left open: the exact error
messages (the function, the argument, what was expected and what was received), the seed and rng
checks of ``train_test_split`` and ``iterate_batches`` (bool, negative, float), the smallest valid
sizes (a batch of 1, a training part of 1), a split with three labels, the ``.npz`` reader's
refusals (.npy, an empty file, a directory, object arrays, both ``x`` and ``X``), ``write_npz``'s
compression switch, the dtypes kept (integer ``X`` read as float32, ``inverse_transform`` keeping
float32, ``from_dict`` statistics as float64) and ``Standardizer``'s repr. Every expected value is
written out by hand or computed with NumPy / zipfile in the test.
"""

from __future__ import annotations

import re
import zipfile

import numpy as np
import pytest

from bptt.data.arrays import Standardizer, check_xy, iterate_batches, read_npz, train_test_split, write_npz


def xy(n=6, T=2, F=3):
    X = np.arange(n * T * F, dtype=np.float32).reshape(n, T, F)
    return X, (np.arange(n) % 2).astype(np.float32)


def exactly(message: str) -> str:
    return "^" + re.escape(message) + "$"


# ──────────────────────────────────────────────────────────────────────────────── check_xy


def test_labels_that_are_not_numbers_are_refused_with_their_dtype():
    X, _ = xy(3)
    with pytest.raises(ValueError, match=exactly("f: y must hold numbers (labels 0/1); got dtype <U1")):
        check_xy("f", X, np.array(["a", "b", "c"]))


@pytest.mark.parametrize(
    "y, shown, index",
    [([0.0, 1.0, np.nan, np.inf], "nan", 2), ([np.inf, 0.0, 1.0, 0.0], "inf", 0), ([0.0, 1.0, 1.0, -np.inf], "-inf", 3)],
)
def test_a_non_finite_label_is_named_with_its_index(y, shown, index):
    X, _ = xy(4)
    with pytest.raises(ValueError, match=exactly(f"f: y contains {shown} at index {index}; every label must be finite")):
        check_xy("f", X, np.array(y, np.float32))


def test_integer_labels_are_converted_straight_to_float32():
    # 2**62 + 2**38 + 1 lies just above the midpoint of two float32 neighbours: one rounding
    # (NumPy's int64 -> float32 cast) gives the upper one; a detour through float64 would round
    # to the midpoint first and then to the even, lower one.
    X, _ = xy(2)
    big = np.array([2**62 + 2**38 + 1, 1], np.int64)
    _, y = check_xy("f", X, big)
    assert y.dtype == np.float32
    assert y[0] == np.float32(2**62 + 2**39) and y[1] == 1.0
    np.testing.assert_array_equal(y, big.astype(np.float32))


def test_float32_labels_and_float_X_are_returned_without_a_copy():
    X, y = xy(4)
    X_out, y_out = check_xy("f", X, y)
    assert X_out is X and y_out is y  # no copy of data that already has the right dtype


# ─────────────────────────────────────────────────────────────────────────────── npz files


def test_a_single_npy_array_is_not_an_npz_archive(tmp_path):
    path = tmp_path / "one.npz"
    with open(path, "wb") as f:
        np.save(f, np.zeros(3))
    message = (
        f"read_npz: {str(path)!r} holds a single array (.npy), not an .npz archive; save X and y with "
        f"numpy.savez(path, x=X, y=y)"
    )
    with pytest.raises(ValueError, match=exactly(message)):
        read_npz(path)


def test_an_empty_file_is_refused_as_a_value_error(tmp_path):
    # np.load raises EOFError on an empty file; read_npz reports it like any other non-npz file
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    message = (
        f"read_npz: {str(path)!r} is not a NumPy .npz file (EOFError: No data left in file); write one with "
        f"bptt.data.write_npz(path, X, y) or numpy.savez(path, x=X, y=y)"
    )
    with pytest.raises(ValueError, match=exactly(message)):
        read_npz(path)


def test_a_directory_is_refused_with_the_error_type(tmp_path):
    path = tmp_path / "dir.npz"
    path.mkdir()
    with pytest.raises(ValueError, match=r"^read_npz: '.*dir\.npz' is not a NumPy \.npz file \(IsADirectoryError: "):
        read_npz(path)


def test_object_arrays_are_not_unpickled(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, x=np.array([1, "a"], dtype=object), y=np.zeros(2))
    message = (
        f"read_npz: {str(path)!r}: cannot load without pickle (Object arrays cannot be loaded when "
        f"allow_pickle=False); store plain numeric arrays"
    )
    with pytest.raises(ValueError, match=exactly(message)):
        read_npz(path)


@pytest.mark.parametrize(
    "arrays, problem, present",
    [
        ({"x": 1, "X": 1, "y": 1}, "both 'x' and 'X'", "'x', 'X', 'y'"),
        ({"data": 1, "y": 1}, "no array named 'x' (or 'X')", "'data', 'y'"),
        ({}, "no array named 'x' (or 'X')", "none"),
        ({"X": 1}, "no array named 'y'", "'X'"),
    ],
)
def test_the_arrays_an_npz_file_lacks_are_named(tmp_path, arrays, problem, present):
    X, y = xy()
    path = tmp_path / "d.npz"
    np.savez(path, **{k: (y if k == "y" else X) for k in arrays})
    message = (
        f"read_npz: {str(path)!r} must hold arrays 'x' (or 'X') of shape (n, T, F) and 'y' of shape (n,); "
        f"it has {problem} (arrays present: {present})"
    )
    with pytest.raises(ValueError, match=exactly(message)):
        read_npz(path)


@pytest.mark.parametrize("dtype", [np.int64, np.int8, np.uint16, np.bool_])
def test_integer_and_boolean_X_is_read_as_float32(tmp_path, dtype):
    path = tmp_path / "d.npz"
    X = (np.arange(12).reshape(2, 3, 2) % 2).astype(dtype)
    np.savez(path, x=X, y=np.array([0, 1]))
    X2, y2 = read_npz(path)
    assert X2.dtype == np.float32
    np.testing.assert_array_equal(X2, (np.arange(12).reshape(2, 3, 2) % 2).astype(np.float32))


def test_a_bad_array_in_an_npz_file_is_reported_with_the_path(tmp_path):
    path = tmp_path / "d.npz"
    X, y = xy()
    np.savez(path, x=X, y=y[:4])
    message = f"read_npz({str(path)!r}): y must have one label per sequence of X, shape (6,); got shape (4,)"
    with pytest.raises(ValueError, match=exactly(message)):
        read_npz(path)


@pytest.mark.parametrize("compressed, kind", [(True, zipfile.ZIP_DEFLATED), (False, zipfile.ZIP_STORED)])
def test_write_npz_compresses_only_when_asked(tmp_path, compressed, kind):
    X, y = xy()
    path = tmp_path / "d.npz"
    write_npz(path, X, y, compressed=compressed)
    with zipfile.ZipFile(path) as z:
        assert sorted(i.filename for i in z.infolist()) == ["x.npy", "y.npy"]
        assert {i.compress_type for i in z.infolist()} == {kind}


# ─────────────────────────────────────────────────────────────────────────── Standardizer


def test_repr_says_whether_fitted():
    assert repr(Standardizer()) == "Standardizer(unfitted)"
    assert repr(Standardizer().fit(np.zeros((2, 3, 5)))) == "Standardizer(n_features=5)"


def test_an_unfitted_standardizer_has_no_statistics():
    s = Standardizer()
    assert s.mean_ is None and s.std_ is None and s.n_features is None


@pytest.mark.parametrize("method", ["transform", "inverse_transform"])
def test_unfitted_transforms_name_themselves(method):
    X, _ = xy()
    message = f"Standardizer.{method}: this Standardizer is not fitted; call fit(X_train) (or from_dict) first"
    with pytest.raises(ValueError, match=exactly(message)):
        getattr(Standardizer(), method)(X)


def test_unfitted_to_dict_is_refused():
    message = "Standardizer.to_dict: this Standardizer is not fitted; call fit(X_train) first"
    with pytest.raises(ValueError, match=exactly(message)):
        Standardizer().to_dict()


@pytest.mark.parametrize("method, name", [("transform", "X"), ("inverse_transform", "Z")])
def test_transforms_name_their_argument_and_its_layout(method, name):
    s = Standardizer().fit(np.zeros((2, 3, 4)))
    for shape in ((4,), (2, 2, 3, 4)):  # (n, F) rows and (n, T, F) sequences are taken; nothing else
        message = (f"Standardizer.{method}: {name} must be a 3-D array of shape (n, T, F) or (n, F); "
                   f"got shape {shape}")
        with pytest.raises(ValueError, match=exactly(message)):
            getattr(s, method)(np.zeros(shape))
    assert getattr(s, method)(np.zeros((2, 4))).shape == (2, 4)
    message = f"Standardizer.{method}: {name} must have dtype float32 or float64; got int64"
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        getattr(s, method)(np.zeros((2, 3, 4), np.int64))


def test_inverse_transform_names_the_feature_count():
    s = Standardizer().fit(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=exactly("Standardizer.inverse_transform: Z must have 4 features; got shape (2, 3, 5)")):
        s.inverse_transform(np.zeros((2, 3, 5)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_inverse_transform_keeps_the_dtype(dtype):
    s = Standardizer.from_dict({"mean": [1.0, -2.0], "std": [2.0, 0.5]})
    Z = np.array([[[0.5, 4.0]]], dtype)
    out = s.inverse_transform(Z)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, np.array([[[0.5 * 2.0 + 1.0, 4.0 * 0.5 - 2.0]]], dtype))


@pytest.mark.parametrize(
    "d, got",
    [({"mean": [0.0]}, "['mean']"), ({"mean": [0.0], "std": [1.0], "n": 1}, "['mean', 'n', 'std']"), ([0.0, 1.0], "list"), (None, "NoneType")],
)
def test_from_dict_shows_the_keys_or_type_it_got(d, got):
    message = f"Standardizer.from_dict: d must be a dict with exactly the keys 'mean' and 'std'; got {got}"
    with pytest.raises(ValueError, match=exactly(message)):
        Standardizer.from_dict(d)


def test_from_dict_refuses_values_that_are_not_numbers():
    d = {"mean": ["a"], "std": [1.0]}
    message = f"Standardizer.from_dict: 'mean' and 'std' must be lists of numbers; got {d!r}"
    with pytest.raises(ValueError, match=exactly(message)):
        Standardizer.from_dict(d)


@pytest.mark.parametrize(
    "mean, std, shapes",
    [([0.0, 1.0], [1.0], "(2,) and (1,)"), ([[0.0]], [[1.0]], "(1, 1) and (1, 1)"), ([], [], "(0,) and (0,)")],
)
def test_from_dict_needs_two_non_empty_lists_of_one_length(mean, std, shapes):
    message = f"Standardizer.from_dict: 'mean' and 'std' must be non-empty lists of equal length; got lengths {shapes}"
    with pytest.raises(ValueError, match=exactly(message)):
        Standardizer.from_dict({"mean": mean, "std": std})


@pytest.mark.parametrize("d", [{"mean": [None], "std": [1.0]}, {"mean": [0.0], "std": [None]}])
def test_from_dict_reads_a_missing_value_as_not_finite(d):
    # None becomes NaN as a float64, so it meets the finiteness check (not a TypeError)
    with pytest.raises(ValueError, match=r"^Standardizer\.from_dict: 'mean' must be finite and 'std' finite and positive; got "):
        Standardizer.from_dict(d)


def test_from_dict_keeps_float64_statistics_like_fit():
    s = Standardizer.from_dict({"mean": [1, 2], "std": [3, 4]})
    assert s.mean_.dtype == np.float64 and s.std_.dtype == np.float64
    np.testing.assert_array_equal(s.mean_, [1.0, 2.0])
    np.testing.assert_array_equal(s.std_, [3.0, 4.0])


# ─────────────────────────────────────────────────────────────────────── seeds and rngs


@pytest.mark.parametrize("seed", [-1, True, 2.5, "1"])
def test_split_refuses_a_bad_seed(seed):
    X, y = xy()
    message = f"train_test_split: seed must be a non-negative integer, a numpy Generator or None; got {seed!r}"
    with pytest.raises(ValueError, match=exactly(message)):
        train_test_split(X, y, test_fraction=0.5, seed=seed)


@pytest.mark.parametrize("rng", [-1, True, 2.5, "1"])
def test_batches_refuse_a_bad_rng_by_its_name(rng):
    message = f"iterate_batches: rng must be a non-negative integer, a numpy Generator or None; got {rng!r}"
    with pytest.raises(ValueError, match=exactly(message)):
        iterate_batches(5, 2, rng=rng)


def test_split_with_seed_none_is_a_fresh_random_split():
    X, y = xy(10)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_fraction=0.2, seed=None)
    assert len(X_tr) == 8 and len(X_te) == 2 and y_te.sum() == 1  # one of each label to the test part


def test_split_default_seed_is_0():
    X, y = xy(20)
    for a, b in zip(train_test_split(X, y), train_test_split(X, y, seed=0)):
        np.testing.assert_array_equal(a, b)
    # and a Generator seeded with 0 gives the same split as the int
    for a, b in zip(train_test_split(X, y), train_test_split(X, y, seed=np.random.default_rng(0))):
        np.testing.assert_array_equal(a, b)


# ──────────────────────────────────────────────────────────────────────── splitting, batching


def test_stratified_split_with_three_labels_keeps_every_sequence_once():
    n = 30
    X = np.arange(n, dtype=np.float32).reshape(n, 1, 1)  # X[i] = i
    y = (np.arange(n) % 3).astype(np.float32)  # labels 0, 1, 2: ten each
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_fraction=0.2, seed=3)
    ids = np.r_[X_tr.ravel(), X_te.ravel()].astype(int)
    assert sorted(ids.tolist()) == list(range(n))
    assert sorted(y_te.tolist()) == [0.0, 0.0, 1.0, 1.0, 2.0, 2.0]  # round(0.2 * 10) of each
    np.testing.assert_array_equal(y_tr, X_tr.ravel() % 3)
    np.testing.assert_array_equal(y_te, X_te.ravel() % 3)


def test_a_split_may_leave_a_single_training_sequence():
    X, y = xy(2)
    X_tr, X_te, _, _ = train_test_split(X, y, test_fraction=0.5, seed=0, stratify=False)
    assert len(X_tr) == 1 and len(X_te) == 1


@pytest.mark.parametrize("stratify", [True, False])
def test_an_empty_training_part_is_named(stratify):
    X, y = xy(2)
    message = (
        "train_test_split: test_fraction=0.8 of 2 sequences leaves an empty training part; use more data or "
        "a test_fraction closer to 0.5"
    )
    with pytest.raises(ValueError, match=exactly(message)):
        train_test_split(X, y, test_fraction=0.8, stratify=stratify)


def test_batches_of_one():
    assert [b.tolist() for b in iterate_batches(3, 1)] == [[0], [1], [2]]
    assert [b.tolist() for b in iterate_batches(2, 1, drop_last=True)] == [[0], [1]]


@pytest.mark.parametrize("n", [2.5, True, "3", None])
def test_batches_refuse_an_n_that_is_not_an_integer(n):
    with pytest.raises(ValueError, match=exactly(f"iterate_batches: n must be a non-negative integer (number of samples); got {n!r}")):
        iterate_batches(n, 2)


# ─────────────────────────────────────────── ragged sequences and per-step targets (issue 20)
# Mutation testing after issue 20 found the lengths and per-step paths of check_xy, read_npz and
# write_npz tested only through the command line; these pin them where the module's own tests run.


@pytest.mark.parametrize("shape", [(3, 4), (3, 4, 2)], ids=["(n, T)", "(n, T, K)"])
def test_per_step_targets_are_taken_as_float32_when_allowed(shape):
    X = np.zeros((3, 4, 2), np.float32)
    y = np.arange(np.prod(shape)).reshape(shape) % 2  # integer labels
    X_out, y_out = check_xy("f", X, y, per_step=True)
    assert X_out is X and y_out.dtype == np.float32 and y_out.shape == shape
    np.testing.assert_array_equal(y_out, y)


@pytest.mark.parametrize("y_shape", [(3, 5), (2, 4), (3, 5, 1)])
def test_per_step_targets_must_match_the_sequences_and_steps(y_shape):
    X = np.zeros((3, 4, 2), np.float32)
    message = (f"f: per-step targets y must have shape (n, T) = (3, 4) (or (n, T, K)) like X's first two axes; "
               f"got shape {y_shape}")
    with pytest.raises(ValueError, match=exactly(message)):
        check_xy("f", X, np.zeros(y_shape), per_step=True)


def test_targets_of_other_ranks_name_what_each_call_allows():
    X = np.zeros((3, 4, 2), np.float32)
    with pytest.raises(ValueError, match=exactly("f: y must be a 1-D array of shape (n,); got shape (3, 4)")):
        check_xy("f", X, np.zeros((3, 4)))
    with pytest.raises(ValueError, match=exactly(
            "f: y must be a 1-D array of shape (n,) or per-step targets (n, T) / (n, T, K); got shape (3, 4, 1, 1)")):
        check_xy("f", X, np.zeros((3, 4, 1, 1)), per_step=True)
    _, y = check_xy("f", X, np.array([0, 1, 1]), per_step=True)  # one label per sequence stays allowed
    np.testing.assert_array_equal(y, [0, 1, 1])


@pytest.mark.parametrize("compressed", [True, False])
def test_lengths_and_per_step_targets_round_trip_through_an_npz_file(tmp_path, compressed):
    X = np.arange(24, dtype=np.float32).reshape(3, 4, 2)
    y = np.array([[1, 0, 0, 0], [0, 1, 1, 0], [1, 1, 1, 1]])
    path = write_npz(tmp_path / "r.npz", X, y, compressed, lengths=[1, 3, 4])
    with np.load(path) as raw:  # what the file holds, as NumPy reads it
        assert sorted(raw.keys()) == ["lengths", "x", "y"]
        assert raw["lengths"].dtype == np.int64
        np.testing.assert_array_equal(raw["lengths"], [1, 3, 4])
        assert raw["y"].dtype == np.float32 and raw["y"].shape == (3, 4)
    X2, y2, lengths = read_npz(path, with_lengths=True)
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(y2, y)
    np.testing.assert_array_equal(lengths, [1, 3, 4])
    assert lengths.dtype == np.int64


def test_per_step_targets_need_lengths_to_be_written(tmp_path):
    X = np.zeros((3, 4, 2), np.float32)
    with pytest.raises(ValueError, match=exactly("write_npz: y must be a 1-D array of shape (n,); got shape (3, 4)")):
        write_npz(tmp_path / "r.npz", X, np.zeros((3, 4)))
    assert not (tmp_path / "r.npz").exists()


def test_lengths_are_checked_before_writing(tmp_path):
    X = np.zeros((3, 4, 2), np.float32)
    message = "write_npz: lengths must satisfy 1 <= length <= 4 (the padded length T); sequence 1 has length 5"
    with pytest.raises(ValueError, match=exactly(message)):
        write_npz(tmp_path / "r.npz", X, np.zeros(3), lengths=[1, 5, 2])
    assert not (tmp_path / "r.npz").exists()


def test_a_file_with_lengths_needs_with_lengths(tmp_path):
    path = tmp_path / "r.npz"
    np.savez(path, x=np.zeros((3, 4, 2)), y=np.zeros(3), lengths=np.array([1, 4, 2]))
    message = (f"read_npz: {str(path)!r} holds ragged sequences (an array 'lengths'); read it with "
               f"read_npz(path, with_lengths=True), which returns (X, y, lengths)")
    with pytest.raises(ValueError, match=exactly(message)):
        read_npz(path)
    _, _, lengths = read_npz(path, with_lengths=True)
    np.testing.assert_array_equal(lengths, [1, 4, 2])


def test_a_file_without_lengths_read_with_lengths_gives_none_and_one_label_each(tmp_path):
    path = tmp_path / "r.npz"
    np.savez(path, x=np.zeros((3, 4, 2)), y=np.zeros((3, 4)))
    with pytest.raises(ValueError, match=exactly(
            f"read_npz({str(path)!r}): y must be a 1-D array of shape (n,); got shape (3, 4)")):
        read_npz(path, with_lengths=True)  # per-step targets only come with lengths
    np.savez(path, x=np.zeros((3, 4, 2)), y=np.ones(3))
    X, y, lengths = read_npz(path, with_lengths=True)
    assert lengths is None and X.shape == (3, 4, 2)
    np.testing.assert_array_equal(y, [1, 1, 1])


def test_lengths_read_from_a_file_are_checked(tmp_path):
    path = tmp_path / "r.npz"
    np.savez(path, x=np.zeros((3, 4, 2)), y=np.zeros((3, 4)), lengths=np.array([1, 9, 2]))
    message = (f"read_npz({str(path)!r}): lengths must satisfy 1 <= length <= 4 (the padded length T); "
               f"sequence 1 has length 9")
    with pytest.raises(ValueError, match=exactly(message)):
        read_npz(path, with_lengths=True)


def test_standardizer_fits_rows_of_a_dense_network():
    X = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 10.0]])  # (n, F) rows
    s = Standardizer().fit(X)
    np.testing.assert_allclose(s.mean_, [3.0, 10.0])
    np.testing.assert_allclose(s.std_, [np.sqrt(8 / 3), 1.0])
    np.testing.assert_allclose(s.transform(X), [[-np.sqrt(1.5), 0.0], [0.0, 0.0], [np.sqrt(1.5), 0.0]])
