"""`levit profile`: the DeiT and split LeViT blocks against independent computations, the tables' structure."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from levit_cli.main import cli
from levit_np.perf import deit
from levit_np.perf.block_ops import ROWS
from levit_np.perf.block_table import (BACKEND_ROWS, LEVIT_ATTN, LEVIT_MLP, PAPER_US, backend_block, levit_block,
                                    levit_block_layers, profile_blocks)
from levit_np.model.config import blocks, get_config
from levit_np.analysis.flops import costs
from levit_np.levit_model import LevitModel
from levit_np.model.forward import attention_block, mlp_block
from levit_np.model.params import random_params


def hardswish(x):
    return x * np.clip(x + 3, 0, 6) / 6


def layernorm(x, w, b):
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5) * w + b


def test_deit_block_against_an_independent_computation():
    """timm's DeiT block with Hardswish, written with einsum in float64 from the unsplit qkv weight."""
    params = deit.random_params(seed=4)
    x = np.random.default_rng(4).normal(size=(2, 197, 192)).astype(np.float32)
    got = deit.deit_block(x, deit.prepare(params))
    p = {k: v.astype(np.float64) for k, v in params.items()}
    x64 = x.astype(np.float64)
    y = layernorm(x64, p["norm1.weight"], p["norm1.bias"])
    qkv = (y @ p["attn.qkv.weight"].T + p["attn.qkv.bias"]).reshape(2, 197, 3, 3, 64)  # (B, N, q/k/v, h, d)
    q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
    logits = np.einsum("bnhc,bmhc->bhnm", q, k) / 8.0
    attn = np.exp(logits - logits.max(-1, keepdims=True))
    attn /= attn.sum(-1, keepdims=True)
    out = np.einsum("bhnm,bmhc->bnhc", attn, v).reshape(2, 197, 192)
    x64 = x64 + out @ p["attn.proj.weight"].T + p["attn.proj.bias"]
    y = layernorm(x64, p["norm2.weight"], p["norm2.bias"])
    hidden = hardswish(y @ p["mlp.fc1.weight"].T + p["mlp.fc1.bias"])
    expected = x64 + hidden @ p["mlp.fc2.weight"].T + p["mlp.fc2.bias"]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4 * np.abs(expected).max())


@pytest.fixture(scope="module")
def levit_256():
    cfg = get_config("levit_256")
    params = random_params(cfg, seed=6)
    x = np.random.default_rng(6).normal(size=(1, 196, 256)).astype(np.float32)
    return cfg, params, x


def test_split_levit_block_equals_the_library_block(levit_256):
    """The folded, split block of the table computes what model.py's attention + MLP blocks compute (unfolded)."""
    cfg, params, x = levit_256
    model = LevitModel(cfg, params)
    attn, mlp = [b for b in blocks(cfg) if b.name in (LEVIT_ATTN, LEVIT_MLP)]
    expected = x + attention_block(x, (14, 14), attn, model.layers, model.kernels)[0]
    expected = expected + mlp_block(expected, (14, 14), mlp, model.layers, model.kernels)[0]
    got = levit_block(x, levit_block_layers(params), cfg.num_heads[0])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4 * np.abs(expected).max())


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_backend_block_equals_the_library_block(levit_256, backend):
    cfg, params, x = levit_256
    try:
        block = backend_block(backend, params)
    except (ImportError, ValueError) as e:
        pytest.skip(f"backend {backend} unavailable: {e}")
    expected = levit_block(x, levit_block_layers(params), cfg.num_heads[0])
    np.testing.assert_allclose(block(x), expected, rtol=0, atol=1e-4 * np.abs(expected).max())


@pytest.fixture(scope="module")
def table():
    return profile_blocks(repeats=3)


def test_row_macs_agree_with_the_flop_counter(table):
    """The rows' MACs plus one per softmax element are the counter's MACs for that attention + MLP pair."""
    cfg = get_config("levit_256")
    counted = sum(c.macs for c in costs(cfg) if c.block in (LEVIT_ATTN, LEVIT_MLP))
    softmax = 4 * 196 * 196
    assert table["macs"]["levit_256"]["total"] + softmax == counted
    assert round(table["macs"]["levit_256"]["keys_qk"] / 1e6, 2) == 12.85  # levit-spec §4
    assert round(table["macs"]["deit_tiny"]["mlp"] / 1e6, 2) == 58.10


def test_block_table_structure(table):
    assert set(table["blocks"]) == {"deit_tiny", "levit_256"}
    assert list(table["blocks"]["deit_tiny"]) == [*ROWS, "total"]
    assert list(table["blocks"]["levit_256"]) == [r for r in ROWS if r != "layernorm"] + ["total"]
    for name, rows in table["blocks"].items():
        assert all(value > 0 for value in rows.values()), rows
        assert set(rows) == set(PAPER_US[name])
        rows_sum = table["sum_of_rows_us"][name]
        assert rows_sum == pytest.approx(sum(v for k, v in rows.items() if k != "total"))
        # The rows run inside the total, so their medians cannot add up to much more than the total's (a busy
        # machine can make the total's median larger: a long run is pre-empted more often than a short row).
        assert rows_sum < 1.3 * rows["total"], (rows_sum, rows["total"])
    assert "numpy" in table["backends"]
    for name, rows in table["backends"].items():
        assert list(rows) == list(BACKEND_ROWS) and all(v > 0 for v in rows.values()), (name, rows)


def test_rows_are_timed_inside_each_run():
    """One run of the step timer: every row of the DeiT block is timed once (LayerNorm twice) within the run."""
    import time

    from levit_np.perf.timing import StepTimer

    x = np.random.default_rng(7).normal(size=(1, 197, 192)).astype(np.float32)
    layers = deit.prepare(deit.random_params(seed=7))
    timer = StepTimer()
    start = time.perf_counter()
    out = deit.deit_block(x, layers, step=timer)
    total = time.perf_counter() - start
    assert list(timer.run) == list(ROWS) and all(v > 0 for v in timer.run.values())
    assert sum(timer.run.values()) <= total
    np.testing.assert_array_equal(out, deit.deit_block(x, layers))  # timing does not change the result


def test_cli_blocks_json():
    result = CliRunner().invoke(cli, ["profile", "--blocks", "--repeats", "2", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output[result.output.index("{"):])
    assert set(data["blocks"]["deit_tiny"]) == {*ROWS, "total"}
    assert "layernorm" not in data["blocks"]["levit_256"]


def test_cli_blocks_table():
    result = CliRunner().invoke(cli, ["profile", "--blocks", "--repeats", "2"])
    assert result.exit_code == 0, result.output
    for text in ("Keys Q,K", "Product QK^T", "2474", "2365", "softmax: product_qkt"):
        assert text in result.output


@pytest.fixture(scope="module")
def model_profile():
    from levit_np import create
    from levit_np.perf.model_profile import profile_model

    model = create("levit_128s")
    return model, profile_model(model, repeats=2)


def test_model_profile_structure(model_profile):
    from levit_np.analysis.flops import total_flops

    model, model_profile = model_profile
    names = [row["name"] for row in model_profile["blocks"]]
    assert names == model.block_names()
    assert all(row["time_us"] > 0 for row in model_profile["blocks"])
    assert sum(row["share"] for row in model_profile["blocks"]) == pytest.approx(1.0)
    assert sum(row["macs"] for row in model_profile["blocks"]) == total_flops(get_config("levit_128s"))
    assert [s["stage"] for s in model_profile["stages"]] == ["stem", "stage 0", "stage 1", "stage 2", "head"]
    assert sum(s["time_us"] for s in model_profile["stages"]) == pytest.approx(model_profile["total_us"])


def test_cli_model_profile_with_plot(tmp_path):
    pytest.importorskip("matplotlib")
    target = tmp_path / "breakdown.png"
    result = CliRunner().invoke(cli, ["profile", "--model", "128S", "--repeats", "1", "--plot", str(target), "--json"])
    assert result.exit_code == 0, result.output
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["breakdown.png"]  # no temporary file left behind
    data = json.loads(result.output[result.output.index("{"):])
    assert data["model"] == "levit_128s" and len(data["blocks"]) == 25


@pytest.mark.parametrize("args, message", [
    (["profile"], "exactly one of"),
    (["profile", "--blocks", "--model", "128S"], "exactly one of"),
    (["profile", "--blocks", "--plot", "x.png"], "--plot goes with"),
    (["profile", "--model", "nope"], "unknown LeViT variant"),
    (["profile", "--model", "128S", "--backend", "cuda"], "'cuda' is not one of 'auto', 'numpy', 'numba'"),
    (["profile", "--ablation", "A0"], "unknown ablation"),
])
def test_cli_profile_bad_input(args, message):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output


def test_a_failed_plot_leaves_no_file(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    import levit_np.perf.model_profile

    def broken(result, path, fmt="png"):
        path.write_bytes(b"half a png")
        raise RuntimeError("disk full")

    monkeypatch.setattr(levit_np.perf.model_profile, "plot_profile", broken)
    result = CliRunner().invoke(cli, ["profile", "--model", "128S", "--repeats", "1", "--plot", str(tmp_path / "p.png")])
    assert result.exit_code != 0 and "disk full" in result.output and "Traceback" not in result.output
    assert not any(tmp_path.iterdir())


def test_cli_plot_into_a_directory_fails_before_measuring(tmp_path):
    pytest.importorskip("matplotlib")
    result = CliRunner().invoke(cli, ["profile", "--model", "128S", "--plot", str(tmp_path)])
    assert result.exit_code != 0 and "is a directory" in result.output
