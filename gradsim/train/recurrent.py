"""The trainer of the recurrent families (rnn, lstm, gru): one instrumented step at a time.

It keeps the Trainer's public surface (step, run, apply, schedule, batch,
state/load_state, evaluate) and its commands, clipping and optimizers; what
differs is the network (gradsim.models.rnn), the data (sequence tasks) and
the rows a step writes, laid out as the family's units:

- one ``time`` row per step t of the top layer (t = 1 at the input end):
  ``act_grad_norm`` = ||dL/dh_t||, the total gradient reaching h_t through the
  head and the recurrence (Frobenius over the batch), and on sampled steps the
  statistics of h_t: ``act_mean``, ``act_std``, ``act_saturation`` (vanilla
  tanh: |h| > 0.97; LSTM: the forget gate, GRU: the update gate, below 0.03 or
  above 0.97) and ``act_dead`` (vanilla relu: units at 0 for the whole batch);
- one ``param`` row per parameter group (input k, recurrent k, head):
  ``grad_norm`` (weight), ``bias_grad_norm``, ``weight_norm``, ``update_norm``
  (||W_after - W_before||, measured) and ``update_ratio``.
"""
from __future__ import annotations

import copy
import math
import time
from collections import defaultdict
from typing import Any, Iterable, Optional, Sequence, cast

import numpy as np
import torch
import torch.nn.functional as F

from ..activations import REGISTRY
from ..arena import Arena
from ..commands import Command, Scheduled
from ..config import RunConfig
from ..data.sequences import ADDING_TOLERANCE, SequenceDataset, make_sequences
from ..metrics import LAYER_INDEX, LAYER_METRICS
from ..models.family import check_units, family_for
from ..models import rnn_backprop
from ..models.rnn import RecurrentNet
from ..session.store import Session, StepRecord
from ..theory import rnn_mean_field  # noqa: F401  (registers the vanilla RNN's theory with its family)
from .optimizers import build_optimizer
from ..config import RECURRENT_MODELS
from .trainer import Trainer, _norm64, _one_thread, register_trainer

_COL = LAYER_INDEX


class RecurrentTrainer(Trainer):
    """Owns the recurrent network, optimizer, sequence data and session of one run.

    ``Trainer(config)`` with a recurrent ``config.model`` builds one of these.
    """

    @_one_thread
    def __init__(self, config: RunConfig, schedule: Iterable[Scheduled] = (), session: Optional[Session] = None, label: str = "") -> None:
        config.validate()
        if not config.recurrent:
            raise ValueError(f"model = {config.model!r} is not recurrent; Trainer builds it")
        self.config = config
        self.data: SequenceDataset = make_sequences(config.dataset, config.n_samples, config.seq_len, config.seed, config.test_fraction)  # type: ignore[assignment]
        self.init_gen = torch.Generator().manual_seed(config.seed)
        self.batch_gen = torch.Generator().manual_seed(config.seed + 1)
        self.family = family_for(config)
        self.net = self.family.build(config)
        self.rnet: RecurrentNet = cast(RecurrentNet, self.net)  # the same object, typed as what it is
        #: The scheme W_hh was last drawn with (the config's, until a recurrent_init command).
        self.recurrent_init = config.recurrent_init
        self.rnet.reinit(config.init, self.init_gen, config.init_std, config.init_scale, config.bias_std, config.recurrent_init, config.forget_bias)
        self.net.train()
        self.regression = self.data.regression
        self.lr = float(config.lr)
        self.optimizer_name = config.optimizer
        self.clip_mode = config.clip_mode
        self.clip_threshold = float(config.clip_threshold)
        self.arenas = {}
        self._refresh_params()
        self.optimizer = build_optimizer(self.optimizer_name, self.arenas, self.lr, config.momentum)
        #: False forces the autograd pass through the unrolled cells (tests compare the two).
        self.use_direct = True
        self.last_pass = ""
        #: The hand-written pass's buffers, kept from step to step (its results are views into them).
        self._workspace = rnn_backprop.Workspace()
        self._x = torch.from_numpy(self.data.x_train)
        self._y = torch.from_numpy(self.data.y_train)
        self._perm = torch.randperm(len(self._y), generator=self.batch_gen)
        self._pos = 0
        self.units = self.family.units(self.net)
        self.seq_len = config.seq_len
        if session is None:
            session = Session(len(self.units), config.to_dict(), config.max_memory_mb, units=self.units)
        else:
            session.units = check_units(self.units, session.n_layers)
        self.session = session
        self.step_index = 0
        self._pred_due = True
        self.diverged_at: Optional[int] = None
        self.elapsed_s = 0.0
        self._schedule: dict[int, list[Command]] = defaultdict(list)
        for item in schedule:
            self.schedule(item)
        self.session.add_event(0, "start", label or "config")

    @property
    def n_layers(self) -> int:
        """Rows of layers.csv: the time units, then the parameter groups."""
        return len(self.units)

    def _refresh_params(self) -> None:
        self.arenas = {kind: Arena(params) for kind, params in self.rnet.param_kinds().items()}
        self._arena_list = list(self.arenas.values())
        self._weight_arena = self.arenas["weight"]
        self._groups = self.rnet.param_groups()
        self._before_bufs = [torch.empty_like(a.data) for a in self._arena_list]

    # ------------------------------------------------------------ commands
    def set_recurrent_init(self, scheme: str) -> None:
        """Re-draw every W_hh now from the run's init generator; only their optimizer state is dropped."""
        self.rnet.reinit_recurrent(scheme, self.init_gen)
        self.optimizer.reset(("recurrent",))
        self.recurrent_init = scheme

    def set_forget_bias(self, value: float) -> None:
        """Set the LSTM's forget-gate biases now (their optimizer state stays: the same parameters)."""
        self.rnet.set_forget_bias(value)

    # ------------------------------------------------------------ state
    _STATE_KEYS = Trainer._STATE_KEYS

    def state(self, grads: bool = False) -> dict[str, Any]:
        """Everything the run's future depends on, as copies (see Trainer.state)."""
        net = self.net
        out: dict[str, Any] = {
            "structure": {"model": self.config.model, "depth": net.depth, "width": net.width, "recurrent_init": self.recurrent_init},
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
        }
        if grads:
            out["grads"] = {kind: a.grad.clone() for kind, a in self.arenas.items()}
        return out

    def _check_state(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise ValueError(f"a trainer state is a dict, not {type(state).__name__}")
        missing = [k for k in self._STATE_KEYS if k not in state]
        if missing:
            raise ValueError(f"the state lacks {', '.join(missing)}: not a Trainer.state()")
        st = state["structure"]
        mine = {"model": self.config.model, "depth": self.net.depth, "width": self.net.width}
        theirs = {k: st.get(k) for k in mine} if isinstance(st, dict) else None
        if theirs != mine:
            raise ValueError(f"the state is of a {theirs} network, this run's is {mine}")
        perm = state["perm"]
        if not isinstance(perm, torch.Tensor) or perm.dim() != 1 or len(perm) != len(self._y):
            raise ValueError(f"the state's batch order does not cover this run's {len(self._y)} training sequences")
        if state["data"] != self._data_tag():
            raise ValueError("the state was trained on other data than this run: a run of another dataset or seed")
        own = self.net.state_dict()
        for key, value in state["net"].items():
            if key not in own or not isinstance(value, torch.Tensor) or value.shape != own[key].shape:
                raise ValueError(f"the state's {key} does not fit this run's network")

    def _apply_state(self, state: dict[str, Any]) -> None:
        net = self.net
        with torch.no_grad():
            net.load_state_dict({k: v.clone() for k, v in state["net"].items()})
        net.train(state["training"])
        self.recurrent_init = state["structure"]["recurrent_init"]
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
        for kind, g in state.get("grads", {}).items():
            arena = self.arenas.get(kind)
            if arena is not None and arena.grad.shape == g.shape:
                arena.grad.copy_(g)
                arena.attach_grads()

    # ------------------------------------------------------------ stepping
    def _loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(out, y) if self.regression else F.cross_entropy(out, y)

    def _accuracy(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.regression:
            return torch.lt(torch.abs(out - y), ADDING_TOLERANCE).mean(dtype=out.dtype)
        return torch.eq(out.argmax(dim=1), y).mean(dtype=out.dtype)

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
        pred = want_stats or self._pred_due
        self._pred_due = False
        arenas = self._arena_list
        if self.use_direct:
            # Hand-written backward through time (gradsim/models/rnn_backprop.py): writes every
            # gradient into the arenas, and dL/dh_t is its own recursion variable.
            for a in arenas:
                a.attach_grads()
            direct = rnn_backprop.run(self.rnet, x, y, self.regression, self._workspace)
            out, loss, H, gate = direct.out, direct.loss, direct.H, direct.gate
            dH: Optional[torch.Tensor] = direct.dH
            T = H.shape[0]
            self.last_pass = "direct"
        else:
            for a in arenas:
                a.zero_grad()
            out, hs, gates = self.net.forward_capture(x)
            loss = self._loss(out, y)
            loss.backward()
            H, gate, dH = torch.stack([h.detach() for h in hs]), (torch.stack(gates) if gates else None), None
            T = len(hs)
            self.last_pass = "autograd"
        G = len(self._groups)
        with torch.no_grad():
            vector_norm = torch.linalg.vector_norm
            grads = torch.cat([a.norms(a.grad) for a in arenas])  # every parameter's ||dL/dp||, arena order
            total = vector_norm(grads)
            g_src: Sequence[Optional[torch.Tensor]]
            if dH is not None:
                gh = torch.linalg.vector_norm(dH, dim=(1, 2))
                g_src = cast(Sequence[Optional[torch.Tensor]], dH)  # indexed only where a norm overflowed
            else:
                g_src = [h.grad for h in hs]
                gh = torch.stack(torch._foreach_norm([g if g is not None else torch.zeros_like(h) for g, h in zip(g_src, hs)]))
            total64: Optional[torch.Tensor] = None
            if math.isinf(float(torch.maximum(total, grads.amax()))):  # a float32 sum of squares overflowed
                grads = torch.cat([a.norms(a.grad.double()) for a in arenas])
                total64 = _norm64(grads)
                grads = grads.to(total.dtype)
                total = total64.to(total.dtype)
            group_norms = self._group_norms()  # before clipping: the gradient the step measured
            # The prediction is for the weights that produced this row's gradients, so it is taken
            # before the update (as the MLP trainer does); after it, a large first step (G = 1.5)
            # moved W_hh enough to shift the predicted gain by up to 20 %.
            pred_row = self.predicted_gain(x) if pred else None
            applied, clipped, _ = self._clip(total, grads, total64)
            acc = self._accuracy(out, y)
            head = torch.stack([loss.detach(), acc, total, applied, clipped]).tolist()
            finite_grads = math.isfinite(head[2]) or (
                not math.isnan(head[2]) and all(bool(torch.isfinite(a.grad).all()) for a in arenas)
            )
            diverged = not (math.isfinite(head[0]) and finite_grads)
            layers = np.full((T + G, len(LAYER_METRICS)), np.nan, np.float32)
            layers[:T, _COL["act_grad_norm"]] = self._finite64(gh, g_src).numpy()
            p = layers[T:]
            p[:, _COL["grad_norm"]], p[:, _COL["bias_grad_norm"]], p[:, _COL["weight_norm"]] = group_norms
            if not diverged:
                upd = self._step_and_measure()
                p[:, _COL["update_norm"]] = upd
                p[:, _COL["update_ratio"]] = (upd.astype(np.float64) / p[:, _COL["weight_norm"]].astype(np.float64)).astype(np.float32)
            if want_stats:
                layers[:T, _COL["act_mean"] : _COL["act_dead"] + 1] = self._time_stats(H, gate)
            if pred_row is not None:
                layers[:, _COL["pred_gain"]] = pred_row
        self.elapsed_s += time.perf_counter() - t0
        # Held-out accuracy on the statistics' rows, after the update, as the MLP trainer records it.
        test_acc = self.evaluate() if want_stats and not diverged else math.nan
        scalars = np.array([head[0], head[1], head[2], head[3], head[4], self.lr, float(diverged), self.elapsed_s, test_acc],
                           np.float64)
        record = StepRecord(s, scalars, layers, want_stats)
        self.session.append(record)
        self.step_index = s + 1
        self.session.steps_run = self.step_index
        if diverged:
            self.diverged_at = s
            what = "loss" if not math.isfinite(head[0]) else "gradient norm"
            self.session.add_event(s, "diverged", f"non-finite {what} ({head[0] if what == 'loss' else head[2]})")
        return record

    @staticmethod
    def _finite64(norms: torch.Tensor, srcs: Sequence[Optional[torch.Tensor]]) -> torch.Tensor:
        """``norms`` with every inf entry recomputed in float64 (float32 squares overflow past ~1.8e19)."""
        bad = torch.isinf(norms).nonzero().flatten().tolist()
        for i in bad:
            src = srcs[i]
            if src is not None:
                norms[i] = _norm64(src.reshape(-1)).to(norms.dtype)
        return norms

    def _group_norms(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(||dL/dW||, ||dL/db||, ||W||) of each parameter group, float64 where float32 overflowed."""
        ws = [w for _, w, _ in self._groups]
        bs = [b for _, _, b in self._groups]
        out = []
        for tensors in ([cast(torch.Tensor, w.grad) for w in ws], [cast(torch.Tensor, b.grad) for b in bs], [w.detach() for w in ws]):
            n = torch.stack(torch._foreach_norm(tensors))
            out.append(self._finite64(n, list(tensors)).numpy())
        return out[0], out[1], out[2]

    def _step_and_measure(self) -> np.ndarray:
        """Run the optimizer step; return ||W_after - W_before|| of each group's weight, measured."""
        for buf, a in zip(self._before_bufs, self._arena_list):
            buf.copy_(a.data)
        self.optimizer.step()
        for buf, a in zip(self._before_bufs, self._arena_list):
            buf.sub_(a.data)
        diffs = []
        for _, w, _ in self._groups:
            for buf, a in zip(self._before_bufs, self._arena_list):
                if w in a:
                    diffs.append(buf[a.slice_of(w)])
                    break
        n = torch.stack(torch._foreach_norm(diffs))
        return self._finite64(n, list(diffs)).numpy()

    def _time_stats(self, H: torch.Tensor, gate: Optional[torch.Tensor]) -> np.ndarray:
        """(T, 4): act_mean, act_std, act_saturation, act_dead of each h_t (see the module docstring).

        ``H`` is the top layer's h_t, (T, batch, width); ``gate`` the LSTM's forget or
        the GRU's update gate, the same shape (None for a vanilla RNN)."""
        T = H.shape[0]
        flat = H.reshape(T, -1)
        m = flat.shape[1]
        mean = flat.sum(dim=1) / m
        std = torch.linalg.vector_norm(flat - mean[:, None], dim=1) / math.sqrt(max(m - 1, 1))
        zeros = torch.zeros_like(mean)
        net = self.rnet
        if net.cell == "rnn":
            act = REGISTRY[net.nonlinearity]
            sat = act.saturated(flat).to(mean.dtype).mean(dim=1) if act.saturated_outside is not None else zeros
            dead = (H.amax(dim=1) == 0).to(mean.dtype).mean(dim=1) if act.can_die else zeros
        else:
            assert gate is not None
            sat = REGISTRY["sigmoid"].saturated(gate.reshape(T, -1)).to(mean.dtype).mean(dim=1)
            dead = zeros
        return torch.stack([mean, std, sat, dead], dim=1).numpy()

    @_one_thread
    def predicted_gain(self, x: torch.Tensor) -> np.ndarray:
        """The theory's gain ||dL/dh_t|| / ||dL/dh_(t+1)|| per unit for the current weights on
        batch ``x`` (gradsim/theory/rnn_mean_field.py); NaN for the last step, the parameter
        units, and everywhere for a family without a theory (LSTM, GRU). Changes nothing."""
        hook = self.family.theory()
        if hook is None:
            return np.full(len(self.units), np.nan, np.float32)
        return np.asarray(hook(self.net, x), np.float32)

    @_one_thread
    @torch.no_grad()
    def evaluate(self) -> float:
        """Accuracy on the held-out split (NaN when it is empty); regression: |error| < 0.04."""
        if len(self.data.y_test) == 0:
            return float("nan")
        was_training = self.net.training
        self.net.eval()
        try:
            out = self.net(torch.from_numpy(self.data.x_test))
            return float(self._accuracy(out, torch.from_numpy(self.data.y_test)))
        finally:
            self.net.train(was_training)


register_trainer(RECURRENT_MODELS, RecurrentTrainer)


def recurrent_summary(trainer: RecurrentTrainer) -> str:
    """One paragraph a student can read: final loss/accuracy and the signal through time."""
    from ..models.rnn import describe

    def fmt(x: float) -> str:
        return f"{x:.3g}" if math.isfinite(x) else str(x)

    s, cfg = trainer.session, trainer.config
    parts = [f"Ran {s.steps_run} steps of a {cfg.depth}-layer {describe(trainer.net)} (width {cfg.width}, W_hh {cfg.recurrent_init}) on {cfg.dataset}, seq_len {cfg.seq_len}."]
    last, first = s.latest(), s.first()
    if last is not None:
        parts.append(
            f"Final loss {fmt(last.scalar('loss'))}, batch accuracy {fmt(last.scalar('accuracy'))}, "
            f"test accuracy {fmt(s.meta.get('test_accuracy', float('nan')))}."
        )
    if first is not None:
        g = first.layer_metric("act_grad_norm")[: cfg.seq_len]
        if g[-1] > 0 and math.isfinite(g[0] / g[-1]):
            ratio = float(g[0] / g[-1])
            kind = "vanishing through time" if ratio < 0.1 else "exploding through time" if ratio > 10 else "healthy"
            parts.append(f"At step 0 ||dL/dh_1|| / ||dL/dh_T|| = {ratio:.3g}: {kind}.")
    parts.append(f"Diverged at step {trainer.diverged_at} (non-finite loss or gradient)." if trainer.diverged_at is not None else "No divergence.")
    return " ".join(parts)
