"""Which activation a watched unit's statistics describe, and what they test (docs/watch.md).

A unit is a module that owns parameters (a Linear, a Conv2d, a LayerNorm ...);
its output is usually a pre-activation. Its statistics describe the output
of the *activation that follows it*: the first activation module (one of the
classes below) that runs after the unit's forward and before the next unit's
forward starts. A unit whose output is an activation already (an LSTM's hidden
state, a vanilla RNN's tanh or relu, a PReLU) is judged on its own output.
Without either (an activation called as a function, ``F.relu``), the row has
the mean and std of the unit's own output and its saturation and dead fraction
are NaN: not known, rather than a made-up 0.

- saturating in (0, 1) (sigmoid-like): the fraction of values < 0.03 or > 0.97;
- saturating in (-1, 1) (tanh-like): the fraction with |value| > 0.97;
- rectifying (ReLU-like: exact zeros on half the line): the fraction of
  *features* that are 0 for every sample (and position) of the step's batch;
  a feature is a channel for convolutions and the norms that follow them
  (dimension 1), the last dimension otherwise;
- every other activation (Leaky ReLU, GELU, ELU, SiLU, ...): both 0, it has no
  flat region and cannot die.

The thresholds are the simulator's own (gradsim.activations), so a watched
session and a simulated one mean the same thing by "saturated".
"""
from __future__ import annotations

from typing import Optional

from ..activations import SAT_SIGMOID_HI, SAT_SIGMOID_LO, SAT_TANH

#: Activation modules by lower-case class name -> how their output is judged:
#: "01" sigmoid-like, "pm1" tanh-like, "relu" rectifying, "smooth" neither.
ACTIVATION_KINDS: dict[str, str] = {
    "sigmoid": "01", "hardsigmoid": "01",
    "tanh": "pm1", "hardtanh": "pm1", "softsign": "pm1",
    "relu": "relu", "relu6": "relu",
    **{k: "smooth" for k in ("leakyrelu", "elu", "celu", "selu", "gelu", "silu", "mish", "softplus",
                             "rrelu", "hardswish", "logsigmoid", "tanhshrink", "softshrink", "hardshrink")},
}

#: Units whose own output is an activation (their class name -> kind); a vanilla RNN's
#: depends on its ``nonlinearity`` (see :func:`own_kind`).
SELF_ACTIVATED: dict[str, str] = {"lstm": "pm1", "gru": "pm1", "lstmcell": "pm1", "grucell": "pm1", "prelu": "smooth"}

#: Units whose outputs are laid out (batch, channel, ...): a rectified feature is a channel.
CHANNEL_FIRST = frozenset({
    "conv1d", "conv2d", "conv3d", "convtranspose1d", "convtranspose2d", "convtranspose3d",
    "batchnorm1d", "batchnorm2d", "batchnorm3d", "syncbatchnorm", "groupnorm",
    "instancenorm1d", "instancenorm2d", "instancenorm3d", "lazyconv1d", "lazyconv2d", "lazyconv3d",
})

SATURATION_BOUNDS = {"01": (SAT_SIGMOID_LO, SAT_SIGMOID_HI), "pm1": (-SAT_TANH, SAT_TANH)}


def own_kind(kind: str, module: object) -> Optional[str]:
    """How a unit's own output is judged when it is an activation already, else None."""
    if kind in ("rnn", "rnncell"):
        return "relu" if getattr(module, "nonlinearity", "tanh") == "relu" else "pm1"
    return SELF_ACTIVATED.get(kind)


def feature_dim(kind: str, ndim: int) -> int:
    """The dimension that indexes a unit's features (channels for convolutions)."""
    return 1 if kind in CHANNEL_FIRST and ndim >= 2 else ndim - 1
