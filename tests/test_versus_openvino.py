"""`python -m levit_np.perf.versus_openvino`: ours and OpenVINO's own profile, sorted into the same four kinds."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys

import numpy as np
import pytest

from levit_np.perf import versus_openvino as versus
from levit_np.perf.timing import KernelTimer, thread_environment


@pytest.mark.parametrize("node_type, node_name, kind", [
    ("FullyConnected", "stages.0.blocks.0.attn.qkv.add", "linear"),
    ("FullyConnected", "logits", "linear"),
    ("Convolution", "stem.conv2/WithoutBiases", "conv"),
    ("Reorder", "pixel_values_abcd_acdb_stem.conv1/WithoutBiases", "conv"),
    ("Subgraph", "HSwish_6340", "attention"),
    ("Transpose", "stages.1.downsample.attn.kv_heads.transpose", "attention"),
    ("VariadicSplit", "stages.0.blocks.0.attn.heads.split", "attention"),
    ("Subgraph", "stages.0.blocks.0.mlp.residual", "glue"),
    ("Transpose", "stem.tokens", "glue"),
    ("ReduceMean", "pool", "glue"),
])
def test_openvino_nodes_sort_into_kinds(node_type, node_name, kind):
    assert versus.openvino_kind(node_type, node_name) == kind


def test_our_split_adds_up_to_the_pass():
    class Kernels:
        @staticmethod
        def linear_bn(x):
            return x + 1

    timer = KernelTimer(Kernels())
    assert timer.linear_bn(np.zeros(3)).tolist() == [1, 1, 1]
    timer.spent = {"linear_bn": 0.25, "conv_bn": 0.5, "attention": 0.125, "classifier": 0.0625}
    split = versus.our_split(timer, 1.0)
    assert split == {"conv": 0.5, "linear": 0.3125, "attention": 0.125, "glue": 0.0625}


def test_openvino_split_shares_out_the_measured_call():
    class Node:
        class Status:
            EXECUTED, NOT_RUN = "executed", "not run"

        def __init__(self, node_type, node_name, ms, status="executed"):
            self.node_type, self.node_name, self.status = node_type, node_name, status
            self.real_time = datetime.timedelta(milliseconds=ms)

    class Request:
        def get_profiling_info(self):
            return [Node("FullyConnected", "stages.0.blocks.0.mlp.fc1.add", 6.0),
                    Node("Convolution", "stem.conv1/WithoutBiases", 2.0),
                    Node("Subgraph", "HSwish_1", 1.5), Node("Subgraph", "stages.0.blocks.0.mlp.residual", 0.5),
                    Node("Reshape", "stages.0.blocks.0.attn.qkv.reshape", 7.0, status="not run")]

    split = versus.openvino_split(Request(), 0.02)  # the call took 20 ms; its executed nodes add up to 10
    np.testing.assert_allclose([split[kind] for kind in versus.KINDS], [0.004, 0.012, 0.003, 0.001], rtol=1e-12)


def test_a_comparison_finds_every_kind_in_both():
    """One round of LeViT-128S at batch 1 in its own process (threads pinned first): every kind has time in
    both runtimes, so a renamed OpenVINO node type would show here. (Each call's kinds add up to it exactly; the
    medians over the calls of a round, printed here, add up to the median call's time nearly.)"""
    pytest.importorskip("openvino", reason="openvino not installed")
    pytest.importorskip("onnx", reason="the comparison exports with onnx")
    done = subprocess.run([sys.executable, "-m", "levit_np.perf.versus_openvino", "levit_128s", "--batch", "1",
                           "--rounds", "1"], capture_output=True, text=True, env=thread_environment(1))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    for runtime, split in report["ms_per_image"].items():
        assert all(split[kind] > 0 for kind in ("conv", "linear", "attention")), (runtime, split)
        np.testing.assert_allclose(sum(split[kind] for kind in versus.KINDS), split["total"], rtol=0.2)
    assert report["ours_over_openvino"] > 0


def test_bad_requests_stop_with_one_line():
    done = subprocess.run([sys.executable, "-m", "levit_np.perf.versus_openvino", "levit_999", "--rounds", "1"],
                          capture_output=True, text=True, env=thread_environment(1))
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines() == [done.stderr.strip()] and "unknown LeViT variant" in done.stderr


def test_a_missing_runtime_is_named(monkeypatch):
    from levit_np.perf import bench, timing

    monkeypatch.setattr(timing, "pin_threads", lambda threads: None)  # this test process keeps its thread settings
    monkeypatch.setattr(bench, "missing_packages", lambda backend: ["openvino"])
    with pytest.raises(SystemExit, match=r"needs openvino: pip install -e '\.\[bench\]'"):
        versus.main(["levit_128s", "--rounds", "1"])
