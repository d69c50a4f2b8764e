"""Scalar helpers and flags shared by the Numba kernels (`fast.py`, `gemm.py`)."""

from __future__ import annotations

import numpy as np
from numba import njit

import levit_np.kernels.cache  # noqa: F401  (first: compiled kernels cached by a hash of their sources)

# FMA contraction only: a*b+c rounds once instead of twice (at least as accurate). No other fast-math flag.
FASTMATH = {"contract"}


@njit(cache=True, fastmath=FASTMATH)
def hardswish1(v):
    """x * relu6(x + 3) / 6 for one float32."""
    return v * min(max(v + np.float32(3.0), np.float32(0.0)), np.float32(6.0)) / np.float32(6.0)
