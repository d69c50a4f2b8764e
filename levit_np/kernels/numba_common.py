"""Scalar helpers, flags and the thread wait policy shared by the Numba kernels (`fast.py`, `gemm.py`)."""

from __future__ import annotations

import os

# Numba's OpenMP threads wait for the next parallel region asleep, not spinning (unless the user chose): a forward
# pass is ~60 short regions, and on a busy machine spinning threads steal the cores the other thread needs to
# reach the barrier. Measured, LeViT-128S batch 1, 2 threads, load ~13: 52 ms passive vs 2.4 s spinning (the
# OpenMP default), 81 ms with GOMP_SPINCOUNT=1000. OpenMP reads it when it loads, at the first parallel region.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
from numba import njit  # noqa: E402

import levit_np.kernels.cache  # noqa: F401  (first: compiled kernels cached by a hash of their sources)


def vector_floats() -> int:
    """float32 lanes in the widest vector register the kernels are compiled for: 16 with AVX-512, else 8.

    The CPU is Numba's target: NUMBA_CPU_NAME / NUMBA_CPU_FEATURES when set (portable caches), else this host.
    """
    import numba
    from llvmlite import binding

    if numba.config.CPU_FEATURES:
        return 16 if "+avx512f" in numba.config.CPU_FEATURES.split(",") else 8
    if numba.config.CPU_NAME and numba.config.CPU_NAME != "host":
        return 8  # a named CPU without named features: assume the narrower registers
    return 16 if binding.get_host_cpu_features().get("avx512f") else 8


# FMA contraction only: a*b+c rounds once instead of twice (at least as accurate). No other fast-math flag.
FASTMATH = {"contract"}


@njit(cache=True, fastmath=FASTMATH)
def hardswish1(v):
    """x * relu6(x + 3) / 6 for one float32."""
    return v * min(max(v + np.float32(3.0), np.float32(0.0)), np.float32(6.0)) / np.float32(6.0)
