"""Compiled kernels always match the source: an edit to a shared helper (kernels/numba_common.py) in a
temporary copy of the package changes what the cached kernels of fast.py compute (on main the cached callers
kept running the old helper)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

import levit_np

PACKAGE = Path(levit_np.__file__).resolve().parent
PROBE = """
import json
import numpy as np
from levit_np.kernels import cache, fast, gemm, numba_common

x = np.linspace(-4, 4, 9, dtype=np.float32)
y = fast.hardswish(x)
stats = fast._hardswish_flat.stats
locators = {type(f._cache._impl.locator).__name__ for module in (fast, gemm, numba_common)
            for f in vars(module).values() if getattr(f, "_cache", None) is not None
            and hasattr(f._cache, "_impl")}
print(json.dumps({"y": y.tolist(), "hits": sum(stats.cache_hits.values()), "misses": sum(stats.cache_misses.values()),
                  "folder": str(cache.cache_folder()), "locators": sorted(locators)}))
"""


def _run(copy_root: Path, numba_cache: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(copy_root), "NUMBA_CACHE_DIR": str(numba_cache),
           "NUMBA_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=copy_root, env=env, capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_edit_to_a_shared_helper_is_compiled(tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(PACKAGE, root / "levit_np", ignore=shutil.ignore_patterns("__pycache__"))
    numba_cache = tmp_path / "numba-cache"
    x = np.linspace(-4, 4, 9, dtype=np.float32)
    hardswish = x * np.clip(x + 3, 0, 6) / 6

    first = _run(root, numba_cache)
    assert first["misses"] == 1 and first["hits"] == 0
    assert first["locators"] == ["KernelCacheLocator"]  # every cached kernel of fast, gemm and numba_common
    assert Path(first["folder"]).parent == numba_cache / "levit-np-kernels"
    np.testing.assert_allclose(first["y"], hardswish, rtol=0, atol=1e-6)

    second = _run(root, numba_cache)
    assert second["hits"] == 1 and second["misses"] == 0  # really served from the cache
    assert second["folder"] == first["folder"]

    helper = root / "levit_np" / "kernels" / "numba_common.py"
    source = helper.read_text()
    assert source.count("/ np.float32(6.0)") == 1
    helper.write_text(source.replace("/ np.float32(6.0)", "/ np.float32(3.0)"))  # fast.py itself unchanged

    third = _run(root, numba_cache)
    print("after the edit:", third)
    assert third["folder"] != first["folder"] and third["misses"] == 1
    np.testing.assert_allclose(third["y"], 2 * hardswish, rtol=0, atol=1e-6)
    assert not list((root / "levit_np" / "kernels").rglob("*.nbi"))  # nothing cached inside the package
