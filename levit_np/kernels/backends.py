"""Backends: a kernel namespace plus the `prepare` step that turns checkpoint tensors into its layers."""

from __future__ import annotations

import importlib
from types import ModuleType

BACKENDS = {
    "numpy": "levit_np.kernels.reference",
    "numba": "levit_np.kernels.fast",
}


def get_backend(name: str) -> ModuleType:
    """The kernel module of backend `name` ('numpy' is the reference)."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose from: {', '.join(BACKENDS)}")
    return importlib.import_module(BACKENDS[name])
