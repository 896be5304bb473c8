"""Label text (metric names, axis titles, number formatting) and the label widgets under and above plots."""
from __future__ import annotations

import html
import re
import math
from typing import Optional, Sequence

from PySide6.QtCore import QRect, QSize, Qt

from gradsim.metric_words import METRIC_WORDS
from PySide6.QtGui import QColor, QPainter, QPalette, QTextDocument
from PySide6.QtWidgets import QLabel, QSizePolicy

#: Metrics the shared selector offers: the three named in the design first.
HEATMAP_METRICS: tuple[str, ...] = (
    "grad_norm",
    "act_grad_norm",
    "update_ratio",
    "bias_grad_norm",
    "weight_norm",
    "update_norm",
)

#: The metrics' names in words: one table (gradsim.metric_words) for the plots, the glossary,
#: the exercises' requirements and the feedback pages.
METRIC_LABELS: dict[str, str] = {name: METRIC_WORDS[name] for name in HEATMAP_METRICS}

#: Axis titles: short, so a vertical title fits a short plot (the combo box and tooltips give the long names).
AXIS_LABELS: dict[str, str] = {
    "grad_norm": "||dL/dW||",
    "act_grad_norm": "||dL/dz||",
    "update_ratio": "||update||/||W||",
    "bias_grad_norm": "||dL/db||",
    "weight_norm": "||W||",
    "update_norm": "||update||",
}

METRIC_TIPS: dict[str, str] = {
    "grad_norm": "Norm of the weight gradient of each layer: flat across depth even when the backprop signal decays.",
    "act_grad_norm": "Norm of dL/dz at each layer's output: the backprop signal that vanishes or explodes with depth.",
    "update_ratio": "Size of each layer's weight update relative to its weights: ~1e-3 is healthy, far below means the layer barely learns.",
    "bias_grad_norm": "Norm of the bias gradient of each layer, a second view of how much signal reaches it.",
    "weight_norm": "Norm of each layer's weights before the update; it grows without bound when training explodes.",
    "update_norm": "Norm of the change of each layer's weights in this step.",
}


def fmt(value: float) -> str:
    """A compact exact-enough rendering of one metric value (nan/inf spelled out)."""
    v = float(value)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == 0:
        return "0"
    return f"{v:.4g}"



def compact_name(name: str) -> str:
    """A unit's name for a narrow legend: "linear 3" -> "L3", "time 12" -> "T12",
    "output" -> "out"; other names (module paths) as they are."""
    m = re.fullmatch(r"([a-z]+) (\d+)", name)
    if m:
        return m.group(1)[0].upper() + m.group(2)
    return "out" if name == "output" else name


class LegendLabel(QLabel):
    """A one-line legend above the plot (never on the data): a coloured mark and a name per entry.

    Why not pyqtgraph's LegendItem: it sits inside the view box, over curves
    and over guide labels such as the 1e-3 line's.
    """

    def __init__(self) -> None:
        super().__init__("")
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self._entries: list[tuple[str, str, bool]] = []
        self._compact = False

    def set_entries(self, entries: Sequence[tuple[str, str, bool]]) -> None:
        """(colour, name, dashed) per entry; the text changes only when the entries do."""
        entries = list(entries)
        if entries == self._entries:
            return
        self._entries = entries
        self.setToolTip(", ".join(name for _, name, _ in entries))
        self._render()

    def _html(self, compact: bool) -> str:
        parts = []
        for colour, name, dashed in self._entries:
            mark = ("\u2505" if dashed else "\u2501") * (1 if compact else 2)
            if compact:  # "prediction (no longer applies)" -> "prediction": the note below says why
                name = compact_name(name.split(" (")[0])
            sep = "" if compact else "&nbsp;"
            parts.append(f"<span style='color:{colour}'>{mark}</span>{sep}{html.escape(name)}")
        return ("&nbsp;" if compact else "&nbsp;&nbsp; ").join(parts)

    def _render(self) -> None:
        """The full legend, or a compact one ("L1 L10 L21") when the full one does not fit."""
        full = self._html(False)
        doc = QTextDocument()
        doc.setDefaultFont(self.font())
        doc.setHtml(full)
        fits = doc.idealWidth() <= self.contentsRect().width() or self.contentsRect().width() <= 0
        text = full if fits else self._html(True)
        if self.text() != text:
            self.setText(text)

    def resizeEvent(self, event) -> None:  # Qt API
        super().resizeEvent(event)
        self._render()

    def texts(self) -> list[str]:
        """The entries' names, in order."""
        return [name for _, name, _ in self._entries]


class FitLabel(QLabel):
    """A caption that never gets cut: it shows the longest of its variants that fits its width.

    The full text is always the tooltip. Why: plot headers such as
    "grad_norm per layer at step 899 (latest step)" were clipped in narrow
    panes at 1280x720.

    It paints its text itself instead of through ``QLabel.setText``: the depth
    profile's header changes with every step, and each ``setText`` asked the
    whole window to lay itself out again (``updateGeometry`` up to the top
    level), ~1 ms of every live frame for two headers. The label's size does
    not depend on its text (one line, as wide as the layout gives it), so a
    new text only repaints the label. ``text()`` and ``setText()`` keep
    QLabel's meaning for callers.
    """

    def __init__(self, text: str = "") -> None:
        super().__init__("")
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        # Opaque (filled with the window colour, as around it): a new text then repaints the
        # label alone, not the plot, splitters and panel behind it.
        self.setAutoFillBackground(True)
        self._variants: tuple[str, ...] = (text,)
        self._shown = ""
        #: Lines the label may wrap its text onto (1: never wraps); see set_lines.
        self._lines = 1
        self._fit()

    def set_lines(self, lines: int) -> None:
        """Let the text wrap onto up to ``lines`` lines (the label is that tall while shown):
        a note whose first clause is longer than a narrow plot is wide then reads whole."""
        if lines < 1:
            raise ValueError(f"lines = {lines}: at least 1")
        self._lines = int(lines)
        self.updateGeometry()
        self._fit()

    def _flags(self) -> int:
        return int(self.alignment()) | (int(Qt.TextFlag.TextWordWrap) if self._lines > 1 else 0)

    def _fits(self, text: str, width: int) -> bool:
        fm = self.fontMetrics()
        if self._lines == 1:
            return fm.horizontalAdvance(text) <= width
        box = fm.boundingRect(QRect(0, 0, max(1, width), 10_000), int(Qt.TextFlag.TextWordWrap), text)
        return box.width() <= width and box.height() <= self._lines * fm.lineSpacing()

    def set_variants(self, *texts: str) -> None:
        """Texts from longest to shortest; the first that fits is shown (the last is elided if need be)."""
        texts = tuple(t for t in texts if t) or ("",)
        if texts == self._variants:
            return
        self._variants = texts
        self.setToolTip(texts[0] if len(texts[0]) > 0 else "")
        self._fit()

    def setText(self, text: str) -> None:  # Qt API
        """One variant: shown whole when it fits, elided when not."""
        self.set_variants(text)

    def text(self) -> str:
        """The text shown now (the variant that fits, or the elided last one)."""
        return self._shown

    def full_text(self) -> str:
        return self._variants[0]

    def sizeHint(self) -> QSize:  # Qt API
        m = self.contentsMargins()
        fm = self.fontMetrics()
        return QSize(0, fm.height() + (self._lines - 1) * fm.lineSpacing() + m.top() + m.bottom())

    def minimumSizeHint(self) -> QSize:  # Qt API
        return self.sizeHint()

    def resizeEvent(self, event) -> None:  # Qt API
        super().resizeEvent(event)
        self._fit()

    def paintEvent(self, event) -> None:  # Qt API
        p = QPainter(self)
        self.style().drawItemText(
            p, self.contentsRect(), self._flags(), self.palette(), self.isEnabled(), self._shown, self.foregroundRole()
        )
        p.end()

    def _fit(self) -> None:
        width = self.contentsRect().width()
        fm = self.fontMetrics()
        chosen = None
        for text in self._variants:
            if self._fits(text, width):
                chosen = text
                break
        if chosen is None:
            if self._lines == 1:
                chosen = fm.elidedText(self._variants[-1], Qt.TextElideMode.ElideRight, max(0, width))
            else:  # shorten the last variant until its wrapped lines fit
                text = self._variants[-1]
                room = width * self._lines
                chosen = fm.elidedText(text, Qt.TextElideMode.ElideRight, room)
                while room > 0 and not self._fits(chosen, width):
                    room -= max(8, width // 8)
                    chosen = fm.elidedText(text, Qt.TextElideMode.ElideRight, max(0, room))
        if self._shown != chosen:
            self._shown = chosen
            self.update()



#: Where a read-out may be shortened: after ", " or "; ", before " | " or " (": never inside a number.
_READOUT_CUTS = re.compile(r"(?<=, )|(?<=; )|(?= \| )|(?= \()")
#: What replaces the parts left out.
MORE = " …"


#: The leading "step N, " / "steps N-M: " of a read-out: context the plot's axis or header also gives.
_READOUT_STEP = re.compile(r"^(A )?steps? [\d,]+(?:-[\d,]+)?[,:] ")


def readout_variants(text: str) -> tuple[str, ...]:
    """``text``, then shorter forms from most to least complete: without its leading "step N",
    then dropping whole trailing parts (and saying so with "…"), so a number is shown whole
    or not at all: "L1 = 2e-15" never reads "L1 = 2"."""
    short = _READOUT_STEP.sub(lambda m: m.group(1) or "", text, count=1)
    forms = [text] if short == text else [text, short]

    def cut(t: str) -> list[str]:
        parts = [p for p in _READOUT_CUTS.split(t) if p]
        return ["".join(parts[:k]).rstrip(" ,;|") + MORE for k in range(len(parts) - 1, 0, -1)]

    cuts = [cut(f) for f in forms]
    out = list(forms)
    for k in range(max(len(c) for c in cuts)):
        out += [c[k] for c in cuts if k < len(c)]
    out.append(MORE.strip())
    return tuple(dict.fromkeys(out))


class ReadoutLabel(FitLabel):
    """The exact values under the mouse, formatted to the width: whole parts only, the full
    text in the tooltip (plots at 1280x720 are a few hundred pixels wide)."""

    def __init__(self, tip: str) -> None:
        super().__init__(" ")
        self._tip = tip
        self.setToolTip(tip)

    def setText(self, text: str) -> None:  # Qt API
        self.set_variants(*readout_variants(text))
        full = self.full_text().strip()
        self.setToolTip(f"{full}\n\n{self._tip}" if full else self._tip)


def make_readout(tip: str) -> QLabel:
    """The label under a plot that shows exact values under the mouse."""
    return ReadoutLabel(tip)


class NoteLabel(FitLabel):
    """What a plot clamps or leaves out, on one line that never grows into the plot above it:
    whole parts that fit (cut after "; " or ", "), the full text on hover. ``text()`` is the
    full note, as callers set it.

    Why: a wrapped note of three clauses under the depth profile at 1280x720 was cut at
    its top and bottom by the fixed height its layout gave it.
    """

    TIP = "What this plot clamps or cannot draw (zero, nan, inf), so no gap is silent."

    def __init__(self) -> None:
        super().__init__("")
        # The colour by palette, not a style sheet: a widget with a style sheet keeps the
        # palette it had, so its filled background stayed light in presentation mode's black.
        pal = self.palette()
        pal.setColor(QPalette.ColorRole.WindowText, QColor("#e0a040"))
        self.setPalette(pal)
        self.setToolTip(self.TIP)
        self._note = ""
        self.setVisible(False)

    def setText(self, text: str) -> None:  # Qt API
        if text == self._note:
            return
        self._note = text
        if text:
            forms = list(readout_variants(text))
            # A note's first clause often reads "no theory line: <why>"; where not even that
            # fits, its lead ("no theory line: …") still says more than "…" alone.
            lead = text.split("; ")[0].split(": ")[0]
            if lead != text and len(lead) < 40:
                forms.insert(-1, lead + ":" + MORE)
            # Without the bare "…" that ends a read-out's forms: when not even the shortest
            # form fits, its elided start says what the note is about (the tooltip has it whole).
            if len(forms) > 1 and forms[-1] == MORE.strip():
                forms.pop()
            self.set_variants(*forms)
        else:
            self.set_variants("")
        self.setToolTip(f"{text}\n\n{self.TIP}" if text else self.TIP)
        self.setVisible(bool(text))

    def text(self) -> str:  # Qt API
        return self._note


def make_note() -> "NoteLabel":
    """The label that says what the plot clamps or leaves out, so no gap is silent."""
    return NoteLabel()



def unit_name(store: object, layer: int) -> str:
    """What the plots call row ``layer`` (1-based) of ``store``: its unit's name
    ("linear 3", "output"), or "layer N" where the store names no such unit."""
    units = getattr(store, "units", None) or ()
    return units[layer - 1].name if 1 <= layer <= len(units) else f"layer {layer}"


def unit_ticks(store: object, n_layers: int, most: int = 12, shown: Optional[Sequence[int]] = None) -> list[tuple[float, str]]:
    """Axis ticks naming the units at positions 1..n_layers: every position when
    there are at most ``most``, else an even spread that keeps the first and the
    last. ``shown`` (0-based rows, one per position) names a subset of the rows."""
    if n_layers < 1:
        return []
    if n_layers <= most:
        rows = list(range(1, n_layers + 1))
    else:
        # a round step (1, 2, 5 x 10^k) on its multiples reads at a glance (t 50, t 100, ..., not
        # t 18, t 35); multiples closer than half a step to an end are dropped so no two labels touch
        raw = n_layers / max(1, most - 1)
        mag = 10.0 ** math.floor(math.log10(raw))
        step = int(next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw))
        rows = [1] + [r for r in range(step, n_layers, step) if r - 1 > step / 2 and n_layers - r > step / 2] + [n_layers]
    ticks = [(float(r), unit_name(store, shown[r - 1] + 1 if shown is not None else r)) for r in rows]
    if all(name.startswith("stream ") for _, name in ticks):
        # a transformer's stream: the numbers alone fit a narrow axis; its title says "stream"
        ticks = [(x, name[len("stream "):]) for x, name in ticks]
    return ticks
