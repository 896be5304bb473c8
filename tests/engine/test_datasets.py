import numpy as np
import pytest

from gradsim.config import DATASETS
from gradsim.datasets import make_dataset


@pytest.mark.parametrize("name", DATASETS)
def test_shapes_split_and_seed(name):
    a = make_dataset(name, 300, 0.1, seed=3, test_fraction=0.2)
    b = make_dataset(name, 300, 0.1, seed=3, test_fraction=0.2)
    c = make_dataset(name, 300, 0.1, seed=4, test_fraction=0.2)
    n = len(a.y_train) + len(a.y_test)
    assert len(a.y_test) == round(n * 0.2)
    assert a.x_train.dtype == np.float32 and a.y_train.dtype == np.int64
    assert np.array_equal(a.x_train, b.x_train) and not np.array_equal(a.x_train, c.x_train)
    assert set(np.unique(a.y_train)) <= set(range(a.n_classes))
    # standardised on the training split: the init theory assumes unit-variance inputs
    assert np.allclose(a.x_train.mean(0), 0, atol=1e-5)
    assert np.all(np.isfinite(a.x_train))


def test_digits_is_the_real_8x8_set():
    d = make_dataset("digits", 0, 0.0, seed=0)
    assert d.n_inputs == 64 and d.n_classes == 10
    assert len(d.y_train) + len(d.y_test) == 1797
