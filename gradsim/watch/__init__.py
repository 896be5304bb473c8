"""Watching a user's own torch model: ``gradsim.watch(model, optimizer, out=...)``.

The package is callable, so ``gradsim.watch(...)`` and ``import gradsim.watch``
both work; torch is imported only when a watch starts (the window reads
watched sessions through :mod:`gradsim.watch.writer` without it).
"""
from __future__ import annotations

import os
import sys
import types
from typing import TYPE_CHECKING, Any

from .writer import MODEL, SessionWriter, WatchError, read_growing

if TYPE_CHECKING:
    from .recorder import Watch

__all__ = ["watch", "WatchError", "SessionWriter", "read_growing", "MODEL"]  # the class: gradsim.watch.recorder.Watch


def watch(model: Any, optimizer: Any, out: "str | os.PathLike[str]", every: int = 1, activations: bool = True,
          scaler: Any = None, overwrite: bool = False) -> "Watch":
    """Record ``model``'s per-layer gradient health at every ``every``-th ``optimizer.step()``
    into the session folder ``out`` (created; it must be new or empty unless ``overwrite``).

    ``activations=True`` adds forward hooks for ||dL/d output|| and activation statistics;
    ``activations=False`` adds none (a compiled model keeps its graph). With a GradScaler
    and ``activations=True``, pass ``scaler=`` so the activation gradients are unscaled
    too (parameter gradients are unscaled either way). Returns a :class:`Watch`
    (a context manager; ``.loss(loss)`` records the loss, ``.close()`` finishes).
    """
    from .recorder import Watch

    return Watch(model, optimizer, out, every=every, activations=activations, scaler=scaler, overwrite=overwrite)


class _CallableModule(types.ModuleType):
    """``gradsim.watch`` is both this package and the function of the same name."""

    def __call__(self, *args: Any, **kwargs: Any) -> "Watch":
        return watch(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
