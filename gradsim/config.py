"""RunConfig: everything that defines a run, validated, with a JSON round trip.

A run is a pure function of (RunConfig, schedule of commands by step), so this
dataclass is frozen and every field is plain data.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Optional

from .activations import NAMES
from .data.sequences import SEQUENCE_DATASETS
from .safe_json import parse_json

ACTIVATIONS = NAMES  # defined, with their forms and tests, in gradsim/activations.py
INITS = (
    "xavier_uniform",
    "xavier_normal",
    "he_uniform",
    "he_normal",
    "lecun_normal",
    "orthogonal",
    "normal",
    "uniform",
    "zeros",
)
DATASETS = ("spiral", "moons", "circles", "xor", "blobs", "digits")
OPTIMIZERS = ("sgd", "momentum", "adam")
CLIP_MODES = ("none", "norm", "value")
#: Model families the simulator builds (gradsim.models.family.FAMILIES holds
#: their implementations; a test keeps the two lists equal).
MODELS = ("mlp", "rnn", "lstm", "gru", "transformer")
#: The recurrent families (stacked layers over a sequence, a head on the last step).
RECURRENT_MODELS = ("rnn", "lstm", "gru")
#: Which datasets each family can train on: the MLP reads one point per sample,
#: the recurrent families a sequence (gradsim/data/sequences.py). The families
#: (gradsim.models.family) and the builder read this one table.
MODEL_DATASETS: dict[str, tuple[str, ...]] = {
    "mlp": DATASETS,
    # recall-last is trivial for a model that reads the last step: it is the transformer's far task
    **{m: tuple(d for d in SEQUENCE_DATASETS if d != "recall-last") for m in RECURRENT_MODELS},
    # adding is a regression: the transformer trains on the classification tasks
    "transformer": tuple(d for d in SEQUENCE_DATASETS if d != "adding"),
}
#: Every dataset some family can use.
ALL_DATASETS = DATASETS + SEQUENCE_DATASETS
#: What a switch to a family changes unless the same change names it: its
#: typical depth and a dataset it can use (the MLP's are RunConfig's defaults).
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "mlp": {"depth": 10, "dataset": "spiral"},
    **{m: {"depth": 1, "dataset": "adding"} for m in RECURRENT_MODELS},
    # the MLP's spiral is no sequence task: --model transformer alone trains on the far-recall task
    "transformer": {"depth": 4, "dataset": "recall-last"},
}
#: The vanilla RNN's nonlinearities (torch.nn.RNN's ``nonlinearity``).
RNN_ACTIVATIONS = ("tanh", "relu")
#: Stacked recurrent layers a recurrent model may have.
MAX_RECURRENT_DEPTH = 4
#: Schemes of ``recurrent_init``; ``normal`` is written ``normal:G``.
RECURRENT_INITS = ("orthogonal", "identity", "normal")
#: Gate blocks per recurrent layer (torch stacks them in weight_ih / weight_hh).
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
#: Where a transformer block's layer norms sit (Xiong et al. 2020): before each
#: sublayer inside the residual branch (pre) or after each residual add (post).
NORM_POSITIONS = ("pre", "post")
#: Blocks a transformer may have.
MAX_TRANSFORMER_DEPTH = 48
#: The transformer's MLP is width -> FF_MULT * width -> width (the original transformer's 4).
FF_MULT = 4
#: Init schemes that take a number, and the config field holding it (std for
#: "normal", bound for "uniform"). The one place that says so: the command
#: parser, the builder and the live toggles all read it.
SCALED_INITS: dict[str, str] = {"normal": "init_std", "uniform": "init_scale"}

#: Parameters, gradients and up to two optimizer moments live at once (Adam),
#: plus the update-norm buffer: 5 float32 copies of every weight.
PARAM_COPIES = 5
DEFAULT_PARAM_BUDGET_MB = 2048.0


class ConfigError(ValueError):
    """A bad configuration value; the message names the field and what is allowed.

    ``field`` is the RunConfig field at fault (None when no single field is), so
    a form can highlight it without parsing the message.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class RunConfig:
    dataset: str = "spiral"
    n_samples: int = 1200
    noise: float = 0.1
    test_fraction: float = 0.2
    depth: int = 10
    width: int = 64
    activation: str = "tanh"
    init: str = "xavier_normal"
    init_std: float = 0.05
    init_scale: float = 0.05
    #: Std of the biases at (re-)initialisation; 0 keeps them at zero. Mean-field
    #: phase diagrams (Schoenholz et al. 2017) are drawn at a fixed sigma_b^2 > 0.
    bias_std: float = 0.0
    leaky_slope: float = 0.01
    batchnorm: bool = False
    #: Skip connection around hidden blocks 2..depth: h <- h + alpha * block(h).
    residual: bool = False
    #: alpha of the skip; None means 1/sqrt(depth), which keeps the residual
    #: stream's variance bounded at any depth (the per-block gain is sqrt(1 + alpha^2 chi)).
    residual_alpha: Optional[float] = None
    #: Layer norm (per sample, over the units) after each hidden Linear.
    layernorm: bool = False
    clip_mode: str = "none"
    clip_threshold: float = 1.0
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    batch_size: int = 128
    steps: int = 1000
    seed: int = 0
    stats_every: int = 10
    max_memory_mb: float = 256.0
    param_budget_mb: float = DEFAULT_PARAM_BUDGET_MB
    #: The model family (last, so v0.2.0's fields keep their order in session.json).
    model: str = "mlp"
    #: Length of the input sequences (recurrent models; the MLP ignores it).
    seq_len: int = 50
    #: How W_hh is drawn: orthogonal, identity (IRNN) or normal:G (N(0, G^2/width): spectral radius about G).
    recurrent_init: str = "orthogonal"
    #: The LSTM's forget-gate bias at initialisation (Jozefowicz et al. 2015 recommend 1).
    forget_bias: float = 1.0
    #: Attention heads of a transformer (width must be a multiple).
    heads: int = 4
    #: Layer norm before each sublayer (pre) or after each residual add (post).
    norm_position: str = "pre"
    #: Steps of linear learning-rate warm-up from the start (0: none; any model).
    warmup_steps: int = 0

    # ------------------------------------------------------------ validation
    def validate(self) -> "RunConfig":
        """Raise ConfigError naming the first bad field; return self when valid."""
        _choice("model", self.model, MODELS)
        allowed = MODEL_DATASETS[self.model]
        if self.dataset not in allowed and self.dataset in ALL_DATASETS:
            raise ConfigError(f"dataset = {self.dataset!r}: model {self.model!r} cannot train on it; allowed: {', '.join(allowed)}", "dataset")
        _choice("dataset", self.dataset, allowed)
        _int_range("seq_len", self.seq_len, 2, 1000)
        try:
            parse_recurrent_init(self.recurrent_init)
        except ValueError as exc:
            raise ConfigError(str(exc), "recurrent_init") from None
        _float_range("forget_bias", self.forget_bias, -100.0, 100.0)
        if self.model in RECURRENT_MODELS:
            self._validate_recurrent()
        _int_range("warmup_steps", self.warmup_steps, 0, 100_000_000)
        _int_range("heads", self.heads, 1, 64)
        _choice("norm_position", self.norm_position, NORM_POSITIONS)
        if self.model == "transformer":
            self._validate_transformer()
        _choice("activation", self.activation, ACTIVATIONS)
        _choice("init", self.init, INITS)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("clip_mode", self.clip_mode, CLIP_MODES)
        _int_range("depth", self.depth, 1, 200)
        _int_range("width", self.width, 1, 2048)
        _int_range("n_samples", self.n_samples, 20, 1_000_000)
        _int_range("steps", self.steps, 1, 100_000_000)
        _int_range("seed", self.seed, 0, 2**32 - 1)
        _int_range("stats_every", self.stats_every, 1, 1_000_000)
        _positive("lr", self.lr)
        _positive("clip_threshold", self.clip_threshold)
        _positive("init_std", self.init_std)
        _positive("init_scale", self.init_scale)
        _positive("max_memory_mb", self.max_memory_mb)
        _positive("param_budget_mb", self.param_budget_mb)
        _float_range("noise", self.noise, 0.0, 10.0)
        _float_range("bias_std", self.bias_std, 0.0, 100.0)
        _float_range("test_fraction", self.test_fraction, 0.0, 0.9)
        _float_range("momentum", self.momentum, 0.0, 0.999999)
        _float_range("leaky_slope", self.leaky_slope, 0.0, 1.0)
        for flag in ("batchnorm", "residual", "layernorm"):
            if not isinstance(getattr(self, flag), bool):
                raise ConfigError(f"{flag} = {getattr(self, flag)!r}: allowed true or false", flag)
        if self.residual_alpha is not None:
            _float_range("residual_alpha", self.residual_alpha, 1e-6, 10.0)
        n_train = self.n_train
        _int_range("batch_size", self.batch_size, 1, n_train, why=f" (the training set of {self.dataset} has {n_train} samples)")
        need = self.param_memory_mb()
        if need > self.param_budget_mb:
            raise ConfigError(
                f"depth = {self.depth}, width = {self.width}: the network needs about {need:.0f} MB "
                f"({self.param_count():,} parameters x {PARAM_COPIES} copies), over the budget of "
                f"param_budget_mb = {self.param_budget_mb:g} MB; make it shallower or narrower",
                "depth",
            )
        return self

    def _validate_recurrent(self) -> None:
        from .data.sequences import check_seq_len

        m = self.model
        _int_range("depth", self.depth, 1, MAX_RECURRENT_DEPTH, why=f" (stacked layers of model {m!r})")
        if m == "rnn":
            if self.activation not in RNN_ACTIVATIONS:
                raise ConfigError(f"activation = {self.activation!r}: model 'rnn' allows {', '.join(RNN_ACTIVATIONS)}", "activation")
        elif self.activation != "tanh":
            raise ConfigError(f"activation = {self.activation!r}: model {m!r} has fixed gate nonlinearities; leave activation tanh", "activation")
        for flag in ("batchnorm", "layernorm", "residual"):
            if getattr(self, flag) is not False:
                raise ConfigError(f"{flag} = {getattr(self, flag)!r}: model {m!r} has no {flag}; allowed false", flag)
        if self.warmup_steps != 0:  # the recurrent trainer trains every step at lr: refuse rather than ignore
            raise ConfigError(f"warmup_steps = {self.warmup_steps!r}: model {m!r} has no learning-rate warm-up; allowed 0", "warmup_steps")
        try:
            check_seq_len(self.dataset, self.seq_len)
        except ValueError as exc:
            raise ConfigError(str(exc), "seq_len") from None

    def _validate_transformer(self) -> None:
        _int_range("depth", self.depth, 1, MAX_TRANSFORMER_DEPTH, why=" (blocks of model 'transformer')")
        if isinstance(self.width, int) and not isinstance(self.width, bool) and self.width % self.heads:
            raise ConfigError(
                f"heads = {self.heads}: width = {self.width} must be divisible by the number of heads "
                f"(each head gets width / heads dimensions); allowed: {', '.join(str(h) for h in range(1, 65) if self.width % h == 0)}",
                "heads",
            )
        for flag in ("batchnorm", "layernorm", "residual"):
            if getattr(self, flag) is not False:
                raise ConfigError(
                    f"{flag} = {getattr(self, flag)!r}: model 'transformer' has its own residual stream and layer norms "
                    "(norm_position); allowed false", flag,
                )

    @property
    def recurrent(self) -> bool:
        """Whether the model is a recurrent family (rnn, lstm, gru)."""
        return self.model in RECURRENT_MODELS

    @property
    def n_train(self) -> int:
        from .data.datasets import dataset_sizes
        from .data.sequences import sequence_sizes

        n_total = sequence_sizes(self.dataset, self.n_samples) if self.dataset in SEQUENCE_DATASETS else dataset_sizes(self.dataset, self.n_samples)
        return n_total - int(round(n_total * self.test_fraction))

    @property
    def n_layers(self) -> int:
        """Rows of layers.csv per step (units): the MLP's Linear layers, numbered 1..depth+1
        from the input; a recurrent net's seq_len time steps, then its 2 * depth + 1
        parameter groups; a transformer's depth+1 streams, 2 depth sublayers, embedding, head and
        then one unit per attention head of every block."""
        if self.model in RECURRENT_MODELS:
            return self.seq_len + 2 * self.depth + 1
        if self.model == "transformer":
            return 3 * self.depth + 3 + self.depth * self.heads
        return self.depth + 1

    def param_count(self) -> int:
        from .data.datasets import dataset_shape
        from .data.sequences import sequence_shape

        if self.model in RECURRENT_MODELS:
            n_in, n_out = sequence_shape(self.dataset, self.seq_len)
            g, w = GATES[self.model], self.width
            layers = sum(g * w * ((n_in if l == 0 else w) + w) + 2 * g * w for l in range(self.depth))
            return layers + w * n_out + n_out
        if self.model == "transformer":
            n_in, n_out = sequence_shape(self.dataset, self.seq_len)
            w, f = self.width, FF_MULT * self.width
            block = (3 * w * w + 3 * w) + (w * w + w) + (w * f + f) + (f * w + w) + 4 * w
            return (n_in * w + w) + self.seq_len * w + self.depth * block + 2 * w + (w * n_out + n_out)
        n_in, n_out = dataset_shape(self.dataset)
        w = self.width
        linear = (n_in * w + w) + (self.depth - 1) * (w * w + w) + (w * n_out + n_out)
        bn = 2 * w * self.depth if self.batchnorm else 0
        ln = 2 * w * self.depth if self.layernorm else 0
        return linear + bn + ln

    @property
    def effective_residual_alpha(self) -> float:
        """The alpha a residual run uses: the set one, or 1/sqrt(depth)."""
        return default_residual_alpha(self.depth) if self.residual_alpha is None else float(self.residual_alpha)

    def param_memory_mb(self) -> float:
        """Memory the parameters, grads and optimizer state need, worst case, in MB."""
        return self.param_count() * 4 * PARAM_COPIES / 1e6

    # --------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Any, where: str = "config") -> "RunConfig":
        """Build from a dict (unknown keys and wrong types are errors), validated."""
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a JSON object of config fields, got {type(data).__name__}")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"{where}: unknown field {unknown[0]!r}; allowed: {', '.join(known)}", unknown[0])
        kwargs = {k: _coerce(k, v, known[k].type, where) for k, v in data.items()}
        try:
            return cls(**kwargs).validate()
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}", exc.field) from None

    @classmethod
    def from_json(cls, text: str, where: str = "config") -> "RunConfig":
        try:
            data = parse_json(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
        return cls.from_dict(data, where)

    def with_changes(self, **changes: Any) -> "RunConfig":
        """A validated copy with some fields changed (unknown names are errors)."""
        known = {f.name for f in fields(self)}
        for k in changes:
            if k not in known:
                raise ConfigError(f"unknown field {k!r}; allowed: {', '.join(sorted(known))}", k)
        return replace(self, **changes).validate()


def default_residual_alpha(depth: int) -> float:
    """1/sqrt(depth): with it the residual stream's variance grows by at most a
    factor (1 + chi/depth)^depth ~ e^chi over the whole network."""
    return 1.0 / math.sqrt(max(int(depth), 1))


def parse_recurrent_init(text: Any) -> tuple[str, Optional[float]]:
    """``orthogonal`` / ``identity`` / ``normal:G`` -> (scheme, G or None); ValueError naming the bad value."""
    allowed = "allowed orthogonal, identity or normal:G with G a finite number > 0"
    if not isinstance(text, str):
        raise ValueError(f"recurrent_init = {text!r}: {allowed}")
    scheme, colon, gain = text.partition(":")
    if scheme in ("orthogonal", "identity") and not colon:
        return scheme, None
    if scheme == "normal" and colon:
        try:
            g = float(gain)
        except ValueError:
            raise ValueError(f"recurrent_init = {text!r}: {gain!r} is not a number; {allowed}") from None
        if math.isfinite(g) and g > 0:
            return scheme, g
        raise ValueError(f"recurrent_init = {text!r}: G = {gain} must be a finite number > 0; {allowed}")
    raise ValueError(f"recurrent_init = {text!r}: {allowed}")


# ---------------------------------------------------------------- helpers
def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} = {value!r} is not known; allowed: {', '.join(allowed)}", name)


def _int_range(name: str, value: Any, lo: int, hi: int, why: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} = {value!r}: must be a whole number from {lo} to {hi}{why}", name)
    if not lo <= value <= hi:
        raise ConfigError(f"{name} = {value} is out of range: allowed {lo} to {hi}{why}", name)


def _positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} = {value!r}: must be a finite number > 0", name)


def _float_range(name: str, value: Any, lo: float, hi: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not lo <= value <= hi:
        raise ConfigError(f"{name} = {value!r}: must be a number from {lo:g} to {hi:g}", name)


def _coerce(name: str, value: Any, typ: Any, where: str) -> Any:
    """Accept JSON's natural types for each field; reject the rest with a clear message."""
    t = typ if isinstance(typ, str) else getattr(typ, "__name__", str(typ))
    if t.startswith("Optional["):
        if value is None:
            return None
        t = t[len("Optional["):-1]
    if t == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if t == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, float),
        "str": isinstance(value, str),
        "bool": isinstance(value, bool),
    }.get(t, True)
    if not ok:
        raise ConfigError(f"{where}: {name} = {value!r} has the wrong type: expected {t}", name)
    return value
