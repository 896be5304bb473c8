"""Seeded synthetic 2-D data sets and the real 8x8 digits.

Inputs are standardised (zero mean, unit variance per feature on the training
split) so the initialisation theory (He, Xavier) applies to layer 1 as written.
The digits come from scikit-learn, which ships them: nothing is downloaded.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_SHAPES = {
    "spiral": (2, 3),
    "moons": (2, 2),
    "circles": (2, 2),
    "xor": (2, 2),
    "blobs": (2, 4),
    "digits": (64, 10),
}
_DIGITS_N = 1797


@dataclass(frozen=True)
class Dataset:
    name: str
    x_train: np.ndarray  # float32 (n, d)
    y_train: np.ndarray  # int64 (n,)
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def n_inputs(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_classes(self) -> int:
        return _SHAPES[self.name][1]


def dataset_shape(name: str) -> tuple[int, int]:
    """(inputs, classes) of a data set, without building it."""
    return _SHAPES[name]


def dataset_sizes(name: str, n_samples: int) -> int:
    """Total samples the set will have (digits has a fixed size)."""
    return _DIGITS_N if name == "digits" else int(n_samples)


def make_dataset(name: str, n_samples: int = 1200, noise: float = 0.1, seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """Build a seeded data set with a shuffled train/test split."""
    if name not in _SHAPES:
        raise ValueError(f"dataset = {name!r} is not known; allowed: {', '.join(_SHAPES)}")
    rng = np.random.default_rng(seed)
    x, y = _MAKERS[name](n_samples, noise, rng)
    order = rng.permutation(len(y))
    x, y = x[order], y[order]
    n_test = int(round(len(y) * test_fraction))
    x_train, y_train, x_test, y_test = x[n_test:], y[n_test:], x[:n_test], y[:n_test]
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std[std < 1e-8] = 1.0  # constant pixels in digits
    x_train = (x_train - mean) / std
    x_test = (x_test - mean) / std
    return Dataset(
        name,
        x_train.astype(np.float32),
        y_train.astype(np.int64),
        x_test.astype(np.float32),
        y_test.astype(np.int64),
    )


def _spiral(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    k = _SHAPES["spiral"][1]
    y = np.arange(n) % k
    t = rng.uniform(0.0, 1.0, n)
    r = t
    theta = 7.0 * t + y * (2 * np.pi / k) + rng.normal(0.0, noise * 2, n)
    x = np.stack([r * np.sin(theta), r * np.cos(theta)], axis=1)
    return x, y


def _xor(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.uniform(-1.0, 1.0, (n, 2))
    y = ((x[:, 0] > 0) ^ (x[:, 1] > 0)).astype(np.int64)
    return x + rng.normal(0.0, noise, x.shape), y


def _sk(fn_name: str):
    def make(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        from sklearn import datasets as skd

        state = int(rng.integers(0, 2**31 - 1))
        if fn_name == "moons":
            return skd.make_moons(n, noise=noise, random_state=state)
        if fn_name == "circles":
            return skd.make_circles(n, noise=noise, factor=0.5, random_state=state)
        return skd.make_blobs(n, centers=_SHAPES["blobs"][1], cluster_std=1.0 + 10 * noise, random_state=state)

    return make


def _digits(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = d.data.astype(np.float64) / 16.0
    if noise > 0:
        x = x + rng.normal(0.0, noise, x.shape) * 0.1
    return x, d.target


_MAKERS = {
    "spiral": _spiral,
    "moons": _sk("moons"),
    "circles": _sk("circles"),
    "xor": _xor,
    "blobs": _sk("blobs"),
    "digits": _digits,
}
