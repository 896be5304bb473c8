"""xiong2020: where a transformer's layer norm sits decides the gradients at initialisation
(Pre-LN vs Post-LN across depths) and whether training needs a learning-rate warm-up."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..config import RunConfig
from .framework import Outcome, Replication, Run, RunResult, fmt, smooth

#: Blocks of the networks probed at initialisation (one step each, so cheap in every mode).
DEPTHS = (4, 8, 16, 32)
WIDTH, HEADS, SEQ_LEN = 32, 4, 8
#: The two laws differ by 0.5 in the exponent of L (Pre-LN -1/2, Post-LN 0): a fitted exponent
#: counts as following a law when it is nearer to it than to the other, i.e. within half the gap.
EXPONENT_TOLERANCE = 0.25
#: The training part's setting: the one of benchmarks/warmup_search.py's grid where warm-up
#: helped Post-LN most (depth 4, Adam at lr 1e-2); chosen before this replication existed.
TRAIN_DEPTH, TRAIN_LR, TRAIN_STEPS, TRAIN_WARMUP = 4, 1e-2, 200, 60
#: A run has learned when its batch accuracy over the last 10% of steps averages at least this
#: (chance is 0.5 on recall-last).
LEARNED = 0.9


def decades(values: np.ndarray) -> float:
    """Least-squares change of log10(values) from the first index to the last."""
    y = np.log10(np.asarray(values, dtype=np.float64))
    if y.size < 2 or not np.all(np.isfinite(y)):
        return float("nan")
    return float(np.polyfit(np.arange(y.size), y, 1)[0] * (y.size - 1))


def block_profile(r: RunResult) -> np.ndarray:
    """Per block at step 0: the norm of its attention and MLP weights' gradients taken together."""
    names = [u.name for u in r.session.units]
    g = r.step0("grad_norm")
    depth = int(r.session.config["depth"])
    return np.array([math.hypot(g[names.index(f"attn {i}")], g[names.index(f"mlp {i}")]) for i in range(1, depth + 1)])


def last_mlp_grad(r: RunResult) -> float:
    """||dL/dW|| of the last block's MLP weights (W1, W2) at step 0: Xiong et al.'s W^(2,L)."""
    names = [u.name for u in r.session.units]
    return float(r.step0("grad_norm")[names.index(f"mlp {r.session.config['depth']}")])


def exponent(depths: list[int], values: list[float]) -> float:
    """Fitted p of value ~ L^p (least squares in log-log)."""
    x, y = np.log(np.asarray(depths, float)), np.log(np.asarray(values, float))
    if x.size < 2 or not np.all(np.isfinite(y)):
        return float("nan")
    return float(np.polyfit(x, y, 1)[0])


class Xiong2020(Replication):
    name = "xiong2020"
    title = "Xiong et al. 2020: Pre-LN vs Post-LN gradients at init, and warm-up"
    citation = (
        "R. Xiong, Y. Yang, D. He, K. Zheng, S. Zheng, C. Xing, H. Zhang, Y. Lan, L. Wang, T.-Y. Liu, "
        "\"On Layer Normalization in the Transformer Architecture\", ICML 2020."
    )
    claim = (
        "(Thm. 1, Fig. 3) at initialisation the gradient of the last block's FFN weights is O(d sqrt(ln d)) for "
        "Post-LN, independent of the number of blocks L, and O(d sqrt(ln d / L)) for Pre-LN, shrinking like "
        "1/sqrt(L); Post-LN's per-layer gradients grow toward the output while Pre-LN's stay level; (Sec. 3.1, "
        "Fig. 2) Post-LN without learning-rate warm-up trains badly, with warm-up it trains, and Pre-LN trains "
        "without warm-up."
    )
    setup = (
        f"the paper trained 6-layer translation transformers (d = 512) and BERT; here encoders of d_model {WIDTH}, "
        f"{HEADS} heads, GELU MLPs, on recall-last with {SEQ_LEN} tokens (the class sits in the last token, the "
        f"head reads the first). Init part: Pre- and Post-LN on the same weights at depths "
        f"{', '.join(map(str, DEPTHS))}, one backward pass of a batch of 64. Training part: {TRAIN_DEPTH} blocks, "
        f"Adam at lr {TRAIN_LR:g}, {TRAIN_STEPS} steps, warm-up {TRAIN_WARMUP} steps (the best setting "
        "of benchmarks/warmup_search.py; in most settings tried there warm-up made no difference). d = 32 is far "
        "from the theorem's large-width regime."
    )

    def runs(self, mode: str, seed: int = 0) -> list[Run]:
        out = []
        for depth in DEPTHS:
            for norm in ("pre", "post"):
                cfg = RunConfig(model="transformer", dataset="recall-last", seq_len=SEQ_LEN, depth=depth, width=WIDTH, heads=HEADS,
                                activation="gelu", norm_position=norm, n_samples=500, batch_size=64, optimizer="adam", lr=1e-3,
                                steps=1, stats_every=1, seed=seed)
                out.append(Run(f"init-{norm}-depth{depth}-seed{seed}", cfg, tags={"part": "init", "norm": norm, "depth": depth, "seed": seed}))
        for arm, norm, wu in (("post", "post", 0), ("post-warmup", "post", TRAIN_WARMUP), ("pre", "pre", 0)):
            cfg = RunConfig(model="transformer", dataset="recall-last", seq_len=SEQ_LEN, depth=TRAIN_DEPTH, width=WIDTH, heads=HEADS,
                            activation="gelu", norm_position=norm, warmup_steps=wu, n_samples=500, batch_size=32, optimizer="adam",
                            lr=TRAIN_LR, steps=TRAIN_STEPS, stats_every=20, seed=seed)
            out.append(Run(f"train-{arm}-seed{seed}", cfg, tags={"part": "train", "arm": arm, "seed": seed}))
        return out

    def analyse(self, results: dict[str, RunResult], mode: str) -> Outcome:
        init = {(r.run.tags["norm"], r.run.tags["depth"]): r for r in results.values() if r.run.tags["part"] == "init"}
        train = {r.run.tags["arm"]: r for r in results.values() if r.run.tags["part"] == "train"}
        table: list[dict[str, Any]] = []
        rel = {}
        for depth in DEPTHS:
            pre, post = decades(block_profile(init["pre", depth])), decades(block_profile(init["post", depth]))
            rel[depth] = post - pre
            table.append({"part": "init", "depth": depth, "pre_decades": pre, "post_decades": post, "post_minus_pre": post - pre,
                          "pre_last_mlp_grad": last_mlp_grad(init["pre", depth]), "post_last_mlp_grad": last_mlp_grad(init["post", depth])})
        p_pre = exponent(list(DEPTHS), [t["pre_last_mlp_grad"] for t in table])
        p_post = exponent(list(DEPTHS), [t["post_last_mlp_grad"] for t in table])
        acc = {arm: r.tail_mean("accuracy") for arm, r in train.items()}
        for arm, r in train.items():
            table.append({"part": "train", "arm": arm, "final_accuracy": acc[arm], "final_loss": r.tail_mean("loss"),
                          "diverged": int(any(e.kind == "diverged" for e in r.session.events))})
        checks = {
            "post_rises_relative_to_pre": all(v > 0 for v in rel.values()),
            "pre_output_grad_like_1/sqrt(L)": abs(p_pre + 0.5) < EXPONENT_TOLERANCE,
            "post_output_grad_independent_of_L": abs(p_post) < EXPONENT_TOLERANCE,
            "post_without_warmup_fails": not acc["post"] >= LEARNED,  # NaN (diverged) fails
            "post_with_warmup_learns": acc["post-warmup"] >= LEARNED,
            "pre_without_warmup_learns": acc["pre"] >= LEARNED,
        }
        measured = (
            "Post-LN's per-block profile minus Pre-LN's, fitted decades from block 1 to L: "
            + ", ".join(f"L={d}: {fmt(v)}" for d, v in rel.items())
            + f"; exponent of L in the last block's MLP weight gradient: Pre-LN {fmt(p_pre)}, Post-LN {fmt(p_post)}; "
            + "batch accuracy over the last 10% of training: "
            + ", ".join(f"{arm} {fmt(a)}" for arm, a in acc.items()) + "."
        )
        criterion = (
            "init: at every depth Post-LN's fitted per-block profile (decades from block 1 to L) is above Pre-LN's on "
            "the same weights; the exponent p of L in ||dL/dW|| of the last block's MLP weights is within "
            f"{EXPONENT_TOLERANCE} of -0.5 for Pre-LN and of 0 for Post-LN ({EXPONENT_TOLERANCE} = half the gap "
            "between the two laws, so a fit inside it is nearer to its own law than to the other); training: "
            f"a run learned when its batch accuracy over the last 10% of steps is >= {LEARNED}; Post-LN without "
            "warm-up does not learn, Post-LN with warm-up and Pre-LN without it do."
        )
        return Outcome(all(checks.values()), measured, criterion, table, checks)

    def draw(self, fig: Any, results: dict[str, RunResult], outcome: Outcome) -> None:
        init = {(r.run.tags["norm"], r.run.tags["depth"]): r for r in results.values() if r.run.tags["part"] == "init"}
        colors = {"pre": "tab:blue", "post": "tab:red"}
        ax = fig.add_subplot(1, 3, 1)
        deepest = DEPTHS[-1]
        for norm in ("pre", "post"):
            p = block_profile(init[norm, deepest])
            ax.semilogy(np.arange(1, p.size + 1), p, "o-", ms=3, color=colors[norm], label=f"{norm.capitalize()}-LN")
        ax.set_xlabel("block (1 = input side)")
        ax.set_ylabel("||dL/dW|| of the block at init")
        ax.set_title(f"per-block gradient, {deepest} blocks, same weights", fontsize=9)
        ax.legend(fontsize=8)
        ax2 = fig.add_subplot(1, 3, 2)
        depths = np.asarray(DEPTHS, float)
        for norm, law in (("pre", -0.5), ("post", 0.0)):
            g = np.array([last_mlp_grad(init[norm, d]) for d in DEPTHS])
            ax2.loglog(depths, g, "o", color=colors[norm], label=f"{norm.capitalize()}-LN measured")
            ax2.loglog(depths, g[0] * (depths / depths[0]) ** law, "--", color=colors[norm], alpha=0.7,
                       label="1/sqrt(L)" if law else "independent of L")
        ax2.set_xlabel("blocks L")
        ax2.set_ylabel("||dL/dW|| last block's MLP at init")
        ax2.set_title("Xiong et al.'s scaling (lines from the first depth)", fontsize=9)
        ax2.legend(fontsize=7)
        ax3 = fig.add_subplot(1, 3, 3)
        for r in results.values():
            if r.run.tags["part"] != "train":
                continue
            arm = r.run.tags["arm"]
            y = r.session.column("accuracy").astype(float)
            ax3.plot(r.session.steps, smooth(y, 10), lw=1.2, label=arm,
                     color={"post": "tab:red", "post-warmup": "tab:orange", "pre": "tab:blue"}[arm])
        ax3.axhline(LEARNED, color="0.5", lw=0.8, ls=":")
        ax3.set_xlabel("step")
        ax3.set_ylabel("batch accuracy (running mean)")
        ax3.set_title(f"training, lr {TRAIN_LR:g}, warm-up {TRAIN_WARMUP}", fontsize=9)
        ax3.legend(fontsize=8)
