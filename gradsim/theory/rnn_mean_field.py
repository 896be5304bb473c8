"""Mean-field prediction of the gain through time of a vanilla RNN (tanh or relu).

Backprop through time multiplies one Jacobian per step,
dL/dh_t = W_hh^T diag(phi'(z_(t+1))) dL/dh_(t+1) (plus the head's direct path
at the last step), so at large width the squared norm shrinks or grows per
step by chi_(t+1) = sigma_w^2 E[phi'(z_(t+1))^2] with sigma_w^2 = ||W_hh||_F^2 / width
(sigma_w is the G of ``normal:G``). The pre-activation z_t is treated as
Gaussian N(0, q_t) with

    q_t = sigma_w^2 E[phi(z_(t-1))^2] + v_t,    q_1 = v_1,

where v_t is the mean square of the input drive W_ih u_t + b_ih + b_hh on the
actual batch (u_t = the input, or the lower layer's output when stacked: the
lower layers run for real). The prediction for time unit t is
sqrt(chi_(t+1)) = ||dL/dh_t|| / ||dL/dh_(t+1)||, NaN for the last step (its
gradient comes from the head) and for every parameter unit.

It assumes the mean-field's gradient independence (W_hh^T in the backward pass
acts as a fresh random matrix). With one W_hh shared by all steps that holds
up to finite-width corrections of order (steps)^2 / width; at width 256 over 50
steps the measured mean gain is within 10 % for G from 0.8 to 1.5
(tests/engine/test_rnn_theory.py). LSTM and GRU have no such theory here.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..metrics import PRED_MIN_WIDTH
from ..models.family import provide_theory
from .mean_field import expect_both_fast


def _applies(net: Any) -> bool:
    return getattr(net, "cell", None) == "rnn" and net.width >= PRED_MIN_WIDTH


@torch.no_grad()
def predict_time_gains(net: Any, x: torch.Tensor) -> np.ndarray:
    """(seq_len,) predicted ||dL/dh_t|| / ||dL/dh_(t+1)|| for the top layer of ``net``
    (a vanilla RecurrentNet) on inputs ``x`` (batch, T, channels); NaN where it says nothing."""
    T = x.shape[1]
    out = np.full(T, np.nan)
    if not _applies(net) or T < 2:
        return out
    u = x.double()
    for k in range(net.depth - 1):  # lower layers run for real: their output is the top layer's input
        w_ih, w_hh, b_ih, b_hh = (p.double() for p in net.layer_params(k))
        proj = torch.nn.functional.linear(u, w_ih, b_ih)
        h = u.new_zeros(u.shape[0], net.width)
        hs = []
        for t in range(T):
            z = proj[:, t] + torch.nn.functional.linear(h, w_hh, b_hh)
            h = torch.tanh(z) if net.nonlinearity == "tanh" else torch.relu(z)
            hs.append(h)
        u = torch.stack(hs, dim=1)
    w_ih, w_hh, b_ih, b_hh = (p.double() for p in net.layer_params(net.depth - 1))
    sigma_w2 = float(torch.linalg.vector_norm(w_hh)) ** 2 / net.width
    drive = torch.nn.functional.linear(u, w_ih, b_ih) + b_hh
    v = drive.square().mean(dim=(0, 2)).numpy()
    if not (math.isfinite(sigma_w2) and np.all(np.isfinite(v))):
        return out
    q = np.empty(T)
    phi2_prev = 0.0  # h_0 = 0
    for t in range(T):
        q[t] = sigma_w2 * phi2_prev + v[t]
        if not math.isfinite(q[t]):
            return out
        phi2_prev = float(expect_both_fast(net.nonlinearity, q[t : t + 1])[0][0]) if q[t] > 0 else 0.0
    dphi2 = np.array([expect_both_fast(net.nonlinearity, q[t : t + 1])[1][0] if q[t] > 0 else 1.0 for t in range(T)])
    out[:-1] = np.sqrt(sigma_w2 * dphi2[1:])
    return out


def _rnn_gain(net: Any, x: Any) -> np.ndarray:
    """The family hook: the time units' gains, then NaN for the parameter units."""
    gains = predict_time_gains(net, x)
    return np.concatenate([gains, np.full(2 * net.depth + 1, np.nan)])


provide_theory("rnn", _rnn_gain)
