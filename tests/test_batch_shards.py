"""The numba backend's batch in shards: how many, on how many threads each, the same logits, errors and hooks."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import numba
import numpy as np
import pytest

import levit_np
from levit_np import levit_model
from levit_np.kernels import batch_shards, reference
from levit_np.model.forward import forward

needs_two_threads = pytest.mark.skipif(
    numba.config.NUMBA_NUM_THREADS < 2 or not batch_shards.layer_runs_concurrent_kernels(),
    reason="sharding needs two Numba threads on a threading layer that takes kernels from several threads")


@pytest.fixture
def two_threads():
    before = numba.get_num_threads()
    numba.set_num_threads(2)
    yield
    numba.set_num_threads(before)


@pytest.mark.parametrize("batch, threads, shards", [
    (32, 2, 2), (16, 2, 2), (15, 2, 1), (8, 2, 1), (100, 1, 1), (1, 2, 1),
    (64, 4, 4), (24, 4, 2), (16, 3, 1), (40, 6, 3), (48, 6, 6)])  # the threads always shared out evenly
def test_shard_count(batch, threads, shards):
    assert batch_shards.shard_count(batch, threads) == shards


def recorder():
    """A stand-in forward pass: records (images, Numba threads, thread id) per call, returns 2 * x per image."""
    calls = []
    lock = threading.Lock()

    def run(x):
        with lock:
            calls.append((len(x), numba.get_num_threads(), threading.get_ident()))
        return x.reshape(len(x), -1)[:, :3] * 2

    return run, calls


@needs_two_threads
def test_a_large_batch_runs_as_one_shard_per_thread_in_order(two_threads):
    run, calls = recorder()
    x = np.arange(17 * 4, dtype=np.float32).reshape(17, 1, 2, 2)
    out = batch_shards.run_sharded(run, x)
    np.testing.assert_array_equal(out, x.reshape(17, -1)[:, :3] * 2)  # every image, in the batch's order
    assert sorted(images for images, _, _ in calls) == [8, 9]
    assert [threads for _, threads, _ in calls] == [1, 1]  # each shard on one Numba thread
    assert len({ident for _, _, ident in calls}) == 2  # side by side, in two threads
    assert numba.get_num_threads() == 2  # the caller's setting is back


@needs_two_threads
def test_a_small_batch_runs_whole_on_every_thread(two_threads):
    run, calls = recorder()
    batch_shards.run_sharded(run, np.zeros((15, 3), np.float32))
    assert [(images, threads) for images, threads, _ in calls] == [(15, 2)]


@needs_two_threads
def test_workqueue_layer_runs_the_batch_whole(two_threads, monkeypatch):
    monkeypatch.setattr(numba, "threading_layer", lambda: "workqueue")
    run, calls = recorder()
    batch_shards.run_sharded(run, np.zeros((32, 3), np.float32))
    assert [(images, threads) for images, threads, _ in calls] == [(32, 2)]


@needs_two_threads
@pytest.mark.parametrize("failing", ["the caller's shard", "the pool's shard"])
def test_a_failing_shard_raises_in_the_caller_after_every_shard_ended(two_threads, failing):
    """The caller's shard fails at once while the pool's is still running (or the other way round): the error
    reaches the caller only after both have ended."""
    ended = []
    caller = threading.get_ident()

    def run(x):
        try:
            if (threading.get_ident() == caller) == (failing == "the caller's shard"):
                raise MemoryError("no room for this shard")
            time.sleep(0.2)
            return x
        finally:
            ended.append(threading.get_ident())

    with pytest.raises(MemoryError, match="no room"):
        batch_shards.run_sharded(run, np.zeros((16, 1), np.float32))
    assert len(ended) == 2


def test_reference_runs_every_batch_whole():
    run, calls = recorder()
    reference.run_batch(run, np.zeros((64, 3), np.float32))
    assert [images for images, _, _ in calls] == [64]


@needs_two_threads
def test_the_model_runs_a_large_batch_in_shards_with_the_same_bits(two_threads, monkeypatch):
    """`model(x)` on 17 images and two threads runs two forward passes (9 and 8 images, one Numba thread each),
    and their logits are the same bits as the forward pass over all 17 on both threads."""
    model = levit_np.create("levit_128s", seed=5, backend="numba")
    x = np.random.default_rng(5).standard_normal((17, 3, 64, 64)).astype(np.float32)
    passes = []

    def watched_forward(images, *args, **kwargs):
        passes.append((len(images), numba.get_num_threads()))
        return forward(images, *args, **kwargs)

    monkeypatch.setattr(levit_model, "forward", watched_forward)
    sharded = model(x)
    assert sorted(passes) == [(8, 1), (9, 1)]
    whole = forward(x, model.config, model.layers, model.kernels)
    assert sharded.shape == (17, 1000)
    np.testing.assert_array_equal(sharded, whole)


@needs_two_threads
def test_a_hook_sees_the_whole_batch_in_one_pass(two_threads, monkeypatch):
    model = levit_np.create("levit_128s", seed=5, backend="numba")
    passes, seen = [], []

    def watched_forward(images, *args, **kwargs):
        passes.append(len(images))
        return forward(images, *args, **kwargs)

    monkeypatch.setattr(levit_model, "forward", watched_forward)
    model(np.zeros((16, 3, 64, 64), np.float32), hook=lambda name, value: seen.append(value.shape[0]))
    assert passes == [16] and seen and set(seen) == {16}


@needs_two_threads
def test_the_shard_comparison_reports_both_ways_and_the_same_bits():
    """`python -m levit_np.perf.shard_ab` in its own process on two threads, one round of 16 images."""
    from levit_np.perf.timing import thread_environment

    done = subprocess.run([sys.executable, "-m", "levit_np.perf.shard_ab", "levit_128s", "--batch", "16",
                           "--rounds", "1"], capture_output=True, text=True, env=thread_environment(2))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["shards"] == 2 and report["same_bits"] is True
    assert all(ms > 0 for ms in report["ms_per_image"].values()) and report["shards_over_shared"] > 0
