"""Units and the interface every model family implements.

A *unit* is one row index of layers.csv: what the row measures (``kind``), what
plots call it (``name``) and which of the network's ``named_parameters()`` its
``grad_norm`` / ``bias_grad_norm`` read (``params``). A session stores its
units, so a plot, a grader or a diagnosis can label and pick rows without
knowing which network wrote them.

A *family* (``RunConfig.model``) builds its network, lists its units, names the
probes and live commands it supports and may offer a theory of its gains.
This module imports no torch: the window reads units from a session file and
never loads torch; a family imports torch only where it builds a network.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Optional, Sequence

from ..commands import PARSERS, Command, CommandError
from ..config import MODEL_DATASETS, RECURRENT_MODELS
from ..metrics import PARAM_METRICS
from ..data.sequences import SEQUENCE_DATASETS

#: Kinds of unit and what their row holds (docs/session-format.md).
#: ``linear``: an MLP layer, its parameters and its signal ||dL/dz||;
#: ``time``: one time step of a recurrent layer (signal and activations, no parameters);
#: ``param``: a parameter group with no signal of its own;
#: ``block``: a transformer sublayer, its parameters and the gradient at its output;
#: ``stream``: the residual stream entering a block (signal only);
#: ``head``: one attention head of a transformer block (its entropy and saturated rows only).
#: A watched model's units take the module's class name in lower case instead.
UNIT_KINDS = ("linear", "time", "param", "block", "stream", "head")

#: Kinds whose row has no backprop signal (act_grad_norm) of its own. A ``head``
#: row holds only attention statistics, so plots of signals and activations skip it.
NO_SIGNAL_KINDS = frozenset({"param", "head"})

#: What ``ModelFamily.theory()`` returns: (network, input batch) -> the
#: predicted gain of each unit (NaN where the theory says nothing).
TheoryHook = Callable[[Any, Any], Any]


def carries_signal(kind: str) -> bool:
    """Whether a unit of this kind has a backprop signal to draw (heatmap, depth profile)."""
    return kind not in NO_SIGNAL_KINDS


class UnitError(ValueError):
    """A malformed unit list; the message names the entry and the bad value."""


@dataclass(frozen=True)
class Unit:
    """One row index of layers.csv (see the module docstring)."""

    layer: int
    name: str
    kind: str
    params: tuple[str, ...] = ()

    @property
    def has_signal(self) -> bool:
        return carries_signal(self.kind)

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "name": self.name, "kind": self.kind, "params": list(self.params)}

    @classmethod
    def from_dict(cls, data: Any, where: str = "unit") -> "Unit":
        """Build from a session.json entry, checked (never trusted)."""
        if not isinstance(data, dict):
            raise UnitError(f"{where}: expected an object with layer, name, kind, params; got {type(data).__name__}")
        missing = [k for k in ("layer", "name", "kind") if k not in data]
        if missing:
            raise UnitError(f"{where}: {missing[0]!r} is missing")
        layer, name, kind, params = data["layer"], data["name"], data["kind"], data.get("params", [])
        if isinstance(layer, bool) or not isinstance(layer, int) or layer < 1:
            raise UnitError(f"{where}: layer = {layer!r}, expected a whole number >= 1")
        if not isinstance(name, str) or not name.strip():
            raise UnitError(f"{where}: name = {name!r}, expected a non-empty text")
        if not isinstance(kind, str) or not kind:
            raise UnitError(f"{where}: kind = {kind!r}, expected one of {', '.join(UNIT_KINDS)} or a module class name")
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            raise UnitError(f"{where}: params = {params!r}, expected a list of parameter names")
        return cls(layer, name, kind, tuple(params))


def check_units(units: list[Unit], n_layers: int, where: str = "units") -> list[Unit]:
    """Raise UnitError unless ``units`` are layers 1..n_layers in order with distinct names."""
    if len(units) != n_layers:
        raise UnitError(f"{where}: {len(units)} units for {n_layers} layers; expected one unit per row index of layers.csv")
    seen: set[str] = set()
    for j, u in enumerate(units, 1):
        if u.layer != j:
            raise UnitError(f"{where}[{j - 1}]: layer = {u.layer}, expected {j} (units are listed in layer order)")
        if u.name in seen:
            raise UnitError(f"{where}[{j - 1}]: name {u.name!r} is used twice; plots pick units by name")
        seen.add(u.name)
    return units


def units_from_json(data: Any, n_layers: int, where: str = "units") -> list[Unit]:
    """Units from session.json's ``units`` list, checked against the number of layers."""
    if not isinstance(data, list):
        raise UnitError(f"{where}: expected a list of units, got {type(data).__name__}")
    return check_units([Unit.from_dict(d, f"{where}[{i}]") for i, d in enumerate(data)], n_layers, where)


#: Metrics that count units by what their activation function does to them.
UNIT_ACTIVITY_METRICS = ("act_saturation", "act_dead")


def is_attention(unit: Unit) -> bool:
    """A transformer's attention sublayer (``attn l``): its act_* cells are attention statistics."""
    return unit.kind == "block" and unit.name.startswith("attn ")


def unit_rows(units: Sequence[Unit], metric: str) -> list[int]:
    """0-based rows of the units that ``metric`` is defined for: the units with
    a signal for signal metrics (act_grad_norm, ...), those with parameters for
    parameter metrics (grad_norm, ...). Plots draw these rows only, so a
    recurrent run's heatmap of ||dL/dh_t|| shows its time steps and not its
    weight groups. Every row when no unit qualifies (a foreign session)."""
    if metric in PARAM_METRICS:
        rows = [i for i, u in enumerate(units) if u.params]
    elif metric in UNIT_ACTIVITY_METRICS:
        # Saturated and dead *units* exist only after an activation function: not on a residual
        # stream (no activation: NaN), and not on an attention sublayer, whose four act_* cells
        # hold attention statistics (mean entropy, spread across heads, saturated softmax rows,
        # lowest head's entropy), which read as "dead units" were a diagnosis's false alarm.
        rows = [i for i, u in enumerate(units) if u.has_signal and u.kind != "stream" and not is_attention(u)]
    else:
        rows = [i for i, u in enumerate(units) if u.has_signal]
    return rows or list(range(len(units)))


def unit_names(units: list[Unit]) -> list[str]:
    return [u.name for u in units]


class ModelFamily(ABC):
    """What the simulator needs from one kind of network (``RunConfig.model``).

    ``commands`` are the keys of the live commands (gradsim.commands) the
    family's runs accept; ``probes`` the extra measurements it supports
    (``stats``: activation statistics, ``theory``: predicted gains,
    ``jacobian``: input-output Jacobian spectrum, ``learned``: the decision
    surface of a 2-D data set).
    """

    name: ClassVar[str] = ""
    commands: ClassVar[frozenset[str]] = frozenset()
    probes: ClassVar[tuple[str, ...]] = ()

    @property
    def datasets(self) -> tuple[str, ...]:
        """The datasets this family trains on (RunConfig refuses the others)."""
        return MODEL_DATASETS[self.name]

    @abstractmethod
    def build(self, config: Any) -> Any:
        """A fresh network for ``config`` (a RunConfig), not yet initialised."""

    @abstractmethod
    def units(self, network: Any) -> list[Unit]:
        """The units (one per row of layers.csv, in order) of a network this family built."""

    @abstractmethod
    def config_units(self, config: dict[str, Any]) -> list[Unit]:
        """The units of the network ``config`` (a session.json config object)
        describes, without building it: how a format-1 or format-2 session
        (which stored no units) gets them, and the window without torch."""

    def unit_counts(self, config: dict[str, Any]) -> tuple[int, ...]:
        """The numbers of units a session of ``config`` may hold (a loaded file is checked against them)."""
        return (len(self.config_units(config)),)

    def make_data(self, config: Any) -> Any:
        """The run's data set (train and test split) for ``config`` (a RunConfig)."""
        if config.dataset in SEQUENCE_DATASETS:
            from ..data.sequences import make_sequences

            return make_sequences(config.dataset, config.n_samples, config.seq_len, config.seed, config.test_fraction)
        from ..data.datasets import make_dataset

        return make_dataset(config.dataset, config.n_samples, config.noise, config.seed, config.test_fraction)

    def theory(self) -> Optional[TheoryHook]:
        """The predicted gain per unit for a network and an input batch, or None
        (a family without a theory records ``pred_gain`` empty)."""
        return _THEORY_HOOKS.get(self.name)

    def allows(self, key: str) -> bool:
        return key in self.commands

    def check_command(self, command: Command) -> None:
        """Raise CommandError (nothing changed) if this family's runs do not take ``command``."""
        if not self.allows(command.key):
            allowed = ", ".join(sorted(self.commands)) or "none"
            raise CommandError(f"{command.text()}: model {self.name!r} has no live {command.key!r} command; allowed: {allowed}")


#: Theory hooks by family name. The theory layer sits above the models (it reads
#: a built network), so it hands its hooks down here instead of being imported.
_THEORY_HOOKS: dict[str, TheoryHook] = {}


def provide_theory(model: str, hook: TheoryHook) -> None:
    """Register the theory's gain prediction for family ``model`` (called by gradsim.theory)."""
    _THEORY_HOOKS[model] = hook


#: Live commands only recurrent networks have (W_hh, the LSTM's forget gate).
RECURRENT_ONLY = frozenset({"recurrent_init", "forget_bias"})
#: Live commands only transformers have (where the layer norms sit).
TRANSFORMER_ONLY = frozenset({"norm"})


# ------------------------------------------------------------------ the MLP
def mlp_units(n_layers: int) -> list[Unit]:
    """The units of an MLP with ``n_layers`` Linear layers: ``linear 1`` ..
    ``linear depth`` and ``output``, each reading its Linear's weight and bias.

    Batch-norm and layer-norm parameters belong to no unit: layers.csv has no
    column for them, and switching them on mid-run must not change the units.
    """
    if isinstance(n_layers, bool) or not isinstance(n_layers, int) or n_layers < 1:
        raise UnitError(f"n_layers = {n_layers!r}, expected a whole number >= 1")
    return [
        Unit(j, "output" if j == n_layers else f"linear {j}", "linear", (f"linears.{j - 1}.weight", f"linears.{j - 1}.bias"))
        for j in range(1, n_layers + 1)
    ]


class MLPFamily(ModelFamily):
    """The deep MLP of v0.2.0 (gradsim.models.mlp.GradNet): every live command, every probe."""

    name = "mlp"
    commands = frozenset(PARSERS) - RECURRENT_ONLY - TRANSFORMER_ONLY
    probes = ("stats", "theory", "jacobian", "learned")

    def build(self, config: Any) -> Any:
        from ..data.datasets import dataset_shape
        from .mlp import GradNet  # torch only here: the window reads units without it

        n_in, n_out = dataset_shape(config.dataset)
        return GradNet(
            n_in, n_out, config.depth, config.width, config.activation, config.batchnorm, config.leaky_slope,
            layernorm=config.layernorm, residual=config.residual, residual_alpha=config.residual_alpha,
        )

    def units(self, network: Any) -> list[Unit]:
        """One unit per Linear, its parameter names read from ``named_parameters()``."""
        names = {id(p): n for n, p in network.named_parameters()}
        units = [
            Unit(u.layer, u.name, u.kind, (names[id(lin.weight)], names[id(lin.bias)]))
            for u, lin in zip(mlp_units(network.n_layers), network.linears)
        ]
        return check_units(units, network.n_layers)

    def config_units(self, config: dict[str, Any]) -> list[Unit]:
        depth = config.get("depth")
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise UnitError(f"config depth = {depth!r}, expected a whole number >= 1")
        return mlp_units(depth + 1)


# ------------------------------------------------------------ recurrent
def recurrent_units(seq_len: int, depth: int) -> list[Unit]:
    """The units of a recurrent net: ``t 1`` .. ``t T`` (kind ``time``: the top
    layer's h_t, t = 1 at the input end), then per stacked layer k ``input k``
    (W_ih, b_ih) and ``recurrent k`` (W_hh, b_hh), then ``head`` (kind ``param``).

    Only the top layer gets time units: it is the one the head reads, and
    T x depth rows would multiply the store by the depth for little more.
    """
    for what, v in (("seq_len", seq_len), ("depth", depth)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise UnitError(f"{what} = {v!r}, expected a whole number >= 1")
    units = [Unit(t, f"t {t}", "time") for t in range(1, seq_len + 1)]
    j = seq_len
    for k in range(depth):
        for part, short in (("input", "ih"), ("recurrent", "hh")):
            j += 1
            units.append(Unit(j, f"{part} {k + 1}", "param", (f"rnn.weight_{short}_l{k}", f"rnn.bias_{short}_l{k}")))
    units.append(Unit(j + 1, "head", "param", ("head.weight", "head.bias")))
    return units


class RecurrentFamily(ModelFamily):
    """Vanilla RNN (tanh or relu), LSTM or GRU (gradsim.models.rnn.RecurrentNet):
    ``depth`` stacked layers, ``width`` hidden units, a Linear head on the last step."""

    commands = frozenset({"clip", "lr", "optimizer", "recurrent_init"})
    probes = ("stats",)

    def __init__(self, name: str) -> None:
        self.name = name  # type: ignore[misc]  # one class, three family names
        if name == "lstm":  # the only cell with a forget gate
            self.commands = RecurrentFamily.commands | {"forget_bias"}  # type: ignore[misc]

    def build(self, config: Any) -> Any:
        from ..data.sequences import sequence_shape
        from .rnn import RecurrentNet  # torch only here

        n_in, n_out = sequence_shape(config.dataset, config.seq_len)
        return RecurrentNet(self.name, n_in, n_out, config.depth, config.width, config.activation, config.seq_len)

    def units(self, network: Any) -> list[Unit]:
        """The units, their parameter names read from ``named_parameters()``."""
        names = {id(p): n for n, p in network.named_parameters()}
        groups = {name: (names[id(w)], names[id(b)]) for name, w, b in network.param_groups()}
        units = [Unit(u.layer, u.name, u.kind, groups.get(u.name, u.params)) for u in recurrent_units(self._seq_len(network), network.depth)]
        return check_units(units, len(units))

    @staticmethod
    def _seq_len(network: Any) -> int:
        return int(network.seq_len)

    def config_units(self, config: dict[str, Any]) -> list[Unit]:
        return recurrent_units(config.get("seq_len"), config.get("depth"))  # type: ignore[arg-type]


# ------------------------------------------------------------ transformer
def transformer_units(depth: int, heads: int = 0) -> list[Unit]:
    """The units of a transformer of ``depth`` blocks: ``stream 1`` .. ``stream depth+1``
    (kind ``stream``: the residual stream entering block l; the last one leaves
    the last block), then ``attn l`` and ``mlp l`` per block (kind ``block``:
    the sublayer's weights and biases, its output's gradient), then ``embed``
    (input embedding and positional table) and ``head`` (kind ``param``), then,
    when ``heads`` > 0, ``block l head h`` (kind ``head``) for every block and head,
    block by block. The head units come last so that every earlier row keeps its
    index: a session written before them (``heads`` = 0 here) has the first
    3 depth + 3 units and the same cells in them.
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise UnitError(f"depth = {depth!r}, expected a whole number >= 1")
    units = [Unit(l, f"stream {l}", "stream") for l in range(1, depth + 2)]
    for i in range(depth):
        p = f"encoder.layers.{i}."
        units.append(Unit(len(units) + 1, f"attn {i + 1}", "block", (
            p + "self_attn.in_proj_weight", p + "self_attn.out_proj.weight", p + "self_attn.in_proj_bias", p + "self_attn.out_proj.bias")))
        units.append(Unit(len(units) + 1, f"mlp {i + 1}", "block", (p + "linear1.weight", p + "linear2.weight", p + "linear1.bias", p + "linear2.bias")))
    units.append(Unit(len(units) + 1, "embed", "param", ("embed.weight", "pos", "embed.bias")))
    units.append(Unit(len(units) + 1, "head", "param", ("head.weight", "head.bias")))
    if isinstance(heads, bool) or not isinstance(heads, int) or heads < 0:
        raise UnitError(f"heads = {heads!r}, expected a whole number >= 0")
    for i in range(depth):
        for h in range(heads):
            units.append(Unit(len(units) + 1, f"block {i + 1} head {h + 1}", "head"))
    return units


class TransformerFamily(ModelFamily):
    """A transformer encoder (gradsim.models.transformer.TransformerNet): ``depth`` blocks,
    ``width`` = d_model, ``heads`` heads, layer norm ``pre`` or ``post``, a head on token 1."""

    name = "transformer"
    commands = frozenset({"clip", "lr", "optimizer", "init", "norm", "warmup"})
    probes = ("stats",)

    def build(self, config: Any) -> Any:
        from ..data.sequences import sequence_shape
        from .transformer import TransformerNet  # torch only here

        n_in, n_out = sequence_shape(config.dataset, config.seq_len)
        return TransformerNet(
            n_in, n_out, config.depth, config.width, config.heads, config.activation, config.seq_len,
            config.norm_position, config.leaky_slope,
        )

    def units(self, network: Any) -> list[Unit]:
        """The units, their parameter names read from ``named_parameters()``."""
        names = {id(p): n for n, p in network.named_parameters()}
        groups = {name: tuple(names[id(p)] for p in ws + bs) for name, ws, bs in network.unit_groups()}
        units = [Unit(u.layer, u.name, u.kind, groups.get(u.name, u.params)) for u in transformer_units(network.depth, network.heads)]
        return check_units(units, len(units))

    def config_units(self, config: dict[str, Any]) -> list[Unit]:
        return transformer_units(config.get("depth"), config.get("heads", 4))  # type: ignore[arg-type]

    def unit_counts(self, config: dict[str, Any]) -> tuple[int, ...]:
        """With the per-head units, or without them (a session written before they existed)."""
        return (len(self.config_units(config)), len(transformer_units(config.get("depth"))))  # type: ignore[arg-type]


#: The families by ``RunConfig.model`` (gradsim.config.MODELS lists the same names).
FAMILIES: dict[str, ModelFamily] = {
    "mlp": MLPFamily(), **{m: RecurrentFamily(m) for m in RECURRENT_MODELS}, "transformer": TransformerFamily(),
}


def family_for(config: Any) -> ModelFamily:
    """The family of ``config`` (a RunConfig or a session.json config object;
    no ``model`` means ``mlp``, as every session before format 3)."""
    model = config.get("model", "mlp") if isinstance(config, dict) else getattr(config, "model", "mlp")
    family = FAMILIES.get(model)
    if family is None:
        raise UnitError(f"model = {model!r} is not known; allowed: {', '.join(FAMILIES)}")
    return family
