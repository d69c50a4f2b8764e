"""`--backend [numba|numpy]`: which kernels a command runs, with one default rule for every command.

The rule (BACKEND_RULE, stated in each --help): every `levit` command runs numba, the fast path, unless
`--backend numpy` asks for the readable reference; the Table 5 ablation models, which numba does not run, use
numpy. The Python API keeps NumPy as its default (`levit_np.load(path, backend="numpy")`).

    @click.command()
    @backend_option
    def predict(..., backend): ...
"""

from __future__ import annotations

from typing import Callable

import click

from levit_np.kernels.backends import BACKENDS  # a plain table: importing it loads neither NumPy nor Numba

DEFAULT_BACKEND = "numba"
BACKEND_RULE = ("Default: numba on every command (numpy for the Table 5 ablation models, which numba does not "
                "run).")


def backend_option(f: Callable) -> Callable:
    """Add `--backend` (parameter `backend`), defaulting to DEFAULT_BACKEND."""
    return click.option("--backend", type=click.Choice(list(BACKENDS)), default=DEFAULT_BACKEND,
                        help="Kernels: numba (folded weights, compiled kernels; the first run compiles them, "
                             "later runs load them from Numba's cache) or numpy (the readable reference). "
                             + BACKEND_RULE)(f)
