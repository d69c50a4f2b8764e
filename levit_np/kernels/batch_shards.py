"""How the numba backend spreads a large batch over its threads: in shards side by side, not kernel by kernel.

With T Numba threads every kernel splits its own work T ways: ~60 parallel regions per forward pass, each
waking the other threads and waiting for the slowest at its end, and each thread reading data the other one
wrote. With at least SHARD_IMAGES images per shard, the batch instead runs as shards at once, each a whole
forward pass in its own Python thread on an equal share of the threads (T shards of one thread where the batch
allows; the kernels release the GIL, `nogil=True`; NumPy's glue between them mostly does too). Every image is
computed in the same order either way, so the logits are the same bits. Measured on a 2-core AMD EPYC (Zen 3),
two threads, in one process alternating with the kernel-by-kernel split (`python -m levit_np.perf.shard_ab`):
LeViT-128S batch 32 0.89-0.95x the time (four runs), batch 16 0.88x, LeViT-256 batch 32 0.92-0.93x; batch 8
(shards of 4 images) 0.99x, which is why shards hold at least 8.

Only where the threading layer takes parallel kernels from several threads at once (OpenMP, TBB); on Numba's
built-in `workqueue` layer, which does not, the batch runs whole. Shards that arrive at a kernel not compiled
yet compile it once, under Numba's compiler lock (`gemm.compile_vectorised`). A forward pass with a hook
(`levit trace`, `levit profile`'s per-block times) always runs whole: the hook sees each block's whole batch.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Callable

import numba
import numpy as np

SHARD_IMAGES = 8  # fewest images a shard holds: below, the threads share each kernel instead
CONCURRENT_LAYERS = ("omp", "tbb")  # threading layers that run parallel kernels launched from several threads

_pools: dict[tuple[int, int], ThreadPoolExecutor] = {}  # (process id, workers) -> a pool, made on first use
_pools_lock = threading.Lock()


def shard_count(batch: int, threads: int) -> int:
    """How many shards a batch of `batch` images runs in on `threads` Numba threads (1: the batch runs whole):
    the most shards of at least SHARD_IMAGES images each that share the threads evenly."""
    for count in range(min(threads, batch // SHARD_IMAGES), 1, -1):
        if threads % count == 0:
            return count
    return 1


def layer_runs_concurrent_kernels() -> bool:
    """True if Numba's threading layer takes parallel kernels launched from several threads at once."""
    numba.get_num_threads()  # loads the threading layer, if nothing has yet
    return numba.threading_layer() in CONCURRENT_LAYERS


def planned_shards(batch: int) -> int:
    """How many shards `run_sharded` runs a batch of `batch` images in, on this thread's Numba threads."""
    if not layer_runs_concurrent_kernels():
        return 1
    return shard_count(batch, numba.get_num_threads())


def _on_threads(threads: int, run: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    """run(x) with this thread's Numba kernels on `threads` threads; the thread's own setting restored after."""
    before = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        return run(x)
    finally:
        numba.set_num_threads(before)


def _worker_pool(workers: int) -> ThreadPoolExecutor:
    """This process's pool of `workers` threads (a forked child has none of its parent's threads: its own)."""
    key = (os.getpid(), workers)
    with _pools_lock:
        if key not in _pools:
            _pools[key] = ThreadPoolExecutor(workers, thread_name_prefix="levit-shard")
        return _pools[key]


def run_sharded(run: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    """run(x) for a whole forward pass `run`, (B, ...) -> (B, classes): as `planned_shards(B)` shards of the
    batch at once, each on an equal share of the threads (one each, for T shards on T threads); else run(x)."""
    count = planned_shards(x.shape[0])
    if count == 1:
        return run(x)
    threads = numba.get_num_threads() // count
    shards = np.array_split(x, count)
    pool = _worker_pool(count - 1)
    pending = []
    try:
        pending += [pool.submit(_on_threads, threads, run, part) for part in shards[1:]]
        first = _on_threads(threads, run, shards[0])  # the calling thread runs the first shard itself
    finally:
        wait(pending)  # no shard outlives the call, even when one fails
    return np.concatenate([first] + [job.result() for job in pending])
