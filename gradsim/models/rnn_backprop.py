"""Hand-written forward and backward through time for RecurrentNet (no autograd).

Why: autograd through an unrolled cell records a dozen nodes per time step,
and on the CPU their bookkeeping costs more than the arithmetic. Written out,
the backward is a few ops per step for the recursion, and the weight
gradients are one matmul per parameter over all steps at once
(dW_hh = sum_t dZ_t^T h_(t-1)). The total gradient reaching each top-layer
h_t (dL/dh_t, what the time units record) is the recursion's own variable,
so it comes for free. The numbers equal autograd's to float32 rounding
(tests/engine/test_rnn_backprop.py).

Gate order is torch's: LSTM (i, f, g, o), GRU (r, z, n).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F


@dataclass
class Pass:
    """What one forward-backward pass leaves for the trainer."""

    out: torch.Tensor  # the head's output (batch, n_out)
    loss: torch.Tensor  # scalar
    H: torch.Tensor  # the top layer's h_t, (T, batch, width)
    dH: torch.Tensor  # dL/dh_t of the top layer, (T, batch, width)
    gate: Optional[torch.Tensor]  # LSTM forget / GRU update gate of the top layer, (T, batch, width)


def _layer_forward(net, k: int, U: torch.Tensor) -> dict:
    """Run layer ``k`` over its input sequence U (T, batch, n_in); keep what the backward needs."""
    cell, w = net.cell, net.width
    w_ih, w_hh, b_ih, b_hh = (p.detach() for p in net.layer_params(k))
    T, B, _ = U.shape
    w_hh_t = w_hh.t()
    H = U.new_empty(T, B, w)
    h = U.new_zeros(B, w)
    if cell == "rnn":
        P = torch.addmm(b_ih + b_hh, U.reshape(T * B, -1), w_ih.t()).view(T, B, w)
        tanh = net.nonlinearity == "tanh"
        for t in range(T):
            z = torch.addmm(P[t], h, w_hh_t) if t else P[t]
            h = torch.tanh(z, out=H[t]) if tanh else torch.clamp_min(z, 0.0, out=H[t])
        return {"U": U, "H": H}
    if cell == "lstm":
        P = torch.addmm(b_ih + b_hh, U.reshape(T * B, -1), w_ih.t()).view(T, B, 4 * w)
        G = U.new_empty(T, B, 4 * w)  # i, f, (g), o after their nonlinearities
        C = U.new_empty(T, B, w)
        TC = U.new_empty(T, B, w)  # tanh(c_t)
        c = U.new_zeros(B, w)
        for t in range(T):
            pre = torch.addmm(P[t], h, w_hh_t) if t else P[t]
            g_all = torch.sigmoid(pre, out=G[t])
            torch.tanh(pre[:, 2 * w : 3 * w], out=G[t, :, 2 * w : 3 * w])
            i, f, g, o = g_all.chunk(4, dim=1)
            c = torch.addcmul(f * c, i, g, out=C[t]) if t else torch.mul(i, g, out=C[t])
            h = torch.mul(o, torch.tanh(c, out=TC[t]), out=H[t])
        return {"U": U, "H": H, "G": G, "C": C, "TC": TC}
    # GRU
    P = torch.addmm(b_ih, U.reshape(T * B, -1), w_ih.t()).view(T, B, 3 * w)
    G = U.new_empty(T, B, 3 * w)  # r, z, n
    HN = U.new_empty(T, B, w)  # W_hn h_(t-1) + b_hn (what r gates)
    for t in range(T):
        hp = torch.addmm(b_hh, h, w_hh_t)
        rz = torch.sigmoid(P[t, :, : 2 * w] + hp[:, : 2 * w], out=G[t, :, : 2 * w])
        HN[t] = hp[:, 2 * w :]
        n = torch.tanh(torch.addcmul(P[t, :, 2 * w :], rz[:, :w], HN[t]), out=G[t, :, 2 * w :])
        h = torch.lerp(n, h, rz[:, w:], out=H[t]) if t else torch.mul(n, 1 - rz[:, w:], out=H[t])
    return {"U": U, "H": H, "G": G, "HN": HN}


def _layer_backward(net, k: int, st: dict, dH_in: torch.Tensor, need_dU: bool) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Backward through layer ``k``: writes its four gradients; returns (dL/dh_t per step, dL/dU or None).

    ``dH_in`` (T, batch, width) is the gradient reaching each h_t from outside
    the recursion (the head, or the layer above)."""
    cell, w = net.cell, net.width
    w_ih, w_hh, b_ih, b_hh = net.layer_params(k)
    W_hh = w_hh.detach()
    U, H = st["U"], st["H"]
    T, B, _ = H.shape
    dH = torch.empty_like(H)  # total dL/dh_t
    dh_rec = H.new_zeros(B, w)
    if cell == "rnn":
        deriv = (1 - H * H) if net.nonlinearity == "tanh" else (H > 0).to(H.dtype)
        DZ = torch.empty_like(H)
        for t in range(T - 1, -1, -1):
            dh = torch.add(dH_in[t], dh_rec, out=dH[t])
            dz = torch.mul(dh, deriv[t], out=DZ[t])
            if t:
                dh_rec = dz @ W_hh
        DX = DH_ = DZ
    elif cell == "lstm":
        G, C, TC = st["G"], st["C"], st["TC"]
        i, f, g, o = G[..., :w], G[..., w : 2 * w], G[..., 2 * w : 3 * w], G[..., 3 * w :]
        # every factor that does not depend on the recursion, over all steps at once
        dc_from_h = o * (1 - TC * TC)
        C_prev = torch.cat([C.new_zeros(1, B, w), C[:-1]])
        s_i, s_f, s_g, s_o = i * (1 - i), f * (1 - f), 1 - g * g, o * (1 - o)
        DZ = H.new_empty(T, B, 4 * w)
        dc_rec = H.new_zeros(B, w)
        for t in range(T - 1, -1, -1):
            dh = torch.add(dH_in[t], dh_rec, out=dH[t])
            dc = torch.addcmul(dc_rec, dh, dc_from_h[t])
            torch.mul(dc * g[t], s_i[t], out=DZ[t, :, :w])
            torch.mul(dc * C_prev[t], s_f[t], out=DZ[t, :, w : 2 * w])
            torch.mul(dc * i[t], s_g[t], out=DZ[t, :, 2 * w : 3 * w])
            torch.mul(dh * TC[t], s_o[t], out=DZ[t, :, 3 * w :])
            if t:
                dc_rec = dc * f[t]
                dh_rec = DZ[t] @ W_hh
        DX = DH_ = DZ
    else:
        G, HN = st["G"], st["HN"]
        r, z, n = G[..., :w], G[..., w : 2 * w], G[..., 2 * w :]
        H_prev = torch.cat([H.new_zeros(1, B, w), H[:-1]])
        s_r, s_z, s_n = r * (1 - r), z * (1 - z), 1 - n * n
        one_minus_z = 1 - z
        zn = H_prev - n
        DX = H.new_empty(T, B, 3 * w)  # input side: r, z, n pre-activations
        DH_ = H.new_empty(T, B, 3 * w)  # hidden side: r, z and hn = W_hn h + b_hn
        for t in range(T - 1, -1, -1):
            dh = torch.add(dH_in[t], dh_rec, out=dH[t])
            dpn = torch.mul(dh * one_minus_z[t], s_n[t], out=DX[t, :, 2 * w :])
            torch.mul(dpn * HN[t], s_r[t], out=DX[t, :, :w])
            torch.mul(dh * zn[t], s_z[t], out=DX[t, :, w : 2 * w])
            DH_[t, :, : 2 * w] = DX[t, :, : 2 * w]
            torch.mul(dpn, r[t], out=DH_[t, :, 2 * w :])
            if t:
                dh_rec = torch.addmm(dh * z[t], DH_[t], W_hh)
    # The weight gradients: one matmul each over every step.
    gw = DX.shape[2]
    DXf, DHf = DX.reshape(T * B, gw), DH_.reshape(T * B, gw)
    H_prev_f = H[:-1].reshape((T - 1) * B, w)
    torch.mm(DXf.t(), U.reshape(T * B, -1), out=w_ih.grad)
    torch.mm(DHf[B:].t(), H_prev_f, out=w_hh.grad)  # h_0 = 0: step 1 adds nothing to dW_hh
    torch.sum(DXf, dim=0, out=b_ih.grad)
    torch.sum(DHf, dim=0, out=b_hh.grad)
    dU = (DXf @ w_ih.detach()).view(T, B, -1) if need_dU else None
    return dH, dU


@torch.no_grad()
def run(net, x: torch.Tensor, y: torch.Tensor, regression: bool) -> Pass:
    """Forward and backward for a batch ``x`` (batch, T, channels): every parameter's
    ``.grad`` (views of the trainer's arenas) is overwritten, nothing accumulated."""
    U = x.transpose(0, 1)  # time-major: each step's rows are contiguous
    states = []
    for k in range(net.depth):
        st = _layer_forward(net, k, U.contiguous())
        states.append(st)
        U = st["H"]
    H = states[-1]["H"]
    w_head, b_head = net.head.weight, net.head.bias
    out = torch.addmm(b_head.detach(), H[-1], w_head.detach().t())
    if regression:
        loss = F.mse_loss(out, y)
        dout = (out - y) * (2.0 / out.numel())
    else:
        loss = F.cross_entropy(out, y)
        dout = torch.softmax(out, dim=1)
        dout[torch.arange(len(y)), y] -= 1.0
        dout /= len(y)
    torch.mm(dout.t(), H[-1], out=w_head.grad)
    torch.sum(dout, dim=0, out=b_head.grad)
    dH_in = torch.zeros_like(H)
    dH_in[-1] = dout @ w_head.detach()
    dH_top: Optional[torch.Tensor] = None
    for k in range(net.depth - 1, -1, -1):
        dH, dU = _layer_backward(net, k, states[k], dH_in, need_dU=k > 0)
        if dH_top is None:
            dH_top = dH
        if dU is not None:
            dH_in = dU
    assert dH_top is not None
    top = states[-1]
    w = net.width
    gate = None if net.cell == "rnn" else top["G"][..., w : 2 * w]
    return Pass(out, loss, H, dH_top, gate)
