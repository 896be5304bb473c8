"""Replications about the Jacobian's singular values at initialization:
saxe2014 (deep linear nets: orthogonal init is an exact isometry, and with it
learning time does not grow with depth) and pennington2017 (the spread of the
singular values grows with depth for Gaussian weights and for ReLU, not for
orthogonal tanh near criticality)."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..config import RunConfig
from .framework import Outcome, Replication, Run, RunResult, fmt, smooth

#: Training inputs the Jacobian is taken at (the first of the training split).
JAC_SAMPLES = 8


def jacobian_probe(trainer: Any) -> np.ndarray:
    """Singular values (samples x width) of d h_depth / d h_1 of the freshly initialised
    network, at the first JAC_SAMPLES training inputs (gradsim.theory.jacobian.jacobian_spectrum)."""
    from ..theory.jacobian import jacobian_spectrum

    return np.asarray(jacobian_spectrum(trainer.net, trainer.probe_inputs(JAC_SAMPLES), JAC_SAMPLES), np.float64)


def spread(sv: np.ndarray) -> float:
    """Normalised variance of the squared singular values (the eigenvalues of J J^T),
    var(lambda) / mean(lambda)^2, of each input's Jacobian (a row of ``sv``), averaged
    over the inputs. Per input, because the theory is about one input's Jacobian:
    pooling the inputs would add the spread of their overall scales (how far each
    input's mean lambda is from the others') to the spread within each spectrum.
    0 for an exact isometry; finite when some singular values are 0 (dead ReLUs);
    NaN when an input's Jacobian is all 0."""
    lam = np.atleast_2d(np.asarray(sv, np.float64)) ** 2
    m = lam.mean(axis=1)
    if np.any(m <= 0):
        return float("nan")
    return float(np.mean(lam.var(axis=1) / (m * m)))


class Saxe2014(Replication):
    name = "saxe2014"
    title = "Saxe et al. 2014: orthogonal init makes deep linear nets isometric and depth-independent"
    citation = (
        "A. M. Saxe, J. L. McClelland, S. Ganguli, \"Exact solutions to the nonlinear dynamics of learning in deep "
        "linear neural networks\", ICLR 2014."
    )
    claim = (
        "in a deep linear network, orthogonal initial weights make every singular value of the input-output Jacobian "
        "exactly 1 (dynamical isometry), and with a learning rate scaled by 1/depth the time to learn does not grow "
        "with depth; with scaled Gaussian weights (variance 1/n) the singular values spread out and learning slows "
        "down as the network gets deeper."
    )
    setup = (
        "the paper trained deep linear nets on MNIST; here linear MLPs of width 64 on the 8x8 digits (64 inputs, "
        "10 classes, softmax cross-entropy instead of squared error), orthogonal vs N(0, 1/64) weights, plain SGD "
        "with lr 0.1/(number of weight layers), batch 128; the Jacobian is the hidden-to-hidden map d h_depth / d h_1 "
        "at step 0; learning time = first step at which the 5-step mean of the training loss is <= 0.5."
    )
    TARGET = 0.5

    def runs(self, mode: str, seed: int = 0) -> list[Run]:
        depths = {"quick": [2, 32], "default": [2, 4, 8, 16, 32], "full": [2, 4, 8, 16, 32, 64]}[mode]
        steps = {"quick": 150, "default": 300, "full": 400}[mode]
        out = []
        for init in ("orthogonal", "normal"):
            for depth in depths:
                cfg = RunConfig(dataset="digits", depth=depth, width=64, activation="linear", init=init, init_std=0.125,
                                lr=0.1 / (depth + 1), steps=steps, seed=seed, stats_every=50)
                out.append(Run(f"{init}-depth{depth}-seed{seed}", cfg, probe="jacobian", tags={"init": init, "depth": depth, "seed": seed}))
        return out

    def probe(self, kind: str, trainer: Any) -> Any:
        return jacobian_probe(trainer)

    @classmethod
    def learning_time(cls, loss: np.ndarray) -> float:
        sm = smooth(np.asarray(loss, np.float64), 5)
        hit = np.flatnonzero(sm <= cls.TARGET)
        return float(hit[0]) if hit.size else float("inf")

    def analyse(self, results: dict[str, RunResult], mode: str) -> Outcome:
        table = []
        for k, r in results.items():
            sv = r.probe
            table.append({"run": k, "init": r.run.tags["init"], "depth": r.run.tags["depth"], "seed": r.run.tags["seed"],
                          "sv_min": float(sv.min()), "sv_max": float(sv.max()), "sv_max_abs_dev_from_1": float(np.abs(sv - 1).max()),
                          "sv_spread": spread(sv), "learning_time_steps": self.learning_time(r.loss())})

        def per_depth(init: str, col: str) -> dict[int, float]:
            depths = sorted({t["depth"] for t in table})
            return {d: float(np.mean([t[col] for t in table if t["init"] == init and t["depth"] == d])) for d in depths}

        t_orth, t_gauss = per_depth("orthogonal", "learning_time_steps"), per_depth("normal", "learning_time_steps")
        s_gauss = per_depth("normal", "sv_spread")
        d0, d1 = min(t_orth), max(t_orth)
        isometry = all(t["sv_max_abs_dev_from_1"] <= 1e-3 for t in table if t["init"] == "orthogonal")
        gauss_spreads = s_gauss[d1] >= 5 * s_gauss[d0] and s_gauss[d1] >= 1.0
        orth_flat = math.isfinite(t_orth[d1]) and t_orth[d1] <= 1.5 * t_orth[d0]
        gauss_slows = t_gauss[d1] >= 2 * t_gauss[d0]
        measured = (
            f"orthogonal: largest |singular value - 1| {fmt(max(t['sv_max_abs_dev_from_1'] for t in table if t['init'] == 'orthogonal'))}; "
            f"Gaussian: spread var(s^2)/mean(s^2)^2 {', '.join(f'{fmt(v)} (depth {d})' for d, v in s_gauss.items())}; "
            f"learning time (steps) orthogonal {', '.join(f'{fmt(v)} (depth {d})' for d, v in t_orth.items())}; "
            f"Gaussian {', '.join(f'{fmt(v)} (depth {d})' for d, v in t_gauss.items())}."
        )
        criterion = (
            f"orthogonal: every singular value within 1e-3 of 1 at every depth, and learning time at depth {d1} <= 1.5 x "
            f"that at depth {d0}; Gaussian: spread at depth {d1} >= 5 x that at depth {d0} (and >= 1), and learning time "
            f"at depth {d1} >= 2 x that at depth {d0}."
        )
        checks = {"orthogonal_isometry": isometry, "gaussian_spreads": gauss_spreads, "orthogonal_depth_independent": orth_flat, "gaussian_slows": gauss_slows}
        return Outcome(all(checks.values()), measured, criterion, table, checks)

    def draw(self, fig: Any, results: dict[str, RunResult], outcome: Outcome) -> None:
        ax = fig.add_subplot(1, 2, 1)
        depths = sorted({t["depth"] for t in outcome.table})
        cmap = {d: c for d, c in zip(depths, ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"])}
        for r in results.values():
            sv = np.sort(r.probe.ravel())
            ls = "-" if r.run.tags["init"] == "orthogonal" else "--"
            ax.semilogy(np.linspace(0, 1, sv.size), sv, ls, color=cmap[r.run.tags["depth"]], lw=1.2,
                        label=f"{'orth' if ls == '-' else 'Gauss'} depth {r.run.tags['depth']}")
        ax.set_xlabel("quantile")
        ax.set_ylabel("singular value of d h_depth / d h_1")
        ax.set_title("step 0 (solid: orthogonal, all = 1)", fontsize=9)
        ax.legend(fontsize=6, ncol=2)
        ax2 = fig.add_subplot(1, 2, 2)
        for init, color, label in (("orthogonal", "tab:blue", "orthogonal"), ("normal", "tab:red", "scaled Gaussian")):
            ts = [np.mean([t["learning_time_steps"] for t in outcome.table if t["init"] == init and t["depth"] == d]) for d in depths]
            ax2.plot(depths, ts, "o-", color=color, label=label)
        ax2.set_xscale("log", base=2)
        ax2.set_xlabel("depth (hidden layers)")
        ax2.set_ylabel(f"steps until training loss <= {self.TARGET}")
        ax2.set_title("learning time, lr = 0.1 / weight layers", fontsize=9)
        ax2.legend(fontsize=8)


class Pennington2017(Replication):
    name = "pennington2017"
    title = "Pennington et al. 2017: only orthogonal tanh near criticality keeps the Jacobian isometric"
    citation = (
        "J. Pennington, S. S. Schoenholz, S. Ganguli, \"Resurrecting the sigmoid in deep learning through dynamical "
        "isometry: theory and practice\", NeurIPS 2017."
    )
    claim = (
        "at criticality (mean squared singular value 1) the spread of the input-output Jacobian's singular values still "
        "grows with depth for Gaussian weights (tanh or any activation) and for ReLU networks, while orthogonal weights "
        "with tanh near the critical point keep the spectrum narrow at large depth (dynamical isometry)."
    )
    setup = (
        "the paper's theory is for wide MLPs and its experiments trained on CIFAR-10; here MLPs of width 128 on the 2-D "
        "'spiral' inputs at step 0: tanh with N(0, 1.05/128) weights, ReLU with He-normal, tanh with orthogonal weights "
        "(sigma_w^2 = 1, zero biases); spread = var(s^2)/mean(s^2)^2 of the singular values s of d h_depth / d h_1, "
        "computed for each of 8 training inputs and averaged over them."
    )
    CONFIGS: dict[str, dict[str, Any]] = {
        "tanh-gaussian": dict(activation="tanh", init="normal"),
        "relu-he": dict(activation="relu", init="he_normal"),
        "tanh-orthogonal": dict(activation="tanh", init="orthogonal"),
    }

    def runs(self, mode: str, seed: int = 0) -> list[Run]:
        depths = {"quick": [2, 16], "default": [2, 8, 32, 64], "full": [2, 4, 8, 16, 32, 64, 128]}[mode]
        width = {"quick": 64, "default": 128, "full": 256}[mode]
        out = []
        for name, kw in self.CONFIGS.items():
            for depth in depths:
                cfg = RunConfig(dataset="spiral", depth=depth, width=width, init_std=math.sqrt(1.05 / width), steps=1, seed=seed, **kw)
                out.append(Run(f"{name}-depth{depth}-seed{seed}", cfg, probe="jacobian", tags={"net": name, "depth": depth, "seed": seed}))
        return out

    def probe(self, kind: str, trainer: Any) -> Any:
        return jacobian_probe(trainer)

    def analyse(self, results: dict[str, RunResult], mode: str) -> Outcome:
        table = []
        for k, r in results.items():
            sv = r.probe
            lam = sv.ravel() ** 2
            table.append({"run": k, "net": r.run.tags["net"], "depth": r.run.tags["depth"], "seed": r.run.tags["seed"],
                          "mean_sq_singular_value": float(lam.mean()), "sv_max": float(sv.max()), "spread": spread(sv)})
        depths = sorted({t["depth"] for t in table})
        d0, d1 = depths[0], depths[-1]
        sp = {(n, d): float(np.mean([t["spread"] for t in table if t["net"] == n and t["depth"] == d])) for n in self.CONFIGS for d in depths}
        grows = {n: sp[(n, d1)] >= 5 * sp[(n, d0)] and sp[(n, d1)] >= 1.0 for n in ("tanh-gaussian", "relu-he")}
        narrow = sp[("tanh-orthogonal", d1)] <= 0.5 and sp[("tanh-orthogonal", d1)] <= sp[("tanh-gaussian", d1)] / 20
        measured = "spread at depth " + f"{d0} -> {d1}: " + "; ".join(f"{n} {fmt(sp[(n, d0)])} -> {fmt(sp[(n, d1)])}" for n in self.CONFIGS) + "."
        criterion = (
            f"Gaussian tanh and ReLU: spread at depth {d1} >= 5 x the spread at depth {d0} and >= 1; orthogonal tanh: "
            f"spread at depth {d1} <= 0.5 and <= 1/20 of Gaussian tanh's (spread per input, averaged over the inputs)."
        )
        checks = {"gaussian_tanh_grows": grows["tanh-gaussian"], "relu_grows": grows["relu-he"], "orthogonal_tanh_narrow": narrow}
        return Outcome(all(checks.values()), measured, criterion, table, checks)

    def draw(self, fig: Any, results: dict[str, RunResult], outcome: Outcome) -> None:
        ax = fig.add_subplot(1, 2, 1)
        depths = sorted({t["depth"] for t in outcome.table})
        colors = {"tanh-gaussian": "tab:red", "relu-he": "tab:orange", "tanh-orthogonal": "tab:blue"}
        for n, c in colors.items():
            ys = [np.mean([t["spread"] for t in outcome.table if t["net"] == n and t["depth"] == d]) for d in depths]
            ax.loglog(depths, ys, "o-", color=c, label=n)
        from matplotlib.ticker import NullLocator

        # Ticks at the depths run, plainly labelled: matplotlib's automatic log
        # ticks over one decade label the minor ticks too, and they overlapped.
        ax.set_xticks(depths, [str(d) for d in depths])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("depth (hidden layers)")
        ax.set_ylabel("spread var(s^2) / mean(s^2)^2")
        ax.set_title("spread of the Jacobian's singular values", fontsize=9)
        ax.legend(fontsize=8)
        ax2 = fig.add_subplot(1, 2, 2)
        d1 = depths[-1]
        for n, c in colors.items():
            r = next(r for r in results.values() if r.run.tags["net"] == n and r.run.tags["depth"] == d1)
            sv = r.probe.ravel()
            sv = sv[sv > 0]
            ax2.hist(np.log10(sv), bins=40, histtype="step", color=c, label=n, density=True)
        ax2.set_xlabel(f"log10 singular value (depth {d1})")
        ax2.set_ylabel("density")
        ax2.legend(fontsize=8)
