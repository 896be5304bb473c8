"""Mean-field predictions of the backprop signal per layer, and the Jacobian spectrum.

For a wide MLP with zero-mean weights, layer l+1's pre-activation variance is
    q_{l+1} = sigma_w^2 E[phi(h)^2] + sigma_b^2,     h ~ N(0, q_l)
and the squared backprop signal shrinks or grows by
    chi_l = sigma_w^2 E[phi'(h)^2]
per layer (Poole et al. 2016, Schoenholz et al. 2017), with sigma_w^2 = fan_in
Var(W) of the *next* layer's weights, read from the current weights. Batch
norm resets the variance of h to gamma^2 (+ beta^2) and scales the backward
signal by gamma^2 / q. Expectations use Gauss-Hermite quadrature.

The predicted ||dL/dz|| profile is anchored at the output layer's measured
value (the loss gradient itself is not a mean-field quantity) and carried
toward the input with sqrt(chi) per layer.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch
from scipy.special import erf, expit  # scipy comes with scikit-learn

_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(121)
_WEIGHTS = _WEIGHTS / math.sqrt(2.0 * math.pi)  # E[f(X)], X ~ N(0, 1)
_SELU_L, _SELU_A = 1.0507009873554805, 1.6732632423543772


def _phi(name: str, slope: float) -> Callable[[np.ndarray], np.ndarray]:
    table: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "linear": lambda x: x,
        "relu": lambda x: np.maximum(x, 0.0),
        "leaky_relu": lambda x: np.where(x > 0, x, slope * x),
        "tanh": np.tanh,
        "sigmoid": expit,  # no overflow warning at huge |x| (exploding nets)
        "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
        "selu": lambda x: _SELU_L * np.where(x > 0, x, _SELU_A * np.expm1(np.minimum(x, 0))),
        "gelu": lambda x: 0.5 * x * (1.0 + erf(x / math.sqrt(2.0))),
    }
    return table[name]


def _dphi(name: str, slope: float) -> Callable[[np.ndarray], np.ndarray]:
    sig = expit

    # At a kink (x = 0) the symmetric value keeps the quadrature exact for
    # relu-like functions: E[relu'(h)^2] = 1/2 on symmetric nodes.
    table: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "linear": np.ones_like,
        "relu": lambda x: np.where(x > 0, 1.0, np.where(x < 0, 0.0, math.sqrt(0.5))),
        "leaky_relu": lambda x: np.where(x > 0, 1.0, np.where(x < 0, slope, math.sqrt((1 + slope**2) / 2))),
        "tanh": lambda x: 1.0 - np.tanh(x) ** 2,
        "sigmoid": lambda x: sig(x) * (1.0 - sig(x)),
        "elu": lambda x: np.where(x > 0, 1.0, np.exp(np.minimum(x, 0))),
        "selu": lambda x: _SELU_L * np.where(x > 0, 1.0, _SELU_A * np.exp(np.minimum(x, 0))),
        "gelu": lambda x: 0.5 * (1.0 + erf(x / math.sqrt(2.0))) + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi),
    }
    return table[name]


def gauss_expect(f: Callable[[np.ndarray], np.ndarray], q):
    """E[f(h)] for h ~ N(0, q), by 121-point Gauss-Hermite quadrature (q scalar or array)."""
    qa = np.sqrt(np.maximum(np.asarray(q, dtype=np.float64), 0.0))
    out = f(qa[..., None] * _NODES) @ _WEIGHTS
    return float(out) if np.ndim(out) == 0 else out


@dataclass
class Prediction:
    """Per layer (index 0 = layer 1): the mean-field quantities and the predicted profile."""

    sigma_w2: np.ndarray  # fan_in * Var(W) of each Linear
    q: np.ndarray  # pre-activation variance entering each hidden activation (NaN for the output layer)
    chi: np.ndarray  # squared gain from layer l+1 back to layer l (NaN for the output layer)
    act_grad_norm: np.ndarray  # predicted ||dL/dz||, anchored at the output layer

    @property
    def gain(self) -> np.ndarray:
        """Predicted ||dL/dz_l|| / ||dL/dz_{l+1}|| = sqrt(chi_l)."""
        return np.sqrt(self.chi)


def predict(net, anchor: float = 1.0, x: Optional[torch.Tensor] = None, input_var: float = 1.0) -> Prediction:
    """Mean-field profile of ``net`` (a GradNet) at its current weights.

    With ``x`` (a batch of inputs) the recursion runs per sample from each
    sample's own E[x_i^2]: GradSim's 2-D inputs have very unequal norms, and
    the plain recursion from the average (``input_var``, 1 for standardised
    data) misjudges the first few layers, before q reaches its fixed point.
    The batch profile then assumes equal output gradients per sample:
    ||dL/dz_l||^2 = anchor^2 * mean_x prod_{k>=l} chi_k(x).

    Batch norm: q is reset to gamma^2 + beta^2 and the backward signal scaled by
    gamma^2 / Var(z). BN's batch-coupling terms in the backward pass (which make
    deep BN nets' gradients grow, Yang et al. 2019) are not modelled.
    """
    with torch.no_grad():
        ws = [lin.weight.detach().double() for lin in net.linears]
        bs = [lin.bias.detach().double() for lin in net.linears]
        sigma_w2 = np.array([w.shape[1] * float((w * w).mean()) for w in ws])
        sigma_b2 = np.array([float((b * b).mean()) for b in bs])
        bn = [(float((m.weight.double() ** 2).mean()), float((m.bias.double() ** 2).mean())) for m in net.norms] if net.has_batchnorm else None
        second = (x.double() ** 2).mean(dim=1).numpy() if x is not None else np.array([input_var])
    n = net.n_layers
    q = np.full(n, np.nan)
    chi_x = np.ones((n, second.shape[0]))
    for l in range(net.depth):
        qz = sigma_w2[l] * second + sigma_b2[l]  # variance of z_l, per sample
        if bn is not None:
            g2, b2 = bn[l]
            qa, bn_scale = np.full_like(qz, g2 + b2), g2 / np.maximum(qz.mean(), 1e-300)
        else:
            qa, bn_scale = qz, 1.0
        act, slope = net.activations[l], net.leaky_slope
        q[l] = float(qa.mean())
        chi_x[l] = sigma_w2[l + 1] * gauss_expect(lambda v: _dphi(act, slope)(v) ** 2, qa) * bn_scale
        second = gauss_expect(lambda v: _phi(act, slope)(v) ** 2, qa)
    # cumulative products from the output back: P_l(x) = prod_{k=l}^{depth-1} chi_k(x)
    cum = np.ones((n, chi_x.shape[1]))
    for l in range(net.depth - 1, -1, -1):
        cum[l] = cum[l + 1] * chi_x[l]
    power = cum.mean(axis=1)
    chi = np.full(n, np.nan)
    chi[:-1] = power[:-1] / np.maximum(power[1:], 1e-300)
    return Prediction(sigma_w2, q, chi, anchor * np.sqrt(power))


def jacobian_spectrum(net, x: torch.Tensor, max_samples: int = 8) -> np.ndarray:
    """Singular values of d h_depth / d h_1 (last hidden output w.r.t. the first), per sample.

    The hidden-to-hidden Jacobian is width x width, so its spectrum shows
    dynamical isometry (all singular values near 1: orthogonal init in a
    linear or near-linear tanh net) or its absence (a spread over orders of
    magnitude: Gaussian init), Saxe et al. 2013, Pennington et al. 2017.
    Returns an array (samples, width); batch norm uses this batch's statistics.
    """
    x = x[:max_samples]
    with torch.no_grad():
        logits, zs, hs = net.forward_capture(x)
        width = net.width
        out = []
        for s in range(x.shape[0]):
            jac = torch.eye(width, dtype=torch.float64)
            for l in range(1, net.depth):
                w = net.linears[l].weight.double()
                z = zs[l].double()
                if net.has_batchnorm:
                    m = net.norms[l]
                    var = zs[l].double().var(dim=0, unbiased=False)
                    scale = m.weight.double() / torch.sqrt(var + m.eps)
                    a = (z - z.mean(0)) * scale + m.bias.double()
                else:
                    scale = torch.ones(width, dtype=torch.float64)
                    a = z
                d = torch.from_numpy(_dphi(net.activations[l], net.leaky_slope)(a[s].numpy()))
                jac = (d * scale).unsqueeze(1) * (w @ jac)
            out.append(torch.linalg.svdvals(jac).numpy())
    return np.stack(out) if out else np.zeros((0, net.width))


def predicted_for(trainer, act_grad_norm_last: Optional[float] = None, samples: int = 256) -> Prediction:
    """Prediction for a Trainer's current weights on a fixed sample of its training
    inputs, anchored at a measured output-layer value."""
    anchor = 1.0 if act_grad_norm_last is None or not math.isfinite(act_grad_norm_last) else act_grad_norm_last
    return predict(trainer.net, anchor, x=trainer.probe_inputs(samples))
