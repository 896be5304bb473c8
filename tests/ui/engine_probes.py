"""What GUI tests read from the live Trainer, which runs in the engine's child process.

Qt-free on purpose: ``worker.submit`` pickles these functions to the engine by
module and name, and the engine must not import Qt to run them.
"""
from __future__ import annotations

from typing import Any


def trainer_facts(trainer: Any) -> dict[str, Any]:
    """The run's state as plain data (what the white-box window tests assert on)."""
    net = trainer.net
    live = {id(p) for p in net.parameters()}
    return {
        "step_index": int(trainer.step_index),
        "events": [(e.step, e.kind, e.value) for e in trainer.session.events],
        "rows": len(trainer.session),
        "activations": list(net.activations),
        "has_batchnorm": bool(net.has_batchnorm),
        "has_layernorm": bool(net.has_layernorm),
        "residual": bool(net.residual),
        "residual_alpha": float(net.residual_alpha) if net.residual_alpha is not None else None,
        "clip": (trainer.clip_mode, trainer.clip_threshold),
        "lr": float(trainer.lr),
        "optimizer": trainer.optimizer_name,
        "diverged_at": trainer.diverged_at,
        # the optimizer updates exactly the network's parameters, each a view into its arena
        "consistent": {id(p) for p in trainer.optimizer.params()} == live and all(a.owns_storage() for a in trainer.arenas.values()),
    }


def engine_pid(_session: Any) -> int:
    import os

    return os.getpid()


def session_counts(session: Any) -> tuple[int, int]:
    """Rows and events of the run's session."""
    return len(session), len(session.events)


def fail_with(_session: Any, message: str) -> None:
    """A task that fails (bind ``message`` with functools.partial)."""
    raise ValueError(message)


def engine_modules(_session: Any) -> dict[str, Any]:
    """What the engine process has imported: Qt must never be among it, nor the window's script."""
    import sys

    main = sys.modules.get("__main__")
    return {
        "pyside6": any(name == "PySide6" or name.startswith("PySide6.") for name in sys.modules),
        "torch": "torch" in sys.modules,
        "main_file": getattr(main, "__file__", None),
    }


def recurrent_facts(trainer: Any) -> dict[str, Any]:
    """A recurrent run's state as plain data: its events, and W_hh's spectral radius and the
    LSTM forget-gate bias computed here with numpy from the live weights."""
    import numpy as np

    net = trainer.net
    w = net.rnn.weight_hh_l0.detach().numpy().astype(np.float64)[: net.width]
    b = net.rnn.bias_ih_l0.detach().numpy()
    return {
        "step_index": int(trainer.step_index),
        "events": [(e.step, e.kind, e.value) for e in trainer.session.events],
        "spectral_radius": float(np.abs(np.linalg.eigvals(w)).max()),
        "forget_bias": b[net.width : 2 * net.width].tolist() if net.cell == "lstm" else None,
    }
