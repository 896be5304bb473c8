"""Training: the instrumented Trainer, its flat optimizers, activation probes and forks."""
