"""``GradSimCallback``: gradsim.watch inside a PyTorch Lightning ``Trainer``.

```python
from gradsim.watch.lightning import GradSimCallback
trainer = lightning.Trainer(callbacks=[GradSimCallback("runs/my-model")])
```

Why a callback and not ``gradsim.watch`` on the optimizer alone: Lightning's
32-bit loop calls ``optimizer.step(closure)`` and runs forward and backward
*inside* that call, after the optimizer's step pre-hook, so the pre-hook would
read the previous step's gradients. The callback reads them in
``on_before_optimizer_step`` instead, which Lightning calls after the closure's
backward and, with ``precision="16-mixed"``, after its GradScaler's
``unscale_``: the real gradients, never the scaled ones. The weights after the
step are read by the optimizer's step post-hook as in a plain loop, so a step
the scaler skips (inf or NaN gradients) leaves no row.

- the watched model is the LightningModule (units named by module path inside it,
  ``net.0``, ``encoder.layers.1.linear1``), the optimizer the first of
  ``trainer.optimizers``;
- the loss is the training step's (``outputs["loss"]`` or the tensor it returned),
  recorded at ``on_train_batch_end`` of a batch that took an optimizer step; with
  ``accumulate_grad_batches`` it is the mean over the step's micro-batches (the loss
  whose gradient the step applies). ``accuracy_key`` names a value of the training
  step's output dict for steps.csv's accuracy (the mean over the micro-batches);
- gradients are read before Lightning's own clipping (``gradient_clip_val``): Lightning
  clips after ``on_before_optimizer_step``; ``update_norm`` shows the clipped step;
- the session is closed at ``on_train_end`` and when training raises (``on_exception``).

Lightning is imported here only: ``import gradsim`` and ``import gradsim.watch``
never load it (the optional extra ``lightning`` installs it).
"""
from __future__ import annotations

import os
from typing import Any, Optional

try:
    from lightning.pytorch import Callback
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError("gradsim.watch.lightning needs PyTorch Lightning: pip install 'gradsim[lightning]'") from exc

from .recorder import Watch
from .writer import WatchError

__all__ = ["GradSimCallback"]


class GradSimCallback(Callback):
    """Record the LightningModule's per-layer gradient health into the session folder ``out``.

    ``every``, ``activations`` and ``overwrite`` are gradsim.watch's. The Watch is
    made at ``on_train_start`` (the model is on its device and the optimizer exists)
    and is ``self.watch`` until training ends.
    """

    def __init__(self, out: "str | os.PathLike[str]", every: int = 1, activations: bool = True,
                 overwrite: bool = False, accuracy_key: Optional[str] = None) -> None:
        super().__init__()
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise WatchError(f"every = {every!r}, expected a whole number >= 1 (record every N-th optimizer step)")
        if not isinstance(activations, bool):
            raise WatchError(f"activations = {activations!r}, expected True or False")
        if accuracy_key is not None and not isinstance(accuracy_key, str):
            raise WatchError(f"accuracy_key = {accuracy_key!r}, expected the name of a value the training step returns, or None")
        self.out, self.every, self.activations, self.overwrite = out, every, activations, overwrite
        self.accuracy_key = accuracy_key
        self.watch: Optional[Watch] = None
        self._steps_seen = 0  # Watch.step at the end of the previous batch
        self._loss: Any = None  # the current step's micro-batch losses, summed
        self._accs: list[Any] = []

    # -------------------------------------------------------------- start
    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        optimizers = list(trainer.optimizers)
        if len(optimizers) != 1:
            raise WatchError(f"GradSimCallback watches one optimizer; the LightningModule configured {len(optimizers)}")
        plugin = getattr(trainer, "precision_plugin", None)
        scaler = getattr(plugin, "scaler", None)  # "16-mixed": Lightning's GradScaler
        self.watch = Watch(pl_module, optimizers[0], self.out, every=self.every, activations=self.activations,
                           scaler=scaler, overwrite=self.overwrite, step_pre_hook=False)
        self._steps_seen, self._loss, self._accs = 0, None, []

    # ----------------------------------------------------------- each step
    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        if self.watch is not None and optimizer is self.watch.optimizer:
            self.watch.read_gradients()

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        w = self.watch
        if w is None:
            return
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        acc = outputs.get(self.accuracy_key) if isinstance(outputs, dict) and self.accuracy_key else None
        # Lightning divides each micro-batch's loss by accumulate_grad_batches, so their sum is the
        # loss whose gradient the step applies (the mean over its micro-batches); no host sync here.
        if loss is not None and _one_number(loss):
            self._loss = loss.detach() if self._loss is None else self._loss + loss.detach()
        if acc is not None and _one_number(acc):
            self._accs.append(acc.detach() if hasattr(acc, "detach") else acc)
        if w.step == self._steps_seen:  # accumulating (or the scaler skipped the step): not yet
            return
        self._steps_seen = w.step
        loss_sum, accs, self._loss, self._accs = self._loss, self._accs, None, []
        if loss_sum is not None:  # a step with no loss to show keeps NaN there
            w.loss(loss_sum, sum(accs) / len(accs) if accs else None)

    # ---------------------------------------------------------------- end
    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self._close()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._close()

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self._close()  # a run stopped in a way that skipped on_train_end still finishes its folder

    def _close(self) -> None:
        if self.watch is not None:
            self.watch.close()


def _one_number(v: Any) -> bool:
    import torch

    if isinstance(v, torch.Tensor):
        return v.numel() == 1
    return isinstance(v, (int, float)) and not isinstance(v, bool)
