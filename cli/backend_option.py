"""`--backend [numba|numpy]`: which kernels a command runs. The CLI defaults to the fast path (numba); the Python
API keeps NumPy as its default (`levit_np.load(path, backend="numpy")`).

    @click.command()
    @backend_option
    def predict(..., backend): ...
"""

from __future__ import annotations

from typing import Callable

import click

CLI_BACKENDS = ("numba", "numpy")  # as in levit_np.backends.BACKENDS (not imported: keeps `levit --help` light)
DEFAULT_BACKEND = "numba"


def backend_option(f: Callable) -> Callable:
    """Add `--backend` (parameter `backend`)."""
    return click.option("--backend", type=click.Choice(CLI_BACKENDS), default=DEFAULT_BACKEND, show_default=True,
                        help="Kernels: numba (folded weights, compiled kernels; the first run compiles them, "
                             "later runs load them from Numba's cache) or numpy (the readable reference).")(f)
