"""SGD, momentum SGD and Adam over flat parameter arenas.

Why not ``torch.optim``: its update walks every parameter tensor (on the CPU
a ``_foreach`` op is a loop of per-tensor kernels), and the first optimizer
constructed imports ``torch._dynamo``, about 2.4 s of start-up here
(docs/architecture.md#pitfalls-measured-here). These rules run the same elementwise arithmetic in the
same order as ``torch.optim.SGD``/``Adam`` with ``foreach=True`` and default
hyper-parameters, once per arena instead of once per tensor, so the weights
they produce are bit-for-bit those of torch.optim
(tests/engine/test_arena.py checks that on the same weights).

State lives per arena (a flat buffer laid out like the arena's data), which
matches torch's per-parameter state exactly as long as the parameters of one
arena are always created and reset together: a kind of parameter (all Linear
weights, all biases, all batch-norm affines, ...) is.
"""
from __future__ import annotations

from typing import Iterable, Optional

import torch

from ..arena import Arena

OPTIMIZER_NAMES = ("sgd", "momentum", "adam")


class FlatOptimizer:
    """Base: ``step()`` updates every arena's data from its grad; state per arena key."""

    name = ""

    def __init__(self, arenas: dict[str, Arena], lr: float) -> None:
        self.arenas: dict[str, Arena] = dict(arenas)
        self.lr = float(lr)
        self.state: dict[str, dict[str, object]] = {}

    # --------------------------------------------------------------- state
    def reset(self, keys: Iterable[str]) -> None:
        """Forget the state of these arenas (their parameters were re-drawn)."""
        for k in keys:
            self.state.pop(k, None)

    def rebind(self, arenas: dict[str, Arena]) -> None:
        """Use ``arenas`` from now on; state follows the parameters that survive.

        An arena object that is unchanged keeps its state as is. A new arena
        for a key gets the state slices of the parameters it shares with the
        old one (their moments are still meaningful); others start fresh. A key
        that disappeared drops its state.
        """
        old_arenas, old_state = self.arenas, self.state
        self.arenas = dict(arenas)
        self.state = {}
        for key, arena in self.arenas.items():
            old = old_arenas.get(key)
            st = old_state.get(key)
            if old is None or st is None:
                continue
            if old is arena:
                self.state[key] = st
                continue
            survivors = [p for p in arena.params if p in old]
            if not survivors:
                continue
            new_st: dict[str, object] = {}
            for name, buf in st.items():
                if isinstance(buf, torch.Tensor) and buf.shape == (old.numel,):
                    fresh = torch.zeros_like(arena.data)
                    for p in survivors:
                        fresh[arena.slice_of(p)] = buf[old.slice_of(p)]
                    new_st[name] = fresh
                else:
                    new_st[name] = buf
            self.state[key] = new_st

    def has_state(self, p: torch.Tensor) -> bool:
        """Whether parameter ``p`` has optimizer state (torch: ``p in optimizer.state``)."""
        return any(p in a and k in self.state for k, a in self.arenas.items())

    def state_of(self, p: torch.Tensor) -> dict[str, object]:
        """The state of parameter ``p`` as views shaped like it (empty: no state yet)."""
        for k, a in self.arenas.items():
            if p in a and k in self.state:
                sl = a.slice_of(p)
                return {
                    name: (buf[sl].view(p.shape) if isinstance(buf, torch.Tensor) and buf.shape == (a.numel,) else buf)
                    for name, buf in self.state[k].items()
                }
        return {}

    def params(self) -> list[torch.Tensor]:
        return [p for a in self.arenas.values() for p in a.params]

    # ---------------------------------------------------------------- step
    @torch.no_grad()
    def step(self) -> None:
        for key, arena in self.arenas.items():
            self._update(key, arena)

    def _update(self, key: str, arena: Arena) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class SGD(FlatOptimizer):
    """``torch.optim.SGD(lr=lr)``: W -= lr * g."""

    name = "sgd"

    def _update(self, key: str, arena: Arena) -> None:
        arena.data.add_(arena.grad, alpha=-self.lr)


class MomentumSGD(FlatOptimizer):
    """``torch.optim.SGD(lr=lr, momentum=m)`` (dampening 0, no Nesterov):
    buf = g on the first step, then buf = m * buf + g; W -= lr * buf."""

    name = "momentum"

    def __init__(self, arenas: dict[str, Arena], lr: float, momentum: float = 0.9) -> None:
        super().__init__(arenas, lr)
        self.momentum = float(momentum)

    def _update(self, key: str, arena: Arena) -> None:
        st = self.state.get(key)
        if st is None:
            buf = arena.grad.clone()
            self.state[key] = {"momentum_buffer": buf}
        else:
            buf = st["momentum_buffer"]  # type: ignore[assignment]
            buf.mul_(self.momentum)
            buf.add_(arena.grad, alpha=1.0)
        arena.data.add_(buf, alpha=-self.lr)

    def buffer(self, key: str) -> Optional[torch.Tensor]:
        st = self.state.get(key)
        return None if st is None else st["momentum_buffer"]  # type: ignore[return-value]


class Adam(FlatOptimizer):
    """``torch.optim.Adam(lr=lr)`` with betas (0.9, 0.999), eps 1e-8, no weight decay,
    in the operation order of its foreach implementation."""

    name = "adam"

    def __init__(self, arenas: dict[str, Arena], lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        super().__init__(arenas, lr)
        self.beta1, self.beta2 = float(betas[0]), float(betas[1])
        self.eps = float(eps)
        self._denom: dict[str, torch.Tensor] = {}

    def _update(self, key: str, arena: Arena) -> None:
        st = self.state.get(key)
        if st is None:
            st = {"step": 0.0, "exp_avg": torch.zeros_like(arena.data), "exp_avg_sq": torch.zeros_like(arena.data)}
            self.state[key] = st
        exp_avg: torch.Tensor = st["exp_avg"]  # type: ignore[assignment]
        exp_avg_sq: torch.Tensor = st["exp_avg_sq"]  # type: ignore[assignment]
        st["step"] = step = float(st["step"]) + 1.0  # type: ignore[arg-type]
        beta1, beta2 = self.beta1, self.beta2
        grad = arena.grad
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2)
        exp_avg_sq.addcmul_(grad, grad, value=1 - beta2)
        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        step_size = (self.lr / bias_correction1) * -1
        denom = self._denom.get(key)
        if denom is None or denom.shape != exp_avg_sq.shape:
            denom = self._denom[key] = torch.empty_like(exp_avg_sq)
        torch.sqrt(exp_avg_sq, out=denom)
        denom.div_(bias_correction2**0.5)
        denom.add_(self.eps)
        arena.data.addcdiv_(exp_avg, denom, value=step_size)


def build_optimizer(name: str, arenas: dict[str, Arena], lr: float, momentum: float = 0.9) -> FlatOptimizer:
    if name == "sgd":
        return SGD(arenas, lr)
    if name == "momentum":
        return MomentumSGD(arenas, lr, momentum)
    if name == "adam":
        return Adam(arenas, lr)
    raise ValueError(f"optimizer = {name!r} is not known; allowed: {', '.join(OPTIMIZER_NAMES)}")
