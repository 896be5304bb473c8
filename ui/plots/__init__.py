"""Live plots of GradSim: one module per plot, and ``panel.PlotPanel`` holding all six.

Import a plot from its module (``from ui.plots.heatmap import GradientHeatmap``).
The package re-exports nothing on purpose: ``python -m ui.plots.heatmap`` (a
plot shown alone with fake data) would otherwise import its module twice, and
plain imports let PyInstaller see every module without a hidden-import list.
"""
