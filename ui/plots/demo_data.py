"""Fake runs for showing a plot on its own, for tests and for the benchmark.

Why fake data: each plot must be runnable alone (``python -m ui.plots.heatmap``,
docs/architecture.md) without torch or a training thread, and tests need stores
whose values they know. The patterns follow the textbook picture: a deep
sigmoid net whose backprop signal shrinks by a constant factor per layer
(rescued by batch norm half way), or one whose signal grows until it diverges.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Optional, Sequence

import numpy as np

from gradsim.metrics import LAYER_INDEX, STATS_METRICS, STEP_INDEX, STEP_METRICS, LAYER_METRICS
from gradsim.session.store import Event, Session, StepRecord

PATTERNS = ("vanishing", "exploding", "healthy")


def fill_demo(
    steps: np.ndarray,
    scalars: np.ndarray,
    layers: np.ndarray,
    has_stats: np.ndarray,
    pattern: str = "vanishing",
    seed: int = 0,
    stats_every: int = 10,
) -> list[Event]:
    """Write a fake run into preallocated arrays (shapes as in :class:`Session`); returns its events.

    Writing in place lets the benchmark fill a 100-layer x 100,000-step store
    without a second 400 MB copy.
    """
    if pattern not in PATTERNS:
        raise ValueError(f"pattern {pattern!r}: one of {', '.join(PATTERNS)}")
    n = steps.shape[0]
    n_layers = layers.shape[1]
    rng = np.random.default_rng(seed)
    steps[:] = np.arange(n, dtype=np.int64)
    t = np.arange(n, dtype=np.float64) / max(n - 1, 1)  # 0..1 through the run
    depth = np.arange(1, n_layers + 1, dtype=np.float64)  # layer 1 = input side
    from_out = (n_layers - depth)[None, :]  # layers between this one and the output
    events = [Event(0, "start", pattern)]

    switch = int(0.6 * n)
    diverge = n  # no divergence
    if pattern == "vanishing":
        ratio = np.where(np.arange(n) < switch, 0.6, 0.97)[:, None]
        amp = 0.5 * np.exp(-2 * t)[:, None]
        loss = np.where(t < 0.6, 0.69 - 0.05 * t, 0.66 * np.exp(-4 * (t - 0.6)))
        acc = np.where(t < 0.6, 0.5 + 0.1 * t, 0.56 + 0.4 * (1 - np.exp(-6 * (t - 0.6))))
        events.append(Event(int(0.3 * n), "lr", "0.05"))
        events.append(Event(switch, "batchnorm", "on"))
        lr = np.where(np.arange(n) < int(0.3 * n), 0.1, 0.05)
    elif pattern == "exploding":
        ratio = np.full((n, 1), 1.4)
        amp = (0.5 * np.exp(8 * t))[:, None]
        diverge = int(0.8 * n)
        loss = 0.69 * np.exp(3 * t)
        acc = 0.5 + 0.2 * t
        events.append(Event(int(0.5 * n), "lr", "0.5"))
        lr = np.where(np.arange(n) < int(0.5 * n), 0.1, 0.5)
    else:
        ratio = np.full((n, 1), 0.98)
        amp = 0.5 * np.exp(-t)[:, None]
        loss = 0.69 * np.exp(-3 * t)
        acc = 0.5 + 0.45 * (1 - np.exp(-5 * t))
        lr = np.full(n, 0.1)

    noise_t = np.exp(0.15 * rng.standard_normal((n, 1))).astype(np.float32)
    noise_l = np.exp(0.1 * rng.standard_normal((1, n_layers))).astype(np.float32)
    act_grad = (amp * ratio**from_out).astype(np.float32) * noise_t * noise_l
    grad = act_grad * np.float32(3.0) * noise_l
    weight = np.broadcast_to((8.0 + 0.5 * np.sin(depth))[None, :].astype(np.float32), (n, n_layers))
    upd = grad * lr[:, None].astype(np.float32)
    L = LAYER_INDEX
    layers[:, :, L["grad_norm"]] = grad
    layers[:, :, L["bias_grad_norm"]] = grad * np.float32(0.1)
    layers[:, :, L["weight_norm"]] = weight
    layers[:, :, L["update_norm"]] = upd
    with np.errstate(over="ignore", invalid="ignore"):
        layers[:, :, L["update_ratio"]] = upd / weight
    layers[:, :, L["act_grad_norm"]] = act_grad
    frac = (depth / n_layers)[None, :]
    if pattern == "vanishing":
        sat = np.where(np.arange(n)[:, None] < switch, 0.1 + 0.7 * frac, 0.05 * frac)
        dead = np.zeros((1, n_layers))
    elif pattern == "exploding":
        sat = np.zeros((1, n_layers))
        dead = 0.05 + 0.4 * frac * np.minimum(1.0, 2 * t)[:, None]
    else:
        sat = 0.02 * frac
        dead = 0.01 * frac
    layers[:, :, L["act_saturation"]] = np.broadcast_to(sat, (n, n_layers))
    layers[:, :, L["act_dead"]] = np.broadcast_to(dead, (n, n_layers))
    layers[:, :, L["act_mean"]] = np.float32(0.1)
    layers[:, :, L["act_std"]] = np.float32(0.5)
    has_stats[:] = (np.arange(n) % max(stats_every, 1)) == 0
    for m in STATS_METRICS:
        layers[~has_stats, :, L[m]] = np.nan
    # The theory's gains, recorded with the stats: here the demo's own ratios, 3 % high,
    # so the dashed prediction sits visibly next to the measured profile.
    ag = layers[:, :, L["act_grad_norm"]].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        layers[:, :-1, L["pred_gain"]] = 1.03 * ag[:, :-1] / ag[:, 1:]
    layers[:, -1, L["pred_gain"]] = np.nan
    layers[~has_stats, :, L["pred_gain"]] = np.nan

    S = STEP_INDEX
    scalars[:, S["loss"]] = loss
    scalars[:, S["accuracy"]] = acc
    scalars[:, S["grad_norm_total"]] = np.sqrt(np.sum(grad.astype(np.float64) ** 2, axis=1))
    scalars[:, S["grad_norm_applied"]] = scalars[:, S["grad_norm_total"]]
    scalars[:, S["clipped"]] = 0.0
    scalars[:, S["lr"]] = lr
    scalars[:, S["diverged"]] = 0.0
    scalars[:, S["elapsed_s"]] = np.arange(n) * 0.002
    scalars[:, S["test_accuracy"]] = np.nan  # held-out accuracy: measured every 10 steps, a little below the batch's
    scalars[::10, S["test_accuracy"]] = acc[::10] * 0.95
    if diverge < n:
        # The step that produced inf, then nan everywhere: what a real divergence records.
        layers[diverge, :, :] = np.inf
        layers[diverge + 1 :, :, :] = np.nan
        scalars[diverge:, S["loss"]] = np.nan
        scalars[diverge:, S["grad_norm_total"]] = np.inf
        scalars[diverge:, S["grad_norm_applied"]] = np.inf
        scalars[diverge:, S["diverged"]] = 1.0
        events.append(Event(diverge, "diverged", "loss=nan"))
    return events


def make_demo_session(
    n_layers: int = 20,
    n_steps: int = 1500,
    pattern: str = "vanishing",
    seed: int = 0,
    stats_every: int = 10,
) -> Session:
    """A fake :class:`Session` built through the public ``append`` path (small sizes)."""
    steps = np.zeros(n_steps, np.int64)
    scalars = np.zeros((n_steps, len(STEP_METRICS)), np.float64)
    layers = np.zeros((n_steps, n_layers, len(LAYER_METRICS)), np.float32)
    has_stats = np.zeros(n_steps, bool)
    events = fill_demo(steps, scalars, layers, has_stats, pattern, seed, stats_every)
    store = Session(n_layers=n_layers, config={"demo": pattern}, max_memory_mb=max(256.0, 2 * layers.nbytes / 1e6))
    for i in range(n_steps):
        store.append(StepRecord(int(steps[i]), scalars[i], layers[i], bool(has_stats[i])))
    for ev in events:
        store.add_event(ev.step, ev.kind, ev.value)
    return store


def run_demo(widget_cls: Any, argv: Optional[Sequence[str]] = None, **setters: Any) -> int:
    """Show one plot widget on fake data: ``python -m ui.plots.heatmap [--pattern exploding] [--png out.png]``.

    ``setters`` are applied as ``widget.set_<name>(value)`` before the first refresh.
    """
    import pyqtgraph as pg

    parser = argparse.ArgumentParser(description=f"Show {widget_cls.__name__} on a fake run.")
    parser.add_argument("--pattern", choices=PATTERNS, default="vanishing")
    parser.add_argument("--layers", type=int, default=20)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--png", help="save a screenshot to this file and exit")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    app = pg.mkQApp(widget_cls.__name__)
    store = make_demo_session(args.layers, args.steps, args.pattern)
    widget = widget_cls()
    widget.setWindowTitle(f"GradSim - {widget_cls.__name__} ({args.pattern} demo)")
    widget.resize(900, 600)
    for name, value in setters.items():
        getattr(widget, f"set_{name}")(value)
    widget.refresh(store)
    if hasattr(widget, "set_events"):
        widget.set_events(store.events)
    if args.png:
        app.processEvents()
        ok = widget.grab().save(args.png)
        return 0 if ok else 1
    widget.show()
    return int(app.exec())
