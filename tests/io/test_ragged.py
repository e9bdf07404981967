"""pad_ragged: ragged sequences (lists of arrays, awkward arrays of lists, of records, records of
lists) → X (n, T, F) padded with zeros after each sequence's last step, and lengths (n,).

Expected arrays are written out by hand or built with a plain NumPy loop over the sequences."""

from __future__ import annotations

import warnings

import awkward as ak
import numpy as np
import pytest

from bptt.data.arrays import pad_ragged, read_npz, write_npz
from bptt.data.events import Events


def loop_pad(seqs, T):
    """The oracle: a Python loop writing each sequence's first T steps into zeros."""
    F = np.asarray(seqs[0]).reshape(len(seqs[0]), -1).shape[1]
    X = np.zeros((len(seqs), T, F))
    for i, s in enumerate(seqs):
        s = np.asarray(s, float).reshape(len(s), -1)[:T]
        X[i, : len(s)] = s
    return X


def test_list_of_arrays_by_hand():
    X, lengths = pad_ragged([np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), np.array([[7.0, 8.0]])])
    assert X.dtype == np.float32 and lengths.dtype == np.int64
    assert lengths.tolist() == [3, 1]
    assert X.tolist() == [[[1, 2], [3, 4], [5, 6]], [[7, 8], [0, 0], [0, 0]]]


def test_one_feature_lists_and_float64():
    X, lengths = pad_ragged([[1.5, 2.5], [3.5], [4.5, 5.5, 6.5]], dtype=np.float64)
    assert X.dtype == np.float64 and X.shape == (3, 3, 1)
    assert X[..., 0].tolist() == [[1.5, 2.5, 0], [3.5, 0, 0], [4.5, 5.5, 6.5]]
    assert lengths.tolist() == [2, 1, 3]


def test_random_sequences_match_a_loop():
    rng = np.random.default_rng(3)
    seqs = [rng.normal(size=(int(k), 3)) for k in rng.integers(1, 9, size=40)]
    X, lengths = pad_ragged(seqs, dtype=np.float64)
    assert lengths.tolist() == [len(s) for s in seqs]
    np.testing.assert_array_equal(X, loop_pad(seqs, max(len(s) for s in seqs)))


def test_awkward_numbers_records_and_record_of_lists_agree():
    pt = [[5.0, 3.0, 1.0], [2.0], [4.0, 0.5]]
    eta = [[0.1, -0.2, 0.3], [1.0], [-1.5, 2.0]]
    expected = loop_pad([np.stack([p, e], axis=1) for p, e in zip(pt, eta)], 3)
    records = ak.Array([[{"pt": p, "eta": e} for p, e in zip(ps, es)] for ps, es in zip(pt, eta)])
    of_lists = ak.zip({"pt": ak.Array(pt), "eta": ak.Array(eta)}, depth_limit=1)  # what uproot's tree.arrays gives
    for seqs in (records, of_lists, {"pt": pt, "eta": eta}):
        X, lengths = pad_ragged(seqs, dtype=np.float64)
        assert lengths.tolist() == [3, 1, 2]
        np.testing.assert_array_equal(X, expected)
    X, _ = pad_ragged(records, fields=["eta", "pt"], dtype=np.float64)
    np.testing.assert_array_equal(X, expected[..., ::-1])
    X, lengths = pad_ragged(ak.Array(pt), dtype=np.float64)
    np.testing.assert_array_equal(X, expected[..., :1])
    regular = ak.Array([np.stack([p, e], axis=1).tolist() for p, e in zip(pt, eta)])  # n * var * 2 * float
    np.testing.assert_array_equal(pad_ragged(regular, dtype=np.float64)[0], expected)


def test_max_length_pads_and_truncates_post_and_pre_with_a_warning():
    seqs = [[1.0, 2.0, 3.0, 4.0], [5.0], [6.0, 7.0, 8.0]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        X, lengths = pad_ragged(seqs, max_length=6)  # nothing cut: no warning; T is max_length
    assert X.shape == (3, 6, 1) and lengths.tolist() == [4, 1, 3]
    with pytest.warns(UserWarning, match=r"2 of 3 sequences are longer than max_length=2 \(the longest has 4 steps\); "
                                          r"kept their first 2 steps \(truncating='post'\), 3 steps left out"):
        X, lengths = pad_ragged(seqs, max_length=2)
    assert X[..., 0].tolist() == [[1, 2], [5, 0], [6, 7]] and lengths.tolist() == [2, 1, 2]
    with pytest.warns(UserWarning, match="kept their last 2 steps"):
        X, lengths = pad_ragged(ak.Array(seqs), max_length=2, truncating="pre")
    assert X[..., 0].tolist() == [[3, 4], [5, 0], [7, 8]] and lengths.tolist() == [2, 1, 2]


def test_empty_sequences_are_refused_naming_the_events():
    with pytest.raises(ValueError, match=r"pad_ragged: 2 of 4 sequences have no steps \(event 1, 3\); the recurrent "
                                         r"layers need at least one step .*keep = ak.num\(seqs, axis=1\) > 0"):
        pad_ragged(ak.Array([[1.0], [], [2.0, 3.0], []]))


@pytest.mark.parametrize("seqs,kwargs,match", [
    ({"pt": [[1.0, 2.0], [3.0]], "eta": [[1.0, 2.0], [3.0, 4.0]]}, {},
     r"field 'eta' has 2 values in event 1 but 'pt' has 1; every per-step field must have one value per step"),
    ([np.ones((2, 3)), np.ones((1, 2))], {}, r"sequence 1 has 2 features per step but sequence 0 has 3"),
    ([np.array([[1.0], [np.inf]])], {}, r"'feature 0' is inf at step 1 of event 0; every value must be finite"),
    (ak.Array([[{"a": 1.0, "b": np.nan}], [{"a": 1.0, "b": 2.0}, {"a": 2.0, "b": np.nan}]]), {},
     r"'b' is nan at step 0 of event 0"),
    (ak.Array([[{"a": 1.0}]]), {"fields": ["a", "z"]}, r"no field 'z' in seqs; its fields are: a"),
    ([[1.0]], {"max_length": 0}, r"max_length must be a positive integer"),
    ([[1.0]], {"truncating": "middle"}, r"truncating must be 'post'"),
    ([[1.0]], {"dtype": np.int32}, r"dtype must be a float type"),
    (np.ones((3, 2)), {}, r"seqs must be a list of \(len_i, F\) arrays, an awkward array or a dict"),
    ([], {}, r"seqs is empty"),
    (ak.Array([[[1.0, 2.0], [3.0]]]), {}, r"every step must hold the same number of features; event 0 has a step with "
                                          r"1 values where the first step has 2"),
])
def test_errors_name_what_and_where(seqs, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pad_ragged(seqs, **kwargs)


def test_size_is_checked_before_allocating():
    seqs = [np.ones((1, 4))] * 9 + [np.ones((1000, 4))]
    # 10 sequences x 1000 steps x 4 features x 4 bytes = 160000 bytes > 100000
    with pytest.raises(ValueError, match=r"padding 10 sequences to T=1000 steps of 4 features needs 0\.2 MiB as float32, "
                                         r"more than the limit of 0\.1 MiB \(max_bytes\); pass a smaller max_length "
                                         r"\(the longest sequence has 1000 steps\)"):
        pad_ragged(seqs, max_bytes=100_000)
    X, _ = pad_ragged(seqs, max_bytes=160_000)
    assert X.shape == (10, 1000, 4)


def test_npz_round_trip_with_lengths_and_per_step_targets(tmp_path):
    X, lengths = pad_ragged([np.ones((3, 2)), 2 * np.ones((1, 2))])
    y = np.array([[1, 0, 1], [1, 0, 0]], np.float32)
    path = write_npz(tmp_path / "r.npz", X, y, lengths=lengths)
    X2, y2, l2 = read_npz(path, with_lengths=True)
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(y2, y)
    assert l2.tolist() == [3, 1]
    with pytest.raises(ValueError, match=r"holds ragged sequences \(an array 'lengths'\); read it with "
                                         r"read_npz\(path, with_lengths=True\)"):
        read_npz(path)
    plain = write_npz(tmp_path / "p.npz", X, np.r_[1.0, 0.0])
    assert read_npz(plain, with_lengths=True)[2] is None
    np.savez(tmp_path / "bad.npz", x=X, y=y, lengths=np.array([3, 4]))
    with pytest.raises(ValueError, match=r"lengths must satisfy 1 <= length <= 3 \(the padded length T\); sequence 1 "
                                         r"has length 4"):
        read_npz(tmp_path / "bad.npz", with_lengths=True)
    with pytest.raises(ValueError, match=r"per-step targets y must have shape \(n, T\) = \(2, 3\)"):
        write_npz(tmp_path / "w.npz", X, np.ones((2, 2)), lengths=lengths)


def test_events_keep_lengths_with_their_rows():
    X = np.arange(5 * 4 * 1, dtype=np.float32).reshape(5, 4, 1)
    ev = Events(X=X, y=np.zeros((5, 4), np.float32), weights=np.ones(5), is_train=np.r_[1, 0, 1, 1, 0].astype(bool),
                lengths=np.r_[4, 1, 2, 3, 1])
    assert ev.train_lengths().tolist() == [4, 2, 3] and ev.test_lengths().tolist() == [1, 1]
    assert ev.train()[0][:, 0, 0].tolist() == [0, 8, 12] and ev.train()[1].shape == (3, 4)
    plain = Events(X=X, y=np.zeros(5), weights=np.ones(5), is_train=np.ones(5, bool))
    assert plain.train_lengths() is None and plain.test_lengths() is None
    with pytest.raises(ValueError, match=r"Events: lengths must satisfy 1 <= length <= 4 \(the padded length T\); "
                                         r"sequence 2 has length 5"):
        Events(X=X, y=np.zeros(5), weights=np.ones(5), is_train=np.ones(5, bool), lengths=np.r_[1, 1, 5, 1, 1])
    with pytest.raises(ValueError, match=r"Events: lengths must be integers .* got dtype float64; convert it with "
                                         r"lengths.astype\(np.int64\)"):
        Events(X=X, y=np.zeros(5), weights=np.ones(5), is_train=np.ones(5, bool), lengths=np.r_[1.0, 1, 2, 1, 1])
    with pytest.raises(ValueError, match=r"Events: y must have shape \(5,\) \(one label per event\) or \(n, T\) = "
                                         r"\(5, 4\) \(one per step\); got \(5, 3\)"):
        Events(X=X, y=np.zeros((5, 3)), weights=np.ones(5), is_train=np.ones(5, bool))
