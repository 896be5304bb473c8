"""All six plots in one widget, refreshed together from the GUI's mirror Session.

Why one container: the main window's ~30 Hz timer calls one ``refresh(store)``;
the panel skips the work when nothing changed and keeps the plots in step (the
metric shared by heatmap, depth profile and layer curves, the layer selection
shared by the two curve plots, a step picked on the heatmap shown in the depth
profile).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtWidgets import QLabel, QSplitter, QTabWidget, QVBoxLayout, QWidget

from gradsim.events import NOTE, START
from gradsim.session.store import Event, Session

if TYPE_CHECKING:
    from .base import PlotBase, TimePlotBase

#: The plot widgets a panel holds; they are built on first use (see ``PlotPanel.ensure_built``).
_PLOT_NAMES = ("heatmap", "depth_profile", "activations", "layer_curves", "update_ratio", "loss_accuracy", "splitters",
               "tabs", "heads")

#: Below this width (pixels) the panel shows two plots a row and tabs the three smaller
#: ones: at 1280x720 the panel is ~900 px wide (~600 with a dock on each side), and three
#: plots a row clipped their titles, axis labels and legends. Above NARROW_PX + the
#: hysteresis it goes back to three a row (the gap keeps a width near the limit from
#: switching back and forth as scroll bars or minimum sizes move it by a few pixels).
NARROW_PX = 940
NARROW_HYSTERESIS_PX = 40
#: The tabs of the narrow layout: plot attribute -> tab title.
NARROW_TABS = (("layer_curves", "Layers"), ("update_ratio", "Update ratio"), ("activations", "Saturation"))
#: The tab of the attention-entropy plot, added after NARROW_TABS while a run has attention heads.
HEADS_TAB = "Heads"


def _store_key(store: Optional[Session]) -> tuple:
    if store is None:
        return ()
    n = len(store)
    return (n, int(store.steps[-1]) if n else -1, len(store.events))


def compared_events(a: Session, b: Session) -> list[Event]:
    """A's events plus branch B's own changes (kind prefixed "B "), in step order, for the flags."""
    shared = set(a.events)
    extra = [Event(e.step, f"B {e.kind}", e.value) for e in b.events
             if e not in shared and e.kind not in (NOTE, START)]
    if not extra:
        return list(a.events)
    return sorted(list(a.events) + extra, key=lambda e: e.step)


def ratio_session(a: Session, b: Session) -> Session:
    """Per layer and step, branch B's metrics over branch A's, at the steps both recorded.

    The heatmap draws log10 of a metric, so this draws log10 B - log10 A: 0 where
    the branches agree (every step before the fork), signed where they part.
    """
    common, ia, ib = np.intersect1d(a.steps, b.steps, return_indices=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        layers = b.layers[ib] / a.layers[ia]
    out = Session.from_arrays(common, a.scalars[ia], layers, a.has_stats[ia] & b.has_stats[ib], a.config)
    for ev in b.events:
        out.add_event(ev.step, ev.kind, ev.value)
    return out


class PlotPanel(QWidget):
    """Heatmap, depth profile and activation bars on top; layer curves, update ratio and loss below."""

    def __init__(self, parent: Optional[QWidget] = None, build_now: bool = True) -> None:
        """``build_now=False``: show a one-line placeholder and build the plots on first use
        (the window builds them right after its first paint: importing pyqtgraph and
        creating ten plot items is most of the start-up time)."""
        super().__init__(parent)
        self.metric_name = "grad_norm"
        self._built = False
        self._store: Optional[Session] = None
        self._compare: Optional[Session] = None
        self._key: Optional[tuple] = None
        self._n_events = -1
        self._growing = True
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._placeholder = QLabel("Preparing the plots\u2026")
        self._placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._placeholder.setStyleSheet("color: #9e9e9e;")
        self._layout.addWidget(self._placeholder)
        if build_now:
            self.ensure_built()

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: a plot asked for before the panel was built.
        if name in _PLOT_NAMES and not self.__dict__.get("_built", True):
            self.ensure_built()
            return getattr(self, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def built(self) -> bool:
        return self._built

    def ensure_built(self) -> None:
        """Build the six plots now (once)."""
        if self._built:
            return
        self._built = True
        from .activations import ActivationStats
        from .attention_heads import AttentionHeads
        from .depth_profile import DepthProfile
        from .heatmap import GradientHeatmap
        from .layer_curves import LayerCurves
        from .loss_accuracy import LossAccuracyPlot
        from .update_ratio import UpdateRatioPlot

        self.heatmap = GradientHeatmap()
        self.depth_profile = DepthProfile()
        self.activations = ActivationStats()
        self.layer_curves = LayerCurves()
        self.update_ratio = UpdateRatioPlot()
        self.loss_accuracy = LossAccuracyPlot()
        #: Attention entropy per head: shown only while the run has attention heads (a transformer),
        #: so it is not among ``plots`` (every one of which is always shown).
        self.heads = AttentionHeads()
        self._heads_on = False
        self._balance_later = QTimer(self)  # owned by the panel: never fires into a deleted splitter
        self._balance_later.setSingleShot(True)
        self._balance_later.setInterval(0)
        self._balance_later.timeout.connect(self._balance_top)

        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(self.heatmap)
        top.addWidget(self.depth_profile)
        top.addWidget(self.activations)
        top.addWidget(self.heads)
        self.heads.hide()
        top.setStretchFactor(0, 5)
        top.setStretchFactor(1, 2)
        top.setStretchFactor(2, 2)
        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(self.layer_curves)
        bottom.addWidget(self.update_ratio)
        bottom.addWidget(self.loss_accuracy)
        outer = QSplitter(Qt.Orientation.Vertical)
        outer.addWidget(top)
        outer.addWidget(bottom)
        outer.setStretchFactor(0, 3)
        outer.setStretchFactor(1, 2)
        for splitter in (top, bottom, outer):
            splitter.setChildrenCollapsible(False)
        # Proportions, not hints: the plots' size hints (an empty plot's hint text, the heatmap's
        # controls) would otherwise give the heatmap most of the width at 1280x720.
        top.setSizes([5000, 2300, 2300])
        bottom.setSizes([3000, 3000, 2600])
        outer.setSizes([3000, 2000])
        self.splitters = (outer, top, bottom)
        #: The narrow layout's tabs (layer curves, update ratio, saturation); empty when wide.
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.hide()
        bottom.addWidget(self.tabs)  # hidden at the end of the bottom row until the layout is narrow
        self.narrow = False
        self._layout.replaceWidget(self._placeholder, outer)
        self._placeholder.deleteLater()

        self.heatmap.metric_changed.connect(self._on_metric_changed)
        self.heatmap.step_picked.connect(self._on_step_picked)
        self.heatmap.latest_requested.connect(self._on_latest_requested)
        self.heatmap.branch_changed.connect(self._on_branch_changed)
        # the depth profile draws the same units of a transformer as the heatmap (stream or block)
        self.heatmap.unit_combo.currentIndexChanged.connect(lambda _i: self.depth_profile.set_unit_kind(self.heatmap.unit_combo.currentData()))
        self.layer_curves.layers_changed.connect(self._on_curve_layers_changed)
        self.update_ratio.layers_changed.connect(self._on_ratio_layers_changed)
        self.set_metric(self.metric_name)
        self._fit_layout(self.width())
        self.set_growing(self._growing)

    def set_growing(self, growing: bool) -> None:
        """Whether the run is training now: the step axes keep head room only while it does,
        so a paused or finished run's axes end at its last step (and never past its planned end)."""
        self._growing = growing
        if not self._built:
            return
        end = None
        config = getattr(self._store, "config", None)
        steps = config.get("steps") if isinstance(config, dict) else getattr(config, "steps", None)
        if isinstance(steps, int) and self._compare is None:
            end = float(steps)
        for plot in self.time_plots:
            for f in plot.followers:
                f.set_growing(growing, end)
        if self._store is not None:
            self.refresh(self._store, force=True, compare=self._compare)

    # ----------------------------------------------------------------- layout
    def resizeEvent(self, event) -> None:  # Qt API
        super().resizeEvent(event)
        if self._built:
            self._fit_layout(event.size().width())

    def _fit_layout(self, width: int) -> None:
        """Three plots a row when there is room, else two a row and the small ones as tabs."""
        if width <= 0:
            return
        if not self.narrow and width < NARROW_PX:
            self.set_narrow(True)
        elif self.narrow and width > NARROW_PX + NARROW_HYSTERESIS_PX:
            self.set_narrow(False)

    def set_narrow(self, narrow: bool) -> None:
        """Choose the layout: narrow (heatmap | depth profile over tabs | loss) or wide (3 + 3)."""
        if narrow == self.narrow:
            return
        self.narrow = narrow
        outer, top, bottom = self.splitters
        if narrow:
            for name, title in NARROW_TABS:
                self.tabs.addTab(getattr(self, name), title)
            if self._heads_on:
                self.tabs.addTab(self.heads, HEADS_TAB)
            bottom.insertWidget(0, self.tabs)
            self.tabs.show()
            top.setSizes([5000, 4000])
            bottom.setSizes([5000, 4000])
        else:
            self.tabs.hide()
            while self.tabs.count():
                self.tabs.removeTab(0)
            top.insertWidget(2, self.activations)
            top.insertWidget(3, self.heads)
            bottom.insertWidget(0, self.layer_curves)
            bottom.insertWidget(1, self.update_ratio)
            bottom.addWidget(self.tabs)
            for plot in (self.activations, self.layer_curves, self.update_ratio):
                plot.show()
            self.heads.setVisible(self._heads_on)
            top.setSizes([5000, 2300, 2300, 2300 if self._heads_on else 0])
            bottom.setSizes([3000, 3000, 2600, 0])

    def _show_heads(self, on: bool) -> None:
        """Show the per-head plot (a tab when narrow, fourth in the top row when wide) or hide it."""
        if on == self._heads_on:
            return
        self._heads_on = on
        _outer, top, _bottom = self.splitters
        if self.narrow:
            i = self.tabs.indexOf(self.heads)
            if on and i < 0:
                self.tabs.addTab(self.heads, HEADS_TAB)
            elif not on and i >= 0:
                self.tabs.removeTab(i)
                top.insertWidget(3, self.heads)  # parked, hidden, where the wide layout wants it
                self.heads.hide()
        else:
            self.heads.setVisible(on)
            if on:
                self._balance_top()
                # Shown into a laid-out splitter, the plot took the space the others had left
                # (depth profile and saturation squeezed to 72 px at 1600x1000): balance again
                # once the splitter has placed it.
                self._balance_later.start()

    def _balance_top(self) -> None:
        """The top row in its proportions (heatmap wider), in pixels of the row's current width."""
        _outer, top, _bottom = self.splitters
        if self.narrow:
            return
        weights = [5000, 2300, 2300, 2300 if self._heads_on else 0][: top.count()]
        total = max(sum(top.sizes()), top.width())
        top.setSizes([int(total * w / sum(weights)) for w in weights])

    # ----------------------------------------------------------------- public
    @property
    def plots(self) -> tuple[PlotBase, ...]:
        """All six plot widgets."""
        return (
            self.heatmap,
            self.depth_profile,
            self.activations,
            self.layer_curves,
            self.update_ratio,
            self.loss_accuracy,
        )

    @property
    def time_plots(self) -> tuple[TimePlotBase, ...]:
        """The plots over steps, which draw event markers."""
        return (self.heatmap, self.layer_curves, self.update_ratio, self.loss_accuracy)

    def refresh(self, store: Session, force: bool = False, compare: Optional[Session] = None) -> bool:
        """Update every plot from ``store``; returns False (and does nothing) when it has not changed.

        Called ~30 times a second by the main window's timer, so the unchanged
        case must cost next to nothing: it compares the row count, the last
        step and the event count. ``force=True`` redraws every item regardless
        (per-bin reductions of rows already seen are still reused; ``reset()``
        drops them). ``compare``: branch B of a forked run, drawn on the same
        axes (dashed) and offered by the heatmap.
        """
        n = len(store)
        key = (n, int(store.steps[-1]) if n else -1, len(store.events), store.n_layers, _store_key(compare))
        if not force and store is self._store and compare is self._compare and key == self._key:
            return False
        if (compare is None) != (self._compare is None):
            self.heatmap.set_forked(compare is not None)
        if store is not self._store or compare is not self._compare:
            self._store, self._compare = store, compare
            self.set_growing(self._growing)  # the planned end of the new store
        self._store = store
        self._compare = compare
        self._key = key
        for plot in self.plots:
            if plot is self.heatmap:
                continue
            plot.set_compare(compare)
            plot.refresh(store)
        self._show_heads(self.heads.applies_to(store))
        if self._heads_on:
            self.heads.refresh(store)
        heat = self._heatmap_store(store, compare)
        self.heatmap.refresh(heat)
        if force or key[2] != self._n_events or compare is not None:
            events = store.events if compare is None else compared_events(store, compare)
            for plot in self.time_plots:
                plot.set_events(heat.events if plot is self.heatmap and heat is not store else events)
            self._n_events = key[2]
        return True

    def _heatmap_store(self, store: Session, compare: Optional[Session]) -> Session:
        """What the heatmap draws: branch A, branch B, or the ratio B/A (its log10 is the difference)."""
        mode = self.heatmap.branch if compare is not None else "A"
        if mode == "B" and compare is not None and len(compare):
            return compare
        if mode == "ratio" and compare is not None:
            return ratio_session(store, compare)
        return store

    def reset(self) -> None:
        """Empty every plot and forget the store (a new run starts)."""
        if not self._built:
            self._store = self._compare = self._key = None
            return
        self._store = None
        self._compare = None
        self._key = None
        self._n_events = -1
        for plot in self.plots:
            plot.reset()
        self.heads.reset()

    def set_metric(self, name: str) -> None:
        """Show ``name`` in the heatmap, the depth profile and the layer curves."""
        from .labels import HEATMAP_METRICS

        if name not in HEATMAP_METRICS:
            raise ValueError(f"metric {name!r}: one of {', '.join(HEATMAP_METRICS)}")
        self.metric_name = name
        self.heatmap.set_metric(name)
        self.depth_profile.set_metric(name)
        self.layer_curves.set_metric(name)

    def set_layers(self, layers: Optional[list[int]]) -> None:
        """Layers drawn by the layer curves and the update-ratio plot (None: first, middle, last)."""
        self.layer_curves.set_layers(layers)
        self.update_ratio.set_layers(layers)

    def show_step(self, step: Optional[int]) -> None:
        """Depth profile (and heatmap cursor) at ``step``; None follows the latest step."""
        self.heatmap.show_step(step)
        self.depth_profile.show_step(step)

    def has_data(self) -> bool:
        """Whether the heatmap, depth profile and loss curve hold data (self-test, tests)."""
        x, _ = self.loss_accuracy.loss_curve.getData()
        return bool(self.heatmap.image_data.size > 0 and self.depth_profile.values.size > 0 and x is not None and len(x) > 0)

    def save_png(self, path: str | Path) -> Path:
        """Save what the panel shows to a PNG (for reports and lab hand-ins)."""
        path = Path(path)
        if not self.grab().save(str(path), "PNG"):
            raise OSError(f"could not write PNG to {path}")
        return path

    # ------------------------------------------------------------------ slots
    @Slot(str)
    def _on_metric_changed(self, name: str) -> None:
        """The heatmap's selector changed: the depth profile and curves follow it."""
        self.set_metric(name)

    @Slot(int)
    def _on_step_picked(self, step: int) -> None:
        """A click on the heatmap: show that step's depth profile."""
        self.depth_profile.show_step(step)

    @Slot()
    def _on_latest_requested(self) -> None:
        """A double-click on the heatmap: the depth profile follows the latest step again."""
        self.show_step(None)

    @Slot(str)
    def _on_branch_changed(self, _key: str) -> None:
        """The heatmap's branch choice changed: redraw it from the right store at once."""
        if self._store is not None:
            self.refresh(self._store, force=True, compare=self._compare)

    @Slot(list)
    def _on_curve_layers_changed(self, layers: list) -> None:
        """Layer curves got a new selection: the update-ratio plot shows the same layers."""
        self.update_ratio.set_layers(layers)

    @Slot(list)
    def _on_ratio_layers_changed(self, layers: list) -> None:
        """Update-ratio plot got a new selection: the layer curves follow."""
        self.layer_curves.set_layers(layers)


if __name__ == "__main__":
    from .demo_data import run_demo

    raise SystemExit(run_demo(PlotPanel))
