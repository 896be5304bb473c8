"""How stored values become drawn points: clamping for log axes and step binning.

The plots must agree on what a "floor" is and on how 100,000 steps become
~2000 points, or a student comparing two plots would be comparing two
conventions. numpy only (no Qt), so all of it is testable without a display.
"""
from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

import numpy as np

if TYPE_CHECKING:
    from gradsim.session.store import Session

#: Smallest value drawn on a log axis. Zero, negative and tiny values are drawn here
#: (a log axis would otherwise turn them into silent gaps).
LOG_FLOOR = 1e-20
#: Largest value drawn on a log axis; +inf and anything above is drawn here.
LOG_CEIL = 1e20
#: The log10 of the clamp range, used as view limits so axes stay readable.
LOG_FLOOR_EXP = -20.0
LOG_CEIL_EXP = 20.0

#: At most this many bins (image columns) along the step axis of the heatmap.
MAX_IMAGE_COLUMNS = 2000
#: At most this many bins per time curve; each bin draws its min and max, so a
#: curve holds at most twice this many points.
MAX_CURVE_BINS = 1000


def clamp_for_log(values: np.ndarray) -> np.ndarray:
    """Copy of ``values`` (float64) clamped to [LOG_FLOOR, LOG_CEIL]; nan stays nan.

    Values <= 0 land on the floor and +inf on the ceiling, so a log axis shows
    them at its edge instead of dropping them.
    """
    out = np.asarray(values, dtype=np.float64).copy()
    with np.errstate(invalid="ignore"):
        np.clip(out, LOG_FLOOR, LOG_CEIL, out=out)
    return out



# --------------------------------------------------------------------------- bins
@dataclass
class Bins:
    """Per-bin extremes of some columns of the store, ``k`` consecutive rows per bin.

    ``mx``/``mn`` propagate nan (a bin holding any nan is nan), so a non-finite
    value anywhere in a bin can never be hidden by downsampling. From a
    :class:`BinCache` they are read-only views of its buffers, valid until its
    next ``update`` (each plot reads them in the frame that asked for them and
    replaces them at the next).
    """

    k: int
    n_rows: int
    mx: np.ndarray  # (nbins, C)
    mn: np.ndarray  # (nbins, C)
    #: Leading bins identical to the previous update's (a consumer may keep what it derived from them).
    stable: int = 0

    @property
    def n_bins(self) -> int:
        return int(self.mx.shape[0])

    def starts(self) -> np.ndarray:
        """Row index of the first row of each bin."""
        return np.arange(self.n_bins, dtype=np.int64) * self.k


_CHUNK_ROWS = 8192


def _reduce_rows(block: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Max and min over groups of ``k`` rows of ``block`` ((m*k, C), maybe strided)."""
    m = block.shape[0] // k
    c = block.shape[1]
    mx = np.empty((m, c), block.dtype)
    mn = np.empty((m, c), block.dtype)
    step = max(1, _CHUNK_ROWS // k) * k
    for a in range(0, m * k, step):
        b = min(a + step, m * k)
        # A contiguous copy of a cache-sized chunk is cheaper than reducing a
        # strided view of the (rows, layers, metrics) store twice.
        chunk = np.ascontiguousarray(block[a:b]).reshape((b - a) // k, k, c)
        chunk.max(axis=1, out=mx[a // k : b // k])
        chunk.min(axis=1, out=mn[a // k : b // k])
    return mx, mn


class BinCache:
    """Keeps per-bin max/min of growing store columns, so a refresh reads only new rows.

    The store only appends, except when it thins (full, it keeps every other step), which the
    cache notices (the step at its last completed row moved) and recomputes. Bins
    hold ``k`` rows, ``k`` a power of two chosen so that at most ``max_bins`` bins
    exist; when more rows arrive, pairs of bins merge (max of max, min of min), so
    the history is never re-read.
    """

    def __init__(self, max_bins: int) -> None:
        self.max_bins = int(max_bins)
        self.reset()

    def reset(self) -> None:
        """Forget everything (the next update re-reads the whole store)."""
        self._store_ref: Optional[weakref.ReferenceType[Session]] = None
        self._key: object = None
        self.k = 1
        self._nb = 0  # completed bins held
        self._mx: Optional[np.ndarray] = None
        self._mn: Optional[np.ndarray] = None
        self._first_step: Optional[int] = None
        self._last_full_step: Optional[int] = None

    def _valid_for(self, store: Session, key: object, n: int) -> bool:
        if self._store_ref is None or self._store_ref() is not store or key != self._key:
            return False
        done = self._nb * self.k
        if n < done:
            return False
        steps = store.steps
        if n and self._first_step is not None and int(steps[0]) != self._first_step:
            return False
        if done and int(steps[done - 1]) != self._last_full_step:
            return False
        return True

    def update(self, store: Session, key: object, fetch: Callable[[int, int], np.ndarray]) -> Bins:
        """Bins of ``fetch(a, b)`` (rows a..b of the columns, shape (b-a, C)) over the whole store."""
        n = len(store)
        stable = self._nb
        if not self._valid_for(store, key, n):
            self.reset()
            self._store_ref = weakref.ref(store)
            self._key = key
            stable = 0
        while -(-n // self.k) > self.max_bins:
            self._merge()
            stable = 0
        target = n // self.k
        if target > self._nb:
            a, b = self._nb * self.k, target * self.k
            mx, mn = _reduce_rows(fetch(a, b), self.k)
            if self._mx is None or self._mx.shape[1] != mx.shape[1] or self._mx.dtype != mx.dtype:
                self._mx = np.empty((self.max_bins + 1, mx.shape[1]), mx.dtype)
                self._mn = np.empty_like(self._mx)
            assert self._mn is not None
            self._mx[self._nb : target] = mx
            self._mn[self._nb : target] = mn
            self._nb = target
        done = self._nb * self.k
        self._first_step = int(store.steps[0]) if n else None
        self._last_full_step = int(store.steps[done - 1]) if done else None
        n_out = self._nb
        if n > done:
            # The partial last bin goes in the buffer's spare row (ceil(n / k) <= max_bins), so
            # a frame hands out views instead of copying every bin of the history again
            # (at 2000 columns x 100 layers that copy was ~1.3 MB per frame).
            tail = fetch(done, n)
            if self._mx is None or self._mx.shape[1] != tail.shape[1] or self._mx.dtype != tail.dtype:
                self._mx = np.empty((self.max_bins + 1, tail.shape[1]), tail.dtype)
                self._mn = np.empty_like(self._mx)
            assert self._mn is not None
            tail.max(axis=0, out=self._mx[self._nb])
            tail.min(axis=0, out=self._mn[self._nb])
            n_out += 1
        if self._mx is None or self._mn is None:
            probe = fetch(0, 0)
            empty = np.empty((0, probe.shape[1]), probe.dtype)
            return Bins(self.k, n, empty, empty.copy(), 0)
        mx, mn = self._mx[:n_out], self._mn[:n_out]
        mx.flags.writeable = False  # views of the cache: a plot must copy before changing them
        mn.flags.writeable = False
        return Bins(self.k, n, mx, mn, min(stable, self._nb))

    def _merge(self) -> None:
        """Double ``k``: pairs of completed bins become one (an odd last bin is re-read later)."""
        pairs = self._nb // 2
        if self._mx is not None and self._mn is not None and pairs:
            np.maximum(self._mx[0 : 2 * pairs : 2], self._mx[1 : 2 * pairs : 2], out=self._mx[:pairs])
            np.minimum(self._mn[0 : 2 * pairs : 2], self._mn[1 : 2 * pairs : 2], out=self._mn[:pairs])
        self._nb = pairs
        self.k *= 2


def curve_points(steps: np.ndarray, bins: Bins, col: int) -> tuple[np.ndarray, np.ndarray]:
    """x, y of one column for a curve: raw values when bins hold one row, else min and max per bin.

    Drawing both extremes of each bin keeps spikes visible at any zoom; nan stays
    nan (a gap with ``connect='finite'``).
    """
    if bins.n_bins == 0:
        return np.empty(0), np.empty(0)
    x0 = steps[bins.starts()].astype(np.float64)
    if bins.k == 1:
        return x0, bins.mx[:, col].astype(np.float64)
    x = np.repeat(x0, 2)
    y = np.empty(2 * bins.n_bins, np.float64)
    y[0::2] = bins.mn[:, col]
    y[1::2] = bins.mx[:, col]
    return x, y


def nonfinite_note(bins: Bins, steps: np.ndarray, what: str) -> str:
    """A one-line note about nan/inf and clamped values in some bins ('' when none)."""
    if bins.n_bins == 0:
        return ""
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(bins.mx) & np.isfinite(bins.mn))
        low = bins.mn <= LOG_FLOOR
        high = bins.mx > LOG_CEIL
    notes = []
    if bad.any():
        first = int(np.flatnonzero(bad.any(axis=1))[0])
        notes.append(f"{what} non-finite from step {int(steps[first * bins.k])}: nan = gap, inf at 1e20")
    if low.any():
        notes.append("0 or < 1e-20 drawn at 1e-20")
    if high.any():
        notes.append("> 1e20 drawn at 1e20")
    return "; ".join(notes)



def nearest_row(steps: np.ndarray, x: float) -> Optional[int]:
    """Index of the recorded row whose step is nearest ``x`` (None when empty)."""
    n = steps.shape[0]
    if n == 0 or not math.isfinite(x):
        return None
    i = int(np.searchsorted(steps, x))
    if i <= 0:
        return 0
    if i >= n:
        return n - 1
    return i if abs(steps[i] - x) < abs(x - steps[i - 1]) else i - 1
