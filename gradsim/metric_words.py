"""Plain words for the names the engine records: metrics, layers, steps, comparisons, events.

One table, read by the window's plot labels and glossary (ui/plots/labels.py)
and by the exercises' requirements and the grader's feedback pages, so a
student reads "||dL/dz|| (backprop signal) of the last hidden layer" in
both places instead of ``act_grad_norm`` and ``last_hidden``.
"""
from __future__ import annotations

from typing import Any

#: Metric name (a steps.csv or layers.csv column) -> what it is, in words.
METRIC_WORDS: dict[str, str] = {
    "grad_norm": "||dL/dW|| (weight gradient)",
    "act_grad_norm": "||dL/dz|| (backprop signal)",
    "update_ratio": "||update|| / ||W||",
    "bias_grad_norm": "||dL/db|| (bias gradient)",
    "weight_norm": "||W|| (weight norm)",
    "update_norm": "||W_after - W_before||",
    "act_mean": "mean activation",
    "act_std": "activation spread (std)",
    "act_saturation": "fraction of saturated units",
    "act_dead": "fraction of dead units",
    "pred_gain": "predicted gain per layer",
    "loss": "training loss",
    "accuracy": "batch accuracy",
    "grad_norm_total": "total gradient norm",
    "grad_norm_applied": "applied gradient norm (after clipping)",
    "clipped": "clipped steps",
}

#: The mean of a step metric over a run, where a plain mean reads oddly.
STEP_MEAN_WORDS: dict[str, str] = {
    "clipped": "the fraction of steps whose gradient was clipped",
}

#: Layer names an exercise may use -> words.
LAYER_WORDS: dict[str, str] = {
    "first": "the first hidden layer",
    "middle": "the middle hidden layer",
    "last_hidden": "the last hidden layer",
    "last": "the output layer",
}

#: Comparison operators -> words.
OP_WORDS: dict[str, str] = {"<": "below", "<=": "at most", ">": "above", ">=": "at least", "==": "equal to"}

#: Event kinds -> what the change is, in words.
EVENT_WORDS: dict[str, str] = {
    "activation": "an activation change",
    "init": "a re-initialisation",
    "batchnorm": "batch norm switched",
    "layernorm": "layer norm switched",
    "residual": "skip connections switched",
    "clip": "a clipping change",
    "lr": "a learning-rate change",
    "optimizer": "an optimiser change",
    "prediction": "a recorded prediction",
}


def metric_words(name: str) -> str:
    """``name`` in words (unknown names as they are)."""
    return METRIC_WORDS.get(name, name)


def layer_words(layer: Any) -> str:
    """``1`` -> "layer 1", ``"last_hidden"`` -> "the last hidden layer"."""
    if isinstance(layer, str) and layer in LAYER_WORDS:
        return LAYER_WORDS[layer]
    return f"layer {layer}"


def step_words(step: Any) -> str:
    """``0`` -> "step 0", ``"last"`` -> "the last step"."""
    return "the last step" if step == "last" else f"step {step}"


def event_words(kind: str, value: str = "") -> str:
    """``("batchnorm", "on")`` -> "batch norm switched on (batchnorm=on)"; the recorded name stays in brackets."""
    words = EVENT_WORDS.get(kind, kind)
    if kind in ("batchnorm", "layernorm", "residual") and value in ("on", "off"):
        words = f"{words} {value}"
    elif value:
        words = f"{words} to {value.rstrip(':')}" if kind in ("clip", "lr", "activation", "init", "optimizer") else words
    return f"{words} ({kind}{'=' + value if value else ''})"
