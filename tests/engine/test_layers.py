"""The engine's sub-packages import one way only: each layer uses the ones below it.

The order (docs/architecture.md draws it):

    core (config, commands, events, activations, metrics, arena, data, ...)
      < models, session  < theory  < train  < teaching, replications, watch
      < grading  < service  < cli

A module that imports one from a higher layer (even lazily inside a function)
fails here with the offending edge named, so a new family or tool cannot
quietly tangle the house. The import graph is the one the cycle test reads.
"""
from __future__ import annotations

from tests.engine.test_import_graph import import_graph

#: Layer of each top-level part of gradsim; a module not named here is core (0).
LAYERS: dict[str, int] = {
    "models": 1,
    "session": 1,
    "theory": 2,
    "train": 3,
    "teaching": 4,
    "replications": 4,
    "watch": 4,
    "grading": 5,
    "service": 6,
    "cli": 7,
    "__main__": 7,
}


def layer_of(module: str) -> int:
    parts = module.split(".")
    if parts[0] != "gradsim" or len(parts) < 2:
        return 0
    return LAYERS.get(parts[1], 0)


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{m} (layer {layer_of(m)}) -> {t} (layer {layer_of(t)})"
        for m, targets in graph.items()
        if m.startswith("gradsim")
        for t in targets
        if t.startswith("gradsim") and layer_of(t) > layer_of(m)
    )


def test_no_module_imports_a_higher_layer():
    assert upward_imports(import_graph()) == []


def test_every_subpackage_has_a_layer():
    """A new sub-package must be placed in the order, not fall into core by default."""
    graph = import_graph()
    subpackages = {m.split(".")[1] for m in graph if m.startswith("gradsim.") and m.count(".") >= 2}
    core_packages = {"data"}  # sub-packages that are deliberately core
    assert sorted(subpackages - set(LAYERS) - core_packages) == []


def test_the_checker_sees_an_upward_import():
    graph = {"gradsim.models.mlp": {"gradsim.train.trainer"}, "gradsim.train.trainer": {"gradsim.models.mlp"}}
    assert upward_imports(graph) == ["gradsim.models.mlp (layer 1) -> gradsim.train.trainer (layer 3)"]
