"""The input-output Jacobian of a network's hidden layers and its singular values
(dynamical isometry: Saxe et al. 2013, Pennington et al. 2017).

Computed on float64 copies of the weights, with batch norm by this batch's
statistics, so nothing of the network (parameters, running statistics,
train/eval mode) changes.
"""
from __future__ import annotations

import numpy as np
import torch

from .quadrature import torch_dphi, torch_phi


def jacobian_spectrum(net, x: torch.Tensor, max_samples: int = 8) -> np.ndarray:
    """Singular values of d h_depth / d h_1 (last hidden output w.r.t. the first), per sample.

    The hidden-to-hidden Jacobian is width x width, so its spectrum shows
    dynamical isometry (all singular values near 1: orthogonal init in a
    linear or near-linear tanh net) or its absence (a spread over orders of
    magnitude: Gaussian init), Saxe et al. 2013, Pennington et al. 2017.
    Returns an array (samples, width); batch norm uses this batch's statistics
    as constants (the per-sample Jacobian), computed without the module's
    forward, so its running statistics and train/eval mode stay untouched.
    """
    x = x[:max_samples]
    if getattr(net, "residual", False) or getattr(net, "has_layernorm", False):
        return _stream_jacobian_spectrum(net, x.detach().double())
    with torch.no_grad():
        zs = hidden_preacts(net, x.detach().double())
        width = net.width
        out = []
        for s in range(x.shape[0]):
            jac = torch.eye(width, dtype=torch.float64)
            for l in range(1, net.depth):
                w = net.linears[l].weight.detach().double()
                z = zs[l]
                if net.has_batchnorm:
                    m = net.norms[l]
                    var = z.var(dim=0, unbiased=False)
                    scale = m.weight.detach().double() / torch.sqrt(var + m.eps)
                    a = (z - z.mean(0)) * scale + m.bias.detach().double()
                else:
                    scale = torch.ones(width, dtype=torch.float64)
                    a = z
                d = torch_dphi(net.activations[l], net.leaky_slope, a[s])
                jac = (d * scale).unsqueeze(1) * (w @ jac)
            out.append(torch.linalg.svdvals(jac).numpy())
    return np.stack(out) if out else np.zeros((0, net.width))


def _stream_jacobian_spectrum(net, x: torch.Tensor) -> np.ndarray:
    """Residual / layer-norm nets, per sample, by autograd on a float64 copy of the
    forward pass (batch norm by this batch's statistics, held constant).

    With residual connections the stream z carries the signal, and z_2 depends on
    z_1 as well as on h_1, so the map is d z_depth / d z_1 (the Jacobian the
    backprop signal passes through); with layer norm alone it is d h_depth / d h_1.
    """
    depth, residual = net.depth, bool(net.residual)
    alpha = float(net.residual_alpha) if residual else 0.0
    lin = [(m.weight.detach().double(), m.bias.detach().double()) for m in net.linears]
    bn_stats = []
    with torch.no_grad():  # batch norm's statistics of this batch, as in hidden_preacts
        z = x @ lin[0][0].T + lin[0][1]
        for l in range(depth):
            a = z
            if net.has_batchnorm:
                m = net.norms[l]
                var, mean = torch.var_mean(a, dim=0, unbiased=False)
                bn_stats.append((mean, torch.rsqrt(var + m.eps), m.weight.detach().double(), m.bias.detach().double()))
                mean, inv, g, b = bn_stats[-1]
                a = (a - mean) * inv * g + b
            a = layernorm_double(net, l, a)
            h = torch_phi(net.activations[l], net.leaky_slope, a)
            u = h @ lin[l + 1][0].T + lin[l + 1][1]
            z = z + alpha * u if (residual and l + 1 < depth) else u

    def block(l: int, z: torch.Tensor) -> torch.Tensor:
        a = z
        if net.has_batchnorm:
            mean, inv, g, b = bn_stats[l]
            a = (a - mean) * inv * g + b
        return torch_phi(net.activations[l], net.leaky_slope, layernorm_double(net, l, a))

    def stream(z1: torch.Tensor) -> torch.Tensor:  # z_1 -> z_depth
        z = z1
        for l in range(depth - 1):
            u = block(l, z) @ lin[l + 1][0].T + lin[l + 1][1]
            z = z + alpha * u
        return z

    def hidden(h1: torch.Tensor) -> torch.Tensor:  # h_1 -> h_depth (no skips)
        h = h1
        for l in range(1, depth):
            h = block(l, h @ lin[l][0].T + lin[l][1])
        return h

    with torch.no_grad():
        z1 = x @ lin[0][0].T + lin[0][1]
        start = z1 if residual else block(0, z1)
    fn = stream if residual else hidden
    out = []
    for s in range(x.shape[0]):
        jac = torch.autograd.functional.jacobian(lambda v: fn(v.unsqueeze(0))[0], start[s], vectorize=True)
        out.append(torch.linalg.svdvals(jac.detach()).numpy())
    return np.stack(out) if out else np.zeros((0, net.width))


def layernorm_double(net, l: int, a: torch.Tensor) -> torch.Tensor:
    """Layer norm of hidden layer l on float64 values (no-op when layer norm is off)."""
    if not getattr(net, "has_layernorm", False):
        return a
    m = net.lnorms[l]
    var, mean = torch.var_mean(a, dim=-1, unbiased=False, keepdim=True)
    return (a - mean) * torch.rsqrt(var + m.eps) * m.weight.detach().double() + m.bias.detach().double()


def hidden_preacts(net, x: torch.Tensor) -> list[torch.Tensor]:
    """z of every hidden layer in float64, batch norm by this batch's statistics
    (computed here: the module's forward would update its running statistics)."""
    zs = []
    h = x
    for l in range(net.depth):
        lin = net.linears[l]
        z = h @ lin.weight.detach().double().T + lin.bias.detach().double()
        zs.append(z)
        if net.has_batchnorm:
            m = net.norms[l]
            a = (z - z.mean(0)) / torch.sqrt(z.var(dim=0, unbiased=False) + m.eps) * m.weight.detach().double() + m.bias.detach().double()
        else:
            a = z
        h = torch_phi(net.activations[l], net.leaky_slope, a)
    return zs
