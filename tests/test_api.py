"""The package's public API: names that must keep working however the submodules are imported."""

from __future__ import annotations

import importlib
import os
import stat
import subprocess
import sys

import numpy as np

import levit_np
from levit_np.weights.fileio import atomic_output

from conftest import SHARED


def test_preprocess_is_callable_repeatedly():
    photo = SHARED / "images" / "coral" / "cat.bmp"
    if not photo.exists():
        import pytest

        pytest.skip("shared images are absent")
    first = levit_np.preprocess(photo)
    importlib.import_module("levit_np.images.preprocessing")  # importing the module must not replace the function

    np.testing.assert_array_equal(levit_np.preprocess(photo), first)


def test_create_and_trace_names():
    model = levit_np.create("levit_128s", seed=1)
    x = np.random.default_rng(0).normal(size=(1, 3, 224, 224)).astype(np.float32)
    trace = model.trace(x)
    assert list(trace) == model.block_names()
    np.testing.assert_array_equal(trace["logits"], model(x))
    assert trace["logits"].shape == (1, 1000) and trace["logits"].dtype == np.float32


def test_importing_config_does_not_load_numpy():
    code = "import sys, levit_np.model.config, levit_cli.main; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_atomic_output_gives_normal_permissions(tmp_path):
    target = tmp_path / "out.bin"
    with atomic_output(target) as tmp:
        tmp.write_bytes(b"x")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
