"""Commands built in code are held to the same rules as parsed text: the
dataclass refuses a bad value when it is made, naming it and what is allowed."""
import math

import pytest

from gradsim.commands import (
    CommandError, Reinit, SetActivation, SetBatchNorm, SetClip, SetLayerNorm, SetLR, SetOptimizer, SetResidual,
    parse_command,
)
from gradsim.config import ACTIVATIONS, INITS, OPTIMIZERS


@pytest.mark.parametrize(
    "make, needles",
    [
        # a negative norm threshold makes coef negative: it would flip the gradient's sign
        (lambda: SetClip("norm", -1.0), ["clip=norm:-1.0", "X > 0"]),
        (lambda: SetClip("value", 0.0), ["clip=value:0.0", "X > 0"]),
        (lambda: SetClip("norm", math.inf), ["clip=norm:inf", "X > 0"]),
        (lambda: SetClip("norm", math.nan), ["clip=norm:nan", "X > 0"]),
        (lambda: SetClip("bogus", 1.0), ["clip=bogus:1.0", "none, norm:X or value:X"]),
        (lambda: SetOptimizer("bogus"), ["optimizer=bogus", ", ".join(OPTIMIZERS)]),
        (lambda: SetActivation("swish"), ["activation=swish", "'swish' is not known", ", ".join(ACTIVATIONS)]),
        (lambda: SetActivation("relu", 0), ["activation=relu@0", ">= 1"]),
        (lambda: Reinit("bogus"), ["init=bogus", ", ".join(INITS)]),
        (lambda: Reinit("he_normal", 0.5), ["only normal:STD and uniform:SCALE take a number"]),
        (lambda: Reinit("normal", -0.5), ["init=normal:-0.5", "> 0"]),
        (lambda: SetLR(-1.0), ["lr=-1.0", "> 0"]),
        (lambda: SetLR(0.0), ["lr=0.0", "> 0"]),
        (lambda: SetLR(math.nan), ["lr=nan", "> 0"]),
        (lambda: SetLR(True), ["lr=True", "> 0"]),
        (lambda: SetBatchNorm("yes"), ["'yes'", "True or False"]),
        (lambda: SetLayerNorm(1), ["True or False"]),
        (lambda: SetResidual(True, 11.0), ["residual=on:11.0", "<= 10"]),
        (lambda: SetResidual(True, -0.5), ["residual=on:-0.5", "> 0"]),
    ],
)
def test_bad_commands_refused_when_made(make, needles):
    with pytest.raises(CommandError) as info:
        make()
    for needle in needles:
        assert needle in str(info.value)


@pytest.mark.parametrize(
    "cmd",
    [
        SetClip("none"), SetClip("norm", 1.0), SetClip("value", 0.5), SetOptimizer("adam"), SetActivation("tanh", 2),
        Reinit("normal", 0.1), Reinit("xavier_uniform"), SetLR(1), SetLR(0.01), SetBatchNorm(False), SetLayerNorm(True),
        SetResidual(True), SetResidual(True, 10.0), SetResidual(False),
    ],
)
def test_good_commands_made_and_round_trip(cmd):
    assert parse_command(cmd.text()) == cmd


@pytest.mark.parametrize(
    "text, needle",
    [
        ("clip=norm:-1", "clip=norm:-1: allowed none, norm:X or value:X with X > 0"),
        ("clip=bogus:1", "clip=bogus:1: allowed none"),
        ("lr=-1", "lr=-1: expected a finite number > 0"),
        ("optimizer=bogus", "optimizer=bogus: allowed sgd, momentum, adam"),
        ("residual=on:11", "residual=on:11: alpha must be a number > 0 and <= 10"),
    ],
)
def test_parsed_refusals_quote_the_typed_text(text, needle):
    with pytest.raises(CommandError) as info:
        parse_command(text)
    assert needle in str(info.value)
