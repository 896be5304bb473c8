"""Every event kind has its own marker colour (layer norm and residual once fell back to the note's grey)."""
from __future__ import annotations

import re

from gradsim import events
from gradsim.session.store import Event
from ui.plots import style

HEX = re.compile(r"#[0-9a-f]{6}")


def test_every_event_kind_has_a_colour_and_no_colour_is_for_an_unknown_kind():
    missing = [k for k in events.EVENT_KINDS if k not in style.EVENT_COLOURS]
    assert missing == []
    assert sorted(set(style.EVENT_COLOURS) - set(events.EVENT_KINDS)) == []
    bad = {k: c for k, c in style.EVENT_COLOURS.items() if not HEX.fullmatch(c)}
    assert bad == {}


def test_each_command_has_its_own_colour_unlike_the_fallback():
    """A change must be told apart from another change and from an unknown kind's grey."""
    command_colours = [style.EVENT_COLOURS[k] for k in events.COMMAND_KINDS]
    assert len(set(command_colours)) == len(command_colours)
    assert style.UNKNOWN_EVENT_COLOUR not in command_colours


def test_layernorm_and_residual_flags_take_their_colour(qtbot):
    from ui.plots.loss_accuracy import LossAccuracyPlot

    plot = LossAccuracyPlot()
    qtbot.addWidget(plot)
    shown = [Event(0, "start", "config"), Event(10, "layernorm", "on"), Event(20, "B residual", "on"),
             Event(30, "mystery", "x")]
    assert plot.set_events(shown) == 4
    colours = [c.name() for c in plot.markers.item.colours]
    assert colours == [style.EVENT_COLOURS["start"], style.EVENT_COLOURS["layernorm"],
                       style.EVENT_COLOURS["residual"], style.UNKNOWN_EVENT_COLOUR]
