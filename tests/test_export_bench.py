"""`levit bench`'s ONNX Runtime and OpenVINO rows run `levit export`'s graph: no PyTorch, logits equal to ours."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from levit_np.perf import bench

pytest.importorskip("onnx", reason="levit export needs onnx: pip install 'levit-np[onnx]'")

NO_TORCH = """
import json, sys
import numpy as np
from levit_np.perf import bench
runtime, path = sys.argv[1], sys.argv[2]
spec = {"backend": runtime, "variant": "levit_128s", "seed": 0, "threads": 1, "onnx": path}
bench.write_onnx(spec, path)
run, detail = bench.make_runner(spec)
logits = run(np.random.default_rng(1).standard_normal((2, 3, 224, 224)).astype(np.float32))
print(json.dumps({"shape": list(logits.shape), "torch": "torch" in sys.modules, "detail": detail}))
"""


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_runtime_rows_need_no_pytorch(tmp_path, runtime):
    pytest.importorskip(runtime, reason=f"{runtime} not installed")
    done = subprocess.run([sys.executable, "-c", NO_TORCH, runtime, str(tmp_path / "m.onnx")], capture_output=True,
                          text=True, env=bench.thread_environment(1))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["shape"] == [2, 1000] and report["torch"] is False, report


def test_runtime_packages_do_not_include_torch():
    for name in ("export", "onnxruntime", "openvino"):
        assert not {"torch", "transformers"} & set(bench.PACKAGES[name]), name


def test_bench_onnxruntime_row_agrees_with_ours():
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed")
    settings = bench.Settings(variant="128s", batch=2, threads=1, rounds=1, seconds=0.01,
                              backends=("numpy", "onnxruntime"))
    rows = bench.run_bench(settings)["backends"]
    assert rows["onnxruntime"]["detail"].startswith("ONNX Runtime"), rows["onnxruntime"]
    error = rows["onnxruntime"]["max_rel_diff_vs_ours"]
    print(f"bench: onnxruntime vs numpy max|diff|/max|ref| = {error:.1e}")
    assert error < 1e-5
