"""GradSim's data files: presets/*.json, exercises/*.toml, icons/*.svg, the desktop entry.

Not code: this file makes the folder a package so that the wheel can ship it as
``gradsim_resources`` (pyproject.toml maps the name to this folder) and
``gradsim.resources`` can find it through ``importlib.resources``.
"""
