"""Trainer: one instrumented optimizer step at a time, commands between steps.

``step()`` runs forward, one backward pass that keeps both dL/dW and dL/dz
(z = each Linear's output, via ``a hook per layer), clipping, divergence detection and the
update, and returns a StepRecord. ``apply(command)`` changes the run between
steps and records the event in the session. Nothing here raises on inf/nan:
a non-finite loss or gradient ends the run cleanly with a ``diverged`` event.
"""
from __future__ import annotations

import math
import time
from collections import defaultdict
from typing import Callable, Iterable, Optional

import numpy as np
import torch
import torch.nn.functional as F

from . import probes
from .commands import Command, CommandError, Scheduled
from .config import RunConfig
from .datasets import Dataset, make_dataset
from .metrics import LAYER_INDEX, LAYER_METRICS, NORM_METRICS, STATS_METRICS, STEP_METRICS
from .network import GradNet, build_optimizer
from .session import Session, StepRecord
from .theory import predict

# Column layout of a StepRecord's ``layers`` as step() fills it: the norms, then the
# sampled activation statistics, then the prediction. Checked at import time with
# an exception (not an assert, which ``python -O`` strips) against every name.
_NORM_ORDER = ("grad_norm", "bias_grad_norm", "weight_norm", "update_norm", "update_ratio", "act_grad_norm")
_STATS_ORDER = ("act_mean", "act_std", "act_saturation", "act_dead")
_N_NORM = len(_NORM_ORDER)
_STATS_SLICE = slice(_N_NORM, _N_NORM + len(_STATS_ORDER))
_PRED_COL = LAYER_INDEX["pred_gain"]


def _check_layout() -> None:
    """Raise if metrics.py's columns no longer match the order step() writes them in."""
    expected = _NORM_ORDER + _STATS_ORDER + ("pred_gain",)
    if tuple(LAYER_METRICS) != expected or NORM_METRICS != _NORM_ORDER or STATS_METRICS != _STATS_ORDER:
        raise RuntimeError(f"gradsim.metrics.LAYER_METRICS = {LAYER_METRICS}, but Trainer.step() writes {expected}")
    if len(STEP_METRICS) != 8:
        raise RuntimeError(f"gradsim.metrics.STEP_METRICS has {len(STEP_METRICS)} names, but Trainer.step() writes 8")


_check_layout()


class Trainer:
    """Owns the network, optimizer, data and session of one run."""

    def __init__(self, config: RunConfig, schedule: Iterable[Scheduled] = (), session: Optional[Session] = None, label: str = "") -> None:
        config.validate()
        self.config = config
        self.data: Dataset = make_dataset(config.dataset, config.n_samples, config.noise, config.seed, config.test_fraction)
        self.init_gen = torch.Generator().manual_seed(config.seed)
        self.batch_gen = torch.Generator().manual_seed(config.seed + 1)
        self.net = GradNet(self.data.n_inputs, self.data.n_classes, config.depth, config.width, config.activation, config.batchnorm, config.leaky_slope)
        self.net.reinit(config.init, self.init_gen, config.init_std, config.init_scale)
        self.net.train()
        self.lr = float(config.lr)
        self.optimizer_name = config.optimizer
        self.clip_mode = config.clip_mode
        self.clip_threshold = float(config.clip_threshold)
        self._refresh_params()
        self.optimizer = build_optimizer(self.optimizer_name, self._params, self.lr, config.momentum)
        # Preallocated: the update norm is ||W_before - W_after|| without new tensors per step.
        self._before = [torch.empty_like(w) for w in self._weights]
        # dL/dz arrives through one hook per layer, created once: cheaper than
        # retain_grad (which clones every z.grad) or autograd.grad(..., zs).
        self._gz: list[Optional[torch.Tensor]] = [None] * self.net.n_layers
        self._z_hooks = [self._make_z_hook(i) for i in range(self.net.n_layers)]
        self._x = torch.from_numpy(self.data.x_train)
        self._y = torch.from_numpy(self.data.y_train)
        self._perm = torch.randperm(len(self._y), generator=self.batch_gen)
        self._pos = 0
        self.session = session if session is not None else Session(config.n_layers, config.to_dict(), config.max_memory_mb)
        self.step_index = 0
        self._pred_due = True  # the prediction is recorded at step 0 and after every event
        self.diverged_at: Optional[int] = None
        self.elapsed_s = 0.0
        self._schedule: dict[int, list[Command]] = defaultdict(list)
        for item in schedule:
            self.schedule(item)
        self.session.add_event(0, "start", label or "config")

    # ------------------------------------------------------------ state
    @property
    def finished(self) -> bool:
        return self.diverged_at is not None or self.step_index >= self.config.steps

    @property
    def n_layers(self) -> int:
        return self.net.n_layers

    def _refresh_params(self) -> None:
        self._weights = self.net.weights()
        self._biases = self.net.biases()
        self._norm_params = self.net.norm_params()
        self._params = self._weights + self._biases + self._norm_params

    # ------------------------------------------------------------ commands
    def schedule(self, item: Scheduled) -> None:
        """Queue a command for just before step ``item.step`` (a past step: the next one).

        Raises CommandError now if the command could never apply to this run.
        """
        item.command.check(self)
        self._schedule[max(item.step, self.step_index)].append(item.command)

    def apply(self, command: Command) -> None:
        """Apply a command now (between steps) and record it as an event at this step.

        Raises CommandError, with the run unchanged, when the command cannot apply.
        """
        try:
            command.apply_to(self)
        except CommandError:
            raise
        except ValueError as exc:
            raise CommandError(f"{command.text()}: {exc}") from None
        self.session.add_event(self.step_index, command.key, command.value())
        self._pred_due = True

    def reinit(self, scheme: str, scale: Optional[float] = None) -> None:
        std = scale if (scale is not None and scheme == "normal") else self.config.init_std
        bound = scale if (scale is not None and scheme == "uniform") else self.config.init_scale
        self.net.reinit(scheme, self.init_gen, std, bound)
        for p in self._weights + self._biases:  # fresh weights: their old moments mean nothing
            self.optimizer.state.pop(p, None)

    def set_batchnorm(self, on: bool) -> None:
        if on and self.config.batch_size < 2:
            raise CommandError("batchnorm=on: batch norm needs batch_size >= 2 (it is 1)")
        if on == self.net.has_batchnorm:
            return
        self.net.set_batchnorm(on)
        self.net.train()
        self._refresh_params()
        self._rebuild_optimizer(keep_state=True)

    def set_lr(self, lr: float) -> None:
        self.lr = float(lr)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr

    def set_optimizer(self, name: str) -> None:
        self.optimizer_name = name
        self._rebuild_optimizer(keep_state=False)

    def _rebuild_optimizer(self, keep_state: bool) -> None:
        """New optimizer over the current parameters; survivors keep their state (Adam moments)."""
        old = self.optimizer
        self.optimizer = build_optimizer(self.optimizer_name, self._params, self.lr, self.config.momentum)
        if keep_state:
            for p in self._params:
                if p in old.state:
                    self.optimizer.state[p] = old.state[p]

    # ------------------------------------------------------------ stepping
    def _make_z_hook(self, i: int) -> Callable[[torch.Tensor], None]:
        def hook(grad: torch.Tensor) -> None:
            self._gz[i] = grad

        return hook

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        b = self.config.batch_size
        if self._pos + b > len(self._perm):
            self._perm = torch.randperm(len(self._y), generator=self.batch_gen)
            self._pos = 0
        idx = self._perm[self._pos : self._pos + b]
        self._pos += b
        return self._x[idx], self._y[idx]

    def step(self) -> Optional[StepRecord]:
        """Run one optimizer step (after the commands scheduled for it); None when finished."""
        if self.finished:
            return None
        s = self.step_index
        for cmd in self._schedule.pop(s, ()):
            self.apply(cmd)
        t0 = time.perf_counter()
        want_stats = s % self.config.stats_every == 0
        x, y = self._batch()
        pred = self.predicted_gain(x) if (want_stats or self._pred_due) else None
        self._pred_due = False
        logits, zs, hs = self.net.forward_capture(x)
        loss = F.cross_entropy(logits, y)
        n_w, n_b = len(self._weights), len(self._biases)
        for z, hook in zip(zs, self._z_hooks):
            z.register_hook(hook)
        del zs
        loss.backward()
        g_params = [p.grad for p in self._params]
        g_z = self._gz

        with torch.no_grad():
            # One foreach dispatch for every norm measured before the update:
            # [dL/dparams..., dL/dz per layer..., W per layer (before the update)].
            n_p = len(g_params)
            norms = torch.stack(torch._foreach_norm(g_params + g_z + self._weights))
            total = torch.linalg.vector_norm(norms[:n_p])
            applied, clipped, applied_norms = self._clip(g_params, total, norms[:n_p])
            acc = (logits.argmax(dim=1) == y).float().mean()
            head = torch.stack([loss.detach(), acc, total, applied, clipped]).tolist()
            diverged = not (math.isfinite(head[0]) and math.isfinite(head[2]))

            if not diverged:
                upd = self._update_norms(applied_norms[:n_w])
            else:
                upd = torch.full((n_w,), float("nan"))
            L = self.n_layers
            gw, gb = norms[:n_w], norms[n_w : n_w + n_b]
            gz, wn = norms[n_p : n_p + L], norms[n_p + L :]
            norm_block = torch.stack([gw, gb, wn, upd, upd / wn, gz], dim=1)
            layers = np.full((L, len(LAYER_METRICS)), np.nan, np.float32)
            layers[:, :_N_NORM] = norm_block.numpy()
            if want_stats:
                layers[:, _STATS_SLICE] = probes.activation_stats(hs, self.net.activations).numpy()
            if pred is not None:
                layers[:, _PRED_COL] = pred
        for p in self._params:
            p.grad = None
        self.elapsed_s += time.perf_counter() - t0
        scalars = np.array(
            [head[0], head[1], head[2], head[3], head[4], self.lr, float(diverged), self.elapsed_s],
            np.float64,
        )
        record = StepRecord(s, scalars, layers, want_stats)
        self.session.append(record)
        self.step_index = s + 1
        self.session.steps_run = self.step_index
        if diverged:
            self.diverged_at = s
            what = "loss" if not math.isfinite(head[0]) else "gradient norm"
            self.session.add_event(s, "diverged", f"non-finite {what} ({head[0] if what == 'loss' else head[2]})")
        return record

    def predicted_gain(self, x: torch.Tensor) -> np.ndarray:
        """The theory's per-layer gain ||dL/dz_l|| / ||dL/dz_(l+1)|| for the current weights
        on batch ``x`` (NaN for the output layer and where the model does not apply).

        Only on recorded steps (step 0, events, every ``stats_every``): it costs
        about as much as a step. Changes nothing in the network.
        """
        return predict(self.net, x=x).gain.astype(np.float32)

    def _clip(self, grads: list[torch.Tensor], total: torch.Tensor, norms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Clip in place; return (total norm after clipping, 1.0 if anything was clipped,
        the per-tensor norms after clipping)."""
        if self.clip_mode == "norm":
            coef = torch.clamp(self.clip_threshold / (total + 1e-6), max=1.0)
            torch._foreach_mul_(grads, coef)
            return total * coef, (coef < 1.0).float(), norms * coef
        if self.clip_mode == "value":
            biggest = torch.stack(torch._foreach_norm(grads, ord=float("inf"))).max()
            torch._foreach_clamp_min_(grads, -self.clip_threshold)
            torch._foreach_clamp_max_(grads, self.clip_threshold)
            after = torch.stack(torch._foreach_norm(grads))
            return torch.linalg.vector_norm(after), (biggest > self.clip_threshold).float(), after
        return total, total.new_zeros(()), norms

    def _update_norms(self, applied_w: torch.Tensor) -> torch.Tensor:
        """||W_after - W_before|| per layer, for the optimizer step just about to run.

        Plain SGD moves W by exactly lr * g and momentum SGD by lr * buffer, so
        their update norms come from norms already at hand (no copy of the
        weights: ~0.5 ms a step at depth 50). Adam's update has no such short
        form: there the weights are copied before the step and subtracted after.
        Both agree with the measured parameter deltas to float32 rounding
        (tests/engine/test_physics.py).
        """
        opt = self.optimizer
        plain_sgd = isinstance(opt, torch.optim.SGD) and all(
            g["momentum"] == 0 and g["weight_decay"] == 0 and not g["maximize"] for g in opt.param_groups
        )
        momentum_sgd = isinstance(opt, torch.optim.SGD) and not plain_sgd and all(
            g["dampening"] == 0 and g["weight_decay"] == 0 and not g["nesterov"] and not g["maximize"] for g in opt.param_groups
        )
        if plain_sgd:
            opt.step()
            return applied_w * self.lr
        if momentum_sgd:
            opt.step()
            bufs = [opt.state[w]["momentum_buffer"] for w in self._weights]
            return torch.stack(torch._foreach_norm(bufs)) * self.lr
        torch._foreach_copy_(self._before, self._weights)
        opt.step()
        torch._foreach_sub_(self._before, self._weights)
        return torch.stack(torch._foreach_norm(self._before))

    def run(self, steps: Optional[int] = None, callback: Optional[Callable[[StepRecord], None]] = None) -> Session:
        """Step until finished (or ``steps`` more steps); call ``callback`` after each."""
        n = 0
        while not self.finished and (steps is None or n < steps):
            rec = self.step()
            n += 1
            if callback is not None and rec is not None:
                callback(rec)
        return self.session

    def probe_inputs(self, n: int) -> torch.Tensor:
        """The first ``n`` training inputs (a copy): a fixed sample for probes of the
        live network (theory, Jacobian) that never touches the run's batches."""
        return self._x[:n].clone()

    @torch.no_grad()
    def evaluate(self) -> float:
        """Accuracy on the held-out split (NaN when the split is empty)."""
        if len(self.data.y_test) == 0:
            return float("nan")
        was_training = self.net.training
        self.net.eval()
        try:
            logits = self.net(torch.from_numpy(self.data.x_test))
            return float((logits.argmax(1) == torch.from_numpy(self.data.y_test)).float().mean())
        finally:
            self.net.train(was_training)


