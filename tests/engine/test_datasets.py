import numpy as np
import pytest

from gradsim.config import DATASETS
from gradsim.data.datasets import make_dataset


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


# ----------------------------------------------- the port of scikit-learn's generators
@pytest.mark.parametrize("name", ["moons", "circles", "blobs"])
@pytest.mark.parametrize("n,noise,seed", [(1200, 0.1, 0), (7, 0.3, 5), (1001, 0.0, 123)])
def test_generators_equal_scikit_learns_for_the_same_seed(name, n, noise, seed):
    """Sessions recorded when scikit-learn made these sets must replay identically."""
    skd = pytest.importorskip("sklearn.datasets")
    from gradsim.data import datasets

    state = int(np.random.default_rng(seed).integers(0, 2**31 - 1))
    if name == "moons":
        ref = skd.make_moons(n, noise=noise, random_state=state)
    elif name == "circles":
        ref = skd.make_circles(n, noise=noise, factor=0.5, random_state=state)
    else:
        ref = skd.make_blobs(n, centers=4, cluster_std=1.0 + 10 * noise, random_state=state)
    x, y = datasets._MAKERS[name](n, noise, np.random.default_rng(seed))
    assert np.array_equal(x, ref[0]) and np.array_equal(y, ref[1])


def test_shipped_digits_equal_scikit_learns():
    skd = pytest.importorskip("sklearn.datasets")
    from gradsim.data import datasets

    x, y = datasets._digits(0, 0.0, np.random.default_rng(0))
    ref = skd.load_digits()
    assert np.array_equal(x, ref.data / 16.0) and np.array_equal(y, ref.target)
    assert x.shape == (1797, 64) and sorted(set(y.tolist())) == list(range(10))
