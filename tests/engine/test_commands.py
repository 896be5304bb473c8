import pytest

from gradsim.commands import (
    CommandError, Reinit, SetActivation, SetBatchNorm, SetClip, SetLR, SetOptimizer, command_from_event, parse_command, parse_event,
)


@pytest.mark.parametrize(
    "text, cmd",
    [
        ("activation=relu", SetActivation("relu")),
        ("activation=tanh@3", SetActivation("tanh", 3)),
        ("init=he_normal", Reinit("he_normal")),
        ("init=normal:0.5", Reinit("normal", 0.5)),
        ("batchnorm=on", SetBatchNorm(True)),
        ("batchnorm=off", SetBatchNorm(False)),
        ("clip=none", SetClip("none")),
        ("clip=norm:1.5", SetClip("norm", 1.5)),
        ("clip=value:0.01", SetClip("value", 0.01)),
        ("lr=0.001", SetLR(0.001)),
        ("optimizer=adam", SetOptimizer("adam")),
    ],
)
def test_parse_and_round_trip(text, cmd):
    parsed = parse_command(text)
    assert parsed == cmd
    assert parse_command(parsed.text()) == cmd  # events.csv value replays as the same command
    assert command_from_event(cmd.key, cmd.value()) == cmd


@pytest.mark.parametrize(
    "text, needle",
    [
        ("x:lr=0.1", "STEP"),
        ("-3:lr=0.1", "STEP"),
        ("10:lr=zero", "'zero' is not a number"),
        ("10:lr=-1", "> 0"),
        ("10:lr=nan", "> 0"),
        ("10:speed=3", "unknown key 'speed'"),
        ("10:activation=swish", "'swish' is not known"),
        ("10:clip=norm", "norm:X"),
        ("10:batchnorm=maybe", "on or off"),
        ("10:init=he_normal:3", "only normal"),
        ("10:lr", "KEY=VALUE"),
    ],
)
def test_bad_events_say_what_is_wrong(text, needle):
    with pytest.raises(CommandError) as err:
        parse_event(text)
    assert needle in str(err.value) and text in str(err.value)


def test_parse_event_step():
    ev = parse_event("200:batchnorm=on")
    assert ev.step == 200 and ev.command == SetBatchNorm(True) and ev.text() == "200:batchnorm=on"


def test_annotations_are_not_commands():
    assert command_from_event("pause", "") is None and command_from_event("start", "x") is None
