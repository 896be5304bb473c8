"""Flat parameter arena: one buffer per kind of parameter, and a matching grad buffer.

Why: on the CPU every per-tensor operation is one kernel launch with a few
microseconds of dispatch, and a depth-50 net has ~100 parameter tensors. With
each parameter a *view* into one flat buffer, and its ``.grad`` a view into a
matching flat gradient buffer (autograd accumulates into an existing ``.grad``
in place), every per-layer norm becomes one reshaped reduction over the buffer
(equal-sized hidden layers are one ``[depth - 1, width * width]`` matrix), an
update norm is one subtraction, zeroing the gradients is one ``zero_()`` and the
optimizer update runs over a few large tensors (ZeRO/FSDP keep flat parameter
buffers for the same reason).

An arena is built over a fixed list of parameters; anything that adds or
removes parameters (batch norm on/off, layer norm on/off) builds a new arena
for that kind (see ``Trainer._restructure``). Re-initialisation writes into the
views in place and keeps the arena.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class Arena:
    """``params`` re-pointed into one flat ``data`` buffer, their grads into ``grad``.

    The parameters keep their identity (the same ``nn.Parameter`` objects, so
    modules and optimizer state keyed by them still work); only their storage
    moves. ``runs`` groups consecutive parameters of equal size, so any buffer
    laid out like ``data`` reduces per parameter in one op per run.
    """

    def __init__(self, params: Sequence[nn.Parameter]) -> None:
        self.params: list[nn.Parameter] = list(params)
        if not self.params:
            raise ValueError("an arena needs at least one parameter")
        dtypes = {p.dtype for p in self.params}
        if len(dtypes) != 1:
            raise ValueError(f"an arena holds one dtype, got {sorted(map(str, dtypes))}")
        sizes = [p.numel() for p in self.params]
        self.numel = sum(sizes)
        self.offsets: list[int] = []
        off = 0
        for n in sizes:
            self.offsets.append(off)
            off += n
        dtype = self.params[0].dtype
        self.data = torch.empty(self.numel, dtype=dtype)
        self.grad = torch.zeros(self.numel, dtype=dtype)
        self.grad_views: list[torch.Tensor] = []
        with torch.no_grad():
            for p, o, n in zip(self.params, self.offsets, sizes):
                view = self.data[o : o + n].view(p.shape)
                view.copy_(p.detach())
                p.data = view  # same Parameter object, storage now in the arena
                g = self.grad[o : o + n].view(p.shape)
                p.grad = g
                self.grad_views.append(g)
        # (start, count, size) of each run of consecutive equal-sized parameters.
        self.runs: list[tuple[int, int, int]] = []
        i = 0
        while i < len(sizes):
            j = i
            while j + 1 < len(sizes) and sizes[j + 1] == sizes[i]:
                j += 1
            self.runs.append((self.offsets[i], j - i + 1, sizes[i]))
            i = j + 1
        self._param_ids = {id(p): k for k, p in enumerate(self.params)}

    def __len__(self) -> int:
        return len(self.params)

    def index(self, p: torch.Tensor) -> int:
        """Position of parameter ``p`` in this arena (KeyError if it is not here)."""
        return self._param_ids[id(p)]

    def __contains__(self, p: object) -> bool:
        return id(p) in self._param_ids

    def slice_of(self, p: torch.Tensor) -> slice:
        k = self.index(p)
        return slice(self.offsets[k], self.offsets[k] + self.params[k].numel())

    def norms(self, flat: torch.Tensor, ord: float = 2.0) -> torch.Tensor:
        """Per-parameter norms of a buffer laid out like ``data`` (one reduction per run)."""
        parts = [torch.linalg.vector_norm(flat[s : s + k * n].view(k, n), ord=ord, dim=1) for s, k, n in self.runs]
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def zero_grad(self) -> None:
        """Zero the flat gradient, first re-attaching any ``.grad`` someone replaced.

        ``nn.Module.zero_grad()`` (set_to_none) or an assignment would detach a
        parameter's grad from the buffer, and the next backward would then put
        its gradient where the norms and the optimizer do not look.
        """
        self.attach_grads()
        self.grad.zero_()

    def attach_grads(self) -> None:
        """Point every ``.grad`` back at its view of ``grad`` (for code that reads
        ``p.grad`` after a pass that wrote the flat buffer directly)."""
        for p, g in zip(self.params, self.grad_views):
            if p.grad is not g:
                p.grad = g

    def owns_storage(self) -> bool:
        """Whether every parameter still lives in ``data`` (a cheap sanity check for tests)."""
        base = self.data.data_ptr()
        item = self.data.element_size()
        return all(p.data_ptr() == base + o * item for p, o in zip(self.params, self.offsets))
