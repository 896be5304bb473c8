"""GradSim's PyInstaller hook for torch; replaces pyinstaller-hooks-contrib's hook-torch.py.

(User hooks in the spec's ``hookspath`` take precedence over contrib's.) It does what
contrib's hook does on Linux, macOS and Windows with PyPI's CPU wheels, minus what the
app never uses:

* contrib's ``collect_submodules("torch")`` imports every torch package in a
  subprocess to list its 2,300 modules and hands all of them to the analysis, which
  then follows them into sympy, networkx, jinja2, ... (about 2,000 more modules):
  most of PyInstaller's time, and ~25 MB of byte code. Here the trees of
  ``unused_modules.TORCH_UNUSED`` are filtered out before they are imported or
  analysed.
* contrib's ``collect_data_files("torch")`` collects torch/bin (C++ test programs,
  protoc), torch/test, headers and CMake files: ~140 MB that the spec then had to
  delete after analysing them. Here they are never collected, except
  ``bin/torch_shm_manager``, which ``import torch`` checks for.
* torch's test libraries in torch/lib are not collected.

Kept as in contrib's hook: ``module_collection_mode = "pyz+py"`` (byte code in the
archive and the .py source next to it: torch's config modules read their own source
with ``inspect.getsource`` at import, found here: without it ``import torch`` fails),
and no symlinks from torch/lib to the top level.
"""
import os
import sys

from PyInstaller.utils.hooks import PY_DYLIB_PATTERNS, collect_data_files, collect_dynamic_libs, collect_submodules, get_package_paths

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from unused_modules import TORCH_UNUSED, is_unused

module_collection_mode = "pyz+py"
warn_on_missing_hiddenimports = False

_pkg_base, _pkg_dir = get_package_paths("torch")
_unused_dirs = [tree.split(".", 1)[1].replace(".", "/") + "/**" for tree in TORCH_UNUSED]

datas = collect_data_files(
    "torch",
    excludes=[
        "**/*.h", "**/*.hpp", "**/*.cuh", "**/*.lib", "**/*.cpp", "**/*.pyi", "**/*.cmake",
        "bin/**", "test/**", "include/**", "share/**", "lib/**",
        "testing/_internal/data/**",
        *_unused_dirs,
    ],
)
_shm_manager = os.path.join(_pkg_dir, "bin", "torch_shm_manager")
if os.path.exists(_shm_manager):  # Linux and macOS wheels; Windows has none
    datas.append((_shm_manager, "torch/bin"))

hiddenimports = collect_submodules("torch", filter=lambda name: not is_unused(name))

_TEST_LIBS = ("test", "aoti_custom_ops", "backend_with_compiler", "jitbackend")
binaries = [
    (src, dest) for src, dest in collect_dynamic_libs("torch", search_patterns=PY_DYLIB_PATTERNS + ["*.so.*"])
    if not any(marker in os.path.basename(src) for marker in _TEST_LIBS)
]

if sys.platform == "win32":
    # As contrib's hook: torch wheels that require the `mkl` distribution load its DLLs
    # (and those of intel-openmp and tbb, which mkl requires) from <env>/Library/bin.
    from importlib import metadata

    from packaging.requirements import Requirement

    def _requires(dist_name):
        try:
            reqs = [Requirement(r) for r in metadata.distribution(dist_name).requires or []]
        except metadata.PackageNotFoundError:
            return []
        return [r.name for r in reqs if r.marker is None or r.marker.evaluate()]

    if "mkl" in _requires("torch"):
        for _name in ["mkl"] + _requires("mkl"):
            try:
                _files = metadata.distribution(_name).files or []
            except metadata.PackageNotFoundError:
                continue
            for _file in _files:
                _path = _file.locate().resolve()
                if _path.match("**/Library/bin/*.dll"):
                    binaries.append((str(_path), "."))

# As contrib's hook: no symlinks from torch/lib/*.so to the top-level folder (they confuse
# torch's search for its own libraries).
bindepend_symlink_suppression = ["**/torch/lib/*.so*"]
