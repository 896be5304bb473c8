"""Names of the metrics a step produces, in the column order of the export.

One place for these names so the trainer, the session store, the exporter and
the plots can never disagree about what column 7 means.
"""
from __future__ import annotations

#: Per-step scalars (steps.csv, after the leading ``step`` column).
STEP_METRICS: tuple[str, ...] = (
    "loss",
    "accuracy",
    "grad_norm_total",
    "grad_norm_applied",
    "clipped",
    "lr",
    "diverged",
    "elapsed_s",
)

#: Per-layer metrics (layers.csv, after ``step,layer``). Layer = one Linear.
LAYER_METRICS: tuple[str, ...] = (
    "grad_norm",
    "bias_grad_norm",
    "weight_norm",
    "update_norm",
    "update_ratio",
    "act_grad_norm",
    "act_mean",
    "act_std",
    "act_saturation",
    "act_dead",
)

#: The activation statistics that are only sampled every ``stats_every`` steps
#: (they cost 50-70 % of a step, DESIGN.md section 7). Unsampled rows hold NaN
#: in memory and an empty cell in the CSV.
STATS_METRICS: tuple[str, ...] = ("act_mean", "act_std", "act_saturation", "act_dead")

STEP_INDEX = {name: i for i, name in enumerate(STEP_METRICS)}
LAYER_INDEX = {name: i for i, name in enumerate(LAYER_METRICS)}


def middle_layer(n_layers: int) -> int:
    """The middle *hidden* layer (1-based) of a net with ``n_layers`` Linear layers.

    One definition for exercises ("middle") and the plots' default curves:
    layers 1..n_layers-1 are hidden, n_layers is the output layer.
    """
    return max(1, n_layers // 2)
