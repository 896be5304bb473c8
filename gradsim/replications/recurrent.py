"""Replications about recurrent networks trained through time: bengio1994 (vanishing
through time), hochreiter1997 (LSTM) and le2015 (IRNN). pascanu2013 (clipping) lives with the other
training-curve replications (training.py)."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..config import RunConfig
from .framework import Outcome, Replication, Run, RunResult, fmt, smooth
from .training import _steps, through_time

#: The adding problem's target is the sum of two U[0,1] draws: predicting its mean (1)
#: scores the variance 2/12; "learns the task" is a loss well below it.
MEAN_PREDICTOR_MSE = 2.0 / 12.0
#: "Learns": the final loss below this share of the mean predictor's.
LEARNED_SHARE = 0.3


class Le2015(Replication):
    name = "le2015"
    title = "Le et al. 2015: an RNN of ReLUs with identity recurrent weights (IRNN) learns the adding problem"
    citation = (
        "Q. V. Le, N. Jaitly, G. E. Hinton, \"A Simple Way to Initialize Recurrent Networks of Rectified Linear "
        "Units\", arXiv:1504.00941, 2015."
    )
    claim = (
        "(Sec. 4.1, Fig. 2) initialising the recurrent weights of a ReLU RNN to the identity lets it solve the adding "
        "problem at sequence lengths where a tanh RNN with a Gaussian init stays at the loss of predicting the mean."
    )
    setup = (
        "the paper used T = 150-750, 100 hidden units, SGD with clipping and up to 10^6 steps; here T = 30, 32 hidden "
        "units, Adam lr 0.002 with clip norm:1, batch 64, 600 steps: the IRNN (relu, W_hh = I) against a tanh RNN with "
        "W_hh ~ N(0, 1/32) (spectral radius about 1), same seeds and batches. 'Learns' = mean training loss over the "
        f"last 10% of steps below {LEARNED_SHARE} x 1/6, the mean predictor's loss."
    )

    def runs(self, mode: str, seed: int = 0) -> list[Run]:
        steps = _steps(mode, 600)
        out = []
        for kind, act, rinit in (("irnn", "relu", "identity"), ("tanh", "tanh", "normal:1")):
            cfg = RunConfig(model="rnn", dataset="adding", seq_len=30, depth=1, width=32, activation=act, recurrent_init=rinit,
                            n_samples=1000, batch_size=64, optimizer="adam", lr=0.002, clip_mode="norm", clip_threshold=1.0,
                            steps=steps, seed=seed, stats_every=50)
            out.append(Run(f"{kind}-seed{seed}", cfg, tags={"kind": kind, "seed": seed}))
        return out

    def analyse(self, results: dict[str, RunResult], mode: str) -> Outcome:
        table = []
        for k, r in results.items():
            g = through_time(r)
            table.append({"run": k, "kind": r.run.tags["kind"], "seed": r.run.tags["seed"], "loss_step0": float(r.loss()[0]),
                          "loss_end": r.tail_mean("loss"), "accuracy_end": r.tail_mean("accuracy"),
                          "diverged_at": r.session.diverged_at, "first_over_last_step0": float(g[0] / g[-1])})
        bar = LEARNED_SHARE * MEAN_PREDICTOR_MSE
        irnn = [t for t in table if t["kind"] == "irnn"]
        tanh = [t for t in table if t["kind"] == "tanh"]
        irnn_learns = all(t["diverged_at"] is None and t["loss_end"] < bar for t in irnn)
        tanh_does_not = all(not (t["loss_end"] < bar) for t in tanh)
        measured = (
            f"final loss (mean predictor {fmt(MEAN_PREDICTOR_MSE)}): IRNN {', '.join(fmt(t['loss_end']) for t in irnn)}, "
            f"tanh RNN {', '.join(fmt(t['loss_end']) for t in tanh)}; ||dL/dh_1|| / ||dL/dh_30|| at step 0: "
            f"IRNN {', '.join(fmt(t['first_over_last_step0']) for t in irnn)}, tanh {', '.join(fmt(t['first_over_last_step0']) for t in tanh)}."
        )
        criterion = (
            f"the IRNN stays finite and its mean training loss over the last 10% of steps is below {fmt(bar)} "
            f"({LEARNED_SHARE} x the mean predictor's 1/6); the tanh RNN's is not."
        )
        return Outcome(irnn_learns and tanh_does_not, measured, criterion, table, {"irnn_learns": irnn_learns, "tanh_does_not": tanh_does_not})

    def draw(self, fig: Any, results: dict[str, RunResult], outcome: Outcome) -> None:
        colours = {"irnn": ("tab:green", "IRNN (relu, W_hh = I)"), "tanh": ("tab:red", "tanh RNN, W_hh ~ N(0, 1/n)")}
        ax = fig.add_subplot(1, 2, 1)
        shown: set[str] = set()
        for r in results.values():
            kind = r.run.tags["kind"]
            colour, label = colours[kind]
            y = r.session.column("loss").astype(float)
            ax.semilogy(r.session.steps, smooth(y, max(1, y.size // 50)), color=colour, lw=1.2, label=None if kind in shown else label)
            shown.add(kind)
        ax.axhline(MEAN_PREDICTOR_MSE, color="k", ls="--", lw=0.8, label="predict the mean (1/6)")
        ax.set_xlabel("step")
        ax.set_ylabel("training loss (running mean)")
        ax.legend(fontsize=8)
        ax2 = fig.add_subplot(1, 2, 2)
        shown = set()
        for r in results.values():
            kind = r.run.tags["kind"]
            colour, label = colours[kind]
            g = through_time(r)
            ax2.semilogy(np.arange(1, g.size + 1), g, color=colour, label=None if kind in shown else label)
            shown.add(kind)
        ax2.set_xlabel("time step t (1 = first input)")
        ax2.set_ylabel("||dL/dh_t|| at step 0")
        ax2.set_title("signal back through time at initialization", fontsize=9)
        ax2.legend(fontsize=8)


class Bengio1994(Replication):
    name = "bengio1994"
    title = "Bengio et al. 1994: a tanh RNN's gradient vanishes through time, so long dependencies go unlearned"
    citation = (
        "Y. Bengio, P. Simard, P. Frasconi, \"Learning Long-Term Dependencies with Gradient Descent is Difficult\", "
        "IEEE Transactions on Neural Networks 5(2), 1994."
    )
    claim = (
        "(Sec. II-III, Fig. 3-4) the gradient reaching early time steps shrinks geometrically with their distance "
        "from the loss, so the success rate of gradient descent on a task whose answer depends on the first inputs "
        "falls toward chance as the sequence grows."
    )
    LENGTHS = (5, 20, 80)
    BATCH = 64
    TEST_FRACTION = 0.2
    setup = (
        "the paper used small recurrent nets on its latching, 2-sequence and parity problems with several training "
        "algorithms, counting a trial a success when the net had learned to classify the task's sequences; here a tanh "
        "RNN of 32 units, W_hh ~ N(0, 1/32) (spectral radius about 1), on recall-first (the class is the first token's "
        f"sign, then N(0, 1) noise; the paper's problems add noise of variance 0.2) at T = {', '.join(str(t) for t in LENGTHS)}, "
        "plain SGD lr 0.2, batch 64, 400 steps, same seed at every length. The training set holds a fresh sequence for "
        "every one a step draws (one pass, as online gradient descent on the task), so the training batches' accuracy "
        "is that of unseen sequences: with a set of 800 a net that cannot carry the first token over 80 steps fitted "
        "part of it from the noise alone (training batches 0.63-0.72, held-out at chance)."
    )

    def runs(self, mode: str, seed: int = 0) -> list[Run]:
        steps = _steps(mode, 400)
        # Enough sequences that no training sequence is drawn twice: the batches are then unseen data.
        n_samples = -(-steps * self.BATCH * 10 // int(round((1 - self.TEST_FRACTION) * 10)))
        return [
            Run(f"T{T}-seed{seed}",
                RunConfig(model="rnn", dataset="recall-first", seq_len=T, depth=1, width=32, activation="tanh", recurrent_init="normal:1",
                          n_samples=n_samples, test_fraction=self.TEST_FRACTION, batch_size=self.BATCH, optimizer="sgd", lr=0.2,
                          steps=steps, seed=seed, stats_every=50),
                tags={"T": T, "seed": seed})
            for T in self.LENGTHS
        ]

    def analyse(self, results: dict[str, RunResult], mode: str) -> Outcome:
        table = []
        for k, r in results.items():
            g = through_time(r)
            table.append({"run": k, "T": r.run.tags["T"], "seed": r.run.tags["seed"], "loss_end": r.tail_mean("loss"),
                          "accuracy_end": r.tail_mean("accuracy"), "diverged_at": r.session.diverged_at,
                          "first_over_last_step0": float(g[0] / g[-1])})
        by_t = {t["T"]: t for t in table}
        short, long = by_t[min(self.LENGTHS)], by_t[max(self.LENGTHS)]
        short_learned = short["diverged_at"] is None and short["accuracy_end"] >= 0.9
        long_fails = not (long["accuracy_end"] > 0.6)
        signal_shrinks = long["first_over_last_step0"] < 0.1 * short["first_over_last_step0"]
        measured = (
            "final batch accuracy by T: " + ", ".join(f"T {t['T']}: {fmt(t['accuracy_end'], 3)}" for t in table)
            + "; ||dL/dh_1|| / ||dL/dh_T|| at step 0: " + ", ".join(f"T {t['T']}: {fmt(t['first_over_last_step0'])}" for t in table)
            + " (chance accuracy 0.5)."
        )
        criterion = (
            f"at T = {min(self.LENGTHS)} the net learns (mean training accuracy over the last 10% of steps >= 0.9, finite); "
            f"at T = {max(self.LENGTHS)} it does not (<= 0.6); and the signal reaching the first step at step 0, relative "
            f"to the last, is over 10x smaller at T = {max(self.LENGTHS)} than at T = {min(self.LENGTHS)}."
        )
        return Outcome(short_learned and long_fails and signal_shrinks, measured, criterion, table,
                       {"short_learned": short_learned, "long_fails": long_fails, "signal_shrinks": signal_shrinks})

    def draw(self, fig: Any, results: dict[str, RunResult], outcome: Outcome) -> None:
        import matplotlib.cm as cm

        colours = {T: cm.viridis(i / max(1, len(self.LENGTHS) - 1)) for i, T in enumerate(self.LENGTHS)}
        ax = fig.add_subplot(1, 2, 1)
        ax2 = fig.add_subplot(1, 2, 2)
        for r in results.values():
            T = r.run.tags["T"]
            y = r.session.column("accuracy").astype(float)
            ax.plot(r.session.steps, smooth(y, max(1, y.size // 50)), color=colours[T], lw=1.2, label=f"T = {T}")
            g = through_time(r)
            ax2.semilogy(np.arange(1, g.size + 1) - g.size, g / g[-1], color=colours[T], label=f"T = {T}")
        ax.axhline(0.5, color="k", ls="--", lw=0.8)
        ax.set_xlabel("step")
        ax.set_ylabel("training accuracy (running mean; dashed: chance)")
        ax.legend(fontsize=8)
        ax2.set_xlabel("t - T (steps back from the loss)")
        ax2.set_ylabel("||dL/dh_t|| / ||dL/dh_T|| at step 0")
        ax2.set_title("signal back through time at initialization", fontsize=9)
        ax2.legend(fontsize=8)


class Hochreiter1997(Replication):
    name = "hochreiter1997"
    title = "Hochreiter & Schmidhuber 1997: an LSTM learns the adding problem at lengths where a tanh RNN does not"
    citation = "S. Hochreiter, J. Schmidhuber, \"Long Short-Term Memory\", Neural Computation 9(8), 1997."
    claim = (
        "(Sec. 5.4, Experiment 4) the LSTM's gated cell carries information over long time lags, so it learns the "
        "adding problem at sequence lengths (T = 100-1000 in the paper) where recurrent nets trained by "
        "backpropagation through time fail."
    )
    LENGTHS = (10, 20, 40)
    setup = (
        "the paper used T = 100-1000 and trained for up to 10^5-10^6 sequences with its own LSTM variant (no forget "
        f"gate); here T = {', '.join(str(t) for t in LENGTHS)}, 24 hidden units, Adam lr 0.005, batch 64, 600 steps, "
        "torch's LSTM cell with a forget gate (bias 1) against a tanh RNN of the same width (orthogonal W_hh), same "
        f"seeds and batches. 'Learns' = mean training loss over the last 10% of steps below {LEARNED_SHARE} x 1/6, "
        "the mean predictor's loss."
    )

    def runs(self, mode: str, seed: int = 0) -> list[Run]:
        steps = _steps(mode, 600)
        return [
            Run(f"{model}-T{T}-seed{seed}",
                RunConfig(model=model, dataset="adding", seq_len=T, depth=1, width=24, activation="tanh", recurrent_init="orthogonal",
                          forget_bias=1.0, n_samples=1000, batch_size=64, optimizer="adam", lr=0.005, steps=steps, seed=seed, stats_every=50),
                tags={"model": model, "T": T, "seed": seed})
            for T in self.LENGTHS for model in ("lstm", "rnn")
        ]

    def analyse(self, results: dict[str, RunResult], mode: str) -> Outcome:
        table = [{"run": k, "model": r.run.tags["model"], "T": r.run.tags["T"], "seed": r.run.tags["seed"],
                  "loss_end": r.tail_mean("loss"), "accuracy_end": r.tail_mean("accuracy"), "diverged_at": r.session.diverged_at}
                 for k, r in results.items()]
        bar = LEARNED_SHARE * MEAN_PREDICTOR_MSE
        longest = max(self.LENGTHS)
        at = {(t["model"], t["T"]): t for t in table}
        lstm_learns = at[("lstm", longest)]["diverged_at"] is None and at[("lstm", longest)]["loss_end"] < bar
        rnn_fails = not (at[("rnn", longest)]["loss_end"] < bar)
        measured = "final loss by T (mean predictor 0.167): " + "; ".join(
            f"T {T}: LSTM {fmt(at[('lstm', T)]['loss_end'])}, tanh RNN {fmt(at[('rnn', T)]['loss_end'])}" for T in self.LENGTHS
        ) + "."
        criterion = (
            f"at T = {longest} the LSTM stays finite and its mean training loss over the last 10% of steps is below {fmt(bar)} "
            f"({LEARNED_SHARE} x the mean predictor's 1/6); the tanh RNN's is not."
        )
        return Outcome(lstm_learns and rnn_fails, measured, criterion, table, {"lstm_learns": lstm_learns, "rnn_fails": rnn_fails})

    def draw(self, fig: Any, results: dict[str, RunResult], outcome: Outcome) -> None:
        colours = {"lstm": "tab:green", "rnn": "tab:red"}
        names = {"lstm": "LSTM", "rnn": "tanh RNN"}
        ax = fig.add_subplot(1, 2, 1)
        longest = max(self.LENGTHS)
        for r in results.values():
            if r.run.tags["T"] != longest:
                continue
            y = r.session.column("loss").astype(float)
            ax.semilogy(r.session.steps, smooth(y, max(1, y.size // 50)), color=colours[r.run.tags["model"]], lw=1.2, label=names[r.run.tags["model"]])
        ax.axhline(MEAN_PREDICTOR_MSE, color="k", ls="--", lw=0.8, label="predict the mean (1/6)")
        ax.set_xlabel("step")
        ax.set_ylabel(f"training loss at T = {longest} (running mean)")
        ax.legend(fontsize=8)
        ax2 = fig.add_subplot(1, 2, 2)
        for model in ("lstm", "rnn"):
            ts = list(self.LENGTHS)
            ys = [next(r.tail_mean("loss") for r in results.values() if r.run.tags["model"] == model and r.run.tags["T"] == T) for T in ts]
            ax2.semilogy(ts, ys, "o-", color=colours[model], label=names[model])
        ax2.axhline(MEAN_PREDICTOR_MSE, color="k", ls="--", lw=0.8)
        ax2.axhline(LEARNED_SHARE * MEAN_PREDICTOR_MSE, color="k", ls=":", lw=0.8)
        ax2.set_xlabel("sequence length T")
        ax2.set_ylabel("final training loss (dotted: 'learns' bar)")
        ax2.legend(fontsize=8)
