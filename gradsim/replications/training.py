"""Replications whose figure is training curves: he2015, glorot2010 (sigmoid part),
ioffe2015, pascanu2013. Each compares a "broken" and a "fixed" network from the
same seeds, and its verdict applies a criterion to the recorded training loss,
accuracy and activation statistics."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..config import RunConfig
from .framework import Outcome, Replication, Run, RunResult, fmt, smooth

SIZES = {  # (seeds, steps) per mode
    "quick": (1, 0.25),
    "default": (3, 1.0),
    "full": (5, 2.0),
}


def _seeds(mode: str) -> list[int]:
    return list(range(SIZES[mode][0]))


def _steps(mode: str, default: int) -> int:
    return max(20, int(round(default * SIZES[mode][1])))


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


class He2015(Replication):
    name = "he2015"
    title = "He et al. 2015, Fig. 3: a 30-layer ReLU net needs He initialization"
    citation = (
        "K. He, X. Zhang, S. Ren, J. Sun, \"Delving Deep into Rectifiers: Surpassing Human-Level Performance "
        "on ImageNet Classification\", ICCV 2015."
    )
    claim = (
        "a 30-layer ReLU network without batch norm does not learn at all with Xavier initialization (its error "
        "stays flat), while the same network with the initialization derived for ReLU (std sqrt(2/fan_in)) converges."
    )
    setup = (
        "the paper trained 30-layer convolutional nets on ImageNet; here 30-layer ReLU MLPs, width 64, no batch "
        "norm, plain SGD (lr 0.01, batch 128) on the 2-D 'moons' set, Xavier-normal vs He-normal, same seeds."
    )
    DEPTH = 30

    def runs(self, mode: str) -> list[Run]:
        steps = _steps(mode, 600)
        out = []
        for init in ("xavier_normal", "he_normal"):
            for seed in _seeds(mode):
                cfg = RunConfig(dataset="moons", depth=self.DEPTH, width=64, activation="relu", init=init, lr=0.01, steps=steps, seed=seed, stats_every=50)
                out.append(Run(f"{init}-seed{seed}", cfg, tags={"init": init, "seed": seed}))
        return out

    def analyse(self, results: dict[str, RunResult], mode: str) -> Outcome:
        table, xav, he = [], [], []
        for k, r in results.items():
            l0 = float(r.loss()[0])
            end = r.tail_mean("loss")
            rel = end / l0 if l0 > 0 else float("nan")
            row = {"run": k, "init": r.run.tags["init"], "seed": r.run.tags["seed"], "loss_step0": l0, "loss_end": end,
                   "loss_end_over_step0": rel, "accuracy_end": r.tail_mean("accuracy"), "diverged_at": r.session.diverged_at}
            table.append(row)
            (xav if r.run.tags["init"] == "xavier_normal" else he).append(row)
        stalls = all(math.isfinite(r["loss_end_over_step0"]) and r["loss_end_over_step0"] >= 0.95 for r in xav)
        trains = all(math.isfinite(r["loss_end_over_step0"]) and r["loss_end_over_step0"] <= 0.5 and r["diverged_at"] is None for r in he)
        measured = (
            f"final/initial training loss with Xavier: {', '.join(fmt(r['loss_end_over_step0']) for r in xav)}; "
            f"with He: {', '.join(fmt(r['loss_end_over_step0']) for r in he)} "
            f"(final batch accuracy Xavier {', '.join(fmt(r['accuracy_end'], 2) for r in xav)}, He {', '.join(fmt(r['accuracy_end'], 2) for r in he)})."
        )
        criterion = (
            "every Xavier run stalls (mean training loss over the last 10% of steps >= 0.95 x its step-0 loss) and "
            "every He run trains (<= 0.5 x its step-0 loss, no divergence)."
        )
        return Outcome(stalls and trains, measured, criterion, table, {"xavier_stalls": stalls, "he_trains": trains})

    def draw(self, fig: Any, results: dict[str, RunResult], outcome: Outcome) -> None:
        keys = {i: [k for k, r in results.items() if r.run.tags["init"] == i] for i in ("xavier_normal", "he_normal")}
        _loss_axes(fig, results, {"Xavier (stalls in the paper)": ("tab:red", keys["xavier_normal"]), "He (converges)": ("tab:blue", keys["he_normal"])})
        _step0_axes(fig, results, {i: (c, keys[i]) for i, c in (("xavier_normal", "tab:red"), ("he_normal", "tab:blue"))})


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

    def runs(self, mode: str) -> list[Run]:
        steps = _steps(mode, 500)
        return [
            Run(f"bn-{'on' if bn else 'off'}-seed{seed}",
                RunConfig(dataset="moons", depth=20, width=64, activation="sigmoid", init="xavier_normal", batchnorm=bn, lr=0.05, steps=steps, seed=seed, stats_every=50),
                tags={"batchnorm": bn, "seed": seed})
            for bn in (False, True) for seed in _seeds(mode)
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
        criterion = "mean training accuracy over the last 10% of steps <= 0.6 for every run without batch norm and >= 0.9 for every run with it."
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
        "the paper studied recurrent networks (the exploding gradient of an RNN unrolled in time); here a deep MLP "
        "in the exploding regime stands in for the unrolled RNN: 20 ReLU layers, width 64, weights N(0, 0.25^2) "
        "(per-layer gain about sqrt(2)), plain SGD lr 0.01 on 'moons', without clipping vs clip norm:1, same seeds."
    )

    def runs(self, mode: str) -> list[Run]:
        steps = _steps(mode, 400)
        out = []
        for clip in ("none", "norm"):
            for seed in _seeds(mode):
                cfg = RunConfig(dataset="moons", depth=20, width=64, activation="relu", init="normal", init_std=0.25, clip_mode=clip, clip_threshold=1.0,
                                lr=0.01, steps=steps, seed=seed, stats_every=50)
                out.append(Run(f"clip-{clip}-seed{seed}", cfg, tags={"clip": clip, "seed": seed}))
        return out

    def analyse(self, results: dict[str, RunResult], mode: str) -> Outcome:
        table = []
        for k, r in results.items():
            gz = r.step0("act_grad_norm")
            gain = float(np.exp(np.mean(np.log(gz[:-2] / gz[1:-1])))) if np.all(gz[:-1] > 0) else float("nan")
            table.append({"run": k, "clip": r.run.tags["clip"], "seed": r.run.tags["seed"], "loss_step0": float(r.loss()[0]),
                          "loss_end": r.tail_mean("loss"), "accuracy_end": r.tail_mean("accuracy"),
                          "diverged_at": r.session.diverged_at, "grad_norm_total_step0": float(r.session.column("grad_norm_total")[0]),
                          "per_layer_gain_step0": gain})
        none = [t for t in table if t["clip"] == "none"]
        clip = [t for t in table if t["clip"] == "norm"]
        exploding = all(t["per_layer_gain_step0"] > 1.2 for t in table)
        fails = all(t["diverged_at"] is not None or not (t["loss_end"] < t["loss_step0"]) for t in none)
        trains = all(t["diverged_at"] is None and t["accuracy_end"] >= 0.9 for t in clip)
        measured = (
            f"geometric-mean per-layer gain of ||dL/dz|| at step 0: {', '.join(fmt(t['per_layer_gain_step0']) for t in table)}; "
            f"without clipping: {', '.join('diverged at step %s' % t['diverged_at'] if t['diverged_at'] is not None else 'final loss ' + fmt(t['loss_end']) for t in none)}; "
            f"with clip norm:1: final batch accuracy {', '.join(fmt(t['accuracy_end'], 3) for t in clip)}, "
            f"{sum(t['diverged_at'] is not None for t in clip)} diverged."
        )
        criterion = (
            "the network explodes at initialization (per-layer gain > 1.2 in every run); every unclipped run diverges "
            "(non-finite loss or gradient) or ends with a loss no lower than at step 0; every clipped run stays finite "
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
