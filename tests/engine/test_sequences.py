"""The sequence tasks are what their definitions say, seeded, split as asked."""
import gzip

import numpy as np
import pytest

from gradsim.data.sequences import SEQUENCE_DATASETS, check_seq_len, make_sequences, sequence_shape
from gradsim.resources import resource_path


def _all(d):
    return np.concatenate([d.x_train, d.x_test]), np.concatenate([d.y_train, d.y_test])


@pytest.mark.parametrize("name", SEQUENCE_DATASETS)
def test_seeded_shapes_and_split(name):
    T = 8
    a = make_sequences(name, 300, T, seed=3, test_fraction=0.25)
    b = make_sequences(name, 300, T, seed=3, test_fraction=0.25)
    c = make_sequences(name, 300, T, seed=4, test_fraction=0.25)
    x, y = _all(a)
    assert len(a.y_test) == round(len(y) * 0.25)
    assert a.x_train.dtype == np.float32 and x.shape[1] == T
    assert (x.shape[2], a.n_outputs) == sequence_shape(name, T)
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_train, b.y_train)
    assert not np.array_equal(a.x_train, c.x_train)
    assert np.all(np.isfinite(x))


@pytest.mark.parametrize("T", [2, 3, 50])
def test_adding_has_two_markers_one_per_half_and_the_target_is_their_sum(T):
    d = make_sequences("adding", 500, T, seed=1)
    x, y = _all(d)
    values, marks = x[:, :, 0].astype(np.float64), x[:, :, 1]
    assert d.regression and y.dtype == np.float32 and y.shape == (500, 1)
    assert values.min() >= 0 and values.max() <= 1
    assert set(np.unique(marks)) <= {0.0, 1.0}
    assert np.all(marks.sum(1) == 2)
    half = T // 2
    assert np.all(marks[:, :half].sum(1) == 1) and np.all(marks[:, half:].sum(1) == 1)
    expected = np.array([sum(v for v, m in zip(vr, mr) if m == 1) for vr, mr in zip(values, marks)])
    np.testing.assert_allclose(y[:, 0], expected, rtol=1e-6)


def test_recall_first_puts_the_class_in_the_first_token_and_noise_after():
    d = make_sequences("recall-first", 4000, 20, seed=2)
    x, y = _all(d)
    assert not d.regression and y.dtype == np.int64 and set(np.unique(y)) == {0, 1}
    np.testing.assert_array_equal(x[:, 0, 0], np.where(y == 1, 1.0, -1.0))
    noise = x[:, 1:, 0]
    assert abs(noise.mean()) < 0.02 and abs(noise.std() - 1.0) < 0.02
    # the noise says nothing about the class
    assert abs(noise[y == 1].mean() - noise[y == 0].mean()) < 0.03


@pytest.mark.parametrize("T", [8, 64])
def test_seq_digits_are_the_digit_pixels_in_reading_order(T):
    with gzip.open(resource_path("data", "digits.csv.gz"), "rt") as f:
        rows = np.array([[float(v) for v in line.split(",")] for line in f if line.strip()])
    want = np.concatenate([rows[:, :-1] / 16.0, rows[:, -1:]], axis=1)
    d = make_sequences("seq-digits", 0, T, seed=0)
    x, y = _all(d)
    assert x.shape == (1797, T, 64 // T)
    got = np.concatenate([x.reshape(len(x), 64).astype(np.float64), y[:, None]], axis=1)
    order = lambda a: a[np.lexsort(a.T[::-1])]
    np.testing.assert_allclose(order(got), order(want), atol=1e-7)


def test_seq_digits_refuses_a_length_that_does_not_divide_64():
    with pytest.raises(ValueError, match="seq_len = 10: .*allowed 2, 4, 8, 16, 32, 64"):
        check_seq_len("seq-digits", 10)
    with pytest.raises(ValueError, match="'spiral' is not a sequence task"):
        make_sequences("spiral", 10, 4)


def test_recall_last_puts_the_class_in_the_last_token_and_noise_before():
    d = make_sequences("recall-last", 4000, 12, seed=5)
    x, y = _all(d)
    assert not d.regression and y.dtype == np.int64 and set(np.unique(y)) == {0, 1}
    np.testing.assert_array_equal(x[:, -1, 0], np.where(y == 1, 1.0, -1.0))
    noise = x[:, :-1, 0]
    assert abs(noise.mean()) < 0.02 and abs(noise.std() - 1.0) < 0.02
    assert abs(noise[y == 1].mean() - noise[y == 0].mean()) < 0.03
    # the first token carries no answer: it is noise, not +-1
    assert not np.all(np.isin(x[:, 0, 0], [-1.0, 1.0]))
