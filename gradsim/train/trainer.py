"""Trainer: one instrumented optimizer step at a time, commands between steps.

``step()`` runs forward, one backward pass that keeps both dL/dW and dL/dz
(z = each Linear's output), clipping, divergence detection and the update, and
returns a StepRecord. Without batch or layer norm the pass is hand-written
(gradsim/models/mlp_backprop.py: gradients straight into the flat arenas, dL/dz as an
explicit intermediate); with them it is autograd with a hook per layer for
dL/dz. Both give the same numbers bit for bit (tests/engine/test_backprop.py).
``apply(command)`` changes the run between steps and records the event in the
session. Nothing here raises on inf/nan:
a non-finite loss or gradient ends the run cleanly with a ``diverged`` event.
"""
from __future__ import annotations

import copy
import functools
import hashlib
import math
import time
from collections import defaultdict
from typing import Any, Callable, Iterable, Optional, ParamSpec, TypeVar, cast

import numpy as np
import torch
import torch.nn.functional as F

from ..models import mlp_backprop as backprop
from .probes import StatsWorkspace, activation_stats
from ..commands import Annotate, Command, CommandError, Scheduled
from ..config import SCALED_INITS, RunConfig
from ..data.datasets import Dataset
from ..arena import Arena
from ..models.mlp_backprop import DirectPass
from ..metrics import LAYER_INDEX, LAYER_METRICS, NORM_METRICS, STATS_METRICS, STEP_METRICS
from ..models.family import check_units, family_for
from ..models.mlp import GradNet
from .optimizers import FlatOptimizer, build_optimizer
from .unit_rows import UnitRows
from ..session.store import Session, StepRecord
from ..theory.mean_field import predict

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
    written = ("loss", "accuracy", "grad_norm_total", "grad_norm_applied", "clipped", "lr", "diverged", "elapsed_s",
               "test_accuracy")
    if tuple(STEP_METRICS) != written:
        raise RuntimeError(f"gradsim.metrics.STEP_METRICS = {STEP_METRICS}, but Trainer.step() writes {written}")


_check_layout()

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _one_thread(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``fn`` on one intra-op thread, then give the caller its own thread count back.

    Split across threads, a reduction sums in another order (batch norm's batch
    statistics, for one), so a run's numbers would depend on the caller's
    torch.get_num_threads(). ``gradsim run``, the window's engine and every
    replay train on one thread; pinning it here makes a notebook or script
    session (torch's default: one thread per core) replay bit for bit.
    """

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        before = torch.get_num_threads()
        if before == 1:
            return fn(*args, **kwargs)
        torch.set_num_threads(1)
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_num_threads(before)

    return wrapper


class _NormPlan:
    """Where each per-layer norm of a step comes from and goes to, built once per structure.

    Every norm is written (``out=``) into one preallocated vector laid out
    [dL/dparams of each arena in order (n_p)..., dL/dz per layer (L), W per
    layer (L)], one reduction per run of equal-sized parameters or per block:
    no concatenation, no slicing per step. Right after the pass every small
    op costs 2-3x what it does in a tight loop (measured: 5-6 us instead of
    2), so the number of ops is most of what the bookkeeping costs.
    """

    def __init__(self, key: tuple, arenas: list[Arena], weights: Arena, n_b: int, L: int, direct: Optional[DirectPass]) -> None:
        self.key = key
        n_p = sum(len(a) for a in arenas)
        n_w = len(weights)
        buf = torch.empty(n_p + 2 * L, dtype=weights.data.dtype)
        self.buf = buf
        self.grads, self.gw, self.gb = buf[:n_p], buf[:n_w], buf[n_w : n_w + n_b]
        self.gz, self.weights = buf[n_p : n_p + L], buf[n_p + L :]
        self.reductions: list[tuple[torch.Tensor, torch.Tensor]] = []
        pos = 0
        for a in arenas:
            for s, k, n in a.runs:
                self.reductions.append((a.grad[s : s + k * n].view(k, n), buf[pos : pos + k]))
                pos += k
        for s, k, n in weights.runs:
            self.reductions.append((weights.data[s : s + k * n].view(k, n), buf[pos + L : pos + L + k]))
            pos += k
        if direct is not None:  # the hidden layers' dL/dz are one block: one reduction; the output's apart
            self.reductions.append((direct.G_rows, self.gz[: L - 1]))
        self.gz_out = self.gz[L - 1]

    def repair(self, direct: Optional[DirectPass], gz: list[Optional[torch.Tensor]]) -> None:
        """Recompute in float64 every entry that came out inf.

        A float32 norm sums float32 squares: every element may be finite and the
        sum still overflow once the norm passes ~1.8e19. Only the entries that
        overflowed are recomputed, so every other value keeps its float32 bits;
        an entry is inf afterwards only when its true norm is beyond float32.
        """
        for src, dst in self.reductions:
            bad = torch.isinf(dst)
            if bool(bad.any()):
                dst[bad] = _norm64(src[bad]).to(dst.dtype)
        if direct is not None:
            if math.isinf(float(self.gz_out)):
                self.gz_out.copy_(_norm64(direct.g_out.reshape(-1)))
        else:
            for i, g in enumerate(gz):
                if g is not None and math.isinf(float(self.gz[i])):
                    self.gz[i] = _norm64(g.reshape(-1))


def _norm64(src: torch.Tensor) -> torch.Tensor:
    """The 2-norm of each row of ``src`` (of all of a 1-d ``src``), summed in float64 (no overflow)."""
    if src.dim() > 1:
        src = src.reshape(src.shape[0], -1)
    return torch.linalg.vector_norm(src.to(torch.float64), dim=-1)


#: The trainer class of each non-MLP family (``RunConfig.model``), filled by the
#: modules that define them (gradsim/train/__init__.py imports them all).
FAMILY_TRAINERS: dict[str, type] = {}


def register_trainer(models: Iterable[str], cls: type) -> None:
    """Make ``Trainer(config)`` build ``cls`` (a Trainer subclass) for these model families."""
    for m in models:
        FAMILY_TRAINERS[m] = cls


class Trainer:
    """Owns the network, optimizer, data and session of one run.

    ``Trainer(config)`` builds the trainer of ``config.model``'s family: this
    class for the MLP, a registered subclass (FAMILY_TRAINERS) for the others,
    so every caller (CLI, sweep, engine process, replay) trains any family.
    """

    def __new__(cls, config: Optional[RunConfig] = None, *args: Any, **kwargs: Any) -> "Trainer":
        sub = FAMILY_TRAINERS.get(getattr(config, "model", "mlp")) if cls is Trainer else None
        return super().__new__(sub if sub is not None else cls)

    @_one_thread
    def __init__(self, config: RunConfig, schedule: Iterable[Scheduled] = (), session: Optional[Session] = None, label: str = "") -> None:
        config.validate()
        self.config = config
        self.family = family_for(config)
        self.data: Dataset = self.family.make_data(config)
        self.init_gen = torch.Generator().manual_seed(config.seed)
        self.batch_gen = torch.Generator().manual_seed(config.seed + 1)
        self.net: GradNet = self.family.build(config)
        self.net.reinit(config.init, self.init_gen, config.init_std, config.init_scale, config.bias_std)
        self.net.train()
        self.lr = float(config.lr)
        self.optimizer_name = config.optimizer
        self.clip_mode = config.clip_mode
        self.clip_threshold = float(config.clip_threshold)
        # Linear warm-up: the k-th step from warmup_start (k = 1, 2, ..) trains at lr * min(1, k / warmup_steps).
        self.warmup_steps = int(config.warmup_steps)
        self.warmup_start = 0
        self.arenas: dict[str, Arena] = {}
        self._stats_ws = StatsWorkspace()
        self._refresh_params()
        self.optimizer: FlatOptimizer = build_optimizer(self.optimizer_name, self.arenas, self.lr, config.momentum)
        # dL/dz arrives through one hook per layer, created once: cheaper than
        # retain_grad (which clones every z.grad) or autograd.grad(..., zs).
        self._gz: list[Optional[torch.Tensor]] = [None] * self.net.n_layers
        self._z_hooks = [self._make_z_hook(i) for i in range(self.net.n_layers)]
        # Without batch/layer norm, a hand-written forward/backward (gradsim/models/mlp_backprop.py)
        # replaces autograd: same numbers bit for bit, no hooks, no accumulation kernels.
        # ``use_direct = False`` forces the autograd path (tests compare the two).
        self.use_direct = True
        self._direct: Optional[DirectPass] = None
        self.last_pass = ""  # "direct" or "autograd": which pass the last step ran
        self._plan: Optional[_NormPlan] = None
        self._unit_rows: Optional[UnitRows] = None
        self._x = torch.from_numpy(self.data.x_train)
        self._y = torch.from_numpy(self.data.y_train)
        self._perm = torch.randperm(len(self._y), generator=self.batch_gen)
        self._pos = 0
        self.units = self.family.units(self.net)
        if session is None:
            session = Session(len(self.units), config.to_dict(), config.max_memory_mb, units=self.units)
        else:
            session.units = check_units(self.units, session.n_layers)
        self.session = session
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
        """(Re)build the flat arenas after a structural change; kinds whose
        parameters did not change keep their arena (and so their storage)."""
        kinds = self.net.param_kinds()
        arenas: dict[str, Arena] = {}
        for kind, params in kinds.items():
            old = self.arenas.get(kind)
            same = old is not None and len(old.params) == len(params) and all(a is b for a, b in zip(old.params, params))
            arenas[kind] = cast(Arena, old) if same else Arena(params)  # same: old is an Arena
        self.arenas = arenas
        self._weight_arena = arenas["weight"]
        self._arena_list = list(arenas.values())
        self._weights = self.net.weights()
        self._biases = self.net.biases()
        self._norm_params = [p for kind, a in arenas.items() if kind not in ("weight", "bias") for p in a.params]
        self._params = [p for a in self._arena_list for p in a.params]
        # Preallocated: Adam's update norm is ||W_before - W_after|| over the flat weights.
        self._before = torch.empty_like(self._weight_arena.data)

    # ------------------------------------------------------------ commands
    def schedule(self, item: Scheduled) -> None:
        """Queue a command for just before step ``item.step`` (a past step: the next one).

        Raises CommandError now if the command could never apply to this run.
        """
        item.command.validate()
        self.family.check_command(item.command)
        item.command.check(self)
        self._schedule[max(item.step, self.step_index)].append(item.command)

    @_one_thread
    def apply(self, command: Command) -> None:
        """Apply a command now (between steps) and record it as an event at this step.

        All or nothing: on any failure (CommandError or otherwise) the run is
        put back to the state it had before, bit for bit, and the error raised
        (a ValueError as CommandError naming the command).
        """
        if isinstance(command, Annotate):  # marks the run, changes nothing: no state to restore, no new theory row
            command.validate()
            self.session.add_event(self.step_index, command.kind, command.value())
            return
        saved = self.state(grads=True)
        events = len(self.session.events)
        try:
            command.validate()  # again: an unpickled command skipped its constructor's checks
            self.family.check_command(command)
            command.check(self)
            command.apply_to(self)
            self.session.add_event(self.step_index, command.key, command.value())
        except BaseException as exc:
            self.load_state(saved)
            del self.session.events[events:]
            if isinstance(exc, CommandError) or not isinstance(exc, ValueError):
                raise
            raise CommandError(f"{command.text()}: {exc}") from None
        self._pred_due = True

    def reinit(self, scheme: str, scale: Optional[float] = None) -> None:
        takes = SCALED_INITS.get(scheme) if scale is not None else None  # which field the number replaces
        std = scale if takes == "init_std" else self.config.init_std
        bound = scale if takes == "init_scale" else self.config.init_scale
        self.net.reinit(scheme, self.init_gen, cast(float, std), cast(float, bound), self.config.bias_std)  # in place: the arenas stay
        self.optimizer.reset(("weight", "bias"))  # fresh weights: their old moments mean nothing

    def set_batchnorm(self, on: bool) -> None:
        if on and self.config.batch_size < 2:
            raise CommandError("batchnorm=on: batch norm needs batch_size >= 2 (it is 1)")
        if on == self.net.has_batchnorm:
            return
        self.net.set_batchnorm(on)
        self._restructure()

    def _restructure(self) -> None:
        """After parameters were added or removed: new arenas for the kinds that
        changed, and the optimizer follows them (survivors keep their state)."""
        self.net.train()
        self._refresh_params()
        self._rebuild_optimizer(keep_state=True)

    def set_layernorm(self, on: bool) -> None:
        """Insert or remove layer norm; like batch norm it adds parameters, so the
        optimizer is rebuilt with the survivors' state kept."""
        if on == self.net.has_layernorm:
            return
        self.net.set_layernorm(on)
        self._restructure()

    def set_residual(self, on: bool, alpha: Optional[float] = None) -> None:
        """Switch the skip connections (no parameters change, so the optimizer is untouched)."""
        self.net.set_residual(on, alpha)

    def set_lr(self, lr: float) -> None:
        self.lr = float(lr)
        self.optimizer.lr = self.lr

    def set_norm_position(self, position: str) -> None:
        """Move a transformer's layer norms (the parameters stay; their optimizer state too)."""
        cast(Any, self.net).set_norm_position(position)  # the family allows it for transformers only

    def set_recurrent_init(self, scheme: str) -> None:
        """A feed-forward net has no W_hh (RecurrentTrainer overrides this; the family refuses it first)."""
        raise CommandError(f"recurrent_init={scheme}: model {self.config.model!r} has no recurrent weights")

    def set_forget_bias(self, value: float) -> None:
        """Only an LSTM has forget gates (RecurrentTrainer overrides this; the family refuses it first)."""
        raise CommandError(f"forget_bias={value}: model {self.config.model!r} has no forget gate")

    def set_warmup(self, steps: int) -> None:
        """Warm the learning rate up linearly over ``steps`` steps from the next one (0: none)."""
        self.warmup_steps = int(steps)
        self.warmup_start = self.step_index

    def lr_at(self, step: int) -> float:
        """The learning rate step ``step`` trains at: lr, scaled down during a warm-up."""
        k = step - self.warmup_start + 1
        if self.warmup_steps <= 0 or k >= self.warmup_steps:
            return self.lr
        return self.lr * max(k, 1) / self.warmup_steps

    def set_optimizer(self, name: str) -> None:
        # Built before anything changes: an unknown name leaves the old optimizer in place.
        optimizer = build_optimizer(name, self.arenas, self.lr, self.config.momentum)
        self.optimizer_name = name
        self.optimizer = optimizer

    def _rebuild_optimizer(self, keep_state: bool) -> None:
        """New optimizer over the current parameters; survivors keep their state (Adam moments)."""
        if keep_state and self.optimizer.name == self.optimizer_name:
            self.optimizer.rebind(self.arenas)
        else:
            self.optimizer = build_optimizer(self.optimizer_name, self.arenas, self.lr, self.config.momentum)

    # ------------------------------------------------------------ whole state
    def state(self, grads: bool = False) -> dict[str, Any]:
        """Everything the run's future depends on, as copies (nothing shared with the run).

        ``load_state`` of it on a Trainer of the same config continues the run
        bit for bit. The session (recorded rows and events) is not part of it.
        ``grads`` adds the flat gradients left by the last step (no step reads
        them, but a refused command must leave them too).
        """
        net: Any = self.net  # an MLP's GradNet, or a family's net with its own structure()
        out: dict[str, Any] = {
            "structure": net.structure() if hasattr(net, "structure") else {
                "activations": list(net.activations),
                "batchnorm": net.has_batchnorm,
                "layernorm": net.has_layernorm,
                "residual": bool(net.residual),
                "residual_alpha": float(net.residual_alpha),
            },
            "net": {k: v.detach().clone() for k, v in net.state_dict().items()},
            "training": bool(net.training),
            "optimizer_name": self.optimizer_name,
            "optimizer": {"name": self.optimizer.name, "state": copy.deepcopy(self.optimizer.state)},
            "lr": self.lr,
            "clip_mode": self.clip_mode,
            "clip_threshold": self.clip_threshold,
            "perm": self._perm.clone(),
            "pos": self._pos,
            "init_gen": self.init_gen.get_state(),
            "batch_gen": self.batch_gen.get_state(),
            "schedule": {step: list(cmds) for step, cmds in self._schedule.items() if cmds},
            "step_index": self.step_index,
            "pred_due": self._pred_due,
            "elapsed_s": self.elapsed_s,
            "diverged_at": self.diverged_at,
            "data": self._data_tag(),
            "warmup": {"steps": self.warmup_steps, "start": self.warmup_start},
        }
        if grads:
            out["grads"] = {kind: a.grad.clone() for kind, a in self.arenas.items()}
        return out

    _STATE_KEYS = (
        "structure", "net", "training", "optimizer_name", "optimizer", "lr", "clip_mode", "clip_threshold", "perm", "pos",
        "init_gen", "batch_gen", "schedule", "step_index", "pred_due", "elapsed_s", "diverged_at", "data",
    )

    def _data_tag(self) -> dict[str, Any]:
        """Which training data the state's batch order indexes: two datasets of the same
        size and shape (moons, circles) differ only in their digest."""
        tag = getattr(self, "_data_tag_cache", None)
        if tag is None:
            digest = hashlib.sha256(self._x.numpy().tobytes())
            digest.update(self._y.numpy().tobytes())
            tag = self._data_tag_cache = {"dataset": self.config.dataset, "n_train": len(self._y), "sha256": digest.hexdigest()}
        return dict(tag)

    def _check_state(self, state: Any) -> None:
        """Refuse a state of another shape of run before anything is changed."""
        if not isinstance(state, dict):
            raise ValueError(f"a trainer state is a dict, not {type(state).__name__}")
        missing = [k for k in self._STATE_KEYS if k not in state]
        if missing:
            raise ValueError(f"the state lacks {', '.join(missing)}: not a Trainer.state()")
        st = state["structure"]
        if not isinstance(st, dict) or not isinstance(st.get("activations"), list):
            raise ValueError("the state's structure has no list of activations: not a Trainer.state()")
        if len(st["activations"]) != self.net.depth:
            raise ValueError(f"the state has {len(st['activations'])} hidden layers, this run {self.net.depth}")
        perm = state["perm"]
        if not isinstance(perm, torch.Tensor) or perm.dim() != 1 or len(perm) != len(self._y):
            n = len(perm) if isinstance(perm, torch.Tensor) and perm.dim() == 1 else "?"
            raise ValueError(f"the state's batch order covers {n} training samples, this run's dataset has {len(self._y)}: a run of another dataset or size")
        data, mine_data = state["data"], self._data_tag()
        if data != mine_data:
            name = data.get("dataset", "?") if isinstance(data, dict) else "?"
            raise ValueError(
                f"the state was trained on other data ({name}) than this run ({mine_data['dataset']}, seed {self.config.seed}): a run of another dataset or seed"
            )
        mine = self.net.state_dict()
        for key, value in state["net"].items():
            if key in mine and (not isinstance(value, torch.Tensor) or value.shape != mine[key].shape):
                theirs = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                raise ValueError(
                    f"the state's {key} has shape {theirs}, this run's {tuple(mine[key].shape)}: a run of another width or dataset"
                )

    def load_state(self, state: dict[str, Any]) -> None:
        """Put this run in ``state`` (from ``state()`` of a run of the same config); copies are taken.

        All or nothing: a state of another shape of run is refused before
        anything changes, and any later failure puts the run back as it was.
        """
        self._check_state(state)
        before = self.state(grads=True)
        try:
            self._apply_state(state)
        except Exception:
            self._apply_state(before)
            raise

    def _apply_state(self, state: dict[str, Any]) -> None:
        st = state["structure"]
        net: Any = self.net
        if hasattr(net, "load_structure"):  # a family whose structure changes no parameter
            net.load_structure(st)
        else:
            self._apply_mlp_structure(st)
        with torch.no_grad():
            net.load_state_dict({k: v.clone() for k, v in state["net"].items()})
        net.train(state["training"])
        self.lr = float(state["lr"])
        self.optimizer_name = state["optimizer_name"]
        opt = state["optimizer"]
        optimizer = build_optimizer(opt["name"], self.arenas, self.lr, self.config.momentum)
        optimizer.state = copy.deepcopy(opt["state"])
        self.optimizer = optimizer
        self.clip_mode = state["clip_mode"]
        self.clip_threshold = float(state["clip_threshold"])
        self._perm = state["perm"].clone()
        self._pos = int(state["pos"])
        self.init_gen.set_state(state["init_gen"].clone())
        self.batch_gen.set_state(state["batch_gen"].clone())
        self._schedule.clear()
        for step, cmds in state["schedule"].items():
            self._schedule[int(step)] = list(cmds)
        self.step_index = int(state["step_index"])
        self._pred_due = bool(state["pred_due"])
        self.elapsed_s = float(state["elapsed_s"])
        self.diverged_at = state["diverged_at"]
        warmup = state.get("warmup", {"steps": 0, "start": 0})  # states from before warm-up existed
        self.warmup_steps, self.warmup_start = int(warmup["steps"]), int(warmup["start"])
        for kind, g in state.get("grads", {}).items():
            arena = self.arenas.get(kind)
            if arena is not None and arena.grad.shape == g.shape:
                arena.grad.copy_(g)
                arena.attach_grads()

    def _apply_mlp_structure(self, st: dict[str, Any]) -> None:
        net = self.net
        for i, name in enumerate(st["activations"]):
            if net.activations[i] != name:
                net.set_activation(name, i + 1)
        structural = False
        if net.has_batchnorm != st["batchnorm"]:
            net.set_batchnorm(st["batchnorm"])
            structural = True
        if net.has_layernorm != st["layernorm"]:
            net.set_layernorm(st["layernorm"])
            structural = True
        net.set_residual(st["residual"], st["residual_alpha"] if st["residual"] else None)
        if structural:
            self._refresh_params()

    # ------------------------------------------------------------ stepping
    def _make_z_hook(self, i: int) -> Callable[[torch.Tensor], None]:
        def hook(grad: torch.Tensor) -> None:
            self._gz[i] = grad

        return hook

    def _direct_pass(self, x: torch.Tensor) -> Optional[DirectPass]:
        """The hand-written pass for this step, or None when the network's current
        structure needs autograd (batch norm, layer norm): checked every step, so
        a toggle switches paths at the step it applies to."""
        if not self.use_direct or not backprop.supports(self.net) or set(self.arenas) != {"weight", "bias"}:
            self._direct = None  # its blocks are as large as the activations: free them while unused
            return None
        wa, ba = self.arenas["weight"], self.arenas["bias"]
        d = self._direct
        if d is None or not d.matches(wa, ba, x.shape[0], x.dtype):
            d = self._direct = DirectPass(self.net, wa, ba, x.shape[0])
        return d

    def _norm_plan(self, direct: Optional[DirectPass]) -> "_NormPlan":
        """The step's norm reductions, built once per structure (arenas, pass)."""
        key = (*self._arena_list, direct)
        plan = self._plan
        if plan is None or plan.key != key:
            plan = self._plan = _NormPlan(key, self._arena_list, self._weight_arena, len(self._biases), self.n_layers, direct)
        return plan

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        b = self.config.batch_size
        if self._pos + b > len(self._perm):
            self._perm = torch.randperm(len(self._y), generator=self.batch_gen)
            self._pos = 0
        idx = self._perm[self._pos : self._pos + b]
        self._pos += b
        return self._x[idx], self._y[idx]

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A copy of the (inputs, targets) step ``step`` will train on; changes nothing.

        The batch order depends only on the batch generator and the permutation
        position (no command changes it), so it is replayed on copies of both.
        """
        if isinstance(step, bool) or not isinstance(step, int):
            raise ValueError(f"batch step must be an integer, not {step!r}")
        if step < self.step_index:
            raise ValueError(f"step {step} is in the past: this run is at step {self.step_index} (allowed: {self.step_index} or later)")
        b = self.config.batch_size
        gen = torch.Generator()
        gen.set_state(self.batch_gen.get_state())
        perm, pos = self._perm, self._pos
        idx = perm[:0]
        for _ in range(step - self.step_index + 1):
            if pos + b > len(perm):
                perm = torch.randperm(len(self._y), generator=gen)
                pos = 0
            idx = perm[pos : pos + b]
            pos += b
        return self._x[idx].clone(), self._y[idx].clone()

    @_one_thread
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
        self.optimizer.lr = self.lr_at(s)
        if hasattr(self.net, "forward_units"):
            return self._step_units(s, x, y, want_stats, t0)
        pred = self.predicted_gain(x) if (want_stats or self._pred_due) else None
        self._pred_due = False
        arenas = self._arena_list
        n_w = len(self._weights)
        direct = self._direct_pass(x)
        if direct is not None:
            # Hand-written pass (gradsim/models/mlp_backprop.py): writes every weight and bias
            # gradient into the arenas (no zeroing needed), dL/dz comes for free.
            for a in arenas:
                a.attach_grads()
            logits, loss = direct.run(self.net, x, y)
            hs = None
            self.last_pass = "direct"
        else:
            for a in arenas:  # one zero_() per kind; autograd then accumulates into the arena
                a.zero_grad()
            logits, zs, hs = self.net.forward_capture(x)
            loss = F.cross_entropy(logits, y)
            for z, hook in zip(zs, self._z_hooks):
                z.register_hook(hook)
            del zs
            loss.backward()
            self.last_pass = "autograd"

        with torch.no_grad():
            # Every norm measured before the update, written into one vector
            # (see _norm_plan): [dL/dparams..., dL/dz per layer, W per layer].
            plan = self._norm_plan(direct)
            vector_norm = torch.linalg.vector_norm
            for src, dst in plan.reductions:
                vector_norm(src, dim=1, out=dst)
            if direct is not None:
                vector_norm(direct.g_out, out=plan.gz_out)
            else:
                torch.stack(torch._foreach_norm(cast(list[torch.Tensor], self._gz)), out=plan.gz)  # every entry is set by the backward
            total = vector_norm(plan.grads)
            # One check for all of them: inf here is a float32 sum of squares that
            # overflowed (elements finite) or a non-finite gradient; repair() tells which.
            total64: Optional[torch.Tensor] = None
            if math.isinf(float(torch.maximum(total, plan.buf.amax()))):
                plan.repair(direct, self._gz)
                total64 = _norm64(plan.grads)
                total = total64.to(total.dtype)
            applied, clipped, applied_norms = self._clip(total, plan.grads, total64)
            # mean of the bool with dtype: the same float32 sum / N as .float().mean(), one op fewer
            acc = torch.eq(logits.argmax(dim=1), y).mean(dtype=logits.dtype)
            head = torch.stack([loss.detach(), acc, total, applied, clipped]).tolist()
            finite_grads = math.isfinite(head[2]) or (
                not math.isnan(head[2]) and all(bool(torch.isfinite(a.grad).all()) for a in arenas)
            )
            diverged = not (math.isfinite(head[0]) and finite_grads)
            if not diverged and math.isinf(head[3]) and self.clip_mode == "value":
                applied_norms = torch.cat([_norm64(a.grad[s : s + k * n].view(k, n)) for a in arenas for s, k, n in a.runs])
                head[3] = float(_norm64(applied_norms).to(total.dtype))
                applied_norms = applied_norms.to(total.dtype)

            if not diverged:
                upd = self._update_norms(applied_norms[:n_w])
            else:
                upd = torch.full((n_w,), float("nan"))
            L = self.n_layers
            wn = plan.weights
            norm_block = torch.stack([plan.gw, plan.gb, wn, upd, upd / wn, plan.gz], dim=1)
            layers = np.full((L, len(LAYER_METRICS)), np.nan, np.float32)
            layers[:, :_N_NORM] = norm_block.numpy()
            if not diverged and np.isinf(layers[:, 3]).any():
                self._repair_update_norms(layers, applied_norms[:n_w])
            if want_stats:
                if direct is not None:
                    stats = activation_stats(direct.h + [logits], self.net.activations, self._stats_ws, stacked=direct.H)
                else:
                    stats = activation_stats(cast(list[torch.Tensor], hs), self.net.activations, self._stats_ws)
                layers[:, _STATS_SLICE] = stats.numpy()
            if pred is not None:
                layers[:, _PRED_COL] = pred
        self.elapsed_s += time.perf_counter() - t0
        return self._record(s, head, diverged, layers, want_stats)

    def _record(self, s: int, head: list[float], diverged: bool, layers: np.ndarray, want_stats: bool) -> StepRecord:
        """Store step ``s``'s row and advance the run (both passes end here)."""
        # Held-out accuracy on the statistics' rows, after the update (eval mode: batch norm's
        # running statistics, no state changed, no random number drawn), outside elapsed_s.
        test_acc = self.evaluate() if want_stats and not diverged else math.nan
        scalars = np.array(
            [head[0], head[1], head[2], head[3], head[4], self.optimizer.lr, float(diverged), self.elapsed_s, test_acc],
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

    def _step_units(self, s: int, x: torch.Tensor, y: torch.Tensor, want_stats: bool, t0: float) -> StepRecord:
        """One step of a family whose network names a signal per unit (``forward_units``):
        autograd, one hook per signal, per-parameter norms summed into unit rows
        (gradsim/train/unit_rows.py). Clipping, divergence and the update as the MLP's."""
        rows = self._unit_rows
        if rows is None or not rows.matches(self._arena_list):
            rows = self._unit_rows = UnitRows(self.net, self._arena_list, self.units)
        for a in self._arena_list:
            a.zero_grad()
        self._gz = [None] * self.n_layers
        logits, signals, stats = cast(Any, self.net).forward_units(x, stats=want_stats)
        loss = F.cross_entropy(logits, y)
        for z, hook in zip(signals, self._z_hooks):
            if z is not None and z.requires_grad:
                z.register_hook(hook)
        del signals
        loss.backward()
        self.last_pass = "autograd"
        with torch.no_grad():
            pn = torch.cat([a.norms(a.grad) for a in self._arena_list])
            total64: Optional[torch.Tensor] = None
            if not bool(torch.isfinite(pn).all()):  # a float32 sum of squares that overflowed, or a non-finite gradient
                pn = torch.cat([_norm64(a.grad[s0 : s0 + k * n].view(k, n)) for a in self._arena_list for s0, k, n in a.runs])
                total64 = _norm64(pn)
                pn = pn.to(torch.float32)
            total = torch.linalg.vector_norm(pn) if total64 is None else total64.to(torch.float32)
            applied, clipped, applied_norms = self._clip(total, pn, total64)
            acc = torch.eq(logits.argmax(dim=1), y).mean(dtype=logits.dtype)
            head = torch.stack([loss.detach(), acc, total, applied, clipped]).tolist()
            finite_grads = math.isfinite(head[2]) or (
                not math.isnan(head[2]) and all(bool(torch.isfinite(a.grad).all()) for a in self._arena_list)
            )
            diverged = not (math.isfinite(head[0]) and finite_grads)
            n_w = len(self._weight_arena)
            wn = self._weight_arena.norms(self._weight_arena.data)
            upd = self._update_norms(applied_norms[:n_w]) if not diverged else torch.full((n_w,), float("nan"))
            gz = [float("nan") if g is None else float(_norm64(g.reshape(-1))) for g in self._gz]
            self._gz = [None] * self.n_layers
            layers = rows.rows(pn, wn, upd, gz, len(LAYER_METRICS))
            if want_stats and stats is not None:
                layers[:, _STATS_SLICE] = stats.numpy()
        self.elapsed_s += time.perf_counter() - t0
        return self._record(s, head, diverged, layers, want_stats)

    @_one_thread
    def predicted_gain(self, x: torch.Tensor) -> np.ndarray:
        """The theory's per-layer gain ||dL/dz_l|| / ||dL/dz_(l+1)|| for the current weights
        on batch ``x`` (NaN for the output layer and where the model does not apply).

        Only on recorded steps (step 0, events, every ``stats_every``): it costs
        about as much as a step. Changes nothing in the network.
        """
        if not isinstance(self.net, GradNet):  # the mean-field theory is the MLP's
            return np.full(self.n_layers, np.nan, np.float32)
        return predict(self.net, x=x).gain.astype(np.float32)

    def _clip(
        self, total: torch.Tensor, norms: torch.Tensor, total64: Optional[torch.Tensor] = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Clip the flat gradients in place; return (total norm after clipping,
        1.0 if anything was clipped, the per-parameter norms after clipping).

        ``total64``: the total in float64 when the float32 one overflowed (then
        the coefficient comes from it, so a finite gradient beyond float32's
        range is still scaled down rather than zeroed).
        """
        arenas = self._arena_list
        if self.clip_mode == "norm":
            base = total if total64 is None else total64
            coef = torch.clamp(self.clip_threshold / (base + 1e-6), max=1.0)
            if total64 is not None:
                coef = coef.to(total.dtype)
            for a in arenas:
                a.grad.mul_(coef)
            applied = total * coef if total64 is None else (total64 * coef.double()).to(total.dtype)
            return applied, (coef < 1.0).float(), norms * coef
        if self.clip_mode == "value":
            biggest = torch.stack([torch.linalg.vector_norm(a.grad, ord=float("inf")) for a in arenas]).max()
            for a in arenas:
                a.grad.clamp_(-self.clip_threshold, self.clip_threshold)
            after = torch.cat([a.norms(a.grad) for a in arenas])
            return torch.linalg.vector_norm(after), (biggest > self.clip_threshold).float(), after
        return total, total.new_zeros(()), norms

    def _update_norms(self, applied_w: torch.Tensor) -> torch.Tensor:
        """||W_after - W_before|| per layer, for the optimizer step just about to run.

        Plain SGD moves W by exactly lr * g and momentum SGD by lr * buffer, so
        their update norms come from norms already at hand (no copy of the
        weights). Adam's update has no such short form: there the flat weights
        are copied before the step and subtracted after (one copy, one
        subtraction, one reduction per run). Both agree with the measured
        parameter deltas to float32 rounding (tests/engine/test_physics.py).
        """
        opt = self.optimizer
        wa = self._weight_arena
        if opt.name == "sgd":
            opt.step()
            return applied_w * opt.lr
        if opt.name == "momentum":
            opt.step()
            return wa.norms(opt.buffer("weight")) * opt.lr  # type: ignore[attr-defined]
        self._before.copy_(wa.data)
        opt.step()
        self._before.sub_(wa.data)
        return wa.norms(self._before)

    def _repair_update_norms(self, layers: np.ndarray, applied_w: torch.Tensor) -> None:
        """Recompute in float64 the update norms (and ratios) that overflowed in float32."""
        opt = self.optimizer
        wa = self._weight_arena
        if opt.name == "sgd":
            upd = applied_w.double() * opt.lr
        elif opt.name == "momentum":
            upd = wa.norms(opt.buffer("weight").double()) * opt.lr  # type: ignore[attr-defined]
        else:
            upd = wa.norms(self._before.double())
        col_u, col_r, col_w = (_NORM_ORDER.index(m) for m in ("update_norm", "update_ratio", "weight_norm"))
        bad = np.isinf(layers[:, col_u])
        fixed = upd.numpy()
        layers[bad, col_u] = fixed[bad].astype(np.float32)
        layers[bad, col_r] = (fixed[bad] / layers[bad, col_w].astype(np.float64)).astype(np.float32)

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

    @_one_thread
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


