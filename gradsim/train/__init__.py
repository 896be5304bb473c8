"""Training: the instrumented Trainer, its flat optimizers, activation probes and forks."""

# The recurrent families' trainer registers itself with Trainer (gradsim.train.trainer).
from . import recurrent  # noqa: F401
