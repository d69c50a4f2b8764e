"""One line on stderr when Numba really compiles the fast kernels ("compiling kernels, once: ~40 s"), so a first
run does not look frozen. Loading them from Numba's on-disk cache prints nothing.

    with compile_notice():
        net(x)          # the first pass of a numba model compiles, or loads, the kernels

It listens to Numba's "numba:compile" event, which fires only when a function is compiled (a cache hit does
not fire it), and prints at most once per process.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Iterator

COMPILE_SECONDS = 40  # a first compile of every kernel: 38-44 s on a 2-core AMD EPYC (Zen 3); later runs load them
MESSAGE = (f"compiling kernels, once: ~{COMPILE_SECONDS} s (later runs load them from Numba's cache; "
           "--backend numpy needs no compiling)")

_announced = False


@contextlib.contextmanager
def compile_notice() -> Iterator[None]:
    """Print MESSAGE on stderr at the first Numba compile inside the block (if Numba is in use at all)."""
    if "numba" not in sys.modules:  # a numpy-backend model: nothing to compile
        yield
        return
    from numba.core import event

    class Announce(event.Listener):
        def on_start(self, _event) -> None:
            global _announced
            if not _announced:
                _announced = True
                from .console import err, line

                line(MESSAGE, console=err)

        def on_end(self, _event) -> None:
            pass

    with event.install_listener("numba:compile", Announce()):
        yield


def warm_up(net, size: tuple[int, int] = (224, 224), batch: int = 1) -> None:
    """Run one image of zeros through `net` under `compile_notice`, so a progress bar started afterwards moves
    from its first batch (numba specialises on types, not on batch size: one image compiles every kernel).

    Nothing to do when calls on `batch` images run the reference (backend numpy, or auto on small work)."""
    backend = net.backend_for(batch, *size)
    if backend == "numpy":
        return
    import numpy as np

    net.prepare_backend(backend)  # one image alone would run the reference under auto
    with compile_notice():
        net(np.zeros((1, net.config.in_chans, *size), np.float32))
