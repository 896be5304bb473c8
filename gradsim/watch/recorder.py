"""``gradsim.watch``: per-layer gradient health of any torch model, recorded at ``optimizer.step()``.

What is measured, and when (docs/watch.md has the full story):

- Parameters are read by hooks on the *optimizer*: its step pre-hook reads the
  gradients and weights the step is about to apply, its post-hook the weights
  it produced. A ``GradScaler`` calls ``unscale_`` before it calls
  ``optimizer.step()``, so the gradients read are the real ones; an optimizer
  that unscales inside its own step (fused Adam) gets the scale divided out
  here. A step the scaler skips (an inf or NaN gradient) is no optimizer step
  and leaves no row.
- Norms are batched: one ``torch._foreach_norm`` over the gradients and weights
  before the step, one over the weight updates after it (the weights before the
  step are copied with one ``_foreach_copy_`` into buffers kept for the run),
  then one stack, one ``index_add_`` sums them per unit into every column at
  once, and each recorded step's numbers come back to the host as one tensor,
  copied when the next recorded step (or ``loss()``, or ``close()``) finds it
  done, and written as a block of columns (no Python loop over a row's cells).
  No ``.item()`` per layer; steps between records cost nothing but a counter.
- With ``activations=True`` each unit gets a forward hook and its output a
  tensor hook (||dL/d output||), and activation modules a forward hook (the
  statistics, see gradsim.watch.activations). With ``activations=False`` no
  module is touched at all, so a ``torch.compile``d model keeps its graph.
"""
from __future__ import annotations

import atexit
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch

from ..metrics import LAYER_INDEX, STEP_INDEX, STEP_METRICS
from ..models.family import Unit
from .activations import ACTIVATION_KINDS, SATURATION_BOUNDS, feature_dim, own_kind
from .writer import SessionWriter, WatchError

NAN = float("nan")
_STAT_COLS = ("act_mean", "act_std", "act_saturation", "act_dead")
#: The order of the columns in the vector each recorded step copies off the device.
_PARAM_COLS = ("grad_norm", "bias_grad_norm", "weight_norm", "update_norm", "update_ratio")
_ACT_COLS = ("act_grad_norm",) + _STAT_COLS


def is_bias(name: str) -> bool:
    """A parameter ``bias_grad_norm`` measures: ``bias``, ``bias_ih_l0``, ``in_proj_bias``, ``bias_k``."""
    return name == "bias" or name.startswith("bias") or name.endswith("_bias")


@dataclass
class _UnitInfo:
    path: str
    module: torch.nn.Module
    kind: str
    weights: list[tuple[str, torch.nn.Parameter]]
    biases: list[tuple[str, torch.nn.Parameter]]


@dataclass
class _Stats:
    """One unit's activation statistics of the step so far, as device tensors (one entry per forward call)."""

    counts: list[int] = field(default_factory=list)
    means: list[torch.Tensor] = field(default_factory=list)
    m2s: list[torch.Tensor] = field(default_factory=list)  # sum of squared deviations from the call's mean
    sat: list[torch.Tensor] = field(default_factory=list)  # saturated count per call (saturating kinds)
    alive: Optional[torch.Tensor] = None  # per feature: non-zero anywhere this step (rectifying kinds)
    judge: Optional[str] = None  # the activation kind that made them (None: the unit's own output)


def _first_tensor(out: Any) -> Optional[torch.Tensor]:
    """The tensor a module's output stands for: itself, the first of a tuple (an LSTM's
    sequence, an attention's output), a PackedSequence's data."""
    if isinstance(out, torch.Tensor):
        return out
    data = getattr(out, "data", None)
    if isinstance(data, torch.Tensor) and type(out).__name__ == "PackedSequence":
        return data
    if isinstance(out, (tuple, list)) and out:
        return _first_tensor(out[0])
    if isinstance(out, dict) and out:
        return _first_tensor(next(iter(out.values())))
    return None


def _grad_of(p: torch.Tensor) -> Optional[torch.Tensor]:
    g = p.grad
    if g is not None and g.is_sparse:
        g = g.coalesce()._values()
    return g


class Watch:
    """Records a model's per-unit gradients, updates and activations into a session folder.

    Use :func:`gradsim.watch` to make one. A context manager; :meth:`loss`
    records steps.csv's loss (and accuracy) for the step just taken.
    """

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, out: "str | os.PathLike[str]",
                 every: int = 1, activations: bool = True, scaler: Any = None, overwrite: bool = False,
                 *, step_pre_hook: bool = True) -> None:
        """``step_pre_hook=False``: the optimizer's step pre-hook is not used and the caller
        calls :meth:`read_gradients` once the gradients are final (a trainer that calls
        ``optimizer.step(closure)`` runs backward inside the step, after that hook)."""
        if not isinstance(model, torch.nn.Module):
            raise WatchError(f"model = {type(model).__name__}, expected a torch.nn.Module")
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise WatchError(f"optimizer = {type(optimizer).__name__}, expected a torch.optim.Optimizer")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise WatchError(f"every = {every!r}, expected a whole number >= 1 (record every N-th optimizer step)")
        if not isinstance(activations, bool):
            raise WatchError(f"activations = {activations!r}, expected True or False")
        if scaler is not None and not hasattr(scaler, "_get_scale_async"):
            raise WatchError(f"scaler = {type(scaler).__name__}, expected a torch.amp.GradScaler or None")
        self.model, self.optimizer, self.every, self.activations, self.scaler = model, optimizer, every, activations, scaler
        self._infos = self._find_units(model)
        if not self._infos:
            raise WatchError(f"model {type(model).__name__} has no parameters: nothing to watch")
        self.units = [
            Unit(j, info.path or "(model)", info.kind, tuple(_full(info.path, n) for n, _ in info.weights + info.biases))
            for j, info in enumerate(self._infos, 1)
        ]
        config = {
            "model": "watched",
            "module": type(model).__name__,
            "optimizer": type(optimizer).__name__,
            "lr": _lr(optimizer),
            "every": every,
            "activations": activations,
            "n_params": int(sum(p.numel() for p in model.parameters())),
        }
        self._writer = SessionWriter(out, self.units, config, record_every=every, overwrite=overwrite)
        self.path = self._writer.path
        self._writer.add_event(0, "start", f"watched {type(model).__name__} ({len(self.units)} units)")
        self._t0 = time.perf_counter()
        self._layout()
        self.step = 0  # optimizer steps taken since watching began
        self._armed = True  # whether the step in progress is recorded
        self._pending: Optional[dict[str, Any]] = None
        self._held_loss: Optional[tuple[Any, Any]] = None
        # Whether the step just taken already has its loss (given before it): a loss() call
        # after a step belongs to that step only if it has none yet, recorded or not.
        self._last_has_loss = False
        self._pre: dict[str, Any] = {}
        self._handles: list[Any] = [optimizer.register_step_post_hook(self._after_step)]
        if step_pre_hook:
            self._handles.append(optimizer.register_step_pre_hook(self._before_step))
        self._closed = False
        self._reset_activation_state()
        if activations:
            self._hook_modules()
        atexit.register(self.close)

    # ------------------------------------------------------------ the units
    @staticmethod
    def _find_units(model: torch.nn.Module) -> list[_UnitInfo]:
        infos = []
        for path, module in model.named_modules():
            own = list(module.named_parameters(recurse=False))
            if not own:
                continue
            names = dict(own)
            weights = [("weight", names["weight"])] if "weight" in names else [(n, p) for n, p in own if not is_bias(n)]
            biases = [(n, p) for n, p in own if is_bias(n)]
            infos.append(_UnitInfo(path, module, type(module).__name__.lower(), weights, biases))
        return infos

    def _layout(self) -> None:
        """Index lists mapping every measured tensor to its unit (built once)."""
        tensors: list[torch.Tensor] = []
        where: dict[int, int] = {}

        def index(p: torch.Tensor) -> int:
            if id(p) not in where:
                where[id(p)] = len(tensors)
                tensors.append(p)
            return where[id(p)]

        self._w_pairs = [(u, index(p)) for u, info in enumerate(self._infos) for _, p in info.weights]
        self._b_pairs = [(u, index(p)) for u, info in enumerate(self._infos) for _, p in info.biases]
        opt_params = [p for g in self.optimizer.param_groups for p in g["params"]]
        self._opt_idx = sorted({index(p) for p in opt_params})
        self._tensors = tensors
        # the weights whose update is measured: unique, in first-seen order
        self._w_unique = sorted({i for _, i in self._w_pairs})
        self._w_pos = {t: k for k, t in enumerate(self._w_unique)}
        self._weights = [tensors[t] for t in self._w_unique]
        self.device = tensors[0].device
        self._plans: dict[frozenset[int], dict[str, Any]] = {}
        self._all_present = frozenset(range(len(tensors)))
        self._before_buf: Optional[list[torch.Tensor]] = None
        self._nan0 = torch.tensor(NAN, device=self.device)
        self._zero0 = torch.tensor(0.0, device=self.device)

    def _plan(self, present: frozenset[int]) -> dict[str, Any]:
        """Index tensors (on the device) for a pattern of which tensors have a gradient,
        built once per pattern: usually one for the whole run.

        A recorded step measures one norms vector, [present gradients..., weights before
        the step..., weight updates...]; ``gather`` picks from its squares and ``slot`` says
        where each goes in the step's block [total | grad_norm | bias_grad_norm |
        weight_norm | update_norm | update_ratio] (1 + 5 x units), so every column but the
        ratio costs one index_add together."""
        plan = self._plans.get(present)
        if plan is None:
            order = sorted(present)
            pos = {t: k for k, t in enumerate(order)}
            n, g, m = len(self._infos), len(order), len(self._w_unique)
            gather, slot = [], []
            for u, t in self._w_pairs:
                if t in present:
                    gather.append(pos[t])
                    slot.append(1 + u)
            for u, t in self._b_pairs:
                if t in present:
                    gather.append(pos[t])
                    slot.append(1 + n + u)
            for u, t in self._w_pairs:
                gather += [g + self._w_pos[t], g + m + self._w_pos[t]]
                slot += [1 + 2 * n + u, 1 + 3 * n + u]
            for t in self._opt_idx:
                if t in present:
                    gather.append(pos[t])
                    slot.append(0)
            filled = set(slot) | set(range(1 + 4 * n, 1 + 5 * n))  # the ratios are computed, not gathered
            plan = {"order": order, "gather": self._index(gather), "slot": self._index(slot),
                    "empty": torch.tensor([k not in filled for k in range(1 + 5 * n)], dtype=torch.bool, device=self.device),
                    "n_grads": g}
            self._plans[present] = plan
        return plan

    def _index(self, idx: list[int]) -> torch.Tensor:
        return torch.tensor(idx, dtype=torch.long, device=self.device)

    # ------------------------------------------------------- optimizer hooks
    def _before_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        if not self._armed or self._closed:
            return
        with torch.no_grad():
            maybe = [p.grad for p in self._tensors]
            if any(g is None or g.is_sparse for g in maybe):
                maybe = [_grad_of(p) for p in self._tensors]
                plan = self._plan(frozenset(i for i, g in enumerate(maybe) if g is not None))
            else:  # every tensor has a dense gradient (the usual step): the pattern need not be built again
                plan = self._plan(self._all_present)
            grads = [g for g in maybe if g is not None]
            weights = self._weights
            # One foreach over gradients and weights now; the norms stay on the device, unstacked,
            # until the step's update norms join them (one stack for the whole step).
            norms = _norm_list(grads + weights)
            scale = getattr(optimizer, "grad_scale", None)  # an optimizer that unscales in its own step
            if isinstance(scale, torch.Tensor) and plan["n_grads"]:
                torch._foreach_div_(norms[: plan["n_grads"]], scale.to(norms[0].device, torch.float32))
            # The weights before the step, copied into buffers kept for the run (no allocation per step).
            before = self._before_buf
            if before is None or any(b.shape != w.shape or b.dtype != w.dtype or b.device != w.device
                                     for b, w in zip(before, weights)):
                before = self._before_buf = [torch.empty_like(w) for w in weights]
            if before:
                torch._foreach_copy_(before, weights)
            self._pre = {"plan": plan, "norms": norms, "before": before, "lr": _lr(optimizer)}

    def read_gradients(self) -> None:
        """Read the gradients and weights the coming optimizer step applies (with
        ``step_pre_hook=False``; otherwise the optimizer's step pre-hook does it). A second
        call before the step replaces the first."""
        self._before_step(self.optimizer, (), {})

    def _after_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        if self._closed:
            return
        step = self.step
        self.step += 1
        self._last_has_loss = self._held_loss is not None
        if not self._armed or not self._pre:
            self._held_loss = None  # a loss given before a step that is not recorded belongs to it
            self._armed = self.step % self.every == 0
            return
        pre, self._pre = self._pre, {}
        with torch.no_grad():
            n = len(self._infos)
            plan, delta = pre["plan"], pre["before"]
            if delta:
                torch._foreach_sub_(delta, self._weights)
            sq = _stack(pre["norms"] + _norm_list(delta), self.device).square_()
            block = torch.zeros(1 + 5 * n, dtype=torch.float32, device=self.device)
            block.index_add_(0, plan["slot"], sq.index_select(0, plan["gather"])).sqrt_().masked_fill_(plan["empty"], NAN)
            torch.div(block[1 + 3 * n: 1 + 4 * n], block[1 + 2 * n: 1 + 3 * n], out=block[1 + 4 * n:])
            has_stats = self.activations
            if self.activations:
                self._settle_following()
                cols = self._activation_columns()
                block = torch.cat([block] + [cols[c] for c in _ACT_COLS])
            flat = block
        self._flush()  # the previous recorded step, long finished on the device by now
        self._pending = {"step": step, "values": _to_host_async(flat), "lr": pre["lr"], "has_stats": has_stats,
                         "elapsed": time.perf_counter() - self._t0, "loss": None, "accuracy": None}
        if self._held_loss is not None:  # loss() given before this step: it belongs to it
            self._pending["loss"], self._pending["accuracy"] = self._held_loss
            self._held_loss = None
        self._reset_activation_state()
        self._armed = self.step % self.every == 0

    # ---------------------------------------------------------- activations
    def _reset_activation_state(self) -> None:
        self._act_sq: list[list[torch.Tensor]] = [[] for _ in self._infos]
        self._stats: list[Optional[_Stats]] = [None] * len(self._infos)
        # The unit whose output the next activation module judges, and that output: its own
        # statistics are computed only if no activation comes (half the work for Linear + ReLU).
        self._following: Optional[tuple[int, torch.Tensor]] = None

    def _hook_modules(self) -> None:
        for u, info in enumerate(self._infos):
            self._handles.append(info.module.register_forward_pre_hook(self._unit_pre))
            self._handles.append(info.module.register_forward_hook(self._make_unit_hook(u)))
        units = {id(info.module) for info in self._infos}
        for _, module in self.model.named_modules():
            kind = ACTIVATION_KINDS.get(type(module).__name__.lower())
            if kind is not None and id(module) not in units:
                self._handles.append(module.register_forward_hook(self._make_activation_hook(kind)))

    def _recording_forward(self) -> bool:
        return self._armed and not self._closed and torch.is_grad_enabled()

    def _settle_following(self) -> None:
        """No activation module came after the pending unit: its statistics are of its own output."""
        if self._following is not None:
            u, t = self._following
            self._following = None
            self._add_stats(u, t, None)

    def _unit_pre(self, module: Any, inputs: Any) -> None:
        if self._recording_forward():
            self._settle_following()

    def _make_unit_hook(self, u: int) -> Callable[..., None]:
        info = self._infos[u]
        own = own_kind(info.kind, info.module)

        def hook(module: Any, inputs: Any, output: Any) -> None:
            if not self._recording_forward():
                return
            self._settle_following()
            t = _first_tensor(output)
            if t is None or not t.is_floating_point():
                return
            if t.requires_grad:
                acc = self._act_sq[u]

                def on_grad(g: torch.Tensor) -> None:
                    acc.append(torch.linalg.vector_norm(g.detach(), dtype=torch.float32).square())

                t.register_hook(on_grad)
            if own is not None:
                self._add_stats(u, t.detach(), own)
            else:
                self._following = (u, t.detach())

        return hook

    def _make_activation_hook(self, kind: str) -> Callable[..., None]:
        def hook(module: Any, inputs: Any, output: Any) -> None:
            if not self._recording_forward() or self._following is None:
                return
            (u, own_out), self._following = self._following, None
            t = _first_tensor(output)
            if t is not None and t.is_floating_point():
                self._add_stats(u, t.detach(), kind)
            else:
                self._add_stats(u, own_out, None)

        return hook

    def _add_stats(self, u: int, t: torch.Tensor, judge: Optional[str]) -> None:
        """Add one forward call's output (the unit's own, or its activation's) to unit ``u``'s statistics."""
        st = self._stats[u]
        if st is None:
            st = self._stats[u] = _Stats()
        with torch.no_grad():
            x = t.float()
            n = x.numel()
            if n == 0:
                return
            mean = x.mean()
            st.counts.append(n)
            st.means.append(mean)
            st.m2s.append((x - mean).square().sum())
            st.judge = judge
            if judge in SATURATION_BOUNDS:
                lo, hi = SATURATION_BOUNDS[judge]
                st.sat.append(((x < lo) | (x > hi)).sum())
            elif judge == "relu":
                fd = feature_dim(self._infos[u].kind, x.dim())
                alive = x.ne(0).movedim(fd, 0).reshape(x.shape[fd], -1).any(dim=1)
                st.alive = alive if st.alive is None or st.alive.shape != alive.shape else st.alive | alive

    def _activation_columns(self) -> dict[str, torch.Tensor]:
        n = len(self._infos)
        nan, zero = self._nan0, self._zero0
        cols: dict[str, list[torch.Tensor]] = {c: [nan] * n for c in ("act_grad_norm",) + _STAT_COLS}
        # A GradScaler scaled the loss, so every activation gradient is scale x the real one.
        scale = self.scaler._get_scale_async() if self.scaler is not None and self.scaler.is_enabled() else None
        for u in range(n):
            if self._act_sq[u]:
                g = torch.stack(self._act_sq[u]).sum().sqrt()
                cols["act_grad_norm"][u] = g / scale.to(g.device, torch.float32) if scale is not None else g
            st = self._stats[u]
            if st is None or not st.counts:
                continue
            total = sum(st.counts)
            counts = torch.tensor(st.counts, dtype=torch.float32, device=st.means[0].device)
            means = torch.stack(st.means)
            mean = (counts * means).sum() / total
            # pooled sum of squared deviations over all calls (Chan et al.), then the sample std
            m2 = torch.stack(st.m2s).sum() + (counts * (means - mean).square()).sum()
            cols["act_mean"][u] = mean
            cols["act_std"][u] = (m2 / max(total - 1, 1)).sqrt()
            if st.judge in SATURATION_BOUNDS:
                cols["act_saturation"][u] = torch.stack(st.sat).sum() / total
                cols["act_dead"][u] = zero
            elif st.judge == "relu" and st.alive is not None:
                cols["act_saturation"][u] = zero
                cols["act_dead"][u] = 1.0 - st.alive.float().mean()
            elif st.judge is not None:  # an activation with no flat region
                cols["act_saturation"][u] = cols["act_dead"][u] = zero
        return {c: torch.stack([v.to(self.device, torch.float32) for v in vals]) for c, vals in cols.items()}

    # ----------------------------------------------------------- the public
    def loss(self, loss: Any, accuracy: Any = None) -> None:
        """Record steps.csv's ``loss`` (and ``accuracy``, a fraction) of the step just taken.

        Called after ``optimizer.step()`` it belongs to that step; called before
        the step (or before the first), to the step that comes next. A tensor is
        copied off the device only when the row is written, with the row's numbers.
        """
        for name, v in (("loss", loss), ("accuracy", accuracy)):
            if isinstance(v, torch.Tensor) and v.numel() != 1:
                raise WatchError(f"{name} has {v.numel()} elements, expected one number")
            if v is not None and not isinstance(v, (torch.Tensor, int, float)):
                raise WatchError(f"{name} = {type(v).__name__}, expected a number or a one-element tensor")
        lv = loss.detach() if isinstance(loss, torch.Tensor) else loss
        av = accuracy.detach() if isinstance(accuracy, torch.Tensor) else accuracy
        if self.step > 0 and not self._last_has_loss:  # after a step: that step's loss
            self._last_has_loss = True
            p = self._pending
            if p is not None and p["step"] == self.step - 1 and p["loss"] is None:
                p["loss"], p["accuracy"] = lv, av
                if _ready(p["values"]):
                    self._flush()
            # else the step was not recorded (every > 1): its loss is not either
        else:  # before a step (or a second call): the loss of the step that comes next
            self._held_loss = (lv, av)

    def _flush(self) -> None:
        """Write the pending recorded step (its copy off the device is waited for here)."""
        p, self._pending = self._pending, None
        if p is None:
            return
        values = _host_values(p["values"])
        total = values[0]
        loss = NAN if p["loss"] is None else float(p["loss"])
        acc = NAN if p["accuracy"] is None else float(p["accuracy"])
        diverged = not math.isfinite(loss) and p["loss"] is not None or not math.isfinite(total)
        scalars = [NAN] * len(STEP_METRICS)
        scalars[STEP_INDEX["loss"]] = loss
        scalars[STEP_INDEX["accuracy"]] = acc
        scalars[STEP_INDEX["grad_norm_total"]] = total
        scalars[STEP_INDEX["grad_norm_applied"]] = total  # read where the optimizer reads it: after any clipping of the user's
        scalars[STEP_INDEX["clipped"]] = 0.0
        scalars[STEP_INDEX["lr"]] = p["lr"]
        scalars[STEP_INDEX["diverged"]] = 1.0 if diverged else 0.0
        scalars[STEP_INDEX["elapsed_s"]] = p["elapsed"]
        del values[0]
        self._writer.write_columns(p["step"], scalars, _PARAM_COLS + _ACT_COLS if p["has_stats"] else _PARAM_COLS, values)
        if diverged and self._writer.diverged_at is None:
            what = f"loss = {loss}" if not math.isfinite(loss) and p["loss"] is not None else f"gradient norm = {total}"
            self._writer.add_event(p["step"], "diverged", what)

    def flush(self) -> None:
        """Write every recorded step to the folder now (waiting for its copy off the device);
        otherwise rows reach the files a few times a second and at :meth:`close`."""
        if not self._closed:
            self._flush()
            self._writer.flush()
            self._writer.write_json()

    def close(self) -> None:
        """Write what is pending, remove every hook and finish session.json. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._flush()
        self._writer.close(steps_run=self.step)
        atexit.unregister(self.close)

    def __enter__(self) -> "Watch":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<gradsim.watch {str(self.path)!r}: {len(self.units)} units, step {self.step}>"


# ---------------------------------------------------------------- helpers
def _full(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _lr(optimizer: Any) -> float:
    lr = optimizer.param_groups[0].get("lr", NAN) if optimizer.param_groups else NAN
    return float(lr)


def _norm_list(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """The 2-norms of ``tensors`` in float32, one 0-d tensor each (on each tensor's device)."""
    if not tensors:
        return []
    try:  # the usual case, one device: one dispatch
        return list(torch._foreach_norm(tensors, 2, dtype=torch.float32))
    except RuntimeError:
        if len({t.device for t in tensors}) == 1:
            raise
    out: list[Any] = [None] * len(tensors)
    by_device: dict[torch.device, list[int]] = {}
    for i, t in enumerate(tensors):
        by_device.setdefault(t.device, []).append(i)
    for idx in by_device.values():  # a model spread over devices: one foreach per device
        for i, v in zip(idx, torch._foreach_norm([tensors[i] for i in idx], 2, dtype=torch.float32)):
            out[i] = v
    return out


def _stack(norms: list[torch.Tensor], device: torch.device) -> torch.Tensor:
    """``norms`` as one vector on ``device``."""
    if not norms:
        return torch.zeros(0, dtype=torch.float32, device=device)
    try:  # the usual case, one device: one dispatch
        return torch.stack(norms).to(device)
    except RuntimeError:
        if len({t.device for t in norms}) == 1:
            raise
    return torch.stack([t.to(device) for t in norms])  # a model spread over devices


def _to_host_async(t: torch.Tensor) -> Any:
    """Start copying ``t`` to the host; a CUDA copy runs behind the next step's work."""
    if t.device.type != "cuda":
        return t.detach().cpu()
    buf = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
    buf.copy_(t, non_blocking=True)
    ev = torch.cuda.Event()
    ev.record()
    return (buf, ev)


def _ready(v: Any) -> bool:
    return not isinstance(v, tuple) or bool(v[1].query())


def _host_values(v: Any) -> list[float]:
    if isinstance(v, tuple):
        v[1].synchronize()
        v = v[0]
    return [float(x) for x in v.tolist()]


assert set(_STAT_COLS) <= set(LAYER_INDEX)
