"""The commands a run accepts between steps, and the "STEP:KEY=VALUE" syntax.

Commands are plain frozen dataclasses so a run is a pure function of
(config, seed, schedule): the GUI's toggles, the CLI's ``--event`` flags and a
replayed session.json all produce the same objects. Each command knows how to
apply itself to a Trainer and how to print itself back as ``KEY=VALUE``, so an
event recorded in events.csv replays as the same command.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Optional, Protocol

from .config import ACTIVATIONS, CLIP_MODES, INITS, NORM_POSITIONS, OPTIMIZERS, SCALED_INITS, parse_recurrent_init
from .events import NOTE, PREDICTION


class RunTarget(Protocol):
    """What a command needs from the run it changes (the Trainer provides it).

    Stated here instead of importing the trainer, so commands -> trainer is
    not a cycle: the trainer imports commands, commands import nothing back.
    """

    config: Any
    net: Any
    clip_mode: str
    clip_threshold: float

    def reinit(self, scheme: str, scale: Optional[float] = None) -> None: ...

    def set_batchnorm(self, on: bool) -> None: ...

    def set_layernorm(self, on: bool) -> None: ...

    def set_residual(self, on: bool, alpha: Optional[float] = None) -> None: ...

    def set_lr(self, lr: float) -> None: ...

    def set_optimizer(self, name: str) -> None: ...

    def set_recurrent_init(self, scheme: str) -> None: ...

    def set_forget_bias(self, value: float) -> None: ...

    def set_norm_position(self, position: str) -> None: ...

    def set_warmup(self, steps: int) -> None: ...


class CommandError(ValueError):
    """A malformed or impossible command; the message names the bad value.

    ``reason`` is the message without its ``KEY=VALUE:`` prefix, so a parser
    can restate it with the text the user typed (``norm:-1``, not ``norm:-1.0``).
    """

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


def _refuse(cmd: "Command", reason: str) -> CommandError:
    return CommandError(f"{cmd.key}={cmd.value()}: {reason}", reason)


def _positive(x: object) -> bool:
    """A real number (not a bool), finite and > 0."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


class Command:
    """Base of all commands: ``key`` is the event kind, ``value()`` its text."""

    key: ClassVar[str] = ""

    def value(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def apply_to(self, trainer: "RunTarget") -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise CommandError if a field is not allowed (called when the command is made).

        Also called again before a command applies: unpickling (a command sent
        to the engine process) restores the fields without running __init__.
        """

    def check(self, trainer: "RunTarget") -> None:
        """Raise CommandError if this command can never apply to ``trainer``'s run.

        Called when a command is scheduled, so a bad ``--event`` fails before
        the run starts instead of halfway through it.
        """

    def text(self) -> str:
        return f"{self.key}={self.value()}"


def _check_bool(cmd: "Command", on: object) -> None:
    if not isinstance(on, bool):
        raise _refuse(cmd, f"{on!r} is not on or off; allowed True or False")


@dataclass(frozen=True)
class SetActivation(Command):
    name: str
    layer: Optional[int] = None
    key: ClassVar[str] = "activation"

    def value(self) -> str:
        return self.name if self.layer is None else f"{self.name}@{self.layer}"

    def validate(self) -> None:
        if self.name not in ACTIVATIONS:
            raise _refuse(self, f"{self.name!r} is not known; allowed: {', '.join(ACTIVATIONS)} (optionally @LAYER)")
        if self.layer is not None and (isinstance(self.layer, bool) or not isinstance(self.layer, int) or self.layer < 1):
            raise _refuse(self, f"layer {self.layer!r} must be a whole number >= 1")

    def check(self, trainer: "RunTarget") -> None:
        depth = trainer.config.depth
        if self.layer is not None and not 1 <= self.layer <= depth:
            raise CommandError(f"{self.text()}: layer {self.layer} has no activation; allowed 1 to {depth}")

    def apply_to(self, trainer: "RunTarget") -> None:
        self.check(trainer)
        trainer.net.set_activation(self.name, self.layer)


@dataclass(frozen=True)
class Reinit(Command):
    """Re-draw all Linear weights now; their optimizer state is dropped."""

    scheme: str
    scale: Optional[float] = None  # std for "normal", bound for "uniform"
    key: ClassVar[str] = "init"

    def value(self) -> str:
        return self.scheme if self.scale is None else f"{self.scheme}:{self.scale!r}"

    def validate(self) -> None:
        if self.scheme not in INITS:
            raise _refuse(self, f"{self.scheme!r} is not known; allowed: {', '.join(INITS)}")
        if self.scale is not None:
            if self.scheme not in SCALED_INITS:
                raise _refuse(self, "only normal:STD and uniform:SCALE take a number")
            if not _positive(self.scale):
                raise _refuse(self, "expected a finite number > 0")

    def apply_to(self, trainer: "RunTarget") -> None:
        trainer.reinit(self.scheme, self.scale)


@dataclass(frozen=True)
class SetBatchNorm(Command):
    on: bool
    key: ClassVar[str] = "batchnorm"

    def validate(self) -> None:
        _check_bool(self, self.on)

    def value(self) -> str:
        return "on" if self.on else "off"

    def check(self, trainer: "RunTarget") -> None:
        if self.on and trainer.config.batch_size < 2:
            raise CommandError(f"{self.text()}: batch norm needs batch_size >= 2 (it is {trainer.config.batch_size})")

    def apply_to(self, trainer: "RunTarget") -> None:
        trainer.set_batchnorm(self.on)


@dataclass(frozen=True)
class SetLayerNorm(Command):
    """Layer norm after every hidden Linear: per sample, so it works at any batch size."""

    on: bool
    key: ClassVar[str] = "layernorm"

    def validate(self) -> None:
        _check_bool(self, self.on)

    def value(self) -> str:
        return "on" if self.on else "off"

    def apply_to(self, trainer: "RunTarget") -> None:
        trainer.set_layernorm(self.on)


@dataclass(frozen=True)
class SetResidual(Command):
    """Skip connections for hidden layers 2..depth (pre-activation residual blocks):
    z_l = z_(l-1) + alpha * Linear_l(act(norm(z_(l-1)))).

    ``alpha`` None means the default 1/sqrt(depth); written ``on`` (default
    alpha) or ``on:ALPHA``.
    """

    on: bool
    alpha: Optional[float] = None
    key: ClassVar[str] = "residual"

    def value(self) -> str:
        if not self.on:
            return "off"
        return "on" if self.alpha is None else f"on:{float(self.alpha)!r}"

    def validate(self) -> None:
        _check_bool(self, self.on)
        if self.alpha is not None and not (_positive(self.alpha) and self.alpha <= 10):
            raise _refuse(self, "alpha must be a number > 0 and <= 10")

    def apply_to(self, trainer: "RunTarget") -> None:
        trainer.set_residual(self.on, self.alpha)


@dataclass(frozen=True)
class SetClip(Command):
    mode: str
    threshold: float = 1.0
    key: ClassVar[str] = "clip"

    def value(self) -> str:
        return "none" if self.mode == "none" else f"{self.mode}:{self.threshold!r}"

    def validate(self) -> None:
        if self.mode not in CLIP_MODES or (self.mode != "none" and not _positive(self.threshold)):
            raise _refuse(self, "allowed none, norm:X or value:X with X > 0")

    def apply_to(self, trainer: "RunTarget") -> None:
        trainer.clip_mode = self.mode
        trainer.clip_threshold = float(self.threshold)


@dataclass(frozen=True)
class SetLR(Command):
    lr: float
    key: ClassVar[str] = "lr"

    def value(self) -> str:
        ok = isinstance(self.lr, (int, float)) and not isinstance(self.lr, bool)
        return repr(float(self.lr)) if ok else repr(self.lr)

    def validate(self) -> None:
        if not _positive(self.lr):
            raise _refuse(self, "expected a finite number > 0")

    def apply_to(self, trainer: "RunTarget") -> None:
        trainer.set_lr(self.lr)


@dataclass(frozen=True)
class SetOptimizer(Command):
    name: str
    key: ClassVar[str] = "optimizer"

    def value(self) -> str:
        return self.name

    def validate(self) -> None:
        if self.name not in OPTIMIZERS:
            raise _refuse(self, f"allowed {', '.join(OPTIMIZERS)}")

    def apply_to(self, trainer: "RunTarget") -> None:
        trainer.set_optimizer(self.name)


#: Annotations the window may record in a run (through :class:`Annotate`).
WINDOW_ANNOTATIONS: tuple[str, ...] = (PREDICTION, NOTE)
#: Longest annotation text accepted (events.csv keeps one line per event).
MAX_ANNOTATION_CHARS = 1000


@dataclass(frozen=True)
class Annotate(Command):
    """Record an annotation (``kind`` = ``note`` or ``prediction``) at the next step boundary.

    Not a change of the run: ``Trainer.apply`` records it and touches nothing
    else, and a replay carries it over instead of applying it. It is a Command
    only so it travels the commands' path (window -> relay -> engine, a fork's
    branch included) and lands in the same session, in order, just before a
    toggle sent after it.
    """

    kind: str
    note: str = ""
    key: ClassVar[str] = "annotate"

    def value(self) -> str:
        return self.note

    def text(self) -> str:
        return f"{self.kind}={self.note}"

    def validate(self) -> None:
        if self.kind not in WINDOW_ANNOTATIONS:
            raise CommandError(f"annotation {self.kind!r}: allowed {', '.join(WINDOW_ANNOTATIONS)}")
        if not isinstance(self.note, str) or "\n" in self.note or "\r" in self.note or len(self.note) > MAX_ANNOTATION_CHARS:
            raise CommandError(f"{self.kind}: its text must be one line of at most {MAX_ANNOTATION_CHARS} characters")

    def apply_to(self, trainer: "RunTarget") -> None:
        """Nothing to change (Trainer.apply records the event)."""


@dataclass(frozen=True)
class SetRecurrentInit(Command):
    """Re-draw every recurrent weight W_hh now (orthogonal, identity or normal:G);
    their optimizer state is dropped. Recurrent models only."""

    scheme: str
    key: ClassVar[str] = "recurrent_init"

    def value(self) -> str:
        return str(self.scheme)

    def validate(self) -> None:
        try:
            parse_recurrent_init(self.scheme)
        except ValueError as exc:
            raise _refuse(self, str(exc).partition(": ")[2]) from None

    def apply_to(self, trainer: "RunTarget") -> None:
        trainer.set_recurrent_init(self.scheme)


@dataclass(frozen=True)
class SetForgetBias(Command):
    """Set every LSTM forget gate's bias now (b_ih's forget block to ``value``, b_hh's to 0)."""

    bias: float
    key: ClassVar[str] = "forget_bias"

    def value(self) -> str:
        ok = isinstance(self.bias, (int, float)) and not isinstance(self.bias, bool)
        return repr(float(self.bias)) if ok else repr(self.bias)

    def validate(self) -> None:
        v = self.bias
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or abs(v) > 100:
            raise _refuse(self, "expected a finite number from -100 to 100")

    def apply_to(self, trainer: "RunTarget") -> None:
        trainer.set_forget_bias(float(self.bias))


@dataclass(frozen=True)
class SetNormPosition(Command):
    """Move a transformer's layer norms before each sublayer (pre) or after each
    residual add (post); every parameter keeps its value. Transformers only."""

    position: str
    key: ClassVar[str] = "norm"

    def value(self) -> str:
        return str(self.position)

    def validate(self) -> None:
        if self.position not in NORM_POSITIONS:
            raise _refuse(self, f"{self.position!r} is not known; allowed: {', '.join(NORM_POSITIONS)}")

    def apply_to(self, trainer: "RunTarget") -> None:
        trainer.set_norm_position(self.position)


@dataclass(frozen=True)
class SetWarmup(Command):
    """Linear learning-rate warm-up over the next ``steps`` steps, starting now:
    the k-th step from here (k = 1, 2, ...) trains at lr * min(1, k / steps).
    0 ends a warm-up under way."""

    steps: int
    key: ClassVar[str] = "warmup"

    def value(self) -> str:
        return str(self.steps)

    def validate(self) -> None:
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or not 0 <= self.steps <= 100_000_000:
            raise _refuse(self, "expected a whole number of steps from 0 to 100000000")

    def apply_to(self, trainer: "RunTarget") -> None:
        trainer.set_warmup(self.steps)


@dataclass(frozen=True)
class Scheduled:
    """A command to apply just before step ``step`` runs."""

    step: int
    command: Command

    def text(self) -> str:
        return f"{self.step}:{self.command.text()}"


# ----------------------------------------------------------------- parsing
# The parsers only turn text into fields; the commands' own constructors decide
# what is allowed, so a command built in code is held to the same rules.
def _build(key: str, shown: str, make: Callable[..., Command], *args: Any) -> Command:
    """``make(*args)``, with a refusal restated for the text the user typed."""
    try:
        return make(*args)
    except CommandError as exc:
        raise CommandError(f"{key}={shown}: {exc.reason}", exc.reason) from None


def _number(key: str, text: str, shown: str = "", what: str = "a finite number > 0") -> float:
    shown = shown or text
    try:
        return float(text)
    except ValueError:
        raise CommandError(f"{key}={shown}: {text!r} is not a number; expected {what}") from None


def _parse_activation(v: str) -> Command:
    name, at, layer = v.partition("@")
    if not at:
        return _build("activation", v, SetActivation, name)
    if not layer.isdigit():
        raise CommandError(f"activation={v}: layer {layer!r} must be a whole number >= 1")
    return _build("activation", v, SetActivation, name, int(layer))


def _parse_init(v: str) -> Command:
    scheme, colon, scale = v.partition(":")
    if scale and scheme in INITS and scheme not in SCALED_INITS:  # before the number: "he_normal:x" says this too
        raise CommandError(f"init={v}: only normal:STD and uniform:SCALE take a number")
    return _build("init", v, Reinit, scheme, _number("init", scale, v) if scale else None)


_ON_OFF = {"on": True, "off": False, "true": True, "false": False, "1": True, "0": False}


def _parse_batchnorm(v: str) -> Command:
    if v.lower() not in _ON_OFF:
        raise CommandError(f"batchnorm={v}: allowed on or off")
    return SetBatchNorm(_ON_OFF[v.lower()])


def _parse_layernorm(v: str) -> Command:
    if v.lower() not in _ON_OFF:
        raise CommandError(f"layernorm={v}: allowed on or off")
    return SetLayerNorm(_ON_OFF[v.lower()])


def _parse_residual(v: str) -> Command:
    state, colon, alpha = v.partition(":")
    if state.lower() not in _ON_OFF or (colon and not _ON_OFF[state.lower()]):
        raise CommandError(f"residual={v}: allowed on, on:ALPHA (0 < ALPHA <= 10) or off")
    if not colon:
        return SetResidual(_ON_OFF[state.lower()])
    return _build("residual", v, SetResidual, True, _number("residual", alpha, v, "on:ALPHA with 0 < ALPHA <= 10"))


def _parse_clip(v: str) -> Command:
    mode, _, thr = v.partition(":")
    if mode == "none" and not thr:
        return SetClip("none")
    if mode == "none" or not thr:
        raise CommandError(f"clip={v}: allowed none, norm:X or value:X with X > 0")
    return _build("clip", v, SetClip, mode, _number("clip", thr, v, "X > 0"))


def _parse_lr(v: str) -> Command:
    return _build("lr", v, SetLR, _number("lr", v))


def _parse_optimizer(v: str) -> Command:
    return _build("optimizer", v, SetOptimizer, v)


def _parse_recurrent_init(v: str) -> Command:
    return _build("recurrent_init", v, SetRecurrentInit, v)


def _parse_forget_bias(v: str) -> Command:
    return _build("forget_bias", v, SetForgetBias, _number("forget_bias", v, v, "a finite number from -100 to 100"))


def _parse_norm(v: str) -> Command:
    return _build("norm", v, SetNormPosition, v)


def _parse_warmup(v: str) -> Command:
    if not v.isdigit():
        raise CommandError(f"warmup={v}: {v!r} is not a whole number of steps; allowed 0 to 100000000")
    return _build("warmup", v, SetWarmup, int(v))


PARSERS: dict[str, Callable[[str], Command]] = {
    "activation": _parse_activation,
    "init": _parse_init,
    "batchnorm": _parse_batchnorm,
    "layernorm": _parse_layernorm,
    "residual": _parse_residual,
    "clip": _parse_clip,
    "lr": _parse_lr,
    "optimizer": _parse_optimizer,
    "recurrent_init": _parse_recurrent_init,
    "forget_bias": _parse_forget_bias,
    "norm": _parse_norm,
    "warmup": _parse_warmup,
}

#: Event kinds that are commands (and so replay); the others only annotate a run.
COMMAND_KINDS = tuple(PARSERS)


def parse_command(text: str) -> Command:
    """Parse ``KEY=VALUE`` into a Command."""
    key, eq, value = text.strip().partition("=")
    key = key.strip()
    if not eq or not value.strip():
        raise CommandError(f"{text!r}: expected KEY=VALUE with KEY one of {', '.join(PARSERS)}")
    if key not in PARSERS:
        raise CommandError(f"{text!r}: unknown key {key!r}; allowed: {', '.join(PARSERS)}")
    return PARSERS[key](value.strip())


def parse_event(text: str) -> Scheduled:
    """Parse ``STEP:KEY=VALUE`` (e.g. ``200:batchnorm=on``)."""
    step, colon, rest = text.strip().partition(":")
    if not colon or not step.strip().isdigit():
        raise CommandError(f"event {text!r}: expected STEP:KEY=VALUE with STEP a whole number >= 0, e.g. 200:batchnorm=on")
    try:
        return Scheduled(int(step), parse_command(rest))
    except CommandError as exc:
        raise CommandError(f"event {text!r}: {exc}") from None


def command_from_event(kind: str, value: str) -> Optional[Command]:
    """The command an events.csv row stands for, or None for annotations (start, pause...)."""
    if kind not in PARSERS:
        return None
    return PARSERS[kind](value)
