"""GradSim engine: instrumented training of deep MLPs. Never imports Qt."""
__version__ = "0.2.0"
