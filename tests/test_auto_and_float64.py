"""Backend `auto` (chosen by the work of each call), the float64 reference, and the float64-truth distances."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest

import levit_np
from levit_np.kernels.backends import AUTO_NUMBA_MACS, auto_backend, describe_auto
from levit_np.model.config import VARIANTS, get_config
from levit_np.model.params import random_params
from levit_np.perf import truth

from conftest import assert_close_relative


def images(batch: int, seed: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, 3, 224, 224)).astype(np.float32)


# ---------------------------------------------------------------- auto


def test_auto_rule_by_work():
    cfg = get_config("128s")
    assert auto_backend(cfg, 0.31e9) == "numpy"  # one photo of LeViT-128S
    assert auto_backend(cfg, AUTO_NUMBA_MACS) == "numba"
    assert auto_backend(cfg, 0.31e9, numba_ready=True) == "numba"  # once loaded, it stays
    ablation = dataclasses.replace(cfg, norm="ln")
    assert auto_backend(ablation, 100 * AUTO_NUMBA_MACS) == "numpy"  # numba runs the released models only
    assert "numpy" in describe_auto() and "numba" in describe_auto()


def test_auto_model_switches_by_batch_and_matches_both_backends():
    cfg = VARIANTS["levit_128s"]
    params = random_params(cfg, seed=21)
    model = levit_np.LevitModel(cfg, params, backend="auto")
    x = images(1)
    small = model(x)
    assert model.active_backend == "numpy"
    np.testing.assert_array_equal(small, levit_np.LevitModel(cfg, params, backend="numpy")(x))
    batch = int(np.ceil(AUTO_NUMBA_MACS / model.macs(1, 224, 224)))
    big = model(images(batch))
    assert model.active_backend == "numba"
    expected = levit_np.LevitModel(cfg, params, backend="numba")(images(batch))
    np.testing.assert_array_equal(big, expected)
    model(x)
    assert model.active_backend == "numba"  # compiled path loaded: no reason to go back


def test_one_photo_with_auto_never_imports_numba():
    """The start-up target: `auto` on one image loads no Numba (it alone costs ~0.33 s and ~90 MB)."""
    code = ("import sys, numpy as np, levit_np\n"
            "m = levit_np.create('128s', backend='auto')\n"
            "m(np.zeros((1, 3, 224, 224), np.float32))\n"
            "print('numba' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_warm_up_prepares_what_the_run_will_use():
    """`levit predict`'s warm-up: nothing for a batch `auto` runs on the reference, numba (compiled or loaded, and
    kept for every later call) for a batch it runs on numba; a numpy model is never warmed."""
    from levit_cli.compiling import warm_up

    model = levit_np.create("128s", backend="auto")
    warm_up(model, (224, 224), batch=1)
    assert model.backend_for(1, 224, 224) == "numpy" and model.active_backend == "numpy"
    batch = int(np.ceil(AUTO_NUMBA_MACS / model.macs(1, 224, 224)))
    assert model.backend_for(batch, 224, 224) == "numba"
    warm_up(model, (224, 224), batch=batch)
    assert model.active_backend == "numba" and model.backend_for(1, 224, 224) == "numba"
    reference = levit_np.create("128s", backend="numpy")
    warm_up(reference, (224, 224), batch=batch)
    assert reference.backend_for(batch, 224, 224) == "numpy"
    with pytest.raises(ValueError, match="runs 'numpy' only"):
        reference.prepare_backend("numba")


# ---------------------------------------------------------------- float64


def test_float64_reference_runs_in_float64_and_agrees_with_float32():
    model64 = levit_np.create("128s", seed=3, dtype="float64")
    x = images(2)
    got = model64(x)
    assert got.dtype == np.float64
    assert model64.layers["stem.conv1"]["weight"].dtype == np.float64
    f32 = levit_np.create("128s", seed=3)(x)
    err = assert_close_relative(f32, got, 1e-4, "float32 vs float64 reference")
    print(f"float32 reference vs float64: {err:.2e}")
    assert err > 0  # the two really are different computations


def test_float64_is_refused_on_numba_and_unknown_dtype():
    with pytest.raises(ValueError, match="numpy reference only"):
        levit_np.create("128s", backend="numba", dtype="float64")
    with pytest.raises(ValueError, match="unknown dtype"):
        levit_np.create("128s", dtype="float16")


def test_load_takes_dtype(tmp_path):
    from levit_np.weights.hdf5_file import write_weights

    cfg = get_config("128s")
    params = random_params(cfg, seed=2)
    path = tmp_path / "w.h5"
    write_weights(path, cfg, params)
    model = levit_np.load(path, dtype="float64")
    np.testing.assert_allclose(model(images(1)), levit_np.LevitModel(cfg, params, dtype="float64")(images(1)),
                               rtol=0, atol=0)


# ---------------------------------------------------------------- distances from the float64 truth


def test_distance_is_relative_to_the_largest_truth():
    t = np.array([[1.0, -4.0, 2.0]])
    assert truth.distance(t + np.array([[0.0, 0.0, 0.02]]), t) == pytest.approx(0.005)
    assert truth.distance(t, t) == 0.0


def test_kernel_attribution_adds_up_to_the_fast_path():
    """Each kernel alone in float32 is at most about as far as the whole fast path; all four together are
    the fast path within rounding (the same kernels on the same layers)."""
    out = truth.kernel_attribution("128s", seed=0, images=truth.probe_images(1))
    print({name: f"{value:.2e}" for name, value in out.items()})
    assert set(out) == set(truth.SWAPPABLE) | {"all four", "numba", "numpy f32"}
    assert 0 < out["numba"] < 1e-4 and 0 < out["numpy f32"] < 1e-4
    assert out["all four"] == pytest.approx(out["numba"], rel=0.5)
    assert max(out[name] for name in truth.SWAPPABLE) <= 1.5 * out["all four"]
