"""One-sentence tooltips: what each control does to the gradients.

Kept in one table so the builder and the live toggles explain the same knob
the same way, and a test can check that no control is left without one.
"""
from __future__ import annotations

TIPS: dict[str, str] = {
    "preset": "Load a ready-made configuration (and its scheduled mid-run events) that shows a known gradient pathology.",
    "dataset": "The data the network learns; its input size sets the fan-in of layer 1 and so the scale of the first layer's gradients.",
    "preview": "The training inputs coloured by class, so you can see how hard the task is before the gradients have to solve it.",
    "depth": "Number of hidden layers: every extra layer multiplies the backprop signal by one more Jacobian, so gradients vanish or explode geometrically with depth.",
    "width": "Units per hidden layer: with fan-in scaled inits the width sets the weight scale, and wider layers make the per-layer gradient gain more predictable.",
    "activation": "Nonlinearity of every hidden layer: its slope multiplies the backprop signal at each layer (sigmoid's is at most 0.25, so gradients vanish; ReLU passes 1 where active).",
    "init": "How the weights are drawn: weight scale times the activation's slope sets whether the backprop signal shrinks or grows from layer to layer.",
    "init_std": "Standard deviation of the 'normal' init: well above 1/sqrt(width) the signal grows every layer (exploding), well below it shrinks (vanishing).",
    "init_scale": "Half-width of the 'uniform' init: like the std, it sets how much each layer amplifies or damps the backprop signal.",
    "batchnorm": "Batch norm after each hidden Linear: it re-scales every layer's activations, which keeps the backprop signal near unit size at any depth.",
    "layernorm": "Layer norm after each hidden Linear: it normalises each sample over the units, so unlike batch norm it works at any batch size, even 1.",
    "residual": "Skip connections around hidden blocks 2..depth: the signal passes each block as z + alpha * block(z), so the backprop gain per block is sqrt(1 + alpha^2 chi) instead of sqrt(chi).",
    "residual_alpha": "Weight alpha of each residual branch; empty means 1/sqrt(depth), which keeps the signal within a factor e^(chi/2) over the whole depth.",
    "clip_mode": "Gradient clipping before the update: 'norm' rescales the whole gradient, 'value' caps each entry; it tames exploding updates but cannot revive vanished gradients.",
    "clip_threshold": "Largest total gradient norm ('norm') or largest single gradient entry ('value') allowed before clipping kicks in.",
    "optimizer": "Update rule: Adam divides each gradient by its running scale, hiding vanishing gradients in the update size; SGD and momentum apply them as they are.",
    "lr": "Step size: every gradient is multiplied by it, so a large value turns big gradients into divergence and a small one freezes layers whose gradients vanished.",
    "batch_size": "Samples per step: larger batches give smoother gradient estimates (batch norm needs at least 2).",
    "seed": "Random seed for data, weights and batches: the same seed gives the same gradients, step for step.",
    "steps": "Number of optimizer steps the run takes; it stops earlier if the gradients become non-finite (divergence).",
    "stats_every": "Measure activation mean, std, saturation and dead units every K steps: they cost more than a step's gradient norms, so sampling keeps training fast.",
    "schedule": "Events the preset applies by itself mid-run (STEP:KEY=VALUE), shown as markers on the plots when they happen.",
    "clear_schedule": "Remove the preset's scheduled mid-run events, so the run changes only when you toggle something.",
    # live toggles
    "live_activation": "Switch every hidden layer to this activation at the next step: the backprop signal's per-layer factor changes at once.",
    "live_activation_apply": "Send the activation change to the running network; it takes effect at the next step and is logged as an event.",
    "live_init": "Scheme for re-drawing all weights mid-run: a fresh, well-scaled init can rescue vanished or exploded gradients.",
    "live_init_scale": "Std (for 'normal') or half-width (for 'uniform') of the re-drawn weights; larger values make the backprop signal grow per layer.",
    "live_reinit": "Re-draw all Linear weights now with the chosen scheme (optimizer state of the weights is dropped); gradients restart from the new scale.",
    "live_batchnorm": "Insert or remove batch norm in every hidden block at the next step; with it on, the backprop signal stays near unit size through depth.",
    "live_layernorm": "Insert or remove layer norm in every hidden block at the next step; it normalises each sample on its own, so it works at batch size 1 or 2 where batch norm cannot.",
    "live_residual": "Switch skip connections on or off at the next step (no weights change): with them on, the backprop signal passes each block with gain sqrt(1 + alpha^2 chi).",
    "live_residual_alpha": "alpha of the skip connections sent with the toggle; empty means 1/sqrt(depth).",
    "live_clip_mode": "Clip gradients from the next step on: 'norm' rescales the whole gradient to the threshold, 'value' caps each entry, 'none' turns clipping off.",
    "live_clip_threshold": "Threshold for clipping: total gradient norm ('norm') or largest entry ('value') allowed in an update.",
    "live_clip_apply": "Send the clipping change to the running network; it applies to the next step's gradients.",
    "live_lr": "New learning rate: it scales every update from the next step on, without changing the gradients themselves.",
    "live_lr_apply": "Send the learning-rate change to the running optimizer at the next step.",
    "live_optimizer": "Switch the update rule mid-run (optimizer state is rebuilt): Adam normalizes the update size per parameter, SGD does not.",
    "live_optimizer_apply": "Send the optimizer change to the run; it takes effect at the next step.",
    # actions
    "run": "Start or pause training (Space); the gradient plots update live while it runs.",
    "step": "Run exactly one optimizer step (S) and pause, to watch one update of the gradients.",
    "reset": "Discard the current run and its plots (R); the next Run starts again from freshly initialized weights.",
    "export": "Write the whole session (config, events, every recorded per-layer gradient metric) to a folder of CSV and JSON files (Ctrl+E).",
    "save_png": "Save the current plots as a PNG image.",
    "quit": "Close GradSim (Ctrl+Q); a running training is stopped first.",
    "metric": "Per-layer metric shown by the heatmap and the depth profile: the weight gradient, the backprop signal dL/dz or the update-to-weight ratio.",
    "event_log": "Every change to the run (your toggles, scheduled events, divergence), with the step at which it took effect.",
}
