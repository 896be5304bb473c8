"""The activation registry: every form of an activation agrees with the others,
and every part of GradSim lists the same activations."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from gradsim import activations
from gradsim.config import ACTIVATIONS
from gradsim.models import mlp_backprop
from gradsim.models.mlp import activation_fn
from gradsim.theory import quadrature

SLOPE = 0.07
X = np.concatenate([np.linspace(-30.0, 30.0, 601), [-1e-3, 1e-3, 0.5, -0.5]])


def test_every_list_of_activations_is_the_registry():
    assert ACTIVATIONS == activations.NAMES == tuple(activations.REGISTRY)
    assert mlp_backprop.KNOWN == activations.NAMES


def test_unknown_name_is_one_clear_error():
    with pytest.raises(ValueError, match=r"activation = 'swish' is not known; allowed: sigmoid, tanh"):
        activations.get("swish")


@pytest.mark.parametrize("name", activations.NAMES)
def test_torch_and_numpy_forms_agree(name):
    act = activations.get(name)
    t = torch.from_numpy(X.copy()).requires_grad_(True)
    y = act.torch_fn(SLOPE)(t)
    np.testing.assert_allclose(act.numpy_fn(SLOPE)(X), y.detach().numpy(), rtol=1e-12, atol=1e-15)
    (auto,) = torch.autograd.grad(y.sum(), t)
    away = np.abs(X) > 1e-9  # at the kink the registry takes the right-hand value, autograd its own choice
    # torch_grad's piecewise branches pass through float32 (see _where_pos): 1e-8, not 1e-10
    np.testing.assert_allclose(act.torch_grad(SLOPE, t.detach()).numpy()[away], auto.numpy()[away], rtol=1e-8, atol=1e-15)
    np.testing.assert_allclose(act.numpy_grad(SLOPE)(X)[away], auto.numpy()[away], rtol=1e-10, atol=1e-15)
    assert activation_fn(name, SLOPE)(t.detach()).equal(y.detach())


@pytest.mark.parametrize("name", [n for n in activations.NAMES if activations.get(n).closed_form is not None])
@pytest.mark.parametrize("q", [0.3, 1.0, 7.0])
def test_closed_forms_equal_the_quadrature(name, q):
    act = activations.get(name)
    assert act.closed_form is not None
    a, b = act.closed_form(SLOPE)
    f, df = act.numpy_fn(SLOPE), act.numpy_grad(SLOPE)
    ea, eb = quadrature.gauss_expect_many([lambda x: f(x) ** 2, lambda x: df(x) ** 2], q)
    assert ea == pytest.approx(q * a, rel=1e-9) and eb == pytest.approx(b, rel=1e-9)


@pytest.mark.parametrize("name", activations.NAMES)
def test_the_fused_kernels_equal_the_registry_bit_for_bit(name):
    z = torch.randn(64, 33, generator=torch.Generator().manual_seed(1)) * 3
    fwd = mlp_backprop._forward_fn(name, SLOPE)
    out = torch.empty_like(z)
    fwd(z, out)
    zr = z.clone().requires_grad_(True)
    h = activations.get(name).torch_fn(SLOPE)(zr)
    assert out.equal(h.detach())
    g = torch.randn_like(z)
    (auto,) = torch.autograd.grad(h, zr, g)
    bwd = mlp_backprop._backward_fn(name, SLOPE)
    if bwd is None:
        assert auto.equal(g)
    else:
        got = torch.empty_like(z)
        bwd(g, z, out, got)
        assert got.equal(auto)


def test_saturation_and_dead_follow_the_thresholds():
    f = torch.tensor([-0.99, -0.97, -0.5, 0.0, 0.02, 0.5, 0.97, 0.98])
    assert activations.get("tanh").saturated(f).tolist() == [True, False, False, False, False, False, False, True]
    assert activations.get("sigmoid").saturated(f).tolist() == [True, True, True, True, True, False, False, True]
    assert not activations.get("relu").saturated(f).any()
    assert [n for n in activations.NAMES if activations.get(n).can_die] == ["relu"]


def test_the_registry_does_not_import_torch():
    code = "import sys, gradsim.activations, gradsim.config; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
