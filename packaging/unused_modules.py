"""Python module trees the frozen app never imports: left out of PyInstaller's analysis.

Used by ``gradsim.spec`` (``Analysis(excludes=...)``) and by ``hooks/hook-torch.py``
(which enumerates torch's submodules without them). Leaving a tree out saves its byte
code in the executable's archive and, for torch, its ``.py`` sources next to it (the
torch hook collects both), and it keeps PyInstaller from analysing thousands of
modules (torch's full submodule list drags in sympy, networkx, jinja2, ...).

How the list was made (torch 2.13.0, numpy 2.4, PySide6 6.11): ``sys.modules``
was dumped at exit of ``main.py --self-test`` and of the whole ``tests/ui`` suite (every
window feature: toggles, Jacobian with ``vectorize=True``, learned view, teaching,
fork/compare, export, open session), and a torch package is listed here only if NOT ONE
module below it was imported there. ``tests/packaging`` runs the frozen app, so a
tree that becomes needed (a new feature, a torch upgrade) fails the smoke test with a
ModuleNotFoundError naming it; then drop it from this list.

Not listed on purpose: trees that ``import torch`` itself loads (``torch.distributed``'s
top level, ``torch._export``, ``torch.fx.experimental``, ``torch.testing._internal``'s
``common_dtype``/``logging_tensor``, ...): only their unused sub-packages are.
"""
from __future__ import annotations

#: torch sub-packages nothing in the app imports (largest first; sizes are their .py sources).
TORCH_UNUSED = [
    "torch._inductor",                 # 9.7 MB: the torch.compile back end (and its sympy, jinja2)
    "torch._dynamo",                   # 4.7 MB: torch.compile's tracer; GradSim's optimizers are its own
    "torch.distributed.tensor", "torch.distributed.fsdp", "torch.distributed.checkpoint",
    "torch.distributed.elastic", "torch.distributed.pipelining", "torch.distributed._shard",
    "torch.distributed._tools", "torch.distributed.optim", "torch.distributed._symmetric_memory",
    "torch.distributed._local_tensor", "torch.distributed.algorithms.ddp_comm_hooks",
    "torch.distributed.algorithms.model_averaging", "torch.distributed.flight_recorder",
    "torch.distributed.nn", "torch.distributed.debug", "torch.distributed._composable",
    "torch.distributed.launcher",
    "torch.onnx",                      # 1.2 MB: export to ONNX
    "torch.testing._internal.distributed", "torch.testing._internal.generated",
    "torch.testing._internal.opinfo", "torch.testing._internal.optests",
    "torch._vendor.quack",             # CUDA kernels (CuTe DSL)
    "torch.ao.quantization.fx", "torch.ao.quantization.backend_config", "torch.ao.ns",
    "torch.ao.pruning", "torch.quantization.fx",
    "torch._numpy",                    # numpy emulation for torch.compile
    "torch.utils.hipify", "torch.utils._sympy", "torch.utils.benchmark", "torch.utils.tensorboard",
    "torch.utils.model_dump", "torch.utils.viz", "torch.utils.bottleneck", "torch.utils.cpp_extension",
    "torch._export.serde", "torch._export.passes", "torch._export.db",
    "torch.export.pt2_archive", "torch.export.experimental",
    "torch.fx.experimental.migrate_gradual_types", "torch.fx.passes.tests",
    "torch.backends._nnapi", "torch.backends.xeon",
    "torch._functorch._activation_checkpointing", "torch._functorch._activation_offloading",
    "torch._subclasses.complex_tensor", "torch.nn.utils._expanded_weights",
    "torch.nn.attention.experimental", "torch._lazy", "torch.numa", "torch.contrib",
    "torch.jit.mobile",
]

#: Other packages that only the trees above, or tooling, import.
OTHER_UNUSED = [
    "sympy", "mpmath",                 # torch.utils._sympy / _inductor (6.5 MB of byte code)
    "networkx",                        # torch._functorch partitioners / _inductor
    "jinja2", "markupsafe",            # _inductor's code templates
    "fsspec", "filelock",              # torch.distributed.checkpoint, _inductor caches
    "sqlite3", "readline", "pdb",      # only debuggers and caches; pulled libsqlite3, libreadline
    "numpy.f2py",                      # numpy's Fortran wrapper generator (a build tool)
    "pydoc_data",                      # help()'s topic texts
    "PySide6.QtDBus",                  # the Python binding only; Qt's own D-Bus library stays (the portal)
    # TLS: the app never opens a network connection (no QtNetwork either). http.client,
    # urllib.request and asyncio import ssl inside try/except, and hashlib falls back to
    # Python's built-in hashes without _hashlib: this drops libssl and libcrypto (5 MB).
    "ssl", "_ssl", "_hashlib",
]


def is_unused(name: str) -> bool:
    """Whether module ``name`` lies in one of the trees above."""
    return any(name == tree or name.startswith(tree + ".") for tree in TORCH_UNUSED + OTHER_UNUSED)
