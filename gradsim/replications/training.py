"""Replications whose figure is training curves: he2015, glorot2010 (sigmoid part),
ioffe2015, pascanu2013 (a recurrent net). Each compares a "broken" and a "fixed" network from the
same seeds, and its verdict applies a criterion to the recorded training loss,
accuracy and activation statistics."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..config import RunConfig
from .framework import Outcome, Replication, Run, RunResult, fmt, smooth

#: Training steps per mode, as a fraction of the default mode's (seeds: framework.SEEDS).
STEPS = {"quick": 0.25, "default": 1.0, "full": 2.0}


def _steps(mode: str, default: int) -> int:
    return max(20, int(round(default * STEPS[mode])))


def backward_gain(r: RunResult) -> float:
    """Geometric-mean per-layer factor ||dL/dz_l|| / ||dL/dz_(l+1)|| over the hidden
    layers at step 0: how much of the back-propagated signal one layer keeps."""
    g = r.step0("act_grad_norm")[: r.session.config["depth"]]
    return float(np.exp(np.mean(np.log(g[:-1] / g[1:])))) if np.all(g > 0) else float("nan")


def _step0_axes(fig: Any, results: dict[str, RunResult], groups: dict[str, tuple[str, list[str]]]) -> Any:
    """Right panel: each run's ||dL/dz|| per layer at step 0, one colour per group {label: (colour, run keys)}."""
    ax = fig.add_subplot(1, 2, 2)
    for label, (color, keys) in groups.items():
        for j, k in enumerate(keys):
            g = results[k].step0("act_grad_norm")
            ax.semilogy(np.arange(1, g.size + 1), g, color=color, alpha=0.8, label=label if j == 0 else None)
    ax.set_xlabel("layer (1 = input side)")
    ax.set_ylabel("||dL/dz|| at step 0")
    ax.set_title("backprop signal at initialization", fontsize=9)
    ax.legend(fontsize=8)
    return ax


def _loss_axes(fig: Any, results: dict[str, RunResult], groups: dict[str, tuple[str, list[str]]], ylog: bool = False, metric: str = "loss") -> Any:
    ax = fig.add_subplot(1, 2, 1)
    for label, (color, keys) in groups.items():
        for j, k in enumerate(keys):
            r = results[k]
            y = r.session.column(metric).astype(float)
            x = r.session.steps
            ax.plot(x, smooth(y, max(1, y.size // 50)), color=color, alpha=0.85, lw=1.2, label=label if j == 0 else None)
    ax.set_xlabel("step")
    ax.set_ylabel(f"training {metric} (running mean)")
    if ylog:
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    return ax


def through_time(r: RunResult) -> np.ndarray:
    """A recurrent run's ||dL/dh_t|| for t = 1..T at step 0 (its time units, in order)."""
    rows = [i for i, u in enumerate(r.session.units) if u.kind == "time"]
    return r.step0("act_grad_norm")[rows]


def forward_gain(r: RunResult) -> float:
    """Geometric-mean per-layer factor std(h_(l+1)) / std(h_l) of the hidden layers'
    outputs at step 0: how much of the forward signal's scale one layer keeps."""
    a = r.step0("act_std")[: r.session.config["depth"]]
    return float(np.exp(np.mean(np.log(a[1:] / a[:-1])))) if np.all(a > 0) else float("nan")


class He2015(Replication):
    name = "he2015"
    title = "He et al. 2015: ReLU nets keep their signal's scale with He initialization, not with Xavier"
    citation = (
        "K. He, X. Zhang, S. Ren, J. Sun, \"Delving Deep into Rectifiers: Surpassing Human-Level Performance "
        "on ImageNet Classification\", ICCV 2015."
    )
    claim = (
        "(Sec. 2.2) with ReLU units, weights of variance 2/fan_in keep the scale of the signal the same in every "
        "layer, forward (the activations) and backward (the gradients), while Xavier's variance "
        "(2/(fan_in + fan_out) = 1/n for square layers) halves its square at every layer: a factor 1/sqrt(2) in "
        "its norm per layer, 2^-L/2 over L layers, which is why (Fig. 3) a 30-layer ReLU net with Xavier init does "
        "not learn."
    )
    setup = (
        "the paper derived this for conv nets and trained 30-layer ones on ImageNet; here 30-layer ReLU MLPs of "
        "width 64, no batch norm, on a batch of 128 'moons' inputs at step 0, Xavier-normal vs He-normal with the "
        "same seed in each repetition. Forward: std of each hidden layer's output; backward: ||dL/dz_l|| per hidden "
        "layer. Fig. 3's training outcome is not claimed here: in this MLP the Xavier net's training is seed-dependent "
        "(it learned on 6 of 29 seeds in an audit), so whether it 'does not learn' is a property of the paper's setup."
    )
    DEPTH = 30
    #: The theory's per-layer factor of the signal's norm: sqrt(fan * var_w / 2) for ReLU.
    GAIN = {"xavier_normal": math.sqrt(0.5), "he_normal": 1.0}
    #: Allowed relative deviation of the measured geometric-mean factor from GAIN.
    GAIN_TOL = 0.1

    def runs(self, mode: str, seed: int = 0) -> list[Run]:
        width = {"quick": 64, "default": 64, "full": 256}[mode]
        out = []
        for init in ("xavier_normal", "he_normal"):
            cfg = RunConfig(dataset="moons", depth=self.DEPTH, width=width, activation="relu", init=init, lr=0.01, steps=1, seed=seed, stats_every=1)
            out.append(Run(f"{init}-seed{seed}", cfg, tags={"init": init, "seed": seed}))
        return out

    def near(self, gain: float, init: str) -> bool:
        return math.isfinite(gain) and abs(gain / self.GAIN[init] - 1) <= self.GAIN_TOL

    def analyse(self, results: dict[str, RunResult], mode: str) -> Outcome:
        table, by = [], {}
        for k, r in results.items():
            init = r.run.tags["init"]
            g = r.step0("act_grad_norm")[: r.session.config["depth"]]
            a = r.step0("act_std")[: r.session.config["depth"]]
            row = {"run": k, "init": init, "seed": r.run.tags["seed"], "forward_gain_step0": forward_gain(r), "backward_gain_step0": backward_gain(r),
                   "gain_theory": self.GAIN[init], "act_std_last_over_first": float(a[-1] / a[0]),
                   "grad_first_over_last": float(g[0] / g[-1]), "theory_over_depth": self.GAIN[init] ** (g.size - 1)}
            table.append(row)
            by[init] = row
        xav, he = by["xavier_normal"], by["he_normal"]
        checks = {
            "he_keeps_forward_scale": self.near(he["forward_gain_step0"], "he_normal"),
            "he_keeps_backward_scale": self.near(he["backward_gain_step0"], "he_normal"),
            "xavier_forward_shrinks_by_sqrt_half": self.near(xav["forward_gain_step0"], "xavier_normal"),
            "xavier_backward_shrinks_by_sqrt_half": self.near(xav["backward_gain_step0"], "xavier_normal"),
        }
        measured = (
            f"per-layer factor at step 0, forward / backward: Xavier {fmt(xav['forward_gain_step0'])} / {fmt(xav['backward_gain_step0'])} "
            f"(theory {fmt(self.GAIN['xavier_normal'])}), He {fmt(he['forward_gain_step0'])} / {fmt(he['backward_gain_step0'])} (theory 1); "
            f"over the {self.DEPTH} layers the gradient at layer 1 is {fmt(xav['grad_first_over_last'])} x the top layer's with Xavier, "
            f"{fmt(he['grad_first_over_last'])} x with He."
        )
        criterion = (
            f"the geometric-mean per-layer factor over the hidden layers at step 0, forward std(h_(l+1)) / std(h_l) and "
            f"backward ||dL/dz_l|| / ||dL/dz_(l+1)||, is within {self.GAIN_TOL:.0%} of the theory's 1 for He and "
            "1/sqrt(2) = 0.707 for Xavier (four claims)."
        )
        return Outcome(all(checks.values()), measured, criterion, table, checks)

    def draw(self, fig: Any, results: dict[str, RunResult], outcome: Outcome) -> None:
        colors = {"xavier_normal": ("tab:red", "Xavier"), "he_normal": ("tab:blue", "He")}
        for i, (metric, label) in enumerate((("act_std", "std of layer output h_l"), ("act_grad_norm", "||dL/dz_l||"))):
            ax = fig.add_subplot(1, 2, i + 1)
            for r in results.values():
                init = r.run.tags["init"]
                y = r.step0(metric)[: r.session.config["depth"]]
                layers = np.arange(1, y.size + 1)
                color, name = colors[init]
                ax.semilogy(layers, y, "o-", ms=2.5, color=color, label=f"{name} (measured)")
                # The theory's line through the layer the signal enters from: forward from layer 1, backward from the top.
                ref = layers - 1 if metric == "act_std" else y.size - layers
                anchor = y[0] if metric == "act_std" else y[-1]
                ax.semilogy(layers, anchor * self.GAIN[init] ** ref, "--", lw=1, color=color, label=f"{name}: theory {fmt(self.GAIN[init])}^layers")
            ax.set_xlabel("hidden layer (1 = input side)")
            ax.set_ylabel(f"{label} at step 0")
            ax.set_title("forward signal" if metric == "act_std" else "backward signal", fontsize=9)
            ax.legend(fontsize=7)


class Ioffe2015(Replication):
    name = "ioffe2015"
    title = "Ioffe & Szegedy 2015: batch norm trains a deep sigmoid network"
    citation = (
        "S. Ioffe, C. Szegedy, \"Batch Normalization: Accelerating Deep Network Training by Reducing Internal "
        "Covariate Shift\", ICML 2015."
    )
    claim = (
        "with batch normalization a network with sigmoid nonlinearities trains, where the same network without it "
        "does not get off the ground (the saturating sigmoid blocks the gradient; the paper's Inception with sigmoid "
        "reached 69.8% accuracy with BN and stayed at chance level without)."
    )
    setup = (
        "the paper used Inception on ImageNet; here 20-layer sigmoid MLPs, width 64, Xavier-normal init, plain SGD "
        "(lr 0.05, batch 128) on 'moons', with and without batch norm, same seeds."
    )

    def runs(self, mode: str, seed: int = 0) -> list[Run]:
        steps = _steps(mode, 500)
        return [
            Run(f"bn-{'on' if bn else 'off'}-seed{seed}",
                RunConfig(dataset="moons", depth=20, width=64, activation="sigmoid", init="xavier_normal", batchnorm=bn, lr=0.05, steps=steps, seed=seed, stats_every=50),
                tags={"batchnorm": bn, "seed": seed})
            for bn in (False, True)
        ]

    def analyse(self, results: dict[str, RunResult], mode: str) -> Outcome:
        table = []
        for k, r in results.items():
            table.append({"run": k, "batchnorm": int(r.run.tags["batchnorm"]), "seed": r.run.tags["seed"], "loss_step0": float(r.loss()[0]),
                          "loss_end": r.tail_mean("loss"), "accuracy_end": r.tail_mean("accuracy"), "diverged_at": r.session.diverged_at})
        off = [t for t in table if not t["batchnorm"]]
        on = [t for t in table if t["batchnorm"]]
        without_fails = all(t["accuracy_end"] <= 0.6 for t in off)
        with_trains = all(t["accuracy_end"] >= 0.9 and t["diverged_at"] is None for t in on)
        measured = (
            f"final batch accuracy without batch norm: {', '.join(fmt(t['accuracy_end'], 3) for t in off)}; "
            f"with it: {', '.join(fmt(t['accuracy_end'], 3) for t in on)} (chance is 0.5)."
        )
        criterion = "mean training accuracy over the last 10% of steps <= 0.6 for the run without batch norm and >= 0.9 (no divergence) for the run with it."
        return Outcome(without_fails and with_trains, measured, criterion, table, {"without_fails": without_fails, "with_trains": with_trains})

    def draw(self, fig: Any, results: dict[str, RunResult], outcome: Outcome) -> None:
        off = [k for k, r in results.items() if not r.run.tags["batchnorm"]]
        on = [k for k, r in results.items() if r.run.tags["batchnorm"]]
        _loss_axes(fig, results, {"sigmoid, no batch norm": ("tab:red", off), "sigmoid + batch norm": ("tab:green", on)}, metric="accuracy")
        _step0_axes(fig, results, {"no batch norm": ("tab:red", off), "batch norm": ("tab:green", on)})


class Pascanu2013(Replication):
    name = "pascanu2013"
    title = "Pascanu et al. 2013: gradient-norm clipping tames exploding gradients"
    citation = "R. Pascanu, T. Mikolov, Y. Bengio, \"On the difficulty of training recurrent neural networks\", ICML 2013."
    claim = (
        "when gradients explode, a step of plain gradient descent jumps far out of the region it was in and training "
        "fails; rescaling the gradient whenever its norm exceeds a threshold keeps the steps bounded and training succeeds."
    )
    setup = (
        "the paper trained tanh RNNs with SGD on synthetic long-memory tasks (adding, multiplication, temporal order) "
        "for up to millions of sequences and added a regularizer that keeps the gradient flowing back in time; here a "
        "tanh RNN, width 32, W_hh ~ N(0, 2^2/32) (spectral radius about 2: the gradient grows back through time), "
        "recall-first with T = 20 (the first token's sign), plain SGD lr 1.0, batch 64, 400 steps, without clipping vs "
        "clip norm:1, same seeds; no regularizer."
    )

    def runs(self, mode: str, seed: int = 0) -> list[Run]:
        steps = _steps(mode, 400)
        out = []
        for clip in ("none", "norm"):
            cfg = RunConfig(model="rnn", dataset="recall-first", seq_len=20, depth=1, width=32, activation="tanh",
                            recurrent_init="normal:2", n_samples=1000, batch_size=64, optimizer="sgd", lr=1.0,
                            clip_mode=clip, clip_threshold=1.0, steps=steps, seed=seed, stats_every=50)
            out.append(Run(f"clip-{clip}-seed{seed}", cfg, tags={"clip": clip, "seed": seed}))
        return out

    def analyse(self, results: dict[str, RunResult], mode: str) -> Outcome:
        table = []
        for k, r in results.items():
            g = through_time(r)
            table.append({"run": k, "clip": r.run.tags["clip"], "seed": r.run.tags["seed"], "loss_step0": float(r.loss()[0]),
                          "loss_end": r.tail_mean("loss"), "accuracy_end": r.tail_mean("accuracy"),
                          "diverged_at": r.session.diverged_at, "grad_norm_total_step0": float(r.session.column("grad_norm_total")[0]),
                          "first_over_last_step0": float(g[0] / g[-1]),
                          "per_step_gain_step0": float((g[0] / g[-1]) ** (1.0 / (g.size - 1)))})
        none = [t for t in table if t["clip"] == "none"]
        clip = [t for t in table if t["clip"] == "norm"]
        exploding = all(t["first_over_last_step0"] > 10 for t in table)
        fails = all(t["diverged_at"] is not None or not (t["loss_end"] < t["loss_step0"]) for t in none)
        trains = all(t["diverged_at"] is None and t["accuracy_end"] >= 0.9 for t in clip)
        measured = (
            f"||dL/dh_1|| / ||dL/dh_T|| at step 0: {', '.join(fmt(t['first_over_last_step0']) for t in table)} "
            f"(per time step x{', x'.join(fmt(t['per_step_gain_step0']) for t in table)}); "
            f"without clipping: {', '.join('diverged at step %s' % t['diverged_at'] if t['diverged_at'] is not None else 'final loss ' + fmt(t['loss_end']) for t in none)}; "
            f"with clip norm:1: final batch accuracy {', '.join(fmt(t['accuracy_end'], 3) for t in clip)}, "
            f"{sum(t['diverged_at'] is not None for t in clip)} diverged."
        )
        criterion = (
            "the gradient explodes back through time at initialization (||dL/dh_1|| > 10 ||dL/dh_T|| in both runs); the unclipped run diverges "
            "(non-finite loss or gradient) or ends with a loss no lower than at step 0; the clipped run stays finite "
            "and reaches >= 0.9 mean training accuracy over its last 10% of steps."
        )
        return Outcome(exploding and fails and trains, measured, criterion, table, {"exploding": exploding, "unclipped_fails": fails, "clipped_trains": trains})

    def draw(self, fig: Any, results: dict[str, RunResult], outcome: Outcome) -> None:
        none = [k for k, r in results.items() if r.run.tags["clip"] == "none"]
        clip = [k for k, r in results.items() if r.run.tags["clip"] == "norm"]
        ax = fig.add_subplot(1, 2, 1)
        for keys, color, label in ((none, "tab:red", "no clipping"), (clip, "tab:blue", "clip norm:1")):
            for j, k in enumerate(keys):
                r = results[k]
                y = r.session.column("loss").astype(float)
                y = np.where(np.isfinite(y), y, np.nan)
                ax.semilogy(r.session.steps, y, color=color, alpha=0.8, lw=1, label=label if j == 0 else None)
                if r.session.diverged_at is not None:
                    ax.axvline(r.session.diverged_at, color=color, ls=":", lw=1)
        ax.set_xlabel("step (dotted: diverged)")
        ax.set_ylabel("training loss")
        ax.legend(fontsize=8)
        ax2 = fig.add_subplot(1, 2, 2)
        for keys, color, label in ((none, "tab:red", "no clipping"), (clip, "tab:blue", "clip norm:1")):
            for j, k in enumerate(keys):
                r = results[k]
                y = r.session.column("grad_norm_total").astype(float)
                ax2.semilogy(r.session.steps, np.where(np.isfinite(y), y, np.nan), color=color, alpha=0.8, lw=1, label=label if j == 0 else None)
        ax2.axhline(1.0, color="k", ls="--", lw=0.8)
        ax2.set_xlabel("step")
        ax2.set_ylabel("||gradient|| before clipping (dashed: threshold)")
        ax2.legend(fontsize=8)
