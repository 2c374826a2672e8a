"""Import `skops.io` without importing torch, cupy or dask on the way.

skops.io lists its default trusted types when it is imported, with scikit-learn's `all_estimators()`,
which walks and imports every scikit-learn package, the vendored array-API shims under
`sklearn.externals.array_api_compat` included, and each shim imports its library when it is installed.
torch is the costly one: with torch in the environment, a serving worker that loaded a skops model held
408 MB instead of ~50 MB more than the master (bench: the serving tree 853 MB, MLflow's 785 MB), and took
its import time at every start, for an estimator that never touches torch. `all_estimators` skips
`externals` anyway, so the shims hold nothing skops wants.

So, while skops.io is first imported, each shim whose library is not loaded yet is blocked (None in
`sys.modules`: its import fails, and `pkgutil.walk_packages` skips a package it cannot import), and
unblocked right after: a later use of scikit-learn's array API imports the real shim. A process that
already uses the library keeps it as it is. The block lasts the import of skops.io (once per process); a
thread importing one of those shims at that very moment would see it fail.
"""

from __future__ import annotations

import sys
from types import ModuleType

#: scikit-learn's array-API shim package -> the library its import loads.
_SHIMS = {
    "sklearn.externals.array_api_compat.torch": "torch",
    "sklearn.externals.array_api_compat.cupy": "cupy",
    "sklearn.externals.array_api_compat.dask": "dask",
}


def import_skops_io() -> ModuleType:
    """`skops.io` (ImportError when skops is not installed)."""
    loaded = sys.modules.get("skops.io")
    if loaded is not None:
        return loaded
    blocked = [
        shim for shim, library in _SHIMS.items() if shim not in sys.modules and library not in sys.modules
    ]
    for shim in blocked:
        sys.modules[shim] = None  # type: ignore[assignment]
    try:
        import skops.io
    finally:
        for shim in blocked:
            if shim in sys.modules and sys.modules[shim] is None:
                del sys.modules[shim]
    return skops.io
