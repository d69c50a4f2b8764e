"""The Table 5 ablations: each builds and runs; their counts match the paper's (to its rounding); their changes
are checked against independent NumPy computations."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from click.testing import CliRunner

from levit_cli.main import cli
from levit_np.analysis.ablations import ABLATIONS, BASE, get_ablation, report
from levit_np.model.attention_bias import gather_bias
from levit_np.model.config import VARIANTS
from levit_np.levit_model import LevitModel
from levit_np.model.params import param_shapes, random_params

ARCHITECTURES = [a.id for a in ABLATIONS.values() if a.config is not None]


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(5).normal(size=(1, 3, 224, 224)).astype(np.float32)


@pytest.fixture(scope="module")
def traces(image) -> dict:
    out = {}
    for ablation_id in ARCHITECTURES:
        cfg = ABLATIONS[ablation_id].config
        model = LevitModel(cfg, random_params(cfg, seed=1))
        out[ablation_id] = (model, model.trace(image))
    return out


@pytest.mark.parametrize("ablation_id", ARCHITECTURES)
def test_each_ablation_builds_and_runs(traces, ablation_id):
    model, trace = traces[ablation_id]
    logits = trace["logits"]
    assert logits.shape == (1, 1000) and logits.dtype == np.float32
    assert np.isfinite(logits).all() and np.abs(logits).max() > 0
    assert list(trace) == model.block_names()
    assert trace["pool"].shape == (1, model.config.embed_dims[-1])


def test_the_five_variants_keep_their_defaults():
    for cfg in VARIANTS.values():
        assert (cfg.stem_kind, cfg.norm, cfg.position, cfg.attn_activation, cfg.down_num_heads) == \
               ("conv4", "bn", "bias", True, None)


@pytest.mark.parametrize("ablation_id", list(ABLATIONS))
def test_counts_match_the_paper_to_its_rounding(ablation_id):
    r = report(get_ablation(ablation_id))
    assert round(r["params_one_head"] / 1e6, 1) == r["paper_params_m"]
    assert abs(r["flops"] / 1e6 - r["paper_flops_m"]) < 1.0  # A2: 275.6M against the paper's printed 275M
    assert len(r["notes"]) == 2


def test_a1_is_one_stage_of_eleven_blocks(traces):
    model, trace = traces["A1"]
    assert not any("downsample" in name for name in trace)
    assert trace["stages.0.blocks.10.mlp"].shape == (1, 196, 114)


def test_a2_stem_is_a_patch_convolution(traces, image):
    """The 16x16 stride-16 conv + BN, computed independently as a product over flattened patches (float64)."""
    model, trace = traces["A2"]
    p = {k[len("stem.conv1."):]: v.astype(np.float64) for k, v in model.params.items() if k.startswith("stem.conv1.")}
    patches = image.astype(np.float64).reshape(1, 3, 14, 16, 14, 16).transpose(0, 2, 4, 1, 3, 5).reshape(196, -1)
    conv = patches @ p["weight"].reshape(128, -1).T  # (196, 128)
    bn = (conv - p["bn.running_mean"]) / np.sqrt(p["bn.running_var"] + 1e-5) * p["bn.weight"] + p["bn.bias"]
    expected = bn.T.reshape(1, 128, 14, 14)
    np.testing.assert_allclose(trace["stem"], expected, rtol=0, atol=1e-4 * np.abs(expected).max())


def hardswish(x):
    return x * np.clip(x + 3, 0, 6) / 6


def test_a3_first_block_is_pre_layernorm_attention(traces):
    """x + proj(Hardswish(softmax(q k^T / sqrt(kd) + B) v)) with q, k, v from Linear(LayerNorm(x)), in float64."""
    model, trace = traces["A3"]
    p = {k: v.astype(np.float64) for k, v in model.params.items()}
    name, h, kd, d = "stages.0.blocks.0.attn", 4, 16, 32
    x = trace["stem"].astype(np.float64).reshape(1, 128, 196).transpose(0, 2, 1)[0]  # (196, 128)
    y = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    y = y * p[f"{name}.norm.weight"] + p[f"{name}.norm.bias"]
    qkv = (y @ p[f"{name}.qkv.weight"].T + p[f"{name}.qkv.bias"]).reshape(196, h, 2 * kd + d)
    q, k, v = qkv[..., :kd], qkv[..., kd:2 * kd], qkv[..., 2 * kd:]
    logits = np.einsum("nhc,mhc->hnm", q, k) / np.sqrt(kd) + gather_bias(p[f"{name}.attention_biases"], (14, 14), (14, 14))
    attn = np.exp(logits - logits.max(-1, keepdims=True))
    attn /= attn.sum(-1, keepdims=True)
    out = hardswish(np.einsum("hnm,mhc->nhc", attn, v).reshape(196, h * d))
    expected = x + out @ p[f"{name}.proj.weight"].T + p[f"{name}.proj.bias"]
    got = trace[name][0]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4 * np.abs(expected).max())


def test_a5_with_zero_embedding_equals_the_base_model_with_zero_biases(image):
    """Absolute positions replace the biases: with both zeroed the two models compute the same function."""
    a5 = ABLATIONS["A5"].config
    params = random_params(BASE, seed=2)
    base_params = {k: (np.zeros_like(v) if k.endswith("attention_biases") else v) for k, v in params.items()}
    a5_params = {k: v for k, v in params.items() if not k.endswith("attention_biases")}
    a5_params["pos_embed"] = np.zeros(param_shapes(a5)["pos_embed"], np.float32)
    expected = LevitModel(BASE, base_params)(image)
    got = LevitModel(a5, a5_params)(image)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * np.abs(expected).max())
    shifted = dict(a5_params, pos_embed=np.full_like(a5_params["pos_embed"], 0.5))
    assert np.abs(LevitModel(a5, shifted)(image) - got).max() > 1e-3  # the embedding is used


def test_a5_refuses_another_input_size():
    a5 = ABLATIONS["A5"].config
    with pytest.raises(ValueError, match="absolute position embedding"):
        LevitModel(a5, random_params(a5))(np.zeros((1, 3, 256, 256), np.float32))


def test_a6_widths():
    shapes = param_shapes(ABLATIONS["A6"].config)
    assert shapes["stages.0.blocks.0.attn.qkv.weight"] == (4 * 90, 120)  # 4 heads of q, k, v all 30 wide
    assert shapes["stages.0.blocks.0.mlp.fc1.weight"] == (480, 120)  # MLP ratio 4
    assert shapes["stages.1.downsample.attn.kv.weight"] == (16 * 60, 120)  # 16 heads of k and v, 30 each
    assert shapes["stages.2.downsample.attn.q.weight"] == (24 * 30, 180)


def test_a7_drops_only_the_attention_activation(image):
    """A7 with the base model's weights: same stem and MLP maths, a different attention output."""
    a7 = ABLATIONS["A7"].config
    params = random_params(BASE, seed=3)
    base_trace = LevitModel(BASE, params).trace(image)
    a7_trace = LevitModel(a7, params).trace(image)
    np.testing.assert_array_equal(a7_trace["stem"], base_trace["stem"])
    assert np.abs(a7_trace["stages.0.blocks.0.attn"] - base_trace["stages.0.blocks.0.attn"]).max() > 1e-3
    hardswish_on = dataclasses.replace(a7, attn_activation=True)
    np.testing.assert_array_equal(LevitModel(hardswish_on, params)(image), base_trace["logits"])


def test_cli_flops_ablation_json_and_table():
    result = CliRunner().invoke(cli, ["flops", "--ablation", "a6", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["ablation"] == "A6" and data["paper_flops_m"] == 312 and data["base"]["flops"] == 305_108_946
    result = CliRunner().invoke(cli, ["flops", "--ablation", "all"])
    assert result.exit_code == 0 and all(a in result.output for a in ABLATIONS), result.output
    assert "head_dist" in result.output and "truncate" in result.output  # the explanations are printed


def test_cli_profile_ablation_measures_both(monkeypatch):
    result = CliRunner().invoke(cli, ["profile", "--ablation", "A7", "--repeats", "2", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output[result.output.index("{"):])
    entry = data["ablations"][0]
    assert entry["latency_ms"]["median_ms"] > 0 and entry["base_latency_ms"]["median_ms"] > 0


def test_cli_profile_ablation_on_an_unsupporting_backend_is_one_line():
    result = CliRunner().invoke(cli, ["profile", "--ablation", "A3", "--backend", "numba", "--repeats", "1"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert result.output.strip().splitlines()[-1].startswith("Error:")
