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
    # Accuracy on the held-out split, measured every ``stats_every`` steps after the step's
    # update (NaN on other rows; "accuracy" is the training batch's). Last: in steps.csv it
    # comes after the theory-domain columns, so every earlier cell stays where it was.
    "test_accuracy",
)

#: The step metrics a session written before the held-out column holds (the v0.2.0 set).
HELD_OUT_METRICS: tuple[str, ...] = ("test_accuracy",)

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
    "pred_gain",
)

#: The activation statistics that are only sampled every ``stats_every`` steps
#: (they cost 50-70 % of a step, docs/architecture.md#pitfalls-measured-here). Unsampled rows hold NaN
#: in memory and an empty cell in the CSV.
STATS_METRICS: tuple[str, ...] = ("act_mean", "act_std", "act_saturation", "act_dead")

#: The theory's predicted ||dL/dz_l|| / ||dL/dz_(l+1)|| for the weights of the step
#: (gradsim.theory.mean_field), recorded at step 0, at every event and with the activation
#: statistics; NaN (an empty cell) for the output layer and on other rows.
PRED_METRICS: tuple[str, ...] = ("pred_gain",)

#: Per-layer metrics that measure a unit's parameters (a unit without
#: parameters, such as one time step of a recurrent layer, has none of them).
PARAM_METRICS: tuple[str, ...] = ("grad_norm", "bias_grad_norm", "weight_norm", "update_norm", "update_ratio")

#: Per-layer metrics of a unit's signal: its backprop gradient, its activations
#: and the theory's gain (a parameter group shared by many steps has none).
SIGNAL_METRICS: tuple[str, ...] = tuple(m for m in LAYER_METRICS if m not in PARAM_METRICS)

#: Narrowest hidden layer the mean-field prediction is made for (a large-width
#: theory); here, not in gradsim.theory.mean_field, so the window can say so without torch.
PRED_MIN_WIDTH = 16

#: Always recorded every step (cheap: one ``torch._foreach_norm`` each).
NORM_METRICS: tuple[str, ...] = tuple(m for m in LAYER_METRICS if m not in STATS_METRICS and m not in PRED_METRICS)

STEP_INDEX = {name: i for i, name in enumerate(STEP_METRICS)}
LAYER_INDEX = {name: i for i, name in enumerate(LAYER_METRICS)}


def middle_layer(n_layers: int) -> int:
    """The middle *hidden* layer (1-based) of a net with ``n_layers`` Linear layers.

    One definition for exercises ("middle") and the plots' default curves:
    layers 1..n_layers-1 are hidden, n_layers is the output layer.
    """
    return max(1, n_layers // 2)
