"""Timing, in one place: thread pinning, timed loops, median and interquartile range, and the two timers.

- `THREAD_VARIABLES` / `pin_threads` / `thread_environment`: every thread pool's variable, set before NumPy,
  Numba or PyTorch is imported (they read them only then).
- `time_calls`: seconds per call of a function, after one untimed call.
- `quantiles`, `median_iqr`: the statistics every table quotes.
- `HookTimer`: a forward-pass hook (`model(x, hook=timer)`) timing each named output since the previous one.
- `StepTimer`: a `step` for split block functions, timing each piece where it runs.
- `KernelTimer`: a backend's kernel module for `forward`, timing every kernel call by kernel name.

Importing this module loads no NumPy, so the command line can pin threads with it first.
"""

from __future__ import annotations

import os
import time
from typing import Callable, MutableMapping, Optional

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
                    "LEVIT_THREADS", "TBB_NUM_THREADS")


def thread_variables(threads: int) -> dict[str, str]:
    """{variable: threads} for every thread pool."""
    return {name: str(threads) for name in THREAD_VARIABLES}


def pin_threads(threads: int, env: Optional[MutableMapping[str, str]] = None) -> MutableMapping[str, str]:
    """Set every thread pool's variable to `threads` in `env` (default: this process's environment)."""
    env = os.environ if env is None else env
    env.update(thread_variables(threads))
    return env


def thread_environment(threads: int) -> dict[str, str]:
    """The environment of a worker process: this one's, with every thread pool pinned to `threads`."""
    return dict(pin_threads(threads, dict(os.environ)))


def time_calls(run: Callable, x, seconds: float, min_calls: int) -> list[float]:
    """Seconds per call: one untimed call, then calls until `seconds` have passed and `min_calls` were made."""
    run(x)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_calls or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        run(x)
        times.append(time.perf_counter() - t0)
    return times


def quantiles(values) -> tuple[float, float, float]:
    """(25th percentile, median, 75th percentile), linear interpolation as NumPy's default."""
    import numpy as np

    q = np.percentile(np.asarray(values, dtype=np.float64), [25, 50, 75])
    return float(q[0]), float(q[1]), float(q[2])


def median_iqr(values) -> tuple[float, float]:
    """(median, interquartile range): a figure and its spread."""
    p25, p50, p75 = quantiles(values)
    return p50, p75 - p25


class HookTimer:
    """A hook for `model(x, hook=...)`: seconds from the previous mark (or `start()`) to each named output.

    With `keep_values`, a copy of each output is kept too (`values`), made outside the timed spans.
    """

    def __init__(self, keep_values: bool = False):
        self.keep_values = keep_values
        self.seconds: dict[str, float] = {}
        self.values: dict = {}
        self._last = time.perf_counter()

    def start(self) -> "HookTimer":
        self.seconds, self.values = {}, {}
        self._last = time.perf_counter()
        return self

    def __call__(self, name: str, value) -> None:
        now = time.perf_counter()
        self.seconds[name] = now - self._last
        if self.keep_values:
            import numpy as np

            self.values[name] = np.array(value)
        self._last = time.perf_counter()


class StepTimer:
    """A `step` for the split block functions: times each piece as it runs inside the whole block."""

    def __init__(self):
        self.run: dict[str, float] = {}

    def __call__(self, row: str, fn: Callable, *args):
        start = time.perf_counter()
        out = fn(*args)
        self.run[row] = self.run.get(row, 0.0) + time.perf_counter() - start  # DeiT's two LayerNorms add up
        return out


class KernelTimer:
    """Stands in for a backend's kernel module in `forward(x, cfg, layers, KernelTimer(kernels))`: every kernel
    runs as it would, and `spent[name]` adds up the seconds of each call of kernel `name`."""

    NAME = "timed"

    def __init__(self, kernels):
        self.kernels = kernels
        self.spent: dict[str, float] = {}

    def __getattr__(self, name: str):
        kernel = getattr(self.kernels, name)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            out = kernel(*args, **kwargs)
            self.spent[name] = self.spent.get(name, 0.0) + time.perf_counter() - start
            return out
        return timed
