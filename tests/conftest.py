"""Shared test fixtures: the official fixture files in ../shared, when present."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
OFFICIAL = SHARED / "fixtures" / "official"
OFFICIAL_PTH = OFFICIAL / "LeViT_128S_random.pth"
OFFICIAL_NPZ = OFFICIAL / "LeViT_128S_expected.npz"


def relative_error(actual: np.ndarray, reference: np.ndarray) -> float:
    """max|actual - reference| / max|reference|: the project's error measure."""
    return float(np.abs(actual.astype(np.float64) - reference).max() / np.abs(reference).max())


def assert_close_relative(actual: np.ndarray, reference: np.ndarray, rel: float, what: str = "") -> float:
    """Assert max|diff| <= rel * max|ref| with assert_allclose (so a failure shows the error), return the error."""
    assert actual.shape == reference.shape, f"{what}: shape {actual.shape} != {reference.shape}"
    atol = rel * float(np.abs(reference).max())
    np.testing.assert_allclose(actual, reference, rtol=0, atol=atol, err_msg=what)
    return relative_error(actual, reference)


@pytest.fixture(autouse=True)
def restore_thread_variables(monkeypatch):
    """`--threads` (and `levit profile`'s one-thread default) write the thread variables into this process's
    environment; put them back after every test, so that no later CLI test sees a stale LEVIT_THREADS."""
    from levit_np.perf.timing import THREAD_VARIABLES

    for name in THREAD_VARIABLES:
        monkeypatch.setenv(name, os.environ.get(name, ""))  # records the old value, or its absence
        if not os.environ[name]:
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def official_pth() -> Path:
    if not OFFICIAL_PTH.exists():
        pytest.skip(f"official fixture not found at {OFFICIAL_PTH} (../shared is absent in a user's clone)")
    return OFFICIAL_PTH


@pytest.fixture(scope="session")
def official_expected():
    if not OFFICIAL_NPZ.exists():
        pytest.skip(f"official fixture outputs not found at {OFFICIAL_NPZ} (../shared is absent)")
    return dict(np.load(OFFICIAL_NPZ))


def invoke_cli(*args) -> Result:
    """Run `levit ARGS...` in-process; it must not raise (a usage error's SystemExit is fine) nor print a traceback."""
    from levit_cli.main import cli

    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output, result.output
    return result
