"""Every kind of event a run records (events.csv's ``kind`` column), each with what it means.

Two families: command kinds change the run (a replay re-applies them, and
gradsim.commands has one parser per kind); annotation kinds only mark it. The
plots' colours and flags, the exercise checker, the preset loader and the
replay all read these tables, so a new kind is added here once.
"""
from __future__ import annotations

#: Command kinds: ``KEY=VALUE`` changes a run accepts at a step boundary.
COMMANDS: dict[str, str] = {
    "activation": "switch the hidden layers' activation function",
    "init": "re-initialise the weights with another scheme",
    "batchnorm": "turn batch normalisation after each hidden layer on or off",
    "layernorm": "turn layer normalisation after each hidden layer on or off",
    "residual": "turn residual (skip) connections around hidden layers on or off",
    "clip": "set gradient clipping (none, by norm or by value)",
    "lr": "set the learning rate",
    "optimizer": "switch the optimiser",
    "recurrent_init": "re-draw the recurrent weights W_hh (orthogonal, identity or normal:G; recurrent models)",
    "forget_bias": "set the LSTM forget gates' bias",
    "norm": "move a transformer's layer norms before each sublayer (pre) or after each residual add (post)",
    "warmup": "warm the learning rate up linearly over the next N steps (0: none)",
}

START = "start"
PAUSE = "pause"
DIVERGED = "diverged"
NOTE = "note"
PREDICTION = "prediction"

#: Annotation kinds: they mark a run without changing it (a replay does not apply them).
ANNOTATIONS: dict[str, str] = {
    START: "the run began (its value names the configuration)",
    PAUSE: "training was paused in the window",
    NOTE: "free text; a fork is recorded as a note beginning 'fork at step N' (branch B starts there)",
    DIVERGED: "the loss or a gradient became non-finite (its value says which, and the first value)",
    PREDICTION: "what the student predicted a toggle would do, recorded just before it "
    "(e.g. toggle=batchnorm=on;signal=grows;decades=2; format in gradsim.teaching.predictions)",
}

#: Annotations the trainer writes by itself, so a replay of the same run writes them again;
#: the other annotations come from the person at the window and a replay carries them over.
TRAINER_ANNOTATIONS: tuple[str, ...] = (START, DIVERGED)

#: Command kinds, in the order the command parsers and the menus list them.
COMMAND_KINDS: tuple[str, ...] = tuple(COMMANDS)
#: Annotation kinds.
ANNOTATION_KINDS: tuple[str, ...] = tuple(ANNOTATIONS)
#: Every event kind with its description (commands first).
EVENT_KINDS: dict[str, str] = {**COMMANDS, **ANNOTATIONS}


def is_command(kind: str) -> bool:
    """Whether ``kind`` changes a run (and so replays)."""
    return kind in COMMANDS
