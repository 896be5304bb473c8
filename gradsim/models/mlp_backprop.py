"""Hand-written forward and backward pass for the plain (and residual) MLP.

Why: with autograd, GradSim pays for things a plain training loop does not: a
Python hook per layer to catch dL/dz (the backprop signal the app is about),
an AccumulateGrad ``+=`` kernel per parameter into the flat arena gradients,
and the graph's bookkeeping. Here the stack runs under ``torch.no_grad``:

* forward: ``addmm`` (what ``F.linear`` runs) and the activation, written into
  preallocated buffers (one ``[depth, batch, width]`` block each for z and h,
  so the activation statistics need no ``torch.stack``);
* backward: the cross-entropy head through aten's own ``nll_loss_backward`` and
  ``_log_softmax_backward_data``, then per layer ``dW = dz^T h`` straight into
  the weight arena's flat gradient (``torch.mm(..., out=view)``), ``db =
  sum_batch dz`` into the bias arena's, ``dh = dz W`` and the activation's aten
  backward kernel (``tanh_backward``, ``threshold_backward``, ...). dL/dz of
  every layer is an explicit intermediate, so catching it costs nothing.

These are the kernels, arguments and operation order autograd uses for
``F.linear`` / the activations / ``F.cross_entropy`` (AddmmBackward0's
``mm_mat1_backward``/``mm_mat2_backward``, the bias's ``sum_to``), so every
gradient equals autograd's bit for bit (tests/engine/test_backprop.py checks
each activation, residual, clipping and the optimizers against the autograd
path). Sums of two gradients at a residual fork are a single float addition,
which is commutative, so the engine's accumulation order does not matter.

What it does not cover (batch norm, layer norm, anything ``supports`` refuses)
stays on the autograd path in the Trainer; a toggle switches between the two
at the next step.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

from ..activations import NAMES
from ..arena import Arena

aten = torch.ops.aten

# torch.selu is at::elu with these constants (ATen's SELU_ALPHA, SELU_SCALE);
# its autograd node is EluBackward0 with them.
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946

_MEAN = 1  # at::Reduction::Mean
_IGNORE = -100  # F.cross_entropy's default ignore_index


def _forward_fn(name: str, slope: float) -> Callable[[torch.Tensor, torch.Tensor], object]:
    """act(z) written into ``out``: the same aten kernel network.activation_fn runs."""
    if name == "tanh":
        return lambda z, out: torch.tanh(z, out=out)
    if name == "sigmoid":
        return lambda z, out: torch.sigmoid(z, out=out)
    if name == "relu":  # at::relu is clamp_min(self, 0) on the CPU
        return lambda z, out: torch.clamp_min(z, 0, out=out)
    if name == "leaky_relu":
        return lambda z, out: torch._C._nn.leaky_relu(z, slope, out=out)
    if name == "elu":
        return lambda z, out: torch._C._nn.elu(z, 1.0, 1, 1, out=out)  # type: ignore[call-arg]  # the stub lacks out=; the kernel takes it
    if name == "selu":  # torch.selu = at::elu(self, SELU_ALPHA, SELU_SCALE)
        return lambda z, out: torch._C._nn.elu(z, _SELU_ALPHA, _SELU_SCALE, 1, out=out)  # type: ignore[call-arg]  # as above
    if name == "gelu":
        return lambda z, out: torch._C._nn.gelu(z, out=out)  # type: ignore[call-arg]  # as above
    if name == "linear":
        return lambda z, out: out.copy_(z)
    raise ValueError(f"activation = {name!r} has no hand-written pass")


def _backward_fn(name: str, slope: float) -> Optional[Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], object]]:
    """dL/dz from dL/dh into ``out`` (args: grad, z, h, out), as the activation's
    autograd node computes it; None for the identity (dL/dz = dL/dh)."""
    if name == "tanh":
        f = aten.tanh_backward.grad_input
        return lambda g, z, h, out: f(g, h, grad_input=out)
    if name == "sigmoid":
        f = aten.sigmoid_backward.grad_input
        return lambda g, z, h, out: f(g, h, grad_input=out)
    if name == "relu":
        f = aten.threshold_backward.grad_input
        return lambda g, z, h, out: f(g, h, 0, grad_input=out)
    if name == "leaky_relu":
        f = aten.leaky_relu_backward.grad_input
        return lambda g, z, h, out: f(g, z, slope, False, grad_input=out)
    if name == "elu":
        f = aten.elu_backward.grad_input
        return lambda g, z, h, out: f(g, 1.0, 1, 1, False, z, grad_input=out)
    if name == "selu":
        f = aten.elu_backward.grad_input
        return lambda g, z, h, out: f(g, _SELU_ALPHA, _SELU_SCALE, 1, False, z, grad_input=out)
    if name == "gelu":
        f = aten.gelu_backward.grad_input
        return lambda g, z, h, out: f(g, z, grad_input=out)
    if name == "linear":
        return None
    raise ValueError(f"activation = {name!r} has no hand-written pass")


_ALIGN_BYTES = 64  # what torch's CPU allocator aligns every fresh tensor to


def _aligned(t: torch.Tensor) -> bool:
    return t.data_ptr() % _ALIGN_BYTES == 0


def _layer_block(depth: int, batch: int, width: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """A ``[depth, batch, width]`` block whose every layer starts on a 64-byte boundary.

    Why: MKL's gemm picks its kernel by the operands' alignment, and its result
    can differ in the last bit between an aligned and an unaligned copy of the
    same matrix (measured: a 130 x 5 input shifted by 4 bytes). Autograd's
    operands are fresh tensors, always aligned; so every matrix the
    hand-written pass feeds to mm/addmm/bmm must be too. Returns (the block as
    ``[depth, batch * width]`` rows, the same memory as ``[depth, batch, width]``).
    """
    m = batch * width
    per = _ALIGN_BYTES // torch.empty((), dtype=dtype).element_size()
    stride = -(-m // per) * per
    rows = torch.empty((depth, stride), dtype=dtype)[:, :m]
    return rows, rows.view(depth, batch, width)


#: Activations with a fused kernel pair above: every one in the registry
#: (tests/engine/test_activations.py checks each pair against autograd).
KNOWN = NAMES


def supports(net) -> bool:
    """Whether ``net``'s current structure has a hand-written pass (else: autograd).

    Batch norm and layer norm couple samples or units through statistics whose
    backward would have to be re-derived and re-verified: those stay on autograd.
    """
    return not net.has_batchnorm and not net.has_layernorm and all(a in KNOWN for a in net.activations)


class DirectPass:
    """Forward + backward of a GradNet into the weight and bias arenas' flat grads.

    Built for one pair of arenas, batch size and dtype (``matches`` says whether
    it still fits); the activation per layer and the residual switch are read
    from the network on every call, so those toggles apply at the next step.
    """

    def __init__(self, net, weights: Arena, biases: Arena, batch: int) -> None:
        self.weight_arena, self.bias_arena = weights, biases
        self.batch = batch
        self.depth = depth = net.depth
        width = net.width
        dtype = weights.data.dtype
        self.dtype = dtype
        n_out = weights.params[-1].shape[0]
        # Parameter storage and gradient slots as plain (non-autograd) views of the arenas.
        self.w = [weights.data[o : o + p.numel()].view(p.shape) for p, o in zip(weights.params, weights.offsets)]
        self.wt = [w.t() for w in self.w]
        self.b = [biases.data[o : o + p.numel()].view(p.shape) for p, o in zip(biases.params, biases.offsets)]
        self.gw = list(weights.grad_views)
        self.gb = list(biases.grad_views)
        # Two blocks for the hidden layers: z (Linear outputs), which the backward pass
        # overwrites with dL/dz layer by layer (z_l is last read to compute dL/dz_l:
        # no more activation memory than autograd keeps), and h (activation
        # outputs). G_rows: dL/dz as [depth, batch * width] rows (one reduction for
        # all norms). The output layer's logits and dL/dz are apart (their own width).
        self.G_rows, self.Z = _layer_block(depth, batch, width, dtype)
        self.G = self.Z
        _, self.H = _layer_block(depth, batch, width, dtype)
        self.logits = torch.empty((batch, n_out), dtype=dtype)
        self.z = list(self.Z.unbind(0))  # each 64-byte aligned
        self.h = list(self.H.unbind(0))
        self.g = self.z  # the same memory: z until the backward pass reaches the layer, then dL/dz
        self._u = torch.empty((batch, width), dtype=dtype)  # residual branch / dL/dh scratch
        self._d = torch.empty((batch, width), dtype=dtype)  # activation backward scratch (residual)
        # Layers 2..depth (0-based 1..depth-1) are width x width: their weight and
        # bias gradients are contiguous runs of the arenas, filled by one bmm and
        # one sum after the backward loop instead of two calls per layer in it.
        k = depth - 1
        wo, bo = weights.offsets, biases.offsets
        self.gw_hidden = weights.grad[wo[1] : wo[1] + k * width * width].view(k, width, width) if k else None
        self.gb_hidden = biases.grad[bo[1] : bo[1] + k * width].view(k, width) if k else None
        self._gu: Optional[torch.Tensor] = None  # residual: alpha * dL/dz of layers 2..depth
        # Gradient slots that are not 64-byte aligned in the arena (odd widths) get
        # their gemm written into an aligned scratch and copied (see _layer_block).
        self._gw_scratch = {l: torch.empty(self.gw[l].shape, dtype=dtype) for l in (0, depth) if not _aligned(self.gw[l])}
        self._gw_hidden_scratch = None
        if self.gw_hidden is not None and not (_aligned(self.gw_hidden) and (width * width * self.gw_hidden.element_size()) % _ALIGN_BYTES == 0):
            self._gw_hidden_scratch = _layer_block(k, width, width, dtype)[1]
        self._one = torch.ones((), dtype=dtype)  # loss.backward()'s seed gradient
        self._fns: dict[tuple[str, float], tuple] = {}
        self._acts: list[str] = []
        self._slope = float("nan")
        self._pairs: list[tuple] = []

    def matches(self, weights: Arena, biases: Arena, batch: int, dtype: torch.dtype) -> bool:
        return weights is self.weight_arena and biases is self.bias_arena and batch == self.batch and dtype == self.dtype

    def _pair(self, name: str, slope: float) -> tuple:
        key = (name, slope)
        fns = self._fns.get(key)
        if fns is None:
            fns = self._fns[key] = (_forward_fn(name, slope), _backward_fn(name, slope))
        return fns

    @torch.no_grad()
    def run(self, net, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward and backward on batch (x, y); returns (logits, loss).

        Afterwards every weight and bias gradient in the arenas holds dL/dparam
        of this batch (overwritten, not accumulated), ``self.g`` / ``self.G``
        hold dL/dz of the hidden layers (in z's memory: z itself is gone) and
        ``self.g_out`` that of the output layer, and ``self.h`` the hidden
        activations.
        """
        depth = self.depth
        w, wt, b, gb = self.w, self.wt, self.b, self.gb
        Z, H, G = self.z, self.h, self.g
        slope = net.leaky_slope
        acts = net.activations
        if acts != self._acts or slope != self._slope:  # a toggle since the last step (a C-level list compare)
            self._pairs = [self._pair(a, slope) for a in acts]
            self._acts, self._slope = list(acts), slope
        pairs = self._pairs
        residual = net.residual
        alpha = net.residual_alpha
        addmm, mm, add = torch.addmm, torch.mm, torch.add

        # ---- forward: z_1 = x W_1^T + b_1; per block h = act(z), then the next Linear
        addmm(b[0], x, wt[0], out=Z[0])
        u = self._u
        for i in range(depth):
            pairs[i][0](Z[i], H[i])
            if i + 1 < depth:
                if residual:  # z_(i+2) = z_(i+1) + alpha * Linear(h), as ``z + alpha * u``
                    addmm(b[i + 1], H[i], wt[i + 1], out=u)
                    u.mul_(alpha)
                    add(Z[i], u, out=Z[i + 1])
                else:
                    addmm(b[i + 1], H[i], wt[i + 1], out=Z[i + 1])
        logits = addmm(b[depth], H[depth - 1], wt[depth], out=self.logits)

        # ---- the head: F.cross_entropy = nll_loss(log_softmax(logits)), and its backward
        ls = torch.log_softmax(logits, 1)
        loss, total_weight = aten.nll_loss_forward(ls, y, None, _MEAN, _IGNORE)
        dls = aten.nll_loss_backward(self._one, ls, y, None, _MEAN, _IGNORE, total_weight)
        g = self.g_out = aten._log_softmax_backward_data(dls, ls, 1, ls.dtype)

        # ---- backward. The output layer's dW and db first (its own shape) ...
        self._dw(depth, g, H[depth - 1])
        torch.sum(g, 0, out=gb[depth])
        # ... then dL/dz down the stack: dh = dz W (AddmmBackward0's mat1 grad), the
        # activation's backward, and at a residual fork the skip's dz added.
        dh, d = self._u, self._d
        gu_all = None
        if residual and depth > 1:
            gu_all = self._gu
            if gu_all is None:
                gu_all = self._gu = _layer_block(depth - 1, self.batch, G[0].shape[1], self.dtype)[1]
        for l in range(depth, 0, -1):  # l: 0-based index of the Linear (layer l + 1)
            back = pairs[l - 1][1]
            below = G[l - 1]
            if gu_all is not None and l < depth:  # z_l = z_(l-1) + alpha * u_l
                gu = torch.mul(g, alpha, out=gu_all[l - 1])  # MulBackward0 of ``alpha * u``
                mm(gu, w[l], out=dh)
                if back is None:
                    add(g, dh, out=below)
                else:
                    back(dh, Z[l - 1], H[l - 1], d)
                    add(g, d, out=below)
            elif back is None:
                mm(g, w[l], out=below)
            else:
                mm(g, w[l], out=dh)
                back(dh, Z[l - 1], H[l - 1], below)
            g = below
        if depth > 1:
            # dW_l = dz_l^T h_(l-1) (mm_mat2_backward) for layers 2..depth in one bmm (the
            # same gemm per matrix: equal to the per-layer mm bit for bit), db_l = sum_batch dz_l
            src = gu_all if gu_all is not None else self.G[1:]
            scratch = self._gw_hidden_scratch
            torch.bmm(src.transpose(1, 2), self.H[: depth - 1], out=self.gw_hidden if scratch is None else scratch)
            if scratch is not None and self.gw_hidden is not None:
                self.gw_hidden.copy_(scratch)
            torch.sum(src, 1, out=self.gb_hidden)
        self._dw(0, g, x)
        torch.sum(g, 0, out=gb[0])
        return logits, loss

    def _dw(self, l: int, g: torch.Tensor, h: torch.Tensor) -> None:
        """dW of Linear ``l`` = g^T h into the arena (through an aligned scratch if its slot is not)."""
        scratch = self._gw_scratch.get(l)
        if scratch is None:
            torch.mm(g.t(), h, out=self.gw[l])
        else:
            torch.mm(g.t(), h, out=scratch)
            self.gw[l].copy_(scratch)
