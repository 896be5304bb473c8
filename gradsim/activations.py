"""Every activation once: its name, torch and numpy forms, derivative, and what
counts as saturated or dead after it.

The model (forward pass), the theory (Gaussian expectations of phi and phi'),
the probes (saturation and dead units) and the config's list of allowed names
all read this table, so an activation added here is known to all of them and
their definitions cannot drift apart.

Importing this module does not import torch: the window reads the names and
thresholds to fill its combo boxes, and its process never imports torch. The
torch forms import it when first called (in the engine, where it is loaded).
``slope`` is the leaky relu's negative slope; the other activations ignore it.

The hand-written backprop (gradsim/models/mlp_backprop.py) keeps its own table
of fused aten kernels, one per name here, because it writes into preallocated
buffers; tests/engine/test_activations.py checks that both tables list the same
names and that every kernel equals the torch form below.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional

import numpy as np

if TYPE_CHECKING:
    import torch

_SELU_L, _SELU_A = 1.0507009873554805, 1.6732632423543772
_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

#: |tanh| above this counts as saturated (derivative below 0.06).
SAT_TANH = 0.97
#: sigmoid outside [LO, HI] counts as saturated (derivative below 0.03).
SAT_SIGMOID_LO, SAT_SIGMOID_HI = 0.03, 0.97

TorchFn = Callable[["torch.Tensor"], "torch.Tensor"]
NumpyFn = Callable[[np.ndarray], np.ndarray]


def _torch() -> Any:
    import torch  # here, not at the top: see the module's docstring

    return torch


def _erf(x: np.ndarray) -> np.ndarray:
    # torch's erf, not a numpy stand-in: the theory's recorded numbers were computed with it
    t = _torch()
    return t.special.erf(t.from_numpy(np.ascontiguousarray(x, dtype=np.float64))).numpy()


def _sech2(x: np.ndarray) -> np.ndarray:
    """1 - tanh(x)^2 without cancellation or overflow at large |x|."""
    e = np.exp(-2.0 * np.abs(x))
    return 4.0 * e / (1.0 + e) ** 2


def _expit(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow warning at huge |x| (exploding nets)


@dataclass(frozen=True)
class Activation:
    """One activation function and the facts every part of GradSim needs about it."""

    name: str
    #: slope -> phi as a torch function (the network's forward pass).
    torch_fn: Callable[[float], TorchFn]
    #: (slope, a) -> phi'(a) as a tensor (the theory's batch-norm path).
    torch_grad: Callable[[float, "torch.Tensor"], "torch.Tensor"]
    #: slope -> phi on float64 arrays (Gaussian quadrature).
    numpy_fn: Callable[[float], NumpyFn]
    #: slope -> phi' on float64 arrays; at a kink (x = 0) the right-hand value.
    numpy_grad: Callable[[float], NumpyFn]
    #: Output interval outside which a unit counts as saturated; None: never saturates.
    saturated_outside: Optional[tuple[float, float]] = None
    #: Outputs are >= 0 and a unit whose batch maximum is 0 passes no gradient (relu).
    can_die: bool = False
    #: slope -> (A, B) with E[phi(h)^2] = q A and E[phi'(h)^2] = B for h ~ N(0, q),
    #: exact for the piecewise-linear activations; None: use quadrature.
    closed_form: Optional[Callable[[float], tuple[float, float]]] = None

    def saturated(self, f: "torch.Tensor") -> "torch.Tensor":
        """Boolean mask of the saturated entries of this activation's output ``f``."""
        if self.saturated_outside is None:
            return f.new_zeros(f.shape, dtype=_torch().bool)
        lo, hi = self.saturated_outside
        if lo == -hi:  # symmetric (tanh): one comparison of |f|
            return f.abs() > hi
        return (f < lo) | (f > hi)


def _where_pos(a: "torch.Tensor", pos: Any, neg: Any) -> "torch.Tensor":
    # Python-float branches make a float32 result that is then cast: a leaky
    # slope of 0.07 becomes 0.07000000030. Kept as it is: the recorded theory
    # numbers of earlier versions were computed this way (4e-9 relative).
    return _torch().where(a > 0, pos, neg).to(a.dtype)


def _sigmoid_grad(slope: float, a: "torch.Tensor") -> "torch.Tensor":
    s = _torch().sigmoid(a)
    return s * (1.0 - s)


def _gelu_torch_grad(slope: float, a: "torch.Tensor") -> "torch.Tensor":
    t = _torch()
    return 0.5 * (1.0 + t.special.erf(a / _SQRT2)) + a * t.exp(-0.5 * a * a) * _INV_SQRT_2PI


def _leaky_moment(slope: float) -> tuple[float, float]:
    m = 0.5 * (1.0 + slope * slope)
    return m, m


def _F() -> Any:
    return _torch().nn.functional


_TABLE = (
    Activation(
        "sigmoid",
        torch_fn=lambda s: _torch().sigmoid,
        torch_grad=_sigmoid_grad,
        numpy_fn=lambda s: _expit,
        numpy_grad=lambda s: (lambda x: 0.25 * _sech2(0.5 * x)),
        saturated_outside=(SAT_SIGMOID_LO, SAT_SIGMOID_HI),
    ),
    Activation(
        "tanh",
        torch_fn=lambda s: _torch().tanh,
        torch_grad=lambda s, a: 1.0 - _torch().tanh(a) ** 2,
        numpy_fn=lambda s: np.tanh,
        numpy_grad=lambda s: _sech2,
        saturated_outside=(-SAT_TANH, SAT_TANH),
    ),
    Activation(
        "relu",
        torch_fn=lambda s: _F().relu,
        torch_grad=lambda s, a: (a > 0).to(a.dtype),
        numpy_fn=lambda s: (lambda x: np.maximum(x, 0.0)),
        numpy_grad=lambda s: (lambda x: np.where(x > 0, 1.0, 0.0)),
        can_die=True,
        closed_form=lambda s: (0.5, 0.5),
    ),
    Activation(
        "leaky_relu",
        torch_fn=lambda s: (lambda t: _F().leaky_relu(t, s)),
        torch_grad=lambda s, a: _where_pos(a, 1.0, s),
        numpy_fn=lambda s: (lambda x: np.where(x > 0, x, s * x)),
        numpy_grad=lambda s: (lambda x: np.where(x > 0, 1.0, s)),
        closed_form=_leaky_moment,
    ),
    Activation(
        "elu",
        torch_fn=lambda s: _F().elu,
        torch_grad=lambda s, a: _where_pos(a, 1.0, _torch().exp(_torch().clamp(a, max=0.0))),
        numpy_fn=lambda s: (lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0)))),
        numpy_grad=lambda s: (lambda x: np.where(x > 0, 1.0, np.exp(np.minimum(x, 0)))),
    ),
    Activation(
        "gelu",
        torch_fn=lambda s: _F().gelu,
        torch_grad=_gelu_torch_grad,
        numpy_fn=lambda s: (lambda x: 0.5 * x * (1.0 + _erf(x / _SQRT2))),
        numpy_grad=lambda s: (lambda x: 0.5 * (1.0 + _erf(x / _SQRT2)) + x * np.exp(-0.5 * x * x) * _INV_SQRT_2PI),
    ),
    Activation(
        "selu",
        torch_fn=lambda s: _F().selu,
        torch_grad=lambda s, a: _SELU_L * _where_pos(a, 1.0, _SELU_A * _torch().exp(_torch().clamp(a, max=0.0))),
        numpy_fn=lambda s: (lambda x: _SELU_L * np.where(x > 0, x, _SELU_A * np.expm1(np.minimum(x, 0)))),
        numpy_grad=lambda s: (lambda x: _SELU_L * np.where(x > 0, 1.0, _SELU_A * np.exp(np.minimum(x, 0)))),
    ),
    Activation(
        "linear",
        torch_fn=lambda s: (lambda t: t),
        torch_grad=lambda s, a: _torch().ones_like(a),
        numpy_fn=lambda s: (lambda x: x),
        numpy_grad=lambda s: np.ones_like,
        closed_form=lambda s: (1.0, 1.0),
    ),
)

#: name -> Activation, in the order the builder lists them.
REGISTRY: dict[str, Activation] = {a.name: a for a in _TABLE}
NAMES: tuple[str, ...] = tuple(REGISTRY)


def get(name: str) -> Activation:
    """The activation called ``name``; a ValueError naming the allowed ones otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"activation = {name!r} is not known; allowed: {', '.join(NAMES)}") from None
