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


class Workspace:
    """Buffers kept from one pass to the next, so a step allocates (and page-faults) nothing big.

    A Pass computed with a workspace holds views into it: they stay valid until
    the next ``run`` with the same workspace."""

    def __init__(self) -> None:
        self._bufs: dict[tuple[int, str], torch.Tensor] = {}

    def get(self, k: int, name: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        buf = self._bufs.get((k, name))
        if buf is None or buf.shape != shape or buf.dtype != like.dtype:
            buf = like.new_empty(shape)
            self._bufs[(k, name)] = buf
        return buf


class _Fresh(Workspace):
    """A workspace that keeps nothing: every buffer is new (the default of ``run``)."""

    def get(self, k: int, name: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        return like.new_empty(shape)


def _layer_forward(net, k: int, U: torch.Tensor, ws: Workspace) -> dict:
    """Run layer ``k`` over its input sequence U (T, batch, n_in); keep what the backward needs.

    The step loops write every result with ``out=`` or in place into buffers laid
    out over all steps: on the CPU each op's dispatch costs about as much as its
    arithmetic at these sizes, and a fresh tensor per op adds an allocation. Each
    buffer is split into its steps' views once (``unbind``): indexing ``X[t]`` in
    the loop costs several times more per view."""
    if net.cell == "lstm":
        return _lstm_forward(net, k, U, ws)
    cell, w = net.cell, net.width
    w_ih, w_hh, b_ih, b_hh = (p.detach() for p in net.layer_params(k))
    T, B, _ = U.shape
    w_hh_t = w_hh.t()
    # h_0 = 0 is row 0: H_prev = HB[:-1] is then a view, not a concatenation
    HB = ws.get(k, "HB", (T + 1, B, w), U)
    HB[0].zero_()
    H = HB[1:]
    hb = HB.unbind(0)  # hb[t] = h_(t-1), hb[t + 1] = h_t
    U2 = U.reshape(T * B, -1)
    if cell == "rnn":
        tanh = net.nonlinearity == "tanh"
        # the input projection lands in H itself; each step adds W_hh h_(t-1) in place
        torch.addmm(b_ih + b_hh, U2, w_ih.t(), out=H.view(T * B, w))
        for t in range(T):
            z = hb[t + 1]
            if t:
                z.addmm_(hb[t], w_hh_t)
            z.tanh_() if tanh else z.clamp_min_(0.0)
        return {"U": U, "H": H, "HB": HB}
    # GRU
    P = ws.get(k, "P", (T, B, 3 * w), U)
    torch.addmm(b_ih, U2, w_ih.t(), out=P.view(T * B, 3 * w))
    G = ws.get(k, "G", (T, B, 3 * w), U)  # r, z, n
    HP = ws.get(k, "HP", (T, B, 3 * w), U)  # W_hh h_(t-1) + b_hh; its n block is what r gates
    hn = HP[..., 2 * w :]
    gr, gz, gn, grz = (G[..., a:b].unbind(0) for a, b in ((0, w), (w, 2 * w), (2 * w, 3 * w), (0, 2 * w)))
    prz, pn, hps = P[..., : 2 * w].unbind(0), P[..., 2 * w :].unbind(0), HP.unbind(0)
    hrz, hns = HP[..., : 2 * w].unbind(0), hn.unbind(0)
    for t in range(T):
        if t:
            torch.addmm(b_hh, hb[t], w_hh_t, out=hps[t])
        else:
            hps[0].copy_(b_hh.expand(B, -1))
        torch.sigmoid(prz[t].add_(hrz[t]), out=grz[t])
        torch.tanh(torch.addcmul(pn[t], gr[t], hns[t], out=gn[t]), out=gn[t])
        torch.lerp(gn[t], hb[t], gz[t], out=hb[t + 1])
    return {"U": U, "H": H, "HB": HB, "G": G, "HN": hn}


def _layer_backward(
    net, k: int, st: dict, dH_in: Optional[torch.Tensor], d_last: Optional[torch.Tensor], need_dU: bool, ws: Workspace
) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Backward through layer ``k``: writes its four gradients; returns (dL/dh_t per step, dL/dU or None).

    The gradient reaching each h_t from outside the recursion is ``dH_in``
    (T, batch, width; the layer above) or, for the top layer, only ``d_last`` at
    the last step (the head). Every factor of the step's local derivative that
    does not depend on the recursion is computed for all steps at once before the
    loop, stacked gate by gate, so that each step is one matmul and a few
    elementwise ops whatever the cell."""
    if net.cell == "lstm":
        return _lstm_backward(net, k, st, dH_in, d_last, need_dU, ws)
    cell, w = net.cell, net.width
    w_ih, w_hh, b_ih, b_hh = net.layer_params(k)
    W_hh = w_hh.detach()
    U, H, HB = st["U"], st["H"], st["HB"]
    T, B, _ = H.shape
    dH = ws.get(k, "dH", (T, B, w), H)  # total dL/dh_t
    # dH starts as the gradient from outside the recursion, which the loop adds to (acc);
    # the top layer's is 0 before the last step, so there the loop's first op writes instead.
    acc = dH_in is not None
    dHs = dH.unbind(0)
    if dH_in is not None:
        dH.copy_(dH_in)
    else:
        assert d_last is not None
        dHs[T - 1].copy_(d_last)

    if cell == "rnn":
        deriv = ws.get(k, "deriv", (T, B, w), H)
        if net.nonlinearity == "tanh":
            torch.mul(H, H, out=deriv).neg_().add_(1.0)
        else:
            torch.gt(H, 0, out=deriv)  # as 0.0 / 1.0
        DZ = ws.get(k, "DZ", (T, B, w), H)
        DZs, ds = DZ.unbind(0), deriv.unbind(0)
        for t in range(T - 1, -1, -1):
            dh = dHs[t]
            if t < T - 1:
                dh.addmm_(DZs[t + 1], W_hh) if acc else torch.mm(DZs[t + 1], W_hh, out=dh)
            torch.mul(dh, ds[t], out=DZs[t])
        DX = DH_ = DZ
    else:
        G, HN = st["G"], st["HN"]
        r, z, n = G[..., :w], G[..., w : 2 * w], G[..., 2 * w :]
        # dx_(r,z,n) = dh_t * AX_t; dh-side (r, z, hn) = dh_t * AH_t; dh_(t-1) gets dh_t z_t besides
        # in place into kept buffers, as the LSTM's
        one = H.new_ones(())
        AX = ws.get(k, "AX", (T, B, 3, w), H)
        AH = ws.get(k, "AH", (T, B, 3, w), H)
        tmp = ws.get(k, "tmp", (T, B, w), H)
        a_n = AX[:, :, 2]  # (1 - z)(1 - n^2)
        torch.sub(one, torch.mul(n, n, out=a_n), out=a_n).mul_(torch.sub(one, z, out=tmp))
        torch.mul(tmp, z, out=AX[:, :, 1]).mul_(torch.sub(HB[:-1], n, out=tmp))  # z(1 - z)(h_(t-1) - n)
        torch.sub(one, r, out=AX[:, :, 0]).mul_(r).mul_(HN).mul_(a_n)
        AH[:, :, :2] = AX[:, :, :2]
        torch.mul(a_n, r, out=AH[:, :, 2])
        DX = ws.get(k, "DX", (T, B, 3 * w), H)  # input side: r, z, n pre-activations
        DH_ = ws.get(k, "DH_", (T, B, 3 * w), H)  # hidden side: r, z and hn = W_hn h + b_hn
        DX4s, DH4s, DHs_ = DX.view(T, B, 3, w).unbind(0), DH_.view(T, B, 3, w).unbind(0), DH_.unbind(0)
        zs, AXs, AHs, d3s = z.unbind(0), AX.unbind(0), AH.unbind(0), dH.unsqueeze(2).unbind(0)
        for t in range(T - 1, -1, -1):
            dh = dHs[t]
            if t < T - 1:
                dh.addcmul_(dHs[t + 1], zs[t + 1]) if acc else torch.mul(dHs[t + 1], zs[t + 1], out=dh)
                dh.addmm_(DHs_[t + 1], W_hh)
            torch.mul(d3s[t], AXs[t], out=DX4s[t])
            torch.mul(d3s[t], AHs[t], out=DH4s[t])
    # The weight gradients: one matmul each over every step.
    gw = DX.shape[2]
    DXf, DHf = DX.view(T * B, gw), DH_.view(T * B, gw)
    H_prev_f = HB[1:-1].reshape((T - 1) * B, w)
    U2 = U.reshape(T * B, -1)
    if U2.shape[1] < gw:
        # A narrow input (the tasks' 1-2 channels): MKL's product with 1-2 output columns is
        # ~10x slower than the transposed product's 1-2 rows, so compute dW_ih^T and copy it.
        w_ih.grad.copy_(torch.mm(U2.t(), DXf).t())
    else:
        torch.mm(DXf.t(), U2, out=w_ih.grad)
    torch.mm(DHf[B:].t(), H_prev_f, out=w_hh.grad)  # h_0 = 0: step 1 adds nothing to dW_hh
    torch.sum(DXf, dim=0, out=b_ih.grad)
    torch.sum(DHf, dim=0, out=b_hh.grad)
    dU = (DXf @ w_ih.detach()).view(T, B, -1) if need_dU else None
    return dH, dU


def _lstm_forward(net, k: int, U: torch.Tensor, ws: Workspace) -> dict:
    """The LSTM's layer ``k`` over U (T, batch, n_in), computed transposed: state (width, batch).

    Each step's four gates are then contiguous row blocks of one (4 width, batch)
    matrix: an op on a column block of a (batch, 4 width) matrix (the layout of
    the other cells) costs 2-3x more at these sizes, and the LSTM has seven of
    them a step. The results are returned as (T, batch, width) views."""
    w = net.width
    w_ih, w_hh, b_ih, b_hh = (p.detach() for p in net.layer_params(k))
    T, B, n_in = U.shape
    UT = U.transpose(1, 2)  # (T, n_in, B)
    PT = ws.get(k, "PT", (T, 4 * w, B), U)  # W_ih x_t + b_ih + b_hh
    torch.matmul(w_ih, UT, out=PT)
    PT.add_((b_ih + b_hh)[:, None])
    HT = ws.get(k, "HT", (T + 1, w, B), U)  # h_0 = 0, then h_1..h_T
    CT = ws.get(k, "CT", (T + 1, w, B), U)  # c_0 = 0, then c_1..c_T
    HT[0].zero_()
    CT[0].zero_()
    GT = ws.get(k, "GT", (T, 4 * w, B), U)  # i, f, g, o after their nonlinearities
    TCT = ws.get(k, "TCT", (T, w, B), U)  # tanh(c_t)
    hb, cb, Ps, Gs, TCs = HT.unbind(0), CT.unbind(0), PT.unbind(0), GT.unbind(0), TCT.unbind(0)
    gi, gf, gg, go = (GT[:, j * w : (j + 1) * w].unbind(0) for j in range(4))
    pg = PT[:, 2 * w : 3 * w].unbind(0)
    for t in range(T):
        pre = Ps[t]
        if t:
            pre.addmm_(w_hh, hb[t])
        torch.sigmoid(pre, out=Gs[t])  # the g block's sigmoid is overwritten: one op instead of three
        torch.tanh(pg[t], out=gg[t])
        c = cb[t + 1]
        if t:
            torch.mul(gf[t], cb[t], out=c)
            c.addcmul_(gi[t], gg[t])
        else:
            torch.mul(gi[t], gg[t], out=c)
        torch.mul(go[t], torch.tanh(c, out=TCs[t]), out=hb[t + 1])
    H = HT[1:].transpose(1, 2)
    return {"U": U, "H": H, "HT": HT, "CT": CT, "GT": GT, "TCT": TCT, "gate": GT[:, w : 2 * w].transpose(1, 2)}


def _lstm_backward(
    net, k: int, st: dict, dH_in: Optional[torch.Tensor], d_last: Optional[torch.Tensor], need_dU: bool, ws: Workspace
) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Backward through the LSTM's layer ``k``, transposed as its forward (see _layer_backward)."""
    w = net.width
    w_ih, w_hh, b_ih, b_hh = net.layer_params(k)
    W_hh_t = ws.get(k, "W_hh_t", (w, 4 * w), st["GT"]).copy_(w_hh.detach().t())
    U, HT, CT, GT, TCT = st["U"], st["HT"], st["CT"], st["GT"], st["TCT"]
    T, B, n_in = U.shape
    dHT = ws.get(k, "dHT", (T, w, B), GT)  # total dL/dh_t, transposed
    acc = dH_in is not None
    dHs = dHT.unbind(0)
    if dH_in is not None:
        dHT.copy_(dH_in.transpose(1, 2))
    else:
        assert d_last is not None
        dHs[T - 1].copy_(d_last.t())
    i, f, g, o = (GT[:, j * w : (j + 1) * w] for j in range(4))
    # dz_(i,f,g) = dc_t * A_t, dz_o = dh_t * a_o, dc_t = dc_(t+1) f_(t+1) + dh_t o (1 - tanh^2 c_t),
    # computed in place into kept buffers (a temporary per factor costs more than its arithmetic);
    # 1 - x is a subtraction from 1, exact where x is near 1.
    one = GT.new_ones(())
    A = ws.get(k, "A", (T, 3, w, B), GT)
    torch.sub(one, i, out=A[:, 0]).mul_(i).mul_(g)
    torch.sub(one, f, out=A[:, 1]).mul_(f).mul_(CT[:-1])
    torch.sub(one, torch.mul(g, g, out=A[:, 2]), out=A[:, 2]).mul_(i)
    a_o = torch.sub(one, o, out=ws.get(k, "a_o", (T, w, B), GT)).mul_(o).mul_(TCT)
    dc_from_h = ws.get(k, "dc_from_h", (T, w, B), GT)
    torch.sub(one, torch.mul(TCT, TCT, out=dc_from_h), out=dc_from_h).mul_(o)
    DZT = ws.get(k, "DZT", (T, 4 * w, B), GT)
    DZ4 = DZT.view(T, 4, w, B)
    dc = ws.get(k, "dc", (w, B), GT)
    dc3 = dc.unsqueeze(0)
    DZs, dz3, dzo = DZT.unbind(0), DZ4[:, :3].unbind(0), DZ4[:, 3].unbind(0)
    fs, As, aos, dcfh = f.unbind(0), A.unbind(0), a_o.unbind(0), dc_from_h.unbind(0)
    for t in range(T - 1, -1, -1):
        dh = dHs[t]
        if t < T - 1:
            dh.addmm_(W_hh_t, DZs[t + 1]) if acc else torch.mm(W_hh_t, DZs[t + 1], out=dh)
            torch.mul(dc, fs[t + 1], out=dc)
            dc.addcmul_(dh, dcfh[t])
        else:
            torch.mul(dh, dcfh[t], out=dc)
        torch.mul(dc3, As[t], out=dz3[t])
        torch.mul(dh, aos[t], out=dzo[t])
    # The weight gradients, one matmul each over every step, on (t, b)-ordered rows
    DZf = ws.get(k, "DZf", (T, B, 4 * w), GT)
    DZf.copy_(DZT.transpose(1, 2))
    DZf2 = DZf.view(T * B, 4 * w)
    Hp = ws.get(k, "Hp", (T - 1, B, w), GT) if T > 1 else None
    U2 = U.reshape(T * B, n_in)
    if n_in < 4 * w:
        # MKL's product with 1-2 output columns is ~10x slower than the transposed one's 1-2 rows
        w_ih.grad.copy_(torch.mm(U2.t(), DZf2).t())
    else:
        torch.mm(DZf2.t(), U2, out=w_ih.grad)
    if Hp is not None:
        Hp.copy_(HT[1:-1].transpose(1, 2))
        torch.mm(DZf2[B:].t(), Hp.view((T - 1) * B, w), out=w_hh.grad)  # h_0 = 0: step 1 adds nothing
    else:
        w_hh.grad.zero_()
    torch.sum(DZf2, dim=0, out=b_ih.grad)
    b_hh.grad.copy_(b_ih.grad)
    dU = (DZf2 @ w_ih.detach()).view(T, B, -1) if need_dU else None
    return dHT.transpose(1, 2), dU


@torch.no_grad()
def run(net, x: torch.Tensor, y: torch.Tensor, regression: bool, ws: Optional[Workspace] = None) -> Pass:
    """Forward and backward for a batch ``x`` (batch, T, channels): every parameter's
    ``.grad`` (views of the trainer's arenas) is overwritten, nothing accumulated.

    With a workspace ``ws`` the pass reuses its buffers, and the Pass's tensors
    are views into it (valid until the next run with it); without, all are new."""
    ws = _Fresh() if ws is None else ws
    U = x.transpose(0, 1)  # time-major: each step's rows are contiguous
    states = []
    for k in range(net.depth):
        st = _layer_forward(net, k, U.contiguous(), ws)
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
    dH_in: Optional[torch.Tensor] = None
    d_last: Optional[torch.Tensor] = dout @ w_head.detach()
    dH_top: Optional[torch.Tensor] = None
    for k in range(net.depth - 1, -1, -1):
        dH, dU = _layer_backward(net, k, states[k], dH_in, d_last, need_dU=k > 0, ws=ws)
        if dH_top is None:
            dH_top = dH
        dH_in, d_last = dU, None
    assert dH_top is not None
    top = states[-1]
    w = net.width
    gate = None if net.cell == "rnn" else top["gate"] if "gate" in top else top["G"][..., w : 2 * w]
    return Pass(out, loss, H, dH_top, gate)
