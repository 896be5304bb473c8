"""Bounded columnar store of a run's metrics and events.

A run of any length keeps memory flat: the store has a byte budget, and when
it is full it keeps every other recorded step and doubles ``record_every``
(stated in session.json), so the oldest and newest parts of a run keep the
same, coarser resolution instead of the newest rows being dropped.

Export and load live in :mod:`gradsim.session.io`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from ..metrics import LAYER_METRICS, STEP_INDEX, STEP_METRICS, LAYER_INDEX
from ..models.family import Unit, check_units, family_for, mlp_units

DEFAULT_MAX_MEMORY_MB = 256.0
_INITIAL_ROWS = 1024
#: Bytes of rows thinning moves at once (the most it ever holds besides the store).
_THIN_BLOCK_BYTES = 1 << 20


@dataclass(frozen=True)
class Event:
    """Something that happened to a run at a step boundary (see events.csv)."""

    step: int
    kind: str
    value: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "kind": self.kind, "value": self.value}


@dataclass
class StepRecord:
    """Everything one optimizer step measured.

    ``scalars`` follows :data:`STEP_METRICS`; ``layers`` is (n_layers, len(LAYER_METRICS))
    with layer 1 (next to the input) in row 0. Activation statistics are NaN when
    ``has_stats`` is False.
    """

    step: int
    scalars: np.ndarray
    layers: np.ndarray
    has_stats: bool

    def scalar(self, name: str) -> float:
        return float(self.scalars[STEP_INDEX[name]])

    def layer_metric(self, name: str) -> np.ndarray:
        return self.layers[:, LAYER_INDEX[name]]


@dataclass
class Rows:
    """A block of recorded rows, freshly allocated (safe to hand to another thread)."""

    steps: np.ndarray  # (n,) int64
    scalars: np.ndarray  # (n, len(STEP_METRICS)) float64
    layers: np.ndarray  # (n, n_layers, len(LAYER_METRICS)) float32
    has_stats: np.ndarray  # (n,) bool
    events: list[Event] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.steps.shape[0])


def default_units(n_layers: int, config: dict[str, Any]) -> list[Unit]:
    """The units a session without stored ones has: those its config's family
    describes, or an MLP's for a config that describes no network (a demo)."""
    if "depth" in config:
        return family_for(config).config_units(config)
    return mlp_units(n_layers)


class Session:
    """Metrics of one run, bounded in memory by ``max_memory_mb``."""

    # The store's arrays, allocated by _alloc (their first ``_n`` rows are filled).
    _steps: np.ndarray
    _scalars: np.ndarray
    _layers: np.ndarray
    _has_stats: np.ndarray

    def __init__(
        self,
        n_layers: int,
        config: Optional[dict[str, Any]] = None,
        max_memory_mb: float = DEFAULT_MAX_MEMORY_MB,
        record_every: int = 1,
        units: Optional[list[Unit]] = None,
    ) -> None:
        if n_layers < 1:
            raise ValueError(f"n_layers = {n_layers}: a session needs at least 1 layer")
        if not (max_memory_mb > 0):
            raise ValueError(f"max_memory_mb = {max_memory_mb}: must be > 0")
        self.n_layers = int(n_layers)
        self.config: dict[str, Any] = dict(config or {})
        self.max_memory_mb = float(max_memory_mb)
        self.record_every = int(record_every)
        self.events: list[Event] = []
        self.diverged_at: Optional[int] = None
        self.steps_run = 0
        self.meta: dict[str, Any] = {}
        #: What each row index of ``layers`` is (name, kind, parameters): the
        #: family's units, or those the config describes when none are given.
        self.units: list[Unit] = check_units(list(units) if units is not None else default_units(self.n_layers, self.config), self.n_layers)
        self.capacity = max(16, int(self.max_memory_mb * 1e6 // self.row_nbytes))
        self._n = 0
        # The newest step appended, kept whether or not the resolution records it:
        # a thinned store's last row may be many steps older than the run's end.
        self._latest: Optional[StepRecord] = None
        self._alloc(min(_INITIAL_ROWS, self.capacity))

    @classmethod
    def from_arrays(
        cls,
        steps: np.ndarray,
        scalars: np.ndarray,
        layers: np.ndarray,
        has_stats: np.ndarray,
        config: Optional[dict[str, Any]] = None,
        max_memory_mb: float = DEFAULT_MAX_MEMORY_MB,
        record_every: int = 1,
        units: Optional[list[Unit]] = None,
    ) -> "Session":
        """A session holding these rows (a loaded file, a benchmark's synthetic run).

        ``steps`` (n,), ``scalars`` (n, len(STEP_METRICS)), ``layers``
        (n, n_layers, len(LAYER_METRICS)), ``has_stats`` (n,). The store is
        sized to hold them whatever the budget; later appends thin as usual.
        """
        steps = np.asarray(steps, np.int64)
        n = len(steps)
        layers = np.asarray(layers, np.float32)
        if layers.ndim != 3 or layers.shape[0] != n or layers.shape[2] != len(LAYER_METRICS):
            raise ValueError(f"layers has shape {layers.shape}; expected ({n}, n_layers, {len(LAYER_METRICS)})")
        scalars = np.asarray(scalars, np.float64)
        if scalars.shape != (n, len(STEP_METRICS)):
            raise ValueError(f"scalars has shape {scalars.shape}; expected ({n}, {len(STEP_METRICS)})")
        session = cls(layers.shape[1], config, max_memory_mb=max_memory_mb, record_every=record_every, units=units)
        session.capacity = max(session.capacity, n)
        session._alloc(max(n, 16))
        session._steps[:n] = steps
        session._scalars[:n] = scalars
        session._layers[:n] = layers
        session._has_stats[:n] = np.asarray(has_stats, bool)
        session._n = n
        return session

    @property
    def model(self) -> str:
        """The model family that wrote the rows (sessions before format 3: ``mlp``)."""
        return str(self.config.get("model", "mlp"))

    # ------------------------------------------------------------------ storage
    @property
    def row_nbytes(self) -> int:
        """Bytes one recorded step costs in the store."""
        return 8 + 1 + 8 * len(STEP_METRICS) + 4 * self.n_layers * len(LAYER_METRICS)

    @property
    def nbytes(self) -> int:
        """Bytes the store holds allocated now (never above the budget)."""
        return sum(a.nbytes for a in (self._steps, self._scalars, self._layers, self._has_stats))

    def _alloc(self, rows: int) -> None:
        old = getattr(self, "_steps", None)
        steps = np.zeros(rows, np.int64)
        scalars = np.zeros((rows, len(STEP_METRICS)), np.float64)
        layers = np.zeros((rows, self.n_layers, len(LAYER_METRICS)), np.float32)
        has_stats = np.zeros(rows, bool)
        if old is not None:
            n = self._n
            steps[:n] = self._steps[:n]
            scalars[:n] = self._scalars[:n]
            layers[:n] = self._layers[:n]
            has_stats[:n] = self._has_stats[:n]
        self._steps, self._scalars, self._layers, self._has_stats = steps, scalars, layers, has_stats

    def _make_room(self) -> None:
        if self._n < self._steps.shape[0]:
            return
        if self._steps.shape[0] < self.capacity:
            self._alloc(min(self.capacity, 2 * self._steps.shape[0]))
            return
        self._thin()

    def _thin(self) -> None:
        """Keep every other recorded step (and any divergence row); double record_every."""
        n = self._n
        new_every = self.record_every * 2
        steps = self._steps[:n]
        keep = (steps % new_every == 0) | (self._scalars[:n, STEP_INDEX["diverged"]] > 0)
        if keep.all():  # rows not on the grid (a mirror fed odd steps): halve by position
            keep = np.zeros(n, bool)
            keep[::2] = True
        idx = np.flatnonzero(keep)
        m = idx.size
        # Compact in place, a block of rows at a time: one fancy-indexed copy of all kept rows
        # would be a temporary of half the budget (8 MB at a 16 MB budget of seq_len-1000 rows,
        # measured in RSS by benchmarks/recurrent_memory.py). Block by block is safe because
        # idx is increasing with idx[j] >= j: the rows a later block reads lie at or after its
        # destination, beyond what earlier blocks wrote.
        block = max(1, _THIN_BLOCK_BYTES // self.row_nbytes)
        for a in range(0, m, block):
            src = idx[a : a + block]
            b = a + src.size
            self._steps[a:b] = self._steps[src]
            self._scalars[a:b] = self._scalars[src]
            self._layers[a:b] = self._layers[src]
            self._has_stats[a:b] = self._has_stats[src]
        self._n = m
        self.record_every = new_every

    def wants(self, step: int, diverged: bool = False) -> bool:
        """Whether a row for ``step`` would be kept at the current resolution."""
        return diverged or step % self.record_every == 0

    def append(self, record: StepRecord) -> bool:
        """Store one step; returns False when the current resolution skips it."""
        self.steps_run = max(self.steps_run, record.step + 1)
        if self._latest is None or record.step >= self._latest.step:
            self._latest = StepRecord(record.step, record.scalars.copy(), record.layers.copy(), record.has_stats)
        diverged = bool(record.scalars[STEP_INDEX["diverged"]] > 0)
        if not self.wants(record.step, diverged):
            return False
        self._make_room()
        if not self.wants(record.step, diverged):  # thinning may have coarsened the grid
            return False
        i = self._n
        self._steps[i] = record.step
        self._scalars[i] = record.scalars
        self._layers[i] = record.layers
        self._has_stats[i] = record.has_stats
        self._n += 1
        return True

    def append_rows(self, rows: Rows) -> None:
        """Append a block (e.g. a snapshot from the training thread) row by row."""
        for i in range(len(rows)):
            self.append(StepRecord(int(rows.steps[i]), rows.scalars[i], rows.layers[i], bool(rows.has_stats[i])))
        for ev in rows.events:
            self.add_event(ev.step, ev.kind, ev.value)

    def add_event(self, step: int, kind: str, value: str = "") -> Event:
        ev = Event(int(step), str(kind), str(value))
        self.events.append(ev)
        if kind == "diverged" and self.diverged_at is None:
            self.diverged_at = int(step)
        return ev

    # ------------------------------------------------------------------- views
    def __len__(self) -> int:
        return self._n

    @property
    def steps(self) -> np.ndarray:
        return self._steps[: self._n]

    @property
    def scalars(self) -> np.ndarray:
        return self._scalars[: self._n]

    @property
    def layers(self) -> np.ndarray:
        """(rows, n_layers, len(LAYER_METRICS)) float32 view."""
        return self._layers[: self._n]

    @property
    def has_stats(self) -> np.ndarray:
        return self._has_stats[: self._n]

    def column(self, name: str) -> np.ndarray:
        """One per-step metric over the recorded rows (a view)."""
        return self._scalars[: self._n, STEP_INDEX[name]]

    def layer_metric(self, name: str) -> np.ndarray:
        """One per-layer metric as a (rows, n_layers) view."""
        return self._layers[: self._n, :, LAYER_INDEX[name]]

    def rows_after(self, step: int, events_from: int = 0) -> Rows:
        """Copies of the rows with step > ``step`` and of events[events_from:]."""
        start = int(np.searchsorted(self.steps, step, side="right"))
        sl = slice(start, self._n)
        return Rows(
            self._steps[sl].copy(),
            self._scalars[sl].copy(),
            self._layers[sl].copy(),
            self._has_stats[sl].copy(),
            list(self.events[events_from:]),
        )

    def first(self) -> Optional[StepRecord]:
        """The earliest recorded row (step 0 unless thinned away), as a copy of that row only."""
        if self._n == 0:
            return None
        return StepRecord(int(self._steps[0]), self._scalars[0].copy(), self._layers[0].copy(), bool(self._has_stats[0]))

    def last(self) -> Optional[StepRecord]:
        if self._n == 0:
            return None
        i = self._n - 1
        return StepRecord(int(self._steps[i]), self._scalars[i].copy(), self._layers[i].copy(), bool(self._has_stats[i]))

    def latest(self) -> Optional[StepRecord]:
        """The newest step appended, exactly as measured, even when thinning did not record it
        (the run's final numbers); the last recorded row for a store built from rows only."""
        if self._latest is not None:
            return StepRecord(self._latest.step, self._latest.scalars.copy(), self._latest.layers.copy(), self._latest.has_stats)
        return self.last()
