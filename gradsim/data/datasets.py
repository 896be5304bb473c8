"""Seeded synthetic 2-D data sets and the real 8x8 digits.

Inputs are standardised (zero mean, unit variance per feature on the training
split) so the initialisation theory (He, Xavier) applies to layer 1 as written.
The digits are the 8x8 UCI digits as scikit-learn ships them, in
resources/data/digits.csv.gz (BSD-3-Clause, see DIGITS-LICENSE.txt there):
nothing is downloaded.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..resources import resource_path

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


# moons, circles and blobs are scikit-learn's make_moons / make_circles /
# make_blobs (BSD-3-Clause), ported line for line so that the same seed gives
# the same points as before (sessions recorded then replay identically:
# tests/engine/test_datasets.py compares them with scikit-learn when it is
# installed). scikit-learn itself (~70 MB with scipy) is no longer a dependency.
def _shuffled(x: np.ndarray, y: np.ndarray, rs: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    idx = np.arange(len(y))
    rs.shuffle(idx)
    return x[idx], y[idx]


def _moons(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    rs = np.random.RandomState(int(rng.integers(0, 2**31 - 1)))
    n_out = n // 2
    n_in = n - n_out
    x = np.vstack([
        np.append(np.cos(np.linspace(0, np.pi, n_out)), 1 - np.cos(np.linspace(0, np.pi, n_in))),
        np.append(np.sin(np.linspace(0, np.pi, n_out)), 1 - np.sin(np.linspace(0, np.pi, n_in)) - 0.5),
    ]).T
    y = np.hstack([np.zeros(n_out, dtype=np.intp), np.ones(n_in, dtype=np.intp)])
    x, y = _shuffled(x, y, rs)
    x += rs.normal(scale=noise, size=x.shape)
    return x, y


def _circles(n: int, noise: float, rng: np.random.Generator, factor: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    rs = np.random.RandomState(int(rng.integers(0, 2**31 - 1)))
    n_out = n // 2
    n_in = n - n_out
    t_out = np.linspace(0, 2 * np.pi, n_out, endpoint=False)
    t_in = np.linspace(0, 2 * np.pi, n_in, endpoint=False)
    x = np.vstack([
        np.append(np.cos(t_out), np.cos(t_in) * factor),
        np.append(np.sin(t_out), np.sin(t_in) * factor),
    ]).T
    y = np.hstack([np.zeros(n_out, dtype=np.intp), np.ones(n_in, dtype=np.intp)])
    x, y = _shuffled(x, y, rs)
    x += rs.normal(scale=noise, size=x.shape)
    return x, y


def _blobs(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    rs = np.random.RandomState(int(rng.integers(0, 2**31 - 1)))
    k, std = _SHAPES["blobs"][1], 1.0 + 10 * noise
    centers = rs.uniform(-10.0, 10.0, size=(k, 2))
    per = [n // k + (1 if i < n % k else 0) for i in range(k)]
    x = np.empty((n, 2), dtype=np.float64)
    y = np.empty(n, dtype=int)
    start = 0
    for i, m in enumerate(per):
        x[start : start + m] = rs.normal(loc=centers[i], scale=std, size=(m, 2))
        y[start : start + m] = i
        start += m
    return _shuffled(x, y, rs)


def _digits(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    path = resource_path("data", "digits.csv.gz")
    if not path.is_file():
        raise FileNotFoundError(f"the digits data file is missing: {path} (a broken install?)")
    data = np.loadtxt(path, delimiter=",")
    x = data[:, :-1] / 16.0
    if noise > 0:
        x = x + rng.normal(0.0, noise, x.shape) * 0.1
    return x, data[:, -1].astype(int)


_MAKERS = {
    "spiral": _spiral,
    "moons": _moons,
    "circles": _circles,
    "xor": _xor,
    "blobs": _blobs,
    "digits": _digits,
}
