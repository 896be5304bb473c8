"""The live toggles' "What to try" box: the fixes that apply to the running family, and only those.

Why per family: a transformer run listed batch norm and "re-init with he_normal"
(commands it does not take) and nothing about layer-norm position or warm-up.
"""
from __future__ import annotations

_MLP = (
    "<li><b>Vanishing</b> (heatmap dark toward layer 1, flat loss): switch batch norm on, "
    "or the activation to relu and re-init with he_normal.</li>"
    "<li><b>Exploding</b> (bright rows toward layer 1, loss spikes or goes to inf): clip by norm "
    "at 1, lower the learning rate, or re-init with he_normal <i>and</i> raise the learning rate "
    "(e.g. to 0.01): a rate small enough for the exploded net leaves a well-scaled one frozen.</li>"
    "<li><b>Very deep</b> (50-100 layers): switch skip connections on; at batch size 1-2 use "
    "layer norm, since batch norm needs a real batch.</li>"
)
_RECURRENT = (
    "<li><b>Exploding through time</b> (rows toward t 1 bright, loss spikes): clip by norm at 1, "
    "or lower the learning rate.</li>"
    "<li><b>Vanishing through time</b> (rows toward t 1 dark, the task unlearned): re-draw W_hh "
    "orthogonal or identity (W_hh re-init), or use an LSTM with forget bias 1.</li>"
)
_TRANSFORMER = (
    "<li><b>Post-LN vs Pre-LN</b>: fork the run and set layer norms to <i>pre</i> on branch B; "
    "compare the residual-stream profile of the two branches.</li>"
    "<li><b>Loss spikes</b>: clip by norm at 1 or lower the learning rate. A warm-up is the usual fix "
    "for Post-LN in large models; at this size no setting was found where it reliably decides "
    "whether Post-LN learns (docs/transformer.md).</li>"
)
_ALWAYS = "<li>Each change shows as a marker on the time plots and a line in the event log.</li>"

#: model -> the fixes its live commands can apply.
_BY_MODEL = {"mlp": _MLP, "rnn": _RECURRENT, "lstm": _RECURRENT, "gru": _RECURRENT, "transformer": _TRANSFORMER}


def try_tips_html(model: str | None) -> str:
    """The box's rich text for ``model`` (None or an unknown model: every family's tips)."""
    body = _BY_MODEL.get(model or "", None)
    if body is None:
        body = _MLP + _RECURRENT + _TRANSFORMER
    return f"<b>What to try</b><ul style='margin-left:-20px'>{body}{_ALWAYS}</ul>"
