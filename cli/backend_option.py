"""`--backend [auto|numpy|numba]`: which kernels a command runs. The CLI defaults to `auto` (the NumPy reference
for a few photos, where Numba's start-up would cost more than it saves; numba for more work); the Python API
keeps NumPy as its default (`levit_np.load(path, backend="numpy")`).

    @click.command()
    @backend_option
    def predict(..., backend): ...
"""

from __future__ import annotations

import os
import sys
from typing import Callable, Optional

import click

from levit_np.kernels.backends import CHOICES, describe_auto  # plain tables: importing loads neither NumPy nor Numba

DEFAULT_BACKEND = "auto"


def _one_blas_thread_for_auto(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """With `auto`, BLAS gets one thread unless the user chose (--threads, or OPENBLAS_NUM_THREADS): only the
    reference uses BLAS, and auto runs it for small work only, whose products are too small to split (and
    two spinning BLAS threads on a busy machine made one photo take seconds). Numba's threads are unaffected."""
    if value == "auto" and "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    return value


def backend_option(f: Optional[Callable] = None, *, default: str = DEFAULT_BACKEND) -> Callable:
    """Add `--backend` (parameter `backend`): `@backend_option`, or `@backend_option(default="numpy")` for the
    commands that read or time the reference."""
    def add(command: Callable) -> Callable:
        return click.option("--backend", type=click.Choice(list(CHOICES)), default=default,
                            show_default=True, callback=_one_blas_thread_for_auto,
                            help="Kernels: numba (folded weights, compiled kernels; the first run compiles them, "
                                 "later runs load them from Numba's cache), numpy (the readable reference) or "
                                 f"{describe_auto()}.")(command)

    return add(f) if f is not None else add
