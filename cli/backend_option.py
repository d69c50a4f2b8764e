"""`--backend [auto|numpy|numba]`: which kernels a command runs, with one default rule for every command.

The rule (BACKEND_RULE, stated in each --help): `auto`, which picks by the command's work: the NumPy reference
for a few photos (where Numba's start-up costs more than it saves) and for the Table 5 ablation models (which
numba does not run), numba for more work. The Python API keeps NumPy as its default
(`levit_np.load(path, backend="numpy")`).

    @click.command()
    @backend_option
    def predict(..., backend): ...
"""

from __future__ import annotations

import os
import sys
from typing import Callable

import click

from levit_np.kernels.backends import CHOICES, describe_auto  # plain tables: importing loads neither NumPy nor Numba

DEFAULT_BACKEND = "auto"
BACKEND_RULE = f"Default: auto on every command; {describe_auto()} (numpy for the Table 5 ablation models)."


def _one_blas_thread_for_auto(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """With `auto`, BLAS gets one thread unless the user chose (--threads, or OPENBLAS_NUM_THREADS): only the
    reference uses BLAS, and auto runs it for small work only, whose products are too small to split (and
    two spinning BLAS threads on a busy machine made one photo take seconds). Numba's threads are unaffected."""
    if value == "auto" and "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    return value


def backend_option(f: Callable) -> Callable:
    """Add `--backend` (parameter `backend`), defaulting to DEFAULT_BACKEND."""
    return click.option("--backend", type=click.Choice(list(CHOICES)), default=DEFAULT_BACKEND,
                        callback=_one_blas_thread_for_auto,
                        help="Kernels: numba (folded weights, compiled kernels; the first run compiles them, "
                             "later runs load them from Numba's cache), numpy (the readable reference) or auto. "
                             + BACKEND_RULE)(f)
